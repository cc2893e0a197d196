-- The margin losses against PyTorch 1.13 (tests/reference/losses_margin.json,
-- written by tests/reference/gen_losses_margin.py), gradchecks, bad input,
-- determinism across thread counts, and the module form.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local F = tide.F

local data = cjson.decode(H.read_file("tests/reference/losses_margin.json"))

local fix = H.decode_spec

-- a reference tensor; H.tensor cannot shape an empty one from nested tables
local function make(spec, requires_grad)
    for _, d in ipairs(spec.shape) do
        if d == 0 then
            local t = tide.zeros(H.ints(spec.shape), { dtype = spec.dtype })
            if requires_grad then t.requires_grad = true end
            return t
        end
    end
    return H.tensor(fix(spec), requires_grad)
end

local function build_options(opts)
    local o = {}
    for k, v in pairs(opts) do
        if type(v) == "table" then o[k] = H.tensor(fix(v)) else o[k] = v end
    end
    return o
end

describe("margin losses against PyTorch 1.13", function()
    it("has the reference cases", function()
        assert.is_true(#data.cases >= 40)
    end)
    for _, case in ipairs(data.cases) do
        it(case.name .. " (" .. case.loss .. ")", function()
            local inputs = {}
            for i, spec in ipairs(case.inputs) do inputs[i] = make(spec, case.diff[i]) end
            local n = #inputs
            inputs[n + 1] = build_options(case.options)
            local out = F[case.loss](table.unpack(inputs, 1, n + 1))
            H.check_tensor(out, fix(case.output), case.rtol, case.atol, "output")
            if out:numel() == 0 or not out.requires_grad then return end
            local s
            if case.weights ~= cjson.null then
                s = (out * H.tensor(fix(case.weights))):sum()
            else
                s = out:sum()
            end
            s:backward()
            for i = 1, n do
                local g = case.grads[i]
                if g ~= cjson.null then
                    assert(inputs[i].grad, "input " .. i .. " got no gradient")
                    H.check_tensor(inputs[i].grad, fix(g), case.rtol, case.atol, "grad of input " .. i)
                end
            end
        end)
    end
end)

local function f64(t) return tide.tensor(t, { dtype = "float64", requires_grad = true }) end
local function long(t) return tide.tensor(t, "int64") end

describe("margin losses: gradcheck in float64", function()
    -- points away from every hinge
    local x = f64({ { 0.3, -1.2, 0.9, 2.1 }, { -0.4, 0.8, 0.05, -2.0 }, { 1.7, 0.2, -0.6, 0.45 } })
    local y = long({ 2, 0, 3 })
    local w = tide.tensor({ 0.5, 1.5, 2.0, 0.7 }, "float64")
    it("multi_margin_loss", function()
        for _, o in ipairs({ {}, { p = 2 }, { margin = 0.65, weight = w }, { p = 2, weight = w, reduction = "sum" },
                             { reduction = "none", margin = 2 } }) do
            assert.is_true(tide.gradcheck(function(a) return F.multi_margin_loss(a, y, o) end, { x }))
        end
    end)
    it("multilabel_margin_loss", function()
        local t = long({ { 1, 3, -1, 0 }, { 2, 2, -1, -1 }, { 0, 1, 2, 3 } })
        for _, r in ipairs({ "mean", "sum", "none" }) do
            assert.is_true(tide.gradcheck(function(a) return F.multilabel_margin_loss(a, t, { reduction = r }) end,
                { x }))
        end
    end)
    it("hinge_embedding_loss", function()
        local t = tide.tensor({ { 1, -1, -1, 1 }, { -1, -1, 1, 0 }, { 1, -1, -1, -1 } }, "float64")
        for _, o in ipairs({ {}, { margin = 0.5, reduction = "sum" }, { margin = 1.55, reduction = "none" } }) do
            assert.is_true(tide.gradcheck(function(a) return F.hinge_embedding_loss(a, t, o) end, { x }))
        end
    end)
    it("cosine_embedding_loss", function()
        local b = f64({ { 1.0, 0.2, -0.3, 0.5 }, { 0.1, -0.9, 0.4, 1.1 }, { -0.8, 0.6, 0.3, -0.2 } })
        local t = tide.tensor({ 1, -1, -1 }, "float64")
        for _, o in ipairs({ {}, { margin = -0.5, reduction = "sum" }, { margin = -0.9, reduction = "none" } }) do
            assert.is_true(tide.gradcheck(function(p, q) return F.cosine_embedding_loss(p, q, t, o) end, { x, b }))
        end
    end)
    it("margin_ranking_loss", function()
        local a, b = f64({ 0.3, -1.2, 0.9, 2.1 }), f64({ 0.1, 0.7, -0.2, 1.0 })
        local t = tide.tensor({ 1, -1, -1, 1 }, "float64")
        for _, o in ipairs({ {}, { margin = 0.5, reduction = "sum" }, { margin = 2.5, reduction = "none" } }) do
            assert.is_true(tide.gradcheck(function(p, q) return F.margin_ranking_loss(p, q, t, o) end, { a, b }))
        end
        local c, d = f64({ { 0.3 }, { -1.2 } }), f64({ { 0.1, 0.75, -0.25 } })
        assert.is_true(tide.gradcheck(function(p, q)
            return F.margin_ranking_loss(p, q, tide.ones({ 2, 3 }, "float64"), { margin = 1.05 })
        end, { c, d }))
    end)
    it("triplet_margin_loss", function()
        local p = f64({ { 1.0, 0.2, -0.3, 0.5 }, { 0.1, -0.9, 0.4, 1.1 }, { -0.8, 0.6, 0.3, -0.2 } })
        local n = f64({ { 0.5, -0.7, 0.2, 1.5 }, { 1.1, 0.3, -0.5, -1.0 }, { 0.9, -0.4, 0.6, 0.8 } })
        for _, o in ipairs({ { margin = 5 }, { margin = 5, p = 1 }, { margin = 4, p = 3, eps = 1e-3 },
                             { margin = 5, swap = true, reduction = "sum" },
                             { margin = 6, p = 1.5, reduction = "none" } }) do
            assert.is_true(tide.gradcheck(function(a, b, c) return F.triplet_margin_loss(a, b, c, o) end, { x, p, n }))
        end
    end)
end)

describe("margin losses: bad input", function()
    local x = tide.randn({ 3, 4 })
    local function err(pattern, fn, ...)
        local e = H.error_of(fn, ...)
        assert(e, "expected an error matching " .. pattern)
        -- Lua's own argument errors name the function as tide.core exports it
        e = e:gsub("to 'tide%.", "to '")
        assert(e:find(pattern, 1, true), "error '" .. e .. "' lacks '" .. pattern .. "'")
    end
    it("multi_margin_loss", function()
        err("#2 to 'multi_margin_loss' (target 4 at position 1 is outside [0, 4))", F.multi_margin_loss, x,
            long({ 0, 4, 1 }))
        err("#2 to 'multi_margin_loss' (target -1 at position 0", F.multi_margin_loss, x, long({ -1, 0, 1 }))
        err("#2 to 'multi_margin_loss' (target shape (2) does not match input shape (3,4)", F.multi_margin_loss, x,
            long({ 0, 1 }))
        err("#2 to 'multi_margin_loss' (target must hold int64 class indices, got float32", F.multi_margin_loss, x,
            tide.tensor({ 0, 1, 2 }))
        err("#1 to 'multi_margin_loss' (input must be float32 or float64, got int64", F.multi_margin_loss,
            long({ { 1, 2 } }), long({ 0 }))
        err("#1 to 'multi_margin_loss' (input must be (N, C) or (C)", F.multi_margin_loss, tide.randn({ 2, 2, 2 }),
            long({ 0, 1 }))
        err("#3 to 'multi_margin_loss' (p must be 1 or 2, got 3)", F.multi_margin_loss, x, long({ 0, 1, 2 }), { p = 3 })
        err("#3 to 'multi_margin_loss' (weight must have shape (4), one per class, got (3))", F.multi_margin_loss, x,
            long({ 0, 1, 2 }), { weight = tide.ones{ 3 } })
        err("#3 to 'multi_margin_loss' (weight is float64 but the input is float32", F.multi_margin_loss, x,
            long({ 0, 1, 2 }), { weight = tide.ones({ 4 }, "float64") })
        err("#3 to 'multi_margin_loss' (unknown option 'gamma'; known: ", F.multi_margin_loss, x, long({ 0, 1, 2 }),
            { gamma = 1 })
        err("#3 to 'multi_margin_loss' (unknown reduction 'avg'", F.multi_margin_loss, x, long({ 0, 1, 2 }),
            { reduction = "avg" })
    end)
    it("multilabel_margin_loss", function()
        local t = long({ { 0, 1, -1, 0 }, { 3, 4, -1, 0 }, { -1, 0, 0, 0 } })
        err("#2 to 'multilabel_margin_loss' (target 4 at (1, 1) is outside [0, 4)", F.multilabel_margin_loss, x, t)
        err("#2 to 'multilabel_margin_loss' (target -2 at (0, 0)", F.multilabel_margin_loss, x,
            long({ { -2, 0, 0, 0 }, { 0, 0, 0, 0 }, { 0, 0, 0, 0 } }))
        err("#2 to 'multilabel_margin_loss' (target shape (3) does not match input shape (3,4))",
            F.multilabel_margin_loss, x, long({ 0, 1, 2 }))
        err("#2 to 'multilabel_margin_loss' (target must hold int64 class indices, got float32",
            F.multilabel_margin_loss, x, tide.zeros{ 3, 4 })
        err("#3 to 'multilabel_margin_loss' (unknown option 'margin'; known: ", F.multilabel_margin_loss, x,
            long({ { 0, 1, 2, 3 }, { 0, 1, 2, 3 }, { 0, 1, 2, 3 } }), { margin = 1 })
    end)
    it("hinge_embedding_loss", function()
        err("#2 to 'hinge_embedding_loss' (target shape (3) does not broadcast with input shape (3,4))",
            F.hinge_embedding_loss, x, tide.ones{ 3 })
        err("#2 to 'hinge_embedding_loss' (target is float64 but the input is float32", F.hinge_embedding_loss, x,
            tide.ones({ 3, 4 }, "float64"))
        err("#1 to 'hinge_embedding_loss' (input must be float32 or float64", F.hinge_embedding_loss, long({ 1 }),
            tide.ones{ 1 })
        err("#3 to 'hinge_embedding_loss' (unknown option 'p'; known: ", F.hinge_embedding_loss, x, tide.ones{ 3, 4 },
            { p = 1 })
    end)
    it("cosine_embedding_loss", function()
        local y = tide.ones{ 3 }
        err("#2 to 'cosine_embedding_loss' (x2 shape (3,3) does not match x1 shape (3,4))", F.cosine_embedding_loss, x,
            tide.randn{ 3, 3 }, y)
        err("#3 to 'cosine_embedding_loss' (y shape (2) does not match x1 shape (3,4)", F.cosine_embedding_loss, x, x,
            tide.ones{ 2 })
        err("#3 to 'cosine_embedding_loss' (y shape (1) does not match x1 shape (4)", F.cosine_embedding_loss,
            tide.ones{ 4 }, tide.ones{ 4 }, tide.ones{ 1 })
        err("#2 to 'cosine_embedding_loss' (x2 is float64 but the input is float32", F.cosine_embedding_loss, x,
            tide.ones({ 3, 4 }, "float64"), y)
        err("#1 to 'cosine_embedding_loss' (x1 must be (N, D) or (D)", F.cosine_embedding_loss, tide.ones{ 2, 2, 2 },
            tide.ones{ 2, 2, 2 }, y)
        err("#4 to 'cosine_embedding_loss' (unknown option 'eps'; known: ", F.cosine_embedding_loss, x, x, y,
            { eps = 1 })
    end)
    it("margin_ranking_loss", function()
        err("#2 to 'margin_ranking_loss' (x2 shape (4) does not match x1 shape (3))", F.margin_ranking_loss,
            tide.ones{ 3 }, tide.ones{ 4 }, tide.ones{ 3 })
        err("#2 to 'margin_ranking_loss' (x2 shape (1,3) does not match x1 shape (3))", F.margin_ranking_loss,
            tide.ones{ 3 }, tide.ones{ 1, 3 }, tide.ones{ 3 })
        err("#3 to 'margin_ranking_loss' (y shape (2) does not match", F.margin_ranking_loss, tide.ones{ 3 },
            tide.ones{ 3 }, tide.ones{ 2 })
        err("#3 to 'margin_ranking_loss' (y must be float or int64, got uint8", F.margin_ranking_loss, tide.ones{ 3 },
            tide.ones{ 3 }, tide.ones{ 3 }:gt(0))
        err("#4 to 'margin_ranking_loss' (unknown option 'swap'; known: ", F.margin_ranking_loss, tide.ones{ 3 },
            tide.ones{ 3 }, tide.ones{ 3 }, { swap = true })
    end)
    it("triplet_margin_loss", function()
        err("#3 to 'triplet_margin_loss' (negative shape (3,3) does not match anchor shape (3,4))",
            F.triplet_margin_loss, x, x, tide.ones{ 3, 3 })
        err("#2 to 'triplet_margin_loss' (positive is float64 but the input is float32", F.triplet_margin_loss, x,
            tide.ones({ 3, 4 }, "float64"), x)
        err("#4 to 'triplet_margin_loss' (p must be a positive finite number, got 0)", F.triplet_margin_loss, x, x, x,
            { p = 0 })
        err("#4 to 'triplet_margin_loss' (p must be a positive finite number, got -1)", F.triplet_margin_loss, x, x, x,
            { p = -1 })
        err("#1 to 'triplet_margin_loss' (anchor must be (N, D) or (D)", F.triplet_margin_loss, tide.ones{ 1, 1, 1 },
            tide.ones{ 1, 1, 1 }, tide.ones{ 1, 1, 1 })
        err("#4 to 'triplet_margin_loss' (unknown option 'weight'; known: ", F.triplet_margin_loss, x, x, x,
            { weight = x })
    end)
    it("names the loss without an options table too", function()
        local e = H.error_of(F.multi_margin_loss, x, long({ 0, 1, 2 }), nil)
        assert.is_nil(e)
        e = H.error_of(F.triplet_margin_loss, x, x, tide.ones{ 3, 3 })
        assert.truthy(e:find("triplet_margin_loss", 1, true))
    end)
end)

describe("margin losses: bits independent of the thread count", function()
    local function run(nt, fn)
        local before = tide.get_num_threads()
        tide.set_num_threads(nt)
        local ok, out, grads = pcall(fn)
        tide.set_num_threads(before)
        assert(ok, out)
        return out, grads
    end
    local function same(a, b, label)
        local va, vb = H.values(a), H.values(b)
        assert.are.equal(#va, #vb)
        for i = 1, #va do
            if va[i] ~= vb[i] and not (va[i] ~= va[i] and vb[i] ~= vb[i]) then
                error(string.format("%s: element %d differs: %.17g vs %.17g", label, i - 1, va[i], vb[i]))
            end
        end
    end
    tide.manual_seed(7)
    local N, C = 8192, 16
    for _, dt in ipairs({ "float32", "float64" }) do
        local x = tide.randn({ N, C }, { dtype = dt })
        local x2 = tide.randn({ N, C }, { dtype = dt })
        local x3 = tide.randn({ N, C }, { dtype = dt })
        local cls = tide.randint and tide.randint(0, C, { N }, { dtype = "int64" })
            or (tide.rand({ N }) * C):long():clamp(0, C - 1)
        local ml = (tide.rand({ N, C }) * (C + 1) - 1):long()
        local ypm = (tide.rand({ N }):gt(0.5):to(dt) * 2 - 1)
        local ypm2 = (tide.rand({ N, C }):gt(0.5):to(dt) * 2 - 1)
        local calls = {
            multi_margin_loss = function(a) return F.multi_margin_loss(a[1], cls, { p = 2 }) end,
            multilabel_margin_loss = function(a) return F.multilabel_margin_loss(a[1], ml) end,
            hinge_embedding_loss = function(a) return F.hinge_embedding_loss(a[1], ypm2) end,
            cosine_embedding_loss = function(a) return F.cosine_embedding_loss(a[1], a[2], ypm, { margin = 0.1 }) end,
            margin_ranking_loss = function(a) return F.margin_ranking_loss(a[1], a[2], ypm2, { margin = 0.3 }) end,
            triplet_margin_loss = function(a) return F.triplet_margin_loss(a[1], a[2], a[3], { swap = true }) end,
        }
        for name, call in pairs(calls) do
            it(name .. " " .. dt, function()
                local function once()
                    local a = { x:clone(), x2:clone(), x3:clone() }
                    for _, t in ipairs(a) do t.requires_grad = true end
                    local l = call(a)
                    l:backward()
                    return l, { a[1].grad, a[2].grad, a[3].grad }
                end
                local l1, g1 = run(1, once)
                local l2, g2 = run(2, once)
                same(l1, l2, name .. " loss")
                for i = 1, 3 do
                    if g1[i] then same(g1[i], g2[i], name .. " grad " .. i) end
                end
            end)
        end
    end
end)

describe("margin losses: the module form", function()
    local x = tide.randn({ 4, 5 }, { dtype = "float64" })
    local b = tide.randn({ 4, 5 }, { dtype = "float64" })
    local c = tide.randn({ 4, 5 }, { dtype = "float64" })
    local y = tide.tensor({ 1, -1, 1, -1 }, "float64")
    local cases = {
        { "MultiMarginLoss", "multi_margin_loss", { x, long({ 0, 4, 2, 1 }) },
            { p = 2, margin = 0.5, reduction = "sum" } },
        { "MultiLabelMarginLoss", "multilabel_margin_loss",
            { x, long({ { 0, 1, -1, 0, 0 }, { 4, -1, 0, 0, 0 }, { 1, 2, 3, -1, 0 }, { -1, 0, 0, 0, 0 } }) },
            { reduction = "none" } },
        { "HingeEmbeddingLoss", "hinge_embedding_loss", { x, tide.ones({ 4, 5 }, "float64") * -1 }, { margin = 0.5 } },
        { "CosineEmbeddingLoss", "cosine_embedding_loss", { x, b, y }, { margin = 0.1 } },
        { "MarginRankingLoss", "margin_ranking_loss", { x:select(1, 0), b:select(1, 0), y },
            { margin = 0.2, reduction = "none" } },
        { "TripletMarginLoss", "triplet_margin_loss", { x, b, c }, { swap = true, p = 1 } },
    }
    for _, cs in ipairs(cases) do
        it(cs[1], function()
            local m = tide.nn[cs[1]](cs[4])
            local args = cs[3]
            local got = m(table.unpack(args))
            local n = #args
            local full = { table.unpack(args) }
            full[n + 1] = cs[4]
            local want = F[cs[2]](table.unpack(full, 1, n + 1))
            H.assert_close(got, H.values(want), 0, 0, cs[1])
            H.assert_close(m:forward(table.unpack(args)), H.values(want), 0, 0, cs[1] .. ":forward")
        end)
    end
end)
