/* The margin losses' front-ends: argument checks, one fused kernel per
 * loss, the reduction, and one autograd node whose backward is a
 * closed-form kernel. See docs/losses.md, "Margin losses". */
#include "loss_family.h"

#include <math.h>

#define K(t) (td_backend_of(t)->margin_loss)

/* every tensor on one device, and that device's backend has the kernels */
static td_status same_place(const char *loss, int n, td_tensor *const *ts)
{
    TD_TRY(td_same_device(n, ts));
    if (!K(ts[0]))
        return td_error(TD_EINVAL, 1, "%s is not implemented on %s yet", loss, td_backend_of(ts[0])->name);
    return TD_OK;
}

/* ---- shared checks ------------------------------------------------------ */

static td_status same_dtype(const char *loss, const char *what, const td_tensor *t, td_dtype dt,
                            int arg)
{
    if (t->dtype != dt)
        return td_error(TD_EDTYPE, arg, "%s: %s is %s but the input is %s (use one float dtype)", loss,
                        what, td_dtype_name(t->dtype), td_dtype_name(dt));
    return TD_OK;
}

static td_status need_indices(const char *loss, const td_tensor *t, int arg)
{
    if (t->dtype != TD_INT64)
        return td_error(TD_EDTYPE, arg, "%s: target must hold int64 class indices, got %s%s", loss,
                        td_dtype_name(t->dtype),
                        td_dtype_is_float(t->dtype) ? " (convert with :long())" : "");
    return TD_OK;
}

/* a +-1 label tensor: the input's float dtype, or int64 (converted) */
static td_status check_label(const char *loss, const char *what, const td_tensor *t, td_dtype dt,
                             int arg)
{
    if (t->dtype == TD_INT64) return TD_OK;
    if (!td_dtype_is_float(t->dtype))
        return td_error(TD_EDTYPE, arg, "%s: %s must be float or int64, got %s", loss, what,
                        td_dtype_name(t->dtype));
    return same_dtype(loss, what, t, dt, arg);
}

/* a contiguous copy of t in dtype dt (a view when it already is one),
 * broadcast to shape when ndim >= 0; records nothing */
static td_status raw(td_tensor *t, td_dtype dt, int ndim, const int64_t *shape, td_tensor **out)
{
    td_tensor *v = NULL;
    if (ndim >= 0) {
        TD_TRY(td_broadcast_view(t, ndim, shape, &v));
    } else {
        TD_TRY(td_make_view(t, t->ndim, t->shape, t->stride, t->offset, &v));
    }
    if (v->dtype == dt && td_is_contiguous(v)) {
        *out = v;
        return TD_OK;
    }
    td_tensor *c = NULL;
    td_status st = td_empty_on(v->ndim, v->shape, dt, td_device_of(t), &c);
    if (st == TD_OK) td_backend_of(t)->copy(c, v);
    td_tensor_release(v);
    *out = c;
    return st;
}

/* ---- the node: what every backward shares ---------------------------------- */

/* what every backward reads */
typedef struct {
    td_reduction reduction;
    int64_t rows, len;     /* rows of len values (or 1) */
    td_margin_loss_opts o; /* margin, p, eps, swap */
    td_tensor *in[3];      /* the inputs as the kernels read them, in the row's order */
    td_tensor *weight;     /* multi_margin's class weights, or NULL */
} margin_ctx;

typedef struct {
    td_tensor *gy;
    double scale;
} grad_in;

static td_status grad_setup(td_node *n, td_tensor *grad, grad_in *g)
{
    const margin_ctx *k = n->ctx;
    g->scale = (k->reduction == TD_REDUCE_MEAN && k->rows > 0) ? 1.0 / (double)k->rows : 1.0;
    td_tensor *c = NULL;
    TD_TRY(td_contiguous(grad, &c));
    if (c->dtype != n->in_dtype[0]) {
        td_tensor *d = NULL;
        td_status st = td_cast_raw(c, n->in_dtype[0], &d);
        td_tensor_release(c);
        TD_TRY(st);
        c = d;
    }
    g->gy = c;
    return TD_OK;
}

