/* masked_fill with a 0-dim tensor value, which then takes a gradient. */
#include "internal.h"
#include "tide/tensor_args.h"

td_status td_masked_fill_tensor(td_tensor *x, td_tensor *mask, td_tensor *value, td_tensor **out)
{
    if (value->ndim != 0)
        return td_error(TD_ESHAPE, 3,
                        "masked_fill: value must be a number or a 0-dim tensor, got %d dims",
                        value->ndim);
    if (mask->dtype != TD_UINT8)
        return td_error(TD_EDTYPE, 2, "mask must be uint8 (as comparisons return), got %s",
                        td_dtype_name(mask->dtype));
    int nd;
    int64_t s[TD_MAX_DIMS];
    if (td_broadcast_shape(x, mask, &nd, s) != TD_OK) {
        char a[128], b[128];
        return td_error(TD_ESHAPE, 2,
                        "mask of shape %s does not broadcast with the tensor's shape %s",
                        td_shape_str(mask, a, sizeof a), td_shape_str(x, b, sizeof b));
    }
    td_tensor *v = NULL;
    TD_TRY(td_to_dtype(value, x->dtype, &v));
    td_status st = td_where(mask, v, x, out);
    td_tensor_release(v);
    return st;
}
