/* sort and topk, flip and roll, tril and triu on the CPU.
 *
 * Sorting is a merge sort of each line's positions, so it is stable by
 * construction (PyTorch's CPU sort is stable in practice; we promise it).
 * A line along a dim that is not the last is gathered into a buffer first:
 * the merge passes then walk contiguous memory. flip, roll and the
 * triangles copy element bits (no arithmetic), so one loop per element
 * width serves every dtype, and a masked NaN becomes 0 as in PyTorch. */
#include "cpu.h"
#include "iter.h"
#include "reorder.h"

#include <omp.h>
#include <stdlib.h>

/* ---- sort -------------------------------------------------------------------- */

/* Stable bottom-up merge sort of idx[0..n) by key v[idx[.]], tmp as long
 * as idx. BEFORE(a, b) is the strict order; a run's left element wins
 * unless the right one is strictly before it. Returns the sorted array
 * (idx or tmp). */
#define DEFINE_SORT(NAME, T, BEFORE)                                                               \
    static int64_t *NAME(const T *v, int64_t *idx, int64_t *tmp, int64_t n)                        \
    {                                                                                              \
        int64_t *src = idx, *dst = tmp;                                                            \
        for (int64_t w = 1; w < n; w *= 2) {                                                       \
            for (int64_t lo = 0; lo < n; lo += 2 * w) {                                            \
                int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;       \
                int64_t a = lo, b = mid, o = lo;                                                   \
                while (a < mid && b < hi) {                                                        \
                    T x = v[src[b]], y = v[src[a]];                                                \
                    dst[o++] = (BEFORE(x, y)) ? src[b++] : src[a++];                               \
                }                                                                                  \
                while (a < mid) dst[o++] = src[a++];                                               \
                while (b < hi) dst[o++] = src[b++];                                                \
            }                                                                                      \
            int64_t *t = src;                                                                      \
            src = dst;                                                                             \
            dst = t;                                                                               \
        }                                                                                          \
        return src;                                                                                \
    }

/* NaN is larger than every number, as in PyTorch */
#define ASC_F(a, b)  (!isnan(a) && (isnan(b) || (a) < (b)))
#define DESC_F(a, b) (!isnan(b) && (isnan(a) || (a) > (b)))
#define ASC_I(a, b)  ((a) < (b))
#define DESC_I(a, b) ((a) > (b))

DEFINE_SORT(sort_f32_asc, float, ASC_F)
DEFINE_SORT(sort_f32_desc, float, DESC_F)
DEFINE_SORT(sort_f64_asc, double, ASC_F)
DEFINE_SORT(sort_f64_desc, double, DESC_F)
DEFINE_SORT(sort_i64_asc, int64_t, ASC_I)
DEFINE_SORT(sort_i64_desc, int64_t, DESC_I)
DEFINE_SORT(sort_u8_asc, uint8_t, ASC_I)
DEFINE_SORT(sort_u8_desc, uint8_t, DESC_I)

typedef struct {
    const td_tensor *x;
    td_tensor *values, *indices;
    int64_t outer, n, inner, k;
    bool descending;
} sort_job;

/* one line: gather into vbuf, sort positions, write the first k */
#define SORT_LINE(T, ASC, DESC)                                                                    \
    do {                                                                                           \
        const T *x = (const T *)td_cpu_ptr(j->x) + o * j->n * j->inner + i;                        \
        T *v = (T *)vbuf;                                                                          \
        for (int64_t p = 0; p < j->n; p++) {                                                       \
            v[p] = x[p * j->inner];                                                                \
            idx[p] = p;                                                                            \
        }                                                                                          \
        const int64_t *s = j->descending ? DESC(v, idx, tmp, j->n) : ASC(v, idx, tmp, j->n);       \
        int64_t base = o * j->k * j->inner + i;                                                    \
        int64_t *oi = (int64_t *)td_cpu_ptr(j->indices) + base;                                    \
        for (int64_t p = 0; p < j->k; p++) oi[p * j->inner] = s[p];                                \
        if (j->values) {                                                                           \
            T *ov = (T *)td_cpu_ptr(j->values) + base;                                             \
            for (int64_t p = 0; p < j->k; p++) ov[p * j->inner] = v[s[p]];                         \
        }                                                                                          \
    } while (0)

/* bfloat16 and float16: keys converted to float32 (the order is the
 * same), values moved as bits */
static void sort_line_lowp(const sort_job *j, int64_t o, int64_t i, float *v, int64_t *idx,
                           int64_t *tmp)
{
    td_dtype dt = j->x->dtype;
    const uint16_t *x = (const uint16_t *)td_cpu_ptr(j->x) + o * j->n * j->inner + i;
    for (int64_t p = 0; p < j->n; p++) {
        v[p] = td_lowp_to_float(dt, x[p * j->inner]);
        idx[p] = p;
    }
    const int64_t *s =
        j->descending ? sort_f32_desc(v, idx, tmp, j->n) : sort_f32_asc(v, idx, tmp, j->n);
    int64_t base = o * j->k * j->inner + i;
    int64_t *oi = (int64_t *)td_cpu_ptr(j->indices) + base;
    for (int64_t p = 0; p < j->k; p++) oi[p * j->inner] = s[p];
    if (j->values) {
        uint16_t *ov = (uint16_t *)td_cpu_ptr(j->values) + base;
        for (int64_t p = 0; p < j->k; p++) ov[p * j->inner] = x[s[p] * j->inner];
    }
}

