/* The layers family on CUDA: batch norm (statistics, the per-channel
 * step, apply, backward), 2-d pooling (max, average, adaptive average and max;
 * forward and backward), dropout's mask, and the per-channel bias add and
 * sum the conv entries use.
 *
 * Our own kernels rather than cuDNN's, so that every case has the CPU's
 * semantics exactly: PyTorch's ceil_mode and count_include_pad windows,
 * max pooling's first-of-ties and NaN-wins order and its argmax indices,
 * batch norm's unbiased running variance, statistics in double.
 *
 * Deterministic, no atomics anywhere:
 * - a per-channel sum splits each channel's n * inner elements into a
 *   number of chunks fixed by the shape; one block folds a chunk (each
 *   thread its strided share in order, then a fixed halving tree) into a
 *   double partial, and one thread per channel adds the partials in order;
 * - pooling backward gathers: one thread per input element adds the
 *   gradients of the outputs whose window holds it, in increasing output
 *   order, the order in which the CPU's scatter adds them. */
#include "common.cuh"
#include "nn.h"
#include "nn_group_norm.h"
#include "../counter_bits.h"

#include <math.h>

using namespace tdc;

extern "C" int td_cuda_device_of_ptr(const void *p)
{
    cudaPointerAttributes a;
    cudaError_t e = cudaPointerGetAttributes(&a, p);
    if (e != cudaSuccess || a.type != cudaMemoryTypeDevice) {
        (void)cudaGetLastError();
        return -1;
    }
    return a.device;
}

namespace {

/* make the device of p current; false (and an error noted for the next
 * synchronize) when p is not device memory */
bool use_ptr(const void *p, const char *what)
{
    int d = td_cuda_device_of_ptr(p);
    if (d < 0) {
        td_cuda_note_error(cudaErrorInvalidDevicePointer, what);
        return false;
    }
    td_cuda_use(d);
    return true;
}

/* sum of a and of b over the block, by a fixed halving tree */
__device__ void block_sum2(double &a, double &b, double *sh)
{
    int t = threadIdx.x;
    sh[t] = a;
    sh[THREADS + t] = b;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if (t < s) {
            sh[t] += sh[t + s];
            sh[THREADS + t] += sh[THREADS + t + s];
        }
        __syncthreads();
    }
    a = sh[0];
    b = sh[THREADS];
}

/* ---- per-channel sums -------------------------------------------------------------- */

enum { SUM_SHIFTED = 0, SUM_GRAD_X = 1, SUM_GRAD = 2 };

/* x, g viewed as (n, c, inner); block ch * chunks + k folds elements
 * [k per, (k + 1) per) of channel ch's n * inner into part[2 block]:
 * SUM_SHIFTED: d and d^2 with d = x - x[first of the channel];
 * SUM_GRAD_X: g and g (x - mean[ch]); SUM_GRAD: g */
template <typename T, int MODE>
__global__ void chan_partial(const T *x, const T *g, const double *mean, int64_t n, int64_t c,
                             int64_t inner, int64_t chunks, int64_t per, double *part)
{
    __shared__ double sh[2 * THREADS];
    int64_t ch = blockIdx.x / chunks, k = blockIdx.x - ch * chunks;
    int64_t m = n * inner, e0 = k * per, e1 = e0 + per < m ? e0 + per : m;
    double ctr = 0;
    if (MODE == SUM_SHIFTED) ctr = (double)x[ch * inner];
    if (MODE == SUM_GRAD_X) ctr = mean[ch];
    double s1 = 0, s2 = 0;
    int64_t e = e0 + threadIdx.x;
    if (e < e1) {
        int64_t i = e / inner, j = e - i * inner;
        const int64_t di = THREADS / inner, dj = THREADS - di * inner;
        for (; e < e1; e += THREADS) {
            int64_t off = (i * c + ch) * inner + j;
            if (MODE == SUM_SHIFTED) {
                double d = (double)x[off] - ctr;
                s1 += d;
                s2 += d * d;
            } else if (MODE == SUM_GRAD_X) {
                double gv = (double)g[off];
                s1 += gv;
                s2 += gv * ((double)x[off] - ctr);
            } else {
                s1 += (double)g[off];
            }
            i += di;
            j += dj;
            if (j >= inner) {
                j -= inner;
                i++;
            }
        }
    }
    block_sum2(s1, s2, sh);
    if (threadIdx.x == 0) {
        part[2 * blockIdx.x] = s1;
        part[2 * blockIdx.x + 1] = s2;
    }
}

