-- Multi-label classification: BCE-with-logits vs asymmetric loss
-- vs sigmoid focal loss on labels derived from Fashion-MNIST's classes.
-- Each image gets 8 binary labels, a fixed function of its class:
--
--   label         positive classes                      note
--   footwear      5 Sandal, 7 Sneaker, 9 Ankle boot
--   closed_shoe   7 Sneaker, 9 Ankle boot               sandals are open
--   top           0 T-shirt/top, 2 Pullover, 4 Coat,    worn on the upper body only
--                 6 Shirt                               (a dress is full_body)
--   long_sleeves  2 Pullover, 4 Coat, 6 Shirt           T-shirts/tops have short or no
--                                                       sleeves; dresses count as no;
--                                                       shirts are taken as long-sleeved
--                                                       (most are; a class-level label)
--   covers_legs   1 Trouser, 3 Dress
--   full_body     3 Dress
--   cold_weather  2 Pullover, 4 Coat, 9 Ankle boot
--   accessory     8 Bag
--
-- Pullover and coat get the same label set, so the labels are coarser than
-- the classes. smallcnn gets one logit per label (num_classes = 8); every
-- variant starts from the same weights and sees the same batches:
--   bce    F.binary_cross_entropy_with_logits(z, y)
--   asl    F.asymmetric_loss(z, y, {gamma_neg = 4, gamma_pos = 0, clip = 0.05})
--   focal  F.sigmoid_focal_loss(z, y, {gamma = 2, alpha = -1 (off), reduction = "mean"})
-- Reports per-label F1 (sigmoid > 0.5), macro F1, exact-match accuracy
-- (every label right) and the test BCE (comparable across losses), a
-- grouped bar chart of per-label F1 and curves per epoch:
--   tide scripts/multilabel.lua [--epochs N] [--subset N] [--losses bce,asl] ... (--help)
local tide = require "tide"
local X = tide.experiment
local F = tide.F

local LABELS = {
    {"footwear", {5, 7, 9}},
    {"closed_shoe", {7, 9}},
    {"top", {0, 2, 4, 6}},
    {"long_sleeves", {2, 4, 6}},
    {"covers_legs", {1, 3}},
    {"full_body", {3}},
    {"cold_weather", {2, 4, 9}},
    {"accessory", {8}},
}
local LOSSES = {"bce", "asl", "focal"}

local cfg = X.parse(arg, {
    name = "multilabel",
    about = "smallcnn on Fashion-MNIST with 8 multi-label targets derived from the 10 classes (footwear,\n"
         .. "closed_shoe, top, long_sleeves, covers_legs, full_body, cold_weather, accessory; the mapping is in\n"
         .. "the script's header), trained with BCE-with-logits, asymmetric loss and sigmoid focal loss; Adam\n"
         .. "with a cosine schedule stepped per batch. Reports per-label F1 at --threshold, macro F1 and\n"
         .. "exact-match accuracy. Short runs (subset x epochs <= 20,000 images) use batch 16 unless\n"
         .. "--batch-size is given.",
    defaults = {epochs = 4, subset = 0, batch_size = 128, lr = 2e-3, model = "smallcnn"},
    models = {"mlp", "lenet5", "smallcnn", "resnet18"},
    flags = {
        {name = "losses", type = "strings", default = LOSSES, meta = "LIST",
         help = "the variants to run, a comma-separated subset of bce, asl, focal",
         check = function(v)
             local ok = {bce = true, asl = true, focal = true}
             local seen = {}
             if #v == 0 then return "expects at least one of bce, asl, focal" end
             for _, s in ipairs(v) do
                 if not ok[s] then return "expects a list of bce, asl, focal" end
                 if seen[s] then return "names '" .. s .. "' twice" end
                 seen[s] = true
             end
         end},
        {name = "threshold", type = "number", default = 0.5, meta = "P",
         help = "a label is predicted when its sigmoid exceeds P, in (0, 1)",
         check = function(v) if not (v > 0 and v < 1) then return "expects a number in (0, 1)" end end},
        {name = "test_subset", type = "integer", default = 0, min = 0, meta = "N",
         help = "test on the first N test images (0: all 10,000)"},
        {name = "gamma_neg", type = "number", default = 4, min = 0, help = "asymmetric loss: focusing on negatives"},
        {name = "gamma_pos", type = "number", default = 0, min = 0, help = "asymmetric loss: focusing on positives"},
        {name = "clip", type = "number", default = 0.05, min = 0, max = 1,
         help = "asymmetric loss: probability shift of the negatives, in [0, 1]"},
        {name = "focal_gamma", type = "number", default = 2, min = 0, help = "sigmoid focal loss: gamma"},
    },
    adjust = function(c, given)
        if not given.batch_size and c.subset > 0 and c.subset * c.epochs <= 20000 then c.batch_size = 16 end
    end,
})

