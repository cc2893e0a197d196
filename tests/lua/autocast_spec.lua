-- tide.autocast: the dtype of each op's result against PyTorch 1.13's CPU
-- autocast (tests/reference/autocast.json, from gen_autocast.py), with
-- float32 inputs and with a bfloat16 first input; values against
-- PyTorch's; float32 gradients for float32 parameters; regions that nest,
-- close and survive errors.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"

local data = cjson.decode(H.read_file("tests/reference/autocast.json"))
local F = tide.F

local T = {}
for name, t in pairs(data.tensors) do T[name] = H.tensor({values = t.values, shape = t.shape, dtype = "float32"}) end
local tgt = tide.tensor({0, 1, 2, 0}, "int64")

-- each case of the json as tide's call on the (possibly cast) first input
local ops = {
    matmul = function(a) return tide.matmul(a, T.w36:t()) end,
    mm = function(a) return tide.mm(a, T.w36:t()) end,
    bmm = function(a) return tide.bmm(a, a:transpose(1, 2)) end,
    addmm = function(a) return tide.addmm(T.b3, a, T.w36:t()) end,
    linear = function(a) return F.linear(a, T.w36, {bias = T.b3}) end,
    conv1d = function(a) return F.conv1d(a, T.k1, {padding = 1}) end,
    conv2d = function(a) return F.conv2d(a, T.k, {padding = 1}) end,
    conv3d = function(a) return F.conv3d(a, T.k3) end,
    conv_transpose1d = function(a) return F.conv_transpose1d(a, T.kt1) end,
    conv_transpose2d = function(a) return F.conv_transpose2d(a, T.kt2) end,
    relu = function(a) return F.relu(a) end,
    gelu = function(a) return F.gelu(a) end,
    softmax = function(a) return F.softmax(a, 1) end,
    log_softmax = function(a) return F.log_softmax(a, 1) end,
    sum = function(a) return a:sum() end,
    mean = function(a) return a:mean() end,
    cumsum = function(a) return a:cumsum(0) end,
    ["add float32"] = function(a) return a + tide.ones(a:shape()) end,
    max_pool2d = function(a) return F.max_pool2d(a, 2) end,
    avg_pool2d = function(a) return F.avg_pool2d(a, 2) end,
    batch_norm = function(a) return F.batch_norm(a, nil, nil, {training = true}) end,
    layer_norm = function(a) return F.layer_norm(a, {6}) end,
    cross_entropy = function(a) return F.cross_entropy(a, tgt) end,
    nll_loss = function(a) return F.nll_loss(a, tgt) end,
    mse_loss = function(a) return F.mse_loss(a, T.prob) end,
    l1_loss = function(a) return F.l1_loss(a, T.prob) end,
    smooth_l1_loss = function(a) return F.smooth_l1_loss(a, T.prob) end,
    huber_loss = function(a) return F.huber_loss(a, T.prob) end,
    kl_div = function(a) return F.kl_div(a, T.prob, {reduction = "batchmean"}) end,
    binary_cross_entropy_with_logits = function(a) return F.binary_cross_entropy_with_logits(a, T.prob) end,
    binary_cross_entropy = function(a) return F.binary_cross_entropy(a, T.prob) end,
    multi_margin_loss = function(a) return F.multi_margin_loss(a, tgt) end,
    soft_margin_loss = function(a) return F.soft_margin_loss(a, T.pm) end,
    multilabel_soft_margin_loss = function(a) return F.multilabel_soft_margin_loss(a, T.pm:gt(0):float()) end,
    hinge_embedding_loss = function(a) return F.hinge_embedding_loss(a, T.pm) end,
    poisson_nll_loss = function(a) return F.poisson_nll_loss(a, T.prob) end,
}

-- where tide departs from PyTorch 1.13's CPU autocast on purpose: a norm
-- given a bfloat16 input normalises in float32 and returns float32
-- (PyTorch keeps bfloat16 there, and its layer_norm refuses a bfloat16
-- input beside float32 weights, which is what a norm after a linear layer
-- meets under autocast)
local departs = {["batch_norm bf16"] = "float32", ["layer_norm bf16"] = "float32"}

