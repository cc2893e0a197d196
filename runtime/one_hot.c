/* one_hot: class indices to rows of 0s with a 1 at each class, by a
 * scatter into zeros; the class range is checked first, once. */
#include "internal.h"

td_status td_one_hot(td_tensor *x, int64_t num_classes, td_tensor **out)
{
    if (x->dtype != TD_INT64)
        return td_error(TD_EDTYPE, 1, "one_hot: tensor must be int64 class indices, got %s",
                        td_dtype_name(x->dtype));
    if (num_classes < -1)
        return td_error(TD_EINVAL, 2, "one_hot: num_classes must be -1 or at least 0, got %lld",
                        (long long)num_classes);
    if (x->ndim >= TD_MAX_DIMS)
        return td_error(TD_ESHAPE, 1, "one_hot: tensor has %d dims, the result would exceed %d",
                        x->ndim, TD_MAX_DIMS);
    if (td_numel(x) == 0 && num_classes < 0)
        return td_error(TD_EINVAL, 2,
                        "one_hot: cannot infer num_classes from an empty tensor (give it)");
    td_tensor *t[4] = {NULL};
    td_status st;
    if (td_numel(x) > 0) {
        double lo, hi;
        TD_CHECK(td_min(x, 0, true, false, &t[0], NULL));
        TD_CHECK(td_max(x, 0, true, false, &t[1], NULL));
        TD_CHECK(td_read_flat(t[0], 0, &lo));
        TD_CHECK(td_read_flat(t[1], 0, &hi));
        if (lo < 0) {
            st = td_error(TD_ERANGE, 1, "one_hot: class values must be non-negative, got %lld",
                          (long long)lo);
            goto fail;
        }
        if (num_classes < 0) num_classes = (int64_t)hi + 1;
        if (hi >= (double)num_classes) {
            st = td_error(TD_ERANGE, 1, "one_hot: class %lld is outside [0, %lld) (num_classes)",
                          (long long)hi, (long long)num_classes);
            goto fail;
        }
    }
    int64_t shape[TD_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++) shape[i] = x->shape[i];
    shape[x->ndim] = num_classes;
    TD_CHECK(td_full_on(x->ndim + 1, shape, 0.0, TD_INT64, td_device_of(x), &t[2]));
    TD_CHECK(td_unsqueeze(x, x->ndim, &t[3]));
    TD_CHECK(td_scatter_scalar(t[2], x->ndim, t[3], 1.0, out));
fail:
    td_release_many(4, t);
    return st;
}
