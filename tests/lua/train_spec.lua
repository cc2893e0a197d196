-- Training equivalence with PyTorch 1.13, llm.c style. The data
-- come from tests/reference/gen_train.py (read its header for the layout):
-- train_smallcnn.safetensors and train.json.
--
-- smallcnn: PyTorch's initial weights (state_dict names) are loaded into
-- tide.models.smallcnn{}, which then trains in training mode (batch norm on
-- batch statistics) on one fixed batch of 8 images with F.cross_entropy for
-- 5 steps of SGD (momentum 0.9, dampening 0.1, weight decay), SGD with
-- Nesterov momentum, and AdamW. Compared per step: the loss; after the
-- stored steps (1 and 5, or 5): every parameter and BN running statistic,
-- and num_batches_tracked exactly. Every comparison is a max absolute
-- difference (all values here are below 2 in size, so absolute is the
-- honest measure):
--   float64 (the semantics check) against PyTorch's float64 run: losses
--     within 1e-10, tensors within 1e-6 -- the stored snapshots are
--     init + a float32-rounded difference, exact to about |delta| * 6e-8,
--     so 1e-6 is what the file can promise; observed are about 1e-8.
--   float32 (the path people train on) against the same float64 run:
--     losses and tensors within 1e-4, the issue's bound. PyTorch's own
--     float32 run lands up to 2e-5 from its float64 run (AdamW: the first
--     step divides tiny gradients by their own size, so rounding shows in
--     lr * a few %; train.json records these deviations per run); the
--     learning rates were picked so no max-pool tie or ReLU edge is crossed
--     differently in float32 (at SGD lr 0.1 one is, at step 3, and
--     PyTorch's float32 and float64 runs then part by 4e-4).
--
-- resnet18 (stem = "cifar", 10 classes): 11.2M float32 weights are 45 MB,
-- too big for the repository, and tide's RNG is not PyTorch's. So neither
-- side draws them: each state_dict entry is rebuilt from a small integer
-- seed by the same middle-square hash (uniform() below, the twin of
-- gen_train.py's), computed in float64 on whole numbers below 2^53 only, so
-- every operation is exact and both sides get the same bits; w = lo + u *
-- (hi - lo), with lo, hi per entry in train.json (He-uniform convolutions,
-- BN weights in [0.5, 1.5], biases and running means in [-0.1, 0.1],
-- running variances in [0.5, 2]: eval-mode BN is really exercised). The
-- per-entry sums stored by PyTorch are checked first (relative 1e-12), so a
-- mismatch in the weights cannot pass for a mismatch in the network. Logits
-- (2 images 3x32x32 from the same hash) are compared in evaluation mode and
-- in training mode (batch statistics), plus the sums of the running
-- statistics after the training-mode forward:
--   float64: within 1e-9 absolute; float32: within 1e-4 absolute against
--   PyTorch's float32 logits (the logits are at most 2.4 in size).
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"
local cjson = require "cjson"

local ref = cjson.decode(H.read_file("tests/reference/train.json"))
local st = tide.load("tests/reference/train_smallcnn.safetensors")
local F = tide.F

-- One thread: the observed errors below are then reproducible (a fixed
-- reduction order), and the spec takes about 7 s instead of 40 when ctest
-- runs other specs beside it on this 2-core machine (OpenMP threads spin on
-- an oversubscribed machine). The threaded kernels have their own tests.
tide.set_num_threads(1)

local TOL = {
    float64 = {loss = 1e-10, tensor = 1e-6, logits = 1e-9},
    float32 = {loss = 1e-4, tensor = 1e-4, logits = 1e-4},
}

local function note(fmt, ...)
    io.stderr:write("# ", string.format(fmt, ...), "\n")
end

local function max_abs_diff(a, b)
    return (a:to("float64") - b:to("float64")):abs():max():item()
end

local from_json = H.from_json

-- smallcnn ---------------------------------------------------------------

local function init_state(dtype)
    local sd = {}
    for _, key in ipairs(ref.smallcnn.keys) do
        local t = st["init." .. key]
        assert(t ~= nil, "train_smallcnn.safetensors lacks init." .. key)
        sd[key] = t:is_floating_point() and t:to(dtype) or t:clone()
    end
    return sd
end

-- PyTorch's float64 state after step k: init + the stored difference
local function want_state(run, k)
    local sd = {}
    for _, key in ipairs(ref.smallcnn.keys) do
        local d = st[string.format("%s.step%d.%s", run.name, k, key)]
        if d ~= nil then sd[key] = st["init." .. key]:to("float64") + d:to("float64") end
    end
    return sd
end

local function train(run, dtype)
    local m = tide.models.smallcnn{num_classes = 10, in_channels = 1}:to(dtype)
    m:load_state_dict(init_state(dtype))
    m:train()
    local opt = tide.optim[run.optim](m:parameters(), from_json(run.options))
    local x, y = st["batch.x"]:to(dtype), st["batch.y"]
    local stored = {}
    for _, k in ipairs(run.stored_steps) do stored[math.tointeger(k)] = true end
    local losses, snaps = {}, {}
    for k = 1, #run.losses_float64 do
        opt:zero_grad()
        local loss = F.cross_entropy(m(x), y)
        loss:backward()
        opt:step()
        losses[k] = loss:item()
        if stored[k] then
            local snap = {}
            for key, t in pairs(m:state_dict()) do snap[key] = t:clone() end
            snaps[k] = snap
        end
    end
    return losses, snaps
end

describe("smallcnn trains as in PyTorch", function()
    it("has PyTorch's parameter count and state_dict keys", function()
        local m = tide.models.smallcnn{}
        local n = 0
        for _, p in ipairs(m:parameters()) do n = n + p:numel() end
        assert.are.equal(math.tointeger(ref.smallcnn.num_params), n)
        assert.are.same(ref.smallcnn.keys, m:state_dict_keys())
    end)

    for _, run in ipairs(ref.smallcnn.runs) do
        for _, dtype in ipairs({"float64", "float32"}) do
            it(string.format("%s, %s: losses per step, parameters and running statistics", run.name, dtype),
               function()
                local tol = TOL[dtype]
                local losses, snaps = train(run, dtype)
                local worst_loss = 0
                for k, want in ipairs(run.losses_float64) do
                    local d = math.abs(losses[k] - want)
                    worst_loss = math.max(worst_loss, d)
                    assert(d <= tol.loss,
                           string.format("%s %s: loss at step %d is %.17g, PyTorch %.17g (diff %.3g > %g)",
                                         run.name, dtype, k, losses[k], want, d, tol.loss))
                end
                local worst = {}
                for k, snap in pairs(snaps) do
                    local want = want_state(run, k)
                    local w = 0
                    for _, key in ipairs(ref.smallcnn.keys) do
                        local got = snap[key]
                        assert(got ~= nil, "tide's state_dict lacks " .. key)
                        if want[key] == nil then
                            assert(key:match("num_batches_tracked$"), "no reference for " .. key)
                            assert.are.equal(k, got:item())
                        else
                            assert.are.equal(dtype, got:dtype())
                            local d = max_abs_diff(got, want[key])
                            w = math.max(w, d)
                            assert(d <= tol.tensor,
                                string.format("%s %s: %s after step %d differs from PyTorch by %.3g (> %g)",
                                              run.name, dtype, key, k, d, tol.tensor))
                        end
                    end
                    worst[#worst + 1] = string.format("step %d %.2e", k, w)
                end
                table.sort(worst)
                note("smallcnn %s %s: max |loss diff| %.2e, max |tensor diff| %s", run.name, dtype, worst_loss,
                     table.concat(worst, ", "))
            end)
        end
    end
end)

-- resnet18 ---------------------------------------------------------------

local M26 = 2.0 ^ 26

local function mod26(x) return x - (x / M26):long():double() * M26 end

-- the twin of gen_train.py's uniform(n, seed): n values in [0, 1), exact.
-- Done in chunks of 2^18 (2 MB temporaries): on whole tensors of millions
-- of elements each temporary is a fresh mapping whose page faults made this
-- 40 times slower.
local CHUNK = 1 << 18
local function uniform(n, seed)
    local parts = {}
    for s = 0, n - 1, CHUNK do
        local i = tide.arange(s, math.min(n, s + CHUNK), {dtype = "float64"})
        local x = mod26(i * 40503.0 + (seed * 7919 + 12345))
        x = mod26((x * x / 8192.0):long():double())
        x = mod26(x * 69069.0 + 1.0)
        x = mod26((x * x / 8192.0):long():double())
        parts[#parts + 1] = x / M26
    end
    return #parts == 1 and parts[1] or tide.cat(parts)
end

local function hashed(e)
    local shape = H.ints(e.shape)
    local n = 1
    for _, s in ipairs(shape) do n = n * s end
    return (uniform(n, math.tointeger(e.seed)) * (e.hi - e.lo) + e.lo):reshape(shape)
end

local R = ref.resnet18
local resnet_sd, resnet_x -- float64, built once

local function resnet_weights()
    if resnet_sd then return resnet_sd, resnet_x end
    resnet_sd = {}
    for _, e in ipairs(R.tensors) do resnet_sd[e.name] = hashed(e) end
    resnet_x = hashed(R.input)
    return resnet_sd, resnet_x
end

local function resnet(dtype)
    local sd64 = resnet_weights()
    local m = tide.models.resnet18{num_classes = 10, stem = "cifar"}:to(dtype)
    local sd = {}
    for _, key in ipairs(m:state_dict_keys()) do
        if key:match("num_batches_tracked$") then
            sd[key] = tide.zeros({}, {dtype = "int64"})
        else
            sd[key] = sd64[key] and sd64[key]:to(dtype)
        end
    end
    m:load_state_dict(sd)
    return m
end

describe("resnet18 (cifar stem) with hashed weights gives PyTorch's logits", function()
    it("rebuilds PyTorch's weights and input bit for bit (per-tensor sums)", function()
        local sd, x = resnet_weights()
        local n = 0
        for _, e in ipairs(R.tensors) do
            local s = sd[e.name]:sum():item()
            assert(math.abs(s - e.sum) <= 1e-12 * math.max(1, math.abs(e.sum)),
                   string.format("%s: sum %.17g, PyTorch %.17g", e.name, s, e.sum))
            if not e.name:match("running_") then n = n + sd[e.name]:numel() end
        end
        assert.are.equal(math.tointeger(R.num_params), n)
        assert(math.abs(x:sum():item() - R.input.sum) <= 1e-12 * math.abs(R.input.sum))
        -- and the model's own count agrees
        local m = tide.models.resnet18{num_classes = 10, stem = "cifar"}
        local c = 0
        for _, p in ipairs(m:parameters()) do c = c + p:numel() end
        assert.are.equal(n, c)
    end)

    for _, dtype in ipairs({"float64", "float32"}) do
        it(dtype .. ": evaluation mode (running statistics) and training mode (batch statistics)", function()
            local tol = TOL[dtype].logits
            local m = resnet(dtype)
            local _, x64 = resnet_weights()
            local x = x64:to(dtype)
            local function logits_vs(mode, out)
                local want = tide.tensor(R[mode .. "_" .. dtype], "float64")
                local d = max_abs_diff(out:reshape{-1}, want)
                assert(d <= tol, string.format("%s %s logits differ from PyTorch's by %.3g (> %g)", dtype, mode, d,
                    tol))
                return d
            end
            m:evaluate()
            local de = logits_vs("eval", tide.no_grad(function() return m(x) end))
            m:train()
            local dt = logits_vs("train", tide.no_grad(function() return m(x) end))
            -- the running statistics after one training-mode forward
            local ds = 0
            local sd = m:state_dict()
            for key, want in pairs(R["running_sums_" .. dtype]) do
                local got = sd[key]:to("float64"):sum():item()
                local d = math.abs(got - want) / math.max(1, math.abs(want))
                ds = math.max(ds, d)
                assert(d <= tol, string.format("%s: sum of %s after a training forward is %.17g, PyTorch %.17g",
                                               dtype, key, got, want))
            end
            note("resnet18 %s: max |logit diff| eval %.2e, train %.2e; running-stat sums %.2e",
                 dtype, de, dt, ds)
        end)
    end
end)
