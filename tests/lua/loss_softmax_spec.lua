-- The softmax losses (cross_entropy, nll_loss, focal_loss,
-- poly1_cross_entropy): PyTorch 1.13 reference values and gradients
-- (tests/reference/losses_softmax.json, from gen_losses_softmax.py),
-- gradcheck for every option, focal(gamma = 0) = cross_entropy, saturated
-- focal gradients, errors that name the loss and the argument, bitwise
-- equal results at 1 and 2 threads, and the nn module form.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local cjson = require "cjson"
local tide = require "tide"
local F = tide.F

local decode = H.json_number

local function spec(s)
    local vals = {}
    for i, v in ipairs(s.values) do vals[i] = decode(v) end
    return { values = vals, shape = s.shape, dtype = s.dtype }
end

local function tensor(s, rg)
    local sp = spec(s)
    if #sp.values == 0 then
        local t = tide.zeros(H.ints(sp.shape), sp.dtype)
        if rg then t.requires_grad = true end
        return t
    end
    return H.tensor(sp, rg)
end

local data = cjson.decode(H.read_file("tests/reference/losses_softmax.json"))

local function options(o)
    local r = {}
    for k, v in pairs(o) do
        if type(v) == "table" then
            r[k] = tensor(v)
        elseif k == "ignore_index" then
            r[k] = math.tointeger(v)
        else
            r[k] = v
        end
    end
    return r
end

describe("softmax losses: PyTorch reference", function()
    it("has the cases", function()
        assert.is_true(#data.cases >= 70)
    end)
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local x = tensor(c.input, true)
            local y = tensor(c.target, c.grad_target ~= nil)
            local tol = c.input.dtype == "float64" and H.F64 or { rtol = 1e-5, atol = 1e-6 }
            local out = F[c.loss](x, y, options(c.options))
            H.check_tensor(out, spec(c.output), tol.rtol, tol.atol, "output")
            local w = tensor(c.w)
            if out:numel() > 0 then
                (out * w):sum():backward()
                H.check_tensor(x.grad, spec(c.grad_input), tol.rtol, tol.atol, "grad input")
                if c.grad_target then
                    H.check_tensor(y.grad, spec(c.grad_target), tol.rtol, tol.atol, "grad target")
                end
            end
        end)
    end
end)

describe("softmax losses: gradcheck (float64)", function()
    local function rn(s) return tide.randn(s, { dtype = "float64", requires_grad = true }) end
    tide.manual_seed(7)
    local y = tide.tensor({ 0, 3, 1, -100, 2 }, "int64")
    local yk = tide.tensor({ { 0, 2, 1 }, { 3, -100, 0 } }, "int64")
    local w = tide.rand({ 4 }, "float64") + 0.3
    local probs = tide.rand({ 5, 4 }, "float64"):softmax(1)
    local cases = {
        { "cross_entropy", F.cross_entropy, { 5, 4 }, y, {} },
        { "cross_entropy weight", F.cross_entropy, { 5, 4 }, y, { weight = w } },
        { "cross_entropy smoothing weight sum", F.cross_entropy, { 5, 4 }, y,
            { weight = w, label_smoothing = 0.2, reduction = "sum" } },
        { "cross_entropy none", F.cross_entropy, { 5, 4 }, y, { reduction = "none", label_smoothing = 0.1 } },
        { "cross_entropy ignore_index 3", F.cross_entropy, { 5, 4 }, tide.tensor({ 3, 0, 3, 1, 2 }, "int64"),
            { ignore_index = 3 } },
        { "cross_entropy kdim", F.cross_entropy, { 2, 4, 3 }, yk, { weight = w, label_smoothing = 0.1 } },
        { "cross_entropy probs", F.cross_entropy, { 5, 4 }, probs, { weight = w, label_smoothing = 0.3 } },
        { "nll_loss", F.nll_loss, { 5, 4 }, y, { weight = w } },
        { "nll_loss kdim none", F.nll_loss, { 2, 4, 3 }, yk, { reduction = "none" } },
        { "focal_loss", F.focal_loss, { 5, 4 }, y, {} },
        { "focal_loss gamma 0.5 alpha tensor", F.focal_loss, { 5, 4 }, y, { gamma = 0.5, alpha = w } },
        { "focal_loss alpha 0.25 none", F.focal_loss, { 5, 4 }, y, { alpha = 0.25, reduction = "none" } },
        { "focal_loss kdim sum", F.focal_loss, { 2, 4, 3 }, yk, { gamma = 3, reduction = "sum" } },
        { "poly1_cross_entropy", F.poly1_cross_entropy, { 5, 4 }, y, {} },
        { "poly1_cross_entropy all options", F.poly1_cross_entropy, { 5, 4 }, y,
            { epsilon = 2, weight = w, label_smoothing = 0.1 } },
        { "poly1_cross_entropy kdim none", F.poly1_cross_entropy, { 2, 4, 3 }, yk,
            { epsilon = -0.5, reduction = "none" } },
    }
    for _, c in ipairs(cases) do
        it(c[1], function()
            local fn, opts = c[2], c[5]
            local ok, res = pcall(tide.gradcheck, function(x) return fn(x, c[4], opts) end, { rn(c[3]) })
            assert(ok, tostring(res))
            assert.is_true(res)
        end)
    end
    it("cross_entropy: gradient w.r.t. class probabilities", function()
        local t = tide.rand({ 3, 4 }, { dtype = "float64", requires_grad = true })
        local x = tide.randn({ 3, 4 }, "float64")
        assert.is_true(tide.gradcheck(function(tt) return F.cross_entropy(x, tt,
            { weight = w, label_smoothing = 0.1 }) end,
            { t }))
    end)
end)

