-- Checks that a recipe run by mpirun wrote its files once, from rank 0:
--   tide tests/distributed/check_once.lua DIR STDOUT
-- - DIR holds one report (report.md, not empty) and no half-written *.tmp;
-- - no line of DIR/metrics.jsonl is repeated, nor a (variant, epoch) pair;
-- - STDOUT (what mpirun printed) has the "report:" line once.
-- Exits 1 with one line per failure.
local cjson = require "cjson"

local dir, stdout_path = arg[1], arg[2]
if not stdout_path then
    io.stderr:write("usage: tide tests/distributed/check_once.lua DIR STDOUT\n")
    os.exit(2)
end
-- the failure list and file reading every recipe checker shares
local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/../recipes/checklib.lua")
local fail, read = C.fail, C.read

C.one_report(dir)
local report = read(dir .. "/report.md")
if not report or #report == 0 then fail("%s/report.md is missing or empty", dir) end

local lines, pairs_, n = {}, {}, 0
for line in (read(dir .. "/metrics.jsonl") or ""):gmatch("[^\n]+") do
    n = n + 1
    if lines[line] then fail("metrics.jsonl:%d repeats line %d", n, lines[line]) end
    lines[line] = n
    local ok, r = pcall(cjson.decode, line)
    if not ok or type(r) ~= "table" then
        fail("metrics.jsonl:%d is not a JSON object", n)
    elseif r.epoch ~= nil and r.variant ~= nil then
        local key = tostring(r.variant) .. "/" .. tostring(math.tointeger(r.epoch) or r.epoch)
        if pairs_[key] then fail("metrics.jsonl:%d repeats %s (line %d)", n, key, pairs_[key]) end
        pairs_[key] = n
    end
end
if n == 0 then fail("%s/metrics.jsonl is missing or empty", dir) end

local out = read(stdout_path) or ""
local _, printed = ("\n" .. out):gsub("\nreport: ", "")
if printed ~= 1 then fail("%s: 'report:' printed %d times", stdout_path, printed) end

C.exit_if_failed("check_once")
print(string.format("check_once: %s: one report, %d metrics lines, each once", dir, n))
