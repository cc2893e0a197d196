-- The functional layers other than convolution: linear, batch_norm,
-- layer_norm, max/avg/adaptive_avg pool, dropout, leaky_relu, embedding,
-- flatten. Values and gradients against PyTorch 1.13
-- (tests/reference/layers.json, from tests/reference/gen_layers.py),
-- running statistics after the call, gradcheck in float64, float32 against
-- float64, dropout's statistics and seeding, and the bad inputs.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local core = require "tide.core"

local data = cjson.decode(H.read_file("tests/reference/layers.json"))

local function arg_value(a)
    if type(a) == "table" and a.values then
        local t = H.tensor(a)
        if a.grad then t.requires_grad = true end
        return t
    end
    if a == cjson.null then return nil end
    return H.ints(a)
end

describe("layers against PyTorch", function()
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local args, opts, n = {}, {}, 0
            for i, a in ipairs(c.args) do args[i] = arg_value(a); n = i end
            local has_opts = false
            for k, v in pairs(c.options) do opts[k] = arg_value(v); has_opts = true end
            if has_opts then n = n + 1; args[n] = opts end
            local out = core[c.fn](table.unpack(args, 1, n))
            local f32 = c.output.dtype == "float32"
            local rtol, atol = f32 and 1e-4 or 1e-9, f32 and 1e-5 or 1e-10
            H.check_tensor(out, c.output, rtol, atol, "output")
            for key, want in pairs(c.after) do
                H.check_tensor(args[tonumber(key:sub(2))], want, rtol, atol, "after " .. key)
            end
            if next(c.grads) then
                local w = H.tensor(c.weight)
                ;(out * w):sum():backward()
                for key, want in pairs(c.grads) do
                    local t = key:match("^a%d+$") and args[tonumber(key:sub(2))] or opts[key]
                    H.check_tensor(t.grad, want, rtol, atol, "grad " .. key)
                end
            end
        end)
    end
end)

describe("layers gradcheck (float64)", function()
    local function d(shape) return tide.randn(shape, { dtype = "float64", requires_grad = true }) end
    before_each(function() tide.manual_seed(7) end)
    it("linear", function()
        assert.is_true(tide.gradcheck(function(x, w, b) return core.linear(x, w, { bias = b }) end,
            { d { 3, 4 }, d { 2, 4 }, d { 2 } }))
    end)
    it("batch_norm training and eval", function()
        local g, b = d { 3 }, d { 3 }
        assert.is_true(tide.gradcheck(function(x, weight, bias)
            return core.batch_norm(x, nil, nil, { weight = weight, bias = bias, training = true })
        end, { d { 4, 3, 2, 2 }, g, b }))
        local rm = tide.randn({ 3 }, "float64")
        local rv = tide.rand({ 3 }, "float64") + 0.5
        assert.is_true(tide.gradcheck(function(x, weight, bias)
            return core.batch_norm(x, rm, rv, { weight = weight, bias = bias })
        end, { d { 5, 3 }, g, b }))
    end)
    it("layer_norm", function()
        assert.is_true(tide.gradcheck(function(x, w, b) return core.layer_norm(x, { 3, 4 },
            { weight = w, bias = b }) end,
            { d { 2, 3, 4 }, d { 3, 4 }, d { 3, 4 } }))
    end)
    it("pools", function()
        -- distinct values so the max is not tied under the perturbation
        local x = (tide.randperm(2 * 2 * 7 * 6):double() * 0.1):view { 2, 2, 7, 6 }
        x.requires_grad = true
        assert.is_true(tide.gradcheck(function(input)
            return core.max_pool2d(input, 3, { stride = 2, padding = 1, ceil_mode = true })
        end, { x }))
        assert.is_true(tide.gradcheck(function(input)
            return core.avg_pool2d(input, 3, { stride = 2, padding = 1, count_include_pad = false, ceil_mode = true })
        end, { d { 2, 2, 7, 6 } }))
        assert.is_true(tide.gradcheck(function(input) return core.adaptive_avg_pool2d(input, { 4, 5 }) end,
            { d { 1, 2, 7, 6 } }))
    end)
    it("dropout, leaky_relu, embedding", function()
        assert.is_true(tide.gradcheck(function(x)
            tide.manual_seed(3)
            return core.dropout(x, { p = 0.3 })
        end, { d { 5, 6 } }))
        assert.is_true(tide.gradcheck(function(x) return core.leaky_relu(x, { negative_slope = 0.1 }) end,
            { d { 4, 5 } }))
        local idx = tide.tensor({ { 0, 1, 1 }, { 3, 0, 2 } }, "int64")
        -- without padding_idx: its row gets no gradient by design (checked against PyTorch above)
        assert.is_true(tide.gradcheck(function(w) return core.embedding(idx, w) end, { d { 4, 3 } }))
    end)
end)

