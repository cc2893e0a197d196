/* Reductions and softmax front-ends. The kernels see a contiguous
 * (outer, n, inner) block; everything else is shaping, dtype rules and
 * gradients. */
#include "internal.h"

#include <math.h>

typedef struct {
    int dim; /* wrapped, or -1 for all */
    bool keepdim;
    int64_t outer, n, inner;
    int out_ndim;
    int64_t out_shape[TD_MAX_DIMS];
} reduce_plan;

static td_status plan(const td_tensor *x, int dim, bool all, bool keepdim, reduce_plan *p)
{
    p->keepdim = keepdim;
    p->out_ndim = 0;
    if (all || x->ndim == 0) {
        p->dim = -1;
        p->outer = p->inner = 1;
        p->n = td_numel(x);
        if (keepdim)
            for (int i = 0; i < x->ndim; i++) p->out_shape[p->out_ndim++] = 1;
        return TD_OK;
    }
    TD_TRY(td_wrap_dim(dim, x->ndim, 2, &p->dim));
    p->outer = td_shape_numel(p->dim, x->shape);
    p->n = x->shape[p->dim];
    p->inner = td_shape_numel(x->ndim - p->dim - 1, x->shape + p->dim + 1);
    for (int i = 0; i < x->ndim; i++) {
        if (i != p->dim)
            p->out_shape[p->out_ndim++] = x->shape[i];
        else if (keepdim)
            p->out_shape[p->out_ndim++] = 1;
    }
    return TD_OK;
}

/* a contiguous copy of t in dtype dt, recording nothing */
static td_status contiguous_raw(td_tensor *t, td_dtype dt, td_tensor **out)
{
    if (t->dtype == dt && td_is_contiguous(t))
        return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
    td_tensor *c = NULL;
    TD_TRY(td_empty_on(t->ndim, t->shape, dt, td_device_of(t), &c));
    td_backend_of(t)->copy(c, t);
    *out = c;
    return TD_OK;
}

/* values (dtype dt) and, for max/min, int64 indices */
static td_status reduce_raw(td_reduce_op op, td_tensor *x, const reduce_plan *p, td_dtype dt,
                            td_tensor **values, td_tensor **indices)
{
    td_tensor *cx = NULL, *v = NULL, *idx = NULL;
    td_status st;
    bool arg = op == TD_ARGMAX || op == TD_ARGMIN;
    if (p->dim < 0 && !arg && x->dtype == dt && td_is_channels_last(x)) {
        /* a whole channels-last tensor: its storage in memory order, as
         * PyTorch sums it, rather than an NCHW copy first (6x slower) */
        int64_t numel = td_numel(x), one = 1;
        TD_CHECK(td_make_view(x, 1, &numel, &one, x->offset, &cx));
    } else
        TD_CHECK(contiguous_raw(x, dt, &cx));
    TD_CHECK(td_empty_on(p->out_ndim, p->out_shape, arg ? TD_INT64 : dt, td_device_of(x), &v));
    if (indices) TD_CHECK(td_empty_on(p->out_ndim, p->out_shape, TD_INT64, td_device_of(x), &idx));
    td_backend_of(x)->reduce(op, v, idx, cx, p->outer, p->n, p->inner);
    *values = v;
    v = NULL;
    if (indices) {
        *indices = idx;
        idx = NULL;
    }
fail:
    td_tensor_release(cx);
    td_tensor_release(v);
    td_tensor_release(idx);
    return st;
}

/* what every reduction's backward knows; the first member of the
 * contexts of those that keep more */
typedef struct {
    int dim; /* wrapped, or -1 for all */
    bool keepdim;
} reduce_ctx;

/* g reshaped so it broadcasts against the input (the reduced dim as 1) */
static td_status unreduce(const td_node *n, const reduce_ctx *r, td_tensor *g, td_tensor **out)
{
    int nd = n->in_ndim[0];
    int64_t shape[TD_MAX_DIMS];
    for (int i = 0; i < nd; i++) shape[i] = (r->dim < 0 || i == r->dim) ? 1 : n->in_shape[0][i];
    if (r->keepdim) {
        td_tensor_retain(g);
        *out = g;
        return TD_OK;
    }
    return td_reshape(g, nd, shape, out);
}

