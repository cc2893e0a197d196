-- Corner cases where tide once differed from PyTorch 1.13: 0-dim inputs,
-- empty batches and tensors, NaN in backward, 0^0. Every expected number
-- was printed by Debian's python3-torch (PyTorch 1.13.1) running the same
-- calls in float64 (float32 where the test says so); each block names them.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local F = tide.F

local nan = 0 / 0

local function f64(v, grad) return tide.tensor(v, { dtype = "float64", requires_grad = grad }) end
local function long(v) return tide.tensor(v, "int64") end

-- t has shape `shape` and the flat values `want` (NaN matches NaN)
local function check(t, shape, want, label)
    assert(H.shape_str(t:shape()) == H.shape_str(shape),
        (label or "tensor") .. ": shape " .. H.shape_str(t:shape()) .. ", expected " .. H.shape_str(shape))
    H.assert_close(t, want, 1e-12, 1e-12, label)
end

local function fails(pattern, fn, ...)
    local ok, msg = pcall(fn, ...)
    assert.is_false(ok)
    assert.is_truthy(tostring(msg):find(pattern, 1, true), tostring(msg))
end

describe("margin losses on a 0-dim input", function()
    -- F.multi_margin_loss(torch.tensor(0.7, float64), torch.tensor([0]),
    -- p=2, margin=2.0, weight=torch.tensor([3.0]), reduction=r) and
    -- F.multilabel_margin_loss(x, torch.tensor(0) / torch.tensor(-1)):
    -- loss 0, x.grad 0 for every reduction; "none" of multi_margin has the
    -- target's shape, (1) here, and multilabel_margin's is ()
    for _, red in ipairs { "none", "mean", "sum" } do
        it("multi_margin_loss, " .. red, function()
            local x = f64(0.7, true)
            local l = F.multi_margin_loss(x, long({ 0 }),
                { p = 2, margin = 2, weight = tide.tensor({ 3 }, "float64"), reduction = red })
            check(l, red == "none" and { 1 } or {}, { 0 })
            l:sum():backward()
            check(x.grad, {}, { 0 })
            local y = f64(0.7, true)
            l = F.multi_margin_loss(y, long(0), { reduction = red })
            check(l, {}, { 0 })
            l:backward()
            check(y.grad, {}, { 0 })
        end)
        it("multilabel_margin_loss, " .. red, function()
            for _, target in ipairs { long(0), long(-1), long({ 0 }) } do
                local x = tide.tensor(0.7, { requires_grad = true }) -- float32
                local l = F.multilabel_margin_loss(x, target, { reduction = red })
                check(l, {}, { 0 })
                l:backward()
                check(x.grad, {}, { 0 })
            end
        end)
    end
    it("still checks the target", function()
        -- PyTorch: "target out of range" for torch.tensor(1) against a 0-dim input
        fails("target 1 at position 0 is outside [0, 1)", F.multi_margin_loss, f64(0.7), long(1))
        fails("target shape (2) does not match input shape ()", F.multilabel_margin_loss, f64(0.7), long({ 0, 0 }))
    end)
end)