describe("float32 agrees with float64", function()
    it("batch_norm and pools", function()
        tide.manual_seed(11)
        local x = tide.randn { 8, 4, 9, 9 }
        local xd = x:double()
        local function cmp(f)
            local a, b = f(x), f(xd)
            H.assert_close(a, H.values(b), 1e-4, 1e-5)
        end
        cmp(function(t) return core.batch_norm(t, nil, nil, { training = true }) end)
        cmp(function(t) return core.max_pool2d(t, 3, { stride = 2, padding = 1 }) end)
        cmp(function(t) return core.avg_pool2d(t, 3, { stride = 2, ceil_mode = true }) end)
        cmp(function(t) return core.adaptive_avg_pool2d(t, 4) end)
        -- global average: one sum per plane (its own float32 path)
        cmp(function(t) return core.adaptive_avg_pool2d(t, 1) end)
        local big = tide.randn { 3, 5, 28, 31 } + 2
        local want = H.values(core.adaptive_avg_pool2d(big:double(), 1))
        H.assert_close(core.adaptive_avg_pool2d(big, 1), want, 1e-6, 1e-6)
    end)

    -- a dilated window can cover padding only (H = 2, kernel 2, dilation 3,
    -- padding 1: the one window holds rows -1 and 2): PyTorch 1.13 gives
    -- -inf and a zero gradient (the old index pointed outside the plane and
    -- backward wrote there); padding past half the kernel is PyTorch's error
    it("max_pool2d with a window of padding only gives -inf and no gradient", function()
        for _, dt in ipairs({ "float32", "float64" }) do
            local leaf = tide.tensor({ { { { 3 }, { 5 } } } }, { dtype = dt, requires_grad = true })
            local y = core.max_pool2d(leaf, { 2, 1 }, { stride = 1, padding = { 1, 0 }, dilation = { 3, 1 } })
            assert.are.same({ { { { -math.huge } } } }, y:totable())
            y:sum():backward()
            assert.are.same({ { { { 0 }, { 0 } } } }, leaf.grad:totable())
        end
        assert.has_error(function()
            core.max_pool2d(tide.zeros { 1, 1, 4, 4 }, 2, { padding = 2, dilation = 3 })
        end)
    end)

    -- the float32 fast paths: batch norm's one-pass statistics (a mean far
    -- from 0, a plane size that is not a multiple of the vector width) and
    -- the unrolled 2x2 max pool (ties and NaNs pick the reference's element)
    it("batch_norm and 2x2 max_pool2d gradients, far from 0, with ties and NaNs", function()
        tide.manual_seed(12)
        local x = tide.randn { 6, 3, 9, 9 } * 3 + 100
        local g = tide.randn { 6, 3, 9, 9 }
        local function bn(t)
            local leaf = t:detach():clone():requires_grad_(true)
            local w = tide.tensor({ 0.5, 2, -1 }, { dtype = t:dtype(), requires_grad = true })
            local y = core.batch_norm(leaf, nil, nil, { training = true, weight = w })
            ;(y * g:to(t:dtype())):sum():backward()
            return y, leaf.grad, w.grad
        end
        local y32, gx32, gw32 = bn(x)
        local y64, gx64, gw64 = bn(x:double())
        H.assert_close(y32, H.values(y64), 1e-4, 1e-4)
        H.assert_close(gx32, H.values(gx64), 1e-4, 1e-4)
        H.assert_close(gw32, H.values(gw64), 1e-4, 1e-3)
        local p = tide.tensor { { { { 1, 1, 0 / 0, 2 }, { 1, 0, 3, 0 / 0 } },
                                  { { -1 / 0, -1 / 0, 5, 5 }, { -1 / 0, -1 / 0, 5, 5 } } } }
        local function mp(t)
            local leaf = t:detach():clone():requires_grad_(true)
            local y = core.max_pool2d(leaf, 2)
            y:sum():backward()
            return y, leaf.grad
        end
        local py32, pg32 = mp(p)
        local py64, pg64 = mp(p:double())
        local a, b = py32:totable(), py64:totable()
        assert.is_true(a[1][1][1][1] == b[1][1][1][1])
        assert.is_true(a[1][1][1][2] ~= a[1][1][1][2] and b[1][1][1][2] ~= b[1][1][1][2])
        assert.are.same(H.values(pg64), H.values(pg32))
        assert.are.same({ 1, 0, 0, 0, 0, 0, 0, 1, 1, 0, 1, 0, 0, 0, 0, 0 }, H.values(pg32))
    end)
end)

