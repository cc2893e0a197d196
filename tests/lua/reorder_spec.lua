-- sort, argsort, topk, flip, roll, tril, triu: PyTorch's vectors
-- (tests/reference/reorder.json, written by tests/reference/gen_reorder.py),
-- then hand-worked cases for what the vectors cannot show (stability,
-- ties, argument forms, errors), and a float64 gradcheck of each.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"

local data = cjson.decode(H.read_file("tests/reference/reorder.json"))

local decode = H.decode_spec

-- a tensor from a spec, empty shapes included (nested tables lose them)
local function input(spec, requires_grad)
    local x = H.tensor(decode(spec))
    if x:numel() == 0 then x = x:reshape(H.ints(spec.shape)) end
    if requires_grad then x.requires_grad = true end
    return x
end

local function run(op, x, a)
    if a.t then x = x:t() end
    if op == "sort" then return { x:sort(a.dim or -1, a.descending or false) } end
    if op == "argsort" then return { x:argsort { dim = a.dim, descending = a.descending } } end
    if op == "topk" then return { x:topk(a.k, { dim = a.dim, largest = a.largest }) } end
    if op == "flip" then return { x:flip(a.dims) } end
    if op == "roll" then
        if a.dims then return { x:roll(a.shifts, a.dims) } end
        return { x:roll(a.shifts) }
    end
    if op == "tril" then return { x:tril(a.diagonal) } end
    if op == "triu" then return { tide.triu(x, { diagonal = a.diagonal }) } end
    error("no op " .. op)
end

local function vals(t) return H.values(t) end

