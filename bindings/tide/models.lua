-- tide.models (issue 4): installed into the tide table by init.lua.
local M = {}

function M.install(tide, core) -- luacheck: ignore
end

return M
