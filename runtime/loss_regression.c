/* Front-ends of the regression losses: mse_loss, l1_loss, smooth_l1_loss,
 * huber_loss, kl_div, poisson_nll_loss, gaussian_nll_loss.
 *
 * Each checks its arguments once, runs one fused elementwise kernel over
 * the broadcast shape into a loss buffer, reduces that buffer in a fixed
 * order (td_loss_reduce_raw) and records one autograd node whose backward
 * is one closed-form kernel call per input that needs a gradient. */
#include "internal.h"
#include "tide/losses.h"

#include <math.h>

typedef struct {
    const char *name;     /* the loss, for errors and the node */
    const char *node;     /* the autograd node's name */
    td_regression_args a; /* op and parameters */
    td_reduction r;
    int opt_arg;          /* position of the options table in the Lua call */
} reg_call;

static td_status check_float(const reg_call *c, td_tensor *t, const char *what, int arg,
                             const td_tensor *input)
{
    if (!t) return td_error(TD_EINVAL, arg, "%s: %s is missing", c->name, what);
    if (!td_dtype_is_float(t->dtype))
        return td_error(TD_EDTYPE, arg, "%s: %s must be float32 or float64, got %s", c->name, what,
                        td_dtype_name(t->dtype));
    if (input && t->dtype != input->dtype)
        return td_error(TD_EDTYPE, arg, "%s: %s is %s but input is %s (expected the same dtype)",
                        c->name, what, td_dtype_name(t->dtype), td_dtype_name(input->dtype));
    return TD_OK;
}

/* the broadcast of two shapes; false when they do not broadcast */
static bool broadcast2(int na, const int64_t *a, int nb, const int64_t *b, int *n, int64_t *out)
{
    int m = na > nb ? na : nb;
    for (int i = 0; i < m; i++) {
        int ia = i - (m - na), ib = i - (m - nb);
        int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1) return false;
        out[i] = sa == 1 ? sb : sa;
    }
    *n = m;
    return true;
}

/* iargs: op, full, var lacks the last dim, loss ndim, loss shape...;
 * dargs: param, gradient scale (1 / divisor for the means) */
enum { IA_OP, IA_FULL, IA_VAR_UNSQ, IA_NDIM, IA_SHAPE };

static td_status reg_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const td_backend *be = td_backend_of(g);
    td_regression_args a = {(td_regression_op)n->iargs[IA_OP], n->dargs[0], n->iargs[IA_FULL] != 0,
                            n->dargs[1]};
    bool gauss = a.op == TD_REG_GAUSSIAN, unsq = n->iargs[IA_VAR_UNSQ] != 0;
    int nd = (int)n->iargs[IA_NDIM];
    const int64_t *shape = &n->iargs[IA_SHAPE];
    td_tensor *x = td_node_saved(n, 0), *y = td_node_saved(n, 1), *v = gauss ? td_node_saved(n, 2) : NULL;
    td_tensor *gv = NULL, *xv = NULL, *yv = NULL, *vu = NULL, *vv = NULL, *d = NULL, *gin = NULL, *s = NULL;
    td_status st = TD_OK;
    if (!x || !y || (gauss && !v)) return td_error(TD_EGRAD, 0, "internal: saved tensors are gone");
    TD_CHECK(td_broadcast_view(g, nd, shape, &gv));
    TD_CHECK(td_broadcast_view(x, nd, shape, &xv));
    TD_CHECK(td_broadcast_view(y, nd, shape, &yv));
    const td_tensor *X = xv, *Y = yv;
    if (gauss) {
        /* the kernel takes d = input - target and var */
        TD_CHECK(td_empty_on(nd, shape, x->dtype, td_device_of(x), &d));
        be->binary(TD_SUB, d, xv, yv);
        if (unsq) {
            int64_t vs[TD_MAX_DIMS], vst[TD_MAX_DIMS];
            memcpy(vs, v->shape, sizeof(int64_t) * v->ndim);
            memcpy(vst, v->stride, sizeof(int64_t) * v->ndim);
            vs[v->ndim] = 1;
            vst[v->ndim] = 1;
            TD_CHECK(td_make_view(v, v->ndim + 1, vs, vst, v->offset, &vu));
        } else {
            TD_CHECK(td_make_view(v, v->ndim, v->shape, v->stride, v->offset, &vu));
        }
        TD_CHECK(td_broadcast_view(vu, nd, shape, &vv));
        X = d;
        Y = vv;
    }
    for (int i = 0; i < n->n_next; i++) {
        if (!n->next[i]) continue;
        TD_CHECK(td_empty_on(nd, shape, x->dtype, td_device_of(x), &gin));
        be->regression_loss->backward(&a, (td_regression_wrt)i, gin, gv, X, Y);
        if (i == 2 && unsq) { /* var lacked input's last dim: sum over it */
            TD_CHECK(td_sum(gin, nd - 1, false, false, &s));
            td_tensor_release(gin);
            gin = s;
            s = NULL;
        }
        TD_CHECK(td_grad_to_input(n, i, gin, &gi[i]));
        td_tensor_release(gin);
        gin = NULL;
    }
