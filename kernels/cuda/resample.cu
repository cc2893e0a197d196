/* Separable resampling on CUDA (padding, nearest, linear, cubic; see
 * td_resample_args in kernels/nn_conv.h), the CPU's nn_resample.c as
 * kernels: one thread per output element forward, one per input element
 * backward, each summing its fixed set in the tables' order (in double),
 * so the results do not depend on the launch and match the CPU's. */
#include "common.cuh"
#include "nn.h"

namespace {

template <typename T>
__global__ void resample_fwd(td_resample_args a, const T *x, T *y, int64_t total)
{
    int64_t ip = a.in[0] * a.in[1] * a.in[2], op = a.out[0] * a.out[1] * a.out[2];
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        int64_t o2 = e % a.out[2], o1 = e / a.out[2] % a.out[1],
                o0 = e / (a.out[1] * a.out[2]) % a.out[0], base = e / op * ip;
        double s = 0;
        for (int64_t t0 = 0; t0 < a.taps[0]; t0++) {
            int64_t p0 = o0 * a.taps[0] + t0, i0 = a.idx[0][p0];
            double w0 = a.wt[0][p0];
            for (int64_t t1 = 0; t1 < a.taps[1]; t1++) {
                int64_t p1 = o1 * a.taps[1] + t1, i1 = a.idx[1][p1];
                double w1 = w0 * a.wt[1][p1];
                for (int64_t t2 = 0; t2 < a.taps[2]; t2++) {
                    int64_t p2 = o2 * a.taps[2] + t2, i2 = a.idx[2][p2];
                    double v = i0 < 0 || i1 < 0 || i2 < 0
                                   ? a.value
                                   : (double)x[base + (i0 * a.in[1] + i1) * a.in[2] + i2];
                    s += w1 * a.wt[2][p2] * v;
                }
            }
        }
        y[e] = (T)s;
    }
}

template <typename T>
__global__ void resample_bwd(td_resample_args a, const T *gy, T *gx, int64_t total)
{
    int64_t ip = a.in[0] * a.in[1] * a.in[2], op = a.out[0] * a.out[1] * a.out[2];
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        int64_t i2 = e % a.in[2], i1 = e / a.in[2] % a.in[1],
                i0 = e / (a.in[1] * a.in[2]) % a.in[0], base = e / ip * op;
        double s = 0;
        for (int64_t j0 = a.inv_ptr[0][i0]; j0 < a.inv_ptr[0][i0 + 1]; j0++) {
            int64_t p0 = a.inv_pos[0][j0];
            double w0 = a.wt[0][p0];
            for (int64_t j1 = a.inv_ptr[1][i1]; j1 < a.inv_ptr[1][i1 + 1]; j1++) {
                int64_t p1 = a.inv_pos[1][j1];
                double w1 = w0 * a.wt[1][p1];
                int64_t row = base + (p0 / a.taps[0] * a.out[1] + p1 / a.taps[1]) * a.out[2];
                for (int64_t j2 = a.inv_ptr[2][i2]; j2 < a.inv_ptr[2][i2 + 1]; j2++) {
                    int64_t p2 = a.inv_pos[2][j2];
                    s += w1 * a.wt[2][p2] * (double)gy[row + p2 / a.taps[2]];
                }
            }
        }
        gx[e] = (T)s;
    }
}

bool on_device_of(const void *p)
{
    int d = td_cuda_device_of_ptr(p);
    if (d < 0) return false;
    td_cuda_use(d);
    return true;
}

} // namespace

extern "C" td_status td_cuda_resample(const td_resample_args *a, const void *x, void *y)
{
    int64_t total = a->outer * a->out[0] * a->out[1] * a->out[2];
    if (total == 0) return TD_OK;
    if (!on_device_of(y)) return td_error(TD_EINVAL, 0, "resample: output not in CUDA memory");
    if (a->dtype == TD_FLOAT32)
        resample_fwd<float>
            <<<tdc::blocks_for(total), tdc::THREADS>>>(*a, (const float *)x, (float *)y, total);
    else
        resample_fwd<double>
            <<<tdc::blocks_for(total), tdc::THREADS>>>(*a, (const double *)x, (double *)y, total);
    tdc::check_launch("resample");
    return td_cuda_pending_error();
}

extern "C" td_status td_cuda_resample_backward(const td_resample_args *a, const void *gy, void *gx)
{
    int64_t total = a->outer * a->in[0] * a->in[1] * a->in[2];
    if (total == 0) return TD_OK;
    if (!on_device_of(gx)) return td_error(TD_EINVAL, 0, "resample: gradient not in CUDA memory");
    if (a->dtype == TD_FLOAT32)
        resample_bwd<float>
            <<<tdc::blocks_for(total), tdc::THREADS>>>(*a, (const float *)gy, (float *)gx, total);
    else
        resample_bwd<double>
            <<<tdc::blocks_for(total), tdc::THREADS>>>(*a, (const double *)gy, (double *)gx, total);
    tdc::check_launch("resample backward");
    return td_cuda_pending_error();
}
