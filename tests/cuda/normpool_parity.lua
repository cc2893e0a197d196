-- CPU against CUDA for group norm (its own kernels), instance norm,
-- BatchNorm3d with momentum = false, the adaptive max pool and max_pool2d's
-- indices, divisor_override, the 1-d pools, max unpooling and
-- embedding_bag: outputs, indices, running statistics and every gradient.
--
-- float64 on both sides, so the only differences are summation orders:
-- 1e-9 relative to the largest magnitude; indices must be equal. A second
-- run on the device must give the same bits (no atomics in any of them).
--
-- Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable;
-- TIDE_NORMPOOL_PARITY_DEVICE=cpu runs it CPU against CPU (a check of this
-- script on a machine without a GPU).
local tide = require "tide"
local F, nn = tide.F, tide.nn

local device = os.getenv("TIDE_NORMPOOL_PARITY_DEVICE") or "cuda"
if device ~= "cpu" and not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local function max_abs(t) return t:abs():max():item() end

local function close(a, b)
    if a:dtype() == "int64" then return max_abs(a - b) == 0 end
    local scale = math.max(max_abs(a), 1e-30)
    return max_abs(a - b) <= 1e-9 * scale + 1e-12
end

local function same(a, b) return a:numel() == 0 or max_abs(a - b) == 0 end

-- inputs: CPU tensors (float64 ones become leaves on dev); fn(dev, ...) ->
-- a list of results, the first of them differentiable
local function run(fn, inputs, dev)
    local args, leaves = {}, {}
    for i, x in ipairs(inputs) do
        local y = x:to(dev)
        if x:dtype() == "float64" then
            y = y:detach():requires_grad_()
            leaves[#leaves + 1] = y
        end
        args[i] = y
    end
    local outs = fn(dev, table.unpack(args))
    tide.manual_seed(99)
    local w = tide.randn(outs[1]:shape(), {dtype = "float64"}):to(dev)
    ;(outs[1] * w):sum():backward()
    local got = {}
    for _, o in ipairs(outs) do got[#got + 1] = o:detach():cpu() end
    for _, l in ipairs(leaves) do
        got[#got + 1] = l.grad and l.grad:cpu() or tide.zeros(l:shape(), {dtype = "float64"})
    end
    return got
end

local function d(shape) return tide.randn(shape, {dtype = "float64"}) end
local function long(t) return tide.tensor(t, "int64") end

local cases = {
    {"group_norm affine", function(_, x, w, b) return {F.group_norm(x, 3, {weight = w, bias = b})} end,
     {d{4, 6, 5, 7}, d{6}, d{6}}},
    {"group_norm large rows", function(_, x) return {F.group_norm(x, 2, {eps = 1e-3})} end, {d{2, 8, 40, 33}}},
    {"group_norm (N, C)", function(_, x, w) return {F.group_norm(x, 4, {weight = w})} end, {d{5, 8}, d{8}}},
    {"instance_norm running stats", function(dev, x, w)
        local rm, rv = tide.zeros({3}, {dtype = "float64"}):to(dev), tide.ones({3}, {dtype = "float64"}):to(dev)
        local y = F.instance_norm(x, {running_mean = rm, running_var = rv, weight = w, momentum = 0.3})
        return {y, rm, rv}
    end, {d{2, 3, 6, 6}, d{3}}},
    {"BatchNorm3d momentum false", function(dev, x)
        local m = nn.BatchNorm3d(4, {momentum = false, dtype = "float64"}):to(dev)
        m(x * 2 + 1)
        local y = m(x)
        return {y, m.running_mean, m.running_var}
    end, {d{2, 4, 3, 2, 5}}},
    {"adaptive_max_pool2d", function(_, x)
        local y, i = F.adaptive_max_pool2d(x, {3, 4}, {return_indices = true})
        return {y, i}
    end, {d{2, 3, 7, 9}}},
    {"adaptive_max_pool2d larger output", function(_, x)
        local y, i = F.adaptive_max_pool2d(x, {6, false}, {return_indices = true})
        return {y, i}
    end, {d{2, 2, 4, 5}}},
    {"max_pool2d indices", function(_, x)
        local y, i = F.max_pool2d(x, 3, {stride = 2, padding = 1, return_indices = true})
        return {y, i}
    end, {d{2, 3, 9, 8}}},
    {"avg_pool2d divisor_override", function(_, x)
        return {F.avg_pool2d(x, 3, {stride = 2, padding = 1, divisor_override = 5})}
    end, {d{2, 3, 9, 8}}},
    {"1-d pools", function(_, x)
        local a, i = F.max_pool1d(x, 3, {stride = 2, padding = 1, return_indices = true})
        return {a + F.avg_pool1d(x, 3, {stride = 2, padding = 1}) + F.adaptive_avg_pool1d(x, 5), i}
    end, {d{2, 3, 10}}},
    {"adaptive_max_pool1d", function(_, x)
        local y, i = F.adaptive_max_pool1d(x, 4, {return_indices = true})
        return {y, i}
    end, {d{2, 3, 11}}},
    {"max_unpool2d", function(dev, x)
        local _, i = F.max_pool2d(tide.randn({2, 3, 6, 8}, {dtype = "float64"}):to(dev), 2, {return_indices = true})
        return {F.max_unpool2d(x, i, 2)}
    end, {d{2, 3, 3, 4}}},
    {"embedding_bag sum", function(dev, w, p)
        return {F.embedding_bag(long{1, 2, 4, 5, 4, 3, 2, 9}:to(dev), w,
                                {offsets = long{0, 3, 3, 5}:to(dev), mode = "sum", per_sample_weights = p})}
    end, {d{10, 3}, d{8}}},
    {"embedding_bag mean padding_idx", function(dev, w)
        return {F.embedding_bag(long{{1, 2, 4}, {4, 4, 9}}:to(dev), w, {padding_idx = 4})}
    end, {d{10, 3}}},
    {"embedding_bag max", function(dev, w)
        return {F.embedding_bag(long{1, 2, 4, 5, 4, 3, 2, 9}:to(dev), w,
                                {offsets = long{0, 3, 3, 5}:to(dev), mode = "max"})}
    end, {d{10, 3}}},
}

local checked, failed = 0, 0
for _, c in ipairs(cases) do
    local name, fn, inputs = c[1], c[2], c[3]
    tide.manual_seed(7)
    local ref = run(fn, inputs, "cpu")
    tide.manual_seed(7)
    local got = run(fn, inputs, device)
    tide.manual_seed(7)
    local again = run(fn, inputs, device)
    checked = checked + 1
    local ok = #ref == #got
    for i = 1, #ref do ok = ok and close(ref[i], got[i]) and same(got[i], again[i]) end
    if not ok then
        failed = failed + 1
        print("FAIL " .. name)
    end
end
print(string.format("%d cases, %d failed (%s against cpu)", checked, failed, device))
os.exit(failed == 0 and 0 or 1)
