-- Attention, float32 on the CPU, tide against PyTorch at the same thread
-- count. `tide scripts/bench/attention.lua [threads]`.
-- 1. TransformerEncoderLayer(512, 8, dim_feedforward 2048, dropout 0.1,
--    batch_first) training step on (32, 256, 512): forward, (y * gy):sum()
--    backward, gradients zeroed. Goal <= 0.8x PyTorch's time.
-- 2. scaled_dot_product_attention forward + backward on (1, 8, L, 64) for
--    L = 1024, 2048, 4096: time and the peak resident bytes the first call
--    adds (VmHWM reset through /proc/self/clear_refs; each length in its
--    own process, so no block an allocator cached hides the growth). PyTorch 1.13 has no
--    fused CPU attention: its twin is softmax(q k^T / sqrt(E)) v, which
--    holds the (L, L) scores, so its memory grows as L^2, tide's as L.
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
local d, h, ff, seq, batch = 512, 8, 2048, 256, 32
-- per token: q, k, v and out projections 4 d^2, feed-forward 2 d ff
-- multiply-adds; per sequence the scores and the weighted sum 2 L^2 d; the
-- backward twice the forward: 3x in all, 2 FLOP per multiply-add
local flops = 3 * 2 * (batch * seq * (4 * d * d + 2 * d * ff) + batch * 2 * seq * seq * d)
print(string.format("TransformerEncoderLayer(%d, %d, %d) training step on (%d, %d, %d), %d threads, %.1f GFLOP",
                    d, h, ff, batch, seq, d, threads, flops / 1e9))
local pt = B.baseline("attention_torch.py", {threads, "layer", d, h, ff, seq, batch})

tide.manual_seed(0)
local layer = tide.nn.TransformerEncoderLayer(d, h, {dim_feedforward = ff, batch_first = true})
local x <close> = tide.randn({batch, seq, d})
local gy <close> = tide.randn({batch, seq, d})
local step = B.time(function()
    layer:zero_grad()
    local y <close> = layer(x)
    local l <close> = (y * gy):sum()
    l:backward()
end, {warmup = 1, repeats = 3})
B.row("TransformerEncoderLayer step", step, pt:get("step"), "ms", false, 0.8, {flop = flops})

-- scaled_dot_product_attention: each length in a child process
local TIDE = arg and arg[-1] or "tide"
local child = [[
    local tide = require "tide"
    local L, H, E = tonumber(os.getenv("ATTN_L")), tonumber(os.getenv("ATTN_H")), tonumber(os.getenv("ATTN_E"))
    tide.set_num_threads(tonumber(os.getenv("ATTN_T")))
    local function kb(key)
        for line in io.lines("/proc/self/status") do
            local v = line:match("^" .. key .. ":%s+(%d+)")
            if v then return tonumber(v) end
        end
    end
    tide.manual_seed(0)
    local q = tide.randn({1, H, L, E}, {requires_grad = true})
    local k = tide.randn({1, H, L, E}, {requires_grad = true})
    local v = tide.randn({1, H, L, E}, {requires_grad = true})
    local gy = tide.randn({1, H, L, E})
    local function run()
        q.grad, k.grad, v.grad = nil, nil, nil
        local o = tide.F.scaled_dot_product_attention(q, k, v)
        o:backward(gy)
    end
    local f = io.open("/proc/self/clear_refs", "w")
    if f then f:write("5") f:close() end
    local base = kb("VmRSS")
    run()
    print("peak_rss", (kb("VmHWM") - base) * 1024)
    local best = math.huge
    for _ = 1, 3 do
        local t0 = tide.clock()
        run()
        best = math.min(best, tide.clock() - t0)
    end
    print("sdpa", best)
]]
local heads, dim = 8, 64
for _, l in ipairs({1024, 2048, 4096}) do
    -- forward 2 L^2 E (scores) + 2 L^2 E (weighted sum) per head; the
    -- backward recomputes the scores: 2.5x the forward's multiply-adds
    local f = heads * 3.5 * 4 * l * l * dim
    local cmd = string.format("ATTN_L=%d ATTN_H=%d ATTN_E=%d ATTN_T=%d %s -e '%s'", l, heads, dim, threads, TIDE,
                              child:gsub("'", "'\\''"))
    local t = B.run_keys(cmd) or {}
    local p = B.baseline("attention_torch.py", {threads, "sdpa", l, heads, dim})
    local label = string.format("sdpa L=%d fwd+bwd", l)
    B.row(label, t.sdpa, p:get("sdpa"), "ms", false, nil, {flop = f})
    local mb = function(b) return b / 1048576 end
    B.row(string.format("sdpa L=%d peak RSS", l), t.peak_rss and mb(t.peak_rss), p:get("peak_rss", mb), "MB",
          false)
end
