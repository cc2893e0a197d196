-- CPU against CUDA for the reductions over lists of dims, amax / amin,
-- the norms (p = 0, negative, +-inf, nuc), the dtype options, clamp with
-- tensor bounds, index_add's alpha, split with sizes, masked_fill with a
-- tensor value and einsum: the same inputs on both devices, the value and
-- the gradient of every float64 input.
--
-- float64 on both sides, agreeing to 1e-12 relative to the largest
-- magnitude (sums in another order differ by ulps; a wrong kernel misses
-- by orders of magnitude). Exits 77 (ctest's SKIP_RETURN_CODE) where no
-- GPU is usable; TIDE_OP_PARITY_DEVICE=cpu runs it CPU against CPU.
local tide = require "tide"

local device = os.getenv("TIDE_OP_PARITY_DEVICE") or "cuda"
if device ~= "cpu" and not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local function close(a, b)
    if a:dtype() ~= b:dtype() then return false end
    local sa, sb = a:shape(), b:shape()
    if #sa ~= #sb then return false end
    for i = 1, #sa do
        if sa[i] ~= sb[i] then return false end
    end
    if a:numel() == 0 then return true end
    a, b = a:double(), b:double()
    local scale = math.max(a:abs():max():item(), 1e-30)
    return (a - b):abs():max():item() <= 1e-12 * scale
end

local function f64(shape, offset)
    local x = tide.randn(shape, { dtype = "float64" })
    if offset then x = x + x:sign() * offset end
    return x
end

-- each case: the inputs (made on the CPU) and a function of the inputs on
-- one device returning a tensor or a list of them
local ties = tide.tensor({ { { 1, 3, 3 }, { 2, -1, 3 } }, { { 0.5, 0.5, 0.5 }, { -2, -2, 1 } } }, "float64")
local cases = {
    sum_dims = { { f64({ 5, 6, 7 }) }, function(x) return x:sum({ 0, 2 }, true) end },
    sum_dtype = { { tide.randint(0, 9, { 4, 5 }) }, function(x) return x:sum(1, false, { dtype = "float64" }) end },
    mean_dims = { { f64({ 5, 6, 7 }) }, function(x) return x:mean({ -1, 0 }) end },
    prod_dims = { { f64({ 3, 4, 2 }) }, function(x) return x:prod({ 0, 2 }) end },
    amax_ties = { { ties }, function(x) return x:amax({ 0, 2 }) end },
    amin_all = { { ties }, function(x) return x:amin() end },
    var_dims = { { f64({ 5, 6, 7 }) }, function(x) return x:var({ 0, 1 }, true, { correction = 0 }) end },
    std_dims = { { f64({ 5, 6, 7 }) }, function(x) return x:std({ 2, 0 }) end },
    all_dims = { { tide.randint(0, 2, { 4, 5, 3 }) }, function(x) return x:all({ 0, 2 }) end },
    any_dims = { { tide.randint(0, 2, { 4, 5, 3 }) }, function(x) return x:any({ 1, 2 }, true) end },
    norm_p0 = { { f64({ 4, 5 }) }, function(x) return x:norm(0, 1) end },
    norm_neg = { { f64({ 4, 5, 2 }, 0.1) }, function(x) return x:norm(-1.5, { 0, 2 }) end },
    norm_inf = { { ties }, function(x) return x:norm(math.huge, { 1, 2 }) end },
    norm_minf = { { ties }, function(x) return x:norm(-math.huge, { 0, 1 }) end },
    norm_nuc = { { f64({ 3, 4, 5 }) }, function(x) return x:norm("nuc", { 2, 1 }) end },
    softmax_dtype = { { tide.randn({ 4, 6 }) }, function(x) return x:softmax(1, { dtype = "float64" }) end },
    log_softmax_dtype = { { tide.randn({ 4, 6 }) }, function(x) return x:log_softmax(0, { dtype = "float64" }) end },
    clamp_tensors = { { f64({ 4, 5 }), f64({ 5 }) - 0.5, f64({ 4, 1 }) + 0.5 },
        function(x, lo, hi) return tide.clamp(x, lo, hi) end },
    index_add_alpha = { { f64({ 6, 3 }), tide.tensor({ 5, 0, 5, 2 }, "int64"), f64({ 4, 3 }) },
        function(x, i, s) return x:index_add(0, i, s, { alpha = -2.5 }) end },
    split_sizes = { { f64({ 10, 3 }) }, function(x) return x:split({ 2, 3, 5 }) end },
    masked_fill_tensor = { { f64({ 4, 5 }), tide.randint(0, 2, { 5 }):byte(), tide.tensor(1.5, "float64") },
        function(x, m, v) return x:masked_fill(m, v) end },
    einsum_matmul = { { f64({ 3, 4 }), f64({ 4, 5 }) }, function(a, b) return tide.einsum("ij,jk->ik", a, b) end },
    einsum_three = { { f64({ 2, 3 }), f64({ 4, 3, 5 }), f64({ 2, 5 }) },
        function(a, b, c) return tide.einsum("bn,anm,bm->ba", a, b, c) end },
    einsum_diag = { { f64({ 3, 3, 2 }) }, function(a) return tide.einsum("iij->j", a) end },
    einsum_ellipsis = { { f64({ 2, 1, 3, 4 }), f64({ 5, 4, 2 }) },
        function(a, b) return tide.einsum("...ij,...jk", a, b) end },
}

local function run(case, dev)
    local args = {}
    for i, x in ipairs(case[1]) do
        args[i] = x:to(dev)
        if x:dtype() == "float64" then args[i] = args[i]:detach():requires_grad_() end
    end
    local y = case[2](table.unpack(args))
    local ys = tide.is_tensor(y) and { y } or y
    local out, grads = {}, {}
    for i, t in ipairs(ys) do out[i] = t:cpu() end
    if ys[1].requires_grad then
        local w = tide.linspace(-1, 1, ys[1]:numel(), "float64"):reshape(ys[1]:shape()):to(dev)
        ;(ys[1] * w):sum():backward()
        for i, a in ipairs(args) do
            if a.grad then grads[i] = a.grad:cpu() end
        end
    end
    return out, grads
end

local names = {}
for name in pairs(cases) do names[#names + 1] = name end
table.sort(names)
local checked, failed = 0, 0
for _, name in ipairs(names) do
    tide.manual_seed(11)
    local y1, g1 = run(cases[name], "cpu")
    local y2, g2 = run(cases[name], device)
    checked = checked + 1
    local ok = #y1 == #y2
    for i, y in ipairs(y1) do ok = ok and close(y, y2[i]) end
    for i, g in pairs(g1) do ok = ok and g2[i] ~= nil and close(g, g2[i]) end
    if not ok then
        failed = failed + 1
        print("FAIL " .. name)
    end
end
print(string.format("%d cases, %d failed (cpu against %s)", checked, failed, device))
os.exit(failed == 0 and 0 or 1)
