-- lenet5{num_classes = 10, in_channels = 1}: LeCun et al.'s LeNet-5 for
-- 28x28 images, with ReLU and max pooling: conv 5x5 (6, padding 2), pool,
-- conv 5x5 (16), pool, then 120, 84 and num_classes wide linear layers.
local tide = require "tide"
local nn = tide.nn

local function lenet5(opts)
    local o = nn.check_options("lenet5", 1, opts, {"num_classes", "in_channels"},
                               {num_classes = 10, in_channels = 1})
    return nn.Sequential(
        nn.Conv2d(o.in_channels, 6, 5, {padding = 2}), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.ReLU(),
        nn.Linear(120, 84), nn.ReLU(),
        nn.Linear(84, o.num_classes))
end

return {lenet5 = lenet5}