fail:;
    td_tensor *tmp[] = {gv, xv, yv, vu, vv, d, gin, s};
    td_release_many(8, tmp);
    return st;
}

/* the loss of x, y (and var for gaussian, with var_unsq when var lacks
 * input's last dim), reduced as c->r says */
static td_status reg_run(const reg_call *c, td_tensor *x, td_tensor *y, td_tensor *var, bool var_unsq,
                         td_tensor **out)
{
    const td_backend *be = td_backend_of(x);
    td_tensor *on[3] = {x, y, var};
    TD_TRY(td_same_device(3, on));
    if (!be->regression_loss) return td_error(TD_EINVAL, 1, "%s is not implemented on %s yet", c->name, be->name);
    int nd;
    int64_t shape[TD_MAX_DIMS];
    td_tensor *vu = NULL, *xv = NULL, *yv = NULL, *vv = NULL, *elem = NULL, *res = NULL;
    td_status st = TD_OK;
    if (!broadcast2(x->ndim, x->shape, y->ndim, y->shape, &nd, shape)) {
        char a[128], b[128];
        return td_error(TD_ESHAPE, 2, "%s: input %s and target %s cannot be broadcast", c->name,
                        td_shape_str(x, a, sizeof a), td_shape_str(y, b, sizeof b));
    }
    if (var) {
        if (var_unsq) {
            int64_t vs[TD_MAX_DIMS], vst[TD_MAX_DIMS];
            memcpy(vs, var->shape, sizeof(int64_t) * var->ndim);
            memcpy(vst, var->stride, sizeof(int64_t) * var->ndim);
            vs[var->ndim] = 1;
            vst[var->ndim] = 1;
            TD_CHECK(td_make_view(var, var->ndim + 1, vs, vst, var->offset, &vu));
        } else {
            TD_CHECK(td_make_view(var, var->ndim, var->shape, var->stride, var->offset, &vu));
        }
        int64_t s2[TD_MAX_DIMS];
        if (!broadcast2(nd, shape, vu->ndim, vu->shape, &nd, s2)) {
            char a[128], b[128], t[128];
            st = td_error(TD_ESHAPE, 3, "%s: var %s does not broadcast with input %s and target %s",
                          c->name, td_shape_str(var, a, sizeof a), td_shape_str(x, b, sizeof b),
                          td_shape_str(y, t, sizeof t));
            goto fail;
        }
        memcpy(shape, s2, sizeof(int64_t) * nd);
    }
    TD_CHECK(td_empty_on(nd, shape, x->dtype, td_device_of(x), &elem));
    TD_CHECK(td_broadcast_view(x, nd, shape, &xv));
    TD_CHECK(td_broadcast_view(y, nd, shape, &yv));
    if (vu) TD_CHECK(td_broadcast_view(vu, nd, shape, &vv));
    be->regression_loss->forward(&c->a, elem, xv, yv, vv);

    double divisor = 1;
    if (c->r == TD_REDUCE_NONE) {
        td_tensor_retain(res = elem);
    } else {
        if (c->r == TD_REDUCE_MEAN) divisor = (double)td_numel(elem);
        /* PyTorch: sum / input.size(0), and the plain sum for a 0-dim input */
        if (c->r == TD_REDUCE_BATCHMEAN) divisor = x->ndim > 0 ? (double)x->shape[0] : 1;
        TD_CHECK(td_loss_reduce_raw(elem, c->r, divisor, &res));
    }

    td_tensor *in[3] = {x, y, var};
    int nin = var ? 3 : 2;
    if (td_needs_grad(nin, in)) {
        td_node *node;
        TD_CHECK(td_node_new(c->node, reg_backward, nin, in, &node));
        node->iargs[IA_OP] = c->a.op;
        node->iargs[IA_FULL] = c->a.full;
        node->iargs[IA_VAR_UNSQ] = var_unsq;
        node->iargs[IA_NDIM] = nd;
        memcpy(&node->iargs[IA_SHAPE], shape, sizeof(int64_t) * nd);
        node->dargs[0] = c->a.param;
        node->dargs[1] = 1.0 / divisor;
        for (int i = 0; i < nin && st == TD_OK; i++) st = td_node_save(node, in[i]);
        if (st != TD_OK) {
            td_node_release(node);
            goto fail;
        }
        td_node_attach(node, res);
    }
    *out = res;
    res = NULL;
fail:;
    td_tensor *tmp[] = {vu, xv, yv, vv, elem, res};
    td_release_many(6, tmp);
    return st;
}

