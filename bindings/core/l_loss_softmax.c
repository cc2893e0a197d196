/* tide.core: the softmax losses. Each is f(input, target, {options}). */
#include "l_util.h"

static int l_cross_entropy(lua_State *L)
{
    static const char *const keys[] = {"weight", "ignore_index", "label_smoothing", "reduction", NULL};
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, keys);
    td_cross_entropy_opts o = TD_CROSS_ENTROPY_OPTS_DEFAULT;
    o.weight = lt_opt_tensor(L, 3, "weight");
    o.ignore_index = lt_opt_integer(L, 3, "ignore_index", -100);
    o.label_smoothing = lt_opt_number(L, 3, "label_smoothing", 0.0);
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_cross_entropy(x, y, &o, lt_new(L)), "cross_entropy");
    return 1;
}

static int l_nll_loss(lua_State *L)
{
    static const char *const keys[] = {"weight", "ignore_index", "reduction", NULL};
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, keys);
    td_nll_loss_opts o = TD_NLL_LOSS_OPTS_DEFAULT;
    o.weight = lt_opt_tensor(L, 3, "weight");
    o.ignore_index = lt_opt_integer(L, 3, "ignore_index", -100);
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_nll_loss(x, y, &o, lt_new(L)), "nll_loss");
    return 1;
}

static int l_focal_loss(lua_State *L)
{
    static const char *const keys[] = {"gamma", "alpha", "ignore_index", "reduction", NULL};
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, keys);
    td_focal_loss_opts o = TD_FOCAL_LOSS_OPTS_DEFAULT;
    o.gamma = lt_opt_number(L, 3, "gamma", 2.0);
    int tp = lt_opt_field(L, 3, "alpha");
    lua_pop(L, 1);
    if (tp == LUA_TNUMBER)
        o.alpha_value = lt_opt_number(L, 3, "alpha", 1.0);
    else if (tp != LUA_TNIL)
        o.alpha = lt_opt_tensor(L, 3, "alpha");
    o.ignore_index = lt_opt_integer(L, 3, "ignore_index", -100);
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_focal_loss(x, y, &o, lt_new(L)), "focal_loss");
    return 1;
}

static int l_poly1_cross_entropy(lua_State *L)
{
    static const char *const keys[] = {"epsilon", "weight", "ignore_index", "label_smoothing", "reduction", NULL};
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, keys);
    td_poly1_cross_entropy_opts o = TD_POLY1_CROSS_ENTROPY_OPTS_DEFAULT;
    o.epsilon = lt_opt_number(L, 3, "epsilon", 1.0);
    o.weight = lt_opt_tensor(L, 3, "weight");
    o.ignore_index = lt_opt_integer(L, 3, "ignore_index", -100);
    o.label_smoothing = lt_opt_number(L, 3, "label_smoothing", 0.0);
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_poly1_cross_entropy(x, y, &o, lt_new(L)), "poly1_cross_entropy");
    return 1;
}

const luaL_Reg lt_loss_softmax_funcs[] = {
    {"cross_entropy", l_cross_entropy},
    {"nll_loss", l_nll_loss},
    {"focal_loss", l_focal_loss},
    {"poly1_cross_entropy", l_poly1_cross_entropy},
    {NULL, NULL},
};
