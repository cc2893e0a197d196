-- The binary losses: binary_cross_entropy, binary_cross_entropy_with_logits,
-- sigmoid_focal_loss, multilabel_soft_margin_loss, asymmetric_loss and
-- soft_margin_loss. Reference values and gradients from PyTorch 1.13
-- (tests/reference/losses_binary.json, written by gen_losses_binary.py),
-- gradcheck for every option, bad input, thread-count determinism, the
-- module form, and the places where we are stable and PyTorch is not.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local F = tide.F

local data = cjson.decode(H.read_file("tests/reference/losses_binary.json"))

local function decode(v)
    if v == "nan" then return 0 / 0 end
    if v == "inf" then return math.huge end
    if v == "-inf" then return -math.huge end
    return v
end

local function spec_of(t)
    local vals = {}
    for i, v in ipairs(t.values) do vals[i] = decode(v) end
    return { values = vals, shape = t.shape, dtype = t.dtype }
end

local function tensor_of(t, requires_grad)
    local s = spec_of(t)
    if #s.values == 0 then
        local x = tide.zeros(H.ints(s.shape), { dtype = s.dtype })
        if requires_grad then x.requires_grad = true end
        return x
    end
    return H.tensor(s, requires_grad)
end

local function tol(dtype)
    if dtype == "float32" then return H.F32.rtol, H.F32.atol end
    return H.F64.rtol, H.F64.atol
end

describe("binary losses against PyTorch", function()
    it("has the reference cases", function()
        assert.is_true(#data.cases >= 45)
    end)
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local x = tensor_of(c.input, true)
            local y = tensor_of(c.target, c.grad_target ~= nil)
            local opts = {}
            for k, v in pairs(c.options) do opts[k] = v end
            for k, v in pairs(c.tensors) do opts[k] = tensor_of(v) end
            local out = F[c.loss](x, y, opts)
            local rtol, atol = tol(c.input.dtype)
            H.check_tensor(out, spec_of(c.output), rtol, atol, c.name .. " output")
            local total = out
            if c.w then total = (out * tensor_of(c.w)):sum() end
            total:backward()
            H.check_tensor(x.grad, spec_of(c.grad_input), rtol, atol, c.name .. " grad input")
            if c.grad_target then
                H.check_tensor(y.grad, spec_of(c.grad_target), rtol, atol, c.name .. " grad target")
            end
        end)
    end
end)

-- ---- gradcheck (float64) -------------------------------------------------------

local function randn(shape, scale)
    return tide.randn(shape, { dtype = "float64" }) * (scale or 1)
end
local function rand(shape) return tide.rand(shape, { dtype = "float64" }) end
local function binary(shape) return tide.rand(shape, { dtype = "float64" }):gt(0.5):double() end
local function req(t) t.requires_grad = true return t end

describe("gradcheck", function()
    tide.manual_seed(7)
    local reds = { "mean", "sum", "none" }
    for _, red in ipairs(reds) do
        it("binary_cross_entropy " .. red .. " (input and target, weight)", function()
            local p = req(rand { 3, 4 } * 0.9 + 0.05)
            local y = req(rand { 3, 4 })
            local w = rand { 4 } + 0.5
            assert.is_true(tide.gradcheck(function(a, b)
                return F.binary_cross_entropy(a, b, { reduction = red, weight = w })
            end, { p, y }))
        end)
        it("binary_cross_entropy_with_logits " .. red .. " (weight, pos_weight, label_smoothing)", function()
            local x, y = req(randn({ 3, 4 }, 3)), req(rand { 3, 4 })
            local w, pw = rand { 3, 1 } + 0.5, rand { 4 } * 2 + 0.2
            assert.is_true(tide.gradcheck(function(a, b)
                return F.binary_cross_entropy_with_logits(a, b, { reduction = red })
            end, { x, y }))
            assert.is_true(tide.gradcheck(function(a, b)
                return F.binary_cross_entropy_with_logits(a, b,
                    { reduction = red, weight = w, pos_weight = pw, label_smoothing = 0.1 })
            end, { x, y }))
        end)
        it("sigmoid_focal_loss " .. red, function()
            local x, y = req(randn({ 3, 4 }, 3)), rand { 3, 4 }
            for _, o in ipairs { {}, { gamma = 0 }, { gamma = 0.5, alpha = -1 }, { alpha = 0.9, gamma = 3 } } do
                o.reduction = red
                assert.is_true(tide.gradcheck(function(a, b) return F.sigmoid_focal_loss(a, b, o) end, { x, y }))
            end
        end)
        it("multilabel_soft_margin_loss " .. red, function()
            local x, y = req(randn({ 3, 5 }, 3)), req(rand { 3, 5 })
            local w = rand { 5 } + 0.5
            assert.is_true(tide.gradcheck(function(a, b)
                return F.multilabel_soft_margin_loss(a, b, { reduction = red, weight = w })
            end, { x, y }))
            local x1, y1 = req(randn({ 4 }, 2)), binary { 4 }
            assert.is_true(tide.gradcheck(function(a, b)
                return F.multilabel_soft_margin_loss(a, b, { reduction = red })
            end, { x1, y1 }))
        end)
        it("asymmetric_loss " .. red, function()
            local x, y = req(randn({ 3, 5 }, 3)), binary { 3, 5 }
            for _, o in ipairs { {}, { clip = 0 }, { gamma_pos = 1, gamma_neg = 2, clip = 0.2 },
                                 { gamma_neg = 0, eps = 1e-3 } } do
                o.reduction = red
                assert.is_true(tide.gradcheck(function(a, b) return F.asymmetric_loss(a, b, o) end, { x, y }))
            end
            local ys = rand { 3, 5 }
            assert.is_true(tide.gradcheck(function(a, b)
                return F.asymmetric_loss(a, b, { reduction = red, gamma_pos = 1 })
            end, { x, ys }))
        end)
        it("soft_margin_loss " .. red, function()
            local x, y = req(randn({ 3, 4 }, 3)), binary { 3, 4 } * 2 - 1
            assert.is_true(tide.gradcheck(function(a, b)
                return F.soft_margin_loss(a, b, { reduction = red })
            end, { x, y }))
        end)
    end
end)

