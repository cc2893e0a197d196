-- Checks what scripts/stability.lua wrote, for CI's quick run:
--   tide tests/recipes/check_stability.lua DIR [--epochs N] [--naive-breaks]
-- Part 1 (metrics.jsonl, variant "scales"): for each dtype, case and
-- scale, log_softmax and cross_entropy give a finite loss within 1e-4
-- (relative, or 1e-5 absolute) of the exact one and a finite gradient; the
-- naive loss is right at scales 1 and 10 (float16: 1) and inf from 100
-- (float32, bfloat16), 1000 (float64) and 10 (float16) on the random
-- batch; float16's fused forms break only where its logits overflow
-- (scale 1e5); the worked rows' bisected breaking scales are where each
-- dtype underflows. Part 2: each variant
-- (naive, cross_entropy) has a record per epoch up to --epochs or up to the
-- epoch where it broke, with numbers in range and the break recorded;
-- --naive-breaks requires that the naive one broke. The report has the
-- tables, and every plot it links is a PNG (gnuplot installed) or a CSV.
-- Exits 1 with one line per failure.
local tide = require "tide"

local dir = arg[1]
local epochs, naive_breaks = 1, false
local i = 2
while i <= #arg do
    if arg[i] == "--epochs" then epochs = math.tointeger(tonumber(arg[i + 1])); i = i + 2
    elseif arg[i] == "--naive-breaks" then naive_breaks = true; i = i + 1
    else io.stderr:write("check_stability: unknown argument ", arg[i], "\n"); os.exit(2) end
end
if not dir or not epochs then
    io.stderr:write("usage: tide tests/recipes/check_stability.lua DIR [--epochs N] [--naive-breaks]\n")
    os.exit(2)
end
local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local fail, read = C.fail, C.read
local function finite(v) return type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge end

-- the fused forms' distance from the exact loss: float32's and float64's
-- own rounding, or the logits' rounding to 8 (bfloat16) or 11 (float16) bits
local TOL = {float32 = 1e-4, float64 = 1e-4, bfloat16 = 2 ^ -8, float16 = 2 ^ -10}
-- the largest scale at which the naive form is still right, and the
-- first at which it is inf on the random batch: float16's softmax
-- underflows (6e-8) an order of magnitude before float32's (1e-45)
local NAIVE_OK = {float32 = 10, float64 = 10, bfloat16 = 10, float16 = 1}
local NAIVE_INF = {float32 = 100, float64 = 1000, bfloat16 = 100, float16 = 10}

local recs = tide.experiment.read_jsonl(dir .. "/metrics.jsonl")
if #recs == 0 then fail("%s/metrics.jsonl is missing or empty", dir) end

-- part 1
local cases, thresholds = 0, {}
for _, r in ipairs(recs) do
    if r.variant == "scales" and r.case == "threshold" then
        thresholds[r.row .. "/" .. r.dtype] = r
    elseif r.variant == "scales" then
        cases = cases + 1
        local where = string.format("%s %s scale %g", tostring(r.case), tostring(r.dtype), r.scale or 0 / 0)
        if not finite(r.exact) then fail("%s: exact loss %s", where, tostring(r.exact)) end
        local tol = TOL[r.dtype] or 0
        -- float16's logits themselves overflow past 65504: every form breaks there
        local overflow = r.dtype == "float16" and r.scale >= 1e5
        if overflow and (finite(r.cross_entropy_loss) or finite(r.log_softmax_loss)) then
            fail("%s: the logits overflow float16, yet a fused loss is finite", where)
        end
        for _, form in ipairs(overflow and {} or {"log_softmax", "cross_entropy"}) do
            local v = r[form .. "_loss"]
            if not finite(v) then
                fail("%s: %s loss is not finite: %s", where, form, tostring(v))
            elseif finite(r.exact) and math.abs(v - r.exact) > math.max(tol * math.abs(r.exact), 1e-5) then
                fail("%s: %s loss %.8g is not the exact %.8g", where, form, v, r.exact)
            end
            if r[form .. "_grad_nonfinite"] ~= 0 then
                fail("%s: %s gradient has %s non-finite entries", where, form, tostring(r[form .. "_grad_nonfinite"]))
            end
        end
        if r.scale <= (NAIVE_OK[r.dtype] or 10) then
            -- the naive form rounds p to the dtype before the log: in the 2-byte
            -- dtypes log(p) is off by up to about the dtype's unit roundoff
            local abs = (r.dtype == "bfloat16" or r.dtype == "float16") and 2 * tol or 1e-5
            if not finite(r.naive_loss)
               or math.abs(r.naive_loss - r.exact) > math.max(2 * tol * math.abs(r.exact), abs) then
                fail("%s: the naive loss %s should match the exact %.6g at this scale", where, tostring(r.naive_loss),
                     r.exact)
            end
            if r.naive_grad_nonfinite ~= 0 then fail("%s: the naive gradient should be finite at this scale", where) end
        end
        if r.case == "random" and r.scale >= (NAIVE_INF[r.dtype] or 1000) then
            if finite(r.naive_loss) then fail("%s: the naive loss %g should be inf here", where, r.naive_loss) end
            if r.naive_grad_nonfinite == 0 then fail("%s: the naive gradient should be non-finite here", where) end
        end
    end
