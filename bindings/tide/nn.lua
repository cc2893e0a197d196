-- tide.nn: the Module base, the layer modules, tide.nn.init, and the layer
-- functions of tide.core copied into tide.F. Installed into the tide table
-- by init.lua, after the losses (which it keeps).
--
-- A module is a Lua table whose metatable is its class. It keeps its
-- parameters and buffers as fields (self.weight, self.running_mean) and
-- their names in registration order (self._param_names,
-- self._buffer_names); children likewise (self._modules, self._child_names),
-- and as fields too when the name is not a number. Names follow PyTorch, so
-- state_dict keys read "layer1.0.conv1.weight".

local M = {}

local tide, F -- set by install
local nn = {}
M.nn = nn

-- the functional layers that tide.core may provide; each found is copied
-- into tide.F, and the modules look it up in F at forward time
M.functional = {
    "linear", "conv2d", "batch_norm", "layer_norm", "max_pool2d", "avg_pool2d",
    "adaptive_avg_pool2d", "dropout", "leaky_relu", "embedding", "flatten",
    "adaptive_max_pool2d", "group_norm",
    "relu", "gelu", "sigmoid", "tanh", "softmax", "log_softmax", "one_hot",
}

---------------------------------------------------------------------------
-- argument checks: errors read like the standard library's
---------------------------------------------------------------------------

-- the level of the first caller outside tide's Lua files (a model built
-- by tide.models calls these constructors), so that the position in the
-- message is the user's line
local caller = require "tide.caller"
local in_library = caller.in_library
local function user_level()
    local level = 3
    while true do
        local info = debug.getinfo(level, "S")
        if info == nil then return 0 end
        if not in_library(info.source) and info.what ~= "C" then return level - 1 end
        level = level + 1
    end
end

local function argerror(fname, n, msg)
    error(string.format("bad argument #%d to '%s' (%s)", n, fname, msg), user_level())
end

-- the options table at argument n: a copy holding defaults for what is
-- missing; an unknown name is an error. `known` lists the accepted names
-- (defaults may be nil, so they alone cannot say which names exist).
local function options(fname, n, given, known, defaults)
    if given ~= nil and type(given) ~= "table" then
        argerror(fname, n, "options table expected, got " .. type(given), 4)
    end
    local set = {}
    for _, k in ipairs(known) do set[k] = true end
    local o = {}
    for k, v in pairs(given or {}) do
        if not set[k] then
            argerror(fname, n, string.format("unknown option '%s'; known: %s", tostring(k),
                                             caller.known(set)), 4)
        end
        o[k] = v
    end
    for k, v in pairs(defaults or {}) do
        if o[k] == nil then o[k] = v end
    end
    return o
end

local function check_int(fname, n, v, what, min)
    min = min or 1
    if math.type(v) ~= "integer" and not (type(v) == "number" and v == math.floor(v)) then
        argerror(fname, n, string.format("%s must be an integer, got %s", what,
                                         type(v) == "number" and tostring(v) or type(v)), 4)
    end
    if v < min then
        argerror(fname, n, string.format("%s must be >= %d, got %d", what, min, v), 4)
    end
    return math.tointeger(v)
end

-- a number or a pair {h, w} -> {h, w}
local function pair(fname, n, v, what, min)
    if type(v) == "table" then
        if #v ~= 2 then argerror(fname, n, what .. " must be a number or a pair {h, w}", 4) end
        return {check_int(fname, n, v[1], what, min), check_int(fname, n, v[2], what, min)}
    end
    local x = check_int(fname, n, v, what, min)
    return {x, x}
end

local function show_pair(p)
    if type(p) ~= "table" then return tostring(p) end
    if p[1] == p[2] then return "(" .. p[1] .. ", " .. p[2] .. ")" end
    return "(" .. table.concat(p, ", ") .. ")"
end

-- argument n of fname, which must be a tensor (what: its name)
local function tensor_arg(fname, n, t, what)
    if not tide.is_tensor(t) then
        argerror(fname, n, string.format("%s must be a tensor, got %s", what, type(t)))
    end
    return t
end

-- PyTorch's None (false or nil) -> nil
local function opt(v) if v == false then return nil end return v end

local function functional(name, mname)
    local f = F[name]
    if not f then
        error(string.format("%s: tide.F.%s is not available in this build", mname, name), 3)
    end
    return f
end

---------------------------------------------------------------------------
-- classes
---------------------------------------------------------------------------

local Module = {__name = "Module"}
Module.__index = Module
nn.Module = Module

-- the metamethods each class copies from its parent (Lua looks them up
-- with rawget in the metatable, so they are not inherited through __index)
local inherited = {"__call", "__tostring", "__close"}

-- tide.nn.class(name, parent): a new module class. Calling the class builds
-- an instance and runs class.__init(self, ...) on it.
function nn.class(name, parent)
    parent = parent or Module
    local class = {__name = name, _parent = parent}
    class.__index = class
    for _, k in ipairs(inherited) do class[k] = parent[k] end
    return setmetatable(class, {
        __index = parent,
        __call = function(cls, ...)
            local self = setmetatable({}, cls)
            Module._setup(self)
            cls.__init(self, ...)
            return self
        end,
    })
