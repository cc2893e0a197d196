-- batch_norm float32 in training mode (weight, bias, running statistics)
-- on resnet18's shapes, contiguous and channels-last input, tide against
-- PyTorch CPU at the same thread count: forward, and forward + backward
-- (y:backward(gy) with gy in y's layout; grads of input, weight, bias).
-- `tide scripts/bench/batchnorm.lua [threads]`.
-- Goal: channels-last as fast as contiguous, and neither slower than
-- PyTorch 1.13 (ratio <= 1).
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local SHAPES = {{64, 64, 32, 32}, {64, 128, 16, 16}, {64, 256, 8, 8}, {64, 512, 4, 4}}

local threads = B.threads(arg)
print(string.format("batch_norm float32, training, %d threads", threads))

local pt = B.baseline("batchnorm_torch.py", {threads})

tide.manual_seed(0)
for _, s in ipairs(SHAPES) do
    local c = s[2]
    for _, layout in ipairs {"contiguous", "cl"} do
        local function as_layout(t)
            if layout == "cl" then return t:contiguous {memory_format = "channels_last"} end
            return t
        end
        local x <close> = as_layout(tide.randn(s))
        assert(layout ~= "cl" or x:is_contiguous {memory_format = "channels_last"})
        local gy <close> = as_layout(tide.randn(s))
        local rm <close> = tide.zeros {c}
        local rv <close> = tide.ones {c}
        local w <close> = (tide.rand {c} + 0.5):requires_grad_(true)
        local b <close> = tide.randn({c}):requires_grad_(true)
        local key = string.format("%dx%dx%dx%d_%s", s[1], s[2], s[3], s[4], layout)
        local opts = {weight = w, bias = b, training = true, momentum = 0.1, eps = 1e-5}
        local fwd = tide.no_grad(function()
            return B.time(function()
                local _ <close> = tide.F.batch_norm(x, rm, rv, opts)
            end, {warmup = 3, repeats = 7, inner = 5})
        end)
        -- forward reads x and writes y: 2 * numel * 4 bytes (the per-channel
        -- weight, bias and statistics, a few KB, are left out); a kernel
        -- that reads x once for the statistics and once to normalise does 3
        local numel = s[1] * s[2] * s[3] * s[4]
        B.row("bn fwd " .. key, fwd, pt:get("fwd_" .. key), "ms", false, 1, {bytes = 2 * numel * 4})
        x.requires_grad = true -- a leaf in its layout (clone would be contiguous)
        local fb = B.time(function()
            x.grad, w.grad, b.grad = nil, nil, nil
            local y <close> = tide.F.batch_norm(x, rm, rv, opts)
            y:backward(gy)
        end, {warmup = 2, repeats = 7, inner = 3})
        -- plus the backward, which reads x and gy and writes dx: 5 * numel * 4 bytes
        B.row("bn fwd+bwd " .. key, fb, pt:get("fb_" .. key), "ms", false, 1, {bytes = 5 * numel * 4})
    end
end
