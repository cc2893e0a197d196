-- The conv family beyond conv2d, padding and resampling: PyTorch 1.13
-- reference values and gradients (tests/reference/convfam.json, from
-- gen_convfam.py) in float32 (oneDNN for the convolutions) and float64
-- (the direct loops), float64 gradchecks, the float32 path against the
-- float64 one on larger shapes, the modules (init, state_dict keys,
-- repr), and errors that name the function and the argument.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local cjson = require "cjson"
local tide = require "tide"
local F, nn = tide.F, tide.nn

local data = cjson.decode(H.read_file("tests/reference/convfam.json"))

local function opt_copy(t)
    local o = {}
    for k, v in pairs(t) do o[k] = H.ints(v) end
    return o
end

local function tol(spec)
    if spec.dtype == "float64" then return 1e-9, 1e-10 end
    return 1e-4, 1e-4
end

local function leaf(spec)
    if spec == nil or spec == cjson.null then return nil end
    return H.tensor(spec, true)
end

-- runs one reference case: the output, and the gradients of (y * g):sum()
local run = {}
function run.conv(c)
    local x, w, b = leaf(c.input), leaf(c.weight), leaf(c.bias)
    local o = opt_copy(c.options)
    o.bias = b
    return F[c.fn](x, w, o), {input = x, weight = w, bias = b}
end
function run.pad(c)
    local x = leaf(c.input)
    local o = opt_copy(c.options)
    if o.mode ~= "constant" then o.value = nil end
    return F.pad(x, H.ints(c.pad), o), {input = x}
end
function run.interpolate(c)
    local x = leaf(c.input)
    return F.interpolate(x, opt_copy(c.options)), {input = x}
end
function run.shuffle(c)
    local x = leaf(c.input)
    return F[c.fn](x, math.tointeger(c.factor)), {input = x}
end
function run.module(c)
    local args = H.ints(c.args)
    local o = opt_copy(c.options)
    o.dtype = c.input.dtype
    local m = nn[c.module](args[1], args[2], args[3], o)
    assert.are.equal(c.repr, tostring(m))
    tide.no_grad(function()
        m.weight:copy_(H.tensor(c.weight))
        if c.bias ~= cjson.null then m.bias:copy_(H.tensor(c.bias)) end
    end)
    local x = leaf(c.input)
    return m(x), {input = x, weight = m.weight, bias = m.bias}
end

