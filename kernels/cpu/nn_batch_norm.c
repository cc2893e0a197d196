/* CPU batch norm: per-channel statistics, apply and backward, for the
 * layers table (nn_layers.c). Plain C over contiguous float32 / float64
 * data viewed as (n, c, inner): parallel over channels, or over fixed
 * chunks of rows when inner == 1 (channels-last data, BatchNorm1d's (N, C)
 * input); sums accumulate in double in a fixed order, so the bits do not
 * depend on the thread count. As fast as oneDNN's NCHW primitives or
 * faster (docs/layers.md has the numbers). */
#include "layers.h"
#include "iter.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

/* ---- per channel ------------------------------------------------------ */

/* float64: the mean, then the squares about it (two passes); the reference */
static void bn_stats_f64(const double *x, int64_t n, int64_t c, int64_t inner, double *mean,
                         double *var)
{
#pragma omp parallel for schedule(static) if (n * c * inner >= TD_CPU_GRAIN)
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            const double *r = x + (i * c + ch) * inner;
            double rs = 0;
            for (int64_t j = 0; j < inner; j++) rs += r[j];
            s += rs;
        }
        double m = s / (double)(n * inner), v = 0;
        for (int64_t i = 0; i < n; i++) {
            const double *r = x + (i * c + ch) * inner;
            double rv = 0;
            for (int64_t j = 0; j < inner; j++) {
                double d = r[j] - m;
                rv += d * d;
            }
            v += rv;
        }
        mean[ch] = m;
        var[ch] = v / (double)(n * inner);
    }
}

/* float32: one pass of sums of d = x - K and d^2 with K the channel's first
 * value (so no cancellation when the mean is far from 0), in double over
 * 8 lanes of GCC/clang vector types; float64 keeps the two-pass loop above
 * as the reference. */
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));

static inline v4d load4(const float *p)
{
    v4f v;
    memcpy(&v, p, sizeof v);
    return __builtin_convertvector(v, v4d);
}

static inline double hsum(v4d v) { return (v[0] + v[1]) + (v[2] + v[3]); }

static void bn_stats_f32(const float *x, int64_t n, int64_t c, int64_t inner, double *mean,
                         double *var)
{
#pragma omp parallel for schedule(static) if (n * c * inner >= TD_CPU_GRAIN)
    for (int64_t ch = 0; ch < c; ch++) {
        double k = x[ch * inner], t1 = 0, t2 = 0;
        v4d kv = {k, k, k, k}, a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
        for (int64_t i = 0; i < n; i++) {
            const float *r = x + (i * c + ch) * inner;
            int64_t j = 0;
            for (; j + 8 <= inner; j += 8) {
                v4d d0 = load4(r + j) - kv, d1 = load4(r + j + 4) - kv;
                a0 += d0;
                a1 += d1;
                b0 += d0 * d0;
                b1 += d1 * d1;
            }
            for (; j < inner; j++) {
                double d = r[j] - k;
                t1 += d;
                t2 += d * d;
            }
        }
        double cnt = (double)(n * inner), dm = (hsum(a0 + a1) + t1) / cnt;
        double v = (hsum(b0 + b1) + t2) / cnt - dm * dm;
        mean[ch] = k + dm;
        var[ch] = v > 0 ? v : 0;
    }
}

#define BN_APPLY(T)                                                                                \
    do {                                                                                           \
        const T *xp = x;                                                                           \
        T *yp = y;                                                                                 \
        _Pragma("omp parallel for schedule(static) if (n * c * inner >= TD_CPU_GRAIN)")            \
        for (int64_t r = 0; r < n * c; r++) {                                                      \
            int64_t ch = r % c;                                                                    \
            T a = (T)scale[ch], b = (T)shift[ch];                                                  \
            const T *xr = xp + r * inner;                                                          \
            T *yr = yp + r * inner;                                                                \
            for (int64_t j = 0; j < inner; j++) yr[j] = xr[j] * a + b;                             \
        }                                                                                          \
    } while (0)

