-- Absurd and empty sizes: shapes whose element count overflows, zero-size
-- dims beside huge ones, values an integer dtype cannot hold, and batched
-- or strided ops over an empty dim. The cases that used to crash run in a
-- child `tide -e` so that a crash fails one test instead of busted.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require("tide")
local H = require("helpers")

local TIDE = arg and arg[-1] or "tide"

-- runs code in a child tide; its exit status and what it printed
local function child(code)
    local p = assert(io.popen(H.sh(TIDE) .. " -e " .. H.sh(code) .. " 2>&1; echo \"rc=$?\""))
    local out = p:read("a")
    p:close()
    local rc = tonumber(out:match("rc=(%d+)%s*$"))
    return rc, out:gsub("rc=%d+%s*$", "")
end

-- the child must exit cleanly and print `want`
local function child_prints(code, want)
    local rc, out = child(code)
    assert.are.equal(0, rc, out)
    assert.are.equal(want, out:match("^(.-)%s*$"))
end

local function raises(pattern, fn, ...)
    local ok, err = pcall(fn, ...)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find(pattern, 1, true), tostring(err))
end

describe("sizes: shapes whose element count overflows", function()
    it("expand refuses a shape of 2^64 elements instead of wrapping to 0", function()
        raises("bad argument #1 to 'expand' (shape too large", function()
            return tide.ones({1, 1}):expand(2 ^ 32, 2 ^ 32)
        end)
        raises("shape too large", function() return tide.ones({1, 1, 1}):expand(2 ^ 21, 2 ^ 21, 2 ^ 22) end)
        raises("shape too large", function() return tide.ones({1}):expand(2 ^ 62, 2 ^ 62, 3) end)
    end)

    it("expand still gives a large but representable view", function()
        local v = tide.ones({1, 1}):expand(2 ^ 20, 2 ^ 20)
        assert.are.equal(2 ^ 40, v:numel())
        assert.are.same({2 ^ 20, 2 ^ 20}, v:shape())
    end)

    it("view and reshape refuse a shape whose sizes overflow", function()
        raises("shape too large", function() return tide.zeros(0):view(2 ^ 32, 2 ^ 32, 0) end)
        raises("shape too large", function() return tide.zeros(0):reshape(0, 2 ^ 62, 2 ^ 62) end)
    end)

    it("totable refuses what cannot fit in a Lua table, before building it", function()
        raises("totable: a tensor of 4294967296 elements does not fit in a Lua table", function()
            return tide.ones({1}):expand(2 ^ 16, 2 ^ 16):totable()
        end)
        assert.are.same({{1, 1}, {1, 1}}, tide.ones({1}):expand(2, 2):totable())
    end)
end)

describe("sizes: zero-size dims beside huge ones", function()
    it("zeros checks every dim after a 0", function()
        raises("zeros: shape too large", function() return tide.zeros(0, 2 ^ 62, 2 ^ 62) end)
        raises("shape too large", function() return tide.empty({2 ^ 40, 0, 2 ^ 40}) end)
    end)

    it("an empty tensor with moderate dims is still fine, as in PyTorch", function()
        local t = tide.zeros(0, 2 ^ 20, 2 ^ 20)
        assert.are.equal(0, t:numel())
        assert.are.same({0, 2 ^ 20, 2 ^ 20}, t:shape())
    end)
end)

describe("sizes: values an integer dtype cannot hold", function()
    it("tide.tensor names the NaN or infinite entry", function()
        raises("entry {1} is NaN, which int64 cannot hold", function() return tide.tensor({0 / 0}, "int64") end)
        raises("entry {1,2} is inf, which uint8 cannot hold", function()
            return tide.tensor({{1, 1 / 0}}, "uint8")
        end)
        raises("entry {2} is -inf, which int64 cannot hold", function()
            return tide.tensor({1, -1 / 0}, {dtype = "int64"})
        end)
        raises("entry {1} is 1e+30, which int64 cannot hold", function()
            return tide.tensor({1e30}, "int64")
        end)
    end)

    it("float dtypes keep NaN and inf", function()
        local v = tide.tensor({0 / 0, 1 / 0}, "float64"):totable()
        assert.is_true(v[1] ~= v[1])
        assert.are.equal(math.huge, v[2])
    end)

    it("a negative size is reported as given, not truncated to int", function()
        raises("size must be non-negative, got " .. math.mininteger, function()
            return tide.zeros(math.mininteger)
        end)
        raises("shape entry 2 is negative (-4294967296)", function() return tide.zeros({1, -2 ^ 32}) end)
    end)
end)

describe("sizes: batched and strided ops over an empty dim", function()
    it("batched matmul with an empty inner dim gives zeros, as PyTorch", function()
        child_prints([[
            local c = tide.zeros({2, 3, 0}, "float64"):matmul(tide.zeros({0, 4}, "float64"))
            io.write(table.concat(c:shape(), ","), " ", c:abs():sum():item())]], "2,3,4 0")
        child_prints([[
            local c = tide.zeros(2, 3, 0):matmul(tide.zeros(2, 0, 4))
            io.write(table.concat(c:shape(), ","), " ", c:abs():sum():item())]], "2,3,4 0")
        child_prints([[
            local c = tide.bmm(tide.zeros(2, 3, 0), tide.zeros(2, 0, 4))
            io.write(table.concat(c:shape(), ","), " ", c:abs():sum():item())]], "2,3,4 0")
    end)

    it("its backward gives an empty gradient", function()
        child_prints([[
            local a = tide.zeros({2, 3, 0}, {requires_grad = true})
            a:matmul(tide.ones(0, 4)):sum():backward()
            io.write(table.concat(a.grad:shape(), ","))]], "2,3,0")
    end)

    it("an empty batch passes through bmm, matmul, conv and pooling", function()
        child_prints([[
            local s = {}
            local function add(t) s[#s + 1] = table.concat(t:shape(), ",") end
            add(tide.bmm(tide.zeros(0, 3, 2), tide.zeros(0, 2, 4)))
            add(tide.zeros(0, 3, 2):matmul(tide.zeros(2, 4)))
            add(tide.conv2d(tide.zeros(0, 3, 5, 5), tide.zeros(4, 3, 3, 3)))
            add(tide.max_pool2d(tide.zeros(0, 3, 4, 4), 2))
            add(tide.avg_pool2d(tide.zeros(0, 3, 4, 4), 2))
            add(tide.adaptive_avg_pool2d(tide.zeros(0, 3, 4, 4), 1))
            io.write(table.concat(s, " "))]], "0,3,4 0,3,4 0,4,3,3 0,3,2,2 0,3,2,2 0,3,1,1")
    end)

    it("elementwise ops and reductions over a strided empty tensor", function()
        child_prints([[
            local t = tide.zeros(3, 0, 2):transpose(0, 2)
            local u = (t + 1):sum(1)
            io.write(table.concat(u:shape(), ","), " ", tide.zeros(3, 0, 2):sum():item())]], "2,3 0")
    end)

    it("a loader over an empty dataset yields no batch", function()
        child_prints([[
            local ds = tide.data.TensorDataset(tide.zeros(0, 3), tide.zeros({0}, "int64"))
            local loader = tide.data.DataLoader(ds, {batch_size = 4})
            local n = 0
            for _ in loader:iter() do n = n + 1 end
            io.write(#loader, " ", n)]], "0 0")
    end)
end)
