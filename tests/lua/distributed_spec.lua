-- tide.distributed in one process (a world of one, no mpirun): the API
-- and its errors, DistributedDataParallel and SyncBatchNorm, which must
-- leave a single process's numbers exactly as they were. The multi-rank
-- behaviour is tested under mpirun by tests/distributed/.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local dist = tide.distributed
local nn, F = tide.nn, tide.F

local function max_diff(a, b) return (a - b):abs():max():item() end

local function mlp()
    tide.manual_seed(3)
    return nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 3))
end

describe("tide.distributed before init", function()
    it("is a world of one that refuses collectives", function()
        assert.is_false(dist.is_initialized())
        assert.are.equal(0, dist.rank())
        assert.are.equal(1, dist.world_size())
        assert.are.equal("none", dist.backend())
        assert.is_true(dist.is_main())
        assert.has_error(function() dist.all_reduce(tide.ones({2})) end,
                         "all_reduce: tide.distributed is not initialized (call tide.distributed.init{} first)")
        assert.has_error(function() dist.barrier() end,
                         "barrier: tide.distributed is not initialized (call tide.distributed.init{} first)")
    end)

    it("refuses DistributedDataParallel", function()
        assert.has_error(function() nn.DistributedDataParallel(mlp()) end,
                         "DistributedDataParallel: tide.distributed is not initialized (call "
                         .. "tide.distributed.init{} first)")
    end)

    it("checks init's options", function()
        assert.has_error(function() dist.init{backend = "gloo"} end,
                         "init: option 'backend' must be \"auto\", \"mpi\" or \"nccl\"")
        assert.error_matches(function() dist.init{timeout = 0} end, "timeout")
        assert.error_matches(function() dist.init{timout = 5} end, "unknown option 'timout'")
        assert.is_false(dist.is_initialized())
    end)

    it("counts no launcher", function()
        assert.is_false(dist.launched())
        assert.are.equal(1, dist.launcher_local_size())
    end)
end)

