/* scaled_dot_product_attention's front-end: check every argument once,
 * flatten the leading dims into bh, one fused kernel call
 * (kernels/attention.h), and one autograd node whose backward recomputes
 * the probabilities from the saved logsumexp. The mask is read in place
 * through strides (a (L, S) mask beside (N, H, L, S) queries is never
 * expanded); it is copied only when its broadcast leading dims cannot be
 * walked with one stride. Argument numbers in errors are the Lua call's:
 * 1 query, 2 key, 3 value, 4 the options table. */
#include "internal.h"

#include <math.h>
#include <stdio.h>

#define FN "scaled_dot_product_attention"

typedef struct {
    td_attn_args args;
    td_tensor *q, *k, *v, *mask, *out, *lse; /* as the kernels read them */
} sdpa_ctx;

static td_status sdpa_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    const sdpa_ctx *c = nd->ctx;
    td_tensor *cg = NULL, *gq = NULL, *gk = NULL, *gv = NULL;
    td_status st = TD_OK;
    td_device dev = td_device_of(c->q);
    TD_CHECK(td_dense_raw(g, c->args.dtype, false, &cg));
    TD_CHECK(td_empty_on(c->q->ndim, c->q->shape, c->args.dtype, dev, &gq));
    TD_CHECK(td_empty_on(c->k->ndim, c->k->shape, c->args.dtype, dev, &gk));
    TD_CHECK(td_empty_on(c->v->ndim, c->v->shape, c->args.dtype, dev, &gv));
    if (td_numel(gq) + td_numel(gk) + td_numel(gv) > 0 && c->args.bh > 0)
        TD_CHECK(td_backend_of(c->q)->attention->backward(
            &c->args, td_data_ptr(c->q), td_data_ptr(c->k), td_data_ptr(c->v),
            c->mask ? td_data_ptr(c->mask) : NULL, td_data_ptr(c->out), td_data_ptr(c->lse),
            td_data_ptr(cg), td_data_ptr(gq), td_data_ptr(gk), td_data_ptr(gv)));
    td_tensor *gs[3] = {gq, gk, gv};
    for (int i = 0; i < 3; i++) {
        if (nd->next[i]) {
            gi[i] = gs[i];
            gs[i] = NULL;
        }
    }
    gq = gs[0], gk = gs[1], gv = gs[2];
fail:
    td_tensor_release(cg);
    td_tensor_release(gq);
    td_tensor_release(gk);
    td_tensor_release(gv);
    return st;
}

static td_status check_qkv(td_tensor *q, td_tensor *k, td_tensor *v)
{
    char s1[160], s2[160], s3[160];
    td_tensor *ts[3] = {q, k, v};
    const char *names[3] = {"query", "key", "value"};
    for (int i = 0; i < 3; i++) {
        TD_TRY(td_need_float(ts[i]->dtype, i + 1, FN, names[i]));
        if (ts[i]->dtype != q->dtype)
            return td_error(TD_EDTYPE, i + 1, FN ": %s must be %s like query, got %s", names[i],
                            td_dtype_name(q->dtype), td_dtype_name(ts[i]->dtype));
        if (ts[i]->ndim < 2) {
            td_shape_str(ts[i], s1, sizeof s1);
            return td_error(TD_ESHAPE, i + 1,
                            FN ": %s must have at least 2 dims (..., len, dim), got %s", names[i],
                            s1);
        }
    }
    td_shape_str(q, s1, sizeof s1);
    td_shape_str(k, s2, sizeof s2);
    td_shape_str(v, s3, sizeof s3);
    int nd = q->ndim;
    bool klead = k->ndim == nd, vlead = v->ndim == nd;
    for (int d = 0; d < nd - 2; d++) {
        klead = klead && k->shape[d] == q->shape[d];
        vlead = vlead && v->shape[d] == q->shape[d];
    }
    if (!klead || !vlead)
        return td_error(TD_ESHAPE, klead ? 3 : 2,
                        FN
                        ": query, key and value must share their leading dims, got %s, %s and %s",
                        s1, s2, s3);
    if (k->shape[nd - 1] != q->shape[nd - 1])
        return td_error(TD_ESHAPE, 2,
                        FN ": key's last dim must equal query's (%lld), got key %s for query %s",
                        (long long)q->shape[nd - 1], s2, s1);
    if (v->shape[nd - 2] != k->shape[nd - 2])
        return td_error(TD_ESHAPE, 3,
                        FN ": value must have as many rows as key (%lld), got value %s for key %s",
                        (long long)k->shape[nd - 2], s3, s2);
    return TD_OK;
}

