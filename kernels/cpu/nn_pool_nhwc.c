/* CPU 2-d pooling on channels-last tensors: x, y, idx, gy and gx stored
 * N, H, W, C. Max, average and adaptive average pooling, forward and
 * backward, float32 and float64.
 *
 * The windows, the order of each window's scan, the double sums, the
 * divisors, max's NaN and tie rules and the in-plane indices are those of
 * the NCHW loops in nn_pool.c (the reference), so a channels-last input
 * gives the bits of a contiguous one through those loops. Only the memory
 * order differs: with C innermost, each tap of a window reads C contiguous
 * values, and the loops over them vectorise (all but max's backward
 * scatter). float32 average pooling goes to oneDNN's nhwc primitive first
 * (nn_pool_dnnl.c, faster still); these loops are its fallback and the
 * float64 path.
 *
 * Forward: parallel over (n, output row); each output is one thread's.
 * Backward scatters into gx: parallel over (n, channel block), so no two
 * threads add into one element of gx, and each element takes its terms in
 * the output scan order whatever the thread count: the bits do not depend
 * on it. */
#include "cpu.h"
#include "iter.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* channels per pass of the average pools and per backward task at most:
 * the pass's double sums (or gradient row) are a small array in L1 */
#define CHUNK 64

/* ---- windows ---------------------------------------------------------- */

#include "pool_window.h"

/* a max pool's window along one axis: [*lo, *hi) stepping by d, *lo moved
 * to the first tap inside the input; empty when every tap is padding */
static inline void max_range(int64_t o, int64_t s, int64_t p, int64_t k, int64_t d, int64_t in,
                             int64_t *lo, int64_t *hi)
{
    int64_t b = o * s - p, e = b + (k - 1) * d + 1;
    if (e > in) e = in;
    if (b < 0) b += (-b + d - 1) / d * d;
    *lo = b;
    *hi = e;
}

/* channels per backward task: CHUNK, or fewer when the batch alone leaves
 * threads idle (small N); never below 16, a cache line of float32 */
static int64_t channel_block(int64_t n, int64_t c)
{
    int64_t b = c < CHUNK ? c : CHUNK, want = 2 * (int64_t)omp_get_max_threads();
    while (b > 16 && n * ((c + b - 1) / b) < want) b = (b + 1) / 2;
    return b > 0 ? b : 1;
}

/* ---- rows of C channels: the vectorised steps ----------------------- */

/* one max-pool tap over a row of channels, the reference's order: a NaN
 * wins, else a strictly bigger value (a tie keeps the earlier tap) */
#define MAX_STEP_ROW(name, T)                                                                      \
    static inline void name(T *restrict m, int64_t *restrict k, const T *restrict v, int64_t p,    \
                            int64_t n)                                                             \
    {                                                                                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            bool t = v[i] > m[i] || v[i] != v[i];                                                  \
            m[i] = t ? v[i] : m[i];                                                                \
            k[i] = t ? p : k[i];                                                                   \
        }                                                                                          \
    }
MAX_STEP_ROW(max_step_f32, float)
MAX_STEP_ROW(max_step_f64, double)

static inline void sum_row_f32(double *restrict s, const float *restrict v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) s[i] += v[i];
}

static inline void sum_row_f64(double *restrict s, const double *restrict v, int64_t n)
{
    for (int64_t i = 0; i < n; i++) s[i] += v[i];
}

#define ADD_ROW(name, T)                                                                           \
    static inline void name(T *restrict d, const T *restrict g, int64_t n)                         \
    {                                                                                              \
        for (int64_t i = 0; i < n; i++) d[i] += g[i];                                              \
    }
ADD_ROW(add_row_f32, float)
ADD_ROW(add_row_f64, double)

/* the rest of max's typed work on a row of channels: a window with no tap
 * (-inf, and -1: no gradient), a window's first tap (index p), and the
 * backward's gradients added into their argmax */
#define MAX_ROW_STEPS(S, T)                                                                        \
    TD_CPU_ALWAYS_INLINE void max_none_##S(T *m, int64_t *k, int64_t n)                            \
    {                                                                                              \
        for (int64_t c = 0; c < n; c++) m[c] = (T)-INFINITY, k[c] = -1;                            \
    }                                                                                              \
    TD_CPU_ALWAYS_INLINE void max_first_##S(T *m, int64_t *k, const T *v, int64_t p, int64_t n)    \
    {                                                                                              \
        for (int64_t c = 0; c < n; c++) m[c] = v[c], k[c] = p;                                     \
    }                                                                                              \
    TD_CPU_ALWAYS_INLINE void max_scatter_##S(T *gxn, const T *go, const int64_t *io, int64_t C,   \
                                              int64_t cn)                                          \
    {                                                                                              \
        for (int64_t c = 0; c < cn; c++)                                                           \
            if (io[c] >= 0) gxn[io[c] * C + c] += go[c];                                           \
    }
