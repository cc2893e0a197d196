-- tide.gradcheck (central differences in float64) passes for every
-- differentiable op, and fails for a function whose gradient is wrong.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"

local function rn(shape)
    return tide.randn(shape, { dtype = "float64", requires_grad = true })
end

-- strictly positive, away from 0 (log, sqrt, pow bases, prod)
local function pos(shape)
    local t = (tide.rand(shape, { dtype = "float64" }) + 0.5):detach()
    t.requires_grad = true
    return t
end

local function long(values) return tide.tensor(values, "int64") end
local function mask(values) return tide.tensor(values, "uint8") end

-- each entry: name, function of the inputs, the inputs
local cases = {}
local function case(name, fn, inputs) cases[#cases + 1] = { name, fn, inputs } end

tide.manual_seed(7)

-- elementwise unary
for _, name in ipairs { "exp", "sin", "cos", "tanh", "sigmoid", "neg", "gelu" } do
    case(name, function(x) return x[name](x) end, function() return { rn { 3, 4 } } end)
end
for _, name in ipairs { "log", "log1p", "sqrt" } do
    case(name, function(x) return x[name](x) end, function() return { pos { 3, 4 } } end)
end
-- abs and relu are not differentiable at 0: keep the inputs away from it
case("abs", function(x) return x:abs() end, function()
    return { tide.tensor({ { -1.3, 0.7, 2.1 }, { 0.4, -0.25, -3 } }, { dtype = "float64", requires_grad = true }) }
end)
case("relu", function(x) return x:relu() end, function()
    return { tide.tensor({ { -1.3, 0.7, 2.1 }, { 0.4, -0.25, -3 } }, { dtype = "float64", requires_grad = true }) }
end)
case("unm", function(x) return -x end, function() return { rn { 5 } } end)

-- elementwise binary, with broadcasting and scalars
local binary = {
    add = function(a, b) return a + b end,
    sub = function(a, b) return a - b end,
    mul = function(a, b) return a * b end,
    div = function(a, b) return a / b end,
}
for name, f in pairs(binary) do
    local second = name == "div" and pos or rn
    case(name, f, function() return { rn { 3, 4 }, second { 3, 4 } } end)
    case(name .. " broadcast (3,1) (1,4)", f, function() return { rn { 3, 1 }, second { 1, 4 } } end)
    case(name .. " broadcast (2,3,4) (4)", f, function() return { rn { 2, 3, 4 }, second { 4 } } end)
    case(name .. " scalar right", function(a) return f(a, 1.5) end, function() return { rn { 2, 3 } } end)
    case(name .. " scalar left", function(a) return f(2.5, a) end, function() return { pos { 2, 3 } } end)
end
case("pow tensor", function(a, b) return a:pow(b) end, function() return { pos { 3, 4 }, rn { 3, 4 } } end)
case("pow tensor broadcast", function(a, b) return a:pow(b) end, function() return { pos { 2, 3 }, rn { 3 } } end)
case("pow ^ 2", function(a) return a ^ 2 end, function() return { rn { 3, 4 } } end)
case("pow ^ 3", function(a) return a ^ 3 end, function() return { rn { 3, 4 } } end)
case("pow ^ -0.5", function(a) return a ^ -0.5 end, function() return { pos { 3, 4 } } end)
case("pow scalar base", function(a) return 2 ^ a end, function() return { rn { 3, 4 } } end)
case("pow method scalar", function(a) return a:pow(1.5) end, function() return { pos { 5 } } end)
case("clamp", function(x) return x:clamp({ min = -0.5, max = 0.5 }) end, function()
    return { tide.tensor({ -1.2, -0.3, 0.1, 0.45, 0.9, 2 }, { dtype = "float64", requires_grad = true }) }
end)
case("clamp min only", function(x) return x:clamp({ min = 0 }) end, function()
    return { tide.tensor({ -1.2, -0.3, 0.1, 0.45 }, { dtype = "float64", requires_grad = true }) }
end)

-- reductions, over everything and per dim with and without keepdim
for _, name in ipairs { "sum", "mean", "var", "std" } do
    case(name, function(x) return x[name](x) end, function() return { rn { 3, 4 } } end)
    case(name .. " dim 1", function(x) return x[name](x, 1) end, function() return { rn { 3, 4 } } end)
    case(name .. " dim 0 keepdim", function(x) return x[name](x, 0, true) end, function() return { rn { 3, 4 } } end)
    case(name .. " dim -1 3-d", function(x) return x[name](x, -1) end, function() return { rn { 2, 3, 4 } } end)
end
-- norm(x, [p], [dim], [keepdim])
case("norm", function(x) return x:norm() end, function() return { rn { 3, 4 } } end)
case("norm dim 1", function(x) return x:norm(2, 1) end, function() return { rn { 3, 4 } } end)
case("norm p=1 dim 0 keepdim", function(x) return x:norm(1, 0, true) end, function() return { rn { 3, 4 } } end)
case("norm p=3 dim -1 3-d", function(x) return x:norm(3, -1) end, function() return { rn { 2, 3, 4 } } end)
case("prod", function(x) return x:prod() end, function() return { pos { 3, 4 } } end)
case("prod dim 1", function(x) return x:prod(1) end, function() return { pos { 3, 4 } } end)
case("prod dim 0 keepdim", function(x) return x:prod(0, true) end, function() return { pos { 3, 4 } } end)
for _, name in ipairs { "max", "min" } do
    -- distinct values, far apart, so the extremum is unique
    local function distinct()
        return { tide.tensor({ { 1.5, -0.5, 4.25, 2 }, { 0.25, 3.5, -2, 5.5 }, { -1, 3, 0.75, 1.25 } },
            { dtype = "float64", requires_grad = true }) }
    end
    case(name, function(x) return x[name](x) end, distinct)
    case(name .. " dim 1", function(x) return (x[name](x, 1)) end, distinct)
    case(name .. " dim 0 keepdim", function(x) return (x[name](x, 0, true)) end, distinct)
end
case("softmax", function(x) return x:softmax(1) end, function() return { rn { 3, 5 } } end)
case("softmax dim 0", function(x) return x:softmax(0) end, function() return { rn { 3, 5 } } end)
case("log_softmax", function(x) return x:log_softmax(-1) end, function() return { rn { 3, 5 } } end)
case("log_softmax 3-d", function(x) return x:log_softmax(1) end, function() return { rn { 2, 3, 4 } } end)

-- linear algebra
case("mm", function(a, b) return a:mm(b) end, function() return { rn { 3, 4 }, rn { 4, 2 } } end)
case("bmm", function(a, b) return a:bmm(b) end, function() return { rn { 2, 3, 4 }, rn { 2, 4, 2 } } end)
case("matmul 2-d", function(a, b) return a:matmul(b) end, function() return { rn { 3, 4 }, rn { 4, 2 } } end)
case("matmul dot", function(a, b) return a:matmul(b) end, function() return { rn { 4 }, rn { 4 } } end)
case("matmul vec mat", function(a, b) return a:matmul(b) end, function() return { rn { 3 }, rn { 3, 2 } } end)
case("matmul mat vec", function(a, b) return a:matmul(b) end, function() return { rn { 2, 3 }, rn { 3 } } end)
case("matmul broadcast batch", function(a, b) return a:matmul(b) end,
    function() return { rn { 2, 1, 3, 4 }, rn { 3, 4, 2 } } end)
case("addmm", function(i, a, b) return tide.addmm(i, a, b) end,
    function() return { rn { 3, 2 }, rn { 3, 4 }, rn { 4, 2 } } end)
case("addmm broadcast beta alpha", function(i, a, b) return tide.addmm(i, a, b, { beta = 0.5, alpha = 2 }) end,
    function() return { rn { 2 }, rn { 3, 4 }, rn { 4, 2 } } end)

-- views
case("view", function(x) return x:view { 4, 3 } end, function() return { rn { 2, 6 } } end)
case("reshape", function(x) return x:reshape { -1 } end, function() return { rn { 2, 3 } } end)
case("reshape of transpose", function(x) return x:t():reshape { 6 } end, function() return { rn { 2, 3 } } end)
case("transpose", function(x) return x:transpose(0, 2) end, function() return { rn { 2, 3, 4 } } end)
case("permute", function(x) return x:permute { 2, 0, 1 } end, function() return { rn { 2, 3, 4 } } end)
case("t", function(x) return x:t() end, function() return { rn { 2, 3 } } end)
case("narrow", function(x) return x:narrow(1, 1, 2) end, function() return { rn { 3, 4 } } end)
case("select", function(x) return x:select(0, 1) end, function() return { rn { 3, 4 } } end)
case("squeeze", function(x) return x:squeeze() end, function() return { rn { 1, 3, 1 } } end)
case("squeeze dim", function(x) return x:squeeze(0) end, function() return { rn { 1, 3 } } end)
case("unsqueeze", function(x) return x:unsqueeze(1) end, function() return { rn { 3, 2 } } end)
case("expand", function(x) return x:expand { 2, 3, 4 } end, function() return { rn { 3, 1 } } end)
case("contiguous", function(x) return x:t():contiguous() end, function() return { rn { 3, 2 } } end)
case("flatten", function(x) return x:flatten() end, function() return { rn { 2, 3, 2 } } end)
case("clone", function(x) return x:clone() end, function() return { rn { 4 } } end)

-- joining, splitting
case("cat", function(a, b) return tide.cat({ a, b }, 0) end, function() return { rn { 2, 3 }, rn { 1, 3 } } end)
case("cat dim 1", function(a, b) return tide.cat({ a, b }, 1) end, function() return { rn { 2, 3 }, rn { 2, 2 } } end)
case("stack", function(a, b) return tide.stack({ a, b }, 1) end, function() return { rn { 2, 3 }, rn { 2, 3 } } end)
-- pieces weighted differently so that a mixed-up gradient shows
case("split", function(x)
    local p = x:split(2, 0)
    return p[1] * 1 + p[2] * 2 - p[3]:sum() * 3
end, function() return { rn { 5, 3 } } end)
case("chunk", function(x)
    local p = x:chunk(2, 1)
    return p[1] * 3 - p[2] * 0.5
end, function() return { rn { 3, 4 } } end)

-- indexing
case("index_select", function(x) return x:index_select(0, long { 2, 0, 2 }) end, function() return { rn { 3, 4 } } end)
case("gather", function(x) return x:gather(1, long { { 0, 0 }, { 3, 1 }, { 2, 2 } }) end,
    function() return { rn { 3, 4 } } end)
case("scatter", function(x, s) return x:scatter(1, long { { 0, 2 }, { 3, 1 }, { 1, 0 } }, s) end,
    function() return { rn { 3, 4 }, rn { 3, 2 } } end)
case("masked_fill", function(x) return x:masked_fill(mask { { 1, 0, 1 }, { 0, 0, 1 } }, 2) end,
    function() return { rn { 2, 3 } } end)
case("where", function(a, b) return tide.where(mask { { 1, 0, 1 }, { 0, 1, 1 } }, a, b) end,
    function() return { rn { 2, 3 }, rn { 3 } } end)

-- a composite, for the engine's accumulation across paths
case("composite", function(x, w)
    local h = (x:matmul(w)):tanh()
    return (h * h + h:sigmoid()):sum(1) / x:norm()
end, function() return { rn { 3, 4 }, rn { 4, 2 } } end)

describe("tide.gradcheck", function()
    for _, c in ipairs(cases) do
        local name, fn, make = c[1], c[2], c[3]
        it("passes for " .. name, function()
            local inputs = make()
            local ok, res = pcall(tide.gradcheck, fn, inputs)
            assert(ok, "gradcheck raised: " .. tostring(res))
            assert(res == true, name .. ": gradcheck did not pass")
        end)
    end

    it("fails for a function with a wrong gradient (detach in the wrong place)", function()
        -- d/dx (x * x) = 2x, but with one factor detached autograd gives x
        local fn = function(x) return x * x:detach() end
        local inputs = { tide.tensor({ 0.5, -1.5, 2 }, { dtype = "float64", requires_grad = true }) }
        local ok, res = pcall(tide.gradcheck, fn, inputs)
        assert(not ok or res == false, "gradcheck passed a wrong gradient")
    end)

    it("fails for a function whose gradient is missing (detached output)", function()
        local fn = function(x) return x:exp():detach() + 0 * x end
        local inputs = { tide.tensor({ 0.5, -1.5, 2 }, { dtype = "float64", requires_grad = true }) }
        local ok, res = pcall(tide.gradcheck, fn, inputs)
        assert(not ok or res == false, "gradcheck passed a missing gradient")
    end)

    it("the same wrong function passes once the detach is removed", function()
        local fn = function(x) return x * x end
        local inputs = { tide.tensor({ 0.5, -1.5, 2 }, { dtype = "float64", requires_grad = true }) }
        assert.is_true(tide.gradcheck(fn, inputs))
    end)
end)

describe("tide.gradcheck over a module's parameters", function()
    local nn = tide.nn

    local function model()
        tide.manual_seed(3)
        return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)):double()
    end

    it("passes for a model's weights and biases, and leaves their .grad alone", function()
        local m = model()
        local x = tide.randn({5, 3}, { dtype = "float64" })
        local params = m:parameters()
        local before = params[1]:clone()
        params[2].grad = tide.ones(params[2]:shape(), "float64")
        assert.is_true(tide.gradcheck(function(a) return m(a) end, { x }, { params = params }))
        -- each element moved and put back; the caller's .grad kept
        assert.are.same(before:totable(), params[1]:totable())
        assert.are.same({ 1, 1, 1, 1 }, params[2].grad:totable())
        assert.is_nil(params[1].grad)
    end)

    it("checks the inputs and the parameters together", function()
        local m = model()
        local x = tide.randn({2, 3}, { dtype = "float64", requires_grad = true })
        assert.is_true(tide.gradcheck(function(a) return (m(a) * m(a)):sum() end, { x }, { params = m:parameters() }))
    end)

    it("fails, naming the parameter, where a module's backward is wrong", function()
        -- w * w:detach() has gradient w, not 2w: a hand-made wrong backward
        local w = tide.tensor({ 0.5, -1.5, 2 }, { dtype = "float64", requires_grad = true })
        local x = tide.tensor({ 1, 2, 3 }, "float64")
        local ok, err = pcall(tide.gradcheck, function(a) return a * w * w:detach() end, { x }, { params = { w } })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("gradcheck: params[1] element (0)", 1, true), err)
        -- the numbers: analytic x0 w0 = 0.5, numeric 2 x0 w0 = 1 (times the fixed weight)
        assert.truthy(tostring(err):find("analytic gradient", 1, true), err)
    end)

    it("wants float64 parameters that require grad", function()
        local m = nn.Linear(2, 2)
        local x = tide.randn({1, 2}, { dtype = "float64" })
        local ok, err = pcall(tide.gradcheck, function(a) return m(a) end, { x }, { params = m:parameters() })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("params[1] is float32; check in float64 (model:double())", 1, true), err)
        ok, err = pcall(tide.gradcheck, function(a) return a end, { x }, { params = { x } })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("params[1] does not require grad", 1, true), err)
        ok, err = pcall(tide.gradcheck, function(a) return a end, { x }, { parameters = {} })
        assert.is_false(ok)
        assert.truthy(tostring(err):find("unknown option 'parameters'; known: atol, eps, params, rtol", 1, true), err)
    end)
end)
