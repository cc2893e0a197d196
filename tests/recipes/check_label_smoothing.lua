-- Checks what scripts/label_smoothing.lua wrote into its --out folder,
-- beyond check_report.lua's generic checks:
--   tide tests/recipes/check_label_smoothing.lua DIR --variants ls0,ls0.1
-- - every metrics.jsonl record has the fitted temperature in [0.05, 20],
--   val_acc in [0, 1], val_nll, test_nll_scaled > 0 and ece_scaled in
--   [0, 1];
-- - after the last epoch, scaling by T (fitted on held-out training
--   images) does not make the test NLL worse by more than 5% (it is fitted
--   on other images, so it need not improve it, but a T that hurts this
--   much is a bug such as dividing the wrong way);
-- - report.md: the Results table with e, T, NLL and ECE before and after,
--   whose T and "ECE after" cells match metrics.jsonl; the held-out split
--   named; the reliability diagrams before and after.
-- Exits 1 with one line per failure.

local dir = arg[1]
local variants = {}
if arg[2] == "--variants" and arg[3] then
    for v in arg[3]:gmatch("[^,]+") do variants[#variants + 1] = v end
end
if not dir or #variants == 0 then
    io.stderr:write("usage: tide tests/recipes/check_label_smoothing.lua DIR --variants a,b\n")
    os.exit(2)
end

local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local fail, read, in01 = C.fail, C.read, C.in01
local function positive(x) return type(x) == "number" and x > 0 and x < math.huge end

local last = {}
local n = C.each_record(dir, function(rec, n)
    if type(rec.temperature) ~= "number" or not (rec.temperature >= 0.05 and rec.temperature <= 20) then
        fail("metrics.jsonl:%d: temperature is %s, not in [0.05, 20]", n, tostring(rec.temperature))
    end
    for _, f in ipairs({"val_acc", "ece_scaled", "ece", "test_acc"}) do
        if not in01(rec[f]) then fail("metrics.jsonl:%d: %s is %s, not in [0, 1]", n, f, tostring(rec[f])) end
    end
    for _, f in ipairs({"val_nll", "test_nll_scaled", "test_nll"}) do
        if not positive(rec[f]) then fail("metrics.jsonl:%d: %s is %s, not positive", n, f, tostring(rec[f])) end
    end
    if type(rec.variant) == "string" then last[rec.variant] = rec end
end)

local report = read(dir .. "/report.md") or ""
if report == "" then fail("%s/report.md is missing or empty", dir) end
local rows, head = {}, nil
for line in report:gmatch("[^\n]+") do
    local cells = {}
    for c in line:gmatch("|([^|]*)") do cells[#cells + 1] = c:match("^%s*(.-)%s*$") end
    if #cells > 1 and cells[#cells] == "" then cells[#cells] = nil end
    if cells[1] == "variant" and not head then head = cells end
    if cells[1] then rows[cells[1]] = cells end
end
local col = {}
if not head then fail("report.md: no Results table (a header starting with 'variant')")
else
    for k, c in ipairs(head) do col[c] = k end
    for _, c in ipairs({"e", "train acc", "test acc", "T", "NLL before", "NLL after", "ECE before", "ECE after"}) do
        if not col[c] then fail("report.md: the Results table has no column '%s'", c) end
    end
end

for _, v in ipairs(variants) do
    local rec = last[v]
    if not rec then fail("metrics.jsonl: no record of variant %s", v)
    elseif positive(rec.test_nll) and positive(rec.test_nll_scaled) and rec.test_nll_scaled > 1.05 * rec.test_nll then
        fail("%s: the test NLL after scaling %.4f is worse than before %.4f by more than 5%%", v,
             rec.test_nll_scaled, rec.test_nll)
    end
    local row = rows[v]
    if not row then fail("report.md: no Results row for %s", v)
    elseif rec and head and col.T and col["ECE after"] then
        local t, e = tonumber(row[col.T]), tonumber(row[col["ECE after"]])
        if not t or type(rec.temperature) ~= "number" or math.abs(t - rec.temperature) > 0.0006 then
            fail("report.md: %s's T '%s' is not metrics.jsonl's %s", v, tostring(row[col.T]), tostring(rec.temperature))
        end
        if not e or type(rec.ece_scaled) ~= "number" or math.abs(e - rec.ece_scaled) > 0.00006 then
            fail("report.md: %s's ECE after '%s' is not metrics.jsonl's %s", v, tostring(row[col["ECE after"]]),
                 tostring(rec.ece_scaled))
        end
        local eps = tonumber(v:match("^ls(.*)$"))
        if eps == nil or tonumber(row[col.e]) ~= eps then
            fail("report.md: %s's e is '%s'", v, tostring(row[col.e]))
        end
    end
end
for _, what in ipairs({"held out", "reliability_before.png", "reliability_after.png", "temperature_scale"}) do
    if not report:find(what, 1, true) then fail("report.md: no '%s'", what) end
end

C.exit_if_failed("check_label_smoothing")
print(string.format("check_label_smoothing: %s: %d records, %d variants; all checks pass", dir, n, #variants))
