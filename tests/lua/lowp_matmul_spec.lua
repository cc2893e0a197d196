-- bfloat16 and float16 matrix products on the CPU (kernels/cpu/gemm_lowp.c,
-- docs/precision.md): matmul, mm, bmm, addmm and linear in each dtype
-- against the float32 op on the same inputs (every input exactly
-- representable in the dtype, so the two see the same numbers), their
-- gradients against the float32 gradients of the same function, and the
-- path tide.backend_info() reports.
--
-- Tolerances: the products are summed in float32 and rounded to the dtype
-- once, so an element of a product may differ from float32's by u |ref|
-- (u the dtype's unit roundoff, 2^-8 for bfloat16 and 2^-11 for float16)
-- plus float32's own summation error, at most k 2^-24 (|A| |B|)_ij. Each
-- further rounding in the low dtype (addmm's alpha and beta, linear's bias)
-- adds one u of the magnitudes involved. The bound used is r u (|A| |B|)_ij
-- + k 2^-24 (|A| |B|)_ij, r the number of roundings, and a test of k = 4096
-- ones shows the sums are not kept in the low dtype (bfloat16 sums stall
-- at 256).
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"

local TIDE = arg and arg[-1] or "tide"
local DTYPES = { "bfloat16", "float16" }

-- a float32 tensor of the given shape holding values exact in dt
local function exact(shape, dt)
    return tide.randn(shape):to(dt):float()
end

local check = H.check_lowp

-- runs fn on float32 inputs and on the same inputs in dt, with gradients
-- flowing from a fixed upstream gradient; checks outputs and gradients.
-- mags(inputs) -> magnitude tensor of the output; gmags(inputs, g) -> a
-- magnitude tensor per input gradient. r: roundings of the output, rg of
-- the gradients (r when nil; a broadcast input's gradient is a sum of
-- rounded products, rounded again)
local function compare(dt, label, inputs, fn, mag_out, mag_grads, r, k, rg)
    local f32, low = {}, {}
    for i, x in ipairs(inputs) do
        f32[i] = x:clone():requires_grad_()
        low[i] = x:to(dt):requires_grad_()
    end
    local yf, yl = fn(f32), fn(low)
    check(yl, yf:detach(), mag_out, dt, r, k, label .. " output")
    local g = exact(yf:shape(), dt)
    yf:backward(g)
    yl:backward(g:to(dt))
    local gm = mag_grads(g:abs())
    for i = 1, #inputs do
        if gm[i] then
            assert(low[i].grad, label .. ": no gradient for input " .. i)
            check(low[i].grad, f32[i].grad, gm[i], dt, rg or r, k, label .. " grad " .. i)
        end
    end
end

describe("low-precision products against float32", function()
    for _, dt in ipairs(DTYPES) do
        it(dt .. " mm, every transpose and padded rows", function()
            for _, ta in ipairs({ false, true }) do
                for _, tb in ipairs({ false, true }) do
                    local a = ta and exact({ 13, 7 }, dt) or exact({ 7, 13 }, dt)
                    local b = tb and exact({ 5, 13 }, dt) or exact({ 13, 5 }, dt)
                    local function op(x) return ta and x:t() or x end
                    local function opb(x) return tb and x:t() or x end
                    compare(dt, string.format("mm ta=%s tb=%s", ta, tb), { a, b },
                        function(v) return tide.mm(op(v[1]), opb(v[2])) end,
                        tide.mm(op(a):abs(), opb(b):abs()),
                        function(g)
                            return {
                                op(tide.mm(g, opb(b):abs():t())),
                                opb(tide.mm(op(a):abs():t(), g)),
                            }
                        end, 1, 13)
                end
            end
            -- rows of a wider tensor (row stride > cols)
            local wide, b = exact({ 6, 20 }, dt), exact({ 9, 4 }, dt)
            local y = tide.mm(wide:to(dt):narrow(1, 3, 9), b:to(dt))
            check(y, tide.mm(wide:narrow(1, 3, 9), b), tide.mm(wide:narrow(1, 3, 9):abs(), b:abs()),
                dt, 1, 9, "mm narrow")
            -- no unit stride at all (copied first)
            local p = exact({ 6, 4, 5 }, dt)
            local pl = p:to(dt):permute({ 2, 0, 1 })
            local pf = p:permute({ 2, 0, 1 })
            local w = exact({ 4, 3 }, dt)
            check(tide.matmul(pl, w:to(dt)), tide.matmul(pf, w), tide.matmul(pf:abs(), w:abs()), dt,
                1, 4, "matmul permuted")
        end)

        it(dt .. " bmm, matmul with broadcast batches and vectors", function()
            local a, b = exact({ 4, 6, 8 }, dt), exact({ 4, 8, 3 }, dt)
            compare(dt, "bmm", { a, b }, function(v) return tide.bmm(v[1], v[2]) end,
                tide.bmm(a:abs(), b:abs()),
                function(g) return { tide.bmm(g, b:abs():transpose(1, 2)), tide.bmm(a:abs():transpose(1, 2), g) } end,
                1, 8)
            local x, y = exact({ 2, 1, 5, 7 }, dt), exact({ 3, 7, 4 }, dt)
            compare(dt, "matmul broadcast", { x, y }, function(v) return tide.matmul(v[1], v[2]) end,
                tide.matmul(x:abs(), y:abs()),
                function(g)
                    return {
                        tide.matmul(g, y:abs():transpose(1, 2)):sum(1, true),
                        tide.matmul(x:abs():transpose(2, 3), g):sum(0),
                    }
                end, 1, 7 * 3, 2)
            -- a batch of matrices times one matrix, folded into rows
            local z = exact({ 3, 5, 7 }, dt)
            local w = exact({ 7, 2 }, dt)
            check(tide.matmul(z:to(dt), w:to(dt)), tide.matmul(z, w), tide.matmul(z:abs(), w:abs()), dt,
                1, 7, "matmul 3-d by 2-d")
            -- one matrix against a broadcast batch (stride 0 batch)
            local one = exact({ 1, 5, 7 }, dt)
            local many = exact({ 6, 7, 3 }, dt)
            check(tide.matmul(one:to(dt), many:to(dt)), tide.matmul(one, many),
                tide.matmul(one:abs(), many:abs()), dt, 1, 7, "matmul broadcast first")
            local v, m = exact({ 7 }, dt), exact({ 7, 4 }, dt)
            check(tide.matmul(v:to(dt), m:to(dt)), tide.matmul(v, m), tide.matmul(v:abs(), m:abs()), dt,
                1, 7, "vector @ matrix")
            check(tide.matmul(m:t():to(dt), v:to(dt)), tide.matmul(m:t(), v),
                tide.matmul(m:t():abs(), v:abs()), dt, 1, 7, "matrix @ vector")
            check(tide.matmul(v:to(dt), v:to(dt)), tide.matmul(v, v), tide.matmul(v:abs(), v:abs()), dt,
                1, 7, "dot")
        end)

        it(dt .. " empty products", function()
            local e = tide.matmul(tide.zeros({ 3, 0 }, dt), tide.zeros({ 0, 4 }, dt))
            assert.are.equal(dt, e:dtype())
            assert.are.same({ 3, 4 }, e:shape())
            assert.are.equal(0, e:float():abs():sum():item())
            local m0 = tide.mm(tide.zeros({ 0, 5 }, dt), tide.zeros({ 5, 2 }, dt))
            assert.are.same({ 0, 2 }, m0:shape())
            local b0 = tide.bmm(tide.zeros({ 2, 3, 0 }, dt), tide.zeros({ 2, 0, 4 }, dt))
            assert.are.equal(0, b0:float():abs():sum():item())
        end)

        it(dt .. " sums in float32, not in " .. dt, function()
            local k = 4096
            local y = tide.matmul(tide.ones({ 1, k }, dt), tide.ones({ k, 1 }, dt))
            assert.are.equal(k, y:float():item())
            -- and a dot product whose float32 sum is exact, rounded once
            local a = tide.full({ 1, 1000 }, 1.5):to(dt)
            local b = tide.full({ 1000, 1 }, 0.5):to(dt)
            assert.are.equal(tide.tensor({ 750 }):to(dt):item(), tide.mm(a, b):item())
        end)

        it(dt .. " addmm with alpha and beta", function()
            local i, a, b = exact({ 6, 4 }, dt), exact({ 6, 9 }, dt), exact({ 9, 4 }, dt)
            local mag = tide.mm(a:abs(), b:abs()) * 2 + i:abs() * 0.5
            compare(dt, "addmm", { i, a, b },
                function(v) return tide.addmm(v[1], v[2], v[3], { beta = 0.5, alpha = 2 }) end,
                mag,
                function(g)
                    return { g * 0.5, tide.mm(g, b:abs():t()) * 2, tide.mm(a:abs():t(), g) * 2 }
                end, 3, 9)
            -- beta 0 ignores input, NaN included
            local nan = tide.full({ 6, 4 }, 0 / 0):to(dt)
            local y = tide.addmm(nan, a:to(dt), b:to(dt), { beta = 0 })
            check(y, tide.mm(a, b), tide.mm(a:abs(), b:abs()), dt, 1, 9, "addmm beta 0")
            -- a broadcast input row
            local row = exact({ 4 }, dt)
            check(tide.addmm(row:to(dt), a:to(dt), b:to(dt)), tide.addmm(row, a, b),
                tide.mm(a:abs(), b:abs()) + row:abs(), dt, 2, 9, "addmm row")
        end)

        it(dt .. " linear with and without bias", function()
            local x, w, bias = exact({ 2, 3, 9 }, dt), exact({ 5, 9 }, dt), exact({ 5 }, dt)
            compare(dt, "linear", { x, w, bias },
                function(v) return tide.F.linear(v[1], v[2], { bias = v[3] }) end,
                tide.matmul(x:abs(), w:abs():t()) + bias:abs(),
                function(g)
                    return { tide.matmul(g, w:abs()), tide.matmul(g:reshape({ 6, 5 }):t(), x:abs():reshape({ 6, 9 })),
                        g:sum(0):sum(0) }
                end, 2, 9 * 6)
            compare(dt, "linear no bias", { x, w },
                function(v) return tide.F.linear(v[1], v[2]) end,
                tide.matmul(x:abs(), w:abs():t()),
                function(g)
                    return { tide.matmul(g, w:abs()), tide.matmul(g:reshape({ 6, 5 }):t(), x:abs():reshape({ 6, 9 })) }
                end, 1, 9 * 6)
        end)

        it(dt .. " refuses operands of another dtype", function()
            local a = tide.ones({ 2, 3 }, dt)
            local other = dt == "bfloat16" and "float16" or "bfloat16"
            for _, b in ipairs({ tide.ones({ 3, 2 }), tide.ones({ 3, 2 }, other) }) do
                local e = H.error_of(tide.matmul, a, b)
                assert.truthy(e:find("matmul", 1, true) and e:find("same dtype", 1, true), e)
                e = H.error_of(tide.mm, a, b)
                assert.truthy(e:find("mm", 1, true) and e:find("same dtype", 1, true), e)
            end
            local e = H.error_of(tide.F.linear, tide.ones({ 2, 3 }, dt), tide.ones({ 4, 3 }))
            assert.truthy(e:find("linear", 1, true) and e:find("weight", 1, true), e)
            e = H.error_of(tide.F.linear, tide.ones({ 2, 3 }, dt), tide.ones({ 4, 3 }, dt),
                { bias = tide.ones({ 4 }) })
            assert.truthy(e:find("bias", 1, true), e)
        end)
    end
end)

describe("low-precision products in deterministic mode", function()
    it("give the same bits on 1 and 2 threads", function()
        local threads = tide.get_num_threads()
        local was = tide.use_deterministic(true)
        local ok, err = pcall(function()
            for _, dt in ipairs(DTYPES) do
                tide.manual_seed(3)
                local a, b = tide.randn({300, 700}):to(dt), tide.randn({700, 260}):to(dt)
                tide.set_num_threads(1)
                local one = tide.matmul(a, b)
                tide.set_num_threads(2)
                local two = tide.matmul(a, b)
                local same, why = H.same_values(one, two)
                assert(same, dt .. ": " .. tostring(why))
            end
        end)
        tide.set_num_threads(threads)
        tide.use_deterministic(was)
        assert(ok, err)
    end)
end)

describe("tide.backend_info", function()
    local function cpu_has(flag)
        local f = io.open("/proc/cpuinfo")
        if not f then return false end
        local s = f:read("a")
        f:close()
        return s:find("%f[%w_]" .. flag .. "%f[^%w_]") ~= nil
    end

    it("names the path of each dtype's products", function()
        local info = tide.backend_info()
        assert.are.equal("cpu", info.device)
        assert.are.equal("onednn sgemm", info.matmul.float32)
        assert.are.equal("openblas dgemm", info.matmul.float64)
        for _, dt in ipairs(DTYPES) do
            local p = info.matmul[dt]
            assert.truthy(p:find("^onednn ") or p:find("^float32 fallback"), p)
        end
        -- oneDNN runs bfloat16 natively where the CPU has AVX512-BF16
        -- (unless the environment asks otherwise)
        if cpu_has("avx512_bf16") and not os.getenv("TIDE_LOWP_MATMUL") and not os.getenv("DNNL_MAX_CPU_ISA") then
            assert.truthy(info.matmul.bfloat16:find("avx512_core_bf16", 1, true), info.matmul.bfloat16)
        end
        local was = tide.use_deterministic(true)
        local ok, p = pcall(function() return tide.backend_info().matmul.bfloat16 end)
        tide.use_deterministic(was)
        assert(ok, p)
        assert.truthy(p:find("^float32 fallback"), p)
        assert.truthy(H.error_of(tide.backend_info, "cpu", 1):find("backend_info", 1, true))
    end)

    -- the float32 fallback (forced, and oneDNN limited to AVX2, which has
    -- no bfloat16 matmul) gives the same results as the default path here
    it("falls back to float32 when asked or where oneDNN has no bf16", function()
        local code = [[
            local tide = require "tide"
            tide.manual_seed(7)
            local a = tide.randn({37, 70}):bfloat16()
            local b = tide.randn({70, 29}):bfloat16()
            io.write(tide.backend_info().matmul.bfloat16, "\n")
            io.write(string.format("%.9g\n", tide.matmul(a, b):float():sum():item()))
            io.write(string.format("%.9g\n", tide.matmul(a:float(), b:float()):bfloat16():float():sum():item()))
        ]]
        local function run(env)
            local p = assert(io.popen(env .. " " .. H.sh(TIDE) .. " -e " .. H.sh(code) .. " 2>&1"))
            local out = p:read("a")
            p:close()
            local lines = {}
            for l in out:gmatch("[^\n]+") do lines[#lines + 1] = l end
            return lines, out
        end
        for _, env in ipairs({ "TIDE_LOWP_MATMUL=float32", "DNNL_MAX_CPU_ISA=AVX2" }) do
            local l, out = run(env)
            assert.truthy(l[1] and l[1]:find("^float32 fallback"), out)
            assert.are.equal(l[3], l[2], out)
        end
        local _, out = run("TIDE_LOWP_MATMUL=nonsense")
        assert.truthy(out:find("TIDE_LOWP_MATMUL", 1, true), out)
        assert.truthy(out:find("none (TIDE_LOWP_MATMUL", 1, true), out)
    end)
end)
