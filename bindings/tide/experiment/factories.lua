-- tide.experiment's factories: data sets with their transforms, models
-- sized for them, optimizers by name, loaders, and evaluation of a model
-- over a data set.
local tide = require "tide"
local caller = require "tide.caller"
local E = require "tide.experiment.api"

local M = {}

-- The first n samples of ds (all of them when n is nil, 0 or >= #ds).
function E.subset(ds, n)
    if n == nil or n == 0 or n >= #ds then return ds end
    return tide.data.subset(ds, n)
end

local FASHION_MEAN, FASHION_STD = {0.2860}, {0.3530}
local CIFAR_MEAN, CIFAR_STD = {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}

local function data_table(cfg, train, test, mean, std, opts, augment_size)
    local T = tide.data.transforms
    local norm = T.normalize(mean, std)
    local d = {
        train = E.subset(train, cfg.subset),
        test = E.subset(test, opts.test_subset),
        classes = train.classes,
        num_classes = #train.classes,
        in_channels = train.images:size(1),
        image_size = train.images:size(2),
        test_transform = {norm},
    }
    if opts.augment and augment_size then
        d.train_transform = {T.random_crop(augment_size, {padding = 4}), T.random_hflip(), norm}
    else
        d.train_transform = {norm}
    end
    return d
end

-- Fashion-MNIST (Debian's dataset-fashion-mnist): {train, test, classes,
-- num_classes, in_channels, image_size, train_transform, test_transform}.
-- train holds the first cfg.subset images (0: all 60,000); test all
-- 10,000 (or opts.test_subset); both transforms normalize.
function E.fashion_mnist(cfg, opts)
    opts = opts or {}
    local train = tide.data.fashion_mnist{dir = opts.dir, split = "train"}
    local test = tide.data.fashion_mnist{dir = opts.dir, split = "test"}
    return data_table(cfg, train, test, FASHION_MEAN, FASHION_STD, opts, 28)
end

-- MNIST from opts.dir, as fashion_mnist (normalized with MNIST's stats).
function E.mnist(cfg, opts)
    opts = opts or {}
    local train = tide.data.mnist{dir = opts.dir, split = "train"}
    local test = tide.data.mnist{dir = opts.dir, split = "test"}
    return data_table(cfg, train, test, {0.1307}, {0.3081}, opts, 28)
end

-- CIFAR-10 (binary version) from opts.dir; opts.augment adds random crop
-- (padding 4) and flip to the training transforms.
function E.cifar10(cfg, opts)
    opts = opts or {}
    local train = tide.data.cifar10{dir = opts.dir, split = "train"}
    local test = tide.data.cifar10{dir = opts.dir, split = "test"}
    return data_table(cfg, train, test, CIFAR_MEAN, CIFAR_STD, opts, 32)
end

-- A model from tide.models by cfg.model (or opts.name), sized for data:
-- {num_classes, in_channels, image_size} (from a data table or given).
function E.model(cfg, data, opts)
    opts = opts or {}
    data = data or {}
    local name = opts.name or cfg.model
    local classes = opts.num_classes or data.num_classes or 10
    local channels = opts.in_channels or data.in_channels or 1
    local size = opts.image_size or data.image_size or 28
    if name == "mlp" then
        return tide.models.mlp{sizes = {channels * size * size, 256, 256, classes}}
    elseif name:match("^resnet") then
        return tide.models[name]{num_classes = classes, in_channels = channels,
                                 stem = size <= 64 and "cifar" or "imagenet"}
    end
    return tide.models[name]{num_classes = classes, in_channels = channels}
end

-- An optimizer over model's parameters at cfg.lr: "adam" (default),
-- "adamw", "sgd" (momentum 0.9 unless given), "rmsprop"; opts passes on
-- (weight_decay, momentum, nesterov, ...).
function E.optimizer(cfg, model, opts)
    opts = opts or {}
    local name = opts.name or "adam"
    local o = {lr = opts.lr or cfg.lr}
    for k, v in pairs(opts) do if k ~= "name" then o[k] = v end end
    local params = model.parameters and model:parameters() or model
    if name == "adam" then return tide.optim.Adam(params, o) end
    if name == "adamw" then return tide.optim.AdamW(params, o) end
    if name == "rmsprop" then return tide.optim.RMSprop(params, o) end
    if name == "sgd" then
        if o.momentum == nil then o.momentum = 0.9 end
        return tide.optim.SGD(params, o)
    end
    caller.error("experiment.optimizer: unknown optimizer '" .. tostring(name) .. "' (adam, adamw, sgd, rmsprop)")
end

-- one-hot float32 (N, C) of int64 labels (N)
function E.one_hot(y, num_classes)
    local n = y:size(0)
    local t = tide.zeros({n, num_classes})
    if y:device() ~= "cpu" then t = t:to(y:device()) end
    return t:scatter(1, y:view({n, 1}), 1.0)
end

local function is_loader(x) return type(x) == "table" and type(x.iter) == "function" end

-- a DataLoader over a data set (or the loader itself); opts.sampler (a
-- DistributedSampler, say) replaces shuffle
function E.loader(ds, opts)
    if is_loader(ds) then return ds end
    opts = opts or {}
    return tide.data.DataLoader(ds, {batch_size = opts.batch_size or 500, shuffle = opts.shuffle or false,
                                     transform = opts.transform, seed = opts.seed, drop_last = opts.drop_last,
                                     sampler = opts.sampler})
end

-- Runs model (in evaluation mode, without gradients) over a loader or a
-- data set: logits (N, ...) and labels (N, ...), on the CPU.
function E.evaluate(model, data, opts)
    opts = opts or {}
    local loader = E.loader(data, {batch_size = opts.batch_size or 500, transform = opts.transform})
    local device = opts.device or "cpu"
    local was_training = model.training
    model:evaluate()
    local outs, labels = {}, {}
    tide.no_grad(function()
        for x, y in loader:iter() do
            if device ~= "cpu" then x = x:to(device) end
            local out
            if opts.precision and opts.precision ~= "float32" then
                -- the logits as the model gives them under autocast, widened
                -- for the metrics (as the training loss sees them)
                out = tide.autocast(opts.precision, model, x):float()
            else
                out = model(x)
            end
            if device ~= "cpu" then out = out:to("cpu") end
            outs[#outs + 1] = out
            labels[#labels + 1] = y
        end
    end)
    if was_training then model:train() end
    if #outs == 0 then caller.error("experiment.evaluate: the data set is empty") end
    return tide.cat(outs, 0), tide.cat(labels, 0)
end


M.is_loader = is_loader

return M
