/* CPU fused scaled dot-product attention (kernels/attention.h).
 *
 * Forward: OpenMP over (bh, query block); each block walks the key tiles
 * keeping a running max and sum per row (FlashAttention-2), so memory is
 * one Br x Bc tile and one Br x Ev accumulator per thread, never L x S.
 * Backward: OpenMP over bh; each head walks key tiles outside and query
 * tiles inside, recomputing the probabilities from the saved logsumexp,
 * and owns its rows of gq, gk and gv, so no sum is shared between threads
 * and the bits do not depend on the thread count.
 *
 * The tile products go through dnnl_sgemm for float32, each thread's call
 * sequential (the parallelism is the tiles'); float64, for gradcheck and
 * references, through plain loops, OpenBLAS inside an OpenMP region
 * starting threads of its own. The row passes (mask, max, exp and sum)
 * are vectorised; float32 takes tide's td_cpu_expf_nonpos, as softmax
 * does (every argument is a score minus its row's max or logsumexp, so
 * <= 0). The two dtypes share one body, written once as a macro over the
 * element type. */
#include "cpu.h"
#include "iter.h"
#include "../attention.h"
#include "../counter_bits.h"

#include <math.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdlib.h>
#include <string.h>

enum { BR = 64, BC = 128 };

/* C (m x n, ldc) = alpha op(A) op(B) + beta C, row-major */
static void tile_gemm_f32(bool ta, bool tb, int64_t m, int64_t n, int64_t k, float alpha,
                          const float *a, int64_t lda, const float *b, int64_t ldb, float beta,
                          float *c, int64_t ldc)
{
    dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void tile_gemm_f64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, double alpha,
                          const double *a, int64_t lda, const double *b, int64_t ldb, double beta,
                          double *c, int64_t ldc)
{
    for (int64_t i = 0; i < m; i++) {
        double *ci = c + i * ldc;
        for (int64_t j = 0; j < n; j++) ci[j] = beta == 0 ? 0 : beta * ci[j];
        for (int64_t p = 0; p < k; p++) {
            double av = alpha * (ta ? a[p * lda + i] : a[i * lda + p]);
            if (av == 0) continue;
            if (tb)
                for (int64_t j = 0; j < n; j++) ci[j] += av * b[j * ldb + p];
            else
                for (int64_t j = 0; j < n; j++) ci[j] += av * b[p * ldb + j];
        }
    }
}

/* keep bit of dropout for element (b, i, j) of the probabilities */
static inline bool keep(const td_attn_args *a, uint64_t thr, int64_t b, int64_t i, int64_t j)
{
    uint64_t idx = (uint64_t)((b * a->l + i) * a->s + j);
    return (td_counter_bits(a->key, idx) >> 11) >= thr;
}

static inline uint64_t keep_threshold(double p)
{
    return p >= 1 ? UINT64_MAX : (uint64_t)(p * 9007199254740992.0);
}

/* -inf where (i, j) does not take part, else the additive mask (0 if none) */
#define MASK_VALUE(T)                                                                              \
    static inline T mask_value_##T(const td_attn_args *a, const void *mask, int64_t b, int64_t i,  \
                                   int64_t j)                                                      \
    {                                                                                              \
        if (a->causal && j > i) return (T)-INFINITY;                                               \
        if (a->mask_kind == TD_ATTN_MASK_NONE) return 0;                                           \
        int64_t off = b / a->heads * a->mask_stride[0] + b % a->heads * a->mask_stride[1] +        \
                      i * a->mask_stride[2] + j * a->mask_stride[3];                               \
        if (a->mask_kind == TD_ATTN_MASK_BOOL)                                                     \
            return ((const uint8_t *)mask)[off] ? (T)0 : (T)-INFINITY;                             \
        return ((const T *)mask)[off];                                                             \
    }
MASK_VALUE(float)
MASK_VALUE(double)

/* row[c] for keys j0 + c, c < nc, of query i: the mask added, -inf where
 * the key does not take part */
#define ADD_MASK(T)                                                                                \
    static inline void add_mask_##T(const td_attn_args *a, const void *mask, int64_t b, int64_t i, \
                                    int64_t j0, T *row, int64_t nc)                                \
    {                                                                                              \
        if (a->mask_kind != TD_ATTN_MASK_NONE) {                                                   \
            for (int64_t c = 0; c < nc; c++) row[c] += mask_value_##T(a, mask, b, i, j0 + c);      \
        } else if (a->causal) {                                                                    \
            for (int64_t c = i - j0 + 1 > 0 ? i - j0 + 1 : 0; c < nc; c++) row[c] = (T)-INFINITY;  \
        }                                                                                          \
    }
