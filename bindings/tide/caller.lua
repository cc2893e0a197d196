-- tide.caller: errors from tide's Lua files that name the user's line.
--
-- A check sits a few calls deep (a helper of a constructor reached through
-- a __call metamethod, a loop a wrapper runs), so no fixed error level is
-- right for every path. caller.error(msg) walks the stack to the first
-- function outside tide's Lua files and names its line, as luaL_argerror
-- does for the C binding. A pcall on the way stops the walk with no
-- position: whoever catches the error adds its own context (the checkpoint
-- loader wrapping an optimizer's load_state_dict, say).

local M = {}

-- "@<dir>/", the folder holding tide's Lua files (and its subfolders)
local library = debug.getinfo(1, "S").source:match("^(@.*[/\\])")

local function in_library(source)
    return library ~= nil and source:sub(1, #library) == library
end
M.in_library = in_library

-- the keys of `set` as "a, b, c", sorted, for the unknown-option errors
-- ("none" for an empty set)
function M.known(set)
    local names = {}
    for name in pairs(set) do names[#names + 1] = tostring(name) end
    table.sort(names)
    return #names > 0 and table.concat(names, ", ") or "none"
end

-- Raises msg at the first caller outside tide's Lua files; never returns.
function M.error(msg)
    -- error(msg, level) counts from this function as debug.getinfo does
    local level = 2
    while true do
        local info = debug.getinfo(level, "Sf")
        if info == nil then
            level = 0
            break
        end
        if info.what == "C" then
            if info.func == pcall or info.func == xpcall then
                level = 0
                break
            end
        elseif not in_library(info.source) then
            break
        end
        level = level + 1
    end
    error(msg, level)
end

return M
