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
-- what the table's samples leave out: margin_ranking_loss's target taking a
-- gradient (through the x1 kernel with its arguments swapped) and the
-- margin losses' 0-dim input
local function f64(v, dev) return tide.tensor(v, "float64"):to(dev):detach():requires_grad_() end
local extra = {
    margin_ranking_target = function(dev, reduction)
        local x1, x2 = f64({{0.8, 0.1, 0.5}, {-0.3, 0.2, 0.0}}, dev), f64({{0.3, 0.5, 0.5}}, dev)
        local y = f64({{1}, {-0.5}}, dev)
        local l = tide.F.margin_ranking_loss(x1, x2, y, {margin = 0.1, reduction = reduction})
        l:sum():backward()
        return l, {x1.grad, x2.grad, y.grad}
    end,
    margin_0dim = function(dev, reduction)
        local x, z = f64(0.7, dev), f64(-0.2, dev)
        local t = tide.tensor(0, "int64"):to(dev)
        local l = tide.F.multi_margin_loss(x, t, {reduction = reduction}) +
                      tide.F.multilabel_margin_loss(z, t, {reduction = reduction})
        l:sum():backward()
        return l, {x.grad, z.grad}
    end,
}
for _, name in ipairs({"margin_0dim", "margin_ranking_target"}) do
    for _, reduction in ipairs({"none", "mean", "sum"}) do
        local l1, g1 = extra[name]("cpu", reduction)
        local l2, g2 = extra[name](device, reduction)
        local ok = close(l1, l2:cpu())
        for i, g in ipairs(g1) do ok = ok and close(g, g2[i]:cpu()) end
        checked = checked + 1
        if not ok then
            failed = failed + 1
            print(string.format("FAIL %s reduction=%s", name, reduction))
        end
    end
end

print(string.format("%d passed, %d failed", checked - failed, failed))
os.exit(failed == 0 and 0 or 1)
