/* Group norm on CUDA, our own kernels (cuDNN has no group norm that keeps
 * PyTorch's statistics in double). Deterministic, no atomics: a row's sum
 * is one block's, each thread folding its strided share in order, then a
 * fixed halving tree; sums over the batch run in one thread in order. */
#include "common.cuh"
#include "nn_group_norm.h"

using namespace tdc;

namespace {

/* v summed over the block by a fixed halving tree (every thread gets it) */
__device__ double block_sum(double v, double *sh)
{
    int t = threadIdx.x;
    __syncthreads(); /* sh may still be read from the previous call */
    sh[t] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if (t < s) sh[t] += sh[t + s];
        __syncthreads();
    }
    return sh[0];
}

/* block r: row r (m elements from r m) -> mean[r], rstd[r], two passes */
template <typename T>
__global__ void row_stats(const T *x, int64_t m, double eps, double *mean, double *rstd)
{
    __shared__ double sh[THREADS];
    const T *p = x + (int64_t)blockIdx.x * m;
    double s = 0;
    for (int64_t i = threadIdx.x; i < m; i += THREADS) s += (double)p[i];
    double mu = m ? block_sum(s, sh) / (double)m : 0;
    double v = 0;
    for (int64_t i = threadIdx.x; i < m; i += THREADS) {
        double d = (double)p[i] - mu;
        v += d * d;
    }
    double var = block_sum(v, sh);
    if (threadIdx.x == 0) {
        mean[blockIdx.x] = mu;
        rstd[blockIdx.x] = 1.0 / sqrt((m ? var / (double)m : 0) + eps);
    }
}

template <typename T>
__global__ void gn_apply(const T *x, T *y, int64_t total, int64_t c, int64_t inner, int64_t m,
                         const T *w, const T *b, const double *mean, const double *rstd)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        int64_t r = i / m, ch = (i / inner) % c;
        double sc = rstd[r] * (w ? (double)w[ch] : 1.0);
        double sf = (b ? (double)b[ch] : 0.0) - mean[r] * sc;
        y[i] = (T)((double)x[i] * sc + sf);
    }
}

/* block p: plane p = (n, c) -> sum gy x, sum gy */
template <typename T>
__global__ void plane_sums(const T *x, const T *gy, int64_t inner, int64_t nc, double *sums)
{
    __shared__ double sh[THREADS];
    const int64_t base = (int64_t)blockIdx.x * inner;
    double a = 0, b = 0;
    for (int64_t i = threadIdx.x; i < inner; i += THREADS) {
        double g = (double)gy[base + i];
        a += g * (double)x[base + i];
        b += g;
    }
    a = block_sum(a, sh);
    b = block_sum(b, sh);
    if (threadIdx.x == 0) {
        sums[blockIdx.x] = a;
        sums[nc + blockIdx.x] = b;
    }
}

/* thread ch: weight and bias gradients, summed over n in order */
__global__ void affine_grads(const double *sums, const double *mean, const double *rstd, int64_t n,
                             int64_t c, int64_t g, double *gwb)
{
    int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    const double *ds = sums, *db = sums + n * c;
    double w = 0, b = 0;
    for (int64_t k = 0; k < n; k++) {
        int64_t r = k * g + ch / (c / g);
        w += (ds[k * c + ch] - db[k * c + ch] * mean[r]) * rstd[r];
        b += db[k * c + ch];
    }
    gwb[ch] = w;
    gwb[c + ch] = b;
}

