-- all, any, logsumexp, cumsum, cumprod and F.one_hot: PyTorch's reference
-- vectors (tests/reference/reduce_scan.json, from gen_reduce_scan.py),
-- values worked out by hand, float64 gradchecks, errors, and the same bits
-- at any thread count.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"

local data = cjson.decode(H.read_file("tests/reference/reduce_scan.json"))
local inf, nan = math.huge, 0 / 0

local decode = H.decode_spec

local function tensor(spec, requires_grad)
    spec = decode(spec)
    local shape = H.ints(spec.shape)
    for _, n in ipairs(shape) do
        if n == 0 then return tide.zeros(shape, { dtype = spec.dtype }) end
    end
    return H.tensor(spec, requires_grad)
end

local ops = {
    all = function(x, a)
        if a.dim == nil then return x:all() end
        return x:all(a.dim, a.keepdim)
    end,
    any = function(x, a)
        if a.dim == nil then return tide.any(x) end
        return tide.any(x, a.dim, a.keepdim)
    end,
    logsumexp = function(x, a) return x:logsumexp(a.dim, a.keepdim) end,
    cumsum = function(x, a) return x:cumsum(a.dim, a.dtype and { dtype = a.dtype } or nil) end,
    cumprod = function(x, a) return tide.cumprod(x, a.dim, a.dtype and { dtype = a.dtype } or nil) end,
    one_hot = function(x, a)
        if a.num_classes == nil then return tide.F.one_hot(x) end
        return tide.nn.functional.one_hot(x, a.num_classes)
    end,
}

local function run_case(case)
    local args = H.ints(case.args)
    local with_grad = case.grads ~= nil
    local x = tensor(case.inputs[1], with_grad)
    local f = assert(ops[case.op], "no dispatcher entry for " .. case.op)
    if case.error then
        local err = H.error_of(f, x, args)
        assert(err, "no error; PyTorch says: " .. case.torch_error)
        assert(err:find(case.op, 1, true), "the error does not name " .. case.op .. ": " .. err)
        assert(err:find(case.error, 1, true), "expected '" .. case.error .. "' in: " .. err)
        return
    end
    local out = f(x, args)
    H.check_tensor(out, decode(case.outputs[1]), case.rtol, case.atol, "output")
    if not with_grad then return end
    ;(out * tensor(case.weights[1])):sum():backward()
    H.check_tensor(x.grad, decode(case.grads[1]), case.rtol, case.grad_atol, "grad")
end

