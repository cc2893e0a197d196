/* Matrix products. mm and bmm reach the backend's GEMM with transpose
 * flags instead of copies wherever a view's strides allow; matmul reduces
 * every case (vectors, broadcast batches) to them, so its gradient comes
 * from theirs. */
#include "internal.h"
#include "tide/autocast.h"

/* how a (rows, cols) matrix view reaches GEMM without a copy */
typedef struct {
    bool trans;
    int64_t ld;
} mat_layout;

static bool layout_of(int64_t rows, int64_t cols, int64_t s_row, int64_t s_col, mat_layout *l)
{
    /* strides of a dim of size 1 never matter: give them the value that fits */
    int64_t sr = rows == 1 ? (cols > 1 ? cols : 1) : s_row, sc = cols == 1 ? 1 : s_col;
    if (sc == 1 && sr >= (cols > 1 ? cols : 1)) {
        l->trans = false;
        l->ld = sr;
        return true;
    }
    sr = rows == 1 ? 1 : s_row;
    sc = cols == 1 ? (rows > 1 ? rows : 1) : s_col;
    if (sr == 1 && sc >= (rows > 1 ? rows : 1)) {
        l->trans = true;
        l->ld = sc;
        return true;
    }
    return false;
}

static td_status check_mm_dtypes(const td_tensor *a, const td_tensor *b, const char *fn)
{
    if (a->dtype != b->dtype)
        return td_error(TD_EDTYPE, 2, "%s: both operands must have the same dtype, got %s and %s",
                        fn, td_dtype_name(a->dtype), td_dtype_name(b->dtype));
    if (a->dtype == TD_UINT8)
        return td_error(TD_EDTYPE, 1, "%s is not defined for uint8 tensors", fn);
    return TD_OK; /* bfloat16, float16: summed in float32 (docs/precision.md) */
}

/* c (batch, m, n) = a (batch, m, k) b (batch, k, n); a, b 3-D views */
static td_status gemm3(td_tensor *a, td_tensor *b, td_tensor *c)
{
    int64_t batch = a->shape[0], m = a->shape[1], k = a->shape[2], n = b->shape[2];
    td_tensor *ca = a, *cb = b;
    mat_layout la = {false, 1}, lb = {false, 1};
    td_status st = TD_OK;
    td_tensor_retain(ca);
    td_tensor_retain(cb);
    if (!layout_of(m, k, a->stride[1], a->stride[2], &la)) {
        td_tensor_release(ca);
        ca = NULL;
        TD_CHECK(td_empty_on(3, a->shape, a->dtype, td_device_of(a), &ca));
        td_backend_of(a)->copy(ca, a);
        layout_of(m, k, ca->stride[1], ca->stride[2], &la);
    }
    if (!layout_of(k, n, b->stride[1], b->stride[2], &lb)) {
        td_tensor_release(cb);
        cb = NULL;
        TD_CHECK(td_empty_on(3, b->shape, b->dtype, td_device_of(b), &cb));
        td_backend_of(b)->copy(cb, b);
        layout_of(k, n, cb->stride[1], cb->stride[2], &lb);
    }
    int64_t sa = batch > 1 ? ca->stride[0] : 0, sb = batch > 1 ? cb->stride[0] : 0;
    st = td_backend_of(a)->gemm(a->dtype, batch, la.trans, lb.trans, m, n, k, 1.0, td_data_ptr(ca),
                                la.ld, sa, td_data_ptr(cb), lb.ld, sb, 0.0, td_data_ptr(c), n,
                                m * n);
fail:
    td_tensor_release(ca);
    td_tensor_release(cb);
    return st;
}

static td_status as3d(td_tensor *t, td_tensor **out)
{
    if (t->ndim == 3) return td_make_view(t, 3, t->shape, t->stride, t->offset, out);
    int64_t shape[3] = {1, t->shape[0], t->shape[1]};
    int64_t stride[3] = {0, t->stride[0], t->stride[1]};
    return td_make_view(t, 3, shape, stride, t->offset, out);
}

