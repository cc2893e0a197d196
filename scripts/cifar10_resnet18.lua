-- ResNet-18 on CIFAR-10: the classic recipe, from the binary
-- files the user supplies with --data DIR (data_batch_1.bin ...
-- data_batch_5.bin and test_batch.bin, from
-- https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz).
--   model     resnet18 with the CIFAR stem (3x3 stride-1 first convolution, no max pool)
--   optimizer SGD, lr 0.01, momentum 0.9, weight decay 5e-4, batch 128
--   schedule  cosine annealing to 0 over the run, stepped once per epoch
--             (--schedule step: x0.1 at 50% and 75% of the epochs)
--   data      random 32x32 crop with padding 4 and a horizontal flip, then
--             normalisation with CIFAR-10's channel means and stds
--   epochs    100
-- On the GPU when there is one (--device defaults to cuda when
-- tide.cuda.is_available()); CUDA training is still partial in tide
-- (docs/cuda.md), so when a training step cannot run there the recipe
-- says so in one line and trains on the CPU. Every epoch is checkpointed:
-- an interrupted run resumes after its last finished epoch when rerun
-- with the same flags, and a finished one is loaded, not retrained.
-- Reports test accuracy at the first, middle and last epoch, the best
-- epoch, train accuracy, NLL, ECE and time per epoch; curves and a
-- reliability diagram as PNG:
--   tide scripts/cifar10_resnet18.lua --data DIR [--epochs N] [--subset N] ... (--help)
local tide = require "tide"
local X = tide.experiment
local F = tide.F

local FILES = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin",
               "test_batch.bin"}
local URL = "https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz"

local cfg = X.parse(arg, {
    name = "cifar10_resnet18",
    about = "ResNet-18 (CIFAR stem) on CIFAR-10 from --data DIR (the binary version: data_batch_1.bin ...\n"
         .. "data_batch_5.bin, test_batch.bin; " .. URL .. ").\n"
         .. "SGD with momentum 0.9 and weight decay 5e-4, cosine schedule per epoch, random crop (padding 4)\n"
         .. "and horizontal flip. On the GPU when tide.cuda.is_available() (falling back to the CPU, with a\n"
         .. "notice, where CUDA cannot train the model yet). Rerun the same command to resume.",
    defaults = {epochs = 100, batch_size = 128, lr = 0.01, model = "resnet18",
                device = tide.cuda.is_available() and "cuda" or "cpu"},
    models = {"resnet18", "resnet34", "resnet50"},
    flags = {
        {name = "data", type = "string", default = "cifar-10-batches-bin", meta = "DIR",
         help = "the folder of data_batch_1.bin ... data_batch_5.bin and test_batch.bin"},
        {name = "schedule", type = "string", default = "cosine", choices = {"cosine", "step", "none"},
         help = "cosine: annealing to 0 over the epochs; step: x0.1 at 50% and 75% of the epochs; none"},
        {name = "momentum", type = "number", default = 0.9, min = 0, max = 1, meta = "X", help = "SGD momentum"},
        {name = "weight_decay", type = "number", default = 5e-4, min = 0, meta = "X", help = "SGD weight decay"},
        {name = "augment", type = "boolean", default = true,
         help = "random crop (padding 4) and horizontal flip (--no-augment: none)"},
        {name = "test_subset", type = "integer", default = 0, min = 0, meta = "N",
         help = "test on the first N test images (0: all 10,000)"},
    },
})

-- the files first: a missing one gets where to put it, and exit 2
local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() return true end
    return false
