-- The loss modules and helpers that sit on top of the functional losses:
-- tide.nn.<Name>Loss{options} and tide.nn.class_balanced_weights.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local losses = require "tide.losses"

describe("loss modules", function()
    it("every loss of DESIGN's table is a function and a module", function()
        for _, pair in ipairs(losses.names) do
            local fname, mname = pair[1], pair[2]
            assert.is_function(tide.F[fname], fname .. " is missing from tide.F")
            assert.is_table(tide.nn[mname], mname .. " is missing from tide.nn")
        end
    end)

    it("a module passes its options to the function", function()
        local x = tide.tensor({{2.0, 1.0, 0.1}, {0.5, 2.5, -1.0}})
        local y = tide.tensor({0, 1}, "int64")
        local m = tide.nn.CrossEntropyLoss{label_smoothing = 0.1, reduction = "sum"}
        local a = m(x, y):item()
        local b = tide.F.cross_entropy(x, y, {label_smoothing = 0.1, reduction = "sum"}):item()
        assert.are.equal(a, b)
        assert.are.equal(a, m:forward(x, y):item())
        -- the module kept a copy: changing the caller's table later changes nothing
        local opts = {reduction = "sum"}
        local m2 = tide.nn.MSELoss(opts)
        opts.reduction = "mean"
        local s = m2(tide.tensor({1, 2}), tide.tensor({0, 0})):item()
        assert.are.equal(5, s)
        assert.truthy(tostring(m):find("CrossEntropyLoss{label_smoothing = 0.1, reduction = sum}", 1, true))
    end)

    it("rejects options that are not a table", function()
        local ok, err = pcall(tide.nn.MSELoss, "mean")
        assert.is_false(ok)
        assert.truthy(err:find("MSELoss", 1, true))
    end)
end)

describe("class_balanced_weights", function()
    it("follows Cui et al.: (1 - beta) / (1 - beta^n), scaled to sum to C", function()
        local beta = 0.99
        local counts = {900, 100, 10}
        local w = tide.nn.class_balanced_weights(counts, beta):totable()
        -- by hand: raw_c = 0.01 / (1 - 0.99^n_c)
        local raw = {0.01 / (1 - 0.99 ^ 900), 0.01 / (1 - 0.99 ^ 100), 0.01 / (1 - 0.99 ^ 10)}
        local sum = raw[1] + raw[2] + raw[3]
        for c = 1, 3 do
            assert.is_true(math.abs(w[c] - raw[c] * 3 / sum) < 1e-6)
        end
        assert.is_true(w[3] > w[2] and w[2] > w[1]) -- rarer classes weigh more
        -- beta = 0 gives equal weights
        local eq = tide.nn.class_balanced_weights(tide.tensor({5, 50}), 0):totable()
        assert.are.same({1, 1}, eq)
    end)

    it("rejects empty classes and a beta outside [0, 1)", function()
        local ok, err = pcall(tide.nn.class_balanced_weights, {10, 0, 3}, 0.9)
        assert.is_false(ok)
        assert.truthy(err:find("class 1 has count 0", 1, true))
        ok, err = pcall(tide.nn.class_balanced_weights, {10, 3}, 1)
        assert.is_false(ok)
        assert.truthy(err:find("beta", 1, true))
    end)
end)