typedef struct {
    td_tensor *a, *b;
    bool batched;
} mm_ctx;

static td_status mm_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const mm_ctx *c = n->ctx;
    td_tensor *t = NULL;
    td_status st;
    int d0 = c->batched ? 1 : 0, d1 = d0 + 1;
    if (n->next[0]) { /* g b^T */
        TD_CHECK(td_transpose(c->b, d0, d1, &t));
        TD_CHECK(c->batched ? td_bmm(g, t, &gi[0]) : td_mm(g, t, &gi[0]));
        td_tensor_release(t);
        t = NULL;
    }
    if (n->next[1]) { /* a^T g */
        TD_CHECK(td_transpose(c->a, d0, d1, &t));
        TD_CHECK(c->batched ? td_bmm(t, g, &gi[1]) : td_mm(t, g, &gi[1]));
    }
fail:
    td_tensor_release(t);
    return st;
}

static td_status product(td_tensor *a, td_tensor *b, bool batched, td_tensor **out)
{
    const char *fn = batched ? "bmm" : "mm";
    int want = batched ? 3 : 2;
    if (a->ndim != want)
        return td_error(TD_ESHAPE, 1, "%s expects %d-dim tensors, got %d dims", fn, want, a->ndim);
    if (b->ndim != want)
        return td_error(TD_ESHAPE, 2, "%s expects %d-dim tensors, got %d dims", fn, want, b->ndim);
    TD_TRY(check_mm_dtypes(a, b, fn));
    int o = batched;
    char x[128], y[128];
    if (a->shape[o + 1] != b->shape[o] || (batched && a->shape[0] != b->shape[0]))
        return td_error(TD_ESHAPE, 1, "shapes %s and %s cannot be multiplied",
                        td_shape_str(a, x, sizeof x), td_shape_str(b, y, sizeof y));
    int64_t shape[3];
    if (batched) {
        shape[0] = a->shape[0];
        shape[1] = a->shape[1];
        shape[2] = b->shape[2];
    } else {
        shape[0] = a->shape[0];
        shape[1] = b->shape[1];
    }
    td_tensor *ab[2] = {a, b};
    TD_TRY(td_same_device(2, ab));
    td_tensor *c = NULL, *a3 = NULL, *b3 = NULL, *c3 = NULL;
    td_status st;
    TD_CHECK(td_empty_on(want, shape, a->dtype, td_device_of(a), &c));
    TD_CHECK(as3d(a, &a3));
    TD_CHECK(as3d(b, &b3));
    TD_CHECK(as3d(c, &c3));
    TD_CHECK(gemm3(a3, b3, c3));
    td_tensor *in[2] = {a, b};
    if (td_dtype_is_float(a->dtype) && td_needs_grad(2, in)) {
        td_node *node;
        mm_ctx *ctx = NULL;
        TD_CHECK(td_node_new(batched ? "BmmBackward" : "MmBackward", mm_backward, 2, in, &node));
        st = TD_NODE_CTX(node, &ctx);
        if (st == TD_OK) {
            ctx->batched = batched;
            st = td_node_keep(node, a, &ctx->a);
        }
        if (st == TD_OK) st = td_node_keep(node, b, &ctx->b);
        TD_CHECK(td_node_finish(node, st, c));
    }
    *out = c;
    c = NULL;
fail:
    td_tensor_release(c);
    td_tensor_release(a3);
    td_tensor_release(b3);
    td_tensor_release(c3);
    return st;
}

/* under autocast: the op again on its cast inputs, autocast suspended */
static td_status autocast2(td_status (*op)(td_tensor *, td_tensor *, td_tensor **), td_tensor *a,
                           td_tensor *b, td_tensor **out)
{
    td_tensor *in[2] = {a, b}, *c[2];
    int depth;
    TD_TRY(td_autocast_begin(2, in, c, &depth));
    td_status st = op(c[0], c[1], out);
    td_autocast_end(2, c, depth);
    return st;
}

