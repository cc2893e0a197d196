-- rank 1 raises while rank 0 waits in a collective: the job must end
-- within seconds with rank 1's message
local tide = require "tide"
local dist = tide.distributed
dist.init{timeout = 60}
if dist.rank() == 1 then error("rank one gives up here") end
dist.all_reduce(tide.ones({4}))
dist.all_reduce(tide.ones({4}))
