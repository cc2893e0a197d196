/* Direct 2-d convolution in float64: the float64 path and the reference
 * the oneDNN float32 path is tested against. Plain loops, one output plane
 * (or one gradient plane, or one filter) per task, so no two threads write
 * the same element and the results do not depend on the thread count.
 *
 * x (n, c, h, w), w (o, c/g, kh, kw), y (n, o, oh, ow); input row
 * ih = oh * sh - ph + ki * dh (likewise columns). */
#include "cpu.h"
#include "iter.h"

/* the output rows [lo, hi) whose input row oy * s - p + k * d is in [0, n) */
static void valid_range(int64_t k, int64_t s, int64_t p, int64_t d, int64_t n, int64_t out,
                        int64_t *lo, int64_t *hi)
{
    int64_t off = k * d - p; /* input = oy * s + off */
    int64_t a = off >= 0 ? 0 : (-off + s - 1) / s;
    int64_t b = n - off <= 0 ? 0 : (n - off + s - 1) / s; /* first oy with input >= n */
    if (b > out) b = out;
    if (a > b) a = b;
    *lo = a;
    *hi = b;
}

static int64_t cost(const td_conv_args *a)
{
    return a->n * a->o * a->oh * a->ow * (a->c / a->groups) * a->kh * a->kw;
}

td_status td_conv_direct_forward(const td_conv_args *a, const double *x, const double *w,
                                 const double *b, double *y)
{
    int64_t cg = a->c / a->groups, og = a->o / a->groups, plane = a->oh * a->ow;
    int nt = td_cpu_threads_for(cost(a), TD_CPU_GRAIN_COSTLY);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t t = 0; t < a->n * a->o; t++) {
        int64_t ni = t / a->o, oc = t % a->o, g = oc / og;
        double *yp = y + t * plane;
        for (int64_t i = 0; i < plane; i++) yp[i] = b ? b[oc] : 0.0;
        for (int64_t ci = 0; ci < cg; ci++) {
            const double *xp = x + (ni * a->c + g * cg + ci) * a->h * a->w;
            const double *wp = w + (oc * cg + ci) * a->kh * a->kw;
            for (int64_t ki = 0; ki < a->kh; ki++) {
                int64_t ylo, yhi;
                valid_range(ki, a->sh, a->ph, a->dh, a->h, a->oh, &ylo, &yhi);
                for (int64_t kj = 0; kj < a->kw; kj++) {
                    int64_t xlo, xhi;
                    valid_range(kj, a->sw, a->pw, a->dw, a->w, a->ow, &xlo, &xhi);
                    double wv = wp[ki * a->kw + kj];
                    for (int64_t oy = ylo; oy < yhi; oy++) {
                        const double *xr =
                            xp + (oy * a->sh - a->ph + ki * a->dh) * a->w - a->pw + kj * a->dw;
                        double *yr = yp + oy * a->ow;
                        for (int64_t ox = xlo; ox < xhi; ox++) yr[ox] += wv * xr[ox * a->sw];
                    }
                }
            }
        }
    }
    return TD_OK;
}

td_status td_conv_direct_backward_data(const td_conv_args *a, const double *gy, const double *w,
                                       double *gx)
{
    int64_t cg = a->c / a->groups, og = a->o / a->groups, plane = a->oh * a->ow;
    int nt = td_cpu_threads_for(cost(a), TD_CPU_GRAIN_COSTLY);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t t = 0; t < a->n * a->c; t++) {
        int64_t ni = t / a->c, ic = t % a->c, g = ic / cg, ci = ic % cg;
        double *gp = gx + t * a->h * a->w;
        for (int64_t i = 0; i < a->h * a->w; i++) gp[i] = 0.0;
        for (int64_t k = 0; k < og; k++) {
            int64_t oc = g * og + k;
            const double *yp = gy + (ni * a->o + oc) * plane;
            const double *wp = w + (oc * cg + ci) * a->kh * a->kw;
            for (int64_t ki = 0; ki < a->kh; ki++) {
                int64_t ylo, yhi;
                valid_range(ki, a->sh, a->ph, a->dh, a->h, a->oh, &ylo, &yhi);
                for (int64_t kj = 0; kj < a->kw; kj++) {
                    int64_t xlo, xhi;
                    valid_range(kj, a->sw, a->pw, a->dw, a->w, a->ow, &xlo, &xhi);
                    double wv = wp[ki * a->kw + kj];
                    for (int64_t oy = ylo; oy < yhi; oy++) {
                        double *gr =
                            gp + (oy * a->sh - a->ph + ki * a->dh) * a->w - a->pw + kj * a->dw;
                        const double *yr = yp + oy * a->ow;
                        for (int64_t ox = xlo; ox < xhi; ox++) gr[ox * a->sw] += wv * yr[ox];
                    }
                }
            }
        }
    }
    return TD_OK;
}

td_status td_conv_direct_backward_weights(const td_conv_args *a, const double *x, const double *gy,
                                          double *gw, double *gb)
{
    int64_t cg = a->c / a->groups, og = a->o / a->groups, plane = a->oh * a->ow;
    int nt = td_cpu_threads_for(cost(a), TD_CPU_GRAIN_COSTLY);
    if (gw) {
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
        for (int64_t t = 0; t < a->o * cg; t++) {
            int64_t oc = t / cg, ci = t % cg, g = oc / og;
            double *wp = gw + t * a->kh * a->kw;
            for (int64_t ki = 0; ki < a->kh; ki++) {
                int64_t ylo, yhi;
                valid_range(ki, a->sh, a->ph, a->dh, a->h, a->oh, &ylo, &yhi);
                for (int64_t kj = 0; kj < a->kw; kj++) {
                    int64_t xlo, xhi;
                    valid_range(kj, a->sw, a->pw, a->dw, a->w, a->ow, &xlo, &xhi);
                    double s = 0.0;
                    for (int64_t ni = 0; ni < a->n; ni++) {
                        const double *xp = x + (ni * a->c + g * cg + ci) * a->h * a->w;
                        const double *yp = gy + (ni * a->o + oc) * plane;
                        for (int64_t oy = ylo; oy < yhi; oy++) {
                            const double *xr =
                                xp + (oy * a->sh - a->ph + ki * a->dh) * a->w - a->pw + kj * a->dw;
                            const double *yr = yp + oy * a->ow;
                            for (int64_t ox = xlo; ox < xhi; ox++) s += xr[ox * a->sw] * yr[ox];
                        }
                    }
                    wp[ki * a->kw + kj] = s;
                }
            }
        }
    }
    if (gb) {
        int nb = td_cpu_threads_for(a->n * a->o * plane, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nb) schedule(static) if (nb > 1)
        for (int64_t oc = 0; oc < a->o; oc++) {
            double s = 0.0;
            for (int64_t ni = 0; ni < a->n; ni++) {
                const double *yp = gy + (ni * a->o + oc) * plane;
                for (int64_t i = 0; i < plane; i++) s += yp[i];
            }
            gb[oc] = s;
        }
    }
    return TD_OK;
}
