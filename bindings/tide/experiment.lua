-- tide.experiment: the toolkit the recipes in scripts/ are written with.
--
-- A recipe parses its flags (parse), makes an experiment on an output
-- folder (new), runs named variants (ex:variant, or ex:train_classifier
-- for the standard loop), and writes report.md (ex:report). Every epoch
-- goes to <out>/metrics.jsonl as one JSON object; a finished variant is
-- recorded in <out>/state.json with the settings it ran with, so a rerun
-- with the same settings loads it instead of training it again. See
-- docs/experiment.md.

local tide = require "tide"
local cjson = require("cjson").new()

local E = {}

E.MODELS = {"mlp", "lenet5", "smallcnn", "resnet18", "resnet34", "resnet50"}

-- ---------------------------------------------------------------------------
-- flags

local function is_int_string(s) return s:match("^[+-]?%d+$") ~= nil end

-- the common flags, in the order --help lists them
local COMMON = {
    {name = "epochs", type = "integer", min = 1, meta = "N", help = "epochs per variant"},
    {name = "subset", type = "integer", min = 0, meta = "N",
     help = "train on the first N training images (0: all)"},
    {name = "batch_size", type = "integer", min = 1, meta = "N", help = "training batch size"},
    {name = "lr", type = "number", positive = true, meta = "X", help = "learning rate"},
    {name = "model", type = "string", meta = "NAME", help = "model from tide.models"},
    {name = "device", type = "string", meta = "DEV", help = "cpu or cuda"},
    {name = "threads", type = "integer", min = 1, meta = "N", help = "CPU threads"},
    {name = "seed", type = "integer", min = 0, meta = "N", help = "random seed (each variant starts from it)"},
    {name = "out", type = "string", meta = "DIR", help = "output folder"},
    {name = "fresh", type = "boolean", help = "rerun every variant, ignoring results of earlier runs"},
}

