-- tide.experiment's command line: the common flags and a recipe's own,
-- --help, parsing with messages that name the flag, and the settings of a
-- configuration that define its results.
local tide = require "tide"
local E = require "tide.experiment.api"
local dist = require "tide.experiment.dist"

local M = {}

E.MODELS = {"mlp", "lenet5", "smallcnn", "resnet18", "resnet34", "resnet50"}

local function is_int_string(s) return s:match("^[+-]?%d+$") ~= nil end

-- the common flags, in the order --help lists them
local COMMON = {
    {name = "epochs", type = "integer", min = 1, meta = "N", help = "epochs per variant"},
    {name = "subset", type = "integer", min = 0, meta = "N",
     help = "train on the first N training images (0: all)"},
    {name = "batch_size", type = "integer", min = 1, meta = "N",
     help = "training batch size (under mpirun the global one, split over the processes)"},
    {name = "lr", type = "number", positive = true, meta = "X", help = "learning rate"},
    {name = "model", type = "string", meta = "NAME", help = "model from tide.models"},
    {name = "device", type = "string", meta = "DEV", help = "cpu or cuda"},
    {name = "threads", type = "integer", min = 1, meta = "N", help = "CPU threads"},
    {name = "deterministic", type = "boolean",
     help = "the same bits at any thread count (tide.use_deterministic; slower conv weight gradients)"},
    {name = "precision", type = "string", choices = {"float32", "bfloat16", "float16"}, meta = "P",
     help = "float32, or mixed precision: the forward under tide.autocast in bfloat16 or float16 "
            .. "(float16 with tide.amp.GradScaler), the loss in float32"},
    {name = "seed", type = "integer", min = 0, meta = "N", help = "random seed (each variant starts from it)"},
    {name = "out", type = "string", meta = "DIR", help = "output folder"},
    {name = "fresh", type = "boolean", help = "rerun every variant, ignoring results of earlier runs"},
}

local BASE_DEFAULTS = {
    epochs = 1, subset = 0, batch_size = 128, lr = 1e-3, model = "smallcnn", device = "cpu",
    seed = 0, fresh = false, deterministic = false, precision = "float32",
}

local function dashed(name) return (name:gsub("_", "-")) end

-- what a flag expects, in words: "a positive integer", "one of a, b"
local function expects(f)
    if f.expects then return f.expects end
    if f.choices then return "one of " .. table.concat(f.choices, ", ") end
    if f.type == "integer" then
        if f.min == 1 and not f.max then return "a positive integer" end
        if f.min == 0 and not f.max then return "a non-negative integer" end
        if f.min and f.max then return string.format("an integer in [%d, %d]", f.min, f.max) end
        if f.min then return string.format("an integer >= %d", f.min) end
        return "an integer"
    elseif f.type == "number" then
        if f.positive then return "a positive number" end
        if f.min == 0 and not f.max then return "a non-negative number" end
        if f.min and f.max then return string.format("a number in [%g, %g]", f.min, f.max) end
        if f.min then return string.format("a number >= %g", f.min) end
        return "a number"
    elseif f.type == "numbers" then
        return "a comma-separated list of numbers"
    elseif f.type == "strings" then
        return "a comma-separated list"
    elseif f.type == "boolean" then
        return "true or false"
    end
    return "a non-empty string"
end

local function in_range(f, v)
    if f.positive and not (v > 0) then return false end -- luacheck: ignore 581 (NaN fails too)
    if f.min and v < f.min then return false end
    if f.max and v > f.max then return false end
    return true
end

