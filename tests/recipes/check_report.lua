-- Checks what a recipe wrote into its --out folder, for CI's quick runs:
--   tide tests/recipes/check_report.lua DIR --variants a,b,c [--epochs N]
--        [--fields f,g] [--min VARIANT.FIELD=X ...] [--plots N]
-- - report.md has a table with a row for each variant, every other cell a
--   number;
-- - metrics.jsonl is one JSON object a line, exactly one per variant and
--   epoch 1..N, each with the fields (default: the standard ones) as
--   numbers;
-- - every image the report links exists and is a PNG when gnuplot is
--   installed (else each linked CSV exists and is not empty), at least
--   --plots of them (default 1);
-- - each --min holds for the variant's last epoch (e.g. ce.test_acc=0.75).
-- Exits 1 with one line per failure.
local tide = require "tide"
local cjson = require "cjson"

local dir = arg[1]
local opts = {variants = {}, epochs = 1, plots = 1, mins = {},
              fields = {"train_loss", "train_acc", "test_loss", "test_acc", "ece", "seconds"}}
local function split(s)
    local t = {}
    for x in s:gmatch("[^,]+") do t[#t + 1] = x end
    return t
end
local i = 2
while i <= #arg do
    local k, v = arg[i], arg[i + 1]
    if k == "--variants" then opts.variants = split(v)
    elseif k == "--epochs" then opts.epochs = math.tointeger(tonumber(v))
    elseif k == "--plots" then opts.plots = math.tointeger(tonumber(v))
    elseif k == "--fields" then opts.fields = split(v)
    elseif k == "--min" then
        local name, field, x = v:match("^([^.]+)%.([^=]+)=(.+)$")
        opts.mins[#opts.mins + 1] = {name, field, tonumber(x)}
    else
        io.stderr:write("check_report: unknown argument ", tostring(k), "\n")
        os.exit(2)
    end
    i = i + 2
end
if not dir or #opts.variants == 0 then
    io.stderr:write("usage: tide tests/recipes/check_report.lua DIR --variants a,b [--epochs N] ...\n")
    os.exit(2)
end

local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local fail, read = C.fail, C.read
local function is_number(s) return tonumber((s:gsub("%%$", ""))) ~= nil end

-- report.md
local report = read(dir .. "/report.md")
if not report then
    fail("%s/report.md is missing", dir)
    report = ""
end
for _, name in ipairs(opts.variants) do
    local found = false
    for line in report:gmatch("[^\n]+") do
        local cells = {}
        for c in line:gmatch("|([^|]*)") do cells[#cells + 1] = c:match("^%s*(.-)%s*$") end
        if #cells > 1 and cells[#cells] == "" then cells[#cells] = nil end
        if cells[1] == name then
            found = true
            if #cells < 3 then fail("report.md: the row of '%s' has %d cells", name, #cells) end
            for k = 2, #cells do
                if not is_number(cells[k]) then
                    fail("report.md: the row of '%s' has a cell that is not a number: '%s'", name, cells[k])
                end
            end
        end
    end
    if not found then fail("report.md: no table row for the variant '%s'", name) end
end
for _, what in ipairs({"## Settings", "## Machine", "seed", "tide " .. tide.version}) do
    if not report:find(what, 1, true) then fail("report.md: no '%s'", what) end
end

-- metrics.jsonl
local seen, last = {}, {}
local text = read(dir .. "/metrics.jsonl")
if not text then fail("%s/metrics.jsonl is missing", dir) text = "" end
local lineno = 0
for line in text:gmatch("[^\n]*\n?") do
    if line == "" then break end
    lineno = lineno + 1
    local ok, rec = pcall(cjson.decode, line)
    if not ok or type(rec) ~= "table" then
        fail("metrics.jsonl:%d is not a JSON object: %s", lineno, line)
    else
        if type(rec.epoch) == "number" then rec.epoch = math.tointeger(rec.epoch) or rec.epoch end
        local key = tostring(rec.variant) .. "/" .. tostring(rec.epoch)
        if seen[key] then fail("metrics.jsonl:%d repeats variant %s epoch %s", lineno, rec.variant, rec.epoch) end
        seen[key] = true
        for _, f in ipairs(opts.fields) do
            if type(rec[f]) ~= "number" then fail("metrics.jsonl:%d: field '%s' is not a number", lineno, f) end
        end
        if math.type(rec.epoch) ~= "integer" then fail("metrics.jsonl:%d: epoch is not an integer", lineno) end
        if type(rec.variant) ~= "string" then fail("metrics.jsonl:%d: variant is not a string", lineno) end
        if type(rec.variant) == "string" and math.type(rec.epoch) == "integer"
           and (not last[rec.variant] or rec.epoch > last[rec.variant].epoch) then
            last[rec.variant] = rec
        end
    end
end
for _, name in ipairs(opts.variants) do
    for e = 1, opts.epochs do
        if not seen[name .. "/" .. e] then fail("metrics.jsonl: no line for variant %s epoch %d", name, e) end
    end
end

-- plots
local links = {}
for target in report:gmatch("%]%(([^)]+)%)") do links[#links + 1] = target end
local gnuplot = tide.plot.available()
local images = 0
for _, rel in ipairs(links) do
    local body = read(dir .. "/" .. rel)
    if rel:match("%.png$") then
        images = images + 1
        if not body then fail("the report links %s, which is missing", rel)
        elseif body:sub(1, 8) ~= "\137PNG\r\n\26\n" then fail("%s is not a PNG", rel) end
    elseif rel:match("%.csv$") then
        images = images + 1
        if not body or #body == 0 then fail("the report links %s, which is missing or empty", rel) end
    end
end
if gnuplot then
    local pngs = 0
    for _, rel in ipairs(links) do if rel:match("%.png$") then pngs = pngs + 1 end end
    if pngs < opts.plots then
        fail("gnuplot is installed but the report links %d PNG(s), fewer than %d", pngs, opts.plots)
    end
elseif images < opts.plots then
    fail("the report links %d plot file(s), fewer than %d", images, opts.plots)
end

-- floors
for _, m in ipairs(opts.mins) do
    local rec = last[m[1]]
    local v = rec and rec[m[2]]
    if type(v) ~= "number" then fail("no %s for variant %s", m[2], m[1])
    elseif not (v >= m[3]) then -- luacheck: ignore 581 (NaN fails too)
        fail("%s of %s is %.4f, below the floor %.4f", m[2], m[1], v, m[3])
    end
end

C.exit_if_failed("check_report")
print(string.format("check_report: %s holds %d variants x %d epochs, %d plot(s)%s; all checks pass", dir,
                    #opts.variants, opts.epochs, images, gnuplot and " (PNG)" or " (CSV)"))
