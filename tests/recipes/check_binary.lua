-- Checks what scripts/binary.lua wrote into its --out folder, beyond
-- check_report.lua's generic checks:
--   tide tests/recipes/check_binary.lua DIR [--test-images N] [--min-acc X]
-- - every metrics.jsonl record has brier, ece, neg_acc, pos_acc, test_acc
--   in [0, 1]; test_acc is the mean of the two classes' accuracies (their
--   test sets have 1,000 images each); Brier <= 0.25 would be a coin, so
--   it must be below 0.25 for bce;
-- - bce's test accuracy >= --min-acc (default 0.7: T-shirt vs shirt after
--   one epoch on 2,000 images reaches about 0.8);
-- - report.md: the Results table with the class columns, Brier and ECE;
--   the test set of N images (default 2,000) named; the reliability
--   diagram linked.
-- Exits 1 with one line per failure.

local dir = arg[1]
local test_images, min_acc = 2000, 0.7
local i = 2
while i <= #arg do
    if arg[i] == "--test-images" then test_images = math.tointeger(tonumber(arg[i + 1]))
    elseif arg[i] == "--min-acc" then min_acc = tonumber(arg[i + 1])
    else dir = nil end
    i = i + 2
end
if not dir or not test_images or not min_acc then
    io.stderr:write("usage: tide tests/recipes/check_binary.lua DIR [--test-images N] [--min-acc X]\n")
    os.exit(2)
end
local VARIANTS = {"bce", "focal", "bce_ls"}

local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local fail, read, in01 = C.fail, C.read, C.in01

local last = {}
local n = C.each_record(dir, function(rec, n)
    local good = true
    for _, f in ipairs({"brier", "ece", "neg_acc", "pos_acc", "test_acc", "train_acc"}) do
        if not in01(rec[f]) then
            fail("metrics.jsonl:%d: %s is %s, not in [0, 1]", n, f, tostring(rec[f]))
            good = false
        end
    end
    if good and math.abs((rec.neg_acc + rec.pos_acc) / 2 - rec.test_acc) > 1e-9 then
        fail("metrics.jsonl:%d: test_acc %.6f is not the mean of the class accuracies %.6f, %.6f", n,
             rec.test_acc, rec.neg_acc, rec.pos_acc)
    end
    if type(rec.test_nll) ~= "number" or not (rec.test_nll > 0 and rec.test_nll < 5) then
        fail("metrics.jsonl:%d: test_nll is %s, not in (0, 5)", n, tostring(rec.test_nll))
    end
    if type(rec.variant) == "string" then last[rec.variant] = rec end
end)
for _, v in ipairs(VARIANTS) do
    if not last[v] then fail("metrics.jsonl: no record of variant %s", v) end
end
local bce = last.bce
if bce and in01(bce.test_acc) and bce.test_acc < min_acc then
    fail("bce: test accuracy %.4f is below %.4f", bce.test_acc, min_acc)
end
if bce and in01(bce.brier) and bce.brier >= 0.25 then
    fail("bce: Brier score %.4f is no better than a constant 0.5", bce.brier)
end

local report = read(dir .. "/report.md") or ""
if report == "" then fail("%s/report.md is missing or empty", dir) end
local head
for line in report:gmatch("[^\n]+") do
    local cells = {}
    for c in line:gmatch("|([^|]*)") do cells[#cells + 1] = c:match("^%s*(.-)%s*$") end
    if cells[1] == "variant" then head = cells break end
end
if not head then fail("report.md: no Results table (a header starting with 'variant')")
else
    local have = {}
    for _, c in ipairs(head) do have[c] = true end
    for _, c in ipairs({"train acc", "test acc", "T-shirt/top acc", "Shirt acc", "test NLL", "ECE", "Brier"}) do
        if not have[c] then fail("report.md: the Results table has no column '%s'", c) end
    end
end
for _, what in ipairs({"reliability.png", string.format("their %d test images", test_images),
                       "Shirt (6) vs T-shirt/top (0)"}) do
    if not report:find(what, 1, true) then fail("report.md: no '%s'", what) end
end

C.exit_if_failed("check_binary")
print(string.format("check_binary: %s: %d records, %d variants; all checks pass", dir, n, #VARIANTS))
