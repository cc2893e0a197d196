-- resnet18, resnet34, resnet50{num_classes = 1000, stem = "imagenet",
-- in_channels = 3}: torchvision's ResNet (v1.5: a Bottleneck strides in its
-- 3x3 convolution), with its module names (conv1, bn1, layer1.0.conv1, ...,
-- fc), so state_dict keys and parameter counts equal torchvision's. The
-- "cifar" stem is a 3x3 stride-1 convolution without the max pool (maxpool
-- is then an Identity), for 32x32 images.
local tide = require "tide"
local nn = tide.nn
local init = nn.init

local function conv3x3(cin, cout, stride)
    return nn.Conv2d(cin, cout, 3, {stride = stride, padding = 1, bias = false})
end

local function conv1x1(cin, cout, stride)
    return nn.Conv2d(cin, cout, 1, {stride = stride, bias = false})
end

local BasicBlock = nn.class("BasicBlock")
BasicBlock.expansion = 1

function BasicBlock:__init(inplanes, planes, stride, downsample)
    self:add_module("conv1", conv3x3(inplanes, planes, stride))
    self:add_module("bn1", nn.BatchNorm2d(planes))
    self:add_module("relu", nn.ReLU())
    self:add_module("conv2", conv3x3(planes, planes, 1))
    self:add_module("bn2", nn.BatchNorm2d(planes))
    if downsample then self:add_module("downsample", downsample) end
    self.stride = stride
end

function BasicBlock:forward(x)
    local out = self:call_child("conv1", x)
    out = self:call_child("bn1", out)
    out = self:call_child("relu", out)
    out = self:call_child("conv2", out)
    out = self:call_child("bn2", out)
    local identity = self.downsample and self:call_child("downsample", x) or x
    return self:call_child("relu", out + identity)
end

local Bottleneck = nn.class("Bottleneck")
Bottleneck.expansion = 4

function Bottleneck:__init(inplanes, planes, stride, downsample)
    self:add_module("conv1", conv1x1(inplanes, planes, 1))
    self:add_module("bn1", nn.BatchNorm2d(planes))
    self:add_module("conv2", conv3x3(planes, planes, stride))
    self:add_module("bn2", nn.BatchNorm2d(planes))
    self:add_module("conv3", conv1x1(planes, planes * 4, 1))
    self:add_module("bn3", nn.BatchNorm2d(planes * 4))
    self:add_module("relu", nn.ReLU())
    if downsample then self:add_module("downsample", downsample) end
    self.stride = stride
end

function Bottleneck:forward(x)
    local out = self:call_child("relu", self:call_child("bn1", self:call_child("conv1", x)))
    out = self:call_child("relu", self:call_child("bn2", self:call_child("conv2", out)))
    out = self:call_child("bn3", self:call_child("conv3", out))
    local identity = self.downsample and self:call_child("downsample", x) or x
    return self:call_child("relu", out + identity)
end

local ResNet = nn.class("ResNet")

function ResNet:__init(fname, block, layers, opts)
    local o = nn.check_options(fname, 1, opts, {"num_classes", "stem", "in_channels"},
                               {num_classes = 1000, stem = "imagenet", in_channels = 3})
    if math.type(o.num_classes) ~= "integer" or o.num_classes < 1 then
        error(string.format("bad argument #1 to '%s' (num_classes must be a positive integer, got %s)",
                            fname, tostring(o.num_classes)), 3)
    end
    if o.stem ~= "imagenet" and o.stem ~= "cifar" then
        error(string.format("bad argument #1 to '%s' (stem must be \"imagenet\" or \"cifar\", got %s)",
                            fname, tostring(o.stem)), 3)
    end
    self.inplanes = 64
    if o.stem == "imagenet" then
        self:add_module("conv1", nn.Conv2d(o.in_channels, 64, 7, {stride = 2, padding = 3, bias = false}))
    else
        self:add_module("conv1", conv3x3(o.in_channels, 64, 1))
    end
    self:add_module("bn1", nn.BatchNorm2d(64))
    self:add_module("relu", nn.ReLU())
    if o.stem == "imagenet" then
        self:add_module("maxpool", nn.MaxPool2d(3, {stride = 2, padding = 1}))
    else
        self:add_module("maxpool", nn.Identity())
    end
    local widths = {64, 128, 256, 512}
    for i = 1, 4 do
        self:add_module("layer" .. i, self:_make_layer(block, widths[i], layers[i], i == 1 and 1 or 2))
    end
    self:add_module("avgpool", nn.AdaptiveAvgPool2d(1))
    self:add_module("fc", nn.Linear(512 * block.expansion, o.num_classes))
    -- torchvision's initialisation
    for _, m in ipairs(self:modules()) do
        if getmetatable(m) == nn.Conv2d then
            init.kaiming_normal_(m.weight, {mode = "fan_out", nonlinearity = "relu"})
        elseif getmetatable(m) == nn.BatchNorm2d then
            init.ones_(m.weight)
            init.zeros_(m.bias)
        end
    end
end

function ResNet:_make_layer(block, planes, blocks, stride)
    local downsample
    if stride ~= 1 or self.inplanes ~= planes * block.expansion then
        downsample = nn.Sequential(conv1x1(self.inplanes, planes * block.expansion, stride),
                                   nn.BatchNorm2d(planes * block.expansion))
    end
    local layer = nn.Sequential(block(self.inplanes, planes, stride, downsample))
    self.inplanes = planes * block.expansion
    for _ = 2, blocks do layer:append(block(self.inplanes, planes, 1)) end
    return layer
end

function ResNet:forward(x)
    for _, name in ipairs(self._child_names) do
        if name == "fc" then x = x:flatten(1) end
        x = self:call_child(name, x)
    end
    return x
end

return {
    BasicBlock = BasicBlock,
    Bottleneck = Bottleneck,
    ResNet = ResNet,
    resnet18 = function(opts) return ResNet("resnet18", BasicBlock, {2, 2, 2, 2}, opts) end,
    resnet34 = function(opts) return ResNet("resnet34", BasicBlock, {3, 4, 6, 3}, opts) end,
    resnet50 = function(opts) return ResNet("resnet50", Bottleneck, {3, 4, 6, 3}, opts) end,
}