static td_status expand_to_input(const td_node *n, const reduce_ctx *r, td_tensor *g,
                                 td_tensor **out)
{
    td_tensor *u = NULL;
    TD_TRY(unreduce(n, r, g, &u));
    td_status st = td_expand(u, n->in_ndim[0], n->in_shape[0], out);
    td_tensor_release(u);
    return st;
}

static td_status sum_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    td_tensor *e = NULL;
    TD_TRY(expand_to_input(n, n->ctx, g, &e));
    td_status st = td_grad_to_input(n, 0, e, gi);
    td_tensor_release(e);
    return st;
}

/* a node over x with a context of `size` bytes that starts with p's
 * reduce_ctx */
static td_status new_reduce_node(const char *name, td_backward_fn fn, td_tensor *x,
                                 const reduce_plan *p, size_t size, td_node **node, void **ctx)
{
    TD_TRY(td_node_new(name, fn, 1, &x, node));
    td_status st = td_node_ctx(*node, size, ctx);
    if (st != TD_OK) {
        td_node_release(*node);
        return st;
    }
    reduce_ctx *r = *ctx;
    r->dim = p->dim;
    r->keepdim = p->keepdim;
    return TD_OK;
}

td_status td_sum(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out)
{
    reduce_plan p;
    TD_TRY(plan(x, dim, all, keepdim, &p));
    td_dtype dt = td_dtype_is_float(x->dtype) ? x->dtype : TD_INT64;
    td_tensor *v = NULL;
    TD_TRY(reduce_raw(TD_SUM, x, &p, dt, &v, NULL));
    if (td_dtype_is_float(dt) && td_needs_grad(1, &x)) {
        td_node *node;
        void *ctx;
        td_status st =
            new_reduce_node("SumBackward", sum_backward, x, &p, sizeof(reduce_ctx), &node, &ctx);
        if (st == TD_OK) st = td_node_finish(node, st, v);
        if (st != TD_OK) {
            td_tensor_release(v);
            return st;
        }
    }
    *out = v;
    return TD_OK;
}

/* bfloat16 and float16 inputs of mean, var, std, norm and softmax: the
 * float32 op on x cast up, its result rounded once to x's dtype (as
 * PyTorch computes them in float32), through td_lowp_via_float32 */
typedef struct {
    int dim;
    bool all, keepdim, log;
    int64_t correction;
    double p;
} lowp_args;

static td_status mean_f32(td_tensor *xf, const void *a, td_tensor **out)
{
    const lowp_args *r = a;
    return td_mean(xf, r->dim, r->all, r->keepdim, out);
}

static td_status var_f32(td_tensor *xf, const void *a, td_tensor **out)
{
    const lowp_args *r = a;
    return td_var(xf, r->dim, r->all, r->keepdim, r->correction, out);
}

static td_status std_f32(td_tensor *xf, const void *a, td_tensor **out)
{
    const lowp_args *r = a;
    return td_std(xf, r->dim, r->all, r->keepdim, r->correction, out);
}

static td_status norm_f32(td_tensor *xf, const void *a, td_tensor **out)
{
    const lowp_args *r = a;
    return td_norm(xf, r->p, r->dim, r->all, r->keepdim, out);
}

static td_status softmax_f32(td_tensor *xf, const void *a, td_tensor **out)
{
    const lowp_args *r = a;
    return (r->log ? td_log_softmax : td_softmax)(xf, r->dim, out);
}

td_status td_mean(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out)
{
    if (td_dtype_is_lowp(x->dtype))
        return td_lowp_via_float32(x, mean_f32, &(lowp_args){dim, all, keepdim, false, 0, 0}, out);
    TD_TRY(td_need_float(x->dtype, 1, "mean", "input"));
    reduce_plan p;
    TD_TRY(plan(x, dim, all, keepdim, &p));
    td_tensor *s = NULL;
    TD_TRY(td_sum(x, dim, all, keepdim, &s));
    td_status st = td_binary_scalar(TD_DIV, s, (double)p.n, false, out);
    td_tensor_release(s);
    return st;
}