-- ---- stability where PyTorch's formula fails ---------------------------------------

local function sig(v) return 1 / (1 + math.exp(-v)) end
local function log1p(u)
    if u < 1e-5 then return u - u * u / 2 + u * u * u / 3 end
    return math.log(1 + u)
end
local function logsig(v)
    if v >= 0 then return -log1p(math.exp(-v)) end
    return v - log1p(math.exp(v))
end

describe("stability", function()
    it("sigmoid_focal_loss, gamma = 0.5, saturated logits: finite, correct gradients", function()
        -- the analytic gradient for y = 1: alpha sigma(-x)^g [g sigma(x) log sigma(x) - sigma(-x)],
        -- for y = 0: -(1 - alpha) sigma(x)^g [g sigma(-x) log sigma(-x) - sigma(x)]
        local a, g = 0.25, 0.5
        local function want(x, y)
            if y == 1 then return a * sig(-x) ^ g * (g * sig(x) * logsig(x) - sig(-x)) end
            return -(1 - a) * sig(x) ^ g * (g * sig(-x) * logsig(-x) - sig(x))
        end
        local xs = { 20, 1e4, -1e4, 1e4, -1e4, -20 }
        local ys = { 1, 1, 1, 0, 0, 0 }
        local expect = {}
        for i = 1, #xs do expect[i] = want(xs[i], ys[i]) end
        -- the limits: 0 where the prediction is right, -alpha and 1 - alpha where it is wrong
        assert.are.equal(0, expect[2])
        assert.are.equal(-0.25, expect[3])
        assert.are.equal(0.75, expect[4])
        for _, dt in ipairs { "float32", "float64" } do
            local x = tide.tensor(xs, { dtype = dt, requires_grad = true })
            local y = tide.tensor(ys, dt)
            local l = F.sigmoid_focal_loss(x, y, { gamma = g, reduction = "sum" })
            l:backward()
            local got = H.values(x.grad)
            for i = 1, #got do assert.is_true(got[i] == got[i] and math.abs(got[i]) < math.huge) end
            local rtol = tol(dt)
            H.assert_close(got, expect, rtol, dt == "float32" and 1e-12 or 1e-20, dt .. " gradient")
            assert.is_true(l:item() == l:item() and l:item() < math.huge)
        end
        -- float64 at x = 20 against a central difference
        local function f(v)
            return F.sigmoid_focal_loss(tide.tensor({ v }, "float64"), tide.tensor({ 1 }, "float64"),
                { gamma = g, reduction = "sum" }):item()
        end
        local h = 1e-3
        local fd = (f(20 + h) - f(20 - h)) / (2 * h)
        H.assert_close({ expect[1] }, { fd }, 1e-5, 0, "finite difference at x = 20")
    end)

    it("every logit loss is finite at +-1e4 (loss and gradient)", function()
        for _, dt in ipairs { "float32", "float64" } do
            local xs = { 1e4, -1e4, 1e4, -1e4 }
            local ys = { 1, 1, 0, 0 }
            local calls = {
                function(x, y) return F.binary_cross_entropy_with_logits(x, y,
                    { pos_weight = tide.tensor({ 3 }, dt) }) end,
                function(x, y) return F.binary_cross_entropy_with_logits(x, y, { label_smoothing = 0.2 }) end,
                function(x, y) return F.sigmoid_focal_loss(x, y, { reduction = "mean" }) end,
                function(x, y) return F.sigmoid_focal_loss(x, y, { gamma = 0.5, reduction = "mean" }) end,
                function(x, y) return F.asymmetric_loss(x, y) end,
                function(x, y) return F.asymmetric_loss(x, y, { clip = 0, gamma_pos = 0.5, gamma_neg = 0.5 }) end,
                function(x, y) return F.multilabel_soft_margin_loss(x, y) end,
                function(x, y) return F.soft_margin_loss(x, y * 2 - 1) end,
            }
            for k, fn in ipairs(calls) do
                local x = tide.tensor(xs, { dtype = dt, requires_grad = true })
                local l = fn(x, tide.tensor(ys, dt))
                l:backward()
                local v = l:item()
                assert.is_true(v == v and math.abs(v) < math.huge, dt .. " loss " .. k)
                for _, gv in ipairs(H.values(x.grad)) do
                    assert.is_true(gv == gv and math.abs(gv) < math.huge, dt .. " gradient " .. k)
                end
            end
        end
    end)

    it("soft_margin_loss is finite at x = -100, y = 1 in float32 (PyTorch gives inf)", function()
        local x = tide.tensor({ -100 }, { dtype = "float32", requires_grad = true })
        local l = F.soft_margin_loss(x, tide.tensor({ 1 }, "float32"))
        -- log(1 + e^100) = 100 + log1p(e^-100), which is 100 in float32
        assert.are.equal(100, l:item())
        l:backward()
        -- -y sigmoid(-y x) = -sigmoid(100) = -1
        assert.are.equal(-1, x.grad:item())
    end)

    it("binary_cross_entropy at p = 0, y = 1: loss 100, gradient -1/1e-12 (1e-12 as a float, as PyTorch)", function()
        local p = tide.tensor({ 0 }, { dtype = "float64", requires_grad = true })
        local l = F.binary_cross_entropy(p, tide.tensor({ 1 }, "float64"), { reduction = "sum" })
        assert.are.equal(100, l:item())
        l:backward()
        -- PyTorch's EPSILON is the float 1e-12 = 9.999999960041972e-13
        H.assert_close({ p.grad:item() }, { -1 / 9.999999960041972e-13 }, 1e-15, 0, "gradient")
    end)
end)

