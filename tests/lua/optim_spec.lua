-- tide.optim and tide.nn.utils clipping against PyTorch 1.13
-- (tests/reference/optim.json, written by tests/reference/gen_optim.py):
-- parameter trajectories of every optimizer and option set, every
-- schedule's lr sequence, the clip functions; then state_dict round trips
-- and bad input.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"
local cjson = require "cjson"
local core = require "tide.core"

local data = cjson.decode(H.read_file("tests/reference/optim.json"))

local function tol(dtype)
    if dtype == "float32" then return 1e-5, 1e-6 end
    return 1e-10, 1e-12
end

local from_json = H.from_json

-- tensors of one case: params (requiring grad), and the grad of step k, param i
local function setup(c)
    local params = {}
    for i, s in ipairs(c.params) do params[i] = H.tensor(s, true) end
    local function grad(k, i)
        local g = c.grads[k][i]
        if g == cjson.null then return nil end
        return H.tensor({values = g, shape = c.params[i].shape, dtype = c.params[i].dtype})
    end
    return params, grad
end

local function make_optimizer(c, params)
    local opts = from_json(c.options)
    local arg = params
    if c.groups ~= cjson.null then
        arg = {}
        for gi, g in ipairs(c.groups) do
            local group = from_json(g)
            local ps = {}
            for j, idx in ipairs(g.params) do ps[j] = params[math.tointeger(idx) + 1] end
            group.params = ps
            arg[gi] = group
        end
    end
    return tide.optim[c.optim](arg, opts)
end

local function run_steps(opt, params, grad, from, to)
    for k = from, to do
        for i, p in ipairs(params) do p.grad = grad(k, i) end
        opt:step()
    end
end

local function check_step(c, params, k)
    local rtol, atol = tol(c.params[1].dtype)
    for i, p in ipairs(params) do
        H.assert_close(p, c.steps[k][i], rtol, atol, string.format("%s: param %d after step %d", c.name, i, k))
    end
end

describe("optimizer trajectories match PyTorch 1.13", function()
    for _, c in ipairs(data.optimizers) do
        it(c.name, function()
            local params, grad = setup(c)
            local opt = make_optimizer(c, params)
            for k = 1, #c.steps do
                run_steps(opt, params, grad, k, k)
                check_step(c, params, k)
            end
        end)
    end
end)

