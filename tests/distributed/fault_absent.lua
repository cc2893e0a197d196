-- rank 1 computes instead of joining the second all-reduce: after the
-- timeout the job ends with a message naming the collective and rank 1
local tide = require "tide"
local dist = tide.distributed
dist.init{timeout = 2}
dist.all_reduce(tide.ones({4}))
if dist.rank() == 1 then
    local t0 = os.time()
    while os.time() - t0 < 60 do end
end
dist.all_reduce(tide.ones({4}))
