-- The `make run` demo: a two-hidden-layer MLP trained by hand on three
-- interleaved 2-D spirals, with tensors and autograd only (weights as leaf
-- tensors with requires_grad, cross-entropy from log_softmax and gather,
-- SGD with momentum written out under no_grad).
--
--   tide scripts/demo.lua [epochs]
--
-- Prints one line per epoch and fails unless the final train accuracy
-- passes 90%.
local tide = require "tide"

local CLASSES, PER_CLASS = 3, 500
local HIDDEN, BATCH, LR, MOMENTUM = 64, 64, 0.05, 0.9
local EPOCHS = tonumber(arg and arg[1]) or 30
local TARGET = 0.90

tide.manual_seed(42)

-- Spirals as in CS231n: class k's arm has radius r in [0, 1] and angle
-- 4k + 4r plus Gaussian noise. Points (N, 2) float32, labels (N) int64.
local function spirals(classes, per_class, noise)
    local n = classes * per_class
    local jitter = (tide.randn({n}) * noise):totable()
    local points, labels = {}, {}
    for k = 0, classes - 1 do
        for i = 0, per_class - 1 do
            local r = i / (per_class - 1)
            local theta = 4 * k + 4 * r + jitter[#points + 1]
            points[#points + 1] = {r * math.sin(theta), r * math.cos(theta)}
            labels[#labels + 1] = k
        end
    end
    return tide.tensor(points), tide.tensor(labels, "int64")
end

local x, y = spirals(CLASSES, PER_CLASS, 0.2)
local n = x:size(0)

-- A leaf weight, He-initialised, and a zero bias, both with requires_grad.
local function weight(fan_in, fan_out)
    local w = tide.randn({fan_in, fan_out}) * math.sqrt(2 / fan_in)
    w.requires_grad = true
    return w
end
local function bias(size) return tide.zeros({size}, {requires_grad = true}) end

local params = {
    weight(2, HIDDEN), bias(HIDDEN),
    weight(HIDDEN, HIDDEN), bias(HIDDEN),
    weight(HIDDEN, CLASSES), bias(CLASSES),
}
local velocity = {}
for i, p in ipairs(params) do velocity[i] = tide.zeros(p:shape()) end

local function forward(input)
    local w1, b1, w2, b2, w3, b3 = table.unpack(params)
    local h = (input:matmul(w1) + b1):relu()
    h = (h:matmul(w2) + b2):relu()
    return h:matmul(w3) + b3
end

-- mean cross-entropy of logits (B, C) against class indices (B)
local function cross_entropy(logits, target)
    return -logits:log_softmax(1):gather(1, target:view({-1, 1})):mean()
end

local function accuracy(logits, target)
    return logits:argmax(1):eq(target):float():mean():item()
end

local function sgd_step()
    tide.no_grad(function()
        for i, p in ipairs(params) do
            local v = velocity[i]
            v:mul_(MOMENTUM)
            v:add_(p.grad)
            p:sub_(v * LR)
            p:zero_grad()
        end
    end)
end

local count = 0
for _, p in ipairs(params) do count = count + p:numel() end
print(string.format("tide %s: MLP 2-%d-%d-%d (%d parameters) on %d spiral points, %d classes, "
                    .. "%d threads", tide.version, HIDDEN, HIDDEN, CLASSES, count, n, CLASSES,
                    tide.get_num_threads()))

local start = tide.clock()
local train_acc = 0
for epoch = 1, EPOCHS do
    local t0 = tide.clock()
    local order = tide.randperm(n)
    local total, batches = 0, 0
    for s = 0, n - 1, BATCH do
        local idx = order:narrow(0, s, math.min(BATCH, n - s))
        local xb, yb = x:index_select(0, idx), y:index_select(0, idx)
        local loss = cross_entropy(forward(xb), yb)
        loss:backward()
        sgd_step()
        total, batches = total + loss:item(), batches + 1
    end
    local loss, acc
    tide.no_grad(function()
        local logits = forward(x)
        loss, acc = cross_entropy(logits, y):item(), accuracy(logits, y)
    end)
    train_acc = acc
    print(string.format("epoch %3d/%d  batch loss %.4f  train loss %.4f  accuracy %5.1f%%  %6.1f ms",
                        epoch, EPOCHS, total / batches, loss, 100 * acc,
                        (tide.clock() - t0) * 1e3))
end

local elapsed = tide.clock() - start
print(string.format("final train accuracy %.1f%% in %.2f s (target > %.0f%%)", 100 * train_acc,
                    elapsed, 100 * TARGET))
if train_acc <= TARGET then
    io.stderr:write(string.format("demo: accuracy %.1f%% did not pass %.0f%%\n", 100 * train_acc,
                                  100 * TARGET))
    os.exit(1)
end
