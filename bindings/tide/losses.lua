-- The losses in Lua: tide.F.<name> (the C functions of tide.core) and a
-- module tide.nn.<Name>Loss{options} for each, plus class-balanced weights.
--
-- A loss module keeps its options and passes them as the trailing options
-- table: nn.CrossEntropyLoss{label_smoothing = 0.1}(logits, target) is
-- F.cross_entropy(logits, target, {label_smoothing = 0.1}).

local M = {}

-- functional name -> module name (PyTorch's, where PyTorch has the loss)
M.names = {
    {"cross_entropy", "CrossEntropyLoss"},
    {"nll_loss", "NLLLoss"},
    {"focal_loss", "FocalLoss"},
    {"poly1_cross_entropy", "Poly1CrossEntropyLoss"},
    {"binary_cross_entropy", "BCELoss"},
    {"binary_cross_entropy_with_logits", "BCEWithLogitsLoss"},
    {"sigmoid_focal_loss", "SigmoidFocalLoss"},
    {"asymmetric_loss", "AsymmetricLoss"},
    {"multilabel_soft_margin_loss", "MultiLabelSoftMarginLoss"},
    {"soft_margin_loss", "SoftMarginLoss"},
    {"mse_loss", "MSELoss"},
    {"l1_loss", "L1Loss"},
    {"smooth_l1_loss", "SmoothL1Loss"},
    {"huber_loss", "HuberLoss"},
    {"kl_div", "KLDivLoss"},
    {"poisson_nll_loss", "PoissonNLLLoss"},
    {"gaussian_nll_loss", "GaussianNLLLoss"},
    {"ctc_loss", "CTCLoss"},
    {"multi_margin_loss", "MultiMarginLoss"},
    {"multilabel_margin_loss", "MultiLabelMarginLoss"},
    {"hinge_embedding_loss", "HingeEmbeddingLoss"},
    {"cosine_embedding_loss", "CosineEmbeddingLoss"},
    {"margin_ranking_loss", "MarginRankingLoss"},
    {"triplet_margin_loss", "TripletMarginLoss"},
}

-- forward(self, ...) = F.<fname>(..., self.options), compiled per loss so
-- that the call names the loss: errors raised inside it then read
-- "bad argument #2 to 'cross_entropy' (...)", as a direct call's do
local function forward_for(fname, F)
    local src = string.format([[
local F, unpack, select = ...
return function(self, ...)
    local n = select("#", ...)
    local args = {...}
    args[n + 1] = self.options
    return F.%s(unpack(args, 1, n + 1))
end]], fname)
    return assert(load(src, "=tide.nn." .. fname, "t"))(F, table.unpack, select)
end

local function module_class(fname, mname, F)
    local class = {__name = "tide.nn." .. mname}
    class.__index = class
    class.forward = forward_for(fname, F)
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
        __call = function(_, options)
            if options ~= nil and type(options) ~= "table" then
                error(string.format("bad argument #1 to '%s' (options table expected, got %s)", mname,
                                    type(options)), 2)
            end
            local copy = {}
            for k, v in pairs(options or {}) do copy[k] = v end
            return setmetatable({options = copy, loss = fname}, class)
        end,
    })
end

-- add F.<name> and nn.<Name> for every loss tide.core provides
function M.install(core, F, nn)
    for _, pair in ipairs(M.names) do
        local fname, mname = pair[1], pair[2]
        if core[fname] then
            F[fname] = core[fname]
            nn[mname] = module_class(fname, mname, F)
        end
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
