-- Numerical stability of the cross-entropy: log(softmax(x))
-- computed naively, as `x:softmax(1):log()` followed by an NLL by gather,
-- against tide's fused forms, `log_softmax` + `F.nll_loss` and
-- `F.cross_entropy`. Two parts:
--   1. no training: logits of growing scale (1, 10, 100, ... by default) in
--      float32, float64, bfloat16 and float16, a random batch (standard normal logits times
--      the scale, random targets) and the worked row {s, 0, -s} with target
--      2 (exact loss 2s + log(1 + e^-s + e^-2s)) and with target 0 (exact
--      loss log(1 + e^-s + e^-2s)): the loss each form gives beside the
--      exact one, whether its gradient is finite, and the first scale at
--      which the naive loss (and its gradient) is inf or NaN; for the
--      worked rows the exact breaking scale is found by bisection.
--   2. training at a high learning rate (an MLP without batch norm, plain
--      SGD at lr 2 with the gradient norm clipped to 1, by default) with
--      each form, from the same weights and batches: per epoch the loss and
--      accuracy, and the epoch and step at which a form first produces an
--      inf or NaN loss or gradient; that variant stops there (before the bad
--      step is applied) while the other keeps going. The clipping keeps
--      the weights from overflowing in one step, so what breaks is the
--      arithmetic of the loss, not the optimisation: without it, plain SGD
--      on this MLP either keeps the logits small (lr <= 0.7: neither form
--      breaks) or blows up the weights (lr >= 0.8: both do).
--   tide scripts/stability.lua [--epochs N] [--lr X] [--scales 1,10,...] [--out DIR] ... (--help)
local tide = require "tide"
local X = tide.experiment
local F = tide.F

local cfg = X.parse(arg, {
    name = "stability",
    omit = {"precision"}, -- float32 only: no --precision
    about = "log(softmax(x)) computed naively vs log_softmax / cross_entropy: the loss and its gradient as the\n"
         .. "logit scale grows (float32, float64, bfloat16, float16), then a training run at a high learning\n"
         .. "rate with each\n"
         .. "form (mlp without batch norm, plain SGD at lr 2 with the gradient norm clipped to 1), reporting\n"
         .. "where the naive one first gives inf or NaN.",
    defaults = {epochs = 5, subset = 0, batch_size = 128, lr = 2.0, model = "mlp"},
    flags = {
        {name = "scales", type = "numbers", default = {1, 10, 100, 1e3, 1e4, 1e5}, meta = "S,S,...",
         help = "logit scales of part 1",
         check = function(v)
             for _, s in ipairs(v) do if not (s > 0 and s < math.huge) then return "expects positive numbers" end end
         end},
        {name = "momentum", type = "number", default = 0, min = 0, max = 0.999, help = "SGD momentum of part 2"},
        {name = "clip", type = "number", default = 1, min = 0,
         help = "clip the gradient norm to this in part 2 (0: no clipping)"},
        {name = "log_every", type = "integer", default = 10, min = 1, meta = "N",
         help = "record the training loss every N steps for the step plot"},
    },
})

