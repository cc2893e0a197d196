-- Every collective and dtype against values worked out by hand, on
-- whatever world mpirun gives (ctest runs it at 2 and at 4 ranks, and
-- alone, where the world is one process). Rank r contributes values
-- built from r, so each result has a closed form written below.
-- Prints "ok" on rank 0 at the end; any failure raises, which ends the
-- whole job with that rank's message.
local tide = require "tide"
local dist = tide.distributed

-- before init: a clear error, and a world of one
assert(not dist.is_initialized())
assert(dist.rank() == 0 and dist.world_size() == 1)
local ok, err = pcall(dist.all_reduce, tide.ones({2}))
assert(not ok and err:find("not initialized", 1, true), err)

dist.init{timeout = 60}
local R, r = dist.world_size(), dist.rank()
assert(dist.is_initialized())
assert(r >= 0 and r < R)
assert(dist.local_rank() >= 0 and dist.local_rank() < dist.local_size())
assert(dist.local_size() <= R)
ok, err = pcall(dist.init)
assert(not ok and err:find("already initialized", 1, true), err)

-- the ranks on this machine share its cores, unless told otherwise
if not os.getenv("OMP_NUM_THREADS") then
    local p = io.popen("nproc --all")
    local cores = tonumber(p:read("l"))
    p:close()
    local share = math.max(1, cores // dist.local_size())
    if tide.get_num_threads() > share then
        error(string.format("rank %d: %d threads, more than %d cores / %d ranks", r, tide.get_num_threads(),
                            cores, dist.local_size()))
    end
end

local function fail(fmt, ...) error(string.format("rank %d: " .. fmt, r, ...), 2) end

local function check_values(what, t, expect)
    local got = t:reshape(-1):totable()
    if #got ~= #expect then fail("%s: %d values, expected %d", what, #got, #expect) end
    for i = 1, #expect do
        if got[i] ~= expect[i] then
            fail("%s: element %d is %s, expected %s", what, i, tostring(got[i]), tostring(expect[i]))
        end
    end
end

local n = 6
-- rank r holds (r + 1) * (i + 1) at element i (0-based), i < n
local function contribution(dtype)
    return (tide.arange(1, n + 1, 1) * (r + 1)):to(dtype)
end
local tri = R * (R + 1) // 2 -- sum over ranks of (r + 1)

local function fact(k)
    local f = 1
    for i = 2, k do f = f * i end
    return f
end

for _, dtype in ipairs({"float32", "float64", "int64", "uint8"}) do
    local float = dtype == "float32" or dtype == "float64"
    -- sum, max, min, prod
    local want_sum, want_max, want_min, want_prod = {}, {}, {}, {}
    for i = 1, n do
        want_sum[i] = dtype == "uint8" and (i * tri) % 256 or i * tri
        want_max[i] = i * R
        want_min[i] = i
        want_prod[i] = i ^ R * fact(R)
        if not float then want_prod[i] = math.tointeger(want_prod[i]) end
        if dtype == "uint8" then want_prod[i] = want_prod[i] % 256 end
    end
    check_values(dtype .. " sum", dist.all_reduce(contribution(dtype)), want_sum)
    check_values(dtype .. " max", dist.all_reduce(contribution(dtype), {op = "max"}), want_max)
    check_values(dtype .. " min", dist.all_reduce(contribution(dtype), {op = "min"}), want_min)
    check_values(dtype .. " prod", dist.all_reduce(contribution(dtype), {op = "prod"}), want_prod)
    if float then
        local want_avg = {}
        for i = 1, n do want_avg[i] = i * tri / R end
        local t = dist.all_reduce(contribution(dtype), {op = "avg"})
        local got = t:totable()
        for i = 1, n do
            if math.abs(got[i] - want_avg[i]) > 1e-6 * want_avg[i] then
                fail("%s avg: element %d is %g, expected %g", dtype, i, got[i], want_avg[i])
            end
        end
    else
        ok, err = pcall(dist.all_reduce, contribution(dtype), {op = "avg"})
        if ok or not err:find("avg", 1, true) then fail("%s avg should be refused: %s", dtype, tostring(err)) end
    end

    -- broadcast from the last rank: (R) * (i + 1)
    local b = contribution(dtype)
    dist.broadcast(b, {src = R - 1})
    check_values(dtype .. " broadcast", b, want_max)

    -- all_gather: row q is rank q's contribution
    local g = dist.all_gather(contribution(dtype))
    local want_g = {}
    for q = 0, R - 1 do
        for i = 1, n do want_g[#want_g + 1] = (q + 1) * i end
    end
    if g:dim() ~= 2 or g:size(0) ~= R or g:size(1) ~= n then fail("%s all_gather shape", dtype) end
    if g:dtype() ~= dtype then fail("all_gather changed the dtype to %s", g:dtype()) end
    check_values(dtype .. " all_gather", g, want_g)

    -- reduce_scatter of (R * 2) elements: rank r holds (r + 1) * (j + 1);
    -- this rank gets elements 2r and 2r + 1 of the sum
    local rs = dist.reduce_scatter((tide.arange(1, 2 * R + 1, 1) * (r + 1)):to(dtype))
    local a, c = 2 * r + 1, 2 * r + 2
    check_values(dtype .. " reduce_scatter", rs,
                 dtype == "uint8" and {(a * tri) % 256, (c * tri) % 256} or {a * tri, c * tri})
end

-- non-contiguous: a transposed view is reduced in place, its base changed
-- in the transposed pattern
local base = tide.arange(0, 6, 1):view(2, 3):to("float64") + r
local view = base:t()
assert(not view:is_contiguous())
dist.all_reduce(view)
local want = {}
for i = 0, 5 do want[#want + 1] = R * i + (R - 1) * R / 2 end
check_values("non-contiguous all_reduce (the base)", base, want)
local col = (tide.arange(0, 6, 1):view(3, 2):to("float32") * (r + 1)):select(1, 1)
assert(not col:is_contiguous())
check_values("non-contiguous all_gather", dist.all_gather(col):select(0, R - 1), {R * 1, R * 3, R * 5})

-- non-blocking: an all-reduce of 4M floats runs while this thread
-- multiplies matrices; the handles complete in order
local big = tide.full({4 * 1024 * 1024}, r + 1)
local h = dist.all_reduce(big, {async = true})
local small = tide.full({3}, 2 * (r + 1), {dtype = "int64"})
local h2 = dist.all_reduce(small, {async = true, op = "max"})
local m = tide.randn({256, 256})
for _ = 1, 5 do m = (m:matmul(m) / 256):tanh() end
assert(h:wait() == big)
assert(h:is_completed())
check_values("async max", h2:wait(), {2 * R, 2 * R, 2 * R})
if big:min():item() ~= tri or big:max():item() ~= tri then fail("async all_reduce: %g", big:max():item()) end
local gh = dist.all_gather(tide.tensor({r}, "int64"), {async = true})
local gathered = gh:wait()
local ranks = {}
for q = 0, R - 1 do ranks[#ranks + 1] = q end
check_values("async all_gather", gathered, ranks)

-- argument errors, the same on every rank (so no rank is left waiting)
local function refused(pattern, f, ...)
    local okk, e = pcall(f, ...)
    if okk or not tostring(e):find(pattern, 1, true) then
        fail("expected an error with %q, got %s", pattern, tostring(e))
    end
end
refused("src", dist.broadcast, tide.ones({2}), {src = R})
if R > 1 then refused("multiple of the world size", dist.reduce_scatter, tide.ones({2 * R + 1})) end
refused("unknown option", dist.all_reduce, tide.ones({2}), {opp = "sum"})
refused("op", dist.all_reduce, tide.ones({2}), {op = "mean"})
local leaf = tide.ones({2}, {requires_grad = true})
refused("requires grad", dist.all_reduce, leaf)
tide.no_grad(function() dist.all_reduce(leaf) end)

-- the differentiable sum: its gradient is summed over the ranks
local x = tide.full({3}, r + 1, {dtype = "float64", requires_grad = true})
local y = require("tide.core").distributed._sum_with_grad(x)
check_values("sum with grad", y, {tri, tri, tri})
;(y * (r + 1)):sum():backward()
check_values("its gradient", x.grad, {tri, tri, tri})

-- DistributedSampler: the ranks' indices are disjoint and cover the set
local sampler = tide.data.DistributedSampler(10 * R + 3, {seed = 5})
local idx = sampler:indices()
local all = dist.all_gather(idx):reshape(-1):totable()
local seen, count = {}, 0
for _, v in ipairs(all) do
    if not seen[v] then count = count + 1 end
    seen[v] = true
end
if count ~= 10 * R + 3 then fail("the sampler's ranks cover %d of %d indices", count, 10 * R + 3) end
if #all ~= R * #sampler then fail("sampler sizes") end
local before = idx:clone()
sampler:set_epoch(1)
if (sampler:indices() - before):abs():max():item() == 0 then fail("set_epoch did not change the order") end

dist.barrier()
if r == 0 then print("ok") end
dist.finalize()
assert(not dist.is_initialized())
