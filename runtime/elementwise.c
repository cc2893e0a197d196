/* Elementwise front-ends: broadcasting, dtype promotion, in-place rules,
 * and the gradients of each op. */
#include "internal.h"

#include <math.h>

/* ---- broadcasting ---------------------------------------------------- */

td_status td_broadcast_shape(const td_tensor *a, const td_tensor *b, int *ndim, int64_t *shape)
{
    int n = a->ndim > b->ndim ? a->ndim : b->ndim;
    for (int i = 0; i < n; i++) {
        int ia = i - (n - a->ndim), ib = i - (n - b->ndim);
        int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char x[128], y[128];
            return td_error(TD_ESHAPE, 2,
                            "shapes %s and %s cannot be broadcast (dim %d: %lld vs %lld)",
                            td_shape_str(a, x, sizeof x), td_shape_str(b, y, sizeof y), i,
                            (long long)sa, (long long)sb);
        }
        shape[i] = sa == 1 ? sb : sa;
    }
    *ndim = n;
    return TD_OK;
}

td_status td_broadcast_view(td_tensor *t, int ndim, const int64_t *shape, td_tensor **out)
{
    int64_t stride[TD_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int k = i - lead;
        stride[i] = (k < 0 || t->shape[k] != shape[i]) ? 0 : t->stride[k];
    }
    return td_make_view(t, ndim, shape, stride, t->offset, out);
}

td_status td_cast_raw(td_tensor *t, td_dtype dt, td_tensor **out)
{
    if (t->dtype == dt) return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
    td_tensor *c = NULL;
    TD_TRY(td_empty_on(t->ndim, t->shape, dt, td_device_of(t), &c));
    td_backend_of(t)->copy(c, t);
    *out = c;
    return TD_OK;
}

/* t cast to dt and placed where an op on dev reads it, recording nothing */
static td_status cast_on(td_tensor *t, td_dtype dt, td_device dev, td_tensor **out)
{
    td_tensor *c = NULL;
    TD_TRY(td_cast_raw(t, dt, &c));
    td_status st = td_on_device_raw(c, dev, out);
    td_tensor_release(c);
    return st;
}

/* comparisons and the logical ops: uint8, no gradient */
static bool is_comparison(td_binary_op op)
{
    return (op >= TD_EQ && op <= TD_GE) || op == TD_LOGICAL_AND || op == TD_LOGICAL_OR ||
           op == TD_LOGICAL_XOR;
}

/* ---- binary ops ------------------------------------------------------ */

/* the output of a binary op: channels-last where an operand of the output's
 * shape is (so a chain of ops on channels-last activations stays in that
 * layout and every loop runs flat), else contiguous */
static td_status empty_for(const td_tensor *a, const td_tensor *b, int ndim, const int64_t *shape,
                           td_dtype dt, td_device dev, td_tensor **out)
{
    const td_tensor *ab[2] = {a, b};
    bool cl = false;
    for (int k = 0; k < 2; k++)
        cl = cl || (ab[k]->ndim == ndim &&
                    memcmp(ab[k]->shape, shape, sizeof *shape * (size_t)ndim) == 0 &&
                    td_keeps_channels_last(ab[k]));
    return td_empty_layout_on(ndim, shape, dt, dev, cl, out);
}

/* a op b with both already cast to dt, broadcast to shape, into a new tensor */
static td_status binary_raw(td_binary_op op, td_tensor *a, td_tensor *b, td_dtype dt, int ndim,
                            const int64_t *shape, td_tensor **out)
{
    td_tensor *ca = NULL, *cb = NULL, *va = NULL, *vb = NULL, *o = NULL;
    td_tensor *ab[2] = {a, b};
    td_device dev;
    td_status st;
    TD_CHECK(td_op_device(2, ab, &dev));
    TD_CHECK(cast_on(a, dt, dev, &ca));
    TD_CHECK(cast_on(b, dt, dev, &cb));
    TD_CHECK(td_broadcast_view(ca, ndim, shape, &va));
    TD_CHECK(td_broadcast_view(cb, ndim, shape, &vb));
    TD_CHECK(empty_for(ca, cb, ndim, shape, is_comparison(op) ? TD_UINT8 : dt, dev, &o));
    td_backend_of(o)->binary(op, o, va, vb);
    *out = o;
    o = NULL;
fail:
    td_tensor_release(ca);
    td_tensor_release(cb);
    td_tensor_release(va);
    td_tensor_release(vb);
    td_tensor_release(o);
    return st;
}

