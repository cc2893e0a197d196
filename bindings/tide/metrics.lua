-- tide.metrics: accuracy, calibration and likelihood of a classifier's
-- outputs. Every function takes logits as a float tensor (N, C) (classes
-- by softmax) or (N) / (N, 1) (binary, by sigmoid; labels 0/1), and
-- 0-based int64 labels (N); {probs = true} says the first argument holds
-- probabilities already. The work is done by tensor ops in float64 on the
-- CPU, so 60,000 x 10 outputs take milliseconds.
local core = require "tide.core"

local M = {}

-- raise "bad argument #n to 'fname' (msg)" at the caller's line (the first
-- stack level outside this file)
local HERE = debug.getinfo(1, "S").source
local function argfail(fname, n, msg)
    local level = 2
    while true do
        local info = debug.getinfo(level, "S")
        if not info or info.source ~= HERE then break end
        level = level + 1
    end
    error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), level)
end

local known = require("tide.caller").known

-- reject option names a function does not know
local function check_opts(fname, n, opts, allowed)
    if opts == nil then return {} end
    if type(opts) ~= "table" or core.is_tensor(opts) then
        argfail(fname, n, "options must be a table, got " .. (core.is_tensor(opts) and "a tensor" or type(opts)))
    end
    for k in pairs(opts) do
        if not allowed[k] then
            argfail(fname, n, "unknown option '" .. tostring(k) .. "'; known: " .. known(allowed))
        end
    end
    return opts
end

local function shape_str(t)
    local s = t:shape()
    local parts = {}
    for i = 1, #s do parts[i] = tostring(s[i]) end
    return "(" .. table.concat(parts, ", ") .. ")"
end

-- Check logits and labels; returns a table describing the input:
--   kind = "multi" | "binary" | "pred", x (float64 CPU, detached; (N, C),
--   (N) or int64 predictions), y (int64 CPU labels), n, c.
-- allow_pred: int64 predicted classes are accepted as the first argument;
-- allow_empty: N = 0 is fine; c_opt: num_classes from the options.
local function inputs(fname, logits, labels, opts, allow_pred, allow_empty, c_opt)
    if not core.is_tensor(logits) then
        argfail(fname, 1, "logits must be a tensor, got " .. type(logits))
    end
    if not core.is_tensor(labels) then
        argfail(fname, 2, "labels must be a tensor, got " .. type(labels))
    end
    local d = logits:dtype()
    local info = {}
    if d == "int64" then
        if not allow_pred then
            argfail(fname, 1, "logits must be a float tensor, got int64")
        end
        if opts.probs then
            argfail(fname, 1, "probs = true needs float probabilities, got int64 predictions")
        end
        if logits:dim() ~= 1 then
            argfail(fname, 1, "predicted classes must be a 1-dim int64 tensor, got shape " .. shape_str(logits))
        end
        info.kind = "pred"
    elseif d == "float32" or d == "float64" or d == "bfloat16" or d == "float16" then
        local nd = logits:dim()
        if nd == 1 or (nd == 2 and logits:size(1) == 1) then
            info.kind = "binary"
        elseif nd == 2 then
            info.kind = "multi"
        else
            argfail(fname, 1, "logits must be (N, C), (N, 1) or (N), got shape " .. shape_str(logits))
        end
    else
        argfail(fname, 1, "logits must be a float tensor, got " .. d)
    end
    if labels:dtype() ~= "int64" then
        argfail(fname, 2, "labels must be an int64 tensor of 0-based classes, got " .. labels:dtype())
    end
    if labels:dim() ~= 1 then
        argfail(fname, 2, "labels must be a 1-dim tensor, got shape " .. shape_str(labels))
    end
    local n = logits:size(0)
    if labels:size(0) ~= n then
        argfail(fname, 2, string.format("labels must have %d entries to match logits, got %d", n, labels:size(0)))
    end
    if n == 0 and not allow_empty then
        argfail(fname, 1, "logits hold no samples (N = 0): the metric is undefined")
    end
    local x = logits:detach()
    if x:device() ~= "cpu" then x = x:cpu() end
    local y = labels:detach()
    if y:device() ~= "cpu" then y = y:cpu() end
    y = y:contiguous()

    local c
    if info.kind == "multi" then
        c = logits:size(1)
        x = x:double()
    elseif info.kind == "binary" then
        c = 2
        x = x:double():reshape({n})
    end
    if c_opt ~= nil then
        if math.type(c_opt) ~= "integer" or c_opt < 1 then
            argfail(fname, 3, "num_classes must be a positive integer, got " .. tostring(c_opt))
        end
        if c and c ~= c_opt then
            argfail(fname, 3, string.format("num_classes is %d but logits have %d classes", c_opt, c))
        end
        c = c_opt
    end
    if info.kind == "pred" and n > 0 then
        local lo, hi = x:min():item(), x:max():item()
        if c and (lo < 0 or hi >= c) then
            argfail(fname, 1, string.format("predicted class %d is outside [0, %d)", lo < 0 and lo or hi, c))
        elseif lo < 0 then
            argfail(fname, 1, string.format("predicted class %d is negative", lo))
        end
    end
    if n > 0 then
        local lo, hi = y:min():item(), y:max():item()
        local bad = lo < 0 and lo or (c and hi >= c and hi)
        if bad and info.kind == "binary" then
            argfail(fname, 2, string.format("label %d is not 0 or 1 (binary logits)", bad))
        elseif bad then
            argfail(fname, 2, string.format("label %d is outside [0, %d)", bad, c))
        end
    end
    if info.kind == "pred" and not c then
        -- the classes seen; confusion_matrix and per_class_accuracy ask
        -- for num_classes before getting here
        c = 1 + math.max(n > 0 and x:max():item() or 0, n > 0 and y:max():item() or 0)
    end
    if opts.probs and info.kind ~= "pred" and n > 0 then
        local lo, hi = x:min():item(), x:max():item()
        if lo < 0 or hi > 1 or lo ~= lo or hi ~= hi then
            argfail(fname, 1, string.format("probs = true but the values span [%g, %g], not [0, 1]", lo, hi))
        end
    end
    info.x, info.y, info.n, info.c, info.probs = x, y, n, c, opts.probs and true or false
    return info
