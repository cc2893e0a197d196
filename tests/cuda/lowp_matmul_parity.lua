-- bfloat16 and float16 matrix products (matmul, mm, bmm with a broadcast
-- batch, transposed operands, addmm, linear) and their gradients on CUDA
-- (cublasGemmStridedBatchedEx, CUBLAS_COMPUTE_32F) against the CPU
-- (oneDNN or the float32 fallback, kernels/cpu/gemm_lowp.c).
--
-- Both sides sum the products in float32 and round the result once, so
-- they differ by the summation order and, where that moves a value across
-- a rounding boundary, by one unit in the last place of the dtype: each
-- element must agree within 2 u (|A| |B|)_ij (u 2^-8 for bfloat16, 2^-11
-- for float16), computed on the CPU in float32. Gradients go through the
-- same products, with the same bound per rounding.
--
-- Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable;
-- TIDE_LOWP_MATMUL_PARITY_DEVICE=cpu runs it CPU against CPU (a check of
-- this script on a machine without a GPU).
local tide = require "tide"
local F = tide.F

local device = os.getenv("TIDE_LOWP_MATMUL_PARITY_DEVICE") or "cuda"
if device ~= "cpu" and not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local U = {bfloat16 = 2 ^ -8, float16 = 2 ^ -11}

-- each element of got (dt, any device) within r u mag of want (dt, CPU)
local function check(label, got, want, mag, dt, r)
    assert(got:dtype() == dt, label .. ": dtype " .. got:dtype())
    local diff = (got:cpu():float() - want:float()):abs()
    local over = (diff - mag * (r * U[dt]) - 1e-30):max():item()
    if over > 0 then
        error(string.format("%s (%s): off by %.3g more than the bound", label, dt, over), 2)
    end
end

-- fn(inputs) on the CPU and on dev in dt; outputs and gradients compared.
-- mags(abs inputs, abs g) -> {output magnitude, gradient magnitudes...}
local function case(label, dt, shapes, fn, mags, r)
    tide.manual_seed(5)
    local xs = {}
    for i, s in ipairs(shapes) do xs[i] = tide.randn(s):to(dt) end
    local function run(dev)
        local leaves = {}
        for i, x in ipairs(xs) do leaves[i] = x:to(dev):detach():requires_grad_() end
        local y = fn(leaves)
        tide.manual_seed(9)
        local g = tide.randn(y:shape()):to(dt)
        y:backward(g:to(dev))
        local grads = {}
        for i, l in ipairs(leaves) do grads[i] = l.grad end
        return y:detach(), grads, g
    end
    local yc, gc, g = run("cpu")
    local yd, gd = run(device)
    local ax = {}
    for i, x in ipairs(xs) do ax[i] = x:float():abs() end
    local m = mags(ax, g:float():abs())
    check(label .. " output", yd, yc, m[1], dt, r)
    for i = 1, #xs do check(label .. " grad " .. i, gd[i], gc[i], m[i + 1], dt, r) end
end

local n = 0
for _, dt in ipairs({"bfloat16", "float16"}) do
    case("mm", dt, {{33, 70}, {70, 17}}, function(v) return tide.mm(v[1], v[2]) end,
        function(a, g) return {tide.mm(a[1], a[2]), tide.mm(g, a[2]:t()), tide.mm(a[1]:t(), g)} end, 2)
    case("mm transposed", dt, {{70, 33}, {17, 70}}, function(v) return tide.mm(v[1]:t(), v[2]:t()) end,
        function(a, g)
            return {tide.mm(a[1]:t(), a[2]:t()), tide.mm(g, a[2]):t(), tide.mm(a[1], g):t()}
        end, 2)
    case("bmm", dt, {{4, 9, 30}, {4, 30, 5}}, function(v) return tide.bmm(v[1], v[2]) end,
        function(a, g)
            return {tide.bmm(a[1], a[2]), tide.bmm(g, a[2]:transpose(1, 2)),
                    tide.bmm(a[1]:transpose(1, 2), g)}
        end, 2)
    case("matmul broadcast", dt, {{2, 1, 6, 20}, {3, 20, 4}},
        function(v) return tide.matmul(v[1], v[2]) end,
        function(a, g)
            return {tide.matmul(a[1], a[2]), tide.matmul(g, a[2]:transpose(1, 2)):sum(1, true),
                    tide.matmul(a[1]:transpose(2, 3), g):sum(0)}
        end, 3)
    case("addmm", dt, {{6, 5}, {6, 40}, {40, 5}},
        function(v) return tide.addmm(v[1], v[2], v[3], {beta = 0.5, alpha = 2}) end,
        function(a, g)
            return {tide.mm(a[2], a[3]) * 2 + a[1] * 0.5, g * 0.5, tide.mm(g, a[3]:t()) * 2,
                    tide.mm(a[2]:t(), g) * 2}
        end, 4)
    case("linear", dt, {{3, 7, 24}, {10, 24}, {10}},
        function(v) return F.linear(v[1], v[2], {bias = v[3]}) end,
        function(a, g)
            return {tide.matmul(a[1], a[2]:t()) + a[3], tide.matmul(g, a[2]),
                    tide.matmul(g:reshape({21, 10}):t(), a[1]:reshape({21, 24})), g:sum(0):sum(0)}
        end, 3)
    n = n + 6
end
local info = tide.backend_info(device)
assert(info.matmul.bfloat16 and info.matmul.float16, "backend_info names no path")
print(string.format("ok: %d low-precision product cases, %s against the cpu (%s; %s)", n, device,
    info.matmul.bfloat16, info.matmul.float16))