/* an empty gradient buffer of saved tensor i's shape, when input `i`
 * needs one */
static td_status grad_buf(td_node *n, int input, td_tensor *like, td_tensor **out)
{
    *out = NULL;
    if (!n->next[input]) return TD_OK;
    return td_empty_like(like, out);
}

/* hand each computed buffer to its input (summed to its shape) */
static td_status grads_out(td_node *n, int k, td_tensor **bufs, td_tensor **grads_in)
{
    td_status st = TD_OK;
    for (int i = 0; i < k; i++) {
        if (bufs[i] && st == TD_OK) st = td_grad_to_input(n, i, bufs[i], &grads_in[i]);
        td_tensor_release(bufs[i]);
    }
    return st;
}

/* reduce the per-sample loss `elem` and, when any of the k inputs needs a
 * gradient, record the node (saving the `ns` tensors in `save` and weight) */
static td_status finish(const td_loss_def *d, td_backward_fn fn, td_tensor *elem, const td_margin_loss_opts *o,
                        int k, td_tensor *const *inputs, int ns, td_tensor *const *save, td_tensor *weight,
                        int64_t rows, int64_t len, td_tensor **out)
{
    td_tensor *res = NULL;
    td_node *node = NULL;
    td_status st = TD_OK;
    if (o->reduction == TD_REDUCE_NONE) {
        td_tensor_retain(elem);
        res = elem;
    } else {
        TD_CHECK(td_loss_reduce_raw(elem, o->reduction, (double)td_numel(elem), &res));
    }
    if (td_needs_grad(k, inputs)) {
        TD_CHECK(td_node_new(d->node, fn, k, inputs, &node));
        margin_ctx *c;
        TD_CHECK(TD_NODE_CTX(node, &c));
        c->reduction = o->reduction;
        c->rows = rows;
        c->len = len;
        c->o = *o;
        c->o.weight = NULL;
        for (int i = 0; i < ns; i++) TD_CHECK(td_node_keep(node, save[i], &c->in[i]));
        if (weight) TD_CHECK(td_node_keep(node, weight, &c->weight));
        td_node_attach(node, res);
        node = NULL;
    }
    *out = res;
    res = NULL;
fail:
    td_node_release(node);
    td_tensor_release(res);
    return st;
}

static void shape_of(const td_tensor *t, char *buf, size_t n) { td_shape_str(t, buf, n); }

/* the first of the `count` class indices of target outside [lo, hi)
 * (*pos = -1 when none) and its value, checked by the kernel where the
 * data lives: one download on CUDA */
static td_status first_bad(td_tensor *target, int64_t count, int64_t lo, int64_t hi, int64_t *pos, double *val)
{
    td_tensor *t = NULL;
    TD_TRY(raw(target, TD_INT64, -1, NULL, &t));
    td_status st = TD_OK;
    *pos = K(t)->check_range(t, count, lo, hi);
    if (*pos >= 0) st = td_read_flat(t, *pos, val);
    td_tensor_release(t);
    return st;
}

/* ---- multi_margin_loss ------------------------------------------------------ */

static td_status multi_margin_backward(td_node *n, td_tensor *grad, td_tensor **gi)
{
    const margin_ctx *c = n->ctx;
    td_tensor *x = c->in[0], *t = c->in[1], *w = c->weight;
    grad_in g;
    TD_TRY(grad_setup(n, grad, &g));
    td_tensor *gx = NULL;
    td_status st = grad_buf(n, 0, x, &gx);
    if (st == TD_OK && gx)
        K(x)->multi_margin_backward(gx, g.gy, g.scale, x, t, w, (int)c->o.p, c->o.margin,
                                    c->rows, c->len);
    td_tensor_release(g.gy);
    if (st != TD_OK) return st;
    return grads_out(n, 1, &gx, gi);
}