end
local missing = {}
for _, f in ipairs(FILES) do
    if not exists(cfg.data .. "/" .. f) then missing[#missing + 1] = f end
end
if #missing > 0 then
    io.stderr:write(string.format(
        "cifar10_resnet18: CIFAR-10 is not in '%s' (missing %s).\n"
        .. "It needs the binary version's data_batch_1.bin ... data_batch_5.bin and test_batch.bin in one folder:\n"
        .. "  curl -LO %s     # or wget\n"
        .. "  tar xzf cifar-10-binary.tar.gz     # makes cifar-10-batches-bin/\n"
        .. "  tide scripts/cifar10_resnet18.lua --data cifar-10-batches-bin\n",
        cfg.data, table.concat(missing, ", "), URL))
    os.exit(2)
end

-- CUDA: try one training step of the model there and a checkpoint of it;
-- where an op has no CUDA kernel yet, train on the CPU instead
if cfg.device ~= "cpu" then
    local ok, err = pcall(function()
        local m = X.model(cfg, {num_classes = 10, in_channels = 3, image_size = 32})
        m:to(cfg.device)
        m:train()
        local opt = X.optimizer(cfg, m, {name = "sgd", momentum = cfg.momentum, weight_decay = cfg.weight_decay})
        local x = tide.randn({2, 3, 32, 32}):to(cfg.device)
        local y = tide.tensor({0, 1}, "int64"):to(cfg.device)
        F.cross_entropy(m(x), y):backward()
        opt:step()
        -- the per-epoch checkpoint too (saving CUDA tensors is pending in places)
        local tmp = os.tmpname()
        local saved, e = pcall(tide.checkpoint.save, tmp, {model = m, optimizer = opt, epoch = 1})
        os.remove(tmp)
        if not saved then error(e, 0) end
    end)
    if not ok then
        local why = tostring(err):match("[^\n]*")
        print(string.format("cifar10_resnet18: cannot train on %s yet (%s); training on the CPU instead",
                            cfg.device, why))
        cfg.device = "cpu"
    end
end

local data = X.cifar10(cfg, {dir = cfg.data, augment = cfg.augment, test_subset = cfg.test_subset})
local ex = X.new(cfg)
local variant = cfg.model

local r = ex:train_classifier{
    variant = variant,
    data = data,
    model = function() return X.model(cfg, data) end,
    loss = function(logits, y) return F.cross_entropy(logits, y) end,
    optimizer = function(model)
        return X.optimizer(cfg, model, {name = "sgd", momentum = cfg.momentum, weight_decay = cfg.weight_decay})
    end,
    scheduler = function(opt)
        if cfg.schedule == "cosine" then return tide.optim.CosineAnnealingLR(opt, cfg.epochs) end
        if cfg.schedule == "step" then
            local m1, m2 = math.max(1, cfg.epochs // 2), math.max(1, (3 * cfg.epochs) // 4)
            return tide.optim.MultiStepLR(opt, m1 == m2 and {m1} or {m1, m2}, {gamma = 0.1})
        end
        return nil
    end,
    schedule = "epoch",
}

-- the table: test accuracy at the milestones, the best epoch, the end
local marks = X.milestones(cfg.epochs)
local columns = {"variant"}
for _, e in ipairs(marks) do columns[#columns + 1] = {name = "test acc e" .. e, fmt = "%.2f"} end
for _, c in ipairs({{name = "best test acc", fmt = "%.2f"}, {name = "best epoch", fmt = "%d"},
                    {name = "train acc", fmt = "%.2f"}, {name = "test acc", fmt = "%.2f"},
                    {name = "test NLL", fmt = "%.4f"}, {name = "ECE", fmt = "%.4f"},
                    {name = "s/epoch", fmt = "%.1f"}}) do
    columns[#columns + 1] = c
end
local row = {variant}
for _, e in ipairs(marks) do
    local rec = X.at_epoch(r.history, e) or {}
    row[#row + 1] = rec.test_acc and 100 * rec.test_acc
end
local best = r.history[1]
local secs = 0
for _, rec in ipairs(r.history) do
    if rec.test_acc > best.test_acc then best = rec end
    secs = secs + rec.seconds
end
local last = r.history[#r.history]
for _, v in ipairs({100 * best.test_acc, best.epoch, 100 * last.train_acc, 100 * last.test_acc, last.test_nll,
                    last.ece, secs / #r.history}) do
    row[#row + 1] = v
end

local schedule_text = ({cosine = string.format("cosine annealing from %g to 0 over %d epochs, stepped per epoch",
                                               cfg.lr, cfg.epochs),
                        step = "x0.1 at 50% and 75% of the epochs",
                        none = "constant"})[cfg.schedule]

ex:report{
    title = "ResNet-18 on CIFAR-10",
    text = string.format("%s (CIFAR stem) trained on %s CIFAR-10 training images from `%s` for %d epoch%s on %s, "
                         .. "tested on %d test images. SGD, lr %g, momentum %g, weight decay %g, batch %d; "
                         .. "learning rate: %s; %s; inputs normalized with CIFAR-10's channel means "
                         .. "(0.4914, 0.4822, 0.4465) and stds (0.2470, 0.2435, 0.2616).",
                         cfg.model, #data.train == 50000 and "all 50,000" or ("the first " .. #data.train),
                         cfg.data, cfg.epochs, cfg.epochs == 1 and "" or "s", cfg.device, #data.test, cfg.lr,
                         cfg.momentum, cfg.weight_decay, cfg.batch_size, schedule_text,
                         cfg.augment and "random 32x32 crop of the image padded by 4 and horizontal flip"
                             or "no augmentation"),
    table = {title = "Results", columns = columns, rows = {row},
             text = "Accuracies in %. `test acc eN`: after epoch N; `best test acc` and `best epoch`: the best "
                 .. "epoch's (picked on the test set, so an optimistic number); `train acc` is measured during the "
                 .. "last epoch, on augmented images in training mode; `ECE` with 15 bins."},
    plots = {
        {title = "test accuracy per epoch", path = ex:plot_curves{field = "test_acc", title = "test accuracy",
                                                                  ylabel = "accuracy"}},
        {title = "train loss per epoch", path = ex:plot_curves{field = "train_loss", title = "train loss (log scale)",
                                                               ylabel = "cross-entropy", logy = true}},
        {title = "learning rate per epoch", path = ex:plot_curves{field = "lr", title = "learning rate",
                                                                  ylabel = "lr"}},
        {title = "reliability", path = ex:plot_reliability{file = "reliability.png",
                                                           title = "reliability (test set, last epoch)"}},
    },
    notes = {
        "Checkpoints after every epoch in checkpoints/: rerun the same command to resume an interrupted run.",
        "s/epoch is the training time of one epoch, without the test-set evaluation.",
    },
}
