-- Writes a small stand-in for CIFAR-10 in its binary format, for CI's
-- quick run of scripts/cifar10_resnet18.lua (CIFAR-10 itself is not on the
-- machine): Fashion-MNIST images padded to 32x32 (2 black pixels each
-- side), the grey plane repeated as red, green and blue, labels kept.
--   tide tests/recipes/make_fake_cifar10.lua DIR [TRAIN_PER_FILE [TEST]]
-- writes DIR/data_batch_1.bin ... data_batch_5.bin with TRAIN_PER_FILE
-- records each (default 60, the first 300 training images in order) and
-- DIR/test_batch.bin with TEST records (default 200, the first test
-- images). Each record: a label byte, then the red, green and blue 32x32
-- planes, row by row (3073 bytes).
local tide = require "tide"

local dir = arg[1]
local per_file = math.tointeger(tonumber(arg[2] or "60"))
local ntest = math.tointeger(tonumber(arg[3] or "200"))
if not dir or not per_file or per_file < 1 or not ntest or ntest < 1 then
    io.stderr:write("usage: tide tests/recipes/make_fake_cifar10.lua DIR [TRAIN_PER_FILE [TEST]]\n")
    os.exit(2)
end
os.execute("mkdir -p '" .. dir:gsub("'", "'\\''") .. "'")

local blank_row = string.rep("\0", 32)
local function record(img, label)
    -- img: 28 rows of 28 numbers in [0, 255]
    local rows = {blank_row, blank_row}
    for r = 1, 28 do rows[#rows + 1] = "\0\0" .. string.char(table.unpack(img[r])) .. "\0\0" end
    rows[#rows + 1] = blank_row
    rows[#rows + 1] = blank_row
    local plane = table.concat(rows)
    return string.char(label) .. plane .. plane .. plane
end

local function write(path, ds, first, n)
    local imgs = ds.images:narrow(0, first, n):totable()
    local labels = ds.labels:narrow(0, first, n):totable()
    local parts = {}
    for i = 1, n do parts[i] = record(imgs[i][1], math.tointeger(labels[i])) end
    local f = assert(io.open(path, "wb"))
    f:write(table.concat(parts))
    f:close()
end

local train = tide.data.fashion_mnist{split = "train"}
local test = tide.data.fashion_mnist{split = "test"}
for b = 1, 5 do write(string.format("%s/data_batch_%d.bin", dir, b), train, (b - 1) * per_file, per_file) end
write(dir .. "/test_batch.bin", test, 0, ntest)
print(string.format("make_fake_cifar10: %s holds %d training and %d test images (Fashion-MNIST as 3x32x32)", dir,
                    5 * per_file, ntest))
