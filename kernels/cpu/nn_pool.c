/* CPU 2-d pooling on NCHW data, for the layers table (nn_layers.c): max,
 * average and adaptive average, forward and backward, float32 and float64,
 * parallel over planes. Averages sum in double. float32 averages go to
 * oneDNN first (nn_pool_dnnl.c), these loops being its reference and
 * fallback; max pooling stays here, as fast as oneDNN's or faster, with
 * PyTorch's NaN and tie order (docs/layers.md has the numbers).
 * Channels-last data goes to nn_pool_nhwc.c, which gives these loops' bits.
 *
 * The loops over a max pool's output row, an average pool's plane and a
 * plane's gradient are written once for both dtypes and inlined with a
 * constant f32, so each copy is one dtype's; what touches elements of the
 * dtype is in the typed steps below. */
#include "layers.h"
#include "iter.h"
#include "pool_window.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* element k of a float32 (f32) or float64 array, in double, and back */
static inline double load_elem(const void *p, int64_t k, bool f32)
{
    return f32 ? (double)((const float *)p)[k] : ((const double *)p)[k];
}

static inline void store_elem(void *p, int64_t k, double v, bool f32)
{
    if (f32)
        ((float *)p)[k] = (float)v;
    else
        ((double *)p)[k] = v;
}

/* ---- the typed steps ---------------------------------------------------- */

/* the max of the window [hs, he) x [ws, we) of plane xi (row length W),
 * stepping by dh, dw, in the reference's order: a NaN wins, else a
 * strictly bigger value (a tie keeps the earlier tap). *m gets it (-inf
 * for no tap), *k its in-plane index (-1 when a dilated window holds
 * padding only: no gradient). */
#define MAX_WINDOW(S, T)                                                                           \
    TD_CPU_ALWAYS_INLINE void max_window_##S(const T *xi, int64_t W, int64_t hs, int64_t he,       \
                                             int64_t dh, int64_t ws, int64_t we, int64_t dw, T *m, \
                                             int64_t *k)                                           \
    {                                                                                              \
        T mv = -INFINITY;                                                                          \
        int64_t best = hs * W + ws;                                                                \
        for (int64_t yy = hs; yy < he; yy += dh)                                                   \
            for (int64_t xx = ws; xx < we; xx += dw) {                                             \
                T v = xi[yy * W + xx];                                                             \
                bool t = v > mv || v != v;                                                         \
                mv = t ? v : mv, best = t ? yy * W + xx : best;                                    \
            }                                                                                      \
        *m = mv, *k = hs < he && ws < we ? best : -1;                                              \
    }
MAX_WINDOW(f32, float)
MAX_WINDOW(f64, double)

/* float32 2x2 stride-2 unpadded windows of one output row from input rows
 * r0, r1 (base: r0's in-plane offset), unrolled: branch-free and
 * vectorisable, starting from the first value (what the -inf start gives
 * too) */
static inline void max2x2_row_f32(const float *r0, const float *r1, float *yr, int64_t *ir,
                                  int64_t base, int64_t OW, int64_t W)
{
    for (int64_t ox = 0; ox < OW; ox++) {
        float v0 = r0[2 * ox], v1 = r0[2 * ox + 1], v2 = r1[2 * ox], v3 = r1[2 * ox + 1];
        float m = v0;
        int64_t k = 0;
        bool t = v1 > m || v1 != v1;
        m = t ? v1 : m;
        k = t ? 1 : k;
        t = v2 > m || v2 != v2;
        m = t ? v2 : m;
        k = t ? W : k;
        t = v3 > m || v3 != v3;
        m = t ? v3 : m;
        k = t ? W + 1 : k;
        yr[ox] = m;
        ir[ox] = base + 2 * ox + k;
    }
}

/* backward: max's gradients into their argmax (idx -1: none), in output
 * order, and an average's gradient g, rounded to T as the reference does,
 * added over its window */
#define POOL_BWD_STEPS(S, T)                                                                       \
    TD_CPU_ALWAYS_INLINE void scatter_max_##S(T *gi, const T *go, const int64_t *io, int64_t n)    \
    {                                                                                              \
        for (int64_t o = 0; o < n; o++)                                                            \
            if (io[o] >= 0) gi[io[o]] += go[o];                                                    \
    }                                                                                              \
    TD_CPU_ALWAYS_INLINE void window_add_##S(T *gi, int64_t W, int64_t hs, int64_t he, int64_t ws, \
                                             int64_t we, double g)                                 \
    {                                                                                              \
        T t = (T)g;                                                                                \
        for (int64_t yy = hs; yy < he; yy++)                                                       \
            for (int64_t xx = ws; xx < we; xx++) gi[yy * W + xx] += t;                             \
    }
