-- Training throughput and peak memory against PyTorch at the same thread
-- count:
--   mlp{784, 256, 256, 10} and smallcnn: one Fashion-MNIST epoch, batch 128,
--     SGD (lr 0.01, momentum 0.9), cross entropy, through a DataLoader;
--   resnet18{num_classes = 10, stem = "cifar"}: one training step on
--     3x32x32, batch 64 (random data);
--   the peak resident memory (VmHWM) of each, every case in its own process
--     for tide and for PyTorch.
-- `tide scripts/bench/train.lua [threads] [--steps N] [--case mlp|smallcnn|resnet18] [--deterministic]`
-- --deterministic trains under tide.use_deterministic(true) (rows named so,
-- without goals): what the mode costs against the same PyTorch.
-- --steps N times N steps after the warm-up and extrapolates the epoch from
-- them (the output says so); without it the epochs run in full and the
-- resnet18 step is timed over 5 steps. Goals: MLP <= 0.3x, smallcnn <= 0.45x,
-- resnet18 step <= 0.6x PyTorch's time, peak memory below PyTorch's.
-- Without Fashion-MNIST under /usr/share/datasets/fashion-mnist both sides
-- train on 60000 random float32 images made in memory.
local tide = require "tide"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench"
local B = dofile(here .. "/benchlib.lua")

local DATA_DIR = "/usr/share/datasets/fashion-mnist"
local CASES = {"mlp", "smallcnn", "resnet18"}
local GOAL = {mlp = 0.3, smallcnn = 0.45, resnet18 = 0.6}
local EPOCH_SAMPLES = 60000 -- Fashion-MNIST's training split, or the random stand-in

-- The FLOP of one training step on one sample, from the layers that do
-- the arithmetic, each {cin, cout, k, hw} (a k x k convolution with hw x hw
-- outputs, so its stride is in hw; a linear layer is {in, out, 1, 1}):
-- forward 2 * cin * cout * k * k * hw * hw each; backward 2x the forward
-- (input and weight gradients) less the input gradient of the first layer,
-- which nothing needs. Batch norm, ReLU, pooling, the loss and the
-- optimizer, a few FLOP an element, are left out.
local function step_flop(layers)
    local fwd = 0
    for _, l in ipairs(layers) do fwd = fwd + 2 * l[1] * l[2] * l[3] * l[3] * l[4] * l[4] end
    local first = layers[1]
    return 3 * fwd - 2 * first[1] * first[2] * first[3] * first[3] * first[4] * first[4]
end