-- float32 and float64, and the two 2-byte floats: the logits rounded to
-- bfloat16 (float32's range, 8 bits of precision) or float16 (5 exponent
-- bits: 65504 is its largest value, 6e-8 its smallest); each form then runs
-- on those logits as tide runs it (softmax and log_softmax computed in
-- float32 and rounded to the logits' dtype, the losses in float32)
local DTYPES = {"float32", "float64", "bfloat16", "float16"}
local N, C = 1000, 10

-- ---------------------------------------------------------------------------
-- part 1: the loss and its gradient as the scale grows

-- the three forms: loss of logits z (N, C) against int64 targets y
local FORMS = {
    {"naive", "x:softmax(1):log(), NLL by gather",
     function(z, y) return -z:softmax(1):log():gather(1, y:view({-1, 1})):mean() end},
    {"log_softmax", "F.nll_loss(x:log_softmax(1), y)", function(z, y) return F.nll_loss(z:log_softmax(1), y) end},
    {"cross_entropy", "F.cross_entropy(x, y)", function(z, y) return F.cross_entropy(z, y) end},
}

local function finite(v) return v == v and v ~= math.huge and v ~= -math.huge end

-- loss and gradient of one form at logits `base * scale` (a float64 tensor)
-- cast to dtype: the loss, and the count of non-finite gradient entries
local function probe(form, base, scale, y, dtype)
    local z = (base * scale):to(dtype):detach():requires_grad_()
    local loss = form(z, y)
    loss:backward()
    local g = z.grad:double()
    -- x - x is 0 for a finite x, NaN for inf and NaN
    local bad = g:numel() - (g - g):eq(0):sum():item()
    return loss:item(), math.tointeger(bad) or bad
end

-- the exact mean cross-entropy of float64 logits, in Lua: logsumexp - z_y
local function exact_ce(base, scale, y)
    local rows, ys = base:totable(), y:totable()
    local sum = 0
    for i, row in ipairs(rows) do
        local m = -math.huge
        for _, v in ipairs(row) do m = math.max(m, v * scale) end
        local s = 0
        for _, v in ipairs(row) do s = s + math.exp(v * scale - m) end
        sum = sum + (m + math.log(s)) - row[ys[i] + 1] * scale
    end
    return sum / #rows
end

-- the worked row {s, 0, -s} with target 2 (the smallest logit) and 0 (the
-- largest): exact losses
local WORKED = tide.tensor({{1, 0, -1}}, "float64")
local WORKED_CASES = {
    {case = "worked_t2", y = tide.tensor({2}, "int64"),
     exact = function(s) return 2 * s + math.log(1 + math.exp(-s) + math.exp(-2 * s)) end},
    {case = "worked_t0", y = tide.tensor({0}, "int64"),
     exact = function(s) return math.log(1 + math.exp(-s) + math.exp(-2 * s)) end},
}

-- the smallest s (to 3 significant digits) at which pred(s) holds, given
-- that it fails at lo and holds at hi
local function bisect(pred, lo, hi)
    for _ = 1, 60 do
        local mid = math.sqrt(lo * hi)
        if pred(mid) then hi = mid else lo = mid end
        if hi / lo < 1 + 1e-4 then break end
    end
    return hi
end

local data = X.fashion_mnist(cfg)
local ex = X.new(cfg)

-- part 1 as a variant: its records (one per case, dtype, scale) go to
-- metrics.jsonl and are read back on a rerun with the same settings
local thresholds = {}
ex:variant("scales", {settings = {n = N, c = C, dtypes = DTYPES}}, function()
    local base = tide.randn({N, C}, {dtype = "float64"})
    local y = tide.randint(0, C, {N})
    for _, dtype in ipairs(DTYPES) do
        for _, s in ipairs(cfg.scales) do
            local cases = {{"random", base, y, exact_ce(base, s, y)}}
            for _, w in ipairs(WORKED_CASES) do cases[#cases + 1] = {w.case, WORKED, w.y, w.exact(s)} end
            for _, case in ipairs(cases) do
                local rec = {case = case[1], dtype = dtype, scale = s, exact = case[4]}
                for _, f in ipairs(FORMS) do
                    local loss, bad = probe(f[3], case[2], s, case[3], dtype)
                    rec[f[1] .. "_loss"] = loss
                    rec[f[1] .. "_grad_nonfinite"] = bad
                end
                ex:log(rec)
            end
        end
        -- where the naive loss and gradient of the worked rows break, by bisection
        for _, w in ipairs(WORKED_CASES) do
            local function loss_breaks(s) return not finite(probe(FORMS[1][3], WORKED, s, w.y, dtype)) end
            local function grad_breaks(s) return select(2, probe(FORMS[1][3], WORKED, s, w.y, dtype)) > 0 end
            local rec = {case = "threshold", row = w.case, dtype = dtype}
            if not loss_breaks(1) and loss_breaks(1e6) then rec.naive_loss_breaks_at = bisect(loss_breaks, 1, 1e6) end
            if not grad_breaks(1) and grad_breaks(1e6) then rec.naive_grad_breaks_at = bisect(grad_breaks, 1, 1e6) end
            ex:log(rec)
        end
    end
end)

local part1 = {random = {}, worked_t2 = {}, worked_t0 = {}}
for _, r in ipairs(ex.results.scales.history) do
    if r.case == "threshold" then thresholds[r.row .. "/" .. r.dtype] = r
    elseif part1[r.case] then table.insert(part1[r.case], r) end
end
-- the records come back in no particular order: by dtype, then scale
for _, list in pairs(part1) do
    table.sort(list, function(a, b)
        if a.dtype ~= b.dtype then return a.dtype < b.dtype end
        return a.scale < b.scale
    end)
end

local CASE_NAMES = {random = "random batch", worked_t2 = "{s, 0, -s}, target 2", worked_t0 = "{s, 0, -s}, target 0"}

local function show(v)
    if v ~= v then return "NaN" end
    if v == math.huge then return "inf" end
    if v == -math.huge then return "-inf" end
    if v == 0 then return "0" end
    -- one width for the tiny and the huge, so a right-aligned column lines up
    if math.abs(v) < 0.01 or math.abs(v) >= 1e5 then return string.format("%.4e", v) end
    return string.format("%.4f", v)
end
local function grad_cell(bad, total)
    if bad == 0 then return "finite" end
    return string.format("%d/%d non-finite", bad, total)
end

local function part1_table(cases, title, text, total)
    local rows = {}
    for _, case in ipairs(cases) do
      for _, r in ipairs(part1[case]) do
        rows[#rows + 1] = {r.dtype, CASE_NAMES[case], string.format("%g", r.scale), show(r.exact), show(r.naive_loss),
                           show(r.log_softmax_loss), show(r.cross_entropy_loss),
                           grad_cell(r.naive_grad_nonfinite, total), grad_cell(r.log_softmax_grad_nonfinite, total),
                           grad_cell(r.cross_entropy_grad_nonfinite, total)}
      end
    end
    return {title = title, text = text,
            columns = {"dtype", "case", "scale", "exact loss", "naive loss", "log_softmax loss", "cross_entropy loss",
                       "naive grad", "log_softmax grad", "cross_entropy grad"},
            rows = rows}
end

-- per dtype: the first scale of the grid at which each form breaks
local function first_break(case, dtype, form, what)
    for _, r in ipairs(part1[case]) do
        if r.dtype == dtype then
            local broke = (what == "loss") and not finite(r[form .. "_loss"]) or
                          (what == "grad" and r[form .. "_grad_nonfinite"] > 0)
            if broke then return r.scale end
        end
    end
    return nil
end
local summary_rows = {}
for _, dtype in ipairs(DTYPES) do
    for _, case in ipairs({"random", "worked_t2", "worked_t0"}) do
        local t = thresholds[case .. "/" .. dtype] or {}
        local function cell(v) return v and string.format("%g", v) or "none" end
        local fused = {}
        for _, form in ipairs({"log_softmax", "cross_entropy"}) do
            for _, what in ipairs({"loss", "grad"}) do
                local s = first_break(case, dtype, form, what)
                if s then fused[#fused + 1] = string.format("%s %s at %g", form, what, s) end
            end
        end
        summary_rows[#summary_rows + 1] = {
            dtype, CASE_NAMES[case], cell(first_break(case, dtype, "naive", "loss")),
            cell(first_break(case, dtype, "naive", "grad")),
            case == "random" and "-"
                or (t.naive_loss_breaks_at and string.format("%.4g", t.naive_loss_breaks_at) or "none"),
            case == "random" and "-"
                or (t.naive_grad_breaks_at and string.format("%.4g", t.naive_grad_breaks_at) or "none"),
            #fused > 0 and table.concat(fused, "; ") or "never"}
    end
end

-- ---------------------------------------------------------------------------
-- part 2: training at a high learning rate with each form

local TRAIN_FORMS = {
    {"naive", FORMS[1][3]},
    {"cross_entropy", FORMS[3][3]},
}
local steps_per_epoch = math.ceil(#data.train / cfg.batch_size)

for _, v in ipairs(TRAIN_FORMS) do
    local name, loss_fn = v[1], v[2]
    ex:variant(name, {settings = {form = name}}, function()
        local model = X.model(cfg, data)
        local opt = X.optimizer(cfg, model, {name = "sgd", momentum = cfg.momentum})
        local loader = X.loader(data.train, {batch_size = cfg.batch_size, shuffle = true, seed = cfg.seed,
                                             transform = data.train_transform})
        local steps_x, steps_y = {}, {}
        local step, broke = 0, nil
        for epoch = 1, cfg.epochs do
            local bar = tide.progress.new{total = #data.train, unit = "img", order = {"loss", "acc"},
                                          desc = string.format("%s %d/%d", name, epoch, cfg.epochs)}
            model:train()
            local seen, loss_sum, correct, spread = 0, 0, 0, 0
            local t0 = tide.clock()
            for x, y in loader:iter() do
                step = step + 1
                opt:zero_grad()
                local z = model(x)
                local loss = loss_fn(z, y)
                local l = loss:item()
                local zd = z:detach()
                spread = math.max(spread, (zd:max(1) - zd:min(1)):max():item())
                local kind
                if not finite(l) then
                    kind = l ~= l and "loss NaN" or "loss inf"
                else
                    loss:backward()
                    if cfg.clip > 0 then tide.nn.utils.clip_grad_norm_(model:parameters(), cfg.clip) end
                    for _, p in ipairs(model:parameters()) do
                        if p.grad and not finite(p.grad:abs():sum():item()) then kind = "gradient NaN/inf" break end
                    end
                end
                if kind then
                    broke = {epoch = epoch, step = step, kind = kind, spread = spread}
                    break
                end
                opt:step()
                local n = x:size(0)
                seen = seen + n
                loss_sum = loss_sum + l * n
                correct = correct + tide.metrics.accuracy(zd, y) * n
                if step % cfg.log_every == 0 then
                    steps_x[#steps_x + 1] = step
                    steps_y[#steps_y + 1] = l
                end
                bar:update(n, {loss = loss_sum / seen, acc = correct / seen})
            end
            bar:close()
            local rec = {epoch = epoch, train_loss = seen > 0 and loss_sum / seen or 0 / 0,
                         train_acc = seen > 0 and correct / seen or 0 / 0, seconds = tide.clock() - t0,
                         lr = cfg.lr, max_logit_spread = spread, steps = step, images = seen}
            -- the model as it stands (a break stops before its bad step is applied)
            local logits, labels = X.evaluate(model, data.test, {transform = data.test_transform})
            rec.test_acc = tide.metrics.accuracy(logits, labels)
            rec.test_loss = F.cross_entropy(logits, labels):item()
            rec.test_loss_own = tide.no_grad(function() return loss_fn(logits, labels):item() end)
            if broke then
                rec.broke = broke.kind
                rec.broke_step = broke.step
            end
            ex:log(rec)
            print(string.format("%s epoch %d/%d: train loss %.4g, acc %.2f%%, test acc %.2f%%, max logit spread %.4g%s",
                                name, epoch, cfg.epochs, rec.train_loss, 100 * rec.train_acc, 100 * rec.test_acc,
                                spread, broke and string.format(" -- BROKE at step %d (%s); stopped", broke.step,
                                                                broke.kind) or ""))
            if broke then break end
        end
        loader:close()
        return {broke_epoch = broke and broke.epoch or 0, broke_step = broke and broke.step or 0,
                broke_kind = broke and broke.kind or "", steps_x = steps_x, steps_y = steps_y}
    end)
end

-- ---------------------------------------------------------------------------
-- tables, plots, report

local train_rows = {}
for _, v in ipairs(TRAIN_FORMS) do
    local r = ex.results[v[1]]
    local last = r.history[#r.history] or {}
    local best = 0
    for _, rec in ipairs(r.history) do best = math.max(best, rec.test_acc or 0) end
    train_rows[#train_rows + 1] = {
        v[1], #r.history, last.train_loss, last.train_acc and 100 * last.train_acc,
        last.test_acc and 100 * last.test_acc, 100 * best, last.max_logit_spread,
        r.broke_epoch > 0 and string.format("epoch %d, step %d (%s)", r.broke_epoch, r.broke_step, r.broke_kind)
            or string.format("never (%d epoch%s)", cfg.epochs, cfg.epochs == 1 and "" or "s")}
end
local epoch_rows = {}
for _, v in ipairs(TRAIN_FORMS) do
    for _, rec in ipairs(ex.results[v[1]].history) do
        epoch_rows[#epoch_rows + 1] = {v[1], rec.epoch, rec.train_loss, 100 * rec.train_acc, 100 * rec.test_acc,
                                       rec.test_loss, rec.max_logit_spread, rec.broke or ""}
    end
end

-- plot data: part 1 loss vs log10(scale), non-finite values as gaps
-- (an inf or NaN loss is drawn at the top edge, `top`, so the naive
-- curves visibly leave the others where they break)
local function scale_series(case)
    local series, top = {}, 1
    for _, r in ipairs(part1[case]) do if finite(r.exact) then top = math.max(top, r.exact) end end
    top = 10 ^ (math.ceil(math.log(top, 10)) + 2)
    -- each form in its variant's colour (exact in black), every series
    -- with its own dash and point shape: the exact, fused and float64
    -- naive curves lie on one another until the naive ones break
    local function add(name, dtype, field, style)
        local x, y = {}, {}
        for _, r in ipairs(part1[case]) do
            if r.dtype == dtype then
                x[#x + 1] = math.log(r.scale, 10)
                local val = r[field]
                y[#y + 1] = not finite(val) and top or (val > 0 and val or 0 / 0)
            end
        end
        style.name, style.x, style.y = name, x, y
        series[#series + 1] = style
    end
    add("exact", "float64", "exact", {color = "#000000", dash = 1, point = 1})
    for i, dtype in ipairs(DTYPES) do
        add("naive " .. dtype, dtype, "naive_loss", {style = ex:style("naive"), dash = 2 * i, point = 2 + 2 * i})
        add("cross_entropy " .. dtype, dtype, "cross_entropy_loss",
            {style = ex:style("cross_entropy"), dash = 1 + 2 * i, point = 4 + 4 * i})
    end
    return series, top
end
local random_series, random_top = scale_series("random")
local worked_series, worked_top = scale_series("worked_t2")
local step_series = {}
for _, v in ipairs(TRAIN_FORMS) do
    local r = ex.results[v[1]]
    if r.steps_x and #r.steps_x > 0 then step_series[#step_series + 1] = {name = v[1], x = r.steps_x, y = r.steps_y} end
end

local plots = {
    {title = "part 1: mean loss of the random batch against the logit scale (an inf loss is drawn at the top edge)",
     path = tide.plot.lines{path = ex:path("loss_vs_scale.png"),
                            title = "loss vs logit scale, random batch (inf drawn at the top edge)",
                            xlabel = "log10(scale)", ylabel = "mean loss", series = random_series, logy = true,
                            yrange = {1, random_top}}},
    {title = "part 1: the worked row {s, 0, -s}, target 2",
     path = tide.plot.lines{path = ex:path("loss_vs_scale_worked.png"),
                            title = "loss vs s, row {s, 0, -s}, target 2 (inf drawn at the top edge)",
                            xlabel = "log10(s)", ylabel = "loss", series = worked_series, logy = true,
                            yrange = {1, worked_top}}},
    {title = "part 2: training loss per epoch",
     path = ex:plot_curves{field = "train_loss", variants = {"naive", "cross_entropy"},
                           title = "train loss per epoch (log scale)", ylabel = "loss", logy = true}},
    {title = "part 2: training loss every " .. cfg.log_every .. " steps (a curve ends where its form broke)",
     path = tide.plot.lines{path = ex:path("train_loss_steps.png"), title = "train loss per step (log scale)",
                            xlabel = "step", ylabel = "batch loss", series = step_series, logy = true}},
    {title = "part 2: test accuracy per epoch",
     path = ex:plot_curves{field = "test_acc", variants = {"naive", "cross_entropy"}, title = "test accuracy",
                           ylabel = "accuracy"}},
}

local tf32 = thresholds["worked_t0/float32"] or {}
ex:report{
    title = "Stability: naive log(softmax(x)) vs log_softmax / cross_entropy",
    text = string.format("Part 1 evaluates each form on logits of growing scale, without training: a random batch "
                         .. "(%d rows of %d standard normal logits times the scale, random targets) and the worked "
                         .. "row {s, 0, -s} with target 2. Part 2 trains %s on %s Fashion-MNIST training images with "
                         .. "plain SGD (lr %g%s%s, batch %d, %d steps an epoch) for up to %d epochs with the naive "
                         .. "form and with `F.cross_entropy`, from the same weights and batches.",
                         N, C, cfg.model, #data.train == 60000 and "all 60,000" or ("the first " .. #data.train),
                         cfg.lr, cfg.momentum > 0 and string.format(", momentum %g", cfg.momentum) or "",
                         cfg.clip > 0 and string.format(", gradient norm clipped to %g", cfg.clip) or "",
                         cfg.batch_size, steps_per_epoch, cfg.epochs),
    table = {title = "Part 2: training at a high learning rate",
             columns = {"variant", "epochs run", {name = "train loss", fmt = "%.4g"},
                        {name = "train acc %", fmt = "%.2f"}, {name = "test acc %", fmt = "%.2f"},
                        {name = "best test acc %", fmt = "%.2f"},
                        {name = "max logit spread", fmt = "%.4g"}, "first inf/NaN"},
             rows = train_rows,
             text = "The last epoch each form ran (for a form that broke, the epoch it broke in, up to the step "
                 .. "before; its model is evaluated as it stood). `max logit spread`: the largest max - min of "
                 .. "one row of logits in that epoch; in float32 a probability underflows to 0 once a row spreads "
                 .. "by about 88 to 104, and log(0) is -inf."},
    tables = {
        {title = "Part 2: per epoch",
         columns = {"variant", "epoch", {name = "train loss", fmt = "%.4g"}, {name = "train acc %", fmt = "%.2f"},
                    {name = "test acc %", fmt = "%.2f"}, {name = "test CE", fmt = "%.4g"},
                    {name = "max logit spread", fmt = "%.4g"}, "broke"},
         rows = epoch_rows,
         text = "`test CE` is `F.cross_entropy` on the test set for both variants, so the rows compare."},
        {title = "Part 1: where the naive form breaks",
         columns = {"dtype", "case", "naive loss from scale", "naive grad from scale", "loss from s (bisection)",
                    "grad from s (bisection)", "fused forms break"},
         rows = summary_rows,
         text = "The first scale of the grid (" .. table.concat((function()
                    local t = {}
                    for i, s in ipairs(cfg.scales) do t[i] = string.format("%g", s) end
                    return t
                end)(), ", ")
             .. ") at which the naive loss, or its gradient, is inf or NaN; for the worked row also the exact "
             .. "scale, by bisection. `none`: not on the grid (or, for the bisection, not below 1e6)."},
        part1_table({"random"}, "Part 1: random batch",
                    "Mean loss over the batch; `exact` is computed in Lua from the float64 logits as logsumexp - "
                        .. "x_y. Gradients w.r.t. the logits, by backward.", N * C),
        part1_table({"worked_t2", "worked_t0"}, "Part 1: worked row {s, 0, -s}",
                    "Exact loss 2s + log(1 + e^-s + e^-2s) for target 2, log(1 + e^-s + e^-2s) for target 0.", 3),
    },
    plots = plots,
    notes = {
        "The naive form is `-x:softmax(1):log():gather(1, y)` averaged over the batch. tide's softmax is itself "
            .. "stable (it subtracts the row max), so the naive form never overflows: it fails by underflow, "
            .. "when a probability rounds to 0 and its log is -inf. The loss becomes inf only when the target's "
            .. "probability underflows; the gradient becomes NaN as soon as any probability in the batch does "
            .. "(log's backward divides the incoming 0 by p = 0): with target 0, the row {s, 0, -s} keeps a "
            .. "finite naive loss of about 0 at every scale, but its gradient is NaN"
            .. (tf32.naive_grad_breaks_at and string.format(" from s = %.4g in float32", tf32.naive_grad_breaks_at)
                or "")
            .. ". In float64, p^-1 overflows for a subnormal p, so the gradient breaks before the loss there too.",
        "`log_softmax` and `cross_entropy` compute log p = (x - max) - log(sum exp(x - max)) and never take the log "
            .. "of a probability; their backward is softmax - onehot, bounded by 1 in each entry.",
        "Part 2 checks every step: a non-finite loss, or a non-finite gradient of any parameter after "
            .. "backward, stops that variant before the optimizer applies it, and is recorded in metrics.jsonl "
            .. "(`broke`, `broke_step`). A stopped variant's last epoch has fewer steps than the others.",
        "The model is an MLP (784-256-256-10, ReLU) with no batch norm: with batch norm (smallcnn, SGD lr 1) "
            .. "the activations stay normalised and the logits stayed below 15 in a trial epoch.",
        "Why the clipping (`--clip 1` by default): in trials with seed 0 and no clipping, plain SGD on this "
            .. "MLP kept the largest row spread of the logits under 60 at lr 0.6 and 0.7 (neither form broke in "
            .. "2 epochs on all 60,000 images) and overflowed the weights at lr 0.8 and 1.0 (both forms broke "
            .. "within 40 steps, cross_entropy's loss NaN once the logits were inf). Clipping the gradient norm "
            .. "to 1 bounds each step, so at lr 2 the logits grow past a spread of 100 while the weights stay "
            .. "finite: then only the naive form fails. `--clip 0` turns it off.",
    },
}
