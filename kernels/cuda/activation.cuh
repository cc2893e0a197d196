/* The activations' and the inverse and hyperbolic functions' formulas on
 * CUDA: the same expressions, the same branches and boundary points as
 * the CPU's (kernels/cpu/activation_math.h, which says where each comes
 * from in PyTorch 1.13), so the two backends agree to rounding. p0, p1
 * are the op's parameters in the op table's order. Included by
 * elementwise.cu inside its anonymous namespace, after its d_exp, d_log1p,
 * d_tanh, d_abs, d_sqrt and sigmoid. */
#ifndef TIDE_KERNELS_CUDA_ACTIVATION_CUH
#define TIDE_KERNELS_CUDA_ACTIVATION_CUH

#define TDC_MATH1(name)                                                                            \
    __device__ inline float d_##name(float x) { return name##f(x); }                               \
    __device__ inline double d_##name(double x) { return name(x); }
TDC_MATH1(tan)
TDC_MATH1(asin)
TDC_MATH1(acos)
TDC_MATH1(atan)
TDC_MATH1(sinh)
TDC_MATH1(cosh)
TDC_MATH1(asinh)
TDC_MATH1(acosh)
TDC_MATH1(atanh)
TDC_MATH1(rsqrt)
#undef TDC_MATH1
__device__ inline float d_atan2(float a, float b) { return atan2f(a, b); }
__device__ inline double d_atan2(double a, double b) { return atan2(a, b); }

#define TDC_SELU_ALPHA 1.6732632423543772848170429916717
#define TDC_SELU_SCALE 1.0507009873554804934193349852946
#define TDC_GELU_BETA  0.79788456080286535588
#define TDC_GELU_KAPPA 0.044715

/* elu, selu, celu: x <= 0 takes the exponential side (NaN the linear one) */
template <typename T> __device__ inline T elu_(T x, T neg, T in, T pos)
{
    return x <= 0 ? neg * (d_exp(x * in) - (T)1) : x * pos;
}
template <typename T> __device__ inline T elu_grad_(T x, T g, T neg, T in, T pos)
{
    return x <= 0 ? g * neg * in * d_exp(x * in) : g * pos;
}

/* NaN fails both tests; min > max gives max everywhere */
template <typename T> __device__ inline T clamp_(T x, T lo, T hi)
{
    return x < lo ? (lo > hi ? hi : lo) : x > hi ? hi : x;
}
template <typename T> __device__ inline T clamp_grad_(T x, T g, T lo, T hi)
{
    return (x <= lo || x >= hi) ? (T)0 : g;
}

/* through sigmoid(2u) = (1 + tanh(u)) / 2, as the CPU's */
template <typename T> __device__ inline T gelu_tanh(T x)
{
    return x * sigmoid((T)2 * (T)TDC_GELU_BETA * (x + (T)TDC_GELU_KAPPA * x * x * x));
}
template <typename T> __device__ inline T gelu_tanh_grad(T x, T g)
{
    T s = sigmoid((T)2 * (T)TDC_GELU_BETA * (x + (T)TDC_GELU_KAPPA * x * x * x));
    return g * (s + (T)2 * x * s * ((T)1 - s) * (T)TDC_GELU_BETA *
                        ((T)1 + (T)3 * (T)TDC_GELU_KAPPA * x * x));
}

template <typename T> __device__ inline T softsign_grad(T x, T g)
{
    T d = d_abs(x) + (T)1, s = (T)((x > 0) - (x < 0));
    return g / d - g * x / (d * d) * s;
}

template <typename T> __device__ inline T logsigmoid_grad(T x, T g)
{
    T z = d_exp(-d_abs(x));
    return g * (x < 0 ? (T)1 - z / ((T)1 + z) : z / ((T)1 + z));
}

/* the activations and the inverse and hyperbolic functions; `handled`
 * false for any other op */