/* true when dims [0, n) of t (strides st) walk as one index with one stride */
static bool collapses(int n, const int64_t *shape, const int64_t *stride, int64_t *out)
{
    int64_t s = 0, span = 1;
    bool set = false;
    for (int d = n - 1; d >= 0; d--) {
        if (shape[d] == 1) continue;
        if (!set) {
            s = stride[d];
            set = true;
        } else if (stride[d] != s * span) {
            return false;
        }
        span *= shape[d];
    }
    *out = s;
    return true;
}

/* the mask as a view over (lead..., L, S) and its four strides for the
 * kernel, copied to contiguous when its leading dims do not collapse */
static td_status mask_view(td_tensor *m, const td_tensor *q, int64_t l, int64_t s, td_attn_args *a,
                           td_tensor **out)
{
    char s1[160], s2[160];
    int nd = q->ndim;
    int64_t shape[TD_MAX_DIMS];
    memcpy(shape, q->shape, sizeof(int64_t) * (size_t)nd);
    shape[nd - 1] = s;
    shape[nd - 2] = l;
    bool fits = m->ndim <= nd;
    for (int i = 0; fits && i < m->ndim; i++) {
        int64_t ms = m->shape[m->ndim - 1 - i], ts = shape[nd - 1 - i];
        fits = ms == ts || ms == 1;
    }
    if (!fits) {
        td_shape_str(m, s1, sizeof s1);
        td_shape_str(q, s2, sizeof s2);
        return td_error(TD_ESHAPE, 4,
                        FN ": attn_mask %s does not broadcast to (..., L, S) = (..., %lld, %lld) "
                           "for query %s",
                        s1, (long long)l, (long long)s, s2);
    }
    if (m->dtype == TD_UINT8) {
        a->mask_kind = TD_ATTN_MASK_BOOL;
    } else if (m->dtype == q->dtype) {
        a->mask_kind = TD_ATTN_MASK_FLOAT;
    } else {
        return td_error(TD_EDTYPE, 4,
                        FN ": attn_mask must be uint8 (bool) or %s like query, got %s",
                        td_dtype_name(q->dtype), td_dtype_name(m->dtype));
    }
    td_tensor *bv = NULL, *dense = NULL;
    TD_TRY(td_broadcast_view(m, nd, shape, &bv));
    int no = nd > 3 ? nd - 3 : 0; /* the outer dims, before the head dim */
    int64_t so = 0;
    if (!collapses(no, bv->shape, bv->stride, &so)) {
        td_status st = td_contiguous(bv, &dense);
        td_tensor_release(bv);
        TD_TRY(st);
        bv = dense;
        collapses(no, bv->shape, bv->stride, &so);
    }
    a->mask_stride[0] = so;
    a->mask_stride[1] = nd >= 3 ? bv->stride[nd - 3] : 0;
    a->mask_stride[2] = bv->stride[nd - 2];
    a->mask_stride[3] = bv->stride[nd - 1];
    *out = bv;
    return TD_OK;
}

