-- tide.data: datasets, the DataLoader, transforms, imbalance, weighted
-- and distributed sampling. The readers and the prefetch thread are C
-- (runtime/data_*.c, bindings/core/l_data.c); this file checks options and
-- gives them their Lua shape. See docs/data.md.
local M = {}

local FASHION_DIR = "/usr/share/datasets/fashion-mnist"
local FASHION_HINT = "Debian's dataset-fashion-mnist package provides it (apt-get install dataset-fashion-mnist)"
local CIFAR_HINT = "get the binary version (cifar-10-binary.tar.gz) from https://www.cs.toronto.edu/~kriz/cifar.html "
    .. "and pass its cifar-10-batches-bin folder as dir"

local FASHION_CLASSES = { "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot" }
local MNIST_CLASSES = { "0", "1", "2", "3", "4", "5", "6", "7", "8", "9" }
local CIFAR_CLASSES = { "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck" }

local function copy(list)
    local r = {}
    for i, v in ipairs(list) do r[i] = v end
    return r
end

local caller = require "tide.caller"

-- raise "fname: msg" at the user's line (the checks sit at varying depths)
local function fail(fname, fmt, ...)
    caller.error(fname .. ": " .. string.format(fmt, ...))
end

-- opts must be nil or a table with only the allowed keys
local function check_options(fname, opts, allowed)
    if opts == nil then return {} end
    if type(opts) ~= "table" then fail(fname, "options must be a table, got %s", type(opts)) end
    for k in pairs(opts) do
        if type(k) ~= "string" or not allowed[k] then
            fail(fname, "unknown option '%s'; known: %s", tostring(k), caller.known(allowed))
        end
    end
    return opts
end

local function set(...)
    local s = {}
    for _, k in ipairs({ ... }) do s[k] = true end
    return s
end

local function opt_integer(fname, opts, key, def, min)
    local v = opts[key]
    if v == nil then return def end
    if math.type(v) ~= "integer" then
        if type(v) == "number" and v == math.floor(v) then
            v = math.tointeger(v)
        else
            fail(fname, "option '%s' must be an integer, got %s", key, tostring(v))
        end
    end
    if min and v < min then fail(fname, "option '%s' must be at least %d, got %d", key, min, v) end
    return v
end

local function opt_boolean(fname, opts, key, def)
    local v = opts[key]
    if v == nil then return def end
    if type(v) ~= "boolean" then fail(fname, "option '%s' must be a boolean, got %s", key, type(v)) end
    return v
end

local function opt_number(fname, opts, key, def, lo, hi)
    local v = opts[key]
    if v == nil then return def end
    if type(v) ~= "number" then fail(fname, "option '%s' must be a number, got %s", key, type(v)) end
    if (lo and v < lo) or (hi and v > hi) then
        fail(fname, "option '%s' must be in [%g, %g], got %g", key, lo or -math.huge, hi or math.huge, v)
    end
    return v
end

