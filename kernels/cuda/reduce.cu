/* Reductions over the middle of contiguous (outer, n, inner), and softmax
 * / log_softmax with their backward.
 *
 * Deterministic: no atomics. Rows (inner == 1) go to one block each: every
 * thread folds the elements i = t, t + 256, ... in order, then the block
 * combines the 256 partials by a fixed halving tree; columns (inner > 1)
 * go to one thread each, which folds its n elements in order. The order
 * depends on the shape alone, so a rerun gives the same bits. Float sums
 * accumulate in double. Pending: a split of very long rows across blocks
 * (one block per row caps a full reduction of a huge tensor at one SM's
 * bandwidth). bfloat16 and float16 reduce a float32 copy in scratch memory
 * and round the values once at the end (docs/precision.md). */
#include "common.cuh"
#include "rows.cuh" /* tree_reduce, Sum */

#include <math.h>
#include <string.h>
#include <type_traits>

using namespace tdc;

namespace {

__device__ inline float d_exp(float x) { return expf(x); }
__device__ inline double d_exp(double x) { return exp(x); }
__device__ inline double d_log(double x) { return log(x); }

template <typename T> __device__ inline bool is_nan(T v)
{
    if constexpr (is_float<T>::value)
        return v != v;
    else
        return false;
}

struct Mul {
    template <typename A> __device__ A operator()(A a, A b) const { return a * b; }
};
/* NaN wins */
struct MaxNan {
    template <typename A> __device__ A operator()(A a, A b) const
    {
        return (b > a || is_nan(b)) ? b : a;
    }
};

/* ---- sum and prod ---------------------------------------------------------------- */

/* A: double for float sums, T for float products, uint64_t (wrapping) for integers */
template <typename T, typename A>
__global__ void rows_sum_prod(const T *x, T *out, int64_t outer, int64_t n, bool sum)
{
    __shared__ A sh[THREADS];
    for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
        const T *row = x + r * n;
        A acc = sum ? (A)0 : (A)1;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            acc = sum ? acc + (A)row[i] : acc * (A)row[i];
        acc = sum ? tree_reduce(acc, sh, Sum{}) : tree_reduce(acc, sh, Mul{});
        if (threadIdx.x == 0) out[r] = convert<T>(acc);
    }
}

template <typename T, typename A>
__global__ void cols_sum_prod(const T *x, T *out, int64_t outer, int64_t n, int64_t inner, bool sum)
{
    int64_t total = outer * inner, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; id < total; id += step) {
        int64_t o = id / inner, j = id - o * inner;
        const T *p = x + o * n * inner + j;
        A acc = sum ? (A)0 : (A)1;
        for (int64_t i = 0; i < n; i++) acc = sum ? acc + (A)p[i * inner] : acc * (A)p[i * inner];
        out[id] = convert<T>(acc);
    }
}

/* ---- max, min and their positions ----------------------------------------------------- */

constexpr int64_t NONE = INT64_MAX;

/* does (v2, i2) beat (v1, i1)? the first NaN wins, then the extreme, then
 * the earlier position */
template <typename T>
__device__ inline bool beats(bool want_max, T v1, int64_t i1, T v2, int64_t i2)
{
    if (i2 == NONE) return false;
    if (i1 == NONE) return true;
    if (is_nan(v1)) return is_nan(v2) && i2 < i1;
    if (is_nan(v2)) return true;
    if (want_max ? v2 > v1 : v2 < v1) return true;
    return v2 == v1 && i2 < i1;
}

template <typename T>
__device__ inline void put_extreme(td_reduce_op op, void *out, int64_t *idx, int64_t pos, T v,
                                   int64_t i)
{
    if (i == NONE) { /* n == 0 */
        v = (T)0;
        i = 0;
    }
    if (op == TD_ARGMAX || op == TD_ARGMIN) {
        ((int64_t *)out)[pos] = i;
        return;
    }
    ((T *)out)[pos] = v;
    if (idx) idx[pos] = i;
}

template <typename T>
__global__ void rows_extreme(td_reduce_op op, const T *x, void *out, int64_t *idx, int64_t outer,
                             int64_t n)
{
    __shared__ T sv[THREADS];
    __shared__ int64_t si[THREADS];
    bool want_max = op == TD_MAX || op == TD_ARGMAX;
    for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
        const T *row = x + r * n;
        T best = (T)0;
        int64_t at = NONE;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            if (beats(want_max, best, at, row[i], i)) {
                best = row[i];
                at = i;
            }
        sv[threadIdx.x] = best;
        si[threadIdx.x] = at;
        __syncthreads();
        for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
            unsigned t = threadIdx.x;
            if (t < s && beats(want_max, sv[t], si[t], sv[t + s], si[t + s])) {
                sv[t] = sv[t + s];
                si[t] = si[t + s];
            }
            __syncthreads();
        }
        if (threadIdx.x == 0) put_extreme(op, out, idx, r, sv[0], si[0]);
        __syncthreads();
    }
}

