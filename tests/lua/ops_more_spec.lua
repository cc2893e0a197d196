-- Reductions over lists of dims, amax and amin, the dtype options, the
-- norms p = 0, negative, +-inf, "fro" and "nuc", clamp with tensor bounds,
-- index_add's alpha, split with sizes, masked_fill with a tensor value and
-- einsum: PyTorch's reference vectors (tests/reference/ops_more.json, from
-- gen_ops_more.py), values by hand, float64 gradchecks and errors.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"

local data = cjson.decode(H.read_file("tests/reference/ops_more.json"))
local decode = H.decode_spec

local function tensor(spec, requires_grad)
    spec = decode(spec)
    for _, n in ipairs(H.ints(spec.shape)) do
        if n == 0 then
            return tide.zeros(H.ints(spec.shape), { dtype = spec.dtype, requires_grad = requires_grad })
        end
    end
    return H.tensor(spec, requires_grad)
end

local function dtype_opts(a) return a.dtype and { dtype = a.dtype } or nil end

local ops = {
    sum = function(x, a) return x:sum(a.dims, a.keepdim or false, dtype_opts(a)) end,
    mean = function(x, a) return tide.mean(x, a.dims, a.keepdim or false, dtype_opts(a)) end,
    prod = function(x, a) return x:prod(a.dims, a.keepdim or false, dtype_opts(a)) end,
    amax = function(x, a) return x:amax(a.dims, a.keepdim or false) end,
    amin = function(x, a) return tide.amin(x, a.dims, a.keepdim or false) end,
    all = function(x, a) return x:all(a.dims, a.keepdim or false) end,
    any = function(x, a) return tide.any(x, a.dims, a.keepdim or false) end,
    var = function(x, a)
        return x:var(a.dims, a.keepdim or false, a.correction and { correction = a.correction })
    end,
    std = function(x, a)
        return tide.std(x, a.dims, a.keepdim or false, a.correction and { correction = a.correction })
    end,
    norm = function(x, a) return x:norm(H.json_number(a.p), a.dims, a.keepdim or false, dtype_opts(a)) end,
    softmax = function(x, a) return x:softmax(a.dims, dtype_opts(a)) end,
    log_softmax = function(x, a) return tide.F.log_softmax(x, a.dims, dtype_opts(a)) end,
    cumsum = function(x, a) return x:cumsum(a.dims, dtype_opts(a)) end,
    clamp = function(x, a, b, c)
        if a.min and a.max then return tide.clamp(x, b, c) end
        if a.min then return x:clamp(b) end
        return x:clamp({ max = b })
    end,
    index_add = function(x, a, idx, src) return x:index_add(a.dims, idx, src, { alpha = a.alpha }) end,
    split = function(x, a) return x:split(a.sizes, a.dims) end,
    masked_fill = function(x, _, mask, value) return x:masked_fill(mask, value) end,
    einsum = function(x, a, ...) return tide.einsum(a.equation, x, ...) end,
}

