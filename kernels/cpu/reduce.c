/* Reductions of contiguous x viewed as (outer, n, inner) over n.
 *
 * Float sums are pairwise over a tree that depends on n alone: n is cut
 * into blocks of BLOCK elements, each block is summed by recursive
 * halving, and the block partials are combined by recursive halving too.
 * Threads only decide who computes which leaf, never the tree, so the bits
 * are the same at any thread count. Columns of `inner` are summed TILE at
 * a time as whole rows, so the inner > 1 case reads memory in order.
 *
 * bfloat16 and float16 compute in float32: sums and products accumulate in
 * float32 (4096 bfloat16 ones sum to 4096, where a bfloat16 accumulator
 * would stop at 256), each block converted as it is summed, and only the
 * result is rounded to the input's dtype. */
#include "cpu.h"
#include "iter.h"
#include "lowp.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#pragma GCC diagnostic ignored "-Wtype-limits" /* shared int64/uint8 code */

#define BLOCK 4096
#define TILE  64

typedef struct {
    td_reduce_op op;
    td_tensor *out, *idx;
    const td_tensor *x;
    int64_t outer, n, inner;
} reduce_args;

/* ---- pairwise float sums --------------------------------------------- */

static float psum_f32(const float *x, int64_t n)
{
    if (n <= 64) {
        float acc[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) acc[j] += x[i + j];
        float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < n; i++) s += x[i];
        return s;
    }
    int64_t h = (n / 2) & ~(int64_t)7;
    return psum_f32(x, h) + psum_f32(x + h, n - h);
}

static double psum_f64(const double *x, int64_t n)
{
    if (n <= 64) {
        double acc[8] = {0};
        int64_t i = 0;
        for (; i + 8 <= n; i += 8)
            for (int j = 0; j < 8; j++) acc[j] += x[i + j];
        double s =
            ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
        for (; i < n; i++) s += x[i];
        return s;
    }
    int64_t h = (n / 2) & ~(int64_t)7;
    return psum_f64(x, h) + psum_f64(x + h, n - h);
}

/* out[0..w) = sum over n rows (stride apart) of x, by halving */
static void prows_f32(const float *x, int64_t n, int64_t stride, int w, float *out)
{
    if (n <= 8) {
        for (int j = 0; j < w; j++) out[j] = x[j];
        for (int64_t i = 1; i < n; i++)
            for (int j = 0; j < w; j++) out[j] += x[i * stride + j];
        return;
    }
    float tmp[TILE];
    int64_t h = n / 2;
    prows_f32(x, h, stride, w, out);
    prows_f32(x + h * stride, n - h, stride, w, tmp);
    for (int j = 0; j < w; j++) out[j] += tmp[j];
}

static void prows_f64(const double *x, int64_t n, int64_t stride, int w, double *out)
{
    if (n <= 8) {
        for (int j = 0; j < w; j++) out[j] = x[j];
        for (int64_t i = 1; i < n; i++)
            for (int j = 0; j < w; j++) out[j] += x[i * stride + j];
        return;
    }
    double tmp[TILE];
    int64_t h = n / 2;
    prows_f64(x, h, stride, w, out);
    prows_f64(x + h * stride, n - h, stride, w, tmp);
    for (int j = 0; j < w; j++) out[j] += tmp[j];
}

static void leaf_f32(const void *x, int64_t len, int64_t inner, int w, void *out)
{
    if (inner == 1)
        *(float *)out = psum_f32(x, len);
    else
        prows_f32(x, len, inner, w, out);
}

static void leaf_f64(const void *x, int64_t len, int64_t inner, int w, void *out)
{
    if (inner == 1)
        *(double *)out = psum_f64(x, len);
    else
        prows_f64(x, len, inner, w, out);
}

/* 2-byte floats: the same halving down to leaves of up to 256, each
 * summed in four 8-lane float32 accumulators (one would wait on vaddps'
 * latency), 8 elements converted as they are loaded; rows converted TILE
 * columns at a time */