static td_status multi_margin_loss(const td_loss_def *def, td_tensor *input, td_tensor *target, const td_multi_margin_opts *o,
                               td_tensor **out)
{
    static const char *L = "multi_margin_loss";
    char s1[96], s2[96];
    TD_TRY(td_need_float(input->dtype, 1, L, "input"));
    if (input->ndim < 1 || input->ndim > 2 || input->shape[input->ndim - 1] == 0)
        return td_error(TD_ESHAPE, 1, "%s: input must be (N, C) or (C) with C > 0, got shape %s", L,
                        (shape_of(input, s1, sizeof s1), s1));
    TD_TRY(need_indices(L, target, 2));
    {
        td_tensor *on[3] = {input, target, o->weight};
        TD_TRY(same_place(L, o->weight ? 3 : 2, on));
    }
    int64_t n = input->ndim == 2 ? input->shape[0] : 1, c = input->shape[input->ndim - 1];
    bool ok = input->ndim == 2 ? (target->ndim == 1 && target->shape[0] == n)
                               : (target->ndim == 0 || (target->ndim == 1 && target->shape[0] == 1));
    if (!ok)
        return td_error(TD_ESHAPE, 2, "%s: target shape %s does not match input shape %s (expected %s)",
                        L, (shape_of(target, s1, sizeof s1), s1), (shape_of(input, s2, sizeof s2), s2),
                        input->ndim == 2 ? "(N)" : "() or (1)");
    {
        int64_t i;
        double v = 0;
        TD_TRY(first_bad(target, n, 0, c, &i, &v));
        if (i >= 0)
            return td_error(TD_ERANGE, 2, "%s: target %lld at position %lld is outside [0, %lld)", L,
                            (long long)v, (long long)i, (long long)c);
    }
    if (o->weight) {
        TD_TRY(td_need_float(o->weight->dtype, 3, L, "weight"));
        TD_TRY(same_dtype(L, "weight", o->weight, input->dtype, 3));
        if (o->weight->ndim != 1 || o->weight->shape[0] != c)
            return td_error(TD_ESHAPE, 3, "%s: weight must have shape (%lld), one per class, got %s", L,
                            (long long)c, (shape_of(o->weight, s1, sizeof s1), s1));
    }
    td_tensor *x = NULL, *t = NULL, *w = NULL, *elem = NULL;
    td_status st;
    TD_CHECK(raw(input, input->dtype, -1, NULL, &x));
    TD_CHECK(raw(target, TD_INT64, -1, NULL, &t));
    if (o->weight) TD_CHECK(raw(o->weight, input->dtype, -1, NULL, &w));
    /* none: (N), or the target's shape for a (C) input */
    if (input->ndim == 2)
        TD_CHECK(td_empty_on(1, &n, input->dtype, td_device_of(input), &elem));
    else
        TD_CHECK(td_empty_on(target->ndim, target->shape, input->dtype, td_device_of(input), &elem));
    K(input)->multi_margin(elem, x, t, w, (int)o->p, o->margin, n, c);
    {
        td_tensor *save[3] = {x, t, w};
        TD_CHECK(finish(def, multi_margin_backward, elem, o, 1, &input, 2, save, w, n, c, out));
    }
fail:
    td_tensor_release(x);
    td_tensor_release(t);
    td_tensor_release(w);
    td_tensor_release(elem);
    return st;
}

/* ---- multilabel_margin_loss ------------------------------------------------- */

static td_status multilabel_margin_backward(td_node *n, td_tensor *grad, td_tensor **gi)
{
    const margin_ctx *c = n->ctx;
    td_tensor *x = c->in[0], *t = c->in[1];
    grad_in g;
    TD_TRY(grad_setup(n, grad, &g));
    td_tensor *gx = NULL;
    td_status st = grad_buf(n, 0, x, &gx);
    if (st == TD_OK && gx)
        K(x)->multilabel_margin_backward(gx, g.gy, g.scale, x, t, c->rows, c->len);
    td_tensor_release(g.gy);
    if (st != TD_OK) return st;
    return grads_out(n, 1, &gx, gi);
}

