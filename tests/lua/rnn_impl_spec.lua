-- The recurrent layers' two CPU implementations (docs/rnn.md): oneDNN's
-- RNN primitives and tide's own time loop.
--
-- Against each other: the same modules and calls, run once in a tide
-- process with TIDE_RNN_IMPL=onednn and once with TIDE_RNN_IMPL=loop (the
-- variable is read once per process), give the same outputs, final
-- states and gradients (of the input, h0, c0 and every parameter) within
-- float32's rounding: LSTM with and without a projection, GRU, RNN tanh
-- and relu, 2 layers, bidirectional, reversed, without bias, with h0 and
-- c0 given and not, and the cells. Each case must also differ somewhere
-- in its last bits, which shows that the two runs took different paths.
--
-- Against PyTorch: tests/reference/rnn.json's float64 cases once more in
-- float32 (the weights, inputs and states rounded; the references kept
-- float64), in this process's implementation; tests/CMakeLists.txt runs
-- this file and rnn_spec.lua with each.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local rnn_cases = require "rnn_cases"

local TIDE = arg and arg[-1] or "tide"

-- the cases, as code for the child processes: each returns a table of
-- name -> tensor (results, then gradients)
local DRIVER = [==[
local tide = require "tide"
local core = require "tide.core"
local nn = tide.nn

local function rg(shape) return tide.randn(shape, {requires_grad = true}) end

-- s = sum of each result times a fixed pattern, and its backward
local function backward(res)
    local s
    for _, r in pairs(res) do
        local w = tide.arange(0, r:numel(), 1):view(r:shape()):sin()
        local term = (r * w):sum()
        s = s and s + term or term
    end
    s:backward()
end

local function module_case(name, args, opts, state)
    return function()
        local m = nn[name](args[1], args[2], opts)
        local lstm = name == "LSTM"
        local L, D = opts.num_layers or 1, opts.bidirectional and 2 or 1
        local P = (opts.proj_size or 0) > 0 and opts.proj_size or args[2]
        local x = rg(opts.batch_first and {4, 7, args[1]} or {7, 4, args[1]})
        local h0, c0, hx
        if state then
            h0 = rg({L * D, 4, P})
            if lstm then c0 = rg({L * D, 4, args[2]}) end
            hx = lstm and {h0, c0} or h0
        end
        local out, hn = m(x, hx)
        local res = {output = out}
        if lstm then res.h_n, res.c_n = hn[1], hn[2] else res.h_n = hn end
        backward(res)
        res["grad input"] = x.grad
        if h0 then res["grad h0"] = h0.grad end
        if c0 then res["grad c0"] = c0.grad end
        for k, p in m:named_parameters() do res["grad " .. k] = p.grad end
        return res
    end
end

local function cell_case(name, state)
    return function()
        local m = nn[name](5, 6)
        local x = rg({4, 5})
        local h, c, hx
        if state then
            h = rg({4, 6})
            if name == "LSTMCell" then c = rg({4, 6}) end
            hx = c and {h, c} or h
        end
        local res = {}
        res.h, res.c = m(x, hx)
        backward(res)
        res["grad input"] = x.grad
        if h then res["grad h"] = h.grad end
        if c then res["grad c"] = c.grad end
        for k, p in m:named_parameters() do res["grad " .. k] = p.grad end
        return res
    end
end

-- one layer through tide.core.rnn_layer, reversed
local function layer_case(mode, proj, bias)
    return function()
        local G = ({RNN_TANH = 1, RNN_RELU = 1, LSTM = 4, GRU = 3})[mode]
        local Hs, P = 6, proj and 3 or 6
        local t = {x = rg({7, 4, 5}), h0 = rg({4, P}), w_ih = rg({G * Hs, 5}), w_hh = rg({G * Hs, P})}
        local o = {reverse = true}
        if mode == "LSTM" then t.c0 = rg({4, Hs}) o.c0 = t.c0 end
        if proj then t.w_hr = rg({P, Hs}) o.w_hr = t.w_hr end
        if bias then
            t.b_ih, t.b_hh = rg({G * Hs}), rg({G * Hs})
            o.b_ih, o.b_hh = t.b_ih, t.b_hh
        end
        local res = {result = core.rnn_layer(mode, t.x, t.h0, t.w_ih, t.w_hh, o)}
        backward(res)
        for k, v in pairs(t) do res["grad " .. k] = v.grad end
        return res
    end
end

CASES = {
    {"LSTM proj 2 layers bidirectional, h0 c0", module_case("LSTM", {5, 6},
        {proj_size = 3, num_layers = 2, bidirectional = true}, true)},
    {"LSTM 2 layers bidirectional batch_first", module_case("LSTM", {5, 6},
        {num_layers = 2, bidirectional = true, batch_first = true}, false)},
    {"LSTM no bias, h0 c0", module_case("LSTM", {5, 6}, {bias = false}, true)},
    {"LSTM proj", module_case("LSTM", {5, 6}, {proj_size = 2}, false)},
    {"GRU 2 layers bidirectional, h0", module_case("GRU", {5, 6}, {num_layers = 2, bidirectional = true}, true)},
    {"GRU no bias", module_case("GRU", {5, 6}, {bias = false}, false)},
    {"RNN tanh 2 layers bidirectional, h0", module_case("RNN", {5, 6},
        {num_layers = 2, bidirectional = true}, true)},
    {"RNN relu 2 layers", module_case("RNN", {5, 6}, {nonlinearity = "relu", num_layers = 2}, false)},
    {"RNN tanh no bias bidirectional", module_case("RNN", {5, 6}, {bias = false, bidirectional = true}, false)},
    {"rnn_layer LSTM reverse, projection", layer_case("LSTM", true, true)},
    {"rnn_layer LSTM reverse, no bias", layer_case("LSTM", false, false)},
    {"rnn_layer GRU reverse", layer_case("GRU", false, true)},
    {"rnn_layer RNN_RELU reverse", layer_case("RNN_RELU", false, true)},
    {"LSTMCell, h c", cell_case("LSTMCell", true)},
    {"GRUCell", cell_case("GRUCell", false)},
    {"RNNCell, h", cell_case("RNNCell", true)},
}

if os.getenv("RNN_IMPL_OUT") then
    local out = {}
    for i, c in ipairs(CASES) do
        tide.manual_seed(100 + i)
        for k, t in pairs(c[2]()) do out[i .. "/" .. k] = t:detach() end
    end
    tide.save(os.getenv("RNN_IMPL_OUT"), out)
end
]==]

