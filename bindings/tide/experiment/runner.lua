-- tide.experiment's runner: an Experiment on its output folder, named
-- variants that a rerun with the same settings loads instead of training,
-- and the standard classifier loop with its checkpoints and resume.
local tide = require "tide"
local caller = require "tide.caller"
local E = require "tide.experiment.api"
local flags = require "tide.experiment.flags"
local log = require "tide.experiment.log"
local factories = require "tide.experiment.factories"
local dist = require "tide.experiment.dist"

local cjson = log.cjson
local canon = flags.canon
local exists, mkdir_p, read_file, write_atomic = log.exists, log.mkdir_p, log.read_file, log.write_atomic
local parse_jsonl = log.parse_jsonl
local encode_record = log.encode_record
local is_loader = factories.is_loader

local Experiment = {}
Experiment.__index = Experiment

-- A new experiment writing to cfg.out (created when missing). Under
-- mpirun every rank makes one: rank 0 writes the files, and the others
-- get what it reads (see experiment/dist.lua).
function E.new(cfg, opts)
    opts = opts or {}
    if type(cfg) ~= "table" then caller.error("bad argument #1 to 'new' (cfg table expected)") end
    dist.setup()
    local self = setmetatable({}, Experiment)
    self.cfg = cfg
    self.name = opts.name or cfg._name or "experiment"
    self.out = cfg.out or ("runs/" .. self.name)
    self.quiet = opts.quiet or false
    self.progress = opts.progress or (self.quiet and "off" or nil)
    self.results, self.order = {}, {}
    self.histories = {}
    self.loaded = {}
    self.main = dist.main()
    if self.main then mkdir_p(self.out .. "/checkpoints") end
    self.jsonl = self.out .. "/metrics.jsonl"
    self.state_path = self.out .. "/state.json"
    local text = dist.read_shared(self.state_path)
    local state
    if text then
        local ok, v = pcall(cjson.decode, text)
        if ok and type(v) == "table" and type(v.variants) == "table" then state = v end
    end
    self.state = state or {variants = {}}
    self.started = os.time()
    return self
end

-- a line on stdout (rank 0 only)
function Experiment:say(...)
    if not self.quiet and self.main then print(...) end
end

-- <out>/<name>
function Experiment:path(name) return self.out .. "/" .. name end

function Experiment:checkpoint_path(variant) return self.out .. "/checkpoints/" .. variant .. ".safetensors" end
function Experiment:result_path(variant) return self.out .. "/checkpoints/" .. variant .. ".result.safetensors" end

function Experiment:_save_state()
    if self.main then write_atomic(self.state_path, cjson.encode(self.state) .. "\n") end
end