static td_dtype compute_dtype(td_binary_op op, td_dtype a, td_dtype b)
{
    td_dtype dt = td_promote(a, b);
    /* true division, and atan2's angle */
    if ((op == TD_DIV || op == TD_ATAN2) && !td_dtype_is_float(dt)) dt = TD_FLOAT32;
    return dt;
}

/* chains of ops inside backward functions, which run without grad */
static td_status mul(td_tensor *a, td_tensor *b, td_tensor **out)
{
    return td_binary(TD_MUL, a, b, out);
}

typedef struct {
    td_tensor *a, *b; /* cast to the result's dtype; not kept for add and sub */
    td_tensor *out;   /* pow only */
    td_binary_op op;
} binary_ctx;

static td_status binary_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const binary_ctx *c = n->ctx;
    td_binary_op op = c->op;
    td_tensor *a = c->a, *b = c->b, *out = c->out;
    td_tensor *ga = NULL, *gb = NULL, *t1 = NULL, *t2 = NULL, *t3 = NULL;
    td_status st = TD_OK;
    bool need_a = n->next[0] != NULL, need_b = n->next[1] != NULL;
    switch (op) {
    case TD_ADD:
        if (need_a) td_tensor_retain(ga = g);
        if (need_b) td_tensor_retain(gb = g);
        break;
    case TD_SUB:
        if (need_a) td_tensor_retain(ga = g);
        if (need_b) TD_CHECK(td_unary(TD_NEG, g, &gb));
        break;
    case TD_MUL:
        if (need_a) TD_CHECK(mul(g, b, &ga));
        if (need_b) TD_CHECK(mul(g, a, &gb));
        break;
    case TD_DIV: /* d(a/b)/db = -a/b^2 */
        if (need_a) TD_CHECK(td_binary(TD_DIV, g, b, &ga));
        if (need_b) {
            TD_CHECK(td_binary(TD_DIV, a, b, &t1));
            TD_CHECK(td_binary(TD_DIV, t1, b, &t2));
            TD_CHECK(mul(g, t2, &t3));
            TD_CHECK(td_unary(TD_NEG, t3, &gb));
        }
        break;
    case TD_POW:
        if (need_a) { /* b * a^(b-1), and 0 where b == 0 as PyTorch: 0 * 0^-1 would be NaN */
            TD_CHECK(td_binary_scalar(TD_SUB, b, 1.0, false, &t1));
            TD_CHECK(td_binary(TD_POW, a, t1, &t2));
            td_tensor_release(t1);
            t1 = NULL;
            TD_CHECK(mul(t2, b, &t1));
            td_tensor_release(t2);
            t2 = NULL;
            TD_CHECK(mul(g, t1, &t2));
            TD_CHECK(td_binary_scalar(TD_EQ, b, 0.0, false, &t3));
            TD_CHECK(td_masked_fill(t2, t3, 0.0, &ga));
            td_tensor_release(t1);
            td_tensor_release(t2);
            td_tensor_release(t3);
            t1 = t2 = t3 = NULL;
        }
        if (need_b) { /* out * log(a), taken as 0 where a == 0 and b >= 0, as PyTorch does */
            td_tensor *zero_a = NULL, *b_ge = NULL;
            TD_CHECK(td_unary(TD_LOG, a, &t1));
            TD_CHECK(mul(out, t1, &t2));
            st = td_binary_scalar(TD_EQ, a, 0.0, false, &zero_a);
            if (st == TD_OK) st = td_binary_scalar(TD_GE, b, 0.0, false, &b_ge);
            if (st == TD_OK) st = td_binary(TD_MUL, zero_a, b_ge, &t3);
            td_tensor_release(zero_a);
            td_tensor_release(b_ge);
            if (st != TD_OK) goto fail;
            td_tensor_release(t1);
            t1 = NULL;
            TD_CHECK(td_masked_fill(t2, t3, 0.0, &t1));
            TD_CHECK(mul(g, t1, &gb));
        }
        break;
    case TD_MAXIMUM:
    case TD_MINIMUM: { /* PyTorch's rule: ties split the gradient, the loser gets none, and
                          where neither wins (one is NaN) both get all of it */
        TD_CHECK(td_binary(TD_EQ, a, b, &t1));
        TD_CHECK(td_binary_scalar(TD_MUL, g, 0.5, false, &t2));
        TD_CHECK(td_where(t1, t2, g, &t3));
        td_tensor_release(t1);
        td_tensor_release(t2);
        t1 = t2 = NULL;
        if (need_a) {
            TD_CHECK(td_binary(op == TD_MAXIMUM ? TD_LT : TD_GT, a, b, &t1));
            TD_CHECK(td_masked_fill(t3, t1, 0.0, &ga));
        }
        if (need_b) {
            td_tensor_release(t1);
            t1 = NULL;
            TD_CHECK(td_binary(op == TD_MAXIMUM ? TD_GT : TD_LT, a, b, &t1));
            TD_CHECK(td_masked_fill(t3, t1, 0.0, &gb));
        }
        break;
    }
    case TD_ATAN2: { /* d/da = b / (a^2 + b^2), d/db = -a / (a^2 + b^2) */
        td_tensor *aa = NULL, *bb = NULL;
        TD_CHECK(mul(a, a, &aa));
        st = mul(b, b, &bb);
        if (st == TD_OK) st = td_binary(TD_ADD, aa, bb, &t1);
        td_tensor_release(aa);
        td_tensor_release(bb);
        if (st != TD_OK) goto fail;
        TD_CHECK(td_binary(TD_DIV, g, t1, &t2));
        if (need_a) TD_CHECK(mul(t2, b, &ga));
        if (need_b) {
            TD_CHECK(mul(t2, a, &t3));
            TD_CHECK(td_unary(TD_NEG, t3, &gb));
        }
        break;
    }
    default: break;
    }
    if (ga) TD_CHECK(td_grad_to_input(n, 0, ga, &gi[0]));
    if (gb) TD_CHECK(td_grad_to_input(n, 1, gb, &gi[1]));
