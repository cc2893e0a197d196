/* The softmax losses' front-ends: cross_entropy, nll_loss, focal_loss,
 * poly1_cross_entropy. One path for all four: check every argument once,
 * one fused kernel call for the per-row losses, the fixed-order reduction,
 * then one autograd node whose backward is the closed-form kernel.
 * Argument numbers in errors are the Lua call's: 1 input, 2 target, 3 the
 * options table. */
#include "internal.h"

#include <math.h>
#include <stdio.h>

typedef struct {
    const char *name;
    td_smx_kind kind;
    td_tensor *weight; /* weight, or focal's alpha tensor */
    int64_t ignore_index;
    double smoothing, gamma, epsilon, alpha_value;
    td_reduction reduction;
} smx_req;

enum { F_PROB = 1, F_WEIGHT = 2 };

/* a contiguous tensor with t's data (t itself when already so), unrecorded */
static td_status contig(td_tensor *t, td_tensor **out)
{
    if (td_is_contiguous(t)) return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
    TD_TRY(td_empty_like(t, out));
    td_backend_of(t)->copy(*out, t);
    return TD_OK;
}

static void shape_of(int ndim, const int64_t *shape, char *buf, size_t n)
{
    size_t k = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < ndim && k < n; i++)
        k += (size_t)snprintf(buf + k, n - k, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (k < n) snprintf(buf + k, n - k, ")");
}

/* "position 3" for 1-dim targets, "position (1,0,2)" for K-dim ones */
static void position_of(const td_tensor *t, int64_t flat, char *buf, size_t n)
{
    if (t->ndim <= 1) {
        snprintf(buf, n, "position %lld", (long long)flat);
        return;
    }
    int64_t idx[TD_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = flat % t->shape[d];
        flat /= t->shape[d];
    }
    int k = snprintf(buf, n, "position ");
    if (k > 0 && (size_t)k < n) shape_of(t->ndim, idx, buf + k, n - (size_t)k);
}

static td_status check_class_vector(const smx_req *q, td_tensor *v, const char *opt, const td_tensor *x,
                                    int64_t c)
{
    if (v->dtype != x->dtype)
        return td_error(TD_EDTYPE, 3, "%s: %s must be %s like input, got %s", q->name, opt,
                        td_dtype_name(x->dtype), td_dtype_name(v->dtype));
    if (v->ndim != 1 || v->shape[0] != c) {
        char s[160];
        td_shape_str(v, s, sizeof s);
        return td_error(TD_ESHAPE, 3, "%s: %s must have shape (%lld), one value per class, got %s", q->name,
                        opt, (long long)c, s);
    }
    return TD_OK;
}

