/* tide.core: the optimizers' fused steps, the internal API of tide.optim
 * (bindings/tide/optim.lua):
 *   _sgd_step(param, grad, momentum_buf_or_nil, {lr, momentum, dampening,
 *             nesterov, weight_decay, maximize, first_step})
 *   _adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq_or_nil,
 *              {lr, beta1, beta2, eps, weight_decay, step, amsgrad,
 *               decoupled, maximize})
 *   _rmsprop_step(param, grad, square_avg, grad_avg_or_nil,
 *                 momentum_buf_or_nil, {lr, alpha, eps, weight_decay,
 *                 momentum, centered, maximize})
 *   _sgd_step_multi(params, grads, momentum_bufs_or_nil, opts)
 *   _adam_step_multi(params, grads, exp_avgs, exp_avg_sqs,
 *                    max_exp_avg_sqs_or_nil, opts)
 * (lists of tensors, the same options: the whole list in few launches on
 * CUDA, one parameter after another elsewhere)
 * Each updates param and the state tensors in place and returns nothing. */
#include "l_util.h"

static td_tensor *opt_tensor_arg(lua_State *L, int arg)
{
    return lua_isnoneornil(L, arg) ? NULL : lt_check(L, arg);
}

/* the options of SGD and Adam/AdamW steps, shared by the single and the
 * list entries (which check the option names themselves, in their order) */
static const char *const sgd_keys[] = {"lr",           "momentum", "dampening",  "nesterov",
                                       "weight_decay", "maximize", "first_step", NULL};
static const char *const adam_keys[] = {"lr",   "beta1",   "beta2",     "eps",      "weight_decay",
                                        "step", "amsgrad", "decoupled", "maximize", NULL};

static td_sgd_opts sgd_opts(lua_State *L, int idx)
{
    td_sgd_opts o = TD_SGD_OPTS_DEFAULT;
    o.lr = lt_opt_number(L, idx, "lr", o.lr);
    o.momentum = lt_opt_number(L, idx, "momentum", 0.0);
    o.dampening = lt_opt_number(L, idx, "dampening", 0.0);
    o.nesterov = lt_opt_boolean(L, idx, "nesterov", 0);
    o.weight_decay = lt_opt_number(L, idx, "weight_decay", 0.0);
    o.maximize = lt_opt_boolean(L, idx, "maximize", 0);
    o.first_step = lt_opt_boolean(L, idx, "first_step", 1);
    return o;
}

static td_adam_opts adam_opts(lua_State *L, int idx)
{
    td_adam_opts o = TD_ADAM_OPTS_DEFAULT;
    o.lr = lt_opt_number(L, idx, "lr", o.lr);
    o.beta1 = lt_opt_number(L, idx, "beta1", o.beta1);
    o.beta2 = lt_opt_number(L, idx, "beta2", o.beta2);
    o.eps = lt_opt_number(L, idx, "eps", o.eps);
    o.weight_decay = lt_opt_number(L, idx, "weight_decay", 0.0);
    o.step = lt_opt_integer(L, idx, "step", 1);
    o.amsgrad = lt_opt_boolean(L, idx, "amsgrad", 0);
    o.decoupled = lt_opt_boolean(L, idx, "decoupled", 0);
    o.maximize = lt_opt_boolean(L, idx, "maximize", 0);
    return o;
}

static int l_sgd_step(lua_State *L)
{
    td_tensor *p = lt_check(L, 1), *g = lt_check(L, 2), *buf = opt_tensor_arg(L, 3);
    lt_check_options(L, 4, sgd_keys);
    td_sgd_opts o = sgd_opts(L, 4);
    LT_CALL(L, td_sgd_step(p, g, buf, &o), "_sgd_step");
    return 0;
}

static int l_adam_step(lua_State *L)
{
    td_tensor *p = lt_check(L, 1), *g = lt_check(L, 2), *m = lt_check(L, 3), *v = lt_check(L, 4);
    td_tensor *vmax = opt_tensor_arg(L, 5);
    lt_check_options(L, 6, adam_keys);
    td_adam_opts o = adam_opts(L, 6);
    LT_CALL(L, td_adam_step(p, g, m, v, vmax, &o), "_adam_step");
    return 0;
}

