-- CPU against CUDA for the recurrent layers: RNN (tanh, relu), LSTM (with
-- and without a projection) and GRU, 2 layers, bidirectional, batch-first
-- and packed with unsorted lengths, initial states given and not; the
-- outputs, h_n, c_n and the gradient of the input, the initial states and
-- every parameter.
--
-- Each side runs the implementation TIDE_RNN_IMPL chooses (docs/rnn.md):
-- by default cuDNN's RNN API on CUDA (where the loaded cuDNN has it) and,
-- on the CPU, oneDNN's primitives for float32 and tide's loop for float64
-- and packed input. ctest runs this script twice: cuda.rnn_parity as it
-- is, cuda.rnn_parity_loop with TIDE_RNN_IMPL=loop (tide's loop on both
-- sides).
--
-- float64 on both sides, so the only differences are summation orders
-- (cuBLAS against the CPU's gemm): 1e-9 relative to the largest magnitude.
-- A wrong kernel misses that by orders of magnitude. float32 once more, at
-- 1e-4, for the float kernels.
--
-- Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable;
-- TIDE_RNN_PARITY_DEVICE=cpu runs it CPU against CPU (a check of this
-- script on a machine without a GPU).
local tide = require "tide"
local nn = tide.nn
local R = tide.nn.utils.rnn

local device = os.getenv("TIDE_RNN_PARITY_DEVICE") or "cuda"
if device ~= "cpu" and not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local function max_abs(t) return t:abs():max():item() end

local cases = {
    {"RNN", {num_layers = 2, bidirectional = true}},
    {"RNN", {nonlinearity = "relu", batch_first = true}},
    {"LSTM", {num_layers = 2, bidirectional = true, batch_first = true}},
    {"LSTM", {proj_size = 3, num_layers = 2, bidirectional = true}},
    {"GRU", {num_layers = 2, bidirectional = true}},
    {"LSTM", {num_layers = 2, bidirectional = true}, packed = true},
    {"GRU", {bidirectional = true}, packed = true},
    {"LSTM", {proj_size = 2, bidirectional = true}, packed = true, hx = true},
    {"LSTM", {num_layers = 2, bidirectional = true}, hx = true},
    {"RNN", {num_layers = 2, bidirectional = true}, packed = true, hx = true},
    {"GRU", {num_layers = 2, bidirectional = true, batch_first = true}, packed = true, hx = true},
    {"RNNCell", {}}, {"LSTMCell", {}}, {"GRUCell", {}},
}

-- outputs and gradients of one case on dev, all brought back to the CPU
local function run(c, dtype, dev, seed)
    tide.manual_seed(seed)
    local opts = {dtype = dtype}
    for k, v in pairs(c[2]) do opts[k] = v end
    local m = nn[c[1]](5, 6, opts)
    local cell = c[1]:find("Cell") ~= nil
    local bf = opts.batch_first
    local x = tide.randn(cell and {4, 5} or (bf and {4, 7, 5} or {7, 4, 5}), {dtype = dtype})
    m:to(dev)
    x = x:to(dev):detach():requires_grad_()
    local res, h0, c0
    if cell then
        local h, cc = m(x)
        res = {h, cc}
    else
        local inp = c.packed and R.pack_padded_sequence(x, {3, 7, 1, 5}, {batch_first = bf, enforce_sorted = false})
            or x
        local hx
        if c.hx then
            local L, D = opts.num_layers or 1, opts.bidirectional and 2 or 1
            local P = (opts.proj_size or 0) > 0 and opts.proj_size or 6
            h0 = tide.randn({L * D, 4, P}, {dtype = dtype}):to(dev):detach():requires_grad_()
            hx = h0
            if c[1] == "LSTM" then
                c0 = tide.randn({L * D, 4, 6}, {dtype = dtype}):to(dev):detach():requires_grad_()
                hx = {h0, c0}
            end
        end
        local out, hn = m(inp, hx)
        if c.packed then out = R.pad_packed_sequence(out, {batch_first = bf}) end
        res = {out}
        if type(hn) == "table" then res[2], res[3] = hn[1], hn[2] else res[2] = hn end
    end
    local s
    for i, r in ipairs(res) do
        local term = (r * tide.arange(0, r:numel(), 1, {dtype = dtype}):to(dev):view(r:shape()):sin()):sum()
        s = s and s + term or term
        res[i] = r:cpu()
    end
    s:backward()
    res[#res + 1] = x.grad:cpu()
    if h0 then res[#res + 1] = h0.grad:cpu() end
    if c0 then res[#res + 1] = c0.grad:cpu() end
    for _, p in m:named_parameters() do res[#res + 1] = p.grad:cpu() end
    return res
end

local checked, failed = 0, 0
for i, c in ipairs(cases) do
    for _, dtype in ipairs({"float64", "float32"}) do
        local tol = dtype == "float64" and 1e-9 or 1e-4
        local a, b = run(c, dtype, "cpu", i), run(c, dtype, device, i)
        local ok = #a == #b
        for j = 1, #a do
            local scale = math.max(max_abs(a[j]), 1e-30)
            if not ok or max_abs(a[j] - b[j]) > tol * scale + 1e-12 then
                ok = false
                print(string.format("FAIL %s %s: result %d differs by %g (scale %g)", c[1], dtype, j,
                                    max_abs(a[j] - b[j]), scale))
            end
        end
        checked = checked + 1
        if not ok then failed = failed + 1 end
    end
end
print(string.format("rnn parity (TIDE_RNN_IMPL=%s): %d cases checked on %s, %d failed",
                    os.getenv("TIDE_RNN_IMPL") or "auto", checked, device, failed))
os.exit(failed == 0 and 0 or 1)
