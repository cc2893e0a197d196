-- The classic worked examples of cross-entropy and MSE, every
-- number computed by tide and printed beside the value the tutorials give:
--   -log 0.9 = 0.105, -log 0.1 = 2.303, -log 0.01 = 4.605 (the loss when the
--   true class gets probability 0.9, 0.1, 0.01), softmax of {2, 1, 0.1} =
--   {0.66, 0.24, 0.10}, and CE vs MSE for the predictions {0.7, 0.2, 0.1}
--   and {0.4, 0.3, 0.3} with true class 0.
-- Each value comes from tide's own functions (F.nll_loss, F.cross_entropy,
-- F.mse_loss, softmax) in float32, tide's default dtype; a value that
-- differs from the expected one by more than the expected value's printed
-- rounding (half a unit of its last digit) is marked and the script exits 1
-- after writing the report. No training, no data: it takes --out and --help.
--   tide scripts/worked_examples.lua [--out DIR] (--help)
local tide = require "tide"
local X = tide.experiment
local F = tide.F

local TRAINING = {"epochs", "subset", "batch_size", "lr", "model", "device", "fresh"}

local cfg = X.parse(arg, {
    name = "worked_examples",
    omit = {"precision"}, -- float32 only: no --precision
    about = "Every number of the classic cross-entropy / MSE worked examples, computed by tide and\n"
         .. "printed beside the expected value; exits 1 on a mismatch. No training: only --out (and\n"
         .. "--threads, --seed) matter; the training flags are rejected.",
    adjust = function(_, given)
        for _, k in ipairs(TRAINING) do
            if given[k] then
                return nil, "--" .. k:gsub("_", "-") .. " does not apply: this recipe trains nothing (it takes --out)"
            end
        end
    end,
})
-- the training settings mean nothing here: keep them out of the report
for _, k in ipairs(TRAINING) do if k ~= "device" then cfg[k] = nil end end
local ex = X.new(cfg)

-- log-probabilities of one row of probabilities, and its target (class 0)
local function logp(p) return tide.tensor({p}):log() end
local Y0 = tide.tensor({0}, "int64")

local rows, records, failed = {}, {}, 0
-- one check: `what` the quantity, `how` the tide call, `value` tide's
-- number, `expected` the tutorial's, printed with `digits` decimals
local function check(what, how, value, expected, digits)
    local tol = 0.5 * 10 ^ -digits + 1e-9
    local ok = math.abs(value - expected) <= tol
    if not ok then failed = failed + 1 end
    local fmt = "%." .. digits .. "f"
    rows[#rows + 1] = {what, "`" .. how .. "`", string.format(fmt, value), string.format(fmt, expected),
                       ok and "✓" or "✗ MISMATCH"}
    records[#records + 1] = {variant = "worked_examples", check = #records + 1, quantity = what, call = how,
                             tide = value, expected = expected, digits = digits, ok = ok}
end

-- the loss of one example when the true class gets probability q
for _, q in ipairs({{0.9, 0.105}, {0.1, 2.303}, {0.01, 4.605}}) do
    local p = {q[1], 1 - q[1]}
    check(string.format("-log %g (true class at p = %g)", q[1], q[1]),
          string.format("F.nll_loss(tensor{{%g, %g}}:log(), {0})", p[1], p[2]),
          F.nll_loss(logp(p), Y0):item(), q[2], 3)
end

-- softmax of {2, 1, 0.1}
local s = tide.tensor({2, 1, 0.1}):softmax(0):totable()
for i, e in ipairs({0.66, 0.24, 0.10}) do
    check(string.format("softmax{2, 1, 0.1}[%d]", i - 1), "tensor{2, 1, 0.1}:softmax(0)", s[i], e, 2)
end

-- CE vs MSE for two predictions, true class 0
local onehot = tide.tensor({{1, 0, 0}})
local predictions = {
    {p = {0.7, 0.2, 0.1}, ce = 0.357, mse = 0.14 / 3, mse_sum = 0.14},
    {p = {0.4, 0.3, 0.3}, ce = 0.916, mse = 0.54 / 3, mse_sum = 0.54},
}
for _, c in ipairs(predictions) do
    local name = string.format("{%g, %g, %g}", c.p[1], c.p[2], c.p[3])
    local p = tide.tensor({c.p})
    check("CE of " .. name, "F.nll_loss(p:log(), {0})", F.nll_loss(logp(c.p), Y0):item(), c.ce, 3)
    check("CE of " .. name .. " as logits log p", "F.cross_entropy(p:log(), {0})",
          F.cross_entropy(logp(c.p), Y0):item(), c.ce, 3)
    check("MSE of " .. name .. ", mean over classes", "F.mse_loss(p, onehot)", F.mse_loss(p, onehot):item(),
          c.mse, 4)
    check("MSE of " .. name .. ", sum over classes", "F.mse_loss(p, onehot, {reduction = \"sum\"})",
          F.mse_loss(p, onehot, {reduction = "sum"}):item(), c.mse_sum, 2)
end

for _, r in ipairs(records) do ex:log(r) end

local total = #rows
ex:report{
    title = "Worked examples: cross-entropy, softmax and MSE, computed by tide",
    text = "Each number of the classic worked examples computed by tide (float32) beside the value the "
        .. "tutorials print. A row passes (✓) when tide's value is within half a unit of the expected "
        .. "value's last printed digit. True class: 0 (classes count from 0).",
    table = {title = "Results", columns = {"quantity", "tide computes", "tide", "expected", "check"}, rows = rows},
    notes = {
        "PyTorch's `mse_loss` (and tide's, the same) defaults to `reduction = \"mean\"`: the mean over every "
            .. "element, here the 3 classes of one example: (0.09 + 0.04 + 0.01) / 3 = 0.0467 and "
            .. "(0.36 + 0.09 + 0.09) / 3 = 0.18. Many tutorials print the sum over classes instead, "
            .. "0.14 and 0.54: that is `reduction = \"sum\"` (for one example). Both are shown.",
        "CE is -log of the true class's probability: `nll_loss` on log p, and `cross_entropy` on the logits "
            .. "log p (softmax of log p is p again when p sums to 1), so both give the same number.",
        "MSE here is on probabilities against the one-hot target, as the tutorials (and scripts/loss_study.lua) "
            .. "use it; the gradients of these examples are in scripts/gradients.lua.",
    },
}

if failed > 0 then
    io.stderr:write(string.format("worked_examples: %d of %d values differ from the expected ones (see %s)\n",
                                  failed, total, ex:path("report.md")))
    os.exit(1)
end
print(string.format("worked_examples: all %d values match the expected ones", total))