describe("softmax losses: identities and stability", function()
    it("focal_loss with gamma = 0 equals cross_entropy (values and gradients)", function()
        tide.manual_seed(3)
        for _, r in ipairs({ "mean", "sum", "none" }) do
            local x1 = tide.randn({ 7, 6 }, { dtype = "float64", requires_grad = true })
            local x2 = x1:detach():clone()
            x2.requires_grad = true
            local y = tide.tensor({ 0, 5, -100, 2, 3, 1, 4 }, "int64")
            local a = F.focal_loss(x1, y, { gamma = 0, reduction = r })
            local b = F.cross_entropy(x2, y, { reduction = r })
            H.assert_close(a, H.values(b), 1e-12, 1e-14, "value " .. r)
            a:sum():backward()
            b:sum():backward()
            H.assert_close(x1.grad, H.values(x2.grad), 1e-12, 1e-14, "grad " .. r)
        end
    end)

    -- d/dx of -(1-p)^g log p for the target at logit s against zeros in a
    -- row of C: with q = 1 - p = (C-1) e^-s / (1 + (C-1) e^-s), the
    -- closed form g' = (1-p)^g [g p log p - (1-p)], written here directly
    local function focal_target_grad(s, c, g)
        local u = (c - 1) * math.exp(-s)
        local q = u / (1 + u)
        local p = 1 / (1 + u)
        -- log(1 + u) by its series where 1 + u would round
        local logp = u < 1e-5 and -(u - u * u / 2 + u * u * u / 3) or -math.log(1 + u)
        return q ^ g * (g * p * logp - q)
    end

    for _, dt in ipairs({ "float64", "float32" }) do
        it("focal_loss gamma = 0.5 at saturated logits gives finite, correct gradients (" .. dt .. ")", function()
            local x = tide.tensor({ { 20, 0, 0 }, { 0, 1e4, 0 }, { 0, 0, -1e4 } }, { dtype = dt, requires_grad = true })
            local y = tide.tensor({ 0, 1, 0 }, "int64")
            local l = F.focal_loss(x, y, { gamma = 0.5, reduction = "sum" })
            l:backward()
            local g = x.grad:totable()
            for i = 1, 3 do
                for j = 1, 3 do
                    assert.is_true(g[i][j] == g[i][j] and math.abs(g[i][j]) < math.huge, "nan/inf at " .. i .. "," .. j)
                end
            end
            local want = focal_target_grad(20, 3, 0.5)
            local tol = dt == "float64" and 1e-10 or 1e-5
            H.assert_close({ g[1][1] }, { want }, tol, 0, "logit 20")
            -- the other two share -g/2 each (equal logits)
            H.assert_close({ g[1][2], g[1][3] }, { -want / 2, -want / 2 }, tol, 0, "logit 20 others")
            assert.are.equal(0, g[2][1]); assert.are.equal(0, g[2][2]); assert.are.equal(0, g[2][3])
            -- target at 0 against -1e4 on the wrong class: p = 1/2 exactly
            local half = focal_target_grad(0, 2, 0.5)
            H.assert_close({ g[3][1], g[3][2], g[3][3] }, { half, -half, 0 }, tol, 1e-12, "row 3")
        end)
    end

    it("focal_loss float64 gradient matches a finite difference at logit 20", function()
        local function f(s) return F.focal_loss(tide.tensor({ { s, 0, 0 } }, "float64"),
            tide.tensor({ 0 }, "int64"), { gamma = 0.5 }):item() end
        local h = 1e-3
        local fd = (f(20 + h) - f(20 - h)) / (2 * h)
        local x = tide.tensor({ { 20, 0, 0 } }, { dtype = "float64", requires_grad = true })
        F.focal_loss(x, tide.tensor({ 0 }, "int64"), { gamma = 0.5 }):backward()
        H.assert_close({ x.grad:get(0, 0) }, { fd }, 1e-5, 0, "finite difference")
    end)

    it("every loss that takes logits is finite at +-1e4 (float32)", function()
        local x = tide.tensor({ { 1e4, -1e4, 0 }, { -1e4, 1e4, -1e4 } }, { requires_grad = true })
        local y = tide.tensor({ 1, 1 }, "int64")
        for _, name in ipairs({ "cross_entropy", "focal_loss", "poly1_cross_entropy" }) do
            x.grad = nil
            local l = F[name](x, y, name == "cross_entropy" and { label_smoothing = 0.1 } or nil)
            local v = l:item()
            assert.is_true(v == v and v < math.huge, name .. " loss " .. v)
            l:backward()
            for _, g in ipairs(H.values(x.grad)) do
                assert.is_true(g == g and math.abs(g) < math.huge, name .. " grad")
            end
        end
    end)
end)