end
if cases ~= 4 * 3 * 6 then fail("metrics.jsonl: %d part-1 records, not 72 (4 dtypes x 3 cases x 6 scales)", cases) end
-- float32 flushes below exp(-87.3), float64 keeps subnormals to exp(-745): the row {s, 0, -s}
-- loses p = e^-2s (target 2: the loss; target 0: the gradient) near s = 43.7 and 372.6
for _, t in ipairs({{"worked_t2/float32", "naive_loss_breaks_at", 40, 53},
                    {"worked_t0/float32", "naive_grad_breaks_at", 40, 53},
                    {"worked_t2/float64", "naive_loss_breaks_at", 350, 375},
                    {"worked_t0/float64", "naive_grad_breaks_at", 350, 375},
                    -- bfloat16 has float32's exponent; float16's smallest value, 2^-24,
                    -- is e^-2s at s = 8.3 (rounding to it or to 0 moves that a little)
                    {"worked_t2/bfloat16", "naive_loss_breaks_at", 40, 53},
                    {"worked_t0/bfloat16", "naive_grad_breaks_at", 40, 53},
                    {"worked_t2/float16", "naive_loss_breaks_at", 7, 10},
                    {"worked_t0/float16", "naive_grad_breaks_at", 7, 10}}) do
    local r = thresholds[t[1]]
    local v = r and r[t[2]]
    if not finite(v) or v < t[3] or v > t[4] then
        fail("threshold %s %s = %s, not in [%g, %g]", t[1], t[2], tostring(v), t[3], t[4])
    end
end
if thresholds["worked_t0/float32"] and thresholds["worked_t0/float32"].naive_loss_breaks_at then
    fail("the naive loss of {s, 0, -s} with target 0 should never break")
end

-- part 2
for _, name in ipairs({"naive", "cross_entropy"}) do
    local h = {}
    for _, r in ipairs(recs) do if r.variant == name then h[#h + 1] = r end end
    table.sort(h, function(a, b) return (a.epoch or 0) < (b.epoch or 0) end)
    if #h == 0 then fail("metrics.jsonl: no records for %s", name) end
    for k, r in ipairs(h) do
        local where = name .. " epoch " .. tostring(r.epoch)
        if r.epoch ~= k then fail("%s: expected epoch %d", where, k) end
        for _, f in ipairs({"train_acc", "test_acc"}) do
            if not (finite(r[f]) and r[f] >= 0 and r[f] <= 1) then fail("%s: %s = %s", where, f, tostring(r[f])) end
        end
        for _, f in ipairs({"train_loss", "max_logit_spread", "seconds", "steps", "images"}) do
            if type(r[f]) ~= "number" then fail("%s: %s is not a number", where, f) end
        end
        if r.broke then
            if k ~= #h then fail("%s: broke but is not the last record", where) end
            if math.type(r.broke_step) ~= "integer"
               and not (type(r.broke_step) == "number" and r.broke_step % 1 == 0) then
                fail("%s: broke_step %s is not an integer", where, tostring(r.broke_step))
            end
        end
    end
    local last = h[#h]
    if last and not last.broke and #h ~= epochs then fail("%s: %d epochs recorded, not %d", name, #h, epochs) end
    if name == "naive" and naive_breaks and not (last and last.broke) then fail("the naive variant did not break") end
end

-- report and plots
local report = read(dir .. "/report.md")
if not report then fail("%s/report.md is missing", dir) report = "" end
for _, what in ipairs({"## Part 2: training at a high learning rate", "## Part 1: where the naive form breaks",
                       "## Part 1: random batch", "## Part 1: worked row", "| naive |", "| cross_entropy |",
                       "## Settings", "## Machine"}) do
    if not report:find(what, 1, true) then fail("report.md: no '%s'", what) end
end
local gnuplot = tide.plot.available()
local plots = 0
for rel in report:gmatch("%]%(([^)]+)%)") do
    local body = read(dir .. "/" .. rel)
    if rel:match("%.png$") then
        plots = plots + 1
        if not body or body:sub(1, 8) ~= "\137PNG\r\n\26\n" then fail("%s is missing or not a PNG", rel) end
    elseif rel:match("%.csv$") then
        plots = plots + 1
        if not body or #body == 0 then fail("%s is missing or empty", rel) end
        if gnuplot then fail("gnuplot is installed but the report links the CSV %s", rel) end
    end
end
if plots < 5 then fail("report.md links %d plots, fewer than 5", plots) end

C.exit_if_failed("check_stability")
print(string.format("check_stability: %s: %d part-1 cases and the thresholds in range, part 2 recorded, %d plot(s); "
                    .. "all checks pass", dir, cases, plots))
