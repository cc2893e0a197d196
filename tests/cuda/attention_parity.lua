-- CPU against CUDA for scaled_dot_product_attention (the fused kernels of
-- kernels/cpu/attention.c and kernels/cuda/attention.cu) and a
-- TransformerEncoderLayer training step: outputs and the gradients of
-- q, k, v, with no mask, bool and float masks broadcast over heads,
-- is_causal, dropout (the same counter-based mask on both devices),
-- lengths that leave partial tiles, and head dims past the CUDA tile's
-- shared memory halving.
--
-- float64 on both sides, so the only differences are summation orders:
-- 1e-9 relative to the largest magnitude. A wrong kernel misses that by
-- orders of magnitude.
--
-- Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable;
-- TIDE_ATTENTION_PARITY_DEVICE=cpu runs it CPU against CPU (a check of
-- this script on a machine without a GPU).
local tide = require "tide"
local F = tide.F

local device = os.getenv("TIDE_ATTENTION_PARITY_DEVICE") or "cuda"
if device ~= "cpu" and not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local function max_abs(t) return t:abs():max():item() end

local function close(a, b, tol)
    local scale = math.max(max_abs(a), 1e-30)
    return max_abs(a - b) <= (tol or 1e-9) * scale + 1e-12
end

local function run(q, k, v, opts, dev)
    local leaves = {}
    for i, x in ipairs({q, k, v}) do leaves[i] = x:to(dev):detach():requires_grad_() end
    local o = {is_causal = opts.is_causal, dropout_p = opts.dropout_p}
    if opts.attn_mask then o.attn_mask = opts.attn_mask:to(dev) end
    tide.manual_seed(21)
    local out = F.scaled_dot_product_attention(leaves[1], leaves[2], leaves[3], o)
    local w = tide.randn(out:shape(), {dtype = "float64"}):to(dev)
    ;(out * w):sum():backward()
    return out:cpu(), leaves[1].grad:cpu(), leaves[2].grad:cpu(), leaves[3].grad:cpu()
end

local cases = {
    {"plain (B, L, E)", {3, 37, 8}, {3, 45, 8}, {3, 45, 5}, {}},
    {"4-dim, bool (L, S) mask", {2, 3, 40, 16}, {2, 3, 70, 16}, {2, 3, 70, 16}, {mask = "bool"}},
    {"float (N, 1, L, S) mask", {2, 2, 33, 8}, {2, 2, 50, 8}, {2, 2, 50, 8}, {mask = "float"}},
    {"causal", {2, 2, 100, 8}, {2, 2, 100, 8}, {2, 2, 100, 8}, {is_causal = true}},
    {"dropout 0.3", {2, 2, 40, 8}, {2, 2, 64, 8}, {2, 2, 64, 8}, {dropout_p = 0.3}},
    {"head dim 160 (smaller tiles)", {1, 2, 20, 160}, {1, 2, 30, 160}, {1, 2, 30, 96}, {}},
}

local checked, failed = 0, 0
for _, c in ipairs(cases) do
    local name, qs, ks, vs, o = table.unpack(c)
    tide.manual_seed(5)
    local q = tide.randn(qs, {dtype = "float64"})
    local k = tide.randn(ks, {dtype = "float64"})
    local v = tide.randn(vs, {dtype = "float64"})
    local opts = {is_causal = o.is_causal, dropout_p = o.dropout_p}
    local l, s = qs[#qs - 1], ks[#ks - 1]
    if o.mask == "bool" then
        opts.attn_mask = tide.rand({l, s}):gt(0.3)
    elseif o.mask == "float" then
        opts.attn_mask = tide.randn({qs[1], 1, l, s}, {dtype = "float64"})
    end
    local a = {run(q, k, v, opts, "cpu")}
    local b = {run(q, k, v, opts, device)}
    local ok = true
    for i = 1, 4 do ok = ok and close(a[i], b[i]) end
    checked = checked + 1
    if not ok then
        failed = failed + 1
        print("FAIL " .. name)
    end
end

-- one training step of a TransformerEncoderLayer (float32, fused path)
tide.manual_seed(3)
local layer = tide.nn.TransformerEncoderLayer(32, 4, {dim_feedforward = 64, dropout = 0, batch_first = true})
local x = tide.randn({4, 24, 32})
local function step(dev)
    local m = tide.nn.TransformerEncoderLayer(32, 4, {dim_feedforward = 64, dropout = 0, batch_first = true})
    m:load_state_dict(layer:state_dict())
    m:to(dev)
    local y = m(x:to(dev))
    y:pow(2):mean():backward()
    return y:cpu(), m.self_attn.in_proj_weight.grad:cpu()
end
local y1, g1 = step("cpu")
local y2, g2 = step(device)
checked = checked + 1
if not (close(y1, y2, 1e-4) and close(g1, g2, 1e-3)) then
    failed = failed + 1
    print("FAIL TransformerEncoderLayer step")
end

print(string.format("%d cases, %d failed (%s against cpu)", checked, failed, device))
os.exit(failed == 0 and 0 or 1)
