/* CUDA fused scaled dot-product attention (kernels/attention.h).
 *
 * Forward: one block per (bh, query tile). The block holds its query
 * tile, one key and value tile at a time, the tile's scores and the
 * output accumulator in shared memory, and walks the key tiles with a
 * running max and sum per row (FlashAttention-2), so nothing of size
 * L x S is ever stored.
 * Backward: D = rowsum(gout * out) per row, then one block per (bh, key
 * tile) accumulates gk and gv over the query tiles, and one block per
 * (query tile, bh) accumulates gq over the key tiles, each recomputing the
 * probabilities from the saved logsumexp. Every output element is summed
 * by one thread in a fixed order: no atomics, the same bits at each run.
 *
 * Tiles are square, br = bc = 32 rows, halved until the block's shared
 * memory fits the 48 KB every device gives without opting in. */
#include "common.cuh"
#include "../attention.h"
#include "../counter_bits.h"

#include <math.h>

using namespace tdc;

extern "C" int td_cuda_device_of_ptr(const void *p);

namespace {

constexpr int ATTN_THREADS = 128;
constexpr size_t SMEM_LIMIT = 48 * 1024;

struct Dims {
    int64_t l, s, e, ev, heads;
    int64_t ms[4];
    int mask_kind;
    bool causal;
    double scale, p;
    uint64_t key, thr;
    int t; /* tile rows (queries) = tile columns (keys) */
};

/* -inf where (i, j) does not take part, else the additive mask (0 if none) */
template <typename T>
__device__ inline T mask_at(const Dims &d, const void *mask, int64_t b, int64_t i, int64_t j)
{
    if (i >= d.l || j >= d.s || (d.causal && j > i)) return (T)-INFINITY;
    if (d.mask_kind == TD_ATTN_MASK_NONE) return 0;
    int64_t off = b / d.heads * d.ms[0] + b % d.heads * d.ms[1] + i * d.ms[2] + j * d.ms[3];
    if (d.mask_kind == TD_ATTN_MASK_BOOL) return ((const uint8_t *)mask)[off] ? (T)0 : (T)-INFINITY;
    return ((const T *)mask)[off];
}

/* dropout's scale for element (b, i, j): 0 when dropped, 1 / (1 - p) when kept */
template <typename T> __device__ inline T drop_scale(const Dims &d, int64_t b, int64_t i, int64_t j)
{
    if (d.p <= 0) return 1;
    if (d.p >= 1) return 0;
    uint64_t idx = (uint64_t)((b * d.l + i) * d.s + j);
    return (td_counter_bits(d.key, idx) >> 11) >= d.thr ? (T)(1 / (1 - d.p)) : (T)0;
}

/* rows [r0, r0 + n) of a (rows, w) matrix into sh (n, w), zeros past rows */
template <typename T>
__device__ inline void load_rows(T *sh, const T *g, int64_t r0, int64_t rows, int n, int64_t w)
{
    for (int64_t x = threadIdx.x; x < (int64_t)n * w; x += blockDim.x) {
        int64_t r = r0 + x / w;
        sh[x] = r < rows ? g[r * w + x % w] : (T)0;
    }
}

template <typename T> __device__ inline T dot(const T *a, const T *b, int64_t n)
{
    T s = 0;
    for (int64_t k = 0; k < n; k++) s += a[k] * b[k];
    return s;
}

template <typename T>
__global__ void fwd_kernel(Dims d, const T *q, const T *k, const T *v, const void *mask, T *out,
                           T *lse)
{
    extern __shared__ unsigned char smem_raw[];
    T *sm = (T *)smem_raw;
    const int t = d.t;
    T *qs = sm, *ks = qs + t * d.e, *vs = ks + t * d.e, *sc = vs + t * d.ev, *os = sc + t * t;
    T *m = os + t * d.ev, *l = m + t, *corr = l + t;
    int64_t b = blockIdx.x, i0 = (int64_t)blockIdx.y * t;
    const T *qb = q + b * d.l * d.e, *kb = k + b * d.s * d.e, *vb = v + b * d.s * d.ev;
    load_rows(qs, qb, i0, d.l, t, d.e);
    for (int64_t x = threadIdx.x; x < (int64_t)t * d.ev; x += blockDim.x) os[x] = 0;
    for (int r = threadIdx.x; r < t; r += blockDim.x) m[r] = (T)-INFINITY, l[r] = 0;
    int64_t kend = d.causal ? (i0 + t < d.s ? i0 + t : d.s) : d.s;
    for (int64_t j0 = 0; j0 < kend; j0 += t) {
        __syncthreads();
        load_rows(ks, kb, j0, d.s, t, d.e);
        load_rows(vs, vb, j0, d.s, t, d.ev);
        __syncthreads();
        for (int x = threadIdx.x; x < t * t; x += blockDim.x) {
            int r = x / t, c = x % t;
            sc[x] = dot(qs + r * d.e, ks + c * d.e, d.e) * (T)d.scale +
                    mask_at<T>(d, mask, b, i0 + r, j0 + c);
        }
        __syncthreads();
        for (int r = threadIdx.x; r < t; r += blockDim.x) {
            T *row = sc + r * t, mx = (T)-INFINITY;
            for (int c = 0; c < t; c++) mx = row[c] > mx ? row[c] : mx;
            T mnew = mx > m[r] ? mx : m[r];
            if (mnew == (T)-INFINITY) { /* nothing takes part yet */
                for (int c = 0; c < t; c++) row[c] = 0;
                corr[r] = 1;
                continue;
            }
            T cr = exp(m[r] - mnew), sum = 0;
            for (int c = 0; c < t; c++) {
                T p = exp(row[c] - mnew);
                sum += p;
                row[c] = p * drop_scale<T>(d, b, i0 + r, j0 + c);
            }
            l[r] = l[r] * cr + sum;
            m[r] = mnew;
            corr[r] = cr;
        }
        __syncthreads();
        for (int64_t x = threadIdx.x; x < (int64_t)t * d.ev; x += blockDim.x) {
            int64_t r = x / d.ev, e = x % d.ev;
            T acc = os[x] * corr[r];
            for (int c = 0; c < t; c++) acc += sc[r * t + c] * vs[c * d.ev + e];
            os[x] = acc;
        }
    }
    __syncthreads();
    for (int64_t x = threadIdx.x; x < (int64_t)t * d.ev; x += blockDim.x) {
        int64_t r = x / d.ev, i = i0 + r;
        if (i < d.l) out[(b * d.l + i) * d.ev + x % d.ev] = l[r] > 0 ? os[x] / l[r] : (T)NAN;
    }
    for (int r = threadIdx.x; r < t; r += blockDim.x)
        if (i0 + r < d.l) lse[b * d.l + i0 + r] = l[r] > 0 ? m[r] + log(l[r]) : (T)-INFINITY;
}

/* dd[b L + i] = gout[b, i] . out[b, i] */
template <typename T>
__global__ void rowdot_kernel(int64_t rows, int64_t ev, const T *go, const T *o, T *dd)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < rows) dd[i] = dot(go + i * ev, o + i * ev, ev);
}

