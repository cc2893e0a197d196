-- Mixed-precision training: tide.autocast, mixed precision by op (the
-- casts themselves are the C runtime's, tide/autocast.h), and
-- tide.amp.GradScaler, dynamic loss scaling for float16 training as
-- torch.cuda.amp.GradScaler in PyTorch 1.13. float16's range ends at
-- 65504 and its normals at 6.1e-5, so small gradients flush to zero; the
-- loss is multiplied by a large scale before backward, the gradients are
-- divided by it before the step, and a step whose gradients hold an inf
-- or NaN is skipped and the scale halved. The scale is kept as PyTorch
-- keeps it, a float32 value: growth that would overflow float32 is not
-- taken. Unlike PyTorch 1.13's it runs on any device (the gradients' own).
local caller = require "tide.caller"
local common = require "tide.optim.common"
local fail, check_options = common.fail, common.check_options

local M = {}

-- float32 rounding of a Lua number, as PyTorch's float32 scale tensor holds it
local function f32(v) return string.unpack("f", string.pack("f", v)) end

local function positive(fname, argn, name, v, below_one)
    if type(v) ~= "number" or not (v > 0) or v == math.huge then -- luacheck: ignore 581 (NaN fails too)
        fail(fname, argn, string.format("%s must be a positive finite number, got %s", name, tostring(v)))
    end
    if below_one == true and v >= 1 then
        fail(fname, argn, string.format("%s must be less than 1.0, got %s", name, tostring(v)))
    elseif below_one == false and v <= 1 then
        fail(fname, argn, string.format("%s must be greater than 1.0, got %s", name, tostring(v)))
    end
    return v
end

