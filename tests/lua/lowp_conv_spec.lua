-- bfloat16 and float16 convolutions on the CPU (kernels/cpu/dnnl_conv.c,
-- runtime/conv.c, docs/precision.md): conv1d, conv2d, conv3d and the
-- transposed ones in each dtype against the float32 op on the same inputs
-- (every input exactly representable in the dtype), every gradient (input,
-- weight, bias) against float32's, NCHW and channels-last, groups, stride,
-- dilation and padding, and the path tide.backend_info() reports. The spec
-- runs twice (tests/CMakeLists.txt): on the default path (bfloat16 on
-- oneDNN's bf16 primitives where the CPU has AVX512-BF16) and with
-- TIDE_LOWP_CONV=float32 (widened to float32, rounded back).
--
-- Tolerances, as tests/lua/lowp_matmul_spec.lua's: either path sums in
-- float32 and rounds to the dtype once, so an element may differ from
-- float32's by u |ref| (u the unit roundoff, 2^-8 for bfloat16, 2^-11 for
-- float16) plus float32's own summation error, at most k 2^-24 times the
-- sum of the magnitudes, k the reduction's size. The bound is
-- (r u + k 2^-24) mag, mag the same convolution (or gradient) of the
-- absolute values, r the roundings (2 where the N-d convolutions add the
-- bias in the low dtype after rounding the convolution).
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"

local TIDE = arg and arg[-1] or "tide"
local DTYPES = { "bfloat16", "float16" }

-- a float32 tensor of the given shape holding values exact in dt
local function exact(shape, dt, scale)
    return (tide.randn(shape) * (scale or 1)):to(dt):float()
end

local check = H.check_lowp

local function as_layout(t, cl)
    return cl and t:contiguous { memory_format = "channels_last" } or t
end

-- fn(x, w, b) on float32 inputs and on the same inputs in dt (x and the
-- upstream gradient channels-last when cl); the magnitudes are fn's
-- output and gradients on the absolute values with |gy| upstream (the
-- convolutions are bilinear, so these are the sums of the magnitudes)
local function compare(dt, label, xs, ws, bs, fn, r, k, cl)
    local x, w, b = exact(xs, dt), exact(ws, dt, 0.5), exact(bs, dt)
    local function run(xx, ww, bb, g)
        xx, ww, bb = xx:detach(), ww:detach(), bb:detach()
        xx.requires_grad, ww.requires_grad, bb.requires_grad = true, true, true
        local y = fn(xx, ww, bb)
        y:backward(g and as_layout(g:to(y:dtype()), cl) or nil)
        return y:detach(), xx.grad, ww.grad, bb.grad
    end
    local yf = fn(x, w, b)
    local g = exact(yf:shape(), dt)
    local f = { run(x, w, b, g) }
    local m = { run(x:abs(), w:abs(), b:abs(), g:abs()) }
    local l = { run(as_layout(x:to(dt), cl), w:to(dt), b:to(dt), g) }
    for i, what in ipairs { "output", "grad input", "grad weight", "grad bias" } do
        assert(l[i], label .. ": no " .. what)
        check(l[i], f[i], m[i], dt, i == 1 and r or 1, k, label .. " " .. what)
    end
end

local function size(t)
    local n = 1
    for _, v in ipairs(t) do n = n * v end
    return n
end

-- the largest reduction of the three directions: in channels per group
-- times the kernel, out channels per group times the kernel, batch times
-- the output's positions (for the transposed ones, the roles swap)
local function reduction(xs, ws, groups)
    local kvol = size(ws) / (ws[1] * ws[2])
    local big = 0
    for _, v in ipairs { ws[1] * kvol, ws[2] * kvol, xs[1] * size(xs) / (xs[1] * xs[2]) * 4 } do
        big = math.max(big, v * groups)
    end
    return big
end

