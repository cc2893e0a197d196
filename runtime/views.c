/* Shape ops. Views rewrite shape, stride and offset over the same storage;
 * their backward maps the gradient back onto the input's shape. */
#include "internal.h"

#include <stdio.h>

/* ---- recording ------------------------------------------------------- */

/* *result = out, with a one-input node attached when x needs a gradient;
 * the node's context is a copy of the `size` bytes at ctx (none when size
 * is 0). On failure out is released. */
static td_status finish1(const char *name, td_backward_fn fn, td_tensor *x, td_tensor *out,
                         const void *ctx, size_t size, td_tensor **result)
{
    td_status st = TD_OK;
    if (td_needs_grad(1, &x)) {
        td_node *node;
        void *c = NULL;
        st = td_node_new(name, fn, 1, &x, &node);
        if (st == TD_OK) {
            if (size) st = td_node_ctx(node, size, &c);
            if (st == TD_OK && size) memcpy(c, ctx, size);
            st = td_node_finish(node, st, out);
        }
    }
    if (st != TD_OK) {
        td_tensor_release(out);
        return st;
    }
    *result = out;
    return TD_OK;
}

/* ---- reshaping views --------------------------------------------------- */

static td_status infer_shape(const td_tensor *t, int ndim, const int64_t *in, int64_t *shape)
{
    if (ndim > TD_MAX_DIMS)
        return td_error(TD_ESHAPE, 2, "tensors have at most %d dims, got %d", TD_MAX_DIMS, ndim);
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (in[i] == -1) {
            if (infer >= 0) return td_error(TD_ESHAPE, 2, "only one dimension can be -1");
            infer = i;
        } else if (in[i] < 0) {
            return td_error(TD_ESHAPE, 2, "invalid size %lld in dim %d", (long long)in[i], i);
        } else if (__builtin_mul_overflow(known, in[i], &known)) {
            return td_error(TD_ESHAPE, 2, "shape too large");
        }
        shape[i] = in[i];
    }
    int64_t n = td_numel(t);
    char buf[128];
    if (infer >= 0) {
        if (known == 0 || n % known != 0)
            return td_error(TD_ESHAPE, 2,
                            "shape with -1 cannot hold %lld elements of a tensor of shape %s",
                            (long long)n, td_shape_str(t, buf, sizeof buf));
        shape[infer] = n / known;
    } else if (known != n) {
        return td_error(TD_ESHAPE, 2,
                        "shape of %lld elements does not fit a tensor of shape %s (%lld elements)",
                        (long long)known, td_shape_str(t, buf, sizeof buf), (long long)n);
    }
    return TD_OK;
}

/* strides for viewing t as shape without copying, or false when the memory
 * layout does not allow it (PyTorch's rule: each run of merged input dims
 * must be contiguous within itself) */
