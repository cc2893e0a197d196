-- The activations (tide.F, tide.nn) and the elementwise math of the op
-- table: values and gradients against PyTorch 1.13 over every branch and
-- its edges, NaN and infinities (tests/reference/activations.json, from
-- tests/reference/gen_activations.py), float64 gradchecks, the modules'
-- parameters and printing, and the bad arguments.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"

local data = cjson.decode(H.read_file("tests/reference/activations.json"))
local F, nn = tide.F, tide.nn

local function arg_value(a)
    if type(a) == "table" and a.values then
        local t = H.tensor(H.decode_spec(a))
        if a.grad then t.requires_grad = true end
        return t
    end
    return H.ints(a) -- dims come back from JSON as floats
end

local function fn_of(c) return c.ns == "F" and F[c.fn] or tide[c.fn] end

describe("activations and elementwise math against PyTorch", function()
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local args = {}
            for i, a in ipairs(c.args) do args[i] = arg_value(a) end
            local n = #c.args
            if c.options ~= cjson.null then
                n = n + 1
                args[n] = H.ints(c.options)
            end
            local out = fn_of(c)(table.unpack(args, 1, n))
            local f32 = c.output.dtype == "float32"
            local rtol, atol = f32 and 2e-5 or 1e-10, f32 and 1e-6 or 1e-12
            H.check_tensor(out, H.decode_spec(c.output), rtol, atol, "output")
            if c.weight then
                (out * H.tensor(H.decode_spec(c.weight))):sum():backward()
                for key, want in pairs(c.grads) do
                    H.check_tensor(args[tonumber(key:sub(2))].grad, H.decode_spec(want), rtol, atol,
                                   "grad " .. key)
                end
            end
        end)
    end
end)

describe("the activations' gradients", function()
    -- away from the kinks (0, +-1, +-3, 6, the thresholds) by at least 0.05
    local function sample(shape)
        tide.manual_seed(5)
        local x = tide.randn(shape, {dtype = "float64"}) * 3
        local frac = x - x:round()
        return (x + frac:abs():lt(0.05):double() * 0.1):requires_grad_()
    end
    local fns = {
        elu = function(x) return F.elu(x, {alpha = 0.7}) end,
        selu = F.selu,
        celu = function(x) return F.celu(x, {alpha = 1.5}) end,
        silu = F.silu,
        mish = F.mish,
        relu6 = F.relu6,
        hardtanh = function(x) return F.hardtanh(x, {min_val = -2.5, max_val = 1.5}) end,
        hardswish = F.hardswish,
        hardsigmoid = F.hardsigmoid,
        softplus = function(x) return F.softplus(x, {beta = 1.5, threshold = 3}) end,
        softsign = F.softsign,
        logsigmoid = F.logsigmoid,
        threshold = function(x) return F.threshold(x, 0.5, -1) end,
        gelu_tanh = function(x) return F.gelu(x, {approximate = "tanh"}) end,
        glu = function(x) return F.glu(x, {dim = 0}) end,
        softmin = function(x) return F.softmin(x, 1) end,
    }
    for name, fn in pairs(fns) do
        it(name .. " passes gradcheck in float64", function()
            assert.is_true(tide.gradcheck(fn, {sample({4, 5})}))
        end)
    end
    it("prelu passes gradcheck in float64, input and weight", function()
        local w = tide.tensor({0.25, -0.5, 2}, "float64"):requires_grad_()
        assert.is_true(tide.gradcheck(F.prelu, {sample({2, 3, 4}), w}))
        local w1 = tide.tensor({0.3}, "float64"):requires_grad_()
        assert.is_true(tide.gradcheck(F.prelu, {sample({3, 5}), w1}))
    end)
    it("atan2 passes gradcheck in float64", function()
        assert.is_true(tide.gradcheck(tide.atan2, {sample({3, 4}), sample({3, 4}) + 0.1}))
    end)
end)