describe("margin_ranking_loss's target gradient", function()
    -- x1 = [0.8, 0.1, 0.5, -0.3], x2 = [0.3, 0.5, 0.5, 0.2],
    -- y = [1, 1, -1, 0.5] (all requires_grad), margin = 0.1:
    -- y.grad = -(x1 - x2) * gy where the hinge is >= 0
    local want = {
        mean = { loss = { 0.2375 }, y = { 0, 0.1, 0, 0.125 }, x1 = { 0, -0.25, 0.25, -0.125 } },
        sum = { loss = { 0.95 }, y = { 0, 0.4, 0, 0.5 }, x1 = { 0, -1, 1, -0.5 } },
        none = { loss = { 0, 0.5, 0.1, 0.35 }, y = { 0, 0.4, 0, 0.5 }, x1 = { 0, -1, 1, -0.5 } },
    }
    for red, w in pairs(want) do
        it(red, function()
            local x1 = f64({ 0.8, 0.1, 0.5, -0.3 }, true)
            local x2 = f64({ 0.3, 0.5, 0.5, 0.2 }, true)
            local y = f64({ 1, 1, -1, 0.5 }, true)
            local l = F.margin_ranking_loss(x1, x2, y, { margin = 0.1, reduction = red })
            H.assert_close(l, w.loss, 1e-12, 1e-12, "loss")
            l:sum():backward()
            H.assert_close(y.grad, w.y, 1e-12, 1e-12, "y.grad")
            H.assert_close(x1.grad, w.x1, 1e-12, 1e-12, "x1.grad")
            H.assert_close(x2.grad, H.values(-x1.grad), 1e-12, 1e-12, "x2.grad")
        end)
    end
    it("broadcast, and at the hinge", function()
        -- a (2,3), b (1,3), y (2,1), margin 0: y.grad = [[-0.15], [0.21666666666666665]]
        local a = f64({ { 0.2, -0.4, 1.0 }, { 0.3, 0.0, -0.5 } }, true)
        local b = f64({ { 0.1, 0.6, 0.2 } }, true)
        local y = f64({ { -1 }, { 1 } }, true)
        local l = F.margin_ranking_loss(a, b, y)
        H.assert_close(l, { 0.3666666666666667 }, 1e-12, 1e-12, "loss")
        l:backward()
        check(y.grad, { 2, 1 }, { -0.15, 0.21666666666666665 }, "y.grad")
        check(b.grad, { 1, 3 }, { -1 / 6, 1 / 6, 0 }, "b.grad")
        -- x1 = 0.5, x2 = 0.25, y = 1, margin = 0.25: z = 0 exactly, the
        -- hinge passes (clamp_min): x1.grad -1, y.grad -0.25
        local p, q, t = f64({ 0.5 }, true), f64({ 0.25 }, true), f64({ 1 }, true)
        F.margin_ranking_loss(p, q, t, { margin = 0.25 }):backward()
        check(p.grad, { 1 }, { -1 })
        check(t.grad, { 1 }, { -0.25 })
    end)
    it("an int64 target still takes none", function()
        local x1 = f64({ 0.8, 0.1 }, true)
        -- F.margin_ranking_loss([0.8, 0.1], [0.3, 0.5], tensor([-1, 1])): x1.grad [0.5, -0.5]
        F.margin_ranking_loss(x1, f64({ 0.3, 0.5 }), long({ -1, 1 })):backward()
        H.assert_close(x1.grad, { 0.5, -0.5 }, 1e-12, 1e-12)
    end)
end)

describe("max(dim) / min(dim) of a 0-dim tensor", function()
    -- x = torch.tensor(-1.5): x.max(0) = (-1.5, tensor(0)), x.grad 1;
    -- x.min(-1, keepdim=True) = (-1.5, tensor(0)) of shape (), grad of 3 * v is 3
    it("gives a live index tensor(0)", function()
        local x = f64(-1.5, true)
        local v, i = x:max(0)
        check(v, {}, { -1.5 })
        assert.equal("int64", i:dtype())
        check(i, {}, { 0 })
        assert.equal("tensor(0, shape=(), dtype=int64, device=cpu)", tostring(i))
        v:backward()
        check(x.grad, {}, { 1 })
        x.grad = nil
        v, i = x:min(-1, true)
        check(i, {}, { 0 })
        assert.equal(0, i:item())
        v:mul(3):backward()
        check(x.grad, {}, { 3 })
    end)
    it("checks the dim", function()
        -- PyTorch: "Dimension out of range (expected to be in range of [-1, 0], but got 1)"
        fails("dim 1 is out of range", function() return tide.tensor(2.0):max(1) end)
    end)
end)

