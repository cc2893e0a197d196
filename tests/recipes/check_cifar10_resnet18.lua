-- Checks what scripts/cifar10_resnet18.lua wrote into its --out folder,
-- beyond check_report.lua's generic checks:
--   tide tests/recipes/check_cifar10_resnet18.lua DIR [EPOCHS]
-- - metrics.jsonl: one record per epoch 1..EPOCHS (default 1) of variant
--   resnet18 with a finite train_loss in (0, 10), train_acc, test_acc
--   and ece in [0, 1], test_nll > 0, and lr 0.01 at epoch 1 (the recipe's
--   default, cosine after it);
-- - report.md names the recipe's settings: SGD with lr 0.01, momentum 0.9,
--   weight decay 0.0005, batch, the cosine schedule, crop and flip,
--   CIFAR-10's normalisation, and the Results table's columns.
-- Exits 1 with one line per failure.
local tide = require "tide"

local dir = arg[1]
local epochs = math.tointeger(tonumber(arg[2] or "1"))
if not dir or not epochs then
    io.stderr:write("usage: tide tests/recipes/check_cifar10_resnet18.lua DIR [EPOCHS]\n")
    os.exit(2)
end
local C = dofile((arg[0]:match("^(.*)/") or ".") .. "/checklib.lua")
local fail, in01 = C.fail, C.in01

local ok, recs = pcall(tide.experiment.read_jsonl, dir .. "/metrics.jsonl")
if not ok then fail("metrics.jsonl: %s", tostring(recs)) recs = {} end
if #recs ~= epochs then fail("metrics.jsonl has %d records, expected %d", #recs, epochs) end
for i, rec in ipairs(recs) do
    if rec.variant ~= "resnet18" or rec.epoch ~= i then
        fail("metrics.jsonl:%d is variant %s epoch %s, expected resnet18 epoch %d", i, tostring(rec.variant),
             tostring(rec.epoch), i)
    end
    if type(rec.train_loss) ~= "number" or not (rec.train_loss > 0 and rec.train_loss < 10) then
        fail("metrics.jsonl:%d: train_loss %s is not in (0, 10)", i, tostring(rec.train_loss))
    end
    for _, f in ipairs({"train_acc", "test_acc", "ece"}) do
        if not in01(rec[f]) then fail("metrics.jsonl:%d: %s %s is not in [0, 1]", i, f, tostring(rec[f])) end
    end
    if type(rec.test_nll) ~= "number" or not (rec.test_nll > 0 and rec.test_nll < 100) then
        fail("metrics.jsonl:%d: test_nll %s is not in (0, 100)", i, tostring(rec.test_nll))
    end
end
if recs[1] and (type(recs[1].lr) ~= "number" or math.abs(recs[1].lr - 0.01) > 1e-12) then
    fail("metrics.jsonl: lr at epoch 1 is %s, expected 0.01", tostring(recs[1].lr))
end

local f = io.open(dir .. "/report.md", "rb")
local report = f and f:read("a") or ""
if f then f:close() end
if report == "" then fail("%s/report.md is missing or empty", dir) end
for _, what in ipairs({"# ResNet-18 on CIFAR-10", "SGD, lr 0.01, momentum 0.9, weight decay 0.0005", "cosine annealing",
                       "random 32x32 crop of the image padded by 4 and horizontal flip", "(0.4914, 0.4822, 0.4465)",
                       "| variant | test acc e1 | best test acc | best epoch | train acc | test acc | test NLL | ECE |",
                       "reliability.png", "lr.png"}) do
    if not report:find(what, 1, true) then fail("report.md: no '%s'", what) end
end

C.exit_if_failed("check_cifar10_resnet18")
print(string.format("check_cifar10_resnet18: %s: %d epoch(s); all checks pass", dir, #recs))