td_status td_scaled_dot_product_attention(td_tensor *q, td_tensor *k, td_tensor *v,
                                          const td_sdpa_opts *o, td_tensor **out)
{
    TD_TRY(check_qkv(q, k, v));
    td_tensor *devs[4] = {q, k, v, o->attn_mask};
    TD_TRY(td_same_device(o->attn_mask ? 4 : 3, devs));
    if (!(o->dropout_p >= 0 && o->dropout_p <= 1))
        return td_error(TD_EINVAL, 4, FN ": dropout_p must be in [0, 1], got %g", o->dropout_p);
    if (o->is_causal && o->attn_mask)
        return td_error(TD_EINVAL, 4,
                        FN ": attn_mask must not be given with is_causal = true (as PyTorch)");
    const td_backend *be = td_backend_of(q);
    if (!be->attention) return td_error(TD_EINVAL, 0, FN " is not implemented on %s yet", be->name);
    int nd = q->ndim;
    td_attn_args a = {0};
    a.dtype = q->dtype;
    a.l = q->shape[nd - 2], a.s = k->shape[nd - 2], a.e = q->shape[nd - 1];
    a.ev = v->shape[nd - 1];
    a.bh = 1;
    for (int d = 0; d < nd - 2; d++) a.bh *= q->shape[d];
    a.heads = nd >= 3 ? q->shape[nd - 3] : 1;
    a.causal = o->is_causal;
    a.scale = a.e > 0 ? 1 / sqrt((double)a.e) : 1;
    a.dropout_p = o->dropout_p;
    if (a.dropout_p > 0) a.key = td_random_u64();

    td_tensor *cq = NULL, *ck = NULL, *cv = NULL, *cm = NULL, *y = NULL, *lse = NULL;
    td_status st = TD_OK;
    int64_t yshape[TD_MAX_DIMS];
    memcpy(yshape, q->shape, sizeof(int64_t) * (size_t)nd);
    yshape[nd - 1] = a.ev;
    if (o->attn_mask) TD_CHECK(mask_view(o->attn_mask, q, a.l, a.s, &a, &cm));
    TD_CHECK(td_dense_raw(q, a.dtype, false, &cq));
    TD_CHECK(td_dense_raw(k, a.dtype, false, &ck));
    TD_CHECK(td_dense_raw(v, a.dtype, false, &cv));
    if (a.s == 0) { /* no key: the product with an empty value is zeros */
        TD_CHECK(td_full_on(nd, yshape, 0, a.dtype, td_device_of(q), &y));
    } else {
        int64_t lshape[2] = {a.bh, a.l};
        TD_CHECK(td_empty_on(nd, yshape, a.dtype, td_device_of(q), &y));
        TD_CHECK(td_empty_on(2, lshape, a.dtype, td_device_of(q), &lse));
        if (a.bh * a.l > 0)
            TD_CHECK(be->attention->forward(&a, td_data_ptr(cq), td_data_ptr(ck), td_data_ptr(cv),
                                            cm ? td_data_ptr(cm) : NULL, td_data_ptr(y),
                                            td_data_ptr(lse)));
    }
    td_tensor *ins[3] = {q, k, v};
    if (a.s > 0 && td_needs_grad(3, ins)) {
        td_node *node = NULL;
        sdpa_ctx *ctx = NULL;
        TD_CHECK(td_node_new("ScaledDotProductAttentionBackward", sdpa_backward, 3, ins, &node));
        st = TD_NODE_CTX(node, &ctx);
        if (st == TD_OK) {
            ctx->args = a;
            st = td_node_keep(node, cq, &ctx->q);
        }
        if (st == TD_OK) st = td_node_keep(node, ck, &ctx->k);
        if (st == TD_OK) st = td_node_keep(node, cv, &ctx->v);
        if (st == TD_OK) st = td_node_keep(node, y, &ctx->out);
        if (st == TD_OK) st = td_node_keep(node, lse, &ctx->lse);
        if (st == TD_OK && cm) st = td_node_keep(node, cm, &ctx->mask);
        TD_CHECK(td_node_finish(node, st, y));
    }
    *out = y;
    y = NULL;
fail:
    td_tensor_release(cq);
    td_tensor_release(ck);
    td_tensor_release(cv);
    td_tensor_release(cm);
    td_tensor_release(lse);
    td_tensor_release(y);
    return st;
}
