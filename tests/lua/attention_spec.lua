-- Attention: F.scaled_dot_product_attention (the fused kernel) against
-- softmax(q k^T / sqrt(E) + mask) v computed by PyTorch in float64, and
-- nn.MultiheadAttention, nn.TransformerEncoderLayer,
-- nn.TransformerDecoderLayer and nn.TransformerEncoder against PyTorch 1.13
-- with its weights (tests/reference/attention.json, from
-- tests/reference/gen_attention.py): outputs, attention weights, input and
-- parameter gradients. Then gradcheck in float64, dropout, the bits at
-- any thread count, memory that grows linearly in the sequence length,
-- and the errors.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local F = tide.F
local nn = tide.nn

local data = cjson.decode(H.read_file("tests/reference/attention.json"))
local TIDE = arg and arg[-1] or "tide"

local function tensor(spec, grad)
    local t = H.tensor(H.decode_spec(spec))
    if grad then t.requires_grad = true end
    return t
end

local function tol(spec)
    if spec.dtype == "float32" then return 2e-4, 2e-5 end
    return 1e-9, 1e-10
end

local function check(t, spec, label)
    local rtol, atol = tol(spec)
    H.check_tensor(t, H.decode_spec(spec), rtol, atol, label)
end

describe("scaled_dot_product_attention against PyTorch's definition", function()
    for _, c in ipairs(data.sdpa) do
        it(c.name, function()
            local q, k, v = tensor(c.q, true), tensor(c.k, true), tensor(c.v, true)
            local mask = c.attn_mask ~= cjson.null and tensor(c.attn_mask) or nil
            local out = F.scaled_dot_product_attention(q, k, v, {attn_mask = mask, is_causal = c.is_causal})
            check(out, c.output, "output")
            ;(out * tensor(c.weight)):sum():backward()
            check(q.grad, c.grads.q, "grad q")
            check(k.grad, c.grads.k, "grad k")
            check(v.grad, c.grads.v, "grad v")
        end)
    end
end)

-- a tide module built as the case's PyTorch one, holding its weights
local function build(c)
    local opts = H.from_json(c.options)
    opts.dtype = "float64"
    local args = H.ints(c.args)
    local m
    if c.kind == "TransformerEncoder" then
        local layer = nn.TransformerEncoderLayer(args[1], args[2], opts)
        m = nn.TransformerEncoder(layer, 2, {norm = nn.LayerNorm(args[1], {dtype = "float64"})})
    else
        m = nn[c.kind](args[1], args[2], opts)
    end
    local sd = {}
    for key, spec in pairs(c.state_dict) do sd[key] = tensor(spec) end
    m:load_state_dict(sd)
    return m
end

