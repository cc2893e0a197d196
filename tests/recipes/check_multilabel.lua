-- Checks what scripts/multilabel.lua wrote into its --out folder, beyond
-- check_report.lua's generic checks:
--   tide tests/recipes/check_multilabel.lua DIR [--variants bce,asl,focal]
-- - every metrics.jsonl record has f1_<label> for the 8 labels, macro_f1,
--   hamming_acc and test_bce; F1s, accuracies in [0, 1]; macro_f1 is the
--   mean of the F1s; exact match (test_acc) <= hamming_acc;
-- - report.md has the Results table with a column per label and the
--   summary columns, the precision/recall table with a row per label, and
--   the Labels table with each label's classes;
-- - plausible numbers for one epoch on 2,000 images: footwear F1 >= 0.8
--   for every variant, macro F1 >= 0.5 and exact match >= 0.3 for bce.
-- Exits 1 with one line per failure.

local LABELS = {"footwear", "closed_shoe", "top", "long_sleeves", "covers_legs", "full_body", "cold_weather",
                "accessory"}
local dir = arg[1]
local variants = {"bce", "asl", "focal"}
if arg[2] == "--variants" and arg[3] then
    variants = {}
    for v in arg[3]:gmatch("[^,]+") do variants[#variants + 1] = v end
elseif arg[2] then
    io.stderr:write("usage: tide tests/recipes/check_multilabel.lua DIR [--variants a,b]\n")
    os.exit(2)
end
if not dir then
    io.stderr:write("usage: tide tests/recipes/check_multilabel.lua DIR [--variants a,b]\n")
    os.exit(2)
end

local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local fail, read, in01 = C.fail, C.read, C.in01

-- metrics.jsonl
local last = {}
local n = C.each_record(dir, function(rec, n)
    local sum = 0
    for _, l in ipairs(LABELS) do
        local f1 = rec["f1_" .. l]
        if not in01(f1) then fail("metrics.jsonl:%d: f1_%s is %s, not in [0, 1]", n, l, tostring(f1))
        else sum = sum + f1 end
    end
    for _, f in ipairs({"macro_f1", "hamming_acc", "test_acc", "train_acc"}) do
        if not in01(rec[f]) then fail("metrics.jsonl:%d: %s is %s, not in [0, 1]", n, f, tostring(rec[f])) end
    end
    if type(rec.test_bce) ~= "number" or not (rec.test_bce > 0 and rec.test_bce < 5) then
        fail("metrics.jsonl:%d: test_bce is %s, not in (0, 5)", n, tostring(rec.test_bce))
    end
    if in01(rec.macro_f1) and math.abs(rec.macro_f1 - sum / #LABELS) > 1e-9 then
        fail("metrics.jsonl:%d: macro_f1 %.6f is not the mean of the F1s %.6f", n, rec.macro_f1, sum / #LABELS)
    end
    if in01(rec.test_acc) and in01(rec.hamming_acc) and rec.test_acc > rec.hamming_acc + 1e-9 then
        fail("metrics.jsonl:%d: exact match %.4f exceeds the Hamming accuracy %.4f", n, rec.test_acc,
             rec.hamming_acc)
    end
    if type(rec.variant) == "string" then last[rec.variant] = rec end
end)
for _, v in ipairs(variants) do
    local rec = last[v]
    if not rec then fail("metrics.jsonl: no record of variant %s", v)
    else
        if in01(rec.f1_footwear) and rec.f1_footwear < 0.8 then
            fail("%s: footwear F1 %.4f is below 0.8", v, rec.f1_footwear)
        end
        if v == "bce" then
            if in01(rec.macro_f1) and rec.macro_f1 < 0.5 then fail("bce: macro F1 %.4f is below 0.5", rec.macro_f1) end
            if in01(rec.test_acc) and rec.test_acc < 0.3 then
                fail("bce: exact match %.4f is below 0.3", rec.test_acc)
            end
        end
    end
end

-- report.md
local report = read(dir .. "/report.md") or ""
if report == "" then fail("%s/report.md is missing or empty", dir) end
local function header_with(first)
    for line in report:gmatch("[^\n]+") do
        local cells = {}
        for c in line:gmatch("|([^|]*)") do cells[#cells + 1] = c:match("^%s*(.-)%s*$") end
        if cells[1] == first then return cells end
    end
end
local head = header_with("variant")
if not head then fail("report.md: no Results table (a header starting with 'variant')")
else
    local want = {}
    for _, l in ipairs(LABELS) do want[#want + 1] = "F1 " .. l end
    for _, c in ipairs({"macro F1", "exact match %", "Hamming acc %", "test BCE", "s/epoch"}) do want[#want + 1] = c end
    local have = {}
    for _, c in ipairs(head) do have[c] = true end
    for _, c in ipairs(want) do if not have[c] then fail("report.md: the Results table has no column '%s'", c) end end
end
for _, what in ipairs({"## Precision and recall per label", "## Labels",
                       "| footwear | 5 Sandal, 7 Sneaker, 9 Ankle boot |", "| accessory | 8 Bag |",
                       "per_label_f1."}) do
    if not report:find(what, 1, true) then fail("report.md: no '%s'", what) end
end
local pr = header_with("label")
if not pr then fail("report.md: no table headed 'label'")
else
    for _, v in ipairs(variants) do
        local found = false
        for _, c in ipairs(pr) do if c == v .. " precision" then found = true end end
        if not found then fail("report.md: the precision/recall table has no column '%s precision'", v) end
    end
end
for _, l in ipairs(LABELS) do
    local rows = 0
    for line in report:gmatch("[^\n]+") do
        if line:match("^|%s*" .. l .. "%s*|") then rows = rows + 1 end
    end
    if rows < 2 then fail("report.md: label '%s' has %d table rows, expected 2 (precision/recall, Labels)", l, rows) end
end

C.exit_if_failed("check_multilabel")
print(string.format("check_multilabel: %s: %d records, %d variants; all checks pass", dir, n, #variants))
