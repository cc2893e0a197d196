-- float32 matmul throughput, tide (oneDNN) against PyTorch CPU at the same
-- thread count: `tide scripts/bench/matmul.lua [threads]`.
-- Goal: at least 1.8x PyTorch's GFLOP/s at 1024 and 4096.
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
local sizes = {1024, 4096}
print(string.format("matmul float32, %d threads", threads))

local torch, why = B.torch("matmul_torch.py", {threads, table.concat(sizes, ",")})
if not torch then print("note: " .. why .. "; tide's numbers only") end

tide.manual_seed(0)
for _, n in ipairs(sizes) do
    local a <close> = tide.randn({n, n})
    local b <close> = tide.randn({n, n})
    local inner = n <= 1024 and 10 or 1
    local s = B.time(function()
        local _ <close> = a:matmul(b)
    end, {warmup = 2, repeats = 5, inner = inner})
    local gflops = 2 * n ^ 3 / s / 1e9
    B.row(string.format("matmul %dx%d GFLOP/s", n, n), gflops,
          torch and torch["gflops_" .. n], "GFLOP/s", true, 1.8)
end
