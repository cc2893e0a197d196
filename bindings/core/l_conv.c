/* tide.core: conv2d(x, w, {bias, stride, padding, dilation, groups}). */
#include "l_util.h"

/* option `name`: a positive/non-negative integer for both dims, or an {h, w} pair */
static void opt_pair(lua_State *L, int arg, const char *name, int64_t def, int64_t out[2])
{
    int tp = lt_opt_field(L, arg, name);
    if (tp == LUA_TNIL) {
        out[0] = out[1] = def;
    } else if (tp == LUA_TNUMBER) {
        int ok;
        lua_Integer v = lua_tointegerx(L, -1, &ok);
        if (!ok)
            luaL_argerror(
                L, arg,
                lua_pushfstring(L, "%s must be an integer or an {h, w} pair of integers", name));
        out[0] = out[1] = v;
    } else if (tp == LUA_TTABLE && !luaL_testudata(L, -1, LT_TENSOR) && lua_rawlen(L, -1) == 2) {
        for (int i = 0; i < 2; i++) {
            int ok;
            lua_rawgeti(L, -1, i + 1);
            lua_Integer v = lua_tointegerx(L, -1, &ok);
            if (!ok)
                luaL_argerror(L, arg,
                              lua_pushfstring(
                                  L, "%s must be an integer or an {h, w} pair of integers", name));
            out[i] = v;
            lua_pop(L, 1);
        }
    } else {
        luaL_argerror(L, arg,
                      lua_pushfstring(L,
                                      "%s must be an integer or an {h, w} pair of integers, got %s",
                                      name, luaL_typename(L, -1)));
    }
    lua_pop(L, 1);
}

/* padding = "same" | "valid" (l_convnd.c) */
bool lt_conv_padding_string(lua_State *L, int arg, const char *fn, int nd, td_tensor **x,
                            td_tensor *w, const int64_t *stride, const int64_t *dil, int64_t *pad);

static int l_conv2d(lua_State *L)
{
    static const char *const keys[] = {"bias", "stride", "padding", "dilation", "groups", NULL};
    td_tensor *x = lt_check(L, 1), *w = lt_check(L, 2);
    lt_check_options(L, 3, keys);
    td_conv2d_opts o = TD_CONV2D_OPTS_DEFAULT;
    o.bias = lt_opt_tensor(L, 3, "bias");
    opt_pair(L, 3, "stride", 1, o.stride);
    opt_pair(L, 3, "dilation", 1, o.dilation);
    if (!lt_conv_padding_string(L, 3, "conv2d", 2, &x, w, o.stride, o.dilation, o.padding))
        opt_pair(L, 3, "padding", 0, o.padding);
    o.groups = lt_opt_integer(L, 3, "groups", 1);
    LT_CALL(L, td_conv2d(x, w, &o, lt_new(L)), "conv2d");
    return 1;
}

const luaL_Reg lt_conv_funcs[] = {
    {"conv2d", l_conv2d},
    {NULL, NULL},
};
