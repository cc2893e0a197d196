-- The recurrent layers: nn.RNN, nn.LSTM, nn.GRU, their cells and
-- tide.nn.utils.rnn's packed sequences. Outputs, final states and every
-- gradient against PyTorch 1.13 (tests/reference/rnn.json, from
-- tests/reference/gen_rnn.py) with PyTorch's weights loaded by state_dict;
-- gradcheck in float64; one autograd node per layer; the bad inputs.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local cases = require "rnn_cases"
local core = require "tide.core"
local nn = tide.nn
local R = tide.nn.utils.rnn

local data = cjson.decode(H.read_file("tests/reference/rnn.json"))

describe("recurrent layers against PyTorch", function()
    for _, c in ipairs(data.cases) do
        it(c.name, function() cases.run(c) end)
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
