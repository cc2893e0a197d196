/* What the .cu files share: the strided iterator, dtype dispatch, the
 * conversions that match the CPU backend's, and the launch helper.
 *
 * One kernel template per operation and dtype, with the op chosen by a
 * switch inside (uniform across a launch, so it costs a branch, not a
 * divergence): few instantiations, a short compile. */
#ifndef TIDE_KERNELS_CUDA_COMMON_CUH
#define TIDE_KERNELS_CUDA_COMMON_CUH

#include "cuda_internal.h"

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <type_traits>

namespace tdc {

constexpr int MAX_OPS = 4;
constexpr int THREADS = 256;

/* operands share operand 0's shape; dims of size 1 are dropped and
 * neighbours contiguous for every operand merged, so dense tensors are a
 * single flat dim and need no division per element */
struct Iter {
    int ndim;
    int64_t numel;
    int64_t shape[TD_MAX_DIMS];
    int64_t stride[MAX_OPS][TD_MAX_DIMS];
    char *data[MAX_OPS];
};

inline Iter make_iter(int n, const td_tensor *const *ts)
{
    Iter it = {};
    const td_tensor *o = ts[0];
    int nd = 0;
    it.numel = 1;
    for (int d = 0; d < o->ndim; d++) {
        it.numel *= o->shape[d];
        if (o->shape[d] == 1) continue;
        it.shape[nd] = o->shape[d];
        for (int k = 0; k < n; k++) it.stride[k][nd] = ts[k]->stride[d];
        nd++;
    }
    int w = 0;
    for (int d = 0; d < nd; d++) {
        bool merge = w > 0;
        for (int k = 0; k < n && merge; k++)
            if (it.stride[k][w - 1] != it.stride[k][d] * it.shape[d]) merge = false;
        if (merge) {
            it.shape[w - 1] *= it.shape[d];
            for (int k = 0; k < n; k++) it.stride[k][w - 1] = it.stride[k][d];
            continue;
        }
        it.shape[w] = it.shape[d];
        for (int k = 0; k < n; k++) it.stride[k][w] = it.stride[k][d];
        w++;
    }
    it.ndim = w;
    for (int k = 0; k < n; k++)
        it.data[k] =
            (char *)ts[k]->storage->data + ts[k]->offset * (int64_t)td_dtype_size(ts[k]->dtype);
    return it;
}

template <int N> __device__ inline void offsets(const Iter &it, int64_t i, int64_t *off)
{
    for (int k = 0; k < N; k++) off[k] = 0;
    if (it.ndim == 1) {
        for (int k = 0; k < N; k++) off[k] = i * it.stride[k][0];
        return;
    }
    for (int d = it.ndim - 1; d >= 0; d--) {
        int64_t s = it.shape[d], q = i / s, r = i - q * s;
        i = q;
        for (int k = 0; k < N; k++) off[k] += r * it.stride[k][d];
    }
}

/* grid-stride loop over the iterator's elements; f(off) gets the element
 * offsets (in elements) of the N operands */
template <int N, typename F> __global__ void ew_kernel(Iter it, F f)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < it.numel; i += step) {
        int64_t off[N];
        offsets<N>(it, i, off);
        f(it, off);
    }
}

inline unsigned blocks_for(int64_t n, int threads = THREADS)
{
    int64_t b = (n + threads - 1) / threads;
    return (unsigned)(b < 1 ? 1 : b > 65535 ? 65535 : b);
}

inline void check_launch(const char *what)
{
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) td_cuda_note_error(e, what);
}

template <int N, typename F> inline void launch(const Iter &it, F f, const char *what)
{
    if (it.numel == 0) return;
    ew_kernel<N><<<blocks_for(it.numel), THREADS>>>(it, f);
    check_launch(what);
}

/* ---- dtypes ----------------------------------------------------------------- */

template <typename T> struct is_float {
    static constexpr bool value = false;
};
template <> struct is_float<float> {
    static constexpr bool value = true;
};
template <> struct is_float<double> {
    static constexpr bool value = true;
};

/* C leaves out-of-range float-to-int undefined; the CPU backend gives
 * INT64_MIN there (as x86 does), and so do we */
__host__ __device__ inline int64_t f2i(double v)
{
    return (v >= -9223372036854775808.0 && v < 9223372036854775808.0) ? (int64_t)v : INT64_MIN;
}

