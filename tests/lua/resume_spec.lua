-- A hand-written training loop stopped mid-epoch, checkpointed, rebuilt
-- from nothing and resumed gives the same step losses, bit for bit, as the
-- loop that ran through: model, optimizer, scheduler, loader (order,
-- position, random transforms) and the generator (dropout) all come back.
-- Both habits: one DataLoader for the whole run (set_epoch each epoch), and
-- a new DataLoader made for each epoch.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local nn, optim, D = tide.nn, tide.optim, tide.data

local tmpdir, remove_tmpdirs = H.tmpdirs()
teardown(remove_tmpdirs)

local EPOCHS, BATCH = 3, 6

-- 40 samples of 1x4x4 images, 3 classes; fixed, whatever the seed
local function dataset()
    tide.manual_seed(123)
    local y = {}
    for i = 1, 40 do y[i] = (i * 7) % 3 end
    return D.TensorDataset(tide.randn({40, 1, 4, 4}), tide.tensor(y, "int64"))
end

-- everything a run needs, made afresh; seed only sets what a rebuilt run
-- would draw before it loads the checkpoint (weights, loader seeds)
local function build(seed)
    tide.manual_seed(seed)
    local model = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Dropout{p = 0.3}, nn.Linear(8, 3))
    local opt = optim.SGD(model:parameters(), {lr = 0.2, momentum = 0.9})
    return {model = model, opt = opt, sched = optim.StepLR(opt, 1, {gamma = 0.5})}
end

local function loader_for(ds, random_transforms)
    local tf = random_transforms and {D.transforms.random_crop(4, {padding = 1}), D.transforms.random_hflip()} or nil
    return D.DataLoader(ds, {batch_size = BATCH, shuffle = true, transform = tf})
end

-- trains epochs from..EPOCHS-1, appending each step's loss to `losses`;
-- stop(epoch, step) true saves a checkpoint after that step and returns
local function train(r, from, losses, next_loader, stop, path)
    for epoch = from, EPOCHS - 1 do
        local loader = next_loader(epoch)
        loader:set_epoch(epoch)
        local step = 0
        r.model:train()
        for x, y in loader:iter() do
            r.opt:zero_grad()
            local loss = tide.F.cross_entropy(r.model(x), y)
            loss:backward()
            r.opt:step()
            step = step + 1
            losses[#losses + 1] = loss:item()
            if stop and stop(epoch, step) then
                tide.checkpoint.save(path, {model = r.model, optimizer = r.opt, scheduler = r.sched,
                                            loader = loader, epoch = epoch})
                return true
            end
        end
        r.sched:step()
    end
    return false
end

-- the losses of an uninterrupted run, and of one stopped at stop, rebuilt
-- and resumed (resume_with_loader = false leaves the loader out of load)
local function both(per_epoch, random_transforms, stop, resume_with_loader)
    local ds = dataset()
    local whole = {}
    local r = build(1)
    local one = loader_for(ds, random_transforms)
    train(r, 0, whole, function() return per_epoch and loader_for(ds, random_transforms) or one end)

    local path = tmpdir() .. "/run.ckpt"
    local parts = {}
    r = build(1)
    one = loader_for(ds, random_transforms)
    assert.is_true(train(r, 0, parts, function() return per_epoch and loader_for(ds, random_transforms) or one end,
                         stop, path))
    local stopped_at = #parts

    -- a new process, as far as tide can tell: other weights, other seeds
    r = build(99)
    local fresh = loader_for(ds, random_transforms)
    local epoch = tide.checkpoint.load(path, {model = r.model, optimizer = r.opt, scheduler = r.sched,
                                              loader = resume_with_loader ~= false and fresh or nil})
    train(r, epoch, parts, function(e)
        if e == epoch or not per_epoch then return fresh end
        return loader_for(ds, random_transforms)
    end)
    return whole, parts, stopped_at
end

describe("resuming a hand-written loop", function()
    local batches = math.ceil(40 / BATCH)
    for _, per_epoch in ipairs({false, true}) do
        for _, random_tf in ipairs({false, true}) do
            local name = (per_epoch and "a loader per epoch" or "one loader for the run")
                .. (random_tf and ", random crops and flips" or "")
            it(name .. ": stopped mid-epoch 2, the same losses bit for bit", function()
                local whole, parts, at = both(per_epoch, random_tf, function(e, s) return e == 1 and s == 3 end)
                assert.are.equal(EPOCHS * batches, #whole)
                assert.are.equal(batches + 3, at)
                assert.are.same(whole, parts)
            end)
            it(name .. ": stopped after an epoch's last batch", function()
                local whole, parts = both(per_epoch, random_tf, function(e, s) return e == 0 and s == batches end)
                assert.are.same(whole, parts)
            end)
        end
    end

    it("without the loader's state the resumed losses differ (the test can fail)", function()
        local whole, parts, at = both(false, true, function(e, s) return e == 1 and s == 3 end, false)
        for i = 1, at do assert.are.equal(whole[i], parts[i]) end
        -- the fresh loader runs all of epoch 2 again, in another order
        assert.are.equal(#whole + 3, #parts)
        assert.are_not.equal(whole[at + 1], parts[at + 1])
    end)
end)
