-- The Lua half of fuzz_checkpoint.c, and the checkpoint that make_corpus.lua
-- takes its seeds from. setup(dir) builds a model, an optimizer with state,
-- a scheduler and a loader, and saves a real checkpoint of them; run(i,
-- json) writes that checkpoint again with metadata KEYS[i] replaced by
-- `json` and loads it into the objects with tide.checkpoint.load, which
-- reads it back through tide.load and core._json_decode as any load does.
--
-- A Lua error from the load is the expected outcome of most inputs. What
-- is not: a failed load that leaves any object or the generator other than
-- it was (the load is documented all or nothing), or a load that succeeds
-- without putting the checkpoint's weights into the model. run returns false and
-- a message then, and the C side aborts with it.
local tide = require "tide"

local M = {}

-- every metadata key that tide.checkpoint.load reads, in the order the
-- first byte of an input picks them
M.KEYS = {"tide.checkpoint", "model", "optimizer", "scheduler", "loader", "epoch", "rng", "extra"}

local is_tensor = tide.is_tensor
-- fuzz_checkpoint.c's line coverage of the load (absent under plain tide)
local cover = rawget(_G, "fuzz_cover") or function() end

-- a string that is equal for two values exactly when they are: tables by
-- their sorted keys, numbers to the bit (%q writes floats in hex), tensors
-- by dtype, shape and every element
local function fingerprint(v, out)
    if is_tensor(v) then
        out[#out + 1] = "T" .. v:dtype() .. "(" .. table.concat(v:shape(), ",") .. ")"
        local flat = v:contiguous():view({-1}):totable()
        for i = 1, #flat do out[#out + 1] = string.format("%q", flat[i]) end
    elseif type(v) == "table" then
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = k end
        table.sort(keys, function(a, b)
            if type(a) ~= type(b) then return type(a) < type(b) end
            return a < b
        end)
        out[#out + 1] = "{"
        for _, k in ipairs(keys) do
            out[#out + 1] = string.format("%q", k) .. "="
            fingerprint(v[k], out)
        end
        out[#out + 1] = "}"
    elseif type(v) == "number" or type(v) == "string" or type(v) == "boolean" then
        out[#out + 1] = string.format("%q", v)
    else
        out[#out + 1] = type(v)
    end
    return out
end

-- the objects' state and the generator's, which a failed load leaves alone
local function state_of(objs)
    local out = {}
    for _, key in ipairs({"model", "optimizer", "scheduler", "loader"}) do
        out[#out + 1] = key .. ":"
        fingerprint(objs[key]:state_dict(), out)
    end
    out[#out + 1] = "rng:" .. table.concat(tide._rng_state(), ",")
    return table.concat(out, " ")
end

-- the objects, in the state their checkpoint saves: the optimizer has
-- taken a step (so its state holds tensors), the scheduler too, and the
-- loader, drawn by a weighted sampler, is at epoch 2
local function build()
    tide.manual_seed(1)
    local model = tide.nn.Sequential(tide.nn.Linear(3, 4), tide.nn.ReLU(), tide.nn.Linear(4, 2))
    local optimizer = tide.optim.Adam(model:parameters(), {lr = 0.01, amsgrad = true})
    local scheduler = tide.optim.StepLR(optimizer, 2, {gamma = 0.5})
    local ds = tide.data.TensorDataset(tide.arange(0, 6):view({6, 1}), tide.arange(0, 6):long())
    local sampler = tide.data.WeightedSampler({1, 2, 3, 1, 2, 3}, {seed = 5})
    local loader = tide.data.DataLoader(ds, {batch_size = 2, sampler = sampler, seed = 3})
    model:forward(tide.ones({2, 3})):sum():backward()
    optimizer:step()
    scheduler:step()
    loader:set_epoch(2)
    return {model = model, optimizer = optimizer, scheduler = scheduler, loader = loader}
end

-- a state dict whose tensors are copies
local function snapshot(v)
    if is_tensor(v) then return v:clone() end
    if type(v) ~= "table" then return v end
    local out = {}
    for k, x in pairs(v) do out[k] = snapshot(x) end
    return out
end

-- the checkpoint's metadata (key -> JSON string) and tensors; also what
-- make_corpus.lua writes its seeds from
function M.reference(dir)
    local objs = build()
    local path = dir .. "/reference.ckpt"
    tide.checkpoint.save(path, {model = objs.model, optimizer = objs.optimizer, scheduler = objs.scheduler,
                                loader = objs.loader, epoch = 4,
                                extra = {best = 0.25, note = "seed", ids = {3, 1, 2}, t = tide.tensor({1.5, -2})}})
    local tensors, meta = tide.load(path)
    os.remove(path)
    return tensors, meta, objs
end

function M.setup(dir)
    local tensors, meta, objs = M.reference(dir)
    -- the file's weights differ from the model's, so that a load that
    -- claims success but did not load, and a failed load that loaded, show
    for name, t in pairs(tensors) do
        if name:match("^model%.") then tensors[name] = t + 1 end
    end
    local path = dir .. "/fuzz.ckpt"
    local clean, saved = state_of(objs), {}
    for _, key in ipairs({"model", "optimizer", "scheduler", "loader"}) do
        saved[key] = snapshot(objs[key]:state_dict())
    end
    local rng = tide._rng_state()
    local opts = {model = true, optimizer = true, scheduler = true, loader = true}

    -- back to the state `clean` describes, after a load that succeeded. In
    -- place, as a training script would: fresh objects would leave
    -- libFuzzer counting more mallocs than frees for every such input,
    -- and it then searches the heap for leaks after each. The optimizer's
    -- groups and the scheduler lose the fields the checkpoint added,
    -- which their load_state_dict keeps.
    local function trim(t, keep)
        for k in pairs(t) do
            if keep[k] == nil and k ~= "params" and k ~= "optimizer" then t[k] = nil end
        end
    end
    local function reset()
        objs.model:load_state_dict(saved.model)
        for gi, group in ipairs(objs.optimizer.param_groups) do trim(group, saved.optimizer.param_groups[gi]) end
        objs.optimizer:load_state_dict(saved.optimizer)
        trim(objs.scheduler, saved.scheduler)
        objs.scheduler:load_state_dict(saved.scheduler)
        objs.loader:load_state_dict(saved.loader)
        tide._set_rng_state(rng)
        local now = state_of(objs)
        if now ~= clean then error("the harness could not put the objects back:\n" .. clean .. "\n" .. now) end
    end

    local function run(i, json)
        local key = M.KEYS[i]
        local m = {}
        for k, v in pairs(meta) do m[k] = v end
        m[key] = json
        -- tide.save refuses what no safetensors header can carry (text
        -- that is not UTF-8, a NUL byte): tide.load could never return it
        if not pcall(tide.save, path, tensors, {metadata = m}) then return true, "skip" end
        for k in pairs(opts) do opts[k] = objs[k] end
        cover(true)
        local ok, err = pcall(tide.checkpoint.load, path, opts)
        cover(false)
        if ok then
            local w = objs.model:state_dict()
            for name, t in pairs(w) do
                if table.concat(fingerprint(t, {})) ~= table.concat(fingerprint(tensors["model." .. name], {})) then
                    return false, "checkpoint.load succeeded but '" .. name .. "' is not the file's"
                end
            end
            local reset_ok, reset_err = pcall(reset)
            if not reset_ok then return false, reset_err end
            return true, "loaded"
        end
        if type(err) ~= "string" then return false, "checkpoint.load raised a " .. type(err) end
        local now = state_of(objs)
        if now ~= clean then
            return false, "a failed checkpoint.load changed the objects (" .. err .. ")\nbefore: " .. clean ..
                "\nafter:  " .. now
        end
        return true, err
    end
    return run
end

return M
