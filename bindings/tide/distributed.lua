-- tide.distributed, nn.DistributedDataParallel and nn.SyncBatchNorm.
--
-- The collectives and the gradient reducer are C (runtime/distributed.c,
-- runtime/ddp.c, bindings/core/l_distributed.c); this file gives them
-- their Lua shape: the module wrappers, SyncBatchNorm's statistics over
-- every rank, and the few helpers the toolkit uses (is_main, print0).
-- See docs/distributed.md.
local known_names = require("tide.caller").known

local M = {}

local function argerror(fname, n, msg, level)
    error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), (level or 2) + 1)
end

local function check_options(fname, n, given, known)
    if given == nil then return {} end
    if type(given) ~= "table" then argerror(fname, n, "options table expected, got " .. type(given), 3) end
    for k in pairs(given) do
        if not known[k] then
            argerror(fname, n, string.format("unknown option '%s'; known: %s", tostring(k),
                                             known_names(known)), 3)
        end
    end
    return given
end

function M.install(tide, core)
    local cd = core.distributed
    local dist = {}
    for k, v in pairs(cd) do
        if k:sub(1, 1) ~= "_" then dist[k] = v end
    end
    tide.distributed = dist

    -- started by mpirun (or another launcher) with more than one rank
    function dist.launched()
        local n = tonumber(os.getenv("OMPI_COMM_WORLD_SIZE") or os.getenv("PMIX_SIZE") or os.getenv("PMI_SIZE"))
        return n ~= nil and n > 1
    end

    -- true on rank 0, and in a process that is not distributed at all
    function dist.is_main() return cd.rank() == 0 end

    -- init when started by a launcher and not yet initialized; what the
    -- toolkit calls so that scripts run unchanged under mpirun
    function dist.init_if_launched(opts)
        if not cd.is_initialized() and dist.launched() then cd.init(opts) end
        return cd.is_initialized()
    end

    -- print on rank 0 only
    function dist.print0(...)
        if cd.rank() == 0 then print(...) end
    end

    local nn = tide.nn

    ---------------------------------------------------------------- DDP
    local DDP = nn.class("DistributedDataParallel")
    local ddp_known = {bucket_cap_mb = true, broadcast_buffers = true}

    function DDP:__init(model, opts)
        local fname = "DistributedDataParallel"
        if type(model) ~= "table" or type(model.parameters) ~= "function" then
            argerror(fname, 1, "module expected, got " .. type(model), 3)
        end
        opts = check_options(fname, 2, opts, ddp_known)
        local cap = opts.bucket_cap_mb == nil and 25 or opts.bucket_cap_mb
        if type(cap) ~= "number" or cap ~= cap or cap <= 0 then
            argerror(fname, 2, "option 'bucket_cap_mb' must be a positive number", 3)
        end
        local bb = opts.broadcast_buffers
        if bb == nil then bb = true end
        if type(bb) ~= "boolean" then argerror(fname, 2, "option 'broadcast_buffers' must be a boolean", 3) end
        if not cd.is_initialized() then
            error(fname .. ": tide.distributed is not initialized (call tide.distributed.init{} first)", 3)
        end
        self:add_module("module", model)
        self.bucket_cap_mb, self.broadcast_buffers = cap, bb
        -- every rank starts from rank 0's weights and buffers
        tide.no_grad(function()
            for _, p in ipairs(model:parameters()) do cd.broadcast(p, {src = 0}) end
            for _, b in ipairs(model:buffers()) do cd.broadcast(b, {src = 0}) end
        end)
        -- backward makes the last layers' gradients first: their buckets
        -- come first, so their all-reduces start while it goes on
        local params, all, seen = {}, model:parameters(), {}
        for i = #all, 1, -1 do
            if all[i].requires_grad and not seen[all[i]] then params[#params + 1] = all[i] end
            seen[all[i]] = true
        end
        rawset(self, "_reducer", cd._reducer(params, cap * 1024 * 1024))
    end

    function DDP:forward(...)
        if self.training and self.broadcast_buffers and cd.world_size() > 1 then
            tide.no_grad(function()
                for _, b in ipairs(self.module:buffers()) do cd.broadcast(b, {src = 0}) end
            end)
        end
        return self.module(...)
    end

    -- fn() runs with gradient averaging off: its backward passes only
    -- accumulate, and the next backward outside averages the sum
    function DDP:no_sync(fn)
        if type(fn) ~= "function" then argerror("no_sync", 1, "function expected, got " .. type(fn)) end
        if self._closed then return fn() end
        self._reducer:set_sync(false)
        local res = table.pack(pcall(fn))
        self._reducer:set_sync(true)
        if not res[1] then error(res[2], 0) end
        return table.unpack(res, 2, res.n)
    end

    -- the number of gradient buckets
    function DDP:buckets() return self._closed and 0 or self._reducer:buckets() end

    -- stops averaging for good: backward passes through the model are
    -- then a single process's (the reducer's buffers are freed)
    function DDP:close()
        if not self._closed then self._reducer:close() end
        rawset(self, "_closed", true)
    end

    -- of the last backward: seconds spent waiting for all-reduces after it
    -- ended, and seconds the all-reduces took
    function DDP:comm_timing()
        if self._closed then return 0, 0 end
        return self._reducer:timing()
    end

    function DDP:extra_repr()
        return string.format("bucket_cap_mb=%g, broadcast_buffers=%s, buckets=%d, world_size=%d",
                             self.bucket_cap_mb, tostring(self.broadcast_buffers), self:buckets(),
                             cd.world_size())
    end

    ---------------------------------------------------------------- SyncBatchNorm
    local SBN = nn.class("SyncBatchNorm")
    local sbn_known = {eps = true, momentum = true, affine = true, track_running_stats = true, dtype = true}

    function SBN:__init(num_features, opts)
        opts = check_options("SyncBatchNorm", 2, opts, sbn_known)
        -- the parameters and buffers of a BatchNorm, with its checks
        local bn = nn.BatchNorm2d(num_features, opts)
        self:_adopt(bn)
    end

    function SBN:_adopt(bn)
        self.num_features, self.eps, self.momentum = bn.num_features, bn.eps, bn.momentum
        self.affine, self.track_running_stats = bn.affine, bn.track_running_stats
        for _, name in ipairs(bn._param_names) do self:register_parameter(name, rawget(bn, name)) end
        for _, name in ipairs(bn._buffer_names) do self:register_buffer(name, rawget(bn, name)) end
        self.training = bn.training
    end

    -- x: (N, C, ...); per channel: the sums over every rank's batch
    local function channel_sums(x, c)
        return x:transpose(0, 1):reshape(c, -1):sum(1)
    end

    function SBN:forward(x)
        if not tide.is_tensor(x) then argerror("SyncBatchNorm", 1, "tensor expected, got " .. type(x)) end
        local d = x:dim()
        if d < 2 then argerror("SyncBatchNorm", 1, string.format("expected at least 2D input, got %dD", d)) end
        local use_batch = self.training or not self.track_running_stats
        if self.training and self.track_running_stats then
            tide.no_grad(function() self.num_batches_tracked:add_(1) end)
        end
        if not use_batch or not cd.is_initialized() or cd.world_size() == 1 then
            return tide.F.batch_norm(x, self.running_mean, self.running_var, {weight = self.weight,
                                     bias = self.bias, training = use_batch, momentum = self.momentum,
                                     eps = self.eps})
        end
        local c = x:size(1)
        if c ~= self.num_features then
            argerror("SyncBatchNorm", 1, string.format("expected %d channels, got %d", self.num_features, c))
        end
        local shape = {1, c}
        for _ = 3, d do shape[#shape + 1] = 1 end
        -- two passes, as a single process's batch norm: the mean first,
        -- then the centred squares, so large means cost no precision.
        -- Each all-reduce is recorded for autograd: its backward sums the
        -- gradients over the ranks, as the statistics' would be in one process.
        local local_n = tide.full({1}, x:numel() // c, {dtype = x:dtype(), device = x:device()})
        local s = cd._sum_with_grad(tide.cat({channel_sums(x, c), local_n}, 0))
        local count = s:narrow(0, c, 1):item()
        if count <= 1 then
            error("SyncBatchNorm: expected more than 1 value per channel over all ranks when training", 2)
        end
        local mean = s:narrow(0, 0, c) / count
        local xc = x - mean:view(shape)
        local var = cd._sum_with_grad(channel_sums(xc * xc, c)) / count
        local y = xc * (var + self.eps):pow(-0.5):view(shape)
        if self.weight ~= nil then y = y * self.weight:view(shape) + self.bias:view(shape) end
        if self.track_running_stats then
            tide.no_grad(function()
                local m = self.momentum
                self.running_mean:mul_(1 - m):add_(mean:detach():to(self.running_mean:dtype()) * m)
                local unbiased = var:detach() * (count / (count - 1))
                self.running_var:mul_(1 - m):add_(unbiased:to(self.running_var:dtype()) * m)
            end)
        end
        return y
    end

    function SBN:extra_repr()
        return string.format("%d, eps=%g, momentum=%g, affine=%s, track_running_stats=%s", self.num_features,
                             self.eps, self.momentum, tostring(self.affine), tostring(self.track_running_stats))
    end

    local bn_classes = {}
    for _, n in ipairs({"BatchNorm1d", "BatchNorm2d", "BatchNorm3d"}) do
        if nn[n] then bn_classes[nn[n]] = true end
    end

    -- SyncBatchNorm.convert(model): every BatchNorm in the tree becomes a
    -- SyncBatchNorm holding the same parameter and buffer tensors
    function SBN.convert(model)
        local function swap(m)
            if bn_classes[getmetatable(m)] then
                local s = setmetatable({}, SBN)
                nn.Module._setup(s)
                s:_adopt(m)
                return s
            end
            for _, name in ipairs(m._child_names) do
                local child = m._modules[name]
                local new = swap(child)
                if new ~= child then m:add_module(name, new) end
            end
            return m
        end
        if type(model) ~= "table" or type(model._child_names) ~= "table" then
            argerror("SyncBatchNorm.convert", 1, "module expected, got " .. type(model))
        end
        return swap(model)
    end

    nn.DistributedDataParallel = DDP
    nn.SyncBatchNorm = SBN
end

return M
