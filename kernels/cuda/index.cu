/* index_select, gather, scatter, index_add on CUDA.
 *
 * Reads through an index (index_select, gather) run one thread per output
 * element. Writes through an index never race and never use atomics: one
 * thread owns each output element and scans the index entries that could
 * land on it in their order (scatter: the entries of its line along dim;
 * index_add: the whole index), adding (or, for scatter, storing) each
 * match in turn. That is the CPU's order of writes (kernels/cpu/index.c),
 * so duplicates give the same bits as there: the last write wins, sums
 * run in index order. Integer adds wrap through uint64_t as on the CPU.
 * Pending: index_add scans the whole index per output element; a sorted
 * index (CSR) would make large embedding backwards linear. */
#include "rows.cuh"

using namespace tdc;

namespace {

struct Geo {
    int ndim, dim;
    int64_t numel;
    int64_t shape[TD_MAX_DIMS];             /* the shape the threads run over */
    int64_t ostride[TD_MAX_DIMS];           /* out's (or the written tensor's) strides */
    int64_t xstride[TD_MAX_DIMS];           /* the read tensor's strides */
    int64_t istride[TD_MAX_DIMS];           /* the index's strides */
    int64_t xdim_stride, odim_stride, span; /* span: entries scanned along dim */
    int64_t ooff, xoff, ioff;
};

inline Geo make_geo(const td_tensor *over, int dim)
{
    Geo g = {};
    g.ndim = over->ndim;
    g.dim = dim;
    g.numel = 1;
    for (int d = 0; d < over->ndim; d++) {
        g.shape[d] = over->shape[d];
        g.numel *= over->shape[d];
    }
    return g;
}

/* bfloat16 / float16 add in float32 and round after each add, as on the CPU */
template <typename T> __device__ inline void add_or_set(T *t, T v, bool acc)
{
    if (!acc)
        *t = v;
    else if constexpr (is_lowp<T>::value)
        *t = from_f<T>(to_f(*t) + to_f(v));
    else if constexpr (is_float<T>::value)
        *t += v;
    else
        *t = (T)((uint64_t)*t + (uint64_t)v);
}

/* out[e] = x[..., index[c_dim], ...] (index 1-D along dim) */
template <typename W> __global__ void select_kernel(Geo g, W *out, const W *x, const int64_t *ix)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < g.numel; e += step) {
        int64_t r = e, xo = g.xoff, oo = g.ooff;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t c = r % g.shape[d];
            r /= g.shape[d];
            oo += c * g.ostride[d];
            xo += d == g.dim ? ix[g.ioff + c * g.istride[0]] * g.xdim_stride : c * g.xstride[d];
        }
        out[oo] = x[xo];
    }
}

/* out (index's shape)[e] = x[..., index[e], ...] */
template <typename W> __global__ void gather_kernel(Geo g, W *out, const W *x, const int64_t *ix)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < g.numel; e += step) {
        int64_t r = e, xo = g.xoff, oo = g.ooff, io = g.ioff;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t c = r % g.shape[d];
            r /= g.shape[d];
            oo += c * g.ostride[d];
            io += c * g.istride[d];
            if (d != g.dim) xo += c * g.xstride[d];
        }
        out[oo] = x[xo + ix[io] * g.xdim_stride];
    }
}

/* one thread per out element inside index's extent (shape = index's with
 * dim = out's size): scans its line's index entries k = 0, 1, ... */
template <typename T>
__global__ void scatter_kernel(Geo g, T *out, const T *src, const int64_t *ix, bool acc)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < g.numel; e += step) {
        int64_t r = e, oo = g.ooff, so = g.xoff, io = g.ioff, j = 0;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t c = r % g.shape[d];
            r /= g.shape[d];
            oo += c * g.ostride[d];
            if (d == g.dim) {
                j = c;
            } else {
                so += c * g.xstride[d];
                io += c * g.istride[d];
            }
        }
        T *t = out + oo;
        for (int64_t k = 0; k < g.span; k++)
            if (ix[io + k * g.istride[g.dim]] == j) add_or_set(t, src[so + k * g.xdim_stride], acc);
    }
}

/* one thread per out element: adds src[..., i, ...] for every i with
 * index[i] == its position along dim, in i order */
template <typename T>
__global__ void index_add_kernel(Geo g, T *out, const T *src, const int64_t *ix)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < g.numel; e += step) {
        int64_t r = e, oo = g.ooff, so = g.xoff, j = 0;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t c = r % g.shape[d];
            r /= g.shape[d];
            oo += c * g.ostride[d];
            if (d == g.dim)
                j = c;
            else
                so += c * g.xstride[d];
        }
        T *t = out + oo;
        for (int64_t i = 0; i < g.span; i++)
            if (ix[g.ioff + i * g.istride[0]] == j)
                add_or_set(t, src[so + i * g.xdim_stride], true);
    }
}

/* a 0-dim tensor as one element of a 1-dim one */
inline td_tensor as_1d(const td_tensor *t)
{
    td_tensor v = *t;
    if (v.ndim == 0) {
        v.ndim = 1;
        v.shape[0] = 1;
        v.stride[0] = 1;
    }
    return v;
}

