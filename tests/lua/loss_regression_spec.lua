-- The regression losses: mse_loss, l1_loss, smooth_l1_loss, huber_loss,
-- kl_div, poisson_nll_loss, gaussian_nll_loss. Values and gradients against
-- PyTorch 1.13 (tests/reference/losses_regression.json, written by
-- tests/reference/gen_losses_regression.py), gradcheck for every loss and
-- option, errors that name the loss and the argument, the same bits at 1 and
-- 2 threads, modules equal to functions, and Huber = delta * SmoothL1.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local F = tide.F

local data = cjson.decode(H.read_file("tests/reference/losses_regression.json"))

local SPECIAL = { nan = 0 / 0, inf = math.huge, ["-inf"] = -math.huge }

-- the JSON's "nan" / "inf" / "-inf" strings as numbers
local function decode_values(spec)
    local v = {}
    for i, x in ipairs(spec.values) do v[i] = type(x) == "string" and SPECIAL[x] or x end
    return { values = v, shape = spec.shape, dtype = spec.dtype }
end

local function make(spec, requires_grad)
    spec = decode_values(spec)
    local shape = H.ints(spec.shape)
    local n = 1
    for _, s in ipairs(shape) do n = n * s end
    local t
    if n == 0 then
        t = tide.zeros(shape, { dtype = spec.dtype })
        if requires_grad then t.requires_grad = true end
    else
        t = H.tensor(spec, requires_grad)
    end
    return t
end

local function options(o)
    local r = {}
    for k, v in pairs(o) do r[k] = v end
    return r
end

