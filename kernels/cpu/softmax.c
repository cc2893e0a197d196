/* softmax and log_softmax over the middle of contiguous (outer, n, inner),
 * and their backward.
 *
 * Stable for any magnitude: the row max is subtracted before exp, and
 * log_softmax is (x - max) - log(sum), so ±1e4 inputs stay finite and -inf
 * entries get probability 0. float32 rows (inner == 1) have their own
 * loops, three passes that gcc vectorises around our expf; every other
 * case walks TILE columns of `inner` at a time, reading rows in order. */

#include "cpu.h"
#include "iter.h"

#include <math.h>
#include <omp.h>

#define TILE 64

/* the forward's arguments are x - max <= 0; the backward's are whatever
 * y it is given */
#define EXPV(x)     _Generic((x), float : td_cpu_expf_nonpos, default : exp)(x)
#define EXPV_ANY(x) _Generic((x), float : td_cpu_expf, default : exp)(x)

/* ---- float32 rows ----------------------------------------------------- */

static void softmax_row_f32(float *y, const float *x, int64_t n, bool log)
{
    float m = td_cpu_row_max_f32(x, n), s = 0;
    if (log) {
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < n; i++) s += td_cpu_expf_nonpos(x[i] - m);
        float ls = logf(s);
        for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) - ls;
        return;
    }
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) {
        float e = td_cpu_expf_nonpos(x[i] - m);
        y[i] = e;
        s += e;
    }
    float inv = 1.0f / s;
    for (int64_t i = 0; i < n; i++) y[i] *= inv;
}

static void softmax_back_row_f32(float *gx, const float *y, const float *gy, int64_t n, bool log)
{
    float s = 0;
    if (log) {
#pragma omp simd reduction(+ : s)
        for (int64_t i = 0; i < n; i++) s += gy[i];
        for (int64_t i = 0; i < n; i++) gx[i] = gy[i] - td_cpu_expf(y[i]) * s;
        return;
    }
#pragma omp simd reduction(+ : s)
    for (int64_t i = 0; i < n; i++) s += gy[i] * y[i];
    for (int64_t i = 0; i < n; i++) gx[i] = y[i] * (gy[i] - s);
}

/* ---- column tiles: any inner, any float type --------------------------- */

typedef struct {
    char *out;
    const char *a, *b;
    int64_t outer, n, inner;
    bool log;
    td_dtype dt;
} sm_args;

/* NaN anywhere in a column makes its max NaN, so the column is all NaN */
static void softmax_tile(const sm_args *r, int64_t o, int64_t c0, int w)
{
    int64_t n = r->n, inner = r->inner, base = o * n * inner + c0;
    TD_CPU_FLOAT_DISPATCH(r->dt, {
        const T *x = (const T *)r->a + base;
        T *y = (T *)r->out + base;
        T m[TILE], s[TILE];
        for (int j = 0; j < w; j++) m[j] = -INFINITY, s[j] = 0;
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < w; j++) {
                T v = x[i * inner + j];
                m[j] = (v > m[j] || v != v) ? v : m[j];
            }
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < w; j++) {
                T e = EXPV(x[i * inner + j] - m[j]);
                if (!r->log) y[i * inner + j] = e;
                s[j] += e;
            }
        for (int j = 0; j < w; j++) s[j] = r->log ? log(s[j]) : 1 / s[j];
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < w; j++)
                y[i * inner + j] =
                    r->log ? (x[i * inner + j] - m[j]) - s[j] : y[i * inner + j] * s[j];
    })
}

/* a = y, b = gy */
static void softmax_back_tile(const sm_args *r, int64_t o, int64_t c0, int w)
{
    int64_t n = r->n, inner = r->inner, base = o * n * inner + c0;
    TD_CPU_FLOAT_DISPATCH(r->dt, {
        const T *y = (const T *)r->a + base, *gy = (const T *)r->b + base;
        T *gx = (T *)r->out + base;
        T s[TILE];
        for (int j = 0; j < w; j++) s[j] = 0;
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < w; j++)
                s[j] += r->log ? gy[i * inner + j] : gy[i * inner + j] * y[i * inner + j];
        for (int64_t i = 0; i < n; i++)
            for (int j = 0; j < w; j++) {
                int64_t k = i * inner + j;
                gx[k] = r->log ? gy[k] - EXPV_ANY(y[k]) * s[j] : y[k] * (gy[k] - s[j]);
            }
    })
}

static void run_tiles(const sm_args *r, bool backward)
{
    int64_t ntiles = (r->inner + TILE - 1) / TILE, items = r->outer * ntiles;
    int nt = td_cpu_threads_for(r->outer * r->n * r->inner, TD_CPU_GRAIN_COSTLY);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t it = 0; it < items; it++) {
        int64_t o = it / ntiles, c0 = it % ntiles * TILE;
        int w = r->inner - c0 < TILE ? (int)(r->inner - c0) : TILE;
        if (backward)
            softmax_back_tile(r, o, c0, w);
        else
            softmax_tile(r, o, c0, w);
    }
}

void td_cpu_softmax(td_tensor *out, const td_tensor *x, int64_t outer, int64_t n, int64_t inner,
                    bool log)
{
    if (outer * n * inner == 0) return;
    if (x->dtype == TD_FLOAT32 && inner == 1) {
        float *y = (float *)td_cpu_ptr(out);
        const float *xs = (const float *)td_cpu_ptr(x);
        int nt = td_cpu_threads_for(outer * n, TD_CPU_GRAIN_COSTLY);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t o = 0; o < outer; o++) softmax_row_f32(y + o * n, xs + o * n, n, log);
        return;
    }
    sm_args r = {td_cpu_ptr(out), td_cpu_ptr(x), NULL, outer, n, inner, log, x->dtype};
    run_tiles(&r, false);
}

void td_cpu_softmax_backward(td_tensor *gx, const td_tensor *y, const td_tensor *gy, int64_t outer,
                             int64_t n, int64_t inner, bool log)
{
    if (outer * n * inner == 0) return;
    if (y->dtype == TD_FLOAT32 && inner == 1) {
        float *g = (float *)td_cpu_ptr(gx);
        const float *ys = (const float *)td_cpu_ptr(y), *gys = (const float *)td_cpu_ptr(gy);
        int nt = td_cpu_threads_for(outer * n, TD_CPU_GRAIN_COSTLY);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t o = 0; o < outer; o++)
            softmax_back_row_f32(g + o * n, ys + o * n, gys + o * n, n, log);
        return;
    }
    sm_args r = {td_cpu_ptr(gx), td_cpu_ptr(y), td_cpu_ptr(gy), outer, n, inner, log, y->dtype};
    run_tiles(&r, true);
}