/* float64: the sums of gy and gy (x - mean) per channel, then gx; the reference */
static void bn_backward_f64(const double *x, const double *gy, double *gx, int64_t n, int64_t c,
                            int64_t inner, const double *mean, const double *invstd,
                            const double *gs, bool training, double *sum_gy, double *sum_gy_xhat)
{
    double cnt = (double)(n * inner);
#pragma omp parallel for schedule(static) if (n * c * inner >= TD_CPU_GRAIN)
    for (int64_t ch = 0; ch < c; ch++) {
        double m = mean[ch], is = invstd[ch], sg = 0, sgx = 0;
        for (int64_t i = 0; i < n; i++) {
            const double *xr = x + (i * c + ch) * inner, *gr = gy + (i * c + ch) * inner;
            double a = 0, b = 0;
            for (int64_t j = 0; j < inner; j++) {
                a += gr[j];
                b += gr[j] * (xr[j] - m);
            }
            sg += a;
            sgx += b;
        }
        sgx *= is;
        sum_gy[ch] = sg;
        sum_gy_xhat[ch] = sgx;
        if (!gx) continue;
        double k = gs[ch];
        double mg = training ? sg / cnt : 0, mx = training ? sgx / cnt : 0;
        for (int64_t i = 0; i < n; i++) {
            const double *xr = x + (i * c + ch) * inner, *gr = gy + (i * c + ch) * inner;
            double *o = gx + (i * c + ch) * inner;
            for (int64_t j = 0; j < inner; j++) {
                double xh = (xr[j] - m) * is;
                o[j] = k * (gr[j] - mg - xh * mx);
            }
        }
    }
}

/* float32 backward's gx = A gy + D (x - mf) + E, in float: the channel's
 * A, D, E and mf = float(mean) from its sums (sgx = sum gy xhat), x - mean
 * taken about mf and the rest of the mean folded into E */
static inline void bn_coefs_f32(double m, double is, double k, double sg, double sgx, double cnt,
                                bool training, float *A, float *D, float *E, float *mf)
{
    double mg = training ? sg / cnt : 0, mx = training ? sgx / cnt : 0;
    double dd = -k * is * mx;
    *mf = (float)m;
    *A = (float)k;
    *D = (float)dd;
    *E = (float)(-k * mg - dd * (m - (double)*mf));
}

/* float32: the sums in double over 8 lanes, then gx = A gy + D (x - mean)
 * + E in float with per-channel A, D, E (bn_coefs_f32) */
static void bn_backward_f32(const float *x, const float *gy, float *gx, int64_t n, int64_t c,
                            int64_t inner, const double *mean, const double *invstd,
                            const double *gs, bool training, double *sum_gy, double *sum_gy_xhat)
{
    double cnt = (double)(n * inner);
#pragma omp parallel for schedule(static) if (n * c * inner >= TD_CPU_GRAIN)
    for (int64_t ch = 0; ch < c; ch++) {
        double m = mean[ch], t1 = 0, t2 = 0;
        v4d mv = {m, m, m, m}, a0 = {0}, a1 = {0}, b0 = {0}, b1 = {0};
        for (int64_t i = 0; i < n; i++) {
            const float *xr = x + (i * c + ch) * inner, *gr = gy + (i * c + ch) * inner;
            int64_t j = 0;
            for (; j + 8 <= inner; j += 8) {
                v4d g0 = load4(gr + j), g1 = load4(gr + j + 4);
                a0 += g0;
                a1 += g1;
                b0 += g0 * (load4(xr + j) - mv);
                b1 += g1 * (load4(xr + j + 4) - mv);
            }
            for (; j < inner; j++) {
                t1 += gr[j];
                t2 += gr[j] * (xr[j] - m);
            }
        }
        double sg = hsum(a0 + a1) + t1, sgx = (hsum(b0 + b1) + t2) * invstd[ch];
        sum_gy[ch] = sg;
        sum_gy_xhat[ch] = sgx;
        if (!gx) continue;
        float A, D, E, mf;
        bn_coefs_f32(m, invstd[ch], gs[ch], sg, sgx, cnt, training, &A, &D, &E, &mf);
        for (int64_t i = 0; i < n; i++) {
            const float *xr = x + (i * c + ch) * inner, *gr = gy + (i * c + ch) * inner;
            float *o = gx + (i * c + ch) * inner;
            for (int64_t j = 0; j < inner; j++) o[j] = A * gr[j] + D * (xr[j] - mf) + E;
        }
    }
}

/* ---- batch norm over rows (inner == 1) ---------------------------------- */

