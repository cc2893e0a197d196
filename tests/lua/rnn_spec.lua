-- The recurrent layers: nn.RNN, nn.LSTM, nn.GRU, their cells and
-- tide.nn.utils.rnn's packed sequences. Outputs, final states and every
-- gradient against PyTorch 1.13 (tests/reference/rnn.json, from
-- tests/reference/gen_rnn.py) with PyTorch's weights loaded by state_dict;
-- gradcheck in float64; one autograd node per layer; the bad inputs.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local core = require "tide.core"
local nn = tide.nn
local R = tide.nn.utils.rnn

local data = cjson.decode(H.read_file("tests/reference/rnn.json"))

local function tensor(spec, grad)
    local t = H.tensor(H.decode_spec(spec))
    if grad then t.requires_grad = true end
    return t
end

local function build(c)
    local opts = {}
    for k, v in pairs(c.options) do opts[k] = v end
    if next(opts) == nil then opts = nil end
    local m = nn[c.module](c.args[1], c.args[2], opts)
    local sd = {}
    for k, v in pairs(c.state_dict) do sd[k] = tensor(v) end
    m:load_state_dict(sd)
    if c.input.dtype == "float64" then m:double() end
    if c.evaluate then m:evaluate() end
    return m
end

describe("recurrent layers against PyTorch", function()
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local m = build(c)
            assert.are.same(c.state_keys, m:state_dict_keys())
            local x = tensor(c.input, true)
            local lstm = c.module:sub(1, 4) == "LSTM"
            local h0, c0, hx
            if c.hx ~= cjson.null then
                if lstm then
                    h0, c0 = tensor(c.hx[1], true), tensor(c.hx[2], true)
                    hx = {h0, c0}
                else
                    h0 = tensor(c.hx, true)
                    hx = h0
                end
            end
            local outs = {}
            if c.module:find("Cell") then
                outs.h, outs.c = m(x, hx)
            else
                local inp = x
                local bf = c.options.batch_first or false
                if c.lengths then
                    inp = R.pack_padded_sequence(x, c.lengths, {batch_first = bf,
                                                               enforce_sorted = c.enforce_sorted})
                    assert.are.same(c.batch_sizes, inp.batch_sizes:totable())
                end
                local out, hn = m(inp, hx)
                if c.lengths then
                    assert.are.same(c.batch_sizes, out.batch_sizes:totable())
                    out = R.pad_packed_sequence(out, {batch_first = bf})
                end
                outs.output = out
                if lstm then outs.h_n, outs.c_n = hn[1], hn[2] else outs.h_n = hn end
            end
            local f32 = c.input.dtype == "float32"
            local rtol, atol = f32 and 1e-4 or 1e-9, f32 and 2e-5 or 1e-10
            local s
            for k, want in pairs(c.outputs) do
                H.check_tensor(outs[k], H.decode_spec(want), rtol, atol, k)
                local term = (outs[k] * tensor(c.weights[k])):sum()
                s = s and s + term or term
            end
            s:backward()
            H.check_tensor(x.grad, H.decode_spec(c.grads.input), rtol, atol, "grad input")
            if h0 then H.check_tensor(h0.grad, H.decode_spec(c.grads.h0), rtol, atol, "grad h0") end
            if c0 then H.check_tensor(c0.grad, H.decode_spec(c.grads.c0), rtol, atol, "grad c0") end
            for k, p in m:named_parameters() do
                H.check_tensor(p.grad, H.decode_spec(c.grads[k]), rtol, atol, "grad " .. k)
            end
        end)
    end
end)