/* chunks per channel: at least 4096 elements a block, about 2048 blocks at most */
int64_t chunks_for(int64_t m, int64_t c)
{
    int64_t want = (m + 4095) / 4096, most = 2048 / c;
    if (most < 1) most = 1;
    if (want > most) want = most;
    return want < 1 ? 1 : want;
}

/* the partials of channel ch, added in order */
__device__ inline void fold(const double *part, int64_t ch, int64_t chunks, double &s1, double &s2)
{
    s1 = 0;
    s2 = 0;
    for (int64_t k = 0; k < chunks; k++) {
        s1 += part[2 * (ch * chunks + k)];
        s2 += part[2 * (ch * chunks + k) + 1];
    }
}

/* per-channel scratch from the caching allocator; stream-ordered reuse is
 * safe because every kernel, copy and cuDNN call runs on the default stream */
struct Scratch {
    int device;
    size_t bytes;
    double *p;
    Scratch(int64_t count) : device(0), bytes((size_t)count * sizeof(double)), p(nullptr)
    {
        cudaGetDevice(&device);
        p = (double *)td_cuda_alloc(device, bytes ? bytes : 8);
        if (!p) td_cuda_note_error(cudaErrorMemoryAllocation, "batch norm / pooling scratch");
    }
    ~Scratch()
    {
        if (p) td_cuda_free(device, p, bytes ? bytes : 8);
    }
};

unsigned grid_for(int64_t n) { return blocks_for(n); }

/* the channel of flat element i of (n, c, inner); I = uint32_t when the
 * tensor has fewer than 2^32 elements (a 64-bit division costs several
 * times a 32-bit one, and these kernels would otherwise be bound by it) */
template <typename I> __device__ inline int64_t channel_of(int64_t i, int64_t c, int64_t inner)
{
    return (int64_t)(((I)i / (I)inner) % (I)c);
}

/* ---- batch norm ------------------------------------------------------------------------ */

template <typename T>
__global__ void stats_final(const T *x, const double *part, int64_t c, int64_t inner,
                            int64_t chunks, double cnt, double *mean, double *var)
{
    int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double s1, s2;
    fold(part, ch, chunks, s1, s2);
    double k = (double)x[ch * inner], dm = s1 / cnt, v = s2 / cnt - dm * dm;
    mean[ch] = k + dm;
    var[ch] = v > 0 ? v : 0;
}

void bn_stats(td_dtype dt, const void *x, int64_t n, int64_t c, int64_t inner, double *mean,
              double *var)
{
    if (n * inner == 0 || c == 0 || !use_ptr(x, "batch_norm")) return;
    int64_t m = n * inner, chunks = chunks_for(m, c), per = (m + chunks - 1) / chunks;
    Scratch part(2 * c * chunks);
    if (!part.p) return;
    TDC_FLOAT_DISPATCH(dt, {
        chan_partial<T, SUM_SHIFTED><<<(unsigned)(c * chunks), THREADS>>>(
            (const T *)x, nullptr, nullptr, n, c, inner, chunks, per, part.p);
        stats_final<T><<<grid_for(c), THREADS>>>((const T *)x, part.p, c, inner, chunks, (double)m,
                                                 mean, var);
    });
    check_launch("batch_norm statistics");
}

template <typename T>
__global__ void bn_finalize_k(int64_t c, bool training, double cnt, double mom, double eps,
                              double *mean, double *var, T *rm, int64_t rms, T *rv, int64_t rvs,
                              const T *w, int64_t wst, const T *b, int64_t bst, double *invstd,
                              double *gs, double *shift)
{
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= c) return;
    if (training) {
        if (rm) rm[i * rms] = (T)((1 - mom) * (double)rm[i * rms] + mom * mean[i]);
        if (rv) rv[i * rvs] = (T)((1 - mom) * (double)rv[i * rvs] + mom * var[i] * cnt / (cnt - 1));
    } else {
        mean[i] = (double)rm[i * rms];
        var[i] = (double)rv[i * rvs];
    }
    double is = 1.0 / sqrt(var[i] + eps);
    invstd[i] = is;
    double wv = w ? (double)w[i * wst] : 1.0, bv = b ? (double)b[i * bst] : 0.0;
    gs[i] = is * wv;
    shift[i] = bv - mean[i] * gs[i];
}