ADD_MASK(float)
ADD_MASK(double)

static inline double row_max_f64(const double *x, int64_t n)
{
    double m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < n; j++) m = x[j] > m ? x[j] : m;
    return m;
}

/* the keys a query block [i0, i0 + nr) can see */
static int64_t key_end(const td_attn_args *a, int64_t i0, int64_t nr)
{
    if (!a->causal) return a->s;
    return i0 + nr < a->s ? i0 + nr : a->s;
}

#define ATTN_FORWARD(T, GEMM, EXP, LOG, ROWMAX)                                                    \
    static td_status forward_##T(const td_attn_args *a, const T *q, const T *k, const T *v,        \
                                 const void *mask, T *out, T *lse)                                 \
    {                                                                                              \
        int64_t nqb = (a->l + BR - 1) / BR, tasks = a->bh * nqb;                                   \
        int nt = td_cpu_threads_for(a->bh * a->l * a->s * (a->e + a->ev), TD_CPU_GRAIN);           \
        if (nt > tasks) nt = (int)tasks;                                                           \
        uint64_t thr = keep_threshold(a->dropout_p);                                               \
        T inv_keep = a->dropout_p > 0 && a->dropout_p < 1 ? (T)(1 / (1 - a->dropout_p)) : (T)0;    \
        bool failed = false;                                                                       \
        _Pragma("omp parallel num_threads(nt) if (nt > 1)")                                        \
        {                                                                                          \
            int saved = omp_get_max_threads();                                                     \
            omp_set_num_threads(1);                                                                \
            T *sb = malloc(sizeof(T) * (BR * BC + BR * a->ev + 2 * BR));                           \
            if (!sb) {                                                                             \
                _Pragma("omp atomic write")                                                        \
                failed = true;                                                                     \
            }                                                                                      \
            _Pragma("omp for schedule(static)")                                                    \
            for (int64_t t = 0; t < tasks; t++) {                                                  \
                if (!sb) continue;                                                                 \
                T *ob = sb + BR * BC, *m = ob + BR * a->ev, *l = m + BR;                           \
                int64_t b = t / nqb, i0 = t % nqb * BR;                                            \
                int64_t nr = a->l - i0 < BR ? a->l - i0 : BR;                                      \
                const T *qb = q + (b * a->l + i0) * a->e;                                          \
                const T *kb = k + b * a->s * a->e, *vb = v + b * a->s * a->ev;                     \
                memset(ob, 0, sizeof(T) * nr * a->ev);                                             \
                for (int64_t r = 0; r < nr; r++) m[r] = (T)-INFINITY, l[r] = 0;                    \
                int64_t kend = key_end(a, i0, nr);                                                 \
                for (int64_t j0 = 0; j0 < kend; j0 += BC) {                                        \
                    int64_t nc = kend - j0 < BC ? kend - j0 : BC;                                  \
                    GEMM(false, true, nr, nc, a->e, (T)a->scale, qb, a->e, kb + j0 * a->e, a->e,   \
                         (T)0, sb, BC);                                                            \
                    for (int64_t r = 0; r < nr; r++) {                                             \
                        T *row = sb + r * BC;                                                      \
                        add_mask_##T(a, mask, b, i0 + r, j0, row, nc);                             \
                        T mx = ROWMAX(row, nc);                                                    \
                        T mnew = mx > m[r] ? mx : m[r];                                            \
                        if (mnew == (T)-INFINITY) { /* nothing takes part yet */                   \
                            memset(row, 0, sizeof(T) * nc);                                        \
                            continue;                                                              \
                        }                                                                          \
                        T corr = EXP(m[r] - mnew), sum = 0;                                        \
                        _Pragma("omp simd reduction(+ : sum)")                                     \
                        for (int64_t c = 0; c < nc; c++) {                                         \
                            T p = EXP(row[c] - mnew);                                              \
                            sum += p;                                                              \
                            row[c] = p;                                                            \
                        }                                                                          \
                        if (a->dropout_p > 0)                                                      \
                            for (int64_t c = 0; c < nc; c++)                                       \
                                row[c] = keep(a, thr, b, i0 + r, j0 + c) ? row[c] * inv_keep : 0;  \
                        l[r] = l[r] * corr + sum;                                                  \
                        m[r] = mnew;                                                               \
                        if (corr != 1)                                                             \
                            for (int64_t e = 0; e < a->ev; e++) ob[r * a->ev + e] *= corr;         \
                    }                                                                              \
                    GEMM(false, false, nr, a->ev, nc, (T)1, sb, BC, vb + j0 * a->ev, a->ev, (T)1,  \
                         ob, a->ev);                                                               \
                }                                                                                  \
                for (int64_t r = 0; r < nr; r++) {                                                 \
                    T *o = out + (b * a->l + i0 + r) * a->ev, inv = 1 / l[r];                      \
                    for (int64_t e = 0; e < a->ev; e++)                                            \
                        o[e] = l[r] > 0 ? ob[r * a->ev + e] * inv : (T)NAN;                        \
                    lse[b * a->l + i0 + r] = l[r] > 0 ? m[r] + LOG(l[r]) : (T)-INFINITY;           \
                }                                                                                  \
            }                                                                                      \
            free(sb);                                                                              \
            omp_set_num_threads(saved);                                                            \
        }                                                                                          \
        if (failed) return td_error(TD_ENOMEM, 0, "scaled_dot_product_attention: out of memory");  \
        return TD_OK;                                                                              \
    }

