-- What every tests/recipes/check_*.lua shares: a failure list, reading a
-- file whole, the [0, 1] test. Loaded with
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

return C