function M.install(tide, core)
    core._data_init()
    local data = {}
    tide.data = data

    local function is_tensor(v)
        return type(v) == "userdata" and getmetatable(v) == core._metatable
    end

    ---------------------------------------------------------------- datasets
    local Dataset = {}
    Dataset.__index = Dataset
    Dataset.__name = "tide.data.Dataset"
    function Dataset.__len(ds) return ds.images:size(0) end
    function Dataset:get(i)
        local n = self.images:size(0)
        if math.type(i) ~= "integer" then
            if type(i) == "number" and i == math.floor(i) then
                i = math.tointeger(i)
            else
                error(string.format("bad argument #1 to 'get' (index must be an integer, got %s)", tostring(i)), 2)
            end
        end
        if i < 0 or i >= n then
            error(string.format("bad argument #1 to 'get' (index %d is out of range [0, %d))", i, n), 2)
        end
        local img = self.images:select(0, i)
        local lab
        if self.labels:dim() == 1 then
            lab = self.labels:get(i)
            lab = math.tointeger(lab) or lab
        else
            lab = self.labels:select(0, i)
        end
        return img, lab
    end
    function Dataset.__tostring(ds)
        local s = ds.images:shape()
        local parts = {}
        for k = 1, #s do parts[k] = tostring(s[k]) end
        return string.format("Dataset(%d samples, images (%s) %s, %s classes)", #ds, table.concat(parts, ", "),
            ds.images:dtype(), ds.classes and tostring(#ds.classes) or "no")
    end

    local function dataset(images, labels, classes)
        return setmetatable({ images = images, labels = labels, classes = classes }, Dataset)
    end

    function data.TensorDataset(x, y)
        if not is_tensor(x) then fail("TensorDataset", "x must be a tensor, got %s", type(x)) end
        if not is_tensor(y) then fail("TensorDataset", "y must be a tensor, got %s", type(y)) end
        if x:dim() < 1 or y:dim() < 1 or x:size(0) ~= y:size(0) then
            fail("TensorDataset", "x and y need the same first dim, got %d and %d",
                x:dim() > 0 and x:size(0) or -1, y:dim() > 0 and y:size(0) or -1)
        end
        return dataset(x, y, nil)
    end

    local function check_split(fname, opts)
        local split = opts.split or "train"
        if split ~= "train" and split ~= "test" then
            fail(fname, "option 'split' must be \"train\" or \"test\", got %s", tostring(split))
        end
        return split
    end

    local split_opts = set("dir", "split")

    function data.fashion_mnist(opts)
        opts = check_options("fashion_mnist", opts, split_opts)
        local dir = opts.dir or FASHION_DIR
        if type(dir) ~= "string" then fail("fashion_mnist", "option 'dir' must be a string") end
        local split = check_split("fashion_mnist", opts)
        local x, y = core._mnist(dir, split, FASHION_HINT, "fashion_mnist")
        return dataset(x, y, copy(FASHION_CLASSES))
    end

    function data.mnist(opts)
        opts = check_options("mnist", opts, split_opts)
        if type(opts.dir) ~= "string" then fail("mnist", "option 'dir' (the folder of the IDX files) is required") end
        local split = check_split("mnist", opts)
        local x, y = core._mnist(opts.dir, split, nil, "mnist")
        return dataset(x, y, copy(MNIST_CLASSES))
    end

    function data.cifar10(opts)
        opts = check_options("cifar10", opts, split_opts)
        if type(opts.dir) ~= "string" then
            fail("cifar10", "option 'dir' (the folder of data_batch_1.bin ... test_batch.bin) is required; %s",
                CIFAR_HINT)
        end
        local split = check_split("cifar10", opts)
        local x, y = core._cifar10(opts.dir, split, CIFAR_HINT, "cifar10")
        return dataset(x, y, copy(CIFAR_CLASSES))
    end

    local function check_dataset(fname, ds)
        if type(ds) ~= "table" or not is_tensor(ds.images) or not is_tensor(ds.labels) then
            fail(fname, "expected a dataset {images = tensor, labels = tensor}, got %s", type(ds))
        end
    end

    -- an int64 index tensor from a tensor or a Lua list of 0-based indices
    local function index_tensor(fname, idx, n)
        local t
        if is_tensor(idx) then
            t = idx:long():contiguous()
        elseif type(idx) == "table" then
            t = tide.tensor(#idx > 0 and idx or { 0 }, "int64")
            if #idx == 0 then t = t:narrow(0, 0, 0) end
        else
            fail(fname, "indices must be a tensor or a list, got %s", type(idx))
        end
        if t:dim() ~= 1 then fail(fname, "indices must be a vector") end
        if t:numel() > 0 then
            local lo, hi = t:min():item(), t:max():item()
            if lo < 0 or hi >= n then
                fail(fname, "index %d is outside [0, %d)", lo < 0 and lo or hi, n)
            end
        end
        return t
    end

    local function take(ds, idx)
        local r = dataset(ds.images:index_select(0, idx), ds.labels:index_select(0, idx), ds.classes)
        return r
    end

    function data.subset(ds, n_or_indices)
        check_dataset("subset", ds)
        local n = ds.images:size(0)
        local idx
        if type(n_or_indices) == "number" then
            local k = math.tointeger(n_or_indices)
            if not k or k < 0 or k > n then
                fail("subset", "size must be an integer in [0, %d], got %s", n, tostring(n_or_indices))
            end
            idx = core._generator(0):permutation(k, true)
        else
            idx = index_tensor("subset", n_or_indices, n)
        end
        return take(ds, idx)
    end

    -- per-class lists of sample indices (0-based), classes 0..K-1
    local function by_class(ds)
        local labels = ds.labels:long():totable()
        local K = ds.classes and #ds.classes or 0
        for _, v in ipairs(labels) do if v + 1 > K then K = v + 1 end end
        local lists = {}
        for c = 0, K - 1 do lists[c] = {} end
        for i, v in ipairs(labels) do
            if v < 0 then fail("imbalance", "label %d of sample %d is negative", v, i - 1) end
            local l = lists[v]
            l[#l + 1] = i - 1
        end
        return lists, K
    end

    -- shares of R samples over the K - 1 classes other than m: R // (K-1)
    -- each, one more for the first R % (K-1) of them in class order
    local function shares(R, K, m)
        local others = K - 1
        local q, rem, s = R // others, R % others, {}
        local j = 0
        for c = 0, K - 1 do
            if c ~= m then
                s[c] = q + (j < rem and 1 or 0)
                j = j + 1
            end
        end
        return s
    end

    local function fits(lists, s)
        for c, need in pairs(s) do
            if need > #lists[c] then return false, c end
        end
        return true
    end

    local imbalance_opts = set("majority", "fraction", "size", "seed")
    function data.imbalance(ds, opts)
        check_dataset("imbalance", ds)
        opts = check_options("imbalance", opts, imbalance_opts)
        local lists, K = by_class(ds)
        local m = opt_integer("imbalance", opts, "majority", 0, 0)
        local f = opt_number("imbalance", opts, "fraction", 0.9, 0, 1)
        if m >= K then fail("imbalance", "majority class %d is outside [0, %d)", m, K) end
        if K < 2 then fail("imbalance", "needs at least two classes") end
        if f <= 0 or f >= 1 then fail("imbalance", "option 'fraction' must be in (0, 1), got %g", f) end
        local size = opts.size and opt_integer("imbalance", opts, "size", nil, 1)
        local nmaj, s
        if size then
            nmaj = math.floor(f * size + 0.5 + 1e-9)
            s = shares(size - nmaj, K, m)
            if nmaj > #lists[m] then
                fail("imbalance", "size %d needs %d images of class %d, the data set has %d", size, nmaj, m, #lists[m])
            end
            local ok, c = fits(lists, s)
            if not ok then
                fail("imbalance", "size %d needs %d images of class %d, the data set has %d", size, s[c], c, #lists[c])
            end
        else
            -- the largest majority count whose shares all fit
            local function plan(k) return shares(math.floor(k * (1 - f) / f + 0.5 + 1e-9), K, m) end
            local lo, hi = 0, #lists[m]
            while lo < hi do
                local mid = (lo + hi + 1) // 2
                if fits(lists, plan(mid)) then lo = mid else hi = mid - 1 end
            end
            nmaj, s = lo, plan(lo)
            if nmaj == 0 then fail("imbalance", "no image of class %d to keep", m) end
        end
        s[m] = nmaj
        -- which images: a seeded random choice within each class, then kept
        -- in the data set's order
        local g = core._generator(opts.seed and opt_integer("imbalance", opts, "seed", nil) or nil)
        local keep = {}
        for c = 0, K - 1 do
            local list, need = lists[c], s[c] or 0
            if need > 0 then
                local perm = g:permutation(#list):totable()
                for j = 1, need do keep[#keep + 1] = list[perm[j] + 1] end
            end
        end
        table.sort(keep)
        return take(ds, index_tensor("imbalance", keep, #ds))
    end

    ---------------------------------------------------------------- sampler
    -- An epoch's draws come from a generator seeded by (seed, epoch) alone,
    -- never from a generator that runs on across epochs: epoch e's order
    -- is the same whether the run got there in one go or through a resume.
    local function epoch_generator(seed, epoch)
        return core._generator(seed ~ (epoch * 0x3c6ef372fe94f82b))
    end

    -- a seed from tide's generator (so tide.manual_seed fixes it)
    local function fresh_seed() return core._generator():key() end

    -- an epoch number as an integer >= 0, or nil
    local function epoch_value(e)
        local v = type(e) == "number" and math.tointeger(e) or nil
        if v and v >= 0 then return v end
        return nil
    end

    -- state_dict/load_state_dict for a seeded object: {seed, epoch}
    local function seed_epoch_state(self) return { seed = self.seed, epoch = self.epoch } end
    local function load_seed_epoch(self, fname, sd)
        if type(sd) ~= "table" or math.type(sd.seed) ~= "integer" or epoch_value(sd.epoch) == nil then
            fail(fname, "state_dict must be a table {seed = integer, epoch = integer >= 0}, got %s", type(sd))
        end
        self.seed, self.epoch = sd.seed, epoch_value(sd.epoch)
    end

    local WeightedSampler = {}
    WeightedSampler.__index = WeightedSampler
    WeightedSampler.__name = "tide.data.WeightedSampler"
    function WeightedSampler.__len(s) return s.num_samples end
    -- this epoch's draws; the next call draws the next epoch's
    function WeightedSampler:indices()
        local e = self.epoch
        self.epoch = e + 1
        return epoch_generator(self.seed, e):weighted(self.weights, self.num_samples, self.replacement)
    end
    function WeightedSampler:set_epoch(epoch)
        local e = epoch_value(epoch)
        if e == nil then
            fail("WeightedSampler", "set_epoch needs a non-negative integer epoch, got %s", tostring(epoch))
        end
        self.epoch = e
    end
    WeightedSampler.state_dict = seed_epoch_state
    function WeightedSampler:load_state_dict(sd) load_seed_epoch(self, "WeightedSampler:load_state_dict", sd) end

    local sampler_opts = set("num_samples", "replacement", "seed")
    function data.WeightedSampler(weights, opts)
        opts = check_options("WeightedSampler", opts, sampler_opts)
        local w
        if is_tensor(weights) then
            w = weights:double():contiguous()
        elseif type(weights) == "table" and #weights > 0 then
            w = tide.tensor(weights, "float64")
        else
            fail("WeightedSampler", "weights must be a non-empty tensor or list, got %s", type(weights))
        end
        if w:dim() ~= 1 then fail("WeightedSampler", "weights must be a vector") end
        local s = setmetatable({
            weights = w,
            num_samples = opt_integer("WeightedSampler", opts, "num_samples", w:numel(), 0),
            replacement = opt_boolean("WeightedSampler", opts, "replacement", true),
            seed = opts.seed and opt_integer("WeightedSampler", opts, "seed", nil) or fresh_seed(),
            epoch = 0,
        }, WeightedSampler)
        -- check the weights once, now, rather than at the first epoch
        core._generator(0):weighted(w, s.replacement and math.min(s.num_samples, 1) or s.num_samples, s.replacement)
        return s
    end

    -------------------------------------------------------- distributed
    -- PyTorch's DistributedSampler: each of num_replicas ranks takes every
    -- num_replicas-th index (from its rank on) of one order of the data set
    -- that every rank computes alike
    local DistributedSampler = {}
    DistributedSampler.__index = DistributedSampler
    DistributedSampler.__name = "tide.data.DistributedSampler"
    function DistributedSampler.__len(s) return s.num_samples end
    function DistributedSampler.__tostring(s)
        return string.format("DistributedSampler(rank %d of %d, %d of %d samples, %s, seed %d, epoch %d%s)",
            s.rank, s.num_replicas, s.num_samples, s.n, s.shuffle and "shuffled" or "in order", s.seed, s.epoch,
            s.drop_last and ", drop_last" or "")
    end

    -- this epoch's indices for this rank (an int64 tensor, 0-based)
    function DistributedSampler:indices()
        local n, total = self.n, self.total_size
        local order
        if self.shuffle then
            -- the same seed and epoch give the same permutation on every rank
            order = core._generator(self.seed + self.epoch):permutation(n):totable()
        else
            order = {}
            for i = 1, n do order[i] = i - 1 end
        end
        -- pad by repeating the order from its start (as often as needed),
        -- or drop the tail, to total_size
        for i = n + 1, total do order[i] = order[(i - 1) % n + 1] end
        local mine = {}
        for i = self.rank + 1, total, self.num_replicas do mine[#mine + 1] = order[i] end
        if #mine == 0 then return tide.tensor({ 0 }, "int64"):narrow(0, 0, 0) end
        return tide.tensor(mine, "int64")
    end

    function DistributedSampler:set_epoch(epoch)
        local e = epoch_value(epoch)
        if e == nil then
            fail("DistributedSampler", "set_epoch needs a non-negative integer epoch, got %s", tostring(epoch))
        end
        self.epoch = e
    end
    DistributedSampler.state_dict = seed_epoch_state
    function DistributedSampler:load_state_dict(sd)
        load_seed_epoch(self, "DistributedSampler:load_state_dict", sd)
    end

    -- the world from tide.distributed when it is there and initialized
    -- (it may be absent: never an error then), else one process, rank 0
    local function default_world()
        local ok, d = pcall(function() return tide.distributed end)
        if not ok or type(d) ~= "table" or type(d.is_initialized) ~= "function" then return 1, 0 end
        local ok2, init = pcall(d.is_initialized)
        if not ok2 or not init then return 1, 0 end
        return d.world_size(), d.rank()
    end

    local function dataset_size(ds)
        if type(ds) == "table" and is_tensor(ds.images) then return ds.images:size(0) end
        local mt = getmetatable(ds)
        if type(ds) == "table" or (type(mt) == "table" and mt.__len) then
            local n = #ds
            if math.type(n) == "integer" and n >= 0 then return n end
        elseif math.type(ds) == "integer" and ds >= 0 then
            return ds
        end
        fail("DistributedSampler", "expected a dataset (or its size, a non-negative integer), got %s", type(ds))
    end

    local distributed_opts = set("num_replicas", "rank", "shuffle", "seed", "drop_last")
    function data.DistributedSampler(ds, opts)
        local n = dataset_size(ds)
        opts = check_options("DistributedSampler", opts, distributed_opts)
        local world, rank
        if opts.num_replicas == nil or opts.rank == nil then world, rank = default_world() end
        local w = opt_integer("DistributedSampler", opts, "num_replicas", nil, 1)
        if w == nil then
            if math.type(world) ~= "integer" or world < 1 then
                fail("DistributedSampler", "tide.distributed.world_size() gave %s, not a positive integer",
                    tostring(world))
            end
            w = world
        end
        local r = opt_integer("DistributedSampler", opts, "rank", nil, 0)
        if r == nil then
            if math.type(rank) ~= "integer" or rank < 0 then
                fail("DistributedSampler", "tide.distributed.rank() gave %s, not a non-negative integer",
                    tostring(rank))
            end
            r = rank
        end
        if r >= w then
            fail("DistributedSampler", "option 'rank' must be in [0, %d) (num_replicas is %d), got %d", w, w, r)
        end
        local drop_last = opt_boolean("DistributedSampler", opts, "drop_last", false)
        local num_samples
        if drop_last then num_samples = n // w else num_samples = (n + w - 1) // w end
        return setmetatable({
            n = n,
            num_replicas = w,
            rank = r,
            shuffle = opt_boolean("DistributedSampler", opts, "shuffle", true),
            seed = opt_integer("DistributedSampler", opts, "seed", 0),
            drop_last = drop_last,
            num_samples = num_samples,
            total_size = num_samples * w,
            epoch = 0,
        }, DistributedSampler)
    end

    ------------------------------------------------------------- transforms
    local T = {}
    data.transforms = T
    local Transform = { __name = "tide.data.Transform" }
    Transform.__index = Transform
    function Transform.__tostring(t) return "transform " .. t.kind end

    local function numbers(fname, v, what)
        if type(v) == "number" then return { v } end
        if is_tensor(v) then v = v:double():totable() end
        if type(v) ~= "table" or #v == 0 then fail(fname, "%s must be a number or a list of numbers", what) end
        for i, x in ipairs(v) do
            if type(x) ~= "number" then fail(fname, "%s[%d] is a %s, not a number", what, i, type(x)) end
        end
        return copy(v)
    end

    function T.normalize(mean, std)
        local m, s = numbers("normalize", mean, "mean"), numbers("normalize", std, "std")
        if #m ~= #s then fail("normalize", "mean has %d values but std has %d", #m, #s) end
        if #m > 16 then fail("normalize", "at most 16 channels") end
        for i, x in ipairs(s) do
            if x == 0 then fail("normalize", "std[%d] is zero", i) end
        end
        return setmetatable({ kind = "normalize", mean = m, std = s }, Transform)
    end

    function T.random_crop(size, opts)
        opts = check_options("random_crop", opts, set("padding"))
        local h, w
        if type(size) == "number" then
            h, w = size, size
        elseif type(size) == "table" and #size == 2 then
            h, w = size[1], size[2]
        else
            fail("random_crop", "size must be a number or {h, w}")
        end
        h, w = math.tointeger(h), math.tointeger(w)
        if not h or not w or h < 1 or w < 1 then fail("random_crop", "size must be positive integers") end
        local pad = opt_integer("random_crop", opts, "padding", 0, 0)
        return setmetatable({ kind = "random_crop", h = h, w = w, padding = pad }, Transform)
    end

    function T.random_hflip(opts)
        opts = check_options("random_hflip", opts, set("p"))
        return setmetatable({ kind = "random_hflip", p = opt_number("random_hflip", opts, "p", 0.5, 0, 1) }, Transform)
    end

    -- split a transform option into the C list and the Lua functions after it
    local function split_transforms(tf)
        if tf == nil then return nil, {} end
        if type(tf) == "function" or getmetatable(tf) == Transform then tf = { tf } end
        if type(tf) ~= "table" then
            fail("DataLoader", "option 'transform' must be a transform, a function or a list of them")
        end
        local cs, fns = {}, {}
        for i, t in ipairs(tf) do
            if type(t) == "function" then
                fns[#fns + 1] = t
            elseif getmetatable(t) == Transform then
                if #fns > 0 then
                    fail("DataLoader", "transform %d: built-in transforms run on the loader thread before any "
                        .. "Lua function, so they cannot follow one", i)
                end
                cs[#cs + 1] = t
            else
                fail("DataLoader", "transform %d is a %s, not a tide.data.transforms one or a function", i, type(t))
            end
        end
        return cs, fns
    end

    -------------------------------------------------------------- DataLoader
    local DataLoader = {}
    DataLoader.__index = DataLoader
    DataLoader.__name = "tide.data.DataLoader"

    local loader_opts = set("batch_size", "shuffle", "drop_last", "transform", "sampler", "seed", "device",
        "pin_memory")
    function data.DataLoader(ds, opts)
        check_dataset("DataLoader", ds)
        opts = check_options("DataLoader", opts, loader_opts)
        local self = setmetatable({
            dataset = ds,
            batch_size = opt_integer("DataLoader", opts, "batch_size", 1, 1),
            shuffle = opt_boolean("DataLoader", opts, "shuffle", false),
            drop_last = opt_boolean("DataLoader", opts, "drop_last", false),
            sampler = opts.sampler,
            -- the next epoch to start, and the batches of it already
            -- consumed (only after load_state_dict of a stopped epoch)
            _epoch = 0,
            _skip = 0,
            -- counts started epochs, so that a replaced iterator is caught
            _run = 0,
        }, DataLoader)
        if self.sampler ~= nil then
            local s = self.sampler
            if type(s) ~= "table" or type(s.indices) ~= "function" then
                fail("DataLoader", "option 'sampler' must have an indices() method (as WeightedSampler)")
            end
            if self.shuffle then fail("DataLoader", "options 'sampler' and 'shuffle' exclude each other") end
        end
        local cs, fns = split_transforms(opts.transform)
        self._lua_transforms = fns
        -- the random C transforms draw by a sample's place in the epoch, so
        -- a resumed epoch must keep the places of the batches it skips
        self._positional = false
        for _, t in ipairs(cs or {}) do
            if t.kind ~= "normalize" then self._positional = true end
        end
        self.seed = opts.seed and opt_integer("DataLoader", opts, "seed", nil) or fresh_seed()
        -- device = "cuda" / "cuda:N": batches arrive there, through pinned
        -- staging buffers and asynchronous uploads unless pin_memory = false;
        -- pin_memory on the CPU (or where no pinned memory can be had) does
        -- nothing
        if opts.device ~= nil and type(opts.device) ~= "string" then
            fail("DataLoader", "option 'device' must be a string such as \"cuda\", got " .. type(opts.device))
        end
        self.device = opts.device or "cpu"
        self.pin_memory = opt_boolean("DataLoader", opts, "pin_memory", self.device ~= "cpu")
        self._c = core._loader(ds.images, ds.labels, self.batch_size, self.drop_last, cs, self.device,
            self.pin_memory)
        return self
    end

    local function sampler_state(s)
        if s ~= nil and type(s.state_dict) == "function" then return s:state_dict() end
        return nil
    end

    function DataLoader.__len(self)
        local n = self.sampler and #self.sampler or self.dataset.images:size(0)
        return self._c:num_batches(n)
    end

    -- start an epoch (resuming a stopped one after load_state_dict);
    -- returns the step function
    local function start(self)
        local epoch, skip = self._epoch, self._skip
        self._epoch, self._skip = epoch + 1, 0
        self._run = self._run + 1
        local run, c, fns = self._run, self._c, self._lua_transforms
        local g = epoch_generator(self.seed, epoch)
        -- where this epoch started, for state_dict
        local cur = { epoch = epoch, batch = skip, sampler = sampler_state(self.sampler) }
        self._cur = cur
        local order
        if self.sampler then
            order = self.sampler:indices()
            if not is_tensor(order) then order = index_tensor("DataLoader", order, #self.dataset) end
            order = order:long():contiguous()
        else
            order = g:permutation(self.dataset.images:size(0), not self.shuffle)
        end
        local key = g:key()
        if skip > 0 and not self._positional then
            -- skip comes from a state dict, maybe a file's: past the epoch's
            -- batches, skip * batch_size could wrap around
            local n = order:size(0)
            local first = skip > n // self.batch_size and n or skip * self.batch_size
            order, skip = order:narrow(0, first, order:size(0) - first), 0
        end
        c:start(order, key)
        for _ = 1, skip do
            if c:next() == nil then break end
        end
        return function()
            if self._run ~= run then error("DataLoader: this epoch's iterator was replaced by a newer one", 2) end
            local x, y = c:next()
            if x == nil then
                self._cur = nil
                return nil
            end
            cur.batch = cur.batch + 1
            for _, f in ipairs(fns) do
                local nx, ny = f(x, y)
                x = nx
                if ny ~= nil then y = ny end
            end
            return x, y
        end
    end

    -- for x, y in loader:iter() do ... end  (break stops the thread at once)
    function DataLoader:iter()
        local step = start(self)
        local run = self._run
        local closer = setmetatable({}, {
            __close = function()
                if self._run == run then self._c:stop() end
            end,
        })
        return step, nil, nil, closer
    end

    -- for x, y in loader do ... end: a new epoch whenever the control value is nil
    function DataLoader.__call(self, _, ctl)
        if ctl == nil then self._step = start(self) end
        return self._step()
    end

    -- loader:set_epoch(e): the next epoch is epoch e (its order and random
    -- transforms depend on the seed and e alone), and the sampler's
    -- set_epoch(e), where it has one, is called too
    function DataLoader:set_epoch(epoch)
        local e = epoch_value(epoch)
        if e == nil then fail("DataLoader", "set_epoch needs a non-negative integer epoch, got %s", tostring(epoch)) end
        -- asking for another epoch than a resumed one starts that epoch afresh
        if e ~= self._epoch then self._skip = 0 end
        self._epoch = e
        local s = self.sampler
        if s ~= nil and type(s.set_epoch) == "function" then s:set_epoch(e) end
    end

    -- where the loader is: {seed, epoch, batch, sampler}. During an epoch
    -- (the iterator has not returned nil yet) that epoch and the batches
    -- taken from it; between epochs the next one and 0. sampler is the
    -- sampler's state_dict() from before it drew the epoch's indices.
    function DataLoader:state_dict()
        local cur = self._cur
        if cur ~= nil then
            return { seed = self.seed, epoch = cur.epoch, batch = cur.batch, sampler = cur.sampler }
        end
        return { seed = self.seed, epoch = self._epoch, batch = self._skip, sampler = sampler_state(self.sampler) }
    end

    -- the next iter() resumes there: the same order, random transforms and
    -- remaining batches as the loader the state came from
    function DataLoader:load_state_dict(sd)
        local fname = "DataLoader:load_state_dict"
        if type(sd) ~= "table" or math.type(sd.seed) ~= "integer" or epoch_value(sd.epoch) == nil
            or epoch_value(sd.batch) == nil then
            fail(fname, "state_dict must be a table {seed, epoch, batch[, sampler]} from a DataLoader's state_dict()")
        end
        if sd.sampler ~= nil then
            local s = self.sampler
            if s == nil or type(s.load_state_dict) ~= "function" then
                fail(fname, "the state holds a sampler's state, but this loader has no sampler that can load it")
            end
            s:load_state_dict(sd.sampler)
        end
        self._c:stop()
        self._run = self._run + 1
        self._cur = nil
        self.seed, self._epoch, self._skip = sd.seed, epoch_value(sd.epoch), epoch_value(sd.batch)
    end

    function DataLoader:close() self._c:stop() end
    DataLoader.__close = DataLoader.close
end

return M