/* With inner == 1, x is rows x channels, row-major: a channels-last
 * (N, C, H, W) tensor is (N H W) x C, BatchNorm1d's (N, C) input N x C.
 * The per-channel loops above would read one value per cache line there;
 * these go along the rows, vectorised over the channels. Each chunk of rows
 * sums into its own slot of per-channel doubles and the slots are added in
 * chunk order; the chunks depend on n and c only, so the bits do not depend
 * on the thread count. */

#define BN_CHUNK_MIN  8192 /* values per chunk at least: a smaller task costs more than it saves */
#define BN_CHUNK_ROWS 16   /* rows per chunk at least: adding the slots is then 1/8 of reading x */
#define BN_CHUNKS_MAX 64   /* chunks at most, so the slots stay small: 128 c doubles */
#define BN_BLOCK      256  /* channels per block of the slots' sum and of apply's scale and shift */

/* rows per chunk (*count chunks); c >= 1 */
static int64_t bn_chunk_rows(int64_t n, int64_t c, int64_t *count)
{
    int64_t rows = (BN_CHUNK_MIN + c - 1) / c, least = (n + BN_CHUNKS_MAX - 1) / BN_CHUNKS_MAX;
    if (rows < BN_CHUNK_ROWS) rows = BN_CHUNK_ROWS;
    if (rows < least) rows = least;
    *count = (n + rows - 1) / rows;
    return rows;
}

/* what a chunk's sums read: x, and gy and the mean for backward's */
typedef struct {
    const void *x, *g;
    const double *m;
    int64_t c;
    const float *mf; /* float32 backward: float(mean) */
} bn_rows_ctx;

/* adds rows [r0, r1) into the zeroed slot s1[c], s2[c] */
typedef void (*bn_chunk_fn)(const bn_rows_ctx *a, int64_t r0, int64_t r1, double *restrict s1,
                            double *restrict s2);

/* t1 (and t2 when not NULL) = fn's sums over all n rows, from part (2 c
 * doubles per chunk) added in chunk order */
static void bn_rows_sum(bn_chunk_fn fn, const bn_rows_ctx *a, int64_t n, double *part, double *t1,
                        double *t2)
{
    const int64_t c = a->c;
    int64_t count, rows = bn_chunk_rows(n, c, &count);
#pragma omp parallel for schedule(static) if (n * c >= TD_CPU_GRAIN)
    for (int64_t k = 0; k < count; k++) {
        int64_t r0 = k * rows, r1 = n - r0 < rows ? n : r0 + rows;
        double *s = part + k * 2 * c;
        memset(s, 0, sizeof(double) * (size_t)(2 * c));
        fn(a, r0, r1, s, s + c);
    }
    /* each channel's slots in chunk order; parallel over blocks of channels */
#pragma omp parallel for schedule(static) if (count * c >= TD_CPU_GRAIN)
    for (int64_t j0 = 0; j0 < c; j0 += BN_BLOCK) {
        int64_t j1 = c - j0 < BN_BLOCK ? c : j0 + BN_BLOCK;
        for (int64_t j = j0; j < j1; j++) t1[j] = 0;
        if (t2)
            for (int64_t j = j0; j < j1; j++) t2[j] = 0;
        for (int64_t k = 0; k < count; k++) {
            const double *s = part + k * 2 * c;
            for (int64_t j = j0; j < j1; j++) t1[j] += s[j];
            if (t2)
                for (int64_t j = j0; j < j1; j++) t2[j] += s[c + j];
        }
    }
}

/* The chunk loops add several rows (8 in float for float32, 4 pairwise in
 * double for float64's gradient) before touching the slot: fewer slot loads
 * and stores, which otherwise cost more than reading x. */

/* float32 statistics' one pass: d = x - K, K the channel's first value (row 0).
 * Blocks of 8 rows are summed in float (vectorised over channels, 8 terms:
 * a relative error near 5e-7 of the block's sum), then added to the double
 * slot: converting every element to double held these loops at half the
 * speed of memory. */