template <typename T>
__global__ void cols_extreme(td_reduce_op op, const T *x, void *out, int64_t *idx, int64_t outer,
                             int64_t n, int64_t inner)
{
    bool want_max = op == TD_MAX || op == TD_ARGMAX;
    int64_t total = outer * inner, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; id < total; id += step) {
        int64_t o = id / inner, j = id - o * inner;
        const T *p = x + o * n * inner + j;
        T best = (T)0;
        int64_t at = NONE;
        for (int64_t i = 0; i < n; i++)
            if (beats(want_max, best, at, p[i * inner], i)) {
                best = p[i * inner];
                at = i;
            }
        put_extreme(op, out, idx, id, best, at);
    }
}

/* ---- all and any: uint8 from any dtype, NaN counting as non-zero ------------------------ */

struct And {
    __device__ int operator()(int a, int b) const { return a & b; }
};
struct Or {
    __device__ int operator()(int a, int b) const { return a | b; }
};

template <typename T>
__global__ void rows_logical(const T *x, uint8_t *out, int64_t outer, int64_t n, bool all)
{
    __shared__ int sh[THREADS];
    for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
        const T *row = x + r * n;
        int acc = all;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            acc = all ? acc & (row[i] != (T)0) : acc | (row[i] != (T)0);
        acc = all ? tree_reduce(acc, sh, And{}) : tree_reduce(acc, sh, Or{});
        if (threadIdx.x == 0) out[r] = (uint8_t)acc;
    }
}

template <typename T>
__global__ void cols_logical(const T *x, uint8_t *out, int64_t outer, int64_t n, int64_t inner,
                             bool all)
{
    int64_t total = outer * inner, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; id < total; id += step) {
        int64_t o = id / inner, j = id - o * inner;
        const T *p = x + o * n * inner + j;
        int acc = all;
        for (int64_t i = 0; i < n; i++)
            acc = all ? acc & (p[i * inner] != (T)0) : acc | (p[i * inner] != (T)0);
        out[id] = (uint8_t)acc;
    }
}

/* ---- softmax ------------------------------------------------------------------------------ */

/* stable for any magnitude: the max comes off before exp; NaN anywhere in
 * a row makes the row NaN, as on the CPU */
template <typename T>
__global__ void rows_softmax(const T *x, T *y, int64_t outer, int64_t n, bool log)
{
    __shared__ T smax[THREADS];
    __shared__ double ssum[THREADS];
    for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
        const T *xr = x + r * n;
        T *yr = y + r * n;
        T m = (T)-INFINITY;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) m = MaxNan{}(m, xr[i]);
        m = tree_reduce(m, smax, MaxNan{});
        double s = 0;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += (double)d_exp(xr[i] - m);
        s = tree_reduce(s, ssum, Sum{});
        if (log) {
            T ls = (T)d_log(s);
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = (xr[i] - m) - ls;
        } else {
            T inv = (T)(1.0 / s);
            for (int64_t i = threadIdx.x; i < n; i += blockDim.x) yr[i] = d_exp(xr[i] - m) * inv;
        }
    }
}

template <typename T>
__global__ void cols_softmax(const T *x, T *y, int64_t outer, int64_t n, int64_t inner, bool log)
{
    int64_t total = outer * inner, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; id < total; id += step) {
        int64_t o = id / inner, j = id - o * inner, base = o * n * inner + j;
        T m = (T)-INFINITY;
        for (int64_t i = 0; i < n; i++) m = MaxNan{}(m, x[base + i * inner]);
        double s = 0;
        for (int64_t i = 0; i < n; i++) s += (double)d_exp(x[base + i * inner] - m);
        if (log) {
            T ls = (T)d_log(s);
            for (int64_t i = 0; i < n; i++) y[base + i * inner] = (x[base + i * inner] - m) - ls;
        } else {
            T inv = (T)(1.0 / s);
            for (int64_t i = 0; i < n; i++)
                y[base + i * inner] = d_exp(x[base + i * inner] - m) * inv;
        }
    }
}