TD_CPU_ALWAYS_INLINE float psum_lowp_leaf(td_dtype dt, const uint16_t *x, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, td_cpu_lowp_load8(dt, x + i));
        a1 = _mm256_add_ps(a1, td_cpu_lowp_load8(dt, x + i + 8));
        a2 = _mm256_add_ps(a2, td_cpu_lowp_load8(dt, x + i + 16));
        a3 = _mm256_add_ps(a3, td_cpu_lowp_load8(dt, x + i + 24));
    }
    for (; i + 8 <= n; i += 8) a0 = _mm256_add_ps(a0, td_cpu_lowp_load8(dt, x + i));
    float a[8];
    _mm256_storeu_ps(a, _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
    float s = ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
    for (; i < n; i++) s += td_lowp_to_float(dt, x[i]);
    return s;
}

static float psum_bf16(const uint16_t *x, int64_t n)
{
    if (n <= 256) return psum_lowp_leaf(TD_BFLOAT16, x, n);
    int64_t h = (n / 2) & ~(int64_t)31;
    return psum_bf16(x, h) + psum_bf16(x + h, n - h);
}

static float psum_f16(const uint16_t *x, int64_t n)
{
    if (n <= 256) return psum_lowp_leaf(TD_FLOAT16, x, n);
    int64_t h = (n / 2) & ~(int64_t)31;
    return psum_f16(x, h) + psum_f16(x + h, n - h);
}

static void prows_lowp(td_dtype dt, const uint16_t *x, int64_t n, int64_t stride, int w, float *out)
{
    if (n <= 8) {
        float row[TILE];
        td_cpu_lowp_load(dt, out, x, 1, w);
        for (int64_t i = 1; i < n; i++) {
            td_cpu_lowp_load(dt, row, x + i * stride, 1, w);
            for (int j = 0; j < w; j++) out[j] += row[j];
        }
        return;
    }
    float tmp[TILE];
    int64_t h = n / 2;
    prows_lowp(dt, x, h, stride, w, out);
    prows_lowp(dt, x + h * stride, n - h, stride, w, tmp);
    for (int j = 0; j < w; j++) out[j] += tmp[j];
}

static void leaf_lowp(td_dtype dt, const void *x, int64_t len, int64_t inner, int w, void *out)
{
    if (inner == 1) {
        *(float *)out = dt == TD_BFLOAT16 ? psum_bf16(x, len) : psum_f16(x, len);
    } else {
        prows_lowp(dt, x, len, inner, w, out);
    }
}

static void leaf_bf16(const void *x, int64_t len, int64_t inner, int w, void *out)
{
    leaf_lowp(TD_BFLOAT16, x, len, inner, w, out);
}

static void leaf_f16(const void *x, int64_t len, int64_t inner, int w, void *out)
{
    leaf_lowp(TD_FLOAT16, x, len, inner, w, out);
}

static void add_f32(void *out, const void *y, int w)
{
    for (int j = 0; j < w; j++) ((float *)out)[j] += ((const float *)y)[j];
}

static void add_f64(void *out, const void *y, int w)
{
    for (int j = 0; j < w; j++) ((double *)out)[j] += ((const double *)y)[j];
}

/* scratch for a row of partial sums of either float type */
typedef union {
    float f[TILE];
    double d[TILE];
} acc_row;

typedef struct {
    int64_t es;  /* bytes per input element */
    int64_t acc; /* bytes per accumulator: float or double */
    void (*leaf)(const void *x, int64_t len, int64_t inner, int w, void *out);
    void (*add)(void *out, const void *y, int w);
} sum_kind;

static const sum_kind kind_f32 = {4, 4, leaf_f32, add_f32};
static const sum_kind kind_f64 = {8, 8, leaf_f64, add_f64};
static const sum_kind kind_bf16 = {2, 4, leaf_bf16, add_f32};
static const sum_kind kind_f16 = {2, 4, leaf_f16, add_f32};

/* one tile of columns: x points at its first element of row 0 */
typedef struct {
    const sum_kind *k;
    const char *x;
    int64_t n, inner;
    int w;
} sum_job;

static void block_leaf(const sum_job *j, int64_t b, void *out)
{
    int64_t len = j->n - b * BLOCK < BLOCK ? j->n - b * BLOCK : BLOCK;
    j->k->leaf(j->x + b * BLOCK * j->inner * j->k->es, len, j->inner, j->w, out);
}

