-- tide.optim's Optimizer: parameter groups and their options, step and
-- zero_grad, state_dict and load_state_dict, and define(spec), which makes
-- tide.optim.<name> from an algorithm's spec (algorithms.lua holds them).
local common = require "tide.optim.common"
local fail, copy_value, unknown_option = common.fail, common.copy_value, common.unknown_option

local M = {}

-- Gives optim its define(spec); returns what the algorithms are written
-- with: define, REQUIRED, zeros_like and the option checks.
function M.install(optim, core)
    -- ---- option checks ----------------------------------------------------
    -- each check(v) returns nil when fine, or what is wrong
    local function number_ge(lo)
        return function(v)
            if type(v) ~= "number" then return "must be a number, got " .. type(v) end
            if not (v >= lo) or v == math.huge then -- luacheck: ignore 581 (NaN fails too)
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
                local known = {params = true}
                for name in pairs(spec.defaults) do known[name] = true end
                unknown_option(fname, argn, k, known, where)
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
                fail(fname, argn, string.format("%sparams[%d] is not a leaf tensor (can't optimize a non-leaf tensor)",
                    where, i))
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
            if spec.defaults[k] == nil then unknown_option(fname, 2, k, spec.defaults) end
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
                    fail(fname, 1, string.format(
                        "params must be a list of tensors or of groups {params = {...}, ...}; item %d is not", gi))
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
                if k ~= "set_to_none" then unknown_option(fname, 1, k, {set_to_none = true}) end
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
                fail(fname, 1, string.format(
                    "loaded group %d does not have the %d parameters of the optimizer's group %d",
                    gi, #group.params, gi))
            end
            for j, id in ipairs(sg.params) do index[id] = group.params[j] end
        end
        local state = {}
        for id, s in pairs(sd.state) do
            local p = index[id]
            if p == nil then
                fail(fname, 1, string.format("state for parameter %s that no group names", tostring(id)))
            end
            local st = {}
            for k, v in pairs(s) do
                if core.is_tensor(v) then
                    if k == "step" then
                        st[k] = math.tointeger(v:item()) or v:item()
                    else
                        if v:dtype() ~= p:dtype() or #v:shape() ~= #p:shape() or v:numel() ~= p:numel() then
                            fail(fname, 1, string.format(
                                "state '%s' of parameter %s does not match the parameter's shape and dtype",
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
        -- every loaded group's options pass the constructor's checks before
        -- any group changes, so a bad file leaves the optimizer as it was
        local loaded = {}
        for gi, group in ipairs(self.param_groups) do
            local g = {}
            for k, v in pairs(sd.param_groups[gi]) do
                if k ~= "params" then
                    local why = self._spec.checks[k] and self._spec.checks[k](v)
                    if why then fail(fname, 1, string.format("loaded group %d: %s %s", gi, k, why)) end
                    g[k] = copy_value(v)
                end
            end
            local merged = setmetatable({}, {__index = function(_, k)
                if g[k] ~= nil then return g[k] end
                return group[k]
            end})
            local why = self._spec.validate and self._spec.validate(merged)
            if why then fail(fname, 1, string.format("loaded group %d: %s", gi, why)) end
            loaded[gi] = g
        end
        -- each group becomes the loaded one (its parameters kept), as in
        -- PyTorch: a key only the current group had goes, so a restore
        -- from a snapshot undoes what a bad file added
        for gi, group in ipairs(self.param_groups) do
            for k in pairs(group) do
                if k ~= "params" and loaded[gi][k] == nil and self._spec.defaults[k] == nil then group[k] = nil end
            end
            for k, v in pairs(loaded[gi]) do group[k] = v end
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

    return {define = define, REQUIRED = REQUIRED, zeros_like = zeros_like, number_ge = number_ge,
            number_any = number_any, boolean = boolean, unit = unit, betas = betas}
end

return M