fail:
    td_tensor_release(ga);
    td_tensor_release(gb);
    td_tensor_release(t1);
    td_tensor_release(t2);
    td_tensor_release(t3);
    return st;
}

static td_status record_binary(td_binary_op op, td_tensor *a, td_tensor *b, td_tensor *out)
{
    td_tensor *in[2] = {a, b};
    if (is_comparison(op) || !td_dtype_is_float(out->dtype) || !td_needs_grad(2, in)) return TD_OK;
    td_node *node;
    TD_TRY(td_node_new("BinaryBackward", binary_backward, 2, in, &node));
    node->name = td_binary_def(op)->node;
    binary_ctx *c = NULL;
    td_status st = TD_NODE_CTX(node, &c);
    if (st == TD_OK) c->op = op;
    /* save what the gradient reads and no more, as PyTorch does, so that an
     * in-place op on the result (h = x:matmul(w); h:add_(b)) stays legal */
    bool keep_inputs = op != TD_ADD && op != TD_SUB;
    if (st == TD_OK && keep_inputs) {
        td_tensor *ca = NULL, *cb = NULL;
        st = td_cast_raw(a, out->dtype, &ca);
        if (st == TD_OK) st = td_cast_raw(b, out->dtype, &cb);
        if (st == TD_OK) st = td_node_keep(node, ca, &c->a);
        if (st == TD_OK) st = td_node_keep(node, cb, &c->b);
        if (st == TD_OK && op == TD_POW) st = td_node_keep(node, out, &c->out);
        td_tensor_release(ca);
        td_tensor_release(cb);
    }
    return td_node_finish(node, st, out);
}

td_status td_binary(td_binary_op op, td_tensor *a, td_tensor *b, td_tensor **out)
{
    int ndim;
    int64_t shape[TD_MAX_DIMS];
    TD_TRY(td_broadcast_shape(a, b, &ndim, shape));
    td_tensor *o = NULL;
    TD_TRY(binary_raw(op, a, b, compute_dtype(op, a->dtype, b->dtype), ndim, shape, &o));
    td_status st = record_binary(op, a, b, o);
    if (st != TD_OK) {
        td_tensor_release(o);
        return st;
    }
    *out = o;
    return TD_OK;
}

/* PyTorch's rule for a Lua number beside a tensor: it never widens a float
 * tensor, and an integral number keeps an integer tensor's dtype */
