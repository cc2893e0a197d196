/* round to decimals, nan_to_num, isclose and allclose: the elementwise
 * ops that take options, so are no rows of the op table. */
#include "internal.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

/* ---- round(x, decimals) ---------------------------------------------- */

static td_status zero_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    td_tensor *z = NULL;
    TD_TRY(td_full_on(g->ndim, g->shape, 0.0, g->dtype, td_device_of(g), &z));
    td_status st = td_grad_to_input(n, 0, z, gi);
    td_tensor_release(z);
    return st;
}

td_status td_round_decimals(td_tensor *x, int decimals, td_tensor **out)
{
    if (decimals == 0) return td_unary(TD_ROUND, x, out);
    if (!td_dtype_is_float(x->dtype))
        return td_error(TD_EDTYPE, 1, "round: decimals needs a float tensor, got %s",
                        td_dtype_name(x->dtype));
    /* PyTorch's own steps, in the tensor's dtype, so the bits agree:
     * rint(x * 10^d) / 10^d, or rint(x / 10^-d) * 10^-d for d < 0 */
    double scale = pow(10.0, abs(decimals));
    td_binary_op in = decimals > 0 ? TD_MUL : TD_DIV, back = decimals > 0 ? TD_DIV : TD_MUL;
    td_tensor *t1 = NULL, *t2 = NULL, *o = NULL;
    bool prev = td_set_grad_enabled(false);
    td_status st = td_binary_scalar(in, x, scale, false, &t1);
    if (st == TD_OK) st = td_unary(TD_ROUND, t1, &t2);
    if (st == TD_OK) st = td_binary_scalar(back, t2, scale, false, &o);
    td_set_grad_enabled(prev);
    td_tensor_release(t1);
    td_tensor_release(t2);
    if (st == TD_OK && td_needs_grad(1, &x)) {
        td_node *node;
        st = td_node_new(td_unary_def(TD_ROUND)->node, zero_backward, 1, &x, &node);
        if (st == TD_OK) st = td_node_finish(node, st, o);
    }
    if (st != TD_OK) {
        td_tensor_release(o);
        return st;
    }
    *out = o;
    return TD_OK;
}

/* ---- nan_to_num ------------------------------------------------------ */

typedef struct {
    td_tensor *x;
} nan_to_num_ctx;

/* g where x is finite, as PyTorch's g * isfinite(x) (a NaN g stays NaN) */
static td_status nan_to_num_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const nan_to_num_ctx *c = n->ctx;
    td_tensor *finite = NULL, *gx = NULL;
    td_status st;
    TD_CHECK(td_unary(TD_ISFINITE, c->x, &finite));
    TD_CHECK(td_binary(TD_MUL, g, finite, &gx));
    TD_CHECK(td_grad_to_input(n, 0, gx, gi));
fail:
    td_tensor_release(finite);
    td_tensor_release(gx);
    return st;
}

td_status td_nan_to_num(td_tensor *x, double nan, const double *posinf, const double *neginf,
                        td_tensor **out)
{
    if (!td_dtype_is_float(x->dtype)) return td_clone(x, out); /* integers are all finite */
    td_finfo_t fi; /* the dtype's largest finite value */
    TD_TRY(td_finfo(x->dtype, &fi));
    double big = fi.max;
    td_tensor *o = NULL;
    TD_TRY(td_empty_as(x, x->dtype, &o));
    td_backend_of(x)->nan_to_num(o, x, nan, posinf ? *posinf : big, neginf ? *neginf : -big);
    td_status st = TD_OK;
    if (td_needs_grad(1, &x)) {
        td_node *node;
        nan_to_num_ctx *c = NULL;
        st = td_node_new("NanToNumBackward", nan_to_num_backward, 1, &x, &node);
        if (st == TD_OK) {
            st = TD_NODE_CTX(node, &c);
            if (st == TD_OK) st = td_node_keep(node, x, &c->x);
            st = td_node_finish(node, st, o);
        }
    }
    if (st != TD_OK) {
        td_tensor_release(o);
        return st;
    }
    *out = o;
    return TD_OK;
}

/* ---- isclose, allclose ----------------------------------------------- */

/* *acc = *acc op t (op MAXIMUM for or, MUL for and, on uint8), taking t */
static td_status fold(td_binary_op op, td_tensor **acc, td_tensor *t)
{
    td_tensor *r = NULL;
    td_status st = td_binary(op, *acc, t, &r);
    td_tensor_release(t);
    if (st != TD_OK) return st;
    td_tensor_release(*acc);
    *acc = r;
    return TD_OK;
}

/* PyTorch's isclose: a == b, or both NaN with equal_nan, or
 * |a - b| finite and <= atol + |rtol b|, in the inputs' dtype (float32 for
 * integers) */
