/* Cumulative sums and products of contiguous x along the middle of
 * (outer, n, inner), and cumprod's backward.
 *
 * Every line runs in order on one thread, floats accumulating in double
 * (as PyTorch's CPU scan does), integers in wrapping uint64; threads only
 * pick which lines they run, so the bits do not depend on their count.
 * Lines with inner > 1 go TILE columns at a time, reading rows in order. */
#include "cpu.h"
#include "iter.h"

#include <omp.h>

#pragma GCC diagnostic ignored "-Wtype-limits" /* shared int64/uint8 code */

#define TILE 64

/* the lines of columns [c0, c0 + w) of block o */
static void scan_tile(bool sum, td_tensor *out, const td_tensor *x, int64_t o, int64_t c0, int w,
                      int64_t n, int64_t inner, bool reverse)
{
    /* start at the line's last row when reverse, and step back */
    int64_t base = o * n * inner + (reverse ? (n - 1) * inner : 0) + c0;
    int64_t step = reverse ? -inner : inner;
    TD_CPU_DISPATCH(x->dtype, {
        const T *xi = (const T *)td_cpu_ptr(x) + base;
        T *oi = (T *)td_cpu_ptr(out) + base;
        if ((T)0.5 != 0) {
            double acc[TILE];
            for (int j = 0; j < w; j++) acc[j] = sum ? 0 : 1;
            for (int64_t i = 0; i < n; i++, xi += step, oi += step)
                for (int j = 0; j < w; j++) {
                    acc[j] = sum ? acc[j] + (double)xi[j] : acc[j] * (double)xi[j];
                    oi[j] = (T)acc[j];
                }
        } else {
            uint64_t acc[TILE];
            for (int j = 0; j < w; j++) acc[j] = sum ? 0 : 1;
            for (int64_t i = 0; i < n; i++, xi += step, oi += step)
                for (int j = 0; j < w; j++) {
                    acc[j] = sum ? acc[j] + (uint64_t)xi[j] : acc[j] * (uint64_t)xi[j];
                    oi[j] = (T)acc[j];
                }
        }
    })
}

void td_cpu_scan(td_reduce_op op, td_tensor *out, const td_tensor *x, int64_t outer, int64_t n,
                 int64_t inner, bool reverse)
{
    if (outer == 0 || inner == 0 || n == 0) return;
    int64_t ntiles = (inner + TILE - 1) / TILE, items = outer * ntiles;
    int nt = td_cpu_threads_for(outer * n * inner, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t it = 0; it < items; it++) {
        int64_t o = it / ntiles, c0 = it % ntiles * TILE;
        int w = inner - c0 < TILE ? (int)(inner - c0) : TILE;
        scan_tile(op == TD_SUM, out, x, o, c0, w, n, inner, reverse);
    }
}

static inline double ld(bool f64, const void *p, int64_t i)
{
    return f64 ? ((const double *)p)[i] : (double)((const float *)p)[i];
}

static inline void st(bool f64, void *p, int64_t i, double v)
{
    if (f64)
        ((double *)p)[i] = v;
    else
        ((float *)p)[i] = (float)v;
}

/* One line, s apart. With z the first zero of x (n when none):
 * gx[k] = sum_{j >= k} gy[j] out[j] / x[k] for k < z (out[j] is 0 from z
 * on, so no zero is divided by); gx[z] = out[z-1] sum_{j = z}^{z2-1} gy[j]
 * prod_{z < i <= j} x[i], z2 the second zero; 0 after z. This is PyTorch's
 * O(n) rule, exact where x has zeros. A line of one passes gy through. */
TD_CPU_ALWAYS_INLINE void cumprod_back_line(bool f64, const void *x, const void *out,
                                            const void *gy, void *gx, int64_t n, int64_t s)
{
    if (n == 1) {
        st(f64, gx, 0, ld(f64, gy, 0));
        return;
    }
    int64_t z = 0;
    while (z < n && ld(f64, x, z * s) != 0) z++;
    for (int64_t k = n - 1; k > z; k--) st(f64, gx, k * s, 0);
    if (z < n) {
        double acc = ld(f64, gy, z * s), p = 1;
        for (int64_t j = z + 1; j < n && ld(f64, x, j * s) != 0; j++) {
            p *= ld(f64, x, j * s);
            acc += ld(f64, gy, j * s) * p;
        }
        st(f64, gx, z * s, acc * (z > 0 ? ld(f64, out, (z - 1) * s) : 1.0));
    }
    double rev = 0;
    for (int64_t k = z - 1; k >= 0; k--) {
        rev += ld(f64, gy, k * s) * ld(f64, out, k * s);
        st(f64, gx, k * s, rev / ld(f64, x, k * s));
    }
}

TD_CPU_ALWAYS_INLINE void cumprod_back_lines(bool f64, const td_tensor *x, const td_tensor *out,
                                             const td_tensor *gy, td_tensor *gx, int64_t n,
                                             int64_t inner, int64_t l0, int64_t l1)
{
    int64_t es = f64 ? 8 : 4;
    for (int64_t l = l0; l < l1; l++) {
        int64_t o = l / inner, j = l - o * inner, b = (o * n * inner + j) * es;
        cumprod_back_line(f64, td_cpu_ptr(x) + b, td_cpu_ptr(out) + b, td_cpu_ptr(gy) + b,
                          td_cpu_ptr(gx) + b, n, inner);
    }
}

void td_cpu_cumprod_backward(td_tensor *gx, const td_tensor *x, const td_tensor *out,
                             const td_tensor *gy, int64_t outer, int64_t n, int64_t inner)
{
    if (outer == 0 || inner == 0 || n == 0) return;
    int64_t lines = outer * inner;
    int nt = td_cpu_threads_for(lines * n, TD_CPU_GRAIN);
    bool f64 = x->dtype == TD_FLOAT64;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int t = omp_get_thread_num(), k = omp_get_num_threads();
        int64_t l0 = lines * t / k, l1 = lines * (t + 1) / k;
        if (f64)
            cumprod_back_lines(true, x, out, gy, gx, n, inner, l0, l1);
        else
            cumprod_back_lines(false, x, out, gy, gx, n, inner, l0, l1);
    }
}