static bool view_strides(const td_tensor *t, int ndim, const int64_t *shape, int64_t *stride)
{
    if (td_numel(t) == 0 || td_is_contiguous(t)) {
        td_contiguous_strides(ndim, shape, stride);
        return true;
    }
    /* walk the input's dims from the innermost, in chunks that are
     * contiguous among themselves; each chunk must map onto whole view dims */
    int64_t base = t->ndim ? t->stride[t->ndim - 1] : 1;
    int vi = ndim - 1;
    int64_t tensor_numel = 1, view_numel = 1;
    for (int ti = t->ndim - 1; ti >= 0; ti--) {
        tensor_numel *= t->shape[ti];
        if (ti == 0 || (t->shape[ti - 1] != 1 && t->stride[ti - 1] != tensor_numel * base)) {
            while (vi >= 0 && (view_numel < tensor_numel || shape[vi] == 1)) {
                stride[vi] = view_numel * base;
                view_numel *= shape[vi];
                vi--;
            }
            if (view_numel != tensor_numel) return false;
            if (ti > 0) {
                base = t->stride[ti - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return vi == -1;
}

static td_status reshape_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    td_tensor *c = NULL;
    TD_TRY(td_contiguous(g, &c));
    td_status st = td_view(c, n->in_ndim[0], n->in_shape[0], gi);
    td_tensor_release(c);
    return st;
}

static td_status view_as(td_tensor *t, int ndim, const int64_t *shape, const char *name,
                         td_tensor **out)
{
    int64_t stride[TD_MAX_DIMS];
    if (!view_strides(t, ndim, shape, stride))
        return td_error(TD_ESHAPE, 1,
                        "this view's memory layout does not allow the new shape; use reshape, "
                        "which copies when it must");
    td_tensor *v = NULL;
    TD_TRY(td_make_view(t, ndim, shape, stride, t->offset, &v));
    return finish1(name, reshape_backward, t, v, NULL, 0, out);
}

td_status td_view(td_tensor *t, int ndim, const int64_t *shape, td_tensor **out)
{
    int64_t s[TD_MAX_DIMS];
    TD_TRY(infer_shape(t, ndim, shape, s));
    return view_as(t, ndim, s, "ViewBackward", out);
}

td_status td_reshape(td_tensor *t, int ndim, const int64_t *shape, td_tensor **out)
{
    int64_t s[TD_MAX_DIMS], stride[TD_MAX_DIMS];
    TD_TRY(infer_shape(t, ndim, shape, s));
    if (view_strides(t, ndim, s, stride)) return view_as(t, ndim, s, "ReshapeBackward", out);
    td_tensor *c = NULL;
    TD_TRY(td_contiguous(t, &c));
    td_status st = view_as(c, ndim, s, "ReshapeBackward", out);
    td_tensor_release(c);
    return st;
}

td_status td_flatten(td_tensor *t, int start, int end, td_tensor **out)
{
    int s, e;
    TD_TRY(td_wrap_dim(start, t->ndim, 2, &s));
    TD_TRY(td_wrap_dim(end, t->ndim, 3, &e));
    if (t->ndim == 0) {
        int64_t one = 1;
        return td_reshape(t, 1, &one, out);
    }
    if (s > e)
        return td_error(TD_ERANGE, 2, "flatten: start dim %d comes after end dim %d", start, end);
    int64_t shape[TD_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < s; i++) shape[k++] = t->shape[i];
    int64_t m = 1;
    for (int i = s; i <= e; i++) m *= t->shape[i];
    shape[k++] = m;
    for (int i = e + 1; i < t->ndim; i++) shape[k++] = t->shape[i];
    return td_reshape(t, k, shape, out);
}

td_status td_squeeze(td_tensor *t, int dim, bool all, td_tensor **out)
{
    int d = -1;
    if (!all) TD_TRY(td_wrap_dim(dim, t->ndim, 2, &d));
    int64_t shape[TD_MAX_DIMS], stride[TD_MAX_DIMS];
    int k = 0;
    for (int i = 0; i < t->ndim; i++) {
        bool drop = t->shape[i] == 1 && (all || i == d);
        if (!drop) {
            shape[k] = t->shape[i];
            stride[k++] = t->stride[i];
        }
    }
    td_tensor *v = NULL;
    TD_TRY(td_make_view(t, k, shape, stride, t->offset, &v));
    return finish1("SqueezeBackward", reshape_backward, t, v, NULL, 0, out);
}

td_status td_unsqueeze(td_tensor *t, int dim, td_tensor **out)
{
    int d;
    TD_TRY(td_wrap_dim(dim, t->ndim + 1, 2, &d));
    if (t->ndim >= TD_MAX_DIMS)
        return td_error(TD_ESHAPE, 1, "tensors have at most %d dims", TD_MAX_DIMS);
    int64_t shape[TD_MAX_DIMS], stride[TD_MAX_DIMS];
    for (int i = 0, k = 0; i <= t->ndim; i++) {
        if (i == d) {
            shape[i] = 1;
            stride[i] = d < t->ndim ? t->shape[d] * t->stride[d] : 1;
        } else {
            shape[i] = t->shape[k];
            stride[i] = t->stride[k++];
        }
    }
    td_tensor *v = NULL;
    TD_TRY(td_make_view(t, t->ndim + 1, shape, stride, t->offset, &v));
    return finish1("UnsqueezeBackward", reshape_backward, t, v, NULL, 0, out);
}

/* ---- transposition --------------------------------------------------- */

typedef struct {
    int dims[TD_MAX_DIMS]; /* wrapped */
} permute_ctx;

static td_status permute_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const permute_ctx *c = n->ctx;
    int inv[TD_MAX_DIMS];
    for (int i = 0; i < n->in_ndim[0]; i++) inv[c->dims[i]] = i;
    return td_permute(g, n->in_ndim[0], inv, gi);
}

td_status td_permute(td_tensor *t, int ndim, const int *dims, td_tensor **out)
{
    if (ndim != t->ndim)
        return td_error(TD_ESHAPE, 2, "permute needs %d dims for a %d-dim tensor, got %d", t->ndim,
                        t->ndim, ndim);
    int64_t shape[TD_MAX_DIMS], stride[TD_MAX_DIMS];
    permute_ctx c = {{0}};
    int *d = c.dims;
    bool seen[TD_MAX_DIMS] = {false};
    for (int i = 0; i < ndim; i++) {
        TD_TRY(td_wrap_dim(dims[i], ndim, 2, &d[i]));
        if (seen[d[i]]) return td_error(TD_EINVAL, 2, "permute: dim %d repeats", dims[i]);
        seen[d[i]] = true;
        shape[i] = t->shape[d[i]];
        stride[i] = t->stride[d[i]];
    }
    td_tensor *v = NULL;
    TD_TRY(td_make_view(t, ndim, shape, stride, t->offset, &v));
    return finish1("PermuteBackward", permute_backward, t, v, &c, sizeof c, out);
}

td_status td_transpose(td_tensor *t, int d0, int d1, td_tensor **out)
{
    int a, b;
    TD_TRY(td_wrap_dim(d0, t->ndim, 2, &a));
    TD_TRY(td_wrap_dim(d1, t->ndim, 3, &b));
    if (t->ndim == 0) return td_detach_view_like(t, out);
    int dims[TD_MAX_DIMS];
    for (int i = 0; i < t->ndim; i++) dims[i] = i;
    dims[a] = b;
    dims[b] = a;
    return td_permute(t, t->ndim, dims, out);
}

td_status td_t(td_tensor *t, td_tensor **out)
{
    if (t->ndim > 2)
        return td_error(TD_ESHAPE, 1,
                        "t() expects a tensor of at most 2 dims, got %d; use transpose", t->ndim);
    if (t->ndim < 2) return td_detach_view_like(t, out);
    return td_transpose(t, 0, 1, out);
}

/* ---- slicing --------------------------------------------------------- */

/* narrow (start, len) or select (start is the index) along a wrapped dim */
typedef struct {
    int dim;
    int64_t start, len;
    bool select;
} slice_ctx;

/* gradient of a slice: zeros of the input's shape with g written into the
 * same slice */
static td_status slice_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const slice_ctx *c = n->ctx;
    td_tensor *z, *v = NULL;
    TD_TRY(td_full_on(n->in_ndim[0], n->in_shape[0], 0.0, g->dtype, td_device_of(g), &z));
    td_status st;
    if (c->select)
        st = td_select(z, c->dim, c->start, &v);
    else
        st = td_narrow(z, c->dim, c->start, c->len, &v);
    if (st == TD_OK) st = td_copy_(v, g);
    td_tensor_release(v);
    if (st != TD_OK) {
        td_tensor_release(z);
        return st;
    }
    *gi = z;
    return TD_OK;
}

td_status td_narrow(td_tensor *t, int dim, int64_t start, int64_t len, td_tensor **out)
{
    int d;
    if (t->ndim == 0) return td_error(TD_ESHAPE, 1, "narrow() cannot be applied to a 0-dim tensor");
    TD_TRY(td_wrap_dim(dim, t->ndim, 2, &d));
    int64_t size = t->shape[d];
    if (start < 0) start += size;
    if (start < 0 || start > size)
        return td_error(TD_ERANGE, 3, "start %lld is out of range for dim %d of size %lld",
                        (long long)start, d, (long long)size);
    if (len < 0 || start + len > size)
        return td_error(TD_ERANGE, 4, "length %lld from start %lld exceeds dim %d of size %lld",
                        (long long)len, (long long)start, d, (long long)size);
    int64_t shape[TD_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[d] = len;
    td_tensor *v = NULL;
    TD_TRY(td_make_view(t, t->ndim, shape, t->stride, t->offset + start * t->stride[d], &v));
    slice_ctx c = {.dim = d, .start = start, .len = len, .select = false};
    return finish1("NarrowBackward", slice_backward, t, v, &c, sizeof c, out);
}

td_status td_select(td_tensor *t, int dim, int64_t index, td_tensor **out)
{
    int d;
    if (t->ndim == 0) return td_error(TD_ESHAPE, 1, "select() cannot be applied to a 0-dim tensor");
    TD_TRY(td_wrap_dim(dim, t->ndim, 2, &d));
    int64_t size = t->shape[d];
    int64_t i = index < 0 ? index + size : index;
    if (i < 0 || i >= size)
        return td_error(TD_ERANGE, 3, "index %lld is out of range for dim %d of size %lld",
                        (long long)index, d, (long long)size);
    int64_t shape[TD_MAX_DIMS], stride[TD_MAX_DIMS];
    for (int k = 0, j = 0; k < t->ndim; k++)
        if (k != d) {
            shape[j] = t->shape[k];
            stride[j++] = t->stride[k];
        }
    td_tensor *v = NULL;
    TD_TRY(td_make_view(t, t->ndim - 1, shape, stride, t->offset + i * t->stride[d], &v));
    slice_ctx c = {.dim = d, .start = i, .len = 0, .select = true};
    return finish1("SelectBackward", slice_backward, t, v, &c, sizeof c, out);
}

/* ---- broadcasting views ------------------------------------------------ */

static td_status expand_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    return td_sum_to_shape(g, n->in_ndim[0], n->in_shape[0], gi);
}

td_status td_expand(td_tensor *t, int ndim, const int64_t *shape, td_tensor **out)
{
    char a[128];
    if (ndim < t->ndim || ndim > TD_MAX_DIMS)
        return td_error(TD_ESHAPE, 2, "cannot expand a tensor of shape %s to %d dims",
                        td_shape_str(t, a, sizeof a), ndim);
    int64_t s[TD_MAX_DIMS], stride[TD_MAX_DIMS];
    int lead = ndim - t->ndim;
    for (int i = 0; i < ndim; i++) {
        int64_t want = shape[i];
        if (i < lead) {
            if (want < 0)
                return td_error(TD_ESHAPE, 2,
                                "expand: size -1 is not allowed for a new leading dim %d", i);
            s[i] = want;
            stride[i] = 0;
            continue;
        }
        int64_t have = t->shape[i - lead];
        if (want == -1) want = have;
        if (have == want) {
            s[i] = have;
            stride[i] = t->stride[i - lead];
        } else if (have == 1 && want >= 0) {
            s[i] = want;
            stride[i] = 0;
        } else {
            return td_error(TD_ESHAPE, 2, "cannot expand dim %d of size %lld to %lld (shape %s)", i,
                            (long long)have, (long long)want, td_shape_str(t, a, sizeof a));
        }
    }
    td_tensor *v = NULL;
    TD_TRY(td_make_view(t, ndim, s, stride, t->offset, &v));
    return finish1("ExpandBackward", expand_backward, t, v, NULL, 0, out);
}

/* ---- copies ---------------------------------------------------------- */

static td_status copy_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    if (g->dtype == n->in_dtype[0]) {
        td_tensor_retain(g);
        *gi = g;
        return TD_OK;
    }
    return td_to_dtype(g, n->in_dtype[0], gi);
}

