/* tide.core: the regression losses.
 *
 * tide.F.<name>(input, target[, var], {options}): the tensors positional,
 * every option by name in the trailing table (unknown names are errors). */
#include "l_util.h"

static const char *const plain_keys[] = {"reduction", NULL};
static const char *const smooth_l1_keys[] = {"beta", "reduction", NULL};
static const char *const huber_keys[] = {"delta", "reduction", NULL};
static const char *const kl_div_keys[] = {"log_target", "reduction", NULL};
static const char *const poisson_keys[] = {"log_input", "full", "eps", "reduction", NULL};
static const char *const gaussian_keys[] = {"full", "eps", "reduction", NULL};

static int l_mse_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, plain_keys);
    td_mse_loss_opts o = {lt_opt_reduction(L, 3, "mean", 0)};
    LT_CALL(L, td_mse_loss(x, y, &o, lt_new(L)), "mse_loss");
    return 1;
}

static int l_l1_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, plain_keys);
    td_l1_loss_opts o = {lt_opt_reduction(L, 3, "mean", 0)};
    LT_CALL(L, td_l1_loss(x, y, &o, lt_new(L)), "l1_loss");
    return 1;
}

static int l_smooth_l1_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, smooth_l1_keys);
    td_smooth_l1_loss_opts o = {lt_opt_reduction(L, 3, "mean", 0), lt_opt_number(L, 3, "beta", 1.0)};
    LT_CALL(L, td_smooth_l1_loss(x, y, &o, lt_new(L)), "smooth_l1_loss");
    return 1;
}

static int l_huber_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, huber_keys);
    td_huber_loss_opts o = {lt_opt_reduction(L, 3, "mean", 0), lt_opt_number(L, 3, "delta", 1.0)};
    LT_CALL(L, td_huber_loss(x, y, &o, lt_new(L)), "huber_loss");
    return 1;
}

static int l_kl_div(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, kl_div_keys);
    td_kl_div_opts o = {lt_opt_reduction(L, 3, "mean", 1), lt_opt_boolean(L, 3, "log_target", 0)};
    LT_CALL(L, td_kl_div(x, y, &o, lt_new(L)), "kl_div");
    return 1;
}

static int l_poisson_nll_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, poisson_keys);
    td_poisson_nll_loss_opts o = {lt_opt_reduction(L, 3, "mean", 0), lt_opt_boolean(L, 3, "log_input", 1),
                                  lt_opt_boolean(L, 3, "full", 0), lt_opt_number(L, 3, "eps", 1e-8)};
    LT_CALL(L, td_poisson_nll_loss(x, y, &o, lt_new(L)), "poisson_nll_loss");
    return 1;
}

static int l_gaussian_nll_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2), *v = lt_check(L, 3);
    lt_check_options(L, 4, gaussian_keys);
    td_gaussian_nll_loss_opts o = {lt_opt_reduction(L, 4, "mean", 0), lt_opt_boolean(L, 4, "full", 0),
                                   lt_opt_number(L, 4, "eps", 1e-6)};
    LT_CALL(L, td_gaussian_nll_loss(x, y, v, &o, lt_new(L)), "gaussian_nll_loss");
    return 1;
}

const luaL_Reg lt_loss_regression_funcs[] = {
    {"mse_loss", l_mse_loss},
    {"l1_loss", l_l1_loss},
    {"smooth_l1_loss", l_smooth_l1_loss},
    {"huber_loss", l_huber_loss},
    {"kl_div", l_kl_div},
    {"poisson_nll_loss", l_poisson_nll_loss},
    {"gaussian_nll_loss", l_gaussian_nll_loss},
    {NULL, NULL},
};