static td_dtype scalar_dtype(const td_tensor *a, double s)
{
    if (td_dtype_is_float(a->dtype)) return a->dtype;
    if (s == floor(s) && fabs(s) < 9.2e18)
        return a->dtype == TD_UINT8 && (s < 0 || s > 255) ? TD_INT64 : a->dtype;
    return TD_FLOAT32;
}

td_status td_binary_scalar(td_binary_op op, td_tensor *a, double s, bool scalar_first,
                           td_tensor **out)
{
    td_tensor *sc = NULL;
    TD_TRY(td_full_on(0, NULL, s, scalar_dtype(a, s), td_device_of(a), &sc));
    td_status st = scalar_first ? td_binary(op, sc, a, out) : td_binary(op, a, sc, out);
    td_tensor_release(sc);
    return st;
}

td_status td_pow_scalar(td_tensor *x, double p, td_tensor **out)
{
    if (p == 2.0) return td_unary(TD_SQUARE, x, out);
    return td_binary_scalar(TD_POW, x, p, false, out);
}

/* ---- unary ops ------------------------------------------------------- */

static bool keeps_int(td_unary_op op)
{
    return op == TD_ABS || op == TD_NEG || op == TD_RELU || op == TD_SIGN || op == TD_SQUARE ||
           op == TD_FLOOR || op == TD_CEIL || op == TD_ROUND || op == TD_TRUNC;
}

/* isnan, isinf, isfinite, logical_not: uint8 (tide's bool) from any dtype,
 * no gradient */
static bool is_test(td_unary_op op)
{
    return op == TD_ISNAN || op == TD_ISINF || op == TD_ISFINITE || op == TD_LOGICAL_NOT;
}

/* ops whose derivative is cheapest from their output save only that (so an
 * in-place change of their input stays legal); the rest save the input */
/* ops whose backward reads the output rather than the input. relu is one
 * though its kernel reads "x <= 0": relu(x) <= 0 exactly when x <= 0 (a
 * NaN neither, so it passes the gradient), and keeping the output, as
 * PyTorch's threshold_backward does, lets the input go (in a conv-bn-relu
 * block the next layer keeps the output anyway): resnet18's step holds one
 * activation less per ReLU. */
static bool grad_from_output(td_unary_op op)
{
    return op == TD_EXP || op == TD_SQRT || op == TD_TANH || op == TD_SIGMOID ||
           op == TD_RECIPROCAL || op == TD_RELU;
}

typedef struct {
    td_tensor *x; /* the output for grad_from_output ops, else the input (in the output's dtype) */
    td_unary_op op;
    double p[TD_OP_MAX_PARAMS];
} unary_ctx;

static td_status unary_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const unary_ctx *c = n->ctx;
    td_tensor *x = c->x, *y = grad_from_output(c->op) ? x : NULL, *gx = NULL;
    TD_TRY(td_empty_as(x, x->dtype, &gx));
    td_tensor *gc = NULL;
    td_status st = td_cast_raw(g, x->dtype, &gc);
    if (st != TD_OK) {
        td_tensor_release(gx);
        return st;
    }
    td_backend_of(x)->unary_grad(c->op, gx, x, y, gc, c->p);
    td_tensor_release(gc);
    st = td_grad_to_input(n, 0, gx, gi);
    td_tensor_release(gx);
    return st;
}

/* the parameters' values PyTorch refuses, and a string option's index
 * outside its choices */
static td_status check_params(td_unary_op op, const double *p)
{
    const td_op_def *d = td_unary_def(op);
    if (op == TD_CELU && p[0] == 0) return td_error(TD_EINVAL, 2, "celu: alpha must not be 0");
    for (int i = 0; i < td_op_nparams(d); i++) {
        const char *const *c = d->params[i].choices;
        int n = 0;
        while (c && c[n]) n++;
        if (c && !(p[i] >= 0 && p[i] < n && p[i] == floor(p[i])))
            return td_error(TD_EINVAL, 2, "%s: %s must index its %d choices, got %g", d->name,
                            d->params[i].name, n, p[i]);
    }
    return TD_OK;
}

td_status td_unary(td_unary_op op, td_tensor *x, td_tensor **out)
{
    return td_unary_p(op, x, NULL, out);
}

