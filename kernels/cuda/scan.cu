/* Cumulative sums and products along the middle of contiguous (outer, n,
 * inner), and cumprod's backward.
 *
 * One thread per line, which runs it in order, floats accumulating in
 * double and integers in wrapping uint64: the same order and the same
 * arithmetic as the CPU's, so the bits match it. Neighbouring threads take
 * neighbouring columns, so inner > 1 reads coalesced. Pending: a parallel
 * scan for a few very long rows (inner == 1), which here run on a few
 * threads only. */
#include "common.cuh"

#include <type_traits>

using namespace tdc;

namespace {

template <typename T>
__global__ void scan_lines(const T *x, T *out, int64_t outer, int64_t n, int64_t inner, bool sum,
                           bool reverse)
{
    typedef typename std::conditional<is_float<T>::value, double, uint64_t>::type A;
    int64_t total = outer * inner, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; id < total; id += step) {
        int64_t o = id / inner, j = id - o * inner;
        int64_t base = o * n * inner + j + (reverse ? (n - 1) * inner : 0);
        int64_t s = reverse ? -inner : inner;
        A acc = sum ? (A)0 : (A)1;
        for (int64_t i = 0; i < n; i++) {
            A v = (A)x[base + i * s];
            acc = sum ? acc + v : acc * v;
            out[base + i * s] = (T)acc;
        }
    }
}

/* PyTorch's first-zero rule, as kernels/cpu/scan.c states it */
template <typename T>
__global__ void cumprod_back_lines(const T *x, const T *out, const T *gy, T *gx, int64_t outer,
                                   int64_t n, int64_t inner)
{
    int64_t total = outer * inner, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; id < total; id += step) {
        int64_t o = id / inner, b = o * n * inner + (id - o * inner), s = inner;
        if (n == 1) {
            gx[b] = gy[b];
            continue;
        }
        int64_t z = 0;
        while (z < n && x[b + z * s] != (T)0) z++;
        for (int64_t k = n - 1; k > z; k--) gx[b + k * s] = (T)0;
        if (z < n) {
            double acc = (double)gy[b + z * s], p = 1;
            for (int64_t j = z + 1; j < n && x[b + j * s] != (T)0; j++) {
                p *= (double)x[b + j * s];
                acc += (double)gy[b + j * s] * p;
            }
            gx[b + z * s] = (T)(acc * (z > 0 ? (double)out[b + (z - 1) * s] : 1.0));
        }
        double rev = 0;
        for (int64_t k = z - 1; k >= 0; k--) {
            rev += (double)gy[b + k * s] * (double)out[b + k * s];
            gx[b + k * s] = (T)(rev / (double)x[b + k * s]);
        }
    }
}

template <typename T> const T *cptr(const td_tensor *t)
{
    return (const T *)((const char *)t->storage->data + t->offset * (int64_t)sizeof(T));
}

template <typename T> T *ptr(td_tensor *t)
{
    return (T *)((char *)t->storage->data + t->offset * (int64_t)sizeof(T));
}

} // namespace

extern "C" void td_cuda_scan(td_reduce_op op, td_tensor *out, const td_tensor *x, int64_t outer,
                             int64_t n, int64_t inner, bool reverse)
{
    if (outer == 0 || inner == 0 || n == 0) return;
    use_device_of(out);
    TDC_DISPATCH(x->dtype, scan_lines<T><<<blocks_for(outer * inner), THREADS>>>(
                               cptr<T>(x), ptr<T>(out), outer, n, inner, op == TD_SUM, reverse));
    check_launch("scan");
}

extern "C" void td_cuda_cumprod_backward(td_tensor *gx, const td_tensor *x, const td_tensor *out,
                                         const td_tensor *gy, int64_t outer, int64_t n,
                                         int64_t inner)
{
    if (outer == 0 || inner == 0 || n == 0) return;
    use_device_of(gx);
    TDC_FLOAT_DISPATCH(x->dtype,
                       cumprod_back_lines<T><<<blocks_for(outer * inner), THREADS>>>(
                           cptr<T>(x), cptr<T>(out), cptr<T>(gy), ptr<T>(gx), outer, n, inner));
    check_launch("cumprod_backward");
}
