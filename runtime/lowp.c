/* bfloat16 and float16 in the runtime (docs/precision.md): the ops whose
 * low-precision inputs go through float32 as a composition (cast up, the
 * float32 op, cast down, every step recorded so the gradient comes back
 * in the input's dtype), and stochastic rounding from float32. */
#include "internal.h"
#include "../kernels/counter_bits.h"

#include <math.h>

td_status td_lowp_via_float32(td_tensor *x, td_lowp_fn fn, const void *args, td_tensor **out)
{
    td_tensor *xf = NULL, *r = NULL;
    td_status st;
    TD_CHECK(td_to_dtype(x, TD_FLOAT32, &xf));
    TD_CHECK(fn(xf, args, &r));
    if (r->dtype == TD_FLOAT32) {
        TD_CHECK(td_to_dtype(r, x->dtype, out));
    } else { /* an integer or uint8 result (an index, a mask) stays as it is */
        *out = r;
        r = NULL;
    }
fail:
    td_tensor_release(xf);
    td_tensor_release(r);
    return st;
}

/* ---- stochastic rounding ----------------------------------------------- */

/* the 2-byte neighbours of x (float32) below and above in magnitude, and
 * where x lies between them: up with probability frac. Past the largest
 * finite value, inf counts as the next step (one ulp of max above it). */
static uint16_t round_stochastic(td_dtype dt, float x, uint64_t bits)
{
    uint16_t near = td_float_to_lowp(dt, x);
    float a = fabsf(x), v = fabsf(td_lowp_to_float(dt, near));
    if (v == a || x != x) return near; /* exact, inf, or NaN */
    uint16_t sign = near & 0x8000u, mag = near & 0x7fffu;
    uint16_t lo = v < a ? mag : (uint16_t)(mag - 1), hi = (uint16_t)(lo + 1);
    double flo = td_lowp_to_float(dt, lo), fhi = td_lowp_to_float(dt, hi);
    if (isinf(fhi)) fhi = 2 * flo - td_lowp_to_float(dt, (uint16_t)(lo - 1));
    double frac = ((double)a - flo) / (fhi - flo);
    double u = (double)(bits >> 40) * 0x1.0p-24; /* uniform in [0, 1) */
    return (uint16_t)(sign | (u < frac ? hi : lo));
}

static td_status stochastic_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    return td_to_dtype(g, n->in_dtype[0], gi);
}

td_status td_to_dtype_stochastic(td_tensor *x, td_dtype dt, td_tensor **out)
{
    if (!td_dtype_is_lowp(dt))
        return td_error(TD_EINVAL, 3,
                        "to: rounding = \"stochastic\" is for bfloat16 and float16 results, not %s",
                        td_dtype_name(dt));
    if (x->dtype != TD_FLOAT32)
        return td_error(TD_EDTYPE, 1,
                        "to: rounding = \"stochastic\" converts float32 tensors, got %s (convert "
                        "with :float() first)",
                        td_dtype_name(x->dtype));
    if (td_device_of(x).type != TD_CPU)
        return td_error(
            TD_EINVAL, 1,
            "to: rounding = \"stochastic\" is not implemented on cuda yet (round on the "
            "cpu)");
    td_tensor *c = NULL, *o = NULL;
    td_status st;
    TD_CHECK(td_dense_raw(x, TD_FLOAT32, false, &c));
    TD_CHECK(td_empty_on(x->ndim, x->shape, dt, TD_DEVICE_CPU, &o));
    {
        const float *src = td_data_ptr(c);
        uint16_t *dst = td_data_ptr(o);
        int64_t n = td_numel(c);
        uint64_t key = td_random_u64(); /* one draw: tide.manual_seed repeats it */
#pragma omp parallel for schedule(static) if (n >= 65536)
        for (int64_t i = 0; i < n; i++)
            dst[i] = round_stochastic(dt, src[i], td_counter_bits(key, (uint64_t)i));
    }
    if (td_needs_grad(1, &x)) {
        td_node *node;
        TD_CHECK(td_node_new("ToCopyBackward", stochastic_backward, 1, &x, &node));
        TD_CHECK(td_node_finish(node, TD_OK, o));
    }
    *out = o;
    o = NULL;
fail:
    td_tensor_release(c);
    td_tensor_release(o);
    return st;
}