describe("state_dict round trip", function()
    for _, c in ipairs(data.optimizers) do
        it(c.name .. ": continue from a loaded state", function()
            local params, grad = setup(c)
            local opt = make_optimizer(c, params)
            run_steps(opt, params, grad, 1, 3)
            local sd = opt:state_dict()
            -- a fresh optimizer over copies of the parameters
            local params2 = {}
            for i, p in ipairs(params) do
                params2[i] = p:detach():clone()
                params2[i].requires_grad = true
            end
            local c2 = setmetatable({options = c.options}, {__index = c})
            local opt2 = make_optimizer(c2, params2)
            opt2:load_state_dict(sd)
            -- the original goes on too: loaded state must be a copy
            run_steps(opt2, params2, grad, 4, #c.steps)
            check_step(c, params2, #c.steps)
            run_steps(opt, params, grad, 4, #c.steps)
            check_step(c, params, #c.steps)
        end)
    end

    it("has PyTorch's structure", function()
        local p = tide.tensor({1, 2}, {dtype = "float64", requires_grad = true})
        local q = tide.tensor({3}, {dtype = "float64", requires_grad = true})
        local opt = tide.optim.Adam({{params = {p}}, {params = {q}, lr = 0.1}}, {amsgrad = true})
        p.grad = tide.tensor({0.5, -0.5}, "float64")
        opt:step()
        local sd = opt:state_dict()
        assert.are.same({1}, sd.param_groups[1].params)
        assert.are.same({2}, sd.param_groups[2].params)
        assert.are.equal(0.1, sd.param_groups[2].lr)
        assert.are.equal(1e-3, sd.param_groups[1].lr)
        assert.are.same({0.9, 0.999}, sd.param_groups[1].betas)
        assert.are.equal(1, sd.state[1].step)
        assert.is_true(tide.is_tensor(sd.state[1].exp_avg))
        assert.is_true(tide.is_tensor(sd.state[1].max_exp_avg_sq))
        assert.is_nil(sd.state[2]) -- q had no gradient: no state
    end)

    it("rejects a state dict of another shape", function()
        local p = tide.tensor({1, 2}, {dtype = "float64", requires_grad = true})
        local opt = tide.optim.SGD({p}, {lr = 0.1})
        local err = H.error_of(opt.load_state_dict, opt, {state = {}, param_groups = {}})
        assert.truthy(err and err:find("parameter groups", 1, true), err)
    end)

    it("checks loaded options as the constructor does, changing nothing on a bad one", function()
        local p = tide.tensor({1, 2}, {dtype = "float64", requires_grad = true})
        local opt = tide.optim.SGD({p}, {lr = 0.1, momentum = 0.9})
        local sd = opt:state_dict()
        for _, case in ipairs({{"lr", "fast", "lr must be a number"}, {"lr", -1, "lr must be non-negative"},
                               {"momentum", {}, "momentum must be a number"},
                               {"nesterov", true, "nesterov momentum requires"}}) do
            local bad = opt:state_dict()
            bad.param_groups[1][case[1]] = case[2]
            if case[1] == "nesterov" then bad.param_groups[1].dampening = 0.5 end
            local err = H.error_of(opt.load_state_dict, opt, bad)
            assert.truthy(err and err:find("load_state_dict", 1, true) and err:find(case[3], 1, true), err)
            assert.equal(0.1, opt.param_groups[1].lr)
            assert.equal(0.9, opt.param_groups[1].momentum)
            assert.is_false(opt.param_groups[1].nesterov)
        end
        sd.param_groups[1].lr = 0.5
        opt:load_state_dict(sd)
        assert.equal(0.5, opt.param_groups[1].lr)
        -- a key the file added goes with the next load of a clean state
        local extra = opt:state_dict()
        extra.param_groups[1].foo = 1
        opt:load_state_dict(extra)
        assert.equal(1, opt.param_groups[1].foo)
        opt:load_state_dict(sd)
        assert.is_nil(opt.param_groups[1].foo)
    end)

    it("loads only a scheduler's own fields, of their kind", function()
        local p = tide.tensor({1, 2}, {dtype = "float64", requires_grad = true})
        local sched = tide.optim.StepLR(tide.optim.SGD({p}, {lr = 0.1}), 2)
        sched:step()
        local sd = sched:state_dict()
        for _, case in ipairs({{"step", 1, "state_dict has 'step'"},
                               {"last_epoch", "3", "is a string, not a number"}}) do
            local bad = sched:state_dict()
            bad[case[1]] = case[2]
            local err = H.error_of(sched.load_state_dict, sched, bad)
            assert.truthy(err and err:find("StepLR:load_state_dict", 1, true) and err:find(case[3], 1, true), err)
        end
        assert.equal(1, sched.last_epoch)
        sched:step()
        sched:load_state_dict(sd)
        assert.equal(1, sched.last_epoch)
    end)
end)

describe("optimizer behaviour", function()
    it("updates in place and bumps the version: a stale saved tensor is detected", function()
        local w = tide.tensor({1, 2}, {dtype = "float64", requires_grad = true})
        local y = (w * w):sum() -- saves w
        w.grad = tide.tensor({1, 1}, "float64")
        local opt = tide.optim.SGD({w}, {lr = 0.5})
        opt:step()
        H.assert_close(w, {0.5, 1.5})
        assert.is_true(w.is_leaf and w.requires_grad)
        assert.truthy(H.error_of(function() y:backward() end))
    end)

    it("zero_grad sets grads to nil by default, zeros with set_to_none = false", function()
        local w = tide.tensor({1, 2}, {dtype = "float64", requires_grad = true})
        local opt = tide.optim.SGD({w}, {lr = 0.5})
        w.grad = tide.tensor({1, 1}, "float64")
        opt:zero_grad({set_to_none = false})
        H.assert_close(w.grad, {0, 0})
        opt:zero_grad()
        assert.is_nil(w.grad)
        opt:step() -- no grad: nothing happens
        H.assert_close(w, {1, 2})
    end)

    it("trains: a least-squares problem converges with each optimizer", function()
        for _, mk in ipairs({
            function(ps) return tide.optim.SGD(ps, {lr = 0.1, momentum = 0.9}) end,
            function(ps) return tide.optim.Adam(ps, {lr = 0.1}) end,
            function(ps) return tide.optim.AdamW(ps, {lr = 0.1, weight_decay = 0}) end,
            function(ps) return tide.optim.RMSprop(ps, {lr = 0.05}) end,
        }) do
            local w = tide.zeros({3}, {requires_grad = true})
            local target = tide.tensor({1, -2, 0.5})
            local opt = mk({w})
            for _ = 1, 200 do
                opt:zero_grad()
                local loss = ((w - target) ^ 2):sum()
                loss:backward()
                opt:step()
            end
            H.assert_close(w, {1, -2, 0.5}, 1e-2, 1e-2, "trained weights")
        end
    end)

    it("add_param_group takes the defaults for missing options", function()
        local p = tide.tensor({1}, {dtype = "float64", requires_grad = true})
        local q = tide.tensor({1}, {dtype = "float64", requires_grad = true})
        local opt = tide.optim.SGD({p}, {lr = 0.1, momentum = 0.5})
        opt:add_param_group({params = {q}, lr = 0.01})
        assert.are.equal(0.01, opt.param_groups[2].lr)
        assert.are.equal(0.5, opt.param_groups[2].momentum)
        assert.truthy(H.error_of(opt.add_param_group, opt, {params = {p}}))
    end)

    it("large tensors (the threaded path) get the same per-element update", function()
        tide.manual_seed(7)
        local function maxdiff(a, b) return (a - b):abs():max():item() end
        for _, dt in ipairs({"float32", "float64"}) do
            local n = 100000
            local p = tide.randn({n}, dt)
            local g = tide.randn({n}, dt)
            local p0 = p:clone()
            local bound = dt == "float32" and 1e-6 or 1e-14
            -- SGD with weight decay: p - lr (g + wd p)
            core._sgd_step(p, g, nil, {lr = 0.1, weight_decay = 0.01})
            local want = p0 - (g + p0 * 0.01) * 0.1
            assert.is_true(maxdiff(p, want) <= bound * 10, dt .. " sgd")
            -- Adam, first step: p - lr m' / (sqrt(v') + eps) with m' = g, v' = g^2
            local m, v = tide.zeros({n}, dt), tide.zeros({n}, dt)
            local p1 = p:clone()
            core._adam_step(p, g, m, v, nil, {lr = 0.01, eps = 1e-8, step = 1})
            local want2 = p1 - (g / (g:abs() + 1e-8)) * 0.01
            assert.is_true(maxdiff(p, want2) <= 1e-6, dt .. " adam")
            assert.is_true(maxdiff(m, g * 0.1) <= bound, dt .. " exp_avg")
            assert.is_true(maxdiff(v, g * g * 0.001) <= bound, dt .. " exp_avg_sq")
        end
    end)

    it("the list entries (_sgd_step_multi, _adam_step_multi) equal the per-parameter steps", function()
        tide.manual_seed(11)
        local shapes = {{3}, {4, 5}, {1}, {70000}}
        local function fresh()
            local ps, ss = {}, {}
            for i, sh in ipairs(shapes) do
                ps[i] = tide.randn(sh, "float32")
                ss[i] = {tide.zeros(sh, "float32"), tide.zeros(sh, "float32"), tide.zeros(sh, "float32")}
            end
            return ps, ss
        end
        local a, sa = fresh()
        local b, sb = {}, {}
        for i = 1, #a do
            b[i] = a[i]:clone()
            sb[i] = {sa[i][1]:clone(), sa[i][2]:clone(), sa[i][3]:clone()}
        end
        local function col(s, j)
            local t = {}
            for i = 1, #s do t[i] = s[i][j] end
            return t
        end
        for step = 1, 3 do
            local gs = {}
            for i, sh in ipairs(shapes) do gs[i] = tide.randn(sh, "float32") end
            local so = {lr = 0.05, momentum = 0.9, weight_decay = 0.01, first_step = step == 1}
            local ao = {lr = 0.01, weight_decay = 0.01, decoupled = true, amsgrad = true, step = step}
            for i = 1, #a do
                core._sgd_step(a[i], gs[i], sa[i][1], so)
                core._adam_step(a[i], gs[i], sa[i][2], sa[i][3], sa[i][1], ao)
            end
            core._sgd_step_multi(b, gs, col(sb, 1), so)
            core._adam_step_multi(b, gs, col(sb, 2), col(sb, 3), col(sb, 1), ao)
        end
        for i = 1, #a do
            assert.is_true((a[i] - b[i]):abs():max():item() == 0, "param " .. i)
            for j = 1, 3 do assert.is_true((sa[i][j] - sb[i][j]):abs():max():item() == 0, "state " .. i .. "," .. j) end
        end
        -- errors are the single step's
        local ok, err = pcall(core._sgd_step_multi, {tide.zeros({2}, "float32")}, {tide.zeros({3}, "float32")}, nil,
            {lr = 0.1})
        assert.is_false(ok)
        assert.matches("grad must have param's shape", err, 1, true)
        assert.has_error(function() core._sgd_step_multi({tide.zeros({2})}, {}, nil, {lr = 0.1}) end)
    end)

    it("a non-contiguous parameter is updated through its view", function()
        local base = tide.tensor({{1, 2}, {3, 4}}, {dtype = "float64", requires_grad = true})
        local w = base:t()
        assert.is_false(w:is_contiguous())
        core._sgd_step(w, tide.ones({2, 2}, "float64"), nil, {lr = 0.5})
        H.assert_close(base, {0.5, 1.5, 2.5, 3.5})
    end)
end)

describe("schedules match PyTorch 1.13", function()
    for _, c in ipairs(data.schedulers) do
        it(c.name, function()
            local ps, groups = {}, {}
            for i, lr in ipairs(c.optim.group_lrs) do
                ps[i] = tide.zeros({1}, {requires_grad = true})
                groups[i] = {params = {ps[i]}, lr = lr}
            end
            local opt = tide.optim[c.optim.name](groups, from_json(c.optim.options))
            local args = H.ints(from_json(c.args))
            local s = tide.optim[c.sched](opt, args[1], H.ints(from_json(c.options)))
            local function check(k)
                H.assert_close(s:get_last_lr(), c.lrs[k], 1e-12, 1e-15, string.format("%s: lr at %d", c.name, k - 1))
                for i, g in ipairs(opt.param_groups) do
                    assert.are.equal(s:get_last_lr()[i], g.lr)
                end
                if c.momenta then
                    local got = {}
                    for i, g in ipairs(opt.param_groups) do
                        got[i] = c.optim.name == "SGD" and g.momentum or g.betas[1]
                    end
                    H.assert_close(got, c.momenta[k], 1e-12, 1e-15, string.format("%s: momentum at %d", c.name, k - 1))
                end
            end
            check(1)
            for k = 2, #c.lrs do
                if k == 15 then -- halfway: continue through a state_dict copy
                    local sd = s:state_dict()
                    s:step()
                    s:load_state_dict(sd)
                    for i, g in ipairs(opt.param_groups) do g.lr = sd._last_lr[i] end
                    if c.momenta then
                        for i, g in ipairs(opt.param_groups) do
                            if c.optim.name == "SGD" then g.momentum = c.momenta[k - 1][i]
                            else g.betas = {c.momenta[k - 1][i], g.betas[2]} end
                        end
                    end
                end
                opt:step()
                s:step()
                check(k)
            end
        end)
    end

    it("OneCycleLR refuses to step past total_steps", function()
        local p = tide.zeros({1}, {requires_grad = true})
        local opt = tide.optim.SGD({p}, {lr = 0.1, momentum = 0.9})
        local s = tide.optim.OneCycleLR(opt, 1.0, {total_steps = 3})
        for _ = 1, 3 do s:step() end
        local err = H.error_of(s.step, s)
        assert.truthy(err and err:find("total steps is 3", 1, true), err)
    end)
end)

describe("gradient clipping matches PyTorch 1.13", function()
    for n, c in ipairs(data.clip) do
        it(string.format("%s case %d", c.fn, n), function()
            local ps = {}
            for i, g in ipairs(c.grads) do
                ps[i] = tide.zeros(H.ints(g.shape), {dtype = g.dtype, requires_grad = true})
                ps[i].grad = H.tensor(g)
            end
            local rtol, atol = tol(c.grads[1].dtype)
            if c.fn == "clip_grad_norm_" then
                local opts = {}
                if c.norm_type ~= cjson.null then
                    opts.norm_type = c.norm_type
                end
                local total = tide.nn.utils.clip_grad_norm_(ps, c.max_norm, opts)
                H.assert_close({total}, {c.total_norm}, rtol, atol, "total norm")
            else
                tide.nn.utils.clip_grad_value_(ps, c.clip_value)
            end
            for i, p in ipairs(ps) do
                H.assert_close(p.grad, c.out[i], rtol, atol, string.format("grad %d", i))
            end
        end)
    end

    it("skips parameters without grad, returns 0 for none, and can refuse non-finite norms", function()
        local p = tide.zeros({2}, {dtype = "float64", requires_grad = true})
        assert.are.equal(0, tide.nn.utils.clip_grad_norm_({p}, 1.0))
        p.grad = tide.tensor({0 / 0, 1}, "float64")
        local err = H.error_of(tide.nn.utils.clip_grad_norm_, {p}, 1.0, {error_if_nonfinite = true})
        assert.truthy(err and err:find("non-finite", 1, true), err)
    end)
end)

describe("bad input", function()
    local p = tide.tensor({1, 2}, {dtype = "float64", requires_grad = true})
    local cases = {
        {"SGD without lr", function() return tide.optim.SGD({p}) end,
            "bad argument #2 to 'SGD' (option 'lr' is required)"},
        {"negative lr", function() return tide.optim.SGD({p}, {lr = -1}) end,
            "bad argument #2 to 'SGD' (lr must be non-negative, got -1)"},
        {"unknown option", function() return tide.optim.Adam({p}, {lr = 1, bogus = 2}) end, "unknown option 'bogus'"},
        {"nesterov without momentum", function() return tide.optim.SGD({p}, {lr = 0.1, nesterov = true}) end,
            "nesterov"},
        {"nesterov with dampening",
            function() return tide.optim.SGD({p}, {lr = 0.1, nesterov = true, momentum = 0.9, dampening = 0.1}) end,
            "zero dampening"},
        {"bad betas", function() return tide.optim.Adam({p}, {betas = {1.0, 0.9}}) end, "beta1 must be in [0, 1)"},
        {"betas not a pair", function() return tide.optim.AdamW({p}, {betas = 0.9}) end, "two numbers"},
        {"negative eps", function() return tide.optim.RMSprop({p}, {eps = -1}) end,
            "bad argument #2 to 'RMSprop' (eps must be non-negative"},
        {"empty params", function() return tide.optim.SGD({}, {lr = 1}) end, "empty parameter list"},
        {"not a tensor", function() return tide.optim.SGD({p, 3}, {lr = 1}) end, "params[2] is a number"},
        {"integer param", function() return tide.optim.SGD({tide.tensor({1}, "int64")}, {lr = 1}) end,
            "float32 or float64"},
        {"non-leaf param", function() return tide.optim.SGD({p * 2}, {lr = 1}) end, "non-leaf"},
        {"duplicate param", function() return tide.optim.SGD({{params = {p}}, {params = {p}}}, {lr = 1}) end,
            "more than once"},
        {"bad group option", function() return tide.optim.SGD({{params = {p}, lr = -2}}) end,
            "group 1: lr must be non-negative"},
        {"unknown group option", function() return tide.optim.SGD({{params = {p}, lr = 1, foo = 1}}) end,
            "group 1: unknown option 'foo'"},
        {"StepLR without optimizer", function() return tide.optim.StepLR(nil, 3) end, "bad argument #1 to 'StepLR'"},
        {"StepLR step_size", function() return tide.optim.StepLR(tide.optim.SGD({p}, {lr = 1}), 0) end,
            "bad argument #2 to 'StepLR' (step_size must be a positive integer"},
        {"StepLR unknown option", function() return tide.optim.StepLR(tide.optim.SGD({p}, {lr = 1}), 2, {gama = 1}) end,
            "unknown option 'gama'"},
        {"MultiStepLR milestones",
            function() return tide.optim.MultiStepLR(tide.optim.SGD({p}, {lr = 1}), {1, 2.5}) end, "milestones[2]"},
        {"Cosine T_max", function() return tide.optim.CosineAnnealingLR(tide.optim.SGD({p}, {lr = 1}), -1) end,
            "T_max must be a positive number"},
        {"OneCycle no length", function() return tide.optim.OneCycleLR(tide.optim.SGD({p}, {lr = 1}), 1) end,
            "total_steps"},
        {"OneCycle strategy",
            function() return tide.optim.OneCycleLR(tide.optim.SGD({p}, {lr = 1}), 1,
                {total_steps = 5, anneal_strategy = "exp"}) end,
            "anneal_strategy"},
        {"OneCycle max_lr count",
            function() return tide.optim.OneCycleLR(tide.optim.SGD({p}, {lr = 1}), {1, 2}, {total_steps = 5}) end,
            "expected 1 values for max_lr"},
        {"LinearWarmup start_factor",
            function() return tide.optim.LinearWarmup(tide.optim.SGD({p}, {lr = 1}), 5, {start_factor = 2}) end,
            "start_factor must be a number in [0, 1]"},
        {"clip max_norm", function() return tide.nn.utils.clip_grad_norm_({p}, "x") end,
            "bad argument #2 to 'clip_grad_norm_'"},
        {"clip norm_type", function() return tide.nn.utils.clip_grad_norm_({p}, 1, {norm_type = -1}) end, "norm_type"},
        {"clip params", function() return tide.nn.utils.clip_grad_value_({1}, 1) end,
            "bad argument #1 to 'clip_grad_value_'"},
        {"step: grad of another shape", function()
            return core._sgd_step(p, tide.zeros({3}, "float64"), nil, {lr = 1})
        end, "shape"},
        {"step: grad of another dtype", function()
            return core._adam_step(p, tide.zeros({2}), tide.zeros({2}, "float64"), tide.zeros({2}, "float64"), nil, {})
        end, "grad must be float64"},
        {"step: missing amsgrad state", function()
            return core._adam_step(p, tide.zeros({2}, "float64"), tide.zeros({2}, "float64"),
                tide.zeros({2}, "float64"), nil, {amsgrad = true})
        end, "max_exp_avg_sq is required"},
        {"step: shared state", function()
            local m = tide.zeros({2}, "float64")
            return core._adam_step(p, tide.zeros({2}, "float64"), m, m, nil, {})
        end, "must not share memory"},
        {"step: momentum without buffer", function()
            return core._sgd_step(p, tide.zeros({2}, "float64"), nil, {lr = 1, momentum = 0.9})
        end, "momentum_buffer is required"},
        {"step: centered without grad_avg", function()
            return core._rmsprop_step(p, tide.zeros({2}, "float64"), tide.zeros({2}, "float64"), nil, nil,
                {centered = true})
        end, "grad_avg is required"},
    }
    for _, c in ipairs(cases) do
        it(c[1], function()
            local err = H.error_of(c[2])
            assert.truthy(err, "no error")
            assert.truthy(err:find(c[3], 1, true), err)
        end)
    end
    it("leaves the parameter untouched after a failed step", function()
        H.assert_close(p, {1, 2})
    end)
end)
