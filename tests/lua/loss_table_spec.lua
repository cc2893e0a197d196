-- Every row of the loss table (tide.losses.table, from runtime/loss_table.c)
-- gets the same checks without test code of its own: its function and
-- module, a docs section, PyTorch reference cases, defaults that match the
-- table, a gradcheck, the same bits at 1 and 2 threads, and errors that name
-- the loss, the argument and the problem.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local S = require "loss_samples"
local cjson = require "cjson"
local losses = require "tide.losses"

local F = tide.F

-- the headings of every docs/*.md
local function doc_headings()
    local seen = {}
    local p = io.popen("ls docs/*.md")
    for path in p:lines() do
        for line in io.lines(path) do
            local name = line:match("^##+%s+`?([%w_.:]+)")
            if name then seen[name] = true end
        end
    end
    p:close()
    return seen
end

-- the lines of the table in docs/losses.md ("## The losses")
local function docs_table_lines()
    local lines = {}
    for line in io.lines("docs/losses.md") do
        if line:match("^| `") then lines[#lines + 1] = line end
    end
    return lines
end

-- the losses the PyTorch reference files have cases for
local function reference_losses()
    local seen = {}
    local p = io.popen("ls tests/reference/losses_*.json")
    for path in p:lines() do
        local data = cjson.decode(H.read_file(path))
        -- a file of one loss names it at the top (its cases' "loss" is the value)
        if type(data.loss) == "string" then seen[data.loss] = true end
        for _, case in ipairs(data.cases) do
            if type(case.loss) == "string" then seen[case.loss] = true end
        end
    end
    p:close()
    return seen
end

-- f(inputs...) with the float inputs that take a gradient as float64
-- leaves; log-probability inputs are made from scores through log_softmax,
-- so the gradient checked is the one a network sees
local function checked_call(row, inputs)
    local leaves, fn_args = {}, {}
    for i, x in ipairs(inputs) do
        if S.differentiable(row, i) then
            local leaf = (row.inputs[i].kind == "log_probs") and tide.randn(x:shape(), { dtype = x:dtype() }) or x
            leaves[#leaves + 1] = leaf:detach():requires_grad_()
            fn_args[i] = { leaf = #leaves, log = row.inputs[i].kind == "log_probs" }
        else
            fn_args[i] = { value = x }
        end
    end
    local function fn(...)
        local ls = { ... }
        local args = {}
        for i, a in ipairs(fn_args) do
            if a.leaf then
                args[i] = a.log and ls[a.leaf]:log_softmax(-1) or ls[a.leaf]
            else
                args[i] = a.value
            end
        end
        return F[row.name](table.unpack(args, 1, #row.inputs))
    end
    return fn, leaves
end

describe("the loss table", function()
    local docs, refs = doc_headings(), reference_losses()

    it("has rows with every field, and names each loss once", function()
        assert.is_true(#losses.table >= 24)
        local names = {}
        for _, row in ipairs(losses.table) do
            assert.is_nil(names[row.name], row.name .. " twice")
            assert.is_nil(names[row.module], row.module .. " twice")
            names[row.name], names[row.module] = true, true
            assert.is_string(row.summary)
            assert.truthy(row.node:match("Backward$"), row.name)
            assert.truthy(#row.inputs >= 2, row.name)
            local has_reduction = false
            for _, o in ipairs(row.options) do has_reduction = has_reduction or o.name == "reduction" end
            assert.is_true(has_reduction, row.name .. " has no reduction")
        end
    end)

    for _, row in ipairs(losses.table) do
        describe(row.name, function()
            it("is a function and a module", function()
                assert.is_function(F[row.name])
                assert.is_table(tide.nn[row.module])
            end)

            it("has a docs section and PyTorch reference cases", function()
                assert.is_true(docs[row.name] == true, "no docs section '## " .. row.name .. "' in docs/")
                assert.is_true(refs[row.name] == true,
                    "no case for " .. row.name .. " in tests/reference/losses_*.json")
            end)

            it("has its options in the docs' table of losses", function()
                local line
                for _, l in ipairs(docs_table_lines()) do
                    if l:find("`" .. row.name .. "[`(]") then line = l end
                end
                assert.truthy(line, "no line for " .. row.name .. " in docs/losses.md's table")
                for _, o in ipairs(row.options) do
                    if o.name ~= "reduction" then
                        assert.truthy(line:find("`" .. o.name .. "`", 1, true), o.name .. " missing from: " .. line)
                    end
                end
            end)

            it("takes the table's defaults when no options are given", function()
                math.randomseed(1)
                tide.manual_seed(1)
                local inputs = S.inputs(row)
                local explicit = {}
                for _, o in ipairs(row.options) do
                    if o.default ~= nil then explicit[o.name] = o.default end
                end
                local a = F[row.name](table.unpack(inputs))
                inputs[#row.inputs + 1] = explicit
                local b = F[row.name](table.unpack(inputs))
                assert.is_true(H.same_values(a, b))
                -- the module with no options is the function with none
                local m = tide.nn[row.module]()
                assert.is_true(H.same_values(a, m(table.unpack(inputs, 1, #row.inputs))))
            end)

            it("passes gradcheck in float64", function()
                math.randomseed(2)
                tide.manual_seed(2)
                local fn, leaves = checked_call(row, S.inputs(row))
                assert.is_true(#leaves >= 1)
                assert.is_true(tide.gradcheck(fn, leaves))
            end)

            it("gives the same bits at 1 and 2 threads, forward and backward", function()
                local big = { N = 64, C = 37, D = 33, T = 20, S = 6 }
                local prev = tide.get_num_threads()
                local results = {}
                for _, threads in ipairs({ 1, 2 }) do
                    tide.set_num_threads(threads)
                    math.randomseed(3)
                    tide.manual_seed(3)
                    local fn, leaves = checked_call(row, S.inputs(row, "float32", big))
                    local loss = fn(table.unpack(leaves))
                    ;(loss:dim() > 0 and loss:sum() or loss):backward()
                    local r = { loss }
                    for _, l in ipairs(leaves) do r[#r + 1] = l.grad end
                    results[threads] = r
                end
                tide.set_num_threads(prev)
                for k = 1, #results[1] do
                    assert.is_true(H.same_values(results[1][k], results[2][k]), "result " .. k .. " differs")
                end
            end)

            it("names itself, the argument and the problem in errors", function()
                math.randomseed(4)
                local inputs = S.inputs(row)
                local opt_arg = #row.inputs + 1
                inputs[opt_arg] = { no_such_option = 1 }
                local e = H.error_of(F[row.name], table.unpack(inputs, 1, opt_arg))
                local want = "#" .. opt_arg .. " to '" .. row.name .. "' (unknown option 'no_such_option'; known: "
                assert.truthy(e and e:find(want, 1, true), e)
                -- an int64 tensor where the first input must be float
                local bad = { tide.zeros(inputs[1]:shape(), { dtype = "int64" }), table.unpack(inputs, 2, #row.inputs) }
                e = H.error_of(F[row.name], table.unpack(bad, 1, #row.inputs))
                assert.truthy(e and e:find("#1 to '" .. row.name .. "'", 1, true), e)
                -- every option with a range refuses NaN, naming the options argument
                for _, o in ipairs(row.options) do
                    if o.range and o.type ~= "integer" then
                        inputs[opt_arg] = { [o.name] = 0 / 0 }
                        e = H.error_of(F[row.name], table.unpack(inputs, 1, opt_arg))
                        assert.truthy(e and e:find("#" .. opt_arg .. " to '" .. row.name .. "'", 1, true)
                                      and e:find(o.name, 1, true), e)
                    end
                end
                -- a module checks its options when it is made, at the maker's line
                e = H.error_of(function() local m = tide.nn[row.module] { reducton = "sum" }; return m end)
                assert.truthy(e and e:find("loss_table_spec.lua:%d+: bad argument #1 to '" .. row.module
                                           .. "' %(unknown option 'reducton'; known: "), e)
            end)
        end)
    end
end)