describe("reference vectors from PyTorch", function()
    it("cover every op", function()
        local seen = {}
        for _, c in ipairs(data.cases) do seen[c.op] = true end
        for _, op in ipairs { "sort", "argsort", "topk", "flip", "roll", "tril", "triu" } do
            assert(seen[op], "no reference case for " .. op)
        end
    end)

    for _, case in ipairs(data.cases) do
        it(case.name, function()
            local a = H.ints(H.from_json(case.args))
            local x = input(case.input, case.grad ~= nil)
            local outs = run(case.op, x, a)
            assert.are.equal(#case.outputs, #outs)
            for k, want in ipairs(case.outputs) do
                H.check_tensor(outs[k], decode(want), 1e-12, 0, case.name .. " output " .. k)
            end
            if case.grad then
                (outs[1] * input(case.weight)):sum():backward()
                H.check_tensor(x.grad, decode(case.grad), 1e-12, 0, case.name .. " grad")
            end
        end)
    end
end)

describe("sort", function()
    it("is stable for ties, ascending and descending, with NaN as the largest", function()
        local nan = 0 / 0
        local x = tide.tensor({ 2, nan, 1, 2, nan, 1 })
        local v, i = x:sort()
        assert.are.same({ 2, 5, 0, 3, 1, 4 }, vals(i))
        assert.are.same({ 1, 1, 2, 2 }, { table.unpack(vals(v), 1, 4) })
        local w = vals(v)
        assert.is_true(w[5] ~= w[5] and w[6] ~= w[6])
        -- descending keeps equal keys in their order too (not reversed)
        local _, j = x:sort(0, true)
        assert.are.same({ 1, 4, 0, 3, 2, 5 }, vals(j))
    end)

    it("gives int64 indices, keeps the dtype, and takes each argument form", function()
        local x = tide.tensor({ { 3, 1, 2 }, { 0, 5, 4 } }, "int64")
        local v, i = tide.sort(x, 1)
        assert.are.equal("int64", v:dtype())
        assert.are.equal("int64", i:dtype())
        assert.are.same({ 1, 2, 3, 0, 4, 5 }, vals(v))
        local v2 = x:sort { dim = 0, descending = true, stable = true }
        assert.are.same({ 3, 5, 4, 0, 1, 2 }, vals(v2))
        assert.are.same(vals(x:argsort(0, true)), vals(select(2, x:sort(0, true))))
        assert.are.same({ 1, 2, 0, 0, 2, 1 }, vals(tide.argsort(x)))
    end)

    it("is the same on every thread count", function()
        tide.manual_seed(7)
        local x = tide.randint(0, 5, { 64, 700 }):double()
        local before = tide.get_num_threads()
        tide.set_num_threads(1)
        local _, a = x:sort(1)
        tide.set_num_threads(math.max(2, before))
        local _, b = x:sort(1)
        tide.set_num_threads(before)
        assert.are.same(vals(a), vals(b))
    end)

    it("sends the gradient back through the indices", function()
        local x = tide.tensor({ 3, 1, 2 }, { dtype = "float64", requires_grad = true })
        local v = x:sort(0, true) -- 3, 2, 1 from places 0, 2, 1
        assert.are.equal("SortBackward", v.grad_fn)
        ;(v * tide.tensor({ 10, 20, 30 }, "float64")):sum():backward()
        assert.are.same({ 10, 30, 20 }, vals(x.grad))
    end)

    it("passes gradcheck in float64", function()
        tide.manual_seed(1)
        local x = tide.randn({ 3, 5 }, { dtype = "float64", requires_grad = true })
        assert.is_true(tide.gradcheck(function(a) return (a:sort(0)) end, { x }))
        assert.is_true(tide.gradcheck(function(a) return (a:sort(1, true)) end, { x }))
    end)

    it("names the function, the argument and the problem", function()
        local x = tide.randn({ 2, 3 })
        assert.matches("bad argument #2 to '[%w.]*sort'.*dim 2 is out of range", H.error_of(tide.sort, x, 2))
        assert.matches("unknown option", H.error_of(tide.sort, x, { dims = 0 }) or "", 1, true)
        assert.matches("dim is given both positionally and by name",
            H.error_of(tide.sort, x, 0, { dim = 1 }), 1, true)
        assert.matches("descending must be a boolean", H.error_of(tide.sort, x, 0, 1), 1, true)
        assert.matches("dim must be an integer", H.error_of(tide.argsort, x, 0.5), 1, true)
    end)
end)

describe("topk", function()
    it("takes ties in index order (tide's guarantee) and NaN as the largest", function()
        local nan = 0 / 0
        local x = tide.tensor({ 1, 2, 2, 1, 2, 1, nan })
        local v, i = x:topk(3)
        assert.are.same({ 6, 1, 2 }, vals(i))
        local w = vals(v)
        assert.is_true(w[1] ~= w[1])
        local _, j = x:topk(4, { largest = false })
        assert.are.same({ 0, 3, 5, 1 }, vals(j))
    end)

    it("with sorted = false gives the same k elements", function()
        tide.manual_seed(2)
        local x = tide.randn({ 4, 30 })
        local v1, i1 = x:topk(5, 1, true, false)
        local v2, i2 = x:topk(5, { dim = 1 })
        assert.are.same(vals(v2), vals(v1:sort(1, true)))
        assert.are.same(vals(i2), vals(i1:gather(1, select(2, v1:sort(1, true)))))
    end)

    it("sends the gradient back through the indices", function()
        local x = tide.tensor({ { 1, 5, 3 }, { 4, 0, 2 } }, { dtype = "float64", requires_grad = true })
        local v = x:topk(2, 1)
        assert.are.equal("TopkBackward", v.grad_fn)
        v:sum():backward()
        assert.are.same({ 0, 1, 1, 1, 0, 1 }, vals(x.grad))
    end)

    it("passes gradcheck in float64", function()
        tide.manual_seed(3)
        local x = tide.randn({ 4, 6 }, { dtype = "float64", requires_grad = true })
        assert.is_true(tide.gradcheck(function(a) return (a:topk(3, 0)) end, { x }))
        assert.is_true(tide.gradcheck(function(a) return (a:topk(2, { largest = false })) end, { x }))
    end)

    it("checks k and dim", function()
        local x = tide.randn({ 2, 3 })
        assert.matches("bad argument #2 to '[%w.]*topk'.*k = 4 is out of range for dim 1 of size 3",
            H.error_of(tide.topk, x, 4))
        assert.matches("k = %-1 is out of range", H.error_of(tide.topk, x, -1))
        assert.matches("bad argument #3 to '[%w.]*topk'.*dim 2 is out of range", H.error_of(tide.topk, x, 1, 2))
        assert.matches("bad argument #2 to '[%w.]*topk'", H.error_of(tide.topk, x))
        assert.matches("largest must be a boolean", H.error_of(tide.topk, x, 1, { largest = 1 }), 1, true)
    end)
end)

describe("flip", function()
    it("reverses the dims named, as a copy", function()
        local x = tide.tensor({ { 0, 1, 2 }, { 3, 4, 5 } })
        assert.are.same({ 5, 4, 3, 2, 1, 0 }, vals(x:flip { 0, 1 }))
        assert.are.same({ 2, 1, 0, 5, 4, 3 }, vals(tide.flip(x, -1)))
        local y = x:flip {}
        y:fill_(9)
        assert.are.same({ 0, 1, 2, 3, 4, 5 }, vals(x))
    end)

    it("passes gradcheck and refuses a dim named twice", function()
        tide.manual_seed(4)
        local x = tide.randn({ 2, 3, 4 }, { dtype = "float64", requires_grad = true })
        assert.is_true(tide.gradcheck(function(a) return a:flip { 0, 2 } end, { x }))
        assert.are.equal("FlipBackward", x:flip(1).grad_fn)
        assert.matches("bad argument #2 to '[%w.]*flip'.*dim 0 appears more than once",
            H.error_of(tide.flip, x, { 0, -3 }))
        assert.matches("bad argument #2 to '[%w.]*flip'.*dims expected", H.error_of(tide.flip, x))
        assert.matches("dim 3 is out of range", H.error_of(tide.flip, x, 3))
    end)
end)

describe("roll", function()
    it("shifts along dims, or over the flattened tensor without them", function()
        local x = tide.tensor({ { 0, 1, 2 }, { 3, 4, 5 } })
        assert.are.same({ 5, 0, 1, 2, 3, 4 }, vals(x:roll(1)))
        assert.are.same({ 2, 0, 1, 5, 3, 4 }, vals(x:roll(1, 1)))
        assert.are.same({ 5, 3, 4, 2, 0, 1 }, vals(x:roll({ 1, 1 }, { 0, 1 })))
        assert.are.same({ 1, 2, 0, 4, 5, 3 }, vals(tide.roll(x, -1, { dims = 1 })))
        assert.are.same({ 1, 2, 3, 4, 5, 0 }, vals(x:roll(-7)))
        assert.are.equal(2, x:roll(1, 0):dim())
    end)

    it("passes gradcheck, flattened and along dims", function()
        tide.manual_seed(5)
        local x = tide.randn({ 3, 4 }, { dtype = "float64", requires_grad = true })
        assert.is_true(tide.gradcheck(function(a) return a:roll(5) end, { x }))
        assert.is_true(tide.gradcheck(function(a) return a:roll({ 1, -2 }, { 0, 1 }) end, { x }))
        assert.are.equal("RollBackward", x:roll(1).grad_fn)
    end)

    it("checks shifts against dims", function()
        local x = tide.randn({ 2, 3 })
        assert.matches("bad argument #3 to '[%w.]*roll'.*same length, got 1 and 2",
            H.error_of(tide.roll, x, 1, { 0, 1 }))
        assert.matches("without dims, shifts must be one number", H.error_of(tide.roll, x, { 1, 2 }))
        assert.matches("shifts must not be empty", H.error_of(tide.roll, x, {}))
        assert.matches("bad argument #2 to '[%w.]*roll'.*shifts expected", H.error_of(tide.roll, x))
        assert.matches("dims given but the tensor has no dims", H.error_of(tide.roll, tide.tensor(1), 1, 0))
        assert.matches("shifts%[2%] must be an integer", H.error_of(tide.roll, x, { 1, 0.5 }, { 0, 1 }))
        -- integral floats count as integers, as in Lua's own library
        assert.are.same({ 5, 0, 1, 2, 3, 4 }, vals(tide.tensor({ { 0, 1, 2 }, { 3, 4, 5 } }):roll(1.0)))
    end)
end)

describe("tril and triu", function()
    it("keep the triangles by hand", function()
        local x = tide.ones({ 3, 4 })
        assert.are.same({ 1, 0, 0, 0, 1, 1, 0, 0, 1, 1, 1, 0 }, vals(x:tril()))
        assert.are.same({ 0, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1 }, vals(x:triu(1)))
        assert.are.same({ 0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0 }, vals(tide.tril(x, { diagonal = -1 })))
        local b = tide.ones({ 2, 2, 2 }, "int64"):triu()
        assert.are.same({ 1, 1, 0, 1, 1, 1, 0, 1 }, vals(b))
        assert.are.equal("int64", b:dtype())
    end)

    it("pass gradcheck with the same masks as gradients", function()
        tide.manual_seed(6)
        local x = tide.randn({ 2, 3, 3 }, { dtype = "float64", requires_grad = true })
        assert.is_true(tide.gradcheck(function(a) return a:tril(1) end, { x }))
        assert.is_true(tide.gradcheck(function(a) return a:triu(-1) end, { x }))
        local y = tide.ones({ 2, 2 }, { dtype = "float64", requires_grad = true })
        y:triu():sum():backward()
        assert.are.same({ 1, 1, 0, 1 }, vals(y.grad))
        assert.are.equal("TrilBackward", y:tril().grad_fn)
    end)

    it("need at least 2 dims", function()
        assert.matches("bad argument #1 to '[%w.]*tril'.*at least 2 dims, got 1",
            H.error_of(tide.tril, tide.ones { 3 }))
        assert.matches("at least 2 dims, got 0", H.error_of(tide.triu, tide.tensor(1)))
        assert.matches("diagonal must be an integer", H.error_of(tide.triu, tide.ones { 2, 2 }, 0.5))
    end)
end)
