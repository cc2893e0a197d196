-- Label smoothing and calibration: smallcnn on Fashion-MNIST
-- trained with cross-entropy at label smoothing e in {0, 0.05, 0.1, 0.2}
-- (--smoothing), everything else equal (the same initial weights, data
-- order, optimizer and schedule). For each e: train and test accuracy, the
-- test NLL and ECE before and after temperature scaling, and the fitted
-- temperature T. T is fitted (tide.metrics.temperature_scale) on a
-- held-out split of the training data, never on the test set: the last
-- --val images (default 5,000) of the 60,000 are kept out of training; the
-- model trains on the first --subset of the other 55,000 (0: all). The
-- test set's NLL and ECE are then measured at that T. Reliability diagrams
-- before and after scaling, and accuracy curves, as PNG.
--   tide scripts/label_smoothing.lua [--epochs N] [--subset N] [--smoothing 0,0.05,0.1,0.2] [--val N] ... (--help)
local tide = require "tide"
local X = tide.experiment
local F = tide.F
local M = tide.metrics

local TRAIN_TOTAL = 60000

local cfg = X.parse(arg, {
    name = "label_smoothing",
    about = "smallcnn on Fashion-MNIST trained with cross-entropy at each label smoothing e of --smoothing;\n"
         .. "test accuracy, NLL and ECE before and after temperature scaling, with T fitted on the last\n"
         .. "--val training images (held out of training, never the test set). --subset N trains on the\n"
         .. "first N of the other images (0: all of them). Adam with a cosine schedule stepped per batch;\n"
         .. "short runs (subset x epochs <= 20,000 images) use batch 16 unless --batch-size is given.",
    defaults = {epochs = 3, subset = 0, batch_size = 128, lr = 2e-3, model = "smallcnn"},
    flags = {
        {name = "smoothing", type = "numbers", default = {0, 0.05, 0.1, 0.2}, meta = "E,E,...",
         check = function(v)
             local seen = {}
             for _, e in ipairs(v) do
                 if not (e >= 0 and e < 1) then return "expects values in [0, 1)" end
                 if seen[e] then return "expects distinct values" end
                 seen[e] = true
             end
         end,
         help = "the label smoothing values, each in [0, 1)"},
        {name = "val", type = "integer", min = 100, max = 30000, default = 5000,
         help = "the last N training images, held out to fit the temperature"},
    },
    adjust = function(c, given)
        if c.subset > TRAIN_TOTAL - c.val then
            return nil, string.format("--subset %d leaves no room for the %d held-out images (--val): at most %d",
                                      c.subset, c.val, TRAIN_TOTAL - c.val)
        end
        if not given.batch_size and c.subset > 0 and c.subset * c.epochs <= 20000 then c.batch_size = 16 end
    end,
})

-- training: the first --subset of images 0 .. 60000 - val - 1; held out:
-- the last --val; test: all 10,000
local data = X.fashion_mnist({subset = 0})
local full = data.train
if #full ~= TRAIN_TOTAL then error("label_smoothing: expected 60,000 training images, got " .. #full) end
local n_train = cfg.subset > 0 and cfg.subset or TRAIN_TOTAL - cfg.val
data.train = tide.data.subset(full, tide.arange(0, n_train))
local val = tide.data.subset(full, tide.arange(TRAIN_TOTAL - cfg.val, TRAIN_TOTAL))

