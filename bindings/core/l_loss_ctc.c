/* tide.core: the ctc losses. */
#include "l_util.h"

/* a lengths argument: an int64 tensor as it is, or a list of integers (or,
 * for unbatched input, one integer) turned into an int64 tensor that
 * replaces it on the stack */
static td_tensor *check_lengths(lua_State *L, int arg, const char *name, const char *fname)
{
    td_tensor *t = lt_test(L, arg);
    if (t) return t;
    int tp = lua_type(L, arg);
    if (tp == LUA_TNUMBER) {
        if (!lua_isinteger(L, arg))
            luaL_argerror(L, arg, lua_pushfstring(L, "%s must be integers, got %f", name, lua_tonumber(L, arg)));
        td_tensor **slot = lt_new(L);
        LT_CALL(L, td_empty(0, NULL, TD_INT64, slot), fname);
        *(int64_t *)td_data_ptr(*slot) = (int64_t)lua_tointeger(L, arg);
    } else if (tp == LUA_TTABLE) {
        int64_t n = (int64_t)luaL_len(L, arg);
        td_tensor **slot = lt_new(L);
        LT_CALL(L, td_empty(1, &n, TD_INT64, slot), fname);
        int64_t *d = td_data_ptr(*slot);
        for (int64_t i = 0; i < n; i++) {
            lua_geti(L, arg, (lua_Integer)i + 1);
            int isint = 0;
            lua_Integer v = lua_tointegerx(L, -1, &isint);
            if (!isint)
                luaL_argerror(L, arg, lua_pushfstring(L, "%s[%d] must be an integer, got %s", name, (int)i,
                                                      lua_type(L, -1) == LUA_TNUMBER ? "a float"
                                                                                    : luaL_typename(L, -1)));
            lua_pop(L, 1);
            d[i] = (int64_t)v;
        }
    } else {
        luaL_typeerror(L, arg, "int64 tensor or list of integers");
    }
    lua_replace(L, arg);
    return lt_check(L, arg);
}

static const char *const ctc_keys[] = {"blank", "reduction", "zero_infinity", NULL};

/* ctc_loss(log_probs, targets, input_lengths, target_lengths,
 *          {blank = 0, reduction = "mean", zero_infinity = false}) */
static int l_ctc_loss(lua_State *L)
{
    td_tensor *lp = lt_check(L, 1), *tg = lt_check(L, 2);
    lt_check_options(L, 5, ctc_keys);
    td_ctc_options o = td_ctc_defaults();
    o.blank = (int64_t)lt_opt_integer(L, 5, "blank", 0);
    o.reduction = lt_opt_reduction(L, 5, "mean", 0);
    o.zero_infinity = lt_opt_boolean(L, 5, "zero_infinity", 0);
    lua_settop(L, 5);
    td_tensor *il = check_lengths(L, 3, "input_lengths", "ctc_loss");
    td_tensor *tl = check_lengths(L, 4, "target_lengths", "ctc_loss");
    LT_CALL(L, td_ctc_loss(lp, tg, il, tl, &o, lt_new(L)), "ctc_loss");
    return 1;
}

const luaL_Reg lt_loss_ctc_funcs[] = {
    {"ctc_loss", l_ctc_loss},
    {NULL, NULL},
};
