-- Hostile files for every format tide reads, written at test time:
--
--   tide tests/hostile/generate.lua DIR    writes each case's files under DIR/<case name>/
--   dofile("tests/hostile/generate.lua")   the list of cases, writing nothing
--
-- A case is {name, kind, file, write = fn(dir), load = fn(tide, dir),
-- expect = {fragment, ...}} where file (relative to the case's folder) is
-- the file the error must name and each fragment a part of the problem the
-- error must state (plain text, not patterns). A case with `check`
-- instead of `expect` is a control: it must load, and check(result, ...)
-- says whether what it loaded is right (true, or false and why). Options:
-- absent (fragments the error must not hold), max_growth_kb (the most the
-- peak RSS may grow while it loads), max_seconds, model (the case's load
-- takes (tide, dir, model, optimizer) from G.checkpoint_objects and must
-- leave them as they were).
--
-- The files are written from Lua and the shell (gzip, head, tar); nothing
-- binary is committed. The large streams (gzip bombs, an oversize CIFAR
-- batch) are piped from /dev/zero so that no process holds them whole.
local G = {}
local cases = {}
G.cases = cases
local raw = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or ".") .. "/../lib/rawfile.lua")

---------------------------------------------------------------- helpers

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function sh(cmd)
    local ok = os.execute(cmd)
    if not ok then error("generate: command failed: " .. cmd, 2) end
end

local write, read = raw.write, raw.read

-- path gzipped from bytes (gzip -n: no name or time, the same bytes each run)
local function gz(path, bytes)
    write(path .. ".raw", bytes)
    sh("gzip -n -c " .. q(path .. ".raw") .. " > " .. q(path))
    os.remove(path .. ".raw")
end

-- bytes, then n zero bytes, gzipped into path as one stream
local function gz_then_zeros(path, bytes, n)
    write(path .. ".raw", bytes)
    sh(string.format("{ cat %s; head -c %d /dev/zero; } | gzip -n > %s", q(path .. ".raw"), n, q(path)))
    os.remove(path .. ".raw")
end

local function be32(n) return string.pack(">I4", n) end
local le64 = raw.le64

local BIG = 0xffffffff -- the largest IDX dim

