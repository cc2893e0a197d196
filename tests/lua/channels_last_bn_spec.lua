-- batch_norm on channels-last input ((N, C, H, W) stored as N, H, W, C),
-- which the CPU takes without a copy, as (N H W) rows x C channels
-- (kernels/cpu/nn_batch_norm.c's rows loops, which BatchNorm1d's (N, C) input
-- goes through too). Against the same call on the contiguous copy: values,
-- running statistics and the gradients of input, weight and bias; the
-- output's layout; no copy of the input; the same bits at 1 and 2 threads;
-- a float64 gradcheck; and PyTorch 1.13's numbers
-- (tests/reference/channels_last_bn.json, from
-- tests/reference/gen_channels_last_bn.py).
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"

local F, nn = tide.F, tide.nn
local CL = { memory_format = "channels_last" }
-- channels-last against contiguous: relative, with an absolute floor at
-- the scale of the values (an output near 0 keeps the rounding of its terms)
local TOL = { float32 = { 1e-5, 1e-6 }, float64 = { 1e-12, 1e-13 } }

-- weight and bias gradients are sums over every row (3072 here) whose terms
-- cancel: the channels-last float32 path sums blocks of 8 rows in float
-- (as PyTorch's channels-last kernel accumulates in float) and the
-- contiguous one in double, so they differ by up to about 1e-7 of the sum
-- of the terms' magnitudes: a few 1e-6 on these values of order 0.1 to 1
local SUM_TOL = {float32 = {1e-4, 2e-5}, float64 = {1e-12, 1e-12}}

local function close(got, want, dt, label)
    local t = (label:find("grad weight", 1, true) or label:find("grad bias", 1, true)) and SUM_TOL[dt] or TOL[dt]
    H.assert_close(got, H.values(want), t[1], t[2], label)
end

local function leaf(t)
    local l = t:detach()
    l.requires_grad = true
    return l
end

-- (N, H, W) triples: H = W = 1, odd sizes, and a batch of N H W = 3072 rows,
-- more than one chunk of the rows loops for every C > 1 here
local SIZES = { { 2, 5, 7 }, { 3, 1, 1 }, { 1, 4, 3 }, { 3, 32, 32 } }
local CHANNELS = { 1, 3, 20, 64 }

-- the input in both layouts, the same values; gy (the gradient of y) in
-- the layout that `gy_cl` says, so both of backward's conversions run
local function inputs(dt, shape, gy_cl)
    local x = tide.randn(shape, { dtype = dt }) * 2 + 3
    local gy = tide.randn(shape, { dtype = dt })
    if gy_cl then gy = gy:contiguous(CL) end
    return x, x:contiguous(CL), gy
end

-- y's layout: channels-last (and not also contiguous when the two differ)
local function assert_channels_last(y, shape)
    assert.is_true(y:is_contiguous(CL), "output is not channels-last")
    if shape[2] > 1 and shape[3] * shape[4] > 1 then
        assert.is_false(y:is_contiguous(), "output is contiguous")
    end
end

-- F.batch_norm(x, rm, rv, opts) on both layouts with fresh leaves and
-- statistics; every result of the channels-last call against the other
local function compare(dt, shape, training, gy_cl)
    local c = shape[2]
    local x, xl, gy = inputs(dt, shape, gy_cl)
    local w0 = tide.rand({ c }, { dtype = dt }) + 0.5
    local b0 = tide.randn({ c }, { dtype = dt })
    local rm0 = tide.randn({ c }, { dtype = dt })
    local rv0 = tide.rand({ c }, { dtype = dt }) + 0.5
    local out = {}
    for k, input in ipairs { x, xl } do
        local r = { x = leaf(input), w = leaf(w0), b = leaf(b0), rm = rm0:clone(), rv = rv0:clone() }
        r.y = F.batch_norm(r.x, r.rm, r.rv, { weight = r.w, bias = r.b, training = training, momentum = 0.3 })
        r.y:backward(gy)
        out[k] = r
    end
    local a, b = out[1], out[2]
    local what = string.format("%s %s %s", dt, H.shape_str(shape), training and "training" or "evaluation")
    assert_channels_last(b.y, shape)
    close(b.y, a.y, dt, what .. " output")
    close(b.rm, a.rm, dt, what .. " running_mean")
    close(b.rv, a.rv, dt, what .. " running_var")
    close(b.x.grad, a.x.grad, dt, what .. " grad input")
    close(b.w.grad, a.w.grad, dt, what .. " grad weight")
    close(b.b.grad, a.b.grad, dt, what .. " grad bias")
end

describe("batch_norm on channels-last input equals it on the contiguous copy", function()
    before_each(function() tide.manual_seed(31) end)
    for _, dt in ipairs { "float32", "float64" } do
        for _, c in ipairs(CHANNELS) do
            it(string.format("F.batch_norm %s, C = %d", dt, c), function()
                for i, s in ipairs(SIZES) do
                    local shape = { s[1], c, s[2], s[3] }
                    compare(dt, shape, true, i % 2 == 0)
                    compare(dt, shape, false, i % 2 == 1)
                end
            end)
        end
    end

    for _, dt in ipairs { "float32", "float64" } do
        it("nn.BatchNorm2d " .. dt .. ": training steps, then evaluation", function()
            local c = 20
            local m1 = nn.BatchNorm2d(c, { momentum = 0.2 }):to(dt)
            local m2 = nn.BatchNorm2d(c, { momentum = 0.2 }):to(dt)
            for step, s in ipairs { { 4, 6, 5 }, { 3, 32, 32 }, { 8, 1, 1 } } do
                local shape = { s[1], c, s[2], s[3] }
                local x, xl, gy = inputs(dt, shape, step == 2)
                m1:zero_grad()
                m2:zero_grad()
                local x1, x2 = leaf(x), leaf(xl)
                local y1, y2 = m1(x1), m2(x2)
                assert_channels_last(y2, shape)
                y1:backward(gy)
                y2:backward(gy)
                close(y2, y1, dt, "step " .. step .. " output")
                close(x2.grad, x1.grad, dt, "step " .. step .. " grad input")
                close(m2.weight.grad, m1.weight.grad, dt, "step " .. step .. " grad weight")
                close(m2.bias.grad, m1.bias.grad, dt, "step " .. step .. " grad bias")
                close(m2.running_mean, m1.running_mean, dt, "step " .. step .. " running_mean")
                close(m2.running_var, m1.running_var, dt, "step " .. step .. " running_var")
            end
            m1:evaluate()
            m2:evaluate()
            local shape = { 2, c, 7, 3 }
            local x, xl, gy = inputs(dt, shape, true)
            local x1, x2 = leaf(x), leaf(xl)
            local y1, y2 = m1(x1), m2(x2)
            assert_channels_last(y2, shape)
            y1:backward(gy)
            y2:backward(gy)
            close(y2, y1, dt, "evaluation output")
            close(x2.grad, x1.grad, dt, "evaluation grad input")
            close(m2.weight.grad, m1.weight.grad, dt, "evaluation grad weight")
        end)
    end

    -- BatchNorm1d's (N, C) input goes through the same rows loops; the
    -- per-channel loops give the same numbers for its transpose viewed as
    -- (1, C, N) (N values per channel, all in one plane)
    it("(N, C) input: the rows loops agree with the per-channel loops", function()
        for _, dt in ipairs { "float32", "float64" } do
            for _, s in ipairs { { 5000, 3 }, { 700, 64 }, { 40, 300 } } do
                local n, c = s[1], s[2]
                local x = tide.randn(s, { dtype = dt }) * 2 + 3
                local gy = tide.randn(s, { dtype = dt })
                local x1 = leaf(x)
                local x2 = leaf(x:t():contiguous():view { 1, c, n })
                local rm1, rv1 = tide.zeros({ c }, { dtype = dt }), tide.ones({ c }, { dtype = dt })
                local rm2, rv2 = rm1:clone(), rv1:clone()
                local y1 = F.batch_norm(x1, rm1, rv1, { training = true })
                local y2 = F.batch_norm(x2, rm2, rv2, { training = true })
                y1:backward(gy)
                y2:backward(gy:t():contiguous():view { 1, c, n })
                local what = dt .. " " .. H.shape_str(s)
                close(y1, y2:view { c, n }:t(), dt, what .. " output")
                close(rm1, rm2, dt, what .. " running_mean")
                close(rv1, rv2, dt, what .. " running_var")
                close(x1.grad, x2.grad:view { c, n }:t(), dt, what .. " grad input")
            end
        end
    end)
end)

describe("batch_norm on channels-last input", function()
    -- the forward keeps what it needs for backward (the input) as a view:
    -- the memory it holds on to is y's and the statistics', no copy of x
    it("makes no copy of the input", function()
        tide.manual_seed(5)
        local shape = { 4, 64, 16, 16 }
        local x = leaf(tide.randn(shape):contiguous(CL))
        local w = tide.ones({ 64 }):requires_grad_(true)
        local bytes = 4 * 4 * 64 * 16 * 16
        collectgarbage()
        collectgarbage()
        local before = tide.memory("cpu").live
        local y = F.batch_norm(x, nil, nil, { weight = w, training = true })
        local grown = tide.memory("cpu").live - before
        assert.is_true(grown >= bytes and grown < bytes + 65536,
            string.format("forward holds %d more bytes, y is %d", grown, bytes))
        assert_channels_last(y, shape)
    end)

    -- the rows loops sum in fixed chunks of rows, added in chunk order
    it("gives the same bits at 1 and 2 threads", function()
        local threads = tide.get_num_threads()
        local function run(n_threads, dt)
            tide.set_num_threads(n_threads)
            tide.manual_seed(17)
            local shape = { 6, 64, 16, 16 } -- 1536 rows x 64: 12 chunks of 128 rows
            local x = leaf((tide.randn(shape, { dtype = dt }) * 3 + 50):contiguous(CL))
            local gy = tide.randn(shape, { dtype = dt }):contiguous(CL)
            local w = leaf(tide.rand({ 64 }, { dtype = dt }) + 0.5)
            local rm, rv = tide.zeros({ 64 }, { dtype = dt }), tide.ones({ 64 }, { dtype = dt })
            local y = F.batch_norm(x, rm, rv, { weight = w, training = true })
            y:backward(gy)
            return { y = y:totable(), rm = rm:totable(), rv = rv:totable(), gx = x.grad:totable(),
                     gw = w.grad:totable() }
        end
        local ok, err = pcall(function()
            for _, dt in ipairs { "float32", "float64" } do
                local one, two = run(1, dt), run(2, dt)
                for _, k in ipairs { "y", "rm", "rv", "gx", "gw" } do
                    assert.are.same(one[k], two[k], dt .. " " .. k .. " differs between 1 and 2 threads")
                end
            end
        end)
        tide.set_num_threads(threads)
        assert(ok, err)
    end)

    it("passes gradcheck in float64, training and evaluation", function()
        tide.manual_seed(8)
        local function d(shape) return tide.randn(shape, { dtype = "float64", requires_grad = true }) end
        -- the leaves gradcheck makes are contiguous: the layout is changed
        -- inside, a recorded copy, so the check runs through the rows loops
        assert.is_true(tide.gradcheck(function(x, g, b)
            local xl = x:contiguous(CL)
            assert(not xl:is_contiguous())
            return F.batch_norm(xl, nil, nil, { weight = g, bias = b, training = true })
        end, { d { 2, 3, 3, 4 }, d { 3 }, d { 3 } }))
        local rm = tide.randn({ 3 }, "float64")
        local rv = tide.rand({ 3 }, "float64") + 0.5
        assert.is_true(tide.gradcheck(function(x, g, b)
            return F.batch_norm(x:contiguous(CL), rm, rv, { weight = g, bias = b })
        end, { d { 3, 3, 2, 2 }, d { 3 }, d { 3 } }))
    end)
end)

describe("batch_norm on channels-last input against PyTorch", function()
    local data = cjson.decode(H.read_file("tests/reference/channels_last_bn.json"))
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local f32 = c.dtype == "float32"
            local rtol, atol = f32 and 1e-4 or 1e-9, f32 and 1e-5 or 1e-10
            local x = leaf(H.tensor(c.x):contiguous(CL))
            local w, b = H.tensor(c.weight, true), H.tensor(c.bias, true)
            local rm, rv = H.tensor(c.running_mean), H.tensor(c.running_var)
            local y = F.batch_norm(x, rm, rv, { weight = w, bias = b, training = c.training,
                                                momentum = c.momentum, eps = c.eps })
            assert_channels_last(y, y:shape())
            ;(y * H.tensor(c.upstream)):sum():backward()
            H.check_tensor(y, c.output, rtol, atol, "output")
            H.check_tensor(rm, c.running_mean_after, rtol, atol, "running_mean")
            H.check_tensor(rv, c.running_var_after, rtol, atol, "running_var")
            H.check_tensor(x.grad, c.grad_x, rtol, atol, "grad input")
            H.check_tensor(w.grad, c.grad_weight, rtol, atol, "grad weight")
            H.check_tensor(b.grad, c.grad_bias, rtol, atol, "grad bias")
        end)
    end
end)
