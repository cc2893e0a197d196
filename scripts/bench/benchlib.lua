-- Shared helpers for the benchmarks in scripts/bench/: timing (warm-up,
-- median of repeats), running the PyTorch twin in the same invocation at
-- the same thread count, and reporting rows.
--
-- Each benchmark is run as `tide scripts/bench/NAME.lua [threads]`. When
-- the environment variable TIDE_BENCH_ROWS names a file, every result row
-- is also appended there, tab-separated (benchmark, tide, pytorch, ratio,
-- goal), for scripts/bench/run.sh to print as one table.
local tide = require "tide"

local M = {}

-- Debian's python3 with python3-torch: not whatever python3 is first on PATH.
M.python = os.getenv("TIDE_BENCH_PYTHON") or "/usr/bin/python3"

-- the folder this library lives in, so benchmarks run from any directory
M.dir = (debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$")) or "scripts/bench"

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

-- median seconds per call of fn over `repeats` timed runs of `inner` calls
-- each, after `warmup` untimed calls. fn should free what it makes (a
-- `<close>` variable) so memory stays flat.
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
    return M.median(times)
end

-- Run the PyTorch twin `script` (a file beside this one) with `args`;
-- return a table of its `key value` output lines (values as numbers where
-- they parse), or nil and the reason when PyTorch cannot be run.
function M.torch(script, args)
    local f = io.open(M.python, "r")
    if not f then return nil, M.python .. " not found" end
    f:close()
    local cmd = string.format("%s %s/%s %s 2>&1", M.python, M.dir, script,
                              table.concat(args or {}, " "))
    local p = io.popen(cmd, "r")
    if not p then return nil, "cannot run " .. cmd end
    local out, lines = {}, {}
    for line in p:lines() do
        lines[#lines + 1] = line
        local k, v = line:match("^(%S+)%s+(%S+)%s*$")
        if k then out[k] = tonumber(v) or v end
    end
    p:close()
    if out.error == "no_torch" then return nil, "PyTorch (python3-torch) is not installed" end
    if not out.ok then
        return nil, "the PyTorch twin failed: " .. table.concat(lines, "\n", math.max(1, #lines - 5))
    end
    return out
end

local function fmt(x, unit)
    if x == nil then return "-" end
    if type(x) == "string" then return x end
    if unit == "ms" then return string.format("%.3f ms", x * 1e3) end
    if unit == "GFLOP/s" then return string.format("%.1f GFLOP/s", x) end
    return string.format("%.4g %s", x, unit or "")
end
M.fmt = fmt

-- Report one result. `higher` says whether bigger is better (throughput)
-- or smaller is (time); the ratio is tide/torch either way, and `goal` is
-- the ratio to reach (>= goal when higher, <= goal otherwise).
function M.row(name, tide_v, torch_v, unit, higher, goal)
    local ratio, ratio_s, verdict = nil, "-", ""
    if tide_v and torch_v then
        ratio = tide_v / torch_v
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
    local line = string.format("%-28s tide %-18s pytorch %-18s ratio %-8s goal %s%s", name,
                               fmt(tide_v, unit), fmt(torch_v, unit), ratio_s, goal_s, verdict)
    print(line)
    local rows = os.getenv("TIDE_BENCH_ROWS")
    if rows and rows ~= "" then
        local f = io.open(rows, "a")
        if f then
            f:write(table.concat({name, fmt(tide_v, unit), fmt(torch_v, unit), ratio_s,
                                  goal_s .. verdict}, "\t"), "\n")
            f:close()
        end
    end
    return ratio
end

return M
