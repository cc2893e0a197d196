/* What every loss front-end shares: reduction names, the deterministic
 * sum of a per-element loss buffer, and the end of every loss (reduction and autograd node). */
#include "loss_family.h"

static const char *names[] = {"none", "mean", "sum", "batchmean"};

td_status td_reduction_parse(const char *name, bool allow_batchmean, int arg, td_reduction *out)
{
    int n = allow_batchmean ? 4 : 3;
    for (int i = 0; i < n; i++)
        if (strcmp(name, names[i]) == 0) {
            *out = (td_reduction)i;
            return TD_OK;
        }
    return td_error(TD_EINVAL, arg, "unknown reduction '%s' (expected %s)", name,
                    allow_batchmean ? "'none', 'mean', 'sum' or 'batchmean'"
                                    : "'none', 'mean' or 'sum'");
}

const char *td_reduction_name(td_reduction r) { return (unsigned)r < 4 ? names[r] : "?"; }

td_status td_loss_reduce_raw(td_tensor *elem, td_reduction r, double divisor, td_tensor **out)
{
    td_tensor *c = NULL, *s = NULL;
    td_status st = TD_OK;
    TD_CHECK(td_dense_raw(elem, elem->dtype, false, &c));
    TD_CHECK(td_empty_on(0, NULL, elem->dtype, td_device_of(elem), &s));
    td_backend_of(elem)->reduce(TD_SUM, s, NULL, c, 1, td_numel(c), 1);
    if (r == TD_REDUCE_MEAN || r == TD_REDUCE_BATCHMEAN) {
        /* a mean over nothing is NaN, as PyTorch gives */
        double v;
        TD_CHECK(td_item(s, &v));
        td_backend_of(s)->fill(s, v / divisor);
    }
    *out = s;
    s = NULL;
fail:
    td_tensor_release(c);
    td_tensor_release(s);
    return st;
}

td_status td_read_flat(const td_tensor *t, int64_t i, double *out)
{
    if (td_device_of(t).type == TD_CPU) {
        *out = td_get_flat(t, i);
        return TD_OK;
    }
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->stride[d];
        i /= t->shape[d];
    }
    td_tensor *one = NULL;
    TD_TRY(td_make_view((td_tensor *)t, 0, NULL, NULL, off, &one));
    td_status st = td_item(one, out);
    td_tensor_release(one);
    return st;
}

td_status td_loss_record(const td_loss_def *d, td_tensor *elem, td_reduction r, double divisor,
                         int n, td_tensor *const *inputs, td_backward_fn bw, size_t ctx_size,
                         td_loss_fill_fn fill, const void *arg, td_tensor **out)
{
    td_tensor *res = NULL;
    td_node *node = NULL;
    td_status st = TD_OK;
    if (r == TD_REDUCE_NONE) {
        td_tensor_retain(elem);
        res = elem;
    } else {
        TD_CHECK(td_loss_reduce_raw(elem, r, divisor, &res));
    }
    if (td_needs_grad(n, inputs)) {
        void *ctx;
        TD_CHECK(td_node_new(d->node, bw, n, inputs, &node));
        TD_CHECK(td_node_ctx(node, ctx_size, &ctx));
        TD_CHECK(fill(node, ctx, arg));
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
