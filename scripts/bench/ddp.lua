-- Data parallelism on one box: a smallcnn training step (1x28x28 random
-- images, cross entropy, SGD with momentum) at global batch 256, 2 ranks
-- of 128 under nn.DistributedDataParallel against 1 process at 256: ms per
-- step (median after a warm-up) and, from ddp:comm_timing(), per step
-- (medians; each the mean over the ranks): the seconds the bucket
-- all-reduces took on the communication thread (from each one's start to
-- its end, so with the wait for the other rank to get there), the wait
-- left after backward ended, and the fraction of the all-reduces hidden
-- behind backward, 1 - wait/comm (goal >= 50%). Three bucket sizes: 0.05
-- and 0.1 MB (5 and 3 buckets, which overlap backward) and the default 25
-- MB, which holds all of smallcnn's 0.36 MB of gradients in one bucket
-- that starts when backward is done. Plain BatchNorm: per-rank
-- statistics, PyTorch's default under DDP; the benchmark is about the
-- gradients.
--
--   tide scripts/bench/ddp.lua [threads] [--steps N] [--runs R]
--     the driver: the 1-process step here (threads: all cores unless
--     given), then `mpirun -np 2` of this script (each rank takes
--     cores/ranks threads), R times (3), the best of each; the table.
--   mpirun -np 2 tide scripts/bench/ddp.lua --steps N
--     the DDP steps; rank 0 prints `key value` lines.
-- Without mpirun it gives the 1-process step and says why no more.
local tide = require "tide"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench"
local B = dofile(here .. "/benchlib.lua")
local dist, nn, F = tide.distributed, tide.nn, tide.F

local GLOBAL_BATCH, WARMUP = 256, 3
local CAPS = {0.05, 0.1, 25} -- MB: 5, 3 and 1 bucket; 25 is the default
local SUMMARY_CAP = 0.1
local GOAL_HIDDEN = 0.5

local threads, steps, runs = nil, 10, 3
do
    local i = 1
    while arg[i] do
        local a = arg[i]
        if a == "--steps" or a == "--runs" then
            local n = math.tointeger(tonumber(arg[i + 1]))
            if not n or n < 1 then error("ddp.lua: " .. a .. " needs a positive integer") end
            if a == "--steps" then steps = n else runs = n end
            i = i + 2
        elseif math.tointeger(tonumber(a)) then
            threads = math.tointeger(tonumber(a))
            i = i + 1
        else
            error("ddp.lua: unknown argument " .. a .. " ([threads] [--steps N] [--runs R])")
        end
    end
end

-- the CPU's name and how many logical cores it has
local function cpu()
    local f = io.open("/proc/cpuinfo", "r")
    local name, n = nil, 0
    if f then
        for line in f:lines() do
            name = name or line:match("^model name%s*:%s*(.-)%s*$")
            if line:match("^processor%s*:") then n = n + 1 end
        end
        f:close()
    end
    return name or "unknown CPU", n
end

-- a model, its optimizer and a batch; `wrap` makes the module trained
local function setup(batch, wrap)
    tide.manual_seed(0)
    local model = tide.models.smallcnn{num_classes = 10, in_channels = 1}
    model:train()
    local m = wrap and wrap(model) or model
    local opt = tide.optim.SGD(m:parameters(), {lr = 0.01, momentum = 0.9})
    tide.manual_seed(1 + dist.rank())
    local x, y = tide.randn({batch, 1, 28, 28}), tide.randint(0, 10, {batch})
    local function step()
        opt:zero_grad()
        local loss <close> = F.cross_entropy(m(x), y)
        loss:backward()
        opt:step()
    end
    return step, m
end

-- median seconds per step; after_step(i) runs after each timed step
local function time_steps(step, after_step)
    for _ = 1, WARMUP do step() end
    collectgarbage()
    if dist.is_initialized() then dist.barrier() end
    local times = {}
    for i = 1, steps do
        local t0 = tide.clock()
        step()
        times[i] = tide.clock() - t0
        if after_step then after_step(i) end
    end
    return B.median(times)
end