/* blocks [b0, b0 + nb), halving over block indices */
static void blocks_sum(const sum_job *j, int64_t b0, int64_t nb, void *out)
{
    if (nb == 1) {
        block_leaf(j, b0, out);
        return;
    }
    acc_row tmp;
    int64_t h = nb / 2;
    blocks_sum(j, b0, h, out);
    blocks_sum(j, b0 + h, nb - h, &tmp);
    j->k->add(out, &tmp, j->w);
}

/* the same tree as blocks_sum, over partials computed beforehand */
static void partials_sum(const sum_job *j, const char *part, int64_t nb, void *out)
{
    int64_t row = j->w * j->k->acc;
    if (nb == 1) {
        memcpy(out, part, (size_t)row);
        return;
    }
    acc_row tmp;
    int64_t h = nb / 2;
    partials_sum(j, part, h, out);
    partials_sum(j, part + h * row, nb - h, &tmp);
    j->k->add(out, &tmp, j->w);
}

static int64_t nblocks(int64_t n) { return n <= BLOCK ? 1 : (n + BLOCK - 1) / BLOCK; }

static void sum_serial(const sum_job *j, void *out)
{
    if (j->n == 0) {
        memset(out, 0, (size_t)(j->w * j->k->acc));
        return;
    }
    blocks_sum(j, 0, nblocks(j->n), out);
}

/* one giant row: its leaves on all threads, then the tree */
static void sum_blocks_parallel(const sum_job *j, int nt, void *out)
{
    int64_t nb = nblocks(j->n), row = j->w * j->k->acc;
    char *part = malloc((size_t)(nb * row));
    if (!part) {
        sum_serial(j, out);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static)
    for (int64_t b = 0; b < nb; b++) block_leaf(j, b, part + b * row);
    partials_sum(j, part, nb, out);
    free(part);
}

/* ---- storing results in out's dtype ---------------------------------- */

static void put_f(const td_tensor *t, int64_t i, double v)
{
    char *p = td_cpu_ptr(t);
    switch (t->dtype) {
    case TD_FLOAT32: ((float *)p)[i] = (float)v; break;
    case TD_FLOAT64: ((double *)p)[i] = v; break;
    case TD_INT64: ((int64_t *)p)[i] = td_cpu_f2i(v); break;
    case TD_BFLOAT16:
    case TD_FLOAT16: ((uint16_t *)p)[i] = td_float_to_lowp(t->dtype, (float)v); break;
    default: ((uint8_t *)p)[i] = (uint8_t)td_cpu_f2i(v); break;
    }
}

static void put_i(const td_tensor *t, int64_t i, int64_t v)
{
    char *p = td_cpu_ptr(t);
    switch (t->dtype) {
    case TD_FLOAT32: ((float *)p)[i] = (float)v; break;
    case TD_FLOAT64: ((double *)p)[i] = (double)v; break;
    case TD_INT64: ((int64_t *)p)[i] = v; break;
    case TD_BFLOAT16:
    case TD_FLOAT16: ((uint16_t *)p)[i] = td_float_to_lowp(t->dtype, (float)v); break;
    default: ((uint8_t *)p)[i] = (uint8_t)v; break;
    }
}

static void float_sum_item(const reduce_args *r, int64_t o, int64_t c0, int w, int nt)
{
    td_dtype dt = r->x->dtype;
    const sum_kind *k = dt == TD_FLOAT64    ? &kind_f64
                        : dt == TD_BFLOAT16 ? &kind_bf16
                        : dt == TD_FLOAT16  ? &kind_f16
                                            : &kind_f32;
    sum_job j = {k, td_cpu_ptr(r->x) + (o * r->n * r->inner + c0) * k->es, r->n, r->inner, w};
    acc_row acc;
    if (nt > 1)
        sum_blocks_parallel(&j, nt, &acc);
    else
        sum_serial(&j, &acc);
    for (int c = 0; c < w; c++)
        put_f(r->out, o * r->inner + c0 + c, k->acc == 4 ? (double)acc.f[c] : acc.d[c]);
}

/* ---- everything else: one pass over n per tile ----------------------- */

