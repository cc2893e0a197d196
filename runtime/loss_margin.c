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
        return td_error(TD_EINVAL, 1, "%s is not implemented on %s yet", loss,
                        td_backend_of(ts[0])->name);
    return TD_OK;
}

/* ---- shared checks ------------------------------------------------------ */

static td_status same_dtype(const char *loss, const char *what, const td_tensor *t, td_dtype dt,
                            int arg)
{
    if (t->dtype != dt)
        return td_error(TD_EDTYPE, arg, "%s: %s is %s but the input is %s (use one float dtype)",
                        loss, what, td_dtype_name(t->dtype), td_dtype_name(dt));
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

/* ---- one driver for the family ------------------------------------------------ */

/* what a front-end decides after its checks: the tensors as the kernels
 * read them (owned), the shape of the per-sample loss, the rows of len
 * values the kernels walk, how many leading inputs take a gradient */
typedef struct {
    td_tensor *dense[3];
    td_tensor *weight;
    int elem_ndim;
    int64_t elem_shape[TD_MAX_DIMS];
    int64_t rows, len;
    int n_grad;
} margin_plan;

static void plan_release(margin_plan *p)
{
    td_release_many(3, p->dense);
    td_tensor_release(p->weight);
}

/* the plan of an elementwise loss (hinge, ranking): the k inputs broadcast
 * to shape as dt, one loss per element */
static td_status plan_elementwise(margin_plan *p, int k, td_tensor *const *in, td_dtype dt, int nd,
                                  const int64_t *shape, int n_grad)
{
    for (int i = 0; i < k; i++) TD_TRY(raw(in[i], dt, nd, shape, &p->dense[i]));
    p->elem_ndim = nd;
    memcpy(p->elem_shape, shape, sizeof(int64_t) * (size_t)nd);
    p->rows = td_shape_numel(nd, shape), p->len = 1, p->n_grad = n_grad;
    return TD_OK;
}

/* what backward reads */
typedef struct {
    td_margin_kind kind;
    td_reduction reduction;
    int64_t rows, len;
    int n_grad;
    td_margin_loss_opts o; /* margin, p, eps, swap */
    td_tensor *in[3];      /* the plan's dense tensors */
    td_tensor *weight;     /* multi_margin's class weights, or NULL */
} margin_ctx;

static void forward_kernel(td_margin_kind kind, const td_margin_loss_opts *o, td_tensor *elem,
                           td_tensor *const *t, const td_tensor *w, int64_t rows, int64_t len)
{
    const struct td_margin_loss_kernels *k = K(elem);
    switch (kind) {
    case TD_MARGIN_MULTI:
        k->multi_margin(elem, t[0], t[1], w, (int)o->p, o->margin, rows, len);
        break;
    case TD_MARGIN_MULTILABEL: k->multilabel_margin(elem, t[0], t[1], rows, len); break;
    case TD_MARGIN_HINGE: k->hinge_embedding(elem, t[0], t[1], o->margin, rows); break;
    case TD_MARGIN_COSINE: k->cosine_embedding(elem, t[0], t[1], t[2], o->margin, rows, len); break;
    case TD_MARGIN_RANKING: k->margin_ranking(elem, t[0], t[1], t[2], o->margin, rows); break;
    case TD_MARGIN_TRIPLET:
        k->triplet_margin(elem, t[0], t[1], t[2], o->margin, o->p, o->eps, o->swap, rows, len);
        break;
    }
}

static void backward_kernel(const margin_ctx *c, td_tensor **g, const td_tensor *gy, double scale)
{
    const struct td_margin_loss_kernels *k = K(gy);
    td_tensor *const *t = c->in;
    const td_margin_loss_opts *o = &c->o;
    switch (c->kind) {
    case TD_MARGIN_MULTI:
        k->multi_margin_backward(g[0], gy, scale, t[0], t[1], c->weight, (int)o->p, o->margin,
                                 c->rows, c->len);
        break;
    case TD_MARGIN_MULTILABEL:
        k->multilabel_margin_backward(g[0], gy, scale, t[0], t[1], c->rows, c->len);
        break;
    case TD_MARGIN_HINGE:
        k->hinge_embedding_backward(g[0], gy, scale, t[0], t[1], o->margin, c->rows);
        break;
    case TD_MARGIN_COSINE:
        k->cosine_embedding_backward(g[0], g[1], gy, scale, t[0], t[1], t[2], o->margin, c->rows,
                                     c->len);
        break;
    case TD_MARGIN_RANKING:
        k->margin_ranking_backward(g[0], g[1], gy, scale, t[0], t[1], t[2], o->margin, c->rows);
        break;
    case TD_MARGIN_TRIPLET:
        k->triplet_margin_backward(g[0], g[1], g[2], gy, scale, t[0], t[1], t[2], o->margin, o->p,
                                   o->eps, o->swap, c->rows, c->len);
        break;
    }
}

/* margin_ranking's target gradient, [z >= 0] * -(x1 - x2) * gy, from the
 * kernel that gives x1 its own: called with x1 <- y, x2 <- 0 and y <-
 * x1 - x2, its z is -(x1 - x2) * y + margin, the forward's z to the bit
 * (negation is exact and the product commutes), so the hinge falls where
 * it fell and every backend gets the gradient without a kernel of its own */
static td_status ranking_target_grad(const margin_ctx *c, td_tensor *gt, const td_tensor *gy,
                                     double scale)
{
    td_tensor *const *t = c->in;
    td_tensor *diff = NULL, *zero = NULL;
    td_status st;
    TD_CHECK(td_empty_like(t[0], &diff));
    TD_CHECK(td_empty_like(t[0], &zero));
    td_backend_of(diff)->binary(TD_SUB, diff, t[0], t[1]);
    td_backend_of(zero)->fill(zero, 0);
    K(gy)->margin_ranking_backward(gt, NULL, gy, scale, t[2], zero, diff, c->o.margin, c->rows);
fail:
    td_tensor_release(diff);
    td_tensor_release(zero);
    return st;
}

static td_status margin_backward(td_node *n, td_tensor *grad, td_tensor **gi)
{
    const margin_ctx *c = n->ctx;
    double scale = (c->reduction == TD_REDUCE_MEAN && c->rows > 0) ? 1.0 / (double)c->rows : 1.0;
    td_tensor *gy = NULL, *bufs[3] = {NULL, NULL, NULL};
    td_status st;
    bool any = false;
    TD_CHECK(td_contiguous(grad, &gy));
    if (gy->dtype != n->in_dtype[0]) {
        td_tensor *d = NULL;
        TD_CHECK(td_cast_raw(gy, n->in_dtype[0], &d));
        td_tensor_release(gy);
        gy = d;
    }
    /* a buffer of each dense input's shape where its input needs a gradient */
    for (int i = 0; i < c->n_grad; i++)
        if (n->next[i]) {
            TD_CHECK(td_empty_like(c->in[i], &bufs[i]));
            any = true;
        }
    if (any) backward_kernel(c, bufs, gy, scale);
    if (c->kind == TD_MARGIN_RANKING && bufs[2])
        TD_CHECK(ranking_target_grad(c, bufs[2], gy, scale));
    for (int i = 0; i < c->n_grad; i++)
        if (bufs[i]) TD_CHECK(td_grad_to_input(n, i, bufs[i], &gi[i]));
fail:
    td_tensor_release(gy);
    td_release_many(3, bufs);
    return st;
}

typedef struct {
    const td_loss_def *d;
    const td_margin_loss_opts *o;
    const margin_plan *p;
} margin_fill_arg;

static td_status margin_fill(td_node *node, void *ctx, const void *arg)
{
    const margin_fill_arg *a = arg;
    margin_ctx *c = ctx;
    c->kind = (td_margin_kind)a->d->kind;
    c->reduction = a->o->reduction;
    c->rows = a->p->rows;
    c->len = a->p->len;
    c->n_grad = a->p->n_grad;
    c->o = *a->o;
    c->o.weight = NULL;
    for (int i = 0; i < a->d->n_inputs; i++) TD_TRY(td_node_keep(node, a->p->dense[i], &c->in[i]));
    if (a->p->weight) TD_TRY(td_node_keep(node, a->p->weight, &c->weight));
    return TD_OK;
}

/* the per-sample losses of the plan, reduced, and the node when any input
 * needs a gradient; releases the plan's tensors */
static td_status margin_run(const td_loss_def *d, const td_margin_loss_opts *o,
                            td_tensor *const *inputs, margin_plan *p, td_tensor **out)
{
    td_tensor *elem = NULL;
    td_status st;
    td_tensor *first = inputs[0];
    TD_CHECK(td_empty_on(p->elem_ndim, p->elem_shape, first->dtype, td_device_of(first), &elem));
    forward_kernel((td_margin_kind)d->kind, o, elem, p->dense, p->weight, p->rows, p->len);
    margin_fill_arg arg = {d, o, p};
    TD_CHECK(td_loss_record(d, elem, o->reduction, (double)td_numel(elem), p->n_grad, inputs,
                            margin_backward, sizeof(margin_ctx), margin_fill, &arg, out));
fail:
    td_tensor_release(elem);
    plan_release(p);
    return st;
}

static void shape_of(const td_tensor *t, char *buf, size_t n) { td_shape_str(t, buf, n); }

/* the first of the `count` class indices of target outside [lo, hi)
 * (*pos = -1 when none) and its value, checked by the kernel where the
 * data lives: one download on CUDA */
static td_status first_bad(td_tensor *target, int64_t count, int64_t lo, int64_t hi, int64_t *pos,
                           double *val)
{
    td_tensor *t = NULL;
    TD_TRY(raw(target, TD_INT64, -1, NULL, &t));
    td_status st = TD_OK;
    *pos = K(t)->check_range(t, count, lo, hi);
    if (*pos >= 0) st = td_read_flat(t, *pos, val);
    td_tensor_release(t);
    return st;
}

/* ---- the front-ends: each one's checks and plan ------------------------------- */

/* multi_margin's and multilabel_margin's input (N, C), (C) or () of
 * scores, an index target, and the class weights (or NULL) on their device */
static td_status check_class_scores(const char *L, td_tensor *input, td_tensor *target,
                                    td_tensor *weight)
{
    char s[96];
    TD_TRY(td_need_float(input->dtype, 1, L, "input"));
    if (input->ndim > 2 || (input->ndim > 0 && input->shape[input->ndim - 1] == 0))
        return td_error(TD_ESHAPE, 1,
                        "%s: input must be (N, C) or (C) with C > 0, or 0-dim, got shape %s", L,
                        (shape_of(input, s, sizeof s), s));
    TD_TRY(need_indices(L, target, 2));
    td_tensor *on[3] = {input, target, weight};
    return same_place(L, weight ? 3 : 2, on);
}

/* a 0-dim input is one row of one class, as PyTorch reads it */
static int64_t class_count(const td_tensor *input)
{
    return input->ndim == 0 ? 1 : input->shape[input->ndim - 1];
}

/* the plan of a loss per row of c scores with int64 targets */
static td_status plan_rows(margin_plan *p, td_tensor *input, td_tensor *target, int64_t n,
                           int64_t c)
{
    TD_TRY(raw(input, input->dtype, -1, NULL, &p->dense[0]));
    TD_TRY(raw(target, TD_INT64, -1, NULL, &p->dense[1]));
    p->elem_ndim = input->ndim == 2 ? 1 : 0;
    p->elem_shape[0] = n;
    p->rows = n, p->len = c, p->n_grad = 1;
    return TD_OK;
}

static td_status multi_margin_loss(const td_loss_def *def, td_tensor *input, td_tensor *target,
                                   const td_margin_loss_opts *o, td_tensor **out)
{
    static const char *L = "multi_margin_loss";
    char s1[96], s2[96];
    TD_TRY(check_class_scores(L, input, target, o->weight));
    int64_t n = input->ndim == 2 ? input->shape[0] : 1, c = class_count(input);
    bool ok = input->ndim == 2
                  ? (target->ndim == 1 && target->shape[0] == n)
                  : (target->ndim == 0 || (target->ndim == 1 && target->shape[0] == 1));
    if (!ok)
        return td_error(TD_ESHAPE, 2,
                        "%s: target shape %s does not match input shape %s (expected %s)", L,
                        (shape_of(target, s1, sizeof s1), s1), (shape_of(input, s2, sizeof s2), s2),
                        input->ndim == 2 ? "(N)" : "() or (1)");
    {
        int64_t i;
        double v = 0;
        TD_TRY(first_bad(target, n, 0, c, &i, &v));
        if (i >= 0)
            return td_error(TD_ERANGE, 2, "%s: target %lld at position %lld is outside [0, %lld)",
                            L, (long long)v, (long long)i, (long long)c);
    }
    if (o->weight) {
        TD_TRY(td_need_float(o->weight->dtype, 3, L, "weight"));
        TD_TRY(same_dtype(L, "weight", o->weight, input->dtype, 3));
        if (o->weight->ndim != 1 || o->weight->shape[0] != c)
            return td_error(TD_ESHAPE, 3,
                            "%s: weight must have shape (%lld), one per class, got %s", L,
                            (long long)c, (shape_of(o->weight, s1, sizeof s1), s1));
    }
    margin_plan p = {0};
    td_status st;
    td_tensor *in[2] = {input, target};
    TD_CHECK(plan_rows(&p, input, target, n, c));
    if (o->weight) TD_CHECK(raw(o->weight, input->dtype, -1, NULL, &p.weight));
    /* none: (N), or the target's shape for a (C) or () input */
    if (input->ndim < 2) {
        p.elem_ndim = target->ndim;
        memcpy(p.elem_shape, target->shape, sizeof(int64_t) * (size_t)target->ndim);
    }
    return margin_run(def, o, in, &p, out);
fail:
    plan_release(&p);
    return st;
}

static td_status multilabel_margin_loss(const td_loss_def *def, td_tensor *input, td_tensor *target,
                                        const td_margin_loss_opts *o, td_tensor **out)
{
    static const char *L = "multilabel_margin_loss";
    char s1[96], s2[96];
    TD_TRY(check_class_scores(L, input, target, NULL));
    /* a 0-dim input takes a () or (1) target, as PyTorch */
    bool ok = input->ndim == 0 ? td_numel(target) == 1 && target->ndim <= 1
                               : td_same_shape(input, target);
    if (!ok)
        return td_error(TD_ESHAPE, 2, "%s: target shape %s does not match input shape %s", L,
                        (shape_of(target, s1, sizeof s1), s1),
                        (shape_of(input, s2, sizeof s2), s2));
    int64_t n = input->ndim == 2 ? input->shape[0] : 1, c = class_count(input);
    {
        int64_t i;
        double v = 0;
        TD_TRY(first_bad(target, n * c, -1, c, &i, &v));
        if (i >= 0)
            return td_error(
                TD_ERANGE, 2,
                "%s: target %lld at (%lld, %lld) is outside [0, %lld) (-1 ends a row's list)", L,
                (long long)v, (long long)(i / c), (long long)(i % c), (long long)c);
    }
    margin_plan p = {0};
    td_status st;
    td_tensor *in[2] = {input, target};
    TD_CHECK(plan_rows(&p, input, target, n, c));
    return margin_run(def, o, in, &p, out);
fail:
    plan_release(&p);
    return st;
}

static td_status hinge_embedding_loss(const td_loss_def *def, td_tensor *input, td_tensor *target,
                                      const td_margin_loss_opts *o, td_tensor **out)
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
        return td_error(TD_ESHAPE, 2, "%s: target shape %s does not broadcast with input shape %s",
                        L, (shape_of(target, s1, sizeof s1), s1),
                        (shape_of(input, s2, sizeof s2), s2));
    margin_plan p = {0};
    td_status st;
    td_tensor *in[2] = {input, target};
    TD_CHECK(plan_elementwise(&p, 2, in, input->dtype, nd, shape, 1));
    return margin_run(def, o, in, &p, out);
fail:
    plan_release(&p);
    return st;
}

