-- float32 average pooling goes through oneDNN (kernels/cpu/nn_pool_dnnl.c)
-- where it can express PyTorch's semantics, float64 through the plain loops
-- (the reference). Here the two agree, values and gradients, over many
-- shapes and every option: kernel, stride, padding, ceil_mode,
-- count_include_pad (including the ceil_mode windows past the padding that
-- oneDNN leaves to the loops), and adaptive_avg_pool2d with output sizes
-- that divide the input (oneDNN) or not (the loops).
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local core = require "tide.core"

-- f on x in float32 and in float64: outputs and input gradients agree
local function agree(x, f, label)
    local g
    local function run(t)
        local leaf = t:detach():clone():requires_grad_(true)
        local y = f(leaf)
        g = g or tide.randn(y:shape())
        ;(y * g:to(t:dtype())):sum():backward()
        return y, leaf.grad
    end
    local y32, gx32 = run(x)
    local y64, gx64 = run(x:double())
    assert(y32:dtype() == "float32" and gx32:dtype() == "float32", label)
    H.assert_close(y32, H.values(y64), 1e-5, 1e-6, label .. " output")
    H.assert_close(gx32, H.values(gx64), 1e-5, 1e-6, label .. " gradient")
end

describe("float32 average pooling (oneDNN) against float64 (the loops)", function()
    it("avg_pool2d over shapes, kernels, strides, padding, ceil_mode, count_include_pad", function()
        tide.manual_seed(41)
        local n = 0
        for _, hw in ipairs { { 5, 5 }, { 7, 9 }, { 8, 8 }, { 13, 6 } } do
            for k = 1, 4 do
                for s = 1, 3 do
                    for p = 0, k // 2 do
                        for _, ceil in ipairs { false, true } do
                            for _, inc in ipairs { true, false } do
                                local ok_size = hw[1] + 2 * p >= k and hw[2] + 2 * p >= k
                                if ok_size then
                                    local x = tide.randn { 2, 3, hw[1], hw[2] } * 2 + 0.5
                                    local o = { stride = s, padding = p, ceil_mode = ceil, count_include_pad = inc }
                                    agree(x, function(t) return core.avg_pool2d(t, k, o) end,
                                          string.format("avg_pool2d %dx%d k%d s%d p%d ceil %s include %s",
                                                        hw[1], hw[2], k, s, p, ceil, inc))
                                    n = n + 1
                                end
                            end
                        end
                    end
                end
            end
        end
        assert.is_true(n > 300, n .. " cases")
    end)

    it("non-square kernels and strides, a 3-d input, a larger batch", function()
        tide.manual_seed(42)
        agree(tide.randn { 4, 16, 12, 10 }, function(t)
            return core.avg_pool2d(t, { 3, 2 }, { stride = { 2, 1 }, padding = { 1, 0 } })
        end, "avg_pool2d k3x2 s2x1 p1x0")
        agree(tide.randn { 5, 11, 11 }, function(t)
            return core.avg_pool2d(t, 2, { ceil_mode = true, count_include_pad = false })
        end, "avg_pool2d 3-d")
        agree(tide.randn { 32, 64, 16, 16 }, function(t) return core.avg_pool2d(t, 2) end, "avg_pool2d 32x64x16x16")
    end)

    it("adaptive_avg_pool2d, sizes that divide the input and sizes that do not", function()
        tide.manual_seed(43)
        for _, c in ipairs { { 8, 8, 1, 1 }, { 8, 8, 4, 2 }, { 4, 4, 1, 1 }, { 9, 6, 3, 3 }, { 7, 5, 3, 2 },
            { 6, 6, 4, 4 } } do
            agree(tide.randn { 3, 5, c[1], c[2] }, function(t) return core.adaptive_avg_pool2d(t, { c[3], c[4] }) end,
                  string.format("adaptive %dx%d -> %dx%d", c[1], c[2], c[3], c[4]))
        end
    end)

    it("NaN and infinities propagate as in the loops", function()
        local x = tide.tensor { { { { 1, 0 / 0, 2, 3 }, { 4, 5, 1 / 0, 6 }, { 1, 2, 3, 4 }, { -1 / 0, 1, 2, 3 } } } }
        local a = H.values(core.avg_pool2d(x, 2))
        local b = H.values(core.avg_pool2d(x:double(), 2))
        for i = 1, #b do
            if b[i] ~= b[i] then
                assert.is_true(a[i] ~= a[i], "element " .. i)
            else
                assert.are.equal(b[i], a[i])
            end
        end
    end)
end)