static td_status smx_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    td_smx_args a = {0};
    a.kind = (td_smx_kind)nd->iargs[0];
    a.n = nd->iargs[1];
    a.c = nd->iargs[2];
    a.inner = nd->iargs[3];
    a.ignore_index = nd->iargs[4];
    td_reduction red = (td_reduction)nd->iargs[5];
    int flags = (int)nd->iargs[6];
    int sx = (int)nd->iargs[7], st_ = (int)nd->iargs[8], s0 = (int)nd->iargs[9], s1 = (int)nd->iargs[10],
        sw = (int)nd->iargs[11];
    td_tensor *x = sx >= 0 ? td_node_saved(nd, sx) : NULL, *t = td_node_saved(nd, st_);
    td_tensor *aux0 = s0 >= 0 ? td_node_saved(nd, s0) : NULL, *aux1 = s1 >= 0 ? td_node_saved(nd, s1) : NULL;
    td_tensor *w = sw >= 0 ? td_node_saved(nd, sw) : NULL;
    td_dtype dt = (td_dtype)nd->in_dtype[0];
    a.dtype = dt;
    a.x = x ? td_data_ptr(x) : NULL;
    if (flags & F_PROB)
        a.prob = td_data_ptr(t);
    else
        a.target = td_data_ptr(t);
    if (w) {
        if (a.kind == TD_SMX_FOCAL)
            a.alpha = td_data_ptr(w);
        else
            a.weight = td_data_ptr(w);
    }
    if (a.kind == TD_SMX_FOCAL)
        a.alpha_scalar = nd->dargs[0], a.gamma = nd->dargs[1];
    else
        a.smoothing = nd->dargs[0], a.epsilon = nd->dargs[1];

    td_tensor *cg = NULL, *gx = NULL, *gt = NULL;
    td_status st = TD_OK;
    double scale = 1;
    const void *gy = NULL;
    if (red == TD_REDUCE_NONE) {
        if (g->dtype == dt && td_is_contiguous(g)) {
            gy = td_data_ptr(g);
        } else {
            TD_CHECK(td_empty_on(g->ndim, g->shape, dt, td_device_of(g), &cg));
            td_backend_of(g)->copy(cg, g);
            gy = td_data_ptr(cg);
        }
    } else {
        TD_CHECK(td_read_flat(g, 0, &scale));
        if (red == TD_REDUCE_MEAN) scale /= nd->dargs[2];
    }
    bool want_x = nd->next[0] != NULL, want_t = (flags & F_PROB) && nd->n_next > 1 && nd->next[1];
    TD_CHECK(td_empty_on(nd->in_ndim[0], nd->in_shape[0], dt, nd->in_device[0], &gx));
    if (want_t) TD_CHECK(td_empty_on(nd->in_ndim[1], nd->in_shape[1], dt, nd->in_device[1], &gt));
    td_backend_of(gx)->softmax_loss->backward(&a, aux0 ? td_data_ptr(aux0) : NULL,
                                              aux1 ? td_data_ptr(aux1) : NULL, gy, scale,
                                              td_data_ptr(gx), gt ? td_data_ptr(gt) : NULL);
    if (want_x) {
        gi[0] = gx;
        gx = NULL;
    }
    if (want_t) {
        TD_CHECK(td_grad_to_input(nd, 1, gt, &gi[1]));
    }
fail:
    td_tensor_release(cg);
    td_tensor_release(gx);
    td_tensor_release(gt);
    return st;
}

static const char *node_name(td_smx_kind k)
{
    switch (k) {
    case TD_SMX_CE: return "CrossEntropyLossBackward";
    case TD_SMX_NLL: return "NllLossBackward";
    case TD_SMX_FOCAL: return "FocalLossBackward";
    default: return "Poly1CrossEntropyLossBackward";
    }
}

