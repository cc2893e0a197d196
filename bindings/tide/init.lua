-- require "tide": the C core (tide.core) plus the parts written in Lua.
--
-- Found both from the `tide` command (which puts bindings/?.lua and
-- bindings/?/init.lua on package.path and preloads tide.core) and from a
-- stock lua5.4 after install (tide/core.so on package.cpath, these files
-- under share/lua/5.4/tide/).

local core = require "tide.core"

local tide = {}
for k, v in pairs(core) do tide[k] = v end

-- Lua names a function in an argument error by searching package.loaded;
-- with every function both in tide.core and in tide, the name it found
-- (tide.zeros or tide.core.zeros) would follow the hash order of the run.
-- A proxy keeps require "tide.core" working and leaves one name to find.
package.loaded["tide.core"] = setmetatable({}, {__index = core})

-- print(t) / tostring(t): see print.lua for the format
core._metatable.__tostring = require("tide.print").tostring

tide.gradcheck = require "tide.gradcheck"

-- the functional API; tide.nn and its modules grow around it
local F = {
   relu = core.relu,
   gelu = core.gelu,
   sigmoid = core.sigmoid,
   tanh = core.tanh,
   softmax = core.softmax,
   log_softmax = core.log_softmax,
}
tide.F = F
tide.nn = { functional = F }
require("tide.losses").install(core, F, tide.nn)
-- layers and modules, optimizers, data, checkpoints, models: each file
-- adds its part (tide.nn.*, tide.optim, tide.data, tide.save/load,
-- tide.models, tide.distributed with nn.DistributedDataParallel and
-- nn.SyncBatchNorm, tide.amp)
for _, part in ipairs({"nn", "optim", "data", "checkpoint", "models", "distributed", "amp"}) do
    require("tide." .. part).install(tide, core)
end

-- the experiment toolkit loads on first use, so scripts that only train
-- (and the REPL's start) do not pay for it: tide.metrics, tide.progress,
-- tide.plot, tide.experiment are each a module file returning its table
local toolkit = {metrics = true, progress = true, plot = true, experiment = true}
setmetatable(tide, {__index = function(t, k)
    if toolkit[k] then
        local m = require("tide." .. k)
        rawset(t, k, m)
        return m
    end
end})

return tide