td_status td_unary_p(td_unary_op op, td_tensor *x, const double *param, td_tensor **out)
{
    if ((unsigned)op >= TD_NUNARY) return td_error(TD_EINVAL, 0, "unknown unary op %d", (int)op);
    double p[TD_OP_MAX_PARAMS];
    td_op_param_values(td_unary_def(op), p);
    for (int i = 0; param && i < td_op_nparams(td_unary_def(op)); i++) p[i] = param[i];
    TD_TRY(check_params(op, p));
    if (is_test(op)) {
        TD_TRY(td_empty_as(x, TD_UINT8, out));
        td_backend_of(x)->unary(op, *out, x, p);
        return TD_OK;
    }
    td_dtype dt = td_dtype_is_float(x->dtype) || keeps_int(op) ? x->dtype : TD_FLOAT32;
    td_tensor *cx, *o;
    TD_TRY(td_cast_raw(x, dt, &cx));
    td_status st = td_empty_as(x, dt, &o);
    if (st != TD_OK) {
        td_tensor_release(cx);
        return st;
    }
    td_backend_of(x)->unary(op, o, cx, p);
    if (td_dtype_is_float(dt) && td_needs_grad(1, &x)) {
        td_node *node;
        unary_ctx *c = NULL;
        st = td_node_new(td_unary_def(op)->node, unary_backward, 1, &x, &node);
        if (st == TD_OK) {
            st = TD_NODE_CTX(node, &c);
            if (st == TD_OK) {
                c->op = op;
                memcpy(c->p, p, sizeof p);
                st = td_node_keep(node, grad_from_output(op) ? o : cx, &c->x);
            }
            st = td_node_finish(node, st, o);
        }
    }
    td_tensor_release(cx);
    if (st != TD_OK) {
        td_tensor_release(o);
        return st;
    }
    *out = o;
    return TD_OK;
}

/* ---- clamp, where, masked_fill --------------------------------------- */

typedef struct {
    td_tensor *x;
    double lo, hi;
} clamp_ctx;

static td_status clamp_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const clamp_ctx *c = n->ctx;
    td_tensor *lo = NULL, *hi = NULL, *in = NULL, *gx = NULL;
    td_status st;
    TD_CHECK(td_binary_scalar(TD_GE, c->x, c->lo, false, &lo));
    TD_CHECK(td_binary_scalar(TD_LE, c->x, c->hi, false, &hi));
    TD_CHECK(td_binary(TD_MUL, lo, hi, &in));
    {
        td_tensor *outside; /* the gradient flows only where no bound was applied */
        TD_CHECK(td_binary_scalar(TD_EQ, in, 0.0, false, &outside));
        st = td_masked_fill(g, outside, 0.0, &gx);
        td_tensor_release(outside);
        if (st != TD_OK) goto fail;
    }
    TD_CHECK(td_grad_to_input(n, 0, gx, gi));
fail:
    td_tensor_release(lo);
    td_tensor_release(hi);
    td_tensor_release(in);
    td_tensor_release(gx);
    return st;
}

td_status td_clamp(td_tensor *x, double lo, double hi, td_tensor **out)
{
    if (lo > hi) return td_error(TD_EINVAL, 2, "clamp: min %g is greater than max %g", lo, hi);
    td_tensor *o = NULL;
    TD_TRY(td_empty_like(x, &o));
    td_backend_of(x)->clamp(o, x, lo, hi);
    if (td_dtype_is_float(x->dtype) && td_needs_grad(1, &x)) {
        td_node *node;
        clamp_ctx *c = NULL;
        td_status st = td_node_new("ClampBackward", clamp_backward, 1, &x, &node);
        if (st == TD_OK) {
            st = TD_NODE_CTX(node, &c);
            if (st == TD_OK) {
                c->lo = lo;
                c->hi = hi;
                st = td_node_keep(node, x, &c->x);
            }
            st = td_node_finish(node, st, o);
        }
        if (st != TD_OK) {
            td_tensor_release(o);
            return st;
        }
    }
    *out = o;
    return TD_OK;
}

typedef struct {
    td_tensor *cond;
} where_ctx;

static td_status where_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const where_ctx *c = n->ctx;
    td_tensor *cond = c->cond, *z = NULL, *t = NULL;
    td_status st;
    TD_CHECK(td_full_on(0, NULL, 0.0, g->dtype, td_device_of(g), &z));
    if (n->next[1]) {
        TD_CHECK(td_where(cond, g, z, &t));
        TD_CHECK(td_grad_to_input(n, 1, t, &gi[1]));
        td_tensor_release(t);
        t = NULL;
    }
    if (n->next[2]) {
        TD_CHECK(td_where(cond, z, g, &t));
        TD_CHECK(td_grad_to_input(n, 2, t, &gi[2]));
    }
