-- Gradient clipping, as torch.nn.utils.clip_grad: tide.nn.utils'
-- clip_grad_norm_ and clip_grad_value_.
local caller = require "tide.caller"
local common = require "tide.optim.common"
local fail, check_options = common.fail, common.check_options

local M = {}

function M.install(tide, core)
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
        opts = check_options(fname, 3, opts, {norm_type = true, error_if_nonfinite = true})
        local p = opts.norm_type
        if p == nil then p = 2 end
        if p == "inf" then p = math.huge end
        if type(p) ~= "number" or not (p > 0) then -- luacheck: ignore 581 (NaN fails too)
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
            caller.error(string.format("clip_grad_norm_: the total norm of order %s for gradients from `parameters` "
                .. "is non-finite, so it cannot be clipped. To disable this error and scale the gradients by the "
                .. "non-finite norm anyway, set the option error_if_nonfinite = false", tostring(p)))
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