function M.install(tide, core)
    local GradScaler = {}
    GradScaler.__index = GradScaler
    GradScaler.__name = "tide.amp.GradScaler"

    -- stages of one optimizer between two update()s, as PyTorch's OptState
    local READY, UNSCALED, STEPPED = 0, 1, 2

    local function new(opts)
        local fname = "GradScaler"
        opts = check_options(fname, 1, opts, {init_scale = true, growth_factor = true, backoff_factor = true,
                                              growth_interval = true, enabled = true})
        local self = setmetatable({}, GradScaler)
        self._enabled = opts.enabled ~= false
        if opts.enabled ~= nil and type(opts.enabled) ~= "boolean" then
            fail(fname, 1, "enabled must be a boolean, got " .. type(opts.enabled))
        end
        self._scale = f32(positive(fname, 1, "init_scale", opts.init_scale or 2.0 ^ 16))
        self._growth_factor = positive(fname, 1, "growth_factor", opts.growth_factor or 2.0, false)
        self._backoff_factor = positive(fname, 1, "backoff_factor", opts.backoff_factor or 0.5, true)
        local gi = opts.growth_interval or 2000
        if not common.is_int(gi) or gi < 1 then
            fail(fname, 1, "growth_interval must be a positive integer, got " .. tostring(gi))
        end
        self._growth_interval = math.tointeger(gi)
        self._growth_tracker = 0
        self._per_optimizer = setmetatable({}, {__mode = "k"})
        return self
    end

    local function state_of(self, optimizer)
        local st = self._per_optimizer[optimizer]
        if st == nil then
            st = {stage = READY, found_inf = false}
            self._per_optimizer[optimizer] = st
        end
        return st
    end

    local function check_optimizer(fname, optimizer)
        if type(optimizer) ~= "table" or type(optimizer.param_groups) ~= "table" then
            fail(fname, 1, "optimizer expected (a tide.optim optimizer), got " .. type(optimizer))
        end
    end

    -- outputs * scale: a tensor, or a (nested) list of tensors
    function GradScaler:scale(outputs)
        if not self._enabled then return outputs end
        if core.is_tensor(outputs) then return outputs * self._scale end
        if type(outputs) ~= "table" then
            fail("GradScaler:scale", 1, "outputs must be a tensor or a list of tensors, got " .. type(outputs))
        end
        local r = {}
        for i, o in ipairs(outputs) do r[i] = self:scale(o) end
        return r
    end

    -- divides the optimizer's gradients by the scale in place and notes
    -- whether any holds an inf or NaN; at most once between two update()s
    function GradScaler:unscale_(optimizer)
        local fname = "GradScaler:unscale_"
        if not self._enabled then return end
        check_optimizer(fname, optimizer)
        local st = state_of(self, optimizer)
        if st.stage == UNSCALED then
            caller.error("GradScaler:unscale_: unscale_() has already been called on this optimizer since the "
                         .. "last update()")
        elseif st.stage == STEPPED then
            caller.error("GradScaler:unscale_: unscale_() is being called after step()")
        end
        -- PyTorch's reciprocal: in float64, then rounded to float32
        local inv = f32(1.0 / self._scale)
        local found = false
        for _, group in ipairs(optimizer.param_groups) do
            for _, p in ipairs(group.params) do
                local g = p.grad
                if g ~= nil and g:dtype() == "float16" then
                    -- PyTorch's rule: float16 master gradients lose what unscaling is for
                    caller.error("GradScaler:unscale_: attempting to unscale float16 gradients; keep the "
                                 .. "parameters in float32 (autocast casts them per op)")
                end
                if g ~= nil and g:numel() > 0 then
                    if not found and g:isfinite():all():item() == 0 then found = true end
                    g:mul_(inv)
                end
            end
        end
        st.found_inf, st.stage = found, UNSCALED
    end

    -- the optimizer's step unless its unscaled gradients hold an inf or NaN;
    -- returns true when the step was taken
    function GradScaler:step(optimizer, ...)
        local fname = "GradScaler:step"
        if select("#", ...) > 0 then
            fail(fname, 2, "closures are not supported with GradScaler (the step takes the optimizer only)")
        end
        if not self._enabled then
            check_optimizer(fname, optimizer)
            optimizer:step()
            return true
        end
        check_optimizer(fname, optimizer)
        local st = state_of(self, optimizer)
        if st.stage == STEPPED then
            caller.error("GradScaler:step: step() has already been called since the last update()")
        end
        if st.stage == READY then self:unscale_(optimizer) end
        st.stage = STEPPED
        if st.found_inf then return false end
        optimizer:step()
        return true
    end

    -- the scale for the next iteration: halved (backoff_factor) if any
    -- optimizer found an inf or NaN, else doubled (growth_factor) after
    -- growth_interval clean steps in a row; or new_scale when given
    function GradScaler:update(new_scale)
        local fname = "GradScaler:update"
        if not self._enabled then return end
        if new_scale ~= nil then
            if core.is_tensor(new_scale) then
                if new_scale:numel() ~= 1 then fail(fname, 1, "new_scale must hold one element") end
                new_scale = new_scale:item()
            end
            self._scale = f32(positive(fname, 1, "new_scale", new_scale))
        else
            local any_step, found = false, false
            for _, st in pairs(self._per_optimizer) do
                if st.stage ~= READY then any_step = true end
                found = found or st.found_inf
            end
            if not any_step then
                caller.error("GradScaler:update: no inf checks were recorded prior to update() "
                             .. "(call step() or unscale_() first)")
            end
            if found then
                self._scale = f32(self._scale * self._backoff_factor)
                self._growth_tracker = 0
            else
                local n = self._growth_tracker + 1
                if n == self._growth_interval then
                    local grown = f32(self._scale * self._growth_factor)
                    if grown ~= math.huge then self._scale = grown end
                    n = 0
                end
                self._growth_tracker = n
            end
        end
        self._per_optimizer = setmetatable({}, {__mode = "k"})
    end

    function GradScaler:get_scale() return self._enabled and self._scale or 1.0 end
    function GradScaler:get_growth_factor() return self._growth_factor end
    function GradScaler:get_backoff_factor() return self._backoff_factor end
    function GradScaler:get_growth_interval() return self._growth_interval end
    function GradScaler:is_enabled() return self._enabled end
    function GradScaler:set_growth_factor(v)
        self._growth_factor = positive("GradScaler:set_growth_factor", 1, "growth_factor", v, false)
    end
    function GradScaler:set_backoff_factor(v)
        self._backoff_factor = positive("GradScaler:set_backoff_factor", 1, "backoff_factor", v, true)
    end
    function GradScaler:set_growth_interval(v)
        if not common.is_int(v) or v < 1 then
            fail("GradScaler:set_growth_interval", 1, "growth_interval must be a positive integer, got "
                 .. tostring(v))
        end
        self._growth_interval = math.tointeger(v)
    end

    -- PyTorch's keys; empty when disabled
    function GradScaler:state_dict()
        if not self._enabled then return {} end
        return {scale = self._scale, growth_factor = self._growth_factor, backoff_factor = self._backoff_factor,
                growth_interval = self._growth_interval, _growth_tracker = self._growth_tracker}
    end

    -- checked whole before anything changes
    function GradScaler:load_state_dict(sd)
        local fname = "GradScaler:load_state_dict"
        if not self._enabled then
            caller.error(fname .. ": load_state_dict() should only be called if the GradScaler is enabled")
        end
        if type(sd) ~= "table" then fail(fname, 1, "state_dict must be a table, got " .. type(sd)) end
        if next(sd) == nil then
            caller.error(fname .. ": the source state dict is empty, possibly because it was saved from a "
                         .. "disabled GradScaler")
        end
        for k in pairs(sd) do
            if k ~= "scale" and k ~= "growth_factor" and k ~= "backoff_factor" and k ~= "growth_interval"
               and k ~= "_growth_tracker" then
                fail(fname, 1, "unknown key '" .. tostring(k) .. "'")
            end
        end
        local scale = positive(fname, 1, "scale", sd.scale)
        local growth = positive(fname, 1, "growth_factor", sd.growth_factor, false)
        local backoff = positive(fname, 1, "backoff_factor", sd.backoff_factor, true)
        local gi, gt = sd.growth_interval, sd._growth_tracker
        if not common.is_int(gi) or gi < 1 then
            fail(fname, 1, "growth_interval must be a positive integer, got " .. tostring(gi))
        end
        if not common.is_int(gt) or gt < 0 or gt >= gi then
            fail(fname, 1, "_growth_tracker must be an integer in [0, growth_interval), got " .. tostring(gt))
        end
        self._scale, self._growth_factor, self._backoff_factor = f32(scale), growth, backoff
        self._growth_interval, self._growth_tracker = math.tointeger(gi), math.tointeger(gt)
    end

    function GradScaler:__tostring()
        return string.format("GradScaler(scale=%g, growth_factor=%g, backoff_factor=%g, growth_interval=%d%s)",
                             self._scale, self._growth_factor, self._backoff_factor, self._growth_interval,
                             self._enabled and "" or ", enabled=false")
    end

    ---------------------------------------------------------------------
    -- tide.autocast(dtype, fn, ...) runs fn(...) in a region and returns
    -- its results; tide.autocast(dtype) opens a region and returns it, to
    -- be closed by a <close> variable (or region:close()). An options table
    -- may follow dtype: {enabled = true}; enabled = false opens a region
    -- that casts nothing (float32 inside a bfloat16 region).
    ---------------------------------------------------------------------
    local Region = {}
    Region.__index = Region
    Region.__name = "tide.autocast region"
    function Region:close()
        if self._open then
            core._autocast_exit(self._depth) -- raises when regions are closed out of order
            self._open = false
        end
    end
    Region.__close = Region.close
    function Region:__tostring()
        return string.format("autocast region (%s%s)", self._dtype, self._open and "" or ", closed")
    end

    local function open(fname, dtype, opts)
        if dtype ~= nil and type(dtype) ~= "string" then
            fail(fname, 1, "dtype must be \"bfloat16\" or \"float16\", got " .. type(dtype))
        end
        opts = check_options(fname, 2, opts, {enabled = true})
        local enabled = opts.enabled
        if enabled == nil then enabled = true end
        if type(enabled) ~= "boolean" then fail(fname, 2, "enabled must be a boolean, got " .. type(enabled)) end
        dtype = dtype or "bfloat16"
        if dtype ~= "bfloat16" and dtype ~= "float16" then
            fail(fname, 1, "dtype must be \"bfloat16\" or \"float16\", got \"" .. dtype .. "\"")
        end
        local depth = core._autocast_enter(dtype, enabled)
        return setmetatable({_depth = depth, _open = true, _dtype = enabled and dtype or "disabled"}, Region)
    end

    function tide.autocast(dtype, ...)
        local fname = "autocast"
        local opts, first = nil, 2
        local a = ...
        -- an options table is a plain one; a module is called like a function
        if type(a) == "table" and getmetatable(a) == nil then opts, first = a, 3 end
        local fn = select(first - 1, ...)
        if fn == nil then
            if select("#", ...) > first - 1 then
                fail(fname, first, "expected a function to run in the region, got nil")
            end
            return open(fname, dtype, opts)
        end
        local mt = type(fn) == "table" and getmetatable(fn)
        if type(fn) ~= "function" and not (mt and mt.__call) then
            fail(fname, first, "expected a function to run in the region or an options table, got " .. type(fn))
        end
        local region = open(fname, dtype, opts)
        local r = table.pack(pcall(fn, select(first, ...)))
        region:close()
        if not r[1] then error(r[2], 0) end
        return table.unpack(r, 2, r.n)
    end

    tide.amp = tide.amp or {}
    tide.amp.GradScaler = setmetatable({}, {
        __call = function(_, opts) return new(opts) end,
        __name = "tide.amp.GradScaler",
    })
end

return M