describe("regression losses against PyTorch", function()
    assert.is_true(#data.cases >= 45)
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local ins = {}
            for i, spec in ipairs(c.inputs) do ins[i] = make(spec, true) end
            local args = { table.unpack(ins) }
            args[#args + 1] = options(c.options)
            local out = F[c.loss](table.unpack(args))
            H.check_tensor(out, decode_values(c.output), c.rtol, c.atol, c.name .. ": output")
            local s = out
            if c.weight ~= cjson.null then s = (out * make(c.weight)):sum() end
            s:backward()
            for i, g in ipairs(c.grads) do
                local got = ins[i].grad
                if got == nil then got = tide.zeros(ins[i]:shape(), { dtype = ins[i]:dtype() }) end
                H.check_tensor(got, decode_values(g), c.rtol, c.atol, c.name .. ": grad " .. i)
            end
        end)
    end
end)

local function f64(values)
    return tide.tensor(values, { dtype = "float64", requires_grad = true })
end

local function rn(shape)
    return tide.randn(shape, { dtype = "float64", requires_grad = true })
end

-- positive and away from 0
local function pos(shape, lo)
    local t = (tide.rand(shape, { dtype = "float64" }) + (lo or 0.2)):detach()
    t.requires_grad = true
    return t
end

describe("regression losses gradcheck (float64)", function()
    tide.manual_seed(11)
    local reductions = { "none", "mean", "sum" }
    -- differences away from the kinks (|d| = 0, beta, delta)
    local xk = f64({ { 0.3, -1.7, 2.2 }, { 1.1, -0.4, 0.9 } })
    local yk = f64({ { -0.2, 0.1, 0.6 }, { 2.6, 0.05, 0.0 } })
    for _, red in ipairs(reductions) do
        it("mse_loss " .. red, function()
            assert.is_true(tide.gradcheck(function(x, y) return F.mse_loss(x, y, { reduction = red }) end,
                { rn { 3, 4 }, rn { 3, 4 } }))
        end)
        it("l1_loss " .. red, function()
            assert.is_true(tide.gradcheck(function(x, y) return F.l1_loss(x, y, { reduction = red }) end, { xk, yk }))
        end)
        it("kl_div " .. red, function()
            assert.is_true(tide.gradcheck(function(x, y) return F.kl_div(x, y, { reduction = red }) end,
                { rn { 3, 4 }, pos { 3, 4 } }))
        end)
    end
    it("mse_loss broadcast", function()
        assert.is_true(tide.gradcheck(function(x, y) return F.mse_loss(x, y) end, { rn { 4, 1 }, rn { 3 } }))
    end)
    for _, beta in ipairs { 0.0, 0.5, 1.0, 2.0 } do
        it("smooth_l1_loss beta " .. beta, function()
            assert.is_true(tide.gradcheck(function(x, y)
                return F.smooth_l1_loss(x, y, { beta = beta, reduction = "sum" })
            end, { xk, yk }))
        end)
    end
    for _, delta in ipairs { 0.3, 1.0, 2.5 } do
        it("huber_loss delta " .. delta, function()
            assert.is_true(tide.gradcheck(function(x, y) return F.huber_loss(x, y, { delta = delta }) end, { xk, yk }))
        end)
    end
    it("smooth_l1_loss broadcast none", function()
        assert.is_true(tide.gradcheck(function(x, y)
            return F.smooth_l1_loss(x, y, { reduction = "none", beta = 0.1 })
        end, { f64({ { 0.3 }, { -1.2 } }), f64({ 0.5, 1.33, -2.0 }) }))
    end)
    it("kl_div batchmean and log_target", function()
        assert.is_true(tide.gradcheck(function(x, y) return F.kl_div(x, y, { reduction = "batchmean" }) end,
            { rn { 3, 4 }, pos { 3, 4 } }))
        assert.is_true(tide.gradcheck(function(x, y)
            return F.kl_div(x, y, { log_target = true, reduction = "batchmean" })
        end, { rn { 3, 4 }, rn { 3, 4 } }))
        assert.is_true(tide.gradcheck(function(x, y) return F.kl_div(x, y,
            { log_target = true, reduction = "none" }) end,
            { rn { 2, 3 }, rn { 3 } }))
    end)
    for _, full in ipairs { false, true } do
        it("poisson_nll_loss log_input, full = " .. tostring(full), function()
            -- targets on both sides of 1, away from it
            local y = f64({ { 0.0, 0.5, 1.5, 3.0 }, { 7.0, 0.2, 2.0, 10.0 } })
            assert.is_true(tide.gradcheck(function(x, t) return F.poisson_nll_loss(x, t, { full = full }) end,
                { rn { 2, 4 }, y }))
            assert.is_true(tide.gradcheck(function(x, t)
                return F.poisson_nll_loss(x, t, { full = full, log_input = false, eps = 0.01, reduction = "none" })
            end, { pos({ 2, 4 }, 0.3), y }))
        end)
        it("gaussian_nll_loss full = " .. tostring(full), function()
            for _, vshape in ipairs { { 3, 4 }, { 3, 1 }, { 3 } } do
                assert.is_true(tide.gradcheck(function(x, t, v)
                    return F.gaussian_nll_loss(x, t, v, { full = full, reduction = "sum" })
                end, { rn { 3, 4 }, rn { 3, 4 }, pos(vshape) }))
            end
            assert.is_true(tide.gradcheck(function(x, t, v)
                return F.gaussian_nll_loss(x, t, v, { full = full, eps = 1e-3, reduction = "none" })
            end, { rn { 2, 3 }, rn { 3 }, pos { 2, 1 } }))
        end)
    end
end)

describe("regression losses: bad input", function()
    local x, y = tide.randn { 2, 3 }, tide.randn { 2, 3 }
    local function err(fn, ...)
        local e = H.error_of(fn, ...)
        assert.is_not_nil(e, "expected an error")
        return e
    end
    local names = { "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "poisson_nll_loss" }
    for _, name in ipairs(names) do
        it(name .. " names the loss and the argument", function()
            local e = err(F[name], x, tide.randn { 4 })
            assert.matches("bad argument #2 to '" .. name .. "'", e, 1, true)
            assert.matches("(2,3)", e, 1, true)
            assert.matches("(4)", e, 1, true)
            e = err(F[name], tide.zeros({ 2, 3 }, "int64"), y)
            assert.matches("bad argument #1 to '" .. name .. "'", e, 1, true)
            assert.matches("int64", e, 1, true)
            e = err(F[name], x, tide.zeros({ 2, 3 }, "float64"))
            assert.matches("bad argument #2 to '" .. name .. "'", e, 1, true)
            assert.matches("float64", e, 1, true)
            e = err(F[name], x, y, { bogus = 1 })
            assert.matches("bad argument #3", e, 1, true)
            assert.matches(name, e, 1, true)
            assert.matches("unknown option 'bogus'", e, 1, true)
            e = err(F[name], x, y, { reduction = "avg" })
            assert.matches("bad argument #3", e, 1, true)
            assert.matches("unknown reduction 'avg'", e, 1, true)
            e = err(F[name], x)
            assert.matches("bad argument #2", e, 1, true)
        end)
    end
    it("batchmean only for kl_div", function()
        assert.matches("unknown reduction 'batchmean'", err(F.mse_loss, x, y, { reduction = "batchmean" }), 1, true)
        assert.is_nil(H.error_of(F.kl_div, x, y, { reduction = "batchmean" }))
    end)
    it("out-of-range options", function()
        local e = err(F.smooth_l1_loss, x, y, { beta = -0.5 })
        assert.matches("bad argument #3 to 'smooth_l1_loss' (beta must be >= 0, got -0.5)", e, 1, true)
        e = err(F.huber_loss, x, y, { delta = 0 })
        assert.matches("bad argument #3 to 'huber_loss' (delta must be > 0, got 0)", e, 1, true)
        e = err(F.poisson_nll_loss, x, y, { eps = 0 })
        assert.matches("bad argument #3 to 'poisson_nll_loss' (eps must be > 0", e, 1, true)
        e = err(F.gaussian_nll_loss, x, y, tide.ones { 2, 3 }, { eps = -1 })
        assert.matches("bad argument #4 to 'gaussian_nll_loss' (eps must be > 0", e, 1, true)
        e = err(F.smooth_l1_loss, x, y, { beta = "big" })
        assert.matches("bad argument #3", e, 1, true)
        assert.matches("beta", e, 1, true)
    end)
    it("gaussian_nll_loss var", function()
        local e = err(F.gaussian_nll_loss, x, y, tide.tensor { { 1, -1, 1 }, { 1, 1, 1 } })
        assert.matches("bad argument #3 to 'gaussian_nll_loss' (var has negative entries)", e, 1, true)
        e = err(F.gaussian_nll_loss, x, y, tide.ones { 3 })
        assert.matches("bad argument #3 to 'gaussian_nll_loss'", e, 1, true)
        assert.matches("incorrect size", e, 1, true)
        e = err(F.gaussian_nll_loss, x, y, tide.ones { 2, 2 })
        assert.matches("bad argument #3", e, 1, true)
        e = err(F.gaussian_nll_loss, x, y, tide.ones({ 2, 3 }, "float64"))
        assert.matches("bad argument #3 to 'gaussian_nll_loss' (var is float64 but input is float32", e, 1, true)
        e = err(F.gaussian_nll_loss, x, y, tide.ones { 2, 3 }, { bogus = true })
        assert.matches("bad argument #4", e, 1, true)
        assert.matches("unknown option 'bogus'", e, 1, true)
        e = err(F.gaussian_nll_loss, x, y)
        assert.matches("bad argument #3", e, 1, true)
        -- the process goes on
        assert.is_true(F.gaussian_nll_loss(x, y, tide.ones { 2 }):item() > 0)
    end)
end)

describe("regression losses: same bits at 1 and 2 threads", function()
    local function run(fn, ins)
        for _, t in ipairs(ins) do t.grad = nil end
        local out = fn(table.unpack(ins))
        out:backward()
        local r = { string.format("%a", out:item()) }
        for _, t in ipairs(ins) do r[#r + 1] = string.format("%a", (t.grad * t.grad):sum():item()) end
        return table.concat(r, " "), out
    end
    local saved = tide.get_num_threads()
    tide.manual_seed(5)
    local n = { 300, 701 } -- past every grain, an odd size
    local x, y = tide.randn(n, { requires_grad = true }), tide.randn(n, { requires_grad = true })
    local v = tide.rand({ n[1], 1 }, { requires_grad = true })
    local cases = {
        { "mse_loss", function(a, b) return F.mse_loss(a, b) end, { x, y } },
        { "l1_loss", function(a, b) return F.l1_loss(a, b, { reduction = "sum" }) end, { x, y } },
        { "smooth_l1_loss", function(a, b) return F.smooth_l1_loss(a, b, { beta = 0.5 }) end, { x, y } },
        { "huber_loss", function(a, b) return F.huber_loss(a, b, { delta = 0.7 }) end, { x, y } },
        { "kl_div", function(a, b) return F.kl_div(a, b, { log_target = true, reduction = "batchmean" }) end,
            { x, y } },
        { "poisson_nll_loss", function(a, b) return F.poisson_nll_loss(a, b, { full = true }) end, { x, y } },
        { "gaussian_nll_loss", function(a, b, c) return F.gaussian_nll_loss(a, b, c, { full = true }) end,
            { x, y, v } },
    }
    for _, c in ipairs(cases) do
        it(c[1], function()
            tide.set_num_threads(1)
            local one, o1 = run(c[2], c[3])
            tide.set_num_threads(2)
            local two, o2 = run(c[2], c[3])
            tide.set_num_threads(saved)
            assert.are.equal(one, two)
            assert.are.equal(string.format("%a", o1:item()), string.format("%a", o2:item()))
        end)
    end
    it("per-element losses", function()
        tide.set_num_threads(1)
        local a = F.poisson_nll_loss(x, y, { reduction = "none", full = true })
        tide.set_num_threads(2)
        local b = F.poisson_nll_loss(x, y, { reduction = "none", full = true })
        tide.set_num_threads(saved)
        assert.are.equal(0, (a - b):abs():max():item())
    end)
end)

describe("regression losses: modules and identities", function()
    tide.manual_seed(3)
    local x, y = tide.randn({ 4, 5 }, "float64"), tide.randn({ 4, 5 }, "float64")
    local v = tide.rand({ 4, 1 }, "float64") + 0.1
    local mods = {
        { "MSELoss", "mse_loss", { reduction = "sum" } },
        { "L1Loss", "l1_loss", {} },
        { "SmoothL1Loss", "smooth_l1_loss", { beta = 0.3 } },
        { "HuberLoss", "huber_loss", { delta = 2, reduction = "none" } },
        { "KLDivLoss", "kl_div", { reduction = "batchmean", log_target = true } },
        { "PoissonNLLLoss", "poisson_nll_loss", { full = true } },
    }
    for _, m in ipairs(mods) do
        it("nn." .. m[1] .. " equals F." .. m[2], function()
            local mod = tide.nn[m[1]](m[3])
            H.assert_close(mod(x, y), H.values(F[m[2]](x, y, m[3])), 0, 0)
            H.assert_close(mod:forward(x, y), H.values(F[m[2]](x, y, m[3])), 0, 0)
        end)
    end
    it("nn.GaussianNLLLoss equals F.gaussian_nll_loss", function()
        local mod = tide.nn.GaussianNLLLoss { full = true }
        H.assert_close(mod(x, y, v), H.values(F.gaussian_nll_loss(x, y, v, { full = true })), 0, 0)
    end)
    for _, delta in ipairs { 0.25, 1.0, 3.0 } do
        it("huber_loss(delta) = delta * smooth_l1_loss(beta = delta), delta " .. delta, function()
            local a = tide.tensor({ { 0.0, 1.5, -0.5, 2.0, 1.0, 0.25 } }, { dtype = "float64", requires_grad = true })
            local b = tide.tensor({ { 0.0, 1.0, 0.0, -2.5, 0.0, 3.0 } }, { dtype = "float64", requires_grad = true })
            local a2 = a:detach(); a2.requires_grad = true
            local b2 = b:detach(); b2.requires_grad = true
            local h = F.huber_loss(a, b, { delta = delta, reduction = "none" })
            local s = F.smooth_l1_loss(a2, b2, { beta = delta, reduction = "none" }) * delta
            H.assert_close(h, H.values(s), 1e-15, 1e-15)
            local w = tide.tensor({ { 0.3, -1.0, 2.0, 0.7, 1.1, -0.4 } }, "float64")
            ;(h * w):sum():backward()
            ;(s * w):sum():backward()
            H.assert_close(a.grad, H.values(a2.grad), 1e-15, 1e-15)
            H.assert_close(b.grad, H.values(b2.grad), 1e-15, 1e-15)
        end)
    end
    it("kl_div batchmean = sum / N, mean = sum / numel", function()
        local p, q = tide.randn({ 4, 5 }, "float64"), tide.rand({ 4, 5 }, "float64")
        local s = F.kl_div(p, q, { reduction = "sum" }):item()
        H.assert_close({ F.kl_div(p, q, { reduction = "batchmean" }):item() }, { s / 4 }, 1e-15, 0)
        H.assert_close({ F.kl_div(p, q):item() }, { s / 20 }, 1e-15, 0)
    end)
    it("smooth_l1_loss with beta = 0 equals l1_loss", function()
        H.assert_close(F.smooth_l1_loss(x, y, { beta = 0, reduction = "none" }),
            H.values(F.l1_loss(x, y, { reduction = "none" })), 0, 0)
        -- the gradient differs only at d = 0: PyTorch's smooth_l1 backward gives -1 there, l1 gives 0
        local a = tide.tensor({ 0.5, 0.0, -2.0 }, { dtype = "float64", requires_grad = true })
        F.smooth_l1_loss(a, tide.zeros({ 3 }, "float64"), { beta = 0, reduction = "sum" }):backward()
        H.assert_close(a.grad, { 1, -1, -1 }, 0, 0)
        local b = tide.tensor({ 0.5, 0.0, -2.0 }, { dtype = "float64", requires_grad = true })
        F.smooth_l1_loss(tide.zeros({ 3 }, "float64"), b, { beta = 0, reduction = "sum" }):backward()
        H.assert_close(b.grad, { 1, -1, -1 }, 0, 0)
    end)
    it("stable where PyTorch's exp overflows: poisson log_input gives inf, never NaN", function()
        local a = tide.tensor({ 100, 1e4, -1e4 }, { requires_grad = true })
        local l = F.poisson_nll_loss(a, tide.tensor { 2, 3, 1 }, { reduction = "none" })
        local vals = H.values(l)
        assert.are.equal(math.huge, vals[1])
        assert.are.equal(math.huge, vals[2])
        assert.are.equal(1e4, vals[3])
        l:sum():backward()
        for _, g in ipairs(H.values(a.grad)) do assert.is_true(g == g) end
    end)
end)

describe("regression losses: a warning where input and target broadcast to another shape", function()
    local TIDE = arg and arg[-1] or "tide"

    -- the stderr of `tide -e code`
    local function stderr_of(code)
        local p = assert(io.popen(H.sh(TIDE) .. " -e " .. H.sh(code) .. " 2>&1 >/dev/null"))
        local out = p:read("a")
        p:close()
        return out
    end

    local function count(s, pat)
        local n = 0
        for _ in s:gmatch(pat) do n = n + 1 end
        return n
    end

    it("warns once per loss per process, as PyTorch's UserWarning, naming the shapes", function()
        local err = stderr_of([[
            local tide = require "tide"
            local F = tide.F
            local x, y = tide.zeros({4, 1}), tide.zeros({4})
            for _ = 1, 3 do F.mse_loss(x, y) end
            tide.nn.MSELoss()(x, y)
            F.l1_loss(x, y)
            F.smooth_l1_loss(x, y)
            F.huber_loss(x, y)
            F.kl_div(x, y)
            F.poisson_nll_loss(x, y)
        ]])
        assert.are.equal(1, count(err, "UserWarning: mse_loss: "), err)
        local want = "UserWarning: mse_loss: input (4,1) and target (4) broadcast to (4,4), not input's shape"
        assert.truthy(err:find(want, 1, true), err)
        for _, name in ipairs({ "l1_loss", "smooth_l1_loss", "huber_loss", "kl_div", "poisson_nll_loss" }) do
            assert.are.equal(1, count(err, "UserWarning: " .. name .. ": "), err)
        end
    end)

    it("is quiet where the result has input's shape (same shapes, or a target that broadcasts up)", function()
        local err = stderr_of([[
            local tide = require "tide"
            local F = tide.F
            F.mse_loss(tide.zeros({4, 3}), tide.zeros({4, 3}))
            F.mse_loss(tide.zeros({4, 3}), tide.zeros({3}))
            F.l1_loss(tide.zeros({4, 3}), tide.zeros({4, 1}))
            F.gaussian_nll_loss(tide.zeros({4, 3}), tide.zeros({4, 3}), tide.ones({4, 1}))
        ]])
        assert.are.equal("", err)
    end)
end)
