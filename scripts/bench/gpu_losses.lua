-- cross_entropy forward + backward on the GPU at (65536, 1000) float32:
-- the achieved bandwidth against the card's peak (goal >= 80%)
-- and the time against PyTorch on the same GPU, in the same run.
--
-- The fused kernels read the logits once forward and once backward and
-- write the gradient once: 3 x 65536 x 1000 x 4 bytes (786 MB) per
-- forward + backward, the traffic counted here (targets and the scalar
-- loss are noise). PyTorch's time is turned into bandwidth by the same
-- count, so the two bandwidths compare like the times.
--
-- The peak comes from TIDE_GPU_PEAK_GBS when set, else from the GPU's name
-- (nvidia-smi) in the table below: H100 SXM 3.35 TB/s, H100 PCIe 2.0,
-- H200 4.8, A100 80GB 2.04, A100 40GB 1.56, L40S 0.864.
-- `tide scripts/bench/gpu_losses.lua [--repeats N]`; without a usable GPU
-- it says so in one line and exits 0.
local tide = require "tide"
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench"
local B = dofile(here .. "/benchlib.lua")

local N, C = 65536, 1000
local repeats = 20
if arg[1] == "--repeats" then repeats = assert(math.tointeger(tonumber(arg[2])), "--repeats needs an integer") end

if not (tide.cuda and tide.cuda.is_available()) then
    print("gpu_losses: no GPU (tide.cuda.is_available() is false): nothing to measure")
    return
end

local PEAKS = { -- GB/s, matched against nvidia-smi's name in this order
    {"H200", 4800}, {"H100 PCIe", 2000}, {"H100", 3350}, {"A100%-SXM4%-80GB", 2039}, {"A100 80GB PCIe", 1935},
    {"A100", 1555}, {"L40S", 864}, {"L4", 300},
}

local function gpu_name()
    local p = io.popen("nvidia-smi --query-gpu=name --format=csv,noheader -i 0 2>/dev/null")
    if not p then return nil end
    local name = p:read("l")
    p:close()
    return name
end

local function peak_gbs(name)
    local env = tonumber(os.getenv("TIDE_GPU_PEAK_GBS") or "")
    if env then return env, "TIDE_GPU_PEAK_GBS" end
    if not name then return nil end
    for _, e in ipairs(PEAKS) do
        if name:find(e[1]) then return e[2], "table (" .. e[1] .. ")" end
    end
    return nil
end

local F = tide.F
tide.manual_seed(0)
local x = (tide.randn({N, C}) * 4):cuda():requires_grad_()
local y = (tide.rand({N}) * C):long():cuda()

local function once()
    local loss <close> = F.cross_entropy(x, y)
    loss:backward()
    x.grad = nil
end
for _ = 1, 3 do once() end
tide.cuda.synchronize()
local t0 = tide.clock()
for _ = 1, repeats do once() end
tide.cuda.synchronize()
local dt = (tide.clock() - t0) / repeats

local bytes = 3 * N * C * 4
local gbs = bytes / dt / 1e9
local name = gpu_name()
local peak, src = peak_gbs(name)
print(string.format("gpu %s", name or "unknown (no nvidia-smi)"))
print(string.format("tide cross_entropy fwd+bwd (%d, %d): %.3f ms, %.0f GB/s", N, C, dt * 1e3, gbs))
if peak then
    print(string.format("peak %.0f GB/s from %s: tide reaches %.1f%% (goal >= 80%%)", peak, src, 100 * gbs / peak))
    B.row("gpu CE bandwidth / peak", gbs, peak, "GB/s", true, 0.8)
else
    print("peak unknown for this GPU: set TIDE_GPU_PEAK_GBS to compare")
end
local pt, why = B.torch("gpu_losses_torch.py", {N, C, repeats})
if not pt then print("note: " .. why .. "; tide's numbers only") end
B.row("gpu CE fwd+bwd 65536x1000", dt, pt and pt.seconds, "ms", false, 1.0)