static int l_rmsprop_step(lua_State *L)
{
    static const char *const keys[] = {"lr",       "alpha",    "eps",      "weight_decay",
                                       "momentum", "centered", "maximize", NULL};
    td_tensor *p = lt_check(L, 1), *g = lt_check(L, 2), *sq = lt_check(L, 3);
    td_tensor *ga = opt_tensor_arg(L, 4), *buf = opt_tensor_arg(L, 5);
    lt_check_options(L, 6, keys);
    td_rmsprop_opts o = TD_RMSPROP_OPTS_DEFAULT;
    o.lr = lt_opt_number(L, 6, "lr", o.lr);
    o.alpha = lt_opt_number(L, 6, "alpha", o.alpha);
    o.eps = lt_opt_number(L, 6, "eps", o.eps);
    o.weight_decay = lt_opt_number(L, 6, "weight_decay", 0.0);
    o.momentum = lt_opt_number(L, 6, "momentum", 0.0);
    o.centered = lt_opt_boolean(L, 6, "centered", 0);
    o.maximize = lt_opt_boolean(L, 6, "maximize", 0);
    LT_CALL(L, td_rmsprop_step(p, g, sq, ga, buf, &o), "_rmsprop_step");
    return 0;
}

/* the tensors of the list at arg (n of them; NULL entries when the argument
 * is nil and nil_ok), in a userdata left on the stack */
static td_tensor **tensor_list(lua_State *L, int arg, int n, int nil_ok, const char *fname)
{
    if (nil_ok && lua_isnoneornil(L, arg)) return NULL;
    luaL_checktype(L, arg, LUA_TTABLE);
    if ((int)luaL_len(L, arg) != n)
        luaL_error(L, "%s: argument #%d must list %d tensors, got %d", fname, arg, n,
                   (int)luaL_len(L, arg));
    td_tensor **t = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *t, 0);
    for (int i = 0; i < n; i++) {
        lua_geti(L, arg, i + 1);
        t[i] = lt_test(L, -1);
        if (!t[i]) luaL_error(L, "%s: argument #%d: entry %d is not a tensor", fname, arg, i + 1);
        lua_pop(L, 1); /* the list keeps it alive */
    }
    return t;
}

static int l_sgd_step_multi(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)luaL_len(L, 1);
    lt_check_options(L, 4, sgd_keys);
    td_tensor **p = tensor_list(L, 1, n, 0, "_sgd_step_multi"),
              **g = tensor_list(L, 2, n, 0, "_sgd_step_multi");
    td_tensor **buf = tensor_list(L, 3, n, 1, "_sgd_step_multi");
    td_sgd_opts o = sgd_opts(L, 4);
    LT_CALL(L, td_sgd_step_multi(n, p, g, buf, &o), "_sgd_step");
    return 0;
}

static int l_adam_step_multi(lua_State *L)
{
    luaL_checktype(L, 1, LUA_TTABLE);
    int n = (int)luaL_len(L, 1);
    lt_check_options(L, 6, adam_keys);
    const char *f = "_adam_step_multi";
    td_tensor **p = tensor_list(L, 1, n, 0, f), **g = tensor_list(L, 2, n, 0, f);
    td_tensor **m = tensor_list(L, 3, n, 0, f), **v = tensor_list(L, 4, n, 0, f);
    td_tensor **vmax = tensor_list(L, 5, n, 1, f);
    td_adam_opts o = adam_opts(L, 6);
    LT_CALL(L, td_adam_step_multi(n, p, g, m, v, vmax, &o), "_adam_step");
    return 0;
}

const luaL_Reg lt_optim_funcs[] = {
    {"_sgd_step_multi", l_sgd_step_multi},
    {"_adam_step_multi", l_adam_step_multi},
    {"_sgd_step", l_sgd_step},
    {"_adam_step", l_adam_step},
    {"_rmsprop_step", l_rmsprop_step},
    {NULL, NULL},
};