/* the tile's probabilities after dropout (pz) and ds = P (dP Z - D), from
 * qs, dos, ks, vs, lse and dd in shared memory */
template <typename T>
__device__ inline void tile_grads(const Dims &d, const void *mask, int64_t b, int64_t i0,
                                  int64_t j0, const T *qs, const T *dos, const T *ks, const T *vs,
                                  const T *ls, const T *ds_, T *pz, T *dsc)
{
    const int t = d.t;
    for (int x = threadIdx.x; x < t * t; x += blockDim.x) {
        int r = x / t, c = x % t;
        T s = dot(qs + r * d.e, ks + c * d.e, d.e) * (T)d.scale +
              mask_at<T>(d, mask, b, i0 + r, j0 + c);
        T p = ls[r] == (T)-INFINITY || s == (T)-INFINITY ? (T)0 : exp(s - ls[r]);
        T z = drop_scale<T>(d, b, i0 + r, j0 + c);
        T dp = dot(dos + r * d.ev, vs + c * d.ev, d.ev);
        pz[x] = p * z;
        dsc[x] = p * (dp * z - ds_[r]);
    }
}

/* query-tile rows of lse and dd into shared memory (-inf and 0 past L) */
template <typename T>
__device__ inline void load_row_stats(const Dims &d, int64_t b, int64_t i0, const T *lse,
                                      const T *dd, T *ls, T *dsh)
{
    for (int r = threadIdx.x; r < d.t; r += blockDim.x) {
        bool in = i0 + r < d.l;
        ls[r] = in ? lse[b * d.l + i0 + r] : (T)-INFINITY;
        dsh[r] = in ? dd[b * d.l + i0 + r] : (T)0;
    }
}

