/* What every loss front-end shares: reduction names and the deterministic
 * sum of a per-element loss buffer. */
#include "internal.h"
#include "tide/losses.h"

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
                    allow_batchmean ? "'none', 'mean', 'sum' or 'batchmean'" : "'none', 'mean' or 'sum'");
}

const char *td_reduction_name(td_reduction r) { return (unsigned)r < 4 ? names[r] : "?"; }

td_status td_loss_reduce_raw(td_tensor *elem, td_reduction r, double divisor, td_tensor **out)
{
    td_tensor *c = NULL, *s = NULL;
    td_status st = TD_OK;
    if (td_is_contiguous(elem)) {
        TD_CHECK(td_make_view(elem, elem->ndim, elem->shape, elem->stride, elem->offset, &c));
    } else {
        TD_CHECK(td_empty(elem->ndim, elem->shape, elem->dtype, &c));
        td_backend_of(elem)->copy(c, elem);
    }
    TD_CHECK(td_empty(0, NULL, elem->dtype, &s));
    td_backend_of(elem)->reduce(TD_SUM, s, NULL, c, 1, td_numel(c), 1);
    if (r == TD_REDUCE_MEAN || r == TD_REDUCE_BATCHMEAN) {
        /* a mean over nothing is NaN, as PyTorch gives */
        double v = td_get_flat(s, 0) / divisor;
        td_backend_of(s)->fill(s, v);
    }
    *out = s;
    s = NULL;
fail:
    td_tensor_release(c);
    td_tensor_release(s);
    return st;
}
