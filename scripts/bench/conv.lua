-- conv2d float32 forward, batch 128, 32 -> 64 channels, 14x14, 3x3,
-- padding 1, tide (oneDNN) against PyTorch CPU at the same thread count;
-- then forward + backward (grads of input, weight and bias).
-- `tide scripts/bench/conv.lua [threads]`.
-- Goals: the forward at 2x PyTorch's throughput (set against PyTorch
-- started with glibc's malloc, which made its conv2d 26 GFLOP/s here;
-- with tcmalloc both run oneDNN), forward + backward <= 0.8x its time.
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
local n, c, o, hw, k = 128, 32, 64, 14, 3
-- forward: 2 * N * K * C * R * S * P * Q FLOP (N n, K o, C c, R = S = k,
-- P = Q = hw: padding 1 keeps 14x14); the bias add's N*K*P*Q never binds
local flops = 2 * n * o * hw * hw * c * k * k
print(string.format("conv2d float32 (%d,%d,%d,%d) * (%d,%d,%d,%d), padding 1, %d threads, %.3f GFLOP per forward",
                    n, c, hw, hw, o, c, k, k, threads, flops / 1e9))

local pt = B.baseline("conv_torch.py", {threads, n, c, o, hw, k})

tide.manual_seed(0)
local x <close> = tide.randn({n, c, hw, hw})
local w <close> = tide.randn({o, c, k, k}) * 0.1
local b <close> = tide.randn({o})
local fwd = B.time(function()
    local _ <close> = tide.conv2d(x, w, {bias = b, padding = 1})
end, {warmup = 3, repeats = 7, inner = 5})
B.row("conv2d forward", flops / fwd / 1e9, pt:get("forward", function(s) return flops / s / 1e9 end),
      "GFLOP/s", true, 2, {flop = flops})
B.row("conv2d forward (time)", fwd, pt:get("forward"), "ms", false, nil, {flop = flops})

local xg <close> = x:clone()
xg.requires_grad = true
local wg <close> = w:clone()
wg.requires_grad = true
local bg <close> = b:clone()
bg.requires_grad = true
local gy <close> = tide.randn({n, o, hw, hw})
local fb = B.time(function()
    xg.grad, wg.grad, bg.grad = nil, nil, nil
    local y <close> = tide.conv2d(xg, wg, {bias = bg, padding = 1})
    local l <close> = (y * gy):sum()
    l:backward()
end, {warmup = 2, repeats = 9, inner = 2})
-- forward + the backward of data and of weight (each as many FLOP as the
-- forward): 3x the forward; (y * gy):sum() and the bias gradient, a few
-- MFLOP, are left out
B.row("conv2d forward+backward", fb, pt:get("forward_backward"), "ms", false, 0.8, {flop = 3 * flops})
-- deterministic mode: the weight and bias gradients from tide's
-- fixed-order kernel (im2col and sequential sgemms over 16 batch chunks)
-- in place of oneDNN's backward-weights primitive; what it costs, no goal
tide.use_deterministic(true)
local fbd = B.time(function()
    xg.grad, wg.grad, bg.grad = nil, nil, nil
    local y <close> = tide.conv2d(xg, wg, {bias = bg, padding = 1})
    local l <close> = (y * gy):sum()
    l:backward()
end, {warmup = 2, repeats = 9, inner = 2})
tide.use_deterministic(false)
B.row("conv2d forward+backward, deterministic", fbd, pt:get("forward_backward"), "ms", false, nil,
      {flop = 3 * flops})
