-- 2-d pooling of channels-last CPU tensors (kernels/cpu/nn_pool_nhwc.c):
-- max_pool2d, avg_pool2d and adaptive_avg_pool2d take a channels-last
-- input without a copy and give a channels-last output whose values, and
-- whose input gradients, equal those of the same input made contiguous
-- (the NCHW loops, or oneDNN for float32 average pooling): max pooling and
-- float64 bit for bit, float32 averages within 1e-6 relative. Over kernel,
-- stride, padding, dilation, ceil_mode, count_include_pad and adaptive
-- sizes that do not divide the input; C in {1, 3, 16, 19} (C = 1 is both
-- layouts at once, and takes the contiguous path); NaN, ties, windows of
-- padding only; the same bits at 1 and 2 threads; gradcheck per kind.
--
-- Each backward here ends at a leaf, whose .grad autograd copies to a
-- contiguous tensor, so the channels-last layout of the pools' input
-- gradient cannot be seen from Lua; its values are checked.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"
local core = require "tide.core"

local CL = { memory_format = "channels_last" }
local CHANNELS = { 1, 3, 16, 19 }
local DTYPES = { "float32", "float64" }

-- the largest |a - b| (0 when the values are equal), in float64
local function max_diff(a, b) return (a:double() - b:double()):abs():max():item() end

-- the largest |a - b| / |b|; b's elements are 0 only where a's are too
local function max_rel(a, b)
    local bd = b:double()
    return ((a:double() - bd):abs() / (bd:abs() + 1e-300)):max():item()
end

local same_values = H.same_values

-- f on x as a leaf in one layout, backward of gy (given in the output's
-- layout when gy_cl): the output and the input gradient
local function run(x, f, gy, cl, gy_cl)
    local leaf = (cl and x:contiguous(CL) or x:clone()):detach()
    leaf.requires_grad = true
    if cl then assert(leaf:is_contiguous(CL), "the channels-last leaf") end
    local y = f(leaf)
    y:backward(gy_cl and gy:contiguous(CL) or gy)
    return y, leaf.grad
end

-- f on x contiguous and channels-last: outputs and gradients agree; exact
-- when exact, else within rtol relative (positive data: no cancellation)
local function agree(x, f, gy, label, exact, rtol, gy_cl)
    local ya, ga = run(x, f, gy, false, false)
    local yb, gb = run(x, f, gy, true, gy_cl)
    assert(yb:is_contiguous(CL), label .. ": output is not channels-last")
    assert(yb:dtype() == x:dtype() and gb:dtype() == x:dtype(), label .. ": dtype")
    assert.same(ya:shape(), yb:shape(), label)
    if exact then
        local dy, dg = max_diff(yb, ya), max_diff(gb, ga)
        assert(dy == 0, string.format("%s: outputs differ by %g", label, dy))
        assert(dg == 0, string.format("%s: gradients differ by %g", label, dg))
    else
        local ry, rg = max_rel(yb, ya), max_rel(gb, ga)
        assert(ry <= rtol, string.format("%s: outputs differ by %g relative", label, ry))
        assert(rg <= rtol, string.format("%s: gradients differ by %g relative", label, rg))
    end
end

-- every (dtype, C) for one option set: data and gy drawn per case
local function each_case(hw, f, label, positive, exact_f32, cases)
    for _, dt in ipairs(DTYPES) do
        for _, c in ipairs(CHANNELS) do
            local shape = { 2, c, hw[1], hw[2] }
            local x = positive and tide.rand(shape, dt) + 0.5 or tide.randn(shape, dt)
            local y = f(x)
            local gy = positive and tide.rand(y:shape(), dt) + 0.5 or tide.randn(y:shape(), dt)
            local exact = dt == "float64" or exact_f32
            cases.n = cases.n + 1
            agree(x, f, gy, string.format("%s %s C=%d", label, dt, c), exact, dt == "float32" and 1e-6 or 1e-12,
                  cases.n % 2 == 0)
        end
    end
end

local function pad_ok(k, p) return p[1] <= k[1] // 2 and p[2] <= k[2] // 2 end