static td_status copy_as(td_tensor *t, td_dtype dt, bool channels_last, const char *name,
                         td_tensor **out)
{
    td_tensor *c = NULL;
    TD_TRY(td_empty_layout_on(t->ndim, t->shape, dt, td_device_of(t), channels_last, &c));
    td_backend_of(t)->copy(c, t);
    if (!td_dtype_is_float(dt) && t->requires_grad) { /* integer results carry no gradient */
        *out = c;
        return TD_OK;
    }
    return finish1(name, copy_backward, t, c, NULL, 0, out);
}

td_status td_contiguous(td_tensor *t, td_tensor **out)
{
    if (td_is_contiguous(t)) {
        td_tensor_retain(t);
        *out = t;
        return TD_OK;
    }
    return copy_as(t, t->dtype, false, "CloneBackward", out);
}

td_status td_contiguous_channels_last(td_tensor *t, td_tensor **out)
{
    if (t->ndim != 4) {
        char s1[160];
        td_shape_str(t, s1, sizeof s1);
        return td_error(TD_ESHAPE, 1,
                        "contiguous: channels_last needs a 4-dim (N, C, H, W) tensor, got shape %s",
                        s1);
    }
    if (td_is_channels_last(t)) {
        td_tensor_retain(t);
        *out = t;
        return TD_OK;
    }
    return copy_as(t, t->dtype, true, "CloneBackward", out);
}