describe("recurrent layers: gradcheck in float64", function()
    local function d(shape) return tide.randn(shape, {dtype = "float64", requires_grad = true}) end
    local modes = {
        {"RNN_TANH", 1}, {"RNN_RELU", 1}, {"LSTM", 4}, {"GRU", 3},
    }
    for _, md in ipairs(modes) do
        local mode, G = md[1], md[2]
        for _, reverse in ipairs({false, true}) do
            it(mode .. (reverse and " reverse" or ""), function()
                tide.manual_seed(7)
                local x, h0 = d({4, 2, 3}), d({2, 5})
                local w_ih, w_hh, b_ih, b_hh = d({G * 5, 3}), d({G * 5, 5}), d({G * 5}), d({G * 5})
                local inputs = {x, h0, w_ih, w_hh, b_ih, b_hh}
                if mode == "LSTM" then inputs[#inputs + 1] = d({2, 5}) end
                assert.is_true(tide.gradcheck(function(xx, hh, wi, wh, bi, bh, cc)
                    return core.rnn_layer(mode, xx, hh, wi, wh, {b_ih = bi, b_hh = bh, c0 = cc, reverse = reverse})
                end, inputs))
            end)
        end
    end

    it("LSTM with a projection, packed", function()
        tide.manual_seed(8)
        local x, h0, c0 = d({6, 3}), d({3, 2}), d({3, 4})
        local w_ih, w_hh, w_hr = d({16, 3}), d({16, 2}), d({2, 4})
        for _, reverse in ipairs({false, true}) do
            assert.is_true(tide.gradcheck(function(xx, hh, cc, wi, wh, wr)
                return core.rnn_layer("LSTM", xx, hh, wi, wh,
                                      {c0 = cc, w_hr = wr, batch_sizes = {3, 2, 1}, reverse = reverse})
            end, {x, h0, c0, w_ih, w_hh, w_hr}))
        end
    end)

    it("GRU packed, through the module (2 layers, bidirectional)", function()
        tide.manual_seed(9)
        local m = nn.GRU(2, 3, {num_layers = 2, bidirectional = true, dtype = "float64"})
        local x = d({4, 3, 2})
        assert.is_true(tide.gradcheck(function(xx)
            local p = R.pack_padded_sequence(xx, {2, 4, 3}, {enforce_sorted = false})
            local out, hn = m(p)
            return {R.pad_packed_sequence(out), hn}
        end, {x}))
    end)
end)

describe("recurrent layers: behaviour", function()
    it("records one autograd node for a whole layer, whatever the length", function()
        local w_ih = tide.randn({16, 3}, {requires_grad = true})
        local res = core.rnn_layer("LSTM", tide.randn({200, 2, 3}), tide.zeros({2, 4}), w_ih,
                                   tide.randn({16, 4}), {c0 = tide.zeros({2, 4})})
        assert.are.equal("RnnBackward", res.grad_fn)
        assert.are.same({200 * 2 * 4 + 2 * 4 + 2 * 4}, res:shape())
        res:sum():backward()
        assert.are.same({16, 3}, w_ih.grad:shape())
    end)

    it("zeros the packed outputs past each length and takes h_n at each end", function()
        tide.manual_seed(3)
        local m = nn.GRU(2, 3)
        local x = tide.randn({5, 3, 2})
        local p = R.pack_padded_sequence(x, {2, 5, 3}, {enforce_sorted = false})
        local out, hn = m(p)
        local padded, lens = R.pad_packed_sequence(out)
        assert.are.same({2, 5, 3}, lens:totable())
        assert.are.same({0, 0, 0}, padded:select(1, 0):select(0, 4):totable())
        -- each sequence alone gives the same final state
        for b, len in ipairs({2, 5, 3}) do
            local _, h = m(x:narrow(0, 0, len):narrow(1, b - 1, 1))
            H.assert_close(hn:select(1, b - 1), H.values(h:select(1, 0)), 1e-5, 1e-6, "h_n of " .. b)
        end
    end)

    it("dropout applies between layers in training only", function()
        tide.manual_seed(4)
        local m = nn.LSTM(3, 4, {num_layers = 2, dropout = 0.5})
        local x = tide.randn({6, 2, 3})
        local a = m(x)
        local b = m(x)
        assert.is_false(H.close(H.values(a), H.values(b), 0, 0))
        m:evaluate()
        H.assert_close(m(x), H.values(m(x)), 0, 0)
    end)

    it("initialises every parameter in +-1/sqrt(hidden_size)", function()
        local m = nn.GRU(10, 16, {num_layers = 2, bidirectional = true})
        for _, p in m:named_parameters() do
            assert.is_true(p:abs():max():item() <= 0.25)
        end
        assert.is_true(m.weight_hh_l1_reverse:std():item() > 0.1)
    end)

    it("rejects bad input with errors naming the module and the argument", function()
        local m = nn.LSTM(3, 4)
        local function err(f) local ok, e = pcall(f); assert.is_false(ok); return tostring(e) end
        assert.truthy(err(function() m(tide.randn({5, 2, 7})) end):find("input_size", 1, true))
        assert.truthy(err(function() m(tide.randn({5, 2, 3}), {tide.zeros({1, 3, 4}), tide.zeros({1, 2, 4})}) end)
            :find("h0", 1, true))
        assert.truthy(err(function() m(tide.randn({5, 2, 3}, {dtype = "float64"})) end):find("float32", 1, true))
        assert.truthy(err(function() nn.LSTM(3, 4, {nonlinearity = "relu"}) end):find("nonlinearity", 1, true))
        assert.truthy(err(function() nn.RNN(3, 4, {nonlinearity = "gelu"}) end):find("gelu", 1, true))
        assert.truthy(err(function() nn.LSTM(3, 4, {proj_size = 4}) end):find("proj_size", 1, true))
        assert.truthy(err(function() R.pack_padded_sequence(tide.randn({4, 2, 3}), {2, 4}) end)
            :find("enforce_sorted", 1, true))
        assert.truthy(err(function() R.pack_padded_sequence(tide.randn({4, 2, 3}), {5, 4}) end)
            :find("lengths", 1, true))
        assert.truthy(err(function() nn.GRUCell(3, 4)(tide.randn({2, 5})) end):find("input_size", 1, true))
        assert.truthy(err(function()
            core.rnn_layer("GRU", tide.randn({2, 1, 3}), tide.zeros({1, 4}), tide.randn({12, 3}), tide.randn({11, 4}))
        end):find("w_hh", 1, true))
    end)
end)
