-- floor, ceil, round, trunc, isnan, isinf, isfinite, nan_to_num, isclose,
-- allclose and where against PyTorch (tests/reference/rounding.json, from
-- tests/reference/gen_rounding.py), then the gradchecks, the errors and the
-- cases PyTorch has no vector for.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local cjson = require "cjson"

local data = cjson.decode(H.read_file("tests/reference/rounding.json"))
local number = H.json_number

local function spec(v)
    if v == cjson.null then return nil end
    if type(v) ~= "table" then return number(v) end
    if v.int then return math.tointeger(v.int) end
    local values = {}
    for i, x in ipairs(v.values) do values[i] = number(x) end
    return {values = values, shape = v.shape, dtype = v.dtype}
end

local function input(v, grad)
    local s = spec(v)
    if type(s) ~= "table" then return s end
    if #s.values == 0 then return tide.zeros(H.ints(s.shape), {dtype = s.dtype}) end
    return H.tensor(s, grad and (s.dtype == "float64"))
end

describe("rounding and non-finite ops against PyTorch", function()
    for _, case in ipairs(data.cases) do
        it(case.name, function()
            local grad = case.grads ~= nil
            local args = {}
            for i, v in ipairs(case.inputs) do args[i] = input(v, grad and (i > 1 or case.op ~= "where")) end
            local opts = H.from_json(case.opts)
            local y
            if case.op == "where" then
                y = tide.where(args[1], args[2], args[3])
            elseif case.op == "isclose" or case.op == "allclose" then
                y = tide[case.op](args[1], args[2], opts)
            elseif next(opts) then
                y = tide[case.op](args[1], opts)
            else
                y = tide[case.op](args[1])
            end
            if type(case.output) == "boolean" then
                assert.are.equal(case.output, y)
                return
            end
            -- every result here is exact in PyTorch's arithmetic, so bits agree
            H.check_tensor(y, spec(case.output), 0, 0, "value")
            if not grad then return end
            local w = H.tensor(spec(case.weights))
            local loss = (y * w):sum()
            loss:backward()
            for i, g in ipairs(case.grads) do
                if g ~= cjson.null then H.check_tensor(args[i].grad, spec(g), 0, 0, "grad " .. i) end
            end
        end)
    end
end)

describe("gradcheck in float64", function()
    local function off_integer(shape)
        return (tide.randn(shape, {dtype = "float64"}) * 4):floor() / 4 + 0.125
    end

    it("round with decimals", function()
        tide.manual_seed(3)
        local x = (off_integer{3, 4} / 10):requires_grad_()
        assert.is_true(tide.gradcheck(function(t) return t:round{decimals = 1} end, {x}))
    end)

    it("nan_to_num", function()
        tide.manual_seed(4)
        local x = tide.randn({3, 4}, {dtype = "float64"}):requires_grad_()
        assert.is_true(tide.gradcheck(function(t) return t:nan_to_num{nan = 1} end, {x}))
    end)

    it("where, to both branches, broadcast", function()
        tide.manual_seed(5)
        local c = tide.randn{3, 1}:gt(0)
        local a = tide.randn({3, 4}, {dtype = "float64"}):requires_grad_()
        local b = tide.randn({4}, {dtype = "float64"}):requires_grad_()
        assert.is_true(tide.gradcheck(function(p, q) return tide.where(c, p, q) end, {a, b}))
    end)
end)

describe("by hand", function()
    it("floor and friends name their nodes and give int64 back unchanged", function()
        local x = tide.tensor({1.5, -1.5}, {requires_grad = true})
        assert.are.equal("FloorBackward", x:floor().grad_fn)
        assert.are.equal("RoundBackward", x:round{decimals = 1}.grad_fn)
        assert.are.equal("NanToNumBackward", x:nan_to_num().grad_fn)
        local i = tide.tensor({3, -4}, "int64")
        for _, op in ipairs({"floor", "ceil", "round", "trunc"}) do
            local r = i[op](i)
            assert.are.equal("int64", r:dtype())
            assert.are.same({3, -4}, r:totable())
        end
    end)

    it("isnan and friends are uint8 without a gradient", function()
        local x = tide.tensor({0 / 0, math.huge, -math.huge, 1}, {requires_grad = true})
        local n, i, f = x:isnan(), x:isinf(), x:isfinite()
        assert.are.equal("uint8", n:dtype())
        assert.is_false(n.requires_grad)
        assert.are.same({1, 0, 0, 0}, n:totable())
        assert.are.same({0, 1, 1, 0}, i:totable())
        assert.are.same({0, 0, 0, 1}, f:totable())
        -- strided input
        local m = tide.tensor({{0 / 0, 1}, {2, math.huge}}):t()
        assert.are.same({{1, 0}, {0, 0}}, m:isnan():totable())
        assert.are.same({{0, 1}, {1, 0}}, m:isfinite():totable())
    end)

    it("nan_to_num's defaults are the dtype's extremes", function()
        local y = tide.tensor({0 / 0, math.huge, -math.huge}, "float64"):nan_to_num()
        assert.are.same({0, 1.7976931348623157e308, -1.7976931348623157e308}, y:totable())
    end)

    it("allclose returns a Lua boolean", function()
        assert.are.equal(true, tide.allclose(tide.ones{3}, tide.ones{3}))
        assert.are.equal(false, tide.ones{3}:allclose(tide.zeros{3}))
    end)

    it("where takes numbers on either side and keeps the tensor's dtype", function()
        local c = tide.tensor({1, 0}, "uint8")
        assert.are.equal("float64", tide.where(c, tide.zeros({2}, {dtype = "float64"}), 1):dtype())
        assert.are.same({3, 9}, tide.where(c, 3, tide.tensor({8, 9}, "int64")):totable())
        assert.are.equal("int64", tide.where(c, 3, tide.tensor({8, 9}, "int64")):dtype())
    end)
end)

describe("errors", function()
    local x = tide.tensor{1.5}

    it("name the function, the argument and the problem", function()
        assert.matches("round.*decimals needs a float tensor",
                       H.error_of(tide.round, tide.tensor({1}, "int64"), {decimals = 1}))
        assert.matches("round.*unknown option 'digits'", H.error_of(tide.round, x, {digits = 1}))
        assert.matches("nan_to_num.*unknown option 'inf'", H.error_of(tide.nan_to_num, x, {inf = 1}))
        assert.matches("isclose.*same dtype.*float32 and float64",
                       H.error_of(tide.isclose, x, x:double()))
        assert.matches("isclose.*rtol must be >= 0", H.error_of(tide.isclose, x, x, {rtol = -1}))
        assert.matches("allclose.*atol must be >= 0", H.error_of(tide.allclose, x, x, {atol = -1}))
        assert.matches("allclose.*cannot be broadcast", H.error_of(tide.allclose, tide.ones{2}, tide.ones{3}))
        assert.matches("where.*does not fit the uint8",
                       H.error_of(tide.where, tide.tensor({1}, "uint8"), tide.tensor({1}, "uint8"), 300))
        assert.matches("where.*condition must be uint8", H.error_of(tide.where, x, x, x))
    end)
end)