end

-- predicted classes (int64 (N))
local function predictions(info)
    if info.kind == "pred" then return info.x end
    if info.kind == "multi" then return info.x:argmax(1) end
    local threshold = info.probs and 0.5 or 0
    return info.x:gt(threshold):long()
end

-- probabilities: (N, C) for multi-class, p (N) of class 1 for binary
local function probabilities(info)
    if info.probs then return info.x end
    if info.kind == "multi" then return info.x:softmax(1) end
    return info.x:sigmoid()
end

-- confidence of the prediction (N) and whether it is right (float64 0/1)
local function confidence(info)
    local p = probabilities(info)
    local pred = predictions(info)
    local conf
    if info.kind == "multi" then
        conf = p:max(1)
    else
        conf = p:maximum(1 - p)
    end
    return conf, pred:eq(info.y):double()
end

local function correct_count(info)
    return predictions(info):eq(info.y):double():sum():item()
end

-- ## accuracy(logits | predictions, labels) -> number
function M.accuracy(logits, labels, opts)
    opts = check_opts("accuracy", 3, opts, {probs = true})
    local info = inputs("accuracy", logits, labels, opts, true, false)
    return correct_count(info) / info.n
end

-- ## topk_accuracy(logits, labels, k) -> number
-- A sample counts when fewer than k classes score strictly higher than
-- its label (ties count in its favour).
function M.topk_accuracy(logits, labels, k, opts)
    opts = check_opts("topk_accuracy", 4, opts, {probs = true})
    local info = inputs("topk_accuracy", logits, labels, opts, false, false)
    if math.type(k) ~= "integer" or k < 1 then
        argfail("topk_accuracy", 3, "k must be a positive integer, got " .. tostring(k))
    end
    if k > info.c then
        argfail("topk_accuracy", 3, string.format("k is %d but there are only %d classes", k, info.c))
    end
    if info.kind == "binary" then
        if k >= 2 then return 1.0 end
        return correct_count(info) / info.n
    end
    local x = info.x
    local target = x:gather(1, info.y:unsqueeze(1))
    local higher = x:gt(target):double():sum(1)
    return higher:lt(k):double():sum():item() / info.n
end

