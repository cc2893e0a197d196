-- conv2d: PyTorch 1.13 reference values and gradients
-- (tests/reference/conv.json, from gen_conv.py) in float32 (oneDNN) and
-- float64 (the direct loops), gradcheck for every option, the oneDNN
-- float32 path against the float64 direct path on the same inputs, and
-- errors that name conv2d and the argument.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local cjson = require "cjson"
local tide = require "tide"

local data = cjson.decode(H.read_file("tests/reference/conv.json"))

local function options(c, bias)
    local o = {}
    for k, v in pairs(c.options) do o[k] = H.ints(v) end
    o.bias = bias
    return o
end

describe("conv2d: PyTorch reference", function()
    it("has the cases", function()
        assert.is_true(#data.cases >= 26)
    end)
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local f64 = c.input.dtype == "float64"
            local rtol, atol = f64 and 1e-9 or 1e-4, f64 and 1e-10 or 1e-4
            local x = H.tensor(c.input, true)
            local w = H.tensor(c.weight, true)
            local b = c.bias ~= cjson.null and H.tensor(c.bias, true) or nil
            local y = tide.conv2d(x, w, options(c, b))
            H.check_tensor(y, c.output, rtol, atol, "output")
            local g = H.tensor(c.grad_output)
            ;(y * g):sum():backward()
            H.check_tensor(x.grad, c.grad_input, rtol, atol, "grad input")
            H.check_tensor(w.grad, c.grad_weight, rtol, atol, "grad weight")
            if b then H.check_tensor(b.grad, c.grad_bias, rtol, atol, "grad bias") end
        end)
    end
end)

local function rn(shape, dtype)
    local t = tide.randn(shape, { dtype = dtype or "float64" })
    t.requires_grad = true
    return t
end

describe("conv2d: gradcheck (float64)", function()
    tide.manual_seed(7)
    local cases = {
        { "plain", { 2, 3, 5, 5 }, { 4, 3, 3, 3 }, {} },
        { "bias", { 2, 3, 5, 4 }, { 4, 3, 3, 2 }, {}, true },
        { "stride 2", { 1, 2, 7, 7 }, { 3, 2, 3, 3 }, { stride = 2 }, true },
        { "stride (2, 1)", { 1, 2, 6, 5 }, { 3, 2, 2, 2 }, { stride = { 2, 1 } } },
        { "padding 1", { 2, 2, 4, 4 }, { 2, 2, 3, 3 }, { padding = 1 }, true },
        { "padding (1, 2)", { 1, 2, 4, 5 }, { 3, 2, 3, 3 }, { padding = { 1, 2 } } },
        { "dilation 2", { 1, 2, 7, 7 }, { 2, 2, 3, 3 }, { dilation = 2 }, true },
        { "dilation (2, 1) padding 2", { 1, 2, 5, 5 }, { 2, 2, 3, 2 }, { dilation = { 2, 1 }, padding = 2 } },
        { "groups 2", { 2, 4, 5, 5 }, { 6, 2, 3, 3 }, { groups = 2, padding = 1 }, true },
        { "depthwise", { 2, 3, 5, 5 }, { 3, 1, 3, 3 }, { groups = 3, stride = 2, padding = 1 }, true },
        { "1x1", { 3, 4, 3, 3 }, { 5, 4, 1, 1 }, {}, true },
        { "1x1 stride 2", { 1, 3, 5, 4 }, { 2, 3, 1, 1 }, { stride = 2 } },
        { "everything", { 2, 4, 7, 6 }, { 4, 2, 2, 3 },
            { stride = { 2, 1 }, padding = { 2, 1 }, dilation = { 1, 2 }, groups = 2 }, true },
    }
    for _, c in ipairs(cases) do
        it(c[1], function()
            local inputs = { rn(c[2]), rn(c[3]) }
            if c[5] then inputs[3] = rn { c[3][1] } end
            local opts = c[4]
            local fn = function(x, w, b)
                local o = {}
                for k, v in pairs(opts) do o[k] = v end
                o.bias = b
                return tide.conv2d(x, w, o)
            end
            local ok, res = pcall(tide.gradcheck, fn, inputs)
            assert(ok, "gradcheck raised: " .. tostring(res))
            assert(res == true, c[1] .. ": gradcheck did not pass")
        end)
    end

    it("an unbatched (C, H, W) input", function()
        local ok, res = pcall(tide.gradcheck, function(x, w) return tide.conv2d(x, w, { padding = 1 }) end,
            { rn { 2, 4, 3 }, rn { 3, 2, 3, 3 } })
        assert(ok and res == true, tostring(res))
    end)

    it("gives gradients only to the inputs that need them", function()
        local x = tide.randn({ 1, 2, 4, 4 }, { dtype = "float64" })
        local w = rn { 3, 2, 3, 3 }
        local b = tide.randn({ 3 }, { dtype = "float64" })
        tide.conv2d(x, w, { bias = b }):sum():backward()
        assert.is_nil(x.grad)
        assert.is_nil(b.grad)
        -- d(sum y)/dw[o,c,i,j] = sum over n and output positions of x at the window
        local want = x:narrow(2, 0, 2):narrow(3, 0, 2):sum(3):sum(2):sum(0)
        H.assert_close(w.grad:select(0, 1):select(1, 0):select(1, 0), H.values(want), 1e-12, 1e-12)
    end)
end)

