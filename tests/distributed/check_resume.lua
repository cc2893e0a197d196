-- Checks a run of tests/distributed/resume_recipe.lua that was stopped
-- after epoch 1 and resumed, against uninterrupted runs:
--   tide tests/distributed/check_resume.lua DIR REF1 MODE1 REF2 MODE2
-- DIR/metrics.jsonl must hold variant ce's epochs 1 and 2 once each; its
-- epoch 1 must match REF1's epoch 1 and its epoch 2 REF2's epoch 2, each
-- "exact" (the same computation: equal to 1e-9) or "close" (the same
-- training up to float rounding, which an epoch of training amplifies:
-- losses to 2% relative, accuracies and ECE to 0.02). Exits 1 with one
-- line per failure.
local cjson = require "cjson"

local dir, ref1, mode1, ref2, mode2 = arg[1], arg[2], arg[3], arg[4], arg[5]
if not mode2 then
    io.stderr:write("usage: tide tests/distributed/check_resume.lua DIR REF1 exact|close REF2 exact|close\n")
    os.exit(2)
end
-- the failure list every recipe checker shares
local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/../recipes/checklib.lua")
local fail = C.fail

-- epoch -> record of variant ce; a failure for a repeated epoch
local function records(d)
    local f = io.open(d .. "/metrics.jsonl", "r")
    local out = {}
    if not f then
        fail("%s/metrics.jsonl is missing", d)
        return out
    end
    for line in f:lines() do
        local ok, r = pcall(cjson.decode, line)
        if not ok or type(r) ~= "table" then
            fail("%s/metrics.jsonl: a line is not a JSON object: %s", d, line)
        elseif r.variant == "ce" then
            local e = math.tointeger(r.epoch)
            if out[e] then fail("%s/metrics.jsonl repeats epoch %s", d, tostring(e)) end
            out[e] = r
        end
    end
    f:close()
    return out
end

local FIELDS = {"train_loss", "train_acc", "test_loss", "test_acc", "test_nll", "ece", "lr"}
-- absolute tolerances of "close" (accuracies, and ECE, whose bins a
-- rounding can move predictions between); relative 2% for the losses
local CLOSE = {train_acc = 0.02, test_acc = 0.02, ece = 0.02}

local function compare(what, got, want, mode)
    if not got then return fail("%s: no record", what) end
    if not want then return fail("%s: the reference has no record", what) end
    for _, k in ipairs(FIELDS) do
        local a, b = got[k], want[k]
        if type(a) ~= "number" or type(b) ~= "number" then
            fail("%s: %s is %s, the reference's %s", what, k, tostring(a), tostring(b))
        else
            local tol
            if mode == "exact" then tol = 1e-9 * math.max(1, math.abs(b))
            elseif CLOSE[k] then tol = CLOSE[k]
            else tol = 0.02 * math.max(1e-3, math.abs(b)) end
            if math.abs(a - b) > tol then
                fail("%s: %s is %.10g, the reference's %.10g (%s)", what, k, a, b, mode)
            end
        end
    end
end

local got = records(dir)
local n = 0
for _ in pairs(got) do n = n + 1 end
if n ~= 2 or not got[1] or not got[2] then fail("%s/metrics.jsonl: expected epochs 1 and 2 of ce, got %d", dir, n) end
compare(dir .. " epoch 1 vs " .. ref1, got[1], records(ref1)[1], mode1)
compare(dir .. " epoch 2 vs " .. ref2, got[2], records(ref2)[2], mode2)

C.exit_if_failed("check_resume")
print(string.format("check_resume: %s: epoch 1 matches %s (%s), epoch 2 matches %s (%s)", dir, ref1, mode1, ref2,
                    mode2))