td_status td_var(td_tensor *x, int dim, bool all, bool keepdim, int64_t correction, td_tensor **out)
{
    if (td_dtype_is_lowp(x->dtype))
        return td_lowp_via_float32(x, var_f32,
                                   &(lowp_args){dim, all, keepdim, false, correction, 0}, out);
    TD_TRY(td_need_float(x->dtype, 1, "var", "input"));
    reduce_plan p;
    TD_TRY(plan(x, dim, all, keepdim, &p));
    td_tensor *m = NULL, *d = NULL, *sq = NULL, *s = NULL;
    td_status st;
    TD_CHECK(td_mean(x, dim, all, true, &m));
    TD_CHECK(td_binary(TD_SUB, x, m, &d));
    TD_CHECK(td_unary(TD_SQUARE, d, &sq));
    TD_CHECK(td_sum(sq, dim, all, keepdim, &s));
    /* n <= correction gives inf or nan, as PyTorch does */
    TD_CHECK(td_binary_scalar(TD_DIV, s, (double)(p.n - correction), false, out));
fail:
    td_tensor_release(m);
    td_tensor_release(d);
    td_tensor_release(sq);
    td_tensor_release(s);
    return st;
}

td_status td_std(td_tensor *x, int dim, bool all, bool keepdim, int64_t correction, td_tensor **out)
{
    if (td_dtype_is_lowp(x->dtype))
        return td_lowp_via_float32(x, std_f32,
                                   &(lowp_args){dim, all, keepdim, false, correction, 0}, out);
    td_tensor *v = NULL;
    TD_TRY(td_var(x, dim, all, keepdim, correction, &v));
    td_status st = td_unary(TD_SQRT, v, out);
    td_tensor_release(v);
    return st;
}

/* norm and prod keep their input and output (and norm its p) */
typedef struct {
    reduce_ctx r;
    td_tensor *x, *out;
    double p;
} x_out_ctx;

/* the node of fn over x, keeping x and the result v; *out = v, or v
 * released on failure */
static td_status record_x_out(const char *name, td_backward_fn fn, td_tensor *x,
                              const reduce_plan *pl, double p, td_tensor *v, td_tensor **out)
{
    td_node *node;
    x_out_ctx *c;
    td_status st = new_reduce_node(name, fn, x, pl, sizeof *c, &node, (void **)&c);
    if (st == TD_OK) {
        c->p = p;
        st = td_node_keep(node, x, &c->x);
        if (st == TD_OK) st = td_node_keep(node, v, &c->out);
        st = td_node_finish(node, st, v);
    }
    if (st != TD_OK) {
        td_tensor_release(v);
        return st;
    }
    *out = v;
    return TD_OK;
}

/* d|x|_p / dx = sign(x) |x|^(p-1) / |x|_p^(p-1), taken as 0 where the norm
 * is 0 (PyTorch's choice; the composite formula would give NaN there) */
static td_status norm_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const x_out_ctx *c = n->ctx;
    td_tensor *t[9] = {NULL};
    td_status st;
    TD_CHECK(unreduce(n, &c->r, c->out, &t[0]));
    TD_CHECK(unreduce(n, &c->r, g, &t[1]));
    TD_CHECK(td_unary(TD_SIGN, c->x, &t[2]));
    TD_CHECK(td_unary(TD_ABS, c->x, &t[3]));
    TD_CHECK(td_pow_scalar(t[3], c->p - 1, &t[4]));
    TD_CHECK(td_binary(TD_MUL, t[2], t[4], &t[5]));
    TD_CHECK(td_pow_scalar(t[0], c->p - 1, &t[6]));
    TD_CHECK(td_binary(TD_DIV, t[1], t[6], &t[7]));
    td_tensor_release(t[2]);
    t[2] = NULL;
    TD_CHECK(td_binary(TD_MUL, t[5], t[7], &t[2]));
    TD_CHECK(td_binary_scalar(TD_EQ, t[0], 0.0, false, &t[8]));
    td_tensor_release(t[3]);
    t[3] = NULL;
    TD_CHECK(td_masked_fill(t[2], t[8], 0.0, &t[3]));
    TD_CHECK(td_grad_to_input(n, 0, t[3], gi));
fail:
    td_release_many(9, t);
    return st;
}