describe("tide.distributed in a world of one", function()
    setup(function() dist.init{timeout = 30} end)

    it("says where it is", function()
        assert.is_true(dist.is_initialized())
        assert.are.equal("self", dist.backend())
        assert.are.equal(0, dist.local_rank())
        assert.are.equal(1, dist.local_size())
        assert.error_matches(function() dist.init() end, "already initialized")
    end)

    it("leaves tensors as they are", function()
        local t = tide.tensor({1.5, -2, 3})
        assert.are.equal(t, dist.all_reduce(t, {op = "avg"}))
        assert.are.same({1.5, -2, 3}, t:totable())
        dist.broadcast(t, {src = 0})
        assert.are.same({1.5, -2, 3}, t:totable())
        assert.are.same({{1.5, -2, 3}}, dist.all_gather(t):totable())
        assert.are.same({1.5, -2, 3}, dist.reduce_scatter(t):totable())
        local h = dist.all_reduce(t, {async = true})
        assert.are.equal(t, h:wait())
        assert.is_true(h:is_completed())
        assert.error_matches(function() dist.broadcast(t, {src = 1}) end, "src 1 is not a rank")
        assert.error_matches(function() dist.all_reduce(tide.tensor({1, 2}, "int64"), {op = "avg"}) end,
                             "op 'avg' needs a float tensor, got int64")
        assert.error_matches(function() dist.all_reduce(t, {op = "median"}) end, "option 'op' must be")
        assert.error_matches(function() dist.all_reduce(t, {sync = true}) end, "unknown option 'sync'")
    end)

    it("makes DDP change nothing: same gradients, same steps", function()
        local ref, model = mlp(), mlp()
        local ddp = nn.DistributedDataParallel(model, {bucket_cap_mb = 1e-4})
        assert.is_true(ddp:buckets() > 1) -- 100 bytes: one parameter per bucket
        local x, y = tide.randn({5, 6}), tide.tensor({0, 2, 1, 1, 0}, "int64")
        local o1, o2 = tide.optim.SGD(ref:parameters(), {lr = 0.1}), tide.optim.SGD(ddp:parameters(), {lr = 0.1})
        for _ = 1, 3 do
            o1:zero_grad()
            o2:zero_grad()
            F.cross_entropy(ref(x), y):backward()
            F.cross_entropy(ddp(x), y):backward()
            for i, p in ipairs(ref:parameters()) do
                assert.are.equal(0, max_diff(p.grad, model:parameters()[i].grad))
            end
            o1:step()
            o2:step()
        end
        local wait_s, comm_s = ddp:comm_timing()
        assert.is_true(wait_s >= 0 and comm_s >= 0)
        ddp:close()
        ddp:close()
        assert.are.equal(0, ddp:buckets())
        F.cross_entropy(ddp(x), y):backward() -- a plain backward now
    end)

    it("names the wrapped model's keys under module.", function()
        local ddp = nn.DistributedDataParallel(mlp())
        local keys = ddp:state_dict_keys()
        assert.are.equal("module.0.weight", keys[1])
        assert.are.equal(mlp():parameters()[1]:size(0), ddp.module:parameters()[1]:size(0))
    end)

    it("accumulates under no_sync", function()
        local ref, model = mlp(), mlp()
        local ddp = nn.DistributedDataParallel(model)
        local x, y = tide.randn({4, 6}), tide.tensor({0, 2, 1, 1}, "int64")
        F.cross_entropy(ref(x), y):backward()
        F.cross_entropy(ref(x), y):backward()
        ddp:no_sync(function() F.cross_entropy(ddp(x), y):backward() end)
        F.cross_entropy(ddp(x), y):backward()
        for i, p in ipairs(ref:parameters()) do
            assert.is_true(max_diff(p.grad, model:parameters()[i].grad) < 1e-6)
        end
        assert.error_matches(function() ddp:no_sync(5) end, "function expected")
        assert.has_error(function() ddp:no_sync(function() error("inside", 0) end) end, "inside")
    end)

    it("checks its options", function()
        assert.error_matches(function() nn.DistributedDataParallel(mlp(), {bucket_cap_mb = 0}) end,
                             "bucket_cap_mb")
        assert.error_matches(function() nn.DistributedDataParallel(mlp(), {bucket = 1}) end, "unknown option 'bucket'")
        assert.error_matches(function() nn.DistributedDataParallel(5) end, "module expected")
    end)

    it("makes SyncBatchNorm a BatchNorm in one process", function()
        tide.manual_seed(11)
        local bn = nn.BatchNorm2d(3)
        local sbn = nn.SyncBatchNorm(3)
        local x = tide.randn({4, 3, 5, 5}, {dtype = "float32"}) * 3 + 1
        local y1, y2 = bn(x), sbn(x)
        assert.is_true(max_diff(y1, y2) < 1e-6)
        assert.is_true(max_diff(bn.running_mean, sbn.running_mean) < 1e-7)
        assert.is_true(max_diff(bn.running_var, sbn.running_var) < 1e-6)
        bn:eval()
        sbn:eval()
        assert.is_true(max_diff(bn(x), sbn(x)) < 1e-6)
    end)

    it("converts every BatchNorm of a model, keeping its tensors", function()
        local m = tide.models.smallcnn{}
        local bns, weights = {}, {}
        for _, mod in ipairs(m:modules()) do
            if mod:typename() == "BatchNorm2d" then
                bns[#bns + 1] = mod
                weights[#weights + 1] = mod.weight
            end
        end
        assert.are.equal(3, #bns)
        local keys = m:state_dict_keys()
        local c = nn.SyncBatchNorm.convert(m)
        assert.are.equal(m, c)
        local n = 0
        for _, mod in ipairs(m:modules()) do
            assert.are_not.equal("BatchNorm2d", mod:typename())
            if mod:typename() == "SyncBatchNorm" then
                n = n + 1
                assert.are.equal(weights[n], mod.weight)
            end
        end
        assert.are.equal(3, n)
        assert.are.same(keys, m:state_dict_keys())
        assert.are.equal("SyncBatchNorm", nn.SyncBatchNorm.convert(nn.BatchNorm1d(4)):typename())
    end)

    it("sums with a gradient that is summed over the ranks", function()
        local x = tide.tensor({1, 2}, {dtype = "float64", requires_grad = true})
        local y = require("tide.core").distributed._sum_with_grad(x)
        ;(y * tide.tensor({3, 4}, "float64")):sum():backward()
        assert.are.same({3, 4}, x.grad:totable())
    end)

    it("finalizes once", function()
        dist.finalize()
        assert.is_false(dist.is_initialized())
        dist.finalize()
    end)
end)
