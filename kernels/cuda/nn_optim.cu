/* CUDA kernels of the optim family (kernels/nn_optim.h): one fused kernel
 * per parameter (and multi-tensor SGD/Adam launches over a parameter list,
 * below), every element reading its param, grad and state once and
 * writing them back once. The formulas are the CPU kernels'
 * (kernels/cpu/nn_optim.c) with the same coefficients, computed on the
 * host in double and cast to the element type, so float32 works in float32
 * throughout as PyTorch's does. Elements are independent: no reduction, no
 * atomics, the same bits on every run. */
#include "rows.cuh"

#include <string.h>

using namespace tdc;

namespace {

template <typename T> struct SgdK {
    T lr, wd, mom, damp, sgn;
    bool use_wd, first, nesterov;
};

template <typename T> SgdK<T> sgd_coeffs(const td_sgd_opts *o)
{
    return {(T)o->lr,
            (T)o->weight_decay,
            (T)o->momentum,
            (T)(1.0 - o->dampening),
            o->maximize ? (T)-1 : (T)1,
            o->weight_decay != 0,
            o->first_step,
            o->nesterov};
}

/* element i of one SGD step; b (the momentum buffer) may be NULL */
template <typename T>
__device__ __forceinline__ void sgd_element(int64_t i, T *p, const T *g, T *b, const SgdK<T> &k)
{
    T d = k.sgn * g[i];
    if (k.use_wd) d += k.wd * p[i];
    if (b) {
        T bv = k.first ? d : b[i] * k.mom + k.damp * d;
        b[i] = bv;
        d = k.nesterov ? d + k.mom * bv : bv;
    }
    p[i] -= k.lr * d;
}

template <typename T> __global__ void sgd_kernel(int64_t n, T *p, const T *g, T *b, SgdK<T> k)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        sgd_element(i, p, g, b, k);
}

void cuda_sgd(td_dtype dt, int64_t n, void *param, const void *grad, void *buf,
              const td_sgd_opts *o)
{
    if (n == 0 || !use_device_of_ptr(param, "sgd_step")) return;
    TDC_FLOAT_DISPATCH(dt, {
        SgdK<T> k = sgd_coeffs<T>(o);
        sgd_kernel<T><<<blocks_for(n), THREADS>>>(n, (T *)param, (const T *)grad, (T *)buf, k);
    });
    check_launch("sgd_step");
}

template <typename T> struct AdamK {
    T step_size, bc2s, eps, b1, c1, b2, c2, wd, decay, sgn;
    bool coupled, decoupled;
};

/* the bias corrections and weight decay of this step, in double, cast once */
template <typename T> AdamK<T> adam_coeffs(const td_adam_opts *o)
{
    double bc1 = 1.0 - pow(o->beta1, (double)o->step);
    double bc2 = 1.0 - pow(o->beta2, (double)o->step);
    return {(T)(o->lr / bc1),
            (T)sqrt(bc2),
            (T)o->eps,
            (T)o->beta1,
            (T)(1.0 - o->beta1),
            (T)o->beta2,
            (T)(1.0 - o->beta2),
            (T)o->weight_decay,
            (T)(1.0 - o->lr * o->weight_decay),
            o->maximize ? (T)-1 : (T)1,
            !o->decoupled && o->weight_decay != 0,
            o->decoupled && o->weight_decay != 0};
}

/* element i of one Adam/AdamW step; vmax (amsgrad) may be NULL */
template <typename T>
__device__ __forceinline__ void adam_element(int64_t i, T *p, const T *g, T *m, T *v, T *vmax,
                                             const AdamK<T> &k)
{
    T pv = p[i], gv = k.sgn * g[i];
    if (k.decoupled) pv *= k.decay;
    if (k.coupled) gv += k.wd * pv;
    T mv = m[i] * k.b1 + k.c1 * gv;
    T vv = v[i] * k.b2 + k.c2 * gv * gv;
    m[i] = mv;
    v[i] = vv;
    if (vmax) {
        vv = vmax[i] > vv ? vmax[i] : vv;
        vmax[i] = vv;
    }
    T denom = dsqrt<T>(vv) / k.bc2s + k.eps;
    p[i] = pv - k.step_size * (mv / denom);
}

