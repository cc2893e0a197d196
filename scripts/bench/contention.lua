-- One model's training step, timed: the median of a run of steps after a
-- warm-up, on random data. scripts/bench/contention.sh runs it quiet and
-- beside a busy process at several thread settings.
-- `tide [--threads N] scripts/bench/contention.lua [smallcnn|lenet5] [steps]`
-- prints `step_ms <median> threads <count at the end>`.
local tide = require "tide"
local F = tide.F

local case = arg[1] or "smallcnn"
local steps = math.tointeger(tonumber(arg[2] or "")) or 40
local models = {
    smallcnn = function() return tide.models.smallcnn{num_classes = 10, in_channels = 1}, 128 end,
    lenet5 = function() return tide.models.lenet5{num_classes = 10}, 64 end,
}
if not models[case] then error("contention.lua: the model must be smallcnn or lenet5, got " .. case) end
tide.manual_seed(0)
local model, batch = models[case]()
local x = tide.randn({batch, 1, 28, 28})
local y = (tide.rand({batch}) * 10):long()
model:train()
local opt = tide.optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
local function step()
    opt:zero_grad()
    local loss <close> = F.cross_entropy(model(x), y)
    loss:backward()
    opt:step()
end
-- warm up for a second at least: the steady state, after the default's
-- thread count has settled (it samples the machine every 200 ms)
local w0 = tide.clock()
repeat step() until tide.clock() - w0 >= 1
local times = {}
for i = 1, steps do
    local t0 = tide.clock()
    step()
    times[i] = tide.clock() - t0
end
table.sort(times)
print(string.format("step_ms %.3f threads %d", times[(steps + 1) // 2] * 1e3, tide.get_num_threads()))
