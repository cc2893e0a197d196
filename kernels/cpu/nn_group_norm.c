/* CPU group norm for the layers table: forward and backward, float32 and
 * float64. oneDNN 2.6 (the packaged one) has no group normalization
 * primitive, so these are our own loops. Every sum runs in double and in
 * element order inside one thread, so the result does not depend on the
 * thread count (the deterministic_spec's rule). */
#include "layers.h"
#include "iter.h"

#include <math.h>

static inline double at(const void *p, int64_t k, bool f32)
{
    return f32 ? (double)((const float *)p)[k] : ((const double *)p)[k];
}

static inline void put(void *p, int64_t k, double v, bool f32)
{
    if (f32)
        ((float *)p)[k] = (float)v;
    else
        ((double *)p)[k] = v;
}

/* x (n, c, inner): row r = (n, group) holds m = (c / g) inner elements */
void td_cpu_gn_forward(td_dtype dt, const void *x, void *y, int64_t n, int64_t c, int64_t g,
                       int64_t inner, const void *weight, const void *bias, double eps,
                       double *mean, double *rstd)
{
    const bool f32 = dt == TD_FLOAT32;
    const int64_t rows = n * g, cg = c / g, m = cg * inner;
    int nt = td_cpu_threads_for(rows * m, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t base = r * m;
        double s = 0, v = 0;
        for (int64_t i = 0; i < m; i++) s += at(x, base + i, f32);
        double mu = m ? s / (double)m : 0;
        /* two passes: the variance of shifted values keeps its precision */
        for (int64_t i = 0; i < m; i++) {
            double d = at(x, base + i, f32) - mu;
            v += d * d;
        }
        double rs = 1.0 / sqrt((m ? v / (double)m : 0) + eps);
        mean[r] = mu;
        rstd[r] = rs;
        for (int64_t j = 0; j < cg; j++) {
            int64_t ch = (r % g) * cg + j;
            double w = weight ? at(weight, ch, f32) : 1.0, b = bias ? at(bias, ch, f32) : 0.0;
            double sc = rs * w, sh = b - mu * sc;
            for (int64_t i = 0; i < inner; i++) {
                int64_t k = base + j * inner + i;
                put(y, k, at(x, k, f32) * sc + sh, f32);
            }
        }
    }
}

void td_cpu_gn_backward(td_dtype dt, const void *x, const void *gy, const void *weight,
                        const double *mean, const double *rstd, int64_t n, int64_t c, int64_t g,
                        int64_t inner, double *sums, double *gwb, void *gx)
{
    const bool f32 = dt == TD_FLOAT32;
    const int64_t nc = n * c, cg = c / g, m = cg * inner;
    double *ds = sums, *db = sums + nc;
    int nt = td_cpu_threads_for(nc * inner, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t p = 0; p < nc; p++) {
        double a = 0, b = 0;
        for (int64_t i = 0; i < inner; i++) {
            double gv = at(gy, p * inner + i, f32);
            a += gv * at(x, p * inner + i, f32);
            b += gv;
        }
        ds[p] = a;
        db[p] = b;
    }
    for (int64_t ch = 0; ch < c; ch++) {
        double w = 0, b = 0;
        for (int64_t k = 0; k < n; k++) {
            int64_t r = k * g + ch / cg;
            w += (ds[k * c + ch] - db[k * c + ch] * mean[r]) * rstd[r];
            b += db[k * c + ch];
        }
        gwb[ch] = w;
        gwb[c + ch] = b;
    }
    if (!gx) return;
    const int64_t rows = n * g;
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < rows; r++) {
        const int64_t k = r / g, c0 = (r % g) * cg;
        double sdg = 0, sbg = 0;
        for (int64_t j = 0; j < cg; j++) {
            double w = weight ? at(weight, c0 + j, f32) : 1.0;
            sdg += ds[k * c + c0 + j] * w;
            sbg += db[k * c + c0 + j] * w;
        }
        double mu = mean[r], rs = rstd[r];
        double c2 = (sbg * mu - sdg) * rs * rs * rs / (double)m;
        double c3 = -c2 * mu - sbg * rs / (double)m;
        for (int64_t j = 0; j < cg; j++) {
            double a = rs * (weight ? at(weight, c0 + j, f32) : 1.0);
            for (int64_t i = 0; i < inner; i++) {
                int64_t q = r * m + j * inner + i;
                put(gx, q, a * at(gy, q, f32) + c2 * at(x, q, f32) + c3, f32);
            }
        }
    }
}
