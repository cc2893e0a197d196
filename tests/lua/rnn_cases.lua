-- One case of tests/reference/rnn.json (from gen_rnn.py) run through tide
-- and checked against PyTorch 1.13: the module built with PyTorch's
-- weights, its outputs, final states and every gradient. rnn_spec.lua runs
-- each case in its own dtype; rnn_impl_spec.lua runs the float64 ones
-- again in float32, on each recurrent implementation.
local assert = require "luassert" -- busted's, which a required module does not see as a global
local tide = require "tide"
local cjson = require "cjson"
local H = require "helpers"
local nn = tide.nn
local R = tide.nn.utils.rnn

local M = {}

-- opts.float32: run the case in float32 whatever its dtype, the reference
-- values checked at float32's tolerance
function M.run(c, opts)
    local float32 = opts and opts.float32
    local function tensor(spec, grad)
        local t = H.tensor(H.decode_spec(spec))
        if float32 then t = t:float() end
        if grad then t.requires_grad = true end
        return t
    end
    local function ref(spec)
        local r = H.decode_spec(spec)
        if float32 then r.dtype = nil end
        return r
    end

    local mopts = {}
    for k, v in pairs(c.options) do mopts[k] = v end
    if next(mopts) == nil then mopts = nil end
    local m = nn[c.module](c.args[1], c.args[2], mopts)
    local sd = {}
    for k, v in pairs(c.state_dict) do sd[k] = tensor(v) end
    m:load_state_dict(sd)
    if c.input.dtype == "float64" and not float32 then m:double() end
    if c.evaluate then m:evaluate() end
    assert.are.same(c.state_keys, m:state_dict_keys())

    local x = tensor(c.input, true)
    local lstm = c.module:sub(1, 4) == "LSTM"
    local h0, c0, hx
    if c.hx ~= cjson.null then
        if lstm then
            h0, c0 = tensor(c.hx[1], true), tensor(c.hx[2], true)
            hx = {h0, c0}
        else
            h0 = tensor(c.hx, true)
            hx = h0
        end
    end
    local outs = {}
    if c.module:find("Cell") then
        outs.h, outs.c = m(x, hx)
    else
        local inp = x
        local bf = c.options.batch_first or false
        if c.lengths then
            inp = R.pack_padded_sequence(x, c.lengths, {batch_first = bf, enforce_sorted = c.enforce_sorted})
            assert.are.same(c.batch_sizes, inp.batch_sizes:totable())
        end
        local out, hn = m(inp, hx)
        if c.lengths then
            assert.are.same(c.batch_sizes, out.batch_sizes:totable())
            out = R.pad_packed_sequence(out, {batch_first = bf})
        end
        outs.output = out
        if lstm then outs.h_n, outs.c_n = hn[1], hn[2] else outs.h_n = hn end
    end
    local f32 = float32 or c.input.dtype == "float32"
    local rtol, atol = f32 and 1e-4 or 1e-9, f32 and 2e-5 or 1e-10
    local s
    for k, want in pairs(c.outputs) do
        H.check_tensor(outs[k], ref(want), rtol, atol, k)
        local term = (outs[k] * tensor(c.weights[k])):sum()
        s = s and s + term or term
    end
    s:backward()
    H.check_tensor(x.grad, ref(c.grads.input), rtol, atol, "grad input")
    if h0 then H.check_tensor(h0.grad, ref(c.grads.h0), rtol, atol, "grad h0") end
    if c0 then H.check_tensor(c0.grad, ref(c.grads.c0), rtol, atol, "grad c0") end
    for k, p in m:named_parameters() do
        H.check_tensor(p.grad, ref(c.grads[k]), rtol, atol, "grad " .. k)
    end
end

return M
