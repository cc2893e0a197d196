/* Shared by the CPU kernels: element pointers, dtype dispatch, a strided
 * iterator that coalesces dims and splits the flat range across threads,
 * and a vectorisable expf. */
#ifndef TIDE_KERNELS_CPU_ITER_H
#define TIDE_KERNELS_CPU_ITER_H

#include "tide/core.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* for a loop written once for several dtypes and called with a constant
 * dtype flag: inlined, each copy is one dtype's (plain inline leaves a
 * large body out of line, the flag a run-time test) */
#define TD_CPU_ALWAYS_INLINE static inline __attribute__((always_inline))

/* below these many elements a parallel region costs more than it saves */
#define TD_CPU_GRAIN        32768
#define TD_CPU_GRAIN_COSTLY 4096

#define TD_CPU_MAX_OPS      4

static inline size_t td_cpu_elsize(td_dtype dt)
{
    return dt == TD_UINT8 ? 1 : dt == TD_FLOAT32 ? 4 : td_dtype_is_lowp(dt) ? 2 : 8;
}

static inline char *td_cpu_ptr(const td_tensor *t)
{
    return (char *)t->storage->data + t->offset * (int64_t)td_cpu_elsize(t->dtype);
}

/* Runs the statement list with T the C type of dt: any dtype, or the
 * float ones only (TD_CPU_FLOAT_DISPATCH, for kernels whose front-ends
 * admit nothing else and whose bodies only make sense in floating point;
 * another dtype runs nothing). bfloat16 and float16 have no C type here
 * and run nothing either: their kernels convert to float32 (lowp.h), and
 * the front-ends of the others refuse them. */