static inline bool isnan_f(float v) { return v != v; }
static inline bool isnan_d(double v) { return v != v; }
static inline bool isnan_i(int64_t v)
{
    (void)v;
    return false;
}
#define ISNAN(v) _Generic((v), float : isnan_f, double : isnan_d, default : isnan_i)(v)

/* the first NaN wins, as does the first of equal extremes */
static void extreme_lowp(const reduce_args *r, int64_t o, int64_t c0, int w)
{
    bool want_max = r->op == TD_MAX || r->op == TD_ARGMAX;
    bool arg = r->op == TD_ARGMAX || r->op == TD_ARGMIN;
    int64_t pos = o * r->inner + c0, inner = r->inner;
    td_dtype dt = r->x->dtype;
    const uint16_t *x = (const uint16_t *)td_cpu_ptr(r->x) + o * r->n * inner + c0;
    float best[TILE], row[TILE];
    int64_t at[TILE];
    if (r->n > 0) td_cpu_lowp_load(dt, best, x, 1, w);
    for (int j = 0; j < w; j++) {
        if (r->n == 0) best[j] = 0;
        at[j] = 0;
    }
    for (int64_t i = 1; i < r->n; i++) {
        td_cpu_lowp_load(dt, row, x + i * inner, 1, w);
        for (int j = 0; j < w; j++) {
            float v = row[j], b = best[j];
            if (b == b && (v != v || (want_max ? v > b : v < b))) {
                best[j] = v;
                at[j] = i;
            }
        }
    }
    for (int j = 0; j < w; j++) {
        if (arg) {
            put_i(r->out, pos + j, at[j]);
            continue;
        }
        put_f(r->out, pos + j, (double)best[j]);
        if (r->idx) ((int64_t *)td_cpu_ptr(r->idx))[pos + j] = at[j];
    }
}

static void extreme_item(const reduce_args *r, int64_t o, int64_t c0, int w)
{
    bool want_max = r->op == TD_MAX || r->op == TD_ARGMAX;
    bool arg = r->op == TD_ARGMAX || r->op == TD_ARGMIN;
    int64_t pos = o * r->inner + c0, inner = r->inner;
    if (td_dtype_is_lowp(r->x->dtype)) {
        extreme_lowp(r, o, c0, w);
        return;
    }
    TD_CPU_DISPATCH(r->x->dtype, {
        const T *x = (const T *)td_cpu_ptr(r->x) + o * r->n * inner + c0;
        T best[TILE];
        int64_t at[TILE];
        for (int j = 0; j < w; j++) {
            best[j] = r->n > 0 ? x[j] : 0;
            at[j] = 0;
        }
        for (int64_t i = 1; i < r->n; i++)
            for (int j = 0; j < w; j++) {
                T v = x[i * inner + j], b = best[j];
                if (!ISNAN(b) && (ISNAN(v) || (want_max ? v > b : v < b))) {
                    best[j] = v;
                    at[j] = i;
                }
            }
        for (int j = 0; j < w; j++) {
            if (arg) {
                put_i(r->out, pos + j, at[j]);
                continue;
            }
            if ((T)0.5 != 0)
                put_f(r->out, pos + j, (double)best[j]);
            else
                put_i(r->out, pos + j, (int64_t)best[j]);
            if (r->idx) ((int64_t *)td_cpu_ptr(r->idx))[pos + j] = at[j];
        }
    })
}

/* float products, and integer sums and products (which wrap, so their
 * order does not matter) */