template <typename T>
__global__ void adam_kernel(int64_t n, T *p, const T *g, T *m, T *v, T *vmax, AdamK<T> k)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step)
        adam_element(i, p, g, m, v, vmax, k);
}

void cuda_adam(td_dtype dt, int64_t n, void *param, const void *grad, void *exp_avg,
               void *exp_avg_sq, void *max_sq, const td_adam_opts *o)
{
    if (n == 0 || !use_device_of_ptr(param, "adam_step")) return;
    TDC_FLOAT_DISPATCH(dt, {
        AdamK<T> k = adam_coeffs<T>(o);
        adam_kernel<T><<<blocks_for(n), THREADS>>>(n, (T *)param, (const T *)grad, (T *)exp_avg,
                                                   (T *)exp_avg_sq, (T *)max_sq, k);
    });
    check_launch("adam_step");
}

template <typename T> struct RmsK {
    T lr, a, c, eps, wd, mom, sgn;
    bool use_wd;
};

template <typename T>
__global__ void rmsprop_kernel(int64_t n, T *p, const T *g, T *sq, T *ga, T *b, RmsK<T> k)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        T gv = k.sgn * g[i];
        if (k.use_wd) gv += k.wd * p[i];
        T sv = sq[i] * k.a + k.c * gv * gv;
        sq[i] = sv;
        T avg;
        if (ga) {
            T gav = ga[i] * k.a + k.c * gv;
            ga[i] = gav;
            avg = dsqrt<T>(sv - gav * gav) + k.eps;
        } else {
            avg = dsqrt<T>(sv) + k.eps;
        }
        if (b) {
            T bv = b[i] * k.mom + gv / avg;
            b[i] = bv;
            p[i] -= k.lr * bv;
        } else {
            p[i] -= k.lr * (gv / avg);
        }
    }
}

void cuda_rmsprop(td_dtype dt, int64_t n, void *param, const void *grad, void *square_avg,
                  void *grad_avg, void *buf, const td_rmsprop_opts *o)
{
    if (n == 0 || !use_device_of_ptr(param, "rmsprop_step")) return;
    TDC_FLOAT_DISPATCH(dt, {
        RmsK<T> k = {
            (T)o->lr,           (T)o->alpha,    (T)(1.0 - o->alpha),        (T)o->eps,
            (T)o->weight_decay, (T)o->momentum, o->maximize ? (T)-1 : (T)1, o->weight_decay != 0};
        rmsprop_kernel<T><<<blocks_for(n), THREADS>>>(n, (T *)param, (const T *)grad,
                                                      (T *)square_avg, (T *)grad_avg, (T *)buf, k);
    });
    check_launch("rmsprop_step");
}

/* ---- multi-tensor steps ----------------------------------------------------
 * SGD and Adam/AdamW over a whole parameter list in few launches, as
 * PyTorch's _foreach / fused optimizers and llm.c do: the pointers and sizes
 * of up to MT_TENSORS tensors travel in the kernel's argument struct (under
 * the 4 KiB parameter limit), each block updates one MT_CHUNK-element chunk
 * of one tensor (block -> tensor, chunk maps in the struct too), and the
 * host packs tensors and chunks until either table is full, then launches.
 * The per-element formulas are the single-tensor kernels' above, with the
 * same coefficients, so the results are bit for bit the same. */
constexpr int MT_TENSORS = 24;
constexpr int MT_BLOCKS = 320;
constexpr int64_t MT_CHUNK = 65536;

template <typename T> struct MtArgs {
    T *p[MT_TENSORS];
    const T *g[MT_TENSORS];
    T *s0[MT_TENSORS], *s1[MT_TENSORS], *s2[MT_TENSORS];
    int64_t n[MT_TENSORS];
    int chunk[MT_BLOCKS];
    unsigned char tensor[MT_BLOCKS];
};

/* a tensor's state pointers are NULL where the step has no such state
 * (mt_pack fills them so), which is what the element functions test */
