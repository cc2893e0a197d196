/* sort, argsort, topk: argument checks, the kernel over a dense input, and
 * the gradient, which goes back to where each value came from (the
 * indices are a permutation, or part of one, so a plain scatter does). */
#include "internal.h"

typedef struct {
    td_tensor *index;
    int dim; /* wrapped */
} sort_ctx;

static td_status sort_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    const sort_ctx *c = n->ctx;
    td_tensor *z = NULL, *gx = NULL;
    td_status st;
    TD_CHECK(td_full_on(n->in_ndim[0], n->in_shape[0], 0.0, g->dtype, td_device_of(g), &z));
    TD_CHECK(td_scatter(z, c->dim, c->index, g, false, &gx));
    TD_CHECK(td_grad_to_input(n, 0, gx, gi));
fail:
    td_tensor_release(z);
    td_tensor_release(gx);
    return st;
}

/* the first k of each line's stable sort along d (k == n for sort);
 * values NULL asks for the indices alone */
static td_status sorted_along(const char *node, td_tensor *x, int d, int64_t k, bool descending,
                              td_tensor **values, td_tensor **indices)
{
    int64_t outer = 1, n = 1, inner = 1;
    int64_t shape[TD_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) {
        shape[i] = x->shape[i];
        if (i < d) outer *= x->shape[i];
        if (i > d) inner *= x->shape[i];
    }
    if (x->ndim) {
        n = x->shape[d];
        shape[d] = k;
    }
    td_tensor *cx = NULL, *v = NULL, *idx = NULL;
    td_device dev = td_device_of(x);
    td_status st;
    TD_CHECK(td_dense_raw(x, x->dtype, false, &cx));
    TD_CHECK(td_empty_on(x->ndim, shape, TD_INT64, dev, &idx));
    if (values) TD_CHECK(td_empty_on(x->ndim, shape, x->dtype, dev, &v));
    /* a 0-dim tensor is its own one-element line (k may be 0 there, as
     * PyTorch returns the element all the same) */
    TD_CHECK(
        td_backend_of(x)->reorder->sort(v, idx, cx, outer, n, inner, x->ndim ? k : 1, descending));
    if (values && td_dtype_is_float(x->dtype) && td_needs_grad(1, &x)) {
        td_node *nd;
        sort_ctx *c = NULL;
        TD_CHECK(td_node_new(node, sort_backward, 1, &x, &nd));
        st = TD_NODE_CTX(nd, &c);
        if (st == TD_OK) {
            c->dim = d;
            st = td_node_keep(nd, idx, &c->index);
        }
        TD_CHECK(td_node_finish(nd, st, v));
    }
    if (values) {
        *values = v;
        v = NULL;
    }
    *indices = idx;
    idx = NULL;
fail:
    td_tensor_release(cx);
    td_tensor_release(v);
    td_tensor_release(idx);
    return st;
}

/* dim is Lua argument `arg` */
static td_status sort_args(const char *fn, td_tensor *x, int dim, int arg, int *d)
{
    TD_TRY(td_wrap_dim(dim, x->ndim, arg, d));
    if (!td_backend_of(x)->reorder)
        return td_error(TD_EINVAL, 1, "%s is not implemented on %s yet", fn,
                        td_backend_of(x)->name);
    return TD_OK;
}

td_status td_sort(td_tensor *x, int dim, bool descending, td_tensor **values, td_tensor **indices)
{
    int d;
    TD_TRY(sort_args("sort", x, dim, 2, &d));
    return sorted_along("SortBackward", x, d, x->ndim ? x->shape[d] : 1, descending, values,
                        indices);
}

td_status td_argsort(td_tensor *x, int dim, bool descending, td_tensor **out)
{
    int d;
    TD_TRY(sort_args("argsort", x, dim, 2, &d));
    return sorted_along(NULL, x, d, x->ndim ? x->shape[d] : 1, descending, NULL, out);
}

td_status td_topk(td_tensor *x, int64_t k, int dim, bool largest, bool sorted, td_tensor **values,
                  td_tensor **indices)
{
    int d;
    TD_TRY(sort_args("topk", x, dim, 3, &d));
    int64_t n = x->ndim ? x->shape[d] : 1;
    if (k < 0 || k > n)
        return td_error(TD_ERANGE, 2, "topk: k = %lld is out of range for dim %d of size %lld",
                        (long long)k, d, (long long)n);
    /* an unsorted top k may come in any order: the sorted one is such an order */
    (void)sorted;
    return sorted_along("TopkBackward", x, d, k, largest, values, indices);
}