template <typename T>
__global__ void dkdv_kernel(Dims d, const T *q, const T *k, const T *v, const void *mask,
                            const T *lse, const T *dd, const T *go, T *gk, T *gv)
{
    extern __shared__ unsigned char smem_raw[];
    T *sm = (T *)smem_raw;
    const int t = d.t;
    T *ks = sm, *vs = ks + t * d.e, *gks = vs + t * d.ev, *gvs = gks + t * d.e;
    T *qs = gvs + t * d.ev, *dos = qs + t * d.e, *pz = dos + t * d.ev, *dsc = pz + t * t;
    T *ls = dsc + t * t, *dsh = ls + t;
    int64_t b = blockIdx.x, j0 = (int64_t)blockIdx.y * t;
    load_rows(ks, k + b * d.s * d.e, j0, d.s, t, d.e);
    load_rows(vs, v + b * d.s * d.ev, j0, d.s, t, d.ev);
    for (int64_t x = threadIdx.x; x < (int64_t)t * d.e; x += blockDim.x) gks[x] = 0;
    for (int64_t x = threadIdx.x; x < (int64_t)t * d.ev; x += blockDim.x) gvs[x] = 0;
    for (int64_t i0 = d.causal ? j0 / t * t : 0; i0 < d.l; i0 += t) {
        __syncthreads();
        load_rows(qs, q + b * d.l * d.e, i0, d.l, t, d.e);
        load_rows(dos, go + b * d.l * d.ev, i0, d.l, t, d.ev);
        load_row_stats(d, b, i0, lse, dd, ls, dsh);
        __syncthreads();
        tile_grads(d, mask, b, i0, j0, qs, dos, ks, vs, ls, dsh, pz, dsc);
        __syncthreads();
        for (int64_t x = threadIdx.x; x < (int64_t)t * d.ev; x += blockDim.x) {
            int64_t c = x / d.ev, e = x % d.ev;
            T acc = 0;
            for (int r = 0; r < t; r++) acc += pz[r * t + c] * dos[r * d.ev + e];
            gvs[x] += acc;
        }
        for (int64_t x = threadIdx.x; x < (int64_t)t * d.e; x += blockDim.x) {
            int64_t c = x / d.e, e = x % d.e;
            T acc = 0;
            for (int r = 0; r < t; r++) acc += dsc[r * t + c] * qs[r * d.e + e];
            gks[x] += acc * (T)d.scale;
        }
    }
    __syncthreads();
    for (int64_t x = threadIdx.x; x < (int64_t)t * d.e; x += blockDim.x)
        if (j0 + x / d.e < d.s) gk[(b * d.s + j0) * d.e + x] = gks[x];
    for (int64_t x = threadIdx.x; x < (int64_t)t * d.ev; x += blockDim.x)
        if (j0 + x / d.ev < d.s) gv[(b * d.s + j0) * d.ev + x] = gvs[x];
}

template <typename T>
__global__ void dq_kernel(Dims d, const T *q, const T *k, const T *v, const void *mask,
                          const T *lse, const T *dd, const T *go, T *gq)
{
    extern __shared__ unsigned char smem_raw[];
    T *sm = (T *)smem_raw;
    const int t = d.t;
    T *qs = sm, *dos = qs + t * d.e, *gqs = dos + t * d.ev, *ks = gqs + t * d.e;
    T *vs = ks + t * d.e, *pz = vs + t * d.ev, *dsc = pz + t * t, *ls = dsc + t * t, *dsh = ls + t;
    int64_t b = blockIdx.x, i0 = (int64_t)blockIdx.y * t;
    load_rows(qs, q + b * d.l * d.e, i0, d.l, t, d.e);
    load_rows(dos, go + b * d.l * d.ev, i0, d.l, t, d.ev);
    load_row_stats(d, b, i0, lse, dd, ls, dsh);
    for (int64_t x = threadIdx.x; x < (int64_t)t * d.e; x += blockDim.x) gqs[x] = 0;
    int64_t kend = d.causal ? (i0 + t < d.s ? i0 + t : d.s) : d.s;
    for (int64_t j0 = 0; j0 < kend; j0 += t) {
        __syncthreads();
        load_rows(ks, k + b * d.s * d.e, j0, d.s, t, d.e);
        load_rows(vs, v + b * d.s * d.ev, j0, d.s, t, d.ev);
        __syncthreads();
        tile_grads(d, mask, b, i0, j0, qs, dos, ks, vs, ls, dsh, pz, dsc);
        __syncthreads();
        for (int64_t x = threadIdx.x; x < (int64_t)t * d.e; x += blockDim.x) {
            int64_t r = x / d.e, e = x % d.e;
            T acc = 0;
            for (int c = 0; c < t; c++) acc += dsc[r * t + c] * ks[c * d.e + e];
            gqs[x] += acc * (T)d.scale;
        }
    }
    __syncthreads();
    for (int64_t x = threadIdx.x; x < (int64_t)t * d.e; x += blockDim.x)
        if (i0 + x / d.e < d.l) gq[(b * d.l + i0) * d.e + x] = gqs[x];
}

/* shared bytes of each kernel for tile t */
size_t fwd_smem(const Dims &d, int t, size_t es)
{
    return es * (size_t)(t * (2 * d.e + 2 * d.ev) + t * t + 3 * t);
}
size_t bwd_smem(const Dims &d, int t, size_t es)
{
    return es * (size_t)(t * (3 * d.e + 3 * d.ev) + 2 * t * t + 2 * t);
}

