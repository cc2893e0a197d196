-- GPU training throughput against PyTorch on the same GPU, in the same run:
--   resnet18{num_classes = 10, stem = "cifar"}: training steps on random
--     3x32x32 images at batch 256, in images per second (goal >= 1.0x
--     PyTorch eager with cuDNN);
--   smallcnn: one Fashion-MNIST epoch at batch 128 (the DataLoader on the
--     CPU, each batch moved with :cuda(), as a user would write it).
-- Both: SGD (lr 0.01, momentum 0.9), cross entropy, float32.
--
-- `tide scripts/bench/gpu_train.lua [--steps N] [--case resnet18|smallcnn]`
-- times N resnet18 steps (default 20) after 5 warm-up steps.
--
-- Same rules on both sides: tide's convolutions run in full float32 with
-- deterministic algorithms chosen by timing (docs/cuda.md), so the PyTorch
-- twin sets cudnn.benchmark = True, cudnn.deterministic = True and TF32 off.
-- TIDE_CUDNN_TF32=1 in the environment turns TF32 on for both.
-- Without a usable GPU it says so in one line and exits 0.
local tide = require "tide"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench"
local B = dofile(here .. "/benchlib.lua")

local DATA_DIR = "/usr/share/datasets/fashion-mnist"

local steps, only = 20, nil
do
    local i = 1
    while arg[i] do
        local a = arg[i]
        if a == "--steps" then
            steps = math.tointeger(tonumber(arg[i + 1]))
            if not steps or steps < 1 then error("gpu_train.lua: --steps needs a positive integer") end
            i = i + 2
        elseif a == "--case" then
            only = arg[i + 1]
            if only ~= "resnet18" and only ~= "smallcnn" then
                error("gpu_train.lua: --case must be resnet18 or smallcnn")
            end
            i = i + 2
        else
            error("gpu_train.lua: unknown argument " .. a)
        end
    end
end

if not (tide.cuda and tide.cuda.is_available()) then
    print("gpu_train: no GPU (tide.cuda.is_available() is false): nothing to measure")
    return
end

local function have_data()
    local f = io.open(DATA_DIR .. "/train-images-idx3-ubyte.gz", "rb")
    if f then f:close() end
    return f ~= nil
end

local F = tide.F

local function trainer(model)
    model:cuda()
    model:train()
    local opt = tide.optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
    return function(x, y)
        opt:zero_grad()
        local loss <close> = F.cross_entropy(model(x), y)
        loss:backward()
        opt:step()
    end
end

local results = {}

local function resnet18()
    tide.manual_seed(0)
    local step = trainer(tide.models.resnet18{num_classes = 10, stem = "cifar"})
    local x = tide.randn({256, 3, 32, 32}):cuda()
    local y = (tide.rand({256}) * 10):long():cuda()
    for _ = 1, 5 do step(x, y) end -- warm-up: cuDNN's algorithm search happens here
    tide.cuda.synchronize()
    local t0 = tide.clock()
    for _ = 1, steps do step(x, y) end
    tide.cuda.synchronize()
    local dt = (tide.clock() - t0) / steps
    results.resnet18 = 256 / dt
    print(string.format("tide resnet18 b256: %.2f ms/step, %.0f images/s", dt * 1e3, 256 / dt))
end

local function smallcnn()
    tide.manual_seed(0)
    local step = trainer(tide.models.smallcnn{num_classes = 10, in_channels = 1})
    local ds
    if have_data() then
        ds = tide.data.fashion_mnist{split = "train"}
    else
        ds = tide.data.TensorDataset(tide.rand({60000, 1, 28, 28}), (tide.rand({60000}) * 10):long())
        print("note: no Fashion-MNIST under " .. DATA_DIR .. ", random images")
    end
    local loader = tide.data.DataLoader(ds, {batch_size = 128, shuffle = true, seed = 1})
    local warm = 0
    for x, y in loader do -- a few warm-up steps, then the timed epoch
        step(x:cuda(), y:cuda())
        warm = warm + 1
        if warm == 3 then break end
    end
    tide.cuda.synchronize()
    local t0 = tide.clock()
    for x, y in loader do step(x:cuda(), y:cuda()) end
    tide.cuda.synchronize()
    results.smallcnn = tide.clock() - t0
    print(string.format("tide smallcnn epoch b128: %.2f s", results.smallcnn))
end

if only == nil or only == "resnet18" then resnet18() end
if only == nil or only == "smallcnn" then smallcnn() end

local pt, why = B.torch("gpu_train_torch.py", {only or "all", steps, have_data() and DATA_DIR or ""})
if not pt then print("note: " .. why .. "; tide's numbers only") end
if results.resnet18 then
    B.row("gpu resnet18 cifar b256", results.resnet18, pt and pt.resnet18_ips, "img/s", true, 1.0)
end
if results.smallcnn then
    B.row("gpu smallcnn epoch b128", results.smallcnn, pt and pt.smallcnn_epoch, "s", false, nil)
end
