-- Autograd from Lua: leaves and their .grad, backward with and without a
-- gradient, retain_graph, detach, no_grad, and the errors of misuse.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"

local function leaf(values)
    return tide.tensor(values, { dtype = "float64", requires_grad = true })
end

describe("autograd", function()
    it("hand-computed gradient: d/dx sum(x^2 * 3) = 6x", function()
        local x = leaf({ 1, -2, 0.5 })
        local y = (x ^ 2 * 3):sum()
        assert.are.equal(3 * (1 + 4 + 0.25), y:item())
        y:backward()
        H.assert_close(x.grad, { 6, -12, 3 })
    end)

    it("gradients through a product rule and a shared input", function()
        -- f = sum(a * b + a), df/da = b + 1, df/db = a
        local a, b = leaf({ 1, 2 }), leaf({ 3, -4 })
        local f = (a * b + a):sum()
        f:backward()
        H.assert_close(a.grad, { 4, -3 })
        H.assert_close(b.grad, { 1, 2 })
        -- f = sum(exp(x) * x): exp(x) (1 + x)
        local x = leaf({ 0, 1 })
        local _ = (x:exp() * x):sum():backward()
        H.assert_close(x.grad, { 1, 2 * math.exp(1) })
    end)

    it("requires_grad flags, leaf and non-leaf", function()
        local x = leaf({ 1, 2 })
        local c = tide.tensor({ 1, 2 }, "float64")
        assert.is_true(x.requires_grad)
        assert.is_false(c.requires_grad)
        local y = x * 2
        assert.is_true(y.requires_grad)
        assert.is_false((c * 2).requires_grad)
        assert.is_true(x.is_leaf)
        assert.is_false(y.is_leaf)
        assert.is_true(c.is_leaf)
        c.requires_grad = true
        assert.is_true(c.requires_grad)
        c.requires_grad = false
        assert.is_false(c.requires_grad)
    end)

    it(".grad accumulates across two backwards, and can be reset", function()
        local x = leaf({ 1, 2, 3 })
        local _ = (x * 2):sum():backward()
        H.assert_close(x.grad, { 2, 2, 2 })
        local _ = (x * x):sum():backward()
        H.assert_close(x.grad, { 4, 6, 8 })
        x.grad = nil
        assert.is_nil(x.grad)
        local _ = (x * 3):sum():backward()
        H.assert_close(x.grad, { 3, 3, 3 })
        x:zero_grad()
        assert.is_true(x.grad == nil or x.grad:abs():sum():item() == 0)
    end)

    it("backward of a non-scalar needs a gradient argument", function()
        local x = leaf({ 1, 2, 3 })
        local y = x * x
        local ok, err = pcall(function() y:backward() end)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("backward", 1, true), tostring(err))
        y = x * x
        y:backward(tide.tensor({ 1, 0.5, -1 }, "float64"))
        H.assert_close(x.grad, { 2, 2, -6 })
    end)

    it("a second backward without retain_graph errors clearly; with it works", function()
        local x = leaf({ 1, 2 })
        local y = (x:exp()):sum()
        y:backward()
        local ok, err = pcall(function() y:backward() end)
        assert.is_false(ok)
        err = tostring(err)
        assert.truthy(err:find("retain_graph", 1, true) or err:find("second time", 1, true)
            or err:find("freed", 1, true), err)

        local z = leaf({ 1, 2 })
        local w = (z:exp()):sum()
        w:backward(nil, { retain_graph = true })
        w:backward()
        H.assert_close(z.grad, { 2 * math.exp(1), 2 * math.exp(2) })
    end)

    it("detach cuts the graph and shares storage", function()
        local x = leaf({ 1, 2 })
        local d = x:detach()
        assert.is_false(d.requires_grad)
        assert.is_true(d.is_leaf)
        d:set(5, 0)
        assert.are.equal(5, x:get(0))
        -- gradient flows only through the attached factor
        local y = (x * x:detach()):sum()
        y:backward()
        H.assert_close(x.grad, { 5, 2 })
    end)

    it("no_grad records no graph and restores the mode", function()
        local x = leaf({ 1, 2 })
        local y
        local r = tide.no_grad(function()
            y = x * 2
            return 42
        end)
        assert.are.equal(42, r)
        assert.is_false(y.requires_grad)
        assert.is_true((x * 2).requires_grad)
    end)

    it("no_grad restores the mode when the function errors", function()
        local x = leaf({ 1, 2 })
        local ok, err = pcall(tide.no_grad, function() error("boom") end)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("boom", 1, true))
        assert.is_true((x * 2).requires_grad)
        -- and nested no_grad restores the outer state
        tide.no_grad(function()
            tide.no_grad(function() end)
            assert.is_false((x * 2).requires_grad)
        end)
        assert.is_true((x * 2).requires_grad)
    end)

    it("grad of a non-leaf is nil", function()
        local x = leaf({ 1, 2 })
        local y = x * 3
        y:sum():backward()
        assert.is_nil(y.grad)
        H.assert_close(x.grad, { 3, 3 })
    end)

    it("in-place change of a saved tensor gives a clear error on backward", function()
        local x = leaf({ 1, 2 })
        local a = x * 1
        local y = (a * a):sum() -- saves a
        a:mul_(2)
        local ok, err = pcall(function() y:backward() end)
        assert.is_false(ok)
        err = tostring(err)
        assert.truthy(err:find("in-place", 1, true) or err:find("inplace", 1, true)
            or err:find("modified", 1, true), err)
    end)

    it("in-place change of a saved output (exp saves its result) is caught", function()
        local x = leaf({ 0.5, 1 })
        local y = x:exp()
        local s = y:sum() -- sum saves nothing; exp saved y
        y:add_(1)
        local ok, err = pcall(function() s:backward() end)
        assert.is_false(ok)
        assert.truthy(tostring(err):find("in-place", 1, true), tostring(err))
    end)

    it("in-place on a non-leaf that nothing saved is fine", function()
        -- as PyTorch: mul saves its inputs, not its output
        local x = leaf({ 1, 2 })
        local y = x * 2
        y:add_(1)
        assert.are.same({ 3, 5 }, y:totable())
        y:sum():backward()
        H.assert_close(x.grad, { 2, 2 })
        -- and (x + 1) * 3 written in place
        local z = leaf({ 1, 2 })
        local u = z + 1
        u:mul_(3)
        u:sum():backward()
        H.assert_close(z.grad, { 3, 3 })
    end)

    it("the gradient of a float32 leaf is float32", function()
        local x = tide.tensor({ 1, 2 }, { requires_grad = true })
        local s = (x * x):sum()
        s:backward()
        assert.are.equal("float32", x.grad:dtype())
        assert.are.same({ 2, 4 }, x.grad:totable())
    end)

    it("gradients through views reach the base leaf", function()
        local x = leaf({ { 1, 2, 3 }, { 4, 5, 6 } })
        local s = x:t():narrow(0, 1, 2):select(1, 0):sum() -- x[0][1] + x[0][2]
        s:backward()
        H.assert_close(x.grad, { 0, 1, 1, 0, 0, 0 })
    end)

    it("a gradient of the wrong shape is refused", function()
        local x = leaf({ 1, 2, 3 })
        local y = x * 2
        assert.is_false(pcall(function() y:backward(tide.ones({ 2 }, { dtype = "float64" })) end))
    end)

    it("backward frees the saved tensors of the graph at once", function()
        local x = tide.randn({ 1024 * 1024 }, { dtype = "float64", requires_grad = true })
        collectgarbage()
        collectgarbage()
        local s = (x:exp() * 2):sum() -- mul saves exp's 8 MB result
        collectgarbage()
        collectgarbage()
        local held = tide.memory("cpu").live
        s:backward()
        local after = tide.memory("cpu").live
        -- x.grad (8 MB) is new; the saved 8 MB result must have gone
        assert.is_true(after <= held + 1024 * 1024,
            string.format("live bytes %d before backward, %d after", held, after))
    end)

    it("in-place on a leaf that requires grad is refused", function()
        local x = leaf({ 1, 2 })
        assert.is_false(pcall(function() x:add_(1) end))
        tide.no_grad(function() x:add_(1) end)
        assert.are.same({ 2, 3 }, x:totable())
    end)

    it("integer tensors cannot require grad", function()
        assert.is_false(pcall(function()
            return tide.tensor({ 1, 2 }, { dtype = "int64", requires_grad = true })
        end))
    end)

    it("the graph is freed after backward (no growth across iterations)", function()
        local w = leaf({ 0.5, -0.5 })
        collectgarbage()
        collectgarbage()
        local base = collectgarbage("count")
        for _ = 1, 2000 do
            local loss = ((w * 2):exp() + w):sum()
            loss:backward()
        end
        collectgarbage()
        collectgarbage()
        assert.is_true(collectgarbage("count") - base < 512, "Lua heap grew")
        H.assert_close(w.grad, { 2000 * (2 * math.exp(1) + 1), 2000 * (2 * math.exp(-1) + 1) }, 1e-9)
    end)
end)
