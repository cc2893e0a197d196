/* tide.core: conv1d, conv3d, conv_transpose1d/2d/3d (x, w, {bias, stride,
 * padding, output_padding, dilation, groups}), pad (x, pad, {mode,
 * value}) and interpolate (x, {size, scale_factor, mode, align_corners}).
 * The Lua layer (bindings/tide/nn_conv.lua) adds padding = "same" and the
 * modules. */
#include "l_util.h"

#include "tide/conv.h"

#include <math.h>
#include <string.h>

/* option `name`: an integer for every dim, or a table of nd integers */
static void opt_tuple(lua_State *L, int arg, const char *name, int nd, int64_t def, int64_t *out)
{
    int tp = lt_opt_field(L, arg, name);
    if (tp == LUA_TNIL) {
        for (int i = 0; i < nd; i++) out[i] = def;
    } else if (tp == LUA_TNUMBER) {
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok)
            luaL_argerror(
                L, arg,
                lua_pushfstring(L, "%s must be an integer or a table of %d integers", name, nd));
        for (int i = 0; i < nd; i++) out[i] = v;
    } else if (tp == LUA_TTABLE && !luaL_testudata(L, -1, LT_TENSOR) &&
               lua_rawlen(L, -1) == (size_t)nd) {
        for (int i = 0; i < nd; i++) {
            int ok;
            lua_rawgeti(L, -1, i + 1);
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok)
                luaL_argerror(L, arg,
                              lua_pushfstring(L, "%s must be an integer or a table of %d integers",
                                              name, nd));
            out[i] = v;
            lua_pop(L, 1);
        }
    } else {
        luaL_argerror(
            L, arg,
            lua_pushfstring(L, "%s must be an integer or a table of %d integers, got %s", name, nd,
                            tp == LUA_TTABLE ? "a table of another length" : luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
}

/* option bias: a tensor, or nil / false for none */
static td_tensor *opt_bias(lua_State *L, int arg)
{
    int tp = lt_opt_field(L, arg, "bias");
    lua_pop(L, 1);
    if (tp == LUA_TNIL || (tp == LUA_TBOOLEAN && !lua_toboolean(L, -1))) return NULL;
    return lt_opt_tensor(L, arg, "bias");
}

/* option padding = "same" | "valid" of conv1d/2d/3d at arg: true, with
 * pad set per dim, when it is one of them. "same" (stride 1 only) pads
 * dilation (k - 1) in all, half each side; an odd total puts the extra
 * one on the right, which *x then carries (x padded by F.pad, kept alive
 * on the stack), as PyTorch. A weight of the wrong rank is left to the
 * convolution's own check. */
bool lt_conv_padding_string(lua_State *L, int arg, const char *fn, int nd, td_tensor **x,
                            td_tensor *w, const int64_t *stride, const int64_t *dil, int64_t *pad)
{
    if (lt_opt_field(L, arg, "padding") != LUA_TSTRING) {
        lua_pop(L, 1);
        return false;
    }
    const char *s = lua_tostring(L, -1);
    bool same = strcmp(s, "same") == 0;
    if (!same && strcmp(s, "valid") != 0)
        luaL_argerror(
            L, arg,
            lua_pushfstring(L, "padding must be \"same\", \"valid\" or integers, got \"%s\"", s));
    lua_pop(L, 1);
    for (int i = 0; i < nd; i++) pad[i] = 0;
    if (!same || w->ndim != nd + 2) return true;
    int64_t extra[6] = {0};
    bool odd = false;
    for (int i = 0; i < nd; i++) {
        if (stride[i] != 1)
            luaL_argerror(L, arg, "padding = \"same\" is not supported for strided convolutions");
        if (dil[i] < 1 || w->shape[2 + i] < 1) return true;
        int64_t total = dil[i] * (w->shape[2 + i] - 1);
        pad[i] = total / 2;
        extra[2 * (nd - 1 - i) + 1] = total - 2 * pad[i];
        odd = odd || total % 2 != 0;
    }
    if (odd) {
        td_tensor **slot = lt_new(L);
        LT_CALL(L, td_pad(*x, 2 * nd, extra, TD_PAD_CONSTANT, 0, slot), fn);
        *x = *slot;
    }
    return true;
}

static int convnd(lua_State *L, int nd, bool transposed, const char *fn)
{
    static const char *const keys[] = {"bias",   "stride", "padding", "dilation",
                                       "groups", NULL,     NULL};
    static const char *const tkeys[] = {"bias",   "stride",         "padding", "dilation",
                                        "groups", "output_padding", NULL};
    td_tensor *x = lt_check(L, 1), *w = lt_check(L, 2);
    lt_check_options(L, 3, transposed ? tkeys : keys);
    td_convnd_opts o = TD_CONVND_OPTS_DEFAULT;
    o.bias = opt_bias(L, 3);
    o.transposed = transposed;
    opt_tuple(L, 3, "stride", nd, 1, o.stride);
    opt_tuple(L, 3, "dilation", nd, 1, o.dilation);
    if (transposed) {
        if (lt_opt_field(L, 3, "padding") == LUA_TSTRING)
            luaL_argerror(L, 3,
                          "padding must be integers (\"same\" and \"valid\" are for conv1d/2d/3d)");
        lua_pop(L, 1);
    }
    if (transposed || !lt_conv_padding_string(L, 3, fn, nd, &x, w, o.stride, o.dilation, o.padding))
        opt_tuple(L, 3, "padding", nd, 0, o.padding);
    if (transposed) opt_tuple(L, 3, "output_padding", nd, 0, o.output_padding);
    o.groups = lt_opt_integer(L, 3, "groups", 1);
    LT_CALL(L, td_convnd(nd, x, w, &o, lt_new(L)), fn);
    return 1;
}

static int l_conv1d(lua_State *L) { return convnd(L, 1, false, "conv1d"); }
static int l_conv3d(lua_State *L) { return convnd(L, 3, false, "conv3d"); }
static int l_conv_transpose1d(lua_State *L) { return convnd(L, 1, true, "conv_transpose1d"); }
static int l_conv_transpose2d(lua_State *L) { return convnd(L, 2, true, "conv_transpose2d"); }
static int l_conv_transpose3d(lua_State *L) { return convnd(L, 3, true, "conv_transpose3d"); }

/* pad(x, {left, right, ...}, {mode = "constant", value = 0}) */
static int l_pad(lua_State *L)
{
    static const char *const keys[] = {"mode", "value", NULL};
    static const char *const modes[] = {"constant", "reflect", "replicate", "circular", NULL};
    td_tensor *x = lt_check(L, 1);
    luaL_argexpected(L, lua_type(L, 2) == LUA_TTABLE && !luaL_testudata(L, 2, LT_TENSOR), 2,
                     "a table of pad sizes");
    int64_t pad[8];
    size_t n = lua_rawlen(L, 2);
    if (n < 2 || n % 2 != 0 || n > 6)
        luaL_argerror(
            L, 2,
            lua_pushfstring(L, "pad must hold 1 to 3 pairs of sizes, got %d entries", (int)n));
    for (size_t i = 0; i < n; i++) {
        int ok;
        lua_rawgeti(L, 2, (lua_Integer)i + 1);
        pad[i] = lua_tointegerx(L, -1, &ok);
        if (!ok)
            luaL_argerror(L, 2,
                          lua_pushfstring(L, "pad sizes must be integers, entry %d is %s",
                                          (int)i + 1, luaL_typename(L, -1)));
        lua_pop(L, 1);
    }
    lt_check_options(L, 3, keys);
    int mode = 0;
    if (lt_opt_field(L, 3, "mode") != LUA_TNIL) {
        const char *m = lua_tostring(L, -1);
        for (mode = 0; m && modes[mode] && strcmp(m, modes[mode]) != 0; mode++) {
        }
        if (!m || !modes[mode])
            luaL_argerror(L, 3,
                          lua_pushfstring(L,
                                          "mode must be \"constant\", \"reflect\", \"replicate\" "
                                          "or \"circular\", got %s",
                                          m ? m : luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
    if (lt_opt_field(L, 3, "value") != LUA_TNIL && mode != TD_PAD_CONSTANT)
        luaL_argerror(L, 3, "value is for mode \"constant\" only");
    lua_pop(L, 1);
    double value = lt_opt_number(L, 3, "value", 0);
    LT_CALL(L, td_pad(x, (int)n, pad, (td_pad_mode)mode, value, lt_new(L)), "pad");
    return 1;
}

/* option `name` of interpolate: a number (or integer) for every dim, or a
 * table of nd; false when absent */
static bool opt_dims(lua_State *L, const char *name, int nd, bool integer, double *out)
{
    int tp = lt_opt_field(L, 2, name);
    bool ok = true;
    if (tp == LUA_TNIL || (tp == LUA_TBOOLEAN && !lua_toboolean(L, -1))) {
        lua_pop(L, 1);
        return false;
    }
    if (tp == LUA_TNUMBER) {
        for (int i = 0; i < nd; i++) out[i] = lua_tonumber(L, -1);
        ok = !integer || lua_isinteger(L, -1);
    } else if (tp == LUA_TTABLE && !luaL_testudata(L, -1, LT_TENSOR) &&
               lua_rawlen(L, -1) == (size_t)nd) {
        for (int i = 0; i < nd && ok; i++) {
            lua_rawgeti(L, -1, i + 1);
            ok = integer ? lua_isinteger(L, -1) : lua_type(L, -1) == LUA_TNUMBER;
            out[i] = lua_tonumber(L, -1);
            lua_pop(L, 1);
        }
    } else {
        ok = false;
    }
    if (!ok)
        luaL_argerror(L, 2,
                      lua_pushfstring(L,
                                      "%s must be %s or a table of %d of them (one per "
                                      "spatial dim)",
                                      name, integer ? "an integer" : "a number", nd));
    lua_pop(L, 1);
    return true;
}

/* interpolate(x, {size =, scale_factor =, mode = "nearest", align_corners =,
 * recompute_scale_factor =}) */
static int l_interpolate(lua_State *L)
{
    static const char *const keys[] = {
        "size", "scale_factor", "mode", "align_corners", "recompute_scale_factor", "antialias",
        NULL};
    static const struct {
        const char *name;
        td_interp_mode mode;
        int nd; /* spatial dims it wants; 0 any */
    } modes[] = {{"nearest", TD_INTERP_NEAREST, 0},
                 {"linear", TD_INTERP_LINEAR, 1},
                 {"bilinear", TD_INTERP_LINEAR, 2},
                 {"trilinear", TD_INTERP_LINEAR, 3},
                 {"bicubic", TD_INTERP_CUBIC, 2}};
    td_tensor *x = lt_check(L, 1);
    lt_check_options(L, 2, keys);
    int nd = x->ndim - 2;
    if (nd < 1 || nd > 3)
        luaL_argerror(L, 1,
                      lua_pushfstring(L,
                                      "input must be 3-, 4- or 5-dim (N, C, spatial...), got "
                                      "%d dims",
                                      x->ndim));
    const char *m = "nearest";
    if (lt_opt_field(L, 2, "mode") != LUA_TNIL) m = lua_tostring(L, -1);
    lua_pop(L, 1);
    int mi = -1;
    for (int i = 0; m && i < (int)(sizeof modes / sizeof *modes); i++)
        if (strcmp(m, modes[i].name) == 0) mi = i;
    if (mi < 0)
        luaL_argerror(L, 2,
                      lua_pushfstring(L,
                                      "mode must be \"nearest\", \"linear\", \"bilinear\", "
                                      "\"bicubic\" or \"trilinear\", got %s (tide has no other)",
                                      m ? m : "a non-string"));
    if (modes[mi].nd && modes[mi].nd != nd)
        luaL_argerror(L, 1,
                      lua_pushfstring(L, "got a %dD input, but %s mode needs a %dD input", x->ndim,
                                      m, modes[mi].nd + 2));
    if (lt_opt_boolean(L, 2, "antialias", 0))
        luaL_argerror(L, 2, "antialias = true is not supported");
    int align = lt_opt_boolean(L, 2, "align_corners", 0);
    lua_pushboolean(L, 0);
    int has_align = lt_opt_field(L, 2, "align_corners") != LUA_TNIL;
    lua_pop(L, 2);
    if (has_align && modes[mi].mode == TD_INTERP_NEAREST)
        luaL_argerror(L, 2,
                      "align_corners can only be set with the interpolating modes (linear, "
                      "bilinear, bicubic, trilinear)");
    double sz[3], sc[3];
    bool has_size = opt_dims(L, "size", nd, true, sz),
         has_scale = opt_dims(L, "scale_factor", nd, false, sc);
    if (has_size == has_scale)
        luaL_argerror(
            L, 2, has_size ? "give size or scale_factor, not both" : "give size or scale_factor");
    int64_t size[3];
    bool recompute = lt_opt_boolean(L, 2, "recompute_scale_factor", 0);
    if (has_size && recompute)
        luaL_argerror(L, 2, "recompute_scale_factor is for scale_factor, not size");
    if (has_size || recompute) {
        /* recomputed: the size floor(in * scale) alone, as PyTorch */
        for (int i = 0; i < nd; i++)
            size[i] = has_size ? (int64_t)sz[i] : (int64_t)floor((double)x->shape[2 + i] * sc[i]);
    }
    LT_CALL(L,
            td_interpolate(x, has_size || recompute ? size : NULL,
                           has_size || recompute ? NULL : sc, modes[mi].mode, align, lt_new(L)),
            "interpolate");
    return 1;
}

const luaL_Reg lt_convnd_funcs[] = {
    {"conv1d", l_conv1d},
    {"conv3d", l_conv3d},
    {"conv_transpose1d", l_conv_transpose1d},
    {"conv_transpose2d", l_conv_transpose2d},
    {"conv_transpose3d", l_conv_transpose3d},
    {"pad", l_pad},
    {"interpolate", l_interpolate},
    {NULL, NULL},
};
