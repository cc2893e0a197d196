/* split with a list of sizes (torch's split_with_sizes). */
#include "internal.h"
#include "tide/tensor_args.h"

td_status td_split_sizes(td_tensor *t, int n, const int64_t *sizes, int dim, int *count,
                         td_tensor ***pieces)
{
    int d;
    if (t->ndim == 0) return td_error(TD_ESHAPE, 1, "split() cannot be applied to a 0-dim tensor");
    TD_TRY(td_wrap_dim(dim, t->ndim, 3, &d));
    int64_t total = 0;
    for (int i = 0; i < n; i++) {
        if (sizes[i] < 0)
            return td_error(TD_EINVAL, 2, "split sizes must be non-negative, got %lld at %d",
                            (long long)sizes[i], i);
        total += sizes[i];
    }
    if (total != t->shape[d])
        return td_error(TD_ESHAPE, 2,
                        "split sizes must sum exactly to %lld (the size of dim %d), got %lld",
                        (long long)t->shape[d], d, (long long)total);
    td_tensor **p = calloc(n > 0 ? (size_t)n : 1, sizeof *p);
    if (!p) return td_error(TD_ENOMEM, 0, "out of memory in split");
    int64_t start = 0;
    for (int i = 0; i < n; i++) {
        td_status st = td_narrow(t, d, start, sizes[i], &p[i]);
        if (st != TD_OK) {
            td_release_many(i, p);
            free(p);
            return st;
        }
        start += sizes[i];
    }
    *count = n;
    *pieces = p;
    return TD_OK;
}