local ex = X.new(cfg)
local steps = cfg.epochs * math.ceil(n_train / cfg.batch_size)
local names, eps_of = {}, {}
for _, e in ipairs(cfg.smoothing) do
    local name = string.format("ls%g", e)
    names[#names + 1] = name
    eps_of[name] = e
    local r = ex:train_classifier{
        variant = name,
        loss = function(z, y) return F.cross_entropy(z, y, {label_smoothing = e}) end,
        eval_loss = function(z, y) return F.cross_entropy(z, y) end,
        data = data,
        model = function() return X.model(cfg, data) end,
        optimizer = function(model) return X.optimizer(cfg, model, {name = "adam"}) end,
        scheduler = function(opt) return tide.optim.CosineAnnealingLR(opt, steps) end,
        schedule = "batch",
        -- after every epoch: fit T on the held-out split, then the test
        -- set's NLL and ECE at that T
        on_epoch = function(_, model, _, logits, labels)
            local vlogits, vlabels = X.evaluate(model, val, {transform = data.test_transform, device = cfg.device})
            local T = M.temperature_scale(vlogits, vlabels)
            return {temperature = T, val_acc = M.accuracy(vlogits, vlabels), val_nll = M.nll(vlogits, vlabels),
                    test_nll_scaled = M.nll(logits / T, labels), ece_scaled = M.ece(logits / T, labels)}
        end,
    }
    r.T = r.final.temperature
    r.scaled = r.logits / r.T
end

local rows = {}
for _, name in ipairs(names) do
    local r = ex.results[name]
    local last = r.history[#r.history]
    rows[#rows + 1] = {name, eps_of[name], 100 * last.train_acc, 100 * last.test_acc, r.T,
                       M.nll(r.logits, r.labels), M.nll(r.scaled, r.labels),
                       M.ece(r.logits, r.labels), M.ece(r.scaled, r.labels)}
end

local function reliability(file, title, which, variants)
    local series = {}
    for _, name in ipairs(variants) do
        local r = ex.results[name]
        if which ~= "after" then
            series[#series + 1] = {name = which == "both" and name .. " before" or name,
                                   bins = M.reliability(r.logits, r.labels), style = ex:style(name)}
        end
        if which ~= "before" then
            -- the variant's colour; dashed beside its unscaled curve
            series[#series + 1] = {name = string.format("%s / T (T = %.3f)", name, r.T),
                                   bins = M.reliability(r.scaled, r.labels), style = ex:style(name),
                                   dash = which == "both" and 2 or nil, point = which == "both" and 4 or nil}
        end
    end
    return tide.plot.reliability{path = ex:path(file), title = title, series = series}
end

local plots = {
    {title = "reliability before temperature scaling",
     path = reliability("reliability_before.png", "reliability before temperature scaling (test set)", "before",
                        names)},
    {title = "reliability after temperature scaling",
     path = reliability("reliability_after.png", "reliability after temperature scaling (test set, T from "
                                                  .. "held-out training images)", "after", names)},
}
for _, name in ipairs(names) do
    plots[#plots + 1] = {title = "reliability, " .. name .. ", before and after",
                         path = reliability("reliability_" .. name .. ".png",
                                            "reliability: " .. name .. ", before and after T", "both", {name})}
end
plots[#plots + 1] = {title = "test accuracy per epoch",
                     path = ex:plot_curves{field = "test_acc", title = "test accuracy", ylabel = "accuracy"}}
plots[#plots + 1] = {title = "test ECE per epoch (before scaling)",
                     path = ex:plot_curves{field = "ece", title = "test ECE (15 bins, unscaled)", ylabel = "ECE"}}
plots[#plots + 1] = {title = "fitted temperature per epoch",
                     path = ex:plot_curves{field = "temperature", title = "temperature fitted on the held-out images",
                                           ylabel = "T"}}

ex:report{
    title = "Label smoothing: accuracy and calibration, before and after temperature scaling (smallcnn, "
         .. "Fashion-MNIST)",
    text = string.format("smallcnn trained with `F.cross_entropy(logits, y, {label_smoothing = e})` for %d "
                         .. "epoch%s on the first %d Fashion-MNIST training images; the last %d training "
                         .. "images (%d to %d) are held out, never trained on, and used only to fit the "
                         .. "temperature T (`tide.metrics.temperature_scale`, minimising their NLL). Test "
                         .. "metrics on all %d test images, before and after dividing the logits by T. Adam, "
                         .. "lr %g with cosine decay per batch, batch %d; every variant starts from the same "
                         .. "weights and sees the same batches.",
                         cfg.epochs, cfg.epochs == 1 and "" or "s", n_train, cfg.val, TRAIN_TOTAL - cfg.val,
                         TRAIN_TOTAL - 1, #data.test, cfg.lr, cfg.batch_size),
    table = {title = "Results",
             columns = {"variant", {name = "e", fmt = "%g"}, {name = "train acc", fmt = "%.2f"},
                        {name = "test acc", fmt = "%.2f"}, {name = "T", fmt = "%.3f"},
                        {name = "NLL before", fmt = "%.4f"}, {name = "NLL after", fmt = "%.4f"},
                        {name = "ECE before", fmt = "%.4f"}, {name = "ECE after", fmt = "%.4f"}},
             rows = rows,
             text = "Accuracies in % after the last epoch (`train acc` on the training batches during the last "
                 .. "epoch; scaling by T does not change accuracy). `T`: the temperature fitted on the held-out "
                 .. "images (T > 1: the model was over-confident, T < 1: under-confident). NLL (plain "
                 .. "cross-entropy) and ECE (15 bins) on the test set with the raw logits (before) and the "
                 .. "logits divided by T (after)."},
    plots = plots,
    notes = {
        string.format("Held-out split: training images %d to %d (%d images), the same for every variant; "
                      .. "--val sets its size, --subset the number of training images taken from the front of "
                      .. "the rest.", TRAIN_TOTAL - cfg.val, TRAIN_TOTAL - 1, cfg.val),
        "T is fitted after every epoch; metrics.jsonl holds it (`temperature`) with the held-out accuracy "
            .. "and NLL (`val_acc`, `val_nll`) and the test NLL and ECE at that T (`test_nll_scaled`, "
            .. "`ece_scaled`). Its `test_loss` is plain cross-entropy for every e (`train_loss` is the "
            .. "smoothed loss that was trained).",
    },
}
