/* CPU adaptive max pooling on NCHW data (the front-end makes channels-last
 * input contiguous for it): PyTorch's windows, a NaN wins and a tie keeps
 * the earlier tap, as the fixed max pool; its backward is the max pool's
 * scatter through the argmax, in output order. */
#include "layers.h"
#include "iter.h"
#include "pool_window.h"

#include <math.h>
#include <string.h>

static inline double at(const void *p, int64_t k, bool f32)
{
    return f32 ? (double)((const float *)p)[k] : ((const double *)p)[k];
}

void td_cpu_adaptive_max_pool2d(const td_pool2d_args *a, const void *x, void *y, int64_t *idx)
{
    const bool f32 = a->dtype == TD_FLOAT32;
    const int64_t planes = a->n * a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;
    int nt = td_cpu_threads_for(planes * H * W, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int64_t xo = pl * H * W, yo = pl * OH * OW;
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++) {
                int64_t hs, he, ws, we;
                adaptive_range(oy, H, OH, &hs, &he);
                adaptive_range(ox, W, OW, &ws, &we);
                double m = -INFINITY;
                int64_t best = hs * W + ws;
                for (int64_t yy = hs; yy < he; yy++)
                    for (int64_t xx = ws; xx < we; xx++) {
                        double v = at(x, xo + yy * W + xx, f32);
                        if (v > m || v != v) {
                            m = v;
                            best = yy * W + xx;
                        }
                    }
                int64_t o = yo + oy * OW + ox;
                if (f32)
                    ((float *)y)[o] = (float)m;
                else
                    ((double *)y)[o] = m;
                idx[o] = best;
            }
    }
}

void td_cpu_adaptive_max_pool2d_backward(const td_pool2d_args *a, const void *gy,
                                         const int64_t *idx, void *gx)
{
    const bool f32 = a->dtype == TD_FLOAT32;
    const int64_t planes = a->n * a->c, HW = a->h * a->w, OHW = a->oh * a->ow;
    int nt = td_cpu_threads_for(planes * HW, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t pl = 0; pl < planes; pl++) {
        const int64_t *io = idx + pl * OHW;
        if (f32) {
            float *gi = (float *)gx + pl * HW;
            const float *go = (const float *)gy + pl * OHW;
            memset(gi, 0, sizeof(float) * (size_t)HW);
            for (int64_t o = 0; o < OHW; o++) gi[io[o]] += go[o];
        } else {
            double *gi = (double *)gx + pl * HW;
            const double *go = (const double *)gy + pl * OHW;
            memset(gi, 0, sizeof(double) * (size_t)HW);
            for (int64_t o = 0; o < OHW; o++) gi[io[o]] += go[o];
        }
    }
}
