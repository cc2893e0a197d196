-- Every row of the elementwise op table (tide.op_table(), from
-- runtime/op_table.c) gets the same checks without test code of its own:
-- its function and method (or tide.F function, as its scope says), a
-- mention in docs/tensor.md, its parameters' defaults, its autograd node's
-- name, a float64 gradcheck on samples from its domain, and the same bits
-- at 1 and 2 threads.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"

-- a sample of the row's domain
local function sample(row, shape, dtype)
    local x = tide.randn(shape, {dtype = dtype})
    if row.domain == "positive" then return x:abs() + 0.5 end
    -- away from 0, where abs, relu and sign have a kink
    if row.domain == "off_kink" then return x:sign() * (x:abs() + 0.1) end
    -- odd multiples of 1/8: 1/8 or more from every integer and half, where floor and round jump
    if row.domain == "off_integer" then return (x * 4):floor() / 4 + 0.125 end
    if row.domain == "unit" then return x:tanh() * 0.9 end
    if row.domain == "above_one" then return x:abs() + 1.25 end
    return x
end

local function fn_of(row) return row.scope == "F" and tide.F[row.name] or tide[row.name] end

-- the row's function on args, with the typical values of its required parameters
local function call(row, args)
    local a = {table.unpack(args, 1, row.arity)}
    for _, p in ipairs(row.params) do
        if p.required then a[#a + 1] = p.typical end
    end
    return fn_of(row)(table.unpack(a))
end

describe("the op table", function()
    local docs = H.read_file("docs/tensor.md")
    local rows = tide.op_table()

    it("has every unary and binary op once", function()
        assert.is_true(#rows >= 28)
        local seen = {}
        for _, row in ipairs(rows) do
            assert.is_nil(seen[row.name], row.name .. " twice")
            seen[row.name] = true
        end
    end)

    for _, row in ipairs(rows) do
        describe(row.name, function()
            it("is a function and a method, and is in docs/tensor.md", function()
                local x = tide.ones{2}
                if row.scope ~= "F" then
                    assert.is_function(tide[row.name])
                    assert.is_function(x[row.name])
                end
                if row.scope ~= "tensor" then assert.is_function(tide.F[row.name]) end
                assert.truthy(docs:find("`" .. row.name .. "`", 1, true) or docs:find("Tensor:" .. row.name, 1, true),
                              row.name .. " is not in docs/tensor.md")
            end)

            it("takes its parameters by name, defaulting to the row's", function()
                local x = sample(row, {5}, "float64")
                local named = {}
                for _, p in ipairs(row.params) do
                    if not p.required then named[p.name] = p.default end
                end
                local by_default = call(row, {x, x})
                if row.arity == 1 then
                    local args = {x}
                    for _, p in ipairs(row.params) do
                        if p.required then args[#args + 1] = p.typical end
                    end
                    args[#args + 1] = named
                    assert.is_true(H.same_values(by_default, fn_of(row)(table.unpack(args))))
                    args[#args] = {no_such_option = 1}
                    assert.matches(row.name .. "'.*unknown option 'no_such_option'",
                                   H.error_of(fn_of(row), table.unpack(args)))
                end
            end)

            it("names its node and passes gradcheck in float64", function()
                tide.manual_seed(1)
                local args = {}
                for i = 1, row.arity do args[i] = sample(row, {3, 4}, "float64"):requires_grad_() end
                local y = call(row, args)
                if not row.node then
                    assert.is_false(y.requires_grad)
                    return
                end
                assert.are.equal(row.node, y.grad_fn)
                assert.is_true(tide.gradcheck(function(...) return call(row, {...}) end, args))
            end)

            it("gives the same bits at 1 and 2 threads", function()
                local prev = tide.get_num_threads()
                local results = {}
                for _, threads in ipairs({1, 2}) do
                    tide.set_num_threads(threads)
                    tide.manual_seed(2)
                    local args = {}
                    for i = 1, row.arity do args[i] = sample(row, {257, 1031}, "float32") end
                    results[threads] = call(row, args)
                end
                tide.set_num_threads(prev)
                assert.is_true(H.same_values(results[1], results[2]))
            end)
        end)
    end
end)