template <typename T> T *vec_ptr(const td_tensor *t)
{
    return t ? (T *)((char *)t->storage->data + t->offset * (int64_t)sizeof(T)) : nullptr;
}

int64_t vec_stride(const td_tensor *t) { return t ? t->stride[0] : 0; }

void bn_finalize(td_dtype dt, int64_t c, bool training, double cnt, double momentum, double eps,
                 double *mean, double *var, td_tensor *rm, td_tensor *rv, const td_tensor *weight,
                 const td_tensor *bias, double *invstd, double *gs, double *shift)
{
    if (c == 0 || !use_ptr(mean, "batch_norm")) return;
    TDC_FLOAT_DISPATCH(dt, {
        bn_finalize_k<T><<<grid_for(c), THREADS>>>(
            c, training, cnt, momentum, eps, mean, var, vec_ptr<T>(rm), vec_stride(rm),
            vec_ptr<T>(rv), vec_stride(rv), vec_ptr<T>(weight), vec_stride(weight),
            vec_ptr<T>(bias), vec_stride(bias), invstd, gs, shift);
    });
    check_launch("batch_norm running statistics");
}

template <typename T, typename I>
__global__ void bn_apply_k(const T *x, T *y, int64_t total, int64_t c, int64_t inner,
                           const double *scale, const double *shift)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        int64_t ch = channel_of<I>(i, c, inner);
        y[i] = x[i] * (T)scale[ch] + (T)shift[ch];
    }
}

void bn_apply(td_dtype dt, const void *x, void *y, int64_t n, int64_t c, int64_t inner,
              const double *scale, const double *shift)
{
    int64_t total = n * c * inner;
    if (total == 0 || !use_ptr(y, "batch_norm")) return;
    TDC_FLOAT_DISPATCH(dt, {
        if (total <= (int64_t)UINT32_MAX)
            bn_apply_k<T, uint32_t>
                <<<grid_for(total), THREADS>>>((const T *)x, (T *)y, total, c, inner, scale, shift);
        else
            bn_apply_k<T, uint64_t>
                <<<grid_for(total), THREADS>>>((const T *)x, (T *)y, total, c, inner, scale, shift);
    });
    check_launch("batch_norm apply");
}

/* coef per channel: {A, D, E, mean as float, ...} for float, {k, mg, mx,
 * mean, invstd} for double, as the CPU's two formulas */
template <typename T>
__global__ void bwd_final(const double *part, int64_t c, int64_t chunks, double cnt,
                          const double *mean, const double *invstd, const double *gs, bool training,
                          double *sum_gy, double *sum_gy_xhat, double *coef)
{
    int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double sg, sgx;
    fold(part, ch, chunks, sg, sgx);
    sgx *= invstd[ch];
    sum_gy[ch] = sg;
    sum_gy_xhat[ch] = sgx;
    if (!coef) return;
    double k = gs[ch], m = mean[ch], mg = training ? sg / cnt : 0, mx = training ? sgx / cnt : 0;
    double *o = coef + 5 * ch;
    if constexpr (sizeof(T) == 4) {
        double dd = -k * invstd[ch] * mx;
        float mf = (float)m;
        o[0] = k;
        o[1] = dd;
        o[2] = -k * mg - dd * (m - (double)mf);
        o[3] = (double)mf;
        o[4] = 0;
    } else {
        o[0] = k;
        o[1] = mg;
        o[2] = mx;
        o[3] = m;
        o[4] = invstd[ch];
    }
}

template <typename T, typename I>
__global__ void bwd_gx(const T *x, const T *gy, T *gx, int64_t total, int64_t c, int64_t inner,
                       const double *coef)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step) {
        const double *o = coef + 5 * channel_of<I>(i, c, inner);
        if constexpr (sizeof(T) == 4) {
            float A = (float)o[0], D = (float)o[1], E = (float)o[2], mf = (float)o[3];
            gx[i] = (T)(A * (float)gy[i] + D * ((float)x[i] - mf) + E);
        } else {
            double xh = ((double)x[i] - o[3]) * o[4];
            gx[i] = (T)(o[0] * ((double)gy[i] - o[1] - xh * o[2]));
        }
    }
}