static td_status multilabel_margin_loss(const td_loss_def *def, td_tensor *input, td_tensor *target,
                                    const td_multilabel_margin_opts *o, td_tensor **out)
{
    static const char *L = "multilabel_margin_loss";
    char s1[96], s2[96];
    TD_TRY(td_need_float(input->dtype, 1, L, "input"));
    if (input->ndim < 1 || input->ndim > 2 || input->shape[input->ndim - 1] == 0)
        return td_error(TD_ESHAPE, 1, "%s: input must be (N, C) or (C) with C > 0, got shape %s", L,
                        (shape_of(input, s1, sizeof s1), s1));
    TD_TRY(need_indices(L, target, 2));
    {
        td_tensor *on[2] = {input, target};
        TD_TRY(same_place(L, 2, on));
    }
    if (!td_same_shape(input, target))
        return td_error(TD_ESHAPE, 2, "%s: target shape %s does not match input shape %s", L,
                        (shape_of(target, s1, sizeof s1), s1), (shape_of(input, s2, sizeof s2), s2));
    int64_t n = input->ndim == 2 ? input->shape[0] : 1, c = input->shape[input->ndim - 1];
    {
        int64_t i;
        double v = 0;
        TD_TRY(first_bad(target, n * c, -1, c, &i, &v));
        if (i >= 0)
            return td_error(TD_ERANGE, 2,
                            "%s: target %lld at (%lld, %lld) is outside [0, %lld) (-1 ends a row's list)",
                            L, (long long)v, (long long)(i / c), (long long)(i % c), (long long)c);
    }
    td_tensor *x = NULL, *t = NULL, *elem = NULL;
    td_status st;
    TD_CHECK(raw(input, input->dtype, -1, NULL, &x));
    TD_CHECK(raw(target, TD_INT64, -1, NULL, &t));
    TD_CHECK(td_empty_on(input->ndim == 2 ? 1 : 0, &n, input->dtype, td_device_of(input), &elem));
    K(input)->multilabel_margin(elem, x, t, n, c);
    {
        td_tensor *save[2] = {x, t};
        TD_CHECK(finish(def, multilabel_margin_backward, elem, o, 1, &input, 2, save, NULL, n, c, out));
    }
fail:
    td_tensor_release(x);
    td_tensor_release(t);
    td_tensor_release(elem);
    return st;
}

/* ---- hinge_embedding_loss --------------------------------------------------- */

static td_status hinge_embedding_backward(td_node *n, td_tensor *grad, td_tensor **gi)
{
    const margin_ctx *c = n->ctx;
    td_tensor *x = c->in[0], *y = c->in[1];
    grad_in g;
    TD_TRY(grad_setup(n, grad, &g));
    td_tensor *gx = NULL;
    td_status st = grad_buf(n, 0, x, &gx);
    if (st == TD_OK && gx)
        K(x)->hinge_embedding_backward(gx, g.gy, g.scale, x, y, c->o.margin, c->rows);
    td_tensor_release(g.gy);
    if (st != TD_OK) return st;
    return grads_out(n, 1, &gx, gi);
}

static td_status hinge_embedding_loss(const td_loss_def *def, td_tensor *input, td_tensor *target,
                                  const td_hinge_embedding_opts *o, td_tensor **out)
{
    static const char *L = "hinge_embedding_loss";
    char s1[96], s2[96];
    TD_TRY(td_need_float(input->dtype, 1, L, "input"));
    TD_TRY(check_label(L, "target", target, input->dtype, 2));
    {
        td_tensor *on[2] = {input, target};
        TD_TRY(same_place(L, 2, on));
    }
    int nd;
    int64_t shape[TD_MAX_DIMS];
    if (td_broadcast_shape(input, target, &nd, shape) != TD_OK)
        return td_error(TD_ESHAPE, 2, "%s: target shape %s does not broadcast with input shape %s", L,
                        (shape_of(target, s1, sizeof s1), s1), (shape_of(input, s2, sizeof s2), s2));
    td_tensor *x = NULL, *y = NULL, *elem = NULL;
    td_status st;
    TD_CHECK(raw(input, input->dtype, nd, shape, &x));
    TD_CHECK(raw(target, input->dtype, nd, shape, &y));
    TD_CHECK(td_empty_on(nd, shape, input->dtype, td_device_of(input), &elem));
    int64_t n = td_numel(elem);
    K(input)->hinge_embedding(elem, x, y, o->margin, n);
    {
        td_tensor *save[2] = {x, y};
        TD_CHECK(finish(def, hinge_embedding_backward, elem, o, 1, &input, 2, save, NULL, n, 1, out));
    }
fail:
    td_tensor_release(x);
    td_tensor_release(y);
    td_tensor_release(elem);
    return st;
}

