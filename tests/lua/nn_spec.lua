-- tide.nn: the Module protocol, the layer modules and tide.nn.init.
-- Reference values from PyTorch 1.13 (tests/reference/nn.json, written by
-- tests/reference/gen_nn.py), hand calculations and sample statistics.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local nn = tide.nn

local ref = cjson.decode(H.read_file("tests/reference/nn.json"))

local function mlp3()
    return nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2, {bias = false}))
end

local function names(iter)
    local r = {}
    for name in iter do r[#r + 1] = name end
    return r
end

describe("Module", function()
    it("lists parameters in registration order, each once", function()
        local m = mlp3()
        local p = m:parameters()
        assert.are.equal(3, #p)
        assert.are.same({3, 4}, p[1]:shape())
        assert.are.same({3}, p[2]:shape())
        assert.are.same({2, 3}, p[3]:shape())
        assert.is_true(p[1].requires_grad)
        -- a module shared twice counts once
        local lin = nn.Linear(2, 2)
        local shared = nn.Sequential(lin, nn.ReLU(), lin)
        assert.are.equal(2, #shared:parameters())
        assert.are.same({"0.weight", "0.bias"}, names(shared:named_parameters()))
    end)

    it("names parameters as PyTorch does", function()
        assert.are.same({"0.weight", "0.bias", "2.weight"}, names(mlp3():named_parameters()))
        local outer = nn.Sequential(nn.Sequential(nn.Linear(1, 1)), nn.BatchNorm1d(3))
        assert.are.same({"0.0.weight", "0.0.bias", "1.weight", "1.bias"}, names(outer:named_parameters()))
        assert.are.same({"1.running_mean", "1.running_var", "1.num_batches_tracked"}, names(outer:named_buffers()))
        assert.are.equal("int64", outer:get(1).num_batches_tracked:dtype())
    end)

    it("has children, modules and add_module", function()
        local m = mlp3()
        assert.are.same({"0", "1", "2"}, names(m:named_children()))
        assert.are.equal(3, #m:children())
        assert.are.equal(4, #m:modules())
        local c = nn.Module()
        c:add_module("body", m)
        c:add_module("head", nn.Linear(2, 1))
        assert.are.equal(m, c.body)
        assert.are.same({"body.0.weight", "body.0.bias", "body.2.weight", "head.weight", "head.bias"},
                        names(c:named_parameters()))
        assert.matches("bad argument #2 to 'add_module' %(module expected", H.error_of(c.add_module, c, "x", 3))
        assert.matches("is a method", H.error_of(c.add_module, c, "forward", nn.ReLU()))
        local seen = {}
        c:apply(function(mod) seen[#seen + 1] = mod:typename() end)
        assert.are.same({"Linear", "ReLU", "Linear", "Sequential", "Linear", "Module"}, seen)
    end)

    it("switches train and evaluate through the tree", function()
        local m = nn.Sequential(nn.Sequential(nn.Dropout()), nn.BatchNorm1d(2))
        for _, mod in ipairs(m:modules()) do assert.is_true(mod.training) end
        assert.are.equal(m, m:evaluate())
        for _, mod in ipairs(m:modules()) do assert.is_false(mod.training) end
        m:train()
        for _, mod in ipairs(m:modules()) do assert.is_true(mod.training) end
        m:eval()
        assert.is_false(m:get(0):get(0).training)
        -- a Dropout in evaluation mode is the identity
        local x = tide.randn({4, 3})
        assert.are.equal(x, m:get(0)(x))
    end)

    it("zero_grad clears every gradient", function()
        local m = mlp3()
        m(tide.randn({2, 4})):sum():backward()
        for _, p in ipairs(m:parameters()) do assert.is_not_nil(p.grad) end
        m:zero_grad()
        for _, p in ipairs(m:parameters()) do assert.is_nil(p.grad) end
    end)

    it("round-trips a state dict", function()
        local a, b = mlp3(), mlp3()
        local sd = a:state_dict()
        assert.are.same({"0.bias", "0.weight", "2.weight"}, (function()
            local k = {} for name in pairs(sd) do k[#k + 1] = name end table.sort(k) return k end)())
        assert.are.same({"0.weight", "0.bias", "2.weight"}, a:state_dict_keys())
        local res = b:load_state_dict(sd)
        assert.are.same({}, res.missing_keys)
        for name, t in pairs(b:state_dict()) do H.assert_close(t, H.values(sd[name]), 0, 0, name) end
        local x = tide.randn({3, 4})
        H.assert_close(b(x), H.values(a(x)), 0, 0, "outputs")
        -- loading copies: the model's own tensors stay in place
        local w = b:get(0).weight
        b:load_state_dict(mlp3():state_dict())
        assert.are.equal(w, b:get(0).weight)
        -- buffers too
        local bn1, bn2 = nn.BatchNorm1d(3), nn.BatchNorm1d(3)
        tide.no_grad(function() bn1.running_mean:fill_(0.5) end)
        bn2:load_state_dict(bn1:state_dict())
        H.assert_close(bn2.running_mean, {0.5, 0.5, 0.5})
    end)

    it("refuses a state dict that does not fit, naming the keys", function()
        local m = mlp3()
        local sd = m:state_dict()
        sd["0.bias"] = nil
        sd["extra.weight"] = tide.zeros({1})
        local err = H.error_of(m.load_state_dict, m, sd)
        assert.matches("missing keys: 0%.bias", err)
        assert.matches("unexpected keys: extra%.weight", err)
        -- not strict: missing and unexpected keys are reported, not raised
        local res = m:load_state_dict(sd, {strict = false})
        assert.are.same({"0.bias"}, res.missing_keys)
        assert.are.same({"extra.weight"}, res.unexpected_keys)
        -- a shape mismatch is always an error, and nothing is copied
        local good = mlp3():state_dict()
        good["0.weight"] = tide.zeros({4, 3})
        local before = H.values(m:get(2).weight)
        err = H.error_of(m.load_state_dict, m, good, {strict = false})
        assert.matches("size mismatch for 0%.weight: shape %(4, 3%) in the state dict, %(3, 4%) in the model", err)
        H.assert_close(m:get(2).weight, before, 0, 0)
        assert.matches("unknown option 'strikt'", H.error_of(m.load_state_dict, m, good, {strikt = true}))
    end)

    it("prints a tree as PyTorch does", function()
        local m = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Dropout({p = 0.25}),
                                nn.Linear(256, 10, {bias = false}))
        assert.are.equal(ref.reprs.seq, tostring(m))
        local layers = {
            nn.Conv2d(3, 64, 3, {padding = 1, bias = false}),
            nn.Conv2d(8, 16, {3, 5}, {stride = 2, dilation = 2, groups = 4}),
            nn.BatchNorm1d(10), nn.LayerNorm(6), nn.LeakyReLU({negative_slope = 0.2}), nn.Softmax(1),
            nn.LogSoftmax(-1), nn.MaxPool2d(3, {stride = 2, padding = 1}), nn.AvgPool2d(2),
            nn.AdaptiveAvgPool2d(1), nn.Dropout({p = 0.1}), nn.Flatten(), nn.Embedding(10, 4, {padding_idx = 0}),
            nn.Identity(), nn.GELU(), nn.Sigmoid(), nn.Tanh(),
        }
        for i, l in ipairs(layers) do assert.are.equal(ref.reprs.layers[i], tostring(l)) end
    end)

    it("says which child of a container failed", function()
        local m = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Sequential(nn.Identity(), nn.Linear(5, 2)))
        local err = H.error_of(m, tide.randn({2, 4}))
        assert.matches("^in child 2 %(Sequential%) of Sequential: in child 1 %(Linear%) of Sequential: ", err)
        assert.matches("bad argument", err)
        -- and the process goes on
        assert.are.same({2, 3}, m:get(0)(tide.randn({2, 4})):shape())
    end)

    it("converts dtypes and refuses an unavailable device", function()
        local m = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
        local w = m:get(0).weight
        assert.are.equal(m, m:to("cpu"))
        assert.are.equal(w, m:get(0).weight)
        m:double()
        assert.are.equal("float64", m:get(0).weight:dtype())
        assert.is_true(m:get(0).weight.requires_grad)
        assert.are.equal("float64", m:get(1).running_var:dtype())
        assert.are.equal("int64", m:get(1).num_batches_tracked:dtype())
        assert.are.equal(3, #names(m:named_buffers()))
        m:float()
        assert.are.equal("float32", m:get(0).bias:dtype())
        if not tide.cuda.is_available() then
            assert.matches("bad argument #1 to 'to' %(device 'cuda' is not available", H.error_of(m.to, m, "cuda"))
        end
        assert.matches("unknown device", H.error_of(m.to, m, "tpu"))
    end)
end)

describe("layer constructors", function()
    it("check their arguments", function()
        assert.matches("bad argument #2 to 'Conv2d' %(out_channels must be >= 1", H.error_of(nn.Conv2d, 3, 0, 3))
        assert.matches("bad argument #4 to 'Conv2d' %(unknown option 'paddin'",
            H.error_of(nn.Conv2d, 3, 4, 3, {paddin = 1}))
        assert.matches("bad argument #4 to 'Conv2d' %(groups = 2 must divide",
            H.error_of(nn.Conv2d, 3, 4, 3, {groups = 2}))
        assert.matches("bad argument #1 to 'Linear' %(in_features must be an integer, got string",
                       H.error_of(nn.Linear, "4", 3))
        assert.matches("bad argument #3 to 'Linear' %(options table expected", H.error_of(nn.Linear, 4, 3, false))
        assert.matches("bad argument #1 to 'Dropout' %(p must be a probability", H.error_of(nn.Dropout, {p = 2}))
        assert.matches("bad argument #1 to 'Softmax' %(dim must be an integer", H.error_of(nn.Softmax))
        assert.matches("bad argument #2 to 'Sequential' %(module expected", H.error_of(nn.Sequential, nn.ReLU(), 5))
        assert.matches("bad argument #3 to 'Embedding' %(padding_idx",
            H.error_of(nn.Embedding, 4, 2, {padding_idx = 4}))
    end)

    it("initialise as PyTorch: shapes, bounds, constants", function()
        tide.manual_seed(1)
        local l = nn.Linear(50, 40)
        assert.are.same({40, 50}, l.weight:shape())
        -- kaiming_uniform_(a = sqrt 5) gives U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as the bias
        local bound = 1 / math.sqrt(50)
        for _, t in ipairs({l.weight, l.bias}) do
            assert.is_true(t:abs():max():item() <= bound)
            assert.is_true(t:abs():max():item() > 0.9 * bound)
        end
        local c = nn.Conv2d(4, 8, 3, {groups = 2})
        assert.are.same({8, 2, 3, 3}, c.weight:shape())
        assert.is_true(c.weight:abs():max():item() <= 1 / math.sqrt(18))
        local bn = nn.BatchNorm2d(3)
        H.assert_close(bn.weight, {1, 1, 1}); H.assert_close(bn.bias, {0, 0, 0})
        H.assert_close(bn.running_mean, {0, 0, 0}); H.assert_close(bn.running_var, {1, 1, 1})
        assert.is_nil(nn.BatchNorm2d(3, {affine = false}).weight)
        local e = nn.Embedding(1000, 20, {padding_idx = 2})
        H.assert_close(e.weight:select(0, 2), {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
        local std = e.weight:std():item()
        assert.is_true(math.abs(std - 1) < 0.03, "Embedding std " .. std)
    end)
end)

describe("Linear", function()
    it("matches PyTorch forward and backward", function()
        local r = ref.linear
        local l = nn.Linear(4, 3):double()
        l:load_state_dict({weight = H.tensor(r.weight), bias = H.tensor(r.bias)})
        local x = H.tensor(r.x, true)
        local y = l(x)
        H.check_tensor(y, r.y, 1e-12, 1e-12, "y")
        ;(y * H.tensor(r.w_out)):sum():backward()
        H.check_tensor(x.grad, r.grad_x, 1e-12, 1e-12, "grad x")
        H.check_tensor(l.weight.grad, r.grad_weight, 1e-12, 1e-12, "grad weight")
        H.check_tensor(l.bias.grad, r.grad_bias, 1e-12, 1e-12, "grad bias")
    end)

    it("matches a hand calculation", function()
        local l = nn.Linear(2, 2):double()
        l:load_state_dict({weight = tide.tensor({{1, 2}, {3, 4}}, "float64"), bias = tide.tensor({0.5, -1}, "float64")})
        local x = tide.tensor({{1, -1}}, "float64")
        x.requires_grad = true
        local y = l(x)
        H.assert_close(y, {1 - 2 + 0.5, 3 - 4 - 1})     -- {-0.5, -2}
        y:sum():backward()
        H.assert_close(x.grad, {1 + 3, 2 + 4})           -- column sums of W
        H.assert_close(l.weight.grad, {1, -1, 1, -1})    -- x for each row
        H.assert_close(l.bias.grad, {1, 1})
    end)
end)

describe("nn.init", function()
    local init = nn.init

    it("computes PyTorch's fans and gains", function()
        for _, g in ipairs(ref.gains) do
            local param = g.param ~= cjson.null and g.param or nil
            local got = init.calculate_gain(g.nonlinearity, param)
            assert.is_true(math.abs(got - g.gain) < 1e-12, g.nonlinearity .. " gain " .. got .. " vs " .. g.gain)
        end
        for _, f in ipairs(ref.fans) do
            local fi, fo = init.calculate_fan_in_and_fan_out(tide.empty(H.ints(f.shape)))
            assert.are.equal(math.tointeger(f.fan_in), fi)
            assert.are.equal(math.tointeger(f.fan_out), fo)
        end
        -- by hand: relu gain sqrt 2, a (64, 3, 7, 7) conv has fan_in 147, fan_out 3136
        assert.are.equal(math.sqrt(2), init.calculate_gain("relu"))
        local fi, fo = init.calculate_fan_in_and_fan_out(tide.empty({64, 3, 7, 7}))
        assert.are.equal(147, fi); assert.are.equal(3136, fo)
        assert.matches("bad argument #1 to 'calculate_fan_in_and_fan_out'",
            H.error_of(init.calculate_fan_in_and_fan_out, tide.empty({3})))
    end)

    -- sample statistics of 200x300 = 60,000 draws: the std of the sample
    -- std is about std / sqrt(2n) = 0.3%, the bounds are hit to within 0.1%
    it("kaiming_uniform_ and xavier_uniform_ fill U(-b, b)", function()
        tide.manual_seed(7)
        local t = tide.empty({200, 300})
        init.kaiming_uniform_(t, {nonlinearity = "relu"})
        local b = math.sqrt(2) * math.sqrt(3 / 300)           -- gain * sqrt(3 / fan_in)
        assert.is_true(t:max():item() <= b and t:max():item() > 0.999 * b)
        assert.is_true(t:min():item() >= -b and t:min():item() < -0.999 * b)
        assert.is_true(math.abs(t:std():item() - b / math.sqrt(3)) < 0.02 * b / math.sqrt(3))
        init.kaiming_uniform_(t, {mode = "fan_out", a = 0.2})
        b = math.sqrt(2 / (1 + 0.04)) * math.sqrt(3 / 200)
        assert.is_true(t:max():item() <= b and t:max():item() > 0.999 * b)
        init.xavier_uniform_(t, {gain = 2})
        b = 2 * math.sqrt(6 / 500)
        assert.is_true(t:max():item() <= b and t:max():item() > 0.999 * b)
        assert.is_true(math.abs(t:mean():item()) < 0.02 * b)
    end)

    it("kaiming_normal_ has std gain / sqrt(fan)", function()
        tide.manual_seed(8)
        local t = tide.empty({200, 300})
        init.kaiming_normal_(t, {mode = "fan_out", nonlinearity = "relu"})
        local std = math.sqrt(2) / math.sqrt(200)
        assert.is_true(math.abs(t:std():item() - std) < 0.02 * std, "std " .. t:std():item() .. " vs " .. std)
        assert.is_true(math.abs(t:mean():item()) < 0.02 * std)
        init.kaiming_normal_(t)  -- leaky_relu, a = 0: sqrt(2) / sqrt(fan_in)
        std = math.sqrt(2) / math.sqrt(300)
        assert.is_true(math.abs(t:std():item() - std) < 0.02 * std)
    end)

    it("zeros_, ones_ and the option rule", function()
        local t = tide.randn({2, 2}, {requires_grad = true})
        assert.are.equal(t, init.zeros_(t))
        H.assert_close(t, {0, 0, 0, 0})
        init.ones_(t)
        H.assert_close(t, {1, 1, 1, 1})
        assert.is_nil(t.grad_fn)
        assert.matches("bad argument #2 to 'kaiming_normal_' %(unknown option 'gain'",
                       H.error_of(init.kaiming_normal_, t, {gain = 1}))
        assert.matches("mode must be 'fan_in' or 'fan_out'", H.error_of(init.kaiming_uniform_, t, {mode = "in"}))
        assert.matches("bad argument #1 to 'zeros_' %(tensor expected", H.error_of(init.zeros_, {}))
    end)
end)

describe("layers that need tide.F functions", function()
    local function needs(...)
        for _, f in ipairs({...}) do
            if not tide.F[f] then return false, "tide.F." .. f .. " is not in this build yet" end
        end
        return true
    end

    it("Conv2d, BatchNorm2d, pools: forward shapes and backward", function()
        local ok, why = needs("conv2d", "batch_norm", "max_pool2d", "adaptive_avg_pool2d")
        if not ok then pending(why) return end
        local m = nn.Sequential(nn.Conv2d(2, 4, 3, {padding = 1}), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                                nn.AdaptiveAvgPool2d(1), nn.Flatten())
        local x = tide.randn({3, 2, 8, 8})
        local y = m(x)
        assert.are.same({3, 4}, y:shape())
        y:sum():backward()
        for name, p in m:named_parameters() do assert.is_not_nil(p.grad, name) end
        assert.are.equal(1, m:get(1).num_batches_tracked:item())
        -- in evaluation mode the running statistics are used, and not updated
        m:evaluate()
        m(x)
        assert.are.equal(1, m:get(1).num_batches_tracked:item())
        assert.matches("bad argument #1 to 'BatchNorm2d' %(expected 4D input, got 2D",
                       H.error_of(m:get(1), tide.randn({2, 4})))
    end)
end)
