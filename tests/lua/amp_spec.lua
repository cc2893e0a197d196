-- tide.amp.GradScaler: PyTorch 1.13's constants and rules (scale 2^16,
-- growth 2 every 2000 clean steps, backoff 0.5, a step skipped on inf or
-- NaN), worked by hand here, and a training run that must give the bits
-- of plain SGD with the poisoned step left out.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local H = require "helpers"

local GradScaler = tide.amp.GradScaler

-- a parameter with a set gradient, in an SGD optimizer
local function one_param(grad)
    local p = tide.tensor({1.0, 2.0}, {requires_grad = true})
    p.grad = tide.tensor(grad)
    return p, tide.optim.SGD({p}, {lr = 1})
end

describe("GradScaler", function()
    it("has PyTorch's defaults", function()
        local s = GradScaler()
        assert.are.equal(65536.0, s:get_scale())
        assert.are.equal(2.0, s:get_growth_factor())
        assert.are.equal(0.5, s:get_backoff_factor())
        assert.are.equal(2000, s:get_growth_interval())
        assert.is_true(s:is_enabled())
        assert.are.same({scale = 65536.0, growth_factor = 2.0, backoff_factor = 0.5, growth_interval = 2000,
                         _growth_tracker = 0}, s:state_dict())
    end)

    it("scales a loss and a list of outputs", function()
        local s = GradScaler({init_scale = 8})
        assert.are.equal(12, s:scale(tide.tensor(1.5)):item())
        local r = s:scale({tide.tensor(1.0), {tide.tensor(2.0)}})
        assert.are.equal(8, r[1]:item())
        assert.are.equal(16, r[2][1]:item())
    end)

    it("unscales, steps, and grows after growth_interval clean steps", function()
        local s = GradScaler({init_scale = 4, growth_interval = 3})
        local p, opt = one_param({8, -4})
        assert.is_true(s:step(opt))
        -- gradient 8 / 4 = 2 and -4 / 4 = -1, lr 1
        assert.are.same({-1, 3}, p:totable())
        s:update()
        assert.are.equal(4, s:get_scale())
        assert.are.equal(1, s:state_dict()._growth_tracker)
        for _ = 1, 2 do
            p.grad = tide.tensor({0.0, 0.0})
            s:step(opt)
            s:update()
        end
        -- the third clean step in a row doubles the scale and restarts the count
        assert.are.equal(8, s:get_scale())
        assert.are.equal(0, s:state_dict()._growth_tracker)
    end)

    it("skips the step and halves the scale on inf or NaN", function()
        for _, bad in ipairs({math.huge, -math.huge, 0 / 0}) do
            local s = GradScaler({growth_interval = 2})
            local p, opt = one_param({1, 0})
            s:step(opt)
            s:update()
            assert.are.equal(1, s:state_dict()._growth_tracker)
            p.grad = tide.tensor({bad, 1})
            local before = p:totable()
            assert.is_false(s:step(opt))
            assert.are.same(before, p:totable())
            s:update()
            assert.are.equal(32768, s:get_scale())
            assert.are.equal(0, s:state_dict()._growth_tracker)
        end
    end)

    it("does not grow past float32's range, as PyTorch's float32 scale", function()
        local s = GradScaler({init_scale = 2.0 ^ 127, growth_interval = 1})
        local _, opt = one_param({0, 0})
        s:step(opt)
        s:update()
        assert.are.equal(2.0 ^ 127, s:get_scale())
        -- and the scale is held in float32: 0.1 is rounded as PyTorch stores it
        s:update(0.1)
        assert.are.equal(string.unpack("f", string.pack("f", 0.1)), s:get_scale())
        assert.are_not.equal(0.1, s:get_scale())
    end)

    it("unscales once: unscale_ before step divides the gradients one time", function()
        local s = GradScaler({init_scale = 2})
        local p, opt = one_param({4, 6})
        s:unscale_(opt)
        assert.are.same({2, 3}, p.grad:totable())
        -- clipping would go here; step must not divide again
        s:step(opt)
        assert.are.same({-1, -1}, p:totable())
        assert.matches("GradScaler:unscale_.*after step", H.error_of(function() s:unscale_(opt) end))
        assert.matches("step%(%) has already been called", H.error_of(function() s:step(opt) end))
        s:update()
        local p2, opt2 = one_param({1, 1})
        s:unscale_(opt2)
        assert.matches("already been called on this optimizer", H.error_of(function() s:unscale_(opt2) end))
        assert.is_not_nil(p2)
    end)

    it("combines the optimizers' inf checks in update", function()
        local s = GradScaler({init_scale = 16})
        local _, a = one_param({1, 1})
        local pb, b = one_param({0 / 0, 1})
        assert.is_true(s:step(a))
        assert.is_false(s:step(b))
        assert.are.same({1, 2}, pb:totable())
        s:update()
        assert.are.equal(8, s:get_scale())
    end)

    it("passes everything through when disabled", function()
        local s = GradScaler({enabled = false})
        local x = tide.tensor(3.0)
        assert.are.equal(x, s:scale(x))
        local p, opt = one_param({1, 1})
        assert.is_true(s:step(opt))
        assert.are.same({0, 1}, p:totable())
        s:update()
        assert.are.equal(1.0, s:get_scale())
        assert.are.same({}, s:state_dict())
        assert.matches("only be called if the GradScaler is enabled",
            H.error_of(function() s:load_state_dict({scale = 2}) end))
    end)

    it("round-trips its state and checks a loaded one whole", function()
        local s = GradScaler({init_scale = 1024, growth_interval = 5})
        local _, opt = one_param({1, 1})
        s:step(opt)
        s:update()
        local t = GradScaler()
        t:load_state_dict(s:state_dict())
        assert.are.same(s:state_dict(), t:state_dict())
        local sd = s:state_dict()
        sd._growth_tracker = 7
        assert.matches("_growth_tracker must be an integer in %[0, growth_interval%)",
            H.error_of(function() t:load_state_dict(sd) end))
        assert.are.same(s:state_dict(), t:state_dict())
        assert.matches("unknown key 'scal'", H.error_of(function() t:load_state_dict({scal = 1}) end))
        assert.matches("source state dict is empty", H.error_of(function() t:load_state_dict({}) end))
    end)

    it("names the argument and the problem", function()
        assert.matches("GradScaler.*unknown option 'init'", H.error_of(GradScaler, {init = 1}))
        assert.matches("backoff_factor must be less than 1.0", H.error_of(GradScaler, {backoff_factor = 2}))
        assert.matches("growth_factor must be greater than 1.0", H.error_of(GradScaler, {growth_factor = 0.5}))
        assert.matches("init_scale must be a positive finite number", H.error_of(GradScaler, {init_scale = 0}))
        assert.matches("growth_interval must be a positive integer", H.error_of(GradScaler, {growth_interval = 1.5}))
        local s = GradScaler()
        assert.matches("optimizer expected", H.error_of(function() s:step(5) end))
        local _, opt = one_param({1, 1})
        assert.matches("closures are not supported", H.error_of(function() s:step(opt, function() end) end))
        assert.matches("no inf checks were recorded", H.error_of(function() GradScaler():update() end))
    end)

    it("trains to the bits of plain SGD with the poisoned step left out", function()
        local function run(use_scaler, poison)
            tide.manual_seed(7)
            local m = tide.nn.Linear(4, 3)
            local opt = tide.optim.SGD(m:parameters(), {lr = 0.1, momentum = 0.9})
            local s = GradScaler({growth_interval = 2})
            for step = 1, 6 do
                local x, y = tide.randn({8, 4}), tide.randint(0, 3, {8})
                local loss = tide.F.cross_entropy(m(x), y)
                opt:zero_grad()
                if use_scaler then
                    s:scale(loss):backward()
                    if step == poison then m.weight.grad:view(-1):narrow(0, 0, 1):fill_(0 / 0) end
                    s:step(opt)
                    s:update()
                else
                    loss:backward()
                    if step ~= poison then opt:step() end
                end
            end
            return m, s
        end
        local a, s = run(true, 3)
        local b = run(false, 3)
        -- scaling by powers of two and back is exact in float32
        assert.is_true(H.same_values(a.weight, b.weight))
        assert.is_true(H.same_values(a.bias, b.bias))
        -- steps 1, 2 grow to 2^17; 3 backs off to 2^16; 4, 5 grow to 2^17; 6 counts one
        assert.are.equal(2.0 ^ 17, s:get_scale())
        assert.are.equal(1, s:state_dict()._growth_tracker)
    end)
end)
