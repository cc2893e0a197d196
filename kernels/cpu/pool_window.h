/* The windows of 2-d pooling, shared by the NCHW loops (nn_pool.c) and
 * the channels-last ones (nn_pool_nhwc.c), so both give PyTorch's windows
 * and divisors by the same code. */
#ifndef TIDE_KERNELS_CPU_POOL_WINDOW_H
#define TIDE_KERNELS_CPU_POOL_WINDOW_H

#include "../nn_layers.h"

/* an adaptive pool's window of output position o along one axis: [*s, *e) */
static inline void adaptive_range(int64_t o, int64_t in, int64_t out, int64_t *s, int64_t *e)
{
    *s = (o * in) / out;
    *e = ((o + 1) * in + out - 1) / out;
}

/* the input window [hs, he) x [ws, we) of output (oy, ox) of an average or
 * adaptive average pool, and the divisor of its sum (PyTorch's: with
 * count_include_pad the window clipped to the padded input, else the
 * elements inside the input) */
static inline double avg_window(const td_pool2d_args *a, int64_t oy, int64_t ox, int64_t *hs,
                                int64_t *he, int64_t *ws, int64_t *we)
{
    const int64_t H = a->h, W = a->w;
    if (a->kind != TD_POOL_AVG) {
        adaptive_range(oy, H, a->oh, hs, he);
        adaptive_range(ox, W, a->ow, ws, we);
        return (double)((*he - *hs) * (*we - *ws));
    }
    *hs = oy * a->sh - a->ph;
    *ws = ox * a->sw - a->pw;
    *he = *hs + a->kh;
    *we = *ws + a->kw;
    if (*he > H + a->ph) *he = H + a->ph;
    if (*we > W + a->pw) *we = W + a->pw;
    double full = (double)((*he - *hs) * (*we - *ws));
    if (*hs < 0) *hs = 0;
    if (*ws < 0) *ws = 0;
    if (*he > H) *he = H;
    if (*we > W) *we = W;
    if (a->divisor_override) return (double)a->divisor_override;
    return a->count_include_pad ? full : (double)((*he - *hs) * (*we - *ws));
}

#endif
