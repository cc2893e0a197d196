-- Every core op against PyTorch: tests/reference/core.json, written by
-- tests/reference/gen_core.py. Values, shapes and dtypes of the outputs,
-- and for float64 cases the gradient of sum(out * w) for each input.
package.path = "tests/lua/?.lua;" .. package.path
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"

local data = cjson.decode(H.read_file("tests/reference/core.json"))

local function opt(a, key)
    local v = a[key]
    if v == cjson.null then return nil end
    return v
end

-- op name -> function(inputs, args) returning one tensor or a list of them
local ops = {}

-- creation
ops.arange = function(_, a) return tide.arange(a.start, a["end"], a.step, { dtype = a.dtype }) end
ops.linspace = function(_, a) return tide.linspace(a.start, a["end"], a.steps, { dtype = a.dtype }) end
ops.eye = function(_, a)
    if a.m then return tide.eye(a.n, a.m, { dtype = a.dtype }) end
    return tide.eye(a.n, { dtype = a.dtype })
end
ops.zeros = function(_, a) return tide.zeros(a.size, { dtype = a.dtype }) end
ops.ones = function(_, a) return tide.ones(a.size, { dtype = a.dtype }) end
ops.full = function(_, a) return tide.full(a.size, a.value, { dtype = a.dtype }) end
ops.tensor = function(_, a) return tide.tensor(a.data) end

-- views
ops.view = function(x, a) return x[1]:view(a.size) end
ops.reshape = function(x, a) return x[1]:reshape(a.size) end
ops.reshape_t = function(x, a) return x[1]:transpose(a.d0, a.d1):reshape(a.size) end
ops.transpose = function(x, a) return x[1]:transpose(a.d0, a.d1) end
ops.permute = function(x, a) return x[1]:permute(a.dims) end
ops.t = function(x) return x[1]:t() end
ops.narrow = function(x, a) return x[1]:narrow(a.dim, a.start, a.length) end
ops.select = function(x, a) return x[1]:select(a.dim, a.index) end
ops.squeeze = function(x, a)
    if a.dim then return x[1]:squeeze(a.dim) end
    return x[1]:squeeze()
end
ops.unsqueeze = function(x, a) return x[1]:unsqueeze(a.dim) end
ops.expand = function(x, a) return x[1]:expand(a.size) end
ops.contiguous_t = function(x) return x[1]:t():contiguous() end
ops.flatten = function(x, a)
    if a.start then return x[1]:flatten(a.start, a["end"]) end
    return x[1]:flatten()
end
ops.clone = function(x) return x[1]:clone() end

-- joining and splitting
ops.cat = function(x, a) return tide.cat(x, a.dim) end
ops.stack = function(x, a) return tide.stack(x, a.dim) end
ops.split = function(x, a) return x[1]:split(a.size, a.dim) end
ops.chunk = function(x, a) return x[1]:chunk(a.chunks, a.dim) end

-- indexing
ops.index_select = function(x, a) return x[1]:index_select(a.dim, x[2]) end
ops.gather = function(x, a) return x[1]:gather(a.dim, x[2]) end
ops.scatter = function(x, a) return x[1]:scatter(a.dim, x[2], x[3]) end
ops.scatter_add = function(x, a) return x[1]:scatter_add(a.dim, x[2], x[3]) end
ops.masked_fill = function(x, a) return x[1]:masked_fill(x[2], a.value) end
ops.where = function(x) return tide.where(x[1], x[2], x[3]) end

-- arithmetic: the metamethods for tensor-tensor and tensor-scalar
local arith = {
    add = function(p, q) return p + q end,
    sub = function(p, q) return p - q end,
    mul = function(p, q) return p * q end,
    div = function(p, q) return p / q end,
}
for name, f in pairs(arith) do
    ops[name] = function(x) return f(x[1], x[2]) end
    ops[name .. "_scalar"] = function(x, a)
        if a.scalar_first then return f(a.scalar, x[1]) end
        return f(x[1], a.scalar)
    end
end
ops.pow = function(x) return x[1]:pow(x[2]) end
ops.pow_scalar = function(x, a)
    if a.scalar_first then return a.exponent ^ x[1] end
    return x[1] ^ a.exponent
end
for _, name in ipairs { "eq", "ne", "lt", "le", "gt", "ge" } do
    ops[name] = function(x) return x[1][name](x[1], x[2]) end
    ops[name .. "_scalar"] = function(x, a) return x[1][name](x[1], a.scalar) end
end

-- unary math
for _, name in ipairs { "exp", "log", "log1p", "sqrt", "abs", "neg", "sin", "cos", "tanh",
    "sigmoid", "relu", "gelu" } do
    ops[name] = function(x) return x[1][name](x[1]) end
