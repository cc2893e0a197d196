/* Indexing front-ends: index checks (naming the offending index and its
 * position), shapes, and gradients (gather and scatter are each other's
 * adjoint; index_select's is index_add). */
#include "internal.h"

#include <stdio.h>

static td_status check_index_tensor(const td_tensor *index, int arg, const char *fn)
{
    if (index->dtype != TD_INT64)
        return td_error(TD_EDTYPE, arg, "%s: index must be an int64 tensor, got %s", fn,
                        td_dtype_name(index->dtype));
    return TD_OK;
}

/* a contiguous copy of index with every value checked against [0, size) */
static td_status checked_index(td_tensor *index, int64_t size, int arg, const char *fn, int dim,
                               td_tensor **out)
{
    td_tensor *c = NULL;
    if (td_is_contiguous(index))
        TD_TRY(td_make_view(index, index->ndim, index->shape, index->stride, index->offset, &c));
    else {
        TD_TRY(td_empty_like(index, &c));
        td_backend_of(index)->copy(c, index);
    }
    td_tensor *h = NULL; /* a device index is checked on the host */
    if (td_device_of(c).type != TD_CPU) {
        td_status st = td_to_device(c, TD_DEVICE_CPU, &h);
        if (st != TD_OK) {
            td_tensor_release(c);
            return st;
        }
    }
    const int64_t *p = td_data_ptr(h ? h : c);
    int64_t n = td_numel(c);
    for (int64_t i = 0; i < n; i++)
        if (p[i] < 0 || p[i] >= size) {
            int64_t v = p[i];
            td_tensor_release(c);
            td_tensor_release(h);
            return td_error(
                TD_ERANGE, arg,
                "%s: index %lld at position %lld is out of range for dim %d of size %lld", fn,
                (long long)v, (long long)i, dim, (long long)size);
        }
    td_tensor_release(h);
    *out = c;
    return TD_OK;
}

static td_status contiguous_copy(td_tensor *t, td_tensor **out)
{
    td_tensor *c = NULL;
    TD_TRY(td_empty_like(t, &c));
    td_backend_of(t)->copy(c, t);
    *out = c;
    return TD_OK;
}

/* what the backward of every op here reads: the checked index and its dim */
typedef struct {
    td_tensor *index;
    int dim;         /* wrapped */
    bool accumulate; /* scatter only */
} index_ctx;

/* attach to out a node over in[0..nin) that keeps idx along dim d */
static td_status record_indexed(const char *name, td_backward_fn fn, int nin, td_tensor **in, int d,
                                bool accumulate, td_tensor *idx, td_tensor *out)
{
    td_node *node;
    index_ctx *c = NULL;
    TD_TRY(td_node_new(name, fn, nin, in, &node));
    td_status st = TD_NODE_CTX(node, &c);
    if (st == TD_OK) {
        c->dim = d;
        c->accumulate = accumulate;
        st = td_node_keep(node, idx, &c->index);
    }
    return td_node_finish(node, st, out);
}

/* ---- index_select / index_add ------------------------------------------ */

/* the gradient of a read at index (index_select, gather): zeros of the
 * input's shape with g added back where each element was read */
static td_status add_back(td_node *n, td_tensor *g, td_tensor **gi, bool gather)
{
    const index_ctx *c = n->ctx;
    td_tensor *z = NULL, *gx = NULL;
    td_status st;
    TD_CHECK(td_full_on(n->in_ndim[0], n->in_shape[0], 0.0, g->dtype, td_device_of(g), &z));
    if (gather)
        TD_CHECK(td_scatter(z, c->dim, c->index, g, true, &gx));
    else
        TD_CHECK(td_index_add(z, c->dim, c->index, g, &gx));
    TD_CHECK(td_grad_to_input(n, 0, gx, gi));
fail:
    td_tensor_release(z);
    td_tensor_release(gx);
    return st;
}

static td_status index_select_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    return add_back(n, g, gi, false);
}

static td_status gather_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    return add_back(n, g, gi, true);
}

/* gather and scatter count a 0-dim tensor as one of shape (1), as PyTorch */
static int dims_of(const td_tensor *t) { return t->ndim ? t->ndim : 1; }
static int64_t size_of(const td_tensor *t, int i) { return t->ndim ? t->shape[i] : 1; }

/* t as the kernels read it: a 0-dim tensor as a view of shape (1) */
static td_status as_1d(td_tensor *t, td_tensor **out)
{
    int64_t one = 1;
    if (t->ndim) return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
    return td_make_view(t, 1, &one, &one, t->offset, out);
}