static void chunk_shifted_f32(const bn_rows_ctx *a, int64_t r0, int64_t r1, double *restrict s1,
                              double *restrict s2)
{
    const float *x = a->x;
    const int64_t c = a->c;
    int64_t r = r0;
    for (; r + 8 <= r1; r += 8) {
        const float *xr = x + r * c;
        for (int64_t j = 0; j < c; j++) {
            float k = x[j], e = 0, f = 0;
            for (int i = 0; i < 8; i++) {
                float d = xr[i * c + j] - k;
                e += d;
                f += d * d;
            }
            s1[j] += e;
            s2[j] += f;
        }
    }
    for (; r < r1; r++) {
        const float *xr = x + r * c;
        for (int64_t j = 0; j < c; j++) {
            double d = (double)xr[j] - (double)x[j];
            s1[j] += d;
            s2[j] += d * d;
        }
    }
}

/* float64 statistics' first pass (the sums) and second (squares about the mean) */
static void chunk_sum_f64(const bn_rows_ctx *a, int64_t r0, int64_t r1, double *restrict s1,
                          double *restrict s2)
{
    (void)s2;
    const double *x = a->x;
    const int64_t c = a->c;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t j = 0; j < c; j++) s1[j] += x[r * c + j];
}

static void chunk_sqdev_f64(const bn_rows_ctx *a, int64_t r0, int64_t r1, double *restrict s1,
                            double *restrict s2)
{
    (void)s2;
    const double *x = a->x, *m = a->m;
    const int64_t c = a->c;
    for (int64_t r = r0; r < r1; r++)
        for (int64_t j = 0; j < c; j++) {
            double d = x[r * c + j] - m[j];
            s1[j] += d * d;
        }
}

/* float64 backward's sums of gy and gy (x - mean), 4 rows pairwise */
static void chunk_grad_f64(const bn_rows_ctx *a, int64_t r0, int64_t r1, double *restrict s1,
                           double *restrict s2)
{
    const double *x = a->x, *g = a->g, *m = a->m;
    const int64_t c = a->c;
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) {
        const double *x0 = x + r * c, *x1 = x0 + c, *x2 = x1 + c, *x3 = x2 + c;
        const double *g0 = g + r * c, *g1 = g0 + c, *g2 = g1 + c, *g3 = g2 + c;
        for (int64_t j = 0; j < c; j++) {
            s1[j] += (g0[j] + g1[j]) + (g2[j] + g3[j]);
            s2[j] += (g0[j] * (x0[j] - m[j]) + g1[j] * (x1[j] - m[j])) +
                     (g2[j] * (x2[j] - m[j]) + g3[j] * (x3[j] - m[j]));
        }
    }
    for (; r < r1; r++) {
        const double *xr = x + r * c, *gr = g + r * c;
        for (int64_t j = 0; j < c; j++) {
            s1[j] += gr[j];
            s2[j] += gr[j] * (xr[j] - m[j]);
        }
    }
}

/* float32: sums of gy and gy (x - mf), mf = float(mean), over blocks of 8
 * rows in float as chunk_shifted_f32; the caller adds (mf - mean) sum_gy */
static void chunk_grad_f32(const bn_rows_ctx *a, int64_t r0, int64_t r1, double *restrict s1,
                           double *restrict s2)
{
    const float *x = a->x, *g = a->g, *mf = a->mf;
    const int64_t c = a->c;
    int64_t r = r0;
    for (; r + 8 <= r1; r += 8) {
        const float *xr = x + r * c, *gr = g + r * c;
        for (int64_t j = 0; j < c; j++) {
            float e = 0, f = 0;
            for (int i = 0; i < 8; i++) {
                float gi = gr[i * c + j];
                e += gi;
                f += gi * (xr[i * c + j] - mf[j]);
            }
            s1[j] += e;
            s2[j] += f;
        }
    }
    for (; r < r1; r++) {
        const float *xr = x + r * c, *gr = g + r * c;
        for (int64_t j = 0; j < c; j++) {
            s1[j] += gr[j];
            s2[j] += (double)gr[j] * (double)(xr[j] - mf[j]);
        }
    }
}

