-- Checks a recipe's run under mpirun against a 1-process run of the same
-- flags (tests/distributed/loss_study_quick.sh):
--   tide tests/distributed/check_same_run.lua DIST_DIR ONE_DIR DIST_STDOUT --acc VARIANT=POINTS ...
-- - DIST_DIR holds one report.md and nothing half-written (no *.tmp);
-- - its metrics.jsonl has the 1-process run's lines, each once: the same
--   (variant, epoch) pairs, none repeated (no line from a second rank);
-- - its report's tables have the 1-process report's shape: the same
--   titles, header rows and first column;
-- - DIST_STDOUT (what mpirun printed) has each epoch line and the
--   "report:" line once (the other rank is silent);
-- - for each --acc, the variant's last test accuracy is within POINTS
--   percentage points of the 1-process run's.
-- Exits 1 with one line per failure.
local cjson = require "cjson"

local dist_dir, one_dir, stdout_path = arg[1], arg[2], arg[3]
local accs = {}
local i = 4
while i <= #arg do
    if arg[i] ~= "--acc" or not arg[i + 1] then
        io.stderr:write("check_same_run: unknown argument ", tostring(arg[i]), "\n")
        os.exit(2)
    end
    local name, points = arg[i + 1]:match("^([^=]+)=(.+)$")
    accs[#accs + 1] = {name, tonumber(points)}
    i = i + 2
end
if not stdout_path then
    io.stderr:write("usage: tide tests/distributed/check_same_run.lua DIST_DIR ONE_DIR DIST_STDOUT [--acc V=P]\n")
    os.exit(2)
end

-- the failure list and file reading every recipe checker shares
local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/../recipes/checklib.lua")
local fail, read = C.fail, C.read

-- the folder's files
C.one_report(dist_dir)

-- metrics.jsonl: the pairs, each once; the last record per variant
local function records(dir)
    local text = read(dir .. "/metrics.jsonl")
    local pairs_, last, lines = {}, {}, 0
    if not text then
        fail("%s/metrics.jsonl is missing", dir)
        return pairs_, last, 0
    end
    for line in text:gmatch("[^\n]+") do
        lines = lines + 1
        local ok, r = pcall(cjson.decode, line)
        if not ok or type(r) ~= "table" then
            fail("%s/metrics.jsonl:%d is not a JSON object", dir, lines)
        else
            local key = tostring(r.variant) .. "/" .. tostring(math.tointeger(r.epoch) or r.epoch)
            if pairs_[key] then fail("%s/metrics.jsonl:%d repeats %s", dir, lines, key) end
            pairs_[key] = true
            last[r.variant] = r
        end
    end
    return pairs_, last, lines
end
local dpairs, dlast, dlines = records(dist_dir)
local opairs, olast, olines = records(one_dir)
if dlines ~= olines then fail("metrics.jsonl: %d lines under mpirun, %d in one process", dlines, olines) end
for k in pairs(opairs) do
    if not dpairs[k] then fail("metrics.jsonl under mpirun lacks %s", k) end
end

-- the tables' shape: titles, header rows, first cells
local function shape(dir)
    local text = read(dir .. "/report.md") or ""
    local out = {}
    local prev = ""
    for line in text:gmatch("[^\n]*") do
        if line:match("^## ") then
            out[#out + 1] = line
        elseif line:match("^|") then
            if not prev:match("^|") then
                out[#out + 1] = "header " .. line         -- a table's first row: its columns
            elseif not line:match("^|%s*%-") then
                out[#out + 1] = "row " .. line:match("^|%s*([^|]-)%s*|")
            end
        end
        if line ~= "" then prev = line end
    end
    return out
end
local ds, os_ = shape(dist_dir), shape(one_dir)
-- the Settings table's rows and the Machine lines may differ (mpirun adds one); compare up to Settings
local function until_settings(list)
    local out = {}
    for _, l in ipairs(list) do
        if l == "## Settings" then break end
        out[#out + 1] = l
    end
    return out
end
ds, os_ = until_settings(ds), until_settings(os_)
if #ds ~= #os_ then fail("report.md: %d titles and table rows under mpirun, %d in one process", #ds, #os_) end
for k = 1, math.min(#ds, #os_) do
    if ds[k] ~= os_[k] then
        fail("report.md differs in shape: '%s' under mpirun, '%s' in one process", ds[k], os_[k])
    end
end
if #ds < 3 then fail("report.md under mpirun has no table") end

-- stdout: once each
local out = read(stdout_path) or ""
local epoch_lines = {}
for line in out:gmatch("[^\n]+") do
    local v, e = line:match("^([%w_.+-]+) epoch (%d+)/%d+: ")
    if v then
        local key = v .. "/" .. e
        epoch_lines[key] = (epoch_lines[key] or 0) + 1
    end
end
for k in pairs(opairs) do
    if epoch_lines[k] ~= 1 then fail("stdout under mpirun has the line of %s %d times", k, epoch_lines[k] or 0) end
end
local _, reports_printed = out:gsub("\nreport: ", "")
if reports_printed ~= 1 then fail("stdout under mpirun has 'report:' %d times", reports_printed) end

-- accuracies
for _, a in ipairs(accs) do
    local d, o = dlast[a[1]], olast[a[1]]
    if not d or not o or type(d.test_acc) ~= "number" or type(o.test_acc) ~= "number" then
        fail("no test_acc for %s", a[1])
    elseif math.abs(d.test_acc - o.test_acc) * 100 > a[2] then
        fail("%s: test accuracy %.2f%% under mpirun, %.2f%% in one process: more than %g points apart", a[1],
             100 * d.test_acc, 100 * o.test_acc, a[2])
    else
        print(string.format("check_same_run: %s test accuracy %.2f%% under mpirun, %.2f%% in one process", a[1],
                            100 * d.test_acc, 100 * o.test_acc))
    end
end

C.exit_if_failed("check_same_run")
print(string.format("check_same_run: %s: one report, %d metrics lines once each, the tables of %s", dist_dir,
                    dlines, one_dir))
