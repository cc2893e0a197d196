-- tide.metrics: small cases worked out by hand here, bigger random ones
-- against PyTorch (tests/reference/metrics.json, written by
-- gen_metrics.py), temperature scaling recovering a known temperature,
-- and bad input.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local M = tide.metrics

local data = cjson.decode(H.read_file("tests/reference/metrics.json")).cases

local function decode(v)
    if v == "nan" then return 0 / 0 end
    return v
end
local function tensor_of(spec)
    local vals = {}
    for i, v in ipairs(spec.values) do vals[i] = decode(v) end
    return H.tensor({values = vals, shape = spec.shape, dtype = spec.dtype})
end
local function near(got, want, tol, label)
    tol = tol or 1e-9
    assert(type(got) == "number", (label or "value") .. ": got a " .. type(got))
    assert(math.abs(got - want) <= tol * (1 + math.abs(want)),
        string.format("%s: got %.17g, expected %.17g", label or "value", got, want))
end
local function err(fn, ...)
    local e = H.error_of(fn, ...)
    assert(e, "expected an error")
    return e
end

local log, exp = math.log, math.exp
local function sig(v) return 1 / (1 + exp(-v)) end

describe("metrics by hand", function()
    -- rows: predicted 0 (right), 1 (right), 0 (label 2: wrong), 2 (right)
    local x = tide.tensor({{2, 1, 0}, {0, 3, 1}, {1, 0, 0.5}, {0, 0, 4}})
    local y = tide.tensor({0, 1, 2, 2}, "int64")
    local rows = {{2, 1, 0}, {0, 3, 1}, {1, 0, 0.5}, {0, 0, 4}}
    local function softmax(r)
        local z = exp(r[1]) + exp(r[2]) + exp(r[3])
        return {exp(r[1]) / z, exp(r[2]) / z, exp(r[3]) / z}
    end

    it("accuracy, top-k, per class, confusion matrix", function()
        assert.are.equal(0.75, M.accuracy(x, y))
        assert.are.equal(0.75, M.topk_accuracy(x, y, 1))
        -- row 3: only class 0 scores above the label's 0.5
        assert.are.equal(1.0, M.topk_accuracy(x, y, 2))
        assert.are.equal(1.0, M.topk_accuracy(x, y, 3))
        H.assert_close(M.per_class_accuracy(x, y, {num_classes = 3}), {1, 1, 0.5})
        assert.are.equal("float64", M.per_class_accuracy(x, y):dtype())
        local cm = M.confusion_matrix(x, y, {num_classes = 3})
        assert.are.equal("int64", cm:dtype())
        assert.are.same({{1, 0, 0}, {0, 1, 0}, {1, 0, 1}}, cm:totable())
    end)

    it("takes predicted classes as int64", function()
        local pred = tide.tensor({0, 1, 0, 2}, "int64")
        assert.are.equal(0.75, M.accuracy(pred, y))
        H.assert_close(M.per_class_accuracy(pred, y, {num_classes = 4}), {1, 1, 0.5, 0 / 0})
        assert.are.same({{1, 0, 0}, {0, 1, 0}, {1, 0, 1}}, M.confusion_matrix(pred, y, {num_classes = 3}):totable())
    end)

    it("NLL and Brier from the softmax", function()
        local nll, brier = 0, 0
        for i, r in ipairs(rows) do
            local p = softmax(r)
            local label = ({0, 1, 2, 2})[i]
            nll = nll - log(p[label + 1])
            for k = 1, 3 do brier = brier + (p[k] - (k - 1 == label and 1 or 0)) ^ 2 end
        end
        near(M.nll(x, y), nll / 4, 1e-7, "nll") -- float32 logits
        near(M.nll(x:double(), y), nll / 4, 1e-14, "nll float64")
        near(M.brier(x:double(), y), brier / 4, 1e-14, "brier")
    end)

    it("ECE and reliability bins: (lo, hi], weighted by count", function()
        -- confidences 0.9 right, 0.6 wrong, 0.7 right, 0.55 right
        local p = tide.tensor({{0.9, 0.1}, {0.6, 0.4}, {0.3, 0.7}, {0.55, 0.45}}, "float64")
        local t = tide.tensor({0, 1, 1, 0}, "int64")
        -- 5 bins: 0.6 sits on an edge and goes to (0.4, 0.6] with 0.55
        local want = 2 / 4 * math.abs(0.5 - 0.575) + 1 / 4 * math.abs(1 - 0.7) + 1 / 4 * math.abs(1 - 0.9)
        near(M.ece(p, t, {bins = 5, probs = true}), want, 1e-14, "ece")
        local bins = M.reliability(p, t, {bins = 5, probs = true})
        assert.are.equal(5, #bins)
        for i = 1, 5 do
            near(bins[i].lo, (i - 1) / 5, 0, "lo")
            near(bins[i].hi, i / 5, 0, "hi")
        end
        assert.are.same({0, 0, 2, 1, 1}, {bins[1].count, bins[2].count, bins[3].count, bins[4].count, bins[5].count})
        assert.is_nil(bins[1].confidence)
        assert.is_nil(bins[2].accuracy)
        near(bins[3].confidence, 0.575, 1e-15)
        near(bins[3].accuracy, 0.5, 0)
        near(bins[4].confidence, 0.7, 1e-15)
        near(bins[5].accuracy, 1, 0)
        near(M.brier(p, t, {probs = true}), (0.02 + 0.72 + 0.18 + 0.405) / 4, 1e-15, "brier")
        near(M.nll(p, t, {probs = true}), -(log(0.9) + log(0.4) + log(0.7) + log(0.55)) / 4, 1e-15, "nll")
        near(M.accuracy(p, t, {probs = true}), 0.75, 0)
        -- default 15 bins, all of them present
        assert.are.equal(15, #M.reliability(p, t, {probs = true}))
    end)

    it("binary: one logit, sigmoid, labels 0/1", function()
        local z = {2, -1, 0.5, -3}
        local lab = {1, 1, 0, 0}
        local xb = tide.tensor(z, "float64")
        local yb = tide.tensor(lab, "int64")
        local nll, brier = 0, 0
        for i = 1, 4 do
            local p = sig(z[i])
            nll = nll - (lab[i] == 1 and log(p) or log(1 - p))
            brier = brier + (p - lab[i]) ^ 2
        end
        assert.are.equal(0.5, M.accuracy(xb, yb))
        near(M.nll(xb, yb), nll / 4, 1e-14, "nll")
        near(M.brier(xb, yb), brier / 4, 1e-14, "brier")
        -- (N, 1) is the same as (N)
        near(M.nll(xb:view({4, 1}), yb), nll / 4, 1e-14, "nll (N,1)")
        assert.are.same({{1, 1}, {1, 1}}, M.confusion_matrix(xb, yb):totable())
        assert.are.same({{1, 1}, {1, 1}}, M.confusion_matrix(xb:view({4, 1}), yb, {num_classes = 2}):totable())
        -- confidence max(p, 1 - p): 0.881 right, 0.731 wrong, 0.622 wrong, 0.953 right
        local c = {sig(2), 1 - sig(-1), sig(0.5), 1 - sig(-3)}
        local want = (math.abs(0 - c[3]) + math.abs(0 - c[2]) + math.abs(1 - c[1]) + math.abs(1 - c[4])) / 4
        near(M.ece(xb, yb, {bins = 10}), want, 1e-14, "ece") -- one sample per bin
        near(M.topk_accuracy(xb, yb, 2), 1, 0)
    end)

    it("probabilities for binary input", function()
        local p = tide.tensor({0.8, 0.3, 1.0, 0.0}, "float64")
        local t = tide.tensor({1, 1, 1, 0}, "int64")
        near(M.nll(p, t, {probs = true}), -(log(0.8) + log(0.3)) / 4, 1e-15, "nll")
        assert.are.equal(0.75, M.accuracy(p, t, {probs = true}))
    end)
end)

describe("metrics against PyTorch", function()
    local mc = data.multi
    local x, y = tensor_of(mc.logits), tensor_of(mc.labels)

    it("multi-class accuracy, top-k, per class, confusion matrix", function()
        near(M.accuracy(x, y), mc.accuracy, 0, "accuracy")
        near(M.topk_accuracy(x, y, 1), mc.top1, 0, "top1")
        near(M.topk_accuracy(x, y, 3), mc.top3, 0, "top3")
        near(M.topk_accuracy(x, y, 5), mc.top5, 0, "top5")
        local want = tensor_of(mc.per_class_accuracy)
        H.assert_close(M.per_class_accuracy(x, y, {num_classes = 10}), H.values(want), 1e-14, 0)
        H.check_tensor(M.confusion_matrix(x, y, {num_classes = 10}), {values = mc.confusion_matrix.values,
            shape = mc.confusion_matrix.shape, dtype = "int64"}, 0, 0, "confusion_matrix")
    end)

    it("multi-class ECE, reliability, Brier, NLL", function()
        near(M.ece(x, y), mc.ece15, 1e-12, "ece15")
        near(M.ece(x, y, {bins = 10}), mc.ece10, 1e-12, "ece10")
        local bins = M.reliability(x, y)
        assert.are.equal(#mc.reliability15, #bins)
        for i, want in ipairs(mc.reliability15) do
            assert.are.equal(math.tointeger(want.count), bins[i].count)
            near(bins[i].lo, want.lo, 1e-15, "lo")
            near(bins[i].hi, want.hi, 1e-15, "hi")
            if want.count > 0 then
                near(bins[i].confidence, want.confidence, 1e-12, "confidence of bin " .. i)
                near(bins[i].accuracy, want.accuracy, 1e-12, "accuracy of bin " .. i)
            else
                assert.is_nil(bins[i].confidence)
            end
        end
        near(M.brier(x, y), mc.brier, 1e-12, "brier")
        near(M.nll(x, y), mc.nll, 1e-12, "nll")
        near(M.temperature_scale(x, y), mc.temperature, 1e-8, "temperature")
    end)

    it("probabilities with probs = true", function()
        local pc = data.probs
        local p, t = tensor_of(pc.probs), tensor_of(pc.labels)
        near(M.accuracy(p, t, {probs = true}), pc.accuracy, 0, "accuracy")
        near(M.ece(p, t, {probs = true}), pc.ece15, 1e-12, "ece")
        near(M.brier(p, t, {probs = true}), pc.brier, 1e-12, "brier")
        near(M.nll(p, t, {probs = true}), pc.nll, 1e-12, "nll")
    end)

    it("binary", function()
        local bc = data.binary
        local xb, yb = tensor_of(bc.logits), tensor_of(bc.labels)
        near(M.accuracy(xb, yb), bc.accuracy, 0, "accuracy")
        near(M.ece(xb, yb), bc.ece15, 1e-12, "ece")
        local bins = M.reliability(xb:view({-1, 1}), yb)
        for i, want in ipairs(bc.reliability15) do
            assert.are.equal(math.tointeger(want.count), bins[i].count)
            if want.count > 0 then near(bins[i].accuracy, want.accuracy, 1e-12, "accuracy of bin " .. i) end
        end
        near(M.brier(xb, yb), bc.brier, 1e-12, "brier")
        near(M.nll(xb, yb), bc.nll, 1e-12, "nll")
        near(M.temperature_scale(xb, yb), bc.temperature, 1e-8, "temperature")
    end)
end)

describe("temperature_scale", function()
    -- labels drawn from softmax(true logits); the model's logits are the
    -- true ones times k, so dividing them by T = k calibrates them
    local function draw(n, c, seed)
        tide.manual_seed(seed)
        local z = tide.randn({n, c}, {dtype = "float64"}) * 3
        local p = z:softmax(1):totable()
        local u = tide.rand({n}, {dtype = "float64"}):totable()
        local lab = {}
        for i = 1, n do
            local acc, k = 0, c - 1
            for j = 1, c do
                acc = acc + p[i][j]
                if u[i] <= acc then k = j - 1; break end
            end
            lab[i] = k
        end
        return z, tide.tensor(lab, "int64")
    end
    local z, y = draw(20000, 10, 7)

    it("recovers an over- and an under-confident temperature", function()
        for _, k in ipairs({2.5, 0.4}) do
            local t = M.temperature_scale(z * k, y)
            assert(math.abs(t - k) <= 0.04 * k, string.format("T = %g, expected about %g", t, k))
            -- it is the minimum: NLL is higher on both sides
            local best = M.nll(z * k / t, y)
            assert(M.nll(z * k / (t * 1.01), y) > best and M.nll(z * k / (t * 0.99), y) > best)
        end
        -- already calibrated: T near 1, and float32 logits give the same
        near(M.temperature_scale(z:float(), y), M.temperature_scale(z, y), 1e-5, "float32")
        assert(math.abs(M.temperature_scale(z, y) - 1) < 0.04)
    end)

    it("takes probabilities and stops at the ends of [0.05, 20]", function()
        local t1 = M.temperature_scale(z * 2.5, y)
        near(M.temperature_scale((z * 2.5):softmax(1), y, {probs = true}), t1, 1e-6, "from probs")
        -- perfectly separable: the NLL keeps falling as T shrinks
        local sep = tide.tensor({{1, -1}, {-1, 1}}, "float64")
        near(M.temperature_scale(sep, tide.tensor({0, 1}, "int64")), 0.05, 1e-12, "lower end")
        -- labels against the logits: the NLL keeps falling as T grows
        near(M.temperature_scale(sep, tide.tensor({1, 0}, "int64")), 20, 1e-12, "upper end")
        near(M.temperature_scale(z * 2.5, y, {max_iter = 200}), t1, 1e-9, "max_iter")
    end)
end)

describe("metrics reject bad input", function()
    local x = tide.randn({128, 10})
    local y = tide.zeros({128}, {dtype = "int64"})

    it("names the function and the argument", function()
        local e = err(M.accuracy, x, y:narrow(0, 0, 127))
        assert.matches("bad argument #2 to 'accuracy' (labels must have 128 entries to match logits, got 127)", e, 1,
            true)
        assert.matches("bad argument #2 to 'nll' (labels must be an int64 tensor", err(M.nll, x, y:float()), 1, true)
        assert.matches("bad argument #2 to 'ece' (label 10 is outside [0, 10))",
            err(M.ece, x, tide.full({128}, 10, {dtype = "int64"})), 1, true)
        assert.matches("label -1 is outside [0, 10)", err(M.brier, x, tide.full({128}, -1, {dtype = "int64"})), 1, true)
        assert.matches("bad argument #2 to 'nll' (label 2 is not 0 or 1",
            err(M.nll, tide.randn({4}), tide.tensor({0, 1, 2, 0}, "int64")), 1, true)
        assert.matches("bad argument #1 to 'nll' (logits must be a float tensor, got int64)", err(M.nll, y, y), 1, true)
        assert.matches("bad argument #1 to 'brier' (logits must be (N, C), (N, 1) or (N), got shape (2, 3, 4))",
            err(M.brier, tide.randn({2, 3, 4}), tide.zeros({2}, {dtype = "int64"})), 1, true)
        assert.matches("bad argument #1 to 'accuracy' (logits must be a tensor, got table)", err(M.accuracy, {1}, y), 1,
            true)
        assert.matches("bad argument #2 to 'accuracy' (labels must be a 1-dim tensor, got shape (128, 1))",
            err(M.accuracy, x, y:view({128, 1})), 1, true)
    end)

    it("rejects N = 0 where the metric is undefined", function()
        local e0, y0 = tide.zeros({0, 10}), tide.zeros({0}, {dtype = "int64"})
        assert.matches("bad argument #1 to 'accuracy' (logits hold no samples", err(M.accuracy, e0, y0), 1, true)
        assert.matches("to 'ece'", err(M.ece, e0, y0), 1, true)
        assert.matches("to 'temperature_scale'", err(M.temperature_scale, e0, y0), 1, true)
        -- counts of nothing are defined
        assert.are.same({{0, 0}, {0, 0}}, M.confusion_matrix(tide.zeros({0, 2}), y0):totable())
        local pc = H.values(M.per_class_accuracy(e0, y0))
        assert.are.equal(10, #pc)
        assert(pc[1] ~= pc[1], "NaN where a class has no samples")
    end)

    it("checks options", function()
        assert.matches("bad argument #3 to 'topk_accuracy' (k is 11 but there are only 10 classes)",
            err(M.topk_accuracy, x, y, 11), 1, true)
        assert.matches("k must be a positive integer, got 0", err(M.topk_accuracy, x, y, 0), 1, true)
        assert.matches("bad argument #3 to 'ece' (unknown option 'bin'; known: bins",
            err(M.ece, x, y, {bin = 10}), 1, true)
        assert.matches("bins must be a positive integer, got 0", err(M.reliability, x, y, {bins = 0}), 1, true)
        assert.matches("bad argument #3 to 'confusion_matrix' (num_classes is 5 but logits have 10 classes)",
            err(M.confusion_matrix, x, y, {num_classes = 5}), 1, true)
        assert.matches("num_classes is needed with predicted classes", err(M.confusion_matrix, y, y), 1, true)
        assert.matches("bad argument #1 to 'confusion_matrix' (predicted class 3 is outside [0, 3))",
            err(M.confusion_matrix, tide.tensor({3}, "int64"), tide.tensor({0}, "int64"), {num_classes = 3}), 1, true)
        assert.matches("bad argument #1 to 'nll' (probs = true but the values span",
            err(M.nll, x, y, {probs = true}), 1, true)
        assert.matches("max_iter must be a positive integer", err(M.temperature_scale, x, y, {max_iter = 0}), 1, true)
    end)

    it("works on 60,000 x 10 (a full training set)", function()
        tide.manual_seed(11)
        local big = tide.randn({60000, 10})
        local lab = tide.randint(0, 10, {60000}, {dtype = "int64"})
        local acc = M.accuracy(big, lab)
        assert(acc > 0.09 and acc < 0.11, "chance accuracy, got " .. acc)
        near(M.topk_accuracy(big, lab, 10), 1, 0, "top-10")
        local n = 0
        for _, b in ipairs(M.reliability(big, lab)) do n = n + b.count end
        assert.are.equal(60000, n)
        assert.are.equal(60000, M.confusion_matrix(big, lab):sum():item())
        near(M.per_class_accuracy(big, lab):mean():item(), acc, 0.05, "per class")
        assert(M.ece(big, lab) > 0.2, "random logits are over-confident")
        assert(M.temperature_scale(big, lab) > 5)
    end)
end)