describe("pow at 0^0", function()
    it("gives the base gradient 0 with a number exponent", function()
        -- a = torch.tensor([0., -2., 3.]) (float32); (a ** 0).sum().backward(): [0, 0, 0]
        local a = tide.tensor({ 0, -2, 3 }, { requires_grad = true })
        local p0 = a ^ 0
        p0:sum():backward()
        check(a.grad, { 3 }, { 0, 0, 0 })
        a.grad = nil
        a:pow(0.0):sum():backward()
        check(a.grad, { 3 }, { 0, 0, 0 })
    end)
    it("and with a tensor exponent; the exponent's gradient is 0 at base 0", function()
        -- a = [0, 0, 0, 2, 0, -1.5], b = [0, 1, -1, 0, 0.5, 2]; a.pow(b).sum().backward()
        local a = f64({ 0, 0, 0, 2, 0, -1.5 }, true)
        local b = f64({ 0, 1, -1, 0, 0.5, 2 }, true)
        a:pow(b):sum():backward()
        check(a.grad, { 6 }, { 0, 1, -math.huge, 0, math.huge, -3 }, "a.grad")
        check(b.grad, { 6 }, { 0, 0, -math.huge, 0.69314718055994529, 0, nan }, "b.grad")
        -- broadcast: a (3,1) = [[0], [2], [0]], b (2) = [0, 3], grad [[1, 2], [3, 4], [5, 6]]
        a = f64({ { 0 }, { 2 }, { 0 } }, true)
        b = f64({ 0, 3 }, true)
        a:pow(b):backward(f64({ { 1, 2 }, { 3, 4 }, { 5, 6 } }))
        check(a.grad, { 3, 1 }, { 0, 48, 0 }, "a.grad")
        check(b.grad, { 2 }, { 2.0794415416798357, 22.18070977791825 }, "b.grad")
    end)
    it("with a number base 0", function()
        -- torch.pow(0.0, b), b = [0, 1, 2.5]: [1, 0, 0], b.grad [0, 0, 0]
        local b = f64({ 0, 1, 2.5 }, true)
        local y = 0 ^ b
        check(y, { 3 }, { 1, 0, 0 })
        y:sum():backward()
        check(b.grad, { 3 }, { 0, 0, 0 })
    end)
end)

describe("NaN in backward", function()
    -- a = [[nan, 1, 2], [3, 4, -1]], b = [1, nan, 2],
    -- backward(grad = [[1, 2, 4], [8, 16, 32]]) through maximum and minimum
    local function run(fn)
        local a = f64({ { nan, 1, 2 }, { 3, 4, -1 } }, true)
        local b = f64({ 1, nan, 2 }, true)
        local y = fn(a, b)
        y:backward(f64({ { 1, 2, 4 }, { 8, 16, 32 } }))
        return y, a.grad, b.grad
    end
    it("maximum sends the gradient to both at a NaN", function()
        local y, ga, gb = run(tide.maximum)
        check(y, { 2, 3 }, { nan, nan, 2, 3, nan, 2 })
        check(ga, { 2, 3 }, { 1, 2, 2, 8, 16, 0 }, "a.grad")
        check(gb, { 3 }, { 1, 18, 34 }, "b.grad")
    end)
    it("minimum sends the gradient to both at a NaN", function()
        local y, ga, gb = run(tide.minimum)
        check(y, { 2, 3 }, { nan, nan, 2, 1, nan, -1 })
        check(ga, { 2, 3 }, { 1, 2, 2, 0, 16, 32 }, "a.grad")
        check(gb, { 3 }, { 9, 18, 2 }, "b.grad")
    end)
    it("relu passes the gradient at a NaN input", function()
        -- F.relu([nan, -1, 0, 2, -0.0]).backward([1, 2, 3, 4, 5]): [1, 0, 0, 4, 0]
        local r = f64({ nan, -1, 0, 2, -0.0 }, true)
        r:relu():backward(f64({ 1, 2, 3, 4, 5 }))
        check(r.grad, { 5 }, { 1, 0, 0, 4, 0 })
        -- float32 [nan, -1, 2], sum: [1, 0, 1]
        local s = tide.tensor({ nan, -1, 2 }, { requires_grad = true })
        s:relu():sum():backward()
        check(s.grad, { 3 }, { 1, 0, 1 })
    end)
end)