static void sort_line(const sort_job *j, int64_t line, void *vbuf, int64_t *idx, int64_t *tmp)
{
    int64_t o = line / j->inner, i = line % j->inner;
    if (td_dtype_is_lowp(j->x->dtype)) {
        sort_line_lowp(j, o, i, vbuf, idx, tmp);
        return;
    }
    switch (j->x->dtype) {
    case TD_FLOAT32: SORT_LINE(float, sort_f32_asc, sort_f32_desc); break;
    case TD_FLOAT64: SORT_LINE(double, sort_f64_asc, sort_f64_desc); break;
    case TD_INT64: SORT_LINE(int64_t, sort_i64_asc, sort_i64_desc); break;
    default: SORT_LINE(uint8_t, sort_u8_asc, sort_u8_desc); break;
    }
}

static td_status cpu_sort(td_tensor *values, td_tensor *indices, const td_tensor *x, int64_t outer,
                          int64_t n, int64_t inner, int64_t k, bool descending)
{
    int64_t lines = outer * inner;
    if (lines == 0 || k == 0) return TD_OK;
    sort_job j = {x, values, indices, outer, n, inner, k, descending};
    /* sorting n costs about n log n element moves: weigh lines by that */
    int64_t cost = n < 2 ? 1 : n;
    for (int64_t m = n; m > 1; m /= 2) cost += n;
    int nt = td_cpu_threads_for(lines * cost, TD_CPU_GRAIN);
    if (nt > lines) nt = (int)lines;
    /* per thread: positions, merge buffer, values; 8-byte aligned */
    size_t es = td_dtype_is_lowp(x->dtype) ? sizeof(float) : td_cpu_elsize(x->dtype);
    size_t per = ((size_t)n * (2 * sizeof(int64_t) + es) + 7) & ~(size_t)7;
    char *scratch = malloc(per * (size_t)(nt > 1 ? nt : 1));
    if (!scratch)
        return td_error(TD_ENOMEM, 0, "sort: out of memory for scratch of %zu bytes",
                        per * (size_t)(nt > 1 ? nt : 1));
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        char *mine = scratch + per * (size_t)omp_get_thread_num();
        int64_t *idx = (int64_t *)mine, *tmp = idx + n;
        void *vbuf = tmp + n;
#pragma omp for schedule(static)
        for (int64_t line = 0; line < lines; line++) sort_line(&j, line, vbuf, idx, tmp);
    }
    free(scratch);
    return TD_OK;
}

/* ---- flip and roll ------------------------------------------------------------- */

static inline int64_t source_of(int64_t c, int64_t size, int64_t shift, bool flip)
{
    if (flip) return size - 1 - c;
    int64_t s = c - shift;
    return s < 0 ? s + size : s;
}

#define REMAP_ROW(W)                                                                               \
    do {                                                                                           \
        W *o = (W *)td_cpu_ptr(out) + r * last;                                                    \
        const W *xs = (const W *)td_cpu_ptr(x) + xoff;                                             \
        for (int64_t c = 0; c < last; c++)                                                         \
            o[c] = xs[source_of(c, last, shift[nd - 1], flip[nd - 1]) * ls];                       \
    } while (0)

static void cpu_remap(td_tensor *out, const td_tensor *x, const int64_t *shift, const bool *flip)
{
    int nd = out->ndim;
    int64_t numel = td_numel(out);
    size_t es = td_cpu_elsize(out->dtype);
    if (numel == 0) return;
    if (nd == 0) {
        memcpy(td_cpu_ptr(out), td_cpu_ptr(x), es);
        return;
    }
    int64_t last = out->shape[nd - 1], rows = numel / last, ls = x->stride[nd - 1];
    int nt = td_cpu_threads_for(numel, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t q = r, xoff = 0;
        for (int d = nd - 2; d >= 0; d--) {
            int64_t c = q % out->shape[d];
            q /= out->shape[d];
            xoff += source_of(c, out->shape[d], shift[d], flip[d]) * x->stride[d];
        }
        switch (es) {
        case 1: REMAP_ROW(uint8_t); break;
        case 2: REMAP_ROW(uint16_t); break;
        case 4: REMAP_ROW(uint32_t); break;
        default: REMAP_ROW(uint64_t); break;
        }
    }
}

/* ---- tril and triu ---------------------------------------------------------------- */

#define TRI_ROW(W)                                                                                 \
    do {                                                                                           \
        W *o = (W *)td_cpu_ptr(out) + r * cols;                                                    \
        const W *xs = (const W *)td_cpu_ptr(x) + xoff;                                             \
        for (int64_t c = 0; c < cols; c++) {                                                       \
            bool keep = upper ? c - i >= diagonal : c - i <= diagonal;                             \
            o[c] = keep ? xs[c * cs] : (W)0;                                                       \
        }                                                                                          \
    } while (0)

static void cpu_tri(td_tensor *out, const td_tensor *x, int64_t diagonal, bool upper)
{
    int nd = out->ndim;
    int64_t numel = td_numel(out);
    if (numel == 0) return;
    int64_t cols = out->shape[nd - 1], nrow = out->shape[nd - 2], rows = numel / cols;
    int64_t cs = x->stride[nd - 1];
    size_t es = td_cpu_elsize(out->dtype);
    int nt = td_cpu_threads_for(numel, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < rows; r++) {
        int64_t i = r % nrow, q = r / nrow, xoff = i * x->stride[nd - 2];
        for (int d = nd - 3; d >= 0; d--) {
            xoff += (q % out->shape[d]) * x->stride[d];
            q /= out->shape[d];
        }
        switch (es) {
        case 1: TRI_ROW(uint8_t); break;
        case 2: TRI_ROW(uint16_t); break;
        case 4: TRI_ROW(uint32_t); break;
        default: TRI_ROW(uint64_t); break;
        }
    }
}

const struct td_reorder_kernels td_cpu_reorder = {
    .sort = cpu_sort,
    .remap = cpu_remap,
    .tri = cpu_tri,
};
