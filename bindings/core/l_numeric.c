/* round (with decimals), nan_to_num, isclose, allclose: the elementwise
 * ops with options (runtime/numeric.c). Registered after the op table, so
 * this round, which takes {decimals = n}, replaces the table's plain one. */
#include "l_util.h"

/* round(x, {decimals = 0}) */
static int n_round(lua_State *L)
{
    static const char *const keys[] = {"decimals", NULL};
    td_tensor *x = lt_check(L, 1);
    lt_check_options(L, 2, keys);
    lua_Integer d = lt_opt_integer(L, 2, "decimals", 0);
    if (d < -400 || d > 400)
        return luaL_argerror(L, 2, lua_pushfstring(L, "decimals %I is outside [-400, 400]", d));
    lua_settop(L, 2);
    LT_CALL(L, td_round_decimals(x, (int)d, lt_new(L)), "round");
    return 1;
}

/* nan_to_num(x, {nan = 0, posinf = dtype max, neginf = dtype lowest}) */
static int n_nan_to_num(lua_State *L)
{
    static const char *const keys[] = {"nan", "posinf", "neginf", NULL};
    td_tensor *x = lt_check(L, 1);
    lt_check_options(L, 2, keys);
    double nan = lt_opt_number(L, 2, "nan", 0.0), pos = 0, neg = 0;
    bool has_pos = lt_opt_field(L, 2, "posinf") != LUA_TNIL;
    lua_pop(L, 1);
    bool has_neg = lt_opt_field(L, 2, "neginf") != LUA_TNIL;
    lua_pop(L, 1);
    if (has_pos) pos = lt_opt_number(L, 2, "posinf", 0.0);
    if (has_neg) neg = lt_opt_number(L, 2, "neginf", 0.0);
    lua_settop(L, 2);
    LT_CALL(L, td_nan_to_num(x, nan, has_pos ? &pos : NULL, has_neg ? &neg : NULL, lt_new(L)),
            "nan_to_num");
    return 1;
}

static void close_options(lua_State *L, double *rtol, double *atol, bool *equal_nan)
{
    static const char *const keys[] = {"rtol", "atol", "equal_nan", NULL};
    lt_check_options(L, 3, keys);
    *rtol = lt_opt_number(L, 3, "rtol", 1e-5);
    *atol = lt_opt_number(L, 3, "atol", 1e-8);
    *equal_nan = lt_opt_boolean(L, 3, "equal_nan", 0);
}

/* isclose(a, b, {rtol = 1e-5, atol = 1e-8, equal_nan = false}): uint8 */
static int n_isclose(lua_State *L)
{
    td_tensor *a = lt_check(L, 1), *b = lt_check(L, 2);
    double rtol, atol;
    bool equal_nan;
    close_options(L, &rtol, &atol, &equal_nan);
    lua_settop(L, 3);
    LT_CALL(L, td_isclose(a, b, rtol, atol, equal_nan, lt_new(L)), "isclose");
    return 1;
}

/* allclose(a, b, {...}): a Lua boolean */
static int n_allclose(lua_State *L)
{
    td_tensor *a = lt_check(L, 1), *b = lt_check(L, 2);
    double rtol, atol;
    bool equal_nan, all = false;
    close_options(L, &rtol, &atol, &equal_nan);
    lt_check_status(L, td_allclose(a, b, rtol, atol, equal_nan, &all), "allclose", 0);
    lua_pushboolean(L, all);
    return 1;
}

/* equal(a, b): true when both have the same shape and every element is
 * equal (NaN to nothing, not even itself), whatever their dtypes, as
 * torch.equal */
static int n_equal(lua_State *L)
{
    td_tensor *a = lt_check(L, 1), *b = lt_check(L, 2);
    lt_check_nargs(L, 2);
    if (!td_same_shape(a, b)) {
        lua_pushboolean(L, 0);
        return 1;
    }
    td_tensor **eq = lt_new(L);
    LT_CALL(L, td_binary(TD_EQ, a, b, eq), "equal");
    td_tensor **all = lt_new(L);
    LT_CALL(L, td_all(*eq, 0, true, false, all), "equal");
    double v = 0;
    LT_CALL(L, td_item(*all, &v), "equal");
    lua_pushboolean(L, v != 0);
    return 1;
}

const luaL_Reg lt_numeric_methods[] = {
    {"round", n_round},       {"nan_to_num", n_nan_to_num}, {"isclose", n_isclose},
    {"allclose", n_allclose}, {"equal", n_equal},           {NULL, NULL},
};
