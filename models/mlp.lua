-- mlp{sizes = {784, 256, 256, 10}} or mlp{784, 256, 256, 10}: Flatten, then
-- Linear layers with a ReLU between each pair (none after the last).
local tide = require "tide"
local nn = tide.nn

local function mlp(opts)
    if type(opts) ~= "table" then
        error("bad argument #1 to 'mlp' (options table expected, got " .. type(opts) .. ")", 2)
    end
    local sizes = opts.sizes
    local rest = {}
    for k, v in pairs(opts) do
        if math.type(k) ~= "integer" then rest[k] = v end
    end
    if sizes == nil then
        sizes = {}
        for i = 1, #opts do sizes[i] = opts[i] end
    elseif #opts > 0 then
        error("bad argument #1 to 'mlp' (give the sizes either as a list or as sizes = {...}, not both)", 2)
    end
    nn.check_options("mlp", 1, rest, {"sizes"}, {})
    if type(sizes) ~= "table" or #sizes < 2 then
        error("bad argument #1 to 'mlp' (sizes must list at least two layer widths, e.g. {784, 256, 10})", 2)
    end
    for i, v in ipairs(sizes) do
        if math.type(v) ~= "integer" or v < 1 then
            error(string.format("bad argument #1 to 'mlp' (size %d is %s; widths are positive integers)",
                                i, tostring(v)), 2)
        end
    end
    local model = nn.Sequential(nn.Flatten())
    for i = 1, #sizes - 1 do
        model:append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < #sizes - 1 then model:append(nn.ReLU()) end
    end
    return model
end

return {mlp = mlp}
