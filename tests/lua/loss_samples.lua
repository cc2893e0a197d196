-- Sample inputs for any row of the loss table (tide.losses.table), made from
-- each input's kind and usual dims alone, so the table-driven specs (here
-- and tests/cuda/loss_parity.lua) cover a new row without new test code.
local tide = require "tide"

local S = {}

-- the sizes the dims of the table name
S.sizes = { N = 4, C = 5, D = 3, T = 7, S = 2 }

function S.shape(dims, sizes)
    sizes = sizes or S.sizes
    local shape = {}
    for d in dims:gmatch("%S+") do shape[#shape + 1] = assert(sizes[d], "unknown dim " .. d) end
    return shape
end

local function numel(shape)
    local n = 1
    for _, s in ipairs(shape) do n = n * s end
    return n
end

-- integers from Lua's generator, seeded by the caller
local function ints(shape, fn)
    local v = {}
    for i = 1, numel(shape) do v[i] = fn(i) end
    return tide.tensor(v, "int64"):view(shape)
end

local makers = {
    scores = function(shape, dt) return tide.randn(shape, { dtype = dt }) end,
    real = function(shape, dt) return tide.randn(shape, { dtype = dt }) end,
    log_probs = function(shape, dt) return tide.randn(shape, { dtype = dt }):log_softmax(-1) end,
    probs = function(shape, dt) return tide.rand(shape, { dtype = dt }) * 0.8 + 0.1 end,
    binary = function(shape, dt) return tide.rand(shape, { dtype = dt }) end,
    positive = function(shape, dt) return tide.rand(shape, { dtype = dt }) + 0.5 end,
    signs = function(shape, dt) return (tide.rand(shape, { dtype = dt }) - 0.5):sign() end,
    classes = function(shape, _, sizes) return ints(shape, function() return math.random(0, sizes.C - 1) end) end,
    -- each row lists its first k classes, then -1
    label_lists = function(shape)
        local c = shape[#shape]
        return ints(shape, function(i)
            local col = (i - 1) % c
            local row = (i - 1) // c
            return col < (row % (c - 1)) + 1 and (row + col) % c or -1
        end)
    end,
    -- targets of a sequence loss: never the blank (0)
    sequences = function(shape, _, sizes) return ints(shape, function() return math.random(1, sizes.C - 1) end) end,
}

-- the inputs of row (a list), float ones of dtype dt (default float64), of
-- the sizes given (default S.sizes)
function S.inputs(row, dt, sizes)
    dt = dt or "float64"
    sizes = sizes or S.sizes
    local inputs = {}
    for i, input in ipairs(row.inputs) do
        local shape = S.shape(input.dims, sizes)
        if input.kind == "lengths" then
            -- input lengths span the whole sequence, target lengths the padded targets
            local len = input.name:find("input") and sizes.T or sizes.S
            inputs[i] = ints(shape, function() return len end)
        else
            inputs[i] = assert(makers[input.kind], "no sample for kind " .. input.kind)(shape, dt, sizes)
        end
    end
    return inputs
end

-- the float inputs that take a gradient: the first, and the second where the
-- row says so
function S.differentiable(row, i)
    local input = row.inputs[i]
    local float = input.kind ~= "classes" and input.kind ~= "label_lists" and input.kind ~= "sequences"
        and input.kind ~= "lengths" and input.kind ~= "signs"
    if not float then return false end
    if i == 1 then return true end
    if row.family == "margin" or row.name == "gaussian_nll_loss" then return true end
    return i == 2 and row.target_grad
end

return S
