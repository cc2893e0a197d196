-- bfloat16 and float16 matmul throughput on the CPU (docs/precision.md):
-- tide's bf16 and fp16 against tide's float32 in the same run, and bf16
-- against PyTorch 1.13's (its CPU bf16 matmul is oneDNN's too; it has no
-- fp16 matmul on the CPU), all at the same thread count. `tide
-- scripts/bench/lowp_matmul.lua [threads]`. Each row says its path
-- (tide.backend_info): oneDNN's bf16 kernels where the CPU has
-- AVX512-BF16, else float32 after conversion.
-- Goal: bf16 >= 1.8x tide's float32 where the CPU has AVX512-BF16 (the
-- "vs tide float32" rows: their pytorch column holds tide's float32);
-- bf16 at PyTorch's rate (1x) or better.
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
local sizes = {1024, 4096}
local info = tide.backend_info().matmul
print(string.format("matmul bfloat16 / float16, %d threads", threads))
print("bfloat16: " .. info.bfloat16)
print("float16:  " .. info.float16)

local pt = B.baseline("lowp_matmul_torch.py", {threads, table.concat(sizes, ",")})
local native = info.bfloat16:find("^onednn") ~= nil

tide.manual_seed(0)
for _, n in ipairs(sizes) do
    local a <close> = tide.randn({n, n})
    local b <close> = tide.randn({n, n})
    local inner = n <= 1024 and 10 or 1
    -- (n,n) x (n,n): 2 * n^3 FLOP
    local flop = 2 * n ^ 3
    local function gflops(x, y)
        local s = B.time(function()
            local _ <close> = x:matmul(y)
        end, {warmup = 2, repeats = 5, inner = inner})
        return flop / s / 1e9
    end
    local f32 = gflops(a, b)
    B.row(string.format("matmul f32 %d GFLOP/s", n), f32, nil, "GFLOP/s", true, nil, {flop = flop})
    for _, dt in ipairs({"bfloat16", "float16"}) do
        local short = dt == "bfloat16" and "bf16" or "fp16"
        local x <close> = a:to(dt)
        local y <close> = b:to(dt)
        local g = gflops(x, y)
        B.row(string.format("matmul %s %d vs tide f32", short, n), g, f32, "GFLOP/s", true,
              dt == "bfloat16" and native and 1.8 or nil, {flop = flop})
        if dt == "bfloat16" then
            B.row(string.format("matmul %s %d GFLOP/s", short, n), g, pt:get("bf16_" .. n),
                  "GFLOP/s", true, 1.0, {flop = flop})
        end
    end
end