/* the checks every loss shares: float inputs of one dtype, a reduction it
 * accepts */
static td_status reg_check(const reg_call *c, td_tensor *x, td_tensor *y)
{
    TD_TRY(check_float(c, x, "input", 1, NULL));
    TD_TRY(check_float(c, y, "target", 2, x));
    if ((unsigned)c->r > TD_REDUCE_BATCHMEAN || (c->r == TD_REDUCE_BATCHMEAN && c->a.op != TD_REG_KL_DIV &&
                                                 c->a.op != TD_REG_KL_DIV_LOG))
        return td_error(TD_EINVAL, c->opt_arg, "%s: reduction '%s' is not allowed (expected 'none', 'mean' or 'sum')",
                        c->name, td_reduction_name(c->r));
    return TD_OK;
}

static td_status reg_simple(reg_call c, td_tensor *x, td_tensor *y, td_tensor **out)
{
    TD_TRY(reg_check(&c, x, y));
    return reg_run(&c, x, y, NULL, false, out);
}

td_status td_mse_loss(td_tensor *input, td_tensor *target, const td_mse_loss_opts *o, td_tensor **out)
{
    td_mse_loss_opts d = TD_MSE_LOSS_DEFAULTS;
    if (!o) o = &d;
    reg_call c = {"mse_loss", "MseLossBackward", {TD_REG_MSE, 0, false, 1}, o->reduction, 3};
    return reg_simple(c, input, target, out);
}

td_status td_l1_loss(td_tensor *input, td_tensor *target, const td_l1_loss_opts *o, td_tensor **out)
{
    td_l1_loss_opts d = TD_L1_LOSS_DEFAULTS;
    if (!o) o = &d;
    reg_call c = {"l1_loss", "L1LossBackward", {TD_REG_L1, 0, false, 1}, o->reduction, 3};
    return reg_simple(c, input, target, out);
}

td_status td_smooth_l1_loss(td_tensor *input, td_tensor *target, const td_smooth_l1_loss_opts *o,
                            td_tensor **out)
{
    td_smooth_l1_loss_opts d = TD_SMOOTH_L1_LOSS_DEFAULTS;
    if (!o) o = &d;
    if (!(o->beta >= 0))
        return td_error(TD_EINVAL, 3, "smooth_l1_loss: beta must be >= 0, got %g", o->beta);
    reg_call c = {"smooth_l1_loss", "SmoothL1LossBackward", {TD_REG_SMOOTH_L1, o->beta, false, 1},
                  o->reduction, 3};
    return reg_simple(c, input, target, out);
}