MAX_ROW_STEPS(f32, float)
MAX_ROW_STEPS(f64, double)

/* and an average's: its outputs (y = sum / div, 0 for an empty window) and
 * the backward's gradients, rounded to T as the reference does (gy / div),
 * added over the window */
#define AVG_ROW_STEPS(S, T)                                                                        \
    TD_CPU_ALWAYS_INLINE void avg_out_##S(T *y, const double *s, double div, int64_t n)            \
    {                                                                                              \
        for (int64_t c = 0; c < n; c++) y[c] = (T)(div > 0 ? s[c] / div : 0);                      \
    }                                                                                              \
    TD_CPU_ALWAYS_INLINE void avg_scatter_##S(T *gxn, const T *gy, double div, int64_t W,          \
                                              int64_t C, int64_t hs, int64_t he, int64_t ws,       \
                                              int64_t we, int64_t n)                               \
    {                                                                                              \
        T g[CHUNK];                                                                                \
        for (int64_t c = 0; c < n; c++) g[c] = (T)(gy[c] / div);                                   \
        for (int64_t yy = hs; yy < he; yy++)                                                       \
            for (int64_t xx = ws; xx < we; xx++) add_row_##S(gxn + (yy * W + xx) * C, g, n);       \
    }
AVG_ROW_STEPS(f32, float)
AVG_ROW_STEPS(f64, double)

/* ---- forward --------------------------------------------------------- */

/* Each row of outputs (r = n * OH + oy) written once for both dtypes:
 * inlined with a constant f32, each copy is one dtype's, its typed work in
 * the steps above. */

/* x (N, H, W, C) -> y, idx (N, OH, OW, C) */
TD_CPU_ALWAYS_INLINE void max_fwd_row(const td_pool2d_args *a, const void *x, void *y, int64_t *idx,
                                      int64_t r, bool f32)
{
    const int64_t C = a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow, dh = a->dh, dw = a->dw;
    const int64_t xn = r / OH * H * W * C, es = f32 ? 4 : 8;
    int64_t hs, he;
    max_range(r % OH, a->sh, a->ph, a->kh, dh, H, &hs, &he);
    for (int64_t ox = 0; ox < OW; ox++) {
        char *m = (char *)y + (r * OW + ox) * C * es;
        int64_t *k = idx + (r * OW + ox) * C, ws, we;
        max_range(ox, a->sw, a->pw, a->kw, dw, W, &ws, &we);
        if (hs >= he || ws >= we) { /* padding only */
            if (f32)
                max_none_f32((float *)m, k, C);
            else
                max_none_f64((double *)m, k, C);
            continue;
        }
        /* start from the first tap, what the reference's -inf start gives */
        const char *v0 = (const char *)x + (xn + (hs * W + ws) * C) * es;
        if (f32)
            max_first_f32((float *)m, k, (const float *)v0, hs * W + ws, C);
        else
            max_first_f64((double *)m, k, (const double *)v0, hs * W + ws, C);
        for (int64_t yy = hs; yy < he; yy += dh)
            for (int64_t xx = yy == hs ? ws + dw : ws; xx < we; xx += dw) {
                const char *v = (const char *)x + (xn + (yy * W + xx) * C) * es;
                if (f32)
                    max_step_f32((float *)m, k, (const float *)v, yy * W + xx, C);
                else
                    max_step_f64((double *)m, k, (const double *)v, yy * W + xx, C);
            }
    }
}

/* x (N, H, W, C) -> y (N, OH, OW, C): each output channel's window sum
 * in double in the reference's tap order, CHUNK channels at a time */
TD_CPU_ALWAYS_INLINE void avg_fwd_row(const td_pool2d_args *a, const void *x, void *y, int64_t r,
                                      bool f32)
{
    const int64_t C = a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;
    const int64_t xn = r / OH * H * W * C, es = f32 ? 4 : 8;
    double s[CHUNK];
    for (int64_t ox = 0; ox < OW; ox++) {
        int64_t hs, he, ws, we;
        double div = avg_window(a, r % OH, ox, &hs, &he, &ws, &we);
        char *yo = (char *)y + (r * OW + ox) * C * es;
        for (int64_t c0 = 0; c0 < C; c0 += CHUNK) {
            int64_t cn = C - c0 < CHUNK ? C - c0 : CHUNK;
            for (int64_t c = 0; c < cn; c++) s[c] = 0;
            for (int64_t yy = hs; yy < he; yy++)
                for (int64_t xx = ws; xx < we; xx++) {
                    const char *v = (const char *)x + (xn + (yy * W + xx) * C + c0) * es;
                    if (f32)
                        sum_row_f32(s, (const float *)v, cn);
                    else
                        sum_row_f64(s, (const double *)v, cn);
                }
            if (f32)
                avg_out_f32((float *)yo + c0, s, div, cn);
            else
                avg_out_f64((double *)yo + c0, s, div, cn);
        }
    }
}

