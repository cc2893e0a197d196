-- The flagship study: which loss trains a classifier best?
-- smallcnn on Fashion-MNIST with four losses, everything else equal (the
-- same initial weights, data order, optimizer and schedule):
--   ce     cross-entropy
--   mse    mean squared error between softmax probabilities and one-hot targets
--   focal  focal loss, gamma 2 (Lin et al. 2017)
--   ce_ls  cross-entropy with label smoothing 0.1
-- Reports train loss and test accuracy at the first, middle and last
-- epoch, final train and test accuracy, test NLL, ECE and time per epoch;
-- curves and reliability diagrams as PNG. `make run` runs it with its
-- defaults into runs/loss_study:
--   tide scripts/loss_study.lua [--epochs N] [--subset N] [--out DIR] ... (--help)
local tide = require "tide"
local X = tide.experiment
local F = tide.F

local cfg = X.parse(arg, {
    name = "loss_study",
    about = "smallcnn on Fashion-MNIST trained with CE, MSE on softmax, focal (gamma 2) and CE with\n"
         .. "label smoothing 0.1; Adam with a cosine schedule stepped per batch. Short runs (subset x epochs\n"
         .. "<= 20,000 images) use batch 16 unless --batch-size is given.",
    defaults = {epochs = 5, subset = 0, batch_size = 128, lr = 2e-3, model = "smallcnn"},
    adjust = function(c, given)
        -- a short run (CI's --epochs 1 --subset 2000) takes many small
        -- steps instead of a few large ones, unless the batch size is given
        if not given.batch_size and c.subset > 0 and c.subset * c.epochs <= 20000 then c.batch_size = 16 end
    end,
})

local data = X.fashion_mnist(cfg)
local ex = X.new(cfg)
local steps = cfg.epochs * math.ceil(#data.train / cfg.batch_size)

local losses = {
    {"ce", function(logits, y) return F.cross_entropy(logits, y) end},
    {"mse", function(logits, y) return F.mse_loss(logits:softmax(1), X.one_hot(y, 10)) end},
    {"focal", function(logits, y) return F.focal_loss(logits, y, {gamma = 2}) end},
    {"ce_ls", function(logits, y) return F.cross_entropy(logits, y, {label_smoothing = 0.1}) end},
}

for _, v in ipairs(losses) do
    ex:train_classifier{
        variant = v[1],
        loss = v[2],
        data = data,
        model = function() return X.model(cfg, data) end,
        optimizer = function(model) return X.optimizer(cfg, model, {name = "adam"}) end,
        scheduler = function(opt) return tide.optim.CosineAnnealingLR(opt, steps) end,
        schedule = "batch",
    }
end

-- the table: train loss and test accuracy at the milestones, then the end
local marks = X.milestones(cfg.epochs)
local columns = {"variant"}
-- (the last epoch's test accuracy is the "test acc" column)
for _, e in ipairs(marks) do
    columns[#columns + 1] = {name = "train loss e" .. e, fmt = "%.4f"}
    if e < cfg.epochs then columns[#columns + 1] = {name = "test acc e" .. e, fmt = "%.2f"} end
end
for _, c in ipairs({{name = "train acc", fmt = "%.2f"}, {name = "test acc", fmt = "%.2f"},
                    {name = "test NLL", fmt = "%.4f"}, {name = "ECE", fmt = "%.4f"},
                    {name = "s/epoch", fmt = "%.1f"}}) do
    columns[#columns + 1] = c
end
local rows = {}
for _, v in ipairs(losses) do
    local r = ex.results[v[1]]
    local row = {v[1]}
    for _, e in ipairs(marks) do
        local rec = X.at_epoch(r.history, e) or {}
        row[#row + 1] = rec.train_loss
        if e < cfg.epochs then row[#row + 1] = rec.test_acc and 100 * rec.test_acc end
    end
    local last = r.history[#r.history]
    row[#row + 1] = 100 * last.train_acc
    row[#row + 1] = 100 * last.test_acc
    row[#row + 1] = last.test_nll
    row[#row + 1] = last.ece
    row[#row + 1] = r.seconds_per_epoch or (function()
        local s = 0
        for _, rec in ipairs(r.history) do s = s + rec.seconds end
        return s / #r.history
    end)()
    rows[#rows + 1] = row
end

local plots = {
    {title = "test accuracy per epoch", path = ex:plot_curves{field = "test_acc", title = "test accuracy",
                                                              ylabel = "accuracy"}},
    {title = "train loss per epoch (each variant's own loss)",
     path = ex:plot_curves{field = "train_loss", title = "train loss (own loss, log scale)", ylabel = "loss",
                           logy = true}},
    {title = "reliability, all losses", path = ex:plot_reliability{file = "reliability.png",
                                                                   title = "reliability (test set, last epoch)"}},
}
for _, v in ipairs(losses) do
    plots[#plots + 1] = {title = "reliability, " .. v[1],
                         path = ex:plot_reliability{file = "reliability_" .. v[1] .. ".png", variants = {v[1]},
                                                    title = "reliability: " .. v[1]}}
end

ex:report{
    title = "Loss study: CE vs MSE vs focal vs label smoothing (smallcnn, Fashion-MNIST)",
    text = string.format("smallcnn trained on %s Fashion-MNIST training images for %d epoch%s per loss, tested on "
                         .. "all %d test images. Adam, lr %g with cosine decay per batch, batch %d; every variant "
                         .. "starts from the same weights and sees the same batches.",
                         #data.train == 60000 and "all 60,000" or ("the first " .. #data.train), cfg.epochs,
                         cfg.epochs == 1 and "" or "s", #data.test, cfg.lr, cfg.batch_size),
    table = {title = "Results", columns = columns, rows = rows,
             text = "Accuracies in %. `train loss eN`: the variant's own training loss at epoch N (mean over "
                 .. "the epoch; losses differ in scale, so compare them down a column's trend, not across rows); "
                 .. "`test acc eN`: test accuracy after epoch N. `train acc` (measured during the last epoch) "
                 .. "and `test acc` (after it) are the final ones. "
                 .. "`test NLL` (cross-entropy on the test set) and `ECE` (15 bins) are comparable across rows."},
    plots = plots,
    notes = {
        "MSE is computed on softmax probabilities against one-hot targets, as `F.mse_loss(softmax(logits), onehot)`.",
        "Focal loss: `F.focal_loss(logits, y, {gamma = 2})`, no alpha. Label smoothing: "
            .. "`F.cross_entropy(logits, y, {label_smoothing = 0.1})`.",
        "s/epoch is the training time of one epoch, without the test-set evaluation.",
    },
}
