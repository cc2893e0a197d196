/* Separable resampling on the CPU (padding, nearest, linear, cubic; see
 * td_resample_args in kernels/nn_conv.h). The forward gathers each output
 * element from its taps; the backward gathers each input element from the
 * output positions that read it (the inverse tables), in a fixed order,
 * so its sums do not depend on the thread count. Sums run in double. */
#include "cpu.h"
#include "iter.h"

static inline double load(const void *p, int64_t i, bool f32)
{
    return f32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static inline void store(void *p, int64_t i, double v, bool f32)
{
    if (f32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

static int64_t vol(const int64_t *v) { return v[0] * v[1] * v[2]; }

td_status td_cpu_resample(const td_resample_args *a, const void *x, void *y)
{
    bool f32 = a->dtype == TD_FLOAT32;
    int64_t ip = vol(a->in), op = vol(a->out), total = a->outer * op;
    int nt = td_cpu_threads_for(total * vol(a->taps), TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t e = 0; e < total; e++) {
        int64_t o2 = e % a->out[2], o1 = e / a->out[2] % a->out[1],
                o0 = e / (a->out[1] * a->out[2]) % a->out[0], base = e / op * ip;
        double s = 0;
        for (int64_t t0 = 0; t0 < a->taps[0]; t0++) {
            int64_t p0 = o0 * a->taps[0] + t0, i0 = a->idx[0][p0];
            double w0 = a->wt[0][p0];
            for (int64_t t1 = 0; t1 < a->taps[1]; t1++) {
                int64_t p1 = o1 * a->taps[1] + t1, i1 = a->idx[1][p1];
                double w1 = w0 * a->wt[1][p1];
                for (int64_t t2 = 0; t2 < a->taps[2]; t2++) {
                    int64_t p2 = o2 * a->taps[2] + t2, i2 = a->idx[2][p2];
                    double v = i0 < 0 || i1 < 0 || i2 < 0
                                   ? a->value
                                   : load(x, base + (i0 * a->in[1] + i1) * a->in[2] + i2, f32);
                    s += w1 * a->wt[2][p2] * v;
                }
            }
        }
        store(y, e, s, f32);
    }
    return TD_OK;
}

td_status td_cpu_resample_backward(const td_resample_args *a, const void *gy, void *gx)
{
    bool f32 = a->dtype == TD_FLOAT32;
    int64_t ip = vol(a->in), op = vol(a->out), total = a->outer * ip;
    int nt = td_cpu_threads_for(a->outer * op * vol(a->taps), TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t e = 0; e < total; e++) {
        int64_t i2 = e % a->in[2], i1 = e / a->in[2] % a->in[1],
                i0 = e / (a->in[1] * a->in[2]) % a->in[0], base = e / ip * op;
        double s = 0;
        for (int64_t j0 = a->inv_ptr[0][i0]; j0 < a->inv_ptr[0][i0 + 1]; j0++) {
            int64_t p0 = a->inv_pos[0][j0];
            double w0 = a->wt[0][p0];
            for (int64_t j1 = a->inv_ptr[1][i1]; j1 < a->inv_ptr[1][i1 + 1]; j1++) {
                int64_t p1 = a->inv_pos[1][j1];
                double w1 = w0 * a->wt[1][p1];
                int64_t row = base + (p0 / a->taps[0] * a->out[1] + p1 / a->taps[1]) * a->out[2];
                for (int64_t j2 = a->inv_ptr[2][i2]; j2 < a->inv_ptr[2][i2 + 1]; j2++) {
                    int64_t p2 = a->inv_pos[2][j2];
                    s += w1 * a->wt[2][p2] * load(gy, row + p2 / a->taps[2], f32);
                }
            }
        }
        store(gx, e, s, f32);
    }
    return TD_OK;
}