void td_cpu_pool2d_nhwc(const td_pool2d_args *a, const void *x, void *y, int64_t *idx)
{
    const bool f32 = a->dtype == TD_FLOAT32;
    const int64_t rows = a->n * a->oh, C = a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;
    if (a->kind == TD_POOL_MAX) {
#pragma omp parallel for schedule(static) if (rows * OW * C * a->kh * a->kw >= TD_CPU_GRAIN)
        for (int64_t r = 0; r < rows; r++) {
            if (f32)
                max_fwd_row(a, x, y, idx, r, true);
            else
                max_fwd_row(a, x, y, idx, r, false);
        }
        return;
    }
    const int64_t taps = a->kind == TD_POOL_AVG ? a->kh * a->kw : (H / OH + 1) * (W / OW + 1);
#pragma omp parallel for schedule(static) if (rows * OW * C * taps >= TD_CPU_GRAIN)
    for (int64_t r = 0; r < rows; r++) {
        if (f32)
            avg_fwd_row(a, x, y, r, true);
        else
            avg_fwd_row(a, x, y, r, false);
    }
}

/* ---- backward -------------------------------------------------------- */

/* Task t owns channels [c0, c0 + cn) of image n of gx (N, H, W, C), zeroes
 * them and scatters that block's gradient into them; written once for
 * both dtypes, as the forward rows. */
TD_CPU_ALWAYS_INLINE void bwd_task(const td_pool2d_args *a, const void *gy, const int64_t *idx,
                                   void *gx, int64_t n, int64_t c0, int64_t cn, bool f32)
{
    const int64_t C = a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow, es = f32 ? 4 : 8;
    char *gxn = (char *)gx + (n * H * W * C + c0) * es;
    if (cn == C)
        memset(gxn, 0, (size_t)(es * H * W * C));
    else
        for (int64_t p = 0; p < H * W; p++) memset(gxn + p * C * es, 0, (size_t)(es * cn));
    if (a->kind == TD_POOL_MAX) {
        /* each output's gradient into its argmax, outputs in order */
        const char *go = (const char *)gy + (n * OH * OW * C + c0) * es;
        const int64_t *io = idx + n * OH * OW * C + c0;
        for (int64_t o = 0; o < OH * OW; o++, go += C * es, io += C) {
            if (f32)
                max_scatter_f32((float *)gxn, (const float *)go, io, C, cn);
            else
                max_scatter_f64((double *)gxn, (const double *)go, io, C, cn);
        }
        return;
    }
    /* each output's gradient / divisor added over its window, outputs in order */
    for (int64_t oy = 0; oy < OH; oy++)
        for (int64_t ox = 0; ox < OW; ox++) {
            int64_t hs, he, ws, we;
            double div = avg_window(a, oy, ox, &hs, &he, &ws, &we);
            if (div <= 0) continue;
            const char *go = (const char *)gy + (((n * OH + oy) * OW + ox) * C + c0) * es;
            if (f32)
                avg_scatter_f32((float *)gxn, (const float *)go, div, W, C, hs, he, ws, we, cn);
            else
                avg_scatter_f64((double *)gxn, (const double *)go, div, W, C, hs, he, ws, we, cn);
        }
}

void td_cpu_pool2d_nhwc_backward(const td_pool2d_args *a, const void *gy, const int64_t *idx,
                                 void *gx)
{
    const bool f32 = a->dtype == TD_FLOAT32;
    const int64_t N = a->n, C = a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;
    const int64_t B = channel_block(N, C), nb = (C + B - 1) / B;
#pragma omp parallel for schedule(static) if (N * (H * W + OH * OW) * C >= TD_CPU_GRAIN)
    for (int64_t t = 0; t < N * nb; t++) {
        const int64_t n = t / nb, c0 = t % nb * B, cn = C - c0 < B ? C - c0 : B;
        if (f32)
            bwd_task(a, gy, idx, gx, n, c0, cn, true);
        else
            bwd_task(a, gy, idx, gx, n, c0, cn, false);
    }
}
