/* The CPU's N-d convolution and resampling table: float32 convolutions
 * through oneDNN (nn_convnd_dnnl.c), float64 ones through the direct
 * loops (nn_convnd_direct.c). In deterministic mode float32 weight
 * gradients go through the direct loops too (in float64, rounded once),
 * whose order does not depend on the thread count. bfloat16 goes to
 * oneDNN too, where runtime/conv_nd.c sends it (never in deterministic
 * mode). */
#include "cpu.h"

td_status td_cpu_resample(const td_resample_args *a, const void *x, void *y);
td_status td_cpu_resample_backward(const td_resample_args *a, const void *gy, void *gx);

static td_status forward(const td_convnd_args *a, const void *x, const void *w, void *y)
{
    if (a->dtype == TD_FLOAT32 || a->dtype == TD_BFLOAT16)
        return td_convnd_dnnl_forward(a, x, w, y);
    return td_convnd_direct_forward(a, x, w, y);
}

static td_status backward_data(const td_convnd_args *a, const void *gy, const void *w, void *gx)
{
    if (a->dtype == TD_FLOAT32 || a->dtype == TD_BFLOAT16)
        return td_convnd_dnnl_backward_data(a, gy, w, gx);
    return td_convnd_direct_backward_data(a, gy, w, gx);
}

static double *widen(const float *p, int64_t n)
{
    double *d = td_cpu_alloc((size_t)n * sizeof *d);
    if (d)
        for (int64_t i = 0; i < n; i++) d[i] = p[i];
    return d;
}

static td_status fixed_backward_weights(const td_convnd_args *a, const float *x, const float *gy,
                                        float *gw)
{
    int64_t nx = a->n * a->c * a->in[0] * a->in[1] * a->in[2],
            ny = a->n * a->o * a->out[0] * a->out[1] * a->out[2],
            nw = a->o * (a->c / a->groups) * a->k[0] * a->k[1] * a->k[2];
    double *dx = widen(x, nx), *dy = widen(gy, ny), *dw = td_cpu_alloc((size_t)nw * sizeof *dw);
    td_status st = TD_OK;
    if (!dx || !dy || !dw) {
        st = td_error(TD_ENOMEM, 0, "convolution: out of memory for the weight gradient");
    } else {
        st = td_convnd_direct_backward_weights(a, dx, dy, dw);
        for (int64_t i = 0; i < nw; i++) gw[i] = (float)dw[i];
    }
    if (dx) td_cpu_free(dx, (size_t)nx * sizeof *dx);
    if (dy) td_cpu_free(dy, (size_t)ny * sizeof *dy);
    if (dw) td_cpu_free(dw, (size_t)nw * sizeof *dw);
    return st;
}

static td_status backward_weights(const td_convnd_args *a, const void *x, const void *gy, void *gw)
{
    if (a->dtype == TD_FLOAT32 && td_deterministic()) return fixed_backward_weights(a, x, gy, gw);
    if (a->dtype == TD_FLOAT32 || a->dtype == TD_BFLOAT16)
        return td_convnd_dnnl_backward_weights(a, x, gy, gw);
    return td_convnd_direct_backward_weights(a, x, gy, gw);
}

const struct td_convnd_kernels td_cpu_convnd = {
    .forward = forward,
    .backward_data = backward_data,
    .backward_weights = backward_weights,
    .resample = td_cpu_resample,
    .resample_backward = td_cpu_resample_backward,
};
