/* What the loss, index, layer and optimizer kernels share: the halving
 * tree over a block, the device of a raw pointer, device scratch, and the
 * one-download "flag" readback that carries data-dependent errors (a class
 * index out of range, a probability outside [0, 1]) back to the host.
 *
 * Deterministic: no atomics on floats anywhere. A reduction over rows or
 * elements runs as per-thread partials folded in a fixed order, a fixed
 * halving tree per block, then one block folding the per-block partials
 * in order: the order depends on the shape alone. */
#ifndef TIDE_KERNELS_CUDA_ROWS_CUH
#define TIDE_KERNELS_CUDA_ROWS_CUH

#include "common.cuh"

#include <math.h>

namespace tdc {

/* the halving tree over a block's partials (blockDim.x a power of two);
 * every thread gets the result */
template <typename A, typename F> __device__ A tree_reduce(A v, A *sh, F f)
{
    sh[threadIdx.x] = v;
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) sh[threadIdx.x] = f(sh[threadIdx.x], sh[threadIdx.x + s]);
        __syncthreads();
    }
    A r = sh[0];
    __syncthreads(); /* sh is reused by the next call */
    return r;
}

struct Sum {
    template <typename A> __device__ A operator()(A a, A b) const { return a + b; }
};

/* threads for one row of c elements: a power of two in [32, 512] */
inline int row_threads(int64_t c)
{
    int t = 32;
    while (t < 512 && t < c) t *= 2;
    return t;
}

inline unsigned row_blocks(int64_t rows)
{
    return (unsigned)(rows < 1 ? 1 : rows > (1 << 30) ? (1 << 30) : rows);
}

/* the device a raw pointer lives on, made current; false (and an error
 * noted) when it is not device memory */
inline bool use_device_of_ptr(const void *p, const char *what)
{
    struct cudaPointerAttributes a;
    cudaError_t e = cudaPointerGetAttributes(&a, p);
    if (e != cudaSuccess || a.type != cudaMemoryTypeDevice) {
        (void)cudaGetLastError();
        td_cuda_note_error(e != cudaSuccess ? (int)e : (int)cudaErrorInvalidValue, what);
        return false;
    }
    td_cuda_use(a.device);
    return true;
}

inline int current_device()
{
    int d = 0;
    (void)cudaGetDevice(&d);
    return d;
}

/* device scratch from the caching allocator, freed when it leaves scope */
struct Scratch {
    int device;
    size_t nbytes;
    void *p;
    Scratch(size_t n)
        : device(current_device()), nbytes(n ? n : 1), p(td_cuda_alloc(device, nbytes))
    {
        if (!p)
            td_cuda_note_error((int)cudaErrorMemoryAllocation,
                               "scratch for a loss or index kernel");
    }
    ~Scratch()
    {
        if (p) td_cuda_free(device, p, nbytes);
    }
    Scratch(const Scratch &) = delete;
    Scratch &operator=(const Scratch &) = delete;
    template <typename T> T *as() const { return (T *)p; }
};

template <typename T> __device__ inline T dexp(T x);
template <> __device__ inline float dexp<float>(float x) { return expf(x); }
template <> __device__ inline double dexp<double>(double x) { return exp(x); }

template <typename T> __device__ inline T dsqrt(T x);
template <> __device__ inline float dsqrt<float>(float x) { return sqrtf(x); }
template <> __device__ inline double dsqrt<double>(double x) { return sqrt(x); }

__device__ inline float dlog(float x) { return logf(x); }
__device__ inline double dlog(double x) { return log(x); }
__device__ inline float dlog1p(float x) { return log1pf(x); }
__device__ inline double dlog1p(double x) { return log1p(x); }
__device__ inline float dabs(float x) { return fabsf(x); }
__device__ inline double dabs(double x) { return fabs(x); }
__device__ inline float dpow(float a, float b) { return powf(a, b); }
__device__ inline double dpow(double a, double b) { return pow(a, b); }

} // namespace tdc

#endif
