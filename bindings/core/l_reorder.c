/* tide.core: sort, argsort, topk, flip, roll, tril, triu.
 *
 * PyTorch's parameters come positionally in its order (x:sort(0, true),
 * x:topk(3, 1)), and every one that has a default may instead go by name
 * in a trailing options table (x:sort{dim = 0, descending = true}); naming
 * one both ways is an error. */
#include "l_util.h"

/* the options table ending the arguments from `first` on (0 when none) */
static int options_at(lua_State *L, int first, const char *const *keys)
{
    int top = lua_gettop(L);
    if (top < first || lua_type(L, top) != LUA_TTABLE || lua_rawlen(L, top) > 0) return 0;
    lt_check_options(L, top, keys);
    return top;
}

/* parameter `name`: positional at arg (when arg comes before the options
 * table), or named in the options table at opt; pushes it (nil if absent)
 * and returns the argument it came from, for errors */
static int param(lua_State *L, int arg, int opt, const char *name)
{
    bool positional = (opt == 0 || arg < opt) && !lua_isnoneornil(L, arg);
    if (opt) {
        lua_getfield(L, opt, name);
        if (!lua_isnil(L, -1)) {
            if (positional)
                luaL_argerror(
                    L, opt, lua_pushfstring(L, "%s is given both positionally and by name", name));
            return opt;
        }
        lua_pop(L, 1);
    }
    if (positional)
        lua_pushvalue(L, arg);
    else
        lua_pushnil(L);
    return arg;
}

/* the integer at stack index idx, as luaL_checkinteger takes it (a float
 * with an integral value will do); errors blame argument arg */
static lua_Integer to_integer(lua_State *L, int idx, int arg, const char *what)
{
    int ok = 0;
    lua_Integer v = lua_type(L, idx) == LUA_TNUMBER ? lua_tointegerx(L, idx, &ok) : 0;
    if (!ok)
        luaL_argerror(L, arg,
                      lua_pushfstring(L, "%s must be an integer, got %s", what,
                                      lua_type(L, idx) == LUA_TNUMBER ? "a fraction"
                                                                      : luaL_typename(L, idx)));
    return v;
}

static lua_Integer int_param(lua_State *L, int arg, int opt, const char *name, lua_Integer def)
{
    int at = param(L, arg, opt, name);
    lua_Integer v = lua_isnil(L, -1) ? def : to_integer(L, -1, at, name);
    lua_pop(L, 1);
    return v;
}

/* a dim: small enough for an int, the runtime checks the range */
static int dim_param(lua_State *L, int arg, int opt)
{
    lua_Integer d = int_param(L, arg, opt, "dim", -1);
    return (int)(d < -1000 ? -1000 : d > 1000 ? 1000 : d);
}

static bool bool_param(lua_State *L, int arg, int opt, const char *name, bool def)
{
    int at = param(L, arg, opt, name);
    bool v = def;
    if (!lua_isnil(L, -1)) {
        if (!lua_isboolean(L, -1))
            luaL_argerror(
                L, at,
                lua_pushfstring(L, "%s must be a boolean, got %s", name, luaL_typename(L, -1)));
        v = lua_toboolean(L, -1);
    }
    lua_pop(L, 1);
    return v;
}

/* sort's and argsort's arguments: (x, [dim = -1], [descending = false],
 * {stable = false}) */
static td_tensor *sort_args(lua_State *L, int *dim, bool *desc)
{
    static const char *const keys[] = {"dim", "descending", "stable", NULL};
    td_tensor *x = lt_check(L, 1);
    int opt = options_at(L, 2, keys);
    *dim = dim_param(L, 2, opt);
    *desc = bool_param(L, 3, opt, "descending", false);
    /* always stable: accepted for PyTorch's sake, checked for type */
    (void)bool_param(L, 4, opt, "stable", false);
    return x;
}

/* sort(x, ...) -> values, indices */
static int r_sort(lua_State *L)
{
    int dim;
    bool desc;
    td_tensor *x = sort_args(L, &dim, &desc);
    td_tensor **values = lt_new(L), **indices = lt_new(L);
    LT_CALL(L, td_sort(x, dim, desc, values, indices), "sort");
    return 2;
}

static int r_argsort(lua_State *L)
{
    int dim;
    bool desc;
    td_tensor *x = sort_args(L, &dim, &desc);
    LT_CALL(L, td_argsort(x, dim, desc, lt_new(L)), "argsort");
    return 1;
}