#define TD_CPU_DISPATCH(dt, ...)                                                                   \
    switch (dt) {                                                                                  \
        TD_CPU_FLOAT_CASES(__VA_ARGS__)                                                            \
    case TD_INT64: {                                                                               \
        typedef int64_t T;                                                                         \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case TD_UINT8: {                                                                               \
        typedef uint8_t T;                                                                         \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    default: break;                                                                                \
    }

#define TD_CPU_FLOAT_DISPATCH(dt, ...)                                                             \
    switch (dt) {                                                                                  \
        TD_CPU_FLOAT_CASES(__VA_ARGS__)                                                            \
    default: break;                                                                                \
    }

#define TD_CPU_FLOAT_CASES(...)                                                                    \
    case TD_FLOAT32: {                                                                             \
        typedef float T;                                                                           \
        __VA_ARGS__                                                                                \
    } break;                                                                                       \
    case TD_FLOAT64: {                                                                             \
        typedef double T;                                                                          \
        __VA_ARGS__                                                                                \
    } break;

/* C's float-to-int conversion is undefined out of range; x86 gives
 * INT64_MIN there, and so do we, without the undefined behaviour. */
static inline int64_t td_cpu_f2i(double v)
{
    return (v >= -9223372036854775808.0 && v < 9223372036854775808.0) ? (int64_t)v : INT64_MIN;
}

/* Operands share operand 0's shape; strides may differ (0 = broadcast).
 * Dims of size 1 are dropped and neighbours that are contiguous for every
 * operand are merged, so contiguous tensors become one flat row. */
typedef struct {
    int ndim, nop;
    int64_t numel;
    int64_t shape[TD_MAX_DIMS];
    int64_t stride[TD_CPU_MAX_OPS][TD_MAX_DIMS]; /* elements */
    char *data[TD_CPU_MAX_OPS];
    int64_t elsize[TD_CPU_MAX_OPS];
} td_cpu_iter;

/* one row of n elements; s[k] is operand k's stride in elements */
typedef void (*td_cpu_loop)(void *ctx, char **p, const int64_t *s, int64_t n);

void td_cpu_iter_init(td_cpu_iter *it, int nop, const td_tensor *const *ts);
/* the same, free to visit the elements in any order: dims sorted by operand
 * 0's strides, so a permuted-dense output (channels-last) runs as one flat
 * row; for ops where each element is independent of the others */
void td_cpu_iter_init_any_order(td_cpu_iter *it, int nop, const td_tensor *const *ts);
void td_cpu_iter_range(const td_cpu_iter *it, int64_t begin, int64_t end, td_cpu_loop fn,
                       void *ctx);
/* the whole range, on all threads when numel >= grain (grain 0 = serial) */
void td_cpu_iter_run(const td_cpu_iter *it, int64_t grain, td_cpu_loop fn, void *ctx);
/* dst[i * dld + j] = src[j * sld + i] for i < rows, j < cols, 4-byte
 * elements (kernels/cpu/copy.c) */
void td_cpu_transpose4(uint32_t *restrict dst, int64_t dld, const uint32_t *restrict src,
                       int64_t sld, int64_t rows, int64_t cols);
/* threads worth using for `work` units of `grain` each */
int td_cpu_threads_for(int64_t work, int64_t grain);
/* take the thread count the runtime last asked for (runtime/threads.c)
 * and return the count: called before work that oneDNN parallelises */
int td_cpu_threads_sync(void);
void td_cpu_set_thread_target(int n);

/* Cephes-style expf: range reduction by ln 2 and a degree-6 polynomial,
 * about 1 ulp; branch-free so loops over it vectorise. Results below
 * FLT_MIN flush to 0. */
static inline float td_cpu_expf(float x)
{
    float xc = x > 88.8f ? 88.8f : x;
    xc = xc < -88.0f ? -88.0f : xc;
    float fx = __builtin_floorf(__builtin_fmaf(xc, 1.44269504088896341f, 0.5f));
    float r = __builtin_fmaf(fx, -0.693359375f, xc);
    r = __builtin_fmaf(fx, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    float y = __builtin_fmaf(p, r * r, r) + 1.0f;
    int32_t n = (int32_t)fx;
    /* 2^128 is not a float: scale by 2^127 and once more by 2 */
    float extra = n > 127 ? 2.0f : 1.0f;
    n = n > 127 ? 127 : n;
    uint32_t bits = (uint32_t)(n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    y = y * scale * extra;
    return x < -87.33654f ? 0.0f : y;
}

/* td_cpu_expf for x <= 0 (or NaN) only, as softmax's x - max always is:
 * no overflow to handle, so a few instructions fewer per element */
static inline float td_cpu_expf_nonpos(float x)
{
    float xc = x < -88.0f ? -88.0f : x;
    float fx = __builtin_floorf(__builtin_fmaf(xc, 1.44269504088896341f, 0.5f));
    float r = __builtin_fmaf(fx, -0.693359375f, xc);
    r = __builtin_fmaf(fx, 2.12194440e-4f, r);
    float p = 1.9875691500e-4f;
    p = __builtin_fmaf(p, r, 1.3981999507e-3f);
    p = __builtin_fmaf(p, r, 8.3334519073e-3f);
    p = __builtin_fmaf(p, r, 4.1665795894e-2f);
    p = __builtin_fmaf(p, r, 1.6666665459e-1f);
    p = __builtin_fmaf(p, r, 5.0000001201e-1f);
    float y = __builtin_fmaf(p, r * r, r) + 1.0f;
    uint32_t bits = (uint32_t)((int32_t)fx + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    y = y * scale;
    return x < -87.33654f ? 0.0f : y;
}

/* max of a contiguous float row with four independent accumulators: one
 * accumulator makes the pass wait on vmaxps latency, and gcc will not
 * reassociate a max reduction by itself. max_ps(x, m) is x > m ? x : m,
 * the same NaN rule as the generic loop. */
static inline float td_cpu_row_max_f32(const float *x, int64_t c)
{
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0, m2 = m0, m3 = m0;
    int64_t j = 0;
    for (; j + 32 <= c; j += 32) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(x + j), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + j + 8), m1);
        m2 = _mm256_max_ps(_mm256_loadu_ps(x + j + 16), m2);
        m3 = _mm256_max_ps(_mm256_loadu_ps(x + j + 24), m3);
    }
    float lanes[32];
    _mm256_storeu_ps(lanes, m0);
    _mm256_storeu_ps(lanes + 8, m1);
    _mm256_storeu_ps(lanes + 16, m2);
    _mm256_storeu_ps(lanes + 24, m3);
    float m = -INFINITY;
    for (int k = 0; k < 32; k++) m = lanes[k] > m ? lanes[k] : m;
    for (; j < c; j++) m = x[j] > m ? x[j] : m;
    return m;
}

#endif