static td_status norm_value(td_tensor *x, double p, int dim, bool all, bool keepdim,
                            td_tensor **out)
{
    td_tensor *a = NULL, *b = NULL, *s = NULL;
    td_status st;
    TD_CHECK(td_unary(TD_ABS, x, &a));
    if (isinf(p)) {
        TD_CHECK(td_max(a, dim, all, keepdim, out, NULL));
    } else if (p == 1) {
        TD_CHECK(td_sum(a, dim, all, keepdim, out));
    } else if (p == 2) {
        TD_CHECK(td_unary(TD_SQUARE, x, &b));
        TD_CHECK(td_sum(b, dim, all, keepdim, &s));
        TD_CHECK(td_unary(TD_SQRT, s, out));
    } else {
        TD_CHECK(td_pow_scalar(a, p, &b));
        TD_CHECK(td_sum(b, dim, all, keepdim, &s));
        TD_CHECK(td_pow_scalar(s, 1.0 / p, out));
    }
fail:
    td_tensor_release(a);
    td_tensor_release(b);
    td_tensor_release(s);
    return st;
}

td_status td_norm(td_tensor *x, double p, int dim, bool all, bool keepdim, td_tensor **out)
{
    if (td_dtype_is_lowp(x->dtype))
        return td_lowp_via_float32(x, norm_f32, &(lowp_args){dim, all, keepdim, false, 0, p}, out);
    TD_TRY(td_need_float(x->dtype, 1, "norm", "input"));
    /* p = 0 and -inf are td_norm_dims's (runtime/reduce_dims.c) */
    if (!(p > 0) && !(p < 0 && isfinite(p)))
        return td_error(TD_EINVAL, 2, "norm: p must be nonzero and not -inf here, got %g", p);
    reduce_plan pl;
    TD_TRY(plan(x, dim, all, keepdim, &pl));
    /* p = 1 and inf differentiate well as compositions (abs, max) */
    if (p == 1 || isinf(p) || !td_needs_grad(1, &x))
        return norm_value(x, p, dim, all, keepdim, out);
    bool prev = td_set_grad_enabled(false);
    td_tensor *v = NULL;
    td_status st = norm_value(x, p, dim, all, keepdim, &v);
    td_set_grad_enabled(prev);
    if (st != TD_OK) return st;
    return record_x_out("NormBackward", norm_backward, x, &pl, p, v, out);
}

/* ---- prod ------------------------------------------------------------ */

/* d prod / d x_i is the product of the others: out / x_i when the slice has
 * no zero; at the one zero of a slice, the product of the rest; else 0 */
static td_status prod_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const x_out_ctx *c = n->ctx;
    td_tensor *x = c->x;
    td_tensor *tmp[12] = {NULL};
    td_tensor *gx = NULL;
    td_status st;
    int dim = c->r.dim;
    bool all = dim < 0;
    TD_CHECK(unreduce(n, &c->r, c->out, &tmp[0]));                  /* out, broadcastable */
    TD_CHECK(td_binary_scalar(TD_EQ, x, 0.0, false, &tmp[1]));      /* zero mask */
    TD_CHECK(td_sum(tmp[1], dim, all, true, &tmp[2]));              /* zeros per slice */
    TD_CHECK(td_masked_fill(x, tmp[1], 1.0, &tmp[3]));              /* zeros -> 1 */
    TD_CHECK(td_prod(tmp[3], dim, all, true, &tmp[4]));             /* product of non-zeros */
    TD_CHECK(td_binary(TD_DIV, tmp[0], tmp[3], &tmp[5]));           /* out / x where x != 0 */
    TD_CHECK(td_binary_scalar(TD_EQ, tmp[2], 1.0, false, &tmp[6])); /* exactly one zero */
    TD_CHECK(td_binary(TD_MUL, tmp[1], tmp[6], &tmp[7]));           /* the lone zero */
    TD_CHECK(td_where(tmp[7], tmp[4], tmp[5], &tmp[8]));
    TD_CHECK(td_binary_scalar(TD_GE, tmp[2], 1.0, false, &tmp[9]));
    TD_CHECK(td_binary_scalar(TD_EQ, tmp[7], 0.0, false, &tmp[10]));
    TD_CHECK(td_binary(TD_MUL, tmp[9], tmp[10], &tmp[11])); /* others of a slice with a zero */
    td_tensor_release(tmp[0]);
    tmp[0] = NULL;
    TD_CHECK(td_masked_fill(tmp[8], tmp[11], 0.0, &tmp[0]));
    td_tensor_release(tmp[1]);
    tmp[1] = NULL;
    TD_CHECK(unreduce(n, &c->r, g, &tmp[1]));
    TD_CHECK(td_binary(TD_MUL, tmp[0], tmp[1], &gx));
    TD_CHECK(td_grad_to_input(n, 0, gx, gi));
