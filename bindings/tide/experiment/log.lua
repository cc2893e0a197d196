-- tide.experiment's files: the folder, atomic writes, and the JSON lines
-- of <out>/metrics.jsonl (one object per epoch, numbers JSON lacks as the
-- strings "NaN", "Infinity", "-Infinity").
local tide = require "tide"
local caller = require "tide.caller"
local cjson = require("cjson").new()
local E = require "tide.experiment.api"

local M = {cjson = cjson}

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() return true end
    return false
end

local function mkdir_p(path)
    local ok = os.execute("mkdir -p " .. shell_quote(path))
    if not ok then error("experiment: cannot create the folder '" .. path .. "'", 0) end
end

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

-- writes beside the target, then renames over it
local function write_atomic(path, text)
    local tmp = path .. ".tmp"
    local f, err = io.open(tmp, "wb")
    if not f then error("experiment: cannot write '" .. path .. "': " .. tostring(err), 0) end
    f:write(text)
    f:close()
    local ok, rerr = os.rename(tmp, path)
    if not ok then error("experiment: cannot write '" .. path .. "': " .. tostring(rerr), 0) end
end

-- JSON of one value; numbers that JSON lacks become the strings "NaN",
-- "Infinity", "-Infinity"
local function json_value(v)
    if type(v) == "number" then
        if v ~= v then return '"NaN"' end
        if v == math.huge then return '"Infinity"' end
        if v == -math.huge then return '"-Infinity"' end
        if math.type(v) == "integer" then return tostring(v) end
        return cjson.encode(v)
    end
    if tide.is_tensor(v) then
        if v:numel() == 1 then return json_value(v:item()) end
        return cjson.encode(v:totable())
    end
    return cjson.encode(v)
end

local NONFINITE = {NaN = 0 / 0, Infinity = math.huge, ["-Infinity"] = -math.huge}

local function from_json(rec)
    for k, v in pairs(rec) do
        if v == cjson.null then
            rec[k] = nil
        elseif type(v) == "string" and NONFINITE[v] then
            rec[k] = NONFINITE[v]
        elseif type(v) == "number" and math.type(v) == "float" and k == "epoch" then
            rec[k] = math.tointeger(v) or v
        end
    end
    return rec
end

-- the order of the standard fields in a line of metrics.jsonl
E.FIELDS = {"variant", "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "test_nll", "ece",
            "seconds", "eval_seconds", "lr"}

local function encode_record(rec)
    local parts, done = {}, {}
    for _, k in ipairs(E.FIELDS) do
        if rec[k] ~= nil then
            parts[#parts + 1] = cjson.encode(k) .. ":" .. json_value(rec[k])
            done[k] = true
        end
    end
    local rest = {}
    for k in pairs(rec) do
        if not done[k] then
            if type(k) ~= "string" then caller.error("experiment: record keys must be strings") end
            rest[#rest + 1] = k
        end
    end
    table.sort(rest)
    for _, k in ipairs(rest) do parts[#parts + 1] = cjson.encode(k) .. ":" .. json_value(rec[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
end
E.encode_record = encode_record

-- the records of a metrics.jsonl's text (nil: none), in order; path
-- names the file in errors
local function parse_jsonl(text, path)
    local out = {}
    if not text then return out end
    local lineno = 0
    for line in text:gmatch("([^\n]*)\n?") do
        lineno = lineno + 1
        if line:match("%S") then
            local ok, rec = pcall(cjson.decode, line)
            if not ok or type(rec) ~= "table" then
                error(string.format("experiment: %s:%d is not a JSON object", path, lineno), 0)
            end
            out[#out + 1] = from_json(rec)
        end
    end
    return out
end

-- Reads a metrics.jsonl: the list of records, in file order.
function E.read_jsonl(path)
    local f = io.open(path, "r")
    if not f then return {} end
    local text = f:read("a")
    f:close()
    return parse_jsonl(text, path)
end

M.shell_quote, M.exists, M.mkdir_p, M.read_file, M.write_atomic = shell_quote, exists, mkdir_p, read_file, write_atomic
M.encode_record = encode_record
M.parse_jsonl = parse_jsonl

return M
