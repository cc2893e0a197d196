-- LSTM float32, sequence 128, batch 64, input 512, hidden 512, 2 layers:
-- forward, and forward + backward (grads of the input and every
-- parameter), tide against PyTorch CPU at the same thread count.
-- `tide scripts/bench/rnn.lua [threads]`.
-- Goal: forward + backward <= 0.8x PyTorch's time (tcmalloc preloaded).
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
local T, n, I, H, L = 128, 64, 512, 512, 2
-- forward: per layer and step the gates' (n, I + H) x (I + H, 4H) GEMM,
-- 2 n (I + H) 4H FLOP (layer 2's input is H wide; I = H here); the
-- pointwise gate work, O(n H) a step, is left out. Backward: twice that.
local flops = 2 * n * (I + H) * 4 * H * T * L
print(string.format("LSTM float32 seq %d, batch %d, %d -> %d, %d layers, %d threads, %.1f GFLOP per forward",
                    T, n, I, H, L, threads, flops / 1e9))

local pt = B.baseline("rnn_torch.py", {threads, T, n, I, H, L})

tide.manual_seed(0)
local m = tide.nn.LSTM(I, H, {num_layers = L})
local x <close> = tide.randn({T, n, I})
local fwd = B.time(function()
    tide.no_grad(function() m(x) end)
end, {warmup = 1, repeats = 3, inner = 1})
B.row("lstm forward", fwd, pt:get("forward"), "ms", false, nil, {flop = flops})

local xg <close> = x:clone()
xg.requires_grad = true
local gy <close> = tide.randn({T, n, H})
local fb = B.time(function()
    xg.grad = nil
    m:zero_grad()
    local y = m(xg)
    local l <close> = (y * gy):sum()
    l:backward()
end, {warmup = 1, repeats = 3, inner = 1})
B.row("lstm forward+backward", fb, pt:get("forward_backward"), "ms", false, 0.8, {flop = 3 * flops})
