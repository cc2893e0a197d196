-- Out-of-place float32 add and mul at 1M and 64M elements, tide against
-- PyTorch CPU at the same thread count: time per op and the ratio
-- tide/torch. `tide scripts/bench/elementwise.lua [threads]`.
-- Goal: at most 0.75x PyTorch's time.
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
local sizes = {1 << 20, 64 << 20}
print(string.format("elementwise float32, out of place, %d threads", threads))

local pt = B.baseline("elementwise_torch.py", {threads, table.concat(sizes, ",")})

local function label(n) return n >= (1 << 20) and string.format("%dM", n >> 20) or tostring(n) end

tide.manual_seed(0)
for _, n in ipairs(sizes) do
    local a <close> = tide.randn({n})
    local b <close> = tide.randn({n})
    local inner = n <= (1 << 20) and 100 or 3
    local add = B.time(function()
        local _ <close> = a + b
    end, {warmup = 3, repeats = 7, inner = inner})
    local mul = B.time(function()
        local _ <close> = a * b
    end, {warmup = 3, repeats = 7, inner = inner})
    -- a + b of n float32: read 2n, write n = 3n * 4 bytes (n FLOP, which never binds)
    local work = {bytes = 3 * n * 4}
    B.row("add " .. label(n) .. " (time/op)", add, pt:get("add_" .. n), "ms", false, 0.75, work)
    B.row("mul " .. label(n) .. " (time/op)", mul, pt:get("mul_" .. n), "ms", false, 0.75, work)
end
