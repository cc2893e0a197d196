-- tide.nn's activation modules and the activation functions of tide.F,
-- with PyTorch 1.13's semantics, defaults and printing.
--
-- The elementwise ones are rows of tide's op table (runtime/op_table.c):
-- their functions are tide.core's, copied into tide.F here, and each
-- module reads its parameters' names and defaults from its row. PReLU,
-- GLU and Softmin are compositions of differentiable ops, so their
-- gradients (PReLU's weight gradient is the fixed-order sum of a
-- broadcast) and their CUDA runs come from those ops:
-- - prelu(x, w) = where(x > 0, x, w x), w viewed along dim 1;
-- - glu(x, dim) = a sigmoid(b), a and b the halves of x along dim;
-- - softmin(x, dim) = softmax(-x, dim).

local M = {}

function M.install(nn, tide, core, util)
    local F = tide.F
    local argerror, options, check_int = util.argerror, util.options, util.check_int

    for name, fn in pairs(core.functional_ops) do F[name] = fn end
    local rows = {}
    for _, row in ipairs(core.op_table()) do rows[row.name] = row end

    local check_tensor = util.check_tensor

    local function check_dim(fname, n, dim)
        if math.type(dim) ~= "integer" then
            argerror(fname, n, "dim must be an integer, got " ..
                     (type(dim) == "number" and tostring(dim) or type(dim)))
        end
        return dim
    end

    -------------------------------------------------------------------------
    -- modules over an op-table row: the row's required parameters
    -- positionally, the others by name in one table, kept as fields under
    -- their names; `repr` gives PyTorch's extra_repr. PyTorch's defaults
    -- are floats except where `int_defaults` (Softplus's beta = 1).
    -------------------------------------------------------------------------
    local function row_module(cname, fname, repr, int_defaults)
        local row = assert(rows[fname], fname)
        local class = nn.class(cname)
        local required, known, defaults = {}, {}, {}
        for _, p in ipairs(row.params) do
            if p.required then
                required[#required + 1] = p
            else
                known[#known + 1] = p.name
                defaults[p.name] = int_defaults and math.tointeger(p.default) or p.default
            end
        end
        function class:__init(...)
            local n = select("#", ...)
            local args = {...}
            for i, p in ipairs(required) do
                if type(args[i]) ~= "number" then
                    argerror(cname, i, string.format("%s must be a number, got %s", p.name, type(args[i])))
                end
                self[p.name] = args[i]
            end
            local o = options(cname, #required + 1, args[#required + 1], known, defaults)
            if n > #required + 1 then
                argerror(cname, #required + 2, "unexpected argument (options go in one table)")
            end
            for _, p in ipairs(row.params) do
                if not p.required then
                    local v = o[p.name]
                    local ok = p.choices == nil and type(v) == "number"
                    for _, c in ipairs(p.choices or {}) do ok = ok or v == c end
                    if not ok then
                        argerror(cname, #required + 1, p.choices and
                                 string.format("%s must be one of \"%s\", got %s", p.name,
                                               table.concat(p.choices, "\", \""), tostring(v))
                                 or string.format("%s must be a number, got %s", p.name, type(v)))
                    end
                    self[p.name] = v
                end
            end
        end
        function class:forward(x)
            local args, opts = {}, {}
            for _, p in ipairs(row.params) do
                if p.required then args[#args + 1] = self[p.name] else opts[p.name] = self[p.name] end
            end
            args[#args + 1] = opts
            return (F[fname] or core[fname])(x, table.unpack(args))
        end
        if repr then class.extra_repr = repr end
        nn[cname] = class
        return class
    end

    row_module("ELU", "elu", function(self) return "alpha=" .. tostring(self.alpha) end)
    row_module("SELU", "selu")
    row_module("CELU", "celu", function(self) return "alpha=" .. tostring(self.alpha) end)
    row_module("SiLU", "silu")
    row_module("Mish", "mish")
    row_module("ReLU6", "relu6")
    local Hardtanh = row_module("Hardtanh", "hardtanh", function(self)
        return string.format("min_val=%s, max_val=%s", tostring(self.min_val), tostring(self.max_val))
    end)
    local hardtanh_init = Hardtanh.__init
    function Hardtanh:__init(opts)
        hardtanh_init(self, opts)
        local ordered = self.max_val > self.min_val -- false for NaN too, as PyTorch's assert
        if not ordered then
            argerror("Hardtanh", 1, string.format("max_val (%s) must be greater than min_val (%s)",
                                                  tostring(self.max_val), tostring(self.min_val)))
        end
    end
    row_module("Hardswish", "hardswish")
    row_module("Hardsigmoid", "hardsigmoid")
    row_module("Softplus", "softplus", function(self)
        return string.format("beta=%s, threshold=%s", tostring(self.beta), tostring(self.threshold))
    end, true)
    row_module("Softsign", "softsign")
    row_module("LogSigmoid", "logsigmoid")
    row_module("Threshold", "threshold", function(self)
        return string.format("threshold=%s, value=%s", tostring(self.threshold), tostring(self.value))
    end)
    row_module("GELU", "gelu", function(self) return "approximate='" .. self.approximate .. "'" end)

    -------------------------------------------------------------------------
    -- F.prelu(x, weight) (also tide.prelu, x:prelu): weight has one
    -- element, or one per channel (dim 1; an input of fewer dims has one)
    -------------------------------------------------------------------------
    local function prelu(x, weight)
        local fname = "prelu"
        check_tensor(fname, 1, x, "input")
        check_tensor(fname, 2, weight, "weight")
        local nw, shape = weight:numel(), x:shape()
        if weight:dim() > 1 then
            argerror(fname, 2, string.format("weight must be 1-d or 0-d, got %dD", weight:dim()))
        end
        local w
        if nw == 1 then
            w = weight:reshape({})
        else
            local c = #shape >= 2 and shape[2] or 1
            if nw ~= c then
                argerror(fname, 2, string.format("weight has %d elements, but the input has %d channels", nw, c))
            end
            local view = {nw}
            for _ = 3, #shape do view[#view + 1] = 1 end
            w = weight:view(view)
        end
        return tide.where(x:gt(0), x, w * x)
    end
    F.prelu = prelu
    tide.prelu = prelu
    tide.Tensor.prelu = prelu

    local PReLU = nn.class("PReLU")
    nn.PReLU = PReLU
    function PReLU:__init(opts)
        local o = options("PReLU", 1, opts, {"num_parameters", "init", "dtype"},
                          {num_parameters = 1, init = 0.25, dtype = "float32"})
        self.num_parameters = check_int("PReLU", 1, o.num_parameters, "num_parameters")
        if type(o.init) ~= "number" then
            argerror("PReLU", 1, "init must be a number, got " .. type(o.init))
        end
        self.init = o.init
        self:register_parameter("weight", tide.full({self.num_parameters}, o.init, {dtype = o.dtype}))
    end
    function PReLU:reset_parameters()
        tide.no_grad(function() self.weight:fill_(self.init) end)
    end
    function PReLU:forward(x) return prelu(x, self.weight) end
    function PReLU:extra_repr() return "num_parameters=" .. self.num_parameters end

    -------------------------------------------------------------------------
    -- F.glu(x, {dim = -1})
    -------------------------------------------------------------------------
    function F.glu(x, opts)
        local fname = "glu"
        check_tensor(fname, 1, x, "input")
        local o = options(fname, 2, opts, {"dim"}, {dim = -1})
        local dim = check_dim(fname, 2, o.dim)
        local nd = x:dim()
        if nd == 0 then argerror(fname, 1, "glu does not take a 0-d input") end
        if dim < -nd or dim >= nd then
            argerror(fname, 2, string.format("dim %d is out of range for a %dD input", dim, nd))
        end
        if dim < 0 then dim = dim + nd end
        local n = x:size(dim)
        if n % 2 ~= 0 then
            argerror(fname, 1, string.format("halving dimension must be even, but dimension %d is size %d", dim, n))
        end
        return x:narrow(dim, 0, n // 2) * x:narrow(dim, n // 2, n // 2):sigmoid()
    end

    local GLU = nn.class("GLU")
    nn.GLU = GLU
    function GLU:__init(opts)
        self.dim = check_dim("GLU", 1, options("GLU", 1, opts, {"dim"}, {dim = -1}).dim)
    end
    function GLU:forward(x) return F.glu(x, {dim = self.dim}) end
    function GLU:extra_repr() return "dim=" .. self.dim end

    -------------------------------------------------------------------------
    -- F.softmin(x, dim): dim required, as tide's softmax
    -------------------------------------------------------------------------
    function F.softmin(x, dim)
        check_tensor("softmin", 1, x, "input")
        if dim == nil then argerror("softmin", 2, "dim expected (softmin has no implicit dim)") end
        return F.softmax(-x, check_dim("softmin", 2, dim))
    end

    local Softmin = nn.class("Softmin")
    nn.Softmin = Softmin
    function Softmin:__init(dim)
        if dim == nil then argerror("Softmin", 1, "dim expected (Softmin has no implicit dim)") end
        self.dim = check_dim("Softmin", 1, dim)
    end
    function Softmin:forward(x) return F.softmin(x, self.dim) end
    function Softmin:extra_repr() return "dim=" .. self.dim end
end

return M