POOL_BWD_STEPS(f32, float)
POOL_BWD_STEPS(f64, double)

/* ---- forward ------------------------------------------------------------ */

/* output row oy of plane xi's max pool into yo, io */
TD_CPU_ALWAYS_INLINE void max_pool_row(const td_pool2d_args *a, const void *xi, void *yo,
                                       int64_t *io, int64_t oy, bool f32)
{
    const int64_t H = a->h, W = a->w, OW = a->ow, kh = a->kh, kw = a->kw, dh = a->dh, dw = a->dw;
    int64_t hs = oy * a->sh - a->ph, he = hs + (kh - 1) * dh + 1;
    if (he > H) he = H;
    if (hs < 0) hs += (-hs + dh - 1) / dh * dh;
    for (int64_t ox = 0; ox < OW; ox++) {
        int64_t ws = ox * a->sw - a->pw, we = ws + (kw - 1) * dw + 1, o = oy * OW + ox;
        if (we > W) we = W;
        if (ws < 0) ws += (-ws + dw - 1) / dw * dw;
        if (f32)
            max_window_f32(xi, W, hs, he, dh, ws, we, dw, (float *)yo + o, io + o);
        else
            max_window_f64(xi, W, hs, he, dh, ws, we, dw, (double *)yo + o, io + o);
    }
}

/* float32 and float64 each have their own parallel loop over planes: one
 * loop for both, with the unrolled 2x2 stride-2 unpadded case inside it,
 * ran that case 4 to 6% slower (128 x 32 x 28 x 28, 2 threads) */
static void max_pool_f32(const td_pool2d_args *a, const float *x, float *y, int64_t *idx)
{
    const int64_t planes = a->n * a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;
    /* not when ceil_mode adds a last window that reaches past the input:
     * the unrolled loop reads all four taps */
    const bool two = a->kh == 2 && a->kw == 2 && a->sh == 2 && a->sw == 2 && a->ph == 0 &&
                     a->pw == 0 && a->dh == 1 && a->dw == 1 && 2 * OH <= H && 2 * OW <= W;
#pragma omp parallel for schedule(static) if (planes * OH * OW * 4 >= TD_CPU_GRAIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xi = x + pl * H * W;
        float *yo = y + pl * OH * OW;
        int64_t *io = idx + pl * OH * OW;
        for (int64_t oy = 0; oy < OH; oy++) {
            if (two)
                max2x2_row_f32(xi + 2 * oy * W, xi + (2 * oy + 1) * W, yo + oy * OW, io + oy * OW,
                               2 * oy * W, OW, W);
            else
                max_pool_row(a, xi, yo, io, oy, true);
        }
    }
}

static void max_pool_f64(const td_pool2d_args *a, const double *x, double *y, int64_t *idx)
{
    const int64_t planes = a->n * a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;
#pragma omp parallel for schedule(static) if (planes * OH * OW * 4 >= TD_CPU_GRAIN)
    for (int64_t pl = 0; pl < planes; pl++)
        for (int64_t oy = 0; oy < OH; oy++)
            max_pool_row(a, x + pl * H * W, y + pl * OH * OW, idx + pl * OH * OW, oy, false);
}

TD_CPU_ALWAYS_INLINE void avg_pool_plane(const td_pool2d_args *a, const void *x, void *y,
                                         int64_t pl, bool f32)
{
    const int64_t H = a->h, W = a->w, OH = a->oh, OW = a->ow, xo = pl * H * W, yo = pl * OH * OW;
    for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
            int64_t hs, he, ws, we;
            double div = avg_window(a, oy, ox, &hs, &he, &ws, &we), s = 0;
            for (int64_t yy = hs; yy < he; yy++)
                for (int64_t xx = ws; xx < we; xx++) s += load_elem(x, xo + yy * W + xx, f32);
            store_elem(y, yo + oy * OW + ox, div > 0 ? s / div : 0, f32);
        }
}