-- ## per_class_accuracy(logits | predictions, labels, {num_classes}) -> float64 (C)
function M.per_class_accuracy(logits, labels, opts)
    opts = check_opts("per_class_accuracy", 3, opts, {num_classes = true, probs = true})
    if logits ~= nil and core.is_tensor(logits) and logits:dtype() == "int64" and opts.num_classes == nil then
        argfail("per_class_accuracy", 3, "num_classes is needed with predicted classes")
    end
    local info = inputs("per_class_accuracy", logits, labels, opts, true, true, opts.num_classes)
    local c = info.c
    local total = core.zeros({c}, {dtype = "float64"})
    if info.n == 0 then return total / total end
    local right = predictions(info):eq(info.y):double()
    total = total:scatter_add(0, info.y, core.ones({info.n}, {dtype = "float64"}))
    local hits = core.zeros({c}, {dtype = "float64"}):scatter_add(0, info.y, right)
    return hits / total
end

-- ## confusion_matrix(logits | predictions, labels, {num_classes}) -> int64 (C, C)
function M.confusion_matrix(logits, labels, opts)
    opts = check_opts("confusion_matrix", 3, opts, {num_classes = true, probs = true})
    if logits ~= nil and core.is_tensor(logits) and logits:dtype() == "int64" and opts.num_classes == nil then
        argfail("confusion_matrix", 3, "num_classes is needed with predicted classes")
    end
    local info = inputs("confusion_matrix", logits, labels, opts, true, true, opts.num_classes)
    local c = info.c
    local flat = core.zeros({c * c}, {dtype = "int64"})
    if info.n > 0 then
        local cell = info.y * c + predictions(info)
        flat = flat:scatter_add(0, cell, core.ones({info.n}, {dtype = "int64"}))
    end
    return flat:view({c, c})
end

local function check_bins(fname, opts)
    local b = opts.bins
    if b == nil then return 15 end
    if math.type(b) ~= "integer" or b < 1 then
        argfail(fname, 3, "bins must be a positive integer, got " .. tostring(b))
    end
    return b
end

-- per-bin sums: returns a list of {lo, hi, count, conf_sum, acc_sum}
-- bin i (0-based) of B holds confidence in (i/B, (i+1)/B]
local function binned(info, nbins)
    local conf, right = confidence(info)
    local out = {}
    for i = 0, nbins - 1 do
        local lo, hi = i / nbins, (i + 1) / nbins
        local mask = conf:gt(lo):mul(conf:le(hi)):double()
        out[i + 1] = {
            lo = lo, hi = hi,
            count = mask:sum():item(),
            conf_sum = (conf * mask):sum():item(),
            acc_sum = (right * mask):sum():item(),
        }
    end
    return out
end

-- ## ece(logits, labels, {bins = 15}) -> number
function M.ece(logits, labels, opts)
    opts = check_opts("ece", 3, opts, {bins = true, probs = true})
    local nbins = check_bins("ece", opts)
    local info = inputs("ece", logits, labels, opts, false, false)
    local e = 0
    for _, b in ipairs(binned(info, nbins)) do
        if b.count > 0 then
            e = e + math.abs(b.acc_sum - b.conf_sum) / info.n
        end
    end
    return e
end

-- ## reliability(logits, labels, {bins = 15}) -> {{lo, hi, confidence, accuracy, count}, ...}
function M.reliability(logits, labels, opts)
    opts = check_opts("reliability", 3, opts, {bins = true, probs = true})
    local nbins = check_bins("reliability", opts)
    local info = inputs("reliability", logits, labels, opts, false, false)
    local out = {}
    for i, b in ipairs(binned(info, nbins)) do
        local count = math.tointeger(b.count) or b.count
        out[i] = {lo = b.lo, hi = b.hi, count = count}
        if count > 0 then
            out[i].confidence = b.conf_sum / b.count
            out[i].accuracy = b.acc_sum / b.count
        end
    end
    return out
end

-- ## brier(logits, labels) -> number
function M.brier(logits, labels, opts)
    opts = check_opts("brier", 3, opts, {probs = true})
    local info = inputs("brier", logits, labels, opts, false, false)
    local p = probabilities(info)
    if info.kind == "binary" then
        return ((p - info.y:double()) ^ 2):mean():item()
    end
    local onehot = core.zeros({info.n, info.c}, {dtype = "float64"}):scatter(1, info.y:unsqueeze(1), 1)
    return ((p - onehot) ^ 2):sum():item() / info.n