static td_status smx_loss(const smx_req *q, td_tensor *x, td_tensor *target, td_tensor **out)
{
    char s1[160], s2[160];
    if (!td_dtype_is_float(x->dtype))
        return td_error(TD_EDTYPE, 1, "%s: input must be float32 or float64, got %s", q->name,
                        td_dtype_name(x->dtype));
    if (x->ndim < 1) return td_error(TD_ESHAPE, 1, "%s: input must have a class dim, got a 0-dim tensor", q->name);
    bool batched = x->ndim >= 2;
    int64_t n = batched ? x->shape[0] : 1, c = x->shape[batched ? 1 : 0];
    int64_t inner = batched ? td_shape_numel(x->ndim - 2, x->shape + 2) : 1;
    if (c < 1) return td_error(TD_ESHAPE, 1, "%s: input has no classes (C = 0)", q->name);
    /* the index target's shape: input's without the class dim */
    int tnd = x->ndim - 1;
    int64_t tshape[TD_MAX_DIMS];
    if (batched) {
        tshape[0] = n;
        for (int d = 2; d < x->ndim; d++) tshape[d - 1] = x->shape[d];
    }
    bool prob = false;
    if (td_dtype_is_float(target->dtype)) {
        if (q->kind == TD_SMX_CE && td_same_shape(target, x)) {
            prob = true;
            if (target->dtype != x->dtype)
                return td_error(TD_EDTYPE, 2, "%s: class probabilities must be %s like input, got %s", q->name,
                                td_dtype_name(x->dtype), td_dtype_name(target->dtype));
        } else {
            td_shape_str(target, s1, sizeof s1);
            td_shape_str(x, s2, sizeof s2);
            if (q->kind == TD_SMX_CE)
                return td_error(TD_EDTYPE, 2,
                                "%s: a %s target of shape %s is neither int64 class indices nor class "
                                "probabilities of input's shape %s",
                                q->name, td_dtype_name(target->dtype), s1, s2);
            return td_error(TD_EDTYPE, 2, "%s: target must be int64 class indices, got %s (a float target is "
                            "not accepted here)", q->name, td_dtype_name(target->dtype));
        }
    } else if (target->dtype != TD_INT64) {
        return td_error(TD_EDTYPE, 2, "%s: target must be int64 class indices, got %s", q->name,
                        td_dtype_name(target->dtype));
    } else if (target->ndim != tnd || memcmp(target->shape, tshape, sizeof(int64_t) * (size_t)tnd) != 0) {
        td_shape_str(target, s1, sizeof s1);
        td_shape_str(x, s2, sizeof s2);
        char es[160];
        shape_of(tnd, tshape, es, sizeof es);
        if (td_same_shape(target, x) && q->kind == TD_SMX_CE)
            return td_error(TD_EDTYPE, 2,
                            "%s: an int64 target of input's shape %s: class probabilities must be %s, "
                            "class indices have shape %s", q->name, s1, td_dtype_name(x->dtype), es);
        return td_error(TD_ESHAPE, 2, "%s: target shape %s does not match input shape %s (expected %s)",
                        q->name, s1, s2, es);
    }
    td_tensor *on[3] = {x, target, q->weight};
    TD_TRY(td_same_device(3, on));
    const td_backend *be = td_backend_of(x);
    if (!be->softmax_loss) return td_error(TD_EINVAL, 1, "%s is not implemented on %s yet", q->name, be->name);
    /* options */
    if (q->weight)
        TD_TRY(check_class_vector(q, q->weight, q->kind == TD_SMX_FOCAL ? "alpha" : "weight", x, c));
    if (!(q->smoothing >= 0 && q->smoothing <= 1))
        return td_error(TD_EINVAL, 3, "%s: label_smoothing must be in [0, 1], got %g", q->name, q->smoothing);
    if (!(q->gamma >= 0) || isinf(q->gamma))
        return td_error(TD_EINVAL, 3, "%s: gamma must be a finite number >= 0, got %g", q->name, q->gamma);
    if (!(q->epsilon >= -1) || isinf(q->epsilon))
        return td_error(TD_EINVAL, 3, "%s: epsilon must be a finite number >= -1, got %g", q->name, q->epsilon);
    if (isnan(q->alpha_value))
        return td_error(TD_EINVAL, 3, "%s: alpha must be a number, got nan", q->name);
    if (prob && q->ignore_index >= 0)
        return td_error(TD_EINVAL, 3, "%s: ignore_index (%lld) is not supported with class-probability targets",
                        q->name, (long long)q->ignore_index);

    td_tensor *cx = NULL, *ct = NULL, *cw = NULL, *loss = NULL, *aux0 = NULL, *aux1 = NULL, *res = NULL;
    td_node *node = NULL;
    td_status st = TD_OK;
    TD_CHECK(contig(x, &cx));
    TD_CHECK(contig(target, &ct));
    if (q->weight) TD_CHECK(contig(q->weight, &cw));
    td_smx_args a = {0};
    a.kind = q->kind;
    a.dtype = x->dtype;
    a.n = n;
    a.c = c;
    a.inner = inner;
    a.x = td_data_ptr(cx);
    if (prob)
        a.prob = td_data_ptr(ct);
    else
        a.target = td_data_ptr(ct);
    if (cw) {
        if (q->kind == TD_SMX_FOCAL)
            a.alpha = td_data_ptr(cw);
        else
            a.weight = td_data_ptr(cw);
    }
    a.alpha_scalar = q->alpha_value;
    a.ignore_index = q->ignore_index;
    a.smoothing = q->smoothing;
    a.gamma = q->gamma;
    a.epsilon = q->epsilon;
    int64_t rows = n * inner;
    double den = (double)rows;
    if (!prob) {
        int64_t count;
        double wsum;
        int64_t bad = be->softmax_loss->check_targets(&a, &count, &wsum);
        if (bad >= 0) {
            double tv = 0;
            TD_CHECK(td_read_flat(ct, bad, &tv));
            position_of(ct, bad, s1, sizeof s1);
            st = td_error(TD_ERANGE, 2, "%s: target %lld at %s is out of range for %lld classes (valid: 0 to %lld%s)",
                          q->name, (long long)tv, s1, (long long)c, (long long)(c - 1),
                          q->ignore_index == -100 ? ", or ignore_index -100" : ", or ignore_index");
            goto fail;
        }
        den = q->kind == TD_SMX_FOCAL ? (double)count : wsum;
    }
    td_device dev = td_device_of(x);
    TD_CHECK(td_empty_on(tnd, tshape, x->dtype, dev, &loss));
    bool has_aux0 = q->kind != TD_SMX_NLL, has_aux1 = q->kind == TD_SMX_FOCAL || prob;
    int64_t rows2 = 2 * rows;
    if (has_aux0) TD_CHECK(td_empty_on(1, &rows2, x->dtype, dev, &aux0));
    if (has_aux1) TD_CHECK(td_empty_on(1, &rows, x->dtype, dev, &aux1));
    be->softmax_loss->forward(&a, td_data_ptr(loss), aux0 ? td_data_ptr(aux0) : NULL,
                              aux1 ? td_data_ptr(aux1) : NULL);
    if (q->reduction == TD_REDUCE_NONE) {
        res = loss;
        loss = NULL;
    } else {
        TD_CHECK(td_loss_reduce_raw(loss, q->reduction, den, &res));
    }
    td_tensor *ins[2] = {x, target};
    if (td_needs_grad(prob ? 2 : 1, ins)) {
        TD_CHECK(td_node_new(node_name(q->kind), smx_backward, prob ? 2 : 1, ins, &node));
        int k = 0;
        int64_t sx = -1, s0 = -1, s1i = -1, sw = -1, stt;
        if (q->kind != TD_SMX_NLL) {
            TD_CHECK(td_node_save(node, cx));
            sx = k++;
        }
        TD_CHECK(td_node_save(node, ct));
        stt = k++;
        if (aux0) {
            TD_CHECK(td_node_save(node, aux0));
            s0 = k++;
        }
        if (aux1) {
            TD_CHECK(td_node_save(node, aux1));
            s1i = k++;
        }
        if (cw) {
            TD_CHECK(td_node_save(node, cw));
            sw = k++;
        }
        int64_t ia[12] = {q->kind, n, c, inner, q->ignore_index, q->reduction,
                          (prob ? F_PROB : 0) | (cw ? F_WEIGHT : 0), sx, stt, s0, s1i, sw};
        memcpy(node->iargs, ia, sizeof ia);
        if (q->kind == TD_SMX_FOCAL)
            node->dargs[0] = q->alpha_value, node->dargs[1] = q->gamma;
        else
            node->dargs[0] = q->smoothing, node->dargs[1] = q->epsilon;
        node->dargs[2] = den;
        td_node_attach(node, res);
        node = NULL;
    }
    *out = res;
    res = NULL;
fail:
    td_node_release(node);
    td_tensor_release(cx);
    td_tensor_release(ct);
    td_tensor_release(cw);
    td_tensor_release(loss);
    td_tensor_release(aux0);
    td_tensor_release(aux1);
    td_tensor_release(res);
    return st;
}

