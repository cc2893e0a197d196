-- Files written byte by byte, for the tests that feed tide's readers what
-- tide's own writers never would: tests/hostile/generate.lua (hostile
-- files) and tests/fuzz/make_corpus.lua (fuzz seeds). Whole-file reads and
-- writes, and the safetensors layout: an 8-byte little-endian header
-- length, the header's JSON text as given (never re-encoded, so that it
-- can be any text), then the data.
--
-- A script loads it by its own path, so that it works from any folder:
--   local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
--   local raw = dofile(here .. "/../lib/rawfile.lua")
local M = {}

function M.write(path, bytes)
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
end

function M.read(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

-- a safetensors header length; I8 does not range-check, so 2^63 and
-- 2^64-1 pass as math.mininteger and -1
function M.le64(n) return string.pack("<I8", n) end

-- a safetensors file: the header text and the data bytes; len, when
-- given, is the length field in place of the header's own
function M.safetensors(header, data, len) return M.le64(len or #header) .. header .. (data or "") end

-- one entry of a header from its three fields' JSON text as given:
-- st_entry('"F32"', "[2]", "[0,8]")
function M.st_entry(dtype, shape, offsets)
    return string.format('{"dtype":%s,"shape":%s,"data_offsets":%s}', dtype, shape, offsets)
end

return M
