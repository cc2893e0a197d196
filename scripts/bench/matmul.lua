-- float32 matmul throughput, tide (oneDNN) against PyTorch CPU at the same
-- thread count: `tide scripts/bench/matmul.lua [threads]`.
-- Goal: at least 1.8x PyTorch's GFLOP/s at 1024 and 4096. The
-- deterministic rows (tide.use_deterministic: fixed 256x256 tiles, each a
-- sequential sgemm) measure what that mode costs; they have no goal.
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
local sizes = {1024, 4096}
print(string.format("matmul float32, %d threads", threads))

local pt = B.baseline("matmul_torch.py", {threads, table.concat(sizes, ",")})

tide.manual_seed(0)
for _, n in ipairs(sizes) do
    local a <close> = tide.randn({n, n})
    local b <close> = tide.randn({n, n})
    local inner = n <= 1024 and 10 or 1
    local s = B.time(function()
        local _ <close> = a:matmul(b)
    end, {warmup = 2, repeats = 5, inner = inner})
    -- (n,n) x (n,n): 2 * n^3 FLOP (its 3 * n^2 * 4 bytes never bind)
    local flop = 2 * n ^ 3
    B.row(string.format("matmul %dx%d GFLOP/s", n, n), flop / s / 1e9,
          pt:get("gflops_" .. n), "GFLOP/s", true, 1.8, {flop = flop})
    tide.use_deterministic(true)
    local sd = B.time(function()
        local _ <close> = a:matmul(b)
    end, {warmup = 2, repeats = 5, inner = inner})
    tide.use_deterministic(false)
    B.row(string.format("matmul %dx%d deterministic GFLOP/s", n, n), flop / sd / 1e9,
          pt:get("gflops_" .. n), "GFLOP/s", true, nil, {flop = flop})
end
