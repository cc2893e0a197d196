-- The accuracy gate: smallcnn trained for one epoch on a
-- 10,000-image subset of Fashion-MNIST must reach >= 80% on the test set.
-- It exercises the whole CPU training path on real data: the IDX reader,
-- the DataLoader thread and its transforms, conv2d, batch norm, pooling,
-- cross_entropy, Adam, OneCycleLR. Run by .ci/run and `make gate`:
--   tide tests/gate/fashion_smallcnn.lua [train_images] [floor_percent] [precision]
-- With precision bfloat16 or float16 the same run is trained twice, in
-- float32 and under tide.autocast in that dtype (float16 with a
-- GradScaler), and the low-precision run must also come within 1 point
-- of float32's test accuracy.
local tide = require "tide"
local F, data = tide.F, tide.data

local n_train = tonumber(arg and arg[1]) or 10000
local floor = tonumber(arg and arg[2]) or 80
local precision = arg and arg[3] or "float32"
if precision ~= "float32" and precision ~= "bfloat16" and precision ~= "float16" then
    io.stderr:write("fashion_smallcnn: precision must be float32, bfloat16 or float16, got " .. precision .. "\n")
    os.exit(2)
end
tide.manual_seed(0)

local train = data.subset(data.fashion_mnist{split = "train"}, n_train)
local test = data.fashion_mnist{split = "test"}
local norm = data.transforms.normalize({0.2860}, {0.3530})
local loader = data.DataLoader(train, {batch_size = 16, shuffle = true, seed = 1, transform = {norm}})
local test_loader = data.DataLoader(test, {batch_size = 500, transform = {norm}})

-- Adam at batch 16 under a one-cycle schedule (peak lr 0.02): one epoch of
-- 10,000 images is 625 steps. A constant lr ended the epoch wherever its
-- noise left it: 75-81% over seeds 0-2 at batch 8, lr 0.006, and a change
-- in float rounding alone moved seed 0 from 80.6% to 79.1%. The annealed
-- schedule gave 81.8, 82.4 and 82.2% over seeds 0-2. The gate fixes the
-- seed, and CPU runs repeat bit for bit at a given thread count.
local function run(dtype)
    tide.manual_seed(0)
    local model = tide.models.smallcnn{num_classes = 10, in_channels = 1}
    local opt = tide.optim.Adam(model:parameters(), {lr = 0.02})
    local sched = tide.optim.OneCycleLR(opt, 0.02, {total_steps = #loader})
    local scaler = dtype == "float16" and tide.amp.GradScaler() or nil
    local function forward(x)
        if dtype == "float32" then return model(x) end
        return tide.autocast(dtype, model, x)
    end

    local t0 = tide.clock()
    model:train()
    local seen, loss_sum = 0, 0
    for x, y in loader:iter() do
        opt:zero_grad()
        local loss = F.cross_entropy(forward(x), y) -- float32 whatever the logits' dtype
        if scaler then
            scaler:scale(loss):backward()
            scaler:step(opt)
            scaler:update()
        else
            loss:backward()
            opt:step()
        end
        sched:step()
        seen = seen + x:size(0)
        loss_sum = loss_sum + loss:item() * x:size(0)
    end
    local train_time = tide.clock() - t0

    model:evaluate()
    local correct, total = 0, 0
    tide.no_grad(function()
        for x, y in test_loader:iter() do
            local pred = forward(x):argmax(1)
            correct = correct + pred:eq(y):sum():item()
            total = total + y:size(0)
        end
    end)
    local acc = 100 * correct / total
    print(string.format("smallcnn, %d Fashion-MNIST images, 1 epoch, %s: train loss %.4f, test accuracy %.2f%% "
                        .. "(%d/%d), %.1f s training", seen, dtype, loss_sum / seen, acc, correct, total, train_time))
    return acc
end

local acc = run("float32")
if acc < floor then
    io.stderr:write(string.format("accuracy gate failed: %.2f%% < %.0f%%\n", acc, floor))
    os.exit(1)
end
if precision ~= "float32" then
    local low = run(precision)
    if low < floor or math.abs(low - acc) > 1 then
        io.stderr:write(string.format("accuracy gate failed: %s %.2f%%, float32 %.2f%% (at most 1 point apart, "
                                      .. "and >= %.0f%%)\n", precision, low, acc, floor))
        os.exit(1)
    end
    print(string.format("%s within %.2f points of float32", precision, math.abs(low - acc)))
end
print(string.format("accuracy gate passed (>= %.0f%%)", floor))
