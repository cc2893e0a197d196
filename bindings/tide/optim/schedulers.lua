-- The learning-rate schedules of tide.optim (PyTorch's lr_scheduler):
-- StepLR, MultiStepLR, CosineAnnealingLR, OneCycleLR and LinearWarmup on a
-- common Scheduler with step, get_last_lr, state_dict and load_state_dict.
local caller = require "tide.caller"
local common = require "tide.optim.common"
local fail, is_int, copy_value, check_options = common.fail, common.is_int, common.copy_value, common.check_options

local M = {}

function M.install(optim, core)
    local Scheduler = {}
    Scheduler.__index = Scheduler

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
        -- only the fields this scheduler has, each of its kind, all checked
        -- before any changes: a file's "step" must not replace a method
        local fname = self._name .. ":load_state_dict"
        for k, v in pairs(sd) do
            local mine = rawget(self, k)
            if k == "optimizer" or mine == nil then
                fail(fname, 1, string.format("state_dict has '%s', which a %s does not keep", tostring(k),
                                             self._name))
            end
            if type(v) ~= type(mine) then
                fail(fname, 1, string.format("state_dict's '%s' is a %s, not a %s", k, type(v), type(mine)))
            end
        end
        for k, v in pairs(sd) do self[k] = copy_value(v) end
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
        opts = check_options(fname, 3, opts, {gamma = true})
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
        opts = check_options(fname, 3, opts, {gamma = true})
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
        opts = check_options(fname, 3, opts, {eta_min = true})
        if type(T_max) ~= "number" or not (T_max > 0) or T_max == math.huge then -- luacheck: ignore 581 (NaN fails too)
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
        opts = check_options(fname, 3, opts, one_cycle_keys)
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
                {end_step = 2 * pct * total - 2, s = "max_lr", e = "initial_lr", sm = "base_momentum",
                 em = "max_momentum"},
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
            caller.error(string.format("OneCycleLR: tried to step %d times; the specified number of total steps is %d",
                step, self.total_steps))
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
        opts = check_options(fname, 3, opts, {start_factor = true})
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
end

return M
