-- tide.experiment: flags (good and bad values, --help, exit codes), the
-- JSON lines, skip-on-rerun, a changed setting, resuming an interrupted
-- variant bit for bit, and report.md. Trains an mlp on a tiny
-- TensorDataset, so it runs in seconds.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local cjson = require "cjson"
local X = tide.experiment

local TIDE = arg and arg[-1] or "tide"
local sh = H.sh
local tmpdir, remove_tmpdirs = H.tmpdirs()
teardown(remove_tmpdirs)

local function read(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

local function jsonl(path)
    local out = {}
    for line in read(path):gmatch("[^\n]+") do out[#out + 1] = cjson.decode(line) end
    return out
end

local SPEC = {name = "toy", defaults = {epochs = 2, batch_size = 16, lr = 0.05, model = "mlp"},
              flags = {{name = "gamma", type = "number", min = 0, default = 2, help = "focusing"},
                       {name = "variants", type = "strings", default = {"ce"}, help = "which"},
                       {name = "mode", type = "string", choices = {"a", "b"}, default = "a"},
                       {name = "verbose", type = "boolean", default = false}}}

describe("experiment.parse_args", function()
    it("gives the defaults and reads --flag value and --flag=value", function()
        local cfg = assert(X.parse_args({}, SPEC))
        assert.are.same({2, 0, 16, 0.05, "mlp", "cpu", 0, "runs/toy", 2, false},
                        {cfg.epochs, cfg.subset, cfg.batch_size, cfg.lr, cfg.model, cfg.device, cfg.seed,
                         cfg.out, cfg.gamma, cfg.verbose})
        assert.are.equal(tide.get_num_threads(), cfg.threads)
        cfg = assert(X.parse_args({"--epochs", "3", "--lr=0.5", "--batch-size", "4", "--subset=100",
                                   "--seed", "7", "--out", "/tmp/x", "--gamma", "0.5", "--variants=ce,mse",
                                   "--mode", "b", "--verbose", "--threads", "1", "--model", "smallcnn"}, SPEC))
        assert.are.same({3, 0.5, 4, 100, 7, "/tmp/x", 0.5, {"ce", "mse"}, "b", true, 1, "smallcnn"},
                        {cfg.epochs, cfg.lr, cfg.batch_size, cfg.subset, cfg.seed, cfg.out, cfg.gamma,
                         cfg.variants, cfg.mode, cfg.verbose, cfg.threads, cfg.model})
        assert.is_true(cfg._given.epochs and cfg._given.lr and not cfg._given.device)
        assert.is_false(X.parse_args({"--verbose=false"}, SPEC).verbose)
        assert.is_true(X.parse_args({"--fresh"}, SPEC).fresh)
        assert.is_false(X.parse_args({"--fresh", "--no-fresh"}, SPEC).fresh)
        assert.are.equal(64, X.parse_args({"--batch_size", "64"}, SPEC).batch_size)
    end)

    it("rejects bad values with the flag, what it expects and what it got", function()
        local cases = {
            {{"--epochs", "x"}, "toy: --epochs expects a positive integer, got 'x'"},
            {{"--epochs", "0"}, "toy: --epochs expects a positive integer, got '0'"},
            {{"--epochs=-3"}, "toy: --epochs expects a positive integer, got '-3'"},
            {{"--epochs", "2.5"}, "toy: --epochs expects a positive integer, got '2.5'"},
            {{"--epochs"}, "toy: --epochs expects a positive integer, got nothing"},
            {{"--subset", "-1"}, "toy: --subset expects a non-negative integer, got '-1'"},
            {{"--batch-size", "0"}, "toy: --batch-size expects a positive integer, got '0'"},
            {{"--lr", "fast"}, "toy: --lr expects a positive number, got 'fast'"},
            {{"--lr", "0"}, "toy: --lr expects a positive number, got '0'"},
            {{"--lr", "nan"}, "toy: --lr expects a positive number, got 'nan'"},
            {{"--lr", "inf"}, "toy: --lr expects a positive number, got 'inf'"},
            {{"--model", "vgg"}, "toy: --model expects one of mlp, lenet5, smallcnn, resnet18, resnet34, "
                                 .. "resnet50, got 'vgg'"},
            {{"--device", "tpu"}, "toy: --device expects cpu or cuda, got 'tpu'"},
            {{"--threads", "many"}, "toy: --threads expects a positive integer, got 'many'"},
            {{"--seed", "-1"}, "toy: --seed expects a non-negative integer, got '-1'"},
            {{"--out="}, "toy: --out expects a non-empty string, got ''"},
            {{"--gamma", "-1"}, "toy: --gamma expects a non-negative number, got '-1'"},
            {{"--mode", "c"}, "toy: --mode expects one of a, b, got 'c'"},
            {{"--verbose=maybe"}, "toy: --verbose expects true or false, got 'maybe'"},
            {{"--variants="}, "toy: --variants expects a comma-separated list, got ''"},
            {{"--epoch", "3"}, "toy: unknown flag '--epoch' (see --help)"},
            {{"3"}, "toy: unexpected argument '3' (flags start with --; see --help)"},
        }
        for _, c in ipairs(cases) do
            local cfg, msg, code = X.parse_args(c[1], SPEC)
            assert.is_nil(cfg)
            assert.are.equal(c[2], msg)
            assert.are.equal(2, code)
        end
    end)

    it("rejects --device cuda where there is no CUDA device", function()
        if tide.cuda.is_available() then
            assert.are.equal("cuda", X.parse_args({"--device", "cuda"}, SPEC).device)
        else
            local cfg, msg, code = X.parse_args({"--device", "cuda"}, SPEC)
            assert.is_nil(cfg)
            assert.are.equal(2, code)
            assert.matches("^toy: %-%-device cuda: no CUDA device is available", msg)
        end
    end)

    it("lets the recipe restrict the models and adjust defaults the user did not give", function()
        local spec = {name = "r", models = {"mlp", "lenet5"},
                      adjust = function(cfg, given) if not given.batch_size then cfg.batch_size = 8 end end}
        assert.are.equal("r: --model expects one of mlp, lenet5, got 'smallcnn'",
                         select(2, X.parse_args({"--model", "smallcnn"}, spec)))
        assert.are.equal(8, X.parse_args({}, spec).batch_size)
        assert.are.equal(32, X.parse_args({"--batch-size", "32"}, spec).batch_size)
    end)

    it("answers --help with the usage, every flag and its default", function()
        local cfg, text, code = X.parse_args({"--lr", "1", "--help"}, SPEC)
        assert.is_nil(cfg)
        assert.are.equal(0, code)
        for _, s in ipairs({"usage: tide scripts/toy.lua", "--epochs N", "default 2", "--batch-size N", "default 16",
                            "--lr X", "default 0.05", "--model NAME", "--device", "--threads", "--seed", "--out DIR",
                            "default runs/toy", "--gamma", "--variants", "default ce", "--fresh", "--help"}) do
            assert(text:find(s, 1, true), "no '" .. s .. "' in\n" .. text)
        end
    end)

    it("parse exits 0 on --help and 2 with the message on stderr for a bad value", function()
        local dir = tmpdir()
        local script = dir .. "/recipe.lua"
        local f = assert(io.open(script, "w"))
        f:write("require('tide').experiment.parse(arg, {name = 'toy'}); print('parsed')\n")
        f:close()
        local function run(args)
            local p = assert(io.popen(sh(TIDE) .. " " .. sh(script) .. " " .. args .. " 2>&1; echo \"rc=$?\""))
            local out = p:read("a")
            p:close()
            return out
        end
        assert.matches("parsed\nrc=0", run("--epochs 2"))
        local help = run("--help")
        assert.matches("usage: tide", help)
        assert.matches("rc=0", help)
        assert.is_nil(help:find("parsed", 1, true))
        local bad = run("--epochs x")
        assert.matches("toy: %-%-epochs expects a positive integer, got 'x'", bad)
        assert.matches("rc=2", bad)
    end)
end)

-- a tiny 3-class problem: 4x4 one-channel images whose class sets which
-- quarter is bright
local function toy_data(n, seed)
    tide.manual_seed(seed)
    local y = tide.randint(0, 3, {n}, "int64")
    local x = tide.randn({n, 1, 4, 4}) * 0.3
    local yl = y:totable()
    for i = 1, n do
        local k = yl[i]
        x:select(0, i - 1):select(0, 0):narrow(0, k, 2):add_(1.5)
    end
    return tide.data.TensorDataset(x, y)
end

local function setup(out, over)
    local argv = {"--out", out, "--epochs", "2", "--seed", "3"}
    for _, a in ipairs(over or {}) do argv[#argv + 1] = a end
    local cfg = assert(X.parse_args(argv, SPEC))
    return cfg
end

local DATA = {train = toy_data(96, 1), test = toy_data(48, 2), num_classes = 3, in_channels = 1, image_size = 4}

local function run_ce(ex, extra)
    local opts = {variant = "ce", data = DATA,
                  model = function() return X.model(ex.cfg, DATA) end,
                  optimizer = function(m) return X.optimizer(ex.cfg, m, {name = "sgd"}) end}
    for k, v in pairs(extra or {}) do opts[k] = v end
    return ex:train_classifier(opts)
end

local function weights(model)
    local out = {}
    for name, t in pairs(model:state_dict()) do out[name] = t:clone() end
    return out
end

local function same_weights(a, b)
    for name, t in pairs(a) do
        assert(b[name], "no " .. name)
        assert.are.equal(0, (t:double() - b[name]:double()):abs():max():item(), name)
    end
end

describe("experiment runs", function()
    it("logs one JSON line per variant and epoch with the standard fields", function()
        local out = tmpdir()
        local ex = X.new(setup(out), {quiet = true})
        local r = run_ce(ex)
        ex:train_classifier{variant = "mse", data = DATA, model = function() return X.model(ex.cfg, DATA) end,
                            loss = function(logits, y) return tide.F.mse_loss(logits:softmax(1), X.one_hot(y, 3)) end,
                            on_epoch = function(rec) return {note = "e" .. rec.epoch} end}
        local lines = jsonl(out .. "/metrics.jsonl")
        assert.are.equal(4, #lines)
        local want = {{"ce", 1}, {"ce", 2}, {"mse", 1}, {"mse", 2}}
        for i, rec in ipairs(lines) do
            assert.are.equal(want[i][1], rec.variant)
            assert.are.equal(want[i][2], math.tointeger(rec.epoch))
            for _, f in ipairs({"train_loss", "train_acc", "test_loss", "test_acc", "test_nll", "ece", "seconds",
                                "eval_seconds", "lr"}) do
                assert.are.equal("number", type(rec[f]), f)
            end
            assert(rec.test_acc >= 0 and rec.test_acc <= 1)
        end
        assert.are.equal("e2", lines[4].note)
        assert.is_nil(lines[2].note)
        -- the line's first fields are in the standard order
        assert.matches('^{"variant":"ce","epoch":1,"train_loss":', read(out .. "/metrics.jsonl"))
        -- the toy problem is easy: the mlp learns it
        assert(r.final.test_acc > 0.9, "test acc " .. r.final.test_acc)
        assert.are.same({48, 3}, r.logits:shape())
        assert.are.same({48}, r.labels:shape())
        assert.are.equal(2, #r.history)
        assert.are.equal(r.final.test_acc, tide.metrics.accuracy(r.logits, r.labels))
    end)

    it("trains under --precision bfloat16 and float16 near float32, each its own variant key", function()
        local results = {}
        for _, p in ipairs({"float32", "bfloat16", "float16"}) do
            local out = tmpdir()
            local ex = X.new(setup(out, {"--precision", p}), {quiet = true})
            results[p] = run_ce(ex)
            -- mixed precision gives the logits in bfloat16 or float16, widened for the loss and metrics
            assert.are.equal("float32", results[p].logits:dtype())
        end
        local f32 = results.float32.final
        for _, p in ipairs({"bfloat16", "float16"}) do
            local r = results[p].final
            assert(math.abs(r.test_acc - f32.test_acc) <= 0.05, p .. " test acc " .. r.test_acc)
            assert(math.abs(r.train_loss - f32.train_loss) < 0.05, p .. " train loss " .. r.train_loss)
            -- rounding to the low dtype does change the numbers: the run was not float32
            assert.are_not.equal(f32.train_loss, r.train_loss)
        end
        -- float32 keeps the settings key runs had before the flag; the others differ
        local base = X.settings(setup("o"))
        assert.is_nil(base.precision)
        assert.are.equal("bfloat16", X.settings(setup("o", {"--precision", "bfloat16"})).precision)
        local _, err = X.parse_args({"--precision", "fp8"}, SPEC)
        assert.matches("%-%-precision expects one of float32, bfloat16, float16, got 'fp8'", err)
        local _, err2 = X.parse_args({"--precision", "bfloat16"}, {name = "f32only", omit = {"precision"}})
        assert.matches("unknown flag '%-%-precision'", err2)
    end)

    it("skips a finished variant on rerun with the same settings and loads its results and weights", function()
        local out = tmpdir()
        local ex = X.new(setup(out), {quiet = true})
        local r1 = run_ce(ex)
        local w1 = weights(r1.model)
        local n1 = #jsonl(out .. "/metrics.jsonl")

        local ex2 = X.new(setup(out, {"--threads", "1"}), {quiet = true}) -- threads do not count
        local called = false
        local r2 = run_ce(ex2, {on_epoch = function() called = true end})
        assert.is_false(called)
        assert.is_true(r2.skipped)
        assert.is_true(ex2.loaded.ce)
        assert.are.equal(n1, #jsonl(out .. "/metrics.jsonl"))
        assert.are.equal(2, #r2.history)
        assert.are.equal(r1.final.test_acc, r2.history[2].test_acc)
        assert.are.equal(0, (r1.logits - r2.logits):abs():max():item())
        assert.are.equal(0, (r1.labels - r2.labels):abs():max():item())
        same_weights(w1, weights(r2.model))

        -- a generic variant stores numbers, strings, tensors
        local v = ex2:variant("stats", function() return {n = 3, s = "x", t = tide.arange(4)} end)
        local again = X.new(setup(out), {quiet = true}):variant("stats", function() error("ran again") end)
        assert.is_true(again.skipped)
        assert.are.same({3, "x", {0, 1, 2, 3}}, {again.n, again.s, again.t:totable()})
        assert.are.equal(3, v.n)

        -- --fresh reruns
        local ran = false
        X.new(setup(out, {"--fresh"}), {quiet = true}):variant("stats", function() ran = true end)
        assert.is_true(ran)
    end)

    it("reruns a variant whose settings changed, replacing its lines", function()
        local out = tmpdir()
        run_ce(X.new(setup(out), {quiet = true}))
        local before = jsonl(out .. "/metrics.jsonl")
        local r = run_ce(X.new(setup(out, {"--lr", "0.01"}), {quiet = true}))
        assert.is_nil(r.skipped)
        local after = jsonl(out .. "/metrics.jsonl")
        assert.are.equal(2, #after)
        assert.are.equal(0.01, after[1].lr)
        assert.are_not.equal(before[2].train_loss, after[2].train_loss)
        -- per-variant settings count too
        local ex = X.new(setup(out, {"--lr", "0.01"}), {quiet = true})
        local n = 0
        ex:variant("v", {settings = {k = 1}}, function() n = n + 1 end)
        X.new(setup(out, {"--lr", "0.01"}), {quiet = true}):variant("v", {settings = {k = 1}}, function() n = n + 1 end)
        assert.are.equal(1, n)
        X.new(setup(out, {"--lr", "0.01"}), {quiet = true}):variant("v", {settings = {k = 2}}, function() n = n + 1 end)
        assert.are.equal(2, n)
    end)

    it("resumes an interrupted variant from its last epoch, as if never stopped", function()
        local whole = tmpdir()
        local r_whole = run_ce(X.new(setup(whole, {"--epochs", "3"}), {quiet = true}))

        local out = tmpdir()
        local ok, err = pcall(run_ce, X.new(setup(out, {"--epochs", "3"}), {quiet = true}),
                              {on_epoch = function(rec) if rec.epoch == 3 then error("interrupted") end end})
        assert.is_false(ok)
        assert.matches("interrupted", tostring(err))
        assert.are.equal(2, #jsonl(out .. "/metrics.jsonl"))

        local epochs_run = {}
        local r = run_ce(X.new(setup(out, {"--epochs", "3"}), {quiet = true}),
                         {on_epoch = function(rec) epochs_run[#epochs_run + 1] = rec.epoch end})
        assert.are.same({3}, epochs_run)
        local lines = jsonl(out .. "/metrics.jsonl")
        assert.are.equal(3, #lines)
        same_weights(weights(r_whole.model), weights(r.model))
        assert.are.equal(r_whole.final.train_loss, r.final.train_loss)
    end)

    it("writes report.md with the table, plots, settings, seed, machine and version", function()
        local out = tmpdir()
        local ex = X.new(setup(out, {"--subset", "0"}), {quiet = true})
        run_ce(ex)
        local plot = ex:plot_curves{field = "test_acc", title = "test accuracy"}
        local path = ex:report{title = "Toy", text = "A toy.",
                               table = {columns = {"variant", {name = "test acc", fmt = "%.2f"}, "n"},
                                        rows = {{"ce", 91.256, 3}, {"mse", nil, 4}}},
                               plots = {{title = "accuracy", path = plot}}, notes = {"a note"}}
        assert.are.equal(out .. "/report.md", path)
        local md = read(path)
        for _, s in ipairs({"# Toy", "A toy.", "| variant | test acc | n |", "| --- | ---: | ---: |",
                            "| ce | 91.26 | 3 |", "| mse | - | 4 |", "- a note", "## Settings", "| seed | 3 |",
                            "| lr | 0.05 |", "--epochs 2 --seed 3", "## Machine", "CPU: ", "tide " .. tide.version,
                            "date: "}) do
            assert(md:find(s, 1, true), "no '" .. s .. "' in\n" .. md)
        end
        if plot:match("%.png$") then
            assert(md:find("![accuracy](test_acc.png)", 1, true), md)
            assert.are.equal("\137PNG", read(plot):sub(1, 4))
        else
            assert(md:find("(test_acc.csv)", 1, true), md)
        end
        local text = X.format_table{columns = {"variant", {name = "acc", fmt = "%.1f"}},
                                    rows = {{"ce", 90.04}, {"label_smooth", 9.5}}}
        assert.are.equal("variant        acc\n------------  ----\nce            90.0\nlabel_smooth   9.5\n", text)
    end)

    it("trains a multi-label head with its own accuracy and no calibration metrics", function()
        local out = tmpdir()
        local ex = X.new(setup(out), {quiet = true})
        local function multi(ds)
            -- label 0: class 0 or 1; label 1: class 2
            local y = ds.labels
            local t = tide.stack({y:lt(2):float(), y:eq(2):float()}, 1)
            return tide.data.TensorDataset(ds.images, t)
        end
        local r = ex:train_classifier{
            variant = "multi", train = multi(DATA.train), test = multi(DATA.test),
            model = function() return X.model(ex.cfg, DATA, {num_classes = 2}) end,
            loss = function(z, t) return tide.F.binary_cross_entropy_with_logits(z, t) end,
            accuracy = function(z, t) return z:gt(0):float():eq(t):float():mean():item() end,
        }
        local rec = jsonl(out .. "/metrics.jsonl")[2]
        assert.are.equal("number", type(rec.test_acc))
        assert.are.equal("number", type(rec.test_loss))
        assert.is_nil(rec.ece)
        assert.is_nil(rec.test_nll)
        assert.are.same({48, 2}, r.logits:shape())
    end)

    it("rejects variant names that cannot be file names", function()
        local ex = X.new(setup(tmpdir()), {quiet = true})
        assert.has_error(function() ex:variant("a/b", function() end) end)
        assert.has_error(function() ex:variant("", function() end) end)
    end)

    it("has the helpers recipes share", function()
        assert.are.same({1}, X.milestones(1))
        assert.are.same({1, 2}, X.milestones(2))
        assert.are.same({1, 4, 8}, X.milestones(8))
        assert.are.same({{0, 1, 0}, {0, 0, 1}}, X.one_hot(tide.tensor({1, 2}, "int64"), 3):totable())
        local ds = toy_data(10, 1)
        assert.are.equal(ds, X.subset(ds, 0))
        assert.are.equal(4, #X.subset(ds, 4))
        local m = X.model({model = "mlp"}, DATA)
        local logits, labels = X.evaluate(m, DATA.test, {batch_size = 7})
        assert.are.same({48, 3}, logits:shape())
        assert.are.same(DATA.test.labels:totable(), labels:totable())
    end)
end)