describe("softmax losses: bad input", function()
    local x = tide.randn({ 3, 10 })
    local x64 = tide.randn({ 3, 10 }, "float64")
    local y = tide.tensor({ 1, 2, 3 }, "int64")
    local function err(fn, ...)
        local e = H.error_of(fn, ...)
        assert(e, "no error")
        return e
    end
    local function expect(e, loss, arg, ...)
        assert.is_truthy(e:find(loss, 1, true), e)
        assert.is_truthy(e:find("#" .. arg, 1, true), e)
        for _, s in ipairs({ ... }) do assert.is_truthy(e:find(s, 1, true), e) end
    end
    for _, name in ipairs({ "cross_entropy", "nll_loss", "focal_loss", "poly1_cross_entropy" }) do
        local fn = F[name]
        it(name .. ": class index out of range names the index and where", function()
            expect(err(fn, x, tide.tensor({ 1, 2, 12 }, "int64")), name, 2, "target 12", "position 2", "10 classes")
            expect(err(fn, x, tide.tensor({ -1, 2, 3 }, "int64")), name, 2, "target -1", "position 0")
            local xk = tide.randn({ 2, 10, 3 })
            expect(err(fn, xk, tide.tensor({ { 0, 1, 2 }, { 3, 10, 4 } }, "int64")), name, 2, "target 10", "(1,1)")
        end)
        it(name .. ": target shape mismatch says both shapes", function()
            expect(err(fn, x, tide.tensor({ 1, 2 }, "int64")), name, 2, "(2)", "(3,10)")
        end)
        it(name .. ": float target where indices are expected", function()
            expect(err(fn, x, tide.tensor({ 1, 2, 3 })), name, 2, "float32")
        end)
        it(name .. ": integer input, mixed dtypes", function()
            expect(err(fn, tide.tensor({ { 1, 2 } }, "int64"), tide.tensor({ 0 }, "int64")), name, 1, "int64")
        end)
        it(name .. ": unknown option and bad reduction", function()
            expect(err(fn, x, y, { bogus = 1 }), name, 3, "bogus")
            expect(err(fn, x, y, { reduction = "avg" }), name, 3, "avg")
        end)
    end
    for _, name in ipairs({ "cross_entropy", "nll_loss", "poly1_cross_entropy" }) do
        it(name .. ": weight of the wrong length or dtype", function()
            expect(err(F[name], x, y, { weight = tide.ones({ 9 }) }), name, 3, "weight", "(10)", "(9)")
            expect(err(F[name], x, y, { weight = tide.ones({ 10 }, "float64") }), name, 3, "weight", "float64")
            expect(err(F[name], x64, y, { weight = tide.ones({ 10 }) }), name, 3, "weight", "float32")
        end)
    end
    for _, name in ipairs({ "cross_entropy", "poly1_cross_entropy" }) do
        it(name .. ": label_smoothing outside [0, 1]", function()
            expect(err(F[name], x, y, { label_smoothing = 1.5 }), name, 3, "label_smoothing", "1.5")
            expect(err(F[name], x, y, { label_smoothing = -0.1 }), name, 3, "label_smoothing")
        end)
    end
    it("cross_entropy: int target of input's shape where probabilities are expected", function()
        expect(err(F.cross_entropy, x, tide.zeros({ 3, 10 }, "int64")), "cross_entropy", 2, "probabilities")
    end)
    it("cross_entropy: probabilities of another dtype, ignore_index with probabilities", function()
        expect(err(F.cross_entropy, x, tide.zeros({ 3, 10 }, "float64")), "cross_entropy", 2, "float64")
        expect(err(F.cross_entropy, x, tide.zeros({ 3, 10 }), { ignore_index = 0 }), "cross_entropy", 3,
            "ignore_index")
    end)
    it("focal_loss: gamma < 0, alpha of the wrong length", function()
        expect(err(F.focal_loss, x, y, { gamma = -1 }), "focal_loss", 3, "gamma")
        expect(err(F.focal_loss, x, y, { alpha = tide.ones({ 4 }) }), "focal_loss", 3, "alpha", "(4)")
        expect(err(F.focal_loss, x, y, { alpha = "x" }), "focal_loss", 3, "alpha")
    end)
    it("poly1_cross_entropy: epsilon < -1", function()
        expect(err(F.poly1_cross_entropy, x, y, { epsilon = -2 }), "poly1_cross_entropy", 3, "epsilon")
    end)
    it("the process goes on after errors", function()
        assert.is_true(F.cross_entropy(x, y):item() > 0)
    end)
end)

