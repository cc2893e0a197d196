/* The strided iterator behind every elementwise kernel. */
#include "iter.h"
#include "lowp.h"

#include <omp.h>

/* dims visited in the order perm gives (outermost first) */
static void iter_init_order(td_cpu_iter *it, int nop, const td_tensor *const *ts, const int *perm,
                            int nperm)
{
    const td_tensor *t0 = ts[0];
    int nd = 0;
    it->nop = nop;
    it->numel = 1;
    for (int d = 0; d < t0->ndim; d++) it->numel *= t0->shape[d];
    for (int j = 0; j < nperm; j++) {
        int d = perm[j];
        bool merge = nd > 0;
        for (int k = 0; k < nop && merge; k++)
            merge = it->stride[k][nd - 1] == ts[k]->stride[d] * t0->shape[d];
        if (merge) {
            it->shape[nd - 1] *= t0->shape[d];
            for (int k = 0; k < nop; k++) it->stride[k][nd - 1] = ts[k]->stride[d];
            continue;
        }
        it->shape[nd] = t0->shape[d];
        for (int k = 0; k < nop; k++) it->stride[k][nd] = ts[k]->stride[d];
        nd++;
    }
    if (nd == 0) {
        it->shape[0] = 1;
        for (int k = 0; k < nop; k++) it->stride[k][0] = 0;
        nd = 1;
    }
    it->ndim = nd;
    for (int k = 0; k < nop; k++) {
        it->data[k] = td_cpu_ptr(ts[k]);
        it->elsize[k] = (int64_t)td_cpu_elsize(ts[k]->dtype);
    }
}

void td_cpu_iter_init(td_cpu_iter *it, int nop, const td_tensor *const *ts)
{
    int perm[TD_MAX_DIMS], n = 0;
    for (int d = 0; d < ts[0]->ndim; d++)
        if (ts[0]->shape[d] != 1) perm[n++] = d;
    iter_init_order(it, nop, ts, perm, n);
}

void td_cpu_iter_init_any_order(td_cpu_iter *it, int nop, const td_tensor *const *ts)
{
    const td_tensor *t0 = ts[0];
    int perm[TD_MAX_DIMS], n = 0;
    for (int d = 0; d < t0->ndim; d++) {
        if (t0->shape[d] == 1) continue;
        /* stable insertion by operand 0's stride, largest first */
        int j = n++;
        while (j > 0 && t0->stride[perm[j - 1]] < t0->stride[d]) {
            perm[j] = perm[j - 1];
            j--;
        }
        perm[j] = d;
    }
    iter_init_order(it, nop, ts, perm, n);
}

void td_cpu_iter_range(const td_cpu_iter *it, int64_t begin, int64_t end, td_cpu_loop fn, void *ctx)
{
    int last = it->ndim - 1, nop = it->nop;
    int64_t idx[TD_MAX_DIMS], rem = begin, s[TD_CPU_MAX_OPS];
    char *p[TD_CPU_MAX_OPS];
    if (begin >= end) return; /* an empty range may have a 0-size dim to divide by */
    for (int d = last; d >= 0; d--) {
        idx[d] = rem % it->shape[d];
        rem /= it->shape[d];
    }
    for (int k = 0; k < nop; k++) {
        int64_t off = 0;
        for (int d = 0; d <= last; d++) off += idx[d] * it->stride[k][d];
        p[k] = it->data[k] + off * it->elsize[k];
        s[k] = it->stride[k][last];
    }
    while (begin < end) {
        int64_t n = it->shape[last] - idx[last];
        if (n > end - begin) n = end - begin;
        fn(ctx, p, s, n);
        begin += n;
        if (begin >= end) break;
        for (int k = 0; k < nop; k++) p[k] += n * s[k] * it->elsize[k];
        idx[last] += n;
        for (int d = last; d > 0 && idx[d] == it->shape[d]; d--) {
            idx[d] = 0;
            idx[d - 1]++;
            for (int k = 0; k < nop; k++)
                p[k] += (it->stride[k][d - 1] - it->shape[d] * it->stride[k][d]) * it->elsize[k];
        }
    }
}

/* set by the runtime's free-core monitor (another thread), taken by the
 * thread that calls a kernel: OpenMP's count is per calling thread */
static int thread_target;

void td_cpu_set_thread_target(int n) { __atomic_store_n(&thread_target, n, __ATOMIC_RELAXED); }

int td_cpu_threads_sync(void)
{
    int n = __atomic_load_n(&thread_target, __ATOMIC_RELAXED);
    if (n > 0 && !omp_in_parallel() && omp_get_max_threads() != n) omp_set_num_threads(n);
    return omp_get_max_threads();
}

int td_cpu_threads_for(int64_t work, int64_t grain)
{
    if (grain <= 0 || work < grain || omp_in_parallel()) return 1;
    int64_t nt = td_cpu_threads_sync(), want = work / (grain / 2 > 0 ? grain / 2 : 1);
    return (int)(want < nt ? (want > 1 ? want : 1) : nt);
}

void td_cpu_iter_run(const td_cpu_iter *it, int64_t grain, td_cpu_loop fn, void *ctx)
{
    int64_t total = it->numel;
    if (total == 0) return;
    int nt = td_cpu_threads_for(total, grain);
    if (nt == 1) {
        td_cpu_iter_range(it, 0, total, fn, ctx);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        /* chunks of whole cache lines, so threads do not share one */
        int64_t chunk = ((total + n - 1) / n + 15) & ~(int64_t)15;
        int64_t b = t * chunk, e = b + chunk < total ? b + chunk : total;
        if (b < e) td_cpu_iter_range(it, b, e, fn, ctx);
    }
}

void td_cpu_lowp_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    const td_cpu_lowp_ctx *c = ctx;
    float buf[TD_CPU_MAX_OPS][TD_CPU_LOWP_CHUNK];
    char *q[TD_CPU_MAX_OPS];
    int64_t qs[TD_CPU_MAX_OPS];
    for (int64_t i0 = 0; i0 < n; i0 += TD_CPU_LOWP_CHUNK) {
        int64_t m = n - i0 < TD_CPU_LOWP_CHUNK ? n - i0 : TD_CPU_LOWP_CHUNK;
        for (int k = 0; k < c->nop; k++) {
            char *pk = p[k] + i0 * s[k] * (int64_t)td_cpu_elsize(c->dt[k]);
            q[k] = pk;
            qs[k] = s[k];
            if (!td_dtype_is_lowp(c->dt[k])) continue;
            q[k] = (char *)buf[k];
            qs[k] = k == 0 || s[k] != 0; /* a broadcast input: one value */
            if (k == 0) continue;        /* the output: written by the loop */
            td_cpu_lowp_load(c->dt[k], buf[k], (const uint16_t *)pk, s[k], s[k] == 0 ? 1 : m);
        }
        c->f32(c->ctx, q, qs, m);
        if (td_dtype_is_lowp(c->dt[0]))
            td_cpu_lowp_store(c->dt[0], (uint16_t *)(p[0] + i0 * s[0] * 2), s[0], buf[0], m);
    }
}
