-- CPU against CUDA for the conv family beyond conv2d, padding and
-- resampling: conv1d, conv3d, conv_transpose1d/2d/3d (cuDNN against
-- oneDNN and the direct loops), every F.pad mode, every interpolate mode,
-- pixel shuffle; outputs and the gradients of (y * g):sum() for input,
-- weight and bias, in float64 (1e-9 relative: only summation orders
-- differ) and float32 (1e-4). pad and interpolate must also give the
-- same bits on two CUDA runs (their backward is deterministic).
--
-- Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable;
-- TIDE_CONVFAM_PARITY_DEVICE=cpu runs it CPU against CPU (a check of this
-- script on a machine without a GPU).
local tide = require "tide"
local F = tide.F

local device = os.getenv("TIDE_CONVFAM_PARITY_DEVICE") or "cuda"
if device ~= "cpu" and not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local function max_abs(t) return t:abs():max():item() end

local function close(a, b, rtol)
    local scale = math.max(max_abs(a), 1e-30)
    return max_abs(a - b) <= rtol * scale + 1e-12
end

-- y = fn(inputs...) on dev; y and the gradients, on the CPU
local function run(fn, inputs, g, dev)
    local leaves = {}
    for i, x in ipairs(inputs) do leaves[i] = x:to(dev):detach():requires_grad_() end
    local y = fn(table.unpack(leaves))
    ;(y * g:to(dev)):sum():backward()
    local grads = {}
    for i, l in ipairs(leaves) do grads[i] = l.grad:cpu() end
    return y:cpu(), grads
end

local function conv(name, shapes, opts)
    return function(x, w, b)
        local o = {}
        for k, v in pairs(opts) do o[k] = v end
        o.bias = b
        return F[name](x, w, o)
    end, shapes
end

local cases = {
    {"conv1d", conv("conv1d", {{3, 6, 20}, {8, 3, 4}, {8}}, {stride = 2, padding = 1, groups = 2, dilation = 2})},
    {"conv1d same", conv("conv1d", {{2, 4, 11}, {5, 4, 4}, {5}}, {padding = "same"})},
    {"conv3d", conv("conv3d", {{2, 4, 6, 7, 5}, {6, 2, 3, 2, 3}, {6}}, {padding = {1, 0, 1}, groups = 2})},
    {"conv3d strided", conv("conv3d", {{1, 3, 9, 8, 7}, {4, 3, 3, 3, 3}, {4}}, {stride = 2, dilation = {1, 2, 1}})},
    {"conv_transpose1d", conv("conv_transpose1d", {{2, 4, 9}, {4, 3, 3}, {6}},
        {stride = 3, padding = 1, output_padding = 2, groups = 2})},
    {"conv_transpose2d", conv("conv_transpose2d", {{2, 3, 5, 6}, {3, 4, 3, 2}, {4}},
        {stride = {2, 1}, padding = {1, 0}, output_padding = {1, 0}, dilation = {1, 2}})},
    {"conv_transpose3d", conv("conv_transpose3d", {{1, 2, 3, 4, 3}, {2, 3, 2, 2, 2}, {3}}, {stride = 2})},
    {"pad reflect", function(x) return F.pad(x, {2, 1, 1, 3}, {mode = "reflect"}) end, {{2, 3, 6, 7}}},
    {"pad replicate 3d", function(x) return F.pad(x, {1, 2, 0, 1, 2, 1}, {mode = "replicate"}) end, {{1, 2, 3, 4, 5}}},
    {"pad circular", function(x) return F.pad(x, {2, 3}, {mode = "circular"}) end, {{2, 3, 5}}},
    {"pad constant", function(x) return F.pad(x, {-1, 2, 3, -2}, {value = 1.5}) end, {{2, 3, 6, 7}}},
    {"nearest", function(x) return F.interpolate(x, {scale_factor = 1.7}) end, {{2, 3, 5, 6}}},
    {"linear", function(x) return F.interpolate(x, {size = 13, mode = "linear"}) end, {{2, 3, 6}}},
    {"bilinear align_corners", function(x)
        return F.interpolate(x, {size = {9, 4}, mode = "bilinear", align_corners = true})
    end, {{2, 3, 5, 6}}},
    {"bicubic", function(x) return F.interpolate(x, {scale_factor = 2.5, mode = "bicubic"}) end, {{1, 2, 5, 4}}},
    {"trilinear", function(x) return F.interpolate(x, {scale_factor = 2, mode = "trilinear"}) end, {{1, 2, 3, 4, 3}}},
    {"pixel_shuffle", function(x) return F.pixel_shuffle(x, 2) end, {{2, 8, 3, 4}}},
}

local checked, failed = 0, 0
for _, c in ipairs(cases) do
    for _, dt in ipairs {"float64", "float32"} do
        tide.manual_seed(3)
        local inputs = {}
        for i, s in ipairs(c[3]) do inputs[i] = tide.randn(s, {dtype = dt}) end
        local y0 = c[2](table.unpack(inputs))
        local g = tide.randn(y0:shape(), {dtype = dt})
        local rtol = dt == "float64" and 1e-9 or 1e-4
        local y1, g1 = run(c[2], inputs, g, "cpu")
        local y2, g2 = run(c[2], inputs, g, device)
        local ok = close(y1, y2, rtol)
        for i = 1, #g1 do ok = ok and close(g1[i], g2[i], rtol) end
        if not c[1]:find("^conv") then
            local y3, g3 = run(c[2], inputs, g, device)
            ok = ok and max_abs(y3 - y2) == 0
            for i = 1, #g2 do ok = ok and max_abs(g3[i] - g2[i]) == 0 end
        end
        checked = checked + 1
        if not ok then
            failed = failed + 1
            print(string.format("FAIL %s %s", c[1], dt))
        end
    end
end
print(string.format("%d cases, %d failed", checked, failed))
os.exit(failed == 0 and 0 or 1)
