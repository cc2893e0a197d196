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
    return x
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
    local y = tide[row.name](table.unpack(args, 1, row.arity))
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
    batch_norm_empty = function(dev)
        local rm, rv = tide.tensor({0.5, 1}, "float64"):to(dev), tide.tensor({2, 3}, "float64"):to(dev)
        local w = leaf({1.5, 2}, dev)
        local y = tide.F.batch_norm(tide.zeros({0, 2}, "float64"):to(dev), rm, rv, {weight = w, training = true})
        y:sum():backward()
        return {y, rm, rv, w.grad}
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