td_status td_mm(td_tensor *a, td_tensor *b, td_tensor **out)
{
    if (td_autocast_enabled()) return autocast2(td_mm, a, b, out);
    return product(a, b, false, out);
}

td_status td_bmm(td_tensor *a, td_tensor *b, td_tensor **out)
{
    if (td_autocast_enabled()) return autocast2(td_bmm, a, b, out);
    return product(a, b, true, out);
}

/* ---- matmul: numpy's rules ------------------------------------------- */

static td_status matmul_batched(td_tensor *a, td_tensor *b, td_tensor **out)
{
    /* a (..., n, k), b (..., k, p), both at least 2-D here */
    int na = a->ndim - 2, nb = b->ndim - 2, nbatch = na > nb ? na : nb;
    int64_t batch[TD_MAX_DIMS];
    int64_t total = 1;
    for (int i = 0; i < nbatch; i++) {
        int ia = i - (nbatch - na), ib = i - (nbatch - nb);
        int64_t sa = ia >= 0 ? a->shape[ia] : 1, sb = ib >= 0 ? b->shape[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1) {
            char x[128], y[128];
            return td_error(TD_ESHAPE, 1,
                            "shapes %s and %s cannot be multiplied (batch dims do not broadcast)",
                            td_shape_str(a, x, sizeof x), td_shape_str(b, y, sizeof y));
        }
        batch[i] = sa == 1 ? sb : sa;
        total *= batch[i];
    }
    int64_t sa[TD_MAX_DIMS], sb[TD_MAX_DIMS], s3a[3], s3b[3];
    memcpy(sa, batch, sizeof(int64_t) * (size_t)nbatch);
    memcpy(sb, batch, sizeof(int64_t) * (size_t)nbatch);
    sa[nbatch] = a->shape[a->ndim - 2];
    sa[nbatch + 1] = a->shape[a->ndim - 1];
    sb[nbatch] = b->shape[b->ndim - 2];
    sb[nbatch + 1] = b->shape[b->ndim - 1];
    s3a[0] = s3b[0] = total;
    s3a[1] = sa[nbatch];
    s3a[2] = sa[nbatch + 1];
    s3b[1] = sb[nbatch];
    s3b[2] = sb[nbatch + 1];
    td_tensor *ea = NULL, *eb = NULL, *ra = NULL, *rb = NULL, *c = NULL;
    td_status st;
    TD_CHECK(td_expand(a, nbatch + 2, sa, &ea));
    TD_CHECK(td_expand(b, nbatch + 2, sb, &eb));
    TD_CHECK(td_reshape(ea, 3, s3a, &ra));
    TD_CHECK(td_reshape(eb, 3, s3b, &rb));
    TD_CHECK(td_bmm(ra, rb, &c));
    int64_t so[TD_MAX_DIMS];
    memcpy(so, batch, sizeof(int64_t) * (size_t)nbatch);
    so[nbatch] = s3a[1];
    so[nbatch + 1] = s3b[2];
    TD_CHECK(td_view(c, nbatch + 2, so, out));
fail:
    td_tensor_release(ea);
    td_tensor_release(eb);
    td_tensor_release(ra);
    td_tensor_release(rb);
    td_tensor_release(c);
    return st;
}