template <typename T> __global__ void sgd_multi_kernel(MtArgs<T> a, SgdK<T> k)
{
    int t = a.tensor[blockIdx.x];
    int64_t start = (int64_t)a.chunk[blockIdx.x] * MT_CHUNK;
    int64_t end = start + MT_CHUNK < a.n[t] ? start + MT_CHUNK : a.n[t];
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
        sgd_element(i, a.p[t], a.g[t], a.s0[t], k);
}

template <typename T> __global__ void adam_multi_kernel(MtArgs<T> a, AdamK<T> k)
{
    int t = a.tensor[blockIdx.x];
    int64_t start = (int64_t)a.chunk[blockIdx.x] * MT_CHUNK;
    int64_t end = start + MT_CHUNK < a.n[t] ? start + MT_CHUNK : a.n[t];
    for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
        adam_element(i, a.p[t], a.g[t], a.s0[t], a.s1[t], a.s2[t], k);
}

/* packs tensors 0..count-1 into launches of launch(args, nblocks) */
template <typename T, typename L>
void mt_pack(int count, void *const *param, const void *const *grad, void *const *s0,
             void *const *s1, void *const *s2, const int64_t *numel, L launch)
{
    MtArgs<T> a;
    memset(&a, 0, sizeof a);
    int nt = 0, nb = 0;
    for (int i = 0; i < count; i++) {
        if (numel[i] == 0) continue;
        a.p[nt] = (T *)param[i];
        a.g[nt] = (const T *)grad[i];
        a.s0[nt] = s0 ? (T *)s0[i] : NULL;
        a.s1[nt] = s1 ? (T *)s1[i] : NULL;
        a.s2[nt] = s2 ? (T *)s2[i] : NULL;
        a.n[nt] = numel[i];
        int64_t chunks = (numel[i] + MT_CHUNK - 1) / MT_CHUNK;
        for (int64_t c = 0; c < chunks; c++) {
            a.tensor[nb] = (unsigned char)nt;
            a.chunk[nb] = (int)c;
            nb++;
            bool last = c == chunks - 1;
            if (nb == MT_BLOCKS || (last && nt + 1 == MT_TENSORS)) {
                launch(a, nb);
                nb = 0;
                if (last) {
                    nt = -1;
                } else { /* the rest of this tensor goes on in slot 0 */
                    a.p[0] = a.p[nt], a.g[0] = a.g[nt], a.n[0] = a.n[nt];
                    a.s0[0] = a.s0[nt], a.s1[0] = a.s1[nt], a.s2[0] = a.s2[nt];
                    nt = 0;
                }
            }
        }
        nt++;
    }
    if (nb > 0) launch(a, nb);
}

void cuda_sgd_multi(td_dtype dt, int count, void *const *param, const void *const *grad,
                    void *const *buf, const int64_t *numel, const td_sgd_opts *o)
{
    if (count == 0 || !use_device_of_ptr(param[0], "sgd_step")) return;
    TDC_FLOAT_DISPATCH(dt, {
        SgdK<T> k = sgd_coeffs<T>(o);
        mt_pack<T>(count, param, grad, buf, NULL, NULL, numel, [&](const MtArgs<T> &a, int nb) {
            sgd_multi_kernel<T><<<nb, THREADS>>>(a, k);
            check_launch("sgd_step");
        });
    });
}

void cuda_adam_multi(td_dtype dt, int count, void *const *param, const void *const *grad,
                     void *const *exp_avg, void *const *exp_avg_sq, void *const *max_sq,
                     const int64_t *numel, const td_adam_opts *o)
{
    if (count == 0 || !use_device_of_ptr(param[0], "adam_step")) return;
    TDC_FLOAT_DISPATCH(dt, {
        AdamK<T> k = adam_coeffs<T>(o);
        mt_pack<T>(count, param, grad, exp_avg, exp_avg_sq, max_sq, numel,
                   [&](const MtArgs<T> &a, int nb) {
                       adam_multi_kernel<T><<<nb, THREADS>>>(a, k);
                       check_launch("adam_step");
                   });
    });
}

} // namespace

extern "C" const struct td_optim_kernels td_cuda_optim = {
    cuda_sgd, cuda_adam, cuda_rmsprop, cuda_sgd_multi, cuda_adam_multi,
};
