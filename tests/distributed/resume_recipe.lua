-- A small recipe for tests/distributed/resume_world_size.sh: smallcnn (so
-- SyncBatchNorm too) trained with ex:train_classifier for --epochs on the
-- first --subset Fashion-MNIST images, tested on the first 1,000 test
-- images. With the environment variable TIDE_TEST_STOP_AFTER=E it stops
-- (exit status 3, every rank) in epoch E + 1, after the epoch's training
-- and evaluation but before its record and checkpoint: a run killed after
-- epoch E, which the same command resumes.
--   [mpirun -np 2] tide tests/distributed/resume_recipe.lua --out DIR [--epochs 2] ...
local tide = require "tide"
local X = tide.experiment

local cfg = X.parse(arg, {name = "resume_recipe", script = "tests/distributed/resume_recipe.lua",
                          defaults = {epochs = 2, subset = 512, batch_size = 16, lr = 2e-3}})
local stop_after = math.tointeger(tonumber(os.getenv("TIDE_TEST_STOP_AFTER") or ""))
local data = X.fashion_mnist(cfg, {test_subset = 1000})
local ex = X.new(cfg)
local r = ex:train_classifier{
    variant = "ce",
    data = data,
    model = function() return X.model(cfg, data) end,
    scheduler = function(opt) return tide.optim.CosineAnnealingLR(opt, cfg.epochs) end,
    on_epoch = function(_, _, epoch)
        if stop_after and epoch == stop_after + 1 then
            io.stderr:write(string.format("resume_recipe: stopping in epoch %d (TIDE_TEST_STOP_AFTER=%d)\n", epoch,
                                          stop_after))
            os.exit(3)
        end
    end,
}
local last = r.final
ex:report{title = "resume recipe",
          table = {columns = {"variant", {name = "train loss", fmt = "%.4f"}, {name = "test acc", fmt = "%.2f"}},
                   rows = {{"ce", last.train_loss, 100 * last.test_acc}}}}
