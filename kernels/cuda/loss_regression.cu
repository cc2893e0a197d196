/* CUDA kernels of the regression losses: mse, l1, smooth_l1, huber,
 * kl_div, poisson_nll, gaussian_nll (kernels/loss_regression.h).
 *
 * Elementwise over the strided iterator, with the CPU kernels' formulas
 * (kernels/cpu/loss_regression.c) term for term; every element depends on
 * its own inputs only, and the reduction runs afterwards in a fixed order
 * (td_loss_reduce_raw). count_below counts with an integer atomic, whose
 * total does not depend on the order. */
#include "rows.cuh"

using namespace tdc;

namespace {

constexpr double LOG_2PI = 1.83787706640934548356;
constexpr double TWO_PI = 6.28318530717958647692;

template <typename T> __device__ inline T sgnf(T x) { return (T)((x > 0) - (x < 0)); }

template <typename T> __device__ inline T stirling(T y, bool full)
{
    return full && y > 1 ? y * dlog(y) - y + (T)0.5 * dlog((T)TWO_PI * y) : (T)0;
}

template <typename T> struct RegFwd {
    td_regression_op op;
    T prm;
    bool full;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        T x = *at<T>(it, 1, off[1]), y = *at<T>(it, 2, off[2]), o;
        switch (op) {
        case TD_REG_MSE: o = (x - y) * (x - y); break;
        case TD_REG_L1: o = dabs(x - y); break;
        case TD_REG_SMOOTH_L1:
            o = dabs(x - y) < prm ? (T)0.5 * (x - y) * (x - y) / prm : dabs(x - y) - (T)0.5 * prm;
            break;
        case TD_REG_HUBER:
            o = dabs(x - y) < prm ? (T)0.5 * (x - y) * (x - y) : prm * (dabs(x - y) - (T)0.5 * prm);
            break;
        case TD_REG_KL_DIV: o = (y == 0 ? (T)0 : y * dlog(y)) - y * x; break;
        case TD_REG_KL_DIV_LOG: o = dexp<T>(y) * (y - x); break;
        case TD_REG_POISSON_LOG: o = dexp<T>(x) - y * x + stirling(y, full); break;
        case TD_REG_POISSON: o = x - y * dlog(x + prm) + stirling(y, full); break;
        default: { /* gaussian */
            T v = *at<T>(it, 3, off[3]);
            T d = x - y;
            v = v < prm ? prm : v; /* NaN stays NaN */
            T l = (T)0.5 * (dlog(v) + d * d / v);
            o = full ? l + (T)(0.5 * LOG_2PI) : l;
        } break;
        }
        *at<T>(it, 0, off[0]) = o;
    }
};

void reg_forward(const td_regression_args *a, td_tensor *out, const td_tensor *x,
                 const td_tensor *y, const td_tensor *v)
{
    use_device_of(out);
    const td_tensor *ts[4] = {out, x, y, v ? v : y};
    Iter it = make_iter(4, ts);
    TDC_FLOAT_DISPATCH(out->dtype, {
        launch<4>(it, RegFwd<T>{a->op, (T)a->param, a->full}, "regression loss");
    });
}

template <typename T> struct RegBwd {
    td_regression_op op;
    td_regression_wrt wrt;
    T prm, scale;
    bool full;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        T g = *at<T>(it, 1, off[1]), x = *at<T>(it, 2, off[2]), y = *at<T>(it, 3, off[3]);
        T gs = scale * g, r;
        bool tgt = wrt == TD_REG_WRT_TARGET;
        T sgn = tgt ? (T)-1 : (T)1;
        switch (op) {
        case TD_REG_MSE: r = sgn * (T)2 * (x - y); break;
        case TD_REG_L1: r = sgn * sgnf(x - y); break;
        case TD_REG_SMOOTH_L1: {
            T d = tgt ? y - x : x - y;
            r = d <= -prm ? (T)-1 : d >= prm ? (T)1 : d / prm;
        } break;
        case TD_REG_HUBER: r = sgn * (dabs(x - y) < prm ? (x - y) : prm * sgnf(x - y)); break;
        case TD_REG_KL_DIV: r = tgt ? (y != 0 ? dlog(y) : (T)0) + y / y - x : -y; break;
        case TD_REG_KL_DIV_LOG: r = tgt ? dexp<T>(y) * (y - x) + dexp<T>(y) : -dexp<T>(y); break;
        case TD_REG_POISSON_LOG:
            r = tgt ? (full && y > 1 ? dlog(y) + (T)0.5 / y : (T)0) - x : dexp<T>(x) - y;
            break;
        case TD_REG_POISSON:
            r = tgt ? (full && y > 1 ? dlog(y) + (T)0.5 / y : (T)0) - dlog(x + prm)
                    : (T)1 - y / (x + prm);
            break;
        default: { /* gaussian: x is d, y is var */
            T v = y < prm ? prm : y;
            r = wrt == TD_REG_WRT_VAR ? (T)0.5 * ((T)1 / v - x * x / v / v) : sgn * x / v;
        } break;
        }
        *at<T>(it, 0, off[0]) = gs * r;
    }
};

void reg_backward(const td_regression_args *a, td_regression_wrt wrt, td_tensor *gin,
                  const td_tensor *g, const td_tensor *x, const td_tensor *y)
{
    use_device_of(gin);
    const td_tensor *ts[4] = {gin, g, x, y};
    Iter it = make_iter(4, ts);
    TDC_FLOAT_DISPATCH(gin->dtype, {
        launch<4>(it, RegBwd<T>{a->op, wrt, (T)a->param, (T)a->scale, a->full},
                  "regression loss backward");
    });
}

template <typename T> __global__ void below_kernel(Iter it, T bound, unsigned long long *count)
{
    unsigned long long k = 0;
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < it.numel; i += step) {
        int64_t off[1];
        offsets<1>(it, i, off);
        k += *at<T>(it, 0, off[0]) < bound;
    }
    if (k) atomicAdd(count, k); /* integers: the total is the same in any order */
}

int64_t reg_count_below(const td_tensor *x, double bound)
{
    use_device_of(x);
    const td_tensor *ts[1] = {x};
    Iter it = make_iter(1, ts);
    if (it.numel == 0) return 0;
    Scratch s(sizeof(unsigned long long));
    if (!s.p) return 0;
    cudaMemsetAsync(s.p, 0, sizeof(unsigned long long));
    TDC_FLOAT_DISPATCH(x->dtype, {
        below_kernel<T>
            <<<blocks_for(it.numel), THREADS>>>(it, (T)bound, s.as<unsigned long long>());
    });
    check_launch("regression loss check");
    unsigned long long h = 0;
    if (td_cuda_download(s.device, &h, s.p, sizeof h) != TD_OK) return 0;
    return (int64_t)h;
}

} // namespace

extern "C" const struct td_regression_loss_kernels td_cuda_regression_loss = {
    reg_forward,
    reg_backward,
    reg_count_below,
};
