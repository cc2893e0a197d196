-- The optimizers of tide.optim: SGD, Adam, AdamW and RMSprop, each a spec
-- for base.lua's define; the update is one fused C pass per parameter, or
-- one C call per group where update_list is given.
local M = {}

function M.install(base, core)
    local define, REQUIRED, zeros_like = base.define, base.REQUIRED, base.zeros_like
    local number_ge, number_any, boolean, betas = base.number_ge, base.number_any, base.boolean, base.betas

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
            defaults = {lr = 1e-3, betas = {0.9, 0.999}, eps = 1e-8, weight_decay = wd, amsgrad = false,
                        maximize = false},
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
end

return M
