/* Creation: constants, ranges, identity, from values. */
#include "internal.h"

#include <math.h>

td_status td_full(int ndim, const int64_t *shape, double value, td_dtype dt, td_tensor **out)
{
    td_tensor *t = NULL;
    TD_TRY(td_empty(ndim, shape, dt, &t));
    td_backend_of(t)->fill(t, value);
    *out = t;
    return TD_OK;
}

td_status td_zeros(int ndim, const int64_t *shape, td_dtype dt, td_tensor **out)
{
    return td_full(ndim, shape, 0.0, dt, out);
}

td_status td_ones(int ndim, const int64_t *shape, td_dtype dt, td_tensor **out)
{
    return td_full(ndim, shape, 1.0, dt, out);
}

td_status td_scalar(double value, td_dtype dt, td_tensor **out)
{
    return td_full(0, NULL, value, dt, out);
}

td_status td_from_data(int ndim, const int64_t *shape, td_dtype dt, const double *values,
                       td_tensor **out)
{
    td_tensor *t = NULL;
    TD_TRY(td_empty(ndim, shape, dt, &t));
    int64_t n = td_numel(t);
    for (int64_t i = 0; i < n; i++) td_store_at(t, t->offset + i, values[i]);
    *out = t;
    return TD_OK;
}

/* element i of a fresh contiguous tensor */
static void store_double(td_tensor *t, int64_t i, double v) { td_store_at(t, t->offset + i, v); }

td_status td_arange(double start, double end, double step, td_dtype dt, td_tensor **out)
{
    if (step == 0 || !isfinite(step))
        return td_error(TD_EINVAL, 3, "arange: step must be a non-zero finite number");
    if (!isfinite(start) || !isfinite(end))
        return td_error(TD_EINVAL, 1, "arange: bounds must be finite");
    if ((end - start) / step < 0)
        return td_error(TD_EINVAL, 3, "arange: step %g goes away from the end (%g to %g)", step,
                        start, end);
    double count = ceil((end - start) / step);
    if (count > 1e12) return td_error(TD_ESHAPE, 2, "arange: %g elements is too many", count);
    int64_t n = (int64_t)count;
    td_tensor *t = NULL;
    TD_TRY(td_empty(1, &n, dt, &t));
    for (int64_t i = 0; i < n; i++) store_double(t, i, start + (double)i * step);
    *out = t;
    return TD_OK;
}

td_status td_linspace(double start, double end, int64_t steps, td_dtype dt, td_tensor **out)
{
    if (steps < 0)
        return td_error(TD_EINVAL, 3, "linspace: number of steps must be non-negative, got %lld",
                        (long long)steps);
    td_tensor *t = NULL;
    TD_TRY(td_empty(1, &steps, dt, &t));
    double step = steps > 1 ? (end - start) / (double)(steps - 1) : 0;
    /* both halves count from their own end, as PyTorch does, so the last
     * value is exactly `end` */
    int64_t half = steps / 2;
    if (steps == 1) store_double(t, 0, start);
    for (int64_t i = 0; i < steps && steps > 1; i++)
        store_double(t, i,
                     i < half ? start + step * (double)i : end - step * (double)(steps - 1 - i));
    *out = t;
    return TD_OK;
}

td_status td_eye(int64_t n, int64_t m, td_dtype dt, td_tensor **out)
{
    if (m < 0) m = n;
    if (n < 0)
        return td_error(TD_EINVAL, 1, "eye: size must be non-negative, got %lld", (long long)n);
    int64_t shape[2] = {n, m};
    td_tensor *t = NULL;
    TD_TRY(td_zeros(2, shape, dt, &t));
    for (int64_t i = 0; i < n && i < m; i++) store_double(t, i * m + i, 1.0);
    *out = t;
    return TD_OK;
}
