/* The binary losses: binary_cross_entropy, binary_cross_entropy_with_logits,
 * sigmoid_focal_loss, multilabel_soft_margin_loss, asymmetric_loss and
 * soft_margin_loss.
 *
 * One front-end shape for all six: check every argument once (errors name
 * the Lua argument: 1 input, 2 target, 3 options), make the inputs
 * contiguous (weights broadcast to the input), one fused kernel call that
 * writes each element's loss and, when a gradient is wanted, its closed-form
 * derivatives, then td_loss_reduce_raw for "mean"/"sum", then one autograd
 * node whose backward multiplies the saved derivatives by the incoming
 * gradient. */
#include "loss_family.h"

#include <math.h>

static td_binary_loss_fn kernel_of(const td_tensor *x, td_binary_kind k)
{
    const struct td_binary_loss_kernels *t = td_backend_of(x)->binary_loss;
    switch (k) {
    case TD_BIN_BCE: return t->bce;
    case TD_BIN_BCE_LOGITS: return t->bce_logits;
    case TD_BIN_FOCAL: return t->sigmoid_focal;
    case TD_BIN_ASL: return t->asymmetric;
    case TD_BIN_SOFT_MARGIN: return t->soft_margin;
    case TD_BIN_MULTILABEL: return t->multilabel_soft_margin;
    }
    return NULL;
}

/* ---- argument checks ------------------------------------------------------ */

static td_status check_float_opt(const td_loss_def *d, const char *what, const td_tensor *t,
                                 const td_tensor *x)
{
    char a[64], b[64];
    if (!td_dtype_is_float(t->dtype))
        return td_error(TD_EDTYPE, 3, "%s needs a float %s, got %s", d->name, what,
                        td_dtype_name(t->dtype));
    if (t->dtype != x->dtype)
        return td_error(TD_EDTYPE, 3, "%s needs %s of input's dtype %s, got %s", d->name, what,
                        td_dtype_name(x->dtype), td_dtype_name(t->dtype));
    bool ok = t->ndim <= x->ndim;
    for (int i = 0; ok && i < t->ndim; i++) {
        int64_t s = t->shape[t->ndim - 1 - i];
        ok = s == 1 || s == x->shape[x->ndim - 1 - i];
    }
    if (!ok)
        return td_error(TD_ESHAPE, 3, "%s %s of shape %s does not broadcast to input %s", d->name,
                        what, td_shape_str(t, a, sizeof a), td_shape_str(x, b, sizeof b));
    if (t->requires_grad && td_grad_enabled())
        return td_error(TD_EGRAD, 3, "%s is not differentiable with respect to %s (detach it)",
                        d->name, what);
    return TD_OK;
}

static td_status check_inputs(const td_loss_def *d, const td_tensor *x, const td_tensor *y,
                              const td_tensor *w, const td_tensor *pw)
{
    char a[64], b[64];
    if (!td_dtype_is_float(x->dtype))
        return td_error(TD_EDTYPE, 1, "%s needs a float input (float32 or float64), got %s",
                        d->name, td_dtype_name(x->dtype));
    if (!td_dtype_is_float(y->dtype))
        return td_error(TD_EDTYPE, 2,
                        "%s needs a float target (%s), got %s: class indices are not targets here",
                        d->name, d->kind == TD_BIN_SOFT_MARGIN ? "of 1 and -1" : "of probabilities",
                        td_dtype_name(y->dtype));
    if (y->dtype != x->dtype)
        return td_error(TD_EDTYPE, 2, "%s needs target of input's dtype %s, got %s", d->name,
                        td_dtype_name(x->dtype), td_dtype_name(y->dtype));
    if (!td_same_shape(x, y))
        return td_error(TD_ESHAPE, 2,
                        "%s needs target of input's shape, got input %s and target %s", d->name,
                        td_shape_str(x, a, sizeof a), td_shape_str(y, b, sizeof b));
    if (d->kind == TD_BIN_MULTILABEL && x->ndim == 0)
        return td_error(TD_ESHAPE, 1, "%s needs input of shape (C) or (N, C), got a 0-dim tensor",
                        d->name);
    if (!d->target_grad && y->requires_grad && td_grad_enabled())
        return td_error(TD_EGRAD, 2, "%s is not differentiable with respect to target (detach it)",
                        d->name);
    if (w) TD_TRY(check_float_opt(d, "weight", w, x));
    if (pw) TD_TRY(check_float_opt(d, "pos_weight", pw, x));
    return TD_OK;
}

/* a contiguous tensor of x's shape holding t (broadcast), recording nothing */
static td_status dense(td_tensor *t, const td_tensor *x, td_tensor **out)
{
    if (td_same_shape(t, x) && td_is_contiguous(t))
        return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
    td_tensor *v = NULL, *c = NULL;
    td_status st;
    TD_CHECK(td_broadcast_view(t, x->ndim, x->shape, &v));
    TD_CHECK(td_empty_like(x, &c));
    td_backend_of(x)->copy(c, v);
    *out = c;
    c = NULL;
fail:
    td_tensor_release(v);
    td_tensor_release(c);
    return st;
}

/* ---- backward ------------------------------------------------------------- */

/* the derivatives the forward kernel wrote, saved for the inputs that want
 * them */
typedef struct {
    bool per_row;    /* the gradient comes per row (multilabel, "none") */
    td_tensor *d[2]; /* d/dx, d/dy, or NULL */
} binary_ctx;