describe("dropout", function()
    it("keeps about 1 - p, scales kept values exactly, reproduces with the seed", function()
        local x = tide.ones { 1000000 }
        tide.manual_seed(5)
        local y = core.dropout(x, { p = 0.3 })
        local kept = (y:gt(0)):double():sum():item()
        assert.is_true(math.abs(kept / 1e6 - 0.7) < 0.003, "kept " .. kept)
        -- every kept value is exactly float32(1 / 0.7)
        local s = tide.tensor({ 1 / (1 - 0.3) }):item()
        assert.are.equal(0, (y - y:gt(0):float() * s):abs():sum():item())
        tide.manual_seed(5)
        local y2 = core.dropout(x, { p = 0.3 })
        assert.are.equal(0, (y - y2):abs():sum():item())
        local t = tide.get_num_threads()
        tide.set_num_threads(1)
        tide.manual_seed(5)
        local y1 = core.dropout(x, { p = 0.3 })
        tide.set_num_threads(2)
        tide.manual_seed(5)
        local y3 = core.dropout(x, { p = 0.3 })
        tide.set_num_threads(t)
        assert.are.equal(0, (y1 - y3):abs():sum():item())
        assert.are.equal(0, (y1 - y):abs():sum():item())
    end)
    it("identity when not training or p = 0, zeros at p = 1", function()
        local x = tide.randn { 10 }
        H.assert_close(core.dropout(x, { training = false }), H.values(x), 0, 0)
        H.assert_close(core.dropout(x, { p = 0 }), H.values(x), 0, 0)
        H.assert_close(core.dropout(x, { p = 1 }), H.values(tide.zeros { 10 }), 0, 0)
    end)
    it("backward uses the same mask", function()
        local x = tide.randn({ 100 }, { requires_grad = true })
        local y = core.dropout(x, { p = 0.5 })
        y:sum():backward()
        H.assert_close(x.grad, H.values(y:detach() / x:detach()), 1e-6, 1e-6)
    end)
end)

describe("flatten", function()
    it("defaults to start_dim 0 as torch.flatten", function()
        local x = tide.zeros { 2, 3, 4 }
        assert.are.same({ 24 }, core.flatten(x):shape())
        assert.are.same({ 2, 12 }, core.flatten(x, { start_dim = 1 }):shape())
        assert.are.same({ 6, 4 }, core.flatten(x, { end_dim = 1 }):shape())
    end)
end)

describe("layers bad inputs", function()
    local x = tide.randn { 4, 3 }
    local cases = {
        { "linear shape", function() core.linear(x, tide.randn { 2, 5 }) end, "#2 to 'linear'" },
        { "linear unknown option", function() core.linear(x, tide.randn { 2, 3 }, { bais = 1 }) end, "bais" },
        { "batch_norm running_mean", function() core.batch_norm(x, tide.zeros { 4 }, tide.ones { 3 }) end,
            "#2 to 'batch_norm'" },
        { "batch_norm eval without stats", function() core.batch_norm(x, nil, nil) end, "running_mean" },
        { "batch_norm one value", function() core.batch_norm(tide.randn { 1, 3 }, nil, nil, { training = true }) end,
            "more than 1 value" },
        { "batch_norm int input", function() core.batch_norm(tide.zeros({ 2, 3 }, "int64"), nil, nil) end, "float32" },
        { "layer_norm shape", function() core.layer_norm(x, 4) end, "#2 to 'layer_norm'" },
        { "max_pool2d 2d input", function() core.max_pool2d(x, 2) end, "#1 to 'max_pool2d'" },
        { "max_pool2d padding", function() core.max_pool2d(tide.randn { 1, 1, 4, 4 }, 2, { padding = 2 }) end,
            "padding" },
        { "avg_pool2d kernel too big", function() core.avg_pool2d(tide.randn { 1, 1, 2, 2 }, 3) end, "too small" },
        { "adaptive zero", function() core.adaptive_avg_pool2d(tide.randn { 1, 1, 4, 4 }, 0) end, "positive" },
        { "dropout p", function() core.dropout(x, { p = 1.5 }) end, "p must be in [0, 1]" },
        { "dropout unknown option", function() core.dropout(x, { q = 0.5 }) end, "q" },
        { "embedding range", function() core.embedding(tide.tensor({ 0, 7 }, "int64"), tide.randn { 5, 2 }) end,
            "index 7 at position 1" },
        { "embedding float indices", function() core.embedding(tide.zeros { 2 }, tide.randn { 5, 2 }) end, "int64" },
    }
    for _, c in ipairs(cases) do
        it(c[1], function()
            local err = H.error_of(c[2])
            assert.is_not_nil(err, "no error")
            assert.is_truthy(err:find(c[3], 1, true), err)
        end)
    end
end)
