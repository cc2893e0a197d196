-- Deterministic mode (tide.use_deterministic): the float32 conv2d weight
-- and bias gradients and float32 matmuls take an order fixed by the shape,
-- so a small conv net trained 20 steps at 1 and at 2 threads ends with the
-- same bits. The fixed-order kernels are also checked against float64 (the
-- direct loops and OpenBLAS) over layouts, groups, strides, dilation and
-- batches on both sides of the 16 chunks the batch is cut into.
package.path = "tests/lua/?.lua;" .. package.path
local H = require "helpers"
local tide = require "tide"
local nn, F = tide.nn, tide.F

local CL = {memory_format = "channels_last"}

-- max |a - b| over max |b|
local function rel_err(a, b)
    local d = (a:double() - b:double()):abs():max():item()
    local s = b:double():abs():max():item()
    return s > 0 and d / s or d
end

local function with_mode(on, fn)
    local was = tide.use_deterministic(on)
    local ok, err = pcall(fn)
    tide.use_deterministic(was)
    if not ok then error(err, 0) end
end

-- the weight and bias gradients of sum(conv2d(x, w, b) * gy), in x's dtype
local function conv_grads(x, w, b, gy, opts)
    local wg = w:clone():requires_grad_(true)
    local bg = b:clone():requires_grad_(true)
    local o = {bias = bg}
    for k, v in pairs(opts) do o[k] = v end
    local loss = (tide.conv2d(x, wg, o) * gy):sum()
    loss:backward()
    return wg.grad, bg.grad
end

