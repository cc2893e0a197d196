-- Binary classification with one logit: smallcnn with a
-- one-output head on two Fashion-MNIST classes that are easy to confuse,
-- T-shirt/top (0) and shirt (6) by default (--classes NEG,POS: the first
-- is label 0, the second label 1). Only those two classes' training and
-- test images are used (12,000 and 2,000). Three losses on the one logit,
-- everything else equal (the same initial weights, data order, optimizer
-- and schedule):
--   bce      F.binary_cross_entropy_with_logits, labels as float 0/1
--   focal    F.sigmoid_focal_loss, gamma 2, alpha off (-1): the classes
--            are balanced, and the default alpha 0.25 would weight the
--            positive class at a third of the negative one
--   bce_ls   BCE-with-logits with label smoothing 0.1 (targets 0.05 and
--            0.95; beyond PyTorch)
-- pos_weight-balanced BCE is not a variant: with 6,000 images of each
-- class, n_neg / n_pos is 1 and it would be plain BCE.
-- Reports accuracy (logit > 0), the accuracy on each class, NLL, binary
-- ECE (confidence max(p, 1 - p)) and the Brier score; a reliability diagram
-- and accuracy curves as PNG.
--   tide scripts/binary.lua [--epochs N] [--subset N] [--classes 0,6] ... (--help)
local tide = require "tide"
local X = tide.experiment
local F = tide.F
local M = tide.metrics

local cfg = X.parse(arg, {
    name = "binary",
    about = "smallcnn with one output logit on two Fashion-MNIST classes (--classes NEG,POS; default\n"
         .. "T-shirt/top vs shirt): BCE-with-logits vs sigmoid focal loss (gamma 2, no alpha) vs BCE with\n"
         .. "label smoothing 0.1. Only the two classes' images are used; --subset N trains on the first N\n"
         .. "of them (0: all 12,000). Adam with a cosine schedule stepped per batch; short runs (subset x\n"
         .. "epochs <= 20,000 images) use batch 16 unless --batch-size is given.",
    defaults = {epochs = 15, subset = 0, batch_size = 128, lr = 2e-3, model = "smallcnn"},
    flags = {
        {name = "classes", type = "numbers", default = {0, 6}, meta = "NEG,POS",
         check = function(v)
             if #v ~= 2 then return "expects two class numbers" end
             for _, c in ipairs(v) do
                 if math.type(c) ~= "integer" and c ~= math.floor(c) or c < 0 or c > 9 then
                     return "expects classes in [0, 9]"
                 end
             end
             if v[1] == v[2] then return "expects two different classes" end
         end,
         help = "the negative (label 0) and positive (label 1) Fashion-MNIST classes"},
    },
    adjust = function(c, given)
        if not given.batch_size and c.subset > 0 and c.subset * c.epochs <= 20000 then c.batch_size = 16 end
    end,
})
local NEG, POS = math.tointeger(cfg.classes[1]), math.tointeger(cfg.classes[2])

