/* Front-ends of the regression losses: mse_loss, l1_loss, smooth_l1_loss,
 * huber_loss, kl_div, poisson_nll_loss, gaussian_nll_loss.
 *
 * Each checks its arguments once, runs one fused elementwise kernel over
 * the broadcast shape into a loss buffer, reduces that buffer in a fixed
 * order (td_loss_reduce_raw) and records one autograd node whose backward
 * is one closed-form kernel call per input that needs a gradient. */
#include "loss_family.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>

typedef struct {
    const td_loss_def *d;
    td_regression_args a; /* op and parameters */
    td_reduction r;
} reg_call;

static td_status check_float(const reg_call *c, td_tensor *t, const char *what, int arg,
                             const td_tensor *input)
{
    if (!t) return td_error(TD_EINVAL, arg, "%s: %s is missing", c->d->name, what);
    if (!td_dtype_is_float(t->dtype))
        return td_error(TD_EDTYPE, arg, "%s: %s must be float32 or float64, got %s", c->d->name,
                        what, td_dtype_name(t->dtype));
    if (input && t->dtype != input->dtype)
        return td_error(TD_EDTYPE, arg, "%s: %s is %s but input is %s (expected the same dtype)",
                        c->d->name, what, td_dtype_name(t->dtype), td_dtype_name(input->dtype));
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

/* An input of (N, 1) against a target of (N) broadcasts to (N, N) and
 * silently trains on the wrong loss; PyTorch's UserWarning catches it once
 * per process, and so does this, once per loss. gaussian_nll_loss has its
 * own rule for var and does not broadcast input against target. */
static void warn_broadcast(const reg_call *c, const td_tensor *x, const td_tensor *y, int nd,
                           const int64_t *shape)
{
    static atomic_bool warned[TD_REG_GAUSSIAN + 1];
    int k = (int)c->d->kind;
    if (k < 0 || k >= TD_REG_GAUSSIAN) return;
    if (nd == x->ndim && memcmp(shape, x->shape, sizeof(int64_t) * (size_t)nd) == 0) return;
    if (atomic_exchange(&warned[k], true)) return;
    char a[128], b[128], s[128];
    size_t used = (size_t)snprintf(s, sizeof s, "(");
    for (int i = 0; i < nd && used < sizeof s; i++)
        used +=
            (size_t)snprintf(s + used, sizeof s - used, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (used < sizeof s) snprintf(s + used, sizeof s - used, ")");
    fprintf(stderr,
            "UserWarning: %s: input %s and target %s broadcast to %s, not input's shape; this is "
            "likely not what you want (make them the same shape, e.g. target:view(input:shape()))"
            "\n",
            c->d->name, td_shape_str(x, a, sizeof a), td_shape_str(y, b, sizeof b), s);
}

/* what backward needs: the kernel's arguments (scale = 1 / the mean's
 * divisor), the broadcast shape, and the saved inputs */
typedef struct {
    td_regression_args a;
    bool var_unsq; /* var lacks input's last dim */
    int ndim;
    int64_t shape[TD_MAX_DIMS];
    td_tensor *x, *y, *var;
} reg_ctx;

static td_status reg_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const reg_ctx *c = n->ctx;
    const td_backend *be = td_backend_of(g);
    td_regression_args a = c->a;
    bool gauss = a.op == TD_REG_GAUSSIAN, unsq = c->var_unsq;
    int nd = c->ndim;
    const int64_t *shape = c->shape;
    td_tensor *x = c->x, *y = c->y, *v = c->var;
    td_tensor *gv = NULL, *xv = NULL, *yv = NULL, *vu = NULL, *vv = NULL, *d = NULL, *gin = NULL,
              *s = NULL;
    td_status st = TD_OK;
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

/* the node's context from a template whose tensors are the ones to keep */
static td_status reg_fill(td_node *node, void *ctx, const void *arg)
{
    const reg_ctx *f = arg;
    reg_ctx *k = ctx;
    *k = *f;
    k->x = k->y = k->var = NULL;
    TD_TRY(td_node_keep(node, f->x, &k->x));
    TD_TRY(td_node_keep(node, f->y, &k->y));
    if (f->var) TD_TRY(td_node_keep(node, f->var, &k->var));
    return TD_OK;
}

/* the loss of x, y (and var for gaussian, with var_unsq when var lacks
 * input's last dim), reduced as c->r says */
static td_status reg_run(const reg_call *c, td_tensor *x, td_tensor *y, td_tensor *var,
                         bool var_unsq, td_tensor **out)
{
    const td_backend *be = td_backend_of(x);
    td_tensor *on[3] = {x, y, var};
    TD_TRY(td_same_device(3, on));
    int nd;
    int64_t shape[TD_MAX_DIMS];
    td_tensor *vu = NULL, *xv = NULL, *yv = NULL, *vv = NULL, *elem = NULL, *res = NULL;
    td_status st = TD_OK;
    if (!broadcast2(x->ndim, x->shape, y->ndim, y->shape, &nd, shape)) {
        char a[128], b[128];
        return td_error(TD_ESHAPE, 2, "%s: input %s and target %s cannot be broadcast", c->d->name,
                        td_shape_str(x, a, sizeof a), td_shape_str(y, b, sizeof b));
    }
    warn_broadcast(c, x, y, nd, shape);
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
                          c->d->name, td_shape_str(var, a, sizeof a), td_shape_str(x, b, sizeof b),
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

    /* PyTorch: the mean over every element; batchmean sums and divides by
     * input.size(0) (the plain sum for a 0-dim input) */
    double divisor = 1;
    if (c->r == TD_REDUCE_MEAN) divisor = (double)td_numel(elem);
    if (c->r == TD_REDUCE_BATCHMEAN) divisor = x->ndim > 0 ? (double)x->shape[0] : 1;
    td_tensor *in[3] = {x, y, var};
    reg_ctx tmpl = {c->a, var_unsq, nd, {0}, x, y, var};
    tmpl.a.scale = 1.0 / divisor;
    memcpy(tmpl.shape, shape, sizeof(int64_t) * (size_t)nd);
    TD_CHECK(td_loss_record(c->d, elem, c->r, divisor, var ? 3 : 2, in, reg_backward,
                            sizeof(reg_ctx), reg_fill, &tmpl, &res));
    *out = res;
    res = NULL;
fail:;
    td_tensor *tmp[] = {vu, xv, yv, vv, elem, res};
    td_release_many(6, tmp);
    return st;
}

static bool same_dims(int n, const int64_t *a, const int64_t *b)
{
    for (int i = 0; i < n; i++)
        if (a[i] != b[i]) return false;
    return true;
}

/* gaussian_nll_loss's var: input's shape, or input's with the last dim 1,
 * or input's without the last dim (PyTorch's rule); *unsq for the last */
static td_status check_var(const reg_call *c, td_tensor *input, td_tensor *var, bool *unsq)
{
    TD_TRY(check_float(c, var, "var", 3, input));
    td_tensor *on[2] = {input, var};
    TD_TRY(td_same_device(2, on));
    *unsq = false;
    int n = input->ndim;
    if (var->ndim == n && same_dims(n, var->shape, input->shape)) {
        /* one variance per element */
    } else if (n >= 1 && var->ndim == n - 1 && same_dims(n - 1, var->shape, input->shape)) {
        *unsq = true;
    } else if (n >= 1 && var->ndim == n && same_dims(n - 1, var->shape, input->shape) &&
               var->shape[n - 1] == 1) {
        /* a trailing 1 broadcasts */
    } else {
        char a[128], b[128];
        return td_error(
            TD_ESHAPE, 3,
            "gaussian_nll_loss: var %s is of incorrect size for input %s (expected input's "
            "shape, its last dim 1, or its last dim dropped)",
            td_shape_str(var, a, sizeof a), td_shape_str(input, b, sizeof b));
    }
    if (td_backend_of(var)->regression_loss->count_below(var, 0) > 0)
        return td_error(TD_EINVAL, 3, "gaussian_nll_loss: var has negative entries");
    return TD_OK;
}

td_status td_regression_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts,
                                 td_tensor **out)
{
    const td_regression_loss_opts *o = opts;
    td_regression_op op = (td_regression_op)d->kind;
    double param = 0;
    switch (op) {
    case TD_REG_SMOOTH_L1: param = o->beta; break;
    case TD_REG_HUBER: param = o->delta; break;
    case TD_REG_KL_DIV: op = o->log_target ? TD_REG_KL_DIV_LOG : TD_REG_KL_DIV; break;
    case TD_REG_POISSON_LOG:
        op = o->log_input ? TD_REG_POISSON_LOG : TD_REG_POISSON;
        param = o->eps;
        break;
    case TD_REG_GAUSSIAN: param = o->eps; break;
    default: break;
    }
    bool full =
        (op == TD_REG_POISSON_LOG || op == TD_REG_POISSON || op == TD_REG_GAUSSIAN) && o->full;
    reg_call c = {d, {op, param, full, 1}, o->reduction};
    TD_TRY(check_float(&c, in[0], "input", 1, NULL));
    TD_TRY(check_float(&c, in[1], "target", 2, in[0]));
    bool unsq = false;
    td_tensor *var = d->n_inputs > 2 ? in[2] : NULL;
    if (var) TD_TRY(check_var(&c, in[0], var, &unsq));
    return reg_run(&c, in[0], in[1], var, unsq, out);
}
