-- CPU against CUDA for every row of the loss table the CUDA backend has:
-- the same sample inputs (tests/lua/loss_samples.lua, made from each row's
-- input kinds) on both devices, every reduction, the loss and the gradient
-- of each input that takes one. A new row gets this with no new test code.
--
-- float64 on both sides, so the only differences are summation orders:
-- 1e-9 relative to the largest magnitude. A wrong kernel misses that by
-- orders of magnitude.
--
-- Exits 77 (ctest's SKIP_RETURN_CODE) where no GPU is usable;
-- TIDE_LOSS_PARITY_DEVICE=cpu runs it CPU against CPU (a check of this
-- script on a machine without a GPU).
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local S = require "loss_samples"
local losses = require "tide.losses"

local device = os.getenv("TIDE_LOSS_PARITY_DEVICE") or "cuda"
if device ~= "cpu" and not tide.cuda.is_available() then
    print("SKIPPED: no usable CUDA GPU")
    os.exit(77)
end

local function max_abs(t) return t:abs():max():item() end

local function close(a, b)
    local scale = math.max(max_abs(a), 1e-30)
    return max_abs(a - b) <= 1e-9 * scale + 1e-12
end

local function run(row, inputs, opts, dev)
    local args, leaves = {}, {}
    for i, x in ipairs(inputs) do
        local y = x:to(dev)
        if S.differentiable(row, i) then
            y = y:detach():requires_grad_()
            leaves[i] = y
        end
        args[i] = y
    end
    args[#inputs + 1] = opts
    local loss = tide.F[row.name](table.unpack(args, 1, #inputs + 1))
    ;(loss:dim() > 0 and loss:sum() or loss):backward()
    local grads = {}
    for i, l in pairs(leaves) do grads[i] = l.grad:cpu() end
    return loss:cpu(), grads
end

local checked, failed = 0, 0
for _, row in ipairs(losses.table) do
    if device == "cpu" or row.cuda then
        for _, reduction in ipairs({"none", "mean", "sum"}) do
            math.randomseed(7)
            tide.manual_seed(7)
            local inputs = S.inputs(row)
            local l1, g1 = run(row, inputs, {reduction = reduction}, "cpu")
            local l2, g2 = run(row, inputs, {reduction = reduction}, device)
            checked = checked + 1
            local ok = close(l1, l2)
            for i, g in pairs(g1) do ok = ok and g2[i] ~= nil and close(g, g2[i]) end
            if not ok then
                failed = failed + 1
                print(string.format("FAIL %s reduction=%s", row.name, reduction))
            end
        end
    end
end
print(string.format("%d passed, %d failed", checked - failed, failed))
os.exit(failed == 0 and 0 or 1)
