-- tide.distributed.all_reduce against MPI_Allreduce called directly, float32
-- sum in place at 4 KB to 64 MB: the time per call and the bus bandwidth
-- 2(n-1)/n * bytes / time, with the agreement check every collective makes
-- first (the default) and without it ({check = false}). Goal: at most
-- 1.05x MPI's time.
--
-- scripts/bench/allreduce.sh runs it all: the C baseline
-- (build/bench_allreduce_mpi) and this script under `mpirun -np 2`, a few
-- times over, then this script once more to print the table:
--   mpirun -np 2 tide scripts/bench/allreduce.lua [--mpi FILE]
--     measures; rank 0 prints `tide bytes=... check=... median_s=...` lines,
--     the C program's format. With --mpi FILE (the C program's output) it
--     makes as many calls per block as that did, and prints the table too.
--   tide scripts/bench/allreduce.lua --report FILE
--     the table from the lines in FILE, which may hold several runs (each
--     line tagged run=N): the best time of each, the median of the runs'
--     tide/MPI ratios.
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")
local dist = tide.distributed

local SIZES = {}
for i = 0, 7 do SIZES[#SIZES + 1] = 4096 << (2 * i) end
local BLOCKS, TARGET_S = 7, 0.05
local GOAL = 1.05

local mpi_file, report_file
do
    local i = 1
    while arg[i] do
        if arg[i] == "--mpi" and arg[i + 1] then
            mpi_file, i = arg[i + 1], i + 2
        elseif arg[i] == "--report" and arg[i + 1] then
            report_file, i = arg[i + 1], i + 2
        else
            error("allreduce.lua: unknown argument " .. arg[i] .. " (--mpi FILE | --report FILE)")
        end
    end
end

local function cpu_name()
    local f = io.open("/proc/cpuinfo", "r")
    local name
    if f then
        for line in f:lines() do
            name = name or line:match("^model name%s*:%s*(.-)%s*$")
        end
        f:close()
    end
    return name or "unknown CPU"
end

local function label(bytes)
    if bytes >= 1 << 20 then return string.format("%d MB", bytes >> 20) end
    return string.format("%d KB", bytes >> 10)
end

-- `impl bytes=N key=value ...` lines: {impl, bytes, ...} records
local function parse(lines)
    local recs = {}
    for _, line in ipairs(lines) do
        local impl, rest = line:match("^(%a+)%s+(bytes=.*)$")
        if impl then
            local r = {impl = impl}
            for k, v in rest:gmatch("([%w_]+)=(%S+)") do r[k] = tonumber(v) or v end
            recs[#recs + 1] = r
        end
    end
    return recs
end

local function read_lines(path)
    local f = assert(io.open(path, "r"))
    local lines = {}
    for line in f:lines() do lines[#lines + 1] = line end
    f:close()
    return lines
end

local function median(xs)
    if #xs == 0 then return nil end
    return B.median(xs)
end

-- one row of run.sh's summary (the baseline column is MPI's here), with
-- the ratio given rather than worked out from the two times
local function summary_row(name, t, m, ratio)
    local goal = ratio and (ratio <= GOAL and " (met)" or " (missed)") or ""
    local cells = {name, t and string.format("%.4g us", t * 1e6) or "-", m and string.format("%.4g us", m * 1e6) or "-",
                   ratio and string.format("%.2fx", ratio) or "-", string.format("<= %gx%s", GOAL, goal)}
    print(string.format("%-28s tide %-18s MPI %-18s ratio %-8s goal %s", table.unpack(cells)))
    local rows = os.getenv("TIDE_BENCH_ROWS")
    if rows and rows ~= "" then
        local f = io.open(rows, "a")
        if f then
            f:write(table.concat(cells, "\t"), "\n")
            f:close()
        end
    end
end

-- The table: per size and column the best (smallest) time over the runs,
-- and the ratios as the median over the runs of each run's own tide/MPI
-- (the two programs run a few seconds apart, so a run's ratio is less at
-- the mercy of what else the box is doing than the best times are).
local function report(recs)
    local best, by_run, runs = {}, {}, {}
    for _, r in ipairs(recs) do
        local col = r.impl == "allreduce" and "mpi" or (r.check == 0 and "nocheck" or "tide")
        local key = col .. r.bytes
        if not best[key] or r.median_s < best[key] then best[key] = r.median_s end
        local run = r.run or 0
        runs[run] = true
        by_run[run] = by_run[run] or {}
        by_run[run][key] = r.median_s
    end
    local function ratios(col, n)
        local xs = {}
        for _, t in pairs(by_run) do
            if t[col .. n] and t["mpi" .. n] then xs[#xs + 1] = t[col .. n] / t["mpi" .. n] end
        end
        return median(xs)
    end
    local n_runs = 0
    for _ in pairs(runs) do n_runs = n_runs + 1 end
    local world = 2
    for _, r in ipairs(recs) do world = r.ranks or world end
    local function busbw(bytes, t) return 2 * (world - 1) / world * bytes / t / 1e9 end
    local function cell(bytes, t)
        if not t then return "-" end
        local time = t < 1e-3 and string.format("%.1f µs", t * 1e6) or string.format("%.2f ms", t * 1e3)
        return string.format("%.2f GB/s (%s)", busbw(bytes, t), time)
    end
    local function fmt_ratio(x) return x and string.format("%.2fx", x) or "-" end
    print(string.format("\nall_reduce, float32 sum in place, %d ranks on one box, %s; bus bandwidth "
                        .. "2(n-1)/n*bytes/time (time per call), best of %d runs; tide/MPI: the median "
                        .. "over the runs of each run's ratio of times", world, cpu_name(), n_runs))
    print()
    print("| size | MPI_Allreduce | tide all_reduce | tide/MPI | tide, check = false | tide/MPI |")
    print("|---:|---:|---:|---:|---:|---:|")
    for _, n in ipairs(SIZES) do
        local m, t, u = best["mpi" .. n], best["tide" .. n], best["nocheck" .. n]
        print(string.format("| %s | %s | %s | %s | %s | %s |", label(n), cell(n, m), cell(n, t),
                            fmt_ratio(ratios("tide", n)), cell(n, u), fmt_ratio(ratios("nocheck", n))))
    end
    print()
    for _, n in ipairs({4096, 1 << 20, 16 << 20}) do
        summary_row("allreduce " .. label(n) .. " (base MPI)", best["tide" .. n], best["mpi" .. n], ratios("tide", n))
    end
end

if report_file then
    report(parse(read_lines(report_file)))
    return
end

if not dist.launched() then
    error("allreduce.lua: run it under mpirun with 2 or more ranks (scripts/bench/allreduce.sh does)", 0)
end
dist.init{timeout = 300}
local rank, world = dist.rank(), dist.world_size()

-- the C program's calls per block, so both sides time the same work
local mpi_iters, mpi_lines = {}, nil
if mpi_file then
    mpi_lines = read_lines(mpi_file)
    for _, r in ipairs(parse(mpi_lines)) do mpi_iters[r.bytes] = r.iters end
end

local checked, unchecked = {}, {check = false}

-- seconds per call of `iters` calls, the slowest rank's
local slowest = tide.zeros({1}, {dtype = "float64"})
local function block(t, opts, iters)
    dist.barrier()
    local t0 = tide.clock()
    for _ = 1, iters do dist.all_reduce(t, opts) end
    slowest:fill_((tide.clock() - t0) / iters)
    dist.all_reduce(slowest, {op = "max"})
    return slowest:item()
end

local out = {}
for _, bytes in ipairs(SIZES) do
    local buf <close> = tide.zeros({bytes // 4}) -- zeros stay zeros: no overflow, no denormals
    local few = bytes >= (4 << 20) and 2 or 20
    block(buf, checked, few)
    block(buf, unchecked, few)
    local iters = mpi_iters[bytes]
    if not iters then
        local t = tide.zeros({1}, {dtype = "int64"})
        t:fill_(math.max(3, math.min(20000, math.floor(TARGET_S / block(buf, checked, few)))))
        dist.broadcast(t, {src = 0})
        iters = t:item()
    end
    -- the two variants alternate, so a busy moment on the box hits both
    local times = {[true] = {}, [false] = {}}
    for b = 1, BLOCKS do
        times[true][b] = block(buf, checked, iters)
        times[false][b] = block(buf, unchecked, iters)
    end
    for _, check in ipairs({true, false}) do
        local t = B.median(times[check])
        out[#out + 1] = string.format("tide bytes=%d check=%d iters=%d blocks=%d ranks=%d median_s=%.6g "
                                      .. "busbw_GBps=%.4g", bytes, check and 1 or 0, iters, BLOCKS,
                                      world, t, 2 * (world - 1) / world * bytes / t / 1e9)
    end
end

if rank == 0 then
    for _, line in ipairs(out) do print(line) end
    io.stdout:flush()
    if mpi_lines then
        local all = {}
        for _, l in ipairs(mpi_lines) do all[#all + 1] = l end
        for _, l in ipairs(out) do all[#all + 1] = l end
        report(parse(all))
    end
end
dist.finalize()
