-- softmax over the last dim of a (8192, 1000) float32 tensor, tide against
-- PyTorch CPU at the same thread count. `tide scripts/bench/softmax.lua [threads]`.
-- Goal: at most 0.7x PyTorch's time.
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
local rows, cols = 8192, 1000
print(string.format("softmax float32 (%d, %d), dim 1, %d threads", rows, cols, threads))

local pt = B.baseline("softmax_torch.py", {threads, rows, cols})

tide.manual_seed(0)
local x <close> = tide.randn({rows, cols})
local s = B.time(function()
    local _ <close> = x:softmax(1)
end, {warmup = 3, repeats = 7, inner = 10})
-- read x, write y: 2 * rows * cols * 4 bytes (the max, the exp and the sum of
-- each row are compute that a one-read pass hides under the memory traffic)
B.row(string.format("softmax %dx%d (time/op)", rows, cols), s, pt:get("softmax"), "ms",
      false, 0.7, {bytes = 2 * rows * cols * 4})