fail:
    td_release_many(12, tmp);
    td_tensor_release(gx);
    return st;
}

td_status td_prod(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out)
{
    reduce_plan p;
    TD_TRY(plan(x, dim, all, keepdim, &p));
    td_dtype dt = td_dtype_is_float(x->dtype) ? x->dtype : TD_INT64;
    td_tensor *v = NULL;
    TD_TRY(reduce_raw(TD_PROD, x, &p, dt, &v, NULL));
    if (td_dtype_is_float(dt) && td_needs_grad(1, &x))
        return record_x_out("ProdBackward", prod_backward, x, &p, 0, v, out);
    *out = v;
    return TD_OK;
}

/* ---- max and min ------------------------------------------------------- */

typedef struct {
    reduce_ctx r;
    td_tensor *idx;
} select_ctx;

/* along a dim: the gradient goes to the selected index */
static td_status select_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const select_ctx *c = n->ctx;
    td_tensor *ui = NULL, *ug = NULL, *z = NULL;
    td_status st;
    TD_CHECK(unreduce(n, &c->r, c->idx, &ui));
    TD_CHECK(unreduce(n, &c->r, g, &ug));
    TD_CHECK(td_full_on(n->in_ndim[0], n->in_shape[0], 0.0, g->dtype, td_device_of(g), &z));
    TD_CHECK(td_scatter(z, c->r.dim, ui, ug, false, gi));
fail:
    td_tensor_release(ui);
    td_tensor_release(ug);
    td_tensor_release(z);
    return st;
}

typedef struct {
    reduce_ctx r;
    td_tensor *x, *v;
} even_ctx;

/* over everything: ties share the gradient evenly, as PyTorch's max() does */
static td_status even_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const even_ctx *c = n->ctx;
    td_tensor *mask = NULL, *fm = NULL, *cnt = NULL, *share = NULL, *gx = NULL;
    td_status st;
    TD_CHECK(td_binary(TD_EQ, c->x, c->v, &mask));
    TD_CHECK(td_cast_raw(mask, g->dtype, &fm));
    TD_CHECK(td_sum(fm, 0, true, false, &cnt));
    TD_CHECK(td_binary(TD_DIV, g, cnt, &share));
    TD_CHECK(td_binary(TD_MUL, fm, share, &gx));
    TD_CHECK(td_grad_to_input(n, 0, gx, gi));
fail:
    td_tensor_release(mask);
    td_tensor_release(fm);
    td_tensor_release(cnt);
    td_tensor_release(share);
    td_tensor_release(gx);
    return st;
}

static td_status extreme(td_reduce_op op, td_tensor *x, int dim, bool all, bool keepdim,
                         td_tensor **values, td_tensor **indices)
{
    reduce_plan p;
    TD_TRY(plan(x, dim, all, keepdim, &p));
    const char *fn = op == TD_MAX ? "max" : "min";
    if (p.n == 0)
        return td_error(TD_ESHAPE, 1, "%s of an empty tensor (or an empty dim) has no value", fn);
    td_tensor *v, *idx = NULL;
    bool along = p.dim >= 0;
    TD_TRY(reduce_raw(op, x, &p, x->dtype, &v, along ? &idx : NULL));
    td_status st = TD_OK;
    /* a 0-dim tensor along its dim is its one value, at index 0 (PyTorch) */
    if (!all && !along && indices)
        st = td_full_on(p.out_ndim, p.out_shape, 0.0, TD_INT64, td_device_of(x), &idx);
    if (st == TD_OK && td_dtype_is_float(x->dtype) && td_needs_grad(1, &x)) {
        const char *name = op == TD_MAX ? "MaxBackward" : "MinBackward";
        td_node *node;
        if (along) {
            select_ctx *c;
            st = new_reduce_node(name, select_backward, x, &p, sizeof *c, &node, (void **)&c);
            if (st == TD_OK) st = td_node_finish(node, td_node_keep(node, idx, &c->idx), v);
        } else {
            even_ctx *c;
            st = new_reduce_node(name, even_backward, x, &p, sizeof *c, &node, (void **)&c);
            if (st == TD_OK) {
                st = td_node_keep(node, x, &c->x);
                if (st == TD_OK) st = td_node_keep(node, v, &c->v);
                st = td_node_finish(node, st, v);
            }
        }
    }
    if (st != TD_OK) {
        td_tensor_release(v);
        td_tensor_release(idx);
        return st;
    }
    *values = v;
    if (indices)
        *indices = idx;
    else
        td_tensor_release(idx);
    return TD_OK;
}

