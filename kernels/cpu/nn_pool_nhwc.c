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
static inline void max_range(int64_t o, int64_t s, int64_t p, int64_t k, int64_t d, int64_t in, int64_t *lo,
                             int64_t *hi)
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
#define MAX_STEP_ROW(name, T)                                                                                \
    static inline void name(T *restrict m, int64_t *restrict k, const T *restrict v, int64_t p, int64_t n) \
    {                                                                                                        \
        for (int64_t i = 0; i < n; i++) {                                                                    \
            bool t = v[i] > m[i] || v[i] != v[i];                                                            \
            m[i] = t ? v[i] : m[i];                                                                          \
            k[i] = t ? p : k[i];                                                                             \
        }                                                                                                    \
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

#define ADD_ROW(name, T)                                                      \
    static inline void name(T *restrict d, const T *restrict g, int64_t n)    \
    {                                                                         \
        for (int64_t i = 0; i < n; i++) d[i] += g[i];                         \
    }
ADD_ROW(add_row_f32, float)
ADD_ROW(add_row_f64, double)

/* ---- forward --------------------------------------------------------- */

/* x (N, H, W, C) -> y, idx (N, OH, OW, C) */
#define MAX_FWD(T, step)                                                                       \
    do {                                                                                       \
        const T *xp = x;                                                                       \
        T *yp = y;                                                                             \
        const int64_t N = a->n, C = a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;          \
        const int64_t dh = a->dh, dw = a->dw;                                                  \
        _Pragma("omp parallel for schedule(static) if (N * OH * OW * C * a->kh * a->kw >= TD_CPU_GRAIN)") \
        for (int64_t r = 0; r < N * OH; r++) {                                                 \
            const T *xn = xp + r / OH * H * W * C;                                             \
            int64_t hs, he;                                                                    \
            max_range(r % OH, a->sh, a->ph, a->kh, dh, H, &hs, &he);                           \
            for (int64_t ox = 0; ox < OW; ox++) {                                              \
                T *m = yp + (r * OW + ox) * C;                                                 \
                int64_t *k = idx + (r * OW + ox) * C, ws, we;                                  \
                max_range(ox, a->sw, a->pw, a->kw, dw, W, &ws, &we);                           \
                if (hs >= he || ws >= we) { /* padding only: -inf, and -1: no gradient */     \
                    for (int64_t c = 0; c < C; c++) m[c] = (T)-INFINITY, k[c] = -1;            \
                    continue;                                                                  \
                }                                                                              \
                /* start from the first tap, what the reference's -inf start gives */         \
                const T *v0 = xn + (hs * W + ws) * C;                                          \
                for (int64_t c = 0; c < C; c++) m[c] = v0[c], k[c] = hs * W + ws;              \
                for (int64_t yy = hs; yy < he; yy += dh)                                       \
                    for (int64_t xx = yy == hs ? ws + dw : ws; xx < we; xx += dw)              \
                        step(m, k, xn + (yy * W + xx) * C, yy * W + xx, C);                    \
            }                                                                                  \
        }                                                                                      \
    } while (0)

/* x (N, H, W, C) -> y (N, OH, OW, C): each output channel's window sum
 * in double in the reference's tap order, CHUNK channels at a time */
#define AVG_FWD(T, sum)                                                                        \
    do {                                                                                       \
        const T *xp = x;                                                                       \
        T *yp = y;                                                                             \
        const int64_t N = a->n, C = a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;          \
        const int64_t taps = a->kind == TD_POOL_AVG ? a->kh * a->kw : (H / OH + 1) * (W / OW + 1); \
        const int64_t work = N * OH * OW * C * taps;                                           \
        _Pragma("omp parallel for schedule(static) if (work >= TD_CPU_GRAIN)")                \
        for (int64_t r = 0; r < N * OH; r++) {                                                 \
            const T *xn = xp + r / OH * H * W * C;                                             \
            double s[CHUNK];                                                                   \
            for (int64_t ox = 0; ox < OW; ox++) {                                              \
                int64_t hs, he, ws, we;                                                        \
                double div = avg_window(a, r % OH, ox, &hs, &he, &ws, &we);                    \
                T *yo = yp + (r * OW + ox) * C;                                                \
                for (int64_t c0 = 0; c0 < C; c0 += CHUNK) {                                    \
                    int64_t cn = C - c0 < CHUNK ? C - c0 : CHUNK;                              \
                    for (int64_t c = 0; c < cn; c++) s[c] = 0;                                 \
                    for (int64_t yy = hs; yy < he; yy++)                                       \
                        for (int64_t xx = ws; xx < we; xx++) sum(s, xn + (yy * W + xx) * C + c0, cn); \
                    for (int64_t c = 0; c < cn; c++) yo[c0 + c] = (T)(div > 0 ? s[c] / div : 0); \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    } while (0)

void td_cpu_pool2d_nhwc(const td_pool2d_args *a, const void *x, void *y, int64_t *idx)
{
    bool f32 = a->dtype == TD_FLOAT32;
    if (a->kind == TD_POOL_MAX) {
        if (f32)
            MAX_FWD(float, max_step_f32);
        else
            MAX_FWD(double, max_step_f64);
    } else if (f32) {
        AVG_FWD(float, sum_row_f32);
    } else {
        AVG_FWD(double, sum_row_f64);
    }
}

/* ---- backward -------------------------------------------------------- */

/* the task loop of both backward passes: task t owns channels [c0, c0 +
 * cn) of image n of gx (N, H, W, C), zeroed here; gxn points at its first
 * element. The body (the variadic arguments, commas and all) scatters that
 * block's gradient. */
#define BWD_TASKS(T, ...)                                                                     \
    do {                                                                                       \
        T *gxp = gx;                                                                           \
        const int64_t N = a->n, C = a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;          \
        const int64_t B = channel_block(N, C), nb = (C + B - 1) / B;                           \
        _Pragma("omp parallel for schedule(static) if (N * (H * W + OH * OW) * C >= TD_CPU_GRAIN)") \
        for (int64_t t = 0; t < N * nb; t++) {                                                 \
            const int64_t n = t / nb, c0 = t % nb * B, cn = C - c0 < B ? C - c0 : B;           \
            T *gxn = gxp + n * H * W * C + c0;                                                 \
            if (cn == C)                                                                       \
                memset(gxn, 0, sizeof(T) * (size_t)(H * W * C));                              \
            else                                                                               \
                for (int64_t p = 0; p < H * W; p++) memset(gxn + p * C, 0, sizeof(T) * (size_t)cn); \
            __VA_ARGS__                                                                        \
        }                                                                                      \
    } while (0)

/* each output's gradient into its argmax (idx -1: none), outputs in order */
#define MAX_BWD(T)                                                                             \
    BWD_TASKS(T, {                                                                             \
        const T *go = (const T *)gy + n * OH * OW * C + c0;                                    \
        const int64_t *io = idx + n * OH * OW * C + c0;                                        \
        for (int64_t o = 0; o < OH * OW; o++, go += C, io += C)                                \
            for (int64_t c = 0; c < cn; c++)                                                   \
                if (io[c] >= 0) gxn[io[c] * C + c] += go[c];                                   \
    })

/* each output's gradient / divisor, rounded to T as the reference does,
 * added over its window; outputs in order */
#define AVG_BWD(T, add)                                                                        \
    BWD_TASKS(T, {                                                                             \
        T g[CHUNK];                                                                            \
        for (int64_t oy = 0; oy < OH; oy++)                                                    \
            for (int64_t ox = 0; ox < OW; ox++) {                                              \
                int64_t hs, he, ws, we;                                                        \
                double div = avg_window(a, oy, ox, &hs, &he, &ws, &we);                        \
                if (div <= 0) continue;                                                        \
                const T *go = (const T *)gy + ((n * OH + oy) * OW + ox) * C + c0;              \
                for (int64_t c = 0; c < cn; c++) g[c] = (T)(go[c] / div);                      \
                for (int64_t yy = hs; yy < he; yy++)                                           \
                    for (int64_t xx = ws; xx < we; xx++) add(gxn + (yy * W + xx) * C, g, cn);  \
            }                                                                                  \
    })

void td_cpu_pool2d_nhwc_backward(const td_pool2d_args *a, const void *gy, const int64_t *idx, void *gx)
{
    bool f32 = a->dtype == TD_FLOAT32;
    if (a->kind == TD_POOL_MAX) {
        if (f32)
            MAX_BWD(float);
        else
            MAX_BWD(double);
    } else if (f32) {
        AVG_BWD(float, add_row_f32);
    } else {
        AVG_BWD(double, add_row_f64);
    }
}