static void plain_item(const reduce_args *r, int64_t o, int64_t c0, int w)
{
    bool sum = r->op == TD_SUM;
    int64_t pos = o * r->inner + c0, inner = r->inner;
    if (td_dtype_is_lowp(r->x->dtype)) { /* products, in float32 */
        const uint16_t *x = (const uint16_t *)td_cpu_ptr(r->x) + o * r->n * inner + c0;
        float acc[TILE], row[TILE];
        for (int j = 0; j < w; j++) acc[j] = 1;
        for (int64_t i = 0; i < r->n; i++) {
            td_cpu_lowp_load(r->x->dtype, row, x + i * inner, 1, w);
            for (int j = 0; j < w; j++) acc[j] *= row[j];
        }
        for (int j = 0; j < w; j++) put_f(r->out, pos + j, (double)acc[j]);
        return;
    }
    TD_CPU_DISPATCH(r->x->dtype, {
        const T *x = (const T *)td_cpu_ptr(r->x) + o * r->n * inner + c0;
        if ((T)0.5 != 0) {
            T acc[TILE];
            for (int j = 0; j < w; j++) acc[j] = 1;
            for (int64_t i = 0; i < r->n; i++)
                for (int j = 0; j < w; j++) acc[j] *= x[i * inner + j];
            for (int j = 0; j < w; j++) put_f(r->out, pos + j, (double)acc[j]);
        } else {
            uint64_t acc[TILE];
            for (int j = 0; j < w; j++) acc[j] = sum ? 0 : 1;
            for (int64_t i = 0; i < r->n; i++)
                for (int j = 0; j < w; j++)
                    acc[j] = sum ? acc[j] + (uint64_t)x[i * inner + j]
                                 : acc[j] * (uint64_t)x[i * inner + j];
            for (int j = 0; j < w; j++) put_i(r->out, pos + j, (int64_t)acc[j]);
        }
    })
}

/* all and any into uint8 from any dtype; NaN is not 0, so it counts as true */
static void logical_item(const reduce_args *r, int64_t o, int64_t c0, int w)
{
    bool all = r->op == TD_ALL;
    int64_t inner = r->inner;
    uint8_t *out = (uint8_t *)td_cpu_ptr(r->out) + o * inner + c0;
    for (int j = 0; j < w; j++) out[j] = all;
    if (td_dtype_is_lowp(r->x->dtype)) { /* nonzero: any bit but the sign's */
        const uint16_t *x = (const uint16_t *)td_cpu_ptr(r->x) + o * r->n * inner + c0;
        for (int64_t i = 0; i < r->n; i++)
            for (int j = 0; j < w; j++) {
                uint8_t nz = (x[i * inner + j] & 0x7fff) != 0;
                out[j] = all ? out[j] & nz : out[j] | nz;
            }
        return;
    }
    TD_CPU_DISPATCH(r->x->dtype, {
        const T *x = (const T *)td_cpu_ptr(r->x) + o * r->n * inner + c0;
        for (int64_t i = 0; i < r->n; i++)
            for (int j = 0; j < w; j++) {
                uint8_t nz = x[i * inner + j] != 0;
                out[j] = all ? out[j] & nz : out[j] | nz;
            }
    })
}

static void reduce_item(const reduce_args *r, int64_t item, int64_t ntiles, int nt)
{
    int64_t o = item / ntiles, c0 = item % ntiles * TILE;
    int w = r->inner - c0 < TILE ? (int)(r->inner - c0) : TILE;
    bool is_float = td_dtype_is_float(r->x->dtype);
    if (r->op == TD_SUM && is_float)
        float_sum_item(r, o, c0, w, nt);
    else if (r->op == TD_SUM || r->op == TD_PROD)
        plain_item(r, o, c0, w);
    else if (r->op == TD_ALL || r->op == TD_ANY)
        logical_item(r, o, c0, w);
    else
        extreme_item(r, o, c0, w);
}

void td_cpu_reduce(td_reduce_op op, td_tensor *out, td_tensor *idx, const td_tensor *x,
                   int64_t outer, int64_t n, int64_t inner)
{
    reduce_args r = {op, out, idx, x, outer, n, inner};
    if (outer == 0 || inner == 0) return;
    int64_t ntiles = (inner + TILE - 1) / TILE, items = outer * ntiles;
    int64_t work = outer * inner * (n > 0 ? n : 1);
    int nt = td_cpu_threads_for(work, TD_CPU_GRAIN);
    bool is_float = td_dtype_is_float(x->dtype);
    if (nt > 1 && items < nt && op == TD_SUM && is_float && n > BLOCK) {
        for (int64_t it = 0; it < items; it++) reduce_item(&r, it, ntiles, nt);
        return;
    }
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t it = 0; it < items; it++) reduce_item(&r, it, ntiles, 1);
}
