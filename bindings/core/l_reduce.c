/* tide.core: all, any, amax, amin, logsumexp, cumsum, cumprod (tensor
 * methods and tide.X), one_hot (tide.F.one_hot) and einsum (tide.einsum). */
#include "l_dims.h"
#include "tide/reduce_dims.h"
#include "tide/tensor_args.h"

typedef td_status (*dims_fn)(td_tensor *, int, const int *, bool, td_tensor **);

/* all(x, [dims], [keepdim]) and any (uint8), amax and amin; dims nil
 * (all), a number or a list */
static int over_dims(lua_State *L, dims_fn fn, const char *fname)
{
    td_tensor *x = lt_check(L, 1);
    if (lt_top(L) > 3) luaL_argerror(L, 4, "no argument expected after keepdim");
    int dims[TD_MAX_DIMS];
    int n = lt_check_dims(L, 2, dims);
    bool keepdim = lt_check_keepdim(L, 3);
    lua_settop(L, 3);
    LT_CALL(L, fn(x, n, dims, keepdim, lt_new(L)), fname);
    return 1;
}

static int r_all(lua_State *L) { return over_dims(L, td_all_dims, "all"); }
static int r_any(lua_State *L) { return over_dims(L, td_any_dims, "any"); }
static int r_amax(lua_State *L) { return over_dims(L, td_amax, "amax"); }
static int r_amin(lua_State *L) { return over_dims(L, td_amin, "amin"); }

/* einsum(equation, a, b, ...) or einsum(equation, {a, b, ...}) */
static int r_einsum(lua_State *L)
{
    const char *eq = luaL_checkstring(L, 1);
    int n = lua_gettop(L) - 1;
    if (n == 1 && lua_type(L, 2) == LUA_TTABLE) {
        int len = (int)luaL_len(L, 2);
        luaL_checkstack(L, len + 4, "too many operands");
        lua_settop(L, 2);
        for (int i = 1; i <= len; i++) lua_geti(L, 2, i);
        lua_remove(L, 2);
        n = len;
    }
    if (n > 64) return luaL_error(L, "einsum: more than 64 operands");
    td_tensor *ops[64];
    for (int i = 0; i < n; i++) ops[i] = lt_check(L, 2 + i);
    LT_CALL(L, td_einsum(eq, n, ops, lt_new(L)), "einsum");
    return 1;
}

/* logsumexp(x, dim, [keepdim]); dim a number or a list of them */
static int r_logsumexp(lua_State *L)
{
    lt_no_more(L, 3, "keepdim");
    td_tensor *x = lt_check(L, 1);
    int dims[TD_MAX_DIMS], n = 0;
    if (lua_type(L, 2) == LUA_TTABLE) {
        n = (int)luaL_len(L, 2);
        if (n > TD_MAX_DIMS) luaL_argerror(L, 2, "more dims than a tensor has");
        for (int i = 0; i < n; i++) {
            lua_geti(L, 2, i + 1);
            if (!lua_isinteger(L, -1)) luaL_argerror(L, 2, "dims must be integers");
            dims[i] = (int)lua_tointeger(L, -1);
            lua_pop(L, 1);
        }
    } else if (lua_isnoneornil(L, 2)) {
        luaL_argerror(L, 2, "dim expected (a number or a list of dims)");
    } else {
        dims[n++] = lt_check_dim(L, 2);
    }
    if (!lua_isnoneornil(L, 3) && lua_type(L, 3) != LUA_TBOOLEAN)
        luaL_typeerror(L, 3, "boolean (keepdim)");
    bool keepdim = lua_toboolean(L, 3);
    lua_settop(L, 3);
    LT_CALL(L, td_logsumexp(x, n, dims, keepdim, lt_new(L)), "logsumexp");
    return 1;
}

/* cumsum(x, dim, [{dtype = ...}]) and cumprod */
static int scan(lua_State *L, td_status (*fn)(td_tensor *, int, bool, td_dtype, td_tensor **),
                const char *fname)
{
    static const char *const keys[] = {"dtype", NULL};
    td_tensor *x = lt_check(L, 1);
    if (lua_isnoneornil(L, 2)) luaL_argerror(L, 2, "dim expected");
    lt_no_more(L, 3, "the options");
    int dim = lt_check_dim(L, 2);
    lt_check_options(L, 3, keys);
    bool has_dtype = false;
    td_dtype dt = TD_FLOAT32;
    if (lt_opt_field(L, 3, "dtype") != LUA_TNIL) {
        if (lua_type(L, -1) != LUA_TSTRING) luaL_argerror(L, 3, "dtype must be a dtype name");
        dt = lt_parse_dtype(L, 3, lua_tostring(L, -1));
        has_dtype = true;
    }
    lua_settop(L, 3);
    LT_CALL(L, fn(x, dim, has_dtype, dt, lt_new(L)), fname);
    return 1;
}

static int r_cumsum(lua_State *L) { return scan(L, td_cumsum, "cumsum"); }
static int r_cumprod(lua_State *L) { return scan(L, td_cumprod, "cumprod"); }

/* one_hot(x, [num_classes = -1]), as F.one_hot; also one_hot(x, {num_classes = n}) */
static int r_one_hot(lua_State *L)
{
    static const char *const keys[] = {"num_classes", NULL};
    td_tensor *x = lt_check(L, 1);
    lt_no_more(L, 2, "num_classes");
    lua_Integer c = -1;
    if (lt_is_options(L, 2)) {
        lt_check_options(L, 2, keys);
        c = lt_opt_integer(L, 2, "num_classes", -1);
    } else if (!lua_isnoneornil(L, 2)) {
        c = luaL_checkinteger(L, 2);
    }
    lua_settop(L, 2);
    LT_CALL(L, td_one_hot(x, (int64_t)c, lt_new(L)), "one_hot");
    return 1;
}

const luaL_Reg lt_reduce_methods[] = {
    {"all", r_all},         {"any", r_any},   {"logsumexp", r_logsumexp}, {"cumsum", r_cumsum},
    {"cumprod", r_cumprod}, {"amax", r_amax}, {"amin", r_amin},           {NULL, NULL},
};

const luaL_Reg lt_reduce_funcs[] = {
    {"one_hot", r_one_hot},
    {"einsum", r_einsum},
    {NULL, NULL},
};