template <typename T> __device__ inline T activation(td_unary_op op, T x, T p0, T p1, bool *handled)
{
    *handled = true;
    switch (op) {
    case TD_RSQRT: return d_rsqrt(x);
    case TD_TAN: return d_tan(x);
    case TD_ASIN: return d_asin(x);
    case TD_ACOS: return d_acos(x);
    case TD_ATAN: return d_atan(x);
    case TD_SINH: return d_sinh(x);
    case TD_COSH: return d_cosh(x);
    case TD_ASINH: return d_asinh(x);
    case TD_ACOSH: return d_acosh(x);
    case TD_ATANH: return d_atanh(x);
    case TD_ELU: return elu_(x, p0, (T)1, (T)1);
    case TD_SELU: return elu_(x, (T)(TDC_SELU_ALPHA * TDC_SELU_SCALE), (T)1, (T)TDC_SELU_SCALE);
    case TD_CELU: return elu_(x, p0, (T)1 / p0, (T)1);
    case TD_SILU: return x * sigmoid(x);
    case TD_MISH: return x * d_tanh(d_log1p(d_exp(x)));
    case TD_RELU6: return clamp_(x, (T)0, (T)6);
    case TD_HARDTANH: return clamp_(x, p0, p1);
    case TD_HARDSWISH: return x * clamp_(x + (T)3, (T)0, (T)6) / (T)6;
    case TD_HARDSIGMOID: return clamp_(x + (T)3, (T)0, (T)6) / (T)6;
    case TD_SOFTPLUS: return x * p0 > p1 ? x : d_log1p(d_exp(x * p0)) / p0;
    case TD_SOFTSIGN: return x / (d_abs(x) + (T)1);
    case TD_LOGSIGMOID: return (x < 0 ? x : (T)0) - d_log1p(d_exp(-d_abs(x)));
    case TD_THRESHOLD: return x <= p0 ? p1 : x;
    default: *handled = false; return x;
    }
}

template <typename T>
__device__ inline T activation_grad(td_unary_op op, T x, T g, T p0, T p1, bool *handled)
{
    *handled = true;
    switch (op) {
    case TD_RSQRT: return (T)-0.5 * g / (x * d_sqrt(x));
    case TD_TAN: {
        T t = d_tan(x);
        return g * ((T)1 + t * t);
    }
    case TD_ASIN: return g / d_sqrt((T)1 - x * x);
    case TD_ACOS: return -g / d_sqrt((T)1 - x * x);
    case TD_ATAN: return g / (x * x + (T)1);
    case TD_SINH: return g * d_cosh(x);
    case TD_COSH: return g * d_sinh(x);
    case TD_ASINH: return g / d_sqrt(x * x + (T)1);
    case TD_ACOSH: return g / d_sqrt(x * x - (T)1);
    case TD_ATANH: return g / ((T)1 - x * x);
    case TD_ELU: return elu_grad_(x, g, p0, (T)1, (T)1);
    case TD_SELU:
        return elu_grad_(x, g, (T)(TDC_SELU_ALPHA * TDC_SELU_SCALE), (T)1, (T)TDC_SELU_SCALE);
    case TD_CELU: return x <= 0 ? g * d_exp(x / p0) : g;
    case TD_SILU: {
        T s = sigmoid(x);
        return g * s * ((T)1 + x * ((T)1 - s));
    }
    case TD_MISH: {
        T t = d_tanh(d_log1p(d_exp(x)));
        return g * (t + x * sigmoid(x) * ((T)1 - t * t));
    }
    case TD_RELU6: return clamp_grad_(x, g, (T)0, (T)6);
    case TD_HARDTANH: return clamp_grad_(x, g, p0, p1);
    case TD_HARDSWISH: return x < (T)-3 ? (T)0 : x <= (T)3 ? g * (x / (T)3 + (T)0.5) : g;
    case TD_HARDSIGMOID: return (x > (T)-3 && x < (T)3) ? g * (T)(1.0f / 6.0f) : (T)0;
    case TD_SOFTPLUS: {
        T z = d_exp(x * p0);
        return x * p0 > p1 ? g : g * z / (z + (T)1);
    }
    case TD_SOFTSIGN: return softsign_grad(x, g);
    case TD_LOGSIGMOID: return logsigmoid_grad(x, g);
    case TD_THRESHOLD: return x <= p0 ? (T)0 : g;
    default: *handled = false; return g;
    }
}

#endif