td_status td_max(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **values,
                 td_tensor **indices)
{
    return extreme(TD_MAX, x, dim, all, keepdim, values, indices);
}

td_status td_min(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **values,
                 td_tensor **indices)
{
    return extreme(TD_MIN, x, dim, all, keepdim, values, indices);
}

static td_status arg_extreme(td_reduce_op op, td_tensor *x, int dim, bool all, bool keepdim,
                             td_tensor **out)
{
    reduce_plan p;
    TD_TRY(plan(x, dim, all, keepdim, &p));
    if (p.n == 0)
        return td_error(TD_ESHAPE, 1, "%s of an empty tensor (or an empty dim) has no value",
                        op == TD_ARGMAX ? "argmax" : "argmin");
    return reduce_raw(op, x, &p, x->dtype, out, NULL);
}

td_status td_argmax(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out)
{
    return arg_extreme(TD_ARGMAX, x, dim, all, keepdim, out);
}

td_status td_argmin(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out)
{
    return arg_extreme(TD_ARGMIN, x, dim, all, keepdim, out);
}

/* ---- all and any ------------------------------------------------------ */

/* uint8 like tide's comparisons (PyTorch 1.13 gives bool); no gradient */
static td_status all_any(td_reduce_op op, td_tensor *x, int dim, bool all, bool keepdim,
                         td_tensor **out)
{
    reduce_plan p;
    TD_TRY(plan(x, dim, all, keepdim, &p));
    td_tensor *cx = NULL, *v = NULL;
    td_status st;
    TD_CHECK(contiguous_raw(x, x->dtype, &cx));
    TD_CHECK(td_empty_on(p.out_ndim, p.out_shape, TD_UINT8, td_device_of(x), &v));
    td_backend_of(x)->reduce(op, v, NULL, cx, p.outer, p.n, p.inner);
    *out = v;
    v = NULL;
fail:
    td_tensor_release(cx);
    td_tensor_release(v);
    return st;
}

td_status td_all(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out)
{
    return all_any(TD_ALL, x, dim, all, keepdim, out);
}

td_status td_any(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out)
{
    return all_any(TD_ANY, x, dim, all, keepdim, out);
}

/* ---- logsumexp --------------------------------------------------------- */

typedef struct {
    td_tensor *x, *out; /* out with the reduced dims kept as 1 */
} lse_ctx;

/* d lse / dx = exp(x - lse): the softmax over the reduced dims; NaN in
 * rows of -inf or +inf, as PyTorch's formula gives */
static td_status lse_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const lse_ctx *c = n->ctx;
    td_tensor *t[4] = {NULL};
    td_status st;
    TD_CHECK(td_reshape(g, c->out->ndim, c->out->shape, &t[0]));
    TD_CHECK(td_binary(TD_SUB, c->x, c->out, &t[1]));
    TD_CHECK(td_unary(TD_EXP, t[1], &t[2]));
    TD_CHECK(td_binary(TD_MUL, t[0], t[2], &t[3]));
    TD_CHECK(td_grad_to_input(n, 0, t[3], gi));
fail:
    td_release_many(4, t);
    return st;
}

/* x (float) as (kept, reduced): the kept dims first, in order, then the
 * reduced ones, copied only where the permutation needs it */
