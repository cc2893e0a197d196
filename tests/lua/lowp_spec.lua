-- bfloat16 and float16 (docs/precision.md): every bit pattern of both
-- formats to float32 and back, PyTorch's roundings of chosen float32
-- values (tests/reference/lowp.json, from tests/reference/gen_lowp.py),
-- creation, printing, comparison, each op in low precision against the
-- float32 op on the same inputs (tolerances in units of the dtype's unit
-- roundoff u: 2^-8 for bfloat16, 2^-11 for float16), float32 accumulation,
-- type promotion, autograd, stochastic rounding, safetensors, finfo, and
-- the ops that refuse the dtypes with an error naming the op and dtype.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local cjson = require "cjson"

local data = cjson.decode(H.read_file("tests/reference/lowp.json"))
local tmpdir, remove_tmpdirs = H.tmpdirs()
teardown(remove_tmpdirs)

local LOWP = {"bfloat16", "float16"}
local U = {bfloat16 = 2 ^ -8, float16 = 2 ^ -11}

-- ---- bits ------------------------------------------------------------------

local function f32_of_bits(b) return (string.unpack("<f", string.pack("<I4", b))) end

local function decode_bf16(b) return f32_of_bits(b << 16) end

local function decode_f16(b)
    local sign = (b & 0x8000) ~= 0 and -1 or 1
    local e, m = (b >> 10) & 0x1f, b & 0x3ff
    if e == 0x1f then return m == 0 and sign * math.huge or 0 / 0 end
    if e == 0 then return sign * (m * 2.0 ^ -24) end
    return sign * (1 + m / 1024) * 2.0 ^ (e - 15)
end

local DECODE = {bfloat16 = decode_bf16, float16 = decode_f16}
local ST_NAME = {bfloat16 = "BF16", float16 = "F16"}

local function is_nan(v) return v ~= v end
-- same value, -0 apart from 0, NaN equal to NaN
local function same(a, b)
    if is_nan(a) or is_nan(b) then return is_nan(a) and is_nan(b) end
    return a == b and (a ~= 0 or 1 / a == 1 / b)
end

