-- CPU against CUDA for every row of the elementwise op table
-- (tide.op_table()): the same samples of each row's domain on both
-- devices, the value and the gradient of each input. A new row gets this
-- with no new test code.
--
-- float64 on both sides; the devices' libm differ by an ulp or two in the
-- transcendental functions, so values agree to 1e-12 relative to the
-- largest magnitude. A wrong kernel misses that by orders of magnitude.
--
-- Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable;
-- TIDE_OP_PARITY_DEVICE=cpu runs it CPU against CPU (a check of this
-- script on a machine without a GPU).
local tide = require "tide"

local device = os.getenv("TIDE_OP_PARITY_DEVICE") or "cuda"
if device ~= "cpu" and not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local function sample(row, shape)
    local x = tide.randn(shape, {dtype = "float64"})
    if row.domain == "positive" then return x:abs() + 0.5 end
    if row.domain == "off_kink" then return x:sign() * (x:abs() + 0.1) end
    -- odd multiples of 1/8: 1/8 or more from every integer and half, where floor and round jump
    if row.domain == "off_integer" then return (x * 4):floor() / 4 + 0.125 end
    if row.domain == "unit" then return x:tanh() * 0.9 end
    if row.domain == "above_one" then return x:abs() + 1.25 end
    return x
end

-- the row's function (tide.F's for rows only there), and its parameters:
-- the typical values of the required ones, then a value of each optional
-- one other than its default, so that the kernels' use of them is compared
local function fn_of(row) return row.scope == "F" and tide.F[row.name] or tide[row.name] end
local function params_of(row)
    local pos, named = {}, {}
    for _, p in ipairs(row.params) do
        if p.required then
            pos[#pos + 1] = p.typical
        elseif p.choices then
            named[p.name] = p.choices[#p.choices]
        else
            named[p.name] = p.default * 0.75 + 0.125
        end
    end
    return pos, named
end

local function close(a, b)
    a, b = a:double(), b:double()
    local scale = math.max(a:abs():max():item(), 1e-30)
    return (a - b):abs():max():item() <= 1e-12 * scale
end

local function run(row, inputs, dev)
    local args = {}
    for i, x in ipairs(inputs) do
        args[i] = x:to(dev)
        if row.node then args[i] = args[i]:detach():requires_grad_() end
    end
    local call = {table.unpack(args, 1, row.arity)}
    if row.arity == 1 then
        local pos, named = params_of(row)
        for _, v in ipairs(pos) do call[#call + 1] = v end
        call[#call + 1] = named
    end
    local y = fn_of(row)(table.unpack(call))
    local grads = {}
    if row.node then
        y:sum():backward()
        for i, a in ipairs(args) do grads[i] = a.grad:cpu() end
    end
    return y:cpu(), grads
end

local checked, failed = 0, 0
for _, row in ipairs(tide.op_table()) do
    tide.manual_seed(7)
    local inputs = {}
    for i = 1, row.arity do inputs[i] = sample(row, {33, 65}) end
    local y1, g1 = run(row, inputs, "cpu")
    local y2, g2 = run(row, inputs, device)
    checked = checked + 1
    local ok = close(y1, y2)
    for i, g in pairs(g1) do ok = ok and close(g, g2[i]) end
    if not ok then
        failed = failed + 1
        print("FAIL " .. row.name)
    end
end
-- PyTorch's corner cases (tests/lua/semantics_spec.lua has their values):
-- each returns the tensors to compare, made on dev
local nan = 0 / 0
local function leaf(v, dev) return tide.tensor(v, "float64"):to(dev):requires_grad_() end
local corners = {
    -- every unary row with a gradient over each activation's branches and
    -- boundary points, the infinities and NaN: values and gradients
    unary_edges = function(dev)
        local out, inf = {}, 1 / 0
        local v = {-inf, -40, -20, -3.5, -3, -2.5, -1, -0.5, -1e-3, 0, 1e-3, 0.5, 1, 2.5, 3, 3.5, 6,
                   6.5, 19.5, 20, 20.5, 40, inf, nan}
        for _, row in ipairs(tide.op_table()) do
            if row.arity == 1 and row.node then
                local x = leaf(v, dev)
                local args, named = params_of(row)
                table.insert(args, 1, x)
                args[#args + 1] = named
                local y = fn_of(row)(table.unpack(args))
                y:sum():backward()
                out[#out + 1], out[#out + 2] = y, x.grad
            end
        end
        return out
    end,
    relu_nan = function(dev)
        local x = leaf({nan, -1, 0, 2}, dev)
        x:relu():sum():backward()
        return {x.grad}
    end,
    maximum_minimum_nan = function(dev)
        local out = {}
        for _, fn in ipairs({tide.maximum, tide.minimum}) do
            local a, b = leaf({{nan, 1, 2}, {3, 4, -1}}, dev), leaf({1, nan, 2}, dev)
            local y = fn(a, b)
            y:sum():backward()
            out[#out + 1], out[#out + 2], out[#out + 3] = y, a.grad, b.grad
        end
        return out
    end,
    pow_zero_zero = function(dev)
        local a, b = leaf({0, 0, 0, 2, 0}, dev), leaf({0, 1, -1, 0, 0.5}, dev)
        a:pow(b):sum():backward()
        local c = leaf({0, -2}, dev)
        c:pow(0):sum():backward()
        return {a.grad, b.grad, c.grad}
    end,
    max_dim_0dim = function(dev)
        local v, i = tide.tensor(2.0, "float64"):to(dev):max(0)
        return {v, i}
    end,
    masked_fill_broadcast = function(dev)
        local x = leaf({{1}, {2}}, dev)
        local y = x:masked_fill(tide.tensor({{1, 0, 0}}, "uint8"):to(dev), -1)
        y:sum():backward()
        return {y, x.grad}
    end,
    gather_0dim = function(dev)
        local x = leaf(2.5, dev)
        local y = x:gather(0, tide.tensor({0, 0, 0}, "int64"):to(dev))
        y:sum():backward()
        return {y, x.grad}
    end,
    cat_skips_empty = function(dev)
        local e, a = leaf({}, dev):view({0}), leaf({{1, 2}, {3, 4}}, dev)
        return {tide.cat({e, a, e}, 1)}
    end,
    -- sort, topk, flip, roll, tril, triu: ties, NaN, strided inputs, int64,
    -- long lines, and the gradients through the indices
    reorder = function(dev)
        tide.manual_seed(11)
        local out = {}
        local x = leaf({{3, nan, 1, 3, -1/0, nan, 1}, {2, 2, 0, 2, 5, -3, 0}}, dev)
        for _, desc in ipairs({false, true}) do
            local v, i = x:sort(1, desc)
            out[#out + 1], out[#out + 2] = v, i
            out[#out + 1] = x:argsort(0, desc)
        end
        local r = tide.randn({40, 300}, "float64"):to(dev):t():requires_grad_()
        local v, i = r:sort(0, true)
        local tv, ti = r:topk(17, 0, false)
        local ints = tide.randint(-5, 5, {6, 9}):to(dev)
        local iv, ii = ints:t():sort(1)
        local f = tide.randn({3, 4, 5}, "float64"):to(dev):requires_grad_()
        local flipped, rolled = f:flip({0, 2}), f:transpose(0, 2):roll({2, -1}, {0, 1})
        local flat, low, up = f:roll(7), f:tril(1), f:transpose(1, 2):triu(-1)
        local w = tide.randn({40, 300}, "float64"):to(dev)
        ;((v * w:t()):sum() + tv:sum()):backward()
        ;(flipped:sum() + (rolled * rolled):sum() + (flat * flat):sum() + low:sum() + up:sum()):backward()
        for _, t in ipairs({v, i, tv, ti, iv, ii, flipped, rolled, flat, low, up, r.grad, f.grad,
            ints:roll(3), ints:flip(1), ints:tril(), ints:topk(2)}) do
            out[#out + 1] = t
        end
        return out
    end,
    batch_norm_empty = function(dev)
        local rm, rv = tide.tensor({0.5, 1}, "float64"):to(dev), tide.tensor({2, 3}, "float64"):to(dev)
        local w = leaf({1.5, 2}, dev)
        local y = tide.F.batch_norm(tide.zeros({0, 2}, "float64"):to(dev), rm, rv, {weight = w, training = true})
        y:sum():backward()
        return {y, rm, rv, w.grad}
    end,
    -- floor, ceil, round, trunc, isnan, isinf, isfinite on halves and
    -- non-finite values, every dtype, strided; round's decimals,
    -- nan_to_num and its gradient, isclose, allclose, where with numbers
    rounding = function(dev)
        tide.manual_seed(17)
        local out = {}
        local inf = 1 / 0
        local x = tide.tensor({{-2.5, -0.5, 0.5, 1.5}, {2.5, 3.7, nan, inf}, {-inf, -0.49, 1e10 + 0.5, 0}},
                              "float64"):to(dev)
        for _, dt in ipairs({"float32", "float64", "int64", "uint8"}) do
            local t = dt:find("float") and x:to(dt):t() or tide.tensor({{0, 7}, {200, 3}}, dt):to(dev):t()
            for _, op in ipairs({"floor", "ceil", "round", "trunc", "isnan", "isinf", "isfinite"}) do
                out[#out + 1] = t[op](t)
            end
            out[#out + 1] = t:nan_to_num()
        end
        local r = tide.randn({7, 9}, "float64"):to(dev) * 100
        out[#out + 1], out[#out + 2] = r:round{decimals = 2}, r:float():round{decimals = -1}
        local g = leaf({-1.3, nan, inf, -inf, 4}, dev)
        local y = g:nan_to_num{nan = 1, posinf = 2, neginf = -3}
        y:sum():backward()
        local a = tide.tensor({1, 1, nan, inf, inf, 0}, "float64"):to(dev)
        local b = tide.tensor({1, 1 + 1e-6, nan, inf, -inf, 1e-8}, "float64"):to(dev)
        local c = tide.tensor({{1, 0, 1}, {0, 1, 1}}, "uint8"):to(dev)
        local w1, w2 = leaf({{1, 2, 3}, {4, 5, 6}}, dev), leaf({7, 8, 9}, dev)
        local wy = tide.where(c, w1, w2)
        ;(wy * wy):sum():backward()
        for _, t in ipairs({y, g.grad, a:isclose(b), a:isclose(b, {equal_nan = true, rtol = 0}),
            tide.tensor(a:allclose(a, {equal_nan = true}) and 1 or 0), wy, w1.grad, w2.grad,
            tide.where(c, 1.5, w2:detach()), tide.where(c, 1, 2)}) do
            out[#out + 1] = t
        end
        return out
    end,
    -- all, any, logsumexp, cumsum, cumprod (zeros and all), one_hot: rows
    -- (inner == 1) and columns, every dtype, long lines, the gradients
    reduce_scan = function(dev)
        tide.manual_seed(13)
        local out = {}
        local m = tide.tensor({{1, 0, nan}, {2, 3, 4}, {0, 0, 0}}, "float64"):to(dev)
        for _, dt in ipairs({"float32", "float64", "int64", "uint8"}) do
            local t = m:to(dt)
            for _, r in ipairs({t:all(), t:any(), t:all(0), t:any(1, true), t:all(-1)}) do
                out[#out + 1] = r
            end
        end
        local big = tide.rand({5, 3000}):gt(0.0005):to(dev)
        out[#out + 1], out[#out + 2] = big:all(1), big:t():any(0)
        local x = tide.randn({6, 300, 5}, "float64"):to(dev):requires_grad_()
        local l1, l2 = x:logsumexp(1), x:logsumexp({0, 2}, true)
        local inf = 1 / 0
        out[#out + 1] = tide.tensor({{-inf, -inf}, {inf, 1}, {nan, 1}, {1e4, -1e4}}):to(dev):logsumexp(1)
        local c1, c2, c3 = x:cumsum(1), x:cumsum(2), (x * 0.01 + 1):cumprod(1)
        local z = tide.tensor({{2, 0, 3, 0, 5}, {0, 3, 4, 0.5, 2}, {1, 2, 3, 4, 0}}, "float64")
            :to(dev):requires_grad_()
        local zc, zt = z:cumprod(1), z:t():cumprod(0)
        local w = tide.randn({6, 300, 5}, "float64"):to(dev)
        ;((l1 * w:select(1, 0)):sum() + l2:sum() + (c1 * w):sum() + (c2 * w):sum() + (c3 * w):sum()):backward()
        ;((zc * zc):sum() + (zt * 2):sum()):backward()
        local ints = tide.randint(-3, 4, {4, 50}):to(dev)
        for _, t in ipairs({l1, l2, c1, c2, c3, zc, zt, x.grad, z.grad, ints:cumsum(1), ints:cumprod(0),
            ints:to("uint8"):cumsum(1, {dtype = "uint8"}), ints:cumsum(1, {dtype = "float32"}),
            tide.F.one_hot(ints:abs(), 5), tide.F.one_hot(tide.tensor({0, 2}, "int64"):to(dev))}) do
            out[#out + 1] = t
        end
        return out
    end,
}

-- equal values, NaN where the other has NaN, infinities equal
local function same(a, b)
    if a:dtype() ~= b:dtype() or #a:shape() ~= #b:shape() or a:numel() ~= b:numel() then return false end
    if a:numel() == 0 then return true end
    local av, bv = a:double():reshape({-1}):totable(), b:double():reshape({-1}):totable()
    for i = 1, #av do
        local x, y = av[i], bv[i]
        if not (x == y or (x ~= x and y ~= y) or math.abs(x - y) <= 1e-12 * math.abs(x)) then return false end
    end
    return true
end

local names = {}
for name in pairs(corners) do names[#names + 1] = name end
table.sort(names)
for _, name in ipairs(names) do
    local want, got = corners[name]("cpu"), corners[name](device)
    local ok = #want == #got
    for i = 1, #want do ok = ok and same(want[i], got[i]:cpu()) end
    checked = checked + 1
    if not ok then
        failed = failed + 1
        print("FAIL " .. name)
    end
end

print(string.format("%d passed, %d failed", checked - failed, failed))
os.exit(failed == 0 and 0 or 1)