describe("tide.use_deterministic", function()
    it("returns the previous setting and is read by is_deterministic", function()
        assert.is_false(tide.is_deterministic())
        assert.is_false(tide.use_deterministic(true))
        assert.is_true(tide.is_deterministic())
        assert.is_true(tide.use_deterministic(false))
        assert.is_false(tide.is_deterministic())
        local err = H.error_of(tide.use_deterministic, 1)
        assert.truthy(err and err:find("use_deterministic", 1, true) and err:find("boolean", 1, true), err)
    end)

    it("gives conv2d weight and bias gradients that match float64", function()
        local cases = {
            {n = 5, c = 3, o = 8, hw = 9, k = 3, opts = {padding = 1}},
            {n = 17, c = 4, o = 6, hw = 8, k = 3, opts = {stride = 2, padding = 1}},
            {n = 40, c = 6, o = 4, hw = 7, k = 3, opts = {groups = 2, padding = 2, dilation = 2}},
            {n = 3, c = 2, o = 3, hw = 6, k = 1, opts = {}},
            {n = 2, c = 8, o = 8, hw = 5, k = 3, opts = {groups = 8, padding = 1}},
            {n = 33, c = 16, o = 32, hw = 10, k = 5, opts = {padding = 2, stride = {1, 2}}},
            -- columns of 2 samples per sgemm in chunks of 3, and of 1
            {n = 48, c = 80, o = 8, hw = 12, k = 3, opts = {padding = 1}},
            {n = 20, c = 32, o = 8, hw = 24, k = 5, opts = {padding = 2}},
        }
        with_mode(true, function()
            for _, cs in ipairs(cases) do
                tide.manual_seed(cs.n)
                local g = cs.opts.groups or 1
                local x = tide.randn({cs.n, cs.c, cs.hw, cs.hw})
                local w = tide.randn({cs.o, cs.c // g, cs.k, cs.k})
                local b = tide.randn({cs.o})
                local y = tide.conv2d(x, w, {bias = b, padding = cs.opts.padding, stride = cs.opts.stride,
                                             dilation = cs.opts.dilation, groups = cs.opts.groups})
                local gy = tide.randn(y:shape())
                local rw, rb = conv_grads(x:double(), w:double(), b:double(), gy:double(), cs.opts)
                -- every layout pair the float32 kernel takes: x and gy
                -- each contiguous or channels-last
                for _, lay in ipairs({{false, false}, {true, false}, {false, true}, {true, true}}) do
                    local xl = lay[1] and x:contiguous(CL) or x
                    local gl = lay[2] and gy:contiguous(CL) or gy
                    local gw, gb = conv_grads(xl, w, b, gl, cs.opts)
                    local label = string.format("n=%d c=%d o=%d k=%d groups=%d x_cl=%s gy_cl=%s", cs.n, cs.c,
                                                cs.o, cs.k, g, tostring(lay[1]), tostring(lay[2]))
                    assert(rel_err(gw, rw) < 1e-5, label .. ": weight gradient off by " .. rel_err(gw, rw))
                    assert(rel_err(gb, rb) < 1e-5, label .. ": bias gradient off by " .. rel_err(gb, rb))
                end
            end
        end)
    end)

    it("gives matmuls that match float64, over several tiles and batches", function()
        with_mode(true, function()
            for _, cs in ipairs({{300, 520, 70}, {1, 700, 33}, {257, 3, 1000}, {4, 2, 5}}) do
                local m, n, k = cs[1], cs[2], cs[3]
                local a, b = tide.randn({m, k}), tide.randn({k, n})
                local r = rel_err(a:matmul(b), a:double():matmul(b:double()))
                assert(r < 1e-5, string.format("(%d, %d) x (%d, %d): off by %g", m, k, k, n, r))
                -- transposed operands and a batch of 3
                local at, bt = tide.randn({3, k, m}):transpose(1, 2), tide.randn({3, n, k}):transpose(1, 2)
                r = rel_err(at:matmul(bt), at:double():matmul(bt:double()))
                assert(r < 1e-5, string.format("batched transposed (%d, %d, %d): off by %g", m, n, k, r))
            end
        end)
    end)

    it("gives the same bits at 1 and 2 threads where oneDNN's split shows", function()
        -- shapes whose default results differ between 1 and 2 threads on
        -- the machines tide was measured on: a weight gradient summed over
        -- a batch of 128, and a product with k = 1024
        local threads = tide.get_num_threads()
        tide.manual_seed(11)
        local x, w = tide.randn({128, 64, 14, 14}), tide.randn({64, 64, 3, 3})
        local gy = tide.randn({128, 64, 14, 14})
        local a, b = tide.randn({512, 1024}), tide.randn({1024, 1024})
        with_mode(true, function()
            local got = {}
            for t = 1, 2 do
                tide.set_num_threads(t)
                local gw, gb = conv_grads(x, w, tide.zeros({64}), gy, {padding = 1})
                got[t] = {gw, gb, a:matmul(b)}
            end
            tide.set_num_threads(threads)
            for i, what in ipairs({"conv2d weight gradient", "conv2d bias gradient", "matmul"}) do
                local same, where = H.same_values(got[1][i], got[2][i])
                assert(same, what .. " differs between 1 and 2 threads: " .. tostring(where))
            end
        end)
        tide.set_num_threads(threads)
    end)

    it("trains a small conv net 20 steps to the same bits at 1 and at 2 threads", function()
        local function run(threads)
            tide.set_num_threads(threads)
            tide.manual_seed(7)
            local m = nn.Sequential(
                nn.Conv2d(3, 16, 3, {padding = 1}), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
                nn.Conv2d(16, 32, 3, {padding = 1, stride = 2}), nn.ReLU(), nn.Dropout{p = 0.1},
                nn.Conv2d(32, 32, 3, {padding = 1, groups = 2}), nn.ReLU(),
                nn.Flatten(), nn.Linear(32 * 4 * 4, 256), nn.ReLU(), nn.Linear(256, 10))
            local opt = tide.optim.SGD(m:parameters(), {lr = 0.05, momentum = 0.9})
            local x = tide.randn({64, 3, 16, 16})
            local y = tide.randint(0, 10, {64}):long()
            local losses = {}
            for i = 1, 20 do
                opt:zero_grad()
                local loss = F.cross_entropy(m(x), y)
                loss:backward()
                opt:step()
                losses[i] = loss:item()
            end
            return m:state_dict(), losses
        end
        local threads = tide.get_num_threads()
        with_mode(true, function()
            local a, la = run(1)
            local b, lb = run(2)
            tide.set_num_threads(threads)
            assert(la[20] < la[1], "the loss went down")
            assert.same(la, lb)
            local n = 0
            for k, v in pairs(a) do
                local same, where = H.same_values(v, b[k])
                assert(same, k .. " differs between 1 and 2 threads: " .. tostring(where))
                n = n + 1
            end
            assert.equal(15, n)
        end)
        tide.set_num_threads(threads)
    end)
end)
