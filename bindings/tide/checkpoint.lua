-- tide.checkpoint: a training run's state in one safetensors file.
--
-- tide.save / tide.load (C, l_serialize.c) read and write plain safetensors
-- files. A checkpoint is such a file whose tensors are the model's
-- state_dict() under "model.<name>" and the optimizer's tensors under
-- "optimizer.<path>" (its state_dict() flattened: "optimizer.state.0.
-- momentum_buffer"), and whose __metadata__ holds, as JSON strings:
--   tide.checkpoint  "1" (the layout's version)
--   model            "true" when a model was saved
--   optimizer        the rest of optimizer:state_dict(), each tensor
--                    replaced by {"__tensor__": "<its name in the file>"}
--   scheduler        scheduler:state_dict(), tensors replaced as above
--   loader           loader:state_dict() (seed, epoch, batches taken)
--   epoch            the epoch number
--   rng              the generator's state, four u64 as 16-digit hex strings
--   extra            the caller's table, tensors replaced as above
-- The file is written to a temporary file and renamed over the target (by
-- tide.save), so a crash never leaves a half-written checkpoint. Only
-- data is read back: JSON and tensors, never code.
--
-- Models, optimizers, schedulers and loaders are duck-typed: anything with
-- state_dict() and load_state_dict(sd) works.
local caller = require "tide.caller"

local M = {}

local VERSION = "1"

function M.install(tide, core)
    local is_tensor = core.is_tensor
    local encode, decode = core._json_encode, core._json_decode

    local function fail(fname, path, msg)
        caller.error(string.format("%s: %s: %s", fname, tostring(path), msg))
    end

    local function check_options(fname, opts, allowed)
        if opts == nil then return {} end
        if type(opts) ~= "table" or is_tensor(opts) then
            caller.error(string.format("bad argument #2 to '%s' (options table expected, got %s)", fname, type(opts)))
        end
        for k in pairs(opts) do
            if not allowed[k] then
                caller.error(string.format("bad argument #2 to '%s' (unknown option '%s'; known: %s)", fname,
                    tostring(k), caller.known(allowed)))
            end
        end
        return opts
    end

    -- a copy of v with each tensor moved into `tensors` under its path
    -- (prefix.key.key...) and replaced by {__tensor__ = path}
    local function strip(v, prefix, tensors, seen)
        if is_tensor(v) then
            if tensors[prefix] ~= nil then error("two tensors would both be named '" .. prefix .. "'", 0) end
            tensors[prefix] = v
            return {__tensor__ = prefix}
        end
        if type(v) ~= "table" then return v end
        if seen[v] then error("'" .. prefix .. "' is part of a cycle", 0) end
        seen[v] = true
        local out = {}
        for k, x in pairs(v) do
            if type(k) ~= "string" and math.type(k) ~= "integer" then
                error("'" .. prefix .. "' has a " .. type(k) .. " key; only strings and integers are stored", 0)
            end
            out[k] = strip(x, prefix .. "." .. tostring(k), tensors, seen)
        end
        seen[v] = nil
        return out
    end

    -- the inverse: each {__tensor__ = name} becomes the file's tensor
    local function restore(v, tensors)
        if type(v) ~= "table" then return v end
        local name = v.__tensor__
        if name ~= nil and next(v, next(v)) == nil then
            local t = tensors[name]
            if t == nil then error("refers to tensor '" .. tostring(name) .. "', which the file lacks", 0) end
            return t
        end
        for k, x in pairs(v) do v[k] = restore(x, tensors) end
        return v
    end

    local function json(fname, path, what, v)
        local ok, s = pcall(encode, v)
        if not ok then fail(fname, path, what .. ": " .. tostring(s):gsub("^.-%((.*)%)$", "%1")) end
        return s
    end

    local function unjson(fname, path, what, s)
        local v, err = decode(s)
        if err then fail(fname, path, "bad JSON in metadata '" .. what .. "': " .. err) end
        return v
    end

    local function state_dict_of(fname, path, obj, what)
        if type(obj) ~= "table" and type(obj) ~= "userdata" then
            fail(fname, path, what .. " must be an object with state_dict(), got a " .. type(obj))
        end
        local ok, sd = pcall(function() return obj:state_dict() end)
        if not ok then fail(fname, path, what .. ":state_dict() failed: " .. tostring(sd)) end
        if type(sd) ~= "table" then fail(fname, path, what .. ":state_dict() returned a " .. type(sd)) end
        return sd
    end

    -- tide.load's error without its own "load: " prefix
    local function load_file(fname, path)
        local ok, tensors, meta = pcall(tide.load, path)
        if not ok then caller.error(fname .. ": " .. tostring(tensors):gsub("^load: ", "")) end
        return tensors, meta
    end

    -- obj:state_dict() (tensors moved into `tensors`) as JSON for metadata `key`
    local function save_state(fname, path, obj, key, tensors, meta)
        local sd = state_dict_of(fname, path, obj, key)
        local ok, tree = pcall(strip, sd, key, tensors, {})
        if not ok then fail(fname, path, key .. " state: " .. tostring(tree)) end
        meta[key] = json(fname, path, key .. " state", tree)
    end

    -- the inverse, decoded only: the state dict for obj:load_state_dict
    local function decode_state(fname, path, key, tensors, meta)
        if meta[key] == nil then fail(fname, path, "the checkpoint holds no " .. key .. " state") end
        local tree = unjson(fname, path, key, meta[key])
        local ok, sd = pcall(restore, tree, tensors)
        if not ok then fail(fname, path, "the " .. key .. " state " .. tostring(sd)) end
        return sd
    end

    -- a copy of a state dict whose tensors do not alias the object's own
    -- (a module's state_dict() holds its very parameters, which
    -- load_state_dict overwrites in place)
    local function snapshot(v, seen)
        if is_tensor(v) then return v:clone() end
        if type(v) ~= "table" then return v end
        if seen[v] then return seen[v] end
        local out = {}
        seen[v] = out
        for k, x in pairs(v) do out[k] = snapshot(x, seen) end
        return out
    end

    local SAVE_OPTS = {model = true, optimizer = true, scheduler = true, loader = true, epoch = true, rng = true,
                       extra = true}

    function M.save(path, opts)
        local fname = "checkpoint.save"
        if type(path) ~= "string" then
            caller.error("bad argument #1 to '" .. fname .. "' (path expected, got " .. type(path) .. ")")
        end
        opts = check_options(fname, opts, SAVE_OPTS)
        local tensors = {}
        local meta = {["tide.checkpoint"] = VERSION}
        if opts.model ~= nil then
            for k, t in pairs(state_dict_of(fname, path, opts.model, "model")) do
                if not is_tensor(t) then
                    fail(fname, path, "model:state_dict() entry '" .. tostring(k) .. "' is a " .. type(t) ..
                        ", not a tensor")
                end
                tensors["model." .. tostring(k)] = t
            end
            meta.model = "true"
        end
        for _, key in ipairs({"optimizer", "scheduler", "loader"}) do
            if opts[key] ~= nil then save_state(fname, path, opts[key], key, tensors, meta) end
        end
        if opts.epoch ~= nil then
            if type(opts.epoch) ~= "number" then
                fail(fname, path, "epoch must be a number, got a " .. type(opts.epoch))
            end
            meta.epoch = json(fname, path, "epoch", opts.epoch)
        end
        if opts.rng ~= false then meta.rng = encode(core._rng_state()) end
        if opts.extra ~= nil then
            local ok, tree = pcall(strip, opts.extra, "extra", tensors, {})
            if not ok then fail(fname, path, "extra: " .. tostring(tree)) end
            meta.extra = json(fname, path, "extra", tree)
        end
        local ok, err = pcall(tide.save, path, tensors, {metadata = meta})
        if not ok then caller.error(fname .. ": " .. tostring(err):gsub("^save: ", "")) end
    end

    local LOAD_OPTS = {model = true, optimizer = true, scheduler = true, loader = true, rng = true}

    -- All or nothing, as far as the objects allow: the whole file is
    -- decoded and checked before any object is touched. If an object's own
    -- load_state_dict still fails, the objects already loaded (and the one
    -- that failed) get back the state they had before the call, from a copy
    -- taken just before; the error says whether that worked.
    function M.load(path, opts)
        local fname = "checkpoint.load"
        if type(path) ~= "string" then
            caller.error("bad argument #1 to '" .. fname .. "' (path expected, got " .. type(path) .. ")")
        end
        opts = check_options(fname, opts, LOAD_OPTS)
        local tensors, meta = load_file(fname, path)
        if meta["tide.checkpoint"] == nil then
            fail(fname, path, "not a tide checkpoint (no 'tide.checkpoint' in its metadata); use tide.load")
        end
        if meta["tide.checkpoint"] ~= VERSION then
            fail(fname, path, "checkpoint layout version " .. meta["tide.checkpoint"] ..
                " is not one this tide reads (" .. VERSION .. ")")
        end
        -- decode everything: {key, object, state dict}, in load order
        local steps = {}
        if opts.model ~= nil then
            if meta.model ~= "true" then fail(fname, path, "the checkpoint holds no model") end
            local sd = {}
            for k, t in pairs(tensors) do
                local name = k:match("^model%.(.*)$")
                if name then sd[name] = t end
            end
            steps[#steps + 1] = {"model", opts.model, sd}
        end
        -- the scheduler after the optimizer: both set the groups' lr, and
        -- the scheduler's state is what the run had when it was saved
        for _, key in ipairs({"optimizer", "scheduler", "loader"}) do
            if opts[key] ~= nil then
                steps[#steps + 1] = {key, opts[key], decode_state(fname, path, key, tensors, meta)}
            end
        end
        local rng
        if meta.rng ~= nil and opts.rng ~= false then
            rng = unjson(fname, path, "rng", meta.rng)
            local ok, err = pcall(core._set_rng_state, rng, true)
            if not ok then fail(fname, path, "metadata 'rng': " .. tostring(err)) end
        end
        local epoch = meta.epoch and unjson(fname, path, "epoch", meta.epoch)
        local extra
        if meta.extra ~= nil then
            local ok, v = pcall(restore, unjson(fname, path, "extra", meta.extra), tensors)
            if not ok then fail(fname, path, "extra " .. tostring(v)) end
            extra = v
        end
        -- then apply, keeping each object's old state until all are loaded
        local old = {}
        for i, step in ipairs(steps) do old[i] = snapshot(state_dict_of(fname, path, step[2], step[1]), {}) end
        for i, step in ipairs(steps) do
            local ok, err = pcall(function() return step[2]:load_state_dict(step[3]) end)
            if not ok then
                local restored, lost = {}, {}
                for j = i, 1, -1 do
                    local key, obj = steps[j][1], steps[j][2]
                    local ok2, err2 = pcall(function() return obj:load_state_dict(old[j]) end)
                    if ok2 then
                        table.insert(restored, 1, key)
                    else
                        table.insert(lost, 1, key .. " (" .. tostring(err2) .. ")")
                    end
                end
                local after = #lost == 0 and "; nothing was changed (" .. table.concat(restored, ", ") ..
                    " put back as they were)" or "; could not put back " .. table.concat(lost, ", ") ..
                    ", whose state is now partly the checkpoint's"
                fail(fname, path, step[1] .. ":load_state_dict: " .. tostring(err) .. after)
            end
        end
        if rng ~= nil then core._set_rng_state(rng) end
        return epoch, extra
    end

    -- the whole of a module's state_dict() as a plain safetensors file
    -- (the names are the state_dict's, as PyTorch's save_file writes them);
    -- tide.nn.Module's save/load call these
    function M.save_module(m, path)
        local fname = "checkpoint.save_module"
        if type(path) ~= "string" then
            caller.error("bad argument #2 to '" .. fname .. "' (path expected, got " .. type(path) .. ")")
        end
        local sd = state_dict_of(fname, path, m, "module")
        local ok, err = pcall(tide.save, path, sd)
        if not ok then
            local msg = tostring(err):gsub("^save: ", ""):gsub("^bad argument #2 to 'save' %((.*)%)$", path .. ": %1")
            caller.error(fname .. ": " .. msg)
        end
    end

    function M.load_module(m, path)
        local fname = "checkpoint.load_module"
        if type(path) ~= "string" then
            caller.error("bad argument #2 to '" .. fname .. "' (path expected, got " .. type(path) .. ")")
        end
        local sd = load_file(fname, path)
        local ok, err = pcall(function() return m:load_state_dict(sd) end)
        if not ok then fail(fname, path, "load_state_dict: " .. tostring(err)) end
        return m
    end

    tide.checkpoint = M
end

return M
