-- Checks what scripts/worked_examples.lua wrote, for CI's quick run:
--   tide tests/recipes/check_worked_examples.lua DIR
-- report.md has the Results table with every expected quantity, each row
-- with two numbers and a check mark, and no mismatch; metrics.jsonl has
-- one record per row, each with ok = true and tide's value within the
-- printed rounding of the expected one. Exits 1 with one line per failure.

local dir = arg[1]
if not dir then
    io.stderr:write("usage: tide tests/recipes/check_worked_examples.lua DIR\n")
    os.exit(2)
end
local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local fail, read = C.fail, C.read

-- the quantities and their expected values, as the report prints them
local EXPECTED = {
    {"-log 0.9 ", "0.105"}, {"-log 0.1 ", "2.303"}, {"-log 0.01 ", "4.605"},
    {"softmax{2, 1, 0.1}[0]", "0.66"}, {"softmax{2, 1, 0.1}[1]", "0.24"}, {"softmax{2, 1, 0.1}[2]", "0.10"},
    {"CE of {0.7, 0.2, 0.1} |", "0.357"}, {"CE of {0.7, 0.2, 0.1} as logits", "0.357"},
    {"MSE of {0.7, 0.2, 0.1}, mean", "0.0467"}, {"MSE of {0.7, 0.2, 0.1}, sum", "0.14"},
    {"CE of {0.4, 0.3, 0.3} |", "0.916"}, {"CE of {0.4, 0.3, 0.3} as logits", "0.916"},
    {"MSE of {0.4, 0.3, 0.3}, mean", "0.1800"}, {"MSE of {0.4, 0.3, 0.3}, sum", "0.54"},
}

local report = read(dir .. "/report.md")
if not report then fail("%s/report.md is missing", dir) report = "" end
local rows = {}
for line in report:gmatch("[^\n]+") do
    if line:match("^| ") and not line:match("^| quantity") and not line:match("^| setting") then
        rows[#rows + 1] = line
    end
end
for _, e in ipairs(EXPECTED) do
    local found
    for _, line in ipairs(rows) do
        if ("| " .. line:sub(3)):find("| " .. e[1], 1, true) == 1 then found = line break end
    end
    if not found then
        fail("report.md: no row for '%s'", e[1])
    else
        local cells = {}
        for c in found:gmatch("|([^|]*)") do cells[#cells + 1] = c:match("^%s*(.-)%s*$") end
        -- quantity, call, tide, expected, check
        if not tonumber(cells[3]) then
            fail("report.md: '%s': tide's value '%s' is not a number", e[1], tostring(cells[3]))
        end
        if cells[4] ~= e[2] then
            fail("report.md: '%s': expected column is '%s', not %s", e[1], tostring(cells[4]), e[2])
        end
        if cells[5] ~= "✓" then fail("report.md: '%s' is not checked: '%s'", e[1], tostring(cells[5])) end
        if tonumber(cells[3]) and math.abs(tonumber(cells[3]) - tonumber(e[2])) > 1e-12 then
            fail("report.md: '%s': tide printed %s, expected %s", e[1], cells[3], e[2])
        end
    end
end
if report:find("MISMATCH", 1, true) then fail("report.md reports a mismatch") end
for _, what in ipairs({"## Settings", "## Machine", "reduction = \"sum\""}) do
    if not report:find(what, 1, true) then fail("report.md: no '%s'", what) end
end

local n = C.each_record(dir, function(rec, n)
    if rec.ok ~= true then fail("metrics.jsonl:%d: ok is not true", n) end
    if type(rec.tide) ~= "number" or type(rec.expected) ~= "number" or type(rec.digits) ~= "number" then
        fail("metrics.jsonl:%d: tide, expected or digits is not a number", n)
    elseif math.abs(rec.tide - rec.expected) > 0.5 * 10 ^ -rec.digits + 1e-9 then
        fail("metrics.jsonl:%d: %s: %.6f is not %s", n, tostring(rec.quantity), rec.tide, rec.expected)
    end
end)
if n ~= #EXPECTED then fail("metrics.jsonl has %d records, not %d", n, #EXPECTED) end

C.exit_if_failed("check_worked_examples")
print(string.format("check_worked_examples: %s holds all %d worked values, each matching; all checks pass", dir, n))
