/* copy with dtype conversion, and fill. Conversions follow C casts, except
 * that float-to-integer goes through int64 so out-of-range values wrap
 * (as PyTorch's do on x86) instead of being undefined. */
#include "cpu.h"
#include "iter.h"

#include <math.h>
#include <omp.h>

static inline int64_t to_i64_f(double v) { return td_cpu_f2i(v); }
static inline int64_t to_i64_i(int64_t v) { return v; }

/* value of src element converted to dst type D; S is the source type */
#define CONVERT(D, S, v)                                                                           \
    ((D) _Generic((D)0, float                                                                      \
                  : (v), double                                                                    \
                  : (v), default                                                                   \
                  : _Generic((S)0, float                                                           \
                             : to_i64_f((double)(v)), double                                       \
                             : to_i64_f((double)(v)), default                                      \
                             : (v))))

typedef struct {
    td_dtype dst, src;
} copy_ctx;

static void copy_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    const copy_ctx *c = ctx;
    int64_t sd = s[0], ss = s[1];
    TD_CPU_DISPATCH(c->dst, {
        typedef T D;
        D *d = (D *)p[0];
        TD_CPU_DISPATCH(c->src, {
            const T *x = (const T *)p[1];
            if (sd == 1 && ss == 1) {
                for (int64_t i = 0; i < n; i++) d[i] = CONVERT(D, T, x[i]);
            } else {
                for (int64_t i = 0; i < n; i++) d[i * sd] = CONVERT(D, T, x[i * ss]);
            }
        })
    })
}

static void memcpy_parallel(char *d, const char *s, size_t nbytes)
{
    int nt = td_cpu_threads_for((int64_t)nbytes / 4, TD_CPU_GRAIN * 4);
    if (nt == 1) {
        memcpy(d, s, nbytes);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        size_t chunk = ((nbytes + n - 1) / n + 63) & ~(size_t)63;
        size_t b = t * chunk, e = b + chunk < nbytes ? b + chunk : nbytes;
        if (b < e) memcpy(d + b, s + b, e - b);
    }
}

void td_cpu_copy(td_tensor *dst, const td_tensor *src)
{
    const td_tensor *ts[2] = {dst, src};
    td_cpu_iter it;
    td_cpu_iter_init_any_order(&it, 2, ts);
    if (it.numel == 0) return;
    if (dst->dtype == src->dtype && it.ndim == 1 && it.stride[0][0] == 1 && it.stride[1][0] == 1) {
        memcpy_parallel(it.data[0], it.data[1], (size_t)it.numel * (size_t)it.elsize[0]);
        return;
    }
    copy_ctx c = {dst->dtype, src->dtype};
    td_cpu_iter_run(&it, TD_CPU_GRAIN, copy_loop, &c);
}

typedef struct {
    double f;
    int64_t i;
    td_dtype dt;
} fill_ctx;

static void fill_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    const fill_ctx *c = ctx;
    int64_t sd = s[0];
    TD_CPU_DISPATCH(c->dt, {
        T *d = (T *)p[0];
        T v = _Generic((T)0, float : (T)c->f, double : (T)c->f, default : (T)c->i);
        if (sd == 1) {
            for (int64_t i = 0; i < n; i++) d[i] = v;
        } else {
            for (int64_t i = 0; i < n; i++) d[i * sd] = v;
        }
    })
}

void td_cpu_fill(td_tensor *dst, double value)
{
    const td_tensor *ts[1] = {dst};
    td_cpu_iter it;
    td_cpu_iter_init_any_order(&it, 1, ts);
    fill_ctx c = {value, td_cpu_f2i(value), dst->dtype};
    td_cpu_iter_run(&it, TD_CPU_GRAIN, fill_loop, &c);
}