void cuda_index_select(td_tensor *out_, const td_tensor *x_, int dim, const td_tensor *index_)
{
    td_tensor out = as_1d(out_), x = as_1d(x_), index = as_1d(index_);
    Geo g = make_geo(&out, dim);
    if (g.numel == 0) return;
    use_device_of(out_);
    for (int d = 0; d < out.ndim; d++) g.ostride[d] = out.stride[d], g.xstride[d] = x.stride[d];
    g.istride[0] = index.stride[0];
    g.xdim_stride = x.stride[dim];
    g.ooff = out.offset, g.xoff = x.offset, g.ioff = index.offset;
    TDC_WIDTH_DISPATCH(td_dtype_size(x.dtype), {
        select_kernel<W><<<blocks_for(g.numel), THREADS>>>(g, (W *)out.storage->data,
                                                           (const W *)x.storage->data,
                                                           (const int64_t *)index.storage->data);
    });
    check_launch("index_select");
}

void cuda_gather(td_tensor *out_, const td_tensor *x_, int dim, const td_tensor *index_)
{
    td_tensor out = as_1d(out_), x = as_1d(x_), index = as_1d(index_);
    Geo g = make_geo(&index, dim);
    if (g.numel == 0) return;
    use_device_of(out_);
    for (int d = 0; d < index.ndim; d++)
        g.ostride[d] = out.stride[d], g.xstride[d] = x.stride[d], g.istride[d] = index.stride[d];
    g.xdim_stride = x.stride[dim];
    g.ooff = out.offset, g.xoff = x.offset, g.ioff = index.offset;
    TDC_WIDTH_DISPATCH(td_dtype_size(x.dtype), {
        gather_kernel<W><<<blocks_for(g.numel), THREADS>>>(g, (W *)out.storage->data,
                                                           (const W *)x.storage->data,
                                                           (const int64_t *)index.storage->data);
    });
    check_launch("gather");
}

void cuda_scatter(td_tensor *out_, int dim, const td_tensor *index_, const td_tensor *src_,
                  bool accumulate)
{
    td_tensor out = as_1d(out_), index = as_1d(index_), src = as_1d(src_);
    Geo g = make_geo(&index, dim);
    g.span = index.shape[dim];
    g.shape[dim] = out.shape[dim];
    g.numel = 1;
    for (int d = 0; d < g.ndim; d++) g.numel *= g.shape[d];
    if (g.numel == 0 || g.span == 0) return;
    use_device_of(out_);
    for (int d = 0; d < index.ndim; d++)
        g.ostride[d] = out.stride[d], g.xstride[d] = src.stride[d], g.istride[d] = index.stride[d];
    g.xdim_stride = src.stride[dim];
    g.ooff = out.offset, g.xoff = src.offset, g.ioff = index.offset;
    if (td_dtype_is_lowp(out.dtype)) {
        TDC_LOWP_DISPATCH(out.dtype, scatter_kernel<S><<<blocks_for(g.numel), THREADS>>>(
                                         g, (S *)out.storage->data, (const S *)src.storage->data,
                                         (const int64_t *)index.storage->data, accumulate));
    } else {
        TDC_DISPATCH(out.dtype, {
            scatter_kernel<T><<<blocks_for(g.numel), THREADS>>>(
                g, (T *)out.storage->data, (const T *)src.storage->data,
                (const int64_t *)index.storage->data, accumulate);
        });
    }
    check_launch("scatter");
}

void cuda_index_add(td_tensor *out_, int dim, const td_tensor *index_, const td_tensor *src_)
{
    td_tensor out = as_1d(out_), index = as_1d(index_), src = as_1d(src_);
    Geo g = make_geo(&out, dim);
    g.span = index.shape[0];
    if (g.numel == 0 || g.span == 0) return;
    use_device_of(out_);
    for (int d = 0; d < out.ndim; d++) g.ostride[d] = out.stride[d], g.xstride[d] = src.stride[d];
    g.istride[0] = index.stride[0];
    g.xdim_stride = src.stride[dim];
    g.ooff = out.offset, g.xoff = src.offset, g.ioff = index.offset;
    if (td_dtype_is_lowp(out.dtype)) {
        TDC_LOWP_DISPATCH(out.dtype, index_add_kernel<S><<<blocks_for(g.numel), THREADS>>>(
                                         g, (S *)out.storage->data, (const S *)src.storage->data,
                                         (const int64_t *)index.storage->data));
    } else {
        TDC_DISPATCH(out.dtype, {
            index_add_kernel<T><<<blocks_for(g.numel), THREADS>>>(
                g, (T *)out.storage->data, (const T *)src.storage->data,
                (const int64_t *)index.storage->data);
        });
    }
    check_launch("index_add");
}

} // namespace

extern "C" {
void td_cuda_index_select(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index)
{
    cuda_index_select(out, x, dim, index);
}
void td_cuda_gather(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index)
{
    cuda_gather(out, x, dim, index);
}
void td_cuda_scatter(td_tensor *out, int dim, const td_tensor *index, const td_tensor *src,
                     bool accumulate)
{
    cuda_scatter(out, dim, index, src, accumulate);
}
void td_cuda_index_add(td_tensor *out, int dim, const td_tensor *index, const td_tensor *src)
{
    cuda_index_add(out, dim, index, src);
}
}