-- the value of one flag from its text, or nil
local function convert(f, s)
    local t = f.type or "string"
    local v
    if t == "integer" then
        if not is_int_string(s) then return nil end
        v = math.tointeger(tonumber(s))
        if v == nil or not in_range(f, v) then return nil end
    elseif t == "number" then
        v = tonumber(s)
        if v == nil or v ~= v or v == math.huge or v == -math.huge or not in_range(f, v) then return nil end
    elseif t == "numbers" then
        v = {}
        for item in (s .. ","):gmatch("([^,]*),") do
            local x = tonumber(item)
            if x == nil or x ~= x or not in_range(f, x) then return nil end
            v[#v + 1] = x
        end
        if #v == 0 then return nil end
    elseif t == "strings" then
        v = {}
        for item in (s .. ","):gmatch("([^,]*),") do
            if item == "" then return nil end
            v[#v + 1] = item
        end
    elseif t == "boolean" then
        local map = {["true"] = true, ["1"] = true, yes = true, ["false"] = false, ["0"] = false, no = false}
        v = map[s:lower()]
        if v == nil then return nil end
    else
        if s == "" then return nil end
        v = s
    end
    if f.choices then
        local found = false
        for _, c in ipairs(f.choices) do if c == v then found = true end end
        if not found then return nil end
    end
    return v
end

local function format_default(v)
    if v == nil then return nil end
    if type(v) == "table" then
        local parts = {}
        for i, x in ipairs(v) do parts[i] = tostring(x) end
        return table.concat(parts, ",")
    end
    return tostring(v)
end

-- the flag list of a spec: the common ones (with the recipe's defaults),
-- then the recipe's own
local function flag_list(spec)
    local list, by_name = {}, {}
    local models = spec.models or E.MODELS
    -- a recipe leaves out a common flag it has no use for (spec.omit =
    -- {"precision"}: its own loop runs float32 only), so the flag is
    -- refused as unknown rather than ignored
    local omit = {}
    for _, name in ipairs(spec.omit or {}) do omit[name] = true end
    for _, f in ipairs(COMMON) do
        if omit[f.name] then goto continue end
        local g = {}
        for k, v in pairs(f) do g[k] = v end
        if g.name == "model" then g.choices = models end
        list[#list + 1] = g
        by_name[g.name] = g
        ::continue::
    end
    for _, f in ipairs(spec.flags or {}) do
        assert(type(f.name) == "string" and f.name:match("^[%a][%w_]*$"),
               "experiment.parse: a flag needs a name of letters, digits and '_'")
        local g = by_name[f.name]
        if g then
            for k, v in pairs(f) do g[k] = v end -- a recipe may narrow a common flag
        else
            g = {}
            for k, v in pairs(f) do g[k] = v end
            g.type = g.type or "string"
            list[#list + 1] = g
            by_name[g.name] = g
        end
    end
    return list, by_name
end

local function defaults_of(spec, list)
    local d = {}
    for k, v in pairs(BASE_DEFAULTS) do d[k] = v end
    d.threads = tide.get_num_threads()
    d.out = "runs/" .. (spec.name or "experiment")
    for _, f in ipairs(list) do
        if f.default ~= nil then d[f.name] = f.default end
    end
    for k, v in pairs(spec.defaults or {}) do d[k] = v end
    return d
end

-- The --help text of a spec.
function E.usage(spec)
    local list = flag_list(spec)
    local d = defaults_of(spec, list)
    local lines = {}
    local script = spec.script or ("scripts/" .. (spec.name or "recipe") .. ".lua")
    lines[#lines + 1] = string.format("usage: tide %s [flags]", script)
    if spec.about then
        lines[#lines + 1] = ""
        lines[#lines + 1] = spec.about
    end
    lines[#lines + 1] = ""
    lines[#lines + 1] = "flags (--flag value or --flag=value):"
    local rows, width = {}, 0
    for _, f in ipairs(list) do
        local left = "--" .. dashed(f.name)
        if f.type ~= "boolean" then left = left .. " " .. (f.meta or f.type:upper()) end
        width = math.max(width, #left)
        local help = f.help or ""
        if f.choices then help = help .. " (" .. table.concat(f.choices, ", ") .. ")" end
        local dv = format_default(d[f.name])
        if dv ~= nil and f.type ~= "boolean" then help = help .. "; default " .. dv end
        rows[#rows + 1] = {left, help}
    end
    rows[#rows + 1] = {"--help", "print this and exit"}
    for _, r in ipairs(rows) do
        lines[#lines + 1] = string.format("  %-" .. width .. "s  %s", r[1], r[2])
    end
    return table.concat(lines, "\n") .. "\n"
end

-- Parses argv without side effects: cfg, or nil, message, exit code (0
-- with the usage text for --help, 2 for a bad flag).
function E.parse_args(argv, spec)
    spec = spec or {}
    local name = spec.name or "experiment"
    local list, by_name = flag_list(spec)
    local cfg = defaults_of(spec, list)
    local given = {}
    local function bad(msg) return nil, name .. ": " .. msg, 2 end

    local i, n = 1, #(argv or {})
    while i <= n do
        local a = argv[i]
        if a == "--help" or a == "-h" then return nil, E.usage(spec), 0 end
        if a:sub(1, 2) ~= "--" then
            return bad("unexpected argument '" .. a .. "' (flags start with --; see --help)")
        end
        local key, value = a:match("^%-%-([^=]+)=(.*)$")
        key = key or a:sub(3)
        local fname = key:gsub("-", "_")
        local f = by_name[fname]
        local negated = false
        if not f and fname:match("^no_") and by_name[fname:sub(4)] and by_name[fname:sub(4)].type == "boolean"
           and value == nil then
            f, negated = by_name[fname:sub(4)], true
        end
        if not f then return bad("unknown flag '--" .. key .. "' (see --help)") end
        local shown = "--" .. dashed(f.name)
        local v
        if f.type == "boolean" then
            if negated then
                v = false
            elseif value == nil then
                v = true
            else
                v = convert(f, value)
                if v == nil then return bad(shown .. " expects " .. expects(f) .. ", got '" .. value .. "'") end
            end
        else
            if value == nil then
                i = i + 1
                value = argv[i]
                if value == nil then return bad(shown .. " expects " .. expects(f) .. ", got nothing") end
            end
            v = convert(f, value)
            if v == nil then return bad(shown .. " expects " .. expects(f) .. ", got '" .. value .. "'") end
            if f.check then
                local msg = f.check(v)
                if msg then return bad(shown .. " " .. msg .. ", got '" .. value .. "'") end
            end
        end
        cfg[f.name] = v
        given[f.name] = true
        i = i + 1
    end

    if cfg.device ~= "cpu" and cfg.device ~= "cuda" then
        return bad("--device expects cpu or cuda, got '" .. tostring(cfg.device) .. "'")
    end
    if cfg.device == "cuda" and not (tide.cuda and tide.cuda.is_available()) then
        return bad("--device cuda: no CUDA device is available (tide.cuda.is_available() is false); use --device cpu")
    end
    cfg._name = name
    cfg._given = given
    cfg._argv = {}
    for k = 1, n do cfg._argv[k] = argv[k] end
    cfg._script = spec.script or (arg and arg[0]) or ("scripts/" .. name .. ".lua")
    if spec.adjust then
        local ok, msg = spec.adjust(cfg, given)
        if ok == nil and msg then return bad(msg) end
    end
    return cfg
end

-- Parses argv (the script's `arg`); --help prints the usage and exits 0,
-- a bad flag prints `<name>: <message>` to stderr and exits 2. Started
-- by mpirun, it first starts tide.distributed (experiment/dist.lua), and
-- only rank 0 prints. Sets the thread count and the seed.
function E.parse(argv, spec)
    dist.setup()
    local cfg, msg, code = E.parse_args(argv, spec)
    if not cfg then
        if dist.main() then
            if code == 0 then
                io.stdout:write(msg)
            else
                io.stderr:write(msg, "\n")
            end
        end
        os.exit(code)
    end
    -- several ranks on a machine with several GPUs: each its own one
    -- (the settings key keeps "cuda", so every rank agrees on it)
    if dist.active() and cfg.device == "cuda" and tide.cuda.device_count() > 1 then
        cfg.device = string.format("cuda:%d", tide.distributed.local_rank() % tide.cuda.device_count())
    end
    tide.set_num_threads(cfg.threads)
    tide.use_deterministic(cfg.deterministic)
    tide.manual_seed(cfg.seed)
    return cfg
end

-- the settings of cfg that define its results: every key but the ones
-- starting with "_" and those that do not change what is computed (the
-- thread count and deterministic mode change only the last bits)
local NOT_SETTINGS = {out = true, threads = true, fresh = true, deterministic = true}

function E.settings(cfg)
    local s = {}
    for k, v in pairs(cfg) do
        if type(k) == "string" and k:sub(1, 1) ~= "_" and not NOT_SETTINGS[k] then s[k] = v end
    end
    -- which GPU a rank of several took does not change the results
    if type(s.device) == "string" and s.device:match("^cuda:%d+$") then s.device = "cuda" end
    -- float32 is what every run was before the flag: its variants keep their keys
    if s.precision == "float32" then s.precision = nil end
    return s
end

-- canonical text of a value: sorted keys, numbers with 17 digits
local function canon(v)
    local t = type(v)
    if t == "table" then
        local keys = {}
        for k in pairs(v) do keys[#keys + 1] = k end
        table.sort(keys, function(a, b) return tostring(a) < tostring(b) end)
        local parts = {}
        for _, k in ipairs(keys) do parts[#parts + 1] = tostring(k) .. "=" .. canon(v[k]) end
        return "{" .. table.concat(parts, ",") .. "}"
    elseif t == "number" then
        if math.type(v) == "integer" then return tostring(v) end
        return string.format("%.17g", v)
    elseif t == "string" then
        return string.format("%q", v)
    end
    return tostring(v)
end

M.format_default = format_default
M.canon = canon

return M
