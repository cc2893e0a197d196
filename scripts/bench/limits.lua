-- The machine's limits that the benchmarks' rows are measured against,
-- measured once at the start of scripts/bench/run.sh: the float32 peak
-- (best GFLOP/s of tide.matmul on 4096x4096, oneDNN's sgemm) and the memory
-- bandwidth (best STREAM triad of bench_triad on 64M float32), at the
-- run's thread count. `tide scripts/bench/limits.lua [threads]` prints them
-- and, when TIDE_BENCH_LIMITS names a file, writes them there for the
-- other benchmarks of the run (benchlib.lua's B.limits reads it).
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")

local threads = B.threads(arg)
print(string.format("cpu %s, %d threads", B.cpu(), threads))
local L = B.measure_limits(threads)
print(B.limits_line(L))
local path = os.getenv("TIDE_BENCH_LIMITS")
if path and path ~= "" then B.write_limits(path, L) end