fail:
    td_tensor_release(z);
    td_tensor_release(t);
    return st;
}

/* PyTorch's result type for where's two branches: a 0-dim one (a number
 * from Lua is one) sets the dtype only when its category is higher, float
 * above integer, as where(c, x, 0) keeps x's dtype */
static td_dtype where_dtype(const td_tensor *a, const td_tensor *b)
{
    if ((a->ndim == 0) == (b->ndim == 0)) return td_promote(a->dtype, b->dtype);
    const td_tensor *dim = a->ndim ? a : b, *zero = a->ndim ? b : a;
    if (td_dtype_is_float(zero->dtype) && !td_dtype_is_float(dim->dtype)) return zero->dtype;
    return dim->dtype;
}

td_status td_where(td_tensor *cond, td_tensor *a, td_tensor *b, td_tensor **out)
{
    if (cond->dtype != TD_UINT8)
        return td_error(TD_EDTYPE, 1, "condition must be uint8 (as comparisons return), got %s",
                        td_dtype_name(cond->dtype));
    int n1, n2;
    int64_t s1[TD_MAX_DIMS], s2[TD_MAX_DIMS];
    TD_TRY(td_broadcast_shape(a, b, &n1, s1));
    td_tensor shape_ab = {.ndim = n1};
    memcpy(shape_ab.shape, s1, sizeof s1);
    TD_TRY(td_broadcast_shape(cond, &shape_ab, &n2, s2));
    td_dtype dt = where_dtype(a, b);
    td_tensor *ca = NULL, *cb = NULL, *cc = NULL, *va = NULL, *vb = NULL, *vc = NULL, *o = NULL;
    td_tensor *abc[3] = {cond, a, b};
    td_device dev;
    td_status st;
    TD_CHECK(td_op_device(3, abc, &dev));
    TD_CHECK(cast_on(a, dt, dev, &ca));
    TD_CHECK(cast_on(b, dt, dev, &cb));
    TD_CHECK(td_on_device_raw(cond, dev, &cc));
    TD_CHECK(td_broadcast_view(ca, n2, s2, &va));
    TD_CHECK(td_broadcast_view(cb, n2, s2, &vb));
    TD_CHECK(td_broadcast_view(cc, n2, s2, &vc));
    TD_CHECK(td_empty_on(n2, s2, dt, dev, &o));
    td_backend_of(o)->where(o, vc, va, vb);
    td_tensor *in[3] = {cond, a, b};
    if (td_dtype_is_float(dt) && td_needs_grad(3, in)) {
        td_node *node;
        where_ctx *c = NULL;
        in[0] = NULL; /* the condition takes no gradient */
        TD_CHECK(td_node_new("WhereBackward", where_backward, 3, in, &node));
        st = TD_NODE_CTX(node, &c);
        if (st == TD_OK) st = td_node_keep(node, cond, &c->cond);
        TD_CHECK(td_node_finish(node, st, o));
    }
    *out = o;
    o = NULL;
fail:
    td_tensor_release(ca);
    td_tensor_release(cb);
    td_tensor_release(cc);
    td_tensor_release(va);
    td_tensor_release(vb);
    td_tensor_release(vc);
    td_tensor_release(o);
    return st;
}

td_status td_masked_fill(td_tensor *x, td_tensor *mask, double value, td_tensor **out)
{
    if (mask->dtype != TD_UINT8)
        return td_error(TD_EDTYPE, 2, "mask must be uint8 (as comparisons return), got %s",
                        td_dtype_name(mask->dtype));
    /* a mask of more dims or larger sizes gives the broadcast shape, as
     * PyTorch's out-of-place masked_fill (its in-place form refuses it) */
    int nd;
    int64_t s[TD_MAX_DIMS];
    if (td_broadcast_shape(x, mask, &nd, s) != TD_OK) {
        char a[128], b[128];
        return td_error(TD_ESHAPE, 2,
                        "mask of shape %s does not broadcast with the tensor's shape %s",
                        td_shape_str(mask, a, sizeof a), td_shape_str(x, b, sizeof b));
    }
    td_tensor *v = NULL;
    TD_TRY(td_full_on(0, NULL, value, x->dtype, td_device_of(x), &v));
    td_status st = td_where(mask, v, x, out);
    td_tensor_release(v);
    return st;
}