end

-- mean NLL of float64 logits x (N, C) / (N) at scale s (logits * s)
local function nll_of(kind, x, y, yf, s)
    if kind == "multi" then
        local logp = (s == 1 and x or x * s):log_softmax(1)
        return -logp:gather(1, y:unsqueeze(1)):mean():item()
    end
    return core.binary_cross_entropy_with_logits(s == 1 and x or x * s, yf):item()
end

-- ## nll(logits, labels) -> number
function M.nll(logits, labels, opts)
    opts = check_opts("nll", 3, opts, {probs = true})
    local info = inputs("nll", logits, labels, opts, false, false)
    local x, y = info.x, info.y
    if info.probs then
        if info.kind == "multi" then
            return -x:gather(1, y:unsqueeze(1)):log():mean():item()
        end
        local yf = y:double()
        local ll = yf * x:log() + (1 - yf) * (1 - x):log()
        -- 0 * log(0) is 0 here, as the likelihood of a certain right answer
        ll = ll:masked_fill(yf:eq(1):mul(x:eq(1)), 0):masked_fill(yf:eq(0):mul(x:eq(0)), 0)
        return -ll:mean():item()
    end
    return nll_of(info.kind, x, y, info.kind == "binary" and y:double() or nil, 1)
end

-- first and second derivative of the mean NLL of x * s in s; the NLL is
-- convex in s (the second derivative is a mean of variances)
local function nll_derivs(kind, x, y, yf, s)
    if kind == "multi" then
        local p = (x * s):softmax(1)
        local ex = (p * x):sum(1)
        local ex2 = (p * x * x):sum(1)
        local xy = x:gather(1, y:unsqueeze(1)):reshape({-1})
        local g = (ex - xy):mean():item()
        local h = (ex2 - ex * ex):mean():item()
        return g, h
    end
    local p = (x * s):sigmoid()
    local g = ((p - yf) * x):mean():item()
    local h = (p * (1 - p) * x * x):mean():item()
    return g, h
end

-- ## temperature_scale(logits, labels, {max_iter = 100}) -> T
-- Minimises nll(logits / T) over T in [0.05, 20] by safeguarded Newton on
-- s = 1 / T (a convex problem in s): Newton steps inside a bracket that
-- the sign of the derivative keeps shrinking, bisection when a step leaves it.
function M.temperature_scale(logits, labels, opts)
    opts = check_opts("temperature_scale", 3, opts, {max_iter = true, probs = true})
    local max_iter = opts.max_iter or 100
    if math.type(max_iter) ~= "integer" or max_iter < 1 then
        argfail("temperature_scale", 3, "max_iter must be a positive integer, got " .. tostring(max_iter))
    end
    local info = inputs("temperature_scale", logits, labels, opts, false, false)
    local x, y = info.x, info.y
    if info.probs then
        if info.kind == "multi" then
            x = x:log()
        else
            x = x:log() - (1 - x):log()
        end
        if x:abs():max():item() == math.huge then
            argfail("temperature_scale", 1, "probabilities of exactly 0 or 1 have no finite logit")
        end
    end
    local yf = info.kind == "binary" and y:double() or nil
    local lo, hi = 1 / 20, 1 / 0.05
    local glo = nll_derivs(info.kind, x, y, yf, lo)
    if glo >= 0 then return 1 / lo end
    local ghi = nll_derivs(info.kind, x, y, yf, hi)
    if ghi <= 0 then return 1 / hi end
    local s = 1
    for _ = 1, max_iter do
        local g, h = nll_derivs(info.kind, x, y, yf, s)
        if g == 0 then break end
        if g > 0 then hi = s else lo = s end
        local nxt = h > 0 and s - g / h or nil
        if not nxt or nxt <= lo or nxt >= hi then nxt = 0.5 * (lo + hi) end
        local step = math.abs(nxt - s)
        s = nxt
        if step <= 1e-12 * s or hi - lo <= 1e-12 * s then break end
    end
    return 1 / s
end

return M