ATTN_FORWARD(float, tile_gemm_f32, td_cpu_expf_nonpos, logf, td_cpu_row_max_f32)
ATTN_FORWARD(double, tile_gemm_f64, exp, log, row_max_f64)

/* P = exp(s + mask - lse) for one tile, its dropped copy pz (when dropout),
 * then, from dpz = gout v^T, ds = P (dpz Z - D) written over dp */
#define ATTN_BACKWARD(T, GEMM, EXP)                                                                \
    static td_status backward_##T(const td_attn_args *a, const T *q, const T *k, const T *v,       \
                                  const void *mask, const T *out, const T *lse, const T *go,       \
                                  T *gq, T *gk, T *gv)                                             \
    {                                                                                              \
        int nt = td_cpu_threads_for(a->bh * a->l * a->s * (a->e + a->ev), TD_CPU_GRAIN);           \
        if (nt > a->bh) nt = (int)a->bh;                                                           \
        uint64_t thr = keep_threshold(a->dropout_p);                                               \
        bool drop = a->dropout_p > 0;                                                              \
        T inv_keep = drop && a->dropout_p < 1 ? (T)(1 / (1 - a->dropout_p)) : (T)0;                \
        T sc = (T)a->scale;                                                                        \
        bool failed = false;                                                                       \
        _Pragma("omp parallel num_threads(nt) if (nt > 1)")                                        \
        {                                                                                          \
            int saved = omp_get_max_threads();                                                     \
            omp_set_num_threads(1);                                                                \
            T *p = malloc(sizeof(T) * (3 * BR * BC + a->l));                                       \
            if (!p) {                                                                              \
                _Pragma("omp atomic write")                                                        \
                failed = true;                                                                     \
            }                                                                                      \
            _Pragma("omp for schedule(static)")                                                    \
            for (int64_t b = 0; b < a->bh; b++) {                                                  \
                if (!p) continue;                                                                  \
                T *pz = p + BR * BC, *dp = pz + BR * BC, *dd = dp + BR * BC;                       \
                const T *qb = q + b * a->l * a->e, *kb = k + b * a->s * a->e;                      \
                const T *vb = v + b * a->s * a->ev, *ob = out + b * a->l * a->ev;                  \
                const T *gob = go + b * a->l * a->ev, *lb = lse + b * a->l;                        \
                T *gqb = gq + b * a->l * a->e, *gkb = gk + b * a->s * a->e;                        \
                T *gvb = gv + b * a->s * a->ev;                                                    \
                for (int64_t i = 0; i < a->l; i++) {                                               \
                    T d = 0;                                                                       \
                    for (int64_t e = 0; e < a->ev; e++)                                            \
                        d += gob[i * a->ev + e] * ob[i * a->ev + e];                               \
                    dd[i] = d;                                                                     \
                }                                                                                  \
                memset(gqb, 0, sizeof(T) * a->l * a->e);                                           \
                memset(gkb, 0, sizeof(T) * a->s * a->e);                                           \
                memset(gvb, 0, sizeof(T) * a->s * a->ev);                                          \
                for (int64_t j0 = 0; j0 < a->s; j0 += BC) {                                        \
                    int64_t nc = a->s - j0 < BC ? a->s - j0 : BC;                                  \
                    for (int64_t i0 = a->causal ? j0 / BR * BR : 0; i0 < a->l; i0 += BR) {         \
                        int64_t nr = a->l - i0 < BR ? a->l - i0 : BR;                              \
                        GEMM(false, true, nr, nc, a->e, sc, qb + i0 * a->e, a->e, kb + j0 * a->e,  \
                             a->e, (T)0, p, BC);                                                   \
                        GEMM(false, true, nr, nc, a->ev, (T)1, gob + i0 * a->ev, a->ev,            \
                             vb + j0 * a->ev, a->ev, (T)0, dp, BC);                                \
                        for (int64_t r = 0; r < nr; r++) {                                         \
                            T li = lb[i0 + r], di = dd[i0 + r];                                    \
                            T *pr = p + r * BC, *zr = pz + r * BC, *dr = dp + r * BC;              \
                            if (li == (T)-INFINITY) { /* no key takes part: no gradient */         \
                                memset(pr, 0, sizeof(T) * nc);                                     \
                                memset(zr, 0, sizeof(T) * nc);                                     \
                                memset(dr, 0, sizeof(T) * nc);                                     \
                                continue;                                                          \
                            }                                                                      \
                            add_mask_##T(a, mask, b, i0 + r, j0, pr, nc);                          \
                            _Pragma("omp simd")                                                    \
                            for (int64_t c = 0; c < nc; c++) pr[c] = EXP(pr[c] - li);              \
                            if (drop) {                                                            \
                                for (int64_t c = 0; c < nc; c++) {                                 \
                                    bool kp = keep(a, thr, b, i0 + r, j0 + c);                     \
                                    zr[c] = kp ? pr[c] * inv_keep : 0;                             \
                                    dr[c] = pr[c] * ((kp ? dr[c] * inv_keep : 0) - di);            \
                                }                                                                  \
                            } else {                                                               \
                                _Pragma("omp simd")                                                \
                                for (int64_t c = 0; c < nc; c++) dr[c] = pr[c] * (dr[c] - di);     \
                            }                                                                      \
                        }                                                                          \
                        GEMM(true, false, nc, a->ev, nr, (T)1, drop ? pz : p, BC,                  \
                             gob + i0 * a->ev, a->ev, (T)1, gvb + j0 * a->ev, a->ev);              \
                        GEMM(true, false, nc, a->e, nr, sc, dp, BC, qb + i0 * a->e, a->e, (T)1,    \
                             gkb + j0 * a->e, a->e);                                               \
                        GEMM(false, false, nr, a->e, nc, sc, dp, BC, kb + j0 * a->e, a->e, (T)1,   \
                             gqb + i0 * a->e, a->e);                                               \
                    }                                                                              \
                }                                                                                  \
            }                                                                                      \
            free(p);                                                                               \
            omp_set_num_threads(saved);                                                            \
        }                                                                                          \
        if (failed) return td_error(TD_ENOMEM, 0, "scaled_dot_product_attention: out of memory");  \
        return TD_OK;                                                                              \
    }

ATTN_BACKWARD(float, tile_gemm_f32, td_cpu_expf_nonpos)
ATTN_BACKWARD(double, tile_gemm_f64, exp)

static td_status cpu_forward(const td_attn_args *a, const void *q, const void *k, const void *v,
                             const void *mask, void *out, void *lse)
{
    td_cpu_threads_sync();
    if (a->dtype == TD_FLOAT32) return forward_float(a, q, k, v, mask, out, lse);
    return forward_double(a, q, k, v, mask, out, lse);
}

static td_status cpu_backward(const td_attn_args *a, const void *q, const void *k, const void *v,
                              const void *mask, const void *out, const void *lse, const void *gout,
                              void *gq, void *gk, void *gv)
{
    td_cpu_threads_sync();
    if (a->dtype == TD_FLOAT32) return backward_float(a, q, k, v, mask, out, lse, gout, gq, gk, gv);
    return backward_double(a, q, k, v, mask, out, lse, gout, gq, gk, gv);
}

const struct td_attention_kernels td_cpu_attention = {
    .forward = cpu_forward,
    .backward = cpu_backward,
};