template <typename D, typename S> __device__ inline D convert(S v)
{
    if constexpr (is_float<D>::value)
        return (D)v;
    else if constexpr (is_float<S>::value)
        return (D)f2i((double)v);
    else
        return (D)v;
}

/* Run the statement list with T the C type of dt (TDC_FLOAT_DISPATCH: double
 * for float64, else float). Macros, as the CPU's TD_CPU_DISPATCH: they take
 * a block of statements, kernel launches and all, which a template cannot
 * without wrapping every caller's block in a lambda. */
#define TDC_DISPATCH(dt, ...)                                                                      \
    switch (dt) {                                                                                  \
    case TD_FLOAT32: {                                                                             \
        typedef float T;                                                                           \
        __VA_ARGS__;                                                                               \
    } break;                                                                                       \
    case TD_FLOAT64: {                                                                             \
        typedef double T;                                                                          \
        __VA_ARGS__;                                                                               \
    } break;                                                                                       \
    case TD_INT64: {                                                                               \
        typedef int64_t T;                                                                         \
        __VA_ARGS__;                                                                               \
    } break;                                                                                       \
    default: {                                                                                     \
        typedef uint8_t T;                                                                         \
        __VA_ARGS__;                                                                               \
    } break;                                                                                       \
    }

#define TDC_FLOAT_DISPATCH(dt, ...)                                                                \
    if ((dt) == TD_FLOAT64) {                                                                      \
        typedef double T;                                                                          \
        __VA_ARGS__;                                                                               \
    } else {                                                                                       \
        typedef float T;                                                                           \
        __VA_ARGS__;                                                                               \
    }

/* bfloat16 and float16 (docs/precision.md): stored as __nv_bfloat16 /
 * __half, loaded as float and stored rounded to nearest even, computed in
 * float32. TDC_DISPATCH and TDC_FLOAT_DISPATCH do not name them: the
 * kernels that take them dispatch with TDC_LOWP_DISPATCH (S the storage
 * type), and the binding keeps every other op's CUDA kernel from seeing
 * them (l_device.c). */
template <typename T> struct is_lowp {
    static constexpr bool value =
        std::is_same<T, __nv_bfloat16>::value || std::is_same<T, __half>::value;
};

__device__ inline float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ inline float to_f(__half v) { return __half2float(v); }

template <typename S> __device__ inline S from_f(float v);
template <> __device__ inline __nv_bfloat16 from_f<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}
template <> __device__ inline __half from_f<__half>(float v) { return __float2half_rn(v); }

/* any element as float (a float64 rounds, as PyTorch's conversion does),
 * and a float into any element type */
template <typename S> __device__ inline float load_f(const S *p)
{
    if constexpr (is_lowp<S>::value)
        return to_f(*p);
    else
        return (float)*p;
}

template <typename D> __device__ inline void store_f(D *p, float v)
{
    if constexpr (is_lowp<D>::value)
        *p = from_f<D>(v);
    else
        *p = convert<D>(v);
}

#define TDC_LOWP_DISPATCH(dt, ...)                                                                 \
    if ((dt) == TD_BFLOAT16) {                                                                     \
        typedef __nv_bfloat16 S;                                                                   \
        __VA_ARGS__;                                                                               \
    } else {                                                                                       \
        typedef __half S;                                                                          \
        __VA_ARGS__;                                                                               \
    }

/* Run the statement list with W an unsigned type of es bytes (1, 2, 4,
 * else 8): for kernels that move elements without reading them as numbers */
#define TDC_WIDTH_DISPATCH(es, ...)                                                                \
    switch (es) {                                                                                  \
    case 1: {                                                                                      \
        typedef uint8_t W;                                                                         \
        __VA_ARGS__;                                                                               \
    } break;                                                                                       \
    case 2: {                                                                                      \
        typedef uint16_t W;                                                                        \
        __VA_ARGS__;                                                                               \
    } break;                                                                                       \
    case 4: {                                                                                      \
        typedef uint32_t W;                                                                        \
        __VA_ARGS__;                                                                               \
    } break;                                                                                       \
    default: {                                                                                     \
        typedef uint64_t W;                                                                        \
        __VA_ARGS__;                                                                               \
    } break;                                                                                       \
    }

/* the device of the tensor the kernel writes */
inline void use_device_of(const td_tensor *t) { td_cuda_use(t->storage->device); }

template <typename T> __device__ inline T *at(const Iter &it, int k, int64_t off)
{
    return (T *)it.data[k] + off;
}

} // namespace tdc

#endif