td_status td_huber_loss(td_tensor *input, td_tensor *target, const td_huber_loss_opts *o, td_tensor **out)
{
    td_huber_loss_opts d = TD_HUBER_LOSS_DEFAULTS;
    if (!o) o = &d;
    if (!(o->delta > 0))
        return td_error(TD_EINVAL, 3, "huber_loss: delta must be > 0, got %g", o->delta);
    reg_call c = {"huber_loss", "HuberLossBackward", {TD_REG_HUBER, o->delta, false, 1}, o->reduction, 3};
    return reg_simple(c, input, target, out);
}

td_status td_kl_div(td_tensor *input, td_tensor *target, const td_kl_div_opts *o, td_tensor **out)
{
    td_kl_div_opts d = TD_KL_DIV_DEFAULTS;
    if (!o) o = &d;
    reg_call c = {"kl_div", "KlDivBackward",
                  {o->log_target ? TD_REG_KL_DIV_LOG : TD_REG_KL_DIV, 0, false, 1}, o->reduction, 3};
    return reg_simple(c, input, target, out);
}

td_status td_poisson_nll_loss(td_tensor *input, td_tensor *target, const td_poisson_nll_loss_opts *o,
                              td_tensor **out)
{
    td_poisson_nll_loss_opts d = TD_POISSON_NLL_LOSS_DEFAULTS;
    if (!o) o = &d;
    if (!(o->eps > 0))
        return td_error(TD_EINVAL, 3, "poisson_nll_loss: eps must be > 0, got %g", o->eps);
    reg_call c = {"poisson_nll_loss", "PoissonNllLossBackward",
                  {o->log_input ? TD_REG_POISSON_LOG : TD_REG_POISSON, o->eps, o->full, 1}, o->reduction, 3};
    return reg_simple(c, input, target, out);
}

static bool same_dims(int n, const int64_t *a, const int64_t *b)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

td_status td_gaussian_nll_loss(td_tensor *input, td_tensor *target, td_tensor *var,
                               const td_gaussian_nll_loss_opts *o, td_tensor **out)
{
    td_gaussian_nll_loss_opts d = TD_GAUSSIAN_NLL_LOSS_DEFAULTS;
    if (!o) o = &d;
    reg_call c = {"gaussian_nll_loss", "GaussianNllLossBackward", {TD_REG_GAUSSIAN, o->eps, o->full, 1},
                  o->reduction, 4};
    if (!(o->eps > 0))
        return td_error(TD_EINVAL, 4, "gaussian_nll_loss: eps must be > 0, got %g", o->eps);
    TD_TRY(reg_check(&c, input, target));
    TD_TRY(check_float(&c, var, "var", 3, input));
    td_tensor *on[3] = {input, target, var};
    TD_TRY(td_same_device(3, on));
    if (!td_backend_of(var)->regression_loss)
        return td_error(TD_EINVAL, 1, "gaussian_nll_loss is not implemented on %s yet", td_backend_of(var)->name);
    /* PyTorch's rule: var has input's shape, or input's with the last dim
     * 1, or input's without the last dim */
    bool unsq = false;
    int n = input->ndim;
    if (var->ndim == n && same_dims(n, var->shape, input->shape)) {
        /* one variance per element */
    } else if (n >= 1 && var->ndim == n - 1 && same_dims(n - 1, var->shape, input->shape)) {
        unsq = true;
    } else if (n >= 1 && var->ndim == n && same_dims(n - 1, var->shape, input->shape) &&
               var->shape[n - 1] == 1) {
        /* a trailing 1 broadcasts */
    } else {
        char a[128], b[128];
        return td_error(TD_ESHAPE, 3,
                        "gaussian_nll_loss: var %s is of incorrect size for input %s (expected input's "
                        "shape, its last dim 1, or its last dim dropped)",
                        td_shape_str(var, a, sizeof a), td_shape_str(input, b, sizeof b));
    }
    if (td_backend_of(var)->regression_loss->count_below(var, 0) > 0)
        return td_error(TD_EINVAL, 3, "gaussian_nll_loss: var has negative entries");
    return reg_run(&c, input, target, var, unsq, out);
}