-- an IDX file of unsigned bytes with the given dims, then data
local function idx(dims, data)
    local s = "\0\0\8" .. string.char(#dims)
    for _, d in ipairs(dims) do s = s .. be32(d) end
    return s .. (data or "")
end

local function case(c)
    assert(c.name and c.kind and c.file and c.write and c.load, c.name)
    assert((c.expect == nil) ~= (c.check == nil), c.name .. ": expect or check, not both")
    for _, other in ipairs(cases) do assert(other.name ~= c.name, "two cases named " .. c.name) end
    cases[#cases + 1] = c
end

-- truncations of one format: add(name, bytes, expect, opts) for each cut
-- {name, keep, expect, opts}, bytes being full's first keep bytes
local function truncations(add, full, cuts)
    for _, cut in ipairs(cuts) do add(cut[1], full:sub(1, cut[2]), cut[3], cut[4]) end
end

-- values of a uint8 or int64 tensor, flat
local function flat(t)
    local out, v = {}, t:contiguous():view(-1)
    for i = 0, v:numel() - 1 do out[#out + 1] = math.tointeger(v:get(i)) end
    return out
end

local function same_list(got, want, what)
    if #got ~= #want then return false, string.format("%s: %d values, want %d", what, #got, #want) end
    for i = 1, #want do
        if got[i] ~= want[i] then
            return false, string.format("%s[%d] is %s, want %s", what, i, tostring(got[i]), tostring(want[i]))
        end
    end
    return true
end

local function bytes_of(s)
    local out = {}
    for i = 1, #s do out[i] = s:byte(i) end
    return out
end

---------------------------------------------------------------- IDX (MNIST, Fashion-MNIST)

-- An MNIST folder: the train images file (plain, or gzipped when gzipped),
-- and a labels file for n samples (labels 0, 1, ...), unless `labels`
-- gives its bytes. The images' bytes are what the header promises.
local IMAGES, LABELS = "train-images-idx3-ubyte", "train-labels-idx1-ubyte"

local function labels_for(n)
    local s = {}
    for i = 1, n do s[i] = string.char((i - 1) % 10) end
    return idx({n}, table.concat(s))
end

local function mnist_load(tide, dir) return tide.data.mnist({dir = dir}) end

-- an images file case: `images` (bytes), written plain or gzipped
local function idx_case(name, images, gzipped, expect, opts)
    opts = opts or {}
    local file = IMAGES .. (gzipped and ".gz" or "")
    local c = {
        name = name, kind = "idx", file = file, expect = expect,
        write = function(dir)
            if gzipped then gz(dir .. "/" .. file, images) else write(dir .. "/" .. file, images) end
            write(dir .. "/" .. LABELS, labels_for(opts.samples or 1))
        end,
        load = mnist_load,
    }
    for k, v in pairs(opts) do if k ~= "samples" then c[k] = v end end
    case(c)
end

-- controls: two 2x3 images and their labels load as written, plain
-- (mnist), gzipped (fashion_mnist's reader, the same C) and as the test split
local PIX = "\0\1\2\3\4\5\250\251\252\253\254\255"
local function idx_control(name, gzipped, split)
    local pre = split == "test" and "t10k" or "train"
    local ext = gzipped and ".gz" or ""
    case {
        name = name, kind = "idx", file = pre .. "-images-idx3-ubyte" .. ext,
        write = function(dir)
            local put = gzipped and gz or write
            put(dir .. "/" .. pre .. "-images-idx3-ubyte" .. ext, idx({2, 2, 3}, PIX))
            put(dir .. "/" .. pre .. "-labels-idx1-ubyte" .. ext, idx({2}, "\7\2"))
        end,
        load = function(tide, dir)
            if gzipped then return tide.data.fashion_mnist({dir = dir, split = split}) end
            return tide.data.mnist({dir = dir, split = split})
        end,
        check = function(ds)
            if #ds ~= 2 then return false, #ds .. " samples" end
            local shape = table.concat(ds.images:shape(), ",")
            if shape ~= "2,1,2,3" then return false, "images of shape " .. shape end
            local ok, why = same_list(flat(ds.images), bytes_of(PIX), "pixels")
            if not ok then return ok, why end
            return same_list(flat(ds.labels), {7, 2}, "labels")
        end,
    }
end
idx_control("idx.control.plain", false, "train")
idx_control("idx.control.gzip", true, "train")
idx_control("idx.control.test_split", true, "test")

case {
    name = "idx.control.empty_set", kind = "idx", file = IMAGES .. ".gz",
    write = function(dir)
        gz(dir .. "/" .. IMAGES .. ".gz", idx({0, 28, 28}))
        write(dir .. "/" .. LABELS, idx({0}))
    end,
    load = mnist_load,
    check = function(ds) return #ds == 0, #ds .. " samples" end,
}

-- a zero dim beside large dims: an empty tensor of that shape, which
-- costs nothing
case {
    name = "idx.control.zero_beside_2^40", kind = "idx", file = IMAGES,
    write = function(dir)
        write(dir .. "/" .. IMAGES, idx({0, 1 << 20, 1 << 20}))
        write(dir .. "/" .. LABELS, idx({0}))
    end,
    load = mnist_load,
    check = function(ds)
        local s = ds.images:shape()
        return #ds == 0 and s[3] == 1 << 20 and s[4] == 1 << 20, "shape " .. table.concat(s, ",")
    end,
    max_growth_kb = 4 * 1024,
}

-- bytes after the last gzip member that do not start another member are
-- ignored, as gzip -d does; they are never taken as data
case {
    name = "idx.control.gzip_trailing_garbage", kind = "idx", file = IMAGES .. ".gz",
    write = function(dir)
        gz(dir .. "/" .. IMAGES .. ".gz", idx({2, 2, 3}, PIX))
        local f = assert(io.open(dir .. "/" .. IMAGES .. ".gz", "ab"))
        f:write("TRAILING GARBAGE, NOT GZIP")
        f:close()
        write(dir .. "/" .. LABELS, idx({2}, "\7\2"))
    end,
    load = mnist_load,
    check = function(ds)
        if #ds ~= 2 then return false, #ds .. " samples" end
        return same_list(flat(ds.images), bytes_of(PIX), "pixels")
    end,
}

-- gzip bombs: a header promising 8 bytes, then far more. The reader must
-- stop one byte past the promise, quickly and without growing.
local BOMB_HEADER = idx({1, 2, 4})
case {
    -- gzip members concatenate: one 64 MiB member of zeros, repeated 32
    -- times, is 2 GiB of zeros in about 2 MB
    name = "idx.bomb.2GiB_in_members", kind = "idx", file = IMAGES .. ".gz",
    expect = {"more data than the 8 bytes the header promises"},
    write = function(dir)
        local path = dir .. "/" .. IMAGES .. ".gz"
        gz(path .. ".head", BOMB_HEADER)
        sh("head -c " .. (64 << 20) .. " /dev/zero | gzip -n > " .. q(path .. ".zeros"))
        local zeros = read(path .. ".zeros")
        assert(#zeros < 128 << 10, "64 MiB of zeros gzip to " .. #zeros .. " bytes")
        write(path, read(path .. ".head") .. string.rep(zeros, 32))
        os.remove(path .. ".head")
        os.remove(path .. ".zeros")
        write(dir .. "/" .. LABELS, labels_for(1))
    end,
    load = mnist_load,
    max_growth_kb = 16 * 1024, max_seconds = 5,
}
case {
    name = "idx.bomb.64MiB_one_stream", kind = "idx", file = IMAGES .. ".gz",
    expect = {"more data than the 8 bytes the header promises"},
    write = function(dir)
        gz_then_zeros(dir .. "/" .. IMAGES .. ".gz", BOMB_HEADER, 64 << 20)
        write(dir .. "/" .. LABELS, labels_for(1))
    end,
    load = mnist_load,
    max_growth_kb = 16 * 1024, max_seconds = 5,
}
case {
    -- the labels file is the bomb: its header promises 1 byte
    name = "idx.bomb.labels", kind = "idx", file = LABELS .. ".gz",
    expect = {"more data than the 1 bytes the header promises"},
    write = function(dir)
        write(dir .. "/" .. IMAGES, idx({1, 1, 1}, "\0"))
        gz_then_zeros(dir .. "/" .. LABELS .. ".gz", idx({1}), 64 << 20)
    end,
    load = mnist_load,
    max_growth_kb = 16 * 1024, max_seconds = 5,
}

-- data past the promise, plain: its size is known without reading it
idx_case("idx.plain.runs_on", idx({1, 2, 2}, string.rep("\1", 100)), false,
    {"96 bytes after the 4 bytes of data the header promises"})

-- truncation, plain, at several points
truncations(function(name, bytes, expect, opts) idx_case(name, bytes, false, expect, opts) end,
    idx({2, 2, 2}, "\1\2\3\4\5\6\7\8"), {
    {"idx.plain.truncated_0", 0, {"truncated IDX file (0 bytes, no header)"}},
    {"idx.plain.truncated_3", 3, {"truncated IDX file (3 bytes, no header)"}},
    {"idx.plain.truncated_10", 10, {"truncated IDX header (10 bytes, need 16)"}},
    {"idx.plain.truncated_data", 21, {"truncated: the header promises 8 bytes of data, the file has 5"},
        {samples = 2}},
})
idx_case("idx.plain.promises_47MB", idx({60000, 28, 28}, string.rep("\0", 10)), false,
    {"truncated: the header promises 47040000 bytes of data, the file has 10"})

-- truncation, gzipped: inside the gzip header, mid-stream, without the
-- trailer (CRC and length)
local function gz_cut(name, keep, expect)
    case {
        name = name, kind = "idx", file = IMAGES .. ".gz", expect = expect,
        write = function(dir)
            local path = dir .. "/" .. IMAGES .. ".gz"
            gz(path, idx({4, 28, 28}, string.rep("\7\1\200", 1000)))
            local data = read(path)
            write(path, data:sub(1, keep(#data)))
            write(dir .. "/" .. LABELS, labels_for(4))
        end,
        load = mnist_load,
    }
end
gz_cut("idx.gzip.truncated_in_gzip_header", function() return 6 end, {"damaged or truncated gzip data"})
gz_cut("idx.gzip.truncated_half", function(n) return n // 2 end, {"damaged or truncated gzip data"})
gz_cut("idx.gzip.truncated_no_trailer", function(n) return n - 8 end, {"damaged or truncated gzip data"})
gz_cut("idx.gzip.truncated_last_byte", function(n) return n - 1 end, {"damaged or truncated gzip data"})

-- a second member that is damaged: after the data, zlib reads on into it
case {
    name = "idx.gzip.garbage_member", kind = "idx", file = IMAGES .. ".gz",
    expect = {"damaged or truncated gzip data"},
    write = function(dir)
        local path = dir .. "/" .. IMAGES .. ".gz"
        gz(path, idx({1, 2, 2}, "\1\2\3\4"))
        write(path, read(path) .. "\31\139\8\0\0\0\0\0\0\3" .. string.rep("\255", 64))
        write(dir .. "/" .. LABELS, labels_for(1))
    end,
    load = mnist_load,
}

idx_case("idx.gzip.promises_47MB", idx({60000, 28, 28}, string.rep("\0", 10)), true,
    {"truncated: the header promises 47040000 bytes of data, more than a ", "-byte file can hold"})

-- absurd dims: 2^31, 2^62 bytes and past 2^63, plain and gzipped
idx_case("idx.plain.dims_2^31", idx({0x80000000, 1, 1}), false,
    {"truncated: the header promises 2147483648 bytes of data, the file has 0"})
idx_case("idx.gzip.dims_2^31", idx({0x80000000, 1, 1}), true,
    {"truncated: the header promises 2147483648 bytes of data, more than a "})
idx_case("idx.plain.dims_2^62", idx({0x80000000, 0x80000000, 1}), false,
    {"truncated: the header promises 4611686018427387904 bytes of data, the file has 0"})
idx_case("idx.gzip.dims_2^62", idx({0x80000000, 0x80000000, 1}), true,
    {"truncated: the header promises 4611686018427387904 bytes of data, more than a "})
idx_case("idx.plain.dims_2^96", idx({BIG, BIG, BIG}, "\0\0\0\0"), false,
    {"truncated: the header promises more than 2^63 bytes of data (dims 4294967295 x 4294967295 x 4294967295)"})
idx_case("idx.gzip.dims_2^96", idx({BIG, BIG, BIG}, "\0\0\0\0"), true,
    {"promises more than 2^63 bytes of data"})
idx_case("idx.labels_dims_2^32-1", nil, false, {"truncated: the header promises 4294967295 bytes of data"}, {
    file = LABELS,
    write = function(dir)
        write(dir .. "/" .. IMAGES, idx({1, 1, 1}, "\0"))
        write(dir .. "/" .. LABELS, idx({BIG}, "\1"))
    end,
})

-- a zero dim beside dims whose nonzero product passes 2^63: the data is
-- empty, but no tensor of that shape can be indexed
for _, gzipped in ipairs({false, true}) do
    local kind = gzipped and "gzip" or "plain"
    idx_case("idx." .. kind .. ".zero_first_beside_2^64", idx({0, BIG, BIG}), gzipped,
        {"the nonzero dims multiply past 2^63, too large a shape even with no data"},
        {absent = {"promises 0 bytes"}})
    idx_case("idx." .. kind .. ".zero_last_beside_2^64", idx({BIG, BIG, 0}), gzipped,
        {"the nonzero dims multiply past 2^63"}, {absent = {"promises 0 bytes"}})
end

-- beside dims past 2^59 (tide's bound on any shape), even empty
idx_case("idx.plain.zero_beside_2^62", idx({0, 0x80000000, 0x80000000}), false,
    {"shape too large: its non-zero sizes multiply past 2^59"})
idx_case("idx.gzip.zero_beside_2^62", idx({0x80000000, 0, 0x80000000}), true,
    {"shape too large: its non-zero sizes multiply past 2^59"})

-- not IDX, or not what the reader needs
idx_case("idx.bad_magic", "\1\2\8\3" .. be32(1) .. be32(1) .. be32(1) .. "\0", false,
    {"bad magic 0x01020803 (not an IDX file)"})
idx_case("idx.float_data", "\0\0\13\3" .. be32(1) .. be32(1) .. be32(1) .. "\0\0\0\0", false,
    {"unsupported IDX data type 0x0d"})
idx_case("idx.zero_dims", "\0\0\8\0", false, {"IDX file with 0 dims (expected 1 to 3)"})
idx_case("idx.four_dims", idx({1, 1, 1, 1}, "\0"), false, {"IDX file with 4 dims (expected 1 to 3)"})
idx_case("idx.images_one_dim", idx({4}, "\0\0\0\0"), true, {"images file with 1 dims (expected 3"})
idx_case("idx.labels_count", idx({3, 1, 1}, "\0\0\0"), false, {"holds 2 labels but", "holds 3 images"},
    {samples = 2, file = LABELS})
case {
    name = "idx.label_10", kind = "idx", file = LABELS,
    expect = {"label 10 of sample 1 is outside [0, 10)"},
    write = function(dir)
        write(dir .. "/" .. IMAGES, idx({2, 1, 1}, "\0\0"))
        write(dir .. "/" .. LABELS, idx({2}, "\3\10"))
    end,
    load = mnist_load,
}
case {
    name = "idx.missing_labels", kind = "idx", file = LABELS,
    expect = {"not found (expected at "},
    write = function(dir) write(dir .. "/" .. IMAGES, idx({1, 1, 1}, "\0")) end,
    load = mnist_load,
}

-- not regular files: a link to /dev/zero (an endless stream), a folder
for _, gzipped in ipairs({false, true}) do
    local file = IMAGES .. (gzipped and ".gz" or "")
    case {
        name = "idx.dev_zero" .. (gzipped and ".gz" or ""), kind = "idx", file = file,
        expect = {"cannot open (not a regular file)"},
        write = function(dir)
            sh("ln -s /dev/zero " .. q(dir .. "/" .. file))
            write(dir .. "/" .. LABELS, labels_for(1))
        end,
        load = mnist_load,
        max_growth_kb = 4 * 1024,
    }
end
case {
    name = "idx.folder", kind = "idx", file = IMAGES,
    expect = {"cannot open (not a regular file)"},
    write = function(dir)
        sh("mkdir -p " .. q(dir .. "/" .. IMAGES))
        write(dir .. "/" .. LABELS, labels_for(1))
    end,
    load = mnist_load,
}

---------------------------------------------------------------- CIFAR-10 (binary version)

local function record(label, fill) return string.char(label) .. string.rep(fill or "\9", 3072) end
local function cifar_load(tide, dir) return tide.data.cifar10({dir = dir, split = "test"}) end

local function cifar_case(name, bytes, expect, opts)
    local c = {
        name = name, kind = "cifar", file = "test_batch.bin", expect = expect,
        write = function(dir) write(dir .. "/test_batch.bin", bytes) end,
        load = cifar_load,
    }
    for k, v in pairs(opts or {}) do c[k] = v end
    case(c)
end

case {
    name = "cifar.control.test", kind = "cifar", file = "test_batch.bin",
    write = function(dir) write(dir .. "/test_batch.bin", record(3, "\1") .. record(9, "\254")) end,
    load = cifar_load,
    check = function(ds)
        if #ds ~= 2 then return false, #ds .. " samples" end
        local ok, why = same_list(flat(ds.labels), {3, 9}, "labels")
        if not ok then return ok, why end
        local im = ds.images
        return im:select(0, 0):sum():item() == 3072 and im:select(0, 1):min():item() == 254, "pixels"
    end,
}
case {
    name = "cifar.control.train", kind = "cifar", file = "data_batch_1.bin",
    write = function(dir)
        for i = 1, 5 do write(dir .. "/data_batch_" .. i .. ".bin", record(i)) end
    end,
    load = function(tide, dir) return tide.data.cifar10({dir = dir}) end,
    check = function(ds) return same_list(flat(ds.labels), {1, 2, 3, 4, 5}, "labels") end,
}

cifar_case("cifar.not_whole_records", record(1) .. record(2) .. "\1\2\3\4\5",
    {"truncated: 6151 bytes is not a whole number of 3073-byte records (5 left over)"})
cifar_case("cifar.one_byte_short", record(1):sub(1, -2), {"3072 bytes is not a whole number of 3073-byte records"})
cifar_case("cifar.empty", "", {"empty file (expected 3073-byte records)"})
cifar_case("cifar.label_10", record(1) .. record(10), {"label 10 of record 1 is outside [0, 10)"})
case {
    -- gzip is not unpacked: the batches are plain files
    name = "cifar.gzipped_batch", kind = "cifar", file = "test_batch.bin",
    expect = {"not a whole number of 3073-byte records"},
    write = function(dir) gz(dir .. "/test_batch.bin", record(1) .. record(2)) end,
    load = cifar_load,
}
-- longer than the largest real batch: the reader stops one byte past
-- 10000 records
for _, size in ipairs({{"cifar.10001_records", 10001 * 3073}, {"cifar.10000_records_and_a_byte", 10000 * 3073 + 1}}) do
    local name, n = size[1], size[2]
    case {
        name = name, kind = "cifar", file = "test_batch.bin",
        expect = {"larger than a CIFAR-10 batch (at most 10000 records of 3073 bytes"},
        write = function(dir) sh("head -c " .. n .. " /dev/zero > " .. q(dir .. "/test_batch.bin")) end,
        load = cifar_load,
        max_growth_kb = 64 * 1024,
    }
end
case {
    name = "cifar.missing_batch_3", kind = "cifar", file = "data_batch_3.bin",
    expect = {"not found (CIFAR-10's binary version is expected under"},
    write = function(dir)
        for _, i in ipairs({1, 2, 4, 5}) do write(dir .. "/data_batch_" .. i .. ".bin", record(i)) end
    end,
    load = function(tide, dir) return tide.data.cifar10({dir = dir}) end,
}
-- the download as it comes (cifar-10-binary.tar.gz), and its folder's
-- parent: the reader wants the unpacked cifar-10-batches-bin folder and
-- says so
case {
    name = "cifar.layout.tar_gz", kind = "cifar", file = "test_batch.bin",
    expect = {"not found", "cifar-10-binary.tar.gz", "cifar-10-batches-bin folder as dir"},
    write = function(dir)
        sh("mkdir -p " .. q(dir .. "/pack/cifar-10-batches-bin"))
        write(dir .. "/pack/cifar-10-batches-bin/test_batch.bin", record(1))
        sh("tar -czf " .. q(dir .. "/cifar-10-binary.tar.gz") .. " -C " .. q(dir .. "/pack") .. " cifar-10-batches-bin")
        sh("rm -rf " .. q(dir .. "/pack"))
    end,
    load = cifar_load,
}
case {
    name = "cifar.layout.parent_folder", kind = "cifar", file = "test_batch.bin",
    expect = {"not found", "cifar-10-batches-bin folder as dir"},
    write = function(dir)
        sh("mkdir -p " .. q(dir .. "/cifar-10-batches-bin"))
        write(dir .. "/cifar-10-batches-bin/test_batch.bin", record(1))
    end,
    load = cifar_load,
}
case {
    name = "cifar.dev_zero", kind = "cifar", file = "test_batch.bin",
    expect = {"cannot open (not a regular file)"},
    write = function(dir) sh("ln -s /dev/zero " .. q(dir .. "/test_batch.bin")) end,
    load = cifar_load,
    max_growth_kb = 4 * 1024,
}
case {
    name = "cifar.fifo", kind = "cifar", file = "test_batch.bin",
    expect = {"cannot open (not a regular file)"},
    write = function(dir) sh("mkfifo " .. q(dir .. "/test_batch.bin")) end,
    load = cifar_load,
}

---------------------------------------------------------------- safetensors (tide.load)

local ST = "file.safetensors"
local function st_load(tide, dir) return tide.load(dir .. "/" .. ST) end

-- a safetensors file: header text (as given, not re-encoded) and data
local st_bytes = raw.safetensors

local function st_case(name, bytes, expect, opts)
    local c = {
        name = name, kind = "safetensors", file = ST, expect = expect,
        write = function(dir) write(dir .. "/" .. ST, bytes) end,
        load = st_load,
    }
    for k, v in pairs(opts or {}) do c[k] = v end
    case(c)
end

-- one F32 entry "x" of the given shape and offsets over `data` bytes
local function st_one(dtype, shape, offsets, data)
    return st_bytes('{"x":' .. raw.st_entry(dtype, shape, offsets) .. "}", data)
end

-- the control: every dtype tide reads, an empty tensor, metadata, and the
-- header padded with spaces as writers do
local CONTROL_HEADER = '{"__metadata__":{"note":"caf\195\169"},'
    .. '"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
    .. '"b":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},'
    .. '"c":{"dtype":"I64","shape":[1,1],"data_offsets":[16,24]},'
    .. '"d":{"dtype":"U8","shape":[3],"data_offsets":[24,27]},'
    .. '"e":{"dtype":"F32","shape":[0,5],"data_offsets":[27,27]}}     '
local CONTROL_DATA = string.pack("<ff", 1.5, -2) .. string.pack("<d", math.pi) .. string.pack("<i8", -7) .. "\1\2\255"
local CONTROL = st_bytes(CONTROL_HEADER, CONTROL_DATA)
case {
    name = "st.control", kind = "safetensors", file = ST,
    write = function(dir) write(dir .. "/" .. ST, CONTROL) end,
    load = st_load,
    check = function(t, meta)
        if meta.note ~= "caf\195\169" then return false, "metadata note " .. tostring(meta.note) end
        local ok, why = same_list({t.a:get(0), t.a:get(1), t.b:get(0), t.c:get(0, 0)}, {1.5, -2, math.pi, -7}, "values")
        if not ok then return ok, why end
        ok, why = same_list(flat(t.d), {1, 2, 255}, "d")
        if not ok then return ok, why end
        return t.e:numel() == 0 and t.e:size(1) == 5 and t.c:dtype() == "int64", "e and c"
    end,
}
-- a zero dim beside a large one: an empty tensor, no data
case {
    name = "st.control.zero_beside_2^40", kind = "safetensors", file = ST,
    write = function(dir) write(dir .. "/" .. ST, st_one('"F32"', "[0,1099511627776]", "[0,0]")) end,
    load = st_load,
    check = function(t) return t.x:numel() == 0 and t.x:size(1) == 1 << 40, "shape" end,
    max_growth_kb = 4 * 1024,
}

-- the 2-byte floats (docs/precision.md): BF16 1.5, -2 and the largest
-- finite; F16 65504, 2^-24 (the least subnormal) and -0
case {
    name = "st.control.lowp", kind = "safetensors", file = ST,
    write = function(dir)
        write(dir .. "/" .. ST, st_bytes('{"b":{"dtype":"BF16","shape":[3],"data_offsets":[0,6]},'
            .. '"h":{"dtype":"F16","shape":[3],"data_offsets":[6,12]}}    ',
            string.pack("<I2I2I2I2I2I2", 0x3FC0, 0xC000, 0x7F7F, 0x7BFF, 0x0001, 0x8000)))
    end,
    load = st_load,
    check = function(t)
        if t.b:dtype() ~= "bfloat16" or t.h:dtype() ~= "float16" then return false, "dtypes" end
        local b, h = t.b:totable(), t.h:totable()
        local ok, why = same_list({b[1], b[2], b[3], h[1], h[2]}, {1.5, -2, 0x1.fep127, 65504, 2 ^ -24}, "values")
        if not ok then return ok, why end
        return h[3] == 0 and 1 / h[3] < 0, "-0"
    end,
}

-- length field and truncation
st_case("st.empty_file", "", {"the file is too short (0 bytes) to hold a safetensors header"})
st_case("st.seven_bytes", "\1\0\0\0\0\0\0", {"the file is too short (7 bytes)"})
st_case("st.header_past_eof", le64(1000) .. "{}", {"header length 1000 runs past the end of the file (10 bytes"})
st_case("st.header_2^63", le64(math.mininteger) .. "{}",
    {"header length 9223372036854775808 is over the limit of 100000000 bytes"})
st_case("st.header_2^64-1", le64(-1) .. "{}", {"header length 18446744073709551615 is over the limit"})
st_case("st.header_limit+1", le64(100000001) .. "{}", {"header length 100000001 is over the limit"})
local PAST_DATA = {"run past the end of the data (", "is the file truncated?"}
truncations(st_case, CONTROL, {
    {"st.truncated.at_8", 8, {"runs past the end of the file"}},
    {"st.truncated.mid_header", 8 + #CONTROL_HEADER // 2, {"runs past the end of the file"}},
    {"st.truncated.mid_data", #CONTROL - 10, PAST_DATA},
    {"st.truncated.last_byte", #CONTROL - 1, PAST_DATA},
})

-- the JSON
st_case("st.json.empty", st_bytes(""), {"bad JSON in the header"})
st_case("st.json.unclosed", st_bytes("{"), {"bad JSON in the header"})
st_case("st.json.trailing", st_bytes("{} x"), {"bad JSON in the header"})
st_case("st.json.deep_arrays", st_bytes(string.rep("[", 100000)), {"bad JSON in the header", "depth"})
st_case("st.json.deep_objects", st_bytes(string.rep('{"a":', 100000)), {"bad JSON in the header", "depth"})
st_case("st.json.invalid_utf8", st_bytes('{"\255\254":{}}'), {"bad JSON in the header: unable to decode byte 0xff"})
st_case("st.json.overlong_utf8", st_bytes('{"\192\175":{}}'), {"bad JSON in the header"})
st_case("st.json.lone_surrogate", st_bytes('{"\\udc00":{}}'), {"bad JSON in the header"})
st_case("st.json.nul", st_bytes('{"a\0":{}}'), {"bad JSON in the header"})
st_case("st.json.escaped_nul_name", st_bytes('{"x\\u0000y":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', "\1"),
    {"bad JSON in the header", "NUL"})
st_case("st.json.escaped_nul_metadata", st_bytes('{"__metadata__":{"k":"a\\u0000b"}}'),
    {"bad JSON in the header", "NUL"})
st_case("st.json.duplicate_key",
    st_bytes('{"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
        .. '"x":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', "\1"),
    {"bad JSON in the header", "duplicate object key"})
st_case("st.json.not_object", st_bytes("[]"), {"the header is not a JSON object"})
st_case("st.json.number_overflow", st_one('"F32"', "[1e999]", "[0,4]", "\0\0\0\0"), {"bad JSON in the header"})
-- a dense header whose JSON tree is many times its size: refused, with
-- the tree freed (its cost is the price of parsing the JSON at all)
st_case("st.json.dense", st_bytes('{"x":[' .. string.rep("{},", 80000) .. '{}]}'), {"entry 'x' is not a JSON object"},
    {max_growth_kb = 64 * 1024})

-- entries
st_case("st.entry.not_object", st_bytes('{"x":5}'), {"entry 'x' is not a JSON object"})
st_case("st.dtype.unknown", st_one('"F33"', "[1]", "[0,4]", "\0\0\0\0"), {"entry 'x': unknown dtype 'F33'"})
st_case("st.dtype.i32", st_one('"I32"', "[1]", "[0,4]", "\0\0\0\0"),
    {"entry 'x': dtype I32 is not one tide reads (F32, F64, BF16, F16, I64, U8)"})
st_case("st.dtype.bf16_short", st_one('"BF16"', "[3]", "[0,4]", "\0\0\0\0"),
    {"data_offsets [0, 4) hold 4 bytes, but BF16 of shape (3) needs 6"})
st_case("st.dtype.not_string", st_one("32", "[1]", "[0,4]", "\0\0\0\0"), {"entry 'x' has no dtype string"})
st_case("st.dtype.lowercase", st_one('"f32"', "[1]", "[0,4]", "\0\0\0\0"), {"unknown dtype 'f32'"})
st_case("st.shape.missing", st_bytes('{"x":{"dtype":"F32","data_offsets":[0,0]}}'), {"entry 'x' has no shape array"})
st_case("st.shape.negative", st_one('"F32"', "[-1]", "[0,0]"), {"entry 'x': shape entry 1 is negative (-1)"})
st_case("st.shape.fraction", st_one('"F32"', "[1.5]", "[0,6]", "\0\0\0\0\0\0"), {"shape entry 1 is not an integer"})
st_case("st.shape.nine_dims", st_one('"U8"', "[1,1,1,1,1,1,1,1,1]", "[0,1]", "\0"),
    {"entry 'x' has 9 dims; tide tensors have at most 8"})
st_case("st.shape.2^62_squared", st_one('"F32"', "[4611686018427387904,4611686018427387904]", "[0,4]", "\0\0\0\0"),
    {"entry 'x': the shape is too large"})
st_case("st.shape.zero_beside_2^124", st_one('"F32"', "[0,4611686018427387904,4611686018427387904]", "[0,0]"),
    {"entry 'x': the shape is too large"})
st_case("st.shape.2^31_x_2^31", st_one('"U8"', "[2147483648,2147483648]", "[0,4]", "\0\0\0\0"),
    {"entry 'x': the shape is too large"})
st_case("st.shape.2^20_x_2^20", st_one('"U8"', "[1048576,1048576]", "[0,4]", "\0\0\0\0"),
    {"data_offsets [0, 4) hold 4 bytes, but U8 of shape (1048576,1048576) needs 1099511627776"})
st_case("st.shape.2^32-1_past_data", st_one('"U8"', "[4294967295]", "[0,4294967295]", "\0\0\0\0"),
    {"data_offsets [0, 4294967295) run past the end of the data (4 bytes"})
st_case("st.shape.above_2^63", st_one('"U8"', "[9223372036854775808]", "[0,1]", "\0"), {"bad JSON in the header"})

-- offsets
st_case("st.offsets.reversed", st_one('"F32"', "[1]", "[8,4]", string.rep("\0", 8)),
    {"entry 'x': data_offsets [8, 4) are not a range"})
st_case("st.offsets.negative", st_one('"F32"', "[1]", "[-4,0]", "\0\0\0\0"), {"data_offsets [-4, 0) are not a range"})
st_case("st.offsets.past_end", st_one('"F32"', "[1]", "[9223372036854775803,9223372036854775807]", "\0\0\0\0"),
    {"run past the end of the data (4 bytes; is the file truncated?)"})
st_case("st.offsets.one_number", st_one('"F32"', "[1]", "[4]", "\0\0\0\0"),
    {"entry 'x': data_offsets must be two integers [begin, end]"})
st_case("st.offsets.three_numbers", st_one('"F32"', "[1]", "[0,4,8]", "\0\0\0\0"),
    {"data_offsets must be two integers"})
st_case("st.offsets.strings", st_one('"F32"', "[1]", '["0","4"]', "\0\0\0\0"), {"data_offsets must be two integers"})
st_case("st.offsets.size_mismatch", st_one('"F32"', "[2]", "[0,4]", "\0\0\0\0"),
    {"entry 'x': data_offsets [0, 4) hold 4 bytes, but F32 of shape (2) needs 8"})
st_case("st.offsets.dtype_mismatch", st_one('"F64"', "[1]", "[0,4]", "\0\0\0\0"),
    {"hold 4 bytes, but F64 of shape (1) needs 8"})
local function two(a, b)
    return '{"a":' .. raw.st_entry('"F32"', "[1]", a) .. ',"b":' .. raw.st_entry('"F32"', "[1]", b) .. "}"
end
st_case("st.offsets.overlap", st_bytes('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},'
    .. '"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}', string.rep("\0", 6)),
    {"entries 'a' and 'b' overlap (data_offsets [0, 4) and [2, 6))"})
st_case("st.offsets.same_range", st_bytes(two("[0,4]", "[0,4]"), "\0\0\0\0"),
    {"entries 'a' and 'b' overlap (data_offsets [0, 4) and [0, 4))"})
st_case("st.offsets.hole", st_bytes(two("[0,4]", "[8,12]"), string.rep("\0", 12)),
    {"bytes [4, 8) of the data belong to no entry (before 'b')"})
st_case("st.offsets.tail", st_bytes(two("[0,4]", "[4,8]"), string.rep("\0", 12)),
    {"bytes [8, 12) at the end of the data belong to no entry"})

-- metadata
st_case("st.metadata.not_object", st_bytes('{"__metadata__":[]}'), {"__metadata__ is not a JSON object"})
st_case("st.metadata.not_string", st_bytes('{"__metadata__":{"k":1}}'), {"__metadata__ value 'k' is not a string"})

-- not regular files, and no file
for _, what in ipairs({"dev_zero", "folder", "fifo"}) do
    case {
        name = "st.path." .. what, kind = "safetensors", file = ST,
        expect = {"not a regular file"},
        write = function(dir)
            local p = q(dir .. "/" .. ST)
            sh(what == "dev_zero" and "ln -s /dev/zero " .. p or what == "folder" and "mkdir " .. p or "mkfifo " .. p)
        end,
        load = st_load,
        max_growth_kb = 4 * 1024,
    }
end
case {
    name = "st.path.missing", kind = "safetensors", file = ST,
    expect = {"cannot open: No such file or directory"},
    write = function() end,
    load = st_load,
}

---------------------------------------------------------------- checkpoints (tide.checkpoint.load)

-- The saved run: Linear(3, 2) and SGD with momentum after one step, at
-- epoch 4. The loading side (G.checkpoint_objects) is a Linear(3, 2) and
-- SGD of another seed; a refused file must leave both as they were.
local CK = "run.ckpt"

local function saved_run(tide)
    tide.manual_seed(1)
    local m = tide.nn.Linear(3, 2)
    local opt = tide.optim.SGD(m:parameters(), {lr = 0.1, momentum = 0.9})
    m:forward(tide.ones({1, 3})):sum():backward()
    opt:step()
    return m, opt
end

function G.checkpoint_objects(tide)
    tide.manual_seed(77)
    local m = tide.nn.Linear(3, 2)
    local opt = tide.optim.SGD(m:parameters(), {lr = 0.5, momentum = 0.5})
    return m, opt
end

local function ck_load(tide, dir, m, opt)
    if not m then m, opt = G.checkpoint_objects(tide) end
    return tide.checkpoint.load(dir .. "/" .. CK, {model = m, optimizer = opt}), m, opt
end

-- a checkpoint case: edit(tensors, meta, tide) changes the saved file's
-- tensors and metadata (returns nothing), or raw(bytes) its bytes
local function ck_case(name, expect, edit, opts)
    local c = {
        name = name, kind = "checkpoint", file = CK, expect = expect, model = true,
        write = function(dir, tide)
            local path = dir .. "/" .. CK
            local m, opt = saved_run(tide)
            tide.checkpoint.save(path, {model = m, optimizer = opt, epoch = 4})
            if edit then
                local tensors, meta = tide.load(path)
                edit(tensors, meta, tide)
                tide.save(path, tensors, {metadata = meta})
            end
            if opts and opts.raw then write(path, opts.raw(read(path))) end
        end,
        load = ck_load,
    }
    for k, v in pairs(opts or {}) do if k ~= "raw" then c[k] = v end end
    case(c)
end

ck_case("ckpt.control", nil, nil, {model = false, check = function(epoch, m)
    local want = saved_run(require("tide"))
    if epoch ~= 4 then return false, "epoch " .. tostring(epoch) end
    local a, b = m:state_dict(), want:state_dict()
    for k, t in pairs(b) do
        if a[k]:eq(t):all():item() ~= 1 then return false, k .. " differs from the saved one" end
    end
    return true
end})

ck_case("ckpt.not_a_checkpoint", {"not a tide checkpoint (no 'tide.checkpoint' in its metadata)"},
    function(_, meta) meta["tide.checkpoint"] = nil end)
ck_case("ckpt.version_2", {"checkpoint layout version 2 is not one this tide reads (1)"},
    function(_, meta) meta["tide.checkpoint"] = "2" end)
ck_case("ckpt.no_model", {"the checkpoint holds no model"}, function(_, meta) meta.model = nil end)
ck_case("ckpt.truncated", {"run past the end of the data", "is the file truncated?"}, nil,
    {raw = function(s) return s:sub(1, #s - 12) end})
ck_case("ckpt.header_flipped_byte", {"bad JSON in the header"}, nil,
    {raw = function(s) return s:sub(1, 9) .. "\255" .. s:sub(11) end})
ck_case("ckpt.model_shape", {"model:load_state_dict", "size mismatch for weight: shape (5, 5) in the state dict",
    "nothing was changed (model put back as they were)"},
    function(t, _, tide) t["model.weight"] = tide.zeros({5, 5}) end)
ck_case("ckpt.model_missing", {"model:load_state_dict", "missing keys: bias"},
    function(t) t["model.bias"] = nil end)
ck_case("ckpt.model_unexpected", {"model:load_state_dict", "unexpected keys: planted"},
    function(t, _, tide) t["model.planted"] = tide.zeros({1}) end)
ck_case("ckpt.momentum_shape", {"optimizer:load_state_dict",
    "does not match the parameter's shape and dtype", "nothing was changed (model, optimizer put back"},
    function(t, _, tide)
        for k in pairs(t) do
            if k:match("^optimizer%.state%..*momentum_buffer$") then t[k] = tide.zeros({7}) end
        end
    end)
ck_case("ckpt.momentum_dtype", {"optimizer:load_state_dict", "does not match the parameter's shape and dtype"},
    function(t)
        for k, v in pairs(t) do
            if k:match("^optimizer%.state%..*momentum_buffer$") then t[k] = v:double() end
        end
    end)
ck_case("ckpt.param_groups",
    {"optimizer:load_state_dict", "loaded state dict has 2 parameter groups, the optimizer has 1"},
    function(_, meta)
        local cjson = require "cjson"
        local sd = cjson.decode(meta.optimizer)
        sd.param_groups[2] = sd.param_groups[1]
        meta.optimizer = cjson.encode(sd)
    end)
ck_case("ckpt.optimizer_deep", {"bad JSON in metadata 'optimizer'", "depth"},
    function(_, meta) meta.optimizer = string.rep("[", 100000) end)
ck_case("ckpt.optimizer_deep_2000", {"optimizer:load_state_dict"},
    function(_, meta) meta.optimizer = string.rep("[", 2000) .. string.rep("]", 2000) end)
ck_case("ckpt.epoch_overflow", {"bad JSON in metadata 'epoch'"}, function(_, meta) meta.epoch = "1e999" end)
ck_case("ckpt.rng_short", {"metadata 'rng'", "four strings of 16 hex digits"},
    function(_, meta) meta.rng = '["00","00","00","00"]' end)

-- a loader state whose batch count is past any epoch: it resumes with
-- nothing left of that epoch (2^62 batches of 4 samples overflow int64)
case {
    name = "ckpt.control.loader_batch_2^62", kind = "checkpoint", file = CK,
    write = function(dir, tide)
        local path = dir .. "/" .. CK
        tide.checkpoint.save(path, {epoch = 1})
        local tensors, meta = tide.load(path)
        meta.loader = '{"seed":3,"epoch":0,"batch":4611686018427387904}'
        tide.save(path, tensors, {metadata = meta})
    end,
    load = function(tide, dir)
        local ds = tide.data.TensorDataset(tide.arange(0, 6):view({6, 1}), tide.arange(0, 6):long())
        local loader = tide.data.DataLoader(ds, {batch_size = 4, shuffle = true, seed = 3})
        tide.checkpoint.load(dir .. "/" .. CK, {loader = loader})
        local n = 0
        for _ in loader:iter() do n = n + 1 end
        local after = 0
        for _ in loader:iter() do after = after + 1 end
        return n, after
    end,
    check = function(n, after) return n == 0 and after == 2, n .. " batches left, then " .. after end,
}

---------------------------------------------------------------- modules (m:load, a plain safetensors file)

local MF = "linear.safetensors"
local function module_load(tide, dir, m)
    m = m or G.checkpoint_objects(tide)
    return m:load(dir .. "/" .. MF), m
end
local function module_case(name, expect, edit, check)
    case {
        name = name, kind = "module", file = MF, expect = expect, check = check, model = expect ~= nil,
        write = function(dir, tide)
            local m = saved_run(tide)
            local sd = m:state_dict()
            if edit then edit(sd, tide) end
            tide.save(dir .. "/" .. MF, sd)
        end,
        load = module_load,
    }
end
module_case("module.control", nil, nil, function(_, m)
    return m.weight:eq(saved_run(require("tide")).weight):all():item() == 1, "weights differ from the saved ones"
end)
module_case("module.shape", {"checkpoint.load_module", "load_state_dict", "size mismatch for bias: shape (3)"},
    function(sd, tide) sd.bias = tide.zeros({3}) end)
module_case("module.missing", {"checkpoint.load_module", "missing keys: weight"}, function(sd) sd.weight = nil end)
case {
    name = "module.overlap", kind = "module", file = MF, model = true,
    expect = {"checkpoint.load_module", "entries 'bias' and 'weight' overlap"},
    write = function(dir)
        local h = '{"bias":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},'
            .. '"weight":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}'
        write(dir .. "/" .. MF, st_bytes(h, string.rep("\0", 24)))
    end,
    load = module_load,
}

---------------------------------------------------------------- experiment logs (metrics.jsonl)

local JL = "metrics.jsonl"
local function jsonl_load(tide, dir)
    return require("tide.experiment").read_jsonl(dir .. "/" .. JL), tide
end
local function jsonl_case(name, text, expect, check)
    case {
        name = name, kind = "jsonl", file = JL, expect = expect, check = check,
        write = function(dir) write(dir .. "/" .. JL, text) end,
        load = jsonl_load,
    }
end
jsonl_case("jsonl.control", '{"variant":"ce","epoch":1,"test_acc":0.5}\n{"variant":"ce","epoch":2,"test_loss":"NaN"}\n',
    nil, function(recs)
        return #recs == 2 and recs[2].epoch == 2 and recs[2].test_loss ~= recs[2].test_loss, "records"
    end)
jsonl_case("jsonl.bad_line", '{"variant":"ce","epoch":1}\n{"variant":\n', {"metrics.jsonl:2 is not a JSON object"})
jsonl_case("jsonl.deep", string.rep("[", 100000) .. "\n", {"metrics.jsonl:1 is not a JSON object"})
jsonl_case("jsonl.not_object", '"just a string"\n', {"metrics.jsonl:1 is not a JSON object"})

---------------------------------------------------------------- writing

-- writes every case's files under root/<name>/ (tide is needed for the
-- checkpoint cases)
function G.write(root, tide)
    local dirs = {}
    for i, c in ipairs(cases) do dirs[i] = q(root .. "/" .. c.name) end
    sh("rm -rf " .. q(root) .. " && mkdir -p " .. table.concat(dirs, " "))
    for _, c in ipairs(cases) do c.write(root .. "/" .. c.name, tide) end
    return cases
end

if arg and arg[0] and arg[0]:match("generate%.lua$") and select("#", ...) > 0 then
    local root = ...
    G.write(root, require("tide"))
    print(string.format("%d hostile cases written under %s", #cases, root))
end

return G