/* false when the slots cannot be allocated (or there is nothing to sum) */
static bool bn_rows_stats(td_dtype dt, const void *x, int64_t n, int64_t c, double *mean,
                          double *var)
{
    if (n <= 0 || c <= 0) return false;
    int64_t count;
    bn_chunk_rows(n, c, &count);
    double *part = malloc(sizeof(double) * (size_t)(2 * c * count)), cnt = (double)n;
    if (!part) return false;
    bn_rows_ctx a = {x, NULL, mean, c, NULL};
    if (dt == TD_FLOAT32) {
        const float *k = x;
        bn_rows_sum(chunk_shifted_f32, &a, n, part, mean, var);
        for (int64_t j = 0; j < c; j++) {
            double dm = mean[j] / cnt, v = var[j] / cnt - dm * dm;
            mean[j] = k[j] + dm;
            var[j] = v > 0 ? v : 0;
        }
    } else {
        bn_rows_sum(chunk_sum_f64, &a, n, part, mean, NULL);
        for (int64_t j = 0; j < c; j++) mean[j] /= cnt;
        bn_rows_sum(chunk_sqdev_f64, &a, n, part, var, NULL);
        for (int64_t j = 0; j < c; j++) var[j] /= cnt;
    }
    free(part);
    return true;
}

/* y = x * T(scale) + T(shift), as BN_APPLY, over rows [r0, r1) of the
 * block of w channels from j0 */
#define BN_APPLY_BLOCK(S, T)                                                                       \
    TD_CPU_ALWAYS_INLINE void apply_block_##S(const T *x, T *y, int64_t r0, int64_t r1, int64_t c, \
                                              int64_t j0, int64_t w, const double *scale,          \
                                              const double *shift)                                 \
    {                                                                                              \
        T sa[BN_BLOCK], sb[BN_BLOCK];                                                              \
        for (int64_t j = 0; j < w; j++) sa[j] = (T)scale[j0 + j], sb[j] = (T)shift[j0 + j];        \
        for (int64_t r = r0; r < r1; r++) {                                                        \
            const T *xr = x + r * c + j0;                                                          \
            T *yr = y + r * c + j0;                                                                \
            for (int64_t j = 0; j < w; j++) yr[j] = xr[j] * sa[j] + sb[j];                         \
        }                                                                                          \
    }
BN_APPLY_BLOCK(f32, float)
BN_APPLY_BLOCK(f64, double)

/* a block of channels at a time, so scale and shift stay in L1 */
static void bn_rows_apply(td_dtype dt, const void *x, void *y, int64_t n, int64_t c,
                          const double *scale, const double *shift)
{
    int64_t count, rows = bn_chunk_rows(n, c, &count);
#pragma omp parallel for schedule(static) if (n * c >= TD_CPU_GRAIN)
    for (int64_t k = 0; k < count; k++) {
        int64_t r0 = k * rows, r1 = n - r0 < rows ? n : r0 + rows;
        for (int64_t j0 = 0; j0 < c; j0 += BN_BLOCK) {
            int64_t w = c - j0 < BN_BLOCK ? c - j0 : BN_BLOCK;
            if (dt == TD_FLOAT32)
                apply_block_f32(x, y, r0, r1, c, j0, w, scale, shift);
            else
                apply_block_f64(x, y, r0, r1, c, j0, w, scale, shift);
        }
    }
}

/* gx from per-channel arrays p (c each): float32 A, D, E, mf as
 * bn_coefs_f32; float64 gs, mean, invstd, mg, mx as bn_backward_f64 */
static void bn_rows_gx(td_dtype dt, const void *x, const void *gy, void *gx, int64_t n, int64_t c,
                       const void *p, const double *mean, const double *invstd, const double *gs)
{
    int64_t count, rows = bn_chunk_rows(n, c, &count);
#pragma omp parallel for schedule(static) if (n * c >= TD_CPU_GRAIN)
    for (int64_t k = 0; k < count; k++) {
        int64_t r0 = k * rows, r1 = n - r0 < rows ? n : r0 + rows;
        if (dt == TD_FLOAT32) {
            const float *A = p, *D = A + c, *E = D + c, *mf = E + c;
            for (int64_t r = r0; r < r1; r++) {
                const float *xr = (const float *)x + r * c, *gr = (const float *)gy + r * c;
                float *o = (float *)gx + r * c;
                for (int64_t j = 0; j < c; j++) o[j] = A[j] * gr[j] + D[j] * (xr[j] - mf[j]) + E[j];
            }
        } else {
            const double *mg = p, *mx = mg + c;
            for (int64_t r = r0; r < r1; r++) {
                const double *xr = (const double *)x + r * c, *gr = (const double *)gy + r * c;
                double *o = (double *)gx + r * c;
                for (int64_t j = 0; j < c; j++) {
                    double xh = (xr[j] - mean[j]) * invstd[j];
                    o[j] = gs[j] * (gr[j] - mg[j] - xh * mx[j]);
                }
            }
        }
    }
}

