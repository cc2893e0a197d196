-- The losses in Lua: tide.F.<name> (the C functions of tide.core) and a
-- module tide.nn.<Name>Loss{options} for each row of the loss table, plus
-- class-balanced weights.
--
-- A loss module keeps its options and passes them as the trailing options
-- table: nn.CrossEntropyLoss{label_smoothing = 0.1}(logits, target) is
-- F.cross_entropy(logits, target, {label_smoothing = 0.1}).

local M = {}

-- the loss table (runtime/loss_table.c): one row per loss with its module
-- name, inputs and options; every F.<name> and nn.<Name> comes from it
local core = require "tide.core"
M.table = core.loss_table()

-- functional name -> module name, in the table's order
M.names = {}
for i, row in ipairs(M.table) do M.names[i] = {row.name, row.module} end

local function module_class(row)
    local mname = row.module
    local class = {__name = "tide.nn." .. mname, loss = row}
    class.__index = class
    -- forward(self, ...) is F.<name>(..., self.options), in C, so that an
    -- error names the loss and the caller's line
    class.forward = core.loss_module_forward[row.name]
    class.__call = class.forward
    function class.__tostring(self)
        local keys = {}
        for k, v in pairs(self.options) do
            local shown = type(v) == "userdata" and "tensor" or tostring(v)
            keys[#keys + 1] = k .. " = " .. shown
        end
        table.sort(keys)
        return mname .. "{" .. table.concat(keys, ", ") .. "}"
    end
    return setmetatable(class, {
        -- the options are checked here, so a misspelt one is an error at
        -- the line that makes the module, not at its first call
        __call = function(_, options)
            if options ~= nil and type(options) ~= "table" then
                error(string.format("bad argument #1 to '%s' (options table expected, got %s)", mname,
                                    type(options)), 2)
            end
            local copy = {}
            for k, v in pairs(options or {}) do copy[k] = v end
            local bad = core.loss_check_options(row.name, copy)
            if bad then error(string.format("bad argument #1 to '%s' (%s)", mname, bad), 2) end
            return setmetatable({options = copy, loss = row.name}, class)
        end,
    })
end

-- add F.<name> and nn.<Name> for every row of the loss table
function M.install(core_, F, nn)
    for _, row in ipairs(M.table) do
        F[row.name] = core_[row.name]
        nn[row.module] = module_class(row)
    end
    nn.class_balanced_weights = M.class_balanced_weights
end

-- Cui et al. 2019, "Class-Balanced Loss Based on Effective Number of
-- Samples": w_c = (1 - beta) / (1 - beta^n_c), scaled so the weights sum to
-- the number of classes. counts: a Lua list or a 1-dim tensor.
function M.class_balanced_weights(counts, beta)
    local tide = require "tide"
    if tide.is_tensor(counts) then counts = counts:totable() end
    if type(counts) ~= "table" or #counts == 0 then
        error("bad argument #1 to 'class_balanced_weights' (a non-empty list or tensor of counts expected)", 2)
    end
    beta = beta == nil and 0.9999 or beta
    if type(beta) ~= "number" or beta < 0 or beta >= 1 then
        error("bad argument #2 to 'class_balanced_weights' (beta must be a number in [0, 1), got "
              .. tostring(beta) .. ")", 2)
    end
    local w, total = {}, 0
    for c, n in ipairs(counts) do
        if type(n) ~= "number" or n <= 0 then
            error(string.format("bad argument #1 to 'class_balanced_weights' (class %d has count %s; "
                                .. "every class needs at least one sample)", c - 1, tostring(n)), 2)
        end
        w[c] = (1 - beta) / (1 - beta ^ n)
        if beta == 0 then w[c] = 1 end
        total = total + w[c]
    end
    for c = 1, #w do w[c] = w[c] * #w / total end
    return tide.tensor(w)
end

return M