/* index must have x's number of dims and fit inside `limit` outside dim */
static td_status check_gather_shape(const td_tensor *x, const td_tensor *index, int d, int arg,
                                    const char *fn, const td_tensor *limit)
{
    char a[128], b[128];
    if (dims_of(index) != dims_of(x))
        return td_error(TD_ESHAPE, arg, "%s: index has %d dims but the tensor has %d", fn,
                        index->ndim, x->ndim);
    for (int i = 0; i < dims_of(x); i++)
        if ((i != d && size_of(index, i) > size_of(x, i)) ||
            (limit && size_of(index, i) > size_of(limit, i)))
            return td_error(TD_ESHAPE, arg,
                            "%s: index of shape %s does not fit inside shape %s at dim %d", fn,
                            td_shape_str(index, a, sizeof a),
                            td_shape_str(limit && size_of(index, i) > size_of(limit, i) ? limit : x,
                                         b, sizeof b),
                            i);
    return TD_OK;
}

/* index_select and gather: their checks, the kernel over a dense x, and the
 * node that adds the gradient back at the index */
static td_status read_indexed(bool gather, td_tensor *x, int dim, td_tensor *index, td_tensor **out)
{
    const char *fn = gather ? "gather" : "index_select";
    int d;
    TD_TRY(td_wrap_dim(dim, x->ndim, 2, &d));
    td_tensor *on[2] = {x, index};
    TD_TRY(td_same_device(2, on));
    TD_TRY(check_index_tensor(index, 3, fn));
    if (gather)
        TD_TRY(check_gather_shape(x, index, d, 3, fn, NULL));
    else if (index->ndim > 1)
        return td_error(TD_ESHAPE, 3, "index_select: index must be 0- or 1-dim, got %d dims",
                        index->ndim);
    td_tensor *idx = NULL, *cx = NULL, *o = NULL, *v[3] = {NULL, NULL, NULL};
    td_status st;
    TD_CHECK(checked_index(index, x->ndim ? x->shape[d] : 1, 3, fn, d, &idx));
    /* gather: index's shape; index_select: x's with dim d as long as index */
    int nd = gather ? idx->ndim : x->ndim;
    int64_t shape[TD_MAX_DIMS];
    memcpy(shape, gather ? idx->shape : x->shape, sizeof shape);
    if (!gather && x->ndim) shape[d] = td_numel(idx);
    TD_CHECK(td_dense_raw(x, x->dtype, false, &cx));
    TD_CHECK(td_empty_on(nd, shape, x->dtype, td_device_of(x), &o));
    if (gather) {
        TD_CHECK(as_1d(o, &v[0]));
        TD_CHECK(as_1d(cx, &v[1]));
        TD_CHECK(as_1d(idx, &v[2]));
        td_backend_of(x)->gather(v[0], v[1], d, v[2]);
    } else
        td_backend_of(x)->index_select(o, cx, d, idx);
    if (td_dtype_is_float(x->dtype) && td_needs_grad(1, &x))
        TD_CHECK(record_indexed(gather ? "GatherBackward" : "IndexSelectBackward",
                                gather ? gather_backward : index_select_backward, 1, &x, d, false,
                                idx, o));
    *out = o;
    o = NULL;
fail:
    td_release_many(3, v);
    td_tensor_release(idx);
    td_tensor_release(cx);
    td_tensor_release(o);
    return st;
}

td_status td_index_select(td_tensor *x, int dim, td_tensor *index, td_tensor **out)
{
    return read_indexed(false, x, dim, index, out);
}

static td_status index_add_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const index_ctx *c = n->ctx;
    td_status st = TD_OK;
    if (n->next[0]) TD_TRY(td_grad_to_input(n, 0, g, &gi[0]));
    if (n->next[1]) {
        td_tensor *s = NULL;
        TD_TRY(td_index_select(g, c->dim, c->index, &s));
        st = td_grad_to_input(n, 1, s, &gi[1]);
        td_tensor_release(s);
    }
    return st;
}

td_status td_index_add(td_tensor *x, int dim, td_tensor *index, td_tensor *src, td_tensor **out)
{
    int d;
    TD_TRY(td_wrap_dim(dim, x->ndim, 2, &d));
    td_tensor *on[3] = {x, index, src};
    TD_TRY(td_same_device(3, on));
    TD_TRY(check_index_tensor(index, 3, "index_add"));
    if (index->ndim > 1) return td_error(TD_ESHAPE, 3, "index_add: index must be 0- or 1-dim");
    bool ok = src->ndim == x->ndim && (x->ndim == 0 || src->shape[d] == td_numel(index));
    for (int i = 0; ok && i < x->ndim; i++)
        if (i != d && src->shape[i] != x->shape[i]) ok = false;
    if (!ok) {
        char a[128], b[128];
        return td_error(
            TD_ESHAPE, 4,
            "index_add: source of shape %s does not fit a tensor of shape %s with %lld indices",
            td_shape_str(src, a, sizeof a), td_shape_str(x, b, sizeof b),
            (long long)td_numel(index));
    }
    td_tensor *idx = NULL, *o = NULL, *cs = NULL;
    td_status st;
    TD_CHECK(checked_index(index, x->ndim ? x->shape[d] : 1, 3, "index_add", d, &idx));
    TD_CHECK(contiguous_copy(x, &o));
    TD_CHECK(td_cast_raw(src, x->dtype, &cs));
    if (td_numel(idx) > 0) td_backend_of(x)->index_add(o, d, idx, cs);
    td_tensor *in[2] = {x, src};
    if (td_dtype_is_float(x->dtype) && td_needs_grad(2, in))
        TD_CHECK(record_indexed("IndexAddBackward", index_add_backward, 2, in, d, false, idx, o));
    *out = o;
    o = NULL;
fail:
    td_tensor_release(idx);
    td_tensor_release(o);
    td_tensor_release(cs);
    return st;
}

