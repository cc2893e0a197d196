-- tide.data: readers (real Fashion-MNIST, IDX and CIFAR files written here),
-- damaged files, the DataLoader and its thread, transforms, imbalance and
-- weighted sampling.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"
local D = tide.data
local T = D.transforms

local function tmpdir()
    local p = os.tmpname()
    os.remove(p)
    assert(os.execute("mkdir -p '" .. p .. "'"))
    return p
end

local function write(path, bytes)
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
end

local function gzip(path)
    assert(os.execute("gzip -c '" .. path .. "' > '" .. path .. ".gz'"))
end

local function be32(n) return string.pack(">I4", n) end

-- an IDX3 images file and an IDX1 labels file as strings
local function idx_images(n, h, w, pixel)
    local parts = { "\0\0\8\3", be32(n), be32(h), be32(w) }
    for i = 0, n - 1 do
        for p = 0, h * w - 1 do parts[#parts + 1] = string.char(pixel(i, p)) end
    end
    return table.concat(parts)
end
local function idx_labels(list)
    local parts = { "\0\0\8\1", be32(#list) }
    for _, v in ipairs(list) do parts[#parts + 1] = string.char(v) end
    return table.concat(parts)
end

local function pix(i, p) return (i * 16 + p * 3) % 256 end

local function mnist_dir(opts)
    opts = opts or {}
    local dir = tmpdir()
    write(dir .. "/train-images-idx3-ubyte", opts.images or idx_images(3, 2, 2, pix))
    write(dir .. "/train-labels-idx1-ubyte", opts.labels or idx_labels({ 7, 0, 9 }))
    write(dir .. "/t10k-images-idx3-ubyte", idx_images(1, 2, 2, pix))
    write(dir .. "/t10k-labels-idx1-ubyte", idx_labels({ 4 }))
    return dir
end

local function rm(dir) os.execute("rm -rf '" .. dir .. "'") end

-- a CIFAR record: label, then 3072 bytes (byte k of record r is (r + k) % 251)
local function cifar_records(first, labels)
    local parts = {}
    for j, lab in ipairs(labels) do
        local r = first + j - 1
        local bytes = { string.char(lab) }
        for k = 0, 3071 do bytes[#bytes + 1] = string.char((r + k) % 251) end
        parts[#parts + 1] = table.concat(bytes)
    end
    return table.concat(parts)
end

local function cifar_dir()
    local dir = tmpdir()
    for b = 1, 5 do write(dir .. "/data_batch_" .. b .. ".bin", cifar_records(2 * (b - 1), { b, 9 - b })) end
    write(dir .. "/test_batch.bin", cifar_records(100, { 3, 1, 4 }))
    return dir
end

local function sorted_copy(list)
    local r = {}
    for i, v in ipairs(list) do r[i] = v end
    table.sort(r)
    return r
end

-- a small dataset whose image i is filled with i, label i % 3
local function counting_ds(n, shape)
    shape = shape or { 1, 2, 2 }
    local per = 1
    for _, s in ipairs(shape) do per = per * s end
    local x = tide.arange(0, n):float():view({ n, 1 }):expand({ n, per }):contiguous()
    local full = { n }
    for _, s in ipairs(shape) do full[#full + 1] = s end
    x = x:reshape(full)
    local labels = {}
    for i = 1, n do labels[i] = (i - 1) % 3 end
    return D.TensorDataset(x, tide.tensor(labels, "int64"))
end

-- the sample ids of an epoch, in order (image i holds the value i)
local function epoch_ids(loader)
    local ids = {}
    for x in loader:iter() do
        for b = 0, x:size(0) - 1 do ids[#ids + 1] = math.tointeger(x:select(0, b):reshape({ -1 }):get(0)) end
    end
    return ids
end

describe("tide.data readers", function()
    it("reads the real Fashion-MNIST (Debian's dataset-fashion-mnist)", function()
        local ds = D.fashion_mnist({ split = "train" })
        assert.are.equal(60000, #ds)
        assert.are.same({ 60000, 1, 28, 28 }, ds.images:shape())
        assert.are.equal("uint8", ds.images:dtype())
        assert.are.equal("int64", ds.labels:dtype())
        local first = {}
        for i = 0, 9 do
            local img, y = ds:get(i)
            first[#first + 1] = y
            if i == 0 then
                assert.are.same({ 1, 28, 28 }, img:shape())
                -- values from Python's gzip module on the same file
                assert.are.equal(76247, math.tointeger(img:long():sum():item()))
                assert.are.equal(217, math.tointeger(img:get(0, 14, 14)))
            end
        end
        assert.are.same({ 9, 0, 0, 3, 0, 2, 7, 2, 5, 5 }, first)
        assert.are.equal("T-shirt/top", ds.classes[1])
        assert.are.equal("Ankle boot", ds.classes[10])
        -- the commonly quoted mean and std of the training images
        local x = ds.images:float() / 255
        assert.is_true(math.abs(x:mean():item() - 0.2860) < 1e-3)
        assert.is_true(math.abs(x:std():item() - 0.3530) < 1e-3)
        local test = D.fashion_mnist({ split = "test" })
        assert.are.equal(10000, #test)
        local tl = {}
        for i = 0, 9 do tl[#tl + 1] = select(2, test:get(i)) end
        assert.are.same({ 9, 2, 1, 1, 6, 1, 4, 6, 5, 7 }, tl)
    end)

    it("reads plain and gzip IDX files alike", function()
        local dir = mnist_dir()
        local plain = D.mnist({ dir = dir })
        for _, f in ipairs({ "train-images-idx3-ubyte", "train-labels-idx1-ubyte" }) do
            gzip(dir .. "/" .. f)
            os.remove(dir .. "/" .. f)
        end
        local gz = D.mnist({ dir = dir })
        for _, ds in ipairs({ plain, gz }) do
            assert.are.equal(3, #ds)
            assert.are.same({ 3, 1, 2, 2 }, ds.images:shape())
            assert.are.same({ 7, 0, 9 }, ds.labels:totable())
            local want = {}
            for i = 0, 2 do for p = 0, 3 do want[#want + 1] = pix(i, p) end end
            assert.are.same(want, H.values(ds.images))
        end
        local test = D.mnist({ dir = dir, split = "test" })
        assert.are.same({ 4 }, test.labels:totable())
        rm(dir)
    end)

    it("names the file and the problem for damaged IDX files", function()
        local cases = {
            { { images = "\0\0\8" }, "train%-images%-idx3%-ubyte: truncated IDX file" },
            { { images = "\1\2\8\3" .. be32(1) .. be32(2) .. be32(2) .. "abcd" },
                "train%-images%-idx3%-ubyte: bad magic" },
            { { images = "\0\0\13\3" .. be32(1) .. be32(2) .. be32(2) .. "abcd" }, "unsupported IDX data type 0x0d" },
            { { images = "\0\0\8\3" .. be32(3) .. be32(2) }, "truncated IDX header" },
            { { images = idx_images(3, 2, 2, pix):sub(1, -2) },
                "truncated: the header promises 12 bytes of data, the file has 11" },
            { { images = idx_images(3, 2, 2, pix) .. "x" }, "1 bytes after the 12 bytes" },
            { { images = "\0\0\8\3" .. be32(0xffffffff) .. be32(0xffffffff) .. be32(0xffff) }, "truncated" },
            { { labels = idx_labels({ 1, 2 }) }, "holds 2 labels but .*train%-images%-idx3%-ubyte holds 3 images" },
            { { labels = idx_labels({ 1, 2, 10 }) }, "label 10 of sample 2 is outside %[0, 10%)" },
            { { images = idx_labels({ 1, 2, 3 }) }, "images file with 1 dims" },
        }
        for _, c in ipairs(cases) do
            local dir = mnist_dir(c[1])
            local err = H.error_of(D.mnist, { dir = dir })
            assert.is_truthy(err, c[2])
            assert.is_truthy(err:find("^mnist: "), err)
            assert.is_truthy(err:find(c[2]), err .. "\n  expected: " .. c[2])
            rm(dir)
        end
        -- a truncated gzip stream
        local dir = mnist_dir()
        local f = dir .. "/train-images-idx3-ubyte"
        write(f, idx_images(50, 28, 28, pix))
        gzip(f)
        os.remove(f)
        local gzdata = H.read_file(f .. ".gz")
        write(f .. ".gz", gzdata:sub(1, #gzdata // 2))
        local err = H.error_of(D.mnist, { dir = dir })
        assert.is_truthy(err and err:find("train%-images%-idx3%-ubyte.gz: damaged or truncated gzip"), err)
        rm(dir)
    end)

    it("says where a missing data set is expected", function()
        local err = H.error_of(D.fashion_mnist, { dir = "/nonexistent/fm" })
        assert.is_truthy(err:find("^fashion_mnist: train%-images%-idx3%-ubyte not found"), err)
        assert.is_truthy(err:find("expected at /nonexistent/fm/train%-images%-idx3%-ubyte.gz", 1), err)
        assert.is_truthy(err:find("dataset%-fashion%-mnist"), err)
        err = H.error_of(D.mnist, { dir = "/nonexistent/m", split = "test" })
        assert.is_truthy(err:find("^mnist: t10k%-images%-idx3%-ubyte not found %(expected at /nonexistent/m/"), err)
        err = H.error_of(D.cifar10, { dir = "/nonexistent/c" })
        assert.is_truthy(err:find("^cifar10: /nonexistent/c/data_batch_1.bin not found"), err)
        assert.is_truthy(err:find("cifar%-10%-binary"), err)
        assert.is_truthy(H.error_of(D.mnist, {}):find("option 'dir'"))
        assert.is_truthy(H.error_of(D.fashion_mnist, { split = "valid" }):find("option 'split'"))
        assert.is_truthy(H.error_of(D.fashion_mnist, { spilt = "test" }):find("unknown option 'spilt'"))
    end)

    it("reads CIFAR-10 binary batches", function()
        local dir = cifar_dir()
        local ds = D.cifar10({ dir = dir })
        assert.are.equal(10, #ds)
        assert.are.same({ 10, 3, 32, 32 }, ds.images:shape())
        assert.are.same({ 1, 8, 2, 7, 3, 6, 4, 5, 5, 4 }, ds.labels:totable())
        assert.are.equal("airplane", ds.classes[1])
        -- record r, channel c, row i, column j is byte 1 + c*1024 + i*32 + j
        for _, rcij in ipairs({ { 0, 0, 0, 0 }, { 3, 1, 2, 5 }, { 9, 2, 31, 31 } }) do
            local r, c, i, j = table.unpack(rcij)
            local img = select(1, ds:get(r))
            assert.are.equal((r + c * 1024 + i * 32 + j) % 251, math.tointeger(img:get(c, i, j)))
        end
        local test = D.cifar10({ dir = dir, split = "test" })
        assert.are.same({ 3, 1, 4 }, test.labels:totable())
        -- damaged batches
        write(dir .. "/test_batch.bin", cifar_records(0, { 1, 2 }):sub(1, -5))
        local err = H.error_of(D.cifar10, { dir = dir, split = "test" })
        assert.is_truthy(err:find("test_batch.bin: truncated: 6142 bytes is not a whole number of 3073%-byte records"),
            err)
        write(dir .. "/test_batch.bin", cifar_records(0, { 1, 10 }))
        err = H.error_of(D.cifar10, { dir = dir, split = "test" })
        assert.is_truthy(err:find("test_batch.bin: label 10 of record 1 is outside %[0, 10%)"), err)
        write(dir .. "/test_batch.bin", "")
        err = H.error_of(D.cifar10, { dir = dir, split = "test" })
        assert.is_truthy(err:find("test_batch.bin: empty file"), err)
        os.remove(dir .. "/data_batch_4.bin")
        err = H.error_of(D.cifar10, { dir = dir })
        assert.is_truthy(err:find("data_batch_4.bin not found"), err)
        rm(dir)
    end)

    it("TensorDataset, get, subset", function()
        local ds = counting_ds(5)
        assert.are.equal(5, #ds)
        local img, y = ds:get(4)
        assert.are.same({ 4, 4, 4, 4 }, H.values(img))
        assert.are.equal(1, y)
        assert.is_truthy(H.error_of(ds.get, ds, 5):find("index 5 is out of range %[0, 5%)"))
        assert.is_truthy(H.error_of(ds.get, ds, -1):find("out of range"))
        assert.is_truthy(H.error_of(D.TensorDataset, tide.zeros({ 3, 2 }), tide.zeros({ 4 })):find("same first dim"))
        local s = D.subset(ds, 2)
        assert.are.equal(2, #s)
        assert.are.same({ 0, 1 }, s.labels:totable())
        s = D.subset(ds, { 4, 0 })
        assert.are.same({ 1, 0 }, s.labels:totable())
        assert.are.same({ 4, 4, 4, 4 }, H.values((s:get(0))))
        assert.is_truthy(H.error_of(D.subset, ds, { 5 }):find("index 5 is outside %[0, 5%)"))
        assert.is_truthy(H.error_of(D.subset, ds, 6):find("size must be"))
    end)
end)

describe("tide.data.DataLoader", function()
    it("accepts pin_memory and device = 'cpu': the batches are the unpinned ones", function()
        local ds = counting_ds(10)
        local function batches(opts)
            local out = {}
            for x, y in D.DataLoader(ds, opts):iter() do
                out[#out + 1] = { x:totable(), y:totable(), x:device() }
            end
            return out
        end
        local plain = batches({ batch_size = 4, shuffle = true, seed = 3 })
        assert.are.same(plain, batches({ batch_size = 4, shuffle = true, seed = 3, pin_memory = true }))
        assert.are.same(plain, batches({ batch_size = 4, shuffle = true, seed = 3, device = "cpu", pin_memory = true }))
        assert.are.same(plain, batches({ batch_size = 4, shuffle = true, seed = 3, pin_memory = false }))
        assert.are.equal("cpu", plain[1][3])
        assert.is_truthy(H.error_of(D.DataLoader, ds, { pin_memory = 1 }):find("pin_memory"))
        assert.is_truthy(H.error_of(D.DataLoader, ds, { device = 3 }):find("device"))
        assert.is_truthy(H.error_of(D.DataLoader, ds, { device = "tpu" }))
        if not tide.cuda.is_available() then
            assert.is_truthy(H.error_of(D.DataLoader, ds, { device = "cuda" }))
        end
    end)

    it("gives #loader batches, the last one partial unless drop_last", function()
        local ds = counting_ds(10)
        local loader = D.DataLoader(ds, { batch_size = 4 })
        assert.are.equal(3, #loader)
        local sizes, labels = {}, {}
        for x, y in loader:iter() do
            sizes[#sizes + 1] = x:size(0)
            assert.are.same({ x:size(0), 1, 2, 2 }, x:shape())
            assert.are.equal("float32", x:dtype())
            for _, v in ipairs(y:totable()) do labels[#labels + 1] = v end
        end
        assert.are.same({ 4, 4, 2 }, sizes)
        assert.are.same({ 0, 1, 2, 0, 1, 2, 0, 1, 2, 0 }, labels)
        assert.are.same({ 0, 1, 2, 3, 4, 5, 6, 7, 8, 9 }, epoch_ids(loader))
        local dl = D.DataLoader(ds, { batch_size = 4, drop_last = true })
        assert.are.equal(2, #dl)
        assert.are.same({ 0, 1, 2, 3, 4, 5, 6, 7 }, epoch_ids(dl))
        assert.are.equal(10, #D.DataLoader(ds))
        assert.are.equal(1, #D.DataLoader(ds, { batch_size = 100 }))
    end)

    it("scales uint8 images to [0, 1] float32", function()
        local x = tide.tensor({ { 0, 255 }, { 51, 102 } }, "uint8")
        local loader = D.DataLoader(D.TensorDataset(x, tide.tensor({ 0, 1 }, "int64")), { batch_size = 2 })
        for b in loader:iter() do
            assert.are.equal("float32", b:dtype())
            H.assert_close(b, { 0, 1, 0.2, 0.4 }, 1e-6, 1e-7)
        end
    end)

    it("shuffles: each sample once per epoch, seeded orders repeat", function()
        local ds = counting_ds(50)
        local a = D.DataLoader(ds, { batch_size = 8, shuffle = true, seed = 11 })
        local b = D.DataLoader(ds, { batch_size = 8, shuffle = true, seed = 11 })
        local c = D.DataLoader(ds, { batch_size = 8, shuffle = true, seed = 12 })
        local e1, e2 = epoch_ids(a), epoch_ids(a)
        local all = {}
        for i = 0, 49 do all[#all + 1] = i end
        assert.are.same(all, sorted_copy(e1))
        assert.are.same(all, sorted_copy(e2))
        assert.are_not.same(all, e1)
        assert.are_not.same(e1, e2)
        assert.are.same(e1, epoch_ids(b))
        assert.are.same(e2, epoch_ids(b))
        assert.are_not.same(e1, epoch_ids(c))
        -- without a seed, tide.manual_seed fixes the order
        tide.manual_seed(5)
        local u = epoch_ids(D.DataLoader(ds, { batch_size = 8, shuffle = true }))
        tide.manual_seed(5)
        assert.are.same(u, epoch_ids(D.DataLoader(ds, { batch_size = 8, shuffle = true })))
    end)

    it("stops cleanly on break, close and collection, then starts a new epoch", function()
        local ds = counting_ds(40)
        local loader = D.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 3 })
        local twin = D.DataLoader(ds, { batch_size = 4, shuffle = true, seed = 3 })
        local n = 0
        for _ in loader:iter() do
            n = n + 1
            if n == 2 then break end
        end
        epoch_ids(twin) -- the twin's first epoch, in full
        -- the next epoch after a break is whole, and equals the twin's second
        assert.are.same(epoch_ids(twin), epoch_ids(loader))
        -- the __call form
        local m = 0
        for x, y in loader do
            m = m + 1
            assert.are.equal(x:size(0), y:size(0))
        end
        assert.are.equal(10, m)
        -- <close>
        do
            local l <close> = D.DataLoader(ds, { batch_size = 2 })
            local step = l:iter()
            assert.is_truthy(step())
        end
        -- a loader dropped mid-epoch is collected and its thread joined
        for _ = 1, 5 do
            local l = D.DataLoader(ds, { batch_size = 2 })
            local step = l:iter()
            step()
        end
        collectgarbage()
        collectgarbage()
        -- an iterator replaced by a newer epoch refuses to go on
        local step = loader:iter()
        loader:iter()
        assert.is_truthy(H.error_of(step):find("replaced"))
    end)

    it("accepts a Lua function transform after built-in ones", function()
        local ds = counting_ds(6)
        local loader = D.DataLoader(ds, {
            batch_size = 3,
            transform = { T.normalize(1, 2), function(x, y) return x * 10, y + 100 end },
        })
        local got, labels = {}, {}
        for x, y in loader:iter() do
            for _, v in ipairs(H.values(x)) do got[#got + 1] = v end
            for _, v in ipairs(y:totable()) do labels[#labels + 1] = v end
        end
        local want = {}
        for i = 0, 5 do for _ = 1, 4 do want[#want + 1] = (i - 1) / 2 * 10 end end
        H.assert_close(got, want, 1e-6, 1e-6)
        assert.are.same({ 100, 101, 102, 100, 101, 102 }, labels)
        local err = H.error_of(D.DataLoader, ds, { transform = { function() end, T.normalize(0, 1) } })
        assert.is_truthy(err:find("cannot follow"), err)
    end)

    it("rejects bad options", function()
        local ds = counting_ds(4)
        assert.is_truthy(H.error_of(D.DataLoader, ds, { batch_size = 0 }):find("'batch_size' must be at least 1"))
        assert.is_truthy(H.error_of(D.DataLoader, ds, { batchsize = 2 }):find(
            "unknown option 'batchsize'; known: batch_size, device, drop_last, pin_memory, sampler, seed, shuffle, "
            .. "transform", 1, true))
        assert.is_truthy(H.error_of(D.DataLoader, ds, { shuffle = 1 }):find("'shuffle' must be a boolean"))
        assert.is_truthy(H.error_of(D.DataLoader, {}, {}):find("expected a dataset"))
        assert.is_truthy(H.error_of(D.DataLoader, ds, { transform = 3 }):find("option 'transform'"))
        local s = D.WeightedSampler({ 1, 1, 1, 1 })
        assert.is_truthy(H.error_of(D.DataLoader, ds, { sampler = s, shuffle = true }):find("exclude"))
        -- a built-in transform on images that are not (N, C, H, W)
        local flat = D.TensorDataset(tide.zeros({ 4, 3 }), tide.zeros({ 4 }))
        assert.is_truthy(H.error_of(D.DataLoader, flat, { transform = T.random_hflip() }):find("needs images"))
        -- normalize with the wrong channel count fails in the thread, raised here
        local l = D.DataLoader(ds, { transform = T.normalize({ 0, 0 }, { 1, 1 }) })
        local err = H.error_of(function() for _ in l:iter() do end end)
        assert.is_truthy(err:find("normalize has 2 means and stds but the batch has 1 channels"), err)
        assert.is_truthy(H.error_of(T.normalize, { 0 }, { 0 }):find("std%[1%] is zero"))
        assert.is_truthy(H.error_of(T.random_crop, 28, { pad = 4 }):find("unknown option 'pad'"))
        assert.is_truthy(H.error_of(T.random_hflip, { p = 2 }):find("'p' must be in"))
    end)
end)

describe("tide.data.transforms", function()
    -- one 2-channel 3x3 image: channel c, row i, column j = c*100 + i*10 + j
    local function grid_ds(n)
        local vals = {}
        for _ = 1, n do
            local img = {}
            for c = 0, 1 do
                local ch = {}
                for i = 0, 2 do
                    local row = {}
                    for j = 0, 2 do row[#row + 1] = c * 100 + i * 10 + j end
                    ch[#ch + 1] = row
                end
                img[#img + 1] = ch
            end
            vals[#vals + 1] = img
        end
        return D.TensorDataset(tide.tensor(vals), tide.zeros({ n }, "int64"))
    end

    local function batch(ds, tf, opts)
        opts = opts or {}
        local l = D.DataLoader(ds, { batch_size = #ds, transform = tf, seed = opts.seed or 1 })
        local step = l:iter()
        local x = step()
        assert.is_nil(step())
        return x
    end

    it("normalize per channel", function()
        local x = batch(grid_ds(1), T.normalize({ 1, 100 }, { 2, 4 }))
        local want = {}
        for c = 0, 1 do
            for i = 0, 2 do
                for j = 0, 2 do
                    local v = c * 100 + i * 10 + j
                    want[#want + 1] = c == 0 and (v - 1) / 2 or (v - 100) / 4
                end
            end
        end
        H.assert_close(x, want, 1e-6, 1e-6)
    end)

    it("random_hflip: p = 1 flips every row, p = 0 none, p = 0.5 about half", function()
        local ds = grid_ds(1)
        local x = batch(ds, T.random_hflip({ p = 1 }))
        local want = {}
        for c = 0, 1 do for i = 0, 2 do for j = 2, 0, -1 do want[#want + 1] = c * 100 + i * 10 + j end end end
        assert.are.same(want, H.values(x))
        assert.are.same(H.values(ds.images), H.values(batch(ds, T.random_hflip({ p = 0 }))))
        local many = grid_ds(2000)
        local xb = batch(many, T.random_hflip(), { seed = 9 })
        local flipped = 0
        for b = 0, 1999 do
            if xb:get(b, 0, 0, 0) == 2 then flipped = flipped + 1 end
        end
        -- binomial(2000, 0.5): sd 22; a fixed seed makes this exact anyway
        assert.is_true(flipped > 900 and flipped < 1100, tostring(flipped))
        -- the same seed flips the same samples
        assert.are.same(H.values(xb), H.values(batch(many, T.random_hflip(), { seed = 9 })))
    end)

    it("random_crop with padding takes a window of the zero-padded image", function()
        local ds = grid_ds(200)
        local x = batch(ds, T.random_crop(3, { padding = 1 }), { seed = 4 })
        assert.are.same({ 200, 2, 3, 3 }, x:shape())
        local function padded(c, i, j)
            if i < 0 or i > 2 or j < 0 or j > 2 then return 0 end
            return c * 100 + i * 10 + j
        end
        local seen = {}
        for b = 0, 199 do
            local found
            for oy = -1, 1 do
                for ox = -1, 1 do
                    local ok = true
                    for c = 0, 1 do
                        for i = 0, 2 do
                            for j = 0, 2 do
                                if x:get(b, c, i, j) ~= padded(c, i + oy, j + ox) then ok = false end
                            end
                        end
                    end
                    if ok then found = oy * 3 + ox end
                end
            end
            assert.is_not_nil(found, "sample " .. b .. " is no window of the padded image")
            seen[found] = true
        end
        local kinds = 0
        for _ in pairs(seen) do kinds = kinds + 1 end
        assert.are.equal(9, kinds) -- all 9 offsets occur in 200 draws
        -- a 2x2 crop without padding, and composition with normalize
        local y = batch(grid_ds(1), { T.random_crop({ 2, 2 }), T.normalize(0, 10) })
        assert.are.same({ 1, 2, 2, 2 }, y:shape())
        local v = H.values(y)
        -- top-left of the window, in the first channel, divided by 10
        local oy, ox = math.floor(v[1]), math.floor((v[1] * 10) % 10 + 0.5)
        H.assert_close(v, { (oy * 10 + ox) / 10, (oy * 10 + ox + 1) / 10, ((oy + 1) * 10 + ox) / 10,
            ((oy + 1) * 10 + ox + 1) / 10, (100 + oy * 10 + ox) / 10, (100 + oy * 10 + ox + 1) / 10,
            (100 + (oy + 1) * 10 + ox) / 10, (100 + (oy + 1) * 10 + ox + 1) / 10 }, 1e-6, 1e-6)
        local err = H.error_of(batch, grid_ds(1), T.random_crop(6, { padding = 1 }))
        assert.is_truthy(err:find("random_crop of 6x6 does not fit a 3x3 image with padding 1"), err)
    end)

    it("the seed fixes crops and order whatever the timing", function()
        local ds = D.subset(D.fashion_mnist(), 2000)
        local tf = { T.random_crop(28, { padding = 4 }), T.random_hflip(), T.normalize({ 0.2860 }, { 0.3530 }) }
        local function sums(sleep)
            local l = D.DataLoader(ds, { batch_size = 100, shuffle = true, transform = tf, seed = 21 })
            local r = {}
            for x in l:iter() do
                if sleep then local t = tide.clock(); while tide.clock() - t < 0.002 do end end
                r[#r + 1] = x:sum():item()
            end
            return r
        end
        local a = sums(false)
        assert.are.equal(20, #a)
        assert.are.same(a, sums(true))
    end)
end)

describe("tide.data.imbalance", function()
    it("keeps fraction of the images in the majority class, the rest shared evenly", function()
        local ds = D.fashion_mnist()
        local sub = D.imbalance(ds, { majority = 0, fraction = 0.9, seed = 1 })
        -- all 6000 of class 0, then round(6000 * 0.1 / 0.9) = 667 others:
        -- 74 each, one more for class 1
        assert.are.equal(6667, #sub)
        local counts = {}
        for _, v in ipairs(sub.labels:totable()) do counts[v] = (counts[v] or 0) + 1 end
        assert.are.equal(6000, counts[0])
        assert.are.equal(75, counts[1])
        for c = 2, 9 do assert.are.equal(74, counts[c]) end
        assert.is_true(math.abs(counts[0] / #sub - 0.9) < 1e-3)
        assert.are.same(ds.classes, sub.classes)
        local small = D.imbalance(ds, { majority = 3, fraction = 0.5, size = 1000, seed = 2 })
        counts = {}
        for _, v in ipairs(small.labels:totable()) do counts[v] = (counts[v] or 0) + 1 end
        assert.are.equal(500, counts[3])
        assert.are.equal(56, counts[0])
        for _, c in ipairs({ 1, 2, 4, 5, 6, 7, 8, 9 }) do assert.are.equal(c <= 5 and 56 or 55, counts[c]) end
        -- the same seed keeps the same images
        assert.are.same(H.values(small.images:narrow(0, 0, 3)),
            H.values(D.imbalance(ds, { majority = 3, fraction = 0.5, size = 1000, seed = 2 }).images:narrow(0, 0, 3)))
    end)

    it("scales down where a minority class runs short, and checks its options", function()
        -- class 0: 100 images, class 1: 10, class 2: 30
        local labels = {}
        for i = 1, 140 do labels[i] = i <= 100 and 0 or (i <= 110 and 1 or 2) end
        local ds = D.TensorDataset(tide.zeros({ 140, 1 }), tide.tensor(labels, "int64"))
        local sub = D.imbalance(ds, { fraction = 0.8 })
        local counts = {}
        for _, v in ipairs(sub.labels:totable()) do counts[v] = (counts[v] or 0) + 1 end
        -- 100 majority would need 25 others (13 + 12) but class 1 has 10;
        -- the largest majority k whose round(k / 4) others give class 1 at
        -- most 10 is 81 (20 others, 10 each)
        assert.are.same({ [0] = 81, [1] = 10, [2] = 10 }, counts)
        assert.is_truthy(H.error_of(D.imbalance, ds, { size = 200 })
            :find("needs 180 images of class 0, the data set has 100"))
        assert.is_truthy(H.error_of(D.imbalance, ds, { majority = 5 }):find("majority class 5 is outside"))
        assert.is_truthy(H.error_of(D.imbalance, ds, { fraction = 1 }):find("'fraction' must be in %(0, 1%)"))
        assert.is_truthy(H.error_of(D.imbalance, ds, { frac = 0.5 }):find("unknown option 'frac'"))
    end)
end)

describe("tide.data.WeightedSampler", function()
    it("draws in proportion to the weights", function()
        local s = D.WeightedSampler({ 1, 2, 3, 4, 0 }, { num_samples = 100000, seed = 7 })
        assert.are.equal(100000, #s)
        local idx = s:indices()
        assert.are.equal("int64", idx:dtype())
        local counts = { [0] = 0, 0, 0, 0, 0 }
        for _, v in ipairs(idx:totable()) do counts[v] = counts[v] + 1 end
        -- sd of each frequency is at most 0.0016: 0.01 is six of them
        for k = 0, 3 do assert.is_true(math.abs(counts[k] / 100000 - (k + 1) / 10) < 0.01, k .. ": " .. counts[k]) end
        assert.are.equal(0, counts[4])
        assert.are_not.same(idx:totable(), s:indices():totable()) -- a new draw each epoch
        -- the same seed, the same draws
        local s2 = D.WeightedSampler({ 1, 2, 3, 4, 0 }, { num_samples = 100000, seed = 7 })
        assert.are.same(idx:narrow(0, 0, 50):totable(), s2:indices():narrow(0, 0, 50):totable())
    end)

    it("without replacement gives distinct indices, never a zero weight", function()
        local s = D.WeightedSampler(tide.tensor({ 5, 0, 1, 1, 3 }), { replacement = false, num_samples = 4, seed = 1 })
        local idx = s:indices():totable()
        assert.are.same({ 0, 2, 3, 4 }, sorted_copy(idx))
        -- the heaviest comes first most often
        local first = 0
        for _ = 1, 400 do if s:indices():get(0) == 0 then first = first + 1 end end
        assert.is_true(first > 140 and first < 260, tostring(first)) -- p = 0.5
        assert.is_truthy(H.error_of(D.WeightedSampler, { 1, 0 }, { replacement = false, num_samples = 2 })
            :find("cannot draw 2 samples without replacement from 1 non%-zero weights"))
        assert.is_truthy(H.error_of(D.WeightedSampler, { 1, -1 }):find("weight 1 is %-1"))
        assert.is_truthy(H.error_of(D.WeightedSampler, { 0, 0 }):find("sum to zero"))
        assert.is_truthy(H.error_of(D.WeightedSampler, {}):find("non%-empty"))
    end)

    it("oversamples through a DataLoader", function()
        local labels = {}
        for i = 1, 100 do labels[i] = i <= 90 and 0 or 1 end
        local ds = D.TensorDataset(tide.zeros({ 100, 1 }), tide.tensor(labels, "int64"))
        local w = {}
        for i = 1, 100 do w[i] = i <= 90 and 1 / 90 or 1 / 10 end
        local loader = D.DataLoader(ds,
            { batch_size = 64, sampler = D.WeightedSampler(w, { num_samples = 2000, seed = 3 }) })
        assert.are.equal(32, #loader)
        local ones, n = 0, 0
        for _, y in loader:iter() do
            for _, v in ipairs(y:totable()) do
                ones = ones + v
                n = n + 1
            end
        end
        assert.are.equal(2000, n)
        assert.is_true(math.abs(ones / n - 0.5) < 0.05, tostring(ones / n)) -- sd 0.011
    end)
end)

describe("tide.data.DataLoader epochs and state", function()
    local function ys(loader)
        local out = {}
        for _, y in loader:iter() do
            for _, v in ipairs(y:totable()) do out[#out + 1] = v end
        end
        return out
    end

    it("an epoch's order depends on the seed and set_epoch's number alone", function()
        local ds = counting_ds(12)
        local a = D.DataLoader(ds, { batch_size = 5, shuffle = true, seed = 8 })
        local orders = {}
        for e = 0, 2 do orders[e] = ys(a) end
        assert.are_not.same(orders[0], orders[1])
        local b = D.DataLoader(ds, { batch_size = 5, shuffle = true, seed = 8 })
        b:set_epoch(2)
        assert.are.same(orders[2], ys(b))
        -- and the epoch after it follows on
        a:set_epoch(1)
        assert.are.same(orders[1], ys(a))
        assert.are.same(orders[2], ys(a))
    end)

    it("state_dict mid-epoch and load_state_dict resume after the batches taken", function()
        local ds = counting_ds(12)
        local s = D.WeightedSampler({ 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4 }, { num_samples = 12, seed = 5 })
        local a = D.DataLoader(ds, { batch_size = 5, sampler = s })
        ys(a)
        local step = a:iter()
        local _, y1 = step()
        local sd = a:state_dict()
        assert.are.same({ epoch = 1, batch = 1, seed = sd.seed, sampler = { seed = 5, epoch = 1 } }, sd)
        local rest = {}
        for _, y in step do rest[#rest + 1] = y:totable() end
        -- the same weights (the sampler's make-up, not its state), another seed
        local b = D.DataLoader(ds, { batch_size = 5, sampler = D.WeightedSampler({ 1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4 },
                                                                                  { num_samples = 12, seed = 1 }) })
        b:load_state_dict(sd)
        local rest2 = {}
        for _, y in b:iter() do rest2[#rest2 + 1] = y:totable() end
        assert.are.same(rest, rest2)
        assert.are.equal(5, y1:numel())
        -- between epochs: the next one, from its start
        assert.are.same({ epoch = 2, batch = 0, seed = sd.seed, sampler = { seed = 5, epoch = 2 } }, b:state_dict())
        local err = H.error_of(b.load_state_dict, b, { seed = 1 })
        assert.truthy(err:find("DataLoader:load_state_dict: state_dict must be a table", 1, true), err)
    end)
end)