static td_status cosine_embedding_loss(const td_loss_def *def, td_tensor *x1, td_tensor *x2,
                                       td_tensor *y, const td_margin_loss_opts *o, td_tensor **out)
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
    margin_plan p = {0};
    td_status st;
    td_tensor *in[3] = {x1, x2, y};
    TD_CHECK(raw(x1, x1->dtype, -1, NULL, &p.dense[0]));
    TD_CHECK(raw(x2, x1->dtype, -1, NULL, &p.dense[1]));
    TD_CHECK(raw(y, x1->dtype, -1, NULL, &p.dense[2]));
    p.elem_ndim = y->ndim;
    memcpy(p.elem_shape, y->shape, sizeof(int64_t) * (size_t)y->ndim);
    p.rows = n, p.len = d, p.n_grad = 2;
    return margin_run(def, o, in, &p, out);
fail:
    plan_release(&p);
    return st;
}

static td_status margin_ranking_loss(const td_loss_def *def, td_tensor *x1, td_tensor *x2,
                                     td_tensor *y, const td_margin_loss_opts *o, td_tensor **out)
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
        return td_error(TD_ESHAPE, 3, "%s: y shape %s does not match x1 shape %s and x2 shape %s",
                        L, (shape_of(y, s1, sizeof s1), s1), (shape_of(x1, s2, sizeof s2), s2),
                        (shape_of(x2, s3, sizeof s3), s3));
    margin_plan p = {0};
    td_status st;
    td_tensor *in[3] = {x1, x2, y};
    /* y takes a gradient too when it is float and asks for one, as PyTorch */
    TD_CHECK(plan_elementwise(&p, 3, in, x1->dtype, nd2, shape2, 3));
    return margin_run(def, o, in, &p, out);
fail:
    plan_release(&p);
    return st;
}

static td_status triplet_margin_loss(const td_loss_def *def, td_tensor *anchor, td_tensor *positive,
                                     td_tensor *negative, const td_margin_loss_opts *o,
                                     td_tensor **out)
{
    td_tensor *in[3] = {anchor, positive, negative};
    static const char *L = "triplet_margin_loss";
    static const char *names[3] = {"anchor", "positive", "negative"};
    char s1[96], s2[96];
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
    margin_plan p = {0};
    td_status st;
    for (int i = 0; i < 3; i++) TD_CHECK(raw(in[i], anchor->dtype, -1, NULL, &p.dense[i]));
    p.elem_ndim = anchor->ndim == 2 ? 1 : 0;
    p.elem_shape[0] = n;
    p.rows = n, p.len = d, p.n_grad = 3;
    return margin_run(def, o, in, &p, out);
fail:
    plan_release(&p);
    return st;
}

td_status td_margin_loss_run(const td_loss_def *d, td_tensor *const *in, const void *opts,
                             td_tensor **out)
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
