-- How large is the gradient at the output layer under cross-entropy and
-- under MSE on softmax probabilities? Two parts:
--   1. the worked 3-class example, true class 0, predictions {0.7, 0.2, 0.1}
--      and {0.4, 0.3, 0.3}: CE's gradient w.r.t. the true class's logit,
--      p0 - 1 = -0.3 and -0.6, vs MSE's (squared error summed over the
--      classes) gradient w.r.t. the true class's probability, 2(p0 - 1) =
--      -0.6 and -1.2; plus MSE's mean form and MSE's gradient carried back
--      through the softmax to the logit. Every number comes from tide's
--      autograd (backward on a leaf), printed beside the expected value; a
--      mismatch exits 1 before any training.
--   2. a model trained on Fashion-MNIST with each loss (same weights, data
--      order and optimizer): per epoch, the mean and spread (std, 10th /
--      50th / 90th percentiles) of the per-example gradient w.r.t. the
--      logits, its true-class component, the mean probability of the true
--      class (confidence), the norm of the last Linear layer's weight
--      gradient, and the gradient as a function of the true class's
--      probability in the first and the last epoch.
-- The gradient w.r.t. the logits comes from autograd: tide has no
-- retain_grad or hooks on non-leaf tensors, so each batch's loss is also
-- computed on a detached leaf copy of the logits and differentiated there
-- (cross-checked once per variant against the closed form).
--   tide scripts/gradients.lua [--epochs N] [--subset N] [--optim sgd|adam] [--out DIR] ... (--help)
local tide = require "tide"
local X = tide.experiment
local F = tide.F

local cfg = X.parse(arg, {
    name = "gradients",
    about = "Gradient magnitude at the output layer, CE vs MSE on softmax probabilities: the worked 3-class\n"
         .. "example computed by autograd (exit 1 on a mismatch), then a model trained with each loss, with the\n"
         .. "per-example gradient w.r.t. the logits (mean, std, percentiles) and the last Linear layer's\n"
         .. "weight-gradient norm per epoch. SGD with momentum 0.9 by default (the update follows the\n"
         .. "gradient's size); --optim adam normalises it away.",
    defaults = {epochs = 5, subset = 0, batch_size = 128, lr = 0.05, model = "smallcnn"},
    flags = {
        {name = "optim", type = "string", default = "sgd", choices = {"sgd", "adam"},
         help = "optimizer: sgd (momentum 0.9) or adam"},
        {name = "bins", type = "integer", default = 10, min = 2, max = 100,
         help = "bins of the true class's probability for the gradient-vs-confidence plot"},
    },
})

-- ---------------------------------------------------------------------------
-- part 1: the worked example, by autograd

local ONEHOT = tide.tensor({{1, 0, 0}})
local Y0 = tide.tensor({0}, "int64")

-- d loss / d (leaf)[0][0], where leaf = tensor{values} and loss = f(leaf)
local function grad0(values, f)
    local leaf = tide.tensor({values}, {requires_grad = true})
    f(leaf):backward()
    return leaf.grad:get(0, 0)
end