/* ---- cosine_embedding_loss -------------------------------------------------- */

static td_status cosine_embedding_backward(td_node *n, td_tensor *grad, td_tensor **gi)
{
    const margin_ctx *c = n->ctx;
    td_tensor *a = c->in[0], *b = c->in[1], *y = c->in[2];
    grad_in g;
    TD_TRY(grad_setup(n, grad, &g));
    td_tensor *bufs[2] = {NULL, NULL};
    td_status st = grad_buf(n, 0, a, &bufs[0]);
    if (st == TD_OK) st = grad_buf(n, 1, b, &bufs[1]);
    if (st == TD_OK)
        K(a)->cosine_embedding_backward(bufs[0], bufs[1], g.gy, g.scale, a, b, y, c->o.margin,
                                        c->rows, c->len);
    td_tensor_release(g.gy);
    if (st != TD_OK) {
        td_release_many(2, bufs);
        return st;
    }
    return grads_out(n, 2, bufs, gi);
}

static td_status cosine_embedding_loss(const td_loss_def *def, td_tensor *x1, td_tensor *x2, td_tensor *y,
                                   const td_cosine_embedding_opts *o, td_tensor **out)
{
    static const char *L = "cosine_embedding_loss";
    char s1[96], s2[96];
    TD_TRY(td_need_float(x1->dtype, 1, L, "x1"));
    TD_TRY(td_need_float(x2->dtype, 2, L, "x2"));
    TD_TRY(same_dtype(L, "x2", x2, x1->dtype, 2));
    TD_TRY(check_label(L, "y", y, x1->dtype, 3));
    {
        td_tensor *on[3] = {x1, x2, y};
        TD_TRY(same_place(L, 3, on));
    }
    if (x1->ndim < 1 || x1->ndim > 2)
        return td_error(TD_ESHAPE, 1, "%s: x1 must be (N, D) or (D), got shape %s", L,
                        (shape_of(x1, s1, sizeof s1), s1));
    if (!td_same_shape(x1, x2))
        return td_error(TD_ESHAPE, 2, "%s: x2 shape %s does not match x1 shape %s", L,
                        (shape_of(x2, s1, sizeof s1), s1), (shape_of(x1, s2, sizeof s2), s2));
    int64_t n = x1->ndim == 2 ? x1->shape[0] : 1, d = x1->shape[x1->ndim - 1];
    bool ok = x1->ndim == 2 ? (y->ndim == 1 && y->shape[0] == n) : y->ndim == 0;
    if (!ok)
        return td_error(TD_ESHAPE, 3, "%s: y shape %s does not match x1 shape %s (expected %s)", L,
                        (shape_of(y, s1, sizeof s1), s1), (shape_of(x1, s2, sizeof s2), s2),
                        x1->ndim == 2 ? "(N)" : "()");
    td_tensor *a = NULL, *b = NULL, *t = NULL, *elem = NULL;
    td_status st;
    TD_CHECK(raw(x1, x1->dtype, -1, NULL, &a));
    TD_CHECK(raw(x2, x1->dtype, -1, NULL, &b));
    TD_CHECK(raw(y, x1->dtype, -1, NULL, &t));
    TD_CHECK(td_empty_on(y->ndim, y->shape, x1->dtype, td_device_of(x1), &elem));
    K(x1)->cosine_embedding(elem, a, b, t, o->margin, n, d);
    {
        td_tensor *inputs[2] = {x1, x2}, *save[3] = {a, b, t};
        TD_CHECK(finish(def, cosine_embedding_backward, elem, o, 2, inputs, 3, save, NULL, n, d, out));
    }
fail:
    td_tensor_release(a);
    td_tensor_release(b);
    td_tensor_release(t);
    td_tensor_release(elem);
    return st;
}