describe("convfam: PyTorch reference", function()
    it("has the cases", function()
        assert.is_true(#data.cases >= 120)
    end)
    for _, c in ipairs(data.cases) do
        it(c.name, function()
            local rtol, atol = tol(c.input)
            local y, leaves = run[c.kind](c)
            H.check_tensor(y, c.output, rtol, atol, "output")
            ;(y * H.tensor(c.grad_output)):sum():backward()
            for key, t in pairs(leaves) do
                local want = c["grad_" .. key]
                if want ~= nil and want ~= cjson.null then
                    H.check_tensor(t.grad, want, rtol, atol, "grad " .. key)
                end
            end
        end)
    end
end)

local function rn(shape)
    local t = tide.randn(shape, {dtype = "float64"})
    t.requires_grad = true
    return t
end

local function gradcheck(fn, inputs, name)
    local ok, res = pcall(tide.gradcheck, fn, inputs)
    assert(ok, "gradcheck raised: " .. tostring(res))
    assert(res == true, name .. ": gradcheck did not pass")
end

describe("convfam: gradcheck (float64)", function()
    tide.manual_seed(5)
    local convs = {
        {"conv1d everything", "conv1d", {2, 4, 9}, {6, 2, 3}, {stride = 2, padding = 2, dilation = 2, groups = 2}},
        {"conv1d same", "conv1d", {1, 2, 6}, {3, 2, 4}, {padding = "same"}},
        {"conv3d", "conv3d", {1, 2, 4, 3, 4}, {3, 2, 2, 2, 3}, {stride = {1, 2, 1}, padding = 1}},
        {"conv3d groups dilation", "conv3d", {1, 4, 5, 4, 4}, {2, 2, 2, 2, 2}, {groups = 2, dilation = 2}},
        {"conv_transpose1d", "conv_transpose1d", {2, 4, 5}, {4, 3, 3},
            {stride = 3, padding = 1, output_padding = 2, groups = 2}},
        {"conv_transpose2d", "conv_transpose2d", {1, 3, 3, 4}, {3, 2, 3, 2},
            {stride = {2, 1}, padding = {1, 0}, output_padding = {1, 0}, dilation = {1, 2}}},
        {"conv_transpose3d", "conv_transpose3d", {1, 2, 2, 3, 2}, {2, 2, 2, 2, 2}, {stride = 2}},
    }
    for _, c in ipairs(convs) do
        it(c[1], function()
            local outs = c[2]:find("transpose") and c[4][2] * (c[5].groups or 1) or c[4][1]
            gradcheck(function(x, w, b)
                local o = {}
                for k, v in pairs(c[5]) do o[k] = v end
                o.bias = b
                return F[c[2]](x, w, o)
            end, {rn(c[3]), rn(c[4]), rn {outs}}, c[1])
        end)
    end
    local pads = {
        {"reflect 2d", {1, 2, 4, 5}, {1, 2, 3, 0}, "reflect"},
        {"replicate 3d", {1, 1, 2, 3, 2}, {1, 2, 0, 1, 2, 1}, "replicate"},
        {"circular 1d", {2, 1, 3}, {3, 1}, "circular"},
        {"constant negative", {2, 3, 4}, {-1, 2, 1, -1}, "constant"},
    }
    for _, c in ipairs(pads) do
        it("pad " .. c[1], function()
            gradcheck(function(x) return F.pad(x, c[3], {mode = c[4]}) end, {rn(c[2])}, c[1])
        end)
    end
    local interps = {
        {"nearest", {1, 2, 3, 4}, {scale_factor = 1.5}},
        {"linear", {1, 2, 5}, {size = 8, mode = "linear"}},
        {"bilinear align_corners", {1, 1, 3, 4}, {size = {5, 3}, mode = "bilinear", align_corners = true}},
        {"bicubic", {1, 1, 4, 4}, {scale_factor = 2, mode = "bicubic"}},
        {"trilinear", {1, 1, 2, 2, 3}, {scale_factor = {2, 1.5, 1}, mode = "trilinear"}},
    }
    for _, c in ipairs(interps) do
        it("interpolate " .. c[1], function()
            gradcheck(function(x) return F.interpolate(x, c[3]) end, {rn(c[2])}, c[1])
        end)
    end
    it("pixel_shuffle and pixel_unshuffle", function()
        gradcheck(function(x) return F.pixel_shuffle(x, 2) end, {rn {1, 4, 2, 3}}, "pixel_shuffle")
        gradcheck(function(x) return F.pixel_unshuffle(x, 2) end, {rn {1, 1, 4, 2}}, "pixel_unshuffle")
    end)
end)

describe("convfam: oneDNN float32 against the direct float64 path", function()
    tide.manual_seed(17)
    local cases = {
        {"conv1d", {4, 16, 50}, {32, 8, 5}, {stride = 2, padding = 3, groups = 2}},
        {"conv3d", {2, 8, 9, 10, 8}, {16, 8, 3, 3, 3}, {padding = 1}},
        {"conv3d strided dilated", {2, 6, 11, 9, 10}, {12, 3, 3, 2, 3}, {stride = 2, dilation = {1, 2, 2}, groups = 2}},
        {"conv_transpose1d", {3, 12, 20}, {12, 8, 4}, {stride = 2, padding = 1, output_padding = 1}},
        {"conv_transpose2d", {2, 16, 9, 9}, {16, 8, 3, 3}, {stride = 2, padding = 1, output_padding = 1}},
        {"conv_transpose2d groups", {2, 8, 7, 6}, {8, 3, 3, 2}, {stride = {1, 2}, groups = 4, dilation = 2}},
    }
    local function rel(a, b)
        local d = (a:double() - b):abs():max():item()
        return d / math.max(b:abs():max():item(), 1e-30)
    end
    for _, c in ipairs(cases) do
        it(c[1], function()
            local x, w = tide.randn(c[2]), tide.randn(c[3]) * 0.2
            local res = {}
            for _, dt in ipairs {"float32", "float64"} do
                local xd, wd = x:to(dt):detach(), w:to(dt):detach()
                xd.requires_grad, wd.requires_grad = true, true
                local y = F[c[1]:match("^%S+")](xd, wd, c[4])
                local g = tide.ones(y:shape(), {dtype = dt})
                ;(y * g):sum():backward()
                res[dt] = {y, xd.grad, wd.grad}
            end
            for i = 1, 3 do
                local r = rel(res.float32[i], res.float64[i])
                assert(r < 1e-5, string.format("%s: tensor %d differs by %g", c[1], i, r))
            end
        end)
    end
end)

describe("convfam: layouts and batches", function()
    it("conv_transpose2d and conv1d read channels-last and strided inputs", function()
        local x = tide.randn {2, 4, 5, 6}
        local w = tide.randn {4, 3, 3, 3}
        local want = F.conv_transpose2d(x, w, {stride = 2})
        local cl = x:contiguous {memory_format = "channels_last"}
        H.assert_close(F.conv_transpose2d(cl, w, {stride = 2}), H.values(want), 1e-6, 1e-6, "channels-last")
        local x1 = tide.randn {3, 2, 7}
        local w1 = tide.randn {4, 3, 2}
        local want1 = F.conv1d(x1:transpose(0, 1):contiguous(), w1)
        H.assert_close(F.conv1d(x1:transpose(0, 1), w1), H.values(want1), 1e-6, 1e-6, "strided")
    end)
    it("an empty batch gives an empty output and zero weight gradients", function()
        local w = rn {3, 2, 2}
        local y = F.conv1d(tide.zeros({0, 2, 5}, {dtype = "float64"}), w)
        assert.are.same({0, 3, 4}, y:shape())
        y:sum():backward()
        assert.are.equal(0, w.grad:abs():sum():item())
    end)
    it("the backward of pad and interpolate is the same on every run", function()
        local x = rn {2, 3, 9, 7}
        local function grads(f)
            x.grad = nil
            local y = f(x)
            ;(y * tide.arange(0, y:numel(), {dtype = "float64"}):reshape(y:shape())):sum():backward()
            return x.grad:clone()
        end
        for _, f in ipairs {
            function(t) return F.pad(t, {3, 3, 2, 2}, {mode = "replicate"}) end,
            function(t) return F.interpolate(t, {scale_factor = 2.5, mode = "bicubic"}) end,
        } do
            assert.is_true(H.same_values(grads(f), grads(f)))
        end
    end)
end)

describe("convfam: deterministic mode", function()
    it("gives float32 weight gradients the same bits at 1 and 2 threads, near float64", function()
        tide.manual_seed(23)
        local x, w = tide.randn {4, 6, 7, 8, 9}, tide.randn {8, 3, 3, 3, 3}
        local function grad()
            local wg = w:clone():requires_grad_(true)
            F.conv3d(x, wg, {groups = 2, padding = 1}):sum():backward()
            return wg.grad
        end
        local was = tide.use_deterministic(true)
        local threads = tide.get_num_threads()
        local ok, err = pcall(function()
            tide.set_num_threads(1)
            local g1 = grad()
            tide.set_num_threads(2)
            local g2 = grad()
            assert.is_true(H.same_values(g1, g2))
            local wd = w:double():requires_grad_(true)
            F.conv3d(x:double(), wd, {groups = 2, padding = 1}):sum():backward()
            H.assert_close(g1:double(), H.values(wd.grad), 1e-6, 1e-6, "against float64")
        end)
        tide.set_num_threads(threads)
        tide.use_deterministic(was)
        assert(ok, err)
    end)
end)

describe("convfam: modules", function()
    it("take PyTorch's weight shapes, init bounds and state_dict keys", function()
        tide.manual_seed(3)
        local m = nn.ConvTranspose1d(4, 6, 3, {groups = 2})
        assert.are.same({4, 3, 3}, m.weight:shape())
        local keys = {}
        for k in pairs(m:state_dict()) do keys[#keys + 1] = k end
        table.sort(keys)
        assert.are.same({"bias", "weight"}, keys)
        -- kaiming_uniform(a = sqrt 5): bound 1 / sqrt(fan_in), fan_in = 3 * 3
        local bound = 1 / math.sqrt(9)
        assert.is_true(m.weight:abs():max():item() <= bound)
        assert.is_true(m.bias:abs():max():item() <= bound)
        local c3 = nn.Conv3d(2, 4, {1, 2, 3}, {bias = false})
        assert.are.same({4, 2, 1, 2, 3}, c3.weight:shape())
        assert.is_nil(c3.bias)
    end)
    it("ConvTranspose2d takes an output_size", function()
        local m = nn.ConvTranspose2d(2, 3, 3, {stride = 2, padding = 1})
        local x = tide.randn {1, 2, 4, 4}
        assert.are.same({1, 3, 7, 7}, m(x):shape())
        assert.are.same({1, 3, 8, 8}, m(x, {8, 8}):shape())
        assert.is_truthy(H.error_of(function() return m(x, {10, 8}) end):find("valid sizes range from 7 to 8"))
    end)
    it("pads, upsamples, shuffles and unflattens", function()
        local x = tide.arange(0, 6, {dtype = "float64"}):reshape {1, 1, 2, 3}
        assert.are.same({0, 0, 0, 0, 0, 0, 1, 2, 0, 3, 4, 5, 0, 0, 0, 0},
            H.values(nn.ZeroPad2d({1, 0, 1, 1})(x)))
        assert.are.same({2, 1, 0, 1, 2, 1, 5, 4, 3, 4, 5, 4}, H.values(nn.ReflectionPad2d({2, 1, 0, 0})(x)))
        assert.are.same({0, 0, 1, 2, 2, 3, 3, 4, 5, 5}, H.values(nn.ReplicationPad1d(1)(x:reshape {1, 2, 3})))
        assert.are.same({7, 0, 1, 2, 7, 3, 4, 5}, H.values(nn.ConstantPad1d({1, 0}, 7)(x:reshape {1, 2, 3})))
        assert.are.same({1, 1, 4, 6}, nn.Upsample({scale_factor = 2})(x):shape())
        assert.are.same({1, 1, 3, 5}, nn.UpsamplingBilinear2d({size = {3, 5}})(x):shape())
        local up = nn.UpsamplingBilinear2d({size = {3, 5}})(x)
        -- align_corners: row 1 of 3 halfway between rows 0 and 1, column 2 of 5 on column 1
        H.assert_close({up:select(2, 1):select(2, 2):item()}, {2.5}, 1e-12, 1e-12, "align_corners centre")
        local s = nn.PixelShuffle(2)(tide.arange(0, 8, {dtype = "float64"}):reshape {1, 4, 1, 2})
        assert.are.same({0, 2, 1, 3, 4, 6, 5, 7}, H.values(s))
        assert.are.same({0, 1, 2, 3, 4, 5, 6, 7}, H.values(nn.PixelUnshuffle(2)(s)))
        assert.are.same({3, 2, 5, 4}, nn.Unflatten(1, {2, -1, 4})(tide.zeros {3, 40}):shape())
        assert.are.equal("Unflatten(dim=1, unflattened_size=(2, -1, 4))", tostring(nn.Unflatten(1, {2, -1, 4})))
        assert.are.equal("Upsample(scale_factor=2.0, mode=bilinear)",
            tostring(nn.Upsample({scale_factor = 2, mode = "bilinear"})))
        assert.are.equal("ConstantPad1d(padding=(2, 2), value=3.5)", tostring(nn.ConstantPad1d(2, 3.5)))
        assert.are.equal("PixelShuffle(upscale_factor=2)", tostring(nn.PixelShuffle(2)))
    end)
end)

describe("convfam: errors", function()
    local x1, w1 = tide.randn {1, 2, 5}, tide.randn {3, 2, 3}
    local function err(fn, ...) return H.error_of(fn, ...) or "no error" end
    local cases = {
        {"conv1d weight dims", function() return F.conv1d(x1, tide.randn {3, 2}) end, "conv1d.*weight must be 3%-dim"},
        {"conv3d input dims", function() return F.conv3d(x1, tide.randn {3, 2, 1, 1, 1}) end,
            "#1 to 'conv3d'.*5%-dim"},
        {"conv1d unknown option", function() return F.conv1d(x1, w1, {padding_mode = "reflect"}) end,
            "conv1d.*padding_mode"},
        {"same with stride", function() return F.conv1d(x1, w1, {padding = "same", stride = 2}) end,
            "not supported for strided"},
        {"bad padding string", function() return F.conv1d(x1, w1, {padding = "full"}) end, "\"full\""},
        {"output_padding too big", function()
            return F.conv_transpose1d(x1, tide.randn {2, 3, 3}, {stride = 2, output_padding = 2})
        end, "conv_transpose1d.*output_padding %(2%) must be smaller"},
        {"transposed weight channels", function()
            return F.conv_transpose2d(tide.randn {1, 2, 3, 3}, tide.randn {3, 2, 2, 2})
        end, "#2 to 'conv_transpose2d'"},
        {"reflect too wide", function() return F.pad(x1, {5, 0}, {mode = "reflect"}) end,
            "#2 to 'pad'.*smaller than the dim"},
        {"pad odd length", function() return F.pad(x1, {1, 2, 3}) end, "#2 to 'pad'.*pairs"},
        {"pad unknown mode", function() return F.pad(x1, {1, 1}, {mode = "wrap"}) end, "#3 to 'pad'.*mode"},
        {"pad value with reflect", function() return F.pad(x1, {1, 1}, {mode = "reflect", value = 1}) end,
            "value is for mode"},
        {"interpolate mode for dims", function() return F.interpolate(x1, {size = 4, mode = "bilinear"}) end,
            "bilinear mode needs a 4D input"},
        {"interpolate align_corners nearest", function()
            return F.interpolate(x1, {size = 4, align_corners = true})
        end, "align_corners can only be set"},
        {"interpolate area", function() return F.interpolate(x1, {size = 4, mode = "area"}) end, "got area"},
        {"interpolate size and scale", function() return F.interpolate(x1, {size = 4, scale_factor = 2}) end,
            "not both"},
        {"interpolate unknown option", function() return F.interpolate(x1, {size = 4, bogus = 1}) end, "bogus"},
        {"pixel_shuffle channels", function() return F.pixel_shuffle(tide.randn {1, 3, 2, 2}, 2) end,
            "pixel_shuffle.*divisible"},
        {"ConvTranspose padding_mode", function() return nn.ConvTranspose1d(2, 2, 3, {padding_mode = "reflect"}) end,
            "ConvTranspose1d.*zeros"},
        {"Conv1d padding_mode", function() return nn.Conv1d(2, 2, 3, {padding_mode = "wrap"}) end,
            "#4 to 'Conv1d'.*padding_mode"},
        {"int input", function() return F.conv1d(tide.zeros({1, 2, 5}, {dtype = "int64"}), w1) end,
            "conv1d.*float32 or float64"},
    }
    for _, c in ipairs(cases) do
        it(c[1], function()
            local e = err(c[2])
            assert(e:find(c[3]), "error '" .. e .. "' does not match '" .. c[3] .. "'")
        end)
    end
end)
