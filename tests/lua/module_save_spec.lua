-- model:save(path) / model:load(path): a module's state_dict through a
-- safetensors file, restored in place into a fresh model.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local nn = tide.nn

describe("Module:save and Module:load", function()
    it("round-trips parameters and buffers bit for bit", function()
        tide.manual_seed(3)
        local a = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
        a:train()
        a(tide.randn({5, 4})) -- moves the batch norm's running statistics
        local path = os.tmpname()
        assert.are.equal(a, a:save(path))
        tide.manual_seed(4)
        local b = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 2))
        local w_before = b:get(0).weight
        b:load(path)
        os.remove(path)
        assert.are.equal(w_before, b:get(0).weight) -- restored in place
        local sa, sb = a:state_dict(), b:state_dict()
        for name, t in pairs(sa) do
            local u = sb[name]
            assert.is_truthy(u, name)
            for i = 0, t:numel() - 1 do
                assert.are.equal(string.format("%a", t:reshape{-1}:get(i)), string.format("%a", u:reshape{-1}:get(i)))
            end
        end
        a:evaluate(); b:evaluate()
        local x = tide.randn({2, 4})
        assert.are.equal(string.format("%a", a(x):sum():item()), string.format("%a", b(x):sum():item()))
    end)

    it("refuses a file of another model, naming the file", function()
        local path = os.tmpname()
        nn.Linear(4, 3):save(path)
        local ok, err = pcall(function() nn.Linear(5, 3):load(path) end)
        os.remove(path)
        assert.is_false(ok)
        assert.truthy(tostring(err):find(path, 1, true))
    end)
end)