-- the images of the two classes, in file order, labelled 0 (NEG) and 1 (POS)
local full = X.fashion_mnist({subset = 0})
local function two_classes(ds, n)
    local idx = {}
    for i, y in ipairs(ds.labels:totable()) do
        if y == NEG or y == POS then idx[#idx + 1] = i - 1 end
        if n and n > 0 and #idx == n then break end
    end
    local sub = tide.data.subset(ds, idx)
    local out = tide.data.TensorDataset(sub.images, sub.labels:eq(POS):long())
    out.classes = {ds.classes[NEG + 1], ds.classes[POS + 1]}
    return out
end
local data = {}
for k, v in pairs(full) do data[k] = v end
data.train = two_classes(full.train, cfg.subset)
data.test = two_classes(full.test)
data.classes = data.train.classes
data.num_classes = 2
if cfg.subset > #data.train then
    io.stderr:write(string.format("binary: --subset %d is more than the %d training images of classes %d and %d\n",
                                  cfg.subset, #data.train, NEG, POS))
    os.exit(2)
end
local function count(ds)
    local p = ds.labels:sum():item()
    return #ds - p, p
end
local train_neg, train_pos = count(data.train)
local test_neg, test_pos = count(data.test)

-- the model's (N, 1) logit against float labels (N, 1)
local function target(y) return y:float():view{-1, 1} end
local variants = {
    {"bce", function(z, y) return F.binary_cross_entropy_with_logits(z, target(y)) end},
    {"focal", function(z, y)
        return F.sigmoid_focal_loss(z, target(y), {alpha = -1, gamma = 2, reduction = "mean"})
    end},
    {"bce_ls", function(z, y) return F.binary_cross_entropy_with_logits(z, target(y), {label_smoothing = 0.1}) end},
}

local function per_class(logits, labels)
    local acc = M.per_class_accuracy(logits, labels):totable()
    return acc[1], acc[2]
end

local ex = X.new(cfg)
local steps = cfg.epochs * math.ceil(#data.train / cfg.batch_size)
for _, v in ipairs(variants) do
    ex:train_classifier{
        variant = v[1],
        loss = v[2],
        -- the test loss is plain BCE for every variant, so it is comparable
        eval_loss = function(z, y) return F.binary_cross_entropy_with_logits(z, target(y)) end,
        data = data,
        model = function() return X.model(cfg, data, {num_classes = 1}) end,
        optimizer = function(model) return X.optimizer(cfg, model, {name = "adam"}) end,
        scheduler = function(opt) return tide.optim.CosineAnnealingLR(opt, steps) end,
        schedule = "batch",
        on_epoch = function(_, _, _, logits, labels)
            local neg_acc, pos_acc = per_class(logits, labels)
            return {brier = M.brier(logits, labels), neg_acc = neg_acc, pos_acc = pos_acc}
        end,
    }
end

local rows = {}
for _, v in ipairs(variants) do
    local r = ex.results[v[1]]
    local last = r.history[#r.history]
    local neg_acc, pos_acc = per_class(r.logits, r.labels)
    rows[#rows + 1] = {v[1], 100 * last.train_acc, 100 * last.test_acc, 100 * neg_acc, 100 * pos_acc,
                       M.nll(r.logits, r.labels), M.ece(r.logits, r.labels), M.brier(r.logits, r.labels)}
end

local neg_name, pos_name = data.classes[1], data.classes[2]
local plots = {
    {title = "reliability, all losses", path = ex:plot_reliability{
        title = string.format("reliability, %s vs %s (test set, confidence max(p, 1 - p))", pos_name, neg_name)}},
    {title = "test accuracy per epoch", path = ex:plot_curves{field = "test_acc", title = "test accuracy",
                                                              ylabel = "accuracy"}},
    {title = "train accuracy per epoch", path = ex:plot_curves{field = "train_acc", title = "train accuracy",
                                                               ylabel = "accuracy"}},
    {title = "test ECE per epoch", path = ex:plot_curves{field = "ece", title = "test ECE (15 bins)",
                                                         ylabel = "ECE"}},
}
for _, v in ipairs(variants) do
    plots[#plots + 1] = {title = "reliability, " .. v[1],
                         path = ex:plot_reliability{file = "reliability_" .. v[1] .. ".png", variants = {v[1]},
                                                    title = "reliability: " .. v[1]}}
end

local col_neg = string.format("%s acc", neg_name)
local col_pos = string.format("%s acc", pos_name)
ex:report{
    title = string.format("Binary: one logit, %s (%d) vs %s (%d), BCE vs sigmoid focal vs BCE with label smoothing",
                          pos_name, POS, neg_name, NEG),
    text = string.format("smallcnn with one output trained for %d epoch%s on the %d Fashion-MNIST training images of "
                         .. "classes %d (%s, label 0: %d images) and %d (%s, label 1: %d images)%s; tested on "
                         .. "their %d test images (%d and %d). The prediction is label 1 when the logit is > 0. "
                         .. "Adam, lr %g with cosine decay per batch, batch %d; every variant starts from the same "
                         .. "weights and sees the same batches.",
                         cfg.epochs, cfg.epochs == 1 and "" or "s", #data.train, NEG, neg_name, train_neg, POS,
                         pos_name, train_pos, cfg.subset > 0 and " (the first of them in file order)" or "",
                         #data.test, test_neg, test_pos, cfg.lr, cfg.batch_size),
    table = {title = "Results",
             columns = {"variant", {name = "train acc", fmt = "%.2f"}, {name = "test acc", fmt = "%.2f"},
                        {name = col_neg, fmt = "%.2f"}, {name = col_pos, fmt = "%.2f"},
                        {name = "test NLL", fmt = "%.4f"}, {name = "ECE", fmt = "%.4f"},
                        {name = "Brier", fmt = "%.4f"}},
             rows = rows,
             text = "Accuracies in %, on the test set after the last epoch (`train acc` on the training batches "
                 .. "during the last epoch); the two class columns are the accuracy on each class's test images. "
                 .. "`test NLL`: binary cross-entropy of the logit (plain, for every variant); `ECE`: 15 bins "
                 .. "over the confidence max(p, 1 - p), p = sigmoid(logit); `Brier`: mean (p - y)^2, in [0, 1]."},
    plots = plots,
    notes = {
        "Losses: `F.binary_cross_entropy_with_logits(z, y)` with z the (N, 1) logit and y the labels as float "
            .. "(N, 1); `F.sigmoid_focal_loss(z, y, {alpha = -1, gamma = 2, reduction = \"mean\"})`; "
            .. "`F.binary_cross_entropy_with_logits(z, y, {label_smoothing = 0.1})`.",
        "Why these three: focal loss down-weights the easy images and concentrates on the confusable ones, "
            .. "which is what these two classes are made of; label smoothing caps the confidence the loss "
            .. "asks for, which shows in ECE and the Brier score. A pos_weight-balanced BCE is left out: "
            .. "the classes have the same number of images, so its pos_weight n_neg / n_pos is 1.",
    },
}
