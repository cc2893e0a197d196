-- tide.distributed on NCCL with CUDA tensors, one rank (no mpirun).
--
-- With one rank every collective is an identity, so each result is known
-- exactly: all_reduce (sum, avg, max, min, prod) and broadcast leave a
-- tensor as it was, all_gather stacks the one tensor on a new dim 0. The
-- values are written here and compared bit for bit, in float32, float64
-- and int64, and through a non-contiguous view (a transpose), which must
-- come back written in place. Then one SGD step of a small MLP through
-- tide.nn.DistributedDataParallel on CUDA against the same step on the
-- CPU without it: parameters equal within 1e-5 (the devices sum in
-- different orders; averaging over one rank changes nothing).
--
-- Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable or NCCL is
-- not available (libnccl.so.2 neither on the library path nor in
-- TIDE_NCCL_PATH; see docs/cuda.md).
local tide = require "tide"
local F, nn = tide.F, tide.nn

if not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local dist = tide.distributed
assert(dist, "tide.distributed is missing")
local ok, err = pcall(dist.init, {backend = "nccl"})
if not ok then
    if tostring(err):match("NCCL is not available") then
        print("SKIPPED: " .. tostring(err))
        os.exit(77)
    end
    error(err, 0)
end

local failures = 0
local function fail(fmt, ...)
    failures = failures + 1
    print("FAIL: " .. string.format(fmt, ...))
end

local function same_values(a, b) -- nested tables of numbers, exactly
    if type(a) ~= type(b) then return false end
    if type(a) ~= "table" then return a == b end
    if #a ~= #b then return false end
    for i = 1, #a do
        if not same_values(a[i], b[i]) then return false end
    end
    return true
end

local function show(v)
    if type(v) ~= "table" then return tostring(v) end
    local parts = {}
    for i = 1, #v do parts[i] = show(v[i]) end
    return "{" .. table.concat(parts, ", ") .. "}"
end

local function expect(what, t, want)
    local got = t:cpu():totable()
    if not same_values(got, want) then fail("%s: got %s, want %s", what, show(got), show(want)) end
end

local function expect_shape(what, t, want)
    local got = t:shape()
    if not same_values(got, want) then fail("%s: shape %s, want %s", what, show(got), show(want)) end
end

-- ---- collectives, one rank ---------------------------------------------------

local values = {
    float32 = {{1.5, -2, 3.25}, {0, 7, -0.5}},
    float64 = {{1.5, -2, 3.25}, {0, 7, -0.5}},
    int64 = {{3, -4, 5}, {0, 1, -9}},
}
local ops = {
    float32 = {"sum", "avg", "max", "min", "prod"},
    float64 = {"sum", "avg", "max", "min", "prod"},
    int64 = {"sum", "max", "min", "prod"}, -- avg is for floating dtypes
}

for _, dt in ipairs {"float32", "float64", "int64"} do
    local want = values[dt]
    for _, op in ipairs(ops[dt]) do
        local t = tide.tensor(want, dt):to("cuda")
        dist.all_reduce(t, {op = op})
        expect(("all_reduce %s of %s"):format(op, dt), t, want)
    end

    local b = tide.tensor(want, dt):to("cuda")
    dist.broadcast(b, {src = 0})
    expect("broadcast of " .. dt, b, want)

    local g = dist.all_gather(tide.tensor(want, dt):to("cuda"))
    expect_shape("all_gather of " .. dt, g, {1, 2, 3})
    expect("all_gather of " .. dt, g, {want})
    if not tostring(g:device()):match("^cuda") then
        fail("all_gather of %s: the result is on %s, not cuda", dt, tostring(g:device()))
    end
end

-- a transpose: not contiguous, written back in place through the view
do
    local base = tide.tensor(values.float32):to("cuda")
    local t = base:t()
    if t:is_contiguous() then fail("the transpose should not be contiguous") end
    dist.all_reduce(t, {op = "sum"})
    expect("all_reduce of a transpose", t, {{1.5, 0}, {-2, 7}, {3.25, -0.5}})
    expect("the base of the transpose", base, values.float32)
    local g = dist.all_gather(base:t())
    expect_shape("all_gather of a transpose", g, {1, 3, 2})
    expect("all_gather of a transpose", g, {{{1.5, 0}, {-2, 7}, {3.25, -0.5}}})
    local b = base:t()
    dist.broadcast(b, {src = 0})
    expect("broadcast of a transpose", b, {{1.5, 0}, {-2, 7}, {3.25, -0.5}})
end

-- ---- one DDP step against the CPU ----------------------------------------------

local function clone_sd(sd)
    local c = {}
    for k, v in pairs(sd) do c[k] = v:clone() end
    return c
end

local function mlp() return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)) end

tide.manual_seed(2024)
local init = clone_sd(mlp():state_dict())
local x = tide.tensor {
    {0.5, -1.0, 0.25, 2.0}, {1.5, 0.0, -0.75, 0.5}, {-2.0, 1.25, 0.5, -0.5}, {0.0, 0.75, 1.0, 1.5},
    {1.0, -0.5, -1.5, 0.25}, {-0.25, 2.0, 0.0, -1.0},
}
local y = tide.tensor({0, 2, 1, 1, 0, 2}, "int64")

local function step(dev, wrap)
    local m = mlp()
    m:load_state_dict(init)
    if dev ~= "cpu" then m:to(dev) end
    local net = wrap and nn.DistributedDataParallel(m) or m
    local opt = tide.optim.SGD(m:parameters(), {lr = 0.5})
    opt:zero_grad()
    local loss = F.cross_entropy(net(x:to(dev)), y:to(dev))
    loss:backward()
    opt:step()
    local sd = {}
    for k, v in pairs(m:state_dict()) do sd[k] = v:cpu() end
    return loss:item(), sd
end

local loss_cpu, sd_cpu = step("cpu", false)
local loss_gpu, sd_gpu = step("cuda", true)
if not (math.abs(loss_cpu - loss_gpu) <= 1e-5) then -- luacheck: ignore 581 (NaN fails too)
    fail("DDP step: loss %.9g on cuda, %.9g on cpu", loss_gpu, loss_cpu)
end
local worst = 0
for k, a in pairs(sd_cpu) do
    local b = sd_gpu[k]
    if b == nil then
        fail("DDP step: %s missing on cuda", k)
    else
        local d = (a:double() - b:double()):abs():max():item()
        worst = math.max(worst, d)
        if not (d <= 1e-5) then -- luacheck: ignore 581 (NaN fails too)
            fail("DDP step: %s differs by %.3g", k, d)
        end
        local moved = (a:double() - init[k]:double()):abs():max():item()
        if moved == 0 then fail("DDP step: %s did not change on the CPU", k) end
    end
end
print(string.format("DDP step: loss %.6f on cpu, %.6f on cuda; worst parameter difference %.3g", loss_cpu,
                    loss_gpu, worst))

dist.finalize()

if failures > 0 then
    print(("%d failure(s)"):format(failures))
    os.exit(1)
end
print("ok")