local worked_rows, mismatches = {}, 0
for _, case in ipairs({
    {p = {0.7, 0.2, 0.1}, ce = -0.3, mse_sum = -0.6, mse_mean = -0.2, mse_z = -0.196},
    {p = {0.4, 0.3, 0.3}, ce = -0.6, mse_sum = -1.2, mse_mean = -0.4, mse_z = -0.432},
}) do
    local p = case.p
    local logp = {math.log(p[1]), math.log(p[2]), math.log(p[3])}
    local name = string.format("{%g, %g, %g}", p[1], p[2], p[3])
    for _, c in ipairs({
        {"CE, d/d logit 0", "F.cross_entropy(z, {0}) with z = log p; z.grad[0]",
         grad0(logp, function(z) return F.cross_entropy(z, Y0) end), case.ce},
        {"MSE (sum over classes), d/d p0", "F.mse_loss(p, onehot, {reduction = \"sum\"}); p.grad[0]",
         grad0(p, function(q) return F.mse_loss(q, ONEHOT, {reduction = "sum"}) end), case.mse_sum},
        {"MSE (mean over classes), d/d p0", "F.mse_loss(p, onehot); p.grad[0]",
         grad0(p, function(q) return F.mse_loss(q, ONEHOT) end), case.mse_mean},
        {"MSE (sum) through softmax, d/d logit 0", "F.mse_loss(z:softmax(1), onehot, {reduction = \"sum\"}); z.grad[0]",
         grad0(logp, function(z) return F.mse_loss(z:softmax(1), ONEHOT, {reduction = "sum"}) end), case.mse_z},
    }) do
        local ok = math.abs(c[3] - c[4]) <= 1e-5
        if not ok then mismatches = mismatches + 1 end
        worked_rows[#worked_rows + 1] = {name, c[1], "`" .. c[2] .. "`", string.format("%.4f", c[3]),
                                         string.format("%.3f", c[4]), ok and "✓" or "✗ MISMATCH"}
    end
end
local worked_table = {
    title = "Worked example: gradients for true class 0, by autograd",
    text = "CE's gradient w.r.t. the true class's logit is p0 - 1; MSE's (squared error summed over the classes, "
        .. "the tutorials' form) w.r.t. the true class's probability is 2(p0 - 1), twice as large. Tide's "
        .. "default `\"mean\"` divides MSE's by the 3 classes. Carried back through the softmax to the logit, "
        .. "MSE's gradient is p0 (2(p0 - 1) - sum_c 2(p_c - t_c) p_c), smaller than CE's at both predictions. "
        .. "Each value is `backward()` on a leaf tensor; tolerance 1e-5.",
    columns = {"prediction", "gradient", "tide computes", "tide", "expected", "check"},
    rows = worked_rows,
}
io.write(X.format_table(worked_table))
if mismatches > 0 then
    io.stderr:write(string.format("gradients: %d worked-example gradient(s) differ from the expected values\n",
                                  mismatches))
    os.exit(1)
end
print("gradients: the worked example's gradients match (-0.3 / -0.6 for CE, -0.6 / -1.2 for MSE)\n")

-- ---------------------------------------------------------------------------
-- part 2: training

local data = X.fashion_mnist(cfg)
local ex = X.new(cfg)
local C = data.num_classes
local NBINS = cfg.bins

local losses = {
    {"ce", function(z, y) return F.cross_entropy(z, y) end},
    {"mse", function(z, y) return F.mse_loss(z:softmax(1), X.one_hot(y, C)) end},
}

-- dL/dz of the batch loss in closed form, for the once-per-variant check
local closed = {
    ce = function(z, y)
        return (z:softmax(1) - X.one_hot(y, C)) / z:size(0)
    end,
    mse = function(z, y)
        local p = z:softmax(1)
        local r = (p - X.one_hot(y, C)) * (2 / (z:size(0) * C))
        return p * (r - (r * p):sum(1, true))
    end,
}

local function percentile(sorted, q)
    local n = #sorted
    if n == 0 then return 0 / 0 end
    local pos = q * (n - 1) + 1
    local lo = math.floor(pos)
    local hi = math.min(lo + 1, n)
    return sorted[lo] + (pos - lo) * (sorted[hi] - sorted[lo])
end

local function moments(values)
    local n, s, s2 = #values, 0, 0
    for _, v in ipairs(values) do s = s + v end
    local mean = s / n
    for _, v in ipairs(values) do s2 = s2 + (v - mean) ^ 2 end
    return mean, math.sqrt(s2 / math.max(n - 1, 1))
end

-- the last Linear layer's weight: the model's last 2-d parameter
local function last_weight(model)
    local w
    for _, p in ipairs(model:parameters()) do if p:dim() == 2 then w = p end end
    return w
end