static void avg_pool(const td_pool2d_args *a, const void *x, void *y)
{
    const bool f32 = a->dtype == TD_FLOAT32;
    const int64_t planes = a->n * a->c;
#pragma omp parallel for schedule(static) if (planes * a->oh * a->ow * 4 >= TD_CPU_GRAIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        if (f32)
            avg_pool_plane(a, x, y, pl, true);
        else
            avg_pool_plane(a, x, y, pl, false);
    }
}

/* Global average pooling of NCHW float32 (adaptive to 1x1, a network's
 * head): one contiguous sum per plane. oneDNN's NCHW pooling took 0.42 ms
 * for (128, 32, 28, 28), 2.7x PyTorch's time; this runs at the memory's
 * speed. Each plane sums in float lanes, which the tests' float64
 * reference bounds. */
static bool global_avg_f32(const td_pool2d_args *a, const float *x, float *y)
{
    if (a->dtype != TD_FLOAT32 || a->channels_last || a->kind != TD_POOL_ADAPTIVE_AVG ||
        a->oh != 1 || a->ow != 1)
        return false;
    const int64_t planes = a->n * a->c, hw = a->h * a->w;
    int nt = td_cpu_threads_for(planes * hw, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *p = x + pl * hw;
        float s = 0;
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < hw; i++) s += p[i];
        y[pl] = (float)((double)s / (double)hw);
    }
    return true;
}

void td_cpu_pool2d(const td_pool2d_args *a, const void *x, void *y, int64_t *idx)
{
    if (a->kind == TD_POOL_ADAPTIVE_MAX) {
        td_cpu_adaptive_max_pool2d(a, x, y, idx);
        return;
    }
    if (global_avg_f32(a, x, y)) return;
    /* oneDNN first for float32 averages, in either layout */
    if (a->dtype == TD_FLOAT32 && a->kind != TD_POOL_MAX && td_pool_dnnl_forward(a, x, y)) return;
    if (a->channels_last)
        td_cpu_pool2d_nhwc(a, x, y, idx);
    else if (a->kind == TD_POOL_MAX && a->dtype == TD_FLOAT32)
        max_pool_f32(a, x, y, idx);
    else if (a->kind == TD_POOL_MAX)
        max_pool_f64(a, x, y, idx);
    else
        avg_pool(a, x, y);
}

/* ---- backward ----------------------------------------------------------- */

TD_CPU_ALWAYS_INLINE void pool_bwd_plane(const td_pool2d_args *a, const void *gy,
                                         const int64_t *idx, void *gx, int64_t pl, bool f32)
{
    const int64_t H = a->h, W = a->w, OH = a->oh, OW = a->ow, xo = pl * H * W, yo = pl * OH * OW;
    memset((char *)gx + xo * (f32 ? 4 : 8), 0, (f32 ? 4 : 8) * (size_t)(H * W));
    if (a->kind == TD_POOL_MAX) {
        if (f32)
            scatter_max_f32((float *)gx + xo, (const float *)gy + yo, idx + yo, OH * OW);
        else
            scatter_max_f64((double *)gx + xo, (const double *)gy + yo, idx + yo, OH * OW);
        return;
    }
    for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
            int64_t hs, he, ws, we;
            double div = avg_window(a, oy, ox, &hs, &he, &ws, &we);
            if (div <= 0) continue;
            double g = load_elem(gy, yo + oy * OW + ox, f32) / div;
            if (f32)
                window_add_f32((float *)gx + xo, W, hs, he, ws, we, g);
            else
                window_add_f64((double *)gx + xo, W, hs, he, ws, we, g);
        }
}

void td_cpu_pool2d_backward(const td_pool2d_args *a, const void *gy, const int64_t *idx, void *gx)
{
    if (a->kind == TD_POOL_ADAPTIVE_MAX) {
        td_cpu_adaptive_max_pool2d_backward(a, gy, idx, gx);
        return;
    }
    if (a->dtype == TD_FLOAT32 && a->kind != TD_POOL_MAX && td_pool_dnnl_backward(a, gy, gx))
        return;
    if (a->channels_last) {
        td_cpu_pool2d_nhwc_backward(a, gy, idx, gx);
        return;
    }
    const bool f32 = a->dtype == TD_FLOAT32;
    const int64_t planes = a->n * a->c;
#pragma omp parallel for schedule(static) if (planes * a->oh * a->ow * 4 >= TD_CPU_GRAIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        if (f32)
            pool_bwd_plane(a, gy, idx, gx, pl, true);
        else
            pool_bwd_plane(a, gy, idx, gx, pl, false);
    }
}
