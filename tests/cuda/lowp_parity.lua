-- bfloat16 and float16 on CUDA against the CPU (docs/precision.md):
-- storage, copies both ways, conversion on the device (every bit pattern
-- of both formats to float32 and back, and rounding of float32 values to
-- nearest even), fill, every row of the elementwise op table, reductions,
-- the element moves, and the clear refusal of the ops whose CUDA kernels
-- do not take the dtypes yet.
--
-- The CUDA kernels compute in float32 as the CPU's do, so conversions,
-- fills, moves and exact arithmetic agree bit for bit; the transcendental
-- functions of the two devices differ by an ulp of float32, which can move
-- a rounding to the low dtype by one of its ulps, and sums may add in
-- another order: those compare within 2 ulps of the low dtype.
--
-- Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable;
-- TIDE_LOWP_PARITY_DEVICE=cpu runs it CPU against CPU (a check of this
-- script on a machine without a GPU).
local tide = require "tide"

local device = os.getenv("TIDE_LOWP_PARITY_DEVICE") or "cuda"
if device ~= "cpu" and not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local U = {bfloat16 = 2 ^ -8, float16 = 2 ^ -11}
local failures, checks = 0, 0

local function check(ok, what)
    checks = checks + 1
    if not ok then
        failures = failures + 1
        print("FAIL " .. what)
    end
end

-- the same bits (NaN where NaN: payloads may differ between devices)
local function same_bits(a, b)
    local x, y = a:cpu():double(), b:cpu():double()
    local both_nan = x:isnan():logical_and(y:isnan())
    local eq = x:eq(y):logical_or(both_nan)
    -- -0 and 0 compare equal: tell them apart through 1/x
    local signs = (x:reciprocal():sign()):eq(y:reciprocal():sign()):logical_or(x:ne(0)):logical_or(both_nan)
    return eq:logical_and(signs):all():item() == 1
end

-- within k ulps of the low dtype (plus its smallest normal for subnormals)
local function near(a, b, dt, k)
    local x, y = a:cpu():double(), b:cpu():double()
    local nan = x:isnan():logical_and(y:isnan())
    local inf = x:isinf():logical_and(x:eq(y))
    local tol = y:abs() * (k * U[dt]) + k * U[dt] * tide.finfo(dt).tiny
    local ok = (x - y):abs():le(tol):logical_or(nan):logical_or(inf)
    return ok:all():item() == 1
end

