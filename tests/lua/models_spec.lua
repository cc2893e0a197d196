-- tide.models: parameter counts, parameter names and state_dict keys equal
-- to PyTorch's (torchvision's architectures rebuilt in plain torch.nn by
-- tests/reference/gen_nn.py), the printed tree, options, and a forward and
-- backward pass where the layer functions exist.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"

local ref = cjson.decode(H.read_file("tests/reference/nn.json"))

local function build(call)
    local opts = {}
    for k, v in pairs(call.opts) do opts[k] = H.ints(v) end
    return tide.models[call.name](opts)
end

local function label(call)
    local keys = {}
    for k, v in pairs(call.opts) do keys[#keys + 1] = k .. "=" .. cjson.encode(v) end
    table.sort(keys)
    return call.name .. "{" .. table.concat(keys, ", ") .. "}"
end

describe("tide.models", function()
    it("are found from the source tree, lazily", function()
        assert.is_nil(rawget(tide.models, "smallcnn"))
        assert.are.equal("function", type(tide.models.smallcnn))
        assert.is_nil(tide.models.no_such_model)
    end)

    -- torchvision's published counts, at 1000 classes
    local published = {resnet18 = 11689512, resnet34 = 21797672, resnet50 = 25557032}

    for _, m in ipairs(ref.models) do
        it(label(m.call) .. " has PyTorch's parameters and state_dict keys", function()
            local model = build(m.call)
            assert.are.equal(math.tointeger(m.num_parameters), model:num_parameters())
            if published[m.call.name] and next(m.call.opts) == nil then
                assert.are.equal(published[m.call.name], model:num_parameters())
            end
            local pnames = {}
            for name in model:named_parameters() do pnames[#pnames + 1] = name end
            assert.are.same(m.parameter_names, pnames)
            assert.are.same(m.state_dict_keys, model:state_dict_keys())
            local sd = model:state_dict()
            for i, key in ipairs(m.state_dict_keys) do
                assert.are.same(H.ints(m.state_dict_shapes[i]), sd[key]:shape(), key)
            end
            if m["repr"] then assert.are.equal(m["repr"], tostring(model)) end
        end)
    end

    it("mlp takes the sizes as a list or as sizes = {...}", function()
        local a = tide.models.mlp{784, 256, 10}
        local b = tide.models.mlp{sizes = {784, 256, 10}}
        assert.are.equal(784 * 256 + 256 + 256 * 10 + 10, a:num_parameters())
        assert.are.equal(a:num_parameters(), b:num_parameters())
        local y = a(tide.randn({5, 1, 28, 28}))
        assert.are.same({5, 10}, y:shape())
    end)

    it("check their options", function()
        assert.matches("bad argument #1 to 'smallcnn' %(unknown option 'classes'",
                       H.error_of(tide.models.smallcnn, {classes = 3}))
        assert.matches("bad argument #1 to 'resnet18' %(stem must be \"imagenet\" or \"cifar\"",
                       H.error_of(tide.models.resnet18, {stem = "tiny"}))
        assert.matches("bad argument #1 to 'resnet50' %(num_classes must be a positive integer",
                       H.error_of(tide.models.resnet50, {num_classes = 0}))
        assert.matches("bad argument #1 to 'mlp' %(sizes must list", H.error_of(tide.models.mlp, {784}))
        assert.matches("bad argument #1 to 'mlp' %(size 2 is", H.error_of(tide.models.mlp, {784, 0, 10}))
    end)

    it("smallcnn runs forward and backward, with a binary head too", function()
        for _, f in ipairs({"conv2d", "batch_norm", "max_pool2d", "adaptive_avg_pool2d"}) do
            if not tide.F[f] then pending("tide.F." .. f .. " is not in this build yet") return end
        end
        tide.manual_seed(3)
        local model = tide.models.smallcnn()
        local x = tide.randn({4, 1, 28, 28})
        local y = model(x)
        assert.are.same({4, 10}, y:shape())
        tide.F.cross_entropy(y, tide.tensor({0, 1, 2, 3}, "int64")):backward()
        for name, p in model:named_parameters() do
            assert.is_not_nil(p.grad, name)
            assert.are.same(p:shape(), p.grad:shape(), name)
        end
        local bin = tide.models.smallcnn{num_classes = 1, in_channels = 3}
        local logit = bin(tide.randn({2, 3, 32, 32}))
        assert.are.same({2, 1}, logit:shape())
        tide.F.binary_cross_entropy_with_logits(logit, tide.tensor({{1}, {0}})):backward()
        assert.is_not_nil(bin:parameters()[1].grad)
    end)

    it("resnet18 with the cifar stem runs forward", function()
        for _, f in ipairs({"conv2d", "batch_norm", "adaptive_avg_pool2d"}) do
            if not tide.F[f] then pending("tide.F." .. f .. " is not in this build yet") return end
        end
        local model = tide.models.resnet18{num_classes = 10, stem = "cifar"}
        model:evaluate()
        local y = model(tide.randn({1, 3, 32, 32}))
        assert.are.same({1, 10}, y:shape())
    end)
end)