describe("max_pool2d on channels-last tensors", function()
    it("equals the contiguous input's values and gradients over kernel, stride, padding, dilation, ceil_mode",
        function()
            tide.manual_seed(51)
            local cases = { n = 0 }
            for _, hw in ipairs { { 5, 5 }, { 8, 7 } } do
                for _, k in ipairs { { 1, 1 }, { 2, 2 }, { 3, 3 }, { 2, 3 } } do
                    for _, s in ipairs { { 1, 1 }, { 2, 2 }, { 3, 2 } } do
                        for _, p in ipairs { { 0, 0 }, { 1, 1 }, { 1, 0 } } do
                            for _, d in ipairs { { 1, 1 }, { 2, 2 }, { 1, 2 } } do
                                for _, ceil in ipairs { false, true } do
                                    if pad_ok(k, p) then
                                        local o = { stride = s, padding = p, dilation = d, ceil_mode = ceil }
                                        each_case(hw, function(t) return core.max_pool2d(t, k, o) end,
                                            string.format("max_pool2d %dx%d k%dx%d s%dx%d p%dx%d d%dx%d ceil %s",
                                                hw[1], hw[2], k[1], k[2], s[1], s[2], p[1], p[2], d[1], d[2], ceil),
                                            false, true, cases)
                                    end
                                end
                            end
                        end
                    end
                end
            end
            assert.is_true(cases.n > 1000, cases.n .. " cases")
        end)

    it("NaN wins its window, ties keep the first element in scan order, -inf windows", function()
        local nan, inf = 0 / 0, math.huge
        -- channel 0: NaNs (one window with two); 1: all equal; 2: -inf and ties
        local planes = {
            { { 1, nan, 2, 3, 0 }, { 4, 5, nan, 6, 1 }, { 1, 2, 3, 4, 2 }, { nan, 1, 2, nan, 3 }, { 0, 0, 0, 0, 0 } },
            { { 7, 7, 7, 7, 7 }, { 7, 7, 7, 7, 7 }, { 7, 7, 7, 7, 7 }, { 7, 7, 7, 7, 7 }, { 7, 7, 7, 7, 7 } },
            { { -inf, -inf, 5, 5, 1 }, { -inf, -inf, 5, 5, 1 }, { 2, 3, 3, 2, -inf }, { 3, 2, 2, 3, -inf },
              { 1, 1, 1, 1, -inf } },
        }
        for _, dt in ipairs(DTYPES) do
            local x = tide.tensor({ planes, planes }, dt)
            for _, o in ipairs {
                { 2, {} }, { 3, { stride = 2, padding = 1 } }, { 2, { stride = 1, ceil_mode = true } },
                { 3, { stride = 1, padding = 1, dilation = 2 } }, { { 2, 3 }, { stride = { 1, 2 }, ceil_mode = true } },
            } do
                local f = function(t) return core.max_pool2d(t, o[1], o[2]) end
                local gy = tide.randn(f(x):shape(), dt)
                local ya, ga = run(x, f, gy, false, false)
                local yb, gb = run(x, f, gy, true, true)
                assert.is_true(yb:is_contiguous(CL))
                assert.is_true(same_values(yb, ya))
                assert.is_true(same_values(gb, ga))
            end
            -- ties: each 2x2 window's gradient goes to its first element
            local _, g = run(x, function(t) return core.max_pool2d(t, 2) end, tide.ones({ 2, 3, 2, 2 }, dt), true, true)
            local want = { { 1, 0, 1, 0, 0 }, { 0, 0, 0, 0, 0 }, { 1, 0, 1, 0, 0 }, { 0, 0, 0, 0, 0 },
                { 0, 0, 0, 0, 0 } }
            assert.same(want, g:totable()[2][2])
            -- the -inf window: its first element; the 5s: the first 5
            assert.same({ 1, 0, 1, 0, 0 }, g:totable()[1][3][1])
        end
    end)

    -- H = 2, kernel 2, dilation 3, padding 1: the window holds rows -1 and 2
    it("a window of padding only gives -inf and no gradient", function()
        for _, dt in ipairs(DTYPES) do
            local x = tide.tensor({ { { { 3 }, { 5 } }, { { -1 }, { 2 } }, { { 0 }, { 0 } } } }, dt)
            local leaf = x:contiguous(CL):detach()
            assert.is_false(leaf:is_contiguous())
            leaf.requires_grad = true
            local y = core.max_pool2d(leaf, { 2, 1 }, { stride = 1, padding = { 1, 0 }, dilation = { 3, 1 } })
            assert.same({ { { { -math.huge } }, { { -math.huge } }, { { -math.huge } } } }, y:totable())
            y:sum():backward()
            assert.same({ { { { 0 }, { 0 } }, { { 0 }, { 0 } }, { { 0 }, { 0 } } } }, leaf.grad:totable())
        end
    end)
end)

describe("avg_pool2d on channels-last tensors", function()
    it("equals the contiguous input's over kernel, stride, padding, ceil_mode, count_include_pad", function()
        tide.manual_seed(52)
        local cases = { n = 0 }
        for _, hw in ipairs { { 5, 5 }, { 8, 7 } } do
            for _, k in ipairs { { 1, 1 }, { 2, 2 }, { 3, 3 }, { 3, 2 } } do
                for _, s in ipairs { { 1, 1 }, { 2, 2 }, { 3, 2 } } do
                    for _, p in ipairs { { 0, 0 }, { 1, 1 }, { 0, 1 } } do
                        for _, ceil in ipairs { false, true } do
                            for _, inc in ipairs { true, false } do
                                if pad_ok(k, p) then
                                    local o = { stride = s, padding = p, ceil_mode = ceil, count_include_pad = inc }
                                    each_case(hw, function(t) return core.avg_pool2d(t, k, o) end,
                                        string.format("avg_pool2d %dx%d k%dx%d s%dx%d p%dx%d ceil %s include %s",
                                            hw[1], hw[2], k[1], k[2], s[1], s[2], p[1], p[2], ceil, inc),
                                        true, false, cases)
                                end
                            end
                        end
                    end
                end
            end
        end
        assert.is_true(cases.n > 800, cases.n .. " cases")
    end)
end)