td_status td_clone(td_tensor *t, td_tensor **out)
{
    return copy_as(t, t->dtype, false, "CloneBackward", out);
}

td_status td_to_dtype(td_tensor *t, td_dtype dt, td_tensor **out)
{
    if (t->dtype == dt) {
        td_tensor_retain(t);
        *out = t;
        return TD_OK;
    }
    return copy_as(t, dt, false, "ToCopyBackward", out);
}

/* an alias for ops that are the identity on this tensor (t() of a vector) */
td_status td_detach_view_like(td_tensor *t, td_tensor **out)
{
    td_tensor *v = NULL;
    TD_TRY(td_make_view(t, t->ndim, t->shape, t->stride, t->offset, &v));
    return finish1("AliasBackward", copy_backward, t, v, NULL, 0, out);
}

/* ---- joining and splitting ---------------------------------------- */

typedef struct {
    int dim;
    int64_t sizes[]; /* each input's size along dim, -1 for a skipped one */
} cat_ctx;

/* PyTorch's legacy rule: a 1-D tensor of shape (0) joins any tensor and
 * adds nothing (it still counts for the result's dtype) */
static bool cat_skips(const td_tensor *t) { return t->ndim == 1 && t->shape[0] == 0; }

static td_status cat_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const cat_ctx *c = n->ctx;
    int64_t start = 0;
    for (int i = 0; i < n->n_next; i++) {
        int64_t len = c->sizes[i];
        if (n->next[i]) {
            td_tensor *v = NULL;
            if (len < 0)
                TD_TRY(
                    td_full_on(n->in_ndim[i], n->in_shape[i], 0.0, g->dtype, td_device_of(g), &v));
            else
                TD_TRY(td_narrow(g, c->dim, start, len, &v));
            gi[i] = v;
        }
        if (len > 0) start += len;
    }
    return TD_OK;
}