local data = X.fashion_mnist(cfg, {test_subset = cfg.test_subset})
local ex = X.new(cfg)
local L = #LABELS
local steps = cfg.epochs * math.ceil(#data.train / cfg.batch_size)

-- class -> labels: a (10, L) 0/1 matrix; one_hot(y) times it is the targets
local map = {}
for c = 0, 9 do
    local row = {}
    for j, l in ipairs(LABELS) do
        local on = 0
        for _, k in ipairs(l[2]) do if k == c then on = 1 end end
        row[j] = on
    end
    map[c + 1] = row
end
local MAP = tide.tensor(map)
local function targets(y)
    local m = MAP
    if y:device() ~= "cpu" then m = m:to(y:device()) end
    return X.one_hot(y, 10):matmul(m)
end

-- Per-label counts and scores of thresholded sigmoid outputs against 0/1
-- targets (N, L): {tp, fp, fn, precision, recall, f1} as Lua lists, and
-- the exact-match and Hamming accuracies. A precision, recall or F1 whose
-- denominator is 0 is 0 (scikit-learn's zero_division = 0).
local function multilabel_scores(logits, t, threshold)
    local pred = logits:detach():sigmoid():gt(threshold):float()
    local tp = (pred * t):sum(0):totable()
    local fp = (pred * (1 - t)):sum(0):totable()
    local fn = ((1 - pred) * t):sum(0):totable()
    local s = {tp = tp, fp = fp, fn = fn, precision = {}, recall = {}, f1 = {}}
    local function ratio(a, b) return b > 0 and a / b or 0 end
    local macro = 0
    for j = 1, #tp do
        s.precision[j] = ratio(tp[j], tp[j] + fp[j])
        s.recall[j] = ratio(tp[j], tp[j] + fn[j])
        s.f1[j] = ratio(2 * tp[j], 2 * tp[j] + fp[j] + fn[j])
        macro = macro + s.f1[j]
    end
    s.macro_f1 = macro / #tp
    local wrong = (pred - t):abs()
    s.exact_match = wrong:sum(1):eq(0):float():mean():item()
    s.hamming_acc = 1 - wrong:mean():item()
    return s
end

local function exact_match(logits, y) return multilabel_scores(logits, targets(y), cfg.threshold).exact_match end

local loss_fns = {
    bce = function(z, y) return F.binary_cross_entropy_with_logits(z, targets(y)) end,
    asl = function(z, y)
        return F.asymmetric_loss(z, targets(y), {gamma_neg = cfg.gamma_neg, gamma_pos = cfg.gamma_pos,
                                                 clip = cfg.clip})
    end,
    focal = function(z, y)
        return F.sigmoid_focal_loss(z, targets(y), {gamma = cfg.focal_gamma, alpha = -1, reduction = "mean"})
    end,
}

for _, name in ipairs(cfg.losses) do
    ex:train_classifier{
        variant = name,
        loss = loss_fns[name],
        accuracy = exact_match,
        calibration = false,
        data = data,
        model = function() return X.model(cfg, data, {num_classes = L}) end,
        optimizer = function(model) return X.optimizer(cfg, model, {name = "adam"}) end,
        scheduler = function(opt) return tide.optim.CosineAnnealingLR(opt, steps) end,
        schedule = "batch",
        on_epoch = function(rec, _, _, logits, labels)
            local t = targets(labels)
            local s = multilabel_scores(logits, t, cfg.threshold)
            local more = {macro_f1 = s.macro_f1, hamming_acc = s.hamming_acc,
                          test_bce = F.binary_cross_entropy_with_logits(logits, t):item()}
            for j, l in ipairs(LABELS) do more["f1_" .. l[1]] = s.f1[j] end
            print(string.format("%s epoch %d: macro F1 %.4f, exact match %.2f%%", name, rec.epoch, s.macro_f1,
                                100 * s.exact_match))
            return more
        end,
    }
end

-- the tables: per-label F1 and the summary per variant; precision and
-- recall per label; the mapping with each label's share of the test set
local scores = {}
for _, name in ipairs(cfg.losses) do
    local r = ex.results[name]
    scores[name] = multilabel_scores(r.logits, targets(r.labels), cfg.threshold)
end

local columns = {"variant"}
for _, l in ipairs(LABELS) do columns[#columns + 1] = {name = "F1 " .. l[1], fmt = "%.4f"} end
for _, c in ipairs({{name = "macro F1", fmt = "%.4f"}, {name = "exact match %", fmt = "%.2f"},
                    {name = "Hamming acc %", fmt = "%.2f"}, {name = "test BCE", fmt = "%.4f"},
                    {name = "s/epoch", fmt = "%.1f"}}) do
    columns[#columns + 1] = c
end
local rows = {}
for _, name in ipairs(cfg.losses) do
    local r, s = ex.results[name], scores[name]
    local last = r.history[#r.history]
    local row = {name}
    for j = 1, L do row[#row + 1] = s.f1[j] end
    row[#row + 1] = s.macro_f1
    row[#row + 1] = 100 * s.exact_match
    row[#row + 1] = 100 * s.hamming_acc
    row[#row + 1] = last.test_bce
    local secs = 0
    for _, rec in ipairs(r.history) do secs = secs + rec.seconds end
    row[#row + 1] = secs / #r.history
    rows[#rows + 1] = row
end

local pr_columns = {"label"}
for _, name in ipairs(cfg.losses) do
    pr_columns[#pr_columns + 1] = {name = name .. " precision", fmt = "%.4f"}
    pr_columns[#pr_columns + 1] = {name = name .. " recall", fmt = "%.4f"}
end
local pr_rows = {}
for j, l in ipairs(LABELS) do
    local row = {l[1]}
    for _, name in ipairs(cfg.losses) do
        row[#row + 1] = scores[name].precision[j]
        row[#row + 1] = scores[name].recall[j]
    end
    pr_rows[#pr_rows + 1] = row
end

local test_labels = ex.results[cfg.losses[1]].labels
local positives = targets(test_labels):sum(0):totable()
local map_rows = {}
for j, l in ipairs(LABELS) do
    local names = {}
    for _, c in ipairs(l[2]) do names[#names + 1] = c .. " " .. data.classes[c + 1] end
    map_rows[#map_rows + 1] = {l[1], table.concat(names, ", "), 100 * positives[j] / test_labels:size(0)}
end

local series = {}
for _, name in ipairs(cfg.losses) do
    series[#series + 1] = {name = name, values = scores[name].f1, style = ex:style(name)}
end
local categories = {}
for j, l in ipairs(LABELS) do categories[j] = l[1] end
local plots = {
    {title = "per-label F1 (test set, last epoch)",
     path = tide.plot.bars{path = ex:path("per_label_f1.png"), title = "per-label F1 (threshold "
                               .. cfg.threshold .. ")", ylabel = "F1", yrange = {0, 1.05},
                           categories = categories, series = series}},
    {title = "macro F1 per epoch", path = ex:plot_curves{field = "macro_f1", title = "macro F1 (test)",
                                                         ylabel = "macro F1"}},
    {title = "exact-match accuracy per epoch",
     path = ex:plot_curves{field = "test_acc", title = "exact-match accuracy (test)", ylabel = "exact match"}},
    {title = "train loss per epoch (each variant's own loss)",
     path = ex:plot_curves{field = "train_loss", title = "train loss (own loss, log scale)", ylabel = "loss",
                           logy = true}},
}

ex:report{
    title = "Multi-label: BCE vs asymmetric loss vs sigmoid focal (smallcnn, Fashion-MNIST)",
    text = string.format("smallcnn with %d sigmoid outputs trained on %s Fashion-MNIST training images for %d "
                         .. "epoch%s per loss, tested on %d test images. Each image's %d labels are a fixed "
                         .. "function of its class (table below). Adam, lr %g with cosine decay per batch, "
                         .. "batch %d; every variant starts from the same weights and sees the same batches.",
                         L, #data.train == 60000 and "all 60,000" or ("the first " .. #data.train), cfg.epochs,
                         cfg.epochs == 1 and "" or "s", #data.test, L, cfg.lr, cfg.batch_size),
    table = {title = "Results", columns = columns, rows = rows,
             text = string.format("Test set, last epoch; a label is predicted when its sigmoid is > %g. `F1 "
                                  .. "<label>`: 2TP / (2TP + FP + FN) of that label; `macro F1`: their mean; "
                                  .. "`exact match`: images with all %d labels right; `Hamming acc`: labels "
                                  .. "right over all labels; `test BCE`: mean BCE-with-logits on the test set "
                                  .. "(comparable across losses, unlike each loss's own value).",
                                  cfg.threshold, L)},
    tables = {
        {title = "Precision and recall per label", columns = pr_columns, rows = pr_rows},
        {title = "Labels", columns = {"label", "positive classes", {name = "test positives %", fmt = "%.1f"}},
         rows = map_rows,
         text = "T-shirts/tops have short or no sleeves; shirts are counted as long-sleeved (most are, but the "
             .. "label is per class, so some images are mislabelled); a dress counts as covering the legs and "
             .. "as full body, not as a top."},
    },
    plots = plots,
    notes = {
        string.format("ASL: `F.asymmetric_loss(z, y, {gamma_neg = %g, gamma_pos = %g, clip = %g})`, mean over "
                      .. "all elements (Ben-Baruch et al. 2021).", cfg.gamma_neg, cfg.gamma_pos, cfg.clip),
        string.format("Sigmoid focal: `F.sigmoid_focal_loss(z, y, {gamma = %g, alpha = -1, reduction = \"mean\"})`; "
                      .. "alpha is off, since torchvision's 0.25 would weight the rarer positives down.",
                      cfg.focal_gamma),
        "`train_acc` and `test_acc` in metrics.jsonl are exact-match accuracies; each record also has "
            .. "`macro_f1`, `hamming_acc`, `test_bce` and `f1_<label>`.",
        "s/epoch is the training time of one epoch, without the test-set evaluation.",
    },
}
