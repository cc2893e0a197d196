-- Errors raised by tide's Lua files name the line of the script that made
-- the bad call, as the C binding's do, never a line of the library: the
-- optimizers, schedules and clipping (whose checks sit a few calls deep),
-- and tide.experiment's runner, whose classifier loop runs as a variant.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local X = tide.experiment

local tmpdir, remove_tmpdirs = H.tmpdirs()
teardown(remove_tmpdirs)

local here = debug.getinfo(1, "S").short_src

-- the error of fn, which must make its bad call on the given line
local function raised_on(line, fn)
    local ok, err = pcall(fn)
    assert.is_false(ok, "no error")
    err = tostring(err)
    local prefix = here .. ":" .. line .. ": "
    assert.are.equal(prefix, err:sub(1, #prefix), err)
    return err
end

local function line() return debug.getinfo(2, "l").currentline end

describe("tide.optim errors name the caller's line", function()
    local p = tide.zeros({2}, {requires_grad = true})

    it("bad options and parameter groups", function()
        local err = raised_on(line() + 1, function()
            tide.optim.SGD({p}, {lr = -1})
        end)
        assert.truthy(err:find("bad argument #2 to 'SGD' (lr must be non-negative, got -1)", 1, true), err)
        raised_on(line() + 1, function()
            tide.optim.Adam({{params = {p}, lr = 1, foo = 1}})
        end)
        local opt = tide.optim.SGD({p}, {lr = 1})
        raised_on(line() + 1, function()
            opt:add_param_group({params = {p}})
        end)
        raised_on(line() + 1, function()
            opt:load_state_dict({state = {}, param_groups = {}})
        end)
    end)

    it("schedules and clipping", function()
        local opt = tide.optim.SGD({p}, {lr = 1, momentum = 0.9})
        raised_on(line() + 1, function()
            tide.optim.StepLR(opt, 0)
        end)
        local s = tide.optim.OneCycleLR(opt, 1, {total_steps = 1})
        s:step()
        local err = raised_on(line() + 1, function()
            s:step()
        end)
        assert.truthy(err:find("OneCycleLR: tried to step 2 times", 1, true), err)
        p.grad = tide.tensor({math.huge, 1})
        raised_on(line() + 1, function()
            tide.nn.utils.clip_grad_norm_({p}, 1, {error_if_nonfinite = true})
        end)
        p.grad = nil
    end)

    it("under the checkpoint loader's pcall, no position but the loader's", function()
        local path = tmpdir() .. "/o.ckpt"
        tide.checkpoint.save(path, {optimizer = tide.optim.SGD({p}, {lr = 1})})
        local q = tide.zeros({2}, {requires_grad = true})
        local two = tide.optim.SGD({{params = {p}}, {params = {q}}}, {lr = 1})
        local err = raised_on(line() + 1, function()
            tide.checkpoint.load(path, {optimizer = two})
        end)
        assert.truthy(err:find(": optimizer:load_state_dict: bad argument #1 to 'SGD:load_state_dict'", 1, true), err)
    end)
end)

describe("options are checked where the object is made, listing the known ones", function()
    local p = tide.zeros({2}, {requires_grad = true})
    local ds = tide.data.TensorDataset(tide.zeros({4, 2}), tide.zeros({4}, "int64"))

    it("optimizers, schedules, loaders, samplers, checkpoints", function()
        local err = raised_on(line() + 1, function()
            tide.optim.Adam({p}, {lr = 1, beta = {0.9, 0.99}})
        end)
        assert.truthy(err:find("bad argument #2 to 'Adam' (unknown option 'beta'; known: ", 1, true), err)
        assert.truthy(err:find("betas, eps, lr", 1, true), err)
        err = raised_on(line() + 1, function()
            tide.optim.StepLR(tide.optim.SGD({p}, {lr = 1}), 2, {gama = 0.5})
        end)
        assert.truthy(err:find("unknown option 'gama'; known: gamma", 1, true), err)
        err = raised_on(line() + 1, function()
            tide.data.DataLoader(ds, {batchsize = 2})
        end)
        assert.truthy(err:find("known: batch_size, device", 1, true), err)
        err = raised_on(line() + 1, function()
            tide.data.WeightedSampler({1, 2}, {n = 3})
        end)
        assert.truthy(err:find("known: num_samples, replacement, seed", 1, true), err)
        raised_on(line() + 1, function()
            tide.checkpoint.save(tmpdir() .. "/x.ckpt", {modle = 1})
        end)
        local loader = tide.data.DataLoader(ds)
        raised_on(line() + 1, function()
            loader:set_epoch(-1)
        end)
    end)
end)

describe("tide.experiment errors name the caller's line", function()
    local train = tide.data.TensorDataset(tide.randn({8, 2}), tide.zeros({8}, "int64"))
    local function linear() return tide.nn.Linear(2, 2) end
    local function experiment()
        return X.new(assert(X.parse_args({"--out", tmpdir(), "--batch-size", "4", "--epochs", "1"})), {quiet = true})
    end

    it("train_classifier as a variant: missing model or data, an empty test set", function()
        local ex = experiment()
        raised_on(line() + 1, function()
            ex:train_classifier{variant = "a", model = linear}
        end)
        raised_on(line() + 1, function()
            ex:train_classifier{variant = "b", train = train}
        end)
        local empty = tide.data.TensorDataset(tide.randn({0, 2}), tide.zeros({0}, "int64"))
        local err = raised_on(line() + 1, function()
            ex:train_classifier{variant = "c", model = linear, train = train, test = empty}
        end)
        assert.truthy(err:find("experiment.evaluate: the data set is empty", 1, true), err)
        assert.is_nil(ex.current)
    end)

    it("variants, records and factories", function()
        local ex = experiment()
        raised_on(line() + 1, function()
            ex:variant("a/b", function() end)
        end)
        raised_on(line() + 1, function()
            ex:log({})
        end)
        raised_on(line() + 1, function()
            X.optimizer(ex.cfg, {tide.zeros({2}, {requires_grad = true})}, {name = "lbfgs"})
        end)
        -- an error of the variant's own function keeps its position
        raised_on(line() + 2, function()
            ex:variant("d", function()
                error("inside")
            end)
        end)
        assert.is_nil(ex.current)
    end)
end)

describe("every unknown-option error lists the known options", function()
    local function err_of(f, ...)
        local ok, err = pcall(f, ...)
        assert.is_false(ok)
        return tostring(err)
    end

    it("in C options (conv2d), progress, metrics and plot", function()
        local e = err_of(tide.conv2d, tide.randn { 1, 1, 3, 3 }, tide.randn { 1, 1, 3, 3 }, { pad = 1 })
        assert.truthy(e:find("unknown option 'pad'; known: bias, stride, padding, dilation, groups", 1, true), e)
        e = err_of(tide.progress.new, { totl = 3 })
        assert.truthy(e:find("unknown option 'totl'; known: clock, desc,", 1, true), e)
        e = err_of(tide.metrics.accuracy, tide.randn { 2, 3 }, tide.tensor({ 0, 1 }, "int64"), { topk = 1 })
        assert.truthy(e:find("unknown option 'topk'; known: probs", 1, true), e)
        e = err_of(tide.plot.lines, { path = "/tmp/x.png", titel = "t", series = {} })
        assert.truthy(e:find("unknown option 'titel'; known: ", 1, true), e)
    end)
end)