describe("low-precision convolutions against float32", function()
    tide.manual_seed(19)
    local cases2d = {
        { { 4, 16, 10, 10 }, { 32, 16, 3, 3 }, { padding = 1 } },
        { { 3, 32, 9, 9 }, { 64, 32, 3, 3 }, { stride = 2, padding = 1 } },
        { { 2, 16, 8, 10 }, { 16, 1, 3, 3 }, { groups = 16, padding = 1 } },
        { { 3, 8, 11, 7 }, { 12, 4, 3, 3 }, { groups = 2, dilation = 2, padding = { 2, 1 } } },
        { { 5, 24, 6, 6 }, { 48, 24, 1, 1 }, {} },
        { { 1, 3, 17, 15 }, { 8, 3, 5, 5 }, { stride = { 2, 3 }, padding = 2 } },
    }
    for _, dt in ipairs(DTYPES) do
        for i, c in ipairs(cases2d) do
            for _, cl in ipairs { false, true } do
                local label = string.format("conv2d case %d %s", i, cl and "channels-last" or "NCHW")
                it(dt .. " " .. label, function()
                    local function fn(x, w, b)
                        local o = { bias = b }
                        for kk, v in pairs(c[3]) do o[kk] = v end
                        return tide.conv2d(x, w, o)
                    end
                    compare(dt, label, c[1], c[2], { c[2][1] }, fn, 1,
                        reduction(c[1], c[2], c[3].groups or 1), cl)
                end)
            end
        end

        local casesnd = {
            { "conv1d", { 4, 16, 20 }, { 24, 16, 3 }, { padding = 1 }, 24 },
            { "conv1d", { 3, 8, 17 }, { 12, 4, 5 }, { stride = 2, dilation = 2, groups = 2, padding = 3 }, 12 },
            { "conv3d", { 2, 8, 6, 7, 5 }, { 16, 8, 3, 3, 3 }, { padding = 1 }, 16 },
            { "conv3d", { 2, 4, 7, 6, 6 }, { 8, 2, 3, 1, 3 }, { stride = { 2, 1, 2 }, groups = 2 }, 8 },
            { "conv_transpose1d", { 3, 16, 9 }, { 16, 8, 4 }, { stride = 2, padding = 1 }, 8 },
            { "conv_transpose2d", { 2, 16, 5, 6 }, { 16, 12, 3, 3 },
                { stride = 2, padding = 1, output_padding = 1 }, 12 },
            { "conv_transpose2d", { 2, 8, 6, 5 }, { 8, 4, 3, 3 }, { groups = 2, dilation = 2 }, 8 },
            { "conv_transpose3d", { 2, 8, 3, 4, 3 }, { 8, 8, 3, 3, 3 }, { stride = 2 }, 8 },
        }
        for i, c in ipairs(casesnd) do
            local label = string.format("%s case %d", c[1], i)
            it(dt .. " " .. label, function()
                local function fn(x, w, b)
                    local o = { bias = b }
                    for kk, v in pairs(c[4]) do o[kk] = v end
                    return tide.F[c[1]](x, w, o)
                end
                compare(dt, label, c[2], c[3], { c[5] }, fn, 2, reduction(c[2], c[3], c[4].groups or 1) * 4)
            end)
        end

        -- 4608 ones: summed in bfloat16 the sum would stall at 256
        it(dt .. " sums in float32", function()
            local x = tide.ones({ 1, 512, 3, 3 }):to(dt)
            local w = tide.ones({ 1, 512, 3, 3 }):to(dt)
            assert.are.equal(4608, tide.conv2d(x, w):float():item())
            local x1 = tide.ones({ 1, 4096, 1 }):to(dt)
            local w1 = tide.ones({ 1, 4096, 1 }):to(dt)
            assert.are.equal(4096, tide.F.conv1d(x1, w1):float():item())
        end)
    end

    it("bfloat16 under autocast and in deterministic mode", function()
        local x, w = exact({ 2, 8, 6, 6 }, "bfloat16"), exact({ 4, 8, 3, 3 }, "bfloat16")
        local want = tide.conv2d(x, w):bfloat16():float()
        local y = tide.autocast("bfloat16", function() return tide.conv2d(x, w) end)
        assert.are.equal("bfloat16", y:dtype())
        local was = tide.use_deterministic(true)
        local ok, yd = pcall(tide.conv2d, x:bfloat16(), w:bfloat16())
        tide.use_deterministic(was)
        assert(ok, yd)
        local m = tide.conv2d(x:abs(), w:abs())
        check(y, want, m, "bfloat16", 1, 72, "autocast")
        check(yd, want, m, "bfloat16", 1, 72, "deterministic")
    end)

    it("rejects mixed dtypes", function()
        local x, w = tide.randn({ 1, 2, 4, 4 }):bfloat16(), tide.randn({ 3, 2, 3, 3 })
        assert.truthy(H.error_of(tide.conv2d, x, w):find("bfloat16", 1, true))
        assert.truthy(H.error_of(tide.F.conv1d, tide.randn({ 1, 2, 4 }):bfloat16(), tide.randn({ 3, 2, 3 }))
            :find("bfloat16", 1, true))
    end)
end)