/* softmax: gx = y (gy - sum(gy y)); log_softmax: gx = gy - exp(y) sum(gy) */
template <typename T>
__global__ void rows_softmax_back(T *gx, const T *y, const T *gy, int64_t outer, int64_t n,
                                  bool log)
{
    __shared__ double ssum[THREADS];
    for (int64_t r = blockIdx.x; r < outer; r += gridDim.x) {
        const T *yr = y + r * n, *gr = gy + r * n;
        T *gxr = gx + r * n;
        double s = 0;
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            s += log ? (double)gr[i] : (double)gr[i] * yr[i];
        T st = (T)tree_reduce(s, ssum, Sum{});
        for (int64_t i = threadIdx.x; i < n; i += blockDim.x)
            gxr[i] = log ? gr[i] - d_exp(yr[i]) * st : yr[i] * (gr[i] - st);
    }
}

template <typename T>
__global__ void cols_softmax_back(T *gx, const T *y, const T *gy, int64_t outer, int64_t n,
                                  int64_t inner, bool log)
{
    int64_t total = outer * inner, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t id = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; id < total; id += step) {
        int64_t o = id / inner, j = id - o * inner, base = o * n * inner + j;
        double s = 0;
        for (int64_t i = 0; i < n; i++) {
            int64_t k = base + i * inner;
            s += log ? (double)gy[k] : (double)gy[k] * y[k];
        }
        T st = (T)s;
        for (int64_t i = 0; i < n; i++) {
            int64_t k = base + i * inner;
            gx[k] = log ? gy[k] - d_exp(y[k]) * st : y[k] * (gy[k] - st);
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

/* these kernels stride over rows, so a grid of at most 65535 blocks covers any count */
unsigned grid_row_blocks(int64_t outer) { return (unsigned)(outer > 65535 ? 65535 : outer); }

template <typename T>
void sum_prod(const td_tensor *x, td_tensor *out, int64_t outer, int64_t n, int64_t inner, bool sum)
{
    typedef typename std::conditional<is_float<T>::value, T, uint64_t>::type P;      /* products */
    typedef typename std::conditional<is_float<T>::value, double, uint64_t>::type S; /* sums */
    const T *px = cptr<T>(x);
    T *po = ptr<T>(out);
    if (inner == 1) {
        if (sum)
            rows_sum_prod<T, S><<<grid_row_blocks(outer), THREADS>>>(px, po, outer, n, true);
        else
            rows_sum_prod<T, P><<<grid_row_blocks(outer), THREADS>>>(px, po, outer, n, false);
    } else {
        if (sum)
            cols_sum_prod<T, S>
                <<<blocks_for(outer * inner), THREADS>>>(px, po, outer, n, inner, true);
        else
            cols_sum_prod<T, P>
                <<<blocks_for(outer * inner), THREADS>>>(px, po, outer, n, inner, false);
    }
}

template <typename T>
void extreme(td_reduce_op op, const td_tensor *x, td_tensor *out, td_tensor *idx, int64_t outer,
             int64_t n, int64_t inner)
{
    void *po = (char *)out->storage->data + out->offset * (int64_t)td_dtype_size(out->dtype);
    int64_t *pi = idx ? ptr<int64_t>(idx) : NULL;
    if (inner == 1)
        rows_extreme<T><<<grid_row_blocks(outer), THREADS>>>(op, cptr<T>(x), po, pi, outer, n);
    else
        cols_extreme<T>
            <<<blocks_for(outer * inner), THREADS>>>(op, cptr<T>(x), po, pi, outer, n, inner);
}

template <typename T>
void logical(const td_tensor *x, td_tensor *out, int64_t outer, int64_t n, int64_t inner, bool all)
{
    if (inner == 1)
        rows_logical<T>
            <<<grid_row_blocks(outer), THREADS>>>(cptr<T>(x), ptr<uint8_t>(out), outer, n, all);
    else
        cols_logical<T><<<blocks_for(outer * inner), THREADS>>>(cptr<T>(x), ptr<uint8_t>(out),
                                                                outer, n, inner, all);
}

/* ---- bfloat16 and float16: a float32 copy, reduced, the values rounded back -------------- */

template <typename S> __global__ void to_float(const S *x, float *y, int64_t n)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        y[i] = to_f(x[i]);
}

template <typename S> __global__ void from_float(const float *x, S *y, int64_t n)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        y[i] = from_f<S>(x[i]);
}

/* a contiguous float32 tensor of numel elements in scratch memory on the
 * device of `like` (the allocator's cache, freed after the launches: one
 * stream orders them) */
struct Scratch {
    td_storage s;
    td_tensor t;
};