/* thread r: row r's coefficients gx = rstd w gy + c2 x + c3 */
template <typename T>
__global__ void row_coefs(const double *sums, const T *w, const double *mean, const double *rstd,
                          int64_t n, int64_t c, int64_t g, int64_t inner, double *coef)
{
    int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (r >= n * g) return;
    const int64_t cg = c / g, k = r / g, c0 = (r % g) * cg, m = cg * inner;
    const double *ds = sums, *db = sums + n * c;
    double sdg = 0, sbg = 0;
    for (int64_t j = 0; j < cg; j++) {
        double wv = w ? (double)w[c0 + j] : 1.0;
        sdg += ds[k * c + c0 + j] * wv;
        sbg += db[k * c + c0 + j] * wv;
    }
    double mu = mean[r], rs = rstd[r];
    double c2 = (sbg * mu - sdg) * rs * rs * rs / (double)m;
    coef[2 * r] = c2;
    coef[2 * r + 1] = -c2 * mu - sbg * rs / (double)m;
}

template <typename T>
__global__ void gn_grad_x(const T *x, const T *gy, const T *w, const double *rstd,
                          const double *coef, int64_t total, int64_t c, int64_t inner, int64_t m,
                          T *gx)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        int64_t r = i / m, ch = (i / inner) % c;
        double a = rstd[r] * (w ? (double)w[ch] : 1.0);
        gx[i] = (T)(a * (double)gy[i] + coef[2 * r] * (double)x[i] + coef[2 * r + 1]);
    }
}

bool use_ptr(const void *p)
{
    cudaPointerAttributes a;
    if (cudaPointerGetAttributes(&a, p) != cudaSuccess || a.type != cudaMemoryTypeDevice) {
        (void)cudaGetLastError();
        td_cuda_note_error(cudaErrorInvalidDevicePointer, "group norm");
        return false;
    }
    td_cuda_use(a.device);
    return true;
}

} // namespace

extern "C" void td_cuda_gn_forward(td_dtype dt, const void *x, void *y, int64_t n, int64_t c,
                                   int64_t g, int64_t inner, const void *weight, const void *bias,
                                   double eps, double *mean, double *rstd)
{
    const int64_t rows = n * g, m = c / g * inner, total = rows * m;
    if (rows == 0 || !use_ptr(mean)) return;
    TDC_FLOAT_DISPATCH(dt, {
        row_stats<T><<<(unsigned)rows, THREADS>>>((const T *)x, m, eps, mean, rstd);
        if (total > 0)
            gn_apply<T><<<blocks_for(total), THREADS>>>((const T *)x, (T *)y, total, c, inner, m,
                                                        (const T *)weight, (const T *)bias, mean,
                                                        rstd);
    });
    check_launch("group_norm");
}

extern "C" void td_cuda_gn_backward(td_dtype dt, const void *x, const void *gy, const void *weight,
                                    const double *mean, const double *rstd, int64_t n, int64_t c,
                                    int64_t g, int64_t inner, double *sums, double *gwb, void *gx)
{
    const int64_t nc = n * c, rows = n * g, m = c / g * inner, total = rows * m;
    if (c == 0 || !use_ptr(gwb)) return;
    int device = 0;
    cudaGetDevice(&device);
    TDC_FLOAT_DISPATCH(dt, {
        if (nc > 0)
            plane_sums<T><<<(unsigned)nc, THREADS>>>((const T *)x, (const T *)gy, inner, nc, sums);
        affine_grads<<<blocks_for(c), THREADS>>>(sums, mean, rstd, n, c, g, gwb);
        if (gx && total > 0) {
            size_t bytes = sizeof(double) * (size_t)(2 * rows);
            double *coef = (double *)td_cuda_alloc(device, bytes);
            if (!coef) {
                td_cuda_note_error(cudaErrorMemoryAllocation, "group norm backward scratch");
                return;
            }
            row_coefs<T><<<blocks_for(rows), THREADS>>>(sums, (const T *)weight, mean, rstd, n, c,
                                                        g, inner, coef);
            gn_grad_x<T><<<blocks_for(total), THREADS>>>((const T *)x, (const T *)gy,
                                                         (const T *)weight, rstd, coef, total, c,
                                                         inner, m, (T *)gx);
            td_cuda_free(device, coef, bytes);
        }
    });
    check_launch("group_norm backward");
}
