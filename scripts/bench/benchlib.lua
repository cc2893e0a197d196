-- Shared helpers for the benchmarks in scripts/bench/: timing (warm-up,
-- best of repeats), running the PyTorch twin in the same invocation at
-- the same thread count, the machine's limits, and reporting rows.
--
-- Each benchmark is run as `tide scripts/bench/NAME.lua [threads]`. When
-- the environment variable TIDE_BENCH_ROWS names a file, every result row
-- is also appended there, tab-separated (benchmark, tide, pytorch,
-- pytorch with tcmalloc, ratio, goal, work, tide against the limit), for
-- scripts/bench/run.sh to print as one table.
--
-- The baseline. With glibc's malloc every fresh large tensor is memory new
-- to the process and pays its page faults, which on our VMs makes PyTorch
-- 10 to 40 times slower than it need be; PyTorch's CPU performance tuning
-- guide preloads tcmalloc. B.baseline runs each twin twice, as started by
-- default and with LD_PRELOAD of tcmalloc (Debian's libtcmalloc-minimal4),
-- and the ratio and goal of a row are against the tuned run.
--
-- The limits. run.sh measures two once per run (limits.lua) and leaves
-- them in the file named by TIDE_BENCH_LIMITS: the float32 peak, as the
-- best GFLOP/s of tide.matmul on 4096x4096 (oneDNN's sgemm), and the memory
-- bandwidth, as the best STREAM triad a[i] = b[i] + s*c[i] on 64M float32
-- (bench_triad, built from triad.c beside tide). A benchmark run on its own
-- measures them itself the first time a row needs them.
--
-- Work. A row given its work ({flop = F} and/or {bytes = B}) prints the
-- counts and how near tide comes to the roofline: max(F / peak, B / triad),
-- the least time the limits allow, over tide's time, named after the limit
-- that binds ("of peak" for compute-bound rows, "of triad" for memory-bound
-- ones). FLOP count 2 per multiply-add (a (m,k)x(k,n) GEMM is 2mkn, and a
-- backward 2x its forward). Bytes are the least traffic the op needs: each
-- input read once and each output written once, float32 4 bytes and int64
-- 8, temporaries and second passes not counted, as STREAM counts its triad
-- (3 * n * 4). So 100% is the roofline, not what a two-pass kernel can
-- reach, and operands that fit in cache can pass 100% of triad (DRAM's).
-- Each benchmark writes its formulas in comments beside its rows.
local tide = require "tide"

local M = {}

local function readable(path)
    local f = io.open(path, "r")
    if f then f:close() end
    return f ~= nil
end

-- Debian's python3 with python3-torch: not whatever python3 is first on PATH.
M.python = os.getenv("TIDE_BENCH_PYTHON") or "/usr/bin/python3"

-- tcmalloc for the tuned PyTorch run; TIDE_BENCH_TCMALLOC names another
-- (run.sh sets it empty when the library is missing). nil when there is none.
local TCMALLOC = "/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"
do
    local path = os.getenv("TIDE_BENCH_TCMALLOC") or TCMALLOC
    M.tcmalloc = path ~= "" and readable(path) and path or nil
end

-- the folder this library lives in, so benchmarks run from any directory
M.dir = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "scripts/bench"

-- the triad program, beside the tide that runs this (or TIDE_BENCH_TRIAD)
M.triad = os.getenv("TIDE_BENCH_TRIAD")
    or ((arg and arg[-1] and arg[-1]:match("^(.*)/[^/]*$") or "build") .. "/bench_triad")

-- thread count: the first script argument if given, else tide's default
function M.threads(argv)
    local n = tonumber(argv and argv[1]) or tide.get_num_threads()
    tide.set_num_threads(n)
    return n
end

function M.median(xs)
    local s = {}
    for i, x in ipairs(xs) do s[i] = x end
    table.sort(s)
    local n = #s
    if n % 2 == 1 then return s[(n + 1) // 2] end
    return (s[n // 2] + s[n // 2 + 1]) / 2
end

-- the best (least) seconds per call of fn over `repeats` timed runs of
-- `inner` calls each, after `warmup` untimed calls: on a shared VM other
-- tenants only ever add time, in bursts that a median of a few runs still
-- caught (the conv row's ratio ranged 0.8-1.2x over three runs), and
-- the PyTorch twins take the same statistic. fn should free what it
-- makes (a `<close>` variable) so memory stays flat.
function M.time(fn, opts)
    opts = opts or {}
    local warmup, repeats, inner = opts.warmup or 3, opts.repeats or 7, opts.inner or 1
    for _ = 1, warmup do fn() end
    collectgarbage()
    local times = {}
    for r = 1, repeats do
        local t0 = tide.clock()
        for _ = 1, inner do fn() end
        times[r] = (tide.clock() - t0) / inner
    end
    return math.min(table.unpack(times))
end

-- the `key value` lines of a command's output as a table (values as
-- numbers where they parse), and all its lines; nil when it cannot start
function M.run_keys(cmd)
    local p = io.popen(cmd, "r")
    if not p then return nil, {} end
    local out, lines = {}, {}
    for line in p:lines() do
        lines[#lines + 1] = line
        local k, v = line:match("^(%S+)%s+(%S+)%s*$")
        if k then out[k] = tonumber(v) or v end
    end
    p:close()
    return out, lines
end

-- Run the PyTorch twin `script` (a file beside this one) with `args`, with
-- the library `preload` in LD_PRELOAD if given; return a table of its
-- `key value` output lines, or nil and the reason when it cannot be run.
function M.torch(script, args, preload)
    if not readable(M.python) then return nil, M.python .. " not found" end
    local cmd = string.format("%s%s %s/%s %s 2>&1", preload and ("LD_PRELOAD=" .. preload .. " ") or "",
                              M.python, M.dir, script, table.concat(args or {}, " "))
    local out, lines = M.run_keys(cmd)
    if not out then return nil, "cannot run " .. cmd end
    if out.error == "no_torch" then return nil, "PyTorch (python3-torch) is not installed" end
    if not out.ok then
        return nil, "the PyTorch twin failed: " .. table.concat(lines, "\n", math.max(1, #lines - 5))
    end
    return out
end

local Baseline = {}
Baseline.__index = Baseline

-- the twin's `key` from both runs, each through fn if given: the pair
-- {default = v, tuned = v} that B.row takes; nil without PyTorch
function Baseline:get(key, fn)
    if not self.default then return nil end
    local function pick(out)
        local v = out and out[key]
        if fn and type(v) == "number" then v = fn(v) end
        return v
    end
    return {default = pick(self.default), tuned = pick(self.tuned)}
end

-- Run the twin as PyTorch starts by default, then with tcmalloc preloaded;
-- print a note for what could not run. Read values with :get(key).
function M.baseline(script, args)
    local b = setmetatable({}, Baseline)
    local why
    b.default, why = M.torch(script, args)
    if not b.default then
        print("note: " .. why .. "; tide's numbers only")
        return b
    end
    if not M.tcmalloc then
        if not M.noted_tcmalloc then
            print("note: no tcmalloc (" .. TCMALLOC .. ": apt-get install libtcmalloc-minimal4);"
                  .. " PyTorch's default column only, and the ratio against it")
            M.noted_tcmalloc = true
        end
        return b
    end
    b.tuned, why = M.torch(script, args, M.tcmalloc)
    if not b.tuned then print("note: PyTorch with tcmalloc: " .. why .. "; the ratio is against the default") end
    return b
end

-- the CPU's model name from /proc/cpuinfo, with its family and model
-- numbers (a VM may say no more than "AMD EPYC": family 25 is Zen 3/4, 26 Zen 5)
function M.cpu()
    local f = io.open("/proc/cpuinfo", "r")
    if not f then return "unknown CPU" end
    local name, family, model
    for line in f:lines() do
        name = name or line:match("^model name%s*:%s*(.-)%s*$")
        family = family or line:match("^cpu family%s*:%s*(%d+)")
        model = model or line:match("^model%s*:%s*(%d+)")
    end
    f:close()
    if family and model then return string.format("%s (family %s model %s)", name or "?", family, model) end
    return name or "unknown CPU"
end

-- Measure the limits at `threads` (tide's current count by default): the
-- best of 5 tide.matmul of 4096x4096 float32, and bench_triad's best of 20
-- passes over 64M float32. Returns {threads, sgemm_n, peak_gflops, triad_n,
-- triad_gbs} (triad_why instead when bench_triad cannot be run).
function M.measure_limits(threads)
    threads = threads or tide.get_num_threads()
    local n = 4096
    local L = {threads = threads, sgemm_n = n}
    -- ones, not randn: the benchmarks' random streams stay as they were
    local a <close> = tide.ones({n, n})
    local b <close> = tide.ones({n, n})
    do
        local _ <close> = a:matmul(b)
    end
    local best = math.huge
    for _ = 1, 5 do
        local t0 = tide.clock()
        local _ <close> = a:matmul(b)
        best = math.min(best, tide.clock() - t0)
    end
    L.peak_gflops = 2 * n ^ 3 / best / 1e9
    if not readable(M.triad) then
        L.triad_why = M.triad .. " is not built"
        return L
    end
    local out, lines = M.run_keys(string.format("OMP_NUM_THREADS=%d %s 2>&1", threads, M.triad))
    if out and type(out.triad_gbs) == "number" then
        L.triad_n, L.triad_gbs = out.n, out.triad_gbs
    else
        L.triad_why = "bench_triad failed: " .. table.concat(lines or {}, " ")
    end
    return L
end

-- one line saying what the limits are
function M.limits_line(L)
    local peak = L.peak_gflops and string.format("peak %.1f GFLOP/s (tide.matmul %d^2 float32, best of 5)",
                                                 L.peak_gflops, L.sgemm_n) or "peak unknown"
    local triad = L.triad_gbs and string.format("triad %.1f GB/s (%dM float32, best of 20)", L.triad_gbs,
                                                (L.triad_n or 0) >> 20)
        or ("triad unknown: " .. (L.triad_why or "not measured"))
    return string.format("limits at %s threads: %s, %s", tostring(L.threads or "?"), peak, triad)
end

-- write the limits as `key value` lines for the other benchmarks of a run
function M.write_limits(path, L)
    local f = assert(io.open(path, "w"))
    for _, k in ipairs({"threads", "sgemm_n", "peak_gflops", "triad_n", "triad_gbs"}) do
        if L[k] then f:write(k, " ", tostring(L[k]), "\n") end
    end
    f:close()
end

-- the limits of this run: read from TIDE_BENCH_LIMITS (run.sh's, which
-- may lack what it could not measure), else measured now, once
function M.limits()
    if M.cached_limits then return M.cached_limits end
    local path = os.getenv("TIDE_BENCH_LIMITS")
    local L = {}
    if path and path ~= "" then
        local f = io.open(path, "r")
        if f then
            for line in f:lines() do
                local k, v = line:match("^(%S+)%s+(%S+)%s*$")
                if k then L[k] = tonumber(v) or v end
            end
            f:close()
        end
    else
        print("measuring the limits for this benchmark alone (run.sh measures them once a run)")
        L = M.measure_limits()
        print(M.limits_line(L))
    end
    M.cached_limits = L
    return L
end

local function fmt(x, unit)
    if x == nil then return "-" end
    if type(x) == "string" then return x end
    if unit == "ms" then return string.format("%.3f ms", x * 1e3) end
    if unit == "GFLOP/s" then return string.format("%.1f GFLOP/s", x) end
    return string.format("%.4g %s", x, unit or "")
end
M.fmt = fmt

-- 3 significant digits with a decimal prefix: human(1.2e10, "FLOP") = "12 GFLOP"
local function human(x, unit)
    for _, p in ipairs({{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}}) do
        if x >= p[1] then return string.format("%.3g %s%s", x / p[1], p[2], unit) end
    end
    return string.format("%.3g %s", x, unit)
end

-- the work cell ("1.37 GFLOP", "805 MB") and the limit cell ("19.8 GB/s,
-- 79% of triad") of a row; tide_v is seconds ("ms", "s") or GFLOP/s
local function roofline(tide_v, unit, work)
    if not work or (not work.flop and not work.bytes) then return "-", "-" end
    local cells = {}
    if work.flop then cells[#cells + 1] = human(work.flop, "FLOP") end
    if work.bytes then cells[#cells + 1] = human(work.bytes, "B") end
    local work_s = table.concat(cells, ", ")
    local secs
    if type(tide_v) ~= "number" then return work_s, "-" end
    if unit == "ms" or unit == "s" then
        secs = tide_v
    elseif unit == "GFLOP/s" and work.flop then
        secs = work.flop / (tide_v * 1e9)
    else
        return work_s, "-"
    end
    local L = M.limits()
    local tc = work.flop and L.peak_gflops and work.flop / (L.peak_gflops * 1e9)
    local tm = work.bytes and L.triad_gbs and work.bytes / (L.triad_gbs * 1e9)
    if tc and (not tm or tc >= tm) then
        return work_s, string.format("%.1f GFLOP/s, %.0f%% of peak", work.flop / secs / 1e9, 100 * tc / secs)
    elseif tm then
        return work_s, string.format("%.1f GB/s, %.0f%% of triad", work.bytes / secs / 1e9, 100 * tm / secs)
    end
    return work_s, work.flop and string.format("%.1f GFLOP/s", work.flop / secs / 1e9)
        or string.format("%.1f GB/s", work.bytes / secs / 1e9)
end

-- what every table starts with: the CPU, the threads, the baseline (and
-- the limits when run.sh has measured them)
local function header()
    if M.printed_header then return end
    M.printed_header = true
    print(string.format("cpu %s, %d threads; pytorch %s", M.cpu(), tide.get_num_threads(),
                        M.tcmalloc and ("as started by default, and with LD_PRELOAD=" .. M.tcmalloc)
                            or "as started by default (no tcmalloc)"))
    local path = os.getenv("TIDE_BENCH_LIMITS")
    if path and path ~= "" then print(M.limits_line(M.limits())) end
end

-- Report one result. `higher` says whether bigger is better (throughput)
-- or smaller is (time); the ratio is tide/torch either way, and `goal` is
-- the ratio to reach (>= goal when higher, <= goal otherwise). torch_v is
-- a number or a baseline's pair ({default, tuned} from :get); the ratio is
-- against the tuned value where there is one. `work`, optional, is
-- {flop = F, bytes = B} for the row's roofline cell (see the top).
function M.row(name, tide_v, torch_v, unit, higher, goal, work)
    header()
    local default_v, tuned_v = torch_v, nil
    if type(torch_v) == "table" then default_v, tuned_v = torch_v.default, torch_v.tuned end
    local base = tuned_v or default_v
    local ratio, ratio_s, verdict = nil, "-", ""
    if type(tide_v) == "number" and type(base) == "number" then
        ratio = tide_v / base
        ratio_s = string.format("%.2fx", ratio)
    end
    local goal_s = "-"
    if goal then
        goal_s = (higher and ">= " or "<= ") .. string.format("%gx", goal)
        if ratio then
            local met = (higher and ratio >= goal) or (not higher and ratio <= goal)
            verdict = met and " (met)" or " (missed)"
        end
    end
    local work_s, limit_s = roofline(tide_v, unit, work)
    local tuned_s = fmt(tuned_v, unit)
    print(string.format("%-30s tide %-14s pytorch %-14s%s ratio %-7s goal %-18s work %-18s %s", name,
                        fmt(tide_v, unit), fmt(default_v, unit),
                        M.tcmalloc and string.format(" +tcmalloc %-14s", tuned_s) or "", ratio_s,
                        goal_s .. verdict, work_s, limit_s))
    local rows = os.getenv("TIDE_BENCH_ROWS")
    if rows and rows ~= "" then
        local f = io.open(rows, "a")
        if f then
            f:write(table.concat({name, fmt(tide_v, unit), fmt(default_v, unit), tuned_s, ratio_s,
                                  goal_s .. verdict, work_s, limit_s}, "\t"), "\n")
            f:close()
        end
    end
    return ratio
end

return M