static td_status lse_rows(td_tensor *x, const bool *red, int64_t kept, int64_t nred,
                          td_tensor **out)
{
    int perm[TD_MAX_DIMS], k = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!red[i]) perm[k++] = i;
    for (int i = 0; i < x->ndim; i++)
        if (red[i]) perm[k++] = i;
    td_tensor *pt = NULL;
    int64_t shape[2] = {kept, nred};
    if (x->ndim == 0) return td_reshape(x, 2, shape, out);
    TD_TRY(td_permute(x, x->ndim, perm, &pt));
    td_status st = td_reshape(pt, 2, shape, out);
    td_tensor_release(pt);
    return st;
}

/* log(sum(exp(r - m))) + m over the rows of r (kept, n), with m the row
 * max taken as 0 where it is infinite, so that rows of -inf give -inf and
 * rows with +inf give +inf (PyTorch's rule) */
static td_status lse_value(td_tensor *r, td_tensor **out)
{
    td_tensor *t[8] = {NULL};
    td_status st;
    if (r->shape[1] == 0) /* an empty sum: log 0 */
        return td_full_on(1, r->shape, -INFINITY, r->dtype, td_device_of(r), out);
    TD_CHECK(td_max(r, 1, false, true, &t[0], NULL));
    TD_CHECK(td_unary(TD_ABS, t[0], &t[1]));
    TD_CHECK(td_binary_scalar(TD_EQ, t[1], INFINITY, false, &t[2]));
    TD_CHECK(td_masked_fill(t[0], t[2], 0.0, &t[3]));
    TD_CHECK(td_binary(TD_SUB, r, t[3], &t[4]));
    TD_CHECK(td_unary(TD_EXP, t[4], &t[5]));
    TD_CHECK(td_sum(t[5], 1, false, true, &t[6]));
    TD_CHECK(td_unary(TD_LOG, t[6], &t[7]));
    td_tensor_release(t[0]);
    t[0] = NULL;
    TD_CHECK(td_binary(TD_ADD, t[7], t[3], &t[0]));
    TD_CHECK(td_reshape(t[0], 1, r->shape, out));
fail:
    td_release_many(8, t);
    return st;
}

typedef struct {
    int ndims;
    const int *dims;
    bool keepdim;
} lse_args;

static td_status lse_f32(td_tensor *xf, const void *a, td_tensor **out)
{
    const lse_args *r = a;
    return td_logsumexp(xf, r->ndims, r->dims, r->keepdim, out);
}

td_status td_logsumexp(td_tensor *x, int ndims, const int *dims, bool keepdim, td_tensor **out)
{
    if (ndims < 1) return td_error(TD_EINVAL, 2, "logsumexp: dim must name at least one dim");
    if (td_dtype_is_lowp(x->dtype))
        return td_lowp_via_float32(x, lse_f32, &(lse_args){ndims, dims, keepdim}, out);
    bool red[TD_MAX_DIMS] = {false};
    for (int i = 0; i < ndims; i++) {
        int d;
        TD_TRY(td_wrap_dim(dims[i], x->ndim, 2, &d));
        if (red[d]) return td_error(TD_EINVAL, 2, "logsumexp: dim %d appears more than once", d);
        red[d] = true;
    }
    int nd = x->ndim, ond = 0;
    int64_t kept = 1, nred = 1, keep_shape[TD_MAX_DIMS], out_shape[TD_MAX_DIMS];
    for (int i = 0; i < nd; i++) {
        keep_shape[i] = red[i] ? 1 : x->shape[i];
        if (red[i])
            nred *= x->shape[i];
        else
            kept *= x->shape[i];
        if (!red[i] || keepdim) out_shape[ond++] = keep_shape[i];
    }
    td_dtype dt = td_dtype_is_float(x->dtype) ? x->dtype : TD_FLOAT32;
    td_tensor *xf = NULL, *r = NULL, *v = NULL, *vk = NULL, *res = NULL;
    td_status st;
    bool grad = td_needs_grad(1, &x);
    bool prev = td_set_grad_enabled(false);
    st = td_cast_raw(x, dt, &xf);
    if (st == TD_OK) st = lse_rows(xf, red, kept, nred, &r);
    if (st == TD_OK) st = lse_value(r, &v);
    if (st == TD_OK) st = td_reshape(v, nd, keep_shape, &vk);
    if (st == TD_OK) st = td_reshape(v, ond, out_shape, &res);
    td_set_grad_enabled(prev);
    if (st != TD_OK) goto fail;
    if (grad) {
        td_node *node;
        lse_ctx *c = NULL;
        TD_CHECK(td_node_new("LogsumexpBackward", lse_backward, 1, &x, &node));
        st = TD_NODE_CTX(node, &c);
        if (st == TD_OK) st = td_node_keep(node, x, &c->x);
        if (st == TD_OK) st = td_node_keep(node, vk, &c->out);
        TD_CHECK(td_node_finish(node, st, res));
    }
    *out = res;
    res = NULL;
fail:
    td_tensor_release(xf);
    td_tensor_release(r);
    td_tensor_release(v);
    td_tensor_release(vk);
    td_tensor_release(res);
    return st;
}

