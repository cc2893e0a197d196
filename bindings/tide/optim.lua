-- tide.optim: optimizers and learning-rate schedules, and gradient clipping
-- in tide.nn.utils. Semantics are PyTorch 1.13's (torch.optim,
-- torch.optim.lr_scheduler, torch.nn.utils.clip_grad); the update of each
-- parameter is one fused C pass (tide.core._sgd_step, _adam_step,
-- _rmsprop_step); SGD, Adam and AdamW hand a whole group to one C call
-- (_sgd_step_multi, _adam_step_multi: few launches on CUDA). See docs/optim.md.
local M = {}

local function fail(fname, argn, msg)
    error(string.format("bad argument #%d to '%s' (%s)", argn, fname, msg), 0)
end

local function is_int(v)
    return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v) and v == v and v ~= math.huge and v ~= -math.huge)
end

local function copy_value(v)
    if type(v) ~= "table" then return v end
    local r = {}
    for k, x in pairs(v) do r[k] = copy_value(x) end
    return r
end

function M.install(tide, core)
    local optim = {}

    -- ---- option checks ----------------------------------------------------
    -- each check(v) returns nil when fine, or what is wrong
    local function number_ge(lo)
        return function(v)
            if type(v) ~= "number" then return "must be a number, got " .. type(v) end
            if not (v >= lo) or v == math.huge then
                return string.format("must be %s, got %s", lo == 0 and "non-negative" or (">= " .. lo), tostring(v))
            end
        end
    end
    local function number_any(v)
        if type(v) ~= "number" or v ~= v then return "must be a number, got " .. tostring(v) end
    end
    local function boolean(v)
        if type(v) ~= "boolean" then return "must be a boolean, got " .. type(v) end
    end
    local function unit(v) -- [0, 1)
        if type(v) ~= "number" then return "must be a number, got " .. type(v) end
        if not (v >= 0 and v < 1) then return "must be in [0, 1), got " .. tostring(v) end
    end
    local function betas(v)
        if type(v) ~= "table" or #v ~= 2 then return "must be a table of two numbers {beta1, beta2}" end
        for i = 1, 2 do
            local why = unit(v[i])
            if why then return string.format("beta%d %s", i, why) end
        end
    end

    local REQUIRED = {}

    -- spec: {name, defaults = {key = default or REQUIRED}, checks = {key = fn},
    --        validate = fn(group) -> nil or message, init_state = fn(p) -> state,
    --        update = fn(self, p, g, state, group)}
    local Optimizer = {}
    Optimizer.__index = Optimizer

    -- fill a group from its own options, then the optimizer's; check each
    local function make_group(spec, raw, defaults, argn, where)
        local fname = spec.name
        local group = {}
        for k in pairs(raw) do
            if k ~= "params" and spec.defaults[k] == nil then
                fail(fname, argn, string.format("%sunknown option '%s'", where, tostring(k)))
            end
        end
        for k, d in pairs(spec.defaults) do
            local v = raw[k]
            if v == nil then v = defaults[k] end
            if v == nil then v = d end
            if v == REQUIRED then
                fail(fname, argn, string.format("%soption '%s' is required", where, k))
            end
            local why = spec.checks[k] and spec.checks[k](v)
            if why then fail(fname, argn, string.format("%s%s %s", where, k, why)) end
            group[k] = copy_value(v)
        end
        if spec.validate then
            local why = spec.validate(group)
            if why then fail(fname, argn, where .. why) end
        end
        return group
    end

    local function check_params(spec, list, argn, where, seen)
        local fname = spec.name
        if type(list) ~= "table" or core.is_tensor(list) then
            if core.is_tensor(list) then list = {list} else
                fail(fname, argn, where .. "params must be a list of tensors, got " .. type(list))
            end
        end
        if #list == 0 then fail(fname, argn, where .. "optimizer got an empty parameter list") end
        local out = {}
        for i = 1, #list do
            local p = list[i]
            if not core.is_tensor(p) then
                fail(fname, argn, string.format("%sparams[%d] is a %s, not a tensor", where, i, type(p)))
            end
            local dt = p:dtype()
            if dt ~= "float32" and dt ~= "float64" then
                fail(fname, argn, string.format("%sparams[%d] must be float32 or float64, got %s", where, i, dt))
            end
            if not p.is_leaf then
                fail(fname, argn, string.format("%sparams[%d] is not a leaf tensor (can't optimize a non-leaf tensor)", where, i))
            end
            if seen[p] then
                fail(fname, argn, "some parameters appear more than once (in one or more parameter groups)")
            end
            seen[p] = true
            out[i] = p
        end
        return out
    end

    local function new_optimizer(spec, params, opts)
        local fname = spec.name
        if opts ~= nil and (type(opts) ~= "table" or core.is_tensor(opts)) then
            fail(fname, 2, "options must be a table, got " .. type(opts))
        end
        opts = opts or {}
        for k in pairs(opts) do
            if spec.defaults[k] == nil then fail(fname, 2, string.format("unknown option '%s'", tostring(k))) end
        end
        if type(params) ~= "table" then
            fail(fname, 1, "params must be a list of tensors or of parameter groups, got " .. type(params))
        end
        local self = setmetatable({_spec = spec, param_groups = {}, state = {}, defaults = {}}, spec.class)
        -- the optimizer's defaults: missing required ones are only an error
        -- for a group that does not set them itself
        for k, d in pairs(spec.defaults) do
            local v = opts[k]
            if v == nil then v = d end
            if v ~= REQUIRED then
                local why = spec.checks[k] and spec.checks[k](v)
                if why then fail(fname, 2, string.format("%s %s", k, why)) end
            end
            self.defaults[k] = copy_value(v)
        end
        local seen = {}
        self._seen = seen
        if core.is_tensor(params) or core.is_tensor(params[1]) or #params == 0 then
            local g = make_group(spec, {}, opts, 2, "")
            g.params = check_params(spec, params, 1, "", seen)
            self.param_groups[1] = g
        else
            for gi = 1, #params do
                local raw = params[gi]
                if type(raw) ~= "table" or core.is_tensor(raw) or raw.params == nil then
                    fail(fname, 1, string.format("params must be a list of tensors or of groups {params = {...}, ...}; item %d is not", gi))
                end
                local where = string.format("group %d: ", gi)
                local g = make_group(spec, raw, opts, 1, where)
                g.params = check_params(spec, raw.params, 1, where, seen)
                self.param_groups[gi] = g
            end
        end
        return self
    end

    -- add a group {params = {...}, options...}; missing options take the
    -- optimizer's defaults
    function Optimizer:add_param_group(raw)
        local spec = self._spec
        local fname = spec.name .. ":add_param_group"
        if type(raw) ~= "table" or core.is_tensor(raw) or raw.params == nil then
            fail(fname, 1, "param group must be a table {params = {...}, ...}")
        end
        local s = setmetatable({name = fname}, {__index = spec})
        local g = make_group(s, raw, self.defaults, 1, "")
        g.params = check_params(s, raw.params, 1, "", self._seen)
        self.param_groups[#self.param_groups + 1] = g
    end

    -- one update of every parameter that has a gradient
    function Optimizer:step()
        local spec = self._spec
        for _, group in ipairs(self.param_groups) do
            local ps, gs, sts = {}, {}, {}
            for _, p in ipairs(group.params) do
                local g = p.grad
                if g ~= nil then
                    local st = self.state[p]
                    if st == nil then
                        st = spec.init_state(p, group)
                        self.state[p] = st
                    end
                    if spec.update_list then
                        ps[#ps + 1], gs[#gs + 1], sts[#sts + 1] = p, g, st
                    else
                        spec.update(p, g, st, group)
                    end
                end
            end
            if #ps > 0 then spec.update_list(ps, gs, sts, group) end
        end
    end

    -- gradients to nil (set_to_none = true, the default, as PyTorch >= 2.0
    -- and as Tensor:zero_grad), or filled with zeros in place
    function Optimizer:zero_grad(opts)
        local fname = self._spec.name .. ":zero_grad"
        local set_to_none = true
        if opts ~= nil then
            if type(opts) ~= "table" then fail(fname, 1, "options must be a table, got " .. type(opts)) end
            for k in pairs(opts) do
                if k ~= "set_to_none" then fail(fname, 1, string.format("unknown option '%s'", tostring(k))) end
            end
            if opts.set_to_none ~= nil then
                if type(opts.set_to_none) ~= "boolean" then fail(fname, 1, "set_to_none must be a boolean") end
                set_to_none = opts.set_to_none
            end
        end
        for _, group in ipairs(self.param_groups) do
            for _, p in ipairs(group.params) do
                if set_to_none then
                    p.grad = nil
                else
                    local g = p.grad
                    if g ~= nil then g:zero_() end
                end
            end
        end
    end

    -- {state = {[i] = {...}}, param_groups = {{params = {i, ...}, lr = ...}}},
    -- parameters numbered from 1 through the groups in order; the state's
    -- tensors are the optimizer's own (not copies), as PyTorch
    function Optimizer:state_dict()
        local sd = {state = {}, param_groups = {}}
        local i = 0
        for gi, group in ipairs(self.param_groups) do
            local g = {}
            for k, v in pairs(group) do
                if k ~= "params" then g[k] = copy_value(v) end
            end
            g.params = {}
            for _, p in ipairs(group.params) do
                i = i + 1
                g.params[#g.params + 1] = i
                local st = self.state[p]
                if st ~= nil then
                    local s = {}
                    for k, v in pairs(st) do s[k] = v end
                    sd.state[i] = s
                end
            end
            sd.param_groups[gi] = g
        end
        return sd
    end

    -- restores hyper-parameters and state (tensors are copied)
    function Optimizer:load_state_dict(sd)
        local fname = self._spec.name .. ":load_state_dict"
        if type(sd) ~= "table" or type(sd.param_groups) ~= "table" or type(sd.state) ~= "table" then
            fail(fname, 1, "state_dict must be a table {state = {...}, param_groups = {...}}")
        end
        if #sd.param_groups ~= #self.param_groups then
            fail(fname, 1, string.format("loaded state dict has %d parameter groups, the optimizer has %d",
                #sd.param_groups, #self.param_groups))
        end
        local index = {}
        for gi, group in ipairs(self.param_groups) do
            local sg = sd.param_groups[gi]
            if type(sg) ~= "table" or type(sg.params) ~= "table" or #sg.params ~= #group.params then
                fail(fname, 1, string.format("loaded group %d does not have the %d parameters of the optimizer's group %d",
                    gi, #group.params, gi))
            end
            for j, id in ipairs(sg.params) do index[id] = group.params[j] end
        end
        local state = {}
        for id, s in pairs(sd.state) do
            local p = index[id]
            if p == nil then fail(fname, 1, string.format("state for parameter %s that no group names", tostring(id))) end
            local st = {}
            for k, v in pairs(s) do
                if core.is_tensor(v) then
                    if k == "step" then
                        st[k] = math.tointeger(v:item()) or v:item()
                    else
                        if v:dtype() ~= p:dtype() or #v:shape() ~= #p:shape() or v:numel() ~= p:numel() then
                            fail(fname, 1, string.format("state '%s' of parameter %s does not match the parameter's shape and dtype",
                                k, tostring(id)))
                        end
                        st[k] = v:clone():contiguous()
                    end
                else
                    st[k] = copy_value(v)
                end
            end
            state[p] = st
        end
        for gi, group in ipairs(self.param_groups) do
            for k, v in pairs(sd.param_groups[gi]) do
                if k ~= "params" then group[k] = copy_value(v) end
            end
        end
        self.state = state
    end

    function Optimizer:__tostring()
        local parts = {}
        for gi, g in ipairs(self.param_groups) do
            local keys = {}
            for k in pairs(g) do if k ~= "params" then keys[#keys + 1] = k end end
            table.sort(keys)
            local kv = {}
            for _, k in ipairs(keys) do
                local v = g[k]
                if type(v) == "table" then v = "{" .. table.concat(v, ", ") .. "}" end
                kv[#kv + 1] = k .. " = " .. tostring(v)
            end
            parts[#parts + 1] = string.format("  group %d (%d params): %s", gi, #g.params, table.concat(kv, ", "))
        end
        return self._spec.name .. "(\n" .. table.concat(parts, "\n") .. "\n)"
    end

    local function define(spec)
        local cls = setmetatable({}, {__index = Optimizer})
        cls.__index = cls
        cls.__tostring = Optimizer.__tostring
        cls.__name = spec.name
        spec.class = cls
        optim[spec.name] = setmetatable({}, {
            __call = function(_, params, opts) return new_optimizer(spec, params, opts) end,
            __index = cls,
        })
    end

    -- state on the parameter's device (cuda parameters get cuda state)
    local function zeros_like(p)
        return core.zeros_like(p)
    end

    -- SGD ------------------------------------------------------------------
    define {
        name = "SGD",
        defaults = {lr = REQUIRED, momentum = 0, dampening = 0, nesterov = false, weight_decay = 0, maximize = false},
        checks = {lr = number_ge(0), momentum = number_ge(0), dampening = number_any, nesterov = boolean,
                  weight_decay = number_ge(0), maximize = boolean},
        validate = function(g)
            if g.nesterov and (g.momentum <= 0 or g.dampening ~= 0) then
                return "nesterov momentum requires a momentum > 0 and zero dampening"
            end
        end,
        init_state = function() return {} end,
        update = function(p, g, st, group)
            local buf, first = nil, false
            if group.momentum ~= 0 then
                buf = st.momentum_buffer
                if buf == nil then
                    buf = zeros_like(p)
                    st.momentum_buffer = buf
                    first = true
                end
            end
            core._sgd_step(p, g, buf, {lr = group.lr, momentum = group.momentum, dampening = group.dampening,
                nesterov = group.nesterov, weight_decay = group.weight_decay, maximize = group.maximize,
                first_step = first})
        end,
        -- the whole group in one C call (few launches on CUDA), split by
        -- first_step (fresh momentum buffers)
        update_list = function(ps, gs, sts, group)
            local lists = {}
            for i, p in ipairs(ps) do
                local st, first = sts[i], false
                if group.momentum ~= 0 and st.momentum_buffer == nil then
                    st.momentum_buffer = zeros_like(p)
                    first = true
                end
                local l = lists[first]
                if l == nil then
                    l = {p = {}, g = {}, buf = {}}
                    lists[first] = l
                end
                l.p[#l.p + 1], l.g[#l.g + 1] = p, gs[i]
                if group.momentum ~= 0 then l.buf[#l.buf + 1] = st.momentum_buffer end
            end
            for _, first in ipairs({true, false}) do
                local l = lists[first]
                if l ~= nil then
                    core._sgd_step_multi(l.p, l.g, group.momentum ~= 0 and l.buf or nil, {lr = group.lr,
                        momentum = group.momentum, dampening = group.dampening, nesterov = group.nesterov,
                        weight_decay = group.weight_decay, maximize = group.maximize, first_step = first})
                end
            end
        end,
    }

    -- Adam and AdamW -------------------------------------------------------
    local function adam_spec(name, wd, decoupled)
        return {
            name = name,
            defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = wd, amsgrad = false, maximize = false},
            checks = {lr = number_ge(0), betas = betas, eps = number_ge(0), weight_decay = number_ge(0),
                      amsgrad = boolean, maximize = boolean},
            init_state = function(p, group)
                local st = {step = 0, exp_avg = zeros_like(p), exp_avg_sq = zeros_like(p)}
                if group.amsgrad then st.max_exp_avg_sq = zeros_like(p) end
                return st
            end,
            update = function(p, g, st, group)
                if group.amsgrad and st.max_exp_avg_sq == nil then st.max_exp_avg_sq = zeros_like(p) end
                st.step = st.step + 1
                core._adam_step(p, g, st.exp_avg, st.exp_avg_sq, group.amsgrad and st.max_exp_avg_sq or nil, {
                    lr = group.lr, beta1 = group.betas[1], beta2 = group.betas[2], eps = group.eps,
                    weight_decay = group.weight_decay, step = st.step, amsgrad = group.amsgrad,
                    decoupled = decoupled, maximize = group.maximize})
            end,
            -- the whole group in one C call per distinct step count (one
            -- call in the usual case: few launches on CUDA)
            update_list = function(ps, gs, sts, group)
                local lists, order = {}, {}
                for i, p in ipairs(ps) do
                    local st = sts[i]
                    if group.amsgrad and st.max_exp_avg_sq == nil then st.max_exp_avg_sq = zeros_like(p) end
                    st.step = st.step + 1
                    local l = lists[st.step]
                    if l == nil then
                        l = {p = {}, g = {}, m = {}, v = {}, vmax = {}}
                        lists[st.step] = l
                        order[#order + 1] = st.step
                    end
                    local k = #l.p + 1
                    l.p[k], l.g[k], l.m[k], l.v[k] = p, gs[i], st.exp_avg, st.exp_avg_sq
                    if group.amsgrad then l.vmax[k] = st.max_exp_avg_sq end
                end
                for _, step in ipairs(order) do
                    local l = lists[step]
                    core._adam_step_multi(l.p, l.g, l.m, l.v, group.amsgrad and l.vmax or nil, {
                        lr = group.lr, beta1 = group.betas[1], beta2 = group.betas[2], eps = group.eps,
                        weight_decay = group.weight_decay, step = step, amsgrad = group.amsgrad,
                        decoupled = decoupled, maximize = group.maximize})
                end
            end,
        }
    end
    define(adam_spec("Adam", 0, false))
    define(adam_spec("AdamW", 1e-2, true))

    -- RMSprop --------------------------------------------------------------
    define {
        name = "RMSprop",
        defaults = {lr = 1e-2, alpha = 0.99, eps = 1e-8, weight_decay = 0, momentum = 0, centered = false,
                    maximize = false},
        checks = {lr = number_ge(0), alpha = number_ge(0), eps = number_ge(0), weight_decay = number_ge(0),
                  momentum = number_ge(0), centered = boolean, maximize = boolean},
        init_state = function(p)
            return {step = 0, square_avg = zeros_like(p)}
        end,
        update = function(p, g, st, group)
            if group.momentum > 0 and st.momentum_buffer == nil then st.momentum_buffer = zeros_like(p) end
            if group.centered and st.grad_avg == nil then st.grad_avg = zeros_like(p) end
            st.step = st.step + 1
            core._rmsprop_step(p, g, st.square_avg, group.centered and st.grad_avg or nil,
                group.momentum > 0 and st.momentum_buffer or nil, {
                    lr = group.lr, alpha = group.alpha, eps = group.eps, weight_decay = group.weight_decay,
                    momentum = group.momentum, centered = group.centered, maximize = group.maximize})
        end,
    }

    -- ---- learning-rate schedules -------------------------------------------
    local Scheduler = {}
    Scheduler.__index = Scheduler

    local function check_sched_opts(fname, argn, opts, allowed)
        if opts == nil then return {} end
        if type(opts) ~= "table" or core.is_tensor(opts) then
            fail(fname, argn, "options must be a table, got " .. type(opts))
        end
        for k in pairs(opts) do
            if not allowed[k] then fail(fname, argn, string.format("unknown option '%s'", tostring(k))) end
        end
        return opts
    end

    local function new_scheduler(cls, fname, opt, fields)
        if type(opt) ~= "table" or type(opt.param_groups) ~= "table" or opt._spec == nil then
            fail(fname, 1, "optimizer expected, got " .. (core.is_tensor(opt) and "tensor" or type(opt)))
        end
        local self = setmetatable(fields, cls)
        self.optimizer = opt
        self._name = fname
        for _, group in ipairs(opt.param_groups) do
            if group.initial_lr == nil then group.initial_lr = group.lr end
        end
        self.base_lrs = {}
        for i, group in ipairs(opt.param_groups) do self.base_lrs[i] = group.initial_lr end
        self.last_epoch = -1
        self._step_count = 0
        self:step()
        return self
    end

    -- advance one step (epoch or batch, as the schedule is meant) and set
    -- each group's lr
    function Scheduler:step()
        self._step_count = self._step_count + 1
        self.last_epoch = self.last_epoch + 1
        local lrs = self:get_lr()
        for i, group in ipairs(self.optimizer.param_groups) do group.lr = lrs[i] end
        self._last_lr = lrs
    end

    function Scheduler:get_last_lr()
        return copy_value(self._last_lr)
    end

    -- everything but the optimizer, copied
    function Scheduler:state_dict()
        local sd = {}
        for k, v in pairs(self) do
            if k ~= "optimizer" then sd[k] = copy_value(v) end
        end
        return sd
    end

    function Scheduler:load_state_dict(sd)
        if type(sd) ~= "table" or sd.last_epoch == nil then
            fail(self._name .. ":load_state_dict", 1, "state_dict must be a table from a scheduler's state_dict()")
        end
        for k, v in pairs(sd) do
            if k ~= "optimizer" then self[k] = copy_value(v) end
        end
    end

    local function group_lrs(self)
        local r = {}
        for i, group in ipairs(self.optimizer.param_groups) do r[i] = group.lr end
        return r
    end

    local function define_sched(name, make)
        local cls = setmetatable({}, {__index = Scheduler})
        cls.__index = cls
        cls.__name = name
        optim[name] = setmetatable({}, {
            __call = function(_, ...) return make(cls, ...) end,
            __index = cls,
        })
        return cls
    end

    local function check_gamma(fname, opts)
        local gamma = opts.gamma
        if gamma == nil then gamma = 0.1 end
        if type(gamma) ~= "number" then fail(fname, 3, "gamma must be a number, got " .. type(gamma)) end
        return gamma
    end

    -- StepLR(opt, step_size, {gamma = 0.1}): lr *= gamma every step_size steps
    local StepLR = define_sched("StepLR", function(cls, opt, step_size, opts)
        local fname = "StepLR"
        opts = check_sched_opts(fname, 3, opts, {gamma = true})
        if not is_int(step_size) or step_size < 1 then
            fail(fname, 2, "step_size must be a positive integer, got " .. tostring(step_size))
        end
        return new_scheduler(cls, fname, opt, {step_size = math.tointeger(step_size), gamma = check_gamma(fname, opts)})
    end)
    function StepLR:get_lr()
        local lrs = group_lrs(self)
        if self.last_epoch == 0 or self.last_epoch % self.step_size ~= 0 then return lrs end
        for i = 1, #lrs do lrs[i] = lrs[i] * self.gamma end
        return lrs
    end

    -- MultiStepLR(opt, milestones, {gamma = 0.1}): lr *= gamma at each milestone
    local MultiStepLR = define_sched("MultiStepLR", function(cls, opt, milestones, opts)
        local fname = "MultiStepLR"
        opts = check_sched_opts(fname, 3, opts, {gamma = true})
        if type(milestones) ~= "table" or core.is_tensor(milestones) then
            fail(fname, 2, "milestones must be a list of integers, got " .. type(milestones))
        end
        local counts = {}
        for i, m in ipairs(milestones) do
            if not is_int(m) or m < 0 then
                fail(fname, 2, string.format("milestones[%d] must be a non-negative integer, got %s", i, tostring(m)))
            end
            m = math.tointeger(m)
            counts[m] = (counts[m] or 0) + 1
        end
        return new_scheduler(cls, fname, opt, {milestones = counts, gamma = check_gamma(fname, opts)})
    end)
    function MultiStepLR:get_lr()
        local lrs = group_lrs(self)
        local n = self.milestones[self.last_epoch]
        if n == nil then return lrs end
        for i = 1, #lrs do lrs[i] = lrs[i] * self.gamma ^ n end
        return lrs
    end
    -- milestones are integer keys: state_dict keeps them as they are

    -- CosineAnnealingLR(opt, T_max, {eta_min = 0}): PyTorch's recursive form
    local Cosine = define_sched("CosineAnnealingLR", function(cls, opt, T_max, opts)
        local fname = "CosineAnnealingLR"
        opts = check_sched_opts(fname, 3, opts, {eta_min = true})
        if type(T_max) ~= "number" or not (T_max > 0) or T_max == math.huge then
            fail(fname, 2, "T_max must be a positive number, got " .. tostring(T_max))
        end
        local eta_min = opts.eta_min or 0
        if type(eta_min) ~= "number" then fail(fname, 3, "eta_min must be a number, got " .. type(eta_min)) end
        return new_scheduler(cls, fname, opt, {T_max = T_max, eta_min = eta_min})
    end)
    function Cosine:get_lr()
        local lrs = group_lrs(self)
        local e, T, eta = self.last_epoch, self.T_max, self.eta_min
        if e == 0 then return lrs end
        if (e - 1 - T) % (2 * T) == 0 then
            for i = 1, #lrs do
                lrs[i] = lrs[i] + (self.base_lrs[i] - eta) * (1 - math.cos(math.pi / T)) / 2
            end
            return lrs
        end
        for i = 1, #lrs do
            lrs[i] = (1 + math.cos(math.pi * e / T)) / (1 + math.cos(math.pi * (e - 1) / T)) * (lrs[i] - eta) + eta
        end
        return lrs
    end

    -- OneCycleLR(opt, max_lr, {...}): closed form per step, as PyTorch
    local one_cycle_keys = {total_steps = true, epochs = true, steps_per_epoch = true, pct_start = true,
        anneal_strategy = true, cycle_momentum = true, base_momentum = true, max_momentum = true,
        div_factor = true, final_div_factor = true, three_phase = true}
    local OneCycle = define_sched("OneCycleLR", function(cls, opt, max_lr, opts)
        local fname = "OneCycleLR"
        opts = check_sched_opts(fname, 3, opts, one_cycle_keys)
        if type(opt) ~= "table" or type(opt.param_groups) ~= "table" or opt._spec == nil then
            fail(fname, 1, "optimizer expected, got " .. type(opt))
        end
        local ngroups = #opt.param_groups
        local total
        if opts.total_steps ~= nil then
            if not is_int(opts.total_steps) or opts.total_steps < 1 then
                fail(fname, 3, "total_steps must be a positive integer, got " .. tostring(opts.total_steps))
            end
            total = opts.total_steps
        elseif opts.epochs ~= nil or opts.steps_per_epoch ~= nil then
            for _, k in ipairs({"epochs", "steps_per_epoch"}) do
                if not is_int(opts[k]) or opts[k] < 1 then
                    fail(fname, 3, string.format("%s must be a positive integer, got %s", k, tostring(opts[k])))
                end
            end
            total = opts.epochs * opts.steps_per_epoch
        else
            fail(fname, 3, "give total_steps, or epochs and steps_per_epoch")
        end
        total = math.tointeger(total)
        local pct = opts.pct_start == nil and 0.3 or opts.pct_start
        if type(pct) ~= "number" or not (pct >= 0 and pct <= 1) then
            fail(fname, 3, "pct_start must be a number in [0, 1], got " .. tostring(pct))
        end
        local strategy = opts.anneal_strategy or "cos"
        if strategy ~= "cos" and strategy ~= "linear" then
            fail(fname, 3, "anneal_strategy must be 'cos' or 'linear', got " .. tostring(strategy))
        end
        local function num(k, d)
            local v = opts[k]
            if v == nil then return d end
            if type(v) ~= "number" then fail(fname, 3, string.format("%s must be a number, got %s", k, type(v))) end
            return v
        end
        local div, final_div = num("div_factor", 25), num("final_div_factor", 1e4)
        local base_m, max_m = num("base_momentum", 0.85), num("max_momentum", 0.95)
        local cycle = opts.cycle_momentum
        if cycle == nil then cycle = true end
        local three = opts.three_phase or false
        local max_lrs = {}
        if type(max_lr) == "number" then
            for i = 1, ngroups do max_lrs[i] = max_lr end
        elseif type(max_lr) == "table" and not core.is_tensor(max_lr) then
            if #max_lr ~= ngroups then
                fail(fname, 2, string.format("expected %d values for max_lr, got %d", ngroups, #max_lr))
            end
            for i = 1, ngroups do
                if type(max_lr[i]) ~= "number" then fail(fname, 2, "max_lr must be numbers") end
                max_lrs[i] = max_lr[i]
            end
        else
            fail(fname, 2, "max_lr must be a number or a list of numbers, got " .. type(max_lr))
        end
        local use_beta1 = false
        if cycle then
            local d = opt.defaults
            if d.momentum == nil and d.betas == nil then
                fail(fname, 3, "optimizer must support momentum or betas with cycle_momentum enabled")
            end
            use_beta1 = d.betas ~= nil
        end
        local phases
        if three then
            phases = {
                {end_step = pct * total - 1, s = "initial_lr", e = "max_lr", sm = "max_momentum", em = "base_momentum"},
                {end_step = 2 * pct * total - 2, s = "max_lr", e = "initial_lr", sm = "base_momentum", em = "max_momentum"},
                {end_step = total - 1, s = "initial_lr", e = "min_lr", sm = "max_momentum", em = "max_momentum"},
            }
        else
            phases = {
                {end_step = pct * total - 1, s = "initial_lr", e = "max_lr", sm = "max_momentum", em = "base_momentum"},
                {end_step = total - 1, s = "max_lr", e = "min_lr", sm = "base_momentum", em = "max_momentum"},
            }
        end
        for i, group in ipairs(opt.param_groups) do
            group.initial_lr = max_lrs[i] / div
            group.max_lr = max_lrs[i]
            group.min_lr = group.initial_lr / final_div
            if cycle then
                if use_beta1 then
                    group.betas = {max_m, group.betas[2]}
                else
                    group.momentum = max_m
                end
                group.max_momentum = max_m
                group.base_momentum = base_m
            end
        end
        return new_scheduler(cls, fname, opt, {total_steps = total, phases = phases, anneal_strategy = strategy,
            cycle_momentum = cycle, use_beta1 = use_beta1})
    end)
    function OneCycle:get_lr()
        local step = self.last_epoch
        if step > self.total_steps then
            error(string.format("OneCycleLR: tried to step %d times; the specified number of total steps is %d",
                step, self.total_steps), 0)
        end
        local anneal
        if self.anneal_strategy == "cos" then
            anneal = function(s, e, pct) return e + (s - e) / 2 * (math.cos(math.pi * pct) + 1) end
        else
            anneal = function(s, e, pct) return (e - s) * pct + s end
        end
        local lrs = {}
        for i, group in ipairs(self.optimizer.param_groups) do
            local start = 0
            local lr, mom
            for k, ph in ipairs(self.phases) do
                if step <= ph.end_step or k == #self.phases then
                    local pct = (step - start) / (ph.end_step - start)
                    lr = anneal(group[ph.s], group[ph.e], pct)
                    if self.cycle_momentum then mom = anneal(group[ph.sm], group[ph.em], pct) end
                    break
                end
                start = ph.end_step
            end
            lrs[i] = lr
            if self.cycle_momentum then
                if self.use_beta1 then group.betas = {mom, group.betas[2]} else group.momentum = mom end
            end
        end
        return lrs
    end

    -- LinearWarmup(opt, warmup_steps, {start_factor = 0}): lr goes linearly
    -- from start_factor * lr to lr over warmup_steps, then stays; PyTorch's
    -- LinearLR(start_factor, 1.0, warmup_steps) in its closed form
    local Warmup = define_sched("LinearWarmup", function(cls, opt, warmup_steps, opts)
        local fname = "LinearWarmup"
        opts = check_sched_opts(fname, 3, opts, {start_factor = true})
        if not is_int(warmup_steps) or warmup_steps < 1 then
            fail(fname, 2, "warmup_steps must be a positive integer, got " .. tostring(warmup_steps))
        end
        local f = opts.start_factor or 0
        if type(f) ~= "number" or not (f >= 0 and f <= 1) then
            fail(fname, 3, "start_factor must be a number in [0, 1], got " .. tostring(f))
        end
        return new_scheduler(cls, fname, opt, {warmup_steps = math.tointeger(warmup_steps), start_factor = f})
    end)
    function Warmup:get_lr()
        local t = math.min(self.last_epoch, self.warmup_steps)
        local f = self.start_factor + (1 - self.start_factor) * t / self.warmup_steps
        local lrs = {}
        for i = 1, #self.base_lrs do lrs[i] = self.base_lrs[i] * f end
        return lrs
    end

    tide.optim = optim

    -- ---- gradient clipping ---------------------------------------------------
    local function grads_of(fname, params)
        if core.is_tensor(params) then params = {params} end
        if type(params) ~= "table" then
            fail(fname, 1, "params must be a tensor or a list of tensors, got " .. type(params))
        end
        local gs = {}
        for i = 1, #params do
            local p = params[i]
            if not core.is_tensor(p) then
                fail(fname, 1, string.format("params[%d] is a %s, not a tensor", i, type(p)))
            end
            local g = p.grad
            if g ~= nil then gs[#gs + 1] = g end
        end
        return gs
    end

    -- clip_grad_norm_(params, max_norm, {norm_type = 2, error_if_nonfinite = false})
    -- scales the gradients in place so their joint norm is at most max_norm;
    -- returns the norm before clipping, as a number
    local function clip_grad_norm_(params, max_norm, opts)
        local fname = "clip_grad_norm_"
        local gs = grads_of(fname, params)
        if type(max_norm) ~= "number" then fail(fname, 2, "max_norm must be a number, got " .. type(max_norm)) end
        opts = check_sched_opts(fname, 3, opts, {norm_type = true, error_if_nonfinite = true})
        local p = opts.norm_type
        if p == nil then p = 2 end
        if p == "inf" then p = math.huge end
        if type(p) ~= "number" or not (p > 0) then
            fail(fname, 3, "norm_type must be a positive number or 'inf', got " .. tostring(p))
        end
        if #gs == 0 then return 0.0 end
        local total
        if p == math.huge then
            total = 0
            for _, g in ipairs(gs) do
                if g:numel() > 0 then
                    local m = g:abs():max():item()
                    if m ~= m or m > total then total = m end
                    if total ~= total then break end
                end
            end
        else
            local acc = 0
            for _, g in ipairs(gs) do acc = acc + g:norm(p):item() ^ p end
            total = acc ^ (1 / p)
        end
        if opts.error_if_nonfinite and (total ~= total or total == math.huge) then
            error(string.format("clip_grad_norm_: the total norm of order %s for gradients from `parameters` is non-finite, "
                .. "so it cannot be clipped. To disable this error and scale the gradients by the non-finite norm anyway, "
                .. "set the option error_if_nonfinite = false", tostring(p)), 0)
        end
        local coef = max_norm / (total + 1e-6)
        if coef > 1 then coef = 1 end
        for _, g in ipairs(gs) do g:mul_(coef) end
        return total
    end

    -- clip_grad_value_(params, clip_value): each gradient element clamped to
    -- [-clip_value, clip_value], in place
    local function clip_grad_value_(params, clip_value)
        local fname = "clip_grad_value_"
        local gs = grads_of(fname, params)
        if type(clip_value) ~= "number" or clip_value ~= clip_value then
            fail(fname, 2, "clip_value must be a number, got " .. tostring(clip_value))
        end
        for _, g in ipairs(gs) do g:copy_(g:clamp(-clip_value, clip_value)) end
    end

    tide.nn = tide.nn or {}
    tide.nn.utils = tide.nn.utils or {}
    tide.nn.utils.clip_grad_norm_ = clip_grad_norm_
    tide.nn.utils.clip_grad_value_ = clip_grad_value_
end

return M
