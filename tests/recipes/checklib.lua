-- What every tests/recipes/check_*.lua (and tests/distributed/check_*.lua)
-- shares: a failure list and the exit that reports it, reading a file
-- whole, the [0, 1] test, the walk over metrics.jsonl, the one-report
-- check of an output folder. Loaded with
--   local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local C = {}

C.failures = {}

-- records one failure (printed, one line each, by the checker at its end)
function C.fail(fmt, ...) C.failures[#C.failures + 1] = string.format(fmt, ...) end

-- the whole file, or nil when it cannot be opened
function C.read(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

-- the end of a checker with failures: one line each on stderr, prefixed
-- with its name, then exit 1
function C.exit_if_failed(name)
    if #C.failures == 0 then return end
    for _, f in ipairs(C.failures) do io.stderr:write(name, ": ", f, "\n") end
    os.exit(1)
end

-- DIR's file names; a failure unless it holds exactly one report file and
-- no half-written *.tmp one
function C.one_report(dir)
    local p = io.popen("ls -A '" .. dir .. "'")
    local names, reports = {}, 0
    for name in p:lines() do
        names[#names + 1] = name
        if name:match("^report") then reports = reports + 1 end
        if name:match("%.tmp$") then C.fail("%s holds a half-written file: %s", dir, name) end
    end
    p:close()
    if reports ~= 1 then
        C.fail("%s holds %d report files, not one: %s", dir, reports, table.concat(names, " "))
    end
    return names
end

function C.in01(x) return type(x) == "number" and x >= 0 and x <= 1 end

-- fn(rec, n) for each line n of DIR/metrics.jsonl that is a JSON object; a
-- failure for every other line, and for a missing or empty file. Returns
-- the number of lines.
function C.each_record(dir, fn)
    local cjson = require "cjson"
    local text = C.read(dir .. "/metrics.jsonl") or ""
    if text == "" then C.fail("%s/metrics.jsonl is missing or empty", dir) end
    local n = 0
    for line in text:gmatch("[^\n]+") do
        n = n + 1
        local ok, rec = pcall(cjson.decode, line)
        if ok and type(rec) == "table" then
            fn(rec, n)
        else
            C.fail("metrics.jsonl:%d is not a JSON object", n)
        end
    end
    return n
end

return C