end

setmetatable(Module, {
    __call = function(cls)
        local self = setmetatable({}, cls)
        Module._setup(self)
        return self
    end,
})

function Module._setup(self)
    rawset(self, "_param_names", {})
    rawset(self, "_buffer_names", {})
    rawset(self, "_child_names", {})
    rawset(self, "_modules", {})
    rawset(self, "training", true)
end

function Module.__init() end

function Module:typename()
    return getmetatable(self).__name
end

function Module:forward()
    error(self:typename() .. ":forward is not implemented", 2)
end

function Module.__call(self, ...)
    return self:forward(...)
end

local function has_name(list, name)
    for _, n in ipairs(list) do if n == name then return true end end
    return false
end

local function check_name(self, fname, name)
    if type(name) ~= "string" and math.type(name) ~= "integer" then
        argerror(fname, 1, "name must be a string, got " .. type(name), 4)
    end
    name = tostring(name)
    if name == "" or name:find(".", 1, true) then
        argerror(fname, 1, "name must be non-empty and contain no '.', got '" .. name .. "'", 4)
    end
    local cls = getmetatable(self)
    if cls[name] ~= nil and not has_name(self._param_names, name) and not has_name(self._buffer_names, name)
       and not has_name(self._child_names, name) then
        argerror(fname, 1, "'" .. name .. "' is a method of " .. self:typename(), 4)
    end
    return name
end

-- a parameter: a tensor that requires grad, listed by parameters(); nil
-- registers nothing (as bias = false)
function Module:register_parameter(name, t)
    name = check_name(self, "register_parameter", name)
    if t == nil then rawset(self, name, nil) return end
    if not tide.is_tensor(t) then argerror("register_parameter", 2, "tensor expected, got " .. type(t)) end
    if not t.requires_grad then t.requires_grad = true end
    rawset(self, name, t)
    if not has_name(self._param_names, name) then table.insert(self._param_names, name) end
    return t
end