describe("attention modules against PyTorch 1.13", function()
    for _, c in ipairs(data.modules) do
        it(c.name, function()
            local m = build(c)
            local want, got = {}, {}
            for key in pairs(c.state_dict) do want[#want + 1] = key end
            for _, key in ipairs(m:state_dict_keys()) do got[#got + 1] = key end
            table.sort(want)
            table.sort(got)
            assert.are.same(want, got)
            local ins = {}
            for i, spec in ipairs(c.inputs) do ins[i] = tensor(spec, true) end
            local fo = {}
            for key, v in pairs(c.forward_options) do
                fo[key] = type(v) == "table" and tensor(v) or v
            end
            local args = {table.unpack(ins)}
            args[#args + 1] = fo
            local out, weights = m(table.unpack(args))
            check(out, c.output, "output")
            local s = (out * tensor(c.weight)):sum()
            if c.weights then
                check(weights, c.weights, "attention weights")
                s = s + (weights * tensor(c.weight2)):sum()
            else
                assert.is_nil(weights)
            end
            s:backward()
            for i, spec in ipairs(c.input_grads) do check(ins[i].grad, spec, "grad of input " .. i) end
            for name, p in m:named_parameters() do
                assert.is_not_nil(c.grads[name], "no reference gradient for " .. name)
                check(p.grad, c.grads[name], "grad " .. name)
            end
        end)
    end
end)

describe("attention gradcheck (float64)", function()
    local function d(shape) return tide.randn(shape, {dtype = "float64", requires_grad = true}) end
    before_each(function() tide.manual_seed(11) end)

    it("plain, L != S and Ev != E", function()
        assert.is_true(tide.gradcheck(function(q, k, v) return F.scaled_dot_product_attention(q, k, v) end,
                                      {d {2, 3, 4}, d {2, 5, 4}, d {2, 5, 3}}))
    end)
    it("bool mask broadcast over heads, causal", function()
        local mask = tide.rand({2, 1, 4, 4}):gt(0.4)
        for i = 0, 1 do for j = 0, 3 do mask:set(1, i, 0, j, 0) end end
        assert.is_true(tide.gradcheck(function(q, k, v)
            return F.scaled_dot_product_attention(q, k, v, {attn_mask = mask})
        end, {d {2, 2, 4, 3}, d {2, 2, 4, 3}, d {2, 2, 4, 3}}))
        assert.is_true(tide.gradcheck(function(q, k, v)
            return F.scaled_dot_product_attention(q, k, v, {is_causal = true})
        end, {d {1, 2, 5, 3}, d {1, 2, 5, 3}, d {1, 2, 5, 2}}))
    end)
    it("float mask", function()
        local mask = tide.randn({3, 4}, {dtype = "float64"})
        assert.is_true(tide.gradcheck(function(q, k, v)
            return F.scaled_dot_product_attention(q, k, v, {attn_mask = mask})
        end, {d {2, 3, 2}, d {2, 4, 2}, d {2, 4, 2}}))
    end)
    it("with dropout (the same mask at each call of one seed)", function()
        assert.is_true(tide.gradcheck(function(q, k, v)
            tide.manual_seed(5)
            return F.scaled_dot_product_attention(q, k, v, {dropout_p = 0.3})
        end, {d {2, 4, 3}, d {2, 6, 3}, d {2, 6, 3}}))
    end)
    it("MultiheadAttention through the fused kernel", function()
        local m = nn.MultiheadAttention(4, 2, {dtype = "float64", batch_first = true})
        local kpm = tide.tensor({{0, 0, 1}, {0, 0, 0}}, "uint8")
        assert.is_true(tide.gradcheck(function(x, y)
            return (m(x, y, y, {key_padding_mask = kpm, need_weights = false}))
        end, {d {2, 2, 4}, d {2, 3, 4}}))
    end)
end)

describe("scaled_dot_product_attention", function()
    local function ref(q, k, v)
        return (q:matmul(k:transpose(-2, -1)) / math.sqrt(q:size(-1))):softmax(-1):matmul(v)
    end

    it("float32 matches float64 across several tiles", function()
        tide.manual_seed(3)
        local q, k, v = tide.randn({2, 2, 200, 32}), tide.randn({2, 2, 300, 32}), tide.randn({2, 2, 300, 16})
        local o = F.scaled_dot_product_attention(q, k, v)
        local r = ref(q:double(), k:double(), v:double())
        assert.is_true(((o:double() - r):abs():max():item()) < 1e-5)
    end)

    it("gives the same bits at 1 and 2 threads", function()
        tide.manual_seed(4)
        local q = tide.randn({2, 4, 130, 16}, {requires_grad = true})
        local k, v = tide.randn({2, 4, 150, 16}), tide.randn({2, 4, 150, 16})
        local n = tide.get_num_threads()
        local function run(t)
            tide.set_num_threads(t)
            q.grad = nil
            tide.manual_seed(9)
            local o = F.scaled_dot_product_attention(q, k, v, {dropout_p = 0.2})
            o:sum():backward()
            return o, q.grad
        end
        local o1, g1 = run(1)
        local o2, g2 = run(2)
        tide.set_num_threads(n)
        assert.is_true(H.same_values(o1, o2))
        assert.is_true(H.same_values(g1, g2))
    end)

    it("drops probabilities: p = 1 gives zeros, and the mean keeps its scale", function()
        tide.manual_seed(6)
        local q, k = tide.randn({1, 64, 8}), tide.randn({1, 256, 8})
        local v = tide.ones({1, 256, 4})
        local z = F.scaled_dot_product_attention(q, k, v, {dropout_p = 1})
        assert.are.equal(0, z:abs():max():item())
        -- with v = 1 each output is the sum of the kept probabilities / (1 - p)
        local o = F.scaled_dot_product_attention(q, k, v, {dropout_p = 0.5})
        local mean = o:mean():item()
        assert.is_true(math.abs(mean - 1) < 0.1, "mean " .. mean)
        assert.is_true(o:max():item() > 1.01)
        tide.manual_seed(7)
        local a = F.scaled_dot_product_attention(q, k, v, {dropout_p = 0.5})
        tide.manual_seed(7)
        local b = F.scaled_dot_product_attention(q, k, v, {dropout_p = 0.5})
        assert.is_true(H.same_values(a, b))
    end)

    it("a row with no key gives NaN, as the unfused softmax", function()
        local q, k, v = tide.randn({1, 2, 2}), tide.randn({1, 3, 2}), tide.randn({1, 3, 2})
        local mask = tide.tensor({{1, 0, 1}, {0, 0, 0}}, "uint8")
        local o = F.scaled_dot_product_attention(q, k, v, {attn_mask = mask})
        local r = o:totable()
        assert.is_true(r[1][1][1] == r[1][1][1])
        assert.is_true(r[1][2][1] ~= r[1][2][1])
    end)

    it("needs memory linear in the sequence length (L = 1024 vs 4096)", function()
        -- each length in its own process, so the peak is that call's
        local code = [[
            local tide = require "tide"
            local L = tonumber(os.getenv("ATTN_L"))
            local base = tide.memory().live
            local q = tide.randn({1, 2, L, 16}, {requires_grad = true})
            local k, v = tide.randn({1, 2, L, 16}), tide.randn({1, 2, L, 16})
            local o = tide.F.scaled_dot_product_attention(q, k, v, {is_causal = true})
            o:sum():backward()
            io.write(tide.memory().peak - base)
        ]]
        local function peak(l)
            local p = assert(io.popen("ATTN_L=" .. l .. " " .. H.sh(TIDE) .. " -e " .. H.sh(code)))
            local s = p:read("a")
            p:close()
            return assert(tonumber(s), "child printed: " .. s)
        end
        local small, big = peak(1024), peak(4096)
        local ratio = big / small
        assert.is_true(ratio > 3 and ratio < 5, string.format("peak %d vs %d bytes: ratio %.2f", small, big, ratio))
        -- the L x S scores alone would be 2 * 4096^2 floats
        assert.is_true(big < 2 * 4096 * 4096 * 4 / 4)
    end)

    it("rejects bad arguments with the function, the argument and the problem", function()
        local q, k, v = tide.randn({2, 3, 4}), tide.randn({2, 5, 4}), tide.randn({2, 5, 3})
        local sdpa = F.scaled_dot_product_attention
        local function err(...) return H.error_of(sdpa, ...) end
        assert.matches("bad argument #2 to 'scaled_dot_product_attention'.*key's last dim",
                       err(q, tide.randn({2, 5, 3}), v))
        assert.matches("#3 .*value must have as many rows as key", err(q, k, tide.randn({2, 4, 3})))
        assert.matches("#2 .*leading dims", err(q, tide.randn({3, 5, 4}), v))
        assert.matches("#2 .*key must be float32 like query", err(q, k:double(), v))
        assert.matches("#4 .*attn_mask %(3,4%) does not broadcast", err(q, k, v, {attn_mask = tide.ones({3, 4})}))
        assert.matches("#4 .*attn_mask must be uint8", err(q, k, v, {attn_mask = tide.ones({3, 5}):double()}))
        assert.matches("#4 .*is_causal", err(q, k, v, {attn_mask = tide.ones({3, 5}), is_causal = true}))
        assert.matches("#4 .*dropout_p must be in %[0, 1%]", err(q, k, v, {dropout_p = 1.5}))
        assert.matches("#4 .*scale", err(q, k, v, {scale = 2}))
        assert.matches("#1 .*at least 2 dims", err(tide.randn({4}), k, v))
    end)
end)

describe("attention modules", function()
    it("follow PyTorch's parameter names and shapes", function()
        local m = nn.MultiheadAttention(8, 2, {kdim = 3, vdim = 5, add_bias_kv = true})
        assert.are.same({"q_proj_weight", "k_proj_weight", "v_proj_weight", "in_proj_bias", "bias_k", "bias_v",
                         "out_proj.weight", "out_proj.bias"}, m:state_dict_keys())
        assert.are.same({8, 3}, m.k_proj_weight:shape())
        local e = nn.TransformerDecoderLayer(8, 2)
        assert.are.same({"self_attn.in_proj_weight", "self_attn.in_proj_bias", "self_attn.out_proj.weight",
                         "self_attn.out_proj.bias", "multihead_attn.in_proj_weight", "multihead_attn.in_proj_bias",
                         "multihead_attn.out_proj.weight", "multihead_attn.out_proj.bias", "linear1.weight",
                         "linear1.bias", "linear2.weight", "linear2.bias", "norm1.weight", "norm1.bias",
                         "norm2.weight", "norm2.bias", "norm3.weight", "norm3.bias"}, e:state_dict_keys())
        assert.are.same({2048, 8}, e.linear1.weight:shape())
    end)

    it("give the same output with and without the weights (fused and materialised paths)", function()
        tide.manual_seed(2)
        local m = nn.MultiheadAttention(16, 4, {batch_first = true})
        local x, y = tide.randn({3, 7, 16}), tide.randn({3, 9, 16})
        local kpm = tide.zeros({3, 9}, {dtype = "uint8"})
        kpm:set(1, 0, 8)
        local a, w = m(x, y, y, {key_padding_mask = kpm})
        local b = m(x, y, y, {key_padding_mask = kpm, need_weights = false})
        assert.are.same({3, 7, 9}, w:shape())
        assert.is_true((a - b):abs():max():item() < 1e-5)
        -- self-attention takes one packed projection
        local c = m(x, x, x, {need_weights = false})
        local d = m(x, x:clone(), x:clone(), {need_weights = false})
        assert.is_true((c - d):abs():max():item() < 1e-5)
    end)

    it("train with dropout and stay finite", function()
        tide.manual_seed(8)
        local layer = nn.TransformerEncoderLayer(16, 4, {dim_feedforward = 32, batch_first = true})
        local x = tide.randn({2, 10, 16})
        local y = layer(x)
        y:sum():backward()
        assert.is_true(layer.self_attn.in_proj_weight.grad:isfinite():all():item() ~= 0)
        layer:evaluate()
        local a, b = layer(x), layer(x)
        assert.is_true(H.same_values(a, b))
    end)

    it("reject bad options naming the module and the option", function()
        assert.matches("bad argument #3 to 'MultiheadAttention' %(unknown option 'heads'",
                       H.error_of(nn.MultiheadAttention, 8, 2, {heads = 3}))
        assert.matches("'MultiheadAttention'.*divisible", H.error_of(nn.MultiheadAttention, 8, 3))
        assert.matches("add_zero_attn", H.error_of(nn.MultiheadAttention, 8, 2, {add_zero_attn = true}))
        assert.matches("'TransformerEncoderLayer'.*activation",
                       H.error_of(nn.TransformerEncoderLayer, 8, 2, {activation = "tanh"}))
        local m = nn.MultiheadAttention(8, 2)
        local x = tide.randn({4, 2, 8})
        assert.matches("'MultiheadAttention'.*is_causal", H.error_of(m, x, x, x, {is_causal = true}))
        assert.matches("attn_mask must be %(L, S%)", H.error_of(m, x, x, x, {attn_mask = tide.zeros({3, 4})}))
        assert.matches("key_padding_mask must be %(N, S%)",
                       H.error_of(m, x, x, x, {key_padding_mask = tide.zeros({4, 2}, {dtype = "uint8"})}))
    end)
end)