describe("the activation modules", function()
    it("print as PyTorch", function()
        local mods = {
            ["ELU"] = nn.ELU(), ["ELU alpha"] = nn.ELU({alpha = 2}), ["SELU"] = nn.SELU(),
            ["CELU"] = nn.CELU(), ["SiLU"] = nn.SiLU(), ["Mish"] = nn.Mish(), ["ReLU6"] = nn.ReLU6(),
            ["Hardtanh"] = nn.Hardtanh(), ["Hardtanh range"] = nn.Hardtanh({min_val = -2, max_val = 3.5}),
            ["Hardswish"] = nn.Hardswish(), ["Hardsigmoid"] = nn.Hardsigmoid(), ["Softplus"] = nn.Softplus(),
            ["Softplus beta"] = nn.Softplus({beta = 2.5, threshold = 10}), ["Softsign"] = nn.Softsign(),
            ["LogSigmoid"] = nn.LogSigmoid(), ["Threshold"] = nn.Threshold(0.1, 20), ["PReLU"] = nn.PReLU(),
            ["PReLU 3"] = nn.PReLU({num_parameters = 3}), ["GLU"] = nn.GLU(), ["Softmin"] = nn.Softmin(1),
            ["GELU"] = nn.GELU(), ["GELU tanh"] = nn.GELU({approximate = "tanh"}),
        }
        for key, want in pairs(data.reprs) do
            assert.are.equal(want, tostring(assert(mods[key], key)), key)
        end
    end)

    it("compute what their functions do", function()
        tide.manual_seed(3)
        local x = tide.randn({3, 4}) * 4
        local same = {
            {nn.ELU({alpha = 0.5}), F.elu(x, {alpha = 0.5})}, {nn.SELU(), F.selu(x)},
            {nn.CELU({alpha = 2}), F.celu(x, 2)}, {nn.SiLU(), F.silu(x)}, {nn.Mish(), F.mish(x)},
            {nn.ReLU6(), F.relu6(x)}, {nn.Hardtanh({min_val = -2, max_val = 0.5}), F.hardtanh(x, -2, 0.5)},
            {nn.Hardswish(), F.hardswish(x)}, {nn.Hardsigmoid(), F.hardsigmoid(x)},
            {nn.Softplus({beta = 2, threshold = 3}), F.softplus(x, {beta = 2, threshold = 3})},
            {nn.Softsign(), F.softsign(x)}, {nn.LogSigmoid(), F.logsigmoid(x)},
            {nn.Threshold(0.5, -7), F.threshold(x, 0.5, -7)}, {nn.GLU({dim = 1}), F.glu(x, {dim = 1})},
            {nn.Softmin(0), F.softmin(x, 0)}, {nn.GELU({approximate = "tanh"}), F.gelu(x, {approximate = "tanh"})},
            {nn.GELU(), F.gelu(x)},
        }
        for i, p in ipairs(same) do
            assert.is_true(H.same_values(p[1](x), p[2]), tostring(p[1]) .. " (" .. i .. ")")
        end
        assert.is_false(H.same_values(nn.GELU()(x), nn.GELU({approximate = "tanh"})(x)))
    end)

    it("PReLU keeps PyTorch's weight, and learns it", function()
        local m = nn.PReLU({num_parameters = 3, init = 0.1})
        local keys = {}
        for k in pairs(m:state_dict()) do keys[#keys + 1] = k end
        assert.are.same(data.state_dict_keys.PReLU, keys)
        H.assert_close(m.weight, {0.1, 0.1, 0.1}, 1e-7, 0, "weight")
        local x = tide.tensor({{{-1, 2}, {-3, -4}, {5, -6}}})
        m(x):sum():backward()
        H.assert_close(m.weight.grad, {-1, -7, -6}, 1e-6, 1e-6, "weight grad")
        assert.are.equal(1, #m:parameters())
    end)

    it("PReLU's weight gradient has the same bits at 1 and 2 threads", function()
        local prev = tide.get_num_threads()
        local grads = {}
        for _, t in ipairs({1, 2}) do
            tide.set_num_threads(t)
            tide.manual_seed(9)
            local x = tide.randn({64, 8, 33, 17})
            local w = tide.full({8}, 0.25):requires_grad_()
            F.prelu(x, w):sum():backward()
            grads[t] = w.grad
        end
        tide.set_num_threads(prev)
        assert.is_true(H.same_values(grads[1], grads[2]))
    end)
end)

describe("the docs", function()
    it("have a section for every activation function and module", function()
        local headings = {}
        for line in io.lines("docs/activations.md") do
            local name = line:match("^## ([%w_]+)")
            if name then headings[name] = true end
        end
        local names = {"prelu", "glu", "softmin", "gelu", "ELU", "SELU", "CELU", "SiLU", "Mish", "ReLU6",
                       "Hardtanh", "Hardswish", "Hardsigmoid", "Softplus", "Softsign", "LogSigmoid",
                       "Threshold", "GELU", "PReLU", "GLU", "Softmin"}
        for _, row in ipairs(tide.op_table()) do
            if row.scope ~= "tensor" then names[#names + 1] = row.name end
        end
        for _, name in ipairs(names) do
            assert.is_true(headings[name], name .. " has no section in docs/activations.md")
            assert.truthy(F[name] or nn[name], name .. " is documented but missing")
        end
    end)
end)

describe("bad arguments", function()
    local x = tide.randn({2, 4})
    local function err(fn, ...) return H.error_of(fn, ...) end

    it("name the function and the unknown option", function()
        assert.matches("'elu'.*unknown option 'inplace'; known: alpha", err(F.elu, x, {inplace = true}))
        assert.matches("'silu'.*unknown option 'beta'", err(F.silu, x, {beta = 1}))
        assert.matches("ELU.*unknown option 'inplace'", err(nn.ELU, {inplace = true}))
    end)
    it("refuse an unknown gelu approximation", function()
        assert.matches("'gelu'.*approximate must be one of \"none\", \"tanh\", got \"tan\"",
                       err(F.gelu, x, {approximate = "tan"}))
        assert.matches("approximate must be one of", err(nn.GELU, {approximate = "exact"}))
    end)
    it("require threshold's threshold and value", function()
        assert.matches("'threshold'.*value expected", err(F.threshold, x, 1))
        assert.matches("'threshold'.*threshold expected", err(tide.threshold, x))
        assert.matches("Threshold.*value must be a number", err(nn.Threshold, 1))
    end)
    it("refuse bad parameter values", function()
        assert.matches("'celu'.*alpha must not be 0", err(F.celu, x, {alpha = 0}))
        assert.matches("'elu'.*alpha must be a number, got string", err(F.elu, x, "1"))
        assert.matches("'softplus'.*given twice", err(F.softplus, x, 2, {beta = 2}))
        assert.matches("'selu'.*no parameters expected", err(tide.selu, x, 1))
        assert.matches("Hardtanh.*max_val %(%-2%) must be greater than min_val", err(nn.Hardtanh, {max_val = -2}))
    end)
    it("check prelu's weight, glu's halves and softmin's dim", function()
        assert.matches("prelu.*weight has 3 elements, but the input has 4 channels",
                       err(F.prelu, tide.randn({2, 4}), tide.ones({3})))
        assert.matches("prelu.*weight must be 1%-d or 0%-d", err(F.prelu, x, tide.ones({4, 1})))
        assert.matches("glu.*halving dimension must be even, but dimension 0 is size 3",
                       err(F.glu, tide.randn({3, 2}), {dim = 0}))
        assert.matches("glu.*0%-d", err(F.glu, tide.tensor(1.0)))
        assert.matches("softmin.*dim expected", err(F.softmin, x))
        assert.matches("Softmin.*dim expected", err(nn.Softmin))
    end)
end)

describe("the logical ops", function()
    it("take no gradient and give uint8", function()
        local a = tide.randn({3}):requires_grad_()
        for _, y in ipairs({a:logical_not(), a:logical_and(a), tide.logical_or(a, 0), tide.logical_xor(1, a)}) do
            assert.are.equal("uint8", y:dtype())
            assert.is_false(y.requires_grad)
        end
    end)
    it("broadcast, and take numbers", function()
        local a = tide.tensor({{0, 1}, {2, 0}}, "int64")
        assert.are.same({{0, 1}, {1, 0}}, tide.logical_and(a, 5):totable())
        assert.are.same({{1, 1}, {1, 0}}, tide.logical_or(a, tide.tensor({1, 0}, "uint8")):totable())
    end)
end)