void bn_backward(td_dtype dt, const void *x, const void *gy, void *gx, int64_t n, int64_t c,
                 int64_t inner, const double *mean, const double *invstd, const double *gs,
                 bool training, double *sum_gy, double *sum_gy_xhat)
{
    if (c == 0 || !use_ptr(mean, "batch_norm backward")) return;
    int64_t m = n * inner, chunks = chunks_for(m, c), per = (m + chunks - 1) / chunks,
            total = m * c;
    Scratch part(2 * c * chunks), coef(gx ? 5 * c : 1);
    if (!part.p || !coef.p) return;
    TDC_FLOAT_DISPATCH(dt, {
        chan_partial<T, SUM_GRAD_X><<<(unsigned)(c * chunks), THREADS>>>(
            (const T *)x, (const T *)gy, mean, n, c, inner, chunks, per, part.p);
        bwd_final<T><<<grid_for(c), THREADS>>>(part.p, c, chunks, (double)m, mean, invstd, gs,
                                               training, sum_gy, sum_gy_xhat,
                                               gx ? coef.p : nullptr);
        if (gx && total > 0 && total <= (int64_t)UINT32_MAX)
            bwd_gx<T, uint32_t><<<grid_for(total), THREADS>>>((const T *)x, (const T *)gy, (T *)gx,
                                                              total, c, inner, coef.p);
        else if (gx && total > 0)
            bwd_gx<T, uint64_t><<<grid_for(total), THREADS>>>((const T *)x, (const T *)gy, (T *)gx,
                                                              total, c, inner, coef.p);
    });
    check_launch("batch_norm backward");
}

/* ---- conv helpers: bias add and bias gradient ------------------------------------------------ */

template <typename T, typename I>
__global__ void add_channel_k(T *y, const T *b, int64_t total, int64_t c, int64_t inner)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < total; i += step)
        y[i] += b[channel_of<I>(i, c, inner)];
}

template <typename T>
__global__ void sum_final(const double *part, int64_t c, int64_t chunks, T *out)
{
    int64_t ch = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (ch >= c) return;
    double s1, s2;
    fold(part, ch, chunks, s1, s2);
    out[ch] = (T)s1;
}

/* ---- pooling
 * ------------------------------------------------------------------------------------- */

__device__ inline void adaptive_range(int64_t o, int64_t in, int64_t out, int64_t *s, int64_t *e)
{
    *s = (o * in) / out;
    *e = ((o + 1) * in + out - 1) / out;
}

/* the clipped window of an average (or adaptive) pool output and its divisor, as the CPU */
__device__ inline double avg_window(const td_pool2d_args &a, int64_t oy, int64_t ox, int64_t *hs,
                                    int64_t *he, int64_t *ws, int64_t *we)
{
    int64_t H = a.h, W = a.w;
    if (a.kind == TD_POOL_AVG) {
        *hs = oy * a.sh - a.ph;
        *ws = ox * a.sw - a.pw;
        *he = *hs + a.kh;
        *we = *ws + a.kw;
        if (*he > H + a.ph) *he = H + a.ph;
        if (*we > W + a.pw) *we = W + a.pw;
        double full = (double)((*he - *hs) * (*we - *ws));
        if (*hs < 0) *hs = 0;
        if (*ws < 0) *ws = 0;
        if (*he > H) *he = H;
        if (*we > W) *we = W;
        if (a.divisor_override) return (double)a.divisor_override;
        return a.count_include_pad ? full : (double)((*he - *hs) * (*we - *ws));
    }
    adaptive_range(oy, H, a.oh, hs, he);
    adaptive_range(ox, W, a.ow, ws, we);
    return (double)((*he - *hs) * (*we - *ws));
}

