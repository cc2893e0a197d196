/* The softmax losses' front-ends: cross_entropy, nll_loss, focal_loss,
 * poly1_cross_entropy. One path for all four: check every argument once,
 * one fused kernel call for the per-row losses, the fixed-order reduction,
 * then one autograd node whose backward is the closed-form kernel.
 * Argument numbers in errors are the Lua call's: 1 input, 2 target, 3 the
 * options table. */
#include "loss_family.h"

#include <math.h>
#include <stdio.h>

/* what backward needs */
typedef struct {
    td_smx_args a; /* the kernel's arguments, pointers filled in backward */
    td_reduction reduction;
    double den;                                   /* the mean's divisor */
    bool prob;                                    /* class-probability targets */
    td_tensor *x, *target, *aux0, *aux1, *weight; /* saved; x NULL for nll_loss */
    td_tensor *gx; /* input's gradient for a seed of 1, written by the forward; or NULL */
} smx_ctx;

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

static td_status check_class_vector(const td_loss_def *q, td_tensor *v, const char *opt,
                                    const td_tensor *x, int64_t c)
{
    if (v->dtype != x->dtype)
        return td_error(TD_EDTYPE, 3, "%s: %s must be %s like input, got %s", q->name, opt,
                        td_dtype_name(x->dtype), td_dtype_name(v->dtype));
    if (v->ndim != 1 || v->shape[0] != c) {
        char s[160];
        td_shape_str(v, s, sizeof s);
        return td_error(TD_ESHAPE, 3, "%s: %s must have shape (%lld), one value per class, got %s",
                        q->name, opt, (long long)c, s);
    }
    return TD_OK;
}

static td_status smx_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    const smx_ctx *c = nd->ctx;
    td_smx_args a = c->a;
    td_dtype dt = a.dtype;
    a.x = c->x ? td_data_ptr(c->x) : NULL;
    if (c->prob)
        a.prob = td_data_ptr(c->target);
    else
        a.target = td_data_ptr(c->target);
    if (c->weight) {
        if (TD_SMX_IS_FOCAL(a.kind))
            a.alpha = td_data_ptr(c->weight);
        else
            a.weight = td_data_ptr(c->weight);
    }
    td_reduction red = c->reduction;
    td_tensor *aux0 = c->aux0, *aux1 = c->aux1;
    if (c->gx) { /* the forward wrote it: scale it by the seed unless that is 1 */
        double seed = 1;
        TD_TRY(td_read_flat(g, 0, &seed));
        td_tensor *pre = td_node_take(nd, &((smx_ctx *)nd->ctx)->gx);
        td_status st = TD_OK;
        if (seed == 1) {
            gi[0] = pre;
            return TD_OK;
        }
        st = td_binary_scalar(TD_MUL, pre, seed, false, &gi[0]);
        td_tensor_release(pre);
        return st;
    }

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
        if (red == TD_REDUCE_MEAN) scale /= c->den;
    }
    bool want_x = nd->next[0] != NULL, want_t = c->prob && nd->n_next > 1 && nd->next[1];
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

/* the node's context from a filled-in template whose tensors are the ones
 * to keep */
static td_status smx_fill(td_node *node, void *ctx, const void *arg)
{
    const smx_ctx *f = arg;
    smx_ctx *k = ctx;
    *k = *f;
    k->a.x = NULL, k->a.target = NULL, k->a.prob = NULL, k->a.weight = NULL, k->a.alpha = NULL;
    td_tensor **keep[6] = {&k->x, &k->target, &k->aux0, &k->aux1, &k->weight, &k->gx};
    for (int i = 0; i < 6; i++) {
        td_tensor *t = *keep[i];
        *keep[i] = NULL;
        if (t) TD_TRY(td_node_keep(node, t, keep[i]));
    }
    return TD_OK;
}

/* tide.tensor({0, 2, 1}) is float32, as torch.tensor's floats are: the
 * usual way to get here, so the message says how to make indices */
#define INDEX_HINT                                                                                 \
    "labels from tide.tensor({...}) are float32: make them with tide.tensor(t, \"int64\") or "     \
    "convert them with y:long()"

