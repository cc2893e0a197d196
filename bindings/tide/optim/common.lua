-- What tide.optim's parts share: argument errors that name the user's
-- line, the integer test, the deep copy that state_dict and load_state_dict
-- go through, and the check of a trailing options table.
local caller = require "tide.caller"
local is_tensor = require("tide.core").is_tensor

local M = {}

function M.fail(fname, argn, msg)
    caller.error(string.format("bad argument #%d to '%s' (%s)", argn, fname, msg))
end

function M.is_int(v)
    return math.type(v) == "integer" or (type(v) == "number" and v == math.floor(v) and v == v and v ~= math.huge
                                          and v ~= -math.huge)
end

local function copy_value(v)
    if type(v) ~= "table" then return v end
    local r = {}
    for k, x in pairs(v) do r[k] = copy_value(x) end
    return r
end
M.copy_value = copy_value

-- the error for option k, which is not among the keys of `known`
function M.unknown_option(fname, argn, k, known, where)
    M.fail(fname, argn, string.format("%sunknown option '%s'; known: %s", where or "", tostring(k),
                                      caller.known(known)))
end

-- opts (argument argn of fname) as a table, {} when nil; a name not in
-- allowed is an error
function M.check_options(fname, argn, opts, allowed)
    if opts == nil then return {} end
    if type(opts) ~= "table" or is_tensor(opts) then
        M.fail(fname, argn, "options must be a table, got " .. type(opts))
    end
    for k in pairs(opts) do
        if not allowed[k] then M.unknown_option(fname, argn, k, allowed) end
    end
    return opts
end

return M