/* ---- margin_ranking_loss ---------------------------------------------------- */

static td_status margin_ranking_backward(td_node *n, td_tensor *grad, td_tensor **gi)
{
    const margin_ctx *c = n->ctx;
    td_tensor *a = c->in[0], *b = c->in[1], *y = c->in[2];
    grad_in g;
    TD_TRY(grad_setup(n, grad, &g));
    td_tensor *bufs[2] = {NULL, NULL};
    td_status st = grad_buf(n, 0, a, &bufs[0]);
    if (st == TD_OK) st = grad_buf(n, 1, b, &bufs[1]);
    if (st == TD_OK)
        K(a)->margin_ranking_backward(bufs[0], bufs[1], g.gy, g.scale, a, b, y, c->o.margin,
                                      c->rows);
    td_tensor_release(g.gy);
    if (st != TD_OK) {
        td_release_many(2, bufs);
        return st;
    }
    return grads_out(n, 2, bufs, gi);
}

static td_status margin_ranking_loss(const td_loss_def *def, td_tensor *x1, td_tensor *x2, td_tensor *y,
                                 const td_margin_ranking_opts *o, td_tensor **out)
{
    static const char *L = "margin_ranking_loss";
    char s1[96], s2[96], s3[96];
    TD_TRY(td_need_float(x1->dtype, 1, L, "x1"));
    TD_TRY(td_need_float(x2->dtype, 2, L, "x2"));
    TD_TRY(same_dtype(L, "x2", x2, x1->dtype, 2));
    TD_TRY(check_label(L, "y", y, x1->dtype, 3));
    {
        td_tensor *on[3] = {x1, x2, y};
        TD_TRY(same_place(L, 3, on));
    }
    int nd, nd2;
    int64_t shape[TD_MAX_DIMS], shape2[TD_MAX_DIMS];
    if (x2->ndim != x1->ndim || td_broadcast_shape(x1, x2, &nd, shape) != TD_OK)
        return td_error(TD_ESHAPE, 2, "%s: x2 shape %s does not match x1 shape %s", L,
                        (shape_of(x2, s1, sizeof s1), s1), (shape_of(x1, s2, sizeof s2), s2));
    td_tensor tmp = {0};
    tmp.ndim = nd;
    memcpy(tmp.shape, shape, sizeof shape);
    if (y->ndim != x1->ndim || td_broadcast_shape(&tmp, y, &nd2, shape2) != TD_OK)
        return td_error(TD_ESHAPE, 3, "%s: y shape %s does not match x1 shape %s and x2 shape %s", L,
                        (shape_of(y, s1, sizeof s1), s1), (shape_of(x1, s2, sizeof s2), s2),
                        (shape_of(x2, s3, sizeof s3), s3));
    td_tensor *a = NULL, *b = NULL, *t = NULL, *elem = NULL;
    td_status st;
    TD_CHECK(raw(x1, x1->dtype, nd2, shape2, &a));
    TD_CHECK(raw(x2, x1->dtype, nd2, shape2, &b));
    TD_CHECK(raw(y, x1->dtype, nd2, shape2, &t));
    TD_CHECK(td_empty_on(nd2, shape2, x1->dtype, td_device_of(x1), &elem));
    int64_t n = td_numel(elem);
    K(x1)->margin_ranking(elem, a, b, t, o->margin, n);
    {
        td_tensor *inputs[2] = {x1, x2}, *save[3] = {a, b, t};
        TD_CHECK(finish(def, margin_ranking_backward, elem, o, 2, inputs, 3, save, NULL, n, 1, out));
    }
fail:
    td_tensor_release(a);
    td_tensor_release(b);
    td_tensor_release(t);
    td_tensor_release(elem);
    return st;
}

/* ---- triplet_margin_loss ---------------------------------------------------- */

