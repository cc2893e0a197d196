-- Training-step equivalence on smallcnn between the CPU and CUDA.
--
-- One smallcnn built from a seed; a second one loads its state dict and
-- moves to CUDA with model:to("cuda"). Both take 3 steps of SGD with
-- momentum, then (from the same start again) 3 steps of AdamW, with
-- cross_entropy on the same batch. Compared after each run: the 3 losses,
-- every parameter and buffer (BN running stats, num_batches_tracked), and
-- each parameter's update (after - before).
--
-- Tolerances, float32: the devices compute the same formulas in different
-- orders (oneDNN against cuDNN convolutions, OpenBLAS/oneDNN against
-- cuBLAS matmuls, other reduction trees), so each op differs by a few
-- ulps (~1e-7 relative) and 3 steps compound that through the batch norm
-- and backward to ~1e-6..1e-5. Losses and parameters: 1e-4 relative (max
-- difference over the tensor's max magnitude). Updates are differences of
-- nearby numbers, and AdamW's first steps are lr * g / (|g| + eps), about
-- lr * sign(g), which noise can flip for a g near 0: updates are compared
-- as a relative L2 error, 1e-3 for SGD and 2e-2 for AdamW. A wrong kernel
-- misses these by orders of magnitude.
--
-- Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable.
-- TIDE_TRAIN_STEP_DEVICE=cpu runs the same comparison CPU against CPU (a
-- check of this script on a machine without a GPU).
local tide = require "tide"
local F = tide.F

local device = os.getenv("TIDE_TRAIN_STEP_DEVICE") or "cuda"
if device ~= "cpu" and not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local STEPS, BATCH = 3, 16
local failures = 0

local function fail(fmt, ...)
    failures = failures + 1
    print("FAIL: " .. string.format(fmt, ...))
end

local function maxabs(t) return t:numel() == 0 and 0 or t:abs():max():item() end

-- max |a - b| / max |a| (a absolute bound where a is ~0)
local function rel_max(a, b)
    local d = maxabs(a:double() - b:double())
    local s = maxabs(a:double())
    return s > 1e-6 and d / s or d
end

local function rel_l2(a, b)
    local d = (a:double() - b:double()):norm():item()
    local s = a:double():norm():item()
    return s > 1e-12 and d / s or d
end

local function clone_sd(sd)
    local c = {}
    for k, v in pairs(sd) do c[k] = v:clone() end
    return c
end

tide.manual_seed(1234)
local init = clone_sd(tide.models.smallcnn{}:state_dict())
local x = tide.randn{BATCH, 1, 28, 28}
local y = tide.randint(0, 10, {BATCH}):long()

-- a fresh smallcnn holding `init`, on `dev`
local function model_on(dev)
    local m = tide.models.smallcnn{}
    m:load_state_dict(init)
    if dev ~= "cpu" then m:to(dev) end
    m:train()
    return m
end

local function run(dev, make_opt)
    local m = model_on(dev)
    local xb, yb = x:to(dev), y:to(dev)
    local opt = make_opt(m:parameters())
    local losses = {}
    for i = 1, STEPS do
        opt:zero_grad()
        local loss = F.cross_entropy(m(xb), yb)
        loss:backward()
        opt:step()
        losses[i] = loss:item()
    end
    local sd = {}
    for k, v in pairs(m:state_dict()) do sd[k] = v:cpu() end
    return losses, sd
end

local optimizers = {
    {"SGD momentum", function(ps)
        return tide.optim.SGD(ps, {lr = 0.05, momentum = 0.9, weight_decay = 1e-4})
    end, 1e-3},
    {"AdamW", function(ps) return tide.optim.AdamW(ps, {lr = 1e-3, weight_decay = 0.01}) end, 2e-2},
}

for _, case in ipairs(optimizers) do
    local name, make_opt, upd_tol = case[1], case[2], case[3]
    local lc, sc = run("cpu", make_opt)
    local lg, sg = run(device, make_opt)
    for i = 1, STEPS do
        local r = math.abs(lc[i] - lg[i]) / math.max(math.abs(lc[i]), 1e-6)
        if not (r <= 1e-4) then -- luacheck: ignore 581 (NaN fails too)
            fail("%s: loss %d is %.9g on %s, %.9g on cpu (rel %.3g)", name, i, lg[i], device, lc[i], r)
        end
    end
    local keys = {}
    for k in pairs(sc) do keys[#keys + 1] = k end
    table.sort(keys)
    local worst, worst_upd = 0, 0
    for _, k in ipairs(keys) do
        local a, b = sc[k], sg[k]
        if b == nil then
            fail("%s: %s missing on %s", name, k, device)
        elseif a:dtype() == "int64" then
            if a:item() ~= b:item() then fail("%s: %s is %d on %s, %d on cpu", name, k, b:item(), device, a:item()) end
        else
            local r = rel_max(a, b)
            worst = math.max(worst, r)
            if not (r <= 1e-4) then -- luacheck: ignore 581 (NaN fails too)
                fail("%s: %s differs by %.3g (relative)", name, k, r)
            end
            if not k:match("running_") then
                local u = rel_l2(a - init[k], b - init[k])
                worst_upd = math.max(worst_upd, u)
                if not (u <= upd_tol) then -- luacheck: ignore 581 (NaN fails too)
                    fail("%s: the update of %s differs by %.3g (relative L2)", name, k, u)
                end
            end
        end
    end
    print(string.format("%s: losses %.6f %.6f %.6f on cpu, %.6f %.6f %.6f on %s; worst parameter %.3g, "
                        .. "worst update %.3g", name, lc[1], lc[2], lc[3], lg[1], lg[2], lg[3], device, worst,
                        worst_upd))
    if lc[STEPS] >= lc[1] then fail("%s: the loss did not go down on the CPU (%g -> %g)", name, lc[1], lc[STEPS]) end
end

if failures > 0 then
    print(string.format("%d check(s) failed", failures))
    os.exit(1)
end
print("ok: smallcnn trains the same on cpu and " .. device)