-- Appends one record to metrics.jsonl (variant defaults to the running
-- one); returns the record.
function Experiment:log(rec)
    rec.variant = rec.variant or self.current
    if rec.variant == nil then caller.error("experiment:log: the record names no variant") end
    local line = encode_record(rec)
    if self.main then
        local f, err = io.open(self.jsonl, "a")
        if not f then error("experiment: cannot append to '" .. self.jsonl .. "': " .. tostring(err), 0) end
        f:write(line, "\n")
        f:close()
    end
    local h = self.histories[rec.variant] or {}
    h[#h + 1] = rec
    self.histories[rec.variant] = h
    return rec
end

-- The records of a variant in metrics.jsonl, in epoch order (as rank 0
-- reads the file: under mpirun every rank calls it at the same point).
function Experiment:history(variant)
    local h = {}
    for _, r in ipairs(parse_jsonl(dist.read_shared(self.jsonl), self.jsonl)) do
        if r.variant == variant then h[#h + 1] = r end
    end
    table.sort(h, function(a, b) return (a.epoch or 0) < (b.epoch or 0) end)
    return h
end

-- drops a variant's lines from metrics.jsonl (those after epoch `after`
-- when given), and from its history in memory
function Experiment:_drop_lines(variant, after)
    local h = self.histories[variant]
    if h then
        local keep = {}
        for _, r in ipairs(h) do
            if after ~= nil and (tonumber(r.epoch) or 0) <= after then keep[#keep + 1] = r end
        end
        self.histories[variant] = keep
    end
    if not self.main then return end
    local text = read_file(self.jsonl)
    if not text then return end
    local keep, dropped = {}, false
    for line in text:gmatch("[^\n]+") do
        local ok, r = pcall(cjson.decode, line)
        local drop = ok and type(r) == "table" and r.variant == variant and
                     (after == nil or (tonumber(r.epoch) or 0) > after)
        if drop then dropped = true else keep[#keep + 1] = line end
    end
    if dropped then write_atomic(self.jsonl, #keep > 0 and table.concat(keep, "\n") .. "\n" or "") end
end

-- the parts of a result that a file can hold: numbers, strings, booleans,
-- tensors, plain tables of them
local function storable(v, seen)
    if tide.is_tensor(v) then return v:detach():to("cpu"):contiguous() end
    local t = type(v)
    if t == "number" or t == "string" or t == "boolean" then return v end
    if t ~= "table" or getmetatable(v) ~= nil then return nil end
    seen = seen or {}
    if seen[v] then return nil end
    seen[v] = true
    local out = {}
    for k, x in pairs(v) do
        if (type(k) == "string" or math.type(k) == "integer") then out[k] = storable(x, seen) end
    end
    seen[v] = nil
    return out
end

-- the extra table of a variant's stored result: true, extra or false, message
local function load_result(path)
    local ok, e, extra = pcall(tide.checkpoint.load, path, {rng = false})
    if ok then return true, extra end
    return false, e
end

local function check_variant_name(name)
    if type(name) ~= "string" or not name:match("^[%w_.+-]+$") then
        caller.error("experiment: a variant name is letters, digits and _ . + - (got '" .. tostring(name) .. "')")
    end
end

-- Runs fn(ex, name) as the variant `name`, unless a previous run in the
-- same folder finished it with the same settings: then its result is
-- loaded (with `skipped = true`). opts.settings: more values that define
-- the variant (they join cfg's settings in the key). Returns the result:
-- what fn returned plus `history` (its records in metrics.jsonl).
function Experiment:variant(name, opts, fn)
    if fn == nil then fn, opts = opts, nil end
    opts = opts or {}
    check_variant_name(name)
    if self.current then
        caller.error("experiment:variant: '" .. name .. "' started inside '" .. self.current .. "'")
    end
    local settings = E.settings(self.cfg)
    settings._variant = opts.settings
    local key = canon(settings)
    local st = self.state.variants[name]
    local result
    if not self.cfg.fresh and st and st.key == key and st.done then
        -- rank 0 decides whether the stored result can be loaded; the
        -- others then load it too
        local ok, extra
        if self.main and exists(self:result_path(name)) then ok, extra = load_result(self:result_path(name)) end
        if dist.bcast_bool(ok) and not self.main then
            ok, extra = load_result(self:result_path(name))
            if not ok then error("experiment: " .. tostring(extra), 0) end
        end
        if ok then
            result = extra or {}
            result.skipped = true
            result.history = self:history(name)
            self.histories[name] = result.history
            self.loaded[name] = true
            self:say(string.format("%s: finished in an earlier run with the same settings; loaded from %s",
                                   name, self:result_path(name)))
            if opts.on_skip then opts.on_skip(result) end
        end
    end
    if not result then
        if not st or st.key ~= key or self.cfg.fresh or st.done then
            -- a new start: nothing of an earlier run of this variant is kept
            self:_drop_lines(name)
            if self.main then
                os.remove(self:checkpoint_path(name))
                os.remove(self:result_path(name))
            end
            st = {key = key, done = false}
            self.state.variants[name] = st
            self:_save_state()
        end
        self.histories[name] = self:history(name)
        tide.manual_seed(self.cfg.seed or 0)
        self.current = name
        do
            -- cleared on return and on error alike; no pcall, so an error's
            -- traceback and tide.caller's walk to the user's line go through
            local _ <close> = setmetatable({}, {__close = function() self.current = nil end})
            result = fn(self, name) or {}
        end
        local keep = {}
        for k, v in pairs(result) do
            if k ~= "history" and k ~= "model" and k ~= "optimizer" then keep[k] = storable(v) end
        end
        if self.main then tide.checkpoint.save(self:result_path(name), {extra = keep, rng = false}) end
        result.history = result.history or self:history(name)
        st.done = true
        self:_save_state()
    end
    result.name = name
    if not self.results[name] then self.order[#self.order + 1] = name end
    self.results[name] = result
    return result
end

local function build(x, ...)
    if type(x) == "function" then return x(...) end
    return x
end

-- Under mpirun, the test set split over the ranks: {loader, per, n} for
-- this rank's contiguous part (per = ceil(n / ranks) rows, fewer for the
-- last), or nil where it is not split (one process, a DataLoader given as
-- the test set, or too few samples for every rank to get some)
local function test_part(test, batch_size, transform)
    if not dist.active() or is_loader(test) or type(test) ~= "table" or not tide.is_tensor(test.images) then
        return nil
    end
    local n, w = #test, dist.world()
    local per = (n + w - 1) // w
    if (w - 1) * per >= n then return nil end
    local first = dist.rank() * per
    local part = tide.data.subset(test, tide.arange(first, math.min(n, first + per)))
    return {loader = E.loader(part, {batch_size = batch_size, transform = transform}), per = per, n = n}
end

-- the model's logits and labels over the whole test set: each rank runs
-- its part, and every rank gets all of them in order
local function evaluate_test(model, test_loader, part, device, precision)
    local o = {device = device, precision = precision}
    if not part then return E.evaluate(model, test_loader, o) end
    local logits, labels = E.evaluate(model, part.loader, o)
    return dist.gather_rows(logits, part.n, part.per), dist.gather_rows(labels, part.n, part.per)
end

-- The standard classifier loop, as a variant (opts.variant) or inside
-- one. See docs/experiment.md for the options, and its "Several
-- processes" for what changes under mpirun: DDP over SyncBatchNorm, the
-- training data and the global batch split over the ranks, the test set
-- split and gathered, the epoch's numbers summed over the ranks, rank 0
-- writing.
function Experiment:train_classifier(opts)
    if not self.current then
        local variant = opts.variant
        if not variant then caller.error("experiment:train_classifier: name the variant (variant = ...)") end
        return self:variant(variant, {settings = opts.settings, on_skip = function(result)
            local model = build(opts.model)
            if model then
                if self.cfg.device ~= "cpu" then model:to(self.cfg.device) end
                if exists(self:checkpoint_path(variant)) then
                    tide.checkpoint.load(self:checkpoint_path(variant), {model = model, rng = false})
                end
                model:evaluate()
                result.model = model
            end
        end}, function() return self:train_classifier(opts) end)
    end
    local cfg = self.cfg
    local variant = self.current
    local device = opts.device or cfg.device or "cpu"
    local epochs = opts.epochs or cfg.epochs
    local model = build(opts.model)
    if not model then caller.error("experiment:train_classifier: no model") end
    if device ~= "cpu" then model:to(device) end
    local optimizer = opts.optimizer and build(opts.optimizer, model) or E.optimizer(cfg, model)
    local scheduler = opts.scheduler and build(opts.scheduler, optimizer) or nil
    local per_batch = opts.schedule == "batch"
    local loss_fn = opts.loss or function(logits, y) return tide.F.cross_entropy(logits, y) end
    local eval_loss = opts.eval_loss or loss_fn
    local acc_fn = opts.accuracy
    if acc_fn == nil then acc_fn = function(logits, y) return tide.metrics.accuracy(logits, y) end end
    -- test NLL and ECE need class scores and int64 labels, as the default accuracy
    local calibration = opts.calibration
    if calibration == nil then calibration = opts.accuracy == nil end
    local data = opts.data or {}
    local train = opts.train or data.train
    local test = opts.test or data.test
    if not train then caller.error("experiment:train_classifier: no training data (train = ...)") end
    local train_tf = opts.transform or data.train_transform
    local test_tf = opts.test_transform or data.test_transform or opts.transform
    -- several processes: the batch size is the global one, each rank takes
    -- its share of it from its share of the data (a DistributedSampler
    -- whose first epoch has the single-process loader's order, so the
    -- first epoch's global batches are a single process's)
    local world, rank = dist.world(), dist.rank()
    local batch = opts.batch_size or cfg.batch_size
    local sampler
    if dist.active() and not is_loader(train) then
        if batch % world ~= 0 then
            caller.error(string.format("experiment:train_classifier: the batch size %d is the global batch of "
                                       .. "the %d processes, so it must be a multiple of %d (each process takes "
                                       .. "an equal share); use --batch-size %d or %d, say",
                                       batch, world, world, math.max(world, batch - batch % world),
                                       batch - batch % world + world))
        end
        batch = batch // world
        sampler = tide.data.DistributedSampler(train, {shuffle = true, seed = cfg.seed or 0})
    end
    local loader = E.loader(train, {batch_size = batch, shuffle = sampler == nil, sampler = sampler,
                                    seed = (cfg.seed or 0) + rank, transform = train_tf,
                                    drop_last = opts.drop_last})
    local total, unit = #loader, "batch"
    if not is_loader(train) then
        total, unit = sampler and #sampler * world or #train, "img"
        if opts.drop_last then total = #loader * batch * world end
    end
    local eval_batch = opts.eval_batch_size or 500
    local part = test and test_part(test, eval_batch, test_tf)
    local test_loader = test and not part and E.loader(test, {batch_size = eval_batch, transform = test_tf})

    -- resume an interrupted run of this variant from its last checkpoint;
    -- rank 0 decides (0: none, -1: unusable, e: resume after epoch e)
    local ckpt = self:checkpoint_path(variant)
    local start = 1
    if opts.checkpoint ~= false then
        local code, why, extra = 0, nil, nil
        if self.main and exists(ckpt) then
            local ok, e, x = pcall(tide.checkpoint.load, ckpt, {model = model, optimizer = optimizer})
            if ok and math.type(e) == "integer" and e >= 1 and e <= epochs then
                code, extra = e, x
            else
                code = -1
                if not ok then why = tostring(e) end
            end
        end
        code = dist.bcast_int(code)
        if code >= 1 then
            if not self.main then
                local _, x = tide.checkpoint.load(ckpt, {model = model, optimizer = optimizer})
                extra = x
            end
            if scheduler and extra and extra.scheduler then scheduler:load_state_dict(extra.scheduler) end
            self:_drop_lines(variant, code)
            start = code + 1
            -- the loader's generator: one started epoch per finished one
            for _ = 1, code do for _ in loader:iter() do break end end -- luacheck: ignore 512
            self:say(string.format("%s: resuming after epoch %d from %s", variant, code, ckpt))
        elseif code == -1 then
            -- unreadable or from another run: start over
            if self.main then os.remove(ckpt) end
            self:_drop_lines(variant)
            if why then self:say(string.format("%s: ignoring %s (%s)", variant, ckpt, why)) end
            model = build(opts.model)
            if device ~= "cpu" then model:to(device) end
            optimizer = opts.optimizer and build(opts.optimizer, model) or E.optimizer(cfg, model)
            scheduler = opts.scheduler and build(opts.scheduler, optimizer) or nil
        end
    end

    -- several processes: batch norm over the global batch, and gradients
    -- averaged over the ranks; `model` stays the plain module (checkpoints,
    -- callbacks and the result hold it, as in one process)
    local net = model
    if dist.active() then
        model = tide.nn.SyncBatchNorm.convert(model)
        net = tide.nn.DistributedDataParallel(model)
    end

    -- mixed precision (--precision): the forward under autocast, the loss
    -- on float32 logits, so every loss (the table's and the recipes' own)
    -- computes in float32; float16 scales the loss (GradScaler)
    local precision = opts.precision or cfg.precision or "float32"
    local scaler = precision == "float16" and tide.amp.GradScaler() or nil
    local function forward(x)
        if precision == "float32" then return net(x) end
        return tide.autocast(precision, net, x):float()
    end

    local logits, labels
    for epoch = start, epochs do
        -- epochs count from 0 for the sampler, as PyTorch's
        if sampler then
            sampler:set_epoch(epoch - 1)
        elseif dist.active() and type(loader.set_epoch) == "function" then
            loader:set_epoch(epoch - 1)
        end
        local mode = opts.progress or self.progress
        if not self.main then mode = "off" end
        local bar = tide.progress.new{total = total, desc = string.format("%s %d/%d", variant, epoch, epochs),
                                      unit = unit, order = {"loss", "acc"}, mode = mode}
        net:train()
        local seen, loss_sum, correct = 0, 0, 0
        local t0 = tide.clock()
        local lr = optimizer.param_groups and optimizer.param_groups[1].lr
        for x, y in loader:iter() do
            if device ~= "cpu" then x, y = x:to(device), y:to(device) end
            optimizer:zero_grad()
            local out = forward(x)
            local loss = loss_fn(out, y, epoch)
            if scaler then
                scaler:scale(loss):backward()
                scaler:unscale_(optimizer) -- before_step sees true gradients
                if opts.before_step then opts.before_step(model, epoch) end
                scaler:step(optimizer)
                scaler:update()
            else
                loss:backward()
                if opts.before_step then opts.before_step(model, epoch) end
                optimizer:step()
            end
            if scheduler and per_batch then scheduler:step() end
            local n = x:size(0)
            seen = seen + n
            loss_sum = loss_sum + loss:item() * n
            local stats = {loss = loss_sum / seen}
            if acc_fn then
                correct = correct + acc_fn(out:detach(), y) * n
                stats.acc = correct / seen
            end
            bar:update(unit == "img" and n * world or 1, stats)
        end
        bar:close()
        if scheduler and not per_batch then scheduler:step() end
        local seconds = tide.clock() - t0
        if dist.active() then
            -- the epoch's numbers over every rank's batches
            local sums = dist.all_reduce({seen, loss_sum, correct}, "sum")
            seen, loss_sum, correct = sums[1], sums[2], sums[3]
        end
        local rec = {variant = variant, epoch = epoch, train_loss = loss_sum / seen, seconds = seconds, lr = lr}
        if acc_fn then rec.train_acc = correct / seen end
        if test then
            local t1 = tide.clock()
            logits, labels = evaluate_test(model, test_loader, part, device, precision)
            tide.no_grad(function() rec.test_loss = eval_loss(logits, labels, epoch):item() end)
            if acc_fn then rec.test_acc = acc_fn(logits, labels) end
            if calibration then
                rec.test_nll = tide.metrics.nll(logits, labels)
                rec.ece = tide.metrics.ece(logits, labels)
            end
            rec.eval_seconds = tide.clock() - t1
        end
        if dist.active() then
            -- the times of the slowest rank
            local t = dist.all_reduce({rec.seconds, rec.eval_seconds or 0}, "max")
            rec.seconds = t[1]
            if rec.eval_seconds then rec.eval_seconds = t[2] end
        end
        if opts.on_epoch then
            local more = opts.on_epoch(rec, model, epoch, logits, labels)
            if type(more) == "table" then for k, v in pairs(more) do rec[k] = v end end
        end
        self:log(rec)
        if opts.checkpoint ~= false and self.main then
            tide.checkpoint.save(ckpt, {model = model, optimizer = optimizer, epoch = epoch,
                                        extra = scheduler and {scheduler = scheduler:state_dict()} or nil})
        end
        if not self.quiet and self.main then
            local parts = {string.format("%s epoch %d/%d: train loss %.4f", variant, epoch, epochs, rec.train_loss)}
            if rec.train_acc then parts[#parts + 1] = string.format("acc %.2f%%", 100 * rec.train_acc) end
            if rec.test_acc then parts[#parts + 1] = string.format("test acc %.2f%%", 100 * rec.test_acc) end
            if rec.ece then parts[#parts + 1] = string.format("ECE %.4f", rec.ece) end
            parts[#parts + 1] = string.format("%.1f s", rec.seconds)
            print(table.concat(parts, ", "))
        end
    end
    if loader ~= train then loader:close() end
    if test_loader and test_loader ~= test then test_loader:close() end
    if test and logits == nil then
        logits, labels = evaluate_test(model, test_loader, part, device)
    end
    if part then part.loader:close() end
    model:evaluate()
    -- the wrapper's gradient reducer stops listening to backward passes
    if net ~= model then net:close() end
    local history = self:history(variant)
    local secs = 0
    for _, r in ipairs(history) do secs = secs + (r.seconds or 0) end
    return {history = history, final = history[#history], logits = logits, labels = labels, model = model,
            optimizer = optimizer, seconds_per_epoch = #history > 0 and secs / #history or nil,
            checkpoint = ckpt}
end

E.Experiment = Experiment