td_status td_matmul(td_tensor *a, td_tensor *b, td_tensor **out)
{
    if (td_autocast_enabled()) return autocast2(td_matmul, a, b, out);
    char x[128], y[128];
    if (a->ndim == 0 || b->ndim == 0)
        return td_error(TD_ESHAPE, a->ndim == 0 ? 1 : 2,
                        "matmul needs tensors of at least 1 dim, got shapes %s and %s",
                        td_shape_str(a, x, sizeof x), td_shape_str(b, y, sizeof y));
    TD_TRY(check_mm_dtypes(a, b, "matmul"));
    int64_t ka = a->shape[a->ndim - 1], kb = b->shape[b->ndim == 1 ? 0 : b->ndim - 2];
    if (ka != kb)
        return td_error(TD_ESHAPE, 1, "shapes %s and %s cannot be multiplied",
                        td_shape_str(a, x, sizeof x), td_shape_str(b, y, sizeof y));
    td_tensor *a2 = NULL, *b2 = NULL, *c = NULL, *flat = NULL;
    td_status st;
    /* vectors become matrices, and the added dim is dropped at the end */
    if (a->ndim == 1)
        TD_CHECK(td_unsqueeze(a, 0, &a2));
    else
        td_tensor_retain(a2 = a);
    if (b->ndim == 1)
        TD_CHECK(td_unsqueeze(b, 1, &b2));
    else
        td_tensor_retain(b2 = b);
    if (a2->ndim == 2 && b2->ndim == 2) {
        TD_CHECK(td_mm(a2, b2, &c));
    } else if (b2->ndim == 2) { /* fold a's batch into rows: one GEMM */
        /* not numel / ka: ka may be 0 */
        int64_t rows = td_shape_numel(a2->ndim - 1, a2->shape), shape2[2] = {rows, ka},
                so[TD_MAX_DIMS];
        td_tensor *m = NULL;
        TD_CHECK(td_reshape(a2, 2, shape2, &flat));
        st = td_mm(flat, b2, &m);
        if (st != TD_OK) goto fail;
        memcpy(so, a2->shape, sizeof(int64_t) * (size_t)a2->ndim);
        so[a2->ndim - 1] = b2->shape[1];
        st = td_view(m, a2->ndim, so, &c);
        td_tensor_release(m);
        if (st != TD_OK) goto fail;
    } else {
        TD_CHECK(matmul_batched(a2, b2, &c));
    }
    if (a->ndim == 1 && b->ndim == 1) {
        TD_CHECK(td_view(c, 0, NULL, out));
    } else if (a->ndim == 1) {
        TD_CHECK(td_squeeze(c, -2, false, out));
    } else if (b->ndim == 1) {
        TD_CHECK(td_squeeze(c, -1, false, out));
    } else {
        td_tensor_retain(*out = c);
    }
fail:
    td_tensor_release(a2);
    td_tensor_release(b2);
    td_tensor_release(c);
    td_tensor_release(flat);
    return st;
}

td_status td_addmm(td_tensor *input, td_tensor *a, td_tensor *b, double beta, double alpha,
                   td_tensor **out)
{
    if (td_autocast_enabled()) {
        td_tensor *in[3] = {input, a, b}, *c[3];
        int depth;
        TD_TRY(td_autocast_begin(3, in, c, &depth));
        td_status st = td_addmm(c[0], c[1], c[2], beta, alpha, out);
        td_autocast_end(3, c, depth);
        return st;
    }
    td_tensor *p = NULL, *sp = NULL, *si = NULL;
    td_status st;
    TD_CHECK(td_mm(a, b, &p));
    if (alpha != 1.0)
        TD_CHECK(td_binary_scalar(TD_MUL, p, alpha, false, &sp));
    else
        td_tensor_retain(sp = p);
    if (beta == 0.0) { /* PyTorch ignores input (even NaN) when beta is 0 */
        int nd;
        int64_t s[TD_MAX_DIMS];
        TD_CHECK(td_broadcast_shape(input, sp, &nd, s));
        td_tensor_retain(*out = sp);
        goto fail;
    }
    if (beta != 1.0)
        TD_CHECK(td_binary_scalar(TD_MUL, input, beta, false, &si));
    else
        td_tensor_retain(si = input);
    TD_CHECK(td_binary(TD_ADD, si, sp, out));
fail:
    td_tensor_release(p);
    td_tensor_release(sp);
    td_tensor_release(si);
    return st;
}

/* ---- which path products take (tide.backend_info) --------------------- */

td_status td_matmul_path(td_device dev, td_dtype dt, const char **out)
{
    TD_TRY(td_device_check(dev));
    const td_backend *be = td_backend_for(dev);
    *out = be && be->gemm_path ? be->gemm_path(dt) : "unknown";
    return TD_OK;
}