describe("results where tide used to raise", function()
    it("masked_fill with a mask larger than the tensor", function()
        -- torch.tensor(2.).masked_fill(tensor([True, False, True]), 9.):
        -- [9, 2, 9], grad of [1, 2, 4] -> 2
        local x = f64(2, true)
        local y = x:masked_fill(tide.tensor({ 1, 0, 1 }, "uint8"), 9)
        check(y, { 3 }, { 9, 2, 9 })
        y:backward(f64({ 1, 2, 4 }))
        check(x.grad, {}, { 2 })
        -- x (2,1) = [[1], [2]], mask (1,3) = [[T, F, F]], value -1:
        -- [[-1, 1, 1], [-1, 2, 2]], grad of [[1, 2, 4], [8, 16, 32]] -> [[6], [48]]
        x = f64({ { 1 }, { 2 } }, true)
        y = x:masked_fill(tide.tensor({ { 1, 0, 0 } }, "uint8"), -1)
        check(y, { 2, 3 }, { -1, 1, 1, -1, 2, 2 })
        y:backward(f64({ { 1, 2, 4 }, { 8, 16, 32 } }))
        check(x.grad, { 2, 1 }, { 6, 48 })
        -- PyTorch: "The size of tensor a (3) must match the size of tensor b (2) at
        -- non-singleton dimension 0"
        local bad = tide.tensor({ { 1 }, { 0 }, { 1 } }, "uint8")
        fails("does not broadcast", function() return x:masked_fill(bad, 0) end)
    end)

    describe("batch_norm with an empty batch in training", function()
        -- F.batch_norm(torch.zeros(shape), rm=[0.5, 1, -1], rv=[2, 3, 4],
        -- w=[1.5, 2, 0.5], b=[0.1, 0.2, 0.3], training=True): an output of
        -- the input's shape, rm and rv unchanged, w.grad = b.grad = [0, 0, 0]
        for _, shape in ipairs { { 0, 3 }, { 0, 3, 4 }, { 2, 3, 0 }, { 0, 3, 2, 2 } } do
            it("F.batch_norm " .. H.shape_str(shape), function()
                local x = tide.zeros(shape, { dtype = "float64", requires_grad = true })
                local rm, rv = f64({ 0.5, 1, -1 }), f64({ 2, 3, 4 })
                local w, b = f64({ 1.5, 2, 0.5 }, true), f64({ 0.1, 0.2, 0.3 }, true)
                local y = F.batch_norm(x, rm, rv, { weight = w, bias = b, training = true, momentum = 0.1 })
                check(y, shape, {})
                check(rm, { 3 }, { 0.5, 1, -1 }, "running_mean")
                check(rv, { 3 }, { 2, 3, 4 }, "running_var")
                y:sum():backward()
                check(x.grad, shape, {}, "x.grad")
                check(w.grad, { 3 }, { 0, 0, 0 }, "w.grad")
                check(b.grad, { 3 }, { 0, 0, 0 }, "b.grad")
                check(F.batch_norm(x, nil, nil, { training = true }), shape, {})
            end)
        end
        it("BatchNorm1d and BatchNorm2d", function()
            -- nn.BatchNorm1d(3)(torch.zeros(0, 3)): shape (0, 3), running
            -- stats still 0 and 1; the same for BatchNorm2d on (0, 3, 2, 2)
            local cases = { { tide.nn.BatchNorm1d(3), { 0, 3 } }, { tide.nn.BatchNorm2d(3), { 0, 3, 2, 2 } } }
            for _, case in ipairs(cases) do
                local m, shape = case[1], case[2]
                m:train()
                check(m:forward(tide.zeros(shape)), shape, {})
                check(m.running_mean, { 3 }, { 0, 0, 0 }, "running_mean")
                check(m.running_var, { 3 }, { 1, 1, 1 }, "running_var")
            end
        end)
        it("still refuses one value per channel", function()
            fails("expected more than 1 value per channel", F.batch_norm, tide.zeros{ 1, 3 }, nil, nil,
                { training = true })
        end)
    end)

    it("gather and scatter_add count a 0-dim tensor as shape (1)", function()
        -- torch.gather(torch.tensor(2.5), 0, tensor([0, 0, 0])): [2.5] * 3,
        -- grad of [1, 2, 4] -> 7
        local x = f64(2.5, true)
        local y = x:gather(0, long({ 0, 0, 0 }))
        check(y, { 3 }, { 2.5, 2.5, 2.5 })
        y:backward(f64({ 1, 2, 4 }))
        check(x.grad, {}, { 7 })
        -- an empty index: shape (0), grad 0
        x.grad = nil
        y = x:gather(-1, tide.zeros({ 0 }, "int64"))
        check(y, { 0 }, {})
        y:sum():backward()
        check(x.grad, {}, { 0 })
        -- torch.gather(tensor([1, 2, 3]), 0, tensor(2)): 3 of shape (), grad of 5 * y [0, 0, 5]
        local v = f64({ 1, 2, 3 }, true)
        y = v:gather(0, long(2))
        check(y, {}, { 3 })
        y:mul(5):backward()
        check(v.grad, { 3 }, { 0, 0, 5 })
        -- torch.scatter_add(tensor(1.), 0, tensor([0, 0]), tensor([2., 3.])): 6;
        -- grads of 7 * y: 7 and [7, 7]
        local z, src = f64(1, true), f64({ 2, 3 }, true)
        y = z:scatter_add(0, long({ 0, 0 }), src)
        check(y, {}, { 6 })
        y:mul(7):backward()
        check(z.grad, {}, { 7 })
        check(src.grad, { 2 }, { 7, 7 })
        -- an empty index reads and writes nothing: gather of [2.5, 1] at an
        -- empty index is (0), grad [0, 0]; scatter_add returns the copy, grad [1, 1]
        local w = f64({ 2.5, 1 }, true)
        w:gather(0, tide.zeros({ 0 }, "int64")):sum():backward()
        check(w.grad, { 2 }, { 0, 0 })
        w.grad = nil
        y = w:scatter_add(0, tide.zeros({ 0 }, "int64"), tide.zeros({ 0 }, "float64"))
        check(y, { 2 }, { 2.5, 1 })
        y:sum():backward()
        check(w.grad, { 2 }, { 1, 1 })
        -- PyTorch: "index 1 is out of bounds for dimension 0 with size 1"
        fails("index 1 at position 0 is out of range", function() return x:gather(0, long({ 1 })) end)
    end)

    it("cat skips 1-D tensors of shape (0)", function()
        -- e = torch.zeros(0), a = [[1, 2], [3, 4]]; torch.cat([e, a, e], 1):
        -- a itself; grad [[1, 2], [4, 8]] -> e.grad = tensor([]), a.grad the same
        local e = tide.zeros({ 0 }, { dtype = "float64", requires_grad = true })
        local a = f64({ { 1, 2 }, { 3, 4 } }, true)
        local r = tide.cat({ e, a, e }, 1)
        check(r, { 2, 2 }, { 1, 2, 3, 4 })
        r:backward(f64({ { 1, 2 }, { 4, 8 } }))
        check(e.grad, { 0 }, {}, "e.grad")
        check(a.grad, { 2, 2 }, { 1, 2, 4, 8 }, "a.grad")
        -- torch.cat([a, e, tensor([[5, 6]])]): rows 1 2 / 3 4 / 5 6
        check(tide.cat({ a, e, f64({ { 5, 6 } }) }), { 3, 2 }, { 1, 2, 3, 4, 5, 6 })
        -- the skipped tensors still count for the dtype: int64 (0) with
        -- float32 -> float32; float64 (0) with float32 -> float64
        assert.equal("float32", tide.cat({ tide.zeros({ 0 }, "int64"), a:float() }):dtype())
        assert.equal("float64", tide.cat({ e, a:float() }):dtype())
        -- only skipped ones: shape (0) and the dim unchecked; (0, 0) is not skipped
        check(tide.cat({ e, e }, 5), { 0 }, {})
        check(tide.cat({ e, tide.zeros({ 0, 0 }) }), { 0, 0 }, {})
        -- PyTorch: "zero-dimensional tensor (at position 1) cannot be concatenated"
        fails("zero-dim tensor 2 cannot be concatenated", tide.cat, { e, tide.tensor(1.0) })
        -- PyTorch: "Dimension out of range (expected to be in range of [-2, 1], but got 2)"
        fails("dim 2 is out of range", tide.cat, { a, e }, 2)
    end)
end)
