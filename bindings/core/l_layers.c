/* tide.core: the functional layers other than convolution. Required
 * arguments positional, the rest in one trailing options table. */
#include "l_util.h"

#include <string.h>

static int l_linear(lua_State *L)
{
    static const char *const keys[] = {"bias", NULL};
    td_tensor *x = lt_check(L, 1), *w = lt_check(L, 2);
    lt_check_options(L, 3, keys);
    td_tensor *b = lt_opt_tensor(L, 3, "bias");
    LT_CALL(L, td_linear(x, w, b, lt_new(L)), "linear");
    return 1;
}

static int l_batch_norm(lua_State *L)
{
    static const char *const keys[] = {"weight", "bias", "training", "momentum", "eps", NULL};
    td_tensor *x = lt_check(L, 1);
    td_tensor *rm = lua_isnoneornil(L, 2) ? NULL : lt_check(L, 2);
    td_tensor *rv = lua_isnoneornil(L, 3) ? NULL : lt_check(L, 3);
    lt_check_options(L, 4, keys);
    td_batch_norm_opts o = TD_BATCH_NORM_OPTS_DEFAULT;
    o.weight = lt_opt_tensor(L, 4, "weight");
    o.bias = lt_opt_tensor(L, 4, "bias");
    o.training = lt_opt_boolean(L, 4, "training", 0);
    o.momentum = lt_opt_number(L, 4, "momentum", 0.1);
    o.eps = lt_opt_number(L, 4, "eps", 1e-5);
    LT_CALL(L, td_batch_norm(x, rm, rv, &o, lt_new(L)), "batch_norm");
    return 1;
}

/* a number or a table of up to `max` positive integers at arg */
static int int_list(lua_State *L, int arg, int64_t *v, int max, const char *what)
{
    if (lua_type(L, arg) == LUA_TNUMBER) {
        v[0] = luaL_checkinteger(L, arg);
        return 1;
    }
    if (lua_type(L, arg) != LUA_TTABLE || lt_test(L, arg))
        return luaL_argerror(L, arg,
                             lua_pushfstring(L, "%s must be a number or a table of numbers", what));
    int n = (int)lua_rawlen(L, arg);
    if (n < 1 || n > max)
        return luaL_argerror(
            L, arg, lua_pushfstring(L, "%s must have 1 to %d entries, got %d", what, max, n));
    for (int i = 0; i < n; i++) {
        lua_rawgeti(L, arg, i + 1);
        int ok;
        lua_Integer x = lua_tointegerx(L, -1, &ok);
        lua_pop(L, 1);
        if (!ok)
            return luaL_argerror(L, arg,
                                 lua_pushfstring(L, "%s entry %d is not an integer", what, i + 1));
        v[i] = x;
    }
    return n;
}

/* a pair (h, w) from a number or {h, w}; opt names an option of the table at arg */
static void pair_at(lua_State *L, int arg, int64_t *v, const char *what)
{
    int n = int_list(L, arg, v, 2, what);
    if (n == 1) v[1] = v[0];
}

static void pair_opt(lua_State *L, int arg, const char *name, int64_t *v, int64_t def)
{
    int tp = lt_opt_field(L, arg, name);
    if (tp == LUA_TNIL) {
        v[0] = v[1] = def;
    } else {
        int top = lua_gettop(L);
        int n = int_list(L, top, v, 2, name);
        if (n == 1) v[1] = v[0];
    }
    lua_pop(L, 1);
}

static int l_max_pool2d(lua_State *L)
{
    static const char *const keys[] = {"stride",    "padding",        "dilation",
                                       "ceil_mode", "return_indices", NULL};
    td_tensor *x = lt_check(L, 1);
    td_pool2d_opts o;
    memset(&o, 0, sizeof o);
    pair_at(L, 2, o.kernel, "kernel_size");
    lt_check_options(L, 3, keys);
    pair_opt(L, 3, "stride", o.stride, 0);
    pair_opt(L, 3, "padding", o.padding, 0);
    pair_opt(L, 3, "dilation", o.dilation, 1);
    o.ceil_mode = lt_opt_boolean(L, 3, "ceil_mode", 0);
    if (lt_opt_boolean(L, 3, "return_indices", 0)) {
        td_tensor **y = lt_new(L), **idx = lt_new(L);
        LT_CALL(L, td_max_pool2d_with_indices(x, &o, y, idx), "max_pool2d");
        return 2;
    }
    LT_CALL(L, td_max_pool2d(x, &o, lt_new(L)), "max_pool2d");
    return 1;
}