/* ---- in place -------------------------------------------------------- */

static td_status check_inplace(td_tensor *self, const char *what)
{
    if (td_grad_enabled() && self->requires_grad && td_is_leaf(self))
        return td_error(TD_EGRAD, 1,
                        "%s: a leaf tensor that requires grad cannot be changed in place "
                        "(do it inside tide.no_grad)",
                        what);
    return TD_OK;
}

/* write r into self's memory and make self carry r's history */
static td_status assign_result(td_tensor *self, td_tensor *r)
{
    if (r->dtype != self->dtype && td_dtype_is_float(r->dtype) && !td_dtype_is_float(self->dtype))
        return td_error(TD_EDTYPE, 2, "result of dtype %s cannot be stored in place in a %s tensor",
                        td_dtype_name(r->dtype), td_dtype_name(self->dtype));
    if (!td_same_shape(r, self)) {
        char a[128], b[128];
        return td_error(TD_ESHAPE, 2,
                        "in-place result of shape %s does not fit the tensor's shape %s",
                        td_shape_str(r, a, sizeof a), td_shape_str(self, b, sizeof b));
    }
    td_tensor *both[2] = {self, r};
    TD_TRY(td_same_device(2, both));
    td_backend_of(self)->copy(self, r);
    td_bump_version(self);
    if (r->grad_fn) {
        r->grad_fn->refcount++;
        td_node_release(self->grad_fn);
        self->grad_fn = r->grad_fn;
        self->requires_grad = true;
    }
    return TD_OK;
}

td_status td_binary_(td_binary_op op, td_tensor *self, td_tensor *other)
{
    TD_TRY(check_inplace(self, "in-place arithmetic"));
    td_tensor *in[2] = {self, other};
    td_tensor *base = self, *r = NULL;
    td_status st;
    if (td_needs_grad(2, in) && self->requires_grad) {
        /* the old value must outlive the write for the op's own backward */
        TD_CHECK(td_clone(self, &base));
    } else {
        td_tensor_retain(base);
    }
    TD_CHECK(td_binary(op, base, other, &r));
    TD_CHECK(assign_result(self, r));
fail:
    td_tensor_release(base);
    td_tensor_release(r);
    return st;
}

td_status td_fill_(td_tensor *self, double value)
{
    TD_TRY(check_inplace(self, "fill_"));
    td_backend_of(self)->fill(self, value);
    td_bump_version(self);
    if (self->grad_fn) { /* the old history no longer reaches this value */
        td_node_release(self->grad_fn);
        self->grad_fn = NULL;
        self->requires_grad = false;
    }
    return TD_OK;
}

static td_status copy_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    return td_grad_to_input(n, 0, g, gi);
}

td_status td_copy_(td_tensor *self, td_tensor *src)
{
    TD_TRY(check_inplace(self, "copy_"));
    int nd;
    int64_t s[TD_MAX_DIMS];
    TD_TRY(td_broadcast_shape(self, src, &nd, s));
    td_tensor probe = {.ndim = nd};
    memcpy(probe.shape, s, sizeof s);
    if (!td_same_shape(&probe, self)) {
        char a[128], b[128];
        return td_error(TD_ESHAPE, 2, "copy_: source of shape %s does not broadcast to %s",
                        td_shape_str(src, a, sizeof a), td_shape_str(self, b, sizeof b));
    }
    td_tensor *v = NULL, *m = NULL; /* a source on another device comes over first */
    TD_TRY(td_on_device_raw(src, td_device_of(self), &m));
    td_status st = td_broadcast_view(m, self->ndim, self->shape, &v);
    td_tensor_release(m);
    if (st != TD_OK) return st;
    td_backend_of(self)->copy(self, v);
    td_tensor_release(v);
    td_bump_version(self);
    if (td_needs_grad(1, &src) && td_dtype_is_float(self->dtype)) {
        td_node *node;
        TD_TRY(td_node_new("CopyBackward", copy_backward, 1, &src, &node));
        td_node_attach(node, self);
    } else if (self->grad_fn) {
        td_node_release(self->grad_fn);
        self->grad_fn = NULL;
        self->requires_grad = false;
    }
    return TD_OK;
}
