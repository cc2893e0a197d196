-- Checks what scripts/imbalance.lua wrote into its --out folder, beyond
-- check_report.lua's generic checks:
--   tide tests/recipes/check_imbalance.lua DIR
-- - every metrics.jsonl record has majority_acc, others_acc, macro_acc,
--   macro_f1 in [0, 1]; on the balanced test set macro_acc equals test_acc
--   and test_acc = (majority_acc + 9 others_acc) / 10;
-- - report.md: the Results table with its columns, the Class weights
--   table (the majority class's weight the smallest in both rows), the
--   per-class bar chart;
-- - the imbalance shows: plain CE is better on the majority class than on
--   the others, and inverse-frequency weighting (wce) raises the others'
--   accuracy above plain CE's.
-- Exits 1 with one line per failure.

local dir = arg[1]
if not dir or arg[2] then
    io.stderr:write("usage: tide tests/recipes/check_imbalance.lua DIR\n")
    os.exit(2)
end
local VARIANTS = {"ce", "wce", "focal", "cb"}

local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local fail, read, in01 = C.fail, C.read, C.in01

-- metrics.jsonl
local last = {}
local n = C.each_record(dir, function(rec, n)
    local good = true
    for _, f in ipairs({"majority_acc", "others_acc", "macro_acc", "macro_f1", "test_acc", "ece"}) do
        if not in01(rec[f]) then
            fail("metrics.jsonl:%d: %s is %s, not in [0, 1]", n, f, tostring(rec[f]))
            good = false
        end
    end
    if good then
        if math.abs(rec.macro_acc - rec.test_acc) > 1e-9 then
            fail("metrics.jsonl:%d: macro_acc %.6f differs from test_acc %.6f on the balanced test set", n,
                 rec.macro_acc, rec.test_acc)
        end
        local mix = (rec.majority_acc + 9 * rec.others_acc) / 10
        if math.abs(mix - rec.test_acc) > 1e-9 then
            fail("metrics.jsonl:%d: (majority_acc + 9 others_acc) / 10 = %.6f, not test_acc %.6f", n, mix,
                 rec.test_acc)
        end
    end
    if type(rec.variant) == "string" then last[rec.variant] = rec end
end)
for _, v in ipairs(VARIANTS) do
    if not last[v] then fail("metrics.jsonl: no record of variant %s", v) end
end
local ce, wce = last.ce, last.wce
if ce and in01(ce.majority_acc) and in01(ce.others_acc)
   and not (ce.majority_acc > ce.others_acc) then -- luacheck: ignore 581 (NaN fails too)
    fail("ce: majority-class accuracy %.4f is not above the others' %.4f: the training set is not imbalanced?",
         ce.majority_acc, ce.others_acc)
end
if ce and wce and in01(ce.others_acc) and in01(wce.others_acc)
   and not (wce.others_acc > ce.others_acc) then -- luacheck: ignore 581 (NaN fails too)
    fail("wce: the other classes' accuracy %.4f is not above plain CE's %.4f", wce.others_acc, ce.others_acc)
end

-- report.md
local report = read(dir .. "/report.md") or ""
if report == "" then fail("%s/report.md is missing or empty", dir) end
local function rows_of(first)
    local out = {}
    for line in report:gmatch("[^\n]+") do
        local cells = {}
        for c in line:gmatch("|([^|]*)") do cells[#cells + 1] = c:match("^%s*(.-)%s*$") end
        if #cells > 1 and cells[#cells] == "" then cells[#cells] = nil end
        if cells[1] and cells[1]:find(first, 1, true) then out[#out + 1] = cells end
    end
    return out
end
local head = rows_of("variant")[1]
if not head then fail("report.md: no Results table (a header starting with 'variant')")
else
    local have = {}
    for _, c in ipairs(head) do have[c] = true end
    for _, c in ipairs({"train acc", "test acc", "majority acc", "others acc", "macro acc", "macro F1", "test NLL",
                        "ECE"}) do
        if not have[c] then fail("report.md: the Results table has no column '%s'", c) end
    end
end
for _, what in ipairs({"## Class weights", "per_class.png", "others_acc.png", "tide.data.imbalance"}) do
    if not report:find(what, 1, true) then fail("report.md: no '%s'", what) end
end
local wrows = {rows_of("inverse frequency")[1], rows_of("class-balanced")[1]}
for k, row in ipairs({"inverse frequency", "class-balanced"}) do
    local cells = wrows[k]
    if not cells or #cells ~= 11 then fail("report.md: no '%s' row with 10 class weights", row)
    else
        -- the majority class (from the title's "(NN% name)") holds the smallest weight
        local w, min_at = {}, 1
        for c = 1, 10 do
            w[c] = tonumber(cells[c + 1])
            if not w[c] or w[c] <= 0 then fail("report.md: %s weight %d is '%s'", row, c - 1, cells[c + 1]) end
        end
        for c = 2, 10 do if w[c] and w[min_at] and w[c] < w[min_at] then min_at = c end end
        local maj = report:match("from class (%d+)") or report:match("of class (%d+)")
        if maj and tonumber(maj) ~= min_at - 1 then
            fail("report.md: the smallest %s weight is class %d's, not the majority class %s's", row, min_at - 1, maj)
        end
    end
end

C.exit_if_failed("check_imbalance")
print(string.format("check_imbalance: %s: %d records, %d variants; all checks pass", dir, n, #VARIANTS))