describe("tide.backend_info conv", function()
    local function cpu_has(flag)
        local f = io.open("/proc/cpuinfo")
        if not f then return false end
        local s = f:read("a")
        f:close()
        return s:find("%f[%w_]" .. flag .. "%f[^%w_]") ~= nil
    end

    it("names the path of each dtype's convolutions", function()
        local info = tide.backend_info()
        assert.truthy(info.conv.float32:find("^onednn"), info.conv.float32)
        assert.truthy(info.conv.float64:find("direct", 1, true), info.conv.float64)
        assert.truthy(info.conv.float16:find("^float32 fallback"), info.conv.float16)
        local p = info.conv.bfloat16
        assert.truthy(p:find("^onednn ") or p:find("^float32 fallback"), p)
        local env = os.getenv("TIDE_LOWP_CONV")
        if env == "float32" then
            assert.truthy(p:find("TIDE_LOWP_CONV=float32", 1, true), p)
        elseif cpu_has("avx512_bf16") and not env and not os.getenv("DNNL_MAX_CPU_ISA") then
            assert.truthy(p:find("avx512_core_bf16", 1, true), p)
        end
        local was = tide.use_deterministic(true)
        local ok, pd = pcall(function() return tide.backend_info().conv.bfloat16 end)
        tide.use_deterministic(was)
        assert(ok, pd)
        assert.truthy(pd:find("^float32 fallback"), pd)
    end)

    -- the widening path (forced, and oneDNN limited to AVX2, which has no
    -- bfloat16 convolution) gives float32's result rounded once, exactly
    it("falls back to float32 when asked or where oneDNN has no bf16", function()
        local code = [[
            local tide = require "tide"
            tide.manual_seed(7)
            local x = tide.randn({4, 16, 9, 9}):bfloat16()
            local w = tide.randn({32, 16, 3, 3}):bfloat16()
            io.write(tide.backend_info().conv.bfloat16, "\n")
            io.write(string.format("%.9g\n", tide.conv2d(x, w, {padding = 1}):float():sum():item()))
            io.write(string.format("%.9g\n",
                tide.conv2d(x:float(), w:float(), {padding = 1}):bfloat16():float():sum():item()))
        ]]
        local function run(env)
            local p = assert(io.popen(env .. " " .. H.sh(TIDE) .. " -e " .. H.sh(code) .. " 2>&1"))
            local out = p:read("a")
            p:close()
            local lines = {}
            for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
            return lines, out
        end
        for _, env in ipairs({ "TIDE_LOWP_CONV=float32", "DNNL_MAX_CPU_ISA=AVX2" }) do
            local l, out = run(env)
            assert.truthy(l[1] and l[1]:find("^float32 fallback"), out)
            assert.are.equal(l[3], l[2], out)
        end
        if cpu_has("avx512_bf16") and not os.getenv("DNNL_MAX_CPU_ISA") then
            local l, out = run("TIDE_LOWP_CONV=auto")
            assert.truthy(l[1] and l[1]:find("^onednn "), out)
        end
    end)
end)