-- the driver run under TIDE_RNN_IMPL=impl: its results as name -> tensor
local function run_impl(impl, dir)
    local path = dir .. "/" .. impl .. ".safetensors"
    local cmd = string.format("TIDE_RNN_IMPL=%s RNN_IMPL_OUT=%s %s -e %s 2>&1", impl, H.sh(path), H.sh(TIDE),
                              H.sh(DRIVER))
    local p = assert(io.popen(cmd))
    local log = p:read("a")
    local ok = p:close()
    assert(ok, "the " .. impl .. " run failed: " .. log)
    return (tide.load(path))
end

local function max_abs(t) return t:abs():max():item() end

describe("oneDNN's RNN primitives against tide's loop (float32)", function()
    local make_dir, remove_dirs = H.tmpdirs()
    local got = {}
    setup(function()
        local dir = make_dir()
        got.onednn = run_impl("onednn", dir)
        got.loop = run_impl("loop", dir)
    end)
    teardown(remove_dirs)

    load(DRIVER)() -- for the case names: the driver sets the global CASES
    local cases = rawget(_G, "CASES")
    for i, c in ipairs(cases) do
        it(c[1], function()
            local prefix = i .. "/"
            local n, differ = 0, false
            for k, want in pairs(got.loop) do
                if k:sub(1, #prefix) == prefix then
                    local have = got.onednn[k]
                    assert.is_not_nil(have, "no " .. k .. " from the oneDNN run")
                    assert.are.same(want:shape(), have:shape(), k)
                    local d, scale = max_abs(have - want), max_abs(want)
                    assert(d <= 1e-5 + 1e-4 * scale,
                           string.format("%s: oneDNN and the loop differ by %g (largest magnitude %g)", k, d, scale))
                    differ = differ or d > 0
                    n = n + 1
                end
            end
            assert.is_true(n >= 5, "too few results for " .. c[1])
            assert.is_true(differ, c[1] .. ": the oneDNN run gave the loop's exact bits (did it run the loop?)")
        end)
    end
end)

describe("recurrent layers against PyTorch, the float64 cases in float32", function()
    local data = cjson.decode(H.read_file("tests/reference/rnn.json"))
    for _, c in ipairs(data.cases) do
        if c.input.dtype == "float64" then
            it(c.name, function() rnn_cases.run(c, {float32 = true}) end)
        end
    end
end)