template <typename T>
__global__ void pool_fwd(td_pool2d_args a, const T *x, T *y, int64_t *idx, int64_t total)
{
    const int64_t H = a.h, W = a.w, OH = a.oh, OW = a.ow;
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        int64_t pl = t / (OH * OW), o = t - pl * (OH * OW), oy = o / OW, ox = o - oy * OW;
        const T *xi = x + pl * H * W;
        if (a.kind == TD_POOL_MAX) {
            int64_t hs = oy * a.sh - a.ph, ws = ox * a.sw - a.pw;
            int64_t he = hs + (a.kh - 1) * a.dh + 1, we = ws + (a.kw - 1) * a.dw + 1;
            if (he > H) he = H;
            if (we > W) we = W;
            if (hs < 0) hs += (-hs + a.dh - 1) / a.dh * a.dh;
            if (ws < 0) ws += (-ws + a.dw - 1) / a.dw * a.dw;
            int64_t best = hs * W + ws;
            T mv = (T)-INFINITY;
            for (int64_t yy = hs; yy < he; yy += a.dh)
                for (int64_t xx = ws; xx < we; xx += a.dw) {
                    T v = xi[yy * W + xx];
                    if (v > mv || v != v) {
                        mv = v;
                        best = yy * W + xx;
                    }
                }
            y[t] = mv;
            idx[t] = best;
        } else if (a.kind == TD_POOL_ADAPTIVE_MAX) {
            int64_t hs, he, ws, we;
            adaptive_range(oy, H, OH, &hs, &he);
            adaptive_range(ox, W, OW, &ws, &we);
            int64_t best = hs * W + ws;
            T mv = (T)-INFINITY;
            for (int64_t yy = hs; yy < he; yy++)
                for (int64_t xx = ws; xx < we; xx++) {
                    T v = xi[yy * W + xx];
                    if (v > mv || v != v) {
                        mv = v;
                        best = yy * W + xx;
                    }
                }
            y[t] = mv;
            idx[t] = best;
        } else {
            int64_t hs, he, ws, we;
            double div = avg_window(a, oy, ox, &hs, &he, &ws, &we), s = 0;
            for (int64_t yy = hs; yy < he; yy++)
                for (int64_t xx = ws; xx < we; xx++) s += (double)xi[yy * W + xx];
            y[t] = (T)(div > 0 ? s / div : 0);
        }
    }
}

/* the outputs along one axis whose window may hold input position i:
 * [lo, hi], a superset that the caller checks exactly */
__device__ inline void out_range(int64_t i, int64_t pad, int64_t span, int64_t stride, int64_t nout,
                                 int64_t *lo, int64_t *hi)
{
    int64_t num = i + pad - span + 1; /* the first output whose window ends at or after i */
    *lo = num <= 0 ? 0 : (num + stride - 1) / stride;
    *hi = (i + pad) / stride;
    if (*hi > nout - 1) *hi = nout - 1;
}

template <typename T>
__global__ void pool_bwd(td_pool2d_args a, const T *gy, const int64_t *idx, T *gx, int64_t total)
{
    const int64_t H = a.h, W = a.w, OH = a.oh, OW = a.ow;
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t t = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; t < total; t += step) {
        int64_t pl = t / (H * W), p = t - pl * (H * W), iy = p / W, ix = p - iy * W;
        const T *go = gy + pl * OH * OW;
        T acc = 0;
        int64_t ylo, yhi, xlo, xhi;
        if (a.kind == TD_POOL_MAX || a.kind == TD_POOL_ADAPTIVE_MAX) {
            const int64_t *io = idx + pl * OH * OW;
            if (a.kind == TD_POOL_MAX) {
                out_range(iy, a.ph, (a.kh - 1) * a.dh + 1, a.sh, OH, &ylo, &yhi);
                out_range(ix, a.pw, (a.kw - 1) * a.dw + 1, a.sw, OW, &xlo, &xhi);
            } else { /* the adaptive windows holding i, as the average's below */
                ylo = (iy * OH) / H;
                yhi = ((iy + 1) * OH - 1) / H;
                xlo = (ix * OW) / W;
                xhi = ((ix + 1) * OW - 1) / W;
                if (yhi > OH - 1) yhi = OH - 1;
                if (xhi > OW - 1) xhi = OW - 1;
            }
            for (int64_t oy = ylo; oy <= yhi; oy++)
                for (int64_t ox = xlo; ox <= xhi; ox++)
                    if (io[oy * OW + ox] == p) acc += go[oy * OW + ox];
        } else {
            if (a.kind == TD_POOL_AVG) {
                out_range(iy, a.ph, a.kh, a.sh, OH, &ylo, &yhi);
                out_range(ix, a.pw, a.kw, a.sw, OW, &xlo, &xhi);
            } else { /* adaptive: start(o) <= i < end(o) */
                ylo = (iy * OH) / H;
                yhi = ((iy + 1) * OH - 1) / H;
                xlo = (ix * OW) / W;
                xhi = ((ix + 1) * OW - 1) / W;
                if (yhi > OH - 1) yhi = OH - 1;
                if (xhi > OW - 1) xhi = OW - 1;
            }
            for (int64_t oy = ylo; oy <= yhi; oy++)
                for (int64_t ox = xlo; ox <= xhi; ox++) {
                    int64_t hs, he, ws, we;
                    double div = avg_window(a, oy, ox, &hs, &he, &ws, &we);
                    if (div <= 0 || iy < hs || iy >= he || ix < ws || ix >= we) continue;
                    acc += (T)(go[oy * OW + ox] / div);
                }
        }
        gx[t] = acc;
    }
}