static int l_avg_pool2d(lua_State *L)
{
    static const char *const keys[] = {
        "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override", NULL};
    td_tensor *x = lt_check(L, 1);
    td_pool2d_opts o;
    memset(&o, 0, sizeof o);
    pair_at(L, 2, o.kernel, "kernel_size");
    lt_check_options(L, 3, keys);
    pair_opt(L, 3, "stride", o.stride, 0);
    pair_opt(L, 3, "padding", o.padding, 0);
    o.dilation[0] = o.dilation[1] = 1;
    o.ceil_mode = lt_opt_boolean(L, 3, "ceil_mode", 0);
    o.count_include_pad = lt_opt_boolean(L, 3, "count_include_pad", 1);
    lua_Integer d = 0;
    if (lt_opt_field(L, 3, "divisor_override") != LUA_TNIL) {
        int ok;
        d = lua_tointegerx(L, -1, &ok);
        if (!ok || d < 1) return luaL_argerror(L, 3, "divisor_override must be a positive integer");
    }
    lua_pop(L, 1);
    if (d > 0) {
        LT_CALL(L, td_avg_pool2d_divisor(x, &o, d, lt_new(L)), "avg_pool2d");
        return 1;
    }
    LT_CALL(L, td_avg_pool2d(x, &o, lt_new(L)), "avg_pool2d");
    return 1;
}

/* an adaptive pool's output size at arg: a number or {h, w}, where an
 * entry false (PyTorch's None) keeps x's size along that dim */
static void adaptive_size(lua_State *L, int arg, const td_tensor *x, int64_t *v)
{
    if (lua_type(L, arg) == LUA_TTABLE && !lt_test(L, arg) && lua_rawlen(L, arg) == 2) {
        for (int i = 0; i < 2; i++) {
            lua_rawgeti(L, arg, i + 1);
            int ok = 1;
            if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1))
                v[i] = x->ndim >= 2 ? x->shape[x->ndim - 2 + i] : 0;
            else
                v[i] = lua_tointegerx(L, -1, &ok);
            lua_pop(L, 1);
            if (!ok)
                luaL_argerror(
                    L, arg,
                    lua_pushfstring(L, "output_size entry %d is not an integer or false", i + 1));
        }
        return;
    }
    pair_at(L, arg, v, "output_size");
}

static int l_adaptive_avg_pool2d(lua_State *L)
{
    td_tensor *x = lt_check(L, 1);
    int64_t v[2];
    adaptive_size(L, 2, x, v);
    if (!lua_isnoneornil(L, 3)) return luaL_argerror(L, 3, "adaptive_avg_pool2d takes no options");
    LT_CALL(L, td_adaptive_avg_pool2d(x, v[0], v[1], lt_new(L)), "adaptive_avg_pool2d");
    return 1;
}

static int l_adaptive_max_pool2d(lua_State *L)
{
    static const char *const keys[] = {"return_indices", NULL};
    td_tensor *x = lt_check(L, 1);
    int64_t v[2];
    adaptive_size(L, 2, x, v);
    lt_check_options(L, 3, keys);
    bool with = lt_opt_boolean(L, 3, "return_indices", 0);
    td_tensor **y = lt_new(L), **idx = with ? lt_new(L) : NULL;
    td_tensor *drop = NULL;
    td_status st = td_adaptive_max_pool2d(x, v[0], v[1], y, with ? idx : &drop);
    td_tensor_release(drop);
    LT_CALL(L, st, "adaptive_max_pool2d");
    return with ? 2 : 1;
}

static int l_group_norm(lua_State *L)
{
    static const char *const keys[] = {"weight", "bias", "eps", NULL};
    td_tensor *x = lt_check(L, 1);
    lua_Integer g = luaL_checkinteger(L, 2);
    lt_check_options(L, 3, keys);
    td_tensor *w = lt_opt_tensor(L, 3, "weight"), *b = lt_opt_tensor(L, 3, "bias");
    double eps = lt_opt_number(L, 3, "eps", 1e-5);
    LT_CALL(L, td_group_norm(x, g, w, b, eps, lt_new(L)), "group_norm");
    return 1;
}

