/* Cumulative sums and products (cumsum, cumprod) along a dim. The kernels
 * see a contiguous (outer, n, inner) block; here are the dtype rules and
 * the gradients. */
#include "internal.h"

typedef struct {
    int64_t outer, n, inner;
} scan_shape;

typedef struct {
    scan_shape s;
    td_tensor *x, *out; /* cumprod only */
} scan_ctx;

/* a contiguous copy of t in dtype dt, recording nothing */
static td_status contiguous_in(td_tensor *t, td_dtype dt, td_tensor **out)
{
    if (t->dtype == dt && td_is_contiguous(t))
        return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
    td_tensor *c = NULL;
    TD_TRY(td_empty_on(t->ndim, t->shape, dt, td_device_of(t), &c));
    td_backend_of(t)->copy(c, t);
    *out = c;
    return TD_OK;
}

/* op's scan of x (any strides) in dtype dt */
static td_status scan_raw(td_reduce_op op, td_tensor *x, td_dtype dt, const scan_shape *s,
                          bool reverse, td_tensor **out)
{
    td_tensor *cx = NULL, *y = NULL;
    td_status st;
    TD_CHECK(contiguous_in(x, dt, &cx));
    TD_CHECK(td_empty_on(x->ndim, x->shape, dt, td_device_of(x), &y));
    td_backend_of(x)->scan(op, y, cx, s->outer, s->n, s->inner, reverse);
    *out = y;
    y = NULL;
fail:
    td_tensor_release(cx);
    td_tensor_release(y);
    return st;
}

/* the gradient of a cumsum is the cumsum of g from the end */
static td_status cumsum_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const scan_ctx *c = n->ctx;
    td_tensor *gx = NULL;
    TD_TRY(scan_raw(TD_SUM, g, g->dtype, &c->s, true, &gx));
    td_status st = td_grad_to_input(n, 0, gx, gi);
    td_tensor_release(gx);
    return st;
}

static td_status cumprod_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const scan_ctx *c = n->ctx;
    td_tensor *t[3] = {NULL};
    td_status st;
    TD_CHECK(contiguous_in(c->x, c->out->dtype, &t[0]));
    TD_CHECK(contiguous_in(g, c->out->dtype, &t[1]));
    TD_CHECK(td_empty_like(c->out, &t[2]));
    td_backend_of(c->out)->cumprod_backward(t[2], t[0], c->out, t[1], c->s.outer, c->s.n,
                                            c->s.inner);
    TD_CHECK(td_grad_to_input(n, 0, t[2], gi));
fail:
    td_release_many(3, t);
    return st;
}

static td_status scan(td_reduce_op op, td_tensor *x, int dim, bool has_dtype, td_dtype dtype,
                      td_tensor **out);

/* bfloat16 and float16 scan in float32, rounded once (docs/precision.md) */
typedef struct {
    td_reduce_op op;
    int dim;
} lowp_scan_args;

static td_status scan_f32(td_tensor *xf, const void *a, td_tensor **out)
{
    const lowp_scan_args *r = a;
    return scan(r->op, xf, r->dim, false, TD_FLOAT32, out);
}

static td_status scan(td_reduce_op op, td_tensor *x, int dim, bool has_dtype, td_dtype dtype,
                      td_tensor **out)
{
    if (has_dtype && td_dtype_is_lowp(dtype) && x->dtype != dtype) {
        td_tensor *c = NULL;
        TD_TRY(td_to_dtype(x, dtype, &c));
        td_status st = scan(op, c, dim, false, dtype, out);
        td_tensor_release(c);
        return st;
    }
    if (td_dtype_is_lowp(x->dtype) && (!has_dtype || dtype == x->dtype))
        return td_lowp_via_float32(x, scan_f32, &(lowp_scan_args){op, dim}, out);
    int d;
    TD_TRY(td_wrap_dim(dim, x->ndim, 2, &d));
    scan_shape s = {1, 1, 1};
    if (x->ndim > 0) {
        s.outer = td_shape_numel(d, x->shape);
        s.n = x->shape[d];
        s.inner = td_shape_numel(x->ndim - d - 1, x->shape + d + 1);
    }
    /* integers scan in int64, as PyTorch promotes them */
    td_dtype dt = has_dtype ? dtype : td_dtype_is_float(x->dtype) ? x->dtype : TD_INT64;
    td_tensor *y = NULL;
    TD_TRY(scan_raw(op, x, dt, &s, false, &y));
    if (!td_dtype_is_float(dt) || !td_dtype_is_float(x->dtype) || !td_needs_grad(1, &x)) {
        *out = y;
        return TD_OK;
    }
    td_node *node;
    scan_ctx *c = NULL;
    td_status st = td_node_new(op == TD_SUM ? "CumsumBackward" : "CumprodBackward",
                               op == TD_SUM ? cumsum_backward : cumprod_backward, 1, &x, &node);
    if (st == TD_OK) {
        st = TD_NODE_CTX(node, &c);
        if (st == TD_OK) {
            c->s = s;
            if (op == TD_PROD) st = td_node_keep(node, x, &c->x);
            if (st == TD_OK && op == TD_PROD) st = td_node_keep(node, y, &c->out);
        }
        st = td_node_finish(node, st, y);
    }
    if (st != TD_OK) {
        td_tensor_release(y);
        return st;
    }
    *out = y;
    return TD_OK;
}

td_status td_cumsum(td_tensor *x, int dim, bool has_dtype, td_dtype dtype, td_tensor **out)
{
    return scan(TD_SUM, x, dim, has_dtype, dtype, out);
}

td_status td_cumprod(td_tensor *x, int dim, bool has_dtype, td_dtype dtype, td_tensor **out)
{
    return scan(TD_PROD, x, dim, has_dtype, dtype, out);
}