/* the largest tile whose kernels fit; 0 when none does */
int pick_tile(const Dims &d, size_t es, bool backward)
{
    for (int t = 32; t >= 1; t /= 2)
        if ((backward ? bwd_smem(d, t, es) : fwd_smem(d, t, es)) <= SMEM_LIMIT) return t;
    return 0;
}

Dims dims_of(const td_attn_args *a)
{
    Dims d;
    d.l = a->l, d.s = a->s, d.e = a->e, d.ev = a->ev, d.heads = a->heads;
    for (int i = 0; i < 4; i++) d.ms[i] = a->mask_stride[i];
    d.mask_kind = (int)a->mask_kind;
    d.causal = a->causal;
    d.scale = a->scale;
    d.p = a->dropout_p;
    d.key = a->key;
    d.thr = a->dropout_p >= 1 ? UINT64_MAX : (uint64_t)(a->dropout_p * 9007199254740992.0);
    d.t = 0;
    return d;
}

td_status too_wide(const td_attn_args *a)
{
    return td_error(TD_EINVAL, 0,
                    "scaled_dot_product_attention: head dims %lld and %lld are too large for the "
                    "CUDA kernel's shared memory",
                    (long long)a->e, (long long)a->ev);
}

bool use_device(const void *p)
{
    int dev = td_cuda_device_of_ptr(p);
    if (dev < 0) return false;
    td_cuda_use(dev);
    return true;
}

td_status attn_forward(const td_attn_args *a, const void *q, const void *k, const void *v,
                       const void *mask, void *out, void *lse)
{
    if (!use_device(q))
        return td_error(TD_EINVAL, 0, "scaled_dot_product_attention: query is not on a device");
    Dims d = dims_of(a);
    size_t es = td_dtype_size(a->dtype);
    d.t = pick_tile(d, es, false);
    if (d.t == 0) return too_wide(a);
    dim3 grid((unsigned)a->bh, (unsigned)((a->l + d.t - 1) / d.t));
    size_t sh = fwd_smem(d, d.t, es);
    TDC_FLOAT_DISPATCH(a->dtype, {
        fwd_kernel<T><<<grid, ATTN_THREADS, sh>>>(d, (const T *)q, (const T *)k, (const T *)v, mask,
                                                  (T *)out, (T *)lse);
    });
    check_launch("scaled_dot_product_attention forward");
    return td_cuda_pending_error();
}

td_status attn_backward(const td_attn_args *a, const void *q, const void *k, const void *v,
                        const void *mask, const void *out, const void *lse, const void *gout,
                        void *gq, void *gk, void *gv)
{
    if (!use_device(q))
        return td_error(TD_EINVAL, 0, "scaled_dot_product_attention: query is not on a device");
    Dims d = dims_of(a);
    size_t es = td_dtype_size(a->dtype);
    d.t = pick_tile(d, es, true);
    if (d.t == 0) return too_wide(a);
    int device = 0;
    cudaGetDevice(&device);
    int64_t rows = a->bh * a->l;
    size_t nb = (size_t)(rows > 0 ? rows : 1) * es;
    void *dd = td_cuda_alloc(device, nb);
    if (!dd) return td_error(TD_ENOMEM, 0, "scaled_dot_product_attention: out of device memory");
    size_t sh = bwd_smem(d, d.t, es);
    dim3 kgrid((unsigned)a->bh, (unsigned)((a->s + d.t - 1) / d.t));
    dim3 qgrid((unsigned)a->bh, (unsigned)((a->l + d.t - 1) / d.t));
    TDC_FLOAT_DISPATCH(a->dtype, {
        if (rows > 0)
            rowdot_kernel<T><<<blocks_for(rows), THREADS>>>(rows, a->ev, (const T *)gout,
                                                            (const T *)out, (T *)dd);
        dkdv_kernel<T><<<kgrid, ATTN_THREADS, sh>>>(d, (const T *)q, (const T *)k, (const T *)v,
                                                    mask, (const T *)lse, (const T *)dd,
                                                    (const T *)gout, (T *)gk, (T *)gv);
        if (a->l > 0)
            dq_kernel<T><<<qgrid, ATTN_THREADS, sh>>>(d, (const T *)q, (const T *)k, (const T *)v,
                                                      mask, (const T *)lse, (const T *)dd,
                                                      (const T *)gout, (T *)gq);
    });
    check_launch("scaled_dot_product_attention backward");
    td_cuda_free(device, dd, nb);
    return td_cuda_pending_error();
}

} // namespace

extern "C" const struct td_attention_kernels td_cuda_attention = {
    attn_forward,
    attn_backward,
};
