-- Class imbalance: smallcnn trained on a Fashion-MNIST training
-- set in which 90% of the images are of one class (--majority, default 0,
-- T-shirt/top; --fraction, default 0.9) and the rest are shared evenly by
-- the other nine classes (tide.data.imbalance); tested on the whole,
-- balanced test set (1,000 images per class). Four losses, everything else
-- equal (the same initial weights, data order, optimizer and schedule):
--   ce       cross-entropy
--   wce      cross-entropy weighted by inverse class frequency,
--            w_c = N / (K n_c) (sklearn's "balanced")
--   focal    focal loss, gamma 2, no alpha (Lin et al. 2017)
--   cb       cross-entropy weighted by class-balanced weights,
--            tide.nn.class_balanced_weights(counts, --beta 0.999)
--            (Cui et al. 2019)
-- Reports overall test accuracy, the majority class's accuracy against the
-- mean over the other classes, macro-averaged accuracy and F1, NLL and ECE;
-- a per-class bar chart and accuracy curves as PNG.
--   tide scripts/imbalance.lua [--epochs N] [--subset N] [--majority C] [--fraction F] ... (--help)
local tide = require "tide"
local X = tide.experiment
local F = tide.F
local M = tide.metrics

local cfg = X.parse(arg, {
    name = "imbalance",
    about = "smallcnn on an imbalanced Fashion-MNIST training set (--fraction of the images from class\n"
         .. "--majority, the rest shared evenly by the other classes; tide.data.imbalance), tested on the\n"
         .. "balanced test set: CE vs inverse-frequency weighted CE vs focal (gamma 2) vs class-balanced CE.\n"
         .. "--subset N is the size of the imbalanced training set (0: as large as the data allows, 6,667\n"
         .. "images at 0.9). Adam with a cosine schedule stepped per batch; short runs (subset x epochs\n"
         .. "<= 20,000 images) use batch 16 unless --batch-size is given.",
    defaults = {epochs = 15, subset = 0, batch_size = 128, lr = 2e-3, model = "smallcnn"},
    flags = {
        {name = "majority", type = "integer", min = 0, max = 9, default = 0,
         help = "the class that holds --fraction of the training images"},
        {name = "fraction", type = "number", default = 0.9, meta = "F",
         check = function(v) if not (v > 0 and v < 1) then return "expects a number in (0, 1)" end end,
         help = "the majority class's share of the training set, in (0, 1)"},
        {name = "beta", type = "number", default = 0.999, meta = "B",
         check = function(v) if not (v >= 0 and v < 1) then return "expects a number in [0, 1)" end end,
         help = "beta of the class-balanced weights (Cui et al.: 0.9, 0.99, 0.999, 0.9999)"},
    },
    adjust = function(c, given)
        if not given.batch_size and c.subset > 0 and c.subset * c.epochs <= 20000 then c.batch_size = 16 end
    end,
})

-- the training set: --subset images (0: as many as possible) drawn from all
-- 60,000, --fraction of them of class --majority; the test set: all 10,000
local full = X.fashion_mnist({subset = 0})
local K = full.num_classes
local ok, skewed = pcall(tide.data.imbalance, full.train, {majority = cfg.majority, fraction = cfg.fraction,
                                                           size = cfg.subset > 0 and cfg.subset or nil,
                                                           seed = cfg.seed})
if not ok then
    io.stderr:write(string.format("imbalance: --subset %d with --fraction %g: %s\n", cfg.subset, cfg.fraction,
                                  (tostring(skewed):gsub("^imbalance: ", ""))))
    os.exit(2)
end
local data = {}
for k, v in pairs(full) do data[k] = v end
data.train = skewed

local counts = {}
for c = 1, K do counts[c] = 0 end
for _, y in ipairs(skewed.labels:totable()) do counts[y + 1] = counts[y + 1] + 1 end
for c = 1, K do
    if counts[c] == 0 then
        io.stderr:write(string.format("imbalance: class %d (%s) has no training image; raise --subset or lower "
                                      .. "--fraction\n", c - 1, full.classes[c]))
        os.exit(2)
    end
end
local N = #skewed
local maj = cfg.majority + 1

-- inverse frequency, N / (K n_c): the mean weight over the training images
-- is 1 (the weighted "mean" divides by the weight sum, so the scale does not
-- change the loss; it only makes the printed weights readable)
local inv = {}
for c = 1, K do inv[c] = N / (K * counts[c]) end
local w_inv = tide.tensor(inv):to(cfg.device)
local cb = tide.nn.class_balanced_weights(counts, cfg.beta)
local cb_list = cb:totable()
local w_cb = cb:float():to(cfg.device)

local variants = {
    {"ce", function(z, y) return F.cross_entropy(z, y) end},
    {"wce", function(z, y) return F.cross_entropy(z, y, {weight = w_inv}) end},
    {"focal", function(z, y) return F.focal_loss(z, y, {gamma = 2}) end},
    {"cb", function(z, y) return F.cross_entropy(z, y, {weight = w_cb}) end},
}

-- the majority class's test accuracy, the mean over the others, the
-- macro-averaged accuracy and F1, every epoch
local function class_stats(logits, labels)
    local acc = M.per_class_accuracy(logits, labels, {num_classes = K}):totable()
    local cm = M.confusion_matrix(logits, labels, {num_classes = K})
    local predicted = cm:sum(0):totable()
    local others, macro, f1 = 0, 0, 0
    for c = 1, K do
        macro = macro + acc[c]
        if c ~= maj then others = others + acc[c] end
        local tp = cm:get(c - 1, c - 1)
        local p = predicted[c] > 0 and tp / predicted[c] or 0
        local r = acc[c]
        f1 = f1 + ((p + r) > 0 and 2 * p * r / (p + r) or 0)
    end
    return {majority_acc = acc[maj], others_acc = others / (K - 1), macro_acc = macro / K, macro_f1 = f1 / K,
            per_class = acc}
end

local ex = X.new(cfg)
local steps = cfg.epochs * math.ceil(N / cfg.batch_size)
for _, v in ipairs(variants) do
    ex:train_classifier{
        variant = v[1],
        loss = v[2],
        eval_loss = function(z, y) return F.cross_entropy(z, y) end,
        data = data,
        model = function() return X.model(cfg, data) end,
        optimizer = function(model) return X.optimizer(cfg, model, {name = "adam"}) end,
        scheduler = function(opt) return tide.optim.CosineAnnealingLR(opt, steps) end,
        schedule = "batch",
        on_epoch = function(_, _, _, logits, labels)
            local s = class_stats(logits, labels)
            return {majority_acc = s.majority_acc, others_acc = s.others_acc, macro_acc = s.macro_acc,
                    macro_f1 = s.macro_f1}
        end,
    }
end

local rows, bars = {}, {}
for _, v in ipairs(variants) do
    local r = ex.results[v[1]]
    local last = r.history[#r.history]
    local s = class_stats(r.logits, r.labels)
    rows[#rows + 1] = {v[1], 100 * last.train_acc, 100 * last.test_acc, 100 * s.majority_acc, 100 * s.others_acc,
                       100 * s.macro_acc, 100 * s.macro_f1, last.test_nll, last.ece}
    bars[#bars + 1] = {name = v[1], values = s.per_class, style = ex:style(v[1])}
end

local function list(t, fmt)
    local out = {}
    for i, x in ipairs(t) do out[i] = string.format(fmt, x) end
    return table.concat(out, ", ")
end
local weights = {
    {"inverse frequency (wce)", table.unpack(inv)},
    {string.format("class-balanced, beta %g (cb)", cfg.beta), table.unpack(cb_list)},
}
local wcols = {"weights"}
for c = 1, K do wcols[#wcols + 1] = {name = tostring(c - 1), fmt = "%.3f"} end

local name = full.classes[maj]
local minor = maj == K and 1 or K   -- one of the minority classes, for the notes
local function eff(n) return cfg.beta == 0 and 1 or (1 - cfg.beta ^ n) / (1 - cfg.beta) end
local plots = {
    {title = "per-class test accuracy", path = tide.plot.bars{
        path = ex:path("per_class.png"), title = "per-class test accuracy (majority: " .. name .. ")",
        ylabel = "accuracy", yrange = {0, 1.05}, categories = full.classes, series = bars}},
    {title = "test accuracy per epoch", path = ex:plot_curves{field = "test_acc", title = "test accuracy",
                                                              ylabel = "accuracy"}},
    {title = "mean test accuracy over the minority classes per epoch",
     path = ex:plot_curves{field = "others_acc", title = "mean accuracy of the other classes", ylabel = "accuracy"}},
    {title = "majority-class test accuracy per epoch",
     path = ex:plot_curves{field = "majority_acc", title = "accuracy of the majority class (" .. name .. ")",
                           ylabel = "accuracy"}},
    {title = "reliability, all losses", path = ex:plot_reliability{title = "reliability (test set, last epoch)"}},
}

ex:report{
    title = string.format("Class imbalance: CE vs weighted CE vs focal vs class-balanced (%d%% %s)",
                          math.floor(100 * counts[maj] / N + 0.5), name),
    text = string.format("smallcnn trained for %d epoch%s on %d Fashion-MNIST training images drawn by "
                         .. "`tide.data.imbalance` (seed %d): %d of class %d (%s, %.2f%%) and %s of the other "
                         .. "classes (%s). Tested on all %d test images (balanced, %d per class). Adam, lr %g "
                         .. "with cosine decay per batch, batch %d; every variant starts from the same weights "
                         .. "and sees the same batches.",
                         cfg.epochs, cfg.epochs == 1 and "" or "s", N, cfg.seed, counts[maj], cfg.majority, name,
                         100 * counts[maj] / N, N - counts[maj], list((function()
                             local t = {}
                             for c = 1, K do if c ~= maj then t[#t + 1] = counts[c] end end
                             return t end)(), "%d"),
                         #data.test, #data.test // K, cfg.lr, cfg.batch_size),
    table = {title = "Results",
             columns = {"variant", {name = "train acc", fmt = "%.2f"}, {name = "test acc", fmt = "%.2f"},
                        {name = "majority acc", fmt = "%.2f"}, {name = "others acc", fmt = "%.2f"},
                        {name = "macro acc", fmt = "%.2f"}, {name = "macro F1", fmt = "%.2f"},
                        {name = "test NLL", fmt = "%.4f"}, {name = "ECE", fmt = "%.4f"}},
             rows = rows,
             text = "In %, on the test set after the last epoch. `train acc`: on the imbalanced training batches "
                 .. "during the last epoch. `majority acc`: the accuracy on the majority class's 1,000 test "
                 .. "images; `others acc`: the mean of the other classes' accuracies; `macro acc`: the mean "
                 .. "of all per-class accuracies (equal to `test acc` here, as the test set has 1,000 images "
                 .. "per class); `macro F1`: the mean of the per-class F1 scores, which also charges the "
                 .. "images wrongly given the majority class. `test NLL` is plain cross-entropy and `ECE` 15 "
                 .. "bins, for every variant."},
    tables = {{title = "Class weights", columns = wcols, rows = weights,
               text = "Per class (0-based labels). Inverse frequency w_c = N / (K n_c): the training images' "
                   .. "mean weight is 1. Class-balanced: (1 - beta) / (1 - beta^n_c), scaled to sum to K. "
                   .. "The scale of either does not change the loss: a weighted mean divides by the sum of "
                   .. "the batch's weights."}},
    plots = plots,
    notes = {
        "--subset N sets the size of the imbalanced training set (0: the largest the data allows: all "
            .. "6,000 images of the majority class and 667 others at --fraction 0.9).",
        "Focal loss: `F.focal_loss(logits, y, {gamma = 2})` without alpha, i.e. no class weights: it "
            .. "shows what down-weighting easy examples alone does under imbalance (the majority class's "
            .. "images are the easy ones).",
        string.format("Class-balanced weights: `tide.nn.class_balanced_weights(counts, beta)` with CE (Cui et al. "
                      .. "2019). At beta %g the effective number (1 - beta^n) / (1 - beta) of the majority's %d "
                      .. "images is %.0f and of %d images %.1f, so the weights' ratio is %.1f against %.1f for "
                      .. "inverse frequency (beta -> 1 approaches inverse frequency, beta = 0 is plain CE).",
                      cfg.beta, counts[maj], eff(counts[maj]), counts[minor], eff(counts[minor]),
                      cb_list[minor] / cb_list[maj], inv[minor] / inv[maj]),
    },
}
