/* sort and topk, flip and roll, tril and triu on CUDA.
 *
 * Sorting ranks instead of moving: one thread per element counts the
 * elements of its line that come before it (strictly before, or equal and
 * earlier along the line), and that count is its place. Stable, with the
 * CPU's order and ties exactly (kernels/cpu/reorder.c), no scratch and no
 * atomics; topk keeps the places below k. Pending: the count is O(n) per
 * element, so a line of n costs n^2 comparisons; long lines (beyond a few
 * thousand) want a segmented radix or merge sort.
 * flip, roll and the triangles are one thread per output element copying
 * element bits, so one instantiation per element width serves every dtype. */
#include "common.cuh"
#include "reorder.h"

using namespace tdc;

namespace {

/* NaN is larger than every number, as in PyTorch */
template <typename T> __device__ inline bool before(T a, T b, bool desc)
{
    if constexpr (is_float<T>::value) {
        if (desc) return !isnan(b) && (isnan(a) || a > b);
        return !isnan(a) && (isnan(b) || a < b);
    } else {
        return desc ? a > b : a < b;
    }
}

template <typename T>
__global__ void rank_kernel(const T *x, T *values, int64_t *indices, int64_t outer, int64_t n,
                            int64_t inner, int64_t k, bool desc)
{
    int64_t total = outer * n * inner, step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        int64_t i = e % inner, p = (e / inner) % n, o = e / (inner * n);
        const T *line = x + o * n * inner + i;
        T v = line[p * inner];
        int64_t rank = 0;
        for (int64_t q = 0; q < n; q++) {
            T u = line[q * inner];
            if (q < p ? !before(v, u, desc) : before(u, v, desc)) rank++;
        }
        if (rank < k) {
            int64_t at = o * k * inner + rank * inner + i;
            indices[at] = p;
            if (values) values[at] = v;
        }
    }
}

struct Geo {
    int ndim;
    int64_t numel;
    int64_t shape[TD_MAX_DIMS], xstride[TD_MAX_DIMS], shift[TD_MAX_DIMS];
    bool flip[TD_MAX_DIMS];
    int64_t xoff;
};

inline Geo make_geo(const td_tensor *out, const td_tensor *x)
{
    Geo g = {};
    g.ndim = out->ndim;
    g.numel = 1;
    for (int d = 0; d < out->ndim; d++) {
        g.shape[d] = out->shape[d];
        g.xstride[d] = x->stride[d];
        g.numel *= out->shape[d];
    }
    g.xoff = x->offset;
    return g;
}

template <typename W> __global__ void remap_kernel(Geo g, W *out, const W *x)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < g.numel; e += step) {
        int64_t r = e, xo = g.xoff;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t c = r % g.shape[d], s;
            r /= g.shape[d];
            if (g.flip[d]) {
                s = g.shape[d] - 1 - c;
            } else {
                s = c - g.shift[d];
                if (s < 0) s += g.shape[d];
            }
            xo += s * g.xstride[d];
        }
        out[e] = x[xo];
    }
}

template <typename W>
__global__ void tri_kernel(Geo g, W *out, const W *x, int64_t diagonal, bool upper)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < g.numel; e += step) {
        int64_t r = e, xo = g.xoff, i = 0, j = 0;
        for (int d = g.ndim - 1; d >= 0; d--) {
            int64_t c = r % g.shape[d];
            r /= g.shape[d];
            if (d == g.ndim - 1) j = c;
            if (d == g.ndim - 2) i = c;
            xo += c * g.xstride[d];
        }
        bool keep = upper ? j - i >= diagonal : j - i <= diagonal;
        out[e] = keep ? x[xo] : (W)0;
    }
}

td_status cuda_sort(td_tensor *values, td_tensor *indices, const td_tensor *x, int64_t outer,
                    int64_t n, int64_t inner, int64_t k, bool descending)
{
    int64_t total = outer * n * inner;
    if (total == 0 || k == 0) return TD_OK;
    use_device_of(indices);
    int64_t *ix = (int64_t *)indices->storage->data + indices->offset;
    TDC_DISPATCH(x->dtype, {
        const T *xp = (const T *)x->storage->data + x->offset;
        T *vp = values ? (T *)values->storage->data + values->offset : nullptr;
        rank_kernel<T><<<blocks_for(total), THREADS>>>(xp, vp, ix, outer, n, inner, k, descending);
    });
    check_launch("sort");
    return TD_OK;
}

void cuda_remap(td_tensor *out, const td_tensor *x, const int64_t *shift, const bool *flip)
{
    Geo g = make_geo(out, x);
    if (g.numel == 0) return;
    for (int d = 0; d < g.ndim; d++) g.shift[d] = shift[d], g.flip[d] = flip[d];
    use_device_of(out);
    TDC_WIDTH_DISPATCH(td_dtype_size(out->dtype), {
        remap_kernel<W><<<blocks_for(g.numel), THREADS>>>(g, (W *)out->storage->data + out->offset,
                                                          (const W *)x->storage->data);
    });
    check_launch("flip/roll");
}

void cuda_tri(td_tensor *out, const td_tensor *x, int64_t diagonal, bool upper)
{
    Geo g = make_geo(out, x);
    if (g.numel == 0) return;
    use_device_of(out);
    TDC_WIDTH_DISPATCH(td_dtype_size(out->dtype), {
        tri_kernel<W><<<blocks_for(g.numel), THREADS>>>(
            g, (W *)out->storage->data + out->offset, (const W *)x->storage->data, diagonal, upper);
    });
    check_launch(upper ? "triu" : "tril");
}

} // namespace

extern "C" const struct td_reorder_kernels td_cuda_reorder = {
    cuda_sort,
    cuda_remap,
    cuda_tri,
};
