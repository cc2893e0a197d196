/* tide.core: the margin losses. Each takes its required tensors
 * positionally and a trailing options table (see docs/losses.md, "Margin losses"). */
#include "l_util.h"

static const char *const mm_keys[] = {"p", "margin", "weight", "reduction", NULL};
static const char *const red_keys[] = {"reduction", NULL};
static const char *const margin_keys[] = {"margin", "reduction", NULL};
static const char *const triplet_keys[] = {"margin", "p", "eps", "swap", "reduction", NULL};

/* multi_margin_loss(input, target, {p = 1, margin = 1, weight, reduction = "mean"}) */
static int l_multi_margin_loss(lua_State *L)
{
    static const char *fn = "multi_margin_loss";
    td_tensor *x = lt_check(L, 1), *t = lt_check(L, 2);
    lt_check_options(L, 3, mm_keys);
    td_multi_margin_opts o = TD_MULTI_MARGIN_DEFAULTS;
    lua_Integer p = lt_opt_integer(L, 3, "p", 1);
    o.p = (p == 1 || p == 2) ? (int)p : 0;
    if (!o.p) luaL_argerror(L, 3, lua_pushfstring(L, "p must be 1 or 2, got %I", p));
    o.margin = lt_opt_number(L, 3, "margin", 1.0);
    o.weight = lt_opt_tensor(L, 3, "weight");
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_multi_margin_loss(x, t, &o, lt_new(L)), fn);
    return 1;
}

/* multilabel_margin_loss(input, target, {reduction = "mean"}) */
static int l_multilabel_margin_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *t = lt_check(L, 2);
    lt_check_options(L, 3, red_keys);
    td_multilabel_margin_opts o = TD_MULTILABEL_MARGIN_DEFAULTS;
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_multilabel_margin_loss(x, t, &o, lt_new(L)), "multilabel_margin_loss");
    return 1;
}

/* hinge_embedding_loss(input, target, {margin = 1, reduction = "mean"}) */
static int l_hinge_embedding_loss(lua_State *L)
{
    td_tensor *x = lt_check(L, 1), *t = lt_check(L, 2);
    lt_check_options(L, 3, margin_keys);
    td_hinge_embedding_opts o = TD_HINGE_EMBEDDING_DEFAULTS;
    o.margin = lt_opt_number(L, 3, "margin", 1.0);
    o.reduction = lt_opt_reduction(L, 3, "mean", 0);
    LT_CALL(L, td_hinge_embedding_loss(x, t, &o, lt_new(L)), "hinge_embedding_loss");
    return 1;
}

/* cosine_embedding_loss(x1, x2, y, {margin = 0, reduction = "mean"}) */
static int l_cosine_embedding_loss(lua_State *L)
{
    td_tensor *a = lt_check(L, 1), *b = lt_check(L, 2), *y = lt_check(L, 3);
    lt_check_options(L, 4, margin_keys);
    td_cosine_embedding_opts o = TD_COSINE_EMBEDDING_DEFAULTS;
    o.margin = lt_opt_number(L, 4, "margin", 0.0);
    o.reduction = lt_opt_reduction(L, 4, "mean", 0);
    LT_CALL(L, td_cosine_embedding_loss(a, b, y, &o, lt_new(L)), "cosine_embedding_loss");
    return 1;
}

/* margin_ranking_loss(x1, x2, y, {margin = 0, reduction = "mean"}) */
static int l_margin_ranking_loss(lua_State *L)
{
    td_tensor *a = lt_check(L, 1), *b = lt_check(L, 2), *y = lt_check(L, 3);
    lt_check_options(L, 4, margin_keys);
    td_margin_ranking_opts o = TD_MARGIN_RANKING_DEFAULTS;
    o.margin = lt_opt_number(L, 4, "margin", 0.0);
    o.reduction = lt_opt_reduction(L, 4, "mean", 0);
    LT_CALL(L, td_margin_ranking_loss(a, b, y, &o, lt_new(L)), "margin_ranking_loss");
    return 1;
}

/* triplet_margin_loss(anchor, positive, negative,
 *                     {margin = 1, p = 2, eps = 1e-6, swap = false, reduction = "mean"}) */
static int l_triplet_margin_loss(lua_State *L)
{
    td_tensor *a = lt_check(L, 1), *p = lt_check(L, 2), *n = lt_check(L, 3);
    lt_check_options(L, 4, triplet_keys);
    td_triplet_margin_opts o = TD_TRIPLET_MARGIN_DEFAULTS;
    o.margin = lt_opt_number(L, 4, "margin", 1.0);
    o.p = lt_opt_number(L, 4, "p", 2.0);
    o.eps = lt_opt_number(L, 4, "eps", 1e-6);
    o.swap = lt_opt_boolean(L, 4, "swap", 0);
    o.reduction = lt_opt_reduction(L, 4, "mean", 0);
    LT_CALL(L, td_triplet_margin_loss(a, p, n, &o, lt_new(L)), "triplet_margin_loss");
    return 1;
}

const luaL_Reg lt_loss_margin_funcs[] = {
    {"multi_margin_loss", l_multi_margin_loss},
    {"multilabel_margin_loss", l_multilabel_margin_loss},
    {"hinge_embedding_loss", l_hinge_embedding_loss},
    {"cosine_embedding_loss", l_cosine_embedding_loss},
    {"margin_ranking_loss", l_margin_ranking_loss},
    {"triplet_margin_loss", l_triplet_margin_loss},
    {NULL, NULL},
};
