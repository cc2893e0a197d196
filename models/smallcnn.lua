-- smallcnn{num_classes = 10, in_channels = 1}: three 3x3 conv-BN-ReLU blocks
-- of 32, 64 and 128 channels (convolutions without bias, as BN follows), a
-- 2x2 max pool after the first two, global average pooling and a linear
-- layer: 94,186 parameters at 10 classes. The default model of the studies.
local tide = require "tide"
local nn = tide.nn

local function smallcnn(opts)
    local o = nn.check_options("smallcnn", 1, opts, {"num_classes", "in_channels"},
                               {num_classes = 10, in_channels = 1})
    local function block(cin, cout)
        return nn.Conv2d(cin, cout, 3, {padding = 1, bias = false}), nn.BatchNorm2d(cout), nn.ReLU()
    end
    local m = nn.Sequential()
    local function add(...) for i = 1, select("#", ...) do m:append((select(i, ...))) end end
    add(block(o.in_channels, 32))
    add(nn.MaxPool2d(2))
    add(block(32, 64))
    add(nn.MaxPool2d(2))
    add(block(64, 128))
    add(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, o.num_classes))
    return m
end

return {smallcnn = smallcnn}
