-- luacheck over tide's Lua: .ci/run checks bindings/tide, models, scripts
-- and the Lua under tests with it, and fails on any warning. An exception
-- goes on the line it excuses (`-- luacheck: ignore 581`), with the
-- reason beside it, never here for a whole class of warnings.
std = "lua54"
max_line_length = 120

-- the specs run under busted (describe, it, assert, ...)
files["tests/lua"] = {std = "+busted"}
files["tests/cuda/device_spec.lua"] = {std = "+busted"}