describe("adaptive_avg_pool2d on channels-last tensors", function()
    it("equals the contiguous input's for output sizes that divide the input and sizes that do not", function()
        tide.manual_seed(53)
        local cases = { n = 0 }
        for _, hw in ipairs { { 7, 5 }, { 8, 8 }, { 9, 6 }, { 4, 4 } } do
            for _, o in ipairs { { 1, 1 }, { 2, 2 }, { 3, 2 }, { 4, 5 }, { 3, 3 }, { 5, 7 } } do
                each_case(hw, function(t) return core.adaptive_avg_pool2d(t, o) end,
                    string.format("adaptive %dx%d -> %dx%d", hw[1], hw[2], o[1], o[2]), true, false, cases)
            end
        end
        assert.is_true(cases.n >= 192, cases.n .. " cases")
    end)
end)

describe("channels-last pooling", function()
    local kinds = {
        { "max_pool2d 2x2", function(t) return core.max_pool2d(t, 2) end },
        { "max_pool2d 3x3 s2 p1", function(t) return core.max_pool2d(t, 3, { stride = 2, padding = 1 }) end },
        { "avg_pool2d 3x3 s2 p1", function(t) return core.avg_pool2d(t, 3, { stride = 2, padding = 1 }) end },
        { "adaptive_avg_pool2d 5x3", function(t) return core.adaptive_avg_pool2d(t, { 5, 3 }) end },
        { "adaptive_avg_pool2d 1x1", function(t) return core.adaptive_avg_pool2d(t, 1) end },
    }

    -- large enough for the loops to go parallel; N = 1 splits the backward
    -- over channel blocks, N = 4 over images
    it("gives the same bits with 1 and 2 threads", function()
        local threads = tide.get_num_threads()
        tide.manual_seed(54)
        for _, shape in ipairs { { 4, 19, 32, 32 }, { 1, 64, 24, 24 } } do
            for _, dt in ipairs(DTYPES) do
                local x = tide.randn(shape, dt)
                for _, k in ipairs(kinds) do
                    local gy = tide.randn(k[2](x):shape(), dt)
                    tide.set_num_threads(1)
                    local y1, g1 = run(x, k[2], gy, true, true)
                    tide.set_num_threads(2)
                    local y2, g2 = run(x, k[2], gy, true, true)
                    tide.set_num_threads(threads)
                    assert.is_true(same_values(y1, y2), k[1] .. " " .. dt .. " output")
                    assert.is_true(same_values(g1, g2), k[1] .. " " .. dt .. " gradient")
                    -- and the channel blocks add up to the contiguous input's gradient
                    local _, gc = run(x, k[2], gy, false, false)
                    local exact = dt == "float64" or k[1]:find("max", 1, true) ~= nil
                    local d = exact and max_diff(g2, gc) or max_diff(g2, gc) / (gc:abs():max():item() + 1)
                    assert(d <= (exact and 0 or 1e-6), k[1] .. " " .. dt .. " gradient against contiguous: " .. d)
                end
            end
        end
    end)

    it("a larger batch agrees with the contiguous input", function()
        tide.manual_seed(55)
        for _, dt in ipairs(DTYPES) do
            local x = tide.rand({ 8, 32, 14, 14 }, dt) + 0.5
            for _, k in ipairs(kinds) do
                local gy = tide.rand(k[2](x):shape(), dt) + 0.5
                local exact = dt == "float64" or k[1]:find("max", 1, true) ~= nil
                agree(x, k[2], gy, k[1] .. " " .. dt, exact, dt == "float32" and 1e-6 or 1e-12, true)
            end
        end
    end)

    -- a (C, H, W) view of a channels-last batch is not channels-last: the
    -- contiguous path, as before
    it("an unbatched input sliced from a channels-last batch", function()
        local x = tide.randn { 2, 5, 6, 6 }
        local xc = x:contiguous(CL)
        for _, k in ipairs(kinds) do
            assert.is_true(same_values(k[2](xc:select(0, 1)), k[2](x:select(0, 1))), k[1])
        end
    end)

    -- gradcheck clones its inputs contiguous: the layout change is inside fn
    it("gradcheck in float64 through a channels-last input, one per kind", function()
        tide.manual_seed(56)
        -- distinct values so the max is not tied under the perturbation
        local xm = (tide.randperm(2 * 3 * 7 * 6):double() * 0.1):view { 2, 3, 7, 6 }
        xm.requires_grad = true
        assert.is_true(tide.gradcheck(function(t)
            return core.max_pool2d(t:contiguous(CL), 3, { stride = 2, padding = 1, ceil_mode = true })
        end, { xm }))
        local xa = tide.randn({ 2, 3, 7, 6 }, { dtype = "float64", requires_grad = true })
        assert.is_true(tide.gradcheck(function(t)
            return core.avg_pool2d(t:contiguous(CL), 3, { stride = 2, padding = 1, count_include_pad = false,
                                                          ceil_mode = true })
        end, { xa }))
        assert.is_true(tide.gradcheck(function(t) return core.adaptive_avg_pool2d(t:contiguous(CL), { 4, 5 }) end,
            { xa }))
    end)
end)
