-- Shared by the specs: tensors from reference cases, flat views of values,
-- comparisons with a tolerance. Specs load it with
--   package.path = "tests/lua/?.lua;" .. package.path
--   local H = require "helpers"
local tide = require "tide"

local H = {}

H.F64 = { rtol = 1e-10, atol = 1e-12 }
H.F32 = { rtol = 1e-5, atol = 1e-6 }

-- integral floats (as cjson decodes every number) become Lua integers,
-- recursively through tables
function H.ints(v)
    if type(v) == "number" then
        return math.tointeger(v) or v
    elseif type(v) == "table" then
        local r = {}
        for k, x in pairs(v) do r[k] = H.ints(x) end
        return r
    end
    return v
end

-- flat row-major list -> nested tables of the given shape
function H.nest(flat, shape)
    if #shape == 0 then return flat[1] end
    local pos = 1
    local function build(d)
        local r = {}
        for i = 1, shape[d] do
            if d == #shape then
                r[i] = flat[pos]
                pos = pos + 1
            else
                r[i] = build(d + 1)
            end
        end
        return r
    end
    return build(1)
end

-- a tide tensor from {values, shape, dtype}
function H.tensor(spec, requires_grad)
    local shape = H.ints(spec.shape)
    local values = spec.values
    if spec.dtype == "int64" or spec.dtype == "uint8" then values = H.ints(values) end
    local t = tide.tensor(H.nest(values, shape), spec.dtype)
    if requires_grad then t.requires_grad = true end
    return t
end