local BASE_DEFAULTS = {
    epochs = 1, subset = 0, batch_size = 128, lr = 1e-3, model = "smallcnn", device = "cpu",
    seed = 0, fresh = false,
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
    if f.positive and not (v > 0) then return false end
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
    for _, f in ipairs(COMMON) do
        local g = {}
        for k, v in pairs(f) do g[k] = v end
        if g.name == "model" then g.choices = models end
        list[#list + 1] = g
        by_name[g.name] = g
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
    lines[#lines + 1] = string.format("usage: tide %s [flags]", spec.script or ("scripts/" .. (spec.name or "recipe") .. ".lua"))
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
        if a:sub(1, 2) ~= "--" then return bad("unexpected argument '" .. a .. "' (flags start with --; see --help)") end
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
-- a bad flag prints `<name>: <message>` to stderr and exits 2. Sets the
-- thread count and the seed.
function E.parse(argv, spec)
    local cfg, msg, code = E.parse_args(argv, spec)
    if not cfg then
        if code == 0 then
            io.stdout:write(msg)
        else
            io.stderr:write(msg, "\n")
        end
        os.exit(code)
    end
    tide.set_num_threads(cfg.threads)
    tide.manual_seed(cfg.seed)
    return cfg
end

-- the settings of cfg that define its results: every key but the ones
-- starting with "_" and those that do not change what is computed
local NOT_SETTINGS = {out = true, threads = true, fresh = true}

function E.settings(cfg)
    local s = {}
    for k, v in pairs(cfg) do
        if type(k) == "string" and k:sub(1, 1) ~= "_" and not NOT_SETTINGS[k] then s[k] = v end
    end
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

-- ---------------------------------------------------------------------------
-- files

local function shell_quote(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function exists(path)
    local f = io.open(path, "rb")
    if f then f:close() return true end
    return false
end

local function mkdir_p(path)
    local ok = os.execute("mkdir -p " .. shell_quote(path))
    if not ok then error("experiment: cannot create the folder '" .. path .. "'", 0) end
end

local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

-- writes beside the target, then renames over it
local function write_atomic(path, text)
    local tmp = path .. ".tmp"
    local f, err = io.open(tmp, "wb")
    if not f then error("experiment: cannot write '" .. path .. "': " .. tostring(err), 0) end
    f:write(text)
    f:close()
    local ok, rerr = os.rename(tmp, path)
    if not ok then error("experiment: cannot write '" .. path .. "': " .. tostring(rerr), 0) end
end

-- JSON of one value; numbers that JSON lacks become the strings "NaN",
-- "Infinity", "-Infinity"
local function json_value(v)
    if type(v) == "number" then
        if v ~= v then return '"NaN"' end
        if v == math.huge then return '"Infinity"' end
        if v == -math.huge then return '"-Infinity"' end
        if math.type(v) == "integer" then return tostring(v) end
        return cjson.encode(v)
    end
    if tide.is_tensor(v) then
        if v:numel() == 1 then return json_value(v:item()) end
        return cjson.encode(v:totable())
    end
    return cjson.encode(v)
end

local NONFINITE = {NaN = 0 / 0, Infinity = math.huge, ["-Infinity"] = -math.huge}

local function from_json(rec)
    for k, v in pairs(rec) do
        if v == cjson.null then
            rec[k] = nil
        elseif type(v) == "string" and NONFINITE[v] then
            rec[k] = NONFINITE[v]
        elseif type(v) == "number" and math.type(v) == "float" and k == "epoch" then
            rec[k] = math.tointeger(v) or v
        end
    end
    return rec
end

-- the order of the standard fields in a line of metrics.jsonl
E.FIELDS = {"variant", "epoch", "train_loss", "train_acc", "test_loss", "test_acc", "test_nll", "ece",
            "seconds", "eval_seconds", "lr"}

local function encode_record(rec)
    local parts, done = {}, {}
    for _, k in ipairs(E.FIELDS) do
        if rec[k] ~= nil then
            parts[#parts + 1] = cjson.encode(k) .. ":" .. json_value(rec[k])
            done[k] = true
        end
    end
    local rest = {}
    for k in pairs(rec) do
        if not done[k] then
            if type(k) ~= "string" then error("experiment: record keys must be strings", 0) end
            rest[#rest + 1] = k
        end
    end
    table.sort(rest)
    for _, k in ipairs(rest) do parts[#parts + 1] = cjson.encode(k) .. ":" .. json_value(rec[k]) end
    return "{" .. table.concat(parts, ",") .. "}"
end
E.encode_record = encode_record

-- Reads a metrics.jsonl: the list of records, in file order.
function E.read_jsonl(path)
    local out = {}
    local f = io.open(path, "r")
    if not f then return out end
    local lineno = 0
    for line in f:lines() do
        lineno = lineno + 1
        if line:match("%S") then
            local ok, rec = pcall(cjson.decode, line)
            if not ok or type(rec) ~= "table" then
                f:close()
                error(string.format("experiment: %s:%d is not a JSON object", path, lineno), 0)
            end
            out[#out + 1] = from_json(rec)
        end
    end
    f:close()
    return out
end

-- ---------------------------------------------------------------------------
-- data, models, evaluation

-- The first n samples of ds (all of them when n is nil, 0 or >= #ds).
function E.subset(ds, n)
    if n == nil or n == 0 or n >= #ds then return ds end
    return tide.data.subset(ds, n)
end

local FASHION_MEAN, FASHION_STD = {0.2860}, {0.3530}
local CIFAR_MEAN, CIFAR_STD = {0.4914, 0.4822, 0.4465}, {0.2470, 0.2435, 0.2616}

local function data_table(cfg, train, test, mean, std, opts, augment_size)
    local T = tide.data.transforms
    local norm = T.normalize(mean, std)
    local d = {
        train = E.subset(train, cfg.subset),
        test = E.subset(test, opts.test_subset),
        classes = train.classes,
        num_classes = #train.classes,
        in_channels = train.images:size(1),
        image_size = train.images:size(2),
        test_transform = {norm},
    }
    if opts.augment and augment_size then
        d.train_transform = {T.random_crop(augment_size, {padding = 4}), T.random_hflip(), norm}
    else
        d.train_transform = {norm}
    end
    return d
end

-- Fashion-MNIST (Debian's dataset-fashion-mnist): {train, test, classes,
-- num_classes, in_channels, image_size, train_transform, test_transform}.
-- train holds the first cfg.subset images (0: all 60,000); test all
-- 10,000 (or opts.test_subset); both transforms normalize.
function E.fashion_mnist(cfg, opts)
    opts = opts or {}
    local train = tide.data.fashion_mnist{dir = opts.dir, split = "train"}
    local test = tide.data.fashion_mnist{dir = opts.dir, split = "test"}
    return data_table(cfg, train, test, FASHION_MEAN, FASHION_STD, opts, 28)
end

-- MNIST from opts.dir, as fashion_mnist (normalized with MNIST's stats).
function E.mnist(cfg, opts)
    opts = opts or {}
    local train = tide.data.mnist{dir = opts.dir, split = "train"}
    local test = tide.data.mnist{dir = opts.dir, split = "test"}
    return data_table(cfg, train, test, {0.1307}, {0.3081}, opts, 28)
end

-- CIFAR-10 (binary version) from opts.dir; opts.augment adds random crop
-- (padding 4) and flip to the training transforms.
function E.cifar10(cfg, opts)
    opts = opts or {}
    local train = tide.data.cifar10{dir = opts.dir, split = "train"}
    local test = tide.data.cifar10{dir = opts.dir, split = "test"}
    return data_table(cfg, train, test, CIFAR_MEAN, CIFAR_STD, opts, 32)
end

-- A model from tide.models by cfg.model (or opts.name), sized for data:
-- {num_classes, in_channels, image_size} (from a data table or given).
function E.model(cfg, data, opts)
    opts = opts or {}
    data = data or {}
    local name = opts.name or cfg.model
    local classes = opts.num_classes or data.num_classes or 10
    local channels = opts.in_channels or data.in_channels or 1
    local size = opts.image_size or data.image_size or 28
    if name == "mlp" then
        return tide.models.mlp{sizes = {channels * size * size, 256, 256, classes}}
    elseif name:match("^resnet") then
        return tide.models[name]{num_classes = classes, in_channels = channels,
                                 stem = size <= 64 and "cifar" or "imagenet"}
    end
    return tide.models[name]{num_classes = classes, in_channels = channels}
end

-- An optimizer over model's parameters at cfg.lr: "adam" (default),
-- "adamw", "sgd" (momentum 0.9 unless given), "rmsprop"; opts passes on
-- (weight_decay, momentum, nesterov, ...).
function E.optimizer(cfg, model, opts)
    opts = opts or {}
    local name = opts.name or "adam"
    local o = {lr = opts.lr or cfg.lr}
    for k, v in pairs(opts) do if k ~= "name" then o[k] = v end end
    local params = model.parameters and model:parameters() or model
    if name == "adam" then return tide.optim.Adam(params, o) end
    if name == "adamw" then return tide.optim.AdamW(params, o) end
    if name == "rmsprop" then return tide.optim.RMSprop(params, o) end
    if name == "sgd" then
        if o.momentum == nil then o.momentum = 0.9 end
        return tide.optim.SGD(params, o)
    end
    error("experiment.optimizer: unknown optimizer '" .. tostring(name) .. "' (adam, adamw, sgd, rmsprop)", 2)
end

-- one-hot float32 (N, C) of int64 labels (N)
function E.one_hot(y, num_classes)
    local n = y:size(0)
    local t = tide.zeros({n, num_classes})
    if y:device() ~= "cpu" then t = t:to(y:device()) end
    return t:scatter(1, y:view({n, 1}), 1.0)
end

local function is_loader(x) return type(x) == "table" and type(x.iter) == "function" end

-- a DataLoader over a data set (or the loader itself)
function E.loader(ds, opts)
    if is_loader(ds) then return ds end
    opts = opts or {}
    return tide.data.DataLoader(ds, {batch_size = opts.batch_size or 500, shuffle = opts.shuffle or false,
                                     transform = opts.transform, seed = opts.seed, drop_last = opts.drop_last})
end

-- Runs model (in evaluation mode, without gradients) over a loader or a
-- data set: logits (N, ...) and labels (N, ...), on the CPU.
function E.evaluate(model, data, opts)
    opts = opts or {}
    local loader = E.loader(data, {batch_size = opts.batch_size or 500, transform = opts.transform})
    local device = opts.device or "cpu"
    local was_training = model.training
    model:evaluate()
    local outs, labels = {}, {}
    tide.no_grad(function()
        for x, y in loader:iter() do
            if device ~= "cpu" then x = x:to(device) end
            local out = model(x)
            if device ~= "cpu" then out = out:to("cpu") end
            outs[#outs + 1] = out
            labels[#labels + 1] = y
        end
    end)
    if was_training then model:train() end
    if #outs == 0 then error("experiment.evaluate: the data set is empty", 2) end
    return tide.cat(outs, 0), tide.cat(labels, 0)
end

-- The epochs to show in a table: the first, the middle and the last.
function E.milestones(epochs)
    local list, seen = {}, {}
    for _, e in ipairs({1, (epochs + 1) // 2, epochs}) do
        if not seen[e] then list[#list + 1] = e; seen[e] = true end
    end
    return list
end

-- The record of epoch e in a history (nil when absent).
function E.at_epoch(history, e)
    for _, r in ipairs(history or {}) do if r.epoch == e then return r end end
    return nil
end

-- ---------------------------------------------------------------------------
-- tables

local function cell(v, fmt)
    if v == nil then return "-" end
    if type(v) == "number" then
        if v ~= v then return "nan" end
        if fmt then return string.format(fmt, v) end
        if math.type(v) == "integer" then return tostring(v) end
        return string.format("%.4f", v)
    end
    if fmt and type(v) == "string" then return v end
    return tostring(v)
end

local function table_cells(t)
    local head, fmts, rows = {}, {}, {}
    for i, c in ipairs(t.columns) do
        if type(c) == "table" then
            head[i], fmts[i] = c.name or c[1], c.fmt
        else
            head[i] = c
        end
    end
    for r, row in ipairs(t.rows) do
        rows[r] = {}
        for i = 1, #head do rows[r][i] = cell(row[i], fmts[i]) end
    end
    return head, rows
end

local function numeric(s) return s:match("^[-+]?[%d.]+[%%]?$") or s:match("^[-+]?[%d.]+e[-+]%d+$") or s == "nan" end

-- An aligned text table of {columns, rows} (numbers right-aligned).
function E.format_table(t)
    local head, rows = table_cells(t)
    local width = {}
    for i, h in ipairs(head) do width[i] = utf8.len(h) or #h end
    for _, row in ipairs(rows) do
        for i, s in ipairs(row) do width[i] = math.max(width[i], utf8.len(s) or #s) end
    end
    local function line(cells, right)
        local parts = {}
        for i, s in ipairs(cells) do
            local pad = string.rep(" ", width[i] - (utf8.len(s) or #s))
            parts[i] = (right and right[i]) and pad .. s or s .. pad
        end
        return (table.concat(parts, "  "):gsub("%s+$", ""))
    end
    local right = {}
    for i = 1, #head do
        right[i] = #rows > 0
        for _, row in ipairs(rows) do
            if not (numeric(row[i]) or row[i] == "-") then right[i] = false end
        end
    end
    local out = {line(head, right)}
    local rule = {}
    for i = 1, #head do rule[i] = string.rep("-", width[i]) end
    out[#out + 1] = table.concat(rule, "  ")
    for _, row in ipairs(rows) do out[#out + 1] = line(row, right) end
    return table.concat(out, "\n") .. "\n"
end

-- The same table in Markdown.
function E.markdown_table(t)
    local head, rows = table_cells(t)
    local function esc(s) return (s:gsub("|", "\\|")) end
    local out = {}
    local h, rule = {}, {}
    for i, s in ipairs(head) do
        h[i] = esc(s)
        local right = #rows > 0
        for _, row in ipairs(rows) do if not (numeric(row[i]) or row[i] == "-") then right = false end end
        rule[i] = right and "---:" or "---"
    end
    out[1] = "| " .. table.concat(h, " | ") .. " |"
    out[2] = "| " .. table.concat(rule, " | ") .. " |"
    for _, row in ipairs(rows) do
        local r = {}
        for i, s in ipairs(row) do r[i] = esc(s) end
        out[#out + 1] = "| " .. table.concat(r, " | ") .. " |"
    end
    return table.concat(out, "\n") .. "\n"
end

-- ---------------------------------------------------------------------------
-- the experiment

local Experiment = {}
Experiment.__index = Experiment

-- A new experiment writing to cfg.out (created when missing).
function E.new(cfg, opts)
    opts = opts or {}
    if type(cfg) ~= "table" then error("bad argument #1 to 'new' (cfg table expected)", 2) end
    local self = setmetatable({}, Experiment)
    self.cfg = cfg
    self.name = opts.name or cfg._name or "experiment"
    self.out = cfg.out or ("runs/" .. self.name)
    self.quiet = opts.quiet or false
    self.progress = opts.progress or (self.quiet and "off" or nil)
    self.results, self.order = {}, {}
    self.histories = {}
    self.loaded = {}
    mkdir_p(self.out .. "/checkpoints")
    self.jsonl = self.out .. "/metrics.jsonl"
    self.state_path = self.out .. "/state.json"
    local text = read_file(self.state_path)
    local state
    if text then
        local ok, v = pcall(cjson.decode, text)
        if ok and type(v) == "table" and type(v.variants) == "table" then state = v end
    end
    self.state = state or {variants = {}}
    self.started = os.time()
    return self
end

function Experiment:say(...)
    if not self.quiet then print(...) end
end

-- <out>/<name>
function Experiment:path(name) return self.out .. "/" .. name end

function Experiment:checkpoint_path(variant) return self.out .. "/checkpoints/" .. variant .. ".safetensors" end
function Experiment:result_path(variant) return self.out .. "/checkpoints/" .. variant .. ".result.safetensors" end

function Experiment:_save_state()
    write_atomic(self.state_path, cjson.encode(self.state) .. "\n")
end

-- Appends one record to metrics.jsonl (variant defaults to the running
-- one); returns the record.
function Experiment:log(rec)
    rec.variant = rec.variant or self.current
    if rec.variant == nil then error("experiment:log: the record names no variant", 2) end
    local f, err = io.open(self.jsonl, "a")
    if not f then error("experiment: cannot append to '" .. self.jsonl .. "': " .. tostring(err), 0) end
    f:write(encode_record(rec), "\n")
    f:close()
    local h = self.histories[rec.variant] or {}
    h[#h + 1] = rec
    self.histories[rec.variant] = h
    return rec
end

-- The records of a variant in metrics.jsonl, in epoch order.
function Experiment:history(variant)
    local h = {}
    for _, r in ipairs(E.read_jsonl(self.jsonl)) do
        if r.variant == variant then h[#h + 1] = r end
    end
    table.sort(h, function(a, b) return (a.epoch or 0) < (b.epoch or 0) end)
    return h
end

-- drops a variant's lines from metrics.jsonl (those after epoch `after`
-- when given)
function Experiment:_drop_lines(variant, after)
    local text = read_file(self.jsonl)
    if not text then return end
    local keep, dropped = {}, false
    for line in text:gmatch("[^\n]+") do
        local ok, r = pcall(cjson.decode, line)
        local drop = ok and type(r) == "table" and r.variant == variant and
                     (after == nil or (tonumber(r.epoch) or 0) > after)
        if drop then dropped = true else keep[#keep + 1] = line end
    end
    if dropped then write_atomic(self.jsonl, #keep > 0 and table.concat(keep, "\n") .. "\n" or "") end
end

-- the parts of a result that a file can hold: numbers, strings, booleans,
-- tensors, plain tables of them
local function storable(v, seen)
    if tide.is_tensor(v) then return v:detach():to("cpu"):contiguous() end
    local t = type(v)
    if t == "number" or t == "string" or t == "boolean" then return v end
    if t ~= "table" or getmetatable(v) ~= nil then return nil end
    seen = seen or {}
    if seen[v] then return nil end
    seen[v] = true
    local out = {}
    for k, x in pairs(v) do
        if (type(k) == "string" or math.type(k) == "integer") then out[k] = storable(x, seen) end
    end
    seen[v] = nil
    return out
end

local function check_variant_name(name)
    if type(name) ~= "string" or not name:match("^[%w_.+-]+$") then
        error("experiment: a variant name is letters, digits and _ . + - (got '" .. tostring(name) .. "')", 3)
    end
end

-- Runs fn(ex, name) as the variant `name`, unless a previous run in the
-- same folder finished it with the same settings: then its result is
-- loaded (with `skipped = true`). opts.settings: more values that define
-- the variant (they join cfg's settings in the key). Returns the result:
-- what fn returned plus `history` (its records in metrics.jsonl).
function Experiment:variant(name, opts, fn)
    if fn == nil then fn, opts = opts, nil end
    opts = opts or {}
    check_variant_name(name)
    if self.current then error("experiment:variant: '" .. name .. "' started inside '" .. self.current .. "'", 2) end
    local settings = E.settings(self.cfg)
    settings._variant = opts.settings
    local key = canon(settings)
    local st = self.state.variants[name]
    local result
    if not self.cfg.fresh and st and st.key == key and st.done and exists(self:result_path(name)) then
        local ok, _, extra = pcall(tide.checkpoint.load, self:result_path(name), {rng = false})
        if ok then
            result = extra or {}
            result.skipped = true
            result.history = self:history(name)
            self.histories[name] = result.history
            self.loaded[name] = true
            self:say(string.format("%s: finished in an earlier run with the same settings; loaded from %s",
                                   name, self:result_path(name)))
            if opts.on_skip then opts.on_skip(result) end
        end
    end
    if not result then
        if not st or st.key ~= key or self.cfg.fresh or st.done then
            -- a new start: nothing of an earlier run of this variant is kept
            self:_drop_lines(name)
            os.remove(self:checkpoint_path(name))
            os.remove(self:result_path(name))
            st = {key = key, done = false}
            self.state.variants[name] = st
            self:_save_state()
        end
        self.histories[name] = self:history(name)
        tide.manual_seed(self.cfg.seed or 0)
        self.current = name
        local ok, r = pcall(fn, self, name)
        self.current = nil
        if not ok then error(r, 0) end
        result = r or {}
        local keep = {}
        for k, v in pairs(result) do
            if k ~= "history" and k ~= "model" and k ~= "optimizer" then keep[k] = storable(v) end
        end
        tide.checkpoint.save(self:result_path(name), {extra = keep, rng = false})
        result.history = result.history or self:history(name)
        st.done = true
        self:_save_state()
    end
    result.name = name
    if not self.results[name] then self.order[#self.order + 1] = name end
    self.results[name] = result
    return result
end

local function build(x, ...)
    if type(x) == "function" then return x(...) end
    return x
end

-- The standard classifier loop, as a variant (opts.variant) or inside
-- one. See docs/experiment.md for the options.
function Experiment:train_classifier(opts)
    if not self.current then
        local variant = opts.variant
        if not variant then error("experiment:train_classifier: name the variant (variant = ...)", 2) end
        return self:variant(variant, {settings = opts.settings, on_skip = function(result)
            local model = build(opts.model)
            if model then
                if self.cfg.device ~= "cpu" then model:to(self.cfg.device) end
                if exists(self:checkpoint_path(variant)) then
                    tide.checkpoint.load(self:checkpoint_path(variant), {model = model, rng = false})
                end
                model:evaluate()
                result.model = model
            end
        end}, function() return self:train_classifier(opts) end)
    end
    local cfg = self.cfg
    local variant = self.current
    local device = opts.device or cfg.device or "cpu"
    local epochs = opts.epochs or cfg.epochs
    local model = build(opts.model)
    if not model then error("experiment:train_classifier: no model", 2) end
    if device ~= "cpu" then model:to(device) end
    local optimizer = opts.optimizer and build(opts.optimizer, model) or E.optimizer(cfg, model)
    local scheduler = opts.scheduler and build(opts.scheduler, optimizer) or nil
    local per_batch = opts.schedule == "batch"
    local loss_fn = opts.loss or function(logits, y) return tide.F.cross_entropy(logits, y) end
    local eval_loss = opts.eval_loss or loss_fn
    local acc_fn = opts.accuracy
    if acc_fn == nil then acc_fn = function(logits, y) return tide.metrics.accuracy(logits, y) end end
    -- test NLL and ECE need class scores and int64 labels, as the default accuracy
    local calibration = opts.calibration
    if calibration == nil then calibration = opts.accuracy == nil end
    local data = opts.data or {}
    local train = opts.train or data.train
    local test = opts.test or data.test
    if not train then error("experiment:train_classifier: no training data (train = ...)", 2) end
    local train_tf = opts.transform or data.train_transform
    local test_tf = opts.test_transform or data.test_transform or opts.transform
    local loader = E.loader(train, {batch_size = opts.batch_size or cfg.batch_size, shuffle = true,
                                    seed = cfg.seed or 0, transform = train_tf, drop_last = opts.drop_last})
    local total, unit = #loader, "batch"
    if not is_loader(train) then
        total, unit = #train, "img"
        if opts.drop_last then total = #loader * (opts.batch_size or cfg.batch_size) end
    end
    local test_loader = test and E.loader(test, {batch_size = opts.eval_batch_size or 500, transform = test_tf})

    -- resume an interrupted run of this variant from its last checkpoint
    local ckpt = self:checkpoint_path(variant)
    local start = 1
    if opts.checkpoint ~= false and exists(ckpt) then
        local ok, e, extra = pcall(tide.checkpoint.load, ckpt, {model = model, optimizer = optimizer})
        if ok and math.type(e) == "integer" and e >= 1 and e <= epochs then
            if scheduler and extra and extra.scheduler then scheduler:load_state_dict(extra.scheduler) end
            self:_drop_lines(variant, e)
            start = e + 1
            -- the loader's generator: one started epoch per finished one
            for _ = 1, e do for _ in loader:iter() do break end end
            self:say(string.format("%s: resuming after epoch %d from %s", variant, e, ckpt))
        else
            -- unreadable or from another run: start over
            os.remove(ckpt)
            self:_drop_lines(variant)
            if not ok then self:say(string.format("%s: ignoring %s (%s)", variant, ckpt, tostring(e))) end
            model = build(opts.model)
            if device ~= "cpu" then model:to(device) end
            optimizer = opts.optimizer and build(opts.optimizer, model) or E.optimizer(cfg, model)
            scheduler = opts.scheduler and build(opts.scheduler, optimizer) or nil
        end
    end

    local logits, labels
    for epoch = start, epochs do
        local bar = tide.progress.new{total = total, desc = string.format("%s %d/%d", variant, epoch, epochs),
                                      unit = unit, order = {"loss", "acc"},
                                      mode = opts.progress or self.progress}
        model:train()
        local seen, loss_sum, correct = 0, 0, 0
        local t0 = tide.clock()
        local lr = optimizer.param_groups and optimizer.param_groups[1].lr
        for x, y in loader:iter() do
            if device ~= "cpu" then x, y = x:to(device), y:to(device) end
            optimizer:zero_grad()
            local out = model(x)
            local loss = loss_fn(out, y, epoch)
            loss:backward()
            if opts.before_step then opts.before_step(model, epoch) end
            optimizer:step()
            if scheduler and per_batch then scheduler:step() end
            local n = x:size(0)
            seen = seen + n
            loss_sum = loss_sum + loss:item() * n
            local stats = {loss = loss_sum / seen}
            if acc_fn then
                correct = correct + acc_fn(out:detach(), y) * n
                stats.acc = correct / seen
            end
            bar:update(unit == "img" and n or 1, stats)
        end
        bar:close()
        if scheduler and not per_batch then scheduler:step() end
        local seconds = tide.clock() - t0
        local rec = {variant = variant, epoch = epoch, train_loss = loss_sum / seen, seconds = seconds, lr = lr}
        if acc_fn then rec.train_acc = correct / seen end
        if test_loader then
            local t1 = tide.clock()
            logits, labels = E.evaluate(model, test_loader, {device = device})
            tide.no_grad(function() rec.test_loss = eval_loss(logits, labels, epoch):item() end)
            if acc_fn then rec.test_acc = acc_fn(logits, labels) end
            if calibration then
                rec.test_nll = tide.metrics.nll(logits, labels)
                rec.ece = tide.metrics.ece(logits, labels)
            end
            rec.eval_seconds = tide.clock() - t1
        end
        if opts.on_epoch then
            local more = opts.on_epoch(rec, model, epoch, logits, labels)
            if type(more) == "table" then for k, v in pairs(more) do rec[k] = v end end
        end
        self:log(rec)
        if opts.checkpoint ~= false then
            tide.checkpoint.save(ckpt, {model = model, optimizer = optimizer, epoch = epoch,
                                        extra = scheduler and {scheduler = scheduler:state_dict()} or nil})
        end
        if not self.quiet then
            local parts = {string.format("%s epoch %d/%d: train loss %.4f", variant, epoch, epochs, rec.train_loss)}
            if rec.train_acc then parts[#parts + 1] = string.format("acc %.2f%%", 100 * rec.train_acc) end
            if rec.test_acc then parts[#parts + 1] = string.format("test acc %.2f%%", 100 * rec.test_acc) end
            if rec.ece then parts[#parts + 1] = string.format("ECE %.4f", rec.ece) end
            parts[#parts + 1] = string.format("%.1f s", seconds)
            print(table.concat(parts, ", "))
        end
    end
    if loader ~= train then loader:close() end
    if test_loader and test_loader ~= test then test_loader:close() end
    if test_loader and logits == nil then
        logits, labels = E.evaluate(model, test_loader, {device = device})
    end
    model:evaluate()
    local history = self:history(variant)
    local secs = 0
    for _, r in ipairs(history) do secs = secs + (r.seconds or 0) end
    return {history = history, final = history[#history], logits = logits, labels = labels, model = model,
            optimizer = optimizer, seconds_per_epoch = #history > 0 and secs / #history or nil,
            checkpoint = ckpt}
end

-- Series for tide.plot.lines: one per variant (all run so far, or
-- opts.variants), field against epoch.
function Experiment:series(field, variants)
    local out = {}
    for _, name in ipairs(variants or self.order) do
        local x, y = {}, {}
        for _, r in ipairs(self.histories[name] or (self.results[name] or {}).history or {}) do
            if r[field] ~= nil then
                x[#x + 1] = r.epoch
                y[#y + 1] = r[field]
            end
        end
        if #x > 0 then out[#out + 1] = {name = name, x = x, y = y} end
    end
    return out
end

-- A line chart of one field per epoch: {field, file (under out), title,
-- ylabel, variants, logy}; returns the written path.
function Experiment:plot_curves(opts)
    return tide.plot.lines{path = self:path(opts.file or (opts.field .. ".png")), title = opts.title or opts.field,
                           xlabel = opts.xlabel or "epoch", ylabel = opts.ylabel or opts.field,
                           series = self:series(opts.field, opts.variants), logy = opts.logy}
end

-- A reliability diagram of the variants' final test outputs (result.logits
-- and result.labels): {file, title, variants, bins = 15}.
function Experiment:plot_reliability(opts)
    opts = opts or {}
    local series = {}
    for _, name in ipairs(opts.variants or self.order) do
        local r = self.results[name]
        if r and r.logits and r.labels then
            series[#series + 1] = {name = name, bins = tide.metrics.reliability(r.logits, r.labels, {bins = opts.bins or 15})}
        end
    end
    return tide.plot.reliability{path = self:path(opts.file or "reliability.png"),
                                 title = opts.title or "reliability", series = series}
end

local function cpu_model()
    local text = read_file("/proc/cpuinfo") or ""
    local name = text:match("model name%s*:%s*([^\n]+)")
    local cores = 0
    for _ in text:gmatch("\nprocessor%s*:") do cores = cores + 1 end
    if text:match("^processor%s*:") then cores = cores + 1 end
    return name or "unknown CPU", cores
end

local function relative(self, path)
    local prefix = self.out .. "/"
    if path:sub(1, #prefix) == prefix then return path:sub(#prefix + 1) end
    return path
end

local function command_line(cfg)
    local parts = {"tide", cfg._script or "recipe"}
    for _, a in ipairs(cfg._argv or {}) do
        parts[#parts + 1] = a:match("^[%w%-_=./,:]+$") and a or shell_quote(a)
    end
    return table.concat(parts, " ")
end

-- Writes <out>/report.md: title, text, the tables, the plots, notes, the
-- settings, the machine; prints the tables and the paths. Returns the
-- report's path.
function Experiment:report(opts)
    opts = opts or {}
    local cfg = self.cfg
    local tables = {}
    if opts.table then tables[#tables + 1] = opts.table end
    for _, t in ipairs(opts.tables or {}) do tables[#tables + 1] = t end
    local md = {}
    local function add(s) md[#md + 1] = s end
    add("# " .. (opts.title or self.name) .. "\n")
    if opts.text then add(opts.text .. "\n") end
    for i, t in ipairs(tables) do
        add("## " .. (t.title or (i == 1 and "Results" or "Table " .. i)) .. "\n")
        if t.text then add(t.text .. "\n") end
        add(E.markdown_table(t))
    end
    local plots = {}
    for _, p in ipairs(opts.plots or {}) do
        if type(p) == "string" then p = {path = p} end
        plots[#plots + 1] = p
    end
    if #plots > 0 then
        add("## Plots\n")
        for _, p in ipairs(plots) do
            local rel = relative(self, p.path)
            local title = p.title or rel:gsub("%.%w+$", ""):gsub("_", " ")
            if p.path:match("%.png$") then
                add(string.format("![%s](%s)\n", title, rel))
            else
                add(string.format("%s: [%s](%s) (data; gnuplot was not installed, so no image)\n", title, rel, rel))
            end
        end
    end
    if opts.notes and #opts.notes > 0 then
        add("## Notes\n")
        for _, n in ipairs(opts.notes) do add("- " .. n) end
        add("")
    end
    add("## Settings\n")
    add("Command: `" .. command_line(cfg) .. "`\n")
    local s = E.settings(cfg)
    s.out, s.threads = cfg.out, cfg.threads
    local keys = {}
    for k in pairs(s) do keys[#keys + 1] = k end
    table.sort(keys)
    local rows = {}
    for _, k in ipairs(keys) do rows[#rows + 1] = {k, format_default(s[k])} end
    add(E.markdown_table{columns = {"setting", "value"}, rows = rows})
    local loaded = {}
    for _, name in ipairs(self.order) do if self.loaded[name] then loaded[#loaded + 1] = name end end
    if #loaded > 0 then
        add("Loaded from an earlier run with the same settings (not retrained): " .. table.concat(loaded, ", ") .. ".\n")
    end
    add("## Machine\n")
    local cpu, cores = cpu_model()
    add(string.format("- CPU: %s, %d logical cores; tide used %d thread%s", cpu, cores, tide.get_num_threads(),
                      tide.get_num_threads() == 1 and "" or "s"))
    add(string.format("- device: %s", cfg.device or "cpu"))
    add(string.format("- tide %s on %s", tostring(tide.version), _VERSION))
    add(string.format("- seed: %s", tostring(cfg.seed)))
    add(string.format("- date: %s", os.date("!%Y-%m-%d %H:%M UTC")))
    add(string.format("- wall time of this run: %d s", os.time() - self.started))
    add("")
    local path = self:path("report.md")
    write_atomic(path, table.concat(md, "\n"))
    if not self.quiet then
        for i, t in ipairs(tables) do
            if #tables > 1 or t.title then print("\n" .. (t.title or ("Table " .. i))) else print() end
            io.stdout:write(E.format_table(t))
        end
        print()
        print("report: " .. path)
        for _, p in ipairs(plots) do print("plot:   " .. p.path) end
        print("log:    " .. self.jsonl)
    end
    return path
end

E.Experiment = Experiment
return E