end
ops.clamp = function(x, a) return x[1]:clamp({ min = opt(a, "min"), max = opt(a, "max") }) end

-- reductions: x:op() over everything, x:op(dim, keepdim) over one dim
for _, name in ipairs { "sum", "mean", "prod", "argmax", "argmin" } do
    ops[name] = function(x, a)
        if a.dim == nil then return x[1][name](x[1]) end
        return x[1][name](x[1], a.dim, a.keepdim)
    end
end
for _, name in ipairs { "var", "std" } do
    ops[name] = function(x, a)
        local o = a.correction and { correction = a.correction } or nil
        if a.dim == nil then
            if o then return x[1][name](x[1], nil, nil, o) end
            return x[1][name](x[1])
        end
        return x[1][name](x[1], a.dim, a.keepdim, o)
    end
end
-- norm(x, [p = 2], [dim], [keepdim])
ops.norm = function(x, a) return x[1]:norm(a.p or 2, a.dim, a.keepdim) end
for _, name in ipairs { "max", "min" } do
    ops[name] = function(x, a)
        if a.dim == nil then return x[1][name](x[1]) end
        local v, i = x[1][name](x[1], a.dim, a.keepdim)
        return { v, i }
    end
end
ops.softmax = function(x, a) return x[1]:softmax(a.dim) end
ops.log_softmax = function(x, a) return x[1]:log_softmax(a.dim) end

-- linear algebra
ops.mm = function(x) return x[1]:mm(x[2]) end
ops.mm_t = function(x) return x[1]:t():mm(x[2]:t()) end
ops.bmm = function(x) return x[1]:bmm(x[2]) end
ops.matmul = function(x) return x[1]:matmul(x[2]) end
ops.addmm = function(x, a)
    if a.beta or a.alpha then
        return tide.addmm(x[1], x[2], x[3], { beta = a.beta, alpha = a.alpha })
    end
    return tide.addmm(x[1], x[2], x[3])
end

ops.chain_mlp = function(x) return (x[1]:matmul(x[2]) + x[3]):tanh():log_softmax(1) end

-- run one case: compare outputs, then gradients
local function run_case(case)
    local args = H.ints(case.args)
    local with_grad = case.grads ~= nil
    local inputs = {}
    for i, spec in ipairs(case.inputs) do
        local rg = with_grad and case.grads[i] ~= cjson.null
        inputs[i] = H.tensor(spec, rg)
    end
    local f = assert(ops[case.op], "no dispatcher entry for op " .. case.op)
    local out = f(inputs, args)
    -- a table of tensors (split, chunk, max with dim) or one tensor
    local outs = out
    if type(out) ~= "table" then outs = { out } end
    assert(#outs == #case.outputs,
        string.format("%d outputs, expected %d", #outs, #case.outputs))
    for k, want in ipairs(case.outputs) do
        H.check_tensor(outs[k], want, case.rtol, case.atol, "output " .. k)
    end
    if not with_grad then return end
    local loss
    for k, w in ipairs(case.weights) do
        if w ~= cjson.null then
            local term = (outs[k] * H.tensor(w)):sum()
            loss = loss and loss + term or term
        end
    end
    loss:backward()
    for i, g in ipairs(case.grads) do
        if g ~= cjson.null then
            H.check_tensor(inputs[i].grad, g, case.rtol, case.grad_atol, "grad of input " .. i)
        end
    end
end

describe("reference vectors from PyTorch", function()
    it("cover every op family of the foundation issue", function()
        local seen = {}
        for _, c in ipairs(data.cases) do seen[c.op] = true end
        for _, op in ipairs { "arange", "linspace", "eye", "view", "reshape", "transpose", "permute",
            "t", "narrow", "select", "squeeze", "unsqueeze", "expand", "flatten", "cat", "stack",
            "split", "chunk", "index_select", "gather", "scatter", "masked_fill", "where", "add",
            "sub", "mul", "div", "pow", "eq", "ne", "lt", "le", "gt", "ge", "exp", "log", "log1p",
            "sqrt", "abs", "neg", "sin", "cos", "tanh", "sigmoid", "relu", "gelu", "clamp", "sum",
            "mean", "var", "std", "max", "min", "argmax", "argmin", "prod", "norm", "softmax",
            "log_softmax", "matmul", "mm", "bmm", "addmm" } do
            assert(seen[op], "no reference case for " .. op)
        end
        assert(#data.cases >= 250)
    end)

    for _, case in ipairs(data.cases) do
        it(case.name .. " (" .. case.op .. ")", function()
            run_case(case)
        end)
    end
end)