describe("softmax losses: threads", function()
    it("give bitwise identical results at 1 and 2 threads", function()
        tide.manual_seed(11)
        local saved = tide.get_num_threads()
        local x = tide.randn({ 4096, 100 })
        local xk = tide.randn({ 64, 20, 50 }, "float64")
        local y = tide.randint(0, 100, { 4096 })
        local yk = tide.randint(0, 20, { 64, 50 })
        local w = tide.rand({ 100 }) + 0.5
        local function run()
            local r = {}
            for _, c in ipairs({
                { F.cross_entropy, x, y, { label_smoothing = 0.1, weight = w } },
                { F.focal_loss, x, y, { gamma = 2 } },
                { F.poly1_cross_entropy, x, y, {} },
                { F.nll_loss, x, y, { reduction = "sum" } },
                { F.cross_entropy, xk, yk, {} },
            }) do
                local xi = c[2]:detach()
                xi.requires_grad = true
                local l = c[1](xi, c[3], c[4])
                l:backward()
                r[#r + 1] = string.format("%a", l:item())
                r[#r + 1] = string.format("%a", xi.grad:sum():item())
                r[#r + 1] = string.format("%a", (xi.grad * xi.grad):sum():item())
            end
            return r
        end
        tide.set_num_threads(1)
        local a = run()
        tide.set_num_threads(2)
        local b = run()
        tide.set_num_threads(saved)
        assert.are.same(a, b)
    end)
end)

describe("softmax losses: gradient written by the forward", function()
    -- A reduced loss whose input wants a gradient computes it in the
    -- forward's pass (one exp per logit for float32 cross-entropy, eight
    -- rows at a time below 17 classes); reduction = "none" followed by the
    -- reduction runs the separate backward kernel. The two must agree to a
    -- few float32 ulps of the largest gradient.
    local function grads(f, x, y, o, seed, reduce)
        local xa = x:detach()
        xa.requires_grad = true
        local l = f(xa, y, o)
        ;(l * seed):backward()
        local xb = x:detach()
        xb.requires_grad = true
        local ob = { reduction = "none" }
        for k, v in pairs(o) do if k ~= "reduction" then ob[k] = v end end
        local lb = reduce(f(xb, y, ob))
        ;(lb * seed):backward()
        return l, lb, xa.grad, xb.grad
    end
    local function close(a, b, ulps)
        local d = (a:double() - b:double()):abs():max():item()
        local m = b:double():abs():max():item()
        assert(d <= ulps * 1.2e-7 * math.max(m, 1e-30), string.format("differ by %g (max %g)", d, m))
    end
    tide.manual_seed(21)
    for _, c in ipairs({ 10, 3, 16, 17, 1000 }) do
        -- 37 rows: four blocks of eight and a tail of five
        local n = 37
        local x = tide.randn({ n, c }) * 3
        local y = tide.randint(0, c, { n })
        y:narrow(0, 5, 1):fill_(-100) -- one ignored row
        local w = tide.rand({ c }) + 0.5
        for oi, o in ipairs({
            {},
            { weight = w },
            { label_smoothing = 0.2 },
            { weight = w, label_smoothing = 0.1, reduction = "sum" },
        }) do
            local name = string.format("cross_entropy C = %d, options %d", c, oi)
            it(name .. " agrees with the separate backward", function()
                for _, seed in ipairs({ 1, -2.5 }) do
                    local l, lb, ga, gb = grads(F.cross_entropy, x, y, o, seed, function(t)
                        if o.reduction == "sum" then return t:sum() end
                        if o.weight then
                            local wy = w:index_select(0, y:clamp(0, c - 1)) * y:ne(-100):float()
                            return t:sum() / wy:sum()
                        end
                        return t:sum() / (n - 1)
                    end)
                    close(l, lb, 8)
                    close(ga, gb, 8)
                    assert.equal(0, ga:narrow(0, 5, 1):abs():max():item())
                end
            end)
        end
    end
    it("focal_loss and float64 cross_entropy agree too", function()
        local x = tide.randn({ 33, 12 }) * 2
        local y = tide.randint(0, 12, { 33 })
        local l, lb, ga, gb = grads(F.focal_loss, x, y, { gamma = 2 }, 1, function(t) return t:mean() end)
        close(l, lb, 8)
        close(ga, gb, 8)
        -- 300 classes, an ignored row, per-class alpha, a target at the max
        local xw = tide.randn({ 19, 300 }) * 4
        local yw = tide.randint(0, 300, { 19 })
        yw:narrow(0, 2, 1):fill_(-100)
        xw:narrow(0, 3, 1):narrow(1, yw:narrow(0, 3, 1):item(), 1):fill_(40)
        local alpha = tide.rand({ 300 })
        for _, f in ipairs({ F.focal_loss, F.poly1_focal_loss }) do
            l, lb, ga, gb = grads(f, xw, yw, { gamma = 1.5, alpha = alpha }, -3, function(t)
                return t:sum() / 18
            end)
            close(l, lb, 8)
            close(ga, gb, 8)
        end
        local xd = tide.randn({ 9, 7 }, "float64")
        local yd = tide.randint(0, 7, { 9 })
        l, lb, ga, gb = grads(F.cross_entropy, xd, yd, {}, 1, function(t) return t:mean() end)
        assert(math.abs(l:item() - lb:item()) < 1e-15)
        assert((ga - gb):abs():max():item() < 1e-16)
    end)
    it("a retained graph gives the same gradient on its second backward", function()
        local x = tide.randn({ 20, 10 }, { requires_grad = true })
        local y = tide.randint(0, 10, { 20 })
        local l = F.cross_entropy(x, y)
        l:backward(nil, { retain_graph = true })
        local first = x.grad:clone()
        l:backward()
        close(x.grad, first * 2, 8)
        -- and a loss that is never backpropagated frees its gradient with the graph
        local before = tide.memory().live
        do
            local xs = tide.randn({ 256, 1000 }, { requires_grad = true })
            local _ = F.cross_entropy(xs, tide.randint(0, 1000, { 256 }))
        end
        collectgarbage()
        collectgarbage()
        assert.is_true(tide.memory().live <= before + 4096)
    end)
end)

describe("softmax losses: nn modules", function()
    it("nn.<Name>Loss{opts}(x, y) equals F.<name>(x, y, opts)", function()
        tide.manual_seed(5)
        local x = tide.randn({ 6, 4 }, "float64")
        local y = tide.tensor({ 0, 1, 2, 3, -100, 1 }, "int64")
        local w = tide.rand({ 4 }, "float64") + 0.5
        for _, c in ipairs({
            { "CrossEntropyLoss", "cross_entropy", { label_smoothing = 0.1, weight = w } },
            { "NLLLoss", "nll_loss", { reduction = "sum" } },
            { "FocalLoss", "focal_loss", { gamma = 1.5, alpha = 0.25 } },
            { "Poly1CrossEntropyLoss", "poly1_cross_entropy", { epsilon = 2 } },
        }) do
            local m = tide.nn[c[1]](c[3])
            local a = m(x, y):item()
            local b = F[c[2]](x, y, c[3]):item()
            assert.are.equal(b, a)
            assert.are.equal(b, m:forward(x, y):item())
        end
        assert.are.equal(F.cross_entropy(x, y):item(), tide.nn.CrossEntropyLoss()(x, y):item())
    end)
end)

describe("softmax losses: poly1_focal_loss", function()
    it("is focal_loss at epsilon = 0 and poly1_cross_entropy at gamma = 0, values and gradients", function()
        tide.manual_seed(8)
        local x = tide.randn({ 7, 5 }, "float64")
        local y = tide.tensor({ 0, 1, 2, 3, 4, 0, -100 }, "int64")
        for _, c in ipairs({
            { { epsilon = 0, gamma = 1.5, alpha = 0.25 }, "focal_loss", { gamma = 1.5, alpha = 0.25 } },
            { { epsilon = 0.7, gamma = 0 }, "poly1_cross_entropy", { epsilon = 0.7 } },
        }) do
            local xa = x:detach():requires_grad_()
            local xb = x:detach():requires_grad_()
            local a = F.poly1_focal_loss(xa, y, c[1])
            local b = F[c[2]](xb, y, c[3])
            a:backward()
            b:backward()
            assert.is_true(math.abs(a:item() - b:item()) <= 1e-14, c[2])
            assert.is_true((xa.grad - xb.grad):abs():max():item() <= 1e-14, c[2] .. " gradient")
        end
    end)
end)

describe("softmax losses: float labels", function()
    -- tide.tensor({0, 2, 1}) is float32 (as torch.tensor of floats): the
    -- error has to say how to make class indices
    local x = tide.randn({3, 4})
    for _, name in ipairs({ "cross_entropy", "nll_loss", "focal_loss" }) do
        it(name .. " says how to make int64 labels", function()
            local ok, err = pcall(F[name], x, tide.tensor({ 0, 2, 1 }))
            assert.is_false(ok)
            err = tostring(err)
            assert.truthy(err:find("bad argument #2 to '" .. name .. "'", 1, true), err)
            assert.truthy(err:find("tide.tensor(t, \"int64\")", 1, true), err)
            assert.truthy(err:find("y:long()", 1, true), err)
            -- and the fix it names works
            assert.is_true(tide.is_tensor(F[name](x, tide.tensor({ 0, 2, 1 }):long())))
        end)
    end

    it("a uint8 target is told to convert with y:long()", function()
        local ok, err = pcall(F.cross_entropy, x, tide.tensor({ 0, 2, 1 }, "uint8"))
        assert.is_false(ok)
        assert.truthy(tostring(err):find("got uint8; convert it with y:long()", 1, true), err)
    end)
end)
