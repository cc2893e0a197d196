-- bfloat16 and float16 on the CPU (docs/precision.md) over 16M elements,
-- tide against PyTorch 1.13 CPU at the same thread count: conversion from
-- and to float32 both ways for both dtypes, and the generic float32 paths
-- of an elementwise op (bfloat16 add: chunks converted to float32, the
-- float32 loop, rounded back) and of a reduction (bfloat16 sum, accumulated
-- in float32). Time per op, the ratio tide/torch, and GB/s in the limit
-- column. `tide scripts/bench/lowp.lua [threads]`.
-- Goal: at most PyTorch's time (1x) on every row.
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
local n = 16 << 20
print(string.format("bfloat16 / float16, %dM elements, %d threads", n >> 20, threads))

local pt = B.baseline("lowp_torch.py", {threads, n})

tide.manual_seed(0)
local x <close> = tide.randn({n})
local xb <close> = x:bfloat16()
local xh <close> = x:half()
local yb <close> = tide.randn({n}):bfloat16()
local opts = {warmup = 3, repeats = 7, inner = 3}

local function time(fn)
    return B.time(function()
        local _ <close> = fn()
    end, opts)
end

-- a conversion reads n of one size and writes n of the other: 6n bytes
local rows = {
    {"float32->bfloat16", "f32_bf16", function() return x:bfloat16() end, 6 * n},
    {"bfloat16->float32", "bf16_f32", function() return xb:float() end, 6 * n},
    {"float32->float16", "f32_f16", function() return x:half() end, 6 * n},
    {"float16->float32", "f16_f32", function() return xh:float() end, 6 * n},
    -- read 2 x 2n, write 2n
    {"bfloat16 add", "bf16_add", function() return xb + yb end, 6 * n},
    -- read 2n, write 2 bytes
    {"bfloat16 sum", "bf16_sum", function() return xb:sum() end, 2 * n},
}
for _, r in ipairs(rows) do
    local name, key, fn, bytes = r[1], r[2], r[3], r[4]
    B.row(name .. " 16M (time/op)", time(fn), pt:get(key), "ms", false, 1.0, {bytes = bytes})
end