describe("autocast dtypes against PyTorch 1.13's CPU autocast", function()
    for _, c in ipairs(data.cases) do
        local x = H.tensor({values = c.input.values, shape = c.input.shape, dtype = "float32"})
        for _, mode in ipairs({"f32", "bf16"}) do
            if c[mode] then
                it(c.name .. " (" .. mode .. " input)", function()
                    local fn = assert(ops[c.name], "no tide call for " .. c.name)
                    local a = mode == "f32" and x or x:bfloat16()
                    local y = tide.autocast("bfloat16", fn, a)
                    local want = departs[c.name .. " " .. mode] or c[mode]
                    assert.are.equal(want, y:dtype())
                    -- and outside a region the op keeps its float32 result
                    if mode == "f32" then assert.are.equal("float32", fn(x):dtype()) end
                end)
            end
        end
        if c.values then
            it(c.name .. " values", function()
                local y = tide.autocast("bfloat16", ops[c.name], x)
                -- one bfloat16 rounding of the result (2^-8 relative), and the
                -- float32 sums' order
                H.check_tensor(y:float(), {values = c.values, shape = c.shape, dtype = "float32"}, 2 ^ -7, 1e-5,
                               c.name)
            end)
        end
    end
end)

describe("autocast", function()
    it("leaves float64 alone, as PyTorch", function()
        local a = tide.randn({3, 4}, {dtype = "float64"})
        local y = tide.autocast("bfloat16", tide.matmul, a, a:t())
        assert.are.equal("float64", y:dtype())
    end)

    it("pools bfloat16 input in float32: maxima exact, averages rounded once", function()
        tide.manual_seed(5)
        local x = tide.randn({2, 3, 6, 6}):bfloat16():float()
        local xb = x:bfloat16()
        xb.requires_grad = true
        local m = F.max_pool2d(xb, 2)
        assert.are.equal("bfloat16", m:dtype())
        assert.is_true(H.same_values(F.max_pool2d(x, 2), m:float()))
        assert.is_true(H.same_values(F.avg_pool2d(x, 3):bfloat16(), F.avg_pool2d(xb, 3)))
        assert.is_true(H.same_values(F.adaptive_avg_pool2d(x, 1):bfloat16(), F.adaptive_avg_pool2d(xb, 1)))
        m:float():sum():backward()
        assert.are.equal("bfloat16", xb.grad:dtype())
        assert.are.equal(9 * 2 * 3, xb.grad:float():sum():item()) -- one 1 per window
    end)

    it("casts to float16 as to bfloat16", function()
        local m = tide.nn.Linear(4, 2)
        local y = tide.autocast("float16", m, tide.randn({3, 4}))
        assert.are.equal("float16", y:dtype())
        assert.are.equal("float32", tide.autocast("float16", F.cross_entropy, y, tide.tensor({0, 1, 0}, "int64"))
            :dtype())
    end)

    it("gives float32 parameters float32 gradients equal to the bfloat16 computation's", function()
        tide.manual_seed(3)
        local m = tide.nn.Linear(6, 3)
        local x, y = tide.randn({5, 6}), tide.tensor({0, 2, 1, 1, 0}, "int64")
        do
            local _ <close> = tide.autocast("bfloat16")
            F.cross_entropy(m(x), y):backward()
        end
        assert.are.equal("float32", m.weight.grad:dtype())
        assert.are.equal("float32", m.bias.grad:dtype())
        -- the same by hand: inputs rounded to bfloat16, the bfloat16 linear,
        -- the loss in float32; the gradients come back through the roundings
        local w = m.weight:detach():clone()
        w.requires_grad = true
        local b = m.bias:detach():clone()
        b.requires_grad = true
        local logits = F.linear(x:bfloat16(), w:bfloat16(), {bias = b:bfloat16()})
        F.cross_entropy(logits:float(), y):backward()
        assert.is_true(H.same_values(w.grad, m.weight.grad))
        assert.is_true(H.same_values(b.grad, m.bias.grad))
    end)

    it("runs backward inside a region in the forward's dtypes", function()
        tide.manual_seed(4)
        local m = tide.nn.Linear(4, 4)
        local x = tide.randn({2, 4})
        local g1, g2
        tide.autocast("bfloat16", function()
            m(x):float():sum():backward()
            g1 = m.weight.grad:clone()
        end)
        m.weight.grad = nil
        local y = tide.autocast("bfloat16", m, x)
        y:float():sum():backward()
        g2 = m.weight.grad
        assert.is_true(H.same_values(g1, g2))
    end)

    it("nests: enabled = false runs float32 inside a region, and the outer region resumes", function()
        local a = tide.randn({2, 3})
        tide.autocast("bfloat16", function()
            assert.is_true(tide.is_autocast_enabled())
            assert.are.equal("bfloat16", tide.get_autocast_dtype())
            tide.autocast("bfloat16", {enabled = false}, function()
                assert.is_false(tide.is_autocast_enabled())
                assert.are.equal("float32", tide.matmul(a, a:t()):dtype())
            end)
            assert.are.equal("bfloat16", tide.matmul(a, a:t()):dtype())
            tide.autocast("float16", function()
                assert.are.equal("float16", tide.matmul(a, a:t()):dtype())
            end)
        end)
        assert.is_false(tide.is_autocast_enabled())
        assert.are.equal("float32", tide.get_autocast_dtype())
    end)

    it("closes its region when the function raises, and passes the error on", function()
        local ok, err = pcall(tide.autocast, "bfloat16", function() error("boom", 0) end)
        assert.is_false(ok)
        assert.are.equal("boom", err)
        assert.is_false(tide.is_autocast_enabled())
        -- a <close> region closes on an error too
        ok = pcall(function()
            local _ <close> = tide.autocast("bfloat16")
            error("again")
        end)
        assert.is_false(ok)
        assert.is_false(tide.is_autocast_enabled())
    end)

    it("returns the function's results", function()
        local a, b = tide.autocast("bfloat16", function(u, v) return u + 1, v end, 1, "x")
        assert.are.equal(2, a)
        assert.are.equal("x", b)
    end)

    it("refuses regions closed out of order, and bad arguments", function()
        local r1 = tide.autocast("bfloat16")
        local r2 = tide.autocast("bfloat16")
        assert.matches("closed out of order", H.error_of(function() r1:close() end))
        r2:close()
        r1:close()
        r1:close() -- a second close does nothing
        assert.is_false(tide.is_autocast_enabled())
        assert.matches("dtype must be \"bfloat16\" or \"float16\", got \"float32\"",
            H.error_of(tide.autocast, "float32"))
        assert.matches("unknown option 'enable'", H.error_of(tide.autocast, "bfloat16", {enable = false}))
        assert.matches("enabled must be a boolean", H.error_of(tide.autocast, "bfloat16", {enabled = 1}))
        assert.matches("expected a function", H.error_of(tide.autocast, "bfloat16", 5))
    end)

    it("trains a small model to within float32's reach", function()
        local function run(dtype)
            tide.manual_seed(9)
            local m = tide.nn.Sequential(tide.nn.Linear(8, 32), tide.nn.ReLU(), tide.nn.Linear(32, 3))
            local opt = tide.optim.Adam(m:parameters(), {lr = 0.01})
            local x = tide.randn({256, 8})
            local y = x:narrow(1, 0, 3):argmax(1)
            local loss
            for _ = 1, 60 do
                opt:zero_grad()
                if dtype then
                    loss = tide.autocast(dtype, function() return F.cross_entropy(m(x), y) end)
                else
                    loss = F.cross_entropy(m(x), y)
                end
                loss:backward()
                opt:step()
            end
            return loss:item()
        end
        local f32, bf16 = run(nil), run("bfloat16")
        assert.is_true(f32 < 0.2, "float32 loss " .. f32)
        assert.is_true(math.abs(bf16 - f32) < 0.05, string.format("bfloat16 %.4f against float32 %.4f", bf16, f32))
    end)
end)