td_status td_cat(int n, td_tensor **ts, int dim, td_tensor **out)
{
    if (n <= 0) return td_error(TD_EINVAL, 1, "cat needs at least one tensor");
    int f = -1; /* the first tensor that is not skipped: it sets the shape */
    for (int i = 0; i < n; i++) {
        if (ts[i]->ndim == 0)
            return td_error(TD_ESHAPE, 1, "cat: zero-dim tensor %d cannot be concatenated", i + 1);
        if (f < 0 && !cat_skips(ts[i])) f = i;
    }
    td_tensor *first = f >= 0 ? ts[f] : ts[0];
    int d = 0;
    /* with every tensor skipped, PyTorch leaves dim unchecked */
    if (f >= 0) TD_TRY(td_wrap_dim(dim, first->ndim, 2, &d));
    td_dtype dt = first->dtype;
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        td_tensor *t = ts[i];
        char a[128], b[128];
        dt = td_promote(dt, t->dtype);
        if (f < 0 || cat_skips(t)) continue;
        if (t->ndim != first->ndim)
            return td_error(TD_ESHAPE, 1, "cat: tensor %d has %d dims, tensor %d has %d", i + 1,
                            t->ndim, f + 1, first->ndim);
        for (int k = 0; k < t->ndim; k++)
            if (k != d && t->shape[k] != first->shape[k])
                return td_error(
                    TD_ESHAPE, 1,
                    "cat: tensor %d of shape %s does not match tensor %d of shape %s outside dim %d",
                    i + 1, td_shape_str(t, a, sizeof a), f + 1, td_shape_str(first, b, sizeof b),
                    d);
        total += t->shape[d];
    }
    int64_t shape[TD_MAX_DIMS];
    memcpy(shape, first->shape, sizeof shape);
    shape[d] = total;
    td_tensor *c = NULL;
    TD_TRY(td_same_device(n, ts));
    TD_TRY(td_empty_on(first->ndim, shape, dt, td_device_of(first), &c));
    int64_t start = 0;
    for (int i = 0; i < n && f >= 0; i++) {
        if (cat_skips(ts[i])) continue;
        int64_t s[TD_MAX_DIMS];
        memcpy(s, c->shape, sizeof s);
        s[d] = ts[i]->shape[d];
        td_tensor *slot = NULL;
        td_status st = td_make_view(c, c->ndim, s, c->stride, start * c->stride[d], &slot);
        if (st != TD_OK) {
            td_tensor_release(c);
            return st;
        }
        td_backend_of(c)->copy(slot, ts[i]);
        td_tensor_release(slot);
        start += ts[i]->shape[d];
    }
    if (!td_needs_grad(n, ts) || !td_dtype_is_float(dt)) {
        *out = c;
        return TD_OK;
    }
    td_node *node;
    cat_ctx *ctx = NULL;
    td_status st = td_node_new("CatBackward", cat_backward, n, ts, &node);
    if (st == TD_OK) {
        st = td_node_ctx(node, sizeof *ctx + sizeof(int64_t) * (size_t)n, (void **)&ctx);
        if (st == TD_OK) {
            ctx->dim = d;
            for (int i = 0; i < n; i++)
                ctx->sizes[i] = f >= 0 && !cat_skips(ts[i]) ? ts[i]->shape[d] : -1;
        }
        st = td_node_finish(node, st, c);
    }
    if (st != TD_OK) {
        td_tensor_release(c);
        return st;
    }
    *out = c;
    return TD_OK;
}

