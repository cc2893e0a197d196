/* tide.core: the binary losses. Each is fname(input, target, {options}):
 * inputs positional, everything with a default in the options table. */
#include "l_util.h"

static const char *const bce_keys[] = {"weight", "reduction", NULL};
static const char *const bcel_keys[] = {"weight", "pos_weight", "label_smoothing", "reduction", NULL};
static const char *const focal_keys[] = {"alpha", "gamma", "reduction", NULL};
static const char *const mlsm_keys[] = {"weight", "reduction", NULL};
static const char *const asl_keys[] = {"gamma_pos", "gamma_neg", "clip", "eps", "reduction", NULL};
static const char *const soft_keys[] = {"reduction", NULL};

static int l_binary_cross_entropy(lua_State *L)
{
    td_tensor *p = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, bce_keys);
    td_bce_opts o;
    td_bce_opts_default(&o);
    o.weight = lt_opt_tensor(L, 3, "weight");
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_binary_cross_entropy(p, y, &o, lt_new(L)), "binary_cross_entropy");
    return 1;
}

static int l_binary_cross_entropy_with_logits(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, bcel_keys);
    td_bce_logits_opts o;
    td_bce_logits_opts_default(&o);
    o.weight = lt_opt_tensor(L, 3, "weight");
    o.pos_weight = lt_opt_tensor(L, 3, "pos_weight");
    o.label_smoothing = lt_opt_number(L, 3, "label_smoothing", o.label_smoothing);
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_binary_cross_entropy_with_logits(x, y, &o, lt_new(L)), "binary_cross_entropy_with_logits");
    return 1;
}

static int l_sigmoid_focal_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, focal_keys);
    td_sigmoid_focal_opts o;
    td_sigmoid_focal_opts_default(&o);
    o.alpha = lt_opt_number(L, 3, "alpha", o.alpha);
    o.gamma = lt_opt_number(L, 3, "gamma", o.gamma);
    o.reduction = lt_opt_reduction(L, 3, "none", 0);
    LT_CALL(L, td_sigmoid_focal_loss(x, y, &o, lt_new(L)), "sigmoid_focal_loss");
    return 1;
}

static int l_multilabel_soft_margin_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, mlsm_keys);
    td_multilabel_soft_margin_opts o;
    td_multilabel_soft_margin_opts_default(&o);
    o.weight = lt_opt_tensor(L, 3, "weight");
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_multilabel_soft_margin_loss(x, y, &o, lt_new(L)), "multilabel_soft_margin_loss");
    return 1;
}

static int l_asymmetric_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, asl_keys);
    td_asymmetric_opts o;
    td_asymmetric_opts_default(&o);
    o.gamma_pos = lt_opt_number(L, 3, "gamma_pos", o.gamma_pos);
    o.gamma_neg = lt_opt_number(L, 3, "gamma_neg", o.gamma_neg);
    o.clip = lt_opt_number(L, 3, "clip", o.clip);
    o.eps = lt_opt_number(L, 3, "eps", o.eps);
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_asymmetric_loss(x, y, &o, lt_new(L)), "asymmetric_loss");
    return 1;
}

static int l_soft_margin_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *y = lt_check(L, 2);
    lt_check_options(L, 3, soft_keys);
    td_soft_margin_opts o;
    td_soft_margin_opts_default(&o);
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_soft_margin_loss(x, y, &o, lt_new(L)), "soft_margin_loss");
    return 1;
}

const luaL_Reg lt_loss_binary_funcs[] = {
    {"binary_cross_entropy", l_binary_cross_entropy},
    {"binary_cross_entropy_with_logits", l_binary_cross_entropy_with_logits},
    {"sigmoid_focal_loss", l_sigmoid_focal_loss},
    {"multilabel_soft_margin_loss", l_multilabel_soft_margin_loss},
    {"asymmetric_loss", l_asymmetric_loss},
    {"soft_margin_loss", l_soft_margin_loss},
    {NULL, NULL},
};