static bool bn_rows_backward(td_dtype dt, const void *x, const void *gy, void *gx, int64_t n,
                             int64_t c, const double *mean, const double *invstd, const double *gs,
                             bool training, double *sum_gy, double *sum_gy_xhat)
{
    if (n <= 0 || c <= 0) return false;
    int64_t count;
    bn_chunk_rows(n, c, &count);
    /* the slots, then 2 c doubles of per-channel coefficients for gx */
    double *part = malloc(sizeof(double) * (size_t)(2 * c * (count + 1))), cnt = (double)n;
    float *mf = dt == TD_FLOAT32 ? malloc(sizeof(float) * (size_t)c) : NULL;
    if (!part || (dt == TD_FLOAT32 && !mf)) {
        free(part);
        free(mf);
        return false;
    }
    if (mf)
        for (int64_t j = 0; j < c; j++) mf[j] = (float)mean[j];
    bn_rows_ctx a = {x, gy, mean, c, mf};
    bn_rows_sum(dt == TD_FLOAT32 ? chunk_grad_f32 : chunk_grad_f64, &a, n, part, sum_gy,
                sum_gy_xhat);
    if (mf) /* sum gy (x - mean) = sum gy (x - mf) + (mf - mean) sum gy */
        for (int64_t j = 0; j < c; j++) sum_gy_xhat[j] += ((double)mf[j] - mean[j]) * sum_gy[j];
    free(mf);
    for (int64_t j = 0; j < c; j++) sum_gy_xhat[j] *= invstd[j];
    if (gx) {
        double *coef = part + 2 * c * count;
        if (dt == TD_FLOAT32) {
            float *A = (float *)coef, *D = A + c, *E = D + c, *mf = E + c;
            for (int64_t j = 0; j < c; j++)
                bn_coefs_f32(mean[j], invstd[j], gs[j], sum_gy[j], sum_gy_xhat[j], cnt, training,
                             A + j, D + j, E + j, mf + j);
        } else {
            for (int64_t j = 0; j < c; j++) {
                coef[j] = training ? sum_gy[j] / cnt : 0;
                coef[c + j] = training ? sum_gy_xhat[j] / cnt : 0;
            }
        }
        bn_rows_gx(dt, x, gy, gx, n, c, coef, mean, invstd, gs);
    }
    free(part);
    return true;
}

/* inner == 1 goes to the rows loops, which leave it to the per-channel
 * loops only when their slots cannot be allocated */
void td_cpu_bn_stats(td_dtype dt, const void *x, int64_t n, int64_t c, int64_t inner, double *mean,
                     double *var)
{
    if (inner == 1 && bn_rows_stats(dt, x, n, c, mean, var)) return;
    if (dt == TD_FLOAT32)
        bn_stats_f32(x, n, c, inner, mean, var);
    else
        bn_stats_f64(x, n, c, inner, mean, var);
}

void td_cpu_bn_apply(td_dtype dt, const void *x, void *y, int64_t n, int64_t c, int64_t inner,
                     const double *scale, const double *shift)
{
    if (inner == 1 && n > 0 && c > 0)
        bn_rows_apply(dt, x, y, n, c, scale, shift);
    else if (dt == TD_FLOAT32)
        BN_APPLY(float);
    else
        BN_APPLY(double);
}

void td_cpu_bn_backward(td_dtype dt, const void *x, const void *gy, void *gx, int64_t n, int64_t c,
                        int64_t inner, const double *mean, const double *invstd, const double *gs,
                        bool training, double *sum_gy, double *sum_gy_xhat)
{
    if (inner == 1 &&
        bn_rows_backward(dt, x, gy, gx, n, c, mean, invstd, gs, training, sum_gy, sum_gy_xhat))
        return;
    if (dt == TD_FLOAT32)
        bn_backward_f32(x, gy, gx, n, c, inner, mean, invstd, gs, training, sum_gy, sum_gy_xhat);
    else
        bn_backward_f64(x, gy, gx, n, c, inner, mean, invstd, gs, training, sum_gy, sum_gy_xhat);
}
