-- What every tests/recipes/check_*.lua shares: a failure list, reading a
-- file whole, the [0, 1] test, the walk over metrics.jsonl. Loaded with
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