describe("conv2d: oneDNN float32 against the direct float64 path", function()
    tide.manual_seed(11)
    local cases = {
        { { 8, 16, 14, 14 }, { 32, 16, 3, 3 }, { padding = 1 } },
        { { 4, 32, 9, 9 }, { 64, 32, 3, 3 }, { stride = 2, padding = 1 } },
        { { 2, 16, 10, 12 }, { 16, 1, 3, 3 }, { groups = 16, padding = 1 } },
        { { 3, 8, 11, 7 }, { 12, 4, 3, 3 }, { groups = 2, dilation = 2, padding = { 2, 1 } } },
        { { 5, 24, 6, 6 }, { 48, 24, 1, 1 }, {} },
        { { 1, 3, 17, 15 }, { 8, 3, 5, 5 }, { stride = { 2, 3 }, padding = 2 } },
        -- 3x3 stride 1 from 32 channels: Winograd in all three directions,
        -- then with the weight gradient direct (6x6), then channel counts
        -- Winograd may not take (its fallback to the direct kernels)
        { { 4, 32, 10, 10 }, { 32, 32, 3, 3 }, { padding = 1 } },
        { { 2, 64, 6, 6 }, { 48, 64, 3, 3 }, { padding = 1 } },
        { { 3, 40, 8, 9 }, { 36, 40, 3, 3 }, {} },
    }
    -- max |a - b| over max |b|, one number per tensor
    local function rel(a, b)
        local d = (a:double() - b):abs():max():item()
        local m = b:abs():max():item()
        return d / math.max(m, 1e-30)
    end
    -- x and gy come in either layout: NCHW ones go to oneDNN as they are
    -- (reordered by it), channels-last ones are read in place
    local function as_layout(t, layout)
        return layout == "cl" and t:contiguous { memory_format = "channels_last" } or t
    end
    for i, c in ipairs(cases) do
        for _, layout in ipairs { "nchw", "cl" } do
            local name = "case " .. i .. " (" .. H.shape_str(c[1]) .. " * " .. H.shape_str(c[2]) .. "), "
                .. layout .. " input and output gradient"
            it(name, function()
                local x = tide.randn(c[1])
                local w = tide.randn(c[2]) * 0.2
                local b = tide.randn { c[2][1] }
                local gy
                local res = {}
                for _, dt in ipairs { "float32", "float64" } do
                    local xd, wd, bd = as_layout(x:to(dt), layout):detach(), w:to(dt):detach(), b:to(dt):detach()
                    xd.requires_grad, wd.requires_grad, bd.requires_grad = true, true, true
                    local o = { bias = bd }
                    for k, v in pairs(c[3]) do o[k] = v end
                    local y = tide.conv2d(xd, wd, o)
                    gy = gy or tide.randn(y:shape())
                    -- y:backward(gy) hands the conv gy's own layout
                    y:backward(as_layout(gy:to(dt), layout))
                    res[dt] = { y, xd.grad, wd.grad, bd.grad }
                end
                for k, what in ipairs { "output", "grad input", "grad weight", "grad bias" } do
                    local r = rel(res.float32[k], res.float64[k])
                    assert(r < 1e-4, string.format("%s: relative difference %g", what, r))
                end
            end)
        end
    end

    it("gives the same bits on a repeated call (cached primitive) and across shapes", function()
        local x1, w1 = tide.randn { 2, 8, 9, 9 }, tide.randn { 16, 8, 3, 3 }
        local x2, w2 = tide.randn { 3, 8, 5, 7 }, tide.randn { 16, 8, 3, 3 }
        local a = tide.conv2d(x1, w1, { padding = 1 })
        local b = tide.conv2d(x2, w2, { padding = 1 })
        local a2 = tide.conv2d(x1, w1, { padding = 1 })
        local b2 = tide.conv2d(x2, w2, { padding = 1 })
        assert.are.equal(0, (a - a2):abs():max():item())
        assert.are.equal(0, (b - b2):abs():max():item())
    end)

    it("gives each subset of inputs its gradients, equal to those of all three", function()
        local x, w, b = tide.randn { 3, 4, 6, 6 }, tide.randn { 8, 4, 3, 3 }, tide.randn { 8 }
        local gy = tide.randn { 3, 8, 3, 3 }
        local function grads(want)
            local t = { x:clone(), w:clone(), b:clone() }
            for i = 1, 3 do t[i].requires_grad = want[i] end
            local y = tide.conv2d(t[1], t[2], { bias = t[3], stride = 2, padding = 1 })
            ;(y * gy):sum():backward()
            return { t[1].grad, t[2].grad, t[3].grad }
        end
        local all = grads { true, true, true }
        for _, want in ipairs { { true, false, false }, { false, true, false }, { false, false, true },
            { true, false, true }, { false, true, true } } do
            local got = grads(want)
            for i = 1, 3 do
                if want[i] then
                    H.assert_close(got[i], H.values(all[i]), 1e-6, 1e-5, "gradient " .. i)
                else
                    assert.is_nil(got[i])
                end
            end
        end
        -- the bias gradient is gy summed over batch and positions
        H.assert_close(all[3], H.values(gy:sum(3):sum(2):sum(0)), 1e-5, 1e-5, "bias")
    end)

    it("takes non-contiguous inputs", function()
        local x = tide.randn { 2, 3, 6, 5 }
        local xt = x:transpose(2, 3):contiguous():transpose(2, 3) -- same values, other strides
        local w = tide.randn { 4, 3, 3, 3 }
        local wt = w:transpose(0, 1):contiguous():transpose(0, 1)
        local y1 = tide.conv2d(x, w, { padding = 1 })
        local y2 = tide.conv2d(xt, wt, { padding = 1 })
        assert.are.equal(0, (y1 - y2):abs():max():item())
    end)

    it("handles an empty batch", function()
        for _, dt in ipairs { "float32", "float64" } do
            local x = tide.zeros({ 0, 3, 5, 5 }, { dtype = dt, requires_grad = true })
            local w = tide.randn({ 2, 3, 3, 3 }, { dtype = dt, requires_grad = true })
            local b = tide.randn({ 2 }, { dtype = dt, requires_grad = true })
            local y = tide.conv2d(x, w, { bias = b })
            assert.are.same({ 0, 2, 3, 3 }, y:shape())
            y:sum():backward()
            assert.are.same({ 0, 3, 5, 5 }, x.grad:shape())
            H.assert_close(w.grad, H.values(tide.zeros { 2, 3, 3, 3 }), 0, 0, "grad weight")
            H.assert_close(b.grad, { 0, 0 }, 0, 0, "grad bias")
        end
    end)
end)

