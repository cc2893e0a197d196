-- Group and instance norm, BatchNorm3d and momentum = false, the 1-d
-- pools, adaptive max pooling, max_pool2d's indices, max unpooling,
-- divisor_override, adaptive sizes kept with false, and EmbeddingBag:
-- values, indices, gradients and running statistics against PyTorch 1.13
-- (tests/reference/normpool.json, from tests/reference/gen_normpool.py),
-- gradcheck in float64, and the bad inputs.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"

local data = cjson.decode(H.read_file("tests/reference/normpool.json"))
local F, nn = tide.F, tide.nn

-- PyTorch's None inside a list is false in Lua
local function plain(v)
    if v == cjson.null then return false end
    if type(v) == "table" then
        local r = {}
        for k, x in pairs(v) do r[k] = plain(x) end
        return H.ints(r)
    end
    return H.ints(v)
end

local function arg_value(a)
    if type(a) == "table" and a.values then
        local t = H.tensor(a)
        if a.grad then t.requires_grad = true end
        return t
    end
    return plain(a)
end

local function tol(dtype)
    if dtype == "float32" then return 1e-4, 1e-5 end
    return 1e-9, 1e-10
end

describe("normpool against PyTorch", function()
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local args, opts, n = {}, {}, 0
            for i, a in ipairs(c.args) do args[i] = arg_value(a); n = i end
            local has_opts = false
            for k, v in pairs(c.options) do opts[k] = arg_value(v); has_opts = true end
            if has_opts then n = n + 1; args[n] = opts end
            local outs = table.pack(F[c.fn](table.unpack(args, 1, n)))
            assert.are.equal(#c.outputs, outs.n)
            local rtol, atol = tol(c.outputs[1].dtype)
            for i, want in ipairs(c.outputs) do H.check_tensor(outs[i], want, rtol, atol, "output " .. i) end
            for key, want in pairs(c.after) do H.check_tensor(opts[key], want, rtol, atol, "after " .. key) end
            if next(c.grads) then
                local s = (outs[1] * H.tensor(c.weight)):sum()
                s:backward()
                for key, want in pairs(c.grads) do
                    local t = key:match("^a%d+$") and args[tonumber(key:sub(2))] or opts[key]
                    H.check_tensor(t.grad, want, rtol, atol, "grad " .. key)
                end
            end
        end)
    end
end)