---------------------------------------------------------------- one rank of the DDP run
if dist.launched() then
    dist.init{timeout = 300}
    local world, rank = dist.world_size(), dist.rank()
    if GLOBAL_BATCH % world ~= 0 then error("ddp.lua: 256 does not split over " .. world .. " ranks", 0) end
    local out = {string.format("world %d", world), string.format("threads %d", tide.get_num_threads())}
    for _, cap in ipairs(CAPS) do
        local ddp
        local step = setup(GLOBAL_BATCH // world, function(model)
            ddp = nn.DistributedDataParallel(model, {bucket_cap_mb = cap})
            return ddp
        end)
        -- every step's wait and comm, summed over the ranks
        local waits, comms = {}, {}
        local t = time_steps(step, function(i)
            local sums <close> = tide.tensor({ddp:comm_timing()}, "float64")
            dist.all_reduce(sums)
            waits[i], comms[i] = sums:get(0) / world, sums:get(1) / world
        end)
        local key = string.format("cap%g_", cap)
        local wait, comm = B.median(waits), B.median(comms)
        out[#out + 1] = key .. "step " .. t
        out[#out + 1] = key .. "buckets " .. ddp:buckets()
        out[#out + 1] = key .. "wait " .. wait
        out[#out + 1] = key .. "comm " .. comm
        out[#out + 1] = key .. "hidden " .. (comm > 0 and 1 - wait / comm or 0)
        ddp._reducer:close()
    end
    if rank == 0 then
        for _, line in ipairs(out) do print(line) end
        print("ok 1")
    end
    dist.finalize()
    return
end

---------------------------------------------------------------- the driver
threads = threads or tide.get_num_threads()
tide.set_num_threads(threads)
local single_step = setup(GLOBAL_BATCH)

local function find_mpirun()
    for _, name in ipairs({"mpirun", "mpiexec"}) do
        local p = io.popen("command -v " .. name .. " 2>/dev/null")
        local path = p and p:read("l")
        if p then p:close() end
        if path and path ~= "" then return path end
    end
end

-- the DDP ranks in a child: its `key value` lines as a table
local function ddp_child(mpirun)
    local exe = arg[-1] or os.getenv("TIDE") or "build/tide"
    local root = io.popen("id -u"):read("l") == "0"
        and "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " or ""
    local cmd = string.format("%s%s -np 2 %s %s/ddp.lua --steps %d 2>&1", root, mpirun, exe, here, steps)
    local out, lines = assert(B.run_keys(cmd))
    if not out.ok then error("ddp.lua: the mpirun run failed:\n" .. table.concat(lines, "\n"), 0) end
    return out
end

local mpirun = find_mpirun()
local best_single, best = math.huge, {}
for r = 1, runs do
    best_single = math.min(best_single, time_steps(single_step))
    if mpirun then
        local d = ddp_child(mpirun)
        best.world, best.threads = d.world, d.threads
        for _, cap in ipairs(CAPS) do
            local key = string.format("cap%g_", cap)
            -- a run's timings go together: the ones of its best step time
            if not best[key] or d[key .. "step"] < best[key].step then
                best[key] = {step = d[key .. "step"], buckets = d[key .. "buckets"], wait = d[key .. "wait"],
                             comm = d[key .. "comm"], hidden = d[key .. "hidden"]}
            end
        end
    end
    io.stderr:write(string.format("ddp.lua: run %d of %d done\n", r, runs))
end

local function ms(s) return s and string.format("%.2f ms", s * 1e3) or "-" end
local cpu_name, cores = cpu()
print(string.format("\nsmallcnn training step, global batch %d, random 1x28x28 data; %s, %d cores; "
                    .. "median of %d steps after %d, best of %d runs", GLOBAL_BATCH, cpu_name, cores, steps,
                    WARMUP, runs))
print()
print("| setup | ms/step | speedup | buckets | all-reduce | exposed wait | hidden |")
print("|---|---:|---:|---:|---:|---:|---:|")
print(string.format("| 1 process, batch %d, %d threads | %s | 1.00x | - | - | - | - |", GLOBAL_BATCH, threads,
                    ms(best_single)))
if not mpirun then
    print("\nnote: no mpirun (apt-get install openmpi-bin): the 1-process step only")
    return
end
for _, cap in ipairs(CAPS) do
    local d = best[string.format("cap%g_", cap)]
    local setup_s = string.format("%d ranks x %d, %d thread%s each, bucket_cap_mb = %g%s", best.world,
                                  GLOBAL_BATCH // best.world, best.threads, best.threads == 1 and "" or "s",
                                  cap, cap == 25 and " (default)" or "")
    -- below 0 when the wait is longer than the all-reduces: it queued, or the other rank was late
    local hidden = d.hidden >= 0 and string.format("%.0f%%", 100 * d.hidden) or "0% (wait > comm)"
    print(string.format("| %s | %s | %.2fx | %d | %s | %s | %s |", setup_s, ms(d.step),
                        best_single / d.step, d.buckets, ms(d.comm), ms(d.wait), hidden))
end
print()

-- rows for run.sh's summary: the step against 1 process, and the overlap
local small = best[string.format("cap%g_", SUMMARY_CAP)]
B.row("ddp smallcnn b256 cap 0.1 MB (base 1 proc)", small.step, best_single, "ms", false, nil)
local met = small.hidden >= GOAL_HIDDEN and "(met)" or "(missed)"
local hidden = string.format("%.0f%%", 100 * small.hidden)
print(string.format("%-28s tide %-18s goal >= %.0f%% %s", "ddp hidden, cap 0.1 MB", hidden, 100 * GOAL_HIDDEN, met))
local rows = os.getenv("TIDE_BENCH_ROWS")
if rows and rows ~= "" then
    local f = io.open(rows, "a")
    if f then
        f:write(table.concat({"ddp hidden, cap 0.1 MB", hidden, "-", "-",
                              string.format(">= %.0f%% %s", 100 * GOAL_HIDDEN, met)}, "\t"), "\n")
        f:close()
    end
end