local function run_case(case)
    local args = H.ints(case.args)
    local grads = case.grads and H.from_json(case.grads) or {}
    local inputs = {}
    for i, spec in ipairs(case.inputs) do inputs[i] = tensor(spec, grads[i] ~= nil) end
    local f = assert(ops[case.op], "no dispatcher entry for " .. case.op)
    local call = function() return f(inputs[1], args, table.unpack(inputs, 2)) end
    if case.error then
        local err = H.error_of(call)
        assert(err, "no error; PyTorch says: " .. case.torch_error)
        assert(err:find(case.op, 1, true), "the error does not name " .. case.op .. ": " .. err)
        assert(err:find(case.error, 1, true), "expected '" .. case.error .. "' in: " .. err)
        return
    end
    local out = call()
    local outs = tide.is_tensor(out) and { out } or out
    assert.equal(#case.outputs, #outs, "number of outputs")
    for i, want in ipairs(case.outputs) do
        H.check_tensor(outs[i], decode(want), case.rtol, case.atol, "output " .. i)
    end
    if not case.grads then return end
    ;(outs[1] * tensor(case.weights[1])):sum():backward()
    for i, g in pairs(grads) do
        H.check_tensor(inputs[i].grad, decode(g), case.rtol, case.grad_atol, "grad " .. i)
    end
end

describe("reference vectors from PyTorch", function()
    it("cover every op, with gradients and errors", function()
        local ops_seen, with_grads, errors = {}, 0, 0
        for _, c in ipairs(data.cases) do
            ops_seen[c.op] = true
            if c.grads then with_grads = with_grads + 1 end
            if c.error then errors = errors + 1 end
        end
        for op in pairs(ops) do assert(ops_seen[op], "no reference case for " .. op) end
        assert(#data.cases >= 300 and with_grads >= 200 and errors >= 15)
    end)
    for _, case in ipairs(data.cases) do
        it(case.name .. " (" .. case.op .. ")", function() run_case(case) end)
    end
end)

local function f64(shape) return tide.randn(shape, { dtype = "float64", requires_grad = true }) end

describe("reductions over lists of dims", function()
    it("equal one dim at a time, by hand", function()
        local x = tide.arange(0, 24):reshape({ 2, 3, 4 }):double()
        -- sum over dims 0 and 2 of 0..23: the rows of each j add 0..3 + 12..15 shifted by 4j
        assert.same({ 60, 92, 124 }, x:sum({ 0, 2 }):totable())
        assert.same({ { { 60 }, { 92 }, { 124 } } }, x:sum({ -1, 0 }, true):totable())
        assert.same({ 15, 19, 23 }, x:amax({ 2, 0 }):totable())
        assert.same({ 0, 4, 8 }, tide.amin(x, { 0, 2 }):totable())
        assert.same({ 7.5, 11.5, 15.5 }, x:mean({ 0, 2 }):totable())
        assert.equal(276, x:sum({}):item())
    end)
    it("give the same bits whatever order the dims are listed in", function()
        local x = tide.randn({ 7, 33, 5 })
        assert.same(x:sum({ 0, 2 }):totable(), x:sum({ 2, 0 }):totable())
        assert.same(x:var({ 0, 2 }):totable(), x:var({ -1, -3 }):totable())
    end)
    it("pass gradcheck in float64", function()
        local x = f64({ 3, 4, 2 })
        for _, fn in ipairs {
            function(a) return a:sum({ 0, 2 }) end,
            function(a) return a:mean({ 2, 0 }, true) end,
            function(a) return a:prod({ 0, 1 }) end,
            function(a) return a:amax({ 0, 2 }) end,
            function(a) return a:amin({ 1, 2 }, true) end,
            function(a) return a:var({ 0, 2 }) end,
            function(a) return a:std({ 1, 0 }, false, { correction = 0 }) end,
            function(a) return a:norm(3, { 0, 2 }) end,
            function(a) return a:norm(-1.5, { 0, 1 }) end,
            function(a) return a:norm(math.huge, { 1, 2 }) end,
            function(a) return a:norm(-math.huge, { 0, 2 }, true) end,
            function(a) return a:norm("fro", { 0, 1 }) end,
            function(a) return a:norm("nuc", { 0, 1 }) end,
            function(a) return a:sum({ 0 }, false, { dtype = "float64" }) end,
            function(a) return a:softmax(1, { dtype = "float64" }) end,
        } do
            assert.is_true(tide.gradcheck(fn, { x }))
        end
    end)
    it("share amax's gradient evenly among ties", function()
        local x = tide.tensor({ { 2, 2, 1 }, { 0, 3, 3 } }, { dtype = "float64", requires_grad = true })
        x:amax({ 0, 1 }):backward()
        assert.same({ { 0, 0, 0 }, { 0, 0.5, 0.5 } }, x.grad:totable())
    end)
    it("name the function, the argument and the problem", function()
        local x = tide.ones({ 2, 3 })
        assert.matches("sum.*dim 0 appears more than once", H.error_of(tide.sum, x, { 0, -2 }))
        assert.matches("bad argument #2 to 'amax'.*out of range", H.error_of(tide.amax, x, { 0, 2 }))
        assert.matches("dims must be integers", H.error_of(tide.mean, x, { 0.5 }))
        assert.matches("unknown option 'dtyp'", H.error_of(tide.sum, x, 0, false, { dtyp = "float64" }))
        assert.matches("keepdim", H.error_of(tide.var, x, { 0 }, "yes"))
        assert.matches("norm.*'nuc'.*two dims", H.error_of(tide.norm, x, "nuc", 0))
        assert.matches("amin.*empty", H.error_of(tide.amin, tide.zeros({ 2, 0 }), 1))
    end)
end)

describe("norm", function()
    it("counts non-zeros for p = 0, with a zero gradient", function()
        local x = tide.tensor({ 0, 1.5, -2, 0 }, { dtype = "float64", requires_grad = true })
        local n = x:norm(0)
        assert.equal(2, n:item())
        n:backward()
        assert.same({ 0, 0, 0, 0 }, x.grad:totable())
    end)
    it("is the smallest |x| for -inf and sum(|x|^p)^(1/p) for negative p", function()
        local x = tide.tensor({ 3, -4, 0.5 }, "float64")
        assert.equal(0.5, x:norm(-math.huge):item())
        H.assert_close({ x:norm(-1):item() }, { 1 / (1 / 3 + 1 / 4 + 2) })
    end)
    it("'nuc' is the sum of singular values", function()
        -- diag(3, 4) rotated: singular values 3 and 4
        local c, s = math.cos(0.3), math.sin(0.3)
        local r = tide.tensor({ { c, -s }, { s, c } }, "float64")
        local m = r:matmul(tide.tensor({ { 3, 0 }, { 0, 4 } }, "float64"))
        H.assert_close({ m:norm("nuc"):item() }, { 7 })
    end)
end)

describe("clamp with tensor bounds", function()
    it("broadcasts and sends the gradient where PyTorch does", function()
        local x = tide.tensor({ -2, 0, 2 }, { dtype = "float64", requires_grad = true })
        local lo = tide.tensor({ 0, 0, 0 }, { dtype = "float64", requires_grad = true })
        local hi = tide.tensor(1.0, { dtype = "float64", requires_grad = true })
        local y = tide.clamp(x, lo, hi)
        assert.same({ 0, 0, 1 }, y:totable())
        y:sum():backward()
        assert.same({ 0, 1, 0 }, x.grad:totable())
        assert.same({ 1, 0, 0 }, lo.grad:totable())
        assert.equal(1, hi.grad:item())
    end)
    it("passes gradcheck", function()
        local x, lo, hi = f64({ 3, 4 }), f64({ 4 }), f64({ 3, 1 })
        assert.is_true(tide.gradcheck(function(a, b, c) return tide.clamp(a, b, c + 1) end, { x, lo, hi }))
    end)
end)

describe("index_add, split and masked_fill", function()
    it("index_add scales the source by alpha and rejects unknown options", function()
        local y = tide.zeros({ 3 }):index_add(0, tide.tensor({ 0, 2, 0 }, "int64"), tide.ones({ 3 }), { alpha = 2 })
        assert.same({ 4, 0, 2 }, y:totable())
        assert.matches("index_add.*unknown option 'beta'",
            H.error_of(tide.index_add, tide.zeros({ 3 }), 0, tide.tensor({ 0 }, "int64"), tide.ones({ 1 }),
                { beta = 1 }))
        assert.matches("index_add.*alpha must be an integer",
            H.error_of(tide.index_add, tide.zeros({ 3 }, "int64"), 0, tide.tensor({ 0 }, "int64"),
                tide.ones({ 1 }, "int64"), { alpha = 0.5 }))
        local x, s = f64({ 4, 2 }), f64({ 3, 2 })
        local idx = tide.tensor({ 3, 0, 3 }, "int64")
        assert.is_true(tide.gradcheck(function(a, b) return a:index_add(0, idx, b, { alpha = -1.5 }) end, { x, s }))
    end)
    it("split takes a list of sizes", function()
        local p = tide.arange(0, 6):split({ 1, 0, 5 })
        assert.same({ { 0 }, {}, { 1, 2, 3, 4, 5 } }, { p[1]:totable(), p[2]:totable(), p[3]:totable() })
        assert.matches("split.*sum exactly to 6", H.error_of(tide.split, tide.arange(0, 6), { 1, 2 }))
        assert.matches("split.*non%-negative", H.error_of(tide.split, tide.arange(0, 6), { 7, -1 }))
    end)
    it("masked_fill takes a 0-dim tensor value, which gets the gradient", function()
        local x, v = f64({ 3, 2 }), tide.tensor(0.25, { dtype = "float64", requires_grad = true })
        local mask = tide.tensor({ { 1, 0 }, { 0, 0 }, { 1, 1 } }, "uint8")
        assert.is_true(tide.gradcheck(function(a, b) return a:masked_fill(mask, b) end, { x, v }))
        assert.matches("masked_fill.*0%-dim", H.error_of(tide.masked_fill, x, mask, tide.ones({ 2 })))
    end)
end)

describe("einsum", function()
    it("matches matmul, trace and outer products", function()
        local a, b = tide.randn({ 3, 4 }, { dtype = "float64" }), tide.randn({ 4, 2 }, { dtype = "float64" })
        H.assert_close(tide.einsum("ij,jk->ik", a, b), H.values(a:matmul(b)))
        H.assert_close(tide.einsum("ij,jk", { a, b }), H.values(a:matmul(b)))
        local m = tide.arange(0, 9):reshape({ 3, 3 })
        assert.equal(12, tide.einsum("ii", m):item())
        assert.same({ 0, 4, 8 }, tide.einsum("ii->i", m):totable())
    end)
    it("passes gradcheck through its composing ops", function()
        local a, b, c = f64({ 2, 3 }), f64({ 4, 3, 5 }), f64({ 2, 5 })
        assert.is_true(tide.gradcheck(function(x, y, z) return tide.einsum("bn,anm,bm->ba", x, y, z) end, { a, b, c }))
        local d = f64({ 3, 3, 2 })
        assert.is_true(tide.gradcheck(function(x) return tide.einsum("iij->j", x) end, { d }))
        local e, f = f64({ 2, 1, 3, 4 }), f64({ 5, 4, 2 })
        assert.is_true(tide.gradcheck(function(x, y) return tide.einsum("...ij,...jk->...ik", x, y) end, { e, f }))
    end)
    it("names itself in errors", function()
        assert.matches("einsum.*invalid subscript", H.error_of(tide.einsum, "i1,j", tide.ones({ 2 }), tide.ones({ 2 })))
        assert.matches("einsum.*at most 8", H.error_of(tide.einsum, "abcde,efghi->", tide.ones({ 1, 1, 1, 1, 1 }),
            tide.ones({ 1, 1, 1, 1, 1 })))
        assert.matches("einsum.*one dtype",
            H.error_of(tide.einsum, "i,i", tide.ones({ 2 }), tide.ones({ 2 }, "float64")))
    end)
end)