td_status td_cross_entropy(td_tensor *input, td_tensor *target, const td_cross_entropy_opts *o, td_tensor **out)
{
    smx_req q = {"cross_entropy", TD_SMX_CE, o->weight, o->ignore_index, o->label_smoothing, 0, 0, 1, o->reduction};
    return smx_loss(&q, input, target, out);
}

td_status td_nll_loss(td_tensor *input, td_tensor *target, const td_nll_loss_opts *o, td_tensor **out)
{
    smx_req q = {"nll_loss", TD_SMX_NLL, o->weight, o->ignore_index, 0, 0, 0, 1, o->reduction};
    return smx_loss(&q, input, target, out);
}

td_status td_focal_loss(td_tensor *input, td_tensor *target, const td_focal_loss_opts *o, td_tensor **out)
{
    smx_req q = {"focal_loss", TD_SMX_FOCAL, o->alpha, o->ignore_index, 0, o->gamma, 0, o->alpha_value,
                 o->reduction};
    return smx_loss(&q, input, target, out);
}

td_status td_poly1_cross_entropy(td_tensor *input, td_tensor *target, const td_poly1_cross_entropy_opts *o,
                                 td_tensor **out)
{
    smx_req q = {"poly1_cross_entropy", TD_SMX_POLY1, o->weight, o->ignore_index, o->label_smoothing, 0,
                 o->epsilon, 1, o->reduction};
    return smx_loss(&q, input, target, out);
}
