/* Direct N-d convolution in float64 (1 to 3 spatial dims, the unused ones
 * of size 1): the float64 path of conv1d, conv3d and the transposed
 * convolutions, and the reference their float32 oneDNN path is tested
 * against. As nn_conv_direct.c: one output plane (or gradient plane, or
 * filter) per task, so no two threads write the same element and the
 * results do not depend on the thread count. Input index along a dim:
 * o * stride - pad + k * dil. */
#include "cpu.h"
#include "iter.h"

/* the outputs [lo, hi) whose input o * s - p + k * d lies in [0, n) */
static void valid_range(int64_t k, int64_t s, int64_t p, int64_t d, int64_t n, int64_t out,
                        int64_t *lo, int64_t *hi)
{
    int64_t off = k * d - p;
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = n - off <= 0 ? 0 : (n - off + s - 1) / s;
    if (b > out) b = out;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

static int64_t vol(const int64_t *v) { return v[0] * v[1] * v[2]; }

static int64_t cost(const td_convnd_args *a)
{
    return a->n * a->o * vol(a->out) * (a->c / a->groups) * vol(a->k);
}

/* the valid output ranges of kernel tap (k0, k1, k2) */
typedef struct {
    int64_t lo[3], hi[3];
} span;

static span span_of(const td_convnd_args *a, const int64_t *k)
{
    span r;
    for (int d = 0; d < 3; d++)
        valid_range(k[d], a->stride[d], a->pad[d], a->dil[d], a->in[d], a->out[d], &r.lo[d],
                    &r.hi[d]);
    return r;
}

/* the input element read by output (o0, o1, 0) at tap k: offset into one plane */
static int64_t in_at(const td_convnd_args *a, const int64_t *k, int64_t o0, int64_t o1)
{
    int64_t i0 = o0 * a->stride[0] - a->pad[0] + k[0] * a->dil[0];
    int64_t i1 = o1 * a->stride[1] - a->pad[1] + k[1] * a->dil[1];
    return (i0 * a->in[1] + i1) * a->in[2] - a->pad[2] + k[2] * a->dil[2];
}

td_status td_convnd_direct_forward(const td_convnd_args *a, const double *x, const double *w,
                                   double *y)
{
    int64_t cg = a->c / a->groups, og = a->o / a->groups, plane = vol(a->out), iplane = vol(a->in),
            ks = vol(a->k);
    int nt = td_cpu_threads_for(cost(a), TD_CPU_GRAIN_COSTLY);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t t = 0; t < a->n * a->o; t++) {
        int64_t ni = t / a->o, oc = t % a->o, g = oc / og;
        double *yp = y + t * plane;
        for (int64_t i = 0; i < plane; i++) yp[i] = 0.0;
        for (int64_t ci = 0; ci < cg; ci++) {
            const double *xp = x + (ni * a->c + g * cg + ci) * iplane;
            const double *wp = w + (oc * cg + ci) * ks;
            for (int64_t kk = 0; kk < ks; kk++) {
                int64_t k[3] = {kk / (a->k[1] * a->k[2]), kk / a->k[2] % a->k[1], kk % a->k[2]};
                span r = span_of(a, k);
                double wv = wp[kk];
                for (int64_t o0 = r.lo[0]; o0 < r.hi[0]; o0++)
                    for (int64_t o1 = r.lo[1]; o1 < r.hi[1]; o1++) {
                        const double *xr = xp + in_at(a, k, o0, o1);
                        double *yr = yp + (o0 * a->out[1] + o1) * a->out[2];
                        for (int64_t o2 = r.lo[2]; o2 < r.hi[2]; o2++)
                            yr[o2] += wv * xr[o2 * a->stride[2]];
                    }
            }
        }
    }
    return TD_OK;
}

td_status td_convnd_direct_backward_data(const td_convnd_args *a, const double *gy, const double *w,
                                         double *gx)
{
    int64_t cg = a->c / a->groups, og = a->o / a->groups, plane = vol(a->out), iplane = vol(a->in),
            ks = vol(a->k);
    int nt = td_cpu_threads_for(cost(a), TD_CPU_GRAIN_COSTLY);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t t = 0; t < a->n * a->c; t++) {
        int64_t ni = t / a->c, ic = t % a->c, g = ic / cg, ci = ic % cg;
        double *gp = gx + t * iplane;
        for (int64_t i = 0; i < iplane; i++) gp[i] = 0.0;
        for (int64_t j = 0; j < og; j++) {
            int64_t oc = g * og + j;
            const double *yp = gy + (ni * a->o + oc) * plane;
            const double *wp = w + (oc * cg + ci) * ks;
            for (int64_t kk = 0; kk < ks; kk++) {
                int64_t k[3] = {kk / (a->k[1] * a->k[2]), kk / a->k[2] % a->k[1], kk % a->k[2]};
                span r = span_of(a, k);
                double wv = wp[kk];
                for (int64_t o0 = r.lo[0]; o0 < r.hi[0]; o0++)
                    for (int64_t o1 = r.lo[1]; o1 < r.hi[1]; o1++) {
                        double *gr = gp + in_at(a, k, o0, o1);
                        const double *yr = yp + (o0 * a->out[1] + o1) * a->out[2];
                        for (int64_t o2 = r.lo[2]; o2 < r.hi[2]; o2++)
                            gr[o2 * a->stride[2]] += wv * yr[o2];
                    }
            }
        }
    }
    return TD_OK;
}

td_status td_convnd_direct_backward_weights(const td_convnd_args *a, const double *x,
                                            const double *gy, double *gw)
{
    int64_t cg = a->c / a->groups, og = a->o / a->groups, plane = vol(a->out), iplane = vol(a->in),
            ks = vol(a->k);
    int nt = td_cpu_threads_for(cost(a), TD_CPU_GRAIN_COSTLY);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t t = 0; t < a->o * cg; t++) {
        int64_t oc = t / cg, ci = t % cg, g = oc / og;
        for (int64_t kk = 0; kk < ks; kk++) {
            int64_t k[3] = {kk / (a->k[1] * a->k[2]), kk / a->k[2] % a->k[1], kk % a->k[2]};
            span r = span_of(a, k);
            double s = 0.0;
            for (int64_t ni = 0; ni < a->n; ni++) {
                const double *xp = x + (ni * a->c + g * cg + ci) * iplane;
                const double *yp = gy + (ni * a->o + oc) * plane;
                for (int64_t o0 = r.lo[0]; o0 < r.hi[0]; o0++)
                    for (int64_t o1 = r.lo[1]; o1 < r.hi[1]; o1++) {
                        const double *xr = xp + in_at(a, k, o0, o1);
                        const double *yr = yp + (o0 * a->out[1] + o1) * a->out[2];
                        for (int64_t o2 = r.lo[2]; o2 < r.hi[2]; o2++)
                            s += xr[o2 * a->stride[2]] * yr[o2];
                    }
            }
            gw[t * ks + kk] = s;
        }
    }
    return TD_OK;
}
