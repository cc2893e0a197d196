/* index_select, index_add, gather, scatter.
 *
 * All four are one of two loops over the strided iterator: a read through
 * an index (index_select, gather) or a write through one (scatter,
 * index_add). The indexed tensor comes in as a view whose stride along
 * `dim` is 0, and the index's value times the real stride is added per
 * element. Writes through an index run on one thread: duplicate indices
 * would race. */
#include "cpu.h"
#include "iter.h"

#pragma GCC diagnostic ignored "-Wtype-limits" /* shared int64/uint8 code */

static bool is_contig(const td_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s *= t->shape[i];
    }
    return true;
}

/* t's strides over `like`'s shape, with dim's stride 0 */
static td_tensor flat_at_dim(const td_tensor *t, const td_tensor *like, int dim)
{
    td_tensor v = *t;
    v.ndim = like->ndim;
    for (int d = 0; d < like->ndim; d++) {
        v.shape[d] = like->shape[d];
        v.stride[d] = d == dim ? 0 : t->stride[d];
    }
    return v;
}

/* a 1-D index spread over `like`'s shape: it varies along dim only */
static td_tensor index_along(const td_tensor *index, const td_tensor *like, int dim)
{
    td_tensor v = *index;
    v.ndim = like->ndim;
    for (int d = 0; d < like->ndim; d++) {
        v.shape[d] = like->shape[d];
        v.stride[d] = d == dim ? index->stride[0] : 0;
    }
    return v;
}

typedef struct {
    int64_t dim_stride; /* the indexed tensor's real stride along dim */
    size_t es;
    td_dtype dt;
    bool accumulate;
} index_ctx;

/* p: out, src (dim stride 0), index */
#define READ_LOOP(W)                                                                               \
    do {                                                                                           \
        W *o = (W *)p[0];                                                                          \
        const W *x = (const W *)p[1];                                                              \
        const int64_t *ix = (const int64_t *)p[2];                                                 \
        for (int64_t i = 0; i < n; i++) o[i * s[0]] = x[i * s[1] + ix[i * s[2]] * ds];             \
    } while (0)

static void read_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    const index_ctx *c = ctx;
    int64_t ds = c->dim_stride;
    switch (c->es) {
    case 1: READ_LOOP(uint8_t); break;
    case 2: READ_LOOP(uint16_t); break; /* bfloat16, float16 */
    case 4: READ_LOOP(uint32_t); break;
    default: READ_LOOP(uint64_t); break;
    }
}

/* p: index (or the iteration's shape holder), src, dst (dim stride 0), index;
 * integer adds wrap */
static void write_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    const index_ctx *c = ctx;
    int64_t ds = c->dim_stride;
    const int64_t *ix = (const int64_t *)p[3];
    if (td_dtype_is_lowp(c->dt)) { /* bfloat16, float16: a sum in float32, rounded */
        const uint16_t *x = (const uint16_t *)p[1];
        uint16_t *d = (uint16_t *)p[2];
        for (int64_t i = 0; i < n; i++) {
            uint16_t *t = d + i * s[2] + ix[i * s[3]] * ds, v = x[i * s[1]];
            *t = c->accumulate ? td_float_to_lowp(c->dt, td_lowp_to_float(c->dt, *t) +
                                                             td_lowp_to_float(c->dt, v))
                               : v;
        }
        return;
    }
    TD_CPU_DISPATCH(c->dt, {
        const T *x = (const T *)p[1];
        T *d = (T *)p[2];
        for (int64_t i = 0; i < n; i++) {
            T *t = d + i * s[2] + ix[i * s[3]] * ds;
            T v = x[i * s[1]];
            if (!c->accumulate)
                *t = v;
            else if ((T)0.5 != 0)
                *t += v;
            else
                *t = (T)((uint64_t)*t + (uint64_t)v);
        }
    })
}

/* embedding-style: whole contiguous runs of `inner` elements move at once */
static void index_select_rows(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index)
{
    int64_t outer = 1, inner = 1, n = x->shape[dim], len = index->shape[0];
    for (int d = 0; d < dim; d++) outer *= x->shape[d];
    for (int d = dim + 1; d < x->ndim; d++) inner *= x->shape[d];
    size_t es = td_cpu_elsize(x->dtype), row = (size_t)inner * es;
    char *o = td_cpu_ptr(out);
    const char *xs = td_cpu_ptr(x);
    const int64_t *ix = (const int64_t *)td_cpu_ptr(index);
    int nt = td_cpu_threads_for(outer * len * inner, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < outer * len; r++) {
        int64_t ob = r / len, i = r % len;
        memcpy(o + r * row, xs + (ob * n + ix[i * index->stride[0]]) * row, row);
    }
}

void td_cpu_index_select(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index)
{
    if (index->ndim == 1 && is_contig(x) && is_contig(out)) {
        index_select_rows(out, x, dim, index);
        return;
    }
    td_tensor xv = flat_at_dim(x, out, dim), iv = index_along(index, out, dim);
    const td_tensor *ts[3] = {out, &xv, &iv};
    td_cpu_iter it;
    td_cpu_iter_init(&it, 3, ts);
    index_ctx c = {x->stride[dim], td_cpu_elsize(x->dtype), x->dtype, false};
    td_cpu_iter_run(&it, TD_CPU_GRAIN, read_loop, &c);
}

void td_cpu_gather(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index)
{
    td_tensor xv = flat_at_dim(x, index, dim);
    const td_tensor *ts[3] = {out, &xv, index};
    td_cpu_iter it;
    td_cpu_iter_init(&it, 3, ts);
    index_ctx c = {x->stride[dim], td_cpu_elsize(x->dtype), x->dtype, false};
    td_cpu_iter_run(&it, TD_CPU_GRAIN, read_loop, &c);
}

void td_cpu_scatter(td_tensor *out, int dim, const td_tensor *index, const td_tensor *src,
                    bool accumulate)
{
    td_tensor sv = *src, ov = flat_at_dim(out, index, dim);
    sv.ndim = index->ndim;
    for (int d = 0; d < index->ndim; d++) sv.shape[d] = index->shape[d];
    const td_tensor *ts[4] = {index, &sv, &ov, index};
    td_cpu_iter it;
    td_cpu_iter_init(&it, 4, ts);
    index_ctx c = {out->stride[dim], td_cpu_elsize(out->dtype), out->dtype, accumulate};
    td_cpu_iter_range(&it, 0, it.numel, write_loop, &c);
}

void td_cpu_index_add(td_tensor *out, int dim, const td_tensor *index, const td_tensor *src)
{
    td_tensor ov = flat_at_dim(out, src, dim), iv = index_along(index, src, dim);
    const td_tensor *ts[4] = {src, src, &ov, &iv};
    td_cpu_iter it;
    td_cpu_iter_init(&it, 4, ts);
    index_ctx c = {out->stride[dim], td_cpu_elsize(out->dtype), out->dtype, true};
    td_cpu_iter_range(&it, 0, it.numel, write_loop, &c);
}