bool scratch_new(const td_tensor *like, int64_t numel, Scratch *sc)
{
    memset(sc, 0, sizeof *sc);
    sc->s = *like->storage;
    sc->s.nbytes = (size_t)(numel > 0 ? numel : 1) * sizeof(float);
    sc->s.data = td_cuda_alloc(like->storage->device, sc->s.nbytes);
    if (!sc->s.data) {
        td_cuda_note_error(cudaErrorMemoryAllocation, "reduce (float32 scratch)");
        return false;
    }
    sc->t = *like;
    sc->t.storage = &sc->s;
    sc->t.offset = 0;
    sc->t.dtype = TD_FLOAT32;
    return true;
}

void scratch_free(Scratch *sc) { td_cuda_free(sc->s.device, sc->s.data, sc->s.nbytes); }

void reduce_lowp(td_reduce_op op, td_tensor *out, td_tensor *idx, const td_tensor *x, int64_t outer,
                 int64_t n, int64_t inner)
{
    int64_t nx = outer * n * inner, no = outer * inner;
    bool values = op == TD_SUM || op == TD_PROD || op == TD_MAX || op == TD_MIN;
    Scratch xs{}, os{};
    if (!scratch_new(x, nx, &xs)) return;
    if (values && !scratch_new(out, no, &os)) {
        scratch_free(&xs);
        return;
    }
    float *xf = (float *)xs.s.data;
    if (nx > 0) {
        TDC_LOWP_DISPATCH(x->dtype, to_float<S><<<blocks_for(nx), THREADS>>>(cptr<S>(x), xf, nx));
    }
    td_tensor *o = values ? &os.t : out;
    if (op == TD_SUM || op == TD_PROD)
        sum_prod<float>(&xs.t, o, outer, n, inner, op == TD_SUM);
    else if (op == TD_ALL || op == TD_ANY)
        logical<float>(&xs.t, o, outer, n, inner, op == TD_ALL);
    else
        extreme<float>(op, &xs.t, o, idx, outer, n, inner);
    if (values) {
        TDC_LOWP_DISPATCH(out->dtype, from_float<S>
                          <<<blocks_for(no), THREADS>>>((const float *)os.s.data, ptr<S>(out), no));
    }
    scratch_free(&xs);
    if (values) scratch_free(&os);
}

} // namespace

extern "C" void td_cuda_reduce(td_reduce_op op, td_tensor *out, td_tensor *idx, const td_tensor *x,
                               int64_t outer, int64_t n, int64_t inner)
{
    if (outer == 0 || inner == 0) return;
    use_device_of(out);
    if (td_dtype_is_lowp(x->dtype)) {
        reduce_lowp(op, out, idx, x, outer, n, inner);
    } else if (op == TD_SUM || op == TD_PROD) {
        TDC_DISPATCH(x->dtype, sum_prod<T>(x, out, outer, n, inner, op == TD_SUM));
    } else if (op == TD_ALL || op == TD_ANY) {
        TDC_DISPATCH(x->dtype, logical<T>(x, out, outer, n, inner, op == TD_ALL));
    } else {
        TDC_DISPATCH(x->dtype, extreme<T>(op, x, out, idx, outer, n, inner));
    }
    check_launch("reduce");
}

extern "C" void td_cuda_softmax(td_tensor *out, const td_tensor *x, int64_t outer, int64_t n,
                                int64_t inner, bool log)
{
    if (outer == 0 || inner == 0 || n == 0) return;
    use_device_of(out);
    TDC_FLOAT_DISPATCH(x->dtype, {
        if (inner == 1)
            rows_softmax<T>
                <<<grid_row_blocks(outer), THREADS>>>(cptr<T>(x), ptr<T>(out), outer, n, log);
        else
            cols_softmax<T><<<blocks_for(outer * inner), THREADS>>>(cptr<T>(x), ptr<T>(out), outer,
                                                                    n, inner, log);
    });
    check_launch("softmax");
}

extern "C" void td_cuda_softmax_backward(td_tensor *gx, const td_tensor *y, const td_tensor *gy,
                                         int64_t outer, int64_t n, int64_t inner, bool log)
{
    if (outer == 0 || inner == 0 || n == 0) return;
    use_device_of(gx);
    TDC_FLOAT_DISPATCH(y->dtype, {
        if (inner == 1)
            rows_softmax_back<T><<<grid_row_blocks(outer), THREADS>>>(ptr<T>(gx), cptr<T>(y),
                                                                      cptr<T>(gy), outer, n, log);
        else
            cols_softmax_back<T><<<blocks_for(outer * inner), THREADS>>>(
                ptr<T>(gx), cptr<T>(y), cptr<T>(gy), outer, n, inner, log);
    });
    check_launch("softmax_backward");
}