-- ---- identities --------------------------------------------------------------

describe("identities", function()
    it("multilabel_soft_margin_loss = per-sample mean over classes of BCE with logits", function()
        tide.manual_seed(3)
        local x, y, w = randn({ 5, 7 }, 3), rand { 5, 7 }, rand { 7 } + 0.5
        local a = F.multilabel_soft_margin_loss(x, y, { weight = w, reduction = "none" })
        local b = F.binary_cross_entropy_with_logits(x, y, { weight = w, reduction = "none" }):mean(1)
        H.assert_close(a, H.values(b), 1e-12, 1e-14, "per sample")
        local m = F.multilabel_soft_margin_loss(x, y)
        local bm = F.binary_cross_entropy_with_logits(x, y, { reduction = "none" }):mean(1):mean()
        H.assert_close(m, H.values(bm), 1e-12, 1e-14, "mean")
    end)
    it("sigmoid_focal_loss with gamma = 0, alpha off = BCE with logits", function()
        local x, y = randn({ 4, 6 }, 4), rand { 4, 6 }
        H.assert_close(F.sigmoid_focal_loss(x, y, { gamma = 0, alpha = -1 }),
            H.values(F.binary_cross_entropy_with_logits(x, y, { reduction = "none" })), 1e-12, 1e-14)
    end)
    it("binary_cross_entropy of sigmoid = BCE with logits (moderate logits)", function()
        local x, y = randn({ 3, 4 }), rand { 3, 4 }
        H.assert_close(F.binary_cross_entropy(x:sigmoid(), y),
            H.values(F.binary_cross_entropy_with_logits(x, y)), 1e-12, 1e-14)
    end)
    it("asymmetric_loss with no focusing, clip or eps effect = BCE with logits", function()
        local x, y = randn({ 3, 4 }), binary { 3, 4 }
        H.assert_close(F.asymmetric_loss(x, y, { gamma_neg = 0, clip = 0, eps = 1e-300, reduction = "sum" }),
            H.values(F.binary_cross_entropy_with_logits(x, y, { reduction = "sum" })), 1e-12, 1e-14)
    end)
end)