td_status td_softmax_loss_run(const td_loss_def *q, td_tensor *const *in, const void *opts,
                              td_tensor **out)
{
    const td_softmax_loss_opts *o = opts;
    td_tensor *x = in[0], *target = in[1];
    td_smx_kind kind = (td_smx_kind)q->kind;
    td_tensor *weight = TD_SMX_IS_FOCAL(kind) ? o->alpha : o->weight;
    char s1[160], s2[160];
    if (!td_dtype_is_float(x->dtype))
        return td_error(TD_EDTYPE, 1, "%s: input must be float32 or float64, got %s", q->name,
                        td_dtype_name(x->dtype));
    if (x->ndim < 1)
        return td_error(TD_ESHAPE, 1, "%s: input must have a class dim, got a 0-dim tensor",
                        q->name);
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
        if (kind == TD_SMX_CE && td_same_shape(target, x)) {
            prob = true;
            if (target->dtype != x->dtype)
                return td_error(TD_EDTYPE, 2,
                                "%s: class probabilities must be %s like input, got %s", q->name,
                                td_dtype_name(x->dtype), td_dtype_name(target->dtype));
        } else {
            td_shape_str(target, s1, sizeof s1);
            td_shape_str(x, s2, sizeof s2);
            if (kind == TD_SMX_CE)
                return td_error(TD_EDTYPE, 2,
                                "%s: a %s target of shape %s is neither int64 class indices nor "
                                "class probabilities of input's shape %s; " INDEX_HINT,
                                q->name, td_dtype_name(target->dtype), s1, s2);
            return td_error(TD_EDTYPE, 2,
                            "%s: target must be int64 class indices, got %s (a float target is "
                            "not accepted here); " INDEX_HINT,
                            q->name, td_dtype_name(target->dtype));
        }
    } else if (target->dtype != TD_INT64) {
        return td_error(TD_EDTYPE, 2,
                        "%s: target must be int64 class indices, got %s; convert it with y:long()",
                        q->name, td_dtype_name(target->dtype));
    } else if (target->ndim != tnd ||
               memcmp(target->shape, tshape, sizeof(int64_t) * (size_t)tnd) != 0) {
        td_shape_str(target, s1, sizeof s1);
        td_shape_str(x, s2, sizeof s2);
        char es[160];
        shape_of(tnd, tshape, es, sizeof es);
        if (td_same_shape(target, x) && kind == TD_SMX_CE)
            return td_error(
                TD_EDTYPE, 2,
                "%s: an int64 target of input's shape %s: class probabilities must be %s, "
                "class indices have shape %s",
                q->name, s1, td_dtype_name(x->dtype), es);
        return td_error(TD_ESHAPE, 2,
                        "%s: target shape %s does not match input shape %s (expected %s)", q->name,
                        s1, s2, es);
    }
    td_tensor *on[3] = {x, target, weight};
    TD_TRY(td_same_device(3, on));
    const td_backend *be = td_backend_of(x);
    if (weight)
        TD_TRY(check_class_vector(q, weight, TD_SMX_IS_FOCAL(kind) ? "alpha" : "weight", x, c));
    if (prob && o->ignore_index >= 0)
        return td_error(TD_EINVAL, 3,
                        "%s: ignore_index (%lld) is not supported with class-probability targets",
                        q->name, (long long)o->ignore_index);

    td_tensor *cx = NULL, *ct = NULL, *cw = NULL, *loss = NULL, *aux0 = NULL, *aux1 = NULL,
              *res = NULL, *gx = NULL;
    td_status st = TD_OK;
    TD_CHECK(td_dense_raw(x, x->dtype, false, &cx));
    TD_CHECK(td_dense_raw(target, target->dtype, false, &ct));
    if (weight) TD_CHECK(td_dense_raw(weight, weight->dtype, false, &cw));
    td_smx_args a = {0};
    a.kind = kind;
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
        if (TD_SMX_IS_FOCAL(kind))
            a.alpha = td_data_ptr(cw);
        else
            a.weight = td_data_ptr(cw);
    }
    a.alpha_scalar = TD_SMX_IS_FOCAL(kind) ? o->alpha_value : 1;
    a.ignore_index = o->ignore_index;
    a.smoothing = kind == TD_SMX_CE || TD_SMX_IS_POLY(kind) ? o->label_smoothing : 0;
    a.gamma = TD_SMX_IS_FOCAL(kind) ? o->gamma : 0;
    a.epsilon = TD_SMX_IS_POLY(kind) ? o->epsilon : 0;
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
            st = td_error(
                TD_ERANGE, 2,
                "%s: target %lld at %s is out of range for %lld classes (valid: 0 to %lld%s)",
                q->name, (long long)tv, s1, (long long)c, (long long)(c - 1),
                o->ignore_index == -100 ? ", or ignore_index -100" : ", or ignore_index");
            goto fail;
        }
        den = TD_SMX_IS_FOCAL(kind) ? (double)count : wsum;
    }
    td_device dev = td_device_of(x);
    TD_CHECK(td_empty_on(tnd, tshape, x->dtype, dev, &loss));
    bool has_aux0 = kind != TD_SMX_NLL, has_aux1 = TD_SMX_IS_FOCAL(kind) || prob;
    int64_t rows2 = 2 * rows;
    if (has_aux0) TD_CHECK(td_empty_on(1, &rows2, x->dtype, dev, &aux0));
    if (has_aux1) TD_CHECK(td_empty_on(1, &rows, x->dtype, dev, &aux1));
    /* A reduced loss whose input wants a gradient gets it now, in the
     * forward's pass over the logits (see forward_grad); a target that
     * wants one too (class probabilities) takes the two-pass way. */
    bool fuse = be->softmax_loss->forward_grad && o->reduction != TD_REDUCE_NONE &&
                td_needs_grad(1, &x) && !(prob && td_needs_grad(1, &target));
    if (fuse) {
        TD_CHECK(td_empty_on(x->ndim, x->shape, x->dtype, dev, &gx));
        be->softmax_loss->forward_grad(
            &a, td_data_ptr(loss), aux0 ? td_data_ptr(aux0) : NULL, aux1 ? td_data_ptr(aux1) : NULL,
            o->reduction == TD_REDUCE_MEAN ? 1 / den : 1, td_data_ptr(gx));
    } else {
        be->softmax_loss->forward(&a, td_data_ptr(loss), aux0 ? td_data_ptr(aux0) : NULL,
                                  aux1 ? td_data_ptr(aux1) : NULL);
    }
    smx_ctx fa = {a,  o->reduction, den,  prob, kind != TD_SMX_NLL ? cx : NULL,
                  ct, aux0,         aux1, cw,   gx};
    TD_CHECK(td_loss_record(q, loss, o->reduction, den, prob ? 2 : 1, in, smx_backward,
                            sizeof(smx_ctx), smx_fill, &fa, &res));
    *out = res;
    res = NULL;
fail:
    td_tensor_release(cx);
    td_tensor_release(ct);
    td_tensor_release(cw);
    td_tensor_release(loss);
    td_tensor_release(aux0);
    td_tensor_release(aux1);
    td_tensor_release(gx);
    td_tensor_release(res);
    return st;
}