void pool2d(const td_pool2d_args *a, const void *x, void *y, int64_t *idx)
{
    int64_t total = a->n * a->c * a->oh * a->ow;
    if (total == 0 || !use_ptr(y, "pooling")) return;
    TDC_FLOAT_DISPATCH(a->dtype, {
        pool_fwd<T><<<grid_for(total), THREADS>>>(*a, (const T *)x, (T *)y, idx, total);
    });
    check_launch("pool2d");
}

void pool2d_backward(const td_pool2d_args *a, const void *gy, const int64_t *idx, void *gx)
{
    int64_t total = a->n * a->c * a->h * a->w;
    if (total == 0 || !use_ptr(gx, "pooling backward")) return;
    TDC_FLOAT_DISPATCH(a->dtype, {
        pool_bwd<T><<<grid_for(total), THREADS>>>(*a, (const T *)gy, idx, (T *)gx, total);
    });
    check_launch("pool2d backward");
}

/* ---- dropout ----------------------------------------------------------------------------------
 */

template <typename T>
__global__ void dropout_k(T *out, const T *x, int64_t n, uint64_t key, uint64_t thr, T scale)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        out[i] = (td_counter_bits(key, (uint64_t)i) >> 11) >= thr ? x[i] * scale : (T)0;
}

void dropout(td_dtype dt, void *out, const void *x, int64_t n, uint64_t key, double p)
{
    if (n == 0 || !use_ptr(out, "dropout")) return;
    uint64_t thr = p >= 1 ? UINT64_MAX : (uint64_t)(p * 9007199254740992.0);
    double scale = p >= 1 ? 0 : 1.0 / (1.0 - p);
    TDC_FLOAT_DISPATCH(dt, {
        dropout_k<T><<<grid_for(n), THREADS>>>((T *)out, (const T *)x, n, key, thr, (T)scale);
    });
    check_launch("dropout");
}

} // namespace

extern "C" void td_cuda_add_channel(td_dtype dt, void *y, const void *b, int64_t n, int64_t c,
                                    int64_t inner)
{
    int64_t total = n * c * inner;
    if (total == 0 || !use_ptr(y, "conv2d bias")) return;
    TDC_FLOAT_DISPATCH(dt, {
        if (total <= (int64_t)UINT32_MAX)
            add_channel_k<T, uint32_t>
                <<<grid_for(total), THREADS>>>((T *)y, (const T *)b, total, c, inner);
        else
            add_channel_k<T, uint64_t>
                <<<grid_for(total), THREADS>>>((T *)y, (const T *)b, total, c, inner);
    });
    check_launch("conv2d bias");
}

extern "C" void td_cuda_channel_sum(td_dtype dt, const void *g, void *out, int64_t n, int64_t c,
                                    int64_t inner)
{
    if (c == 0 || !use_ptr(out, "conv2d bias gradient")) return;
    int64_t m = n * inner, chunks = chunks_for(m, c), per = (m + chunks - 1) / chunks;
    if (m == 0) {
        cudaMemset(out, 0, (size_t)c * td_dtype_size(dt));
        check_launch("conv2d bias gradient");
        return;
    }
    Scratch part(2 * c * chunks);
    if (!part.p) return;
    TDC_FLOAT_DISPATCH(dt, {
        chan_partial<T, SUM_GRAD><<<(unsigned)(c * chunks), THREADS>>>(
            nullptr, (const T *)g, nullptr, n, c, inner, chunks, per, part.p);
        sum_final<T><<<grid_for(c), THREADS>>>(part.p, c, chunks, (T *)out);
    });
    check_launch("conv2d bias gradient");
}

extern "C" const struct td_layers_kernels td_cuda_layers = {
    bn_stats,    bn_apply,           bn_backward,         pool2d, pool2d_backward, dropout,
    bn_finalize, td_cuda_gn_forward, td_cuda_gn_backward,
};