-- ---- bad input ------------------------------------------------------------

describe("bad input", function()
    local x, y = tide.randn { 2, 3 }, tide.rand { 2, 3 }
    local function fails(pattern, fn, ...)
        local err = H.error_of(fn, ...)
        assert.is_not_nil(err, "expected an error matching " .. pattern)
        assert.is_truthy(err:find(pattern, 1, true), err .. "  (wanted: " .. pattern .. ")")
        return err
    end
    local names = { "binary_cross_entropy", "binary_cross_entropy_with_logits", "sigmoid_focal_loss",
                    "multilabel_soft_margin_loss", "asymmetric_loss", "soft_margin_loss" }
    for _, name in ipairs(names) do
        local xin = name == "binary_cross_entropy" and tide.rand { 2, 3 } or x
        it(name .. ": shape mismatch names both shapes", function()
            local err = fails("#2", F[name], xin, tide.rand { 3, 2 })
            assert.is_truthy(err:find(name, 1, true))
            assert.is_truthy(err:find("(2,3)", 1, true) and err:find("(3,2)", 1, true), err)
        end)
        it(name .. ": integer target, integer input, mixed dtypes", function()
            fails(name .. " needs a float target", F[name], xin, tide.tensor({ { 1, 0, 1 }, { 0, 1, 0 } }, "int64"))
            fails("#1", F[name], tide.tensor({ { 1, 0, 1 }, { 0, 1, 0 } }, "int64"), y)
            fails(name .. " needs target of input's dtype", F[name], xin, y:double())
        end)
        it(name .. ": unknown option and reduction", function()
            fails("unknown option 'nope'", F[name], xin, y, { nope = 1 })
            fails("unknown reduction 'avg'", F[name], xin, y, { reduction = "avg" })
            fails("#3", F[name], xin, y, { reduction = "avg" })
        end)
    end
    it("binary_cross_entropy: p outside [0, 1] names the value and its place", function()
        local p = tide.tensor { 0.5, 1.5, -0.1 }
        local err = fails("#1", F.binary_cross_entropy, p, tide.rand { 3 })
        assert.is_truthy(err:find("1.5", 1, true) and err:find("element 1", 1, true), err)
        fails("element 0", F.binary_cross_entropy, tide.tensor { 0 / 0 }, tide.rand { 1 })
    end)
    it("weights that do not broadcast, of the wrong dtype, or requiring grad", function()
        local err = fails("weight of shape (4) does not broadcast to input (2,3)", F.binary_cross_entropy,
            tide.rand { 2, 3 }, y, { weight = tide.rand { 4 } })
        assert.is_truthy(err:find("#3", 1, true))
        fails("binary_cross_entropy_with_logits pos_weight of shape (2)", F.binary_cross_entropy_with_logits, x, y,
            { pos_weight = tide.rand { 2 } })
        fails("multilabel_soft_margin_loss weight of shape (5)", F.multilabel_soft_margin_loss, x, y,
            { weight = tide.rand { 5 } })
        fails("needs a float weight", F.binary_cross_entropy_with_logits, x, y,
            { weight = tide.tensor({ 1, 2, 3 }, "int64") })
        fails("needs pos_weight of input's dtype", F.binary_cross_entropy_with_logits, x, y,
            { pos_weight = tide.rand({ 3 }, "float64") })
        fails("not differentiable with respect to pos_weight", F.binary_cross_entropy_with_logits, x, y,
            { pos_weight = tide.rand({ 3 }, { requires_grad = true }) })
    end)
    it("options out of range", function()
        fails("label_smoothing in [0, 1], got 1.5", F.binary_cross_entropy_with_logits, x, y, { label_smoothing = 1.5 })
        fails("label_smoothing in [0, 1], got -0.1", F.binary_cross_entropy_with_logits, x, y,
            { label_smoothing = -0.1 })
        fails("sigmoid_focal_loss needs gamma >= 0", F.sigmoid_focal_loss, x, y, { gamma = -1 })
        fails("asymmetric_loss needs gamma_neg >= 0", F.asymmetric_loss, x, y, { gamma_neg = -2 })
        fails("asymmetric_loss needs gamma_pos >= 0", F.asymmetric_loss, x, y, { gamma_pos = -0.5 })
        fails("asymmetric_loss needs clip in [0, 1]", F.asymmetric_loss, x, y, { clip = 2 })
        fails("asymmetric_loss needs eps in (0, 1)", F.asymmetric_loss, x, y, { eps = 0 })
        fails("option 'gamma' must be a number", F.sigmoid_focal_loss, x, y, { gamma = "two" })
        fails("#3", F.sigmoid_focal_loss, x, y, { gamma = -1 })
    end)
    it("sigmoid_focal_loss: target outside [0, 1]", function()
        fails("sigmoid_focal_loss needs target in [0, 1], got 2 at element 1", F.sigmoid_focal_loss,
            tide.randn { 3 }, tide.tensor { 1, 2, 0 })
    end)
    it("a target that requires grad where there is no target gradient", function()
        fails("soft_margin_loss is not differentiable with respect to target", F.soft_margin_loss, x,
            tide.ones({ 2, 3 }, { requires_grad = true }))
    end)
    it("the process goes on after errors", function()
        local l = F.binary_cross_entropy_with_logits(x, y)
        assert.are.equal(0, #l:shape())
    end)
end)

-- ---- determinism and the module form ----------------------------------------------

describe("threads", function()
    it("1 and 2 threads give the same bits (loss and gradient, every loss)", function()
        local saved = tide.get_num_threads()
        tide.manual_seed(11)
        local x0 = tide.randn { 300, 1000 } * 4
        local y0 = tide.rand { 300, 1000 }
        local yb = y0:gt(0.5):float()
        local pw = tide.rand { 1000 } + 0.5
        local calls = {
            function(x) return F.binary_cross_entropy(x:sigmoid(), y0) end,
            function(x) return F.binary_cross_entropy_with_logits(x, y0) end,
            function(x) return F.binary_cross_entropy_with_logits(x, y0, { pos_weight = pw }) end,
            function(x) return F.sigmoid_focal_loss(x, y0, { reduction = "mean" }) end,
            function(x) return F.multilabel_soft_margin_loss(x, yb) end,
            function(x) return F.asymmetric_loss(x, yb) end,
            function(x) return F.soft_margin_loss(x, yb * 2 - 1, { reduction = "sum" }) end,
        }
        local function run(k, nt)
            tide.set_num_threads(nt)
            local x = x0:clone()
            x.requires_grad = true
            local l = calls[k](x)
            l:backward()
            local g = x.grad:sum():item() + x.grad:get(123, 456) * 1e3
            return string.format("%a %a", l:item(), g), x.grad
        end
        for k = 1, #calls do
            local a, ga = run(k, 1)
            local b, gb = run(k, 2)
            assert.are.equal(a, b, "loss " .. k)
            assert.is_true((ga - gb):abs():max():item() == 0, "gradient " .. k)
        end
        tide.set_num_threads(saved)
    end)
end)

describe("nn modules", function()
    it("tide.nn.<Name>Loss{opts}(x, y) equals tide.F.<name>(x, y, opts)", function()
        local x, y = randn({ 3, 4 }, 2), rand { 3, 4 }
        local yb, ys = binary { 3, 4 }, binary { 3, 4 } * 2 - 1
        local pairs_ = {
            { "BCELoss", "binary_cross_entropy", x:sigmoid(), y, { weight = rand { 4 }, reduction = "sum" } },
            { "BCEWithLogitsLoss", "binary_cross_entropy_with_logits", x, y,
              { pos_weight = rand { 4 }, label_smoothing = 0.1 } },
            { "SigmoidFocalLoss", "sigmoid_focal_loss", x, y, { gamma = 1, alpha = 0.5 } },
            { "MultiLabelSoftMarginLoss", "multilabel_soft_margin_loss", x, yb, { weight = rand { 4 } } },
            { "AsymmetricLoss", "asymmetric_loss", x, yb, { gamma_neg = 2, clip = 0.1, reduction = "none" } },
            { "SoftMarginLoss", "soft_margin_loss", x, ys, { reduction = "sum" } },
        }
        for _, p in ipairs(pairs_) do
            local m = tide.nn[p[1]](p[5])
            H.assert_close(m(p[3], p[4]), H.values(F[p[2]](p[3], p[4], p[5])), 0, 0, p[1])
            H.assert_close(m:forward(p[3], p[4]), H.values(F[p[2]](p[3], p[4], p[5])), 0, 0, p[1])
        end
        -- defaults: sigmoid_focal_loss keeps torchvision's "none"
        assert.are.same({ 3, 4 }, tide.nn.SigmoidFocalLoss()(x, y):shape())
        assert.are.same({}, tide.nn.AsymmetricLoss()(x, yb):shape())
    end)
end)