-- every 16-bit pattern of dt, built on the CPU from float32 values whose
-- conversion is exact (the CPU's own exhaustive test checks those bits)
local function all_values(dt)
    local out = {}
    for i = 0, 65535 do
        local v
        if dt == "bfloat16" then
            v = string.unpack("<f", string.pack("<I4", i << 16))
        else
            local s = (i & 0x8000) ~= 0 and -1 or 1
            local e, m = (i >> 10) & 0x1f, i & 0x3ff
            if e == 0x1f then
                v = m == 0 and s * math.huge or 0 / 0
            elseif e == 0 then
                v = s * (m * 2.0 ^ -24)
            else
                v = s * (1 + m / 1024) * 2.0 ^ (e - 15)
            end
        end
        out[#out + 1] = v
    end
    return tide.tensor(out):to(dt)
end

for _, dt in ipairs({"bfloat16", "float16"}) do
    -- storage and copies
    local x = all_values(dt)
    local d = x:to(device)
    check(d:dtype() == dt and d:device():find(device, 1, true) == 1, dt .. " storage on " .. device)
    check(same_bits(d:cpu(), x), dt .. " copy to the device and back")
    -- conversion on the device: to float32 and back, exact
    check(same_bits(d:float(), x:float()), dt .. " to float32 on the device")
    check(same_bits(d:float():to(dt), x), dt .. " back from float32 on the device")
    check(same_bits(d:double():to(dt), x), dt .. " through float64 on the device")
    -- rounding of float32 values to nearest even: random values of every
    -- magnitude, and the midpoints between neighbours (ties)
    tide.manual_seed(1)
    local r = tide.randn({100000}) * tide.rand({100000}):mul(60):sub(30):exp()
    check(same_bits(r:to(device):to(dt), r:to(dt)), dt .. " float32 rounding on the device")
    local mids = (x:float():narrow(0, 0, 30000) + x:float():narrow(0, 1, 30000)) / 2
    check(same_bits(mids:to(device):to(dt), mids:to(dt)), dt .. " ties to even on the device")
    check(same_bits(r:to(device):to(dt):to("float16"), r:to(dt):to("float16")), dt .. " to float16")
    check(same_bits(tide.tensor({7, -3, 255}, "int64"):to(device):to(dt), tide.tensor({7, -3, 255}):to(dt)),
          dt .. " from int64 on the device")
    -- fill and elements
    check(same_bits(tide.full({5}, 0.1, {dtype = dt}):to(device):fill_(0.3), tide.full({5}, 0.3, {dtype = dt})),
          dt .. " fill")
    local e = tide.zeros({3}, {dtype = dt}):to(device)
    e:set(1.7, 1)
    check(e:get(1) == tide.tensor({1.7}):to(dt):item(), dt .. " set and get")

    -- the op table, on the same low-precision inputs
    for _, row in ipairs(tide.op_table()) do
        tide.manual_seed(2)
        local a = tide.randn({300}) * 2
        if row.domain == "positive" then a = a:abs() + 0.5 end
        if row.domain == "unit" then a = a:tanh() * 0.9 end
        if row.domain == "above_one" then a = a:abs() + 1.25 end
        if row.domain == "off_integer" then a = (a * 4):floor() / 4 + 0.125 end
        a = a:to(dt)
        local b = a:flip(0)
        local args = {}
        for _, p in ipairs(row.params) do
            if p.required then args[#args + 1] = p.typical end
        end
        local fn = row.scope == "F" and tide.F[row.name] or tide[row.name]
        local function call(u, v)
            if row.arity == 1 then return fn(u, table.unpack(args)) end
            return fn(u, v, table.unpack(args))
        end
        local ok, got = pcall(call, a:to(device), b:to(device))
        if not ok then
            check(false, dt .. " " .. row.name .. ": " .. tostring(got))
        else
            local want = call(a, b)
            check(got:dtype() == want:dtype(), dt .. " " .. row.name .. " dtype")
            check(near(got, want, dt, 2), dt .. " " .. row.name)
        end
    end

    -- arithmetic with broadcasting and numbers, comparisons, where, gradients
    tide.manual_seed(3)
    local a = tide.randn({16, 33}):to(dt)
    local b = tide.randn({33}):to(dt)
    local ad, bd = a:to(device), b:to(device)
    check(same_bits((ad + bd) * 3 - ad / 2, (a + b) * 3 - a / 2), dt .. " broadcast arithmetic")
    check(same_bits(ad:gt(bd):cpu(), a:gt(b)), dt .. " comparison")
    check(same_bits(tide.where(ad:gt(0), ad, bd), tide.where(a:gt(0), a, b)), dt .. " where")
    check(same_bits(ad:masked_fill(ad:lt(0), 0.5), a:masked_fill(a:lt(0), 0.5)), dt .. " masked_fill")
    check(same_bits(ad:clamp(-0.5, 0.5), a:clamp(-0.5, 0.5)), dt .. " clamp")
    check(same_bits((ad / 0):nan_to_num(), (a / 0):nan_to_num()), dt .. " nan_to_num")
    check(same_bits((ad + tide.ones({33}):to(device)):cpu(), a + tide.ones({33})), dt .. " promotion to float32")
    local g = ad:detach():requires_grad_()
    local lg = (g:sigmoid() * g):sum()
    lg:backward()
    local gc = a:detach():requires_grad_()
    local lc = (gc:sigmoid() * gc):sum()
    lc:backward()
    check(g.grad:dtype() == dt and near(g.grad, gc.grad, dt, 2), dt .. " gradient")

    -- reductions (float32 accumulation on both) and softmax
    local big = tide.randn({8, 5000}):to(dt)
    local bigd = big:to(device)
    for _, c in ipairs({
        {"sum", function(t) return t:sum() end},
        {"sum(1)", function(t) return t:sum(1) end},
        {"sum(0)", function(t) return t:sum(0) end},
        {"mean", function(t) return t:mean(1) end},
        {"var", function(t) return t:var(1) end},
        {"norm", function(t) return t:norm() end},
        {"prod", function(t) return (t:narrow(1, 0, 20) / 4 + 1):prod(1) end},
        {"amax", function(t) return t:amax(1) end},
        {"min", function(t) return t:min() end},
        {"softmax", function(t) return t:softmax(1) end},
        {"log_softmax(0)", function(t) return t:log_softmax(0) end},
        {"cumsum", function(t) return t:cumsum(1) end},
        {"logsumexp", function(t) return t:logsumexp(1) end},
    }) do
        local got, want = c[2](bigd), c[2](big)
        check(got:dtype() == dt and near(got, want, dt, 2), dt .. " " .. c[1])
    end
    check(same_bits(bigd:argmax(1):cpu(), big:argmax(1)), dt .. " argmax")
    check(same_bits(bigd:gt(3):any(1):cpu(), big:gt(3):any(1)), dt .. " any")
    check(bigd:ne(0):all():item() == big:ne(0):all():item(), dt .. " all")
    check(tide.ones({4096}, {dtype = dt}):to(device):sum():item() == 4096, dt .. " sum accumulates in float32")

    -- element moves
    local idx = tide.tensor({4, 0, 4, 2}, "int64")
    check(same_bits(ad:index_select(0, idx:to(device)), a:index_select(0, idx)), dt .. " index_select")
    check(same_bits(tide.cat({ad, ad}, 1), tide.cat({a, a}, 1)), dt .. " cat")
    check(same_bits(ad:t():contiguous(), a:t():contiguous()), dt .. " transpose copy")
    local si = tide.tensor({{0, 2, 2}}, "int64")
    local src = tide.ones({1, 3}, {dtype = dt})
    check(same_bits(ad:scatter(0, si:to(device), src:to(device)), a:scatter(0, si, src)), dt .. " scatter")
    check(same_bits(ad:scatter_add(1, si:to(device), src:to(device)), a:scatter_add(1, si, src)),
          dt .. " scatter_add")
    check(same_bits(ad:index_add(0, idx:to(device), ad:narrow(0, 0, 4)), a:index_add(0, idx, a:narrow(0, 0, 4))),
          dt .. " index_add")
    -- max along a dim scatters its gradient
    local mg = ad:detach():requires_grad_()
    local lm = mg:max(1):sum()
    lm:backward()
    local mc = a:detach():requires_grad_()
    local lmc = mc:max(1):sum()
    lmc:backward()
    check(same_bits(mg.grad, mc.grad), dt .. " max(dim) gradient")

    -- refused: an error naming the op and the dtype, never a wrong number
    if device ~= "cpu" then
        for name, f in pairs({
            layer_norm = function() return tide.F.layer_norm(ad, {33}) end,
            embedding = function() return tide.F.embedding(idx:to(device), ad) end,
            conv2d = function()
                return tide.F.conv2d(ad:view({1, 1, 16, 33}), tide.ones({1, 1, 3, 3}, {dtype = dt}):to(device))
            end,
        }) do
            local ok, err = pcall(f)
            check(not ok and tostring(err):find(dt, 1, true) ~= nil,
                  dt .. " " .. name .. " refused on " .. device .. ": " .. tostring(err))
        end
    end
end

print(string.format("%d of %d checks passed on %s", checks - failures, checks, device))
os.exit(failures == 0 and 0 or 1)