/* topk(x, k, [dim = -1], [largest = true], [sorted = true]) -> values, indices */
static int r_topk(lua_State *L)
{
    static const char *const keys[] = {"dim", "largest", "sorted", NULL};
    td_tensor *x = lt_check(L, 1);
    lua_Integer k = luaL_checkinteger(L, 2);
    int opt = options_at(L, 3, keys);
    int dim = dim_param(L, 3, opt);
    bool largest = bool_param(L, 4, opt, "largest", true);
    bool sorted = bool_param(L, 5, opt, "sorted", true);
    td_tensor **values = lt_new(L), **indices = lt_new(L);
    LT_CALL(L, td_topk(x, (int64_t)k, dim, largest, sorted, values, indices), "topk");
    return 2;
}

/* a number or a list of integers at stack index idx into v (at most
 * TD_MAX_DIMS), errors blaming argument arg; returns the count */
static int int_list(lua_State *L, int idx, int arg, const char *what, int64_t *v)
{
    if (lua_type(L, idx) == LUA_TNUMBER) {
        v[0] = to_integer(L, idx, arg, what);
        return 1;
    }
    if (lua_type(L, idx) != LUA_TTABLE)
        luaL_argerror(L, arg,
                      lua_pushfstring(L, "%s must be an integer or a list of integers, got %s",
                                      what, luaL_typename(L, idx)));
    lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
    if (n > TD_MAX_DIMS)
        luaL_argerror(
            L, arg,
            lua_pushfstring(L, "%s has %d entries, at most %d allowed", what, (int)n, TD_MAX_DIMS));
    for (lua_Integer i = 1; i <= n; i++) {
        lua_rawgeti(L, idx, i);
        const char *name = lua_pushfstring(L, "%s[%d]", what, (int)i);
        v[i - 1] = to_integer(L, -2, arg, name);
        lua_pop(L, 2);
    }
    return (int)n;
}

static int dims_list(lua_State *L, int idx, int arg, int *dims)
{
    int64_t v[TD_MAX_DIMS];
    int n = int_list(L, idx, arg, "dims", v);
    for (int i = 0; i < n; i++) {
        if (v[i] < -TD_MAX_DIMS - 1 || v[i] > TD_MAX_DIMS)
            luaL_argerror(L, arg, lua_pushfstring(L, "dim %d is out of range", (int)v[i]));
        dims[i] = (int)v[i];
    }
    return n;
}

/* flip(x, dims) */
static int r_flip(lua_State *L)
{
    td_tensor *x = lt_check(L, 1);
    if (lua_isnoneornil(L, 2)) luaL_argerror(L, 2, "dims expected (a dim or a list of dims)");
    lt_check_nargs(L, 2);
    int dims[TD_MAX_DIMS];
    int n = dims_list(L, 2, 2, dims);
    LT_CALL(L, td_flip(x, n, dims, lt_new(L)), "flip");
    return 1;
}

/* roll(x, shifts, [dims]): without dims over the flattened tensor */
static int r_roll(lua_State *L)
{
    static const char *const keys[] = {"dims", NULL};
    td_tensor *x = lt_check(L, 1);
    if (lua_isnoneornil(L, 2)) luaL_argerror(L, 2, "shifts expected (a number or a list)");
    int64_t shifts[TD_MAX_DIMS];
    int ns = int_list(L, 2, 2, "shifts", shifts);
    int opt = options_at(L, 3, keys);
    int at = param(L, 3, opt, "dims");
    int dims[TD_MAX_DIMS], nd = 0;
    bool has_dims = !lua_isnil(L, -1);
    if (has_dims) {
        nd = dims_list(L, lua_gettop(L), at, dims);
        /* roll(x, 1, {}) names no dim: the flattened roll, as PyTorch */
        has_dims = nd > 0;
    }
    lua_pop(L, 1);
    LT_CALL(L, td_roll(x, ns, shifts, has_dims ? dims : NULL, nd, lt_new(L)), "roll");
    return 1;
}

static int triangle(lua_State *L, td_status (*fn)(td_tensor *, int64_t, td_tensor **),
                    const char *fname)
{
    static const char *const keys[] = {"diagonal", NULL};
    td_tensor *x = lt_check(L, 1);
    int opt = options_at(L, 2, keys);
    lua_Integer diagonal = int_param(L, 2, opt, "diagonal", 0);
    LT_CALL(L, fn(x, (int64_t)diagonal, lt_new(L)), fname);
    return 1;
}

static int r_tril(lua_State *L) { return triangle(L, td_tril, "tril"); }
static int r_triu(lua_State *L) { return triangle(L, td_triu, "triu"); }

const luaL_Reg lt_reorder_methods[] = {
    {"sort", r_sort}, {"argsort", r_argsort}, {"topk", r_topk}, {"flip", r_flip},
    {"roll", r_roll}, {"tril", r_tril},       {"triu", r_triu}, {NULL, NULL},
};