describe("conv2d: errors", function()
    local x, w = tide.randn { 2, 4, 6, 6 }, tide.randn { 6, 2, 3, 3 }
    local function err(pattern, ...)
        local e = H.error_of(tide.conv2d, ...)
        assert(e, "no error for " .. pattern)
        assert(e:find(pattern, 1, true), "error '" .. e .. "' lacks '" .. pattern .. "'")
    end
    it("names conv2d and the argument", function()
        err("bad argument #3 to 'conv2d' (input channels (4) must be divisible by groups (3)",
            x, tide.randn { 6, 1, 3, 3 }, { groups = 3 })
    end)
    it("rejects a kernel bigger than the padded input", function()
        err("bad argument #1 to 'conv2d'", x, tide.randn { 2, 4, 9, 3 })
        err("kernel 9x3 is bigger than the padded input 8x8", x, tide.randn { 2, 4, 9, 3 }, { padding = 1 })
        err("kernel 5x3 is bigger", tide.randn { 1, 4, 4, 6 }, tide.randn { 2, 4, 3, 3 }, { dilation = { 2, 1 } })
    end)
    it("rejects bad stride, padding, dilation and groups", function()
        err("bad argument #3 to 'conv2d' (padding must be non-negative, got {-1, -1})", x, w,
            { padding = -1, groups = 2 })
        err("stride must be positive, got {1, 0}", x, w, { stride = { 1, 0 }, groups = 2 })
        err("dilation must be positive, got {0, 0}", x, w, { dilation = 0, groups = 2 })
        err("groups must be positive, got 0", x, w, { groups = 0 })
        err("stride must be an integer or an {h, w} pair", x, w, { stride = 1.5, groups = 2 })
        err("padding must be an integer or an {h, w} pair", x, w, { padding = { 1, 2, 3 }, groups = 2 })
        err("unknown option", x, w, { strides = 2 })
        err("padding {4611686018427387904, 0} is too large", x, w, { padding = { 1 << 62, 0 }, groups = 2 })
        err("option 'bias' must be a tensor", x, w, { groups = 2, bias = 1 })
    end)
    it("rejects mismatched channels", function()
        err("bad argument #2 to 'conv2d' (weight (6,2,3,3) expects 2 input channels", x, w)
        err("out_channels (5) must be a positive multiple of groups (2)", x, tide.randn { 5, 2, 3, 3 },
            { groups = 2 })
    end)
    it("rejects wrong dims", function()
        err("bad argument #1 to 'conv2d' (input must be 4-dim (N, C, H, W) or 3-dim (C, H, W), got shape (4,6)",
            tide.randn { 4, 6 }, w)
        err("bad argument #2 to 'conv2d' (weight must be 4-dim", x, tide.randn { 6, 2, 3 })
        err("bad argument #3 to 'conv2d' (bias must have shape (6)", x, w,
            { groups = 2, bias = tide.randn { 3 } })
    end)
    it("rejects wrong dtypes", function()
        err("bad argument #1 to 'conv2d' (input must be float32 or float64, got int64",
            tide.zeros({ 1, 1, 3, 3 }, "int64"), tide.randn { 1, 1, 2, 2 })
        err("bad argument #2 to 'conv2d' (weight must be float32 like input, got float64", x, w:double(),
            { groups = 2 })
        err("bad argument #3 to 'conv2d' (bias must be float32 like input, got float64", x, w,
            { groups = 2, bias = tide.randn({ 6 }, "float64") })
    end)
    it("is tide.core's conv2d, also tide.F.conv2d", function()
        assert.are.equal(require("tide.core").conv2d, tide.conv2d)
        assert.are.equal(tide.conv2d, tide.F.conv2d)
    end)
end)
