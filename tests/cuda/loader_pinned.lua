-- DataLoader batches on CUDA: device = "cuda" with pinned staging
-- buffers and asynchronous uploads (pin_memory, the default there), and
-- with ordinary uploads (pin_memory = false), give exactly the batches of
-- the same loader on the CPU: uint8 images (made float32 on the loader
-- thread), random crops and flips (the same keys), shuffled, two epochs,
-- a partial last batch, and GPU work queued between batches so the next
-- batch's upload overlaps it. Exits 77 (ctest's SKIP_RETURN_CODE) where no
-- GPU is usable.
local tide = require "tide"
local D = tide.data
local T = D.transforms

if not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

tide.manual_seed(5)
local n = 203
local images = tide.randint(0, 256, {n, 3, 20, 20}, "uint8")
local labels = tide.randint(0, 10, {n}, "int64")
local ds = D.TensorDataset(images, labels)

local function collect(opts)
    local base = {batch_size = 32, shuffle = true, seed = 9,
                  transform = {T.random_crop(16, {padding = 2}), T.random_hflip()}}
    for k, v in pairs(opts) do base[k] = v end
    local loader = D.DataLoader(ds, base)
    local out = {}
    for _ = 1, 2 do
        for x, y in loader:iter() do
            local busy = x * 2 + 1 -- GPU work queued while the next batch is staged
            out[#out + 1] = {x:cpu(), y:cpu(), x:device(), busy:sum():item()}
        end
    end
    return out
end

local want = collect({})
local failures = 0
for _, pin in ipairs({true, false}) do
    local got = collect({device = "cuda", pin_memory = pin})
    local what = "pin_memory = " .. tostring(pin)
    if #got ~= #want then
        print(string.format("FAIL %s: %d batches, want %d", what, #got, #want))
        failures = failures + 1
    else
        for i = 1, #want do
            local a, b = want[i], got[i]
            local ok = b[3] ~= "cpu" and (a[1] - b[1]):abs():max():item() == 0 and (a[2] - b[2]):abs():max():item() == 0
                and a[1]:dtype() == b[1]:dtype() and a[2]:dtype() == b[2]:dtype()
            if not ok then
                print(string.format("FAIL %s: batch %d differs (device %s)", what, i, tostring(b[3])))
                failures = failures + 1
            end
        end
    end
end
if failures > 0 then os.exit(1) end
print(string.format("ok: %d CUDA batches (pinned and not) equal the CPU's", #want))
