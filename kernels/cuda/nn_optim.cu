/* CUDA kernels of the optim family (kernels/nn_optim.h): one fused kernel
 * per parameter, every element reading its param, grad and state once and
 * writing them back once. The formulas are the CPU kernels'
 * (kernels/cpu/nn_optim.c) with the same coefficients, computed on the
 * host in double and cast to the element type, so float32 works in float32
 * throughout as PyTorch's does. Elements are independent: no reduction, no
 * atomics, the same bits on every run. */
#include "rows.cuh"

using namespace tdc;

namespace {

template <typename T>
struct SgdK {
    T lr, wd, mom, damp, sgn;
    bool use_wd, first, nesterov;
};

template <typename T>
__global__ void sgd_kernel(int64_t n, T *p, const T *g, T *b, SgdK<T> k)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        T d = k.sgn * g[i];
        if (k.use_wd) d += k.wd * p[i];
        if (b) {
            T bv = k.first ? d : b[i] * k.mom + k.damp * d;
            b[i] = bv;
            d = k.nesterov ? d + k.mom * bv : bv;
        }
        p[i] -= k.lr * d;
    }
}

void cuda_sgd(td_dtype dt, int64_t n, void *param, const void *grad, void *buf, const td_sgd_opts *o)
{
    if (n == 0 || !use_device_of_ptr(param, "sgd_step")) return;
    TDC_FLOAT_DISPATCH(dt, {
        SgdK<T> k = {(T)o->lr, (T)o->weight_decay, (T)o->momentum, (T)(1.0 - o->dampening),
                     o->maximize ? (T)-1 : (T)1, o->weight_decay != 0, o->first_step, o->nesterov};
        sgd_kernel<T><<<blocks_for(n), THREADS>>>(n, (T *)param, (const T *)grad, (T *)buf, k);
    });
    check_launch("sgd_step");
}

template <typename T>
struct AdamK {
    T step_size, bc2s, eps, b1, c1, b2, c2, wd, decay, sgn;
    bool coupled, decoupled;
};

template <typename T>
__global__ void adam_kernel(int64_t n, T *p, const T *g, T *m, T *v, T *vmax, AdamK<T> k)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
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
}

void cuda_adam(td_dtype dt, int64_t n, void *param, const void *grad, void *exp_avg, void *exp_avg_sq,
               void *max_sq, const td_adam_opts *o)
{
    if (n == 0 || !use_device_of_ptr(param, "adam_step")) return;
    double bc1 = 1.0 - pow(o->beta1, (double)o->step);
    double bc2 = 1.0 - pow(o->beta2, (double)o->step);
    TDC_FLOAT_DISPATCH(dt, {
        AdamK<T> k = {(T)(o->lr / bc1),
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
        adam_kernel<T><<<blocks_for(n), THREADS>>>(n, (T *)param, (const T *)grad, (T *)exp_avg, (T *)exp_avg_sq,
                                                   (T *)max_sq, k);
    });
    check_launch("adam_step");
}

template <typename T>
struct RmsK {
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

void cuda_rmsprop(td_dtype dt, int64_t n, void *param, const void *grad, void *square_avg, void *grad_avg, void *buf,
                  const td_rmsprop_opts *o)
{
    if (n == 0 || !use_device_of_ptr(param, "rmsprop_step")) return;
    TDC_FLOAT_DISPATCH(dt, {
        RmsK<T> k = {(T)o->lr,          (T)o->alpha,    (T)(1.0 - o->alpha),        (T)o->eps,
                     (T)o->weight_decay, (T)o->momentum, o->maximize ? (T)-1 : (T)1, o->weight_decay != 0};
        rmsprop_kernel<T><<<blocks_for(n), THREADS>>>(n, (T *)param, (const T *)grad, (T *)square_avg,
                                                      (T *)grad_avg, (T *)buf, k);
    });
    check_launch("rmsprop_step");
}

} // namespace

extern "C" const struct td_optim_kernels td_cuda_optim = {
    cuda_sgd,
    cuda_adam,
    cuda_rmsprop,
};
