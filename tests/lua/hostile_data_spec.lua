-- tide.data readers against hostile files written here: a gzip bomb behind
-- a small IDX header, truncated gzip, headers promising more than the file
-- holds, absurd dims and CIFAR batches of the wrong length. Each must be a
-- Lua error naming the file and the problem, without the reader taking in
-- more than the header promises.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"
local D = tide.data

local function sh(cmd) assert(os.execute(cmd), cmd) end

local function tmpdir()
    local p = os.tmpname()
    os.remove(p)
    sh("mkdir -p '" .. p .. "'")
    return p
end

local function write(path, bytes)
    local f = assert(io.open(path, "wb"))
    f:write(bytes)
    f:close()
end

local function rm(dir) os.execute("rm -rf '" .. dir .. "'") end

local function be32(n) return string.pack(">I4", n) end

-- gzip of a string, through the gzip command
local function gz(bytes)
    local p = os.tmpname()
    write(p, bytes)
    sh("gzip -n -f '" .. p .. "'")
    local data = H.read_file(p .. ".gz")
    os.remove(p .. ".gz")
    return data
end

-- peak resident set so far, in kB
local function vm_hwm()
    local f = assert(io.open("/proc/self/status"))
    local s = f:read("a")
    f:close()
    return assert(tonumber(s:match("VmHWM:%s*(%d+)")), "no VmHWM")
end

-- an MNIST directory whose train images file is `images` (already gzipped
-- when gzipped is true); the rest is a valid 1-sample set
local function mnist_dir(images, gzipped)
    local dir = tmpdir()
    write(dir .. "/train-images-idx3-ubyte" .. (gzipped and ".gz" or ""), images)
    write(dir .. "/train-labels-idx1-ubyte", "\0\0\8\1" .. be32(1) .. "\3")
    return dir
end

local function expect_error(dir, pattern)
    local err = H.error_of(D.mnist, { dir = dir })
    rm(dir)
    assert.is_truthy(err, "no error")
    assert.is_truthy(err:find("train%-images%-idx3%-ubyte"), err)
    assert.is_truthy(err:find(pattern), err)
    return err
end

describe("hostile IDX files", function()
    it("stops a gzip bomb at the header's promise", function()
        -- gzip members concatenate: one 64 MiB member of zeros repeated 32
        -- times is 2 GiB of zeros in about 2 MB, behind a header promising
        -- 1 x 2 x 4 = 8 bytes
        local dir
        do
            local zeros = gz(string.rep("\0", 64 << 20))
            local bomb = gz("\0\0\8\3" .. be32(1) .. be32(2) .. be32(4)) .. string.rep(zeros, 32)
            assert.is_true(#bomb < 4 << 20)
            dir = mnist_dir(bomb, true)
        end
        collectgarbage()
        local before, t0 = vm_hwm(), os.clock()
        expect_error(dir, "%.gz: more data than the 8 bytes the header promises")
        assert.is_true(os.clock() - t0 < 5, "slow: " .. (os.clock() - t0) .. " s")
        assert.is_true(vm_hwm() - before < 64 * 1024, "peak RSS grew by " .. (vm_hwm() - before) .. " kB")
    end)

    it("rejects a plain file that runs past the header's promise", function()
        local dir = mnist_dir("\0\0\8\3" .. be32(1) .. be32(2) .. be32(2) .. string.rep("\1", 100))
        expect_error(dir, "96 bytes after the 4 bytes of data the header promises")
    end)

    it("rejects a truncated gzip stream", function()
        local data = gz("\0\0\8\3" .. be32(4) .. be32(28) .. be32(28) .. string.rep("\7\1\200", 1000))
        expect_error(mnist_dir(data:sub(1, #data // 2), true), "%.gz: damaged or truncated gzip")
    end)

    it("rejects a header promising more than a gzip file can hold", function()
        local data = gz("\0\0\8\3" .. be32(60000) .. be32(28) .. be32(28) .. string.rep("\0", 10))
        expect_error(mnist_dir(data, true),
            "%.gz: truncated: the header promises 47040000 bytes of data, more than a %d+%-byte file can hold")
    end)

    it("rejects a header promising more than a plain file holds", function()
        local dir = mnist_dir("\0\0\8\3" .. be32(60000) .. be32(28) .. be32(28) .. string.rep("\0", 10))
        expect_error(dir, "truncated: the header promises 47040000 bytes of data, the file has 10")
    end)

    it("tells dims past 2^63 bytes apart from empty dims", function()
        local big = be32(0xffffffff)
        for _, gzipped in ipairs({ false, true }) do
            local data = "\0\0\8\3" .. big .. big .. big .. "\0\0\0\0"
            expect_error(mnist_dir(gzipped and gz(data) or data, gzipped), "promises more than 2%^63 bytes")
            -- a zero dim makes the data empty, but the shape still cannot be indexed
            for _, dims in ipairs({ be32(0) .. big .. big, big .. big .. be32(0) }) do
                data = "\0\0\8\3" .. dims
                local err = expect_error(mnist_dir(gzipped and gz(data) or data, gzipped),
                    "the nonzero dims multiply past 2%^63")
                assert.is_falsy(err:find("promises 0 bytes"), err)
            end
        end
    end)

    it("still reads an empty set", function()
        local dir = tmpdir()
        write(dir .. "/train-images-idx3-ubyte.gz", gz("\0\0\8\3" .. be32(0) .. be32(28) .. be32(28)))
        write(dir .. "/train-labels-idx1-ubyte", "\0\0\8\1" .. be32(0))
        local ds = D.mnist({ dir = dir })
        rm(dir)
        assert.are.equal(0, #ds)
    end)
end)

describe("hostile CIFAR-10 batches", function()
    local function record(label) return string.char(label) .. string.rep("\9", 3072) end

    local function expect_cifar(bytes, pattern)
        local dir = tmpdir()
        write(dir .. "/test_batch.bin", bytes)
        local err = H.error_of(D.cifar10, { dir = dir, split = "test" })
        rm(dir)
        assert.is_truthy(err, "no error")
        assert.is_truthy(err:find("test_batch%.bin"), err)
        assert.is_truthy(err:find(pattern), err)
    end

    it("rejects a batch that is not whole records", function()
        expect_cifar(record(1) .. record(2) .. "\1\2\3\4\5",
            "truncated: 6151 bytes is not a whole number of 3073%-byte records")
    end)

    it("rejects a batch longer than the largest real one", function()
        expect_cifar(string.rep(record(1), 10001), "larger than a CIFAR%-10 batch %(at most 10000 records")
    end)

    it("does not gunzip a batch", function()
        expect_cifar(gz(record(1) .. record(2)), "not a whole number of 3073%-byte records")
    end)
end)
