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
print(string.format("%d passed, %d failed", checked - failed, failed))
os.exit(failed == 0 and 0 or 1)
