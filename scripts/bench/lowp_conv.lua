-- bfloat16 conv2d throughput on the CPU (docs/precision.md): tide's bf16
-- (oneDNN's bf16 primitives where the CPU has AVX512-BF16, else float32
-- after conversion; the row header says which, from tide.backend_info)
-- against tide's float32 in the same run and against PyTorch 1.13's CPU
-- bf16 conv2d (oneDNN's too), all at the same thread count; then a
-- resnet18 (CIFAR stem) training step at batch 64 under
-- tide.autocast("bfloat16") against tide float32 and against PyTorch's
-- torch.autocast("cpu", torch.bfloat16).
-- `tide scripts/bench/lowp_conv.lua [threads]`.
-- Goals: bf16 >= 1.8x tide's float32 GFLOP/s (the "vs tide f32" rows:
-- their pytorch column holds tide's float32) where the CPU has
-- AVX512-BF16; the autocast step <= 0.6x tide float32's time.
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
local info = tide.backend_info().conv
print(string.format("conv2d bfloat16, %d threads", threads))
print("bfloat16: " .. info.bfloat16)
print("float32:  " .. info.float32)
local native = info.bfloat16:find("^onednn") ~= nil

-- {name, n, c, o, hw}: 3x3, padding 1; conv.lua's shape and resnet18's
-- layer2 (CIFAR stem, batch 64)
local SHAPES = {
    {"conv.lua", 128, 32, 64, 14},
    {"resnet18 layer2", 64, 128, 128, 16},
}
local spec = {}
for _, s in ipairs(SHAPES) do spec[#spec + 1] = table.concat({s[2], s[3], s[4], s[5]}, "x") end
local pt = B.baseline("lowp_conv_torch.py", {threads, table.concat(spec, ",")})

tide.manual_seed(0)
for i, s in ipairs(SHAPES) do
    local name, n, c, o, hw = s[1], s[2], s[3], s[4], s[5]
    local flop = 2 * n * o * hw * hw * c * 9
    local x32 <close> = tide.randn({n, c, hw, hw})
    local w32 <close> = tide.randn({o, c, 3, 3}) * 0.1
    local b32 <close> = tide.randn({o})
    local gy32 <close> = tide.randn({n, o, hw, hw})
    local res = {}
    for _, dt in ipairs({"float32", "bfloat16"}) do
        local x = x32:to(dt)
        local w = w32:to(dt)
        local b = b32:to(dt)
        local gy = gy32:to(dt)
        local fwd = B.time(function()
            local _ <close> = tide.conv2d(x, w, {bias = b, padding = 1})
        end, {warmup = 3, repeats = 7, inner = 3})
        local xg <close> = x:clone()
        xg.requires_grad = true
        local wg <close> = w:clone()
        wg.requires_grad = true
        local bg <close> = b:clone()
        bg.requires_grad = true
        local fb = B.time(function()
            xg.grad, wg.grad, bg.grad = nil, nil, nil
            local y <close> = tide.conv2d(xg, wg, {bias = bg, padding = 1})
            y:backward(gy)
        end, {warmup = 2, repeats = 7, inner = 2})
        res[dt] = {flop / fwd / 1e9, 3 * flop / fb / 1e9}
    end
    local key = spec[i]
    local label = string.format("%s (%d,%d,%d,%d)->%d", name, n, c, hw, hw, o)
    for j, dir in ipairs({"fwd", "fwd+bwd"}) do
        local work = {flop = j == 1 and flop or 3 * flop}
        B.row(string.format("conv2d bf16 %s %s vs tide f32", dir, label), res.bfloat16[j], res.float32[j],
              "GFLOP/s", true, native and 1.8 or nil, work)
        B.row(string.format("conv2d bf16 %s %s GFLOP/s", dir, label), res.bfloat16[j],
              pt:get((j == 1 and "fwd_" or "fb_") .. key, function(t) return work.flop / t / 1e9 end),
              "GFLOP/s", true, 1.0, work)
    end
end

-- resnet18 training step, batch 64: float32, then under autocast bf16
local F = tide.F
local function step_time(dt)
    tide.manual_seed(0)
    local model = tide.models.resnet18{num_classes = 10, stem = "cifar"}
    model:train()
    local x, y = tide.randn({64, 3, 32, 32}), (tide.rand({64}) * 10):long()
    local opt = tide.optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
    local function step()
        opt:zero_grad()
        local loss <close> = dt == "bfloat16"
            and tide.autocast("bfloat16", function() return F.cross_entropy(model(x), y) end)
            or F.cross_entropy(model(x), y)
        loss:backward()
        opt:step()
    end
    for _ = 1, 2 do step() end
    local t0 = tide.clock()
    for _ = 1, 5 do step() end
    return (tide.clock() - t0) / 5
end
local t32 = step_time("float32")
local tbf = step_time("bfloat16")
B.row("resnet18 cifar step b64 autocast bf16 vs tide f32", tbf, t32, "ms", false, native and 0.6 or nil)
B.row("resnet18 cifar step b64 autocast bf16", tbf, pt:get("resnet18_step"), "ms", false, nil)
