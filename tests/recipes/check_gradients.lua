-- Checks what scripts/gradients.lua wrote, beyond check_report.lua:
--   tide tests/recipes/check_gradients.lua DIR [--epochs N]
-- - report.md holds the worked example's 8 gradients, each checked (✓),
--   with the expected -0.3 / -0.6 (CE) and -0.6 / -1.2 (MSE, sum form);
-- - every ce / mse record of metrics.jsonl has gradient statistics in
--   range: 0 < p10 <= p50 <= p90, a positive std, CE's per-example norm at
--   most sqrt(2) (|p - onehot|), a negative true-class component, a mean
--   true-class probability in (0, 1), a positive weight-gradient norm;
-- - CE's mean gradient is larger than MSE's at epoch 1;
-- - the report has the ratio table and the gradient-vs-confidence plot.
-- Exits 1 with one line per failure.
local tide = require "tide"

local dir = arg[1]
local epochs = 1
if arg[2] == "--epochs" then epochs = math.tointeger(tonumber(arg[3])) end
if not dir or not epochs then
    io.stderr:write("usage: tide tests/recipes/check_gradients.lua DIR [--epochs N]\n")
    os.exit(2)
end
local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local fail = C.fail
local f = io.open(dir .. "/report.md", "rb")
local report = f and f:read("a") or ""
if f then f:close() else fail("%s/report.md is missing", dir) end

-- the worked example
local checked = 0
for line in report:gmatch("[^\n]+") do
    if line:match("^| {0%.[47], ") then
        if line:match("| ✓ |%s*$") then checked = checked + 1 else fail("worked example row not checked: %s", line) end
    end
end
if checked ~= 8 then fail("report.md: %d checked worked-example rows, not 8", checked) end
for _, row in ipairs({
    {"{0.7, 0.2, 0.1}", "CE, d/d logit 0", "-0.3000", "-0.300"},
    {"{0.4, 0.3, 0.3}", "CE, d/d logit 0", "-0.6000", "-0.600"},
    {"{0.7, 0.2, 0.1}", "MSE (sum over classes), d/d p0", "-0.6000", "-0.600"},
    {"{0.4, 0.3, 0.3}", "MSE (sum over classes), d/d p0", "-1.2000", "-1.200"},
}) do
    local found = false
    for line in report:gmatch("[^\n]+") do
        if line:find("| " .. row[1] .. " | " .. row[2] .. " |", 1, true) == 1
           and line:find("| " .. row[3] .. " | " .. row[4] .. " | ✓ |", 1, true) then found = true end
    end
    if not found then fail("report.md: no checked row %s %s = %s", row[1], row[2], row[3]) end
end
if report:find("MISMATCH", 1, true) then fail("report.md reports a mismatch") end
for _, what in ipairs({"## Ratio CE / MSE", "grad_vs_confidence.", "grad_logits.", "closed form"}) do
    if not report:find(what, 1, true) then fail("report.md: no '%s'", what) end
end

-- the statistics
local recs = tide.experiment.read_jsonl(dir .. "/metrics.jsonl")
local by = {}
for _, r in ipairs(recs) do
    if r.variant == "ce" or r.variant == "mse" then
        by[r.variant .. "/" .. tostring(r.epoch)] = r
        local function num(k)
            if type(r[k]) ~= "number" or r[k] ~= r[k] then
                fail("%s epoch %s: %s is not a number", r.variant, tostring(r.epoch), k)
                return false
            end
            return true
        end
        local all = true
        for _, k in ipairs({"grad_mean", "grad_std", "grad_p10", "grad_p50", "grad_p90", "grad_true_mean",
                            "p_true_mean", "wgrad_mean", "wgrad_std"}) do all = num(k) and all end
        if all then
            local where = r.variant .. " epoch " .. tostring(r.epoch)
            if not (r.grad_p10 > 0 and r.grad_p10 <= r.grad_p50 and r.grad_p50 <= r.grad_p90) then
                fail("%s: percentiles out of order: %g %g %g", where, r.grad_p10, r.grad_p50, r.grad_p90)
            end
            if not (r.grad_mean >= r.grad_p10 and r.grad_mean <= r.grad_p90 * 1.5) then
                fail("%s: mean %g is not between p10 and 1.5 p90", where, r.grad_mean)
            end
            if not (r.grad_std > 0) then -- luacheck: ignore 581 (NaN fails too)
                fail("%s: std %g is not positive", where, r.grad_std)
            end
            if r.variant == "ce" and r.grad_p90 > math.sqrt(2) + 1e-4 then
                fail("%s: CE's per-example gradient norm %g exceeds sqrt(2)", where, r.grad_p90)
            end
            if not (r.grad_true_mean < 0) then -- luacheck: ignore 581 (NaN fails too)
                fail("%s: true-class component %g is not negative", where, r.grad_true_mean)
            end
            if not (r.p_true_mean > 0 and r.p_true_mean < 1) then fail("%s: mean p(true) %g", where, r.p_true_mean) end
            if not (r.wgrad_mean > 0) then -- luacheck: ignore 581 (NaN fails too)
                fail("%s: weight-gradient norm %g", where, r.wgrad_mean)
            end
        end
    end
end
for _, v in ipairs({"ce", "mse"}) do
    for e = 1, epochs do
        if not by[v .. "/" .. e] then fail("metrics.jsonl: no record for %s epoch %d", v, e) end
    end
end
local a, b = by["ce/1"], by["mse/1"]
if a and b and type(a.grad_mean) == "number" and type(b.grad_mean) == "number"
   and not (a.grad_mean > b.grad_mean) then -- luacheck: ignore 581 (NaN fails too)
    fail("CE's mean gradient %g is not larger than MSE's %g at epoch 1", a.grad_mean, b.grad_mean)
end

C.exit_if_failed("check_gradients")
print(string.format("check_gradients: %s: worked example (8 gradients) and gradient statistics for ce and mse x %d "
                    .. "epoch(s) in range; all checks pass", dir, epochs))