local cross_checks = {}
for _, v in ipairs(losses) do
    local name, plain = v[1], v[2]
    ex:variant(name, {settings = {optim = cfg.optim, bins = NBINS}}, function()
        -- per-epoch accumulators, filled by the loss wrapper and before_step
        local acc = {}
        local bins = {}
        local function epoch_acc(epoch)
            if not acc[epoch] then
                acc[epoch] = {norm = {}, gtrue = 0, ptrue = 0, n = 0, wnorm = {}}
                bins[epoch] = {sum = {}, count = {}}
                for b = 1, NBINS do bins[epoch].sum[b], bins[epoch].count[b] = 0, 0 end
            end
            return acc[epoch], bins[epoch]
        end
        local checked = false
        local function instrumented(z, y, epoch)
            -- the gradient w.r.t. the logits by autograd, on a leaf copy
            local leaf = z:detach():requires_grad_()
            plain(leaf, y):backward()
            local n = z:size(0)
            tide.no_grad(function()
                if not checked then
                    local diff = (leaf.grad - closed[name](leaf:detach(), y)):abs():max():item()
                    local scale = leaf.grad:abs():max():item()
                    cross_checks[name] = {diff = diff, scale = scale}
                    if diff > 1e-5 * math.max(scale, 1e-3) + 1e-9 then
                        error(string.format("gradients: autograd's dL/dlogits differs from the closed form for %s "
                                            .. "by %g (largest entry %g)", name, diff, scale), 0)
                    end
                    checked = true
                end
                -- per example: the gradient of that example's own loss (the batch mean's times N)
                local g = leaf.grad:cpu() * n
                local yc = y:cpu()
                local norms = g:square():sum(1):sqrt():totable()
                local gtrue = g:gather(1, yc:view({n, 1})):view({n})
                local ptrue = leaf:detach():cpu():softmax(1):gather(1, yc:view({n, 1})):view({n}):totable()
                local a, b = epoch_acc(epoch)
                for i = 1, n do
                    a.norm[#a.norm + 1] = norms[i]
                    local k = math.min(NBINS, math.floor(ptrue[i] * NBINS) + 1)
                    b.sum[k] = b.sum[k] + norms[i]
                    b.count[k] = b.count[k] + 1
                    a.ptrue = a.ptrue + ptrue[i]
                end
                a.gtrue = a.gtrue + gtrue:sum():item()
                a.n = a.n + n
            end)
            return plain(z, y)
        end
        local r = ex:train_classifier{
            data = data,
            model = function() return X.model(cfg, data) end,
            loss = instrumented,
            eval_loss = function(z, y) return plain(z, y) end,
            optimizer = function(model) return X.optimizer(cfg, model, {name = cfg.optim}) end,
            before_step = function(model, epoch)
                local w = last_weight(model)
                local a = epoch_acc(epoch)
                a.wnorm[#a.wnorm + 1] = w.grad:norm():item()
            end,
            on_epoch = function(_, _, epoch)
                local a = acc[epoch]
                if not a or a.n == 0 then return end
                table.sort(a.norm)
                local mean, std = moments(a.norm)
                local wmean, wstd = moments(a.wnorm)
                return {grad_mean = mean, grad_std = std, grad_p10 = percentile(a.norm, 0.1),
                        grad_p50 = percentile(a.norm, 0.5), grad_p90 = percentile(a.norm, 0.9),
                        grad_true_mean = a.gtrue / a.n, p_true_mean = a.ptrue / a.n,
                        wgrad_mean = wmean, wgrad_std = wstd}
            end,
        }
        r.bins = bins
        r.cross_check = cross_checks[name]
        return r
    end)
end

-- ---------------------------------------------------------------------------
-- the tables and plots

local rows = {}
for _, v in ipairs(losses) do
    local r = ex.results[v[1]]
    for _, rec in ipairs(r.history) do
        rows[#rows + 1] = {v[1], rec.epoch, 100 * rec.test_acc, rec.p_true_mean, rec.grad_mean, rec.grad_std,
                           rec.grad_p10, rec.grad_p50, rec.grad_p90, rec.grad_true_mean, rec.wgrad_mean,
                           rec.wgrad_std}
    end
end

-- the ratio CE / MSE of the mean gradient, first and last epoch
local ratio_rows = {}
local ce_h, mse_h = ex.results.ce.history, ex.results.mse.history
for _, e in ipairs(X.milestones(cfg.epochs)) do
    local a, b = X.at_epoch(ce_h, e), X.at_epoch(mse_h, e)
    if a and b then
        ratio_rows[#ratio_rows + 1] = {e, a.grad_mean / b.grad_mean, a.grad_p50 / b.grad_p50,
                                       a.wgrad_mean / b.wgrad_mean}
    end
end

-- gradient vs the true class's probability, first and last epoch
local function bin_series(epochs)
    local series = {}
    for _, v in ipairs(losses) do
        local bins = ex.results[v[1]].bins or {}
        for _, e in ipairs(epochs) do
            local b = bins[e] or bins[tostring(e)]
            if b then
                local x, y = {}, {}
                for k = 1, NBINS do
                    local count = b.count[k] or b.count[tostring(k)] or 0
                    if count > 0 then
                        x[#x + 1] = (k - 0.5) / NBINS
                        y[#y + 1] = (b.sum[k] or b.sum[tostring(k)]) / count
                    end
                end
                -- the variant's colour; the last epoch dashed
                if #x > 0 then
                    series[#series + 1] = {name = v[1] .. " epoch " .. e, x = x, y = y, style = ex:style(v[1]),
                                           dash = e == 1 and 1 or 2, point = e == 1 and 6 or 4}
                end
            end
        end
    end
    return series
end
local marks = {1}
if cfg.epochs > 1 then marks[2] = cfg.epochs end

local function spread_series()
    local series = {}
    for _, v in ipairs(losses) do
        -- the variant's colour; the percentiles dashed and dotted
        for _, f in ipairs({{"grad_p10", "p10", 2, 8}, {"grad_mean", "mean", 1, 6}, {"grad_p90", "p90", 3, 10}}) do
            local s = ex:series(f[1], {v[1]})[1]
            if s then
                s.name, s.dash, s.point = v[1] .. " " .. f[2], f[3], f[4]
                series[#series + 1] = s
            end
        end
    end
    return series
end

local plots = {
    {title = "per-example |dL/dlogits| per epoch: mean, 10th and 90th percentiles",
     path = tide.plot.lines{path = ex:path("grad_logits.png"), title = "|dL/dlogits| per example (log scale)",
                            xlabel = "epoch", ylabel = "L2 norm", series = spread_series(), logy = true}},
    {title = "last Linear layer's weight-gradient norm per epoch (mean over batches)",
     path = ex:plot_curves{field = "wgrad_mean", file = "grad_weight.png",
                           title = "|dL/dW| of the last Linear (log scale)", ylabel = "Frobenius norm", logy = true}},
    {title = "per-example |dL/dlogits| against the true class's probability, first and last epoch",
     path = tide.plot.lines{path = ex:path("grad_vs_confidence.png"),
                            title = "|dL/dlogits| vs p(true class) (log scale)",
                            xlabel = "probability of the true class (bin centre)", ylabel = "mean L2 norm",
                            series = bin_series(marks), logy = true}},
    {title = "mean probability of the true class per epoch",
     path = ex:plot_curves{field = "p_true_mean", file = "confidence.png", title = "mean p(true class), training",
                           ylabel = "probability"}},
    {title = "test accuracy per epoch",
     path = ex:plot_curves{field = "test_acc", title = "test accuracy", ylabel = "accuracy"}},
}

local function check_note(name)
    local c = ex.results[name].cross_check
    if not c then return name .. ": loaded from an earlier run" end
    return string.format("%s: largest difference %.2e (largest entry %.2e)", name, c.diff, c.scale)
end

ex:report{
    title = "Gradients at the output layer: CE vs MSE on softmax probabilities",
    text = string.format("%s trained on %s Fashion-MNIST training images for %d epoch%s with each loss (%s, lr %g%s, "
                         .. "batch %d), from the same initial weights and with the same batches. Per epoch: the "
                         .. "per-example gradient of the loss w.r.t. the logits (its L2 norm over the %d classes), "
                         .. "measured on every training batch as it was trained, and the norm of the last Linear "
                         .. "layer's weight gradient (of the batch's mean loss).",
                         cfg.model, #data.train == 60000 and "all 60,000" or ("the first " .. #data.train), cfg.epochs,
                         cfg.epochs == 1 and "" or "s", cfg.optim == "sgd" and "SGD" or "Adam", cfg.lr,
                         cfg.optim == "sgd" and ", momentum 0.9" or "", cfg.batch_size, C),
    table = {title = "Results", columns = {"variant", "epoch", {name = "test acc %", fmt = "%.2f"},
                                           {name = "mean p(true)", fmt = "%.4f"},
                                           {name = "|g| mean", fmt = "%.4f"}, {name = "|g| std", fmt = "%.4f"},
                                           {name = "|g| p10", fmt = "%.4f"}, {name = "|g| p50", fmt = "%.4f"},
                                           {name = "|g| p90", fmt = "%.4f"}, {name = "g_true mean", fmt = "%.4f"},
                                           {name = "|dW| mean", fmt = "%.4f"}, {name = "|dW| std", fmt = "%.4f"}},
             rows = rows,
             text = "`|g|`: the L2 norm of one example's gradient w.r.t. its logits (of that example's own loss; "
                 .. "mean, std and percentiles over the epoch's training examples). `g_true`: its component at "
                 .. "the true class (negative: the loss pushes the true logit up). `mean p(true)`: the softmax "
                 .. "probability of the true class on the training batches. `|dW|`: the Frobenius norm of the "
                 .. "last Linear layer's weight gradient of the batch's mean loss (mean and std over the "
                 .. "epoch's batches)."},
    tables = {
        {title = "Ratio CE / MSE", columns = {"epoch", {name = "|g| mean", fmt = "%.1f"},
                                              {name = "|g| p50", fmt = "%.1f"}, {name = "|dW| mean", fmt = "%.1f"}},
         rows = ratio_rows,
         text = "How many times larger CE's gradient is than MSE's at the same epoch."},
        worked_table,
    },
    plots = plots,
    notes = {
        "MSE is `F.mse_loss(softmax(logits), onehot)` with PyTorch's default mean over the N x 10 elements, as in "
            .. "scripts/loss_study.lua: one example's own loss is the mean over its 10 classes, a tenth of the sum "
            .. "form the worked example uses. With the sum form every MSE gradient here would be 10 times larger; "
            .. "under SGD that is a 10-times larger learning rate, under Adam it changes nothing.",
        "dL/dlogits by autograd: tide has no retain_grad or hooks for non-leaf tensors, so each training batch's "
            .. "loss is also computed on a detached leaf copy of the logits and differentiated there (the model's "
            .. "own backward is unchanged). Cross-check against the closed form (CE: (p - onehot) / N; MSE: "
            .. "p * (r - sum(r p)) with r = 2 (p - onehot) / (N C)) on each variant's first batch: "
            .. check_note("ce") .. "; " .. check_note("mse") .. ".",
        "The gradient-vs-confidence plot bins every training example of the epoch by its true class's "
            .. "probability (" .. NBINS .. " equal bins) and shows the mean |g| per bin: CE's is about "
            .. "sqrt((1 - p)^2 + ...), largest when the model is confidently wrong; MSE's vanishes both at p -> 1 "
            .. "and at p -> 0, where the softmax saturates.",
    },
}
