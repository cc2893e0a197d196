-- tide.checkpoint.load is all or nothing: a file whose metadata is bad is
-- refused before any object changes, and an object whose own
-- load_state_dict fails leaves the objects loaded before it as they were.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"

local TMP = os.tmpname()
os.remove(TMP)
assert(os.execute("mkdir -p " .. H.sh(TMP)))
local function tmp(name) return TMP .. "/" .. name end

local function weights(m)
    local out = {}
    for k, t in pairs(m:state_dict()) do out[k] = t:clone() end
    return out
end

local function unchanged(m, before)
    for k, t in pairs(m:state_dict()) do
        local same, why = H.same_values(t, before[k])
        assert.is_true(same, k .. ": " .. tostring(why))
    end
end

-- a checkpoint of a model, an optimizer, a scheduler and a loader, then a
-- copy of it with metadata `key` replaced by `value`
local function checkpoint_with(key, value)
    tide.manual_seed(1)
    local m = tide.nn.Linear(3, 2)
    local opt = tide.optim.SGD(m:parameters(), {lr = 0.1, momentum = 0.9})
    local sched = tide.optim.MultiStepLR(opt, {2}, {gamma = 0.5})
    local ds = tide.data.TensorDataset(tide.arange(0, 6):view({6, 1}), tide.arange(0, 6):long())
    local loader = tide.data.DataLoader(ds, {batch_size = 2, shuffle = true, seed = 3})
    m:forward(tide.ones({1, 3})):sum():backward()
    opt:step()
    local path = tmp(key .. ".ckpt")
    tide.checkpoint.save(path, {model = m, optimizer = opt, scheduler = sched, loader = loader, epoch = 4})
    local tensors, meta = tide.load(path)
    meta[key] = value
    tide.save(path, tensors, {metadata = meta})
    return path, opt, sched, loader
end

describe("checkpoint.load", function()
    local bad = {
        {"rng", '["zz"]', "metadata 'rng'"},
        {"rng", "{", "bad JSON in metadata 'rng'"},
        {"optimizer", "{", "bad JSON in metadata 'optimizer'"},
        {"optimizer", '{"state": {"__tensor__": "optimizer.nope"}}', "optimizer.nope"},
        {"scheduler", "[1,", "bad JSON in metadata 'scheduler'"},
        {"loader", '{"x": {"__tensor__": "gone"}}', "which the file lacks"},
        {"epoch", "{", "bad JSON in metadata 'epoch'"},
        {"extra", "{", "bad JSON in metadata 'extra'"},
    }
    for _, case in ipairs(bad) do
        it("refuses bad '" .. case[1] .. "' metadata before touching the model", function()
            local path, opt, sched, loader = checkpoint_with(case[1], case[2])
            tide.manual_seed(77)
            local m2 = tide.nn.Linear(3, 2)
            local before = weights(m2)
            local lr = opt.param_groups[1].lr
            local err = H.error_of(tide.checkpoint.load, path,
                                   {model = m2, optimizer = opt, scheduler = sched, loader = loader})
            assert.truthy(err, "no error")
            assert.truthy(err:find("checkpoint.load: " .. path, 1, true), err)
            assert.truthy(err:find(case[3], 1, true), err)
            unchanged(m2, before)
            assert.are.equal(lr, opt.param_groups[1].lr)
        end)
    end

    it("leaves the generator alone when the file is refused", function()
        local path = checkpoint_with("optimizer", "{")
        tide.manual_seed(5)
        local want = tide.rand({4}, "float64")
        tide.manual_seed(5)
        local m2 = tide.nn.Linear(3, 2)
        tide.manual_seed(5)
        assert.truthy(H.error_of(tide.checkpoint.load, path, {model = m2, optimizer = {}}))
        assert.is_true(H.same_values(want, tide.rand({4}, "float64")))
    end)

    it("puts the model back when a later load_state_dict fails", function()
        local path = checkpoint_with("epoch", "4")
        tide.manual_seed(77)
        local m2 = tide.nn.Linear(3, 2)
        local before = weights(m2)
        -- a duck-typed loader that changes itself, then fails
        local flaky = {n = 1}
        function flaky:state_dict() return {n = self.n} end
        function flaky:load_state_dict(sd)
            if sd.n == 1 then self.n = 1 return end
            self.n = 99
            error("no room for this loader")
        end
        tide.manual_seed(5)
        local want = tide.rand({4}, "float64")
        tide.manual_seed(5)
        local err = H.error_of(tide.checkpoint.load, path, {model = m2, loader = flaky})
        assert.truthy(err, "no error")
        assert.truthy(err:find("checkpoint.load: " .. path .. ": loader:load_state_dict: ", 1, true), err)
        assert.truthy(err:find("no room for this loader", 1, true), err)
        assert.truthy(err:find("nothing was changed (model, loader put back", 1, true), err)
        unchanged(m2, before)
        assert.are.equal(1, flaky.n)
        assert.is_true(H.same_values(want, tide.rand({4}, "float64")))
    end)

    it("says so when an object cannot be put back", function()
        local path = checkpoint_with("epoch", "4")
        local stuck = {}
        function stuck.state_dict() return {} end
        function stuck.load_state_dict() error("jammed") end
        local err = H.error_of(tide.checkpoint.load, path, {loader = stuck})
        assert.truthy(err:find("loader:load_state_dict: ", 1, true), err)
        assert.truthy(err:find("could not put back loader (", 1, true), err)
        assert.truthy(err:find("partly the checkpoint's", 1, true), err)
    end)

    it("still loads a good file whole", function()
        local path, opt, sched, loader = checkpoint_with("epoch", "4")
        local m2 = tide.nn.Linear(3, 2)
        assert.are.equal(4, tide.checkpoint.load(path, {model = m2, optimizer = opt, scheduler = sched,
                                                        loader = loader}))
    end)
end)