describe("reference vectors from PyTorch", function()
    it("cover every op, with gradients and errors", function()
        local ops_seen, grads, errors = {}, 0, 0
        for _, c in ipairs(data.cases) do
            ops_seen[c.op] = true
            if c.grads then grads = grads + 1 end
            if c.error then errors = errors + 1 end
        end
        for op in pairs(ops) do assert(ops_seen[op], "no reference case for " .. op) end
        assert(#data.cases >= 150 and grads >= 40 and errors >= 10)
    end)
    for _, case in ipairs(data.cases) do
        it(case.name .. " (" .. case.op .. ")", function() run_case(case) end)
    end
end)

describe("all and any", function()
    it("give uint8 for every input dtype, NaN counting as true", function()
        for _, dt in ipairs { "float32", "float64", "int64", "uint8" } do
            local x = tide.tensor({ { 1, 0 }, { 2, 3 } }, dt)
            assert.equal("uint8", x:all():dtype())
            assert.same({ 0, 1 }, x:all(1):totable())
            assert.same({ 1, 1 }, x:any(1):totable())
        end
        assert.equal(1, tide.tensor({ nan, 1 }):all():item())
    end)
    it("of nothing: all is true, any is false", function()
        assert.equal(1, tide.zeros({ 0 }):all():item())
        assert.equal(0, tide.zeros({ 0 }):any():item())
        assert.same({ { 1, 1 } }, tide.zeros({ 0, 2 }):all(0, true):totable())
    end)
    it("record no gradient", function()
        local x = tide.tensor({ 1.0, 2.0 }, { requires_grad = true })
        assert.is_false(x:all().requires_grad)
    end)
    it("reject a bad keepdim", function()
        assert.matches("boolean", H.error_of(tide.all, tide.ones({ 2 }), 0, "yes"))
    end)
end)

describe("logsumexp", function()
    it("is log(sum(exp)) by hand, and stable at any magnitude", function()
        -- log(e^0 + e^0) = log 2; 1e4 + log(1 + e^-1)
        H.assert_close(tide.tensor({ { 0, 0 }, { 1e4, 1e4 - 1 } }, "float64"):logsumexp(1),
            { math.log(2), 1e4 + math.log(1 + math.exp(-1)) })
        local big = tide.tensor({ 1e30, 1e30 }):logsumexp(0):item()
        H.assert_close({ big }, { 1e30 }, 1e-6, 0)
    end)
    it("gives -inf for rows of -inf and inf where a +inf is", function()
        local x = tide.tensor({ { -inf, -inf }, { inf, 1 }, { -inf, inf } })
        assert.same({ -inf, inf, inf }, x:logsumexp(1):totable())
    end)
    it("takes a list of dims in any order, with keepdim", function()
        local x = tide.randn({ 2, 3, 4 }, { dtype = "float64" })
        local want = x:exp():sum(2, true):sum(0, true):log()
        H.assert_close(x:logsumexp({ 2, 0 }, true), H.values(want), 1e-12, 1e-12)
        assert.same({ 3 }, x:logsumexp({ -1, 0 }):shape())
    end)
    it("passes gradcheck in float64, over one dim and several", function()
        local x = tide.randn({ 3, 4, 2 }, { dtype = "float64", requires_grad = true })
        assert.is_true(tide.gradcheck(function(a) return a:logsumexp(1) end, { x }))
        assert.is_true(tide.gradcheck(function(a) return a:logsumexp({ 0, 2 }, true) end, { x }))
    end)
    it("names itself and the argument in errors", function()
        local x = tide.ones({ 2, 2 })
        assert.matches("logsumexp.*dim expected", H.error_of(tide.logsumexp, x))
        assert.matches("logsumexp.*more than once", H.error_of(tide.logsumexp, x, { 1, -1 }))
        assert.matches("logsumexp.*at least one", H.error_of(tide.logsumexp, x, {}))
    end)
end)

describe("cumsum and cumprod", function()
    it("scan by hand, along any dim", function()
        local x = tide.tensor({ { 1, 2, 3 }, { 4, 5, 6 } }, "float64")
        assert.same({ { 1, 3, 6 }, { 4, 9, 15 } }, x:cumsum(1):totable())
        assert.same({ { 1, 2, 3 }, { 5, 7, 9 } }, x:cumsum(-2):totable())
        assert.same({ { 1, 2, 6 }, { 4, 20, 120 } }, x:cumprod(1):totable())
    end)
    it("promote integers to int64 and take a dtype", function()
        local u = tide.tensor({ 200, 100 }, "uint8")
        assert.equal("int64", u:cumsum(0):dtype())
        assert.same({ 200, 300 }, u:cumsum(0):totable())
        assert.same({ 200, 44 }, u:cumsum(0, { dtype = "uint8" }):totable()) -- 300 mod 256
        assert.equal("float64", u:cumprod(0, { dtype = "float64" }):dtype())
    end)
    it("give cumprod's exact gradient where the input has zeros", function()
        -- x = (2, 0, 3, 0, 5), g = (1, 2, 3, 4, 5): out = (2, 0, 0, 0, 0);
        -- d/dx0 = g0 = 1 (later terms hold the 0); d/dx1 = x0 (g1 + g2 x2) = 2 (2 + 9) = 22;
        -- after the first zero another zero cuts every product: 0
        local x = tide.tensor({ 2, 0, 3, 0, 5 }, { dtype = "float64", requires_grad = true })
        x:cumprod(0):backward(tide.tensor({ 1, 2, 3, 4, 5 }, "float64"))
        assert.same({ 1, 22, 0, 0, 0 }, x.grad:totable())
        -- a lone leading zero: d/dx0 = g0 + g1 x1 + g2 x1 x2 = 1 + 2*3 + 3*12 = 43
        local y = tide.tensor({ 0, 3, 4 }, { dtype = "float64", requires_grad = true })
        y:cumprod(0):backward(tide.tensor({ 1, 2, 3 }, "float64"))
        assert.same({ 43, 0, 0 }, y.grad:totable())
    end)
    it("pass gradcheck in float64, cumprod with and without zeros", function()
        local x = tide.randn({ 3, 5 }, { dtype = "float64", requires_grad = true })
        assert.is_true(tide.gradcheck(function(a) return a:cumsum(1) end, { x }))
        assert.is_true(tide.gradcheck(function(a) return a:cumsum(0) end, { x }))
        assert.is_true(tide.gradcheck(function(a) return a:cumprod(1) end, { x }))
        -- one zero per row, not at the edge of a finite difference's reach
        -- of another: central differences see the exact derivative there
        local z = tide.tensor({ { 1.5, 0, -0.7, 2 }, { 0, 0.9, 1.3, -1.1 }, { 0.8, 1.2, 0.6, 0 } },
            { dtype = "float64", requires_grad = true })
        assert.is_true(tide.gradcheck(function(a) return a:cumprod(1) end, { z }))
        assert.is_true(tide.gradcheck(function(a) return a:cumprod(0) end, { z }))
    end)
    it("reject a missing dim and unknown options", function()
        local x = tide.ones({ 2 })
        assert.matches("cumsum.*dim expected", H.error_of(tide.cumsum, x))
        assert.matches("unknown option 'type'", H.error_of(tide.cumprod, x, 0, { type = "float64" }))
        assert.matches("cumsum.*out of range", H.error_of(tide.cumsum, x, 1))
    end)
end)

describe("F.one_hot", function()
    it("is in tide.F and tide.nn.functional", function()
        assert.equal(tide.F.one_hot, tide.nn.functional.one_hot)
    end)
    it("takes num_classes positionally or by name", function()
        local y = tide.tensor({ 1, 0 }, "int64")
        assert.same({ { 0, 1, 0 }, { 1, 0, 0 } }, tide.F.one_hot(y, 3):totable())
        assert.same({ { 0, 1, 0 }, { 1, 0, 0 } }, tide.F.one_hot(y, { num_classes = 3 }):totable())
        assert.equal("int64", tide.F.one_hot(y):dtype())
    end)
    it("names the bad class", function()
        assert.matches("one_hot.*class 7 is outside %[0, 3%)",
            H.error_of(tide.F.one_hot, tide.tensor({ 7 }, "int64"), 3))
        assert.matches("num_classes", H.error_of(tide.F.one_hot, tide.tensor({ 1 }, "int64"), -5))
    end)
end)

describe("thread count", function()
    it("leaves the bits of logsumexp, cumsum, cumprod and all the same", function()
        tide.manual_seed(3)
        local x = tide.randn({ 64, 3000 })
        local saved = tide.get_num_threads()
        local function run()
            return { x:logsumexp(1), x:cumsum(1), x:cumsum(0), (x * 0.001 + 1):cumprod(1), x:gt(-4):all(1) }
        end
        tide.set_num_threads(1)
        local one = run()
        tide.set_num_threads(math.max(2, saved))
        local many = run()
        tide.set_num_threads(saved)
        for i = 1, #one do assert.is_true(H.same_values(one[i], many[i]), "result " .. i) end
    end)
end)