-- a safetensors file of one 1-dim tensor from raw little-endian bytes
local function write_raw(path, st_dtype, n, raw)
    local header = string.format('{"x":{"dtype":"%s","shape":[%d],"data_offsets":[0,%d]}}', st_dtype, n, #raw)
    header = header .. string.rep(" ", (8 - (8 + #header) % 8) % 8)
    local f = assert(io.open(path, "wb"))
    f:write(string.pack("<I8", #header), header, raw)
    f:close()
end

-- the data bytes of a safetensors file of one tensor (as tide.save writes)
local function raw_of(path)
    local s = H.read_file(path)
    local n = string.unpack("<I8", s)
    return s:sub(9 + n)
end

-- every 16-bit pattern as a tensor of dtype, through a file
local function all_patterns(dtype)
    local parts = {}
    for i = 0, 65535 do parts[#parts + 1] = string.pack("<I2", i) end
    local path = tmpdir() .. "/all.safetensors"
    write_raw(path, ST_NAME[dtype], 65536, table.concat(parts))
    return tide.load(path).x
end

-- the 16-bit patterns of a 1-dim bfloat16 / float16 tensor, through a file
local function patterns_of(t)
    local path = tmpdir() .. "/bits.safetensors"
    tide.save(path, {x = t:contiguous()})
    local raw, out = raw_of(path), {}
    for i = 1, #raw, 2 do out[#out + 1] = string.unpack("<I2", raw, i) end
    return out
end

-- NaN patterns: exponent all ones and a nonzero mantissa; quiet: its top bit
local NAN = {
    bfloat16 = function(b) return (b & 0x7f80) == 0x7f80 and (b & 0x7f) ~= 0, (b & 0x40) ~= 0 end,
    float16 = function(b) return (b & 0x7c00) == 0x7c00 and (b & 0x3ff) ~= 0, (b & 0x200) ~= 0 end,
}

describe("bfloat16 and float16 bits", function()
    for _, dt in ipairs(LOWP) do
        it(dt .. ": all 65536 patterns convert to float32 exactly and back to the same bits", function()
            local x = all_patterns(dt)
            assert.are.equal(dt, x:dtype())
            local f = x:float()
            local v = f:totable()
            for i = 0, 65535 do
                local want = DECODE[dt](i)
                if not same(v[i + 1], want) then
                    error(string.format("%s pattern 0x%04x: got %s, want %s", dt, i, v[i + 1], want))
                end
            end
            local back = patterns_of(f:to(dt))
            for i = 0, 65535 do
                local nan = NAN[dt](i)
                if nan then
                    local still, quiet = NAN[dt](back[i + 1])
                    assert(still and quiet, string.format("NaN 0x%04x came back as 0x%04x", i, back[i + 1]))
                elseif back[i + 1] ~= i then
                    error(string.format("%s pattern 0x%04x came back as 0x%04x", dt, i, back[i + 1]))
                end
            end
            -- the same through float64, whose values all fit
            local d = patterns_of(x:double():to(dt))
            for i = 0, 65535 do
                if not NAN[dt](i) then assert.are.equal(i, d[i + 1]) end
            end
        end)
    end

    it("float32 to bfloat16 and float16 rounds as PyTorch (ties to even, subnormals, overflow, NaN)", function()
        local xs = {}
        for i, row in ipairs(data.convert) do xs[i] = f32_of_bits(row[1]) end
        local x = tide.tensor(xs)
        -- the values went in exactly (NaNs aside)
        local back = x:totable()
        for i, row in ipairs(data.convert) do
            if not is_nan(xs[i]) then assert(same(back[i], xs[i]), string.format("input 0x%08x", row[1])) end
        end
        for k, dt in ipairs(LOWP) do
            local bits = patterns_of(x:to(dt))
            local bad = 0
            for i, row in ipairs(data.convert) do
                local want = row[k + 1]
                local ok
                if NAN[dt](want) then ok = NAN[dt](bits[i]) else ok = bits[i] == want end
                if not ok then
                    bad = bad + 1
                    if bad <= 5 then
                        print(string.format("%s: float32 0x%08x (%.9g) gave 0x%04x, PyTorch 0x%04x", dt, row[1],
                                            xs[i], bits[i], want))
                    end
                end
            end
            assert.are.equal(0, bad, dt .. " roundings differ from PyTorch")
        end
    end)

    it("a vector-width run and its tail agree, strided and contiguous", function()
        local x = tide.randn({37, 11}) * 1000
        for _, dt in ipairs(LOWP) do
            local a = x:to(dt)
            local b = x:t():contiguous():t():to(dt) -- a strided source
            assert.is_true(tide.equal(a, b))
            local c = x:t():to(dt):t():contiguous()
            assert.are.equal(1, a:eq(c):all():item())
            assert.are.equal(1, a:float():eq(x:to(dt):float()):all():item())
        end
    end)
end)

describe("conversion between every dtype", function()
    local vals = {0, -0.0, 1, -1, 2.5, 3.75, 255, 256, -300.5, 1e4, 65504, 70000}
    for _, dt in ipairs(LOWP) do
        it(dt .. " from and to float32, float64, int64, uint8 and the other low dtype", function()
            local u = U[dt]
            local x = tide.tensor(vals, "float64")
            local l = x:to(dt)
            local want = x:float():to(dt):double():totable() -- float64 goes through float32 first
            local got = l:double():totable()
            for i = 1, #vals do assert(same(got[i], want[i]), "float64 " .. vals[i]) end
            -- integers: exact where the dtype holds them; back by truncation toward 0
            local i64 = tide.tensor({0, 1, -7, 255, 256, 257, 4097}, "int64"):to(dt)
            local iv = i64:double():totable()
            assert.are.same({0, 1, -7, 255, 256, dt == "bfloat16" and 256 or 257, dt == "bfloat16" and 4096 or 4096},
                            iv)
            assert.are.same({2, -3, 0, 100}, tide.tensor({2.75, -3.5, 0.25, 100.5}):to(dt):long():totable())
            local u8 = tide.tensor({0, 1, 200, 255}, "uint8"):to(dt)
            assert.are.same({0, 1, 200, 255}, u8:double():totable())
            assert.are.same({3, 250}, tide.tensor({3.5, 250.25}):to(dt):byte():totable())
            -- between the two low dtypes: through float32, rounded to the target
            local other = dt == "bfloat16" and "float16" or "bfloat16"
            local y = tide.tensor({1 + 2 ^ -9, 3.14159, 1e-6, 60000}):to(dt)
            local z = y:to(other)
            local zw = y:float():to(other):double():totable()
            for i, v in ipairs(z:double():totable()) do assert(same(v, zw[i])) end
            assert.is_true(u > 0)
        end)
    end

    it("x:bfloat16(), x:half(), x:to(name), aliases; the same tensor when already that dtype", function()
        local x = tide.tensor({1.5, -2})
        assert.are.equal("bfloat16", x:bfloat16():dtype())
        assert.are.equal("float16", x:half():dtype())
        assert.are.equal("float16", x:to("half"):dtype())
        assert.are.equal("float16", x:type("float16"):dtype())
        assert.are.equal("float16", x:to({dtype = "float16"}):dtype())
        local b = x:bfloat16()
        assert.are.equal(b, b:bfloat16())
        assert.are.equal(2, b:element_size())
        assert.is_true(b:is_floating_point())
        assert.are.equal("float16", tide.tensor({1}, "half"):dtype())
        assert.are.same({1.5, -2}, b:totable())
    end)
end)

describe("creation, elements and printing", function()
    for _, dt in ipairs(LOWP) do
        it(dt .. ": zeros, ones, full, empty, arange, linspace, eye, tensor, *_like", function()
            assert.are.same({0, 0}, tide.zeros({2}, {dtype = dt}):totable())
            assert.are.same({1, 1}, tide.ones({2}, {dtype = dt}):totable())
            local f = tide.full({3}, 0.1, {dtype = dt})
            assert.are.equal(dt, f:dtype())
            assert.are.equal(tide.tensor({0.1}):to(dt):item(), f:get(0))
            assert.are.same({3, 2}, tide.empty({3, 2}, {dtype = dt}):shape())
            assert.are.same({0, 1, 2, 3}, tide.arange(0, 4, {dtype = dt}):totable())
            assert.are.same({0, 0.25, 0.5, 0.75, 1}, tide.linspace(0, 1, 5, {dtype = dt}):totable())
            assert.are.same({{1, 0}, {0, 1}}, tide.eye(2, {dtype = dt}):totable())
            local t = tide.tensor({{1, 2}, {3, 0 / 0}}, {dtype = dt})
            assert.are.same({2, 2}, t:shape())
            assert.is_true(is_nan(t:get(1, 1)))
            assert.are.equal(dt, tide.zeros_like(t):dtype())
            assert.are.equal(dt, tide.rand_like(t):dtype())
            assert.are.equal(math.huge, tide.tensor({1e30}, dt):item() == math.huge and math.huge or
                             (dt == "float16" and 0 or math.huge))
        end)

        it(dt .. ": rand is exact multiples of the spacing below 1; randn rounds float32 normals; seeded", function()
            tide.manual_seed(7)
            local r = tide.rand({4096}, {dtype = dt})
            assert.are.equal(dt, r:dtype())
            local step = dt == "bfloat16" and 2 ^ -8 or 2 ^ -11
            local v = r:double()
            assert.are.equal(1, v:ge(0):all():item())
            assert.are.equal(1, v:lt(1):all():item())
            local k = v / step
            assert.are.equal(1, k:eq(k:floor()):all():item())
            assert.is_near(0.5, v:mean():item(), 0.03)
            local n = tide.randn({8192}, {dtype = dt}):float()
            assert.is_near(0, n:mean():item(), 0.05)
            assert.is_near(1, n:std():item(), 0.05)
            tide.manual_seed(7)
            assert.are.equal(1, tide.rand({4096}, {dtype = dt}):eq(r):all():item())
        end)

        it(dt .. ": get, set, item, totable at the dtype's precision; printing says the dtype", function()
            local x = tide.zeros({2}, {dtype = dt})
            x:set(0.1, 1)
            local v = x:get(1)
            assert.are.equal(tide.tensor({0.1}):to(dt):double():item(), v)
            assert.are_not.equal(0.1, v)
            assert.are.equal(v, x:select(0, 1):item())
            assert.are.equal(v, x:totable()[2])
            local s = tostring(x)
            assert.truthy(s:find("dtype=" .. dt, 1, true), s)
            local p = tostring(tide.tensor({1 / 3}, dt))
            -- 1/3 in the dtype: 0.333984375 (bfloat16), 0.333251953125 (float16)
            assert.truthy(p:find(dt == "bfloat16" and "0.3340" or "0.3333", 1, true), p)
        end)
    end
end)

describe("finfo and iinfo", function()
    for name, want in pairs(data.finfo) do
        it(name .. " has PyTorch's values", function()
            local f = tide.finfo(name)
            assert.are.equal(want.bits, f.bits)
            for _, k in ipairs({"eps", "max", "min", "tiny", "smallest_normal", "resolution"}) do
                assert.are.equal(want[k], f[k], name .. " " .. k)
            end
            assert.are.equal(name, f.dtype)
            assert.truthy(tostring(f):find("finfo(resolution=", 1, true))
        end)
    end

    it("defaults to float32, takes aliases, refuses integers; iinfo for integers", function()
        assert.are.equal("float32", tide.finfo().dtype)
        assert.are.equal(65504, tide.finfo("half").max)
        assert.matches("finfo.*int64 is not a floating point dtype", H.error_of(tide.finfo, "int64"))
        assert.matches("unknown dtype", H.error_of(tide.finfo, "float8"))
        local i = tide.iinfo("int64")
        assert.are.equal(math.maxinteger, i.max)
        assert.are.equal(math.mininteger, i.min)
        assert.are.equal(64, i.bits)
        assert.are.same({8, 0, 255}, {tide.iinfo("uint8").bits, tide.iinfo("uint8").min, tide.iinfo("uint8").max})
        assert.matches("iinfo.*bfloat16 is not an integer dtype", H.error_of(tide.iinfo, "bfloat16"))
    end)
end)

-- ---- ops against the float32 op --------------------------------------------

-- the op table's samples (as op_table_spec.lua), in float32, then rounded
local function sample(row, shape)
    local x = tide.randn(shape)
    if row.domain == "positive" then return x:abs() + 0.5 end
    if row.domain == "off_kink" then return x:sign() * (x:abs() + 0.1) end
    if row.domain == "off_integer" then return (x * 4):floor() / 4 + 0.125 end
    if row.domain == "unit" then return x:tanh() * 0.9 end
    if row.domain == "above_one" then return x:abs() + 1.25 end
    return x
end

local function fn_of(row) return row.scope == "F" and tide.F[row.name] or tide[row.name] end

-- |got - want| <= k u |want| (+ k u atol for values near 0), in float64,
-- NaN where NaN, same infinities
local function close_lowp(got, want, k, dt, atol, label)
    local u = U[dt]
    local g, w = got:double():totable(), want:double():totable()
    if type(g) ~= "table" then g, w = {g}, {w} end
    local function flat(t, out)
        out = out or {}
        for _, v in ipairs(t) do
            if type(v) == "table" then flat(v, out) else out[#out + 1] = v end
        end
        return out
    end
    g, w = flat(g), flat(w)
    assert.are.equal(#w, #g, label .. ": sizes")
    for i = 1, #w do
        local a, b = g[i], w[i]
        local ok
        if is_nan(b) then ok = is_nan(a)
        elseif math.abs(b) == math.huge then ok = a == b
        else ok = math.abs(a - b) <= k * u * (math.abs(b) + (atol or 0)) end
        if not ok then error(string.format("%s [%d]: got %.9g, want %.9g (%d u)", label, i, a, b, k)) end
    end
end

describe("elementwise ops in low precision against float32", function()
    for _, dt in ipairs(LOWP) do
        for _, row in ipairs(tide.op_table()) do
            it(dt .. " " .. row.name, function()
                tide.manual_seed(11)
                local shape = {7, 33}
                local a = sample(row, shape):to(dt)
                local b = sample(row, shape):to(dt)
                local extra = {}
                for _, p in ipairs(row.params) do
                    if p.required then extra[#extra + 1] = p.typical end
                end
                local function call(x, y)
                    local args = row.arity == 1 and {x} or {x, y}
                    for _, e in ipairs(extra) do args[#args + 1] = e end
                    return fn_of(row)(table.unpack(args))
                end
                local got = call(a, b)
                local want = call(a:float(), b:float())
                local out_dt = want:dtype() == "float32" and dt or want:dtype()
                assert.are.equal(out_dt, got:dtype())
                -- computed in float32 and rounded once: within half an ulp of the float32 result
                -- (an absolute allowance of the smallest normal: float16's subnormals
                -- are spaced 2^-24 apart whatever the value)
                local tiny = tide.finfo(dt).tiny
                close_lowp(got, want, 1, dt, tiny, row.name)
                -- broadcast scalars and strided views take the same path
                if row.arity == 2 then
                    local s = b:select(0, 0):select(0, 0)
                    close_lowp(call(a, s), call(a:float(), s:float()), 1, dt, tiny, row.name .. " with a 0-dim")
                end
                local t = call(a:t(), b:t())
                close_lowp(t, call(a:float():t(), b:float():t()), 1, dt, tiny, row.name .. " transposed")
            end)
        end
    end
end)

describe("reductions and softmax in low precision", function()
    local cases = {
        {"sum", function(x) return x:sum() end},
        {"sum(dim)", function(x) return x:sum(1) end},
        {"sum(dims)", function(x) return x:sum({0, 2}) end},
        {"sum(dim 0)", function(x) return x:sum(0) end},
        {"mean", function(x) return x:mean() end},
        {"mean(dim)", function(x) return x:mean(2, true) end},
        {"mean(dims)", function(x) return x:mean({0, 2}) end},
        {"var", function(x) return x:var() end},
        {"var(dim)", function(x) return x:var(1) end},
        {"std(dim)", function(x) return x:std(2) end},
        {"norm", function(x) return x:norm() end},
        {"norm(1, dim)", function(x) return x:norm(1, 1) end},
        {"prod(dim)", function(x) return x:prod(2) end, function(x) return x / 2 + 1 end},
        {"amax", function(x) return x:amax(1) end},
        {"amin", function(x) return x:amin({0, 1}) end},
        {"max(dim)", function(x) return (x:max(2)) end},
        {"min", function(x) return x:min() end},
        {"cumsum", function(x) return x:cumsum(2) end},
        {"cumprod", function(x) return x:cumprod(1) end, function(x) return x / 4 + 1 end},
        {"logsumexp", function(x) return x:logsumexp(2) end},
        {"softmax", function(x) return x:softmax(2) end},
        {"softmax(0)", function(x) return x:softmax(0) end},
        {"log_softmax", function(x) return x:log_softmax(1) end},
    }
    for _, dt in ipairs(LOWP) do
        for _, c in ipairs(cases) do
            it(dt .. " " .. c[1] .. " is the float32 result rounded once", function()
                tide.manual_seed(5)
                local x = tide.randn({3, 5, 40}):to(dt)
                if c[3] then x = c[3](x) end -- inputs kept near 1, in the low dtype
                local got = c[2](x)
                assert.are.equal(dt, got:dtype())
                -- the float32 op on the same values; within one rounding (a sum's
                -- order may differ, so 2 u, and an absolute allowance for
                -- cancellation in sums near 0)
                close_lowp(got, c[2](x:float()), 2, dt, 1, c[1])
            end)
        end
        it(dt .. " argmax, argmin, sort, topk, all, any agree with float32", function()
            local x = tide.randn({4, 50}):to(dt)
            local f = x:float()
            assert.are.same(f:argmax(1):totable(), x:argmax(1):totable())
            assert.are.same(f:argmin():totable(), x:argmin():totable())
            local v, i = x:sort(1, true)
            local fv, fi = f:sort(1, true)
            assert.are.same(fi:totable(), i:totable())
            assert.are.same(fv:totable(), v:totable())
            assert.are.equal(dt, v:dtype())
            local tv, ti = x:topk(3, 1)
            local ftv, fti = f:topk(3, 1)
            assert.are.same(fti:totable(), ti:totable())
            assert.are.same(ftv:totable(), tv:totable())
            assert.are.same(f:ne(0):all(1):totable(), x:all(1):totable())
            local z = tide.tensor({0, -0.0, 0 / 0}, dt)
            assert.are.same({0, 1}, {z:narrow(0, 0, 2):any():item(), z:any():item()})
        end)
    end

    it("sums accumulate in float32: 4096 bfloat16 ones are 4096, 100000 round once", function()
        assert.are.equal(4096, tide.ones({4096}, {dtype = "bfloat16"}):sum():item())
        assert.are.equal(4096, tide.ones({4096}, {dtype = "float16"}):sum():item())
        -- a bfloat16 accumulator would stop at 256; in float32 the sum is
        -- 100000, which rounds to bfloat16's 99840
        assert.are.equal(99840, tide.ones({100000}, {dtype = "bfloat16"}):sum():item())
        assert.are.equal(99840, tide.ones({4, 25000}, {dtype = "bfloat16"}):sum():item())
        assert.are.equal(math.huge, tide.ones({100000}, {dtype = "float16"}):sum():item())
        assert.are.same({4096, 4096}, tide.ones({4096, 2}, {dtype = "bfloat16"}):sum(0):totable())
        assert.are.equal(1, tide.ones({4096}, {dtype = "bfloat16"}):mean():item())
        assert.are.equal(4096, tide.ones({4096}, {dtype = "bfloat16"}):cumsum(0):get(4095))
        -- sum(dtype = "float32") gives float32
        local s = tide.ones({3000}, {dtype = "bfloat16"}):sum(nil, false, {dtype = "float32"})
        assert.are.equal("float32", s:dtype())
        assert.are.equal(3000, s:item())
    end)
end)

describe("PyTorch's low-precision semantics", function()
    for _, c in ipairs(data.ops) do
        it(c.dtype .. " " .. c.name, function()
            local x
            if c.input.ones then
                x = tide.ones({c.input.ones}, {dtype = c.dtype})
            else
                x = H.tensor(H.decode_spec(c.input))
            end
            assert.are.equal(c.dtype, x:dtype())
            local dt = c.dtype
            local f = {
                mul_number = function() return x * c.number end,
                add_number = function() return x + c.number end,
                div_number = function() return x / c.number end,
                sum_ones = function() return x:sum() end,
                sum = function() return x:sum() end,
                mean = function() return x:mean() end,
                var = function() return x:var() end,
                softmax = function() return x:softmax(0) end,
                log_softmax = function() return x:log_softmax(0) end,
                cumsum = function() return x:cumsum(0) end,
                exp = function() return x:exp() end,
                sigmoid = function() return x:sigmoid() end,
                amax = function() return x:amax() end,
                to_float32 = function() return x:float() end,
                plus_float32 = function() return x + tide.tensor({0.1, 0.2}) end,
                plus_float64 = function() return x + tide.tensor({0.1, 0.2}, "float64") end,
                plus_int64 = function() return x + tide.tensor({1, 2}, "int64") end,
                plus_uint8 = function() return x + tide.tensor({1, 2}, "uint8") end,
                plus_other_lowp = function()
                    return x + tide.tensor({0.1, 0.2}, dt == "bfloat16" and "float16" or "bfloat16")
                end,
            }
            local y = f[c.name]()
            local want = H.decode_spec(c.out)
            assert.are.equal(want.dtype, y:dtype())
            -- sums and var may add in another order than PyTorch: one ulp; the rest exact
            local loose = c.name == "sum" or c.name == "mean" or c.name == "var" or c.name:find("softmax")
                or c.name == "cumsum"
            local got = y:double()
            local w = tide.tensor(#want.values == 1 and want.values or want.values, "float64"):reshape(got:shape())
            if loose then
                close_lowp(got, w, 2, dt, 0, c.name)
            else
                H.check_tensor(got, {values = want.values, shape = want.shape, dtype = "float64"}, 0, 0, c.name)
            end
        end)
    end
end)

describe("comparisons, where and masks", function()
    for _, dt in ipairs(LOWP) do
        it(dt .. ": eq ne lt le gt ge, isclose, allclose, where, masked_fill, clamp, nan_to_num", function()
            local a = tide.tensor({1, 2, 0 / 0, -1, 0.5}, dt)
            local b = tide.tensor({1, 3, 0 / 0, -2, 0.5}, dt)
            assert.are.same({1, 0, 0, 0, 1}, a:eq(b):totable())
            assert.are.same({0, 1, 1, 1, 0}, a:ne(b):totable())
            assert.are.same({0, 1, 0, 0, 0}, a:lt(b):totable())
            assert.are.same({1, 1, 0, 0, 1}, a:le(b):totable())
            assert.are.same({0, 0, 0, 1, 0}, a:gt(b):totable())
            assert.are.same({1, 0, 0, 1, 1}, a:ge(b):totable())
            assert.are.same({1, 1, 0, 1, 1}, a:gt(-1.5):totable())
            assert.are.same({1, 0, 1, 0, 1}, tide.isclose(a, b, {equal_nan = true}):totable())
            assert.is_false(tide.allclose(a, b))
            assert.is_false(tide.equal(a, a)) -- NaN equals nothing
            assert.is_true(tide.equal(a:narrow(0, 0, 2), tide.tensor({1, 2})))
            assert.is_false(a:narrow(0, 0, 2):equal(tide.tensor({{1, 2}})))
            assert.is_true(tide.allclose(a, a, {equal_nan = true}))
            -- within the dtype's resolution, not float32's
            local c = tide.tensor({1}, dt) + U[dt]
            assert.is_true(tide.allclose(c, tide.tensor({1}, dt), {rtol = 4 * U[dt]}))
            local w = tide.where(a:gt(0), a, b)
            assert.are.equal(dt, w:dtype())
            assert.are.same({1, 2, 0.5}, {w:get(0), w:get(1), w:get(4)})
            assert.are.equal(dt, tide.where(a:gt(0), a, 0):dtype())
            assert.are.equal("float32", tide.where(a:gt(0), a, tide.zeros({5})):dtype())
            local m = a:masked_fill(a:lt(0), 7)
            assert.are.equal(dt, m:dtype())
            assert.are.same(7, m:get(3))
            assert.are.same({1, 1, -1, 0.5}, {a:clamp(-1, 1):get(0), a:clamp(-1, 1):get(1), a:clamp(-1, 1):get(3),
                                             a:clamp(-1, 1):get(4)})
            local n = tide.tensor({0 / 0, math.huge, -math.huge}, dt):nan_to_num()
            assert.are.same({0, tide.finfo(dt).max, -tide.finfo(dt).max}, n:totable())
        end)
    end
end)

describe("type promotion", function()
    it("low + float32 -> float32, + float64 -> float64, bfloat16 + float16 -> float32, integers keep it", function()
        local b, h = tide.ones({2}, {dtype = "bfloat16"}), tide.ones({2}, {dtype = "float16"})
        assert.are.equal("float32", (b + tide.ones({2})):dtype())
        assert.are.equal("float32", (tide.ones({2}) * h):dtype())
        assert.are.equal("float64", (b + tide.ones({2}, {dtype = "float64"})):dtype())
        assert.are.equal("float32", (b + h):dtype())
        assert.are.equal("bfloat16", (b + tide.ones({2}, {dtype = "int64"})):dtype())
        assert.are.equal("float16", (tide.ones({2}, {dtype = "uint8"}) - h):dtype())
        assert.are.equal("bfloat16", (b * 2.5):dtype())
        assert.are.equal("float16", (3 / h):dtype())
        assert.are.equal("bfloat16", (tide.tensor({1, 2}, "int64") / tide.tensor(2, "bfloat16")):dtype())
        assert.are.equal("bfloat16", b:maximum(tide.tensor({3, 0}, "int64")):dtype())
    end)

    it("in place keeps the tensor's dtype", function()
        local b = tide.ones({3}, {dtype = "bfloat16"})
        b:add_(tide.tensor({0.1, 0.2, 0.3}))
        assert.are.equal("bfloat16", b:dtype())
        assert.are.same(tide.tensor({1.1, 1.2, 1.3}):bfloat16():totable(), b:totable())
        local i = tide.ones({2}, {dtype = "int64"})
        local lb = tide.ones({2}, {dtype = "bfloat16"})
        assert.matches("cannot be stored in place", H.error_of(function() i:add_(lb) end))
    end)
end)

describe("autograd in low precision", function()
    for _, dt in ipairs(LOWP) do
        it(dt .. ": gradients come back in the tensor's dtype, near float32's", function()
            tide.manual_seed(3)
            local x0 = tide.randn({4, 6})
            local function loss(x)
                return (x * x):sum() + x:sigmoid():mean() + x:softmax(1):select(1, 0):sum() + x:exp():sum() / 10
                    + x:var() + x:norm() + x:logsumexp(1):sum() + x:amax(0):sum() + x:cumsum(1):sum() / 20
                    + (x * 3 - 1):relu():sum()
            end
            local x = x0:to(dt)
            x.requires_grad = true
            local l = loss(x)
            assert.are.equal(dt, l:dtype())
            l:backward()
            assert.are.equal(dt, x.grad:dtype())
            local xf = x0:to(dt):float()
            xf.requires_grad = true
            loss(xf):backward()
            -- each term's gradient rounds a few times in the low dtype
            close_lowp(x.grad, xf.grad, 16, dt, 1, "grad")
        end)
    end

    it("through a conversion: float32 leaf, bfloat16 compute, float32 gradient", function()
        local w = tide.randn({5})
        w.requires_grad = true
        local y = (w:bfloat16() * 2):sum()
        y:backward()
        assert.are.equal("float32", w.grad:dtype())
        assert.are.same({2, 2, 2, 2, 2}, w.grad:totable())
    end)
end)

describe("stochastic rounding", function()
    for _, dt in ipairs(LOWP) do
        it(dt .. ": up with probability proportional to the distance, unbiased, seeded", function()
            local u = U[dt]
            -- a quarter of the way from 1 to the next value: up a quarter of the time
            local v = 1 + 0.25 * 2 * u
            local x = tide.full({100000}, v)
            tide.manual_seed(1)
            local r = x:to(dt, {rounding = "stochastic"})
            assert.are.equal(dt, r:dtype())
            local f = r:double()
            local lo, hi = 1, 1 + 2 * u
            assert.are.equal(1, f:eq(lo):logical_or(f:eq(hi)):all():item())
            assert.is_near(0.25, f:eq(hi):double():mean():item(), 0.01)
            assert.is_near(v, f:mean():item(), 0.02 * u)
            -- nearest rounding is biased here; stochastic is not
            assert.are.equal(1, x:to(dt):double():mean():item())
            -- exact values stay, negatives mirror, specials as nearest
            local s = tide.tensor({0.5, -v, 0 / 0, math.huge, -0.0}):to(dt, {rounding = "stochastic"}):totable()
            assert.are.equal(0.5, s[1])
            assert.is_true(s[2] == -lo or s[2] == -hi)
            assert.is_true(is_nan(s[3]))
            assert.are.equal(math.huge, s[4])
            assert.are.equal(-math.huge, 1 / s[5])
            -- the same seed, the same draws
            tide.manual_seed(1)
            assert.are.equal(1, x:to(dt, {rounding = "stochastic"}):eq(r):all():item())
            -- mean of many random values: unbiased to well under one ulp
            tide.manual_seed(2)
            local y = tide.rand({200000}) * 3 + 1
            local e = (y:to({dtype = dt, rounding = "stochastic"}):double() - y:double()):mean():item()
            assert.is_true(math.abs(e) < 0.05 * u * 4, "bias " .. e)
        end)
    end

    it("past the largest finite value, inf counts as the next step", function()
        local m = tide.finfo("float16").max -- 65504; the next step would be 65536
        tide.manual_seed(4)
        local r = tide.full({20000}, 65520):to("float16", {rounding = "stochastic"}):double()
        assert.is_near(0.5, r:eq(math.huge):double():mean():item(), 0.02)
        assert.are.equal(1, r:eq(m):logical_or(r:eq(math.huge)):all():item())
    end)

    it("refuses other targets, other sources and unknown roundings", function()
        local x = tide.ones({2})
        assert.matches("to.*stochastic.*bfloat16 and float16.*float64",
                       H.error_of(function() return x:to("float64", {rounding = "stochastic"}) end))
        assert.matches("to.*stochastic.*float32 tensors, got float64",
                       H.error_of(function() return x:double():to("bfloat16", {rounding = "stochastic"}) end))
        assert.matches("rounding must be \"nearest\" or \"stochastic\"",
                       H.error_of(function() return x:to("bfloat16", {rounding = "up"}) end))
        assert.matches("unknown option 'round'",
                       H.error_of(function() return x:to("bfloat16", {round = "stochastic"}) end))
        assert.are.equal("bfloat16", x:to("bfloat16", {rounding = "nearest"}):dtype())
        -- a gradient flows back to float32
        local w = tide.ones({3})
        w.requires_grad = true
        w:to("bfloat16", {rounding = "stochastic"}):sum():backward()
        assert.are.same({1, 1, 1}, w.grad:totable())
    end)
end)

describe("safetensors", function()
    it("saves and loads BF16 and F16 bit for bit", function()
        local dir = tmpdir()
        local b = (tide.randn({3, 4}) * 100):bfloat16()
        local h = tide.randn({5}):half()
        tide.save(dir .. "/m.safetensors", {b = b, h = h, e = tide.zeros({0, 2}, {dtype = "float16"})})
        local t = tide.load(dir .. "/m.safetensors")
        assert.are.equal("bfloat16", t.b:dtype())
        assert.are.equal("float16", t.h:dtype())
        assert.are.equal(1, t.b:eq(b):all():item())
        assert.are.equal(1, t.h:eq(h):all():item())
        assert.are.same({0, 2}, t.e:shape())
        local header = H.read_file(dir .. "/m.safetensors")
        assert.truthy(header:find('"dtype":"BF16"', 1, true))
        assert.truthy(header:find('"dtype":"F16"', 1, true))
    end)

    it("loads a file laid out as PyTorch's safetensors writes it", function()
        local t, meta = tide.load("tests/reference/lowp.safetensors")
        assert.are.equal("pt", meta.format)
        for name, spec in pairs(data.file) do
            local s = H.decode_spec(spec)
            assert.are.equal(s.dtype, t[name]:dtype(), name)
            assert.are.same(s.shape, t[name]:shape(), name)
            local got = t[name]:double():reshape({-1}):totable()
            for i, v in ipairs(s.values) do assert(same(got[i], v), name .. " [" .. i .. "]") end
        end
    end)
end)

-- ---- every other op: a correct result, or a refusal that says why ------------

describe("ops beyond the elementwise ones: a correct result or an error naming the op and dtype", function()
    local F = tide.F
    -- each: name, and a call on x (2, 3, 4, 4) of the dtype under test; the
    -- same call on x:float() is the reference for a result
    local function like(x, shape) return tide.randn(shape):to(x:dtype()) end
    local ops = {
        {"conv2d", function(x) return F.conv2d(x, like(x, {2, 3, 3, 3})) end},
        {"conv1d", function(x) return F.conv1d(x:select(3, 0), like(x, {2, 3, 3})) end},
        {"conv3d", function(x) return F.conv3d(x:unsqueeze(2), like(x, {2, 3, 1, 3, 3})) end},
        {"conv_transpose2d", function(x) return F.conv_transpose2d(x, like(x, {3, 2, 3, 3})) end},
        {"linear", function(x) return F.linear(x, like(x, {5, 4})) end},
        {"matmul", function(x) return x:matmul(x) end},
        {"mm", function(x) return tide.mm(x:select(0, 0):select(0, 0), x:select(0, 0):select(0, 1)) end},
        {"bmm", function(x) return tide.bmm(x:select(0, 0), x:select(0, 1)) end},
        {"einsum", function(x)
            return tide.einsum("ij,jk->ik", x:select(0, 0):select(0, 0), x:select(0, 1):select(0, 0))
        end},
        {"batch_norm", function(x) return F.batch_norm(x, tide.zeros({3}), tide.ones({3})) end},
        {"layer_norm", function(x) return F.layer_norm(x, {4}) end},
        {"group_norm", function(x) return F.group_norm(x, 3) end},
        {"instance_norm", function(x) return F.instance_norm(x) end},
        {"max_pool2d", function(x) return F.max_pool2d(x, 2) end},
        {"avg_pool2d", function(x) return F.avg_pool2d(x, 2) end},
        {"max_pool1d", function(x) return F.max_pool1d(x:select(3, 0), 2) end},
        {"adaptive_avg_pool2d", function(x) return F.adaptive_avg_pool2d(x, 1) end},
        {"adaptive_max_pool2d", function(x) return F.adaptive_max_pool2d(x, 1) end},
        {"dropout", function(x) return F.dropout(x, {p = 0.5, training = false}) end},
        {"dropout(training)", function(x) return F.dropout(x, {p = 0.5}) end, "no reference"},
        {"leaky_relu", function(x) return F.leaky_relu(x) end},
        {"prelu", function(x) return F.prelu(x, like(x, {3})) end},
        {"glu", function(x) return F.glu(x) end},
        {"softmin", function(x) return F.softmin(x, 1) end},
        {"embedding", function(x) return F.embedding(tide.tensor({0, 1}, "int64"), x:select(0, 0):select(0, 0)) end},
        {"pad", function(x) return F.pad(x, {1, 1}) end},
        {"interpolate", function(x) return F.interpolate(x, {scale_factor = 2}) end},
        {"pixel_shuffle", function(x)
            return F.pixel_shuffle(x:narrow(1, 0, 1):expand({2, 4, 4, 4}):contiguous(), 2)
        end},
        {"cross_entropy", function(x)
            return F.cross_entropy(x:select(2, 0):select(2, 0), tide.tensor({0, 1}, "int64"))
        end},
        {"mse_loss", function(x) return F.mse_loss(x, x * 0.5) end},
        {"binary_cross_entropy_with_logits", function(x) return F.binary_cross_entropy_with_logits(x, x:sigmoid()) end},
        {"nll_loss", function(x) return F.nll_loss(x:select(2, 0):select(2, 0), tide.tensor({0, 1}, "int64")) end},
        {"kl_div", function(x) return F.kl_div(x:log_softmax(1), x:softmax(1)) end},
        {"cosine_embedding_loss", function(x)
            local a, b = x:select(2, 0):select(2, 0), x:select(2, 1):select(2, 0)
            return F.cosine_embedding_loss(a, b, tide.tensor({1, -1}))
        end},
        {"scaled_dot_product_attention", function(x) return F.scaled_dot_product_attention(x, x, x) end},
        {"lstm", function(x)
            tide.manual_seed(9)
            local m = tide.nn.LSTM(4, 3):to(x:dtype())
            return m(x:select(0, 0))
        end},
        {"sgd", function(x)
            local p = x:clone()
            p.requires_grad = true
            local opt = tide.optim.SGD({p}, {lr = 0.1})
            p.grad = x * 2
            opt:step()
            return p:detach()
        end},
        {"one_hot", function(x) return F.one_hot(x:select(0, 0):select(0, 0):abs():long()) end},
        {"logsumexp", function(x) return x:logsumexp({1, 2}) end},
        -- inf becomes the dtype's largest value: checked above, no float32 reference
        {"nan_to_num", function(x) return (x / 0):nan_to_num() end, "no reference"},
        {"round(decimals)", function(x) return x:round({decimals = 1}) end},
        {"clamp(tensor)", function(x) return x:clamp(x * 0 - 0.5, x * 0 + 0.5) end},
        {"masked_fill(tensor)", function(x) return x:masked_fill(x:gt(0), x:sum()) end},
    }
    local function first(t) return type(t) == "table" and t[1] or t end
    for _, dt in ipairs(LOWP) do
        for _, c in ipairs(ops) do
            it(dt .. " " .. c[1], function()
                tide.manual_seed(1)
                local x = tide.randn({2, 3, 4, 4}):to(dt)
                tide.manual_seed(2)
                local ok, got = pcall(c[2], x)
                if not ok then
                    -- refused: the error names the op's dtype (and is a Lua error,
                    -- not a crash)
                    local err = tostring(got)
                    assert.truthy(err:find(dt, 1, true), err)
                    return
                end
                got = first(got)
                assert.is_true(tide.is_tensor(got), c[1] .. " gave no tensor")
                if c[3] then return end
                tide.manual_seed(2)
                local want = first(c[2](x:float()))
                if got:dtype() == "int64" or got:dtype() == "uint8" then
                    assert.are.same(want:totable(), got:totable())
                    return
                end
                assert.is_true(got:dtype() == dt or got:dtype() == "float32", c[1] .. " gave " .. got:dtype())
                -- normwise: each result within a few roundings of the float32 one
                local scale = want:double():abs():nan_to_num():max():item() + 1
                local diff = (got:double() - want:double()):abs()
                local e = diff:nan_to_num({nan = 0, posinf = 0, neginf = 0}):max():item()
                assert(e <= 16 * U[dt] * scale,
                       string.format("%s %s: off by %.3g (scale %.3g, u %.3g)", dt, c[1], e, scale, U[dt]))
            end)
        end
    end

    it("shape, indexing and reordering ops move the 2-byte elements exactly", function()
        local x = (tide.randn({3, 4, 5}) * 10):bfloat16()
        local f = x:float()
        local function same_as(got, want)
            return got:dtype() == "bfloat16" and got:float():eq(want):all():item() == 1
        end
        assert.is_true(same_as(x:transpose(0, 2):contiguous(), f:transpose(0, 2):contiguous()))
        assert.is_true(same_as(x:permute({2, 0, 1}):contiguous(), f:permute({2, 0, 1}):contiguous()))
        assert.is_true(same_as(tide.cat({x, x}, 1), tide.cat({f, f}, 1)))
        assert.is_true(same_as(tide.stack({x, x}), tide.stack({f, f})))
        assert.is_true(same_as(x:narrow(2, 1, 3), f:narrow(2, 1, 3)))
        assert.is_true(same_as(x:flip(1), f:flip(1)))
        assert.is_true(same_as(x:roll(2, 1), f:roll(2, 1)))
        assert.is_true(same_as(x:tril(), f:tril()))
        assert.is_true(same_as(x:triu(1), f:triu(1)))
        local i = tide.tensor({2, 0, 2}, "int64")
        assert.is_true(same_as(x:index_select(1, i), f:index_select(1, i)))
        local g = tide.tensor({{{0, 1}}, {{2, 2}}, {{4, 0}}}, "int64")
        assert.is_true(same_as(x:gather(2, g), f:gather(2, g)))
        local src = tide.ones({3, 1, 2}, {dtype = "bfloat16"})
        assert.is_true(same_as(x:scatter(2, g, src), f:scatter(2, g, src:float())))
        -- adds through an index: each rounds to the dtype, as PyTorch's
        -- (distinct indices here, so one rounding each)
        local gu = tide.tensor({{{0, 1}}, {{2, 3}}, {{4, 0}}}, "int64")
        assert.is_true(same_as(x:scatter_add(2, gu, src), f:scatter_add(2, gu, src:float()):bfloat16():float()))
        local iu = tide.tensor({2, 0, 1}, "int64")
        assert.is_true(same_as(x:index_add(1, iu, x:narrow(1, 0, 3)),
                               f:index_add(1, iu, f:narrow(1, 0, 3)):bfloat16():float()))
        local parts = x:split(2, 2)
        assert.are.equal(3, #parts)
        assert.is_true(same_as(parts[3], f:narrow(2, 4, 1)))
        local x4, f4 = x:unsqueeze(0), f:unsqueeze(0)
        local cl = x4:contiguous({memory_format = "channels_last"})
        assert.is_true(cl:is_contiguous({memory_format = "channels_last"}))
        assert.is_true(same_as(cl:contiguous(), f4))
        assert.is_true(same_as(cl + 1, (f4 + 1):bfloat16():float()))
    end)
end)