/* ---- gather / scatter -------------------------------------------------- */

td_status td_gather(td_tensor *x, int dim, td_tensor *index, td_tensor **out)
{
    return read_indexed(true, x, dim, index, out);
}

static td_status scatter_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const index_ctx *c = n->ctx;
    td_tensor *idx = c->index, *t = NULL, *z = NULL, *slot = NULL;
    int d = c->dim;
    td_status st = TD_OK;
    if (n->next[0]) { /* overwritten places take no gradient */
        if (c->accumulate)
            TD_CHECK(td_grad_to_input(n, 0, g, &gi[0]));
        else {
            TD_CHECK(td_scatter_scalar(g, d, idx, 0.0, &t));
            TD_CHECK(td_grad_to_input(n, 0, t, &gi[0]));
            td_tensor_release(t);
            t = NULL;
        }
    }
    if (n->next[1]) { /* src beyond index's extent was never read */
        TD_CHECK(td_gather(g, d, idx, &t));
        TD_CHECK(td_full_on(n->in_ndim[1], n->in_shape[1], 0.0, g->dtype, td_device_of(g), &z));
        /* a 0-dim src beside a (1) index: t's own strides fit its one element */
        TD_CHECK(
            td_make_view(z, t->ndim, t->shape, z->ndim ? z->stride : t->stride, z->offset, &slot));
        TD_CHECK(td_copy_(slot, t));
        TD_CHECK(td_grad_to_input(n, 1, z, &gi[1]));
    }
fail:
    td_tensor_release(t);
    td_tensor_release(z);
    td_tensor_release(slot);
    return st;
}

td_status td_scatter(td_tensor *x, int dim, td_tensor *index, td_tensor *src, bool accumulate,
                     td_tensor **out)
{
    int d;
    TD_TRY(td_wrap_dim(dim, x->ndim, 2, &d));
    td_tensor *on[3] = {x, index, src};
    TD_TRY(td_same_device(3, on));
    TD_TRY(check_index_tensor(index, 3, "scatter"));
    if (dims_of(src) != dims_of(x))
        return td_error(TD_ESHAPE, 4, "scatter: source has %d dims but the tensor has %d",
                        src->ndim, x->ndim);
    TD_TRY(check_gather_shape(x, index, d, 3, "scatter", src));
    td_tensor *idx = NULL, *o = NULL, *cs = NULL, *v[3] = {NULL, NULL, NULL};
    td_status st;
    TD_CHECK(checked_index(index, x->ndim ? x->shape[d] : 1, 3, "scatter", d, &idx));
    TD_CHECK(contiguous_copy(x, &o));
    TD_CHECK(td_cast_raw(src, x->dtype, &cs));
    TD_CHECK(as_1d(o, &v[0]));
    TD_CHECK(as_1d(idx, &v[1]));
    TD_CHECK(as_1d(cs, &v[2]));
    /* an empty index writes nothing (and the kernels' index walk needs one) */
    if (td_numel(idx) > 0) td_backend_of(x)->scatter(v[0], d, v[1], v[2], accumulate);
    td_tensor *in[2] = {x, src};
    if (td_dtype_is_float(x->dtype) && td_needs_grad(2, in))
        TD_CHECK(record_indexed(accumulate ? "ScatterAddBackward" : "ScatterBackward",
                                scatter_backward, 2, in, d, accumulate, idx, o));
    *out = o;
    o = NULL;
fail:
    td_release_many(3, v);
    td_tensor_release(idx);
    td_tensor_release(o);
    td_tensor_release(cs);
    return st;
}

td_status td_scatter_scalar(td_tensor *x, int dim, td_tensor *index, double value, td_tensor **out)
{
    td_tensor *v, *e;
    TD_TRY(td_full_on(0, NULL, value, x->dtype, td_device_of(x), &v));
    td_status st = td_broadcast_view(v, index->ndim, index->shape, &e);
    td_tensor_release(v);
    if (st != TD_OK) return st;
    st = td_scatter(x, dim, index, e, false, out);
    td_tensor_release(e);
    return st;
}