/* ---- softmax --------------------------------------------------------- */

typedef struct {
    td_tensor *y;
    int64_t outer, n, inner;
    bool log;
} softmax_ctx;

static td_status softmax_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const softmax_ctx *c = n->ctx;
    td_tensor *y = c->y, *cg = NULL, *gx = NULL;
    td_status st;
    TD_CHECK(contiguous_raw(g, y->dtype, &cg));
    TD_CHECK(td_empty_like(y, &gx));
    td_backend_of(y)->softmax_backward(gx, y, cg, c->outer, c->n, c->inner, c->log);
    TD_CHECK(td_grad_to_input(n, 0, gx, gi));
fail:
    td_tensor_release(cg);
    td_tensor_release(gx);
    return st;
}

static td_status softmax_any(td_tensor *x, int dim, bool log, td_tensor **out)
{
    if (td_dtype_is_lowp(x->dtype))
        return td_lowp_via_float32(x, softmax_f32, &(lowp_args){dim, false, false, log, 0, 0}, out);
    TD_TRY(td_need_float(x->dtype, 1, log ? "log_softmax" : "softmax", "input"));
    reduce_plan p;
    TD_TRY(plan(x, dim, false, true, &p));
    td_tensor *cx = NULL, *y = NULL;
    td_status st;
    TD_CHECK(contiguous_raw(x, x->dtype, &cx));
    TD_CHECK(td_empty_like(x, &y));
    td_backend_of(x)->softmax(y, cx, p.outer, p.n, p.inner, log);
    if (td_needs_grad(1, &x)) {
        td_node *node;
        softmax_ctx *c = NULL;
        TD_CHECK(td_node_new(log ? "LogSoftmaxBackward" : "SoftmaxBackward", softmax_backward, 1,
                             &x, &node));
        st = TD_NODE_CTX(node, &c);
        if (st == TD_OK) {
            c->outer = p.outer;
            c->n = p.n;
            c->inner = p.inner;
            c->log = log;
            st = td_node_keep(node, y, &c->y);
        }
        TD_CHECK(td_node_finish(node, st, y));
    }
    *out = y;
    y = NULL;
fail:
    td_tensor_release(cx);
    td_tensor_release(y);
    return st;
}

td_status td_softmax(td_tensor *x, int dim, td_tensor **out)
{
    return softmax_any(x, dim, false, out);
}
td_status td_log_softmax(td_tensor *x, int dim, td_tensor **out)
{
    return softmax_any(x, dim, true, out);
}

/* ---- gradient shaping -------------------------------------------------- */

td_status td_sum_to_shape(td_tensor *g, int ndim, const int64_t *shape, td_tensor **out)
{
    int lead = g->ndim - ndim;
    if (lead < 0) return td_error(TD_ESHAPE, 1, "internal: gradient has fewer dims than its input");
    td_tensor *cur = g;
    td_tensor_retain(cur);
    for (int i = 0; i < lead; i++) {
        td_tensor *s = NULL;
        td_status st = td_sum(cur, 0, false, false, &s);
        td_tensor_release(cur);
        if (st != TD_OK) return st;
        cur = s;
    }
    for (int i = 0; i < ndim; i++) {
        if (shape[i] != 1 || cur->shape[i] == 1) continue;
        td_tensor *s = NULL;
        td_status st = td_sum(cur, i, false, true, &s);
        td_tensor_release(cur);
        if (st != TD_OK) return st;
        cur = s;
    }
    *out = cur;
    return TD_OK;
}