-- a buffer: state that is saved but not trained (BatchNorm's running stats)
function Module:register_buffer(name, t)
    name = check_name(self, "register_buffer", name)
    if t ~= nil and not tide.is_tensor(t) then
        argerror("register_buffer", 2, "tensor expected, got " .. type(t))
    end
    rawset(self, name, t)
    if t ~= nil and not has_name(self._buffer_names, name) then table.insert(self._buffer_names, name) end
    return t
end

local function is_module(m)
    if type(m) ~= "table" then return false end
    local mt = getmetatable(m)
    while mt do
        if mt == Module then return true end
        mt = rawget(mt, "_parent")
    end
    return false
end
nn.is_module = is_module

function Module:add_module(name, m)
    name = check_name(self, "add_module", name)
    if not is_module(m) then
        argerror("add_module", 2, "module expected, got " .. type(m))
    end
    if not self._modules[name] then table.insert(self._child_names, name) end
    self._modules[name] = m
    if not tonumber(name) then rawset(self, name, m) end
    return m
end

function Module:named_children()
    local i = 0
    return function()
        i = i + 1
        local name = self._child_names[i]
        if name then return name, self._modules[name] end
    end
end

function Module:children()
    local r = {}
    for _, m in self:named_children() do r[#r + 1] = m end
    return r
end

-- every module of the tree, self first (name ""), depth first, no duplicates
function Module:named_modules(prefix, seen)
    local list = {}
    seen = seen or {}
    local function walk(m, p)
        if seen[m] then return end
        seen[m] = true
        list[#list + 1] = {p, m}
        for name, c in m:named_children() do
            walk(c, p == "" and name or p .. "." .. name)
        end
    end
    walk(self, prefix or "")
    local i = 0
    return function()
        i = i + 1
        if list[i] then return list[i][1], list[i][2] end
    end
end

function Module:modules()
    local r = {}
    for _, m in self:named_modules() do r[#r + 1] = m end
    return r
end

-- (name, tensor) pairs of the tree, in registration order, each tensor once
local function named_tensors(self, field)
    local list, seen = {}, {}
    for prefix, m in self:named_modules() do
        for _, name in ipairs(m[field]) do
            local t = rawget(m, name)
            if t ~= nil and not seen[t] then
                seen[t] = true
                list[#list + 1] = {prefix == "" and name or prefix .. "." .. name, t}
            end
        end
    end
    return list
end

local function iterate(list)
    local i = 0
    return function()
        i = i + 1
        if list[i] then return list[i][1], list[i][2] end
    end
end

function Module:named_parameters() return iterate(named_tensors(self, "_param_names")) end
function Module:named_buffers() return iterate(named_tensors(self, "_buffer_names")) end

function Module:parameters()
    local r = {}
    for _, e in ipairs(named_tensors(self, "_param_names")) do r[#r + 1] = e[2] end
    return r
end

function Module:buffers()
    local r = {}
    for _, e in ipairs(named_tensors(self, "_buffer_names")) do r[#r + 1] = e[2] end
    return r
end

-- the number of parameter elements
function Module:num_parameters()
    local n = 0
    for _, p in ipairs(self:parameters()) do n = n + p:numel() end
    return n
end

-- fn(m) for every child's tree, then for self (PyTorch's order)
function Module:apply(fn)
    if type(fn) ~= "function" then argerror("apply", 1, "function expected, got " .. type(fn)) end
    for _, c in self:named_children() do c:apply(fn) end
    fn(self)
    return self
end

function Module:train(mode)
    if mode == nil then mode = true end
    for _, m in self:named_modules() do rawset(m, "training", mode and true or false) end
    return self
end

function Module:evaluate()
    return self:train(false)
end
Module.eval = Module.evaluate

function Module:zero_grad()
    for _, p in ipairs(self:parameters()) do p:zero_grad() end
end

-- replaces every parameter and buffer by fn(tensor) (the same tensor when
-- nothing changes); a new parameter keeps requiring grad
local function map_tensors(self, fn)
    for _, m in self:named_modules() do
        for _, name in ipairs(m._param_names) do
            local p = rawget(m, name)
            local q = tide.no_grad(fn, p)
            if q ~= p then
                q = q:detach()
                q.requires_grad = true
                rawset(m, name, q)
            end
        end
        for _, name in ipairs(m._buffer_names) do
            local b = rawget(m, name)
            if b ~= nil then rawset(m, name, tide.no_grad(fn, b)) end
        end
    end
    return self
end

local float_dtypes = {float32 = true, float64 = true, float16 = true, bfloat16 = true}

-- to(device | dtype | {device =, dtype =}): floating dtypes change only
-- floating tensors (num_batches_tracked stays int64)
function Module:to(where)
    local device, dtype
    if type(where) == "string" then
        if float_dtypes[where] or where == "int64" or where == "uint8" then dtype = where else device = where end
    elseif type(where) == "table" then
        device, dtype = where.device, where.dtype
    else
        argerror("to", 1, "device or dtype expected, got " .. type(where))
    end
    if dtype ~= nil and not float_dtypes[dtype] then
        argerror("to", 1, "a module converts to a floating dtype, got '" .. tostring(dtype) .. "'")
    end
    if device ~= nil then
        local kind = device:match("^(%a+)")
        if kind == "cuda" and not (tide.cuda and tide.cuda.is_available and tide.cuda.is_available()) then
            argerror("to", 1, "device '" .. device .. "' is not available (no CUDA device or a build without CUDA)")
        elseif kind ~= "cuda" and kind ~= "cpu" then
            argerror("to", 1, "unknown device '" .. device .. "'")
        end
    end
    return map_tensors(self, function(t)
        local r = t
        if device ~= nil then r = r:to(device) end
        if dtype ~= nil and float_dtypes[r:dtype()] and r:dtype() ~= dtype then r = r:to(dtype) end
        return r
    end)
end

function Module:float() return self:to("float32") end
function Module:double() return self:to("float64") end
function Module:cpu() return self:to("cpu") end
function Module:cuda() return self:to("cuda") end

-- name -> tensor for every parameter and buffer (detached; sharing storage)
function Module:state_dict()
    local sd = {}
    for _, e in ipairs(named_tensors(self, "_param_names")) do sd[e[1]] = e[2]:detach() end
    for _, e in ipairs(named_tensors(self, "_buffer_names")) do sd[e[1]] = e[2]:detach() end
    return sd
end

-- the state_dict as a safetensors file, written to a temporary file and
-- renamed (tide.checkpoint.save_module); load restores it in place
function Module:save(path)
    tide.checkpoint.save_module(self, path)
    return self
end

function Module:load(path) return tide.checkpoint.load_module(self, path) end

-- the state_dict keys in registration order: parameters, then buffers,
-- module by module as PyTorch lists them
function Module:state_dict_keys()
    local keys = {}
    for prefix, m in self:named_modules() do
        for _, field in ipairs({"_param_names", "_buffer_names"}) do
            for _, name in ipairs(m[field]) do
                if rawget(m, name) ~= nil then keys[#keys + 1] = prefix == "" and name or prefix .. "." .. name end
            end
        end
    end
    return keys
end

local function shape_str(s)
    local parts = {}
    for i = 1, #s do parts[i] = tostring(s[i]) end
    return "(" .. table.concat(parts, ", ") .. ")"
end

-- copies sd's tensors into the module's (in place, without grad). Missing
-- or unexpected keys are an error when strict (the default), shapes that
-- differ always; nothing is copied when anything is wrong. Returns
-- {missing_keys = {...}, unexpected_keys = {...}}.
function Module:load_state_dict(sd, opts)
    if type(sd) ~= "table" then argerror("load_state_dict", 1, "table of tensors expected, got " .. type(sd)) end
    local o = options("load_state_dict", 2, opts, {"strict"}, {strict = true})
    local own = {}
    for _, e in ipairs(named_tensors(self, "_param_names")) do own[e[1]] = e[2] end
    for _, e in ipairs(named_tensors(self, "_buffer_names")) do own[e[1]] = e[2] end
    local missing, unexpected, mismatch = {}, {}, {}
    for _, k in ipairs(self:state_dict_keys()) do
        if sd[k] == nil then missing[#missing + 1] = k end
    end
    for k, v in pairs(sd) do
        if own[k] == nil then
            unexpected[#unexpected + 1] = tostring(k)
        elseif not tide.is_tensor(v) then
            mismatch[#mismatch + 1] = string.format("%s: tensor expected, got %s", k, type(v))
        elseif shape_str(v:shape()) ~= shape_str(own[k]:shape()) then
            mismatch[#mismatch + 1] = string.format("%s: shape %s in the state dict, %s in the model",
                                                    k, shape_str(v:shape()), shape_str(own[k]:shape()))
        end
    end
    table.sort(unexpected)
    table.sort(mismatch)
    local problems = {}
    if o.strict and #missing > 0 then problems[#problems + 1] = "missing keys: " .. table.concat(missing, ", ") end
    if o.strict and #unexpected > 0 then
        problems[#problems + 1] = "unexpected keys: " .. table.concat(unexpected, ", ")
    end
    if #mismatch > 0 then problems[#problems + 1] = "size mismatch for " .. table.concat(mismatch, "; ") end
    if #problems > 0 then
        error(string.format("load_state_dict: error(s) loading the state dict of %s: %s", self:typename(),
                            table.concat(problems, "; ")), 2)
    end
    tide.no_grad(function()
        for k, t in pairs(own) do
            if sd[k] ~= nil then t:copy_(sd[k]) end
        end
    end)
    return {missing_keys = missing, unexpected_keys = unexpected}
end

-- the text inside the parentheses of the tree print; classes override
function Module:extra_repr() -- luacheck: ignore 212/self (a method classes override)
    return ""
end

local function indent(s)
    return (s:gsub("\n", "\n  "))
end

-- PyTorch's repr: Sequential(\n  (0): Linear(in_features=...)\n)
function Module.__tostring(self)
    local lines = {}
    local extra = self:extra_repr()
    if extra ~= "" then
        for line in (extra .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
    end
    for name, c in self:named_children() do
        lines[#lines + 1] = "(" .. name .. "): " .. indent(tostring(c))
    end
    local s = self:typename() .. "("
    if #lines == 1 and self._child_names[1] == nil then
        s = s .. lines[1]
    elseif #lines > 0 then
        s = s .. "\n  " .. table.concat(lines, "\n  ") .. "\n"
    end
    return s .. ")"
end

-- calls child `name` (a string) with the arguments; an error in it is
-- raised again, prefixed with which child of which container failed
function Module:call_child(name, ...)
    local child = self._modules[name]
    local res = table.pack(pcall(child.forward, child, ...))
    if not res[1] then
        local err = res[2]
        if type(err) == "string" then
            err = string.format("in child %s (%s) of %s: %s", name, child:typename(), self:typename(), err)
        end
        error(err, 0)
    end
    return table.unpack(res, 2, res.n)
end

---------------------------------------------------------------------------
-- containers
---------------------------------------------------------------------------

local Sequential = nn.class("Sequential")
nn.Sequential = Sequential

function Sequential:__init(...)
    local n = select("#", ...)
    for i = 1, n do
        local m = select(i, ...)
        if not is_module(m) then
            argerror("Sequential", i, "module expected, got " .. type(m), 4)
        end
        self:add_module(tostring(i - 1), m)
    end
end

function Sequential:forward(x, ...)
    local first = true
    for _, name in ipairs(self._child_names) do
        if first then
            x = self:call_child(name, x, ...)
            first = false
        else
            x = self:call_child(name, x)
        end
    end
    return x
end

-- appends a module (named by its 0-based index); returns self
function Sequential:append(m)
    if not is_module(m) then argerror("append", 1, "module expected, got " .. type(m)) end
    self:add_module(tostring(#self._child_names), m)
    return self
end

-- the child at a 0-based index
function Sequential:get(i)
    if math.type(i) ~= "integer" then argerror("get", 1, "integer index expected") end
    if i < 0 then i = i + #self._child_names end
    local name = self._child_names[i + 1]
    if name == nil then
        argerror("get", 1, string.format("index %d out of range for %d children", i, #self._child_names))
    end
    return self._modules[name]
end

function Sequential:__len()
    return #self._child_names
end

---------------------------------------------------------------------------
-- tide.nn.init
---------------------------------------------------------------------------

local init = {}
nn.init = init

local function check_tensor(fname, t)
    if not tide.is_tensor(t) then argerror(fname, 1, "tensor expected, got " .. type(t), 3) end
end

function init.calculate_fan_in_and_fan_out(t)
    check_tensor("calculate_fan_in_and_fan_out", t)
    local s = t:shape()
    if #s < 2 then
        argerror("calculate_fan_in_and_fan_out", 1, "fan in and fan out need a tensor of at least 2 dims, got "
                 .. #s, 3)
    end
    local receptive = 1
    for i = 3, #s do receptive = receptive * s[i] end
    return s[2] * receptive, s[1] * receptive
end

-- PyTorch's recommended gains
function init.calculate_gain(nonlinearity, param)
    local linear = {linear = true, conv1d = true, conv2d = true, conv3d = true, conv_transpose1d = true,
                    conv_transpose2d = true, conv_transpose3d = true, sigmoid = true}
    if linear[nonlinearity] then return 1 end
    if nonlinearity == "tanh" then return 5 / 3 end
    if nonlinearity == "relu" then return math.sqrt(2) end
    if nonlinearity == "selu" then return 3 / 4 end
    if nonlinearity == "leaky_relu" then
        local slope = param == nil and 0.01 or param
        if type(slope) ~= "number" then argerror("calculate_gain", 2, "negative slope must be a number", 3) end
        return math.sqrt(2 / (1 + slope * slope))
    end
    argerror("calculate_gain", 1, "unsupported nonlinearity '" .. tostring(nonlinearity) .. "'", 3)
end

local function fill_uniform(t, lo, hi)
    tide.no_grad(function()
        local r = tide.rand(t:shape(), {dtype = t:dtype()})
        t:copy_(r:mul_(hi - lo):add_(lo))
    end)
    return t
end

local function fill_normal(t, mean, std)
    tide.no_grad(function()
        local r = tide.randn(t:shape(), {dtype = t:dtype()})
        t:copy_(r:mul_(std):add_(mean))
    end)
    return t
end

local function kaiming_std(fname, t, opts)
    check_tensor(fname, t)
    local o = options(fname, 2, opts, {"a", "mode", "nonlinearity"},
                      {a = 0, mode = "fan_in", nonlinearity = "leaky_relu"})
    if o.mode ~= "fan_in" and o.mode ~= "fan_out" then
        argerror(fname, 2, "mode must be 'fan_in' or 'fan_out', got '" .. tostring(o.mode) .. "'", 4)
    end
    local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
    local fan = o.mode == "fan_in" and fan_in or fan_out
    return init.calculate_gain(o.nonlinearity, o.a) / math.sqrt(fan)
end

-- U(-b, b), b = gain * sqrt(3 / fan)
function init.kaiming_uniform_(t, opts)
    local bound = math.sqrt(3) * kaiming_std("kaiming_uniform_", t, opts)
    return fill_uniform(t, -bound, bound)
end

-- N(0, std^2), std = gain / sqrt(fan)
function init.kaiming_normal_(t, opts)
    return fill_normal(t, 0, kaiming_std("kaiming_normal_", t, opts))
end

local function xavier_std(fname, t, opts)
    check_tensor(fname, t)
    local o = options(fname, 2, opts, {"gain"}, {gain = 1})
    local fan_in, fan_out = init.calculate_fan_in_and_fan_out(t)
    return o.gain * math.sqrt(2 / (fan_in + fan_out))
end

-- U(-a, a), a = gain * sqrt(6 / (fan_in + fan_out))
function init.xavier_uniform_(t, opts)
    local a = math.sqrt(3) * xavier_std("xavier_uniform_", t, opts)
    return fill_uniform(t, -a, a)
end

function init.xavier_normal_(t, opts)
    return fill_normal(t, 0, xavier_std("xavier_normal_", t, opts))
end

function init.uniform_(t, opts)
    check_tensor("uniform_", t)
    local o = options("uniform_", 2, opts, {"a", "b"}, {a = 0, b = 1})
    return fill_uniform(t, o.a, o.b)
end

function init.normal_(t, opts)
    check_tensor("normal_", t)
    local o = options("normal_", 2, opts, {"mean", "std"}, {mean = 0, std = 1})
    return fill_normal(t, o.mean, o.std)
end

function init.constant_(t, value)
    check_tensor("constant_", t)
    if type(value) ~= "number" then argerror("constant_", 2, "number expected, got " .. type(value), 3) end
    tide.no_grad(function() t:fill_(value) end)
    return t
end

function init.zeros_(t)
    check_tensor("zeros_", t)
    tide.no_grad(function() t:fill_(0) end)
    return t
end

function init.ones_(t)
    check_tensor("ones_", t)
    tide.no_grad(function() t:fill_(1) end)
    return t
end

---------------------------------------------------------------------------
-- layers
---------------------------------------------------------------------------

local function bool_str(b) return b and "true" or "false" end

-- Linear(in, out, {bias = true}): y = x W^T + b
local Linear = nn.class("Linear")
nn.Linear = Linear

function Linear:__init(in_features, out_features, opts)
    in_features = check_int("Linear", 1, in_features, "in_features", 0)
    out_features = check_int("Linear", 2, out_features, "out_features", 0)
    local o = options("Linear", 3, opts, {"bias", "dtype"}, {bias = true, dtype = "float32"})
    self.in_features, self.out_features = in_features, out_features
    self:register_parameter("weight", tide.empty({out_features, in_features}, {dtype = o.dtype}))
    if o.bias then self:register_parameter("bias", tide.empty({out_features}, {dtype = o.dtype})) end
    self:reset_parameters()
end

-- PyTorch's defaults: kaiming_uniform_(a = sqrt(5)), bias U(-1/sqrt(fan_in), 1/sqrt(fan_in))
local function reset_kaiming(self)
    init.kaiming_uniform_(self.weight, {a = math.sqrt(5)})
    if self.bias ~= nil then
        local fan_in = init.calculate_fan_in_and_fan_out(self.weight)
        local bound = fan_in > 0 and 1 / math.sqrt(fan_in) or 0
        fill_uniform(self.bias, -bound, bound)
    end
end
Linear.reset_parameters = reset_kaiming

function Linear:forward(x)
    if F.linear then return F.linear(x, self.weight, {bias = self.bias}) end
    local y = x:matmul(self.weight:t())
    if self.bias ~= nil then y = y + self.bias end
    return y
end

function Linear:extra_repr()
    return string.format("in_features=%d, out_features=%d, bias=%s", self.in_features, self.out_features,
                         bool_str(self.bias ~= nil))
end

-- Conv2d is nn_conv.lua's, with the rest of the conv family

-- the setup BatchNorm and InstanceNorm (nn_norm.lua) share: (num_features,
-- {eps = 1e-5, momentum = 0.1, affine, track_running_stats, dtype}) with
-- the class's defaults of affine and track_running_stats; weight and bias
-- when affine, the running stats when tracked
local function norm_init(self, name, num_features, opts, affine, track_running_stats)
    num_features = check_int(name, 1, num_features, "num_features")
    local o = options(name, 2, opts, {"eps", "momentum", "affine", "track_running_stats", "dtype"},
                      {eps = 1e-5, momentum = 0.1, affine = affine, track_running_stats = track_running_stats,
                       dtype = "float32"})
    self.num_features, self.eps, self.momentum = num_features, o.eps, o.momentum
    self.affine, self.track_running_stats = o.affine, o.track_running_stats
    if o.affine then
        self:register_parameter("weight", tide.ones({num_features}, {dtype = o.dtype}))
        self:register_parameter("bias", tide.zeros({num_features}, {dtype = o.dtype}))
    end
    if o.track_running_stats then
        self:register_buffer("running_mean", tide.zeros({num_features}, {dtype = o.dtype}))
        self:register_buffer("running_var", tide.ones({num_features}, {dtype = o.dtype}))
        self:register_buffer("num_batches_tracked", tide.zeros({}, {dtype = "int64"}))
    end
end

local function norm_repr(self)
    return string.format("%d, eps=%g, momentum=%s, affine=%s, track_running_stats=%s", self.num_features,
                         self.eps, self.momentum == false and "None" or string.format("%g", self.momentum),
                         bool_str(self.affine), bool_str(self.track_running_stats))
end

-- BatchNorm1d / BatchNorm2d(n, {eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true})
local function batchnorm_class(name, dims)
    local class = nn.class(name)
    function class:__init(num_features, opts)
        norm_init(self, name, num_features, opts, true, true)
    end
    function class:forward(x)
        if not tide.is_tensor(x) then argerror(name, 1, "tensor expected, got " .. type(x)) end
        local d = x:dim()
        if not dims[d] then
            argerror(name, 1, string.format("expected %s input, got %dD", dims.text, d))
        end
        local f = functional("batch_norm", name)
        local use_batch = self.training or not self.track_running_stats
        -- momentum = false (PyTorch's None): the cumulative average, 1 / batches seen
        local momentum = self.momentum or 0.0
        if self.training and self.track_running_stats then
            tide.no_grad(function() self.num_batches_tracked:add_(1) end)
            if self.momentum == false then momentum = 1 / self.num_batches_tracked:item() end
        end
        return f(x, self.running_mean, self.running_var, {weight = self.weight, bias = self.bias,
                 training = use_batch, momentum = momentum, eps = self.eps})
    end
    class.extra_repr = norm_repr
    return class
end
nn.BatchNorm1d = batchnorm_class("BatchNorm1d", {[2] = true, [3] = true, text = "2D or 3D"})
nn.BatchNorm2d = batchnorm_class("BatchNorm2d", {[4] = true, text = "4D"})
nn.BatchNorm3d = batchnorm_class("BatchNorm3d", {[5] = true, text = "5D"})

-- LayerNorm(normalized_shape, {eps = 1e-5, elementwise_affine = true})
local LayerNorm = nn.class("LayerNorm")
nn.LayerNorm = LayerNorm

function LayerNorm:__init(shape, opts)
    if type(shape) == "number" then shape = {shape} end
    if type(shape) ~= "table" or #shape == 0 then
        argerror("LayerNorm", 1, "normalized_shape must be an integer or a list of integers")
    end
    local s = {}
    for i, v in ipairs(shape) do s[i] = check_int("LayerNorm", 1, v, "normalized_shape") end
    local o = options("LayerNorm", 2, opts, {"eps", "elementwise_affine", "dtype"},
                      {eps = 1e-5, elementwise_affine = true, dtype = "float32"})
    self.normalized_shape, self.eps, self.elementwise_affine = s, o.eps, o.elementwise_affine
    if o.elementwise_affine then
        self:register_parameter("weight", tide.ones(s, {dtype = o.dtype}))
        self:register_parameter("bias", tide.zeros(s, {dtype = o.dtype}))
    end
end

function LayerNorm:forward(x)
    return functional("layer_norm", "LayerNorm")(x, self.normalized_shape,
                                                 {weight = self.weight, bias = self.bias, eps = self.eps})
end

function LayerNorm:extra_repr()
    return string.format("(%s,), eps=%g, elementwise_affine=%s", table.concat(self.normalized_shape, ", "),
                         self.eps, bool_str(self.elementwise_affine))
end

-- activations without state
local function activation(name, fname, method)
    local class = nn.class(name)
    function class:__init(opts) -- luacheck: ignore 212/self (Module's protocol)
        options(name, 1, opts, {}, {})
    end
    function class:forward(x) -- luacheck: ignore 212/self (Module's protocol)
        local f = F[fname]
        if f then return f(x) end
        if tide.is_tensor(x) and x[method] then return x[method](x) end
        return functional(fname, name)(x)
    end
    nn[name] = class
end
activation("ReLU", "relu", "relu")
-- GELU, with its approximate option, comes from the op table (nn_activation.lua)
activation("Sigmoid", "sigmoid", "sigmoid")
activation("Tanh", "tanh", "tanh")

local LeakyReLU = nn.class("LeakyReLU")
nn.LeakyReLU = LeakyReLU
function LeakyReLU:__init(opts)
    local o = options("LeakyReLU", 1, opts, {"negative_slope"}, {negative_slope = 0.01})
    self.negative_slope = o.negative_slope
end
function LeakyReLU:forward(x)
    return functional("leaky_relu", "LeakyReLU")(x, {negative_slope = self.negative_slope})
end
function LeakyReLU:extra_repr() return "negative_slope=" .. tostring(self.negative_slope) end

local function softmax_class(name, fname)
    local class = nn.class(name)
    function class:__init(dim)
        if math.type(dim) ~= "integer" then
            argerror(name, 1, "dim must be an integer, got " .. (type(dim) == "number" and tostring(dim) or type(dim)))
        end
        self.dim = dim
    end
    function class:forward(x) return F[fname](x, self.dim) end
    function class:extra_repr() return "dim=" .. self.dim end
    nn[name] = class
end
softmax_class("Softmax", "softmax")
softmax_class("LogSoftmax", "log_softmax")

-- MaxPool2d(k, {stride = k, padding = 0, dilation = 1, return_indices = false, ceil_mode = false})
local MaxPool2d = nn.class("MaxPool2d")
nn.MaxPool2d = MaxPool2d
function MaxPool2d:__init(kernel_size, opts)
    local k = pair("MaxPool2d", 1, kernel_size, "kernel_size")
    local o = options("MaxPool2d", 2, opts, {"stride", "padding", "dilation", "return_indices", "ceil_mode"},
                      {padding = 0, dilation = 1, return_indices = false, ceil_mode = false})
    self.return_indices = o.return_indices
    self.kernel_size = kernel_size
    self.stride = o.stride == nil and kernel_size or o.stride
    pair("MaxPool2d", 2, self.stride, "stride")
    self.padding, self.dilation, self.ceil_mode = o.padding, o.dilation, o.ceil_mode
    pair("MaxPool2d", 2, self.padding, "padding", 0)
    local p = pair("MaxPool2d", 2, self.padding, "padding", 0)
    if p[1] * 2 > k[1] or p[2] * 2 > k[2] then
        argerror("MaxPool2d", 2, "padding should be at most half of the kernel size")
    end
end
function MaxPool2d:forward(x)
    return functional("max_pool2d", "MaxPool2d")(x, self.kernel_size, {stride = self.stride,
        padding = self.padding, dilation = self.dilation, ceil_mode = self.ceil_mode,
        return_indices = self.return_indices})
end
function MaxPool2d:extra_repr()
    return string.format("kernel_size=%s, stride=%s, padding=%s, dilation=%s, ceil_mode=%s",
                         show_pair(self.kernel_size), show_pair(self.stride), show_pair(self.padding),
                         show_pair(self.dilation), bool_str(self.ceil_mode))
end

-- AvgPool2d(k, {stride = k, padding = 0, ceil_mode = false, count_include_pad = true,
--               divisor_override = false})
local AvgPool2d = nn.class("AvgPool2d")
nn.AvgPool2d = AvgPool2d
function AvgPool2d:__init(kernel_size, opts)
    pair("AvgPool2d", 1, kernel_size, "kernel_size")
    local o = options("AvgPool2d", 2, opts, {"stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"},
                      {padding = 0, ceil_mode = false, count_include_pad = true, divisor_override = false})
    if o.divisor_override ~= false then check_int("AvgPool2d", 2, o.divisor_override, "divisor_override") end
    self.divisor_override = o.divisor_override
    self.kernel_size = kernel_size
    self.stride = o.stride == nil and kernel_size or o.stride
    pair("AvgPool2d", 2, self.stride, "stride")
    pair("AvgPool2d", 2, o.padding, "padding", 0)
    self.padding, self.ceil_mode, self.count_include_pad = o.padding, o.ceil_mode, o.count_include_pad
end
function AvgPool2d:forward(x)
    return functional("avg_pool2d", "AvgPool2d")(x, self.kernel_size, {stride = self.stride,
        padding = self.padding, ceil_mode = self.ceil_mode, count_include_pad = self.count_include_pad,
        divisor_override = self.divisor_override or nil})
end
function AvgPool2d:extra_repr()
    return string.format("kernel_size=%s, stride=%s, padding=%s", show_pair(self.kernel_size),
                         show_pair(self.stride), show_pair(self.padding))
end

-- AdaptiveAvgPool2d(output_size)
local AdaptiveAvgPool2d = nn.class("AdaptiveAvgPool2d")
nn.AdaptiveAvgPool2d = AdaptiveAvgPool2d
function AdaptiveAvgPool2d:__init(output_size)
    pair("AdaptiveAvgPool2d", 1, output_size, "output_size")
    self.output_size = output_size
end
function AdaptiveAvgPool2d:forward(x)
    return functional("adaptive_avg_pool2d", "AdaptiveAvgPool2d")(x, self.output_size)
end
function AdaptiveAvgPool2d:extra_repr() return "output_size=" .. show_pair(self.output_size) end

-- Dropout({p = 0.5}): active in training mode only
local Dropout = nn.class("Dropout")
nn.Dropout = Dropout
function Dropout:__init(opts)
    local o = options("Dropout", 1, opts, {"p"}, {p = 0.5})
    if type(o.p) ~= "number" or o.p < 0 or o.p > 1 then
        argerror("Dropout", 1, "p must be a probability in [0, 1], got " .. tostring(o.p))
    end
    self.p = o.p
end
function Dropout:forward(x)
    if not self.training or self.p == 0 then return x end
    return functional("dropout", "Dropout")(x, {p = self.p, training = self.training})
end
function Dropout:extra_repr() return "p=" .. tostring(self.p) end

-- Flatten({start_dim = 1, end_dim = -1})
local Flatten = nn.class("Flatten")
nn.Flatten = Flatten
function Flatten:__init(opts)
    local o = options("Flatten", 1, opts, {"start_dim", "end_dim"}, {start_dim = 1, end_dim = -1})
    self.start_dim, self.end_dim = o.start_dim, o.end_dim
end
function Flatten:forward(x)
    if F.flatten then return F.flatten(x, {start_dim = self.start_dim, end_dim = self.end_dim}) end
    return x:flatten(self.start_dim, self.end_dim)
end
function Flatten:extra_repr() return string.format("start_dim=%d, end_dim=%d", self.start_dim, self.end_dim) end

-- Embedding(n, d, {padding_idx}): weight N(0, 1), the padding row zero
local Embedding = nn.class("Embedding")
nn.Embedding = Embedding
function Embedding:__init(num_embeddings, embedding_dim, opts)
    num_embeddings = check_int("Embedding", 1, num_embeddings, "num_embeddings")
    embedding_dim = check_int("Embedding", 2, embedding_dim, "embedding_dim")
    local o = options("Embedding", 3, opts, {"padding_idx", "dtype"}, {dtype = "float32"})
    local pad = o.padding_idx
    if pad ~= nil then
        if math.type(pad) ~= "integer" or pad < -num_embeddings or pad >= num_embeddings then
            argerror("Embedding", 3, string.format("padding_idx must be an integer in [%d, %d), got %s",
                                                   -num_embeddings, num_embeddings, tostring(pad)))
        end
        if pad < 0 then pad = pad + num_embeddings end
    end
    self.num_embeddings, self.embedding_dim, self.padding_idx = num_embeddings, embedding_dim, pad
    self:register_parameter("weight", tide.empty({num_embeddings, embedding_dim}, {dtype = o.dtype}))
    init.normal_(self.weight)
    if pad ~= nil then tide.no_grad(function() self.weight:select(0, pad):fill_(0) end) end
end
function Embedding:forward(idx)
    return functional("embedding", "Embedding")(idx, self.weight, {padding_idx = self.padding_idx})
end
function Embedding:extra_repr()
    local s = string.format("%d, %d", self.num_embeddings, self.embedding_dim)
    if self.padding_idx ~= nil then s = s .. ", padding_idx=" .. self.padding_idx end
    return s
end

-- Identity(...): returns its input
local Identity = nn.class("Identity")
nn.Identity = Identity
function Identity:forward(x) return x end -- luacheck: ignore 212/self (Module's protocol)

---------------------------------------------------------------------------

-- the option rule for constructors outside this file (the models):
-- check_options(fname, argn, given, known_names, defaults) -> a copy with
-- defaults filled in; an unknown name is an error
nn.check_options = options

-- what the layer files beside this one (M.parts) share with it: the
-- argument checks, so their messages read the same
M.util = {argerror = argerror, options = options, check_int = check_int, pair = pair,
          show_pair = show_pair, functional = functional, user_level = user_level,
          norm_init = norm_init, norm_repr = norm_repr, reset_kaiming = reset_kaiming,
          check_tensor = tensor_arg, bool_str = bool_str, opt = opt}

-- layer files, each `install(nn, tide, core, util)` adding its modules to
-- nn and its functions to tide.F (and tide, for tensor ops)
M.parts = {"nn_activation", "nn_conv", "nn_norm", "nn_rnn", "nn_attention"}

function M.install(t, core)
    tide = t
    F = tide.F
    for _, name in ipairs(M.functional) do
        if F[name] == nil and core[name] ~= nil then F[name] = core[name] end
    end
    for _, part in ipairs(M.parts) do require("tide." .. part).install(nn, tide, core, M.util) end
    for k, v in pairs(nn) do tide.nn[k] = v end
end

return M
