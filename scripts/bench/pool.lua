-- 2-d pooling, float32, forward and forward + backward, on contiguous
-- (NCHW) and channels-last inputs, tide against PyTorch CPU at the same
-- thread count: max_pool2d 2x2 and 3x3 stride 2 padding 1, and
-- adaptive_avg_pool2d to 1x1, over the shapes of a small CNN's later
-- layers. `tide scripts/bench/pool.lua [threads]`.
-- Goal: a channels-last forward (kernels/cpu/nn_pool_nhwc.c, oneDNN's nhwc
-- average pool) no slower than PyTorch's in the same layout, so that
-- channels-last conv2d outputs pay for no copy and no slow loop. The
-- forward + backward rows end at a leaf: tide's autograd copies a gradient
-- that is not contiguous before making it the leaf's .grad (PyTorch keeps
-- it as it is), which the channels-last rows pay for and a pool inside a
-- network does not.
local tide = require "tide"
local core = require "tide.core"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
print(string.format("pooling float32, %d threads", threads))

local pt = B.baseline("pool_torch.py", {threads})

-- keep these in step with pool_torch.py
local shapes = { { 128, 32, 28, 28 }, { 128, 64, 14, 14 }, { 64, 512, 4, 4 } }
local ops = {
    { "max2", "max_pool2d 2x2", function(t) return core.max_pool2d(t, 2) end },
    { "max3", "max_pool2d 3x3 s2 p1", function(t) return core.max_pool2d(t, 3, { stride = 2, padding = 1 }) end },
    { "gap", "adaptive_avg 1x1", function(t) return core.adaptive_avg_pool2d(t, 1) end },
}
local layouts = { { "nchw", "contiguous" }, { "cl", "channels_last" } }

tide.manual_seed(0)
for _, op in ipairs(ops) do
    for _, s in ipairs(shapes) do
        for _, lay in ipairs(layouts) do
            local x <close> = tide.randn(s)
            local xl <close> = lay[1] == "cl" and x:contiguous { memory_format = "channels_last" } or x:clone()
            local key = string.format("%s_%dx%dx%dx%d_%s", op[1], s[1], s[2], s[3], s[4], lay[1])
            local label = string.format("%s %dx%dx%dx%d %s", op[2], s[1], s[2], s[3], s[4], lay[2])
            -- in and out: the elements of x and of y; forward reads x and
            -- writes y: (in + out) * 4 bytes. The backward reads gy and
            -- writes dx, (out + in) * 4 more; where a max pool finds its
            -- argmax (indices saved, or x read again) is not counted
            local nin = s[1] * s[2] * s[3] * s[4]
            local nout
            do
                local y <close> = op[3](xl)
                local ys = y:shape()
                nout = ys[1] * ys[2] * ys[3] * ys[4]
            end
            local fwd = B.time(function()
                local _ <close> = op[3](xl)
            end, { warmup = 3, repeats = 7, inner = 5 })
            B.row(label .. " fwd", fwd, pt:get(key .. "_fwd"), "ms", false, lay[1] == "cl" and 1 or nil,
                  { bytes = (nin + nout) * 4 })
            -- a leaf in the layout (clone would give a contiguous tensor)
            local xg <close> = (lay[1] == "cl" and x:contiguous { memory_format = "channels_last" } or x:clone())
                :detach()
            xg.requires_grad = true
            local y0 <close> = op[3](xl)
            -- the upstream gradient in the output's layout, as a later layer would give it
            local gy <close> = tide.randn(y0:shape())
            local gyl <close> = lay[1] == "cl" and gy:contiguous { memory_format = "channels_last" } or gy:clone()
            local fb = B.time(function()
                xg.grad = nil
                local y <close> = op[3](xg)
                y:backward(gyl)
            end, { warmup = 3, repeats = 7, inner = 3 })
            B.row(label .. " fwd+bwd", fb, pt:get(key .. "_fb"), "ms", false, nil, { bytes = 2 * (nin + nout) * 4 })
        end
    end
end
