-- tide.models: model definitions in Lua, loaded on first use.
--
-- tide.models.<name> loads the file models/<file>.lua (resnet18, resnet34
-- and resnet50 share resnet.lua), which returns a table of constructors.
-- The files are found next to this one: under tide/models/ where tide is
-- installed (share/lua/5.4/tide/models/), else in the source tree's models/
-- folder (bindings/tide/../../models/), which is where the `tide` command
-- run from a build finds them.

local M = {}

-- model name -> file (without .lua); a name not listed is its own file
M.files = {
    mlp = "mlp",
    lenet5 = "lenet5",
    smallcnn = "smallcnn",
    resnet18 = "resnet",
    resnet34 = "resnet",
    resnet50 = "resnet",
}

local function this_dir()
    local src = debug.getinfo(1, "S").source
    if src:sub(1, 1) ~= "@" then return nil end
    return src:sub(2):match("^(.*)[/\\]") or "."
end

-- the folders searched, in order
function M.dirs()
    local here = this_dir()
    local dirs = {}
    if os.getenv("TIDE_MODELS") and os.getenv("TIDE_MODELS") ~= "" then dirs[#dirs + 1] = os.getenv("TIDE_MODELS") end
    if here then
        dirs[#dirs + 1] = here .. "/models"
        dirs[#dirs + 1] = here .. "/../../models"
    end
    return dirs
end

local loaded = {}

local function load_file(file)
    if loaded[file] then return loaded[file] end
    local tried = {}
    for _, dir in ipairs(M.dirs()) do
        local path = dir .. "/" .. file .. ".lua"
        local f = io.open(path, "r")
        if f then
            f:close()
            local chunk, err = loadfile(path, "t")
            if not chunk then error(err, 0) end
            local defs = chunk(file)
            loaded[file] = defs
            return defs
        end
        tried[#tried + 1] = path
    end
    return nil, tried
end

function M.install(tide, core) -- luacheck: ignore
    tide.models = setmetatable({}, {
        __index = function(self, name)
            if type(name) ~= "string" then return nil end
            local defs, tried = load_file(M.files[name] or name)
            if not defs then
                if M.files[name] then
                    error(string.format("tide.models.%s: model file not found (tried %s)", name,
                                        table.concat(tried, ", ")), 2)
                end
                return nil
            end
            local ctor = defs[name]
            rawset(self, name, ctor)
            return ctor
        end,
    })
end

-- the names of the known models
function M.names()
    local r = {}
    for k in pairs(M.files) do r[#r + 1] = k end
    table.sort(r)
    return r
end

return M