-- nested table (or a number, for 0-dim tensors) -> flat list
function H.flatten(v, out)
    out = out or {}
    if type(v) ~= "table" then
        out[#out + 1] = v
    else
        for i = 1, #v do H.flatten(v[i], out) end
    end
    return out
end

-- a tensor's values as a flat Lua list, in logical order
function H.values(t)
    return H.flatten(t:totable())
end

function H.shape_str(s)
    local parts = {}
    for i = 1, #s do parts[i] = tostring(s[i]) end
    return "(" .. table.concat(parts, ",") .. ")"
end

local function isnan(x) return x ~= x end

-- true when every got[i] is within atol + rtol * |want[i]|; else false and why
function H.close(got, want, rtol, atol)
    if #got ~= #want then
        return false, string.format("%d values, expected %d", #got, #want)
    end
    for i = 1, #want do
        local g, w = got[i], want[i]
        if type(g) ~= "number" then
            return false, string.format("element %d is a %s", i - 1, type(g))
        end
        local ok
        if isnan(w) then
            ok = isnan(g)
        elseif w == math.huge or w == -math.huge then
            ok = g == w
        else
            ok = math.abs(g - w) <= atol + rtol * math.abs(w)
        end
        if not ok then
            return false, string.format("element %d (0-based): got %.17g, expected %.17g (rtol %g, atol %g)",
                i - 1, g, w, rtol, atol)
        end
    end
    return true
end

-- assert tensor t matches {values, shape, dtype}
function H.check_tensor(t, want, rtol, atol, label)
    label = label or "tensor"
    assert(t ~= nil, label .. ": got nil")
    local shape = t:shape()
    local wshape = H.ints(want.shape)
    assert(H.shape_str(shape) == H.shape_str(wshape),
        string.format("%s: shape %s, expected %s", label, H.shape_str(shape), H.shape_str(wshape)))
    if want.dtype then
        assert(t:dtype() == want.dtype,
            string.format("%s: dtype %s, expected %s", label, t:dtype(), want.dtype))
    end
    local exact = want.dtype == "int64" or want.dtype == "uint8"
    local ok, why = H.close(H.values(t), want.values, exact and 0 or rtol, exact and 0 or atol)
    assert(ok, label .. ": " .. tostring(why))
end

-- assert a flat list or a tensor equals a flat list within tolerance
function H.assert_close(got, want, rtol, atol, label)
    if type(got) ~= "table" then got = H.values(got) end
    local ok, why = H.close(got, want, rtol or H.F64.rtol, atol or H.F64.atol)
    assert(ok, (label or "values") .. ": " .. tostring(why))
end

function H.read_file(path)
    local f = assert(io.open(path, "rb"))
    local s = f:read("a")
    f:close()
    return s
end

-- the number from a "Key:   123 kB" line of /proc/self/status, in kB
function H.proc_status_kb(key)
    local f = io.open("/proc/self/status")
    if not f then return nil end
    for line in f:lines() do
        local v = line:match("^" .. key .. ":%s+(%d+)")
        if v then
            f:close()
            return tonumber(v)
        end
    end
    f:close()
    return nil
end

-- equal values (NaN matching NaN), compared in Lua: true, or false and
-- the first difference
function H.same_values(a, b)
    local x, y = H.values(a), H.values(b)
    if #x ~= #y then return false, "sizes differ" end
    for i = 1, #x do
        if x[i] ~= y[i] and not (x[i] ~= x[i] and y[i] ~= y[i]) then
            return false, string.format("element %d (1-based): %.17g vs %.17g", i, x[i], y[i])
        end
    end
    return true
end

-- the reference generators write inf, -inf and nan as strings (JSON has
-- none of them): a value back as a number, and a {values, shape, dtype}
-- spec with every value back
local SPECIAL = {nan = 0 / 0, inf = math.huge, ["-inf"] = -math.huge}
function H.json_number(v) return SPECIAL[v] or v end

function H.decode_spec(spec)
    local values = {}
    for i, v in ipairs(spec.values) do values[i] = SPECIAL[v] or v end
    return {values = values, shape = spec.shape, dtype = spec.dtype}
end

-- a decoded JSON value as plain Lua tables, JSON null as nil
function H.from_json(v)
    if v == require("cjson").null then return nil end
    if type(v) == "table" then
        local r = {}
        for k, x in pairs(v) do r[k] = H.from_json(x) end
        return r
    end
    return v
end

-- s as one shell word
function H.sh(s) return "'" .. s:gsub("'", "'\\''") .. "'" end

-- make() gives a new empty temporary folder; remove_all() deletes every
-- one made (pass it to busted's teardown)
function H.tmpdirs()
    local made = {}
    local function make()
        local p = os.tmpname()
        os.remove(p)
        assert(os.execute("mkdir -p " .. H.sh(p)))
        made[#made + 1] = p
        return p
    end
    local function remove_all()
        for _, p in ipairs(made) do os.execute("rm -rf " .. H.sh(p)) end
    end
    return make, remove_all
end

-- pcall that returns the error as a string
function H.error_of(fn, ...)
    local ok, err = pcall(fn, ...)
    if ok then return nil end
    return tostring(err)
end

-- unit roundoff of the 2-byte float dtypes
H.LOWP_U = {bfloat16 = 2 ^ -8, float16 = 2 ^ -11}

-- asserts that got, of dtype dt, matches the float32 want elementwise:
-- |got - want| <= (r u + k 2^-24) mag, where u is dt's unit roundoff, r
-- the roundings to dt, k the float32 summation's length and mag (float32)
-- bounds the magnitudes summed into each element
function H.check_lowp(got, want, mag, dt, r, k, label)
    assert(got:dtype() == dt, string.format("%s: dtype %s, expected %s", label, got:dtype(), dt))
    assert(H.shape_str(got:shape()) == H.shape_str(want:shape()),
        string.format("%s: shape %s, expected %s", label, H.shape_str(got:shape()),
            H.shape_str(want:shape())))
    local g, w, m = H.values(got:float()), H.values(want), H.values(mag)
    for i = 1, #w do
        local tol = (r * H.LOWP_U[dt] + k * 2 ^ -24) * m[i] + 1e-30
        local ok = math.abs(g[i] - w[i]) <= tol -- false for NaN
        if not ok then
            error(string.format("%s (%s): element %d: got %.9g, expected %.9g, tolerance %.3g",
                label, dt, i - 1, g[i], w[i], tol), 2)
        end
    end
end

return H