td_status td_stack(int n, td_tensor **ts, int dim, td_tensor **out)
{
    if (n <= 0) return td_error(TD_EINVAL, 1, "stack needs at least one tensor");
    int d;
    TD_TRY(td_wrap_dim(dim, ts[0]->ndim + 1, 2, &d));
    for (int i = 1; i < n; i++)
        if (!td_same_shape(ts[i], ts[0])) {
            char a[128], b[128];
            return td_error(TD_ESHAPE, 1,
                            "stack: tensor %d of shape %s differs from tensor 1 of shape %s", i + 1,
                            td_shape_str(ts[i], a, sizeof a), td_shape_str(ts[0], b, sizeof b));
        }
    td_tensor **u = calloc((size_t)n, sizeof *u);
    if (!u) return td_error(TD_ENOMEM, 0, "out of memory in stack");
    td_status st = TD_OK;
    for (int i = 0; i < n && st == TD_OK; i++) st = td_unsqueeze(ts[i], d, &u[i]);
    if (st == TD_OK) st = td_cat(n, u, d, out);
    td_release_many(n, u);
    free(u);
    return st;
}

td_status td_split(td_tensor *t, int64_t size, int dim, int *count, td_tensor ***pieces)
{
    int d;
    if (t->ndim == 0) return td_error(TD_ESHAPE, 1, "split() cannot be applied to a 0-dim tensor");
    TD_TRY(td_wrap_dim(dim, t->ndim, 3, &d));
    if (size <= 0)
        return td_error(TD_EINVAL, 2, "split size must be positive, got %lld", (long long)size);
    int64_t len = t->shape[d];
    int n = (int)(len == 0 ? 1 : (len + size - 1) / size);
    td_tensor **p = calloc((size_t)n, sizeof *p);
    if (!p) return td_error(TD_ENOMEM, 0, "out of memory in split");
    for (int i = 0; i < n; i++) {
        int64_t start = (int64_t)i * size;
        td_status st = td_narrow(t, d, start, len - start < size ? len - start : size, &p[i]);
        if (st != TD_OK) {
            td_release_many(i, p);
            free(p);
            return st;
        }
    }
    *count = n;
    *pieces = p;
    return TD_OK;
}

td_status td_chunk(td_tensor *t, int64_t chunks, int dim, int *count, td_tensor ***pieces)
{
    int d;
    if (chunks <= 0)
        return td_error(TD_EINVAL, 2, "chunk count must be positive, got %lld", (long long)chunks);
    if (t->ndim == 0) return td_error(TD_ESHAPE, 1, "chunk() cannot be applied to a 0-dim tensor");
    TD_TRY(td_wrap_dim(dim, t->ndim, 3, &d));
    int64_t size = (t->shape[d] + chunks - 1) / chunks;
    return td_split(t, size > 0 ? size : 1, d, count, pieces);
}
