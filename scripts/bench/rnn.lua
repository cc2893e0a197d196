-- Recurrent layers, float32: LSTM and GRU of sequence 128, batch 64,
-- input 512, hidden 512, 2 layers, and both again at hidden (and input)
-- 128, batch 32: forward, and forward + backward (grads of the input and
-- every parameter), tide against PyTorch CPU at the same thread count.
-- `tide scripts/bench/rnn.lua [threads]`.
--
-- Each row comes twice, once per implementation of the layer
-- (docs/rnn.md): [onednn], oneDNN's RNN primitives, and [loop], tide's own
-- time loop. TIDE_RNN_IMPL is read once per process, so each runs in a
-- tide process of its own (this script, started again with
-- TIDE_RNN_IMPL set and `--child THREADS [CASE]`, which prints `key
-- value` lines), in the same run as the PyTorch twin.
-- `tide scripts/bench/rnn.lua THREADS ROUNDS` alternates the two ROUNDS
-- times (default 1) and keeps each one's best, for a machine that others
-- share: their load only ever adds time.
-- Goal: forward + backward <= 0.8x PyTorch's time (tcmalloc preloaded).
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local CASES = {
    {name = "lstm", mode = "LSTM", T = 128, n = 64, I = 512, H = 512, L = 2},
    {name = "gru", mode = "GRU", T = 128, n = 64, I = 512, H = 512, L = 2},
    {name = "lstm small", mode = "LSTM", T = 128, n = 32, I = 128, H = 128, L = 2},
    {name = "gru small", mode = "GRU", T = 128, n = 32, I = 128, H = 128, L = 2},
}
local IMPLS = {"onednn", "loop"}

local function key(c, what) return (c.name:gsub(" ", "_")) .. "_" .. what end

-- forward: per layer and step the gates' (n, I + H) x (I + H, G H) GEMM,
-- 2 n (I + H) G H FLOP (layer 2's input is H wide; I = H here); the
-- pointwise gate work, O(n H) a step, is left out. Backward: twice that.
local function flops(c)
    local G = c.mode == "LSTM" and 4 or 3
    return 2 * c.n * (c.I + c.H) * G * c.H * c.T * c.L
end

-- the child: time every case with this process's implementation
if arg[1] == "--child" then
    local threads = B.threads({arg[2]})
    assert(threads)
    for _, c in ipairs(CASES) do
        if arg[3] and c.name ~= arg[3] then goto next end
        tide.manual_seed(0)
        local m = tide.nn[c.mode](c.I, c.H, {num_layers = c.L})
        local x <close> = tide.randn({c.T, c.n, c.I})
        local fwd = B.time(function()
            tide.no_grad(function() m(x) end)
        end, {warmup = 1, repeats = 3, inner = 1})
        local xg <close> = x:clone()
        xg.requires_grad = true
        local gy <close> = tide.randn({c.T, c.n, c.H})
        local fb = B.time(function()
            xg.grad = nil
            m:zero_grad()
            local y = m(xg)
            local l <close> = (y * gy):sum()
            l:backward()
        end, {warmup = 1, repeats = 3, inner = 1})
        print(key(c, "forward"), fwd)
        print(key(c, "forward_backward"), fb)
        ::next::
    end
    print("ok", 1)
    return
end

local threads = B.threads(arg)
local rounds = tonumber(arg[2]) or 1
local TIDE = arg[-1] or "tide"
local SELF = arg[0]
local function sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

print(string.format("RNN float32, seq 128, 2 layers, %d threads, oneDNN's primitives [onednn] and tide's loop [loop]",
                    threads))
local got = {onednn = {}, loop = {}}
for _ = 1, rounds do
    for _, impl in ipairs(IMPLS) do
        local out, lines = B.run_keys(string.format("TIDE_RNN_IMPL=%s %s %s --child %d 2>&1", impl, sh(TIDE),
                                                    sh(SELF), threads))
        if not out or not out.ok then
            print(string.format("note: the [%s] run failed: %s", impl, table.concat(lines or {}, "\n")))
        end
        for k, v in pairs(out or {}) do
            if type(v) == "number" and k ~= "ok" then got[impl][k] = math.min(got[impl][k] or math.huge, v) end
        end
    end
end

for _, c in ipairs(CASES) do
    local pt = B.baseline("rnn_torch.py", {threads, c.T, c.n, c.I, c.H, c.L, c.mode})
    local f = flops(c)
    local title = string.format("%s: %s %d -> %d, batch %d, %.2f GFLOP per forward", c.name, c.mode, c.I, c.H, c.n,
                                f / 1e9)
    print(title)
    for _, impl in ipairs(IMPLS) do
        B.row(string.format("%s forward [%s]", c.name, impl), got[impl][key(c, "forward")], pt:get("forward"),
              "ms", false, nil, {flop = f})
    end
    for _, impl in ipairs(IMPLS) do
        B.row(string.format("%s fwd+bwd [%s]", c.name, impl), got[impl][key(c, "forward_backward")],
              pt:get("forward_backward"), "ms", false, 0.8, {flop = 3 * f})
    end
end