static int l_layer_norm(lua_State *L)
{
    static const char *const keys[] = {"weight", "bias", "eps", NULL};
    td_tensor *x = lt_check(L, 1);
    int64_t shape[TD_MAX_DIMS];
    int nd = int_list(L, 2, shape, TD_MAX_DIMS, "normalized_shape");
    lt_check_options(L, 3, keys);
    td_tensor *w = lt_opt_tensor(L, 3, "weight"), *b = lt_opt_tensor(L, 3, "bias");
    double eps = lt_opt_number(L, 3, "eps", 1e-5);
    LT_CALL(L, td_layer_norm(x, nd, shape, w, b, eps, lt_new(L)), "layer_norm");
    return 1;
}

static int l_dropout(lua_State *L)
{
    static const char *const keys[] = {"p", "training", "inplace", NULL};
    td_tensor *x = lt_check(L, 1);
    lt_check_options(L, 2, keys);
    double p = lt_opt_number(L, 2, "p", 0.5);
    int training = lt_opt_boolean(L, 2, "training", 1);
    if (lt_opt_boolean(L, 2, "inplace", 0))
        return luaL_argerror(L, 2, "inplace dropout is not supported");
    LT_CALL(L, td_dropout(x, p, training, lt_new(L)), "dropout");
    return 1;
}

static int l_leaky_relu(lua_State *L)
{
    static const char *const keys[] = {"negative_slope", NULL};
    td_tensor *x = lt_check(L, 1);
    lt_check_options(L, 2, keys);
    double s = lt_opt_number(L, 2, "negative_slope", 0.01);
    LT_CALL(L, td_leaky_relu(x, s, lt_new(L)), "leaky_relu");
    return 1;
}

static int l_embedding(lua_State *L)
{
    static const char *const keys[] = {"padding_idx", NULL};
    td_tensor *idx = lt_check(L, 1), *w = lt_check(L, 2);
    lt_check_options(L, 3, keys);
    int tp = lt_opt_field(L, 3, "padding_idx");
    lua_pop(L, 1);
    int64_t pad = tp == LUA_TNIL ? 0 : lt_opt_integer(L, 3, "padding_idx", 0);
    LT_CALL(L, td_embedding(idx, w, tp != LUA_TNIL, pad, lt_new(L)), "embedding");
    return 1;
}

/* flatten(x, {start_dim = 0, end_dim = -1}) as torch.flatten; the older
 * positional form flatten(x, start, end) still works */
static int l_flatten(lua_State *L)
{
    static const char *const keys[] = {"start_dim", "end_dim", NULL};
    td_tensor *x = lt_check(L, 1);
    int start = 0, end = -1;
    if (lua_type(L, 2) == LUA_TNUMBER || lua_type(L, 3) == LUA_TNUMBER) {
        start = lua_isnoneornil(L, 2) ? 0 : lt_check_dim(L, 2);
        end = lua_isnoneornil(L, 3) ? -1 : lt_check_dim(L, 3);
    } else {
        lt_check_options(L, 2, keys);
        start = (int)lt_opt_integer(L, 2, "start_dim", 0);
        end = (int)lt_opt_integer(L, 2, "end_dim", -1);
    }
    LT_CALL(L, td_flatten(x, start, end, lt_new(L)), "flatten");
    return 1;
}

const luaL_Reg lt_layers_funcs[] = {
    {"linear", l_linear},
    {"batch_norm", l_batch_norm},
    {"layer_norm", l_layer_norm},
    {"max_pool2d", l_max_pool2d},
    {"avg_pool2d", l_avg_pool2d},
    {"adaptive_avg_pool2d", l_adaptive_avg_pool2d},
    {"adaptive_max_pool2d", l_adaptive_max_pool2d},
    {"group_norm", l_group_norm},
    {"dropout", l_dropout},
    {"leaky_relu", l_leaky_relu},
    {"embedding", l_embedding},
    {"flatten", l_flatten},
    {NULL, NULL},
};