describe("normpool modules against PyTorch", function()
    for _, c in ipairs(data.modules) do
        it(c.name, function()
            local ctor = plain(c.ctor_args)
            local o = {dtype = "float64"}
            for k, v in pairs(c.ctor_opts) do o[k] = plain(v) end
            ctor[#ctor + 1] = o
            local m = nn[c.module](table.unpack(ctor))
            tide.no_grad(function()
                for k, v in pairs(c.params) do m[k]:copy_(H.tensor(v)) end
            end)
            m:train()
            for i, x in ipairs(c.steps) do
                H.check_tensor(m(H.tensor(x)), c.outputs[i], 1e-9, 1e-10, "step " .. i)
            end
            local keys, sd = m:state_dict_keys(), m:state_dict()
            assert.are.equal(#c.state, #keys)
            for i, kv in ipairs(c.state) do
                assert.are.equal(kv[1], keys[i])
                H.check_tensor(sd[kv[1]], kv[2], 1e-9, 1e-10, "state " .. kv[1])
            end
            m:evaluate()
            H.check_tensor(m(H.tensor(c.eval)), c.eval_output, 1e-9, 1e-10, "eval")
        end)
    end
end)

describe("normpool gradcheck (float64)", function()
    local function d(shape) return tide.randn(shape, {dtype = "float64", requires_grad = true}) end
    local function long(t) return tide.tensor(t, "int64") end
    before_each(function() tide.manual_seed(11) end)

    it("group_norm", function()
        assert.is_true(tide.gradcheck(function(x, w, b) return F.group_norm(x, 2, {weight = w, bias = b}) end,
            {d{2, 4, 3, 2}, d{4}, d{4}}))
        assert.is_true(tide.gradcheck(function(x) return F.group_norm(x, 3) end, {d{3, 6, 4}}))
    end)
    it("instance_norm", function()
        local rm, rv = tide.zeros({3}, {dtype = "float64"}), tide.ones({3}, {dtype = "float64"})
        assert.is_true(tide.gradcheck(function(x, w, b)
            return F.instance_norm(x, {weight = w, bias = b, running_mean = rm:clone(), running_var = rv:clone()})
        end, {d{2, 3, 5}, d{3}, d{3}}))
    end)
    it("1-d pools", function()
        assert.is_true(tide.gradcheck(function(x) return F.max_pool1d(x, 3, {stride = 2, padding = 1}) end,
            {d{2, 3, 9}}))
        assert.is_true(tide.gradcheck(function(x)
            return F.avg_pool1d(x, 3, {stride = 2, padding = 1, ceil_mode = true, count_include_pad = false})
        end, {d{2, 3, 8}}))
        assert.is_true(tide.gradcheck(function(x) return F.adaptive_avg_pool1d(x, 4) end, {d{2, 3, 10}}))
        assert.is_true(tide.gradcheck(function(x) return F.adaptive_max_pool1d(x, 4) end, {d{2, 3, 11}}))
    end)
    it("adaptive_max_pool2d and divisor_override", function()
        assert.is_true(tide.gradcheck(function(x) return F.adaptive_max_pool2d(x, {3, false}) end, {d{2, 3, 7, 5}}))
        assert.is_true(tide.gradcheck(function(x) return F.avg_pool2d(x, 3, {padding = 1, divisor_override = 4}) end,
            {d{1, 2, 6, 6}}))
    end)
    it("max_unpool2d", function()
        local _, idx = F.max_pool2d(tide.randn({2, 3, 6, 4}, {dtype = "float64"}), 2, {return_indices = true})
        assert.is_true(tide.gradcheck(function(x) return F.max_unpool2d(x, idx, 2) end, {d{2, 3, 3, 2}}))
    end)
    it("embedding_bag", function()
        local input, offsets = long{1, 2, 4, 5, 4, 3, 2, 9}, long{0, 3, 3, 5}
        assert.is_true(tide.gradcheck(function(w, p)
            return F.embedding_bag(input, w, {offsets = offsets, mode = "sum", per_sample_weights = p})
        end, {d{10, 3}, d{8}}))
        assert.is_true(tide.gradcheck(function(w)
            return F.embedding_bag(input, w, {offsets = offsets, padding_idx = 4})
        end, {d{10, 3}}))
        assert.is_true(tide.gradcheck(function(w)
            return F.embedding_bag(input, w, {offsets = offsets, mode = "max"})
        end, {d{10, 3}}))
    end)
end)

describe("normpool details", function()
    it("adaptive_max_pool2d reads channels-last input as NCHW gives", function()
        tide.manual_seed(3)
        local x = tide.randn({2, 5, 7, 6})
        local cl = x:contiguous({memory_format = "channels_last"})
        local a, ai = F.adaptive_max_pool2d(x, {3, 4}, {return_indices = true})
        local b, bi = F.adaptive_max_pool2d(cl, {3, 4}, {return_indices = true})
        assert.is_true(H.same_values(a, b))
        assert.is_true(H.same_values(ai, bi))
    end)
    it("group_norm gives the same bits on 1 and 2 threads", function()
        tide.manual_seed(5)
        local x, w = tide.randn({4, 8, 33, 17}, {requires_grad = true}), tide.randn({8}, {requires_grad = true})
        local function run(n)
            local old = tide.get_num_threads()
            tide.set_num_threads(n)
            x.grad, w.grad = nil, nil
            local y = F.group_norm(x, 4, {weight = w})
            ;(y * y):sum():backward()
            tide.set_num_threads(old)
            return y, x.grad, w.grad
        end
        local y1, gx1, gw1 = run(1)
        local y2, gx2, gw2 = run(2)
        assert.is_true(H.same_values(y1, y2))
        assert.is_true(H.same_values(gx1, gx2))
        assert.is_true(H.same_values(gw1, gw2))
    end)
    it("InstanceNorm keeps num_batches_tracked at 0, as PyTorch", function()
        local m = nn.InstanceNorm1d(2, {track_running_stats = true})
        m(tide.randn({3, 2, 5}))
        assert.are.equal(0, m.num_batches_tracked:item())
    end)
    it("MaxPool1d with return_indices gives both", function()
        local y, i = nn.MaxPool1d(2, {return_indices = true})(tide.tensor({{{1, 3, 2, 0}}}))
        assert.are.same({{{3, 2}}}, y:totable())
        assert.are.same({{{1, 2}}}, i:totable())
    end)
    it("MaxPool2d with return_indices gives both, as the functional form", function()
        tide.manual_seed(4)
        local x = tide.randn({2, 3, 7, 6})
        local y, i = nn.MaxPool2d(3, {stride = 2, padding = 1, return_indices = true})(x)
        local fy, fi = F.max_pool2d(x, 3, {stride = 2, padding = 1, return_indices = true})
        assert.is_true(H.same_values(fy, y))
        assert.is_true(H.same_values(fi, i))
        local u = nn.MaxUnpool2d(3, {stride = 2, padding = 1})(y, i, {7, 6})
        -- every kept maximum goes back where it came from
        assert.is_true(H.same_values(u:flatten(2):gather(2, i:flatten(2)), y:flatten(2)))
        assert.are.equal(1, select("#", nn.MaxPool2d(2)(x)))
    end)
    it("AvgPool2d takes divisor_override", function()
        local y = nn.AvgPool2d(2, {divisor_override = 3})(tide.tensor({{{{1, 2}, {3, 6}}}}))
        assert.are.same({{{{4}}}}, y:totable()) -- (1 + 2 + 3 + 6) / 3
        assert.matches("AvgPool2d.*divisor_override must be an integer",
            H.error_of(nn.AvgPool2d, 2, {divisor_override = 1.5}))
    end)
    it("AdaptiveMaxPool1d returns the functional form's values and indices", function()
        tide.manual_seed(6)
        local x = tide.randn({2, 3, 10})
        local y, i = nn.AdaptiveMaxPool1d(4, {return_indices = true})(x)
        local fy, fi = F.adaptive_max_pool1d(x, 4, {return_indices = true})
        assert.is_true(H.same_values(fy, y))
        assert.is_true(H.same_values(fi, i))
        assert.are.same({{{3, 2}}}, nn.AdaptiveMaxPool1d(2)(tide.tensor({{{1, 3, 2, 0}}})):totable())
        assert.matches("adaptive_max_pool1d.*input must be %(N, C, L%) or %(C, L%), got 4D",
            H.error_of(F.adaptive_max_pool1d, tide.randn{1, 2, 3, 4}, 2))
        assert.matches("AdaptiveMaxPool1d.*unknown option 'indices'",
            H.error_of(nn.AdaptiveMaxPool1d, 2, {indices = true}))
    end)
    it("AdaptiveMaxPool2d and MaxUnpool2d round trip", function()
        local x = tide.tensor({{{{1, 2}, {3, 4}}}})
        local y, i = F.max_pool2d(x, 2, {return_indices = true})
        local u = nn.MaxUnpool2d(2)(y, i)
        assert.are.same({{{{0, 0}, {0, 4}}}}, u:totable())
        assert.are.same({{{{4}}}}, nn.AdaptiveMaxPool2d(1)(x):totable())
    end)
    it("state_dict keys are PyTorch's", function()
        assert.are.same({"weight", "bias"}, nn.GroupNorm(2, 4):state_dict_keys())
        assert.are.same({}, nn.GroupNorm(2, 4, {affine = false}):state_dict_keys())
        assert.are.same({"weight", "bias", "running_mean", "running_var", "num_batches_tracked"},
            nn.InstanceNorm2d(3, {affine = true, track_running_stats = true}):state_dict_keys())
        assert.are.same({}, nn.InstanceNorm2d(3):state_dict_keys())
        assert.are.same({"weight"}, nn.EmbeddingBag(5, 2):state_dict_keys())
    end)
end)

describe("normpool errors", function()
    local function err(fn, ...) return H.error_of(fn, ...) end
    it("names the function, the argument and the problem", function()
        local x = tide.randn({2, 6, 4})
        assert.matches("group_norm.*num_groups.*divide", err(F.group_norm, x, 4))
        assert.matches("group_norm.*weight must have shape %(6%)", err(F.group_norm, x, 3, {weight = tide.ones{3}}))
        assert.matches("unknown option 'foo'", err(F.instance_norm, x, {foo = 1}))
        assert.matches("num_channels %(6%) must be divisible by num_groups %(4%)", err(nn.GroupNorm, 4, 6))
        assert.matches("max_pool1d.*input must be", err(F.max_pool1d, tide.randn({2, 3, 4, 5}), 2))
        assert.matches("divisor_override must be a positive integer",
            err(F.avg_pool2d, tide.randn({1, 1, 4, 4}), 2, {divisor_override = 0}))
        assert.matches("adaptive_max_pool2d.*output_size",
            err(F.adaptive_max_pool2d, tide.randn({1, 1, 4, 4}), {0, 2}))
        local y, i = F.max_pool2d(tide.randn({1, 1, 4, 4}), 2, {return_indices = true})
        assert.matches("max_unpool2d.*outside the 2x2 output plane", err(F.max_unpool2d, y, i, 1))
        assert.matches("max_unpool2d.*output_size", err(F.max_unpool2d, y, i, 2, {output_size = {9, 9}}))
    end)
    it("embedding_bag refuses what it does not support and bad bags", function()
        local w, input = tide.randn({5, 2}), tide.tensor({0, 1, 2}, "int64")
        local off = tide.tensor({0, 2}, "int64")
        assert.matches("embedding_bag.*'max_norm' is not supported",
            err(F.embedding_bag, input, w, {offsets = off, max_norm = 1}))
        assert.matches("EmbeddingBag.*'sparse' is not supported", err(nn.EmbeddingBag, 5, 2, {sparse = true}))
        assert.matches("per_sample_weights are only supported with mode = \"sum\"",
            err(F.embedding_bag, input, w, {offsets = off, per_sample_weights = tide.ones{3}}))
        assert.matches("index 7 at position 1 is out of range for 5 embeddings",
            err(F.embedding_bag, tide.tensor({0, 7}, "int64"), w, {offsets = tide.tensor({0}, "int64")}))
        assert.matches("offsets%[0%] must be 0", err(F.embedding_bag, input, w, {offsets = tide.tensor({1}, "int64")}))
        assert.matches("offsets are needed", err(F.embedding_bag, input, w))
    end)
end)