static td_status triplet_margin_backward(td_node *n, td_tensor *grad, td_tensor **gi)
{
    const margin_ctx *c = n->ctx;
    td_tensor *a = c->in[0], *p = c->in[1], *q = c->in[2];
    grad_in g;
    TD_TRY(grad_setup(n, grad, &g));
    td_tensor *bufs[3] = {NULL, NULL, NULL};
    td_status st = TD_OK;
    for (int i = 0; i < 3 && st == TD_OK; i++) st = grad_buf(n, i, a, &bufs[i]);
    if (st == TD_OK)
        K(a)->triplet_margin_backward(bufs[0], bufs[1], bufs[2], g.gy, g.scale, a, p, q, c->o.margin,
                                      c->o.p, c->o.eps, c->o.swap, c->rows, c->len);
    td_tensor_release(g.gy);
    if (st != TD_OK) {
        td_release_many(3, bufs);
        return st;
    }
    return grads_out(n, 3, bufs, gi);
}

static td_status triplet_margin_loss(const td_loss_def *def, td_tensor *anchor, td_tensor *positive, td_tensor *negative,
                                 const td_triplet_margin_opts *o, td_tensor **out)
{
    static const char *L = "triplet_margin_loss";
    static const char *names[3] = {"anchor", "positive", "negative"};
    char s1[96], s2[96];
    td_tensor *in[3] = {anchor, positive, negative};
    for (int i = 0; i < 3; i++) {
        TD_TRY(td_need_float(in[i]->dtype, i + 1, L, names[i]));
        if (i > 0) TD_TRY(same_dtype(L, names[i], in[i], anchor->dtype, i + 1));
    }
    TD_TRY(same_place(L, 3, in));
    if (anchor->ndim < 1 || anchor->ndim > 2)
        return td_error(TD_ESHAPE, 1, "%s: anchor must be (N, D) or (D), got shape %s", L,
                        (shape_of(anchor, s1, sizeof s1), s1));
    for (int i = 1; i < 3; i++)
        if (!td_same_shape(in[i], anchor))
            return td_error(TD_ESHAPE, i + 1, "%s: %s shape %s does not match anchor shape %s", L,
                            names[i], (shape_of(in[i], s1, sizeof s1), s1),
                            (shape_of(anchor, s2, sizeof s2), s2));
    int64_t n = anchor->ndim == 2 ? anchor->shape[0] : 1, d = anchor->shape[anchor->ndim - 1];
    td_tensor *r[3] = {NULL, NULL, NULL}, *elem = NULL;
    td_status st;
    for (int i = 0; i < 3; i++) TD_CHECK(raw(in[i], anchor->dtype, -1, NULL, &r[i]));
    TD_CHECK(td_empty_on(anchor->ndim == 2 ? 1 : 0, &n, anchor->dtype, td_device_of(anchor), &elem));
    K(anchor)->triplet_margin(elem, r[0], r[1], r[2], o->margin, o->p, o->eps, o->swap, n, d);
    {
        TD_CHECK(finish(def, triplet_margin_backward, elem, o, 3, in, 3, r, NULL, n, d, out));
    }
fail:
    td_release_many(3, r);
    td_tensor_release(elem);
    return st;
}

td_status td_margin_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts, td_tensor **out)
{
    const td_margin_loss_opts *o = opts;
    switch ((td_margin_kind)d->kind) {
    case TD_MARGIN_MULTI: return multi_margin_loss(d, in[0], in[1], o, out);
    case TD_MARGIN_MULTILABEL: return multilabel_margin_loss(d, in[0], in[1], o, out);
    case TD_MARGIN_HINGE: return hinge_embedding_loss(d, in[0], in[1], o, out);
    case TD_MARGIN_COSINE: return cosine_embedding_loss(d, in[0], in[1], in[2], o, out);
    case TD_MARGIN_RANKING: return margin_ranking_loss(d, in[0], in[1], in[2], o, out);
    case TD_MARGIN_TRIPLET: return triplet_margin_loss(d, in[0], in[1], in[2], o, out);
    }
    return td_error(TD_EINVAL, 0, "internal: %s is no margin loss", d->name);
}