static td_status isclose_raw(td_tensor *a, td_tensor *b, double rtol, double atol, bool equal_nan,
                             td_tensor **out)
{
    td_tensor *close = NULL, *t1 = NULL, *t2 = NULL, *ca = NULL, *cb = NULL;
    td_tensor *allowed = NULL, *actual = NULL;
    td_status st;
    TD_CHECK(td_binary(TD_EQ, a, b, &close));
    if (equal_nan && td_dtype_is_float(a->dtype)) {
        TD_CHECK(td_unary(TD_ISNAN, a, &t1));
        TD_CHECK(td_unary(TD_ISNAN, b, &t2));
        TD_CHECK(fold(TD_MUL, &t1, t2));
        t2 = NULL;
        TD_CHECK(fold(TD_MAXIMUM, &close, t1));
        t1 = NULL;
    }
    if (rtol != 0 || atol != 0) {
        td_dtype dt = td_dtype_is_float(a->dtype) ? a->dtype : TD_FLOAT32;
        TD_CHECK(td_cast_raw(a, dt, &ca));
        TD_CHECK(td_cast_raw(b, dt, &cb));
        TD_CHECK(td_binary_scalar(TD_MUL, cb, rtol, false, &t1));
        TD_CHECK(td_unary(TD_ABS, t1, &t2));
        TD_CHECK(td_binary_scalar(TD_ADD, t2, atol, true, &allowed));
        td_tensor_release(t1);
        td_tensor_release(t2);
        t1 = t2 = NULL;
        TD_CHECK(td_binary(TD_SUB, ca, cb, &t1));
        TD_CHECK(td_unary(TD_ABS, t1, &actual));
        td_tensor_release(t1);
        t1 = NULL;
        TD_CHECK(td_unary(TD_ISFINITE, actual, &t1));
        TD_CHECK(td_binary(TD_LE, actual, allowed, &t2));
        TD_CHECK(fold(TD_MUL, &t1, t2));
        t2 = NULL;
        TD_CHECK(fold(TD_MAXIMUM, &close, t1));
        t1 = NULL;
    }
    *out = close;
    close = NULL;
fail:
    td_tensor_release(close);
    td_tensor_release(t1);
    td_tensor_release(t2);
    td_tensor_release(ca);
    td_tensor_release(cb);
    td_tensor_release(allowed);
    td_tensor_release(actual);
    return st;
}

static td_status check_close_args(const char *fname, td_tensor *a, td_tensor *b, double rtol,
                                  double atol)
{
    if (a->dtype != b->dtype)
        return td_error(TD_EDTYPE, 2, "%s: both inputs must have the same dtype, got %s and %s",
                        fname, td_dtype_name(a->dtype), td_dtype_name(b->dtype));
    if (!(rtol >= 0)) return td_error(TD_EINVAL, 3, "%s: rtol must be >= 0, got %g", fname, rtol);
    if (!(atol >= 0)) return td_error(TD_EINVAL, 3, "%s: atol must be >= 0, got %g", fname, atol);
    td_tensor *ab[2] = {a, b};
    td_device dev;
    TD_TRY(td_op_device(2, ab, &dev));
    int nd;
    int64_t shape[TD_MAX_DIMS];
    return td_broadcast_shape(a, b, &nd, shape);
}

td_status td_isclose(td_tensor *a, td_tensor *b, double rtol, double atol, bool equal_nan,
                     td_tensor **out)
{
    TD_TRY(check_close_args("isclose", a, b, rtol, atol));
    bool prev = td_set_grad_enabled(false); /* uint8 out: nothing to record */
    td_status st = isclose_raw(a, b, rtol, atol, equal_nan, out);
    td_set_grad_enabled(prev);
    return st;
}

td_status td_allclose(td_tensor *a, td_tensor *b, double rtol, double atol, bool equal_nan,
                      bool *out)
{
    TD_TRY(check_close_args("allclose", a, b, rtol, atol));
    td_tensor *close = NULL, *host = NULL, *dense = NULL;
    bool prev = td_set_grad_enabled(false);
    td_status st = isclose_raw(a, b, rtol, atol, equal_nan, &close);
    td_set_grad_enabled(prev);
    if (st == TD_OK) st = td_on_device_raw(close, TD_DEVICE_CPU, &host);
    if (st == TD_OK) st = td_contiguous(host, &dense);
    if (st == TD_OK) {
        const uint8_t *p = td_data_ptr(dense);
        int64_t n = td_numel(dense), i = 0;
        while (i < n && p[i]) i++;
        *out = i == n;
    }
    td_tensor_release(close);
    td_tensor_release(host);
    td_tensor_release(dense);
    return st;
}