-- keep in step with models/ (mlp, smallcnn, resnet18 with the CIFAR stem)
local LAYERS = {
    mlp = {{784, 256, 1, 1}, {256, 256, 1, 1}, {256, 10, 1, 1}},
    smallcnn = {{1, 32, 3, 28}, {32, 64, 3, 14}, {64, 128, 3, 7}, {128, 10, 1, 1}},
    resnet18 = {{3, 64, 3, 32}},
}
do
    local r = LAYERS.resnet18
    for _ = 1, 4 do r[#r + 1] = {64, 64, 3, 32} end
    -- layers 2 to 4: a strided block with a 1x1 downsample, then a plain one
    for _, s in ipairs({{64, 128, 16}, {128, 256, 8}, {256, 512, 4}}) do
        local cin, cout, hw = s[1], s[2], s[3]
        r[#r + 1] = {cin, cout, 3, hw}
        r[#r + 1] = {cout, cout, 3, hw}
        r[#r + 1] = {cin, cout, 1, hw}
        r[#r + 1] = {cout, cout, 3, hw}
        r[#r + 1] = {cout, cout, 3, hw}
    end
    r[#r + 1] = {512, 10, 1, 1}
end

local threads, steps, only, deterministic
do
    local i = 1
    while arg[i] do
        local a = arg[i]
        if a == "--steps" then
            steps = math.tointeger(tonumber(arg[i + 1]))
            if not steps or steps < 1 then error("train.lua: --steps needs a positive integer") end
            i = i + 2
        elseif a == "--case" then
            only = arg[i + 1]
            if not GOAL[only] then error("train.lua: --case must be mlp, smallcnn or resnet18") end
            i = i + 2
        elseif a == "--deterministic" then
            deterministic = true
            i = i + 1
        elseif tonumber(a) then
            threads = math.tointeger(tonumber(a))
            i = i + 1
        else
            error("train.lua: unknown argument " .. a)
        end
    end
end
threads = threads or tide.get_num_threads()
tide.set_num_threads(threads)
tide.use_deterministic(deterministic == true)

local function have_data()
    local f = io.open(DATA_DIR .. "/train-images-idx3-ubyte.gz", "rb")
    if f then f:close() end
    return f ~= nil and tide.data ~= nil and tide.data.fashion_mnist ~= nil
end

local function vmhwm_kb()
    local f = io.open("/proc/self/status", "r")
    if not f then return nil end
    local kb
    for line in f:lines() do
        kb = kb or tonumber(line:match("^VmHWM:%s*(%d+)"))
    end
    f:close()
    return kb
end

-- one case in this process: print `key value` lines as the PyTorch twin does
local function run_case(case)
    local F = tide.F
    tide.manual_seed(0)
    local model, next_batch, per_epoch
    if case == "resnet18" then
        model = tide.models.resnet18{num_classes = 10, stem = "cifar"}
        local x, y = tide.randn({64, 3, 32, 32}), (tide.rand({64}) * 10):long()
        next_batch, per_epoch = function() return x, y end, 1
    else
        model = case == "mlp" and tide.models.mlp{784, 256, 256, 10}
            or tide.models.smallcnn{num_classes = 10, in_channels = 1}
        local ds
        if have_data() then
            ds = tide.data.fashion_mnist{split = "train"}
            print("data fashion-mnist")
        else
            ds = tide.data.TensorDataset(tide.rand({60000, 1, 28, 28}), (tide.rand({60000}) * 10):long())
            print("data random")
        end
        local loader = tide.data.DataLoader(ds, {batch_size = 128, shuffle = true, seed = 1})
        per_epoch = #loader
        local last
        next_batch = function()
            local x, y = loader(nil, last)
            if x == nil then x, y = loader(nil, nil) end
            last = x
            return x, y
        end
    end
    model:train()
    local opt = tide.optim.SGD(model:parameters(), {lr = 0.01, momentum = 0.9})
    local function step()
        local x, y = next_batch()
        opt:zero_grad()
        local loss <close> = F.cross_entropy(model(x), y)
        loss:backward()
        opt:step()
    end
    for _ = 1, 3 do step() end
    local timed = steps or (case == "resnet18" and 5 or per_epoch)
    local t0 = tide.clock()
    for _ = 1, timed do step() end
    local dt = tide.clock() - t0
    print("step", dt / timed)
    print("epoch", dt / timed * per_epoch)
    print("steps", timed)
    print("vmhwm_kb", vmhwm_kb())
    print("ok", 1)
end

-- a fresh tide process for `case`; its `key value` lines as a table
local function tide_child(case, n)
    local exe = arg[-1] or os.getenv("TIDE") or "build/tide"
    local cmd = string.format("%s %s/train.lua %d --case %s%s%s 2>&1", exe, here, threads, case,
                              n and (" --steps " .. n) or "", deterministic and " --deterministic" or "")
    local out, lines = assert(B.run_keys(cmd))
    if not out.ok then
        error("train.lua: the tide " .. case .. " run failed:\n" .. table.concat(lines, "\n"))
    end
    return out
end

if only then
    -- one case, in this process (how the driver below runs each)
    run_case(only)
    return
end

print(string.format("training, %d threads%s, %s", threads, deterministic and ", deterministic mode" or "",
                    steps and string.format("%d timed steps per case, epochs extrapolated from them", steps)
                        or "full epochs (resnet18: 5 timed steps)"))
local data_dir = have_data() and DATA_DIR or ""
local mode, goal_of = "", GOAL
if deterministic then mode, goal_of = ", deterministic", {} end
for _, case in ipairs(CASES) do
    local n = steps or (case == "resnet18" and 5 or nil)
    local t = tide_child(case, n)
    local pt = B.baseline("train_torch.py", {threads, case, n or 0, data_dir})
    if case == "resnet18" then
        B.row("resnet18 cifar step b64" .. mode, t.step, pt:get("step"), "ms", false, goal_of[case],
              {flop = 64 * step_flop(LAYERS.resnet18)})
    else
        local how = steps and string.format(" (%d steps, extrap.)", steps) or ""
        B.row(case .. " epoch b128" .. how .. mode, t.epoch, pt:get("epoch"), "s", false, goal_of[case],
              {flop = EPOCH_SAMPLES * step_flop(LAYERS[case])})
    end
    B.row(case .. " peak RSS" .. mode, t.vmhwm_kb and t.vmhwm_kb / 1024,
          pt:get("vmhwm_kb", function(kb) return kb / 1024 end), "MiB", false, 1.0)
end
