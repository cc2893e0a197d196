-- The channels-last layout and conv2d: float32 CPU convolutions give
-- channels-last outputs (oneDNN's nhwc kernels, no activation reorders),
-- take channels-last inputs without a copy, and agree with the float64
-- direct loops whatever the input's layout; contiguous{memory_format} and
-- is_contiguous{memory_format} follow PyTorch.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"
local F = tide.F

local CL = {memory_format = "channels_last"}

local function max_abs_diff(a, b) return (a:double() - b:double()):abs():max():item() end

local same_bits = H.same_values

describe("channels-last tensors", function()
    it("contiguous{memory_format = 'channels_last'} gives NHWC strides and the same values", function()
        local x = tide.randn({2, 3, 4, 5})
        local c = x:contiguous(CL)
        assert.same({60, 1, 15, 3}, c:stride())
        assert.is_false(c:is_contiguous())
        assert.is_true(c:is_contiguous(CL))
        local err = H.error_of(c.is_contiguous, c, {memory_fromat = "channels_last"})
        assert.truthy(err and err:find("unknown option 'memory_fromat'", 1, true), err)
        assert.is_true(c:contiguous():is_contiguous())
        assert.is_true(same_bits(c, x))
        assert.is_true(same_bits(c:contiguous(), x))
    end)

    it("layout changes move every element, at tile edges too (the tiled transpose)", function()
        -- shapes around the 8x8 tiles and 64-row bands of the copy, and a
        -- plain 2-d transpose made contiguous, checked element by element
        for _, sh in ipairs({ {2, 8, 8, 8}, {3, 5, 7, 9}, {2, 17, 9, 11}, {1, 70, 3, 25}, {2, 3, 1, 1} }) do
            local x = tide.randn(sh)
            local c = x:contiguous(CL)
            local back = c:contiguous()
            for n = 0, sh[1] - 1 do
                for ch = 0, sh[2] - 1 do
                    for h = 0, sh[3] - 1 do
                        for w = 0, sh[4] - 1 do
                            local v = x:get(n, ch, h, w)
                            assert(c:get(n, ch, h, w) == v and back:get(n, ch, h, w) == v,
                                   string.format("%s at (%d, %d, %d, %d)", H.shape_str(sh), n, ch, h, w))
                        end
                    end
                end
            end
        end
        local m = tide.randn({37, 70})
        local t = m:t():contiguous()
        for i = 0, 36 do
            for j = 0, 69 do assert(t:get(j, i) == m:get(i, j)) end
        end
    end)

    it("size-1 dims make a tensor both contiguous and channels-last", function()
        local x = tide.randn({2, 1, 4, 5})
        assert.is_true(x:is_contiguous())
        assert.is_true(x:is_contiguous(CL))
        local y = tide.randn({2, 8, 1, 1})
        assert.is_true(y:is_contiguous(CL))
    end)

    it("contiguous{memory_format} is differentiable (gradcheck)", function()
        local x = tide.randn({2, 3, 3, 2}, {dtype = "float64", requires_grad = true})
        assert.is_true(tide.gradcheck(function(a) return (a:contiguous(CL) * a:contiguous(CL)):sum() end, {x}))
    end)

    it("elementwise ops keep a channels-last operand's layout", function()
        local x = tide.randn({2, 5, 3, 4}):contiguous(CL)
        local y = tide.randn({2, 5, 3, 4})
        assert.is_true((x * 2):is_contiguous(CL))
        assert.is_true(x:relu():is_contiguous(CL))
        assert.is_true((x + y):is_contiguous(CL))
        assert.is_true((y + x):is_contiguous(CL))
        assert.is_true(same_bits(x + y, x:contiguous() + y))
        -- a broadcast operand does not decide the layout
        local b = tide.randn({5, 1, 1})
        assert.is_true((x + b):is_contiguous(CL))
        assert.is_true((y + b):is_contiguous())
    end)

    it("an op between a channels-last and an NCHW operand matches the one-layout op bit for bit", function()
        -- the NCHW operand is transposed in bands (8192 floats / C rows,
        -- rounded to 8): shapes across band and tile edges, and past
        -- 1024 channels, where the plain strided loop runs
        for _, sh in ipairs({ {2, 64, 15, 9}, {3, 5, 7, 9}, {1, 1000, 3, 5}, {1, 1030, 2, 3}, {2, 9, 1, 17} }) do
            local x, y = tide.randn(sh):contiguous(CL), tide.randn(sh)
            local xc = x:contiguous()
            for _, op in ipairs({ "add", "sub", "mul", "div", "maximum" }) do
                local what = op .. " " .. H.shape_str(sh)
                assert(same_bits(tide[op](x, y), tide[op](xc, y)), what)
                assert(same_bits(tide[op](y, x), tide[op](y, xc)), what .. ", operands swapped")
            end
        end
    end)

    it(".grad of a leaf has the leaf's layout, as PyTorch's AccumulateGrad", function()
        local x = tide.randn({2, 3, 4, 5}):contiguous(CL):detach()
        x.requires_grad = true
        ;(x * 2):relu():sum():backward()
        assert.is_true(x.grad:is_contiguous(CL))
        assert.is_false(x.grad:is_contiguous())
        local w = tide.randn({2, 3, 4, 5}, {requires_grad = true})
        local y = w:contiguous(CL) * 3
        y:backward(tide.ones({2, 3, 4, 5}):contiguous(CL))
        assert.is_true(w.grad:is_contiguous())
        assert.equal(360, w.grad:sum():item())
        -- accumulation keeps it
        ;(x * 3):sum():backward()
        assert.is_true(x.grad:is_contiguous(CL))
    end)

    it("whole-tensor reductions read a channels-last tensor in memory order", function()
        -- integers, so every order of summation gives the same exact value
        local x = (tide.randn({3, 5, 4, 6}) * 8):long():to("float32")
        local c = x:contiguous(CL)
        local total = 0
        for _, v in ipairs(x:flatten():totable()) do total = total + v end
        assert.equal(total, c:sum():item())
        assert.is_true(math.abs(total / x:numel() - c:mean():item()) < 1e-6)
        assert.equal(x:max():item(), c:max():item())
        assert.equal(x:min():item(), c:min():item())
        -- argmax counts in NCHW order, whatever the layout
        assert.equal(x:argmax():item(), c:argmax():item())
        -- the gradient of a sum keeps flowing to the leaf
        local l = c:detach()
        l.requires_grad = true
        l:sum():backward()
        assert.equal(x:numel(), l.grad:sum():item())
    end)

    it("rejects a bad memory_format and a tensor that is not 4-dim", function()
        local x = tide.randn({2, 3})
        local e = H.error_of(function() return x:contiguous{memory_format = "nhwc"} end)
        assert.truthy(e:find("contiguous", 1, true) and e:find("memory_format", 1, true), e)
        e = H.error_of(function() return x:contiguous(CL) end)
        assert.truthy(e:find("4-dim", 1, true), e)
        e = H.error_of(function() return x:is_contiguous{memory_format = 3} end)
        assert.truthy(e:find("memory_format", 1, true), e)
    end)
end)

describe("conv2d and channels-last", function()
    local cases = {
        -- n, c, h, w, o, k, stride, padding, dilation, groups
        {2, 3, 9, 8, 16, 3, 1, 1, 1, 1},
        {2, 16, 8, 7, 32, 3, 2, 1, 1, 1},
        {3, 32, 6, 6, 32, 3, 1, 0, 2, 1},
        {2, 8, 7, 7, 16, 3, 1, 1, 1, 4},
        {1, 1, 5, 5, 4, 1, 1, 0, 1, 1},
        {2, 5, 6, 6, 7, 2, 2, 1, 1, 1},
    }
    for _, cs in ipairs(cases) do
        local n, c, h, w, o, k, s, p, d, g = table.unpack(cs)
        it(string.format("n%d c%d %dx%d o%d k%d s%d p%d d%d g%d", n, c, h, w, o, k, s, p, d, g), function()
            tide.manual_seed(7)
            local x = tide.randn({n, c, h, w})
            local wt = tide.randn({o, c // g, k, k}, {requires_grad = true})
            local b = tide.randn({o}, {requires_grad = true})
            local opts = {bias = b, stride = s, padding = p, dilation = d, groups = g}
            local xa = x:clone()
            xa.requires_grad = true
            local xb = x:contiguous(CL):detach()
            xb.requires_grad = true
            assert.is_true(xb:is_contiguous(CL))
            local ya = F.conv2d(xa, wt, opts)
            local yb = F.conv2d(xb, wt, opts)
            assert.is_true(ya:is_contiguous(CL), "float32 output is channels-last")
            assert.is_true(same_bits(ya, yb), "the input's layout does not change the result")
            -- against the float64 direct loops
            local x64 = x:double():detach()
            x64.requires_grad = true
            local w64, b64 = wt:double():detach(), b:double():detach()
            w64.requires_grad, b64.requires_grad = true, true
            local y64 = F.conv2d(x64, w64, {bias = b64, stride = s, padding = p, dilation = d, groups = g})
            assert.is_true(y64:is_contiguous(), "float64 output stays contiguous")
            local scale = y64:abs():max():item() + 1
            assert.is_true(max_abs_diff(ya, y64) < 2e-5 * scale)
            -- gradients, with a contiguous upstream gradient and a channels-last one
            local gy = tide.randn(ya:shape())
            ya:backward(gy)
            local gxa, gwa = xa.grad:clone(), wt.grad:clone()
            wt.grad = nil
            b.grad = nil
            yb:backward(gy:contiguous(CL))
            assert.is_true(same_bits(gxa, xb.grad), "grad input")
            assert.is_true(xa.grad:is_contiguous(), "a contiguous leaf gets a contiguous .grad")
            assert.is_true(xb.grad:is_contiguous(CL), "a channels-last leaf gets a channels-last .grad")
            assert.is_true(same_bits(gwa, wt.grad), "grad weight")
            y64:backward(gy:double())
            local gs = x64.grad:abs():max():item() + 1
            assert.is_true(max_abs_diff(gxa, x64.grad) < 2e-5 * gs, "grad input vs float64")
            local ws = w64.grad:abs():max():item() + 1
            assert.is_true(max_abs_diff(gwa, w64.grad) < 2e-5 * ws, "grad weight vs float64")
            assert.is_true(max_abs_diff(b.grad, b64.grad) < 2e-5 * (b64.grad:abs():max():item() + 1), "grad bias")
        end)
    end

    it("the bias gradient alone (weight without grad) sums a gradient of either layout", function()
        tide.manual_seed(5)
        local x = tide.randn({3, 4, 9, 7})
        local w = tide.randn({300, 4, 3, 3})
        for _, gy_cl in ipairs({ true, false }) do
            local b = tide.randn({300}, {requires_grad = true})
            local y = F.conv2d(x, w, {bias = b, padding = 1})
            assert.is_true(y:is_contiguous(CL))
            local gy = tide.randn(y:shape())
            if gy_cl then gy = gy:contiguous(CL) end
            y:backward(gy)
            local b64 = b:double():detach()
            b64.requires_grad = true
            F.conv2d(x:double(), w:double(), {bias = b64, padding = 1}):backward(gy:double())
            assert.is_true(max_abs_diff(b.grad, b64.grad) < 1e-5 * (b64.grad:abs():max():item() + 1))
        end
    end)

    it("an unbatched (C, H, W) input works and matches the batched result", function()
        local x = tide.randn({3, 6, 6})
        local w = tide.randn({8, 3, 3, 3})
        local y = F.conv2d(x, w, {padding = 1})
        local y4 = F.conv2d(x:unsqueeze(0), w, {padding = 1})
        assert.same({8, 6, 6}, y:shape())
        assert.is_true(same_bits(y, y4:squeeze(0)))
    end)

    it("flatten of channels-last features keeps PyTorch's (C, H, W) element order", function()
        local x = tide.randn({2, 3, 5, 5})
        local w = tide.randn({4, 3, 3, 3})
        local y = F.conv2d(x, w)
        assert.is_true(y:is_contiguous(CL))
        local f = y:flatten(1)
        assert.same({2, 36}, f:shape())
        assert.is_true(same_bits(f, y:contiguous():view(2, 36)))
        -- element (1, c = 2, h = 1, w = 0) in logical order
        assert.equal(y:get(1, 2, 1, 0), f:get(1, 2 * 9 + 1 * 3 + 0))
    end)

    it("a conv, relu, residual add and conv chain stays channels-last and matches float64", function()
        tide.manual_seed(3)
        local x = tide.randn({2, 16, 8, 8}, {requires_grad = true})
        local w1 = tide.randn({16, 16, 3, 3}, {requires_grad = true})
        local w2 = tide.randn({16, 16, 3, 3}, {requires_grad = true})
        local function net(a, k1, k2)
            local h = F.conv2d(a, k1, {padding = 1}):relu()
            return F.conv2d(h + a, k2, {padding = 1})
        end
        local y = net(x, w1, w2)
        assert.is_true(y:is_contiguous(CL))
        local x64, a64, b64 = x:double():detach(), w1:double():detach(), w2:double():detach()
        x64.requires_grad, a64.requires_grad = true, true
        local y64 = net(x64, a64, b64)
        local scale = y64:abs():max():item()
        assert.is_true(max_abs_diff(y, y64) < 2e-5 * scale)
        y:sum():backward()
        y64:sum():backward()
        assert.is_true(max_abs_diff(x.grad, x64.grad) < 2e-5 * x64.grad:abs():max():item())
        assert.is_true(max_abs_diff(w1.grad, a64.grad) < 2e-5 * a64.grad:abs():max():item())
    end)
end)