static td_status binary_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const binary_ctx *c = n->ctx;
    td_tensor *gv = NULL, *prod = NULL;
    td_status st = TD_OK;
    bool scalar = td_numel(g) == 1 && g->ndim == 0;
    double gs = 0;
    if (scalar) {
        TD_CHECK(td_read_flat(g, 0, &gs));
    } else if (c->per_row) {
        int64_t shape[TD_MAX_DIMS];
        int nd = n->in_ndim[0];
        memcpy(shape, n->in_shape[0], sizeof(int64_t) * (size_t)nd);
        shape[nd - 1] = 1;
        TD_CHECK(td_reshape(g, nd, shape, &gv));
    } else {
        td_tensor_retain(g);
        gv = g;
    }
    for (int i = 0; i < 2; i++) {
        td_tensor *d = c->d[i];
        if (!n->next[i] || !d) continue;
        if (scalar)
            TD_CHECK(td_binary_scalar(TD_MUL, d, gs, false, &prod));
        else
            TD_CHECK(td_binary(TD_MUL, gv, d, &prod));
        TD_CHECK(td_grad_to_input(n, i, prod, &gi[i]));
        td_tensor_release(prod);
        prod = NULL;
    }
fail:
    td_tensor_release(gv);
    td_tensor_release(prod);
    return st;
}

/* the node's context from a template whose tensors are the ones to keep */
static td_status binary_fill(td_node *node, void *ctx, const void *arg)
{
    const binary_ctx *f = arg;
    binary_ctx *c = ctx;
    c->per_row = f->per_row;
    for (int i = 0; i < 2; i++)
        if (f->d[i]) TD_TRY(td_node_keep(node, f->d[i], &c->d[i]));
    return TD_OK;
}

/* ---- the shared front-end ------------------------------------------------- */

td_status td_binary_loss_run(const td_loss_def *d, td_tensor *const *ins, const void *opts,
                             td_tensor **out)
{
    const td_binary_loss_opts *o = opts;
    td_tensor *x = ins[0], *y = ins[1];
    td_binary_kind k = (td_binary_kind)d->kind;
    bool rowwise = k == TD_BIN_MULTILABEL;
    td_tensor *w =
        k == TD_BIN_BCE || k == TD_BIN_BCE_LOGITS || k == TD_BIN_MULTILABEL ? o->weight : NULL;
    td_tensor *pw = k == TD_BIN_BCE_LOGITS ? o->pos_weight : NULL;
    td_reduction r = o->reduction;
    td_binary_loss_args args = {0}, *a = &args;
    if (k == TD_BIN_BCE_LOGITS) a->smoothing = o->label_smoothing;
    if (k == TD_BIN_FOCAL) a->alpha = o->alpha, a->gamma = o->gamma;
    if (k == TD_BIN_ASL)
        a->gamma_pos = o->gamma_pos, a->gamma_neg = o->gamma_neg, a->clip = o->clip,
        a->eps = o->eps;
    TD_TRY(check_inputs(d, x, y, w, pw));
    td_tensor *on[4] = {x, y, w, pw};
    TD_TRY(td_same_device(4, on));
    td_tensor *t[8] = {NULL}; /* cx, cy, cw, cpw, loss, dx, dy, res */
    td_status st;
    int64_t n = td_numel(x);
    int64_t C = rowwise ? x->shape[x->ndim - 1] : 1;
    int64_t count = rowwise ? td_shape_numel(x->ndim - 1, x->shape) : n;
    td_tensor *in[2] = {x, y};
    bool need = td_needs_grad(2, in);
    bool want_dx = need && x->requires_grad, want_dy = need && d->target_grad && y->requires_grad;

    TD_CHECK(dense(x, x, &t[0]));
    TD_CHECK(dense(y, x, &t[1]));
    if (w) TD_CHECK(dense(w, x, &t[2]));
    if (pw) TD_CHECK(dense(pw, x, &t[3]));
    td_device dev = td_device_of(x);
    if (rowwise)
        TD_CHECK(td_empty_on(x->ndim - 1, x->shape, x->dtype, dev, &t[4]));
    else
        TD_CHECK(td_empty_on(x->ndim, x->shape, x->dtype, dev, &t[4]));
    if (want_dx) TD_CHECK(td_empty_on(x->ndim, x->shape, x->dtype, dev, &t[5]));
    if (want_dy) TD_CHECK(td_empty_on(x->ndim, x->shape, x->dtype, dev, &t[6]));

    a->scale = r == TD_REDUCE_MEAN ? 1.0 / (double)(count > 0 ? count : 1) : 1.0;
    a->cols = C;
    if (rowwise && C == 0) {
        /* a sum over no classes divided by C = 0, as PyTorch: NaN */
        td_backend_of(x)->fill(t[4], NAN);
    } else {
        int64_t bad = kernel_of(x, k)(a, n, t[4], t[5], t[6], t[0], t[1], t[2], t[3]);
        if (bad >= 0) {
            double v = 0;
            TD_CHECK(td_read_flat(k == TD_BIN_BCE ? t[0] : t[1], bad, &v));
            if (k == TD_BIN_BCE)
                st = td_error(TD_EINVAL, 1,
                              "%s needs input (probabilities) in [0, 1], got %g at element %lld",
                              d->name, v, (long long)bad);
            else
                st = td_error(TD_EINVAL, 2, "%s needs target in [0, 1], got %g at element %lld",
                              d->name, v, (long long)bad);
            goto fail;
        }
    }
    binary_ctx tmpl = {rowwise && r == TD_REDUCE_NONE,
                       {want_dx ? t[5] : NULL, want_dy ? t[6] : NULL}};
    TD_CHECK(td_loss_record(d, t[4], r, (double)count, 2, in, binary_backward, sizeof(binary_ctx),
                            binary_fill, &tmpl, &t[7]));
    *out = t[7];
    t[7] = NULL;
fail:
    td_release_many(8, t);
    return st;
}
