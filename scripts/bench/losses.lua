-- Forward + backward of the classification losses, tide against PyTorch
-- CPU at the same thread count in the same run:
--   cross_entropy at (8192, 1000), (128, 10), (65536, 10);
--   binary_cross_entropy_with_logits at (8192, 1000);
--   focal_loss at (8192, 1000) against PyTorch's composite formula.
-- Goals: cross_entropy <= 0.25x PyTorch's time at (8192, 1000), <= 0.2x at
-- (128, 10), <= 0.35x at (65536, 10); focal <= 0.35x of the composite.
-- `tide scripts/bench/losses.lua [threads]`
local tide = require "tide"
local B = dofile((debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "scripts/bench")
                 .. "/benchlib.lua")
local F = tide.F

local threads = B.threads(arg)
print(string.format("losses float32, forward + backward, %d threads", threads))
local pt = B.baseline("losses_torch.py", {threads})

tide.manual_seed(0)

-- one training-style step: fresh gradient, loss, backward
local function stepper(x, loss)
    return function()
        x.grad = nil
        local l <close> = loss()
        l:backward()
    end
end

local function have(name)
    if F[name] then return true end
    print(string.format("%-28s not available in this build", name))
    return false
end

if have("cross_entropy") then
    for _, case in ipairs({{8192, 1000, 5, 0.25}, {128, 10, 2000, 0.2}, {65536, 10, 20, 0.35}}) do
        local n, c, inner, goal = case[1], case[2], case[3], case[4]
        local x = tide.randn({n, c}, {requires_grad = true})
        local y = tide.randint(0, c, {n})
        local t = B.time(stepper(x, function() return F.cross_entropy(x, y) end), {inner = inner})
        local key = string.format("ce_%dx%d", n, c)
        -- read the logits and the int64 targets, write the logits' gradient:
        -- (2 * n * c) * 4 + n * 8 bytes
        B.row(string.format("cross_entropy %dx%d", n, c), t, pt:get(key), "ms", false, goal,
              {bytes = 2 * n * c * 4 + n * 8})
    end
end

if have("binary_cross_entropy_with_logits") then
    local x = tide.randn({8192, 1000}, {requires_grad = true})
    local y = tide.rand({8192, 1000}):gt(0.5):float()
    local t = B.time(stepper(x, function() return F.binary_cross_entropy_with_logits(x, y) end),
                     {inner = 5})
    -- read the logits and the float32 targets, write the gradient: 3 * n * c * 4 bytes
    B.row("bce_with_logits 8192x1000", t, pt:get("bce_8192x1000"), "ms", false, 0.3,
          {bytes = 3 * 8192 * 1000 * 4})
end

if have("focal_loss") then
    local x = tide.randn({8192, 1000}, {requires_grad = true})
    local y = tide.randint(0, 1000, {8192})
    local t = B.time(stepper(x, function() return F.focal_loss(x, y, {gamma = 2}) end), {inner = 5})
    -- as cross_entropy: (2 * n * c) * 4 + n * 8 bytes
    B.row("focal_loss 8192x1000", t, pt:get("focal_8192x1000"), "ms", false, 0.35,
          {bytes = 2 * 8192 * 1000 * 4 + 8192 * 8})
end
