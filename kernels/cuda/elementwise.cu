/* copy (any dtype pair, any strides), fill, unary and their gradients,
 * binary ops and comparisons, clamp, where. Same formulas as the CPU
 * backend (kernels/cpu/elementwise.c, copy.c), so the results agree to
 * rounding; integer arithmetic wraps through uint64_t as there.
 * bfloat16 and float16 (the Low* ops) load as float, compute the float32
 * formula and store rounded to nearest even, as the CPU's lowp.h path. */
#include "common.cuh"

#include <math.h>
#include <type_traits>

using namespace tdc;

namespace {

/* x < 0, without the warning about unsigned types */
template <typename T> __device__ inline bool neg(T x)
{
    if constexpr (std::is_signed<T>::value)
        return x < (T)0;
    else
        return false;
}

/* ---- copy and fill ------------------------------------------------------------ */

template <typename D, typename S> struct CopyOp {
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        *at<D>(it, 0, off[0]) = convert<D>(*at<S>(it, 1, off[1]));
    }
};

/* from or to bfloat16 / float16: through float32 (float64 rounds to
 * float32 first, as PyTorch's conversion) */
template <typename D, typename S> struct CopyLowOp {
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        store_f(at<D>(it, 0, off[0]), load_f(at<S>(it, 1, off[1])));
    }
};

template <typename W> struct FillOp {
    W v;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        *at<W>(it, 0, off[0]) = v;
    }
};

/* ---- unary ---------------------------------------------------------------------- */

__device__ inline float d_exp(float x) { return expf(x); }
__device__ inline double d_exp(double x) { return exp(x); }
__device__ inline float d_log(float x) { return logf(x); }
__device__ inline double d_log(double x) { return log(x); }
__device__ inline float d_log1p(float x) { return log1pf(x); }
__device__ inline double d_log1p(double x) { return log1p(x); }
__device__ inline float d_sqrt(float x) { return sqrtf(x); }
__device__ inline double d_sqrt(double x) { return sqrt(x); }
__device__ inline float d_abs(float x) { return fabsf(x); }
__device__ inline double d_abs(double x) { return fabs(x); }
__device__ inline float d_sin(float x) { return sinf(x); }
__device__ inline double d_sin(double x) { return sin(x); }
__device__ inline float d_cos(float x) { return cosf(x); }
__device__ inline double d_cos(double x) { return cos(x); }
__device__ inline float d_tanh(float x) { return tanhf(x); }
__device__ inline double d_tanh(double x) { return tanh(x); }
__device__ inline float d_erf(float x) { return erff(x); }
__device__ inline double d_erf(double x) { return erf(x); }
__device__ inline float d_pow(float a, float b) { return powf(a, b); }
__device__ inline float d_floor(float x) { return floorf(x); }
__device__ inline double d_floor(double x) { return floor(x); }
__device__ inline float d_ceil(float x) { return ceilf(x); }
__device__ inline double d_ceil(double x) { return ceil(x); }
__device__ inline float d_rint(float x) { return rintf(x); }
__device__ inline double d_rint(double x) { return rint(x); }
__device__ inline float d_trunc(float x) { return truncf(x); }
__device__ inline double d_trunc(double x) { return trunc(x); }
__device__ inline double d_pow(double a, double b) { return pow(a, b); }

template <typename T> __device__ inline T sigmoid(T x)
{
    T e = d_exp(-d_abs(x)), r = (T)1 / ((T)1 + e);
    return x >= 0 ? r : e * r;
}

#define SQRT1_2      0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794

template <typename T> __device__ inline T gelu(T x)
{
    return (T)0.5 * x * ((T)1 + d_erf(x * (T)SQRT1_2));
}

template <typename T> __device__ inline T gelu_grad(T x)
{
    return (T)0.5 * ((T)1 + d_erf(x * (T)SQRT1_2)) + x * (T)INV_SQRT_2PI * d_exp((T)-0.5 * x * x);
}

template <typename T> __device__ inline T sign(T x) { return (T)((x > 0) - (x < 0)); }

#include "activation.cuh"

template <typename T> __device__ inline T unary_float(td_unary_op op, T x, T p0 = 0, T p1 = 0)
{
    bool handled;
    T r = activation(op, x, p0, p1, &handled);
    if (handled) return r;
    switch (op) {
    case TD_EXP: return d_exp(x);
    case TD_LOG: return d_log(x);
    case TD_LOG1P: return d_log1p(x);
    case TD_SQRT: return d_sqrt(x);
    case TD_ABS: return d_abs(x);
    case TD_NEG: return -x;
    case TD_SIN: return d_sin(x);
    case TD_COS: return d_cos(x);
    case TD_TANH: return d_tanh(x);
    case TD_SIGMOID: return sigmoid(x);
    case TD_RELU: return x < 0 ? (T)0 : x; /* keeps NaN */
    case TD_GELU: return p0 != 0 ? gelu_tanh(x) : gelu(x);
    case TD_SIGN: return sign(x);
    case TD_RECIPROCAL: return (T)1 / x;
    case TD_SQUARE: return x * x;
    case TD_FLOOR: return d_floor(x);
    case TD_CEIL: return d_ceil(x);
    case TD_ROUND: return d_rint(x); /* halves to even, as PyTorch */
    case TD_TRUNC: return d_trunc(x);
    default: return x;
    }
}

template <typename T> __device__ inline T unary_int(td_unary_op op, T x)
{
    switch (op) {
    case TD_ABS: return neg(x) ? (T)(0 - (uint64_t)x) : x;
    case TD_NEG: return (T)(0 - (uint64_t)x);
    case TD_RELU: return neg(x) ? (T)0 : x;
    case TD_SIGN: return (T)((x > (T)0) - (int)neg(x));
    case TD_SQUARE: return (T)((uint64_t)x * (uint64_t)x);
    case TD_FLOOR:
    case TD_CEIL:
    case TD_ROUND:
    case TD_TRUNC: return x;
    default: return (T)f2i(unary_float<double>(op, (double)x));
    }
}

template <typename T> struct UnaryOp {
    td_unary_op op;
    double p0, p1;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        T x = *at<T>(it, 1, off[1]);
        if constexpr (is_float<T>::value)
            *at<T>(it, 0, off[0]) = unary_float(op, x, (T)p0, (T)p1);
        else
            *at<T>(it, 0, off[0]) = unary_int(op, x);
    }
};

/* isnan, isinf, isfinite, logical_not into uint8; an integer is always
 * finite, and NaN is nonzero */
template <typename T> struct TestOp {
    td_unary_op op;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        uint8_t r;
        if (op == TD_LOGICAL_NOT) {
            r = *at<T>(it, 1, off[1]) == (T)0;
        } else if constexpr (is_float<T>::value) {
            T x = *at<T>(it, 1, off[1]);
            bool nan = x != x, inf = d_abs(x) == (T)INFINITY;
            r = op == TD_ISNAN ? nan : op == TD_ISINF ? inf : !nan && !inf;
        } else {
            r = op == TD_ISFINITE;
        }
        *at<uint8_t>(it, 0, off[0]) = r;
    }
};

/* gx = g * op'(x); y = op(x) where has_y, else recomputed */
template <typename T>
__device__ inline T unary_grad(td_unary_op op, bool hy, T x, T y, T g, T p0, T p1)
{
    bool handled;
    T r = activation_grad(op, x, g, p0, p1, &handled);
    if (handled) return r;
    switch (op) {
    case TD_EXP: return g * (hy ? y : d_exp(x));
    case TD_LOG: return g / x;
    case TD_LOG1P: return g / (1 + x);
    case TD_SQRT: return g / (2 * (hy ? y : d_sqrt(x)));
    case TD_ABS: return g * sign(x);
    case TD_NEG: return -g;
    case TD_SIN: return g * d_cos(x);
    case TD_COS: return -g * d_sin(x);
    case TD_TANH: {
        T t = hy ? y : d_tanh(x);
        return g * (1 - t * t);
    }
    case TD_SIGMOID: {
        T s = hy ? y : sigmoid(x);
        return g * s * (1 - s);
    }
    case TD_RELU: return x <= 0 ? (T)0 : g; /* NaN passes g, as PyTorch */
    case TD_GELU: return p0 != 0 ? gelu_tanh_grad(x, g) : g * gelu_grad(x);
    case TD_SIGN: return g * 0;
    case TD_RECIPROCAL: return hy ? -g * y * y : -g / (x * x);
    case TD_SQUARE: return 2 * x * g;
    case TD_FLOOR:
    case TD_CEIL:
    case TD_ROUND:
    case TD_TRUNC: return (T)0; /* 0 even for a NaN g, as PyTorch */
    default: return (T)0;       /* the ops without a gradient */
    }
}

template <typename T> struct UnaryGradOp {
    td_unary_op op;
    bool hy;
    double p0, p1;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        *at<T>(it, 0, off[0]) = unary_grad(op, hy, *at<T>(it, 1, off[1]), *at<T>(it, 2, off[2]),
                                           *at<T>(it, 3, off[3]), (T)p0, (T)p1);
    }
};

/* ---- binary ---------------------------------------------------------------------- */

__device__ inline int64_t ipow(int64_t base, int64_t e)
{
    if (e < 0) return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)base;
    for (; e; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return (int64_t)r;
}

__device__ inline int64_t idiv(int64_t a, int64_t b)
{
    if (b == 0) return 0;
    if (b == -1) return (int64_t)(0 - (uint64_t)a);
    return a / b;
}

template <typename T> __device__ inline T arith(td_binary_op op, T a, T b)
{
    if constexpr (is_float<T>::value) {
        switch (op) {
        case TD_ADD: return a + b;
        case TD_SUB: return a - b;
        case TD_MUL: return a * b;
        case TD_DIV: return a / b;
        case TD_POW: return d_pow(a, b);
        case TD_ATAN2: return d_atan2(a, b);
        case TD_MAXIMUM: return (a > b || a != a) ? a : b; /* NaN from either side */
        case TD_MINIMUM: return (a < b || a != a) ? a : b;
        default: return a;
        }
    } else {
        switch (op) {
        case TD_ADD: return (T)((uint64_t)a + (uint64_t)b);
        case TD_SUB: return (T)((uint64_t)a - (uint64_t)b);
        case TD_MUL: return (T)((uint64_t)a * (uint64_t)b);
        case TD_DIV: return (T)idiv((int64_t)a, (int64_t)b);
        case TD_POW: return (T)ipow((int64_t)a, (int64_t)b);
        case TD_MAXIMUM: return a > b ? a : b;
        case TD_MINIMUM: return a < b ? a : b;
        default: return a;
        }
    }
}

template <typename T> __device__ inline uint8_t compare(td_binary_op op, T a, T b)
{
    switch (op) {
    case TD_EQ: return a == b;
    case TD_NE: return a != b;
    case TD_LT: return a < b;
    case TD_LE: return a <= b;
    case TD_GT: return a > b;
    case TD_LOGICAL_AND: return (a != (T)0) & (b != (T)0);
    case TD_LOGICAL_OR: return (a != (T)0) | (b != (T)0);
    case TD_LOGICAL_XOR: return (a != (T)0) ^ (b != (T)0);
    default: return a >= b;
    }
}

template <typename T> struct BinaryOp {
    td_binary_op op;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        T a = *at<T>(it, 1, off[1]), b = *at<T>(it, 2, off[2]);
        *at<T>(it, 0, off[0]) = arith(op, a, b);
    }
};

template <typename T> struct CompareOp {
    td_binary_op op;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        T a = *at<T>(it, 1, off[1]), b = *at<T>(it, 2, off[2]);
        *at<uint8_t>(it, 0, off[0]) = compare(op, a, b);
    }
};

/* ---- clamp, where ------------------------------------------------------------------ */

/* NaN fails both tests and stays NaN */
template <typename T> struct ClampOp {
    T lo, hi;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        T v = *at<T>(it, 1, off[1]);
        v = v < lo ? lo : v;
        *at<T>(it, 0, off[0]) = v > hi ? hi : v;
    }
};

/* moves bits only: the element size is all that matters */
template <typename W> struct WhereOp {
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        *at<W>(it, 0, off[0]) =
            *at<uint8_t>(it, 1, off[1]) ? *at<W>(it, 2, off[2]) : *at<W>(it, 3, off[3]);
    }
};

template <typename T> struct NanToNumOp {
    T nan, pos, neg;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        T v = *at<T>(it, 1, off[1]);
        *at<T>(it, 0, off[0]) = v != v ? nan : v == (T)INFINITY ? pos : v == (T)-INFINITY ? neg : v;
    }
};

/* ---- bfloat16 and float16: the float32 formulas, S the storage type ---------------- */

template <typename S> struct LowUnaryOp {
    td_unary_op op;
    float p0, p1;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        float x = to_f(*at<S>(it, 1, off[1]));
        *at<S>(it, 0, off[0]) = from_f<S>(unary_float<float>(op, x, p0, p1));
    }
};

template <typename S> struct LowTestOp {
    td_unary_op op;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        float x = to_f(*at<S>(it, 1, off[1]));
        bool nan = x != x, inf = fabsf(x) == INFINITY;
        *at<uint8_t>(it, 0, off[0]) = op == TD_LOGICAL_NOT ? x == 0.0f
                                      : op == TD_ISNAN     ? nan
                                      : op == TD_ISINF     ? inf
                                                           : !nan && !inf;
    }
};

template <typename S> struct LowUnaryGradOp {
    td_unary_op op;
    bool hy;
    float p0, p1;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        float g =
            unary_grad<float>(op, hy, to_f(*at<S>(it, 1, off[1])), to_f(*at<S>(it, 2, off[2])),
                              to_f(*at<S>(it, 3, off[3])), p0, p1);
        *at<S>(it, 0, off[0]) = from_f<S>(g);
    }
};

template <typename S> struct LowBinaryOp {
    td_binary_op op;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        float a = to_f(*at<S>(it, 1, off[1])), b = to_f(*at<S>(it, 2, off[2]));
        *at<S>(it, 0, off[0]) = from_f<S>(arith<float>(op, a, b));
    }
};

template <typename S> struct LowCompareOp {
    td_binary_op op;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        float a = to_f(*at<S>(it, 1, off[1])), b = to_f(*at<S>(it, 2, off[2]));
        *at<uint8_t>(it, 0, off[0]) = compare<float>(op, a, b);
    }
};

template <typename S> struct LowClampOp {
    float lo, hi;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        float v = to_f(*at<S>(it, 1, off[1]));
        v = v < lo ? lo : v;
        *at<S>(it, 0, off[0]) = from_f<S>(v > hi ? hi : v);
    }
};

template <typename S> struct LowNanToNumOp {
    float nan, pos, neg;
    __device__ void operator()(const Iter &it, const int64_t *off) const
    {
        float v = to_f(*at<S>(it, 1, off[1]));
        v = v != v ? nan : v == INFINITY ? pos : v == -INFINITY ? neg : v;
        *at<S>(it, 0, off[0]) = from_f<S>(v);
    }
};

int64_t int_bound(double v, int64_t min, int64_t max)
{
    if (v != v) return min;
    if (v <= (double)min) return min;
    if (v >= (double)max) return max;
    return (int64_t)v;
}

} // namespace

/* ---- the table's entries --------------------------------------------------------------- */

/* a copy with bfloat16 / float16 on either side: D and S any element types */
#define ANY_DISPATCH(dt, X, ...)                                                                   \
    if (td_dtype_is_lowp(dt)) {                                                                    \
        TDC_LOWP_DISPATCH(dt, typedef S X; __VA_ARGS__);                                           \
    } else {                                                                                       \
        TDC_DISPATCH(dt, typedef T X; __VA_ARGS__);                                                \
    }

extern "C" void td_cuda_copy(td_tensor *dst, const td_tensor *src)
{
    use_device_of(dst);
    const td_tensor *ts[2] = {dst, src};
    Iter it = make_iter(2, ts);
    if (td_dtype_is_lowp(dst->dtype) || td_dtype_is_lowp(src->dtype)) {
        if (dst->dtype == src->dtype) {
            launch<2>(it, CopyOp<uint16_t, uint16_t>{}, "copy");
            return;
        }
        ANY_DISPATCH(dst->dtype, DD,
                     ANY_DISPATCH(src->dtype, SS, launch<2>(it, CopyLowOp<DD, SS>{}, "copy")));
        return;
    }
    TDC_DISPATCH(dst->dtype, {
        typedef T D;
        TDC_DISPATCH(src->dtype, launch<2>(it, CopyOp<D, T>{}, "copy"));
    });
}

extern "C" void td_cuda_fill(td_tensor *dst, double value)
{
    use_device_of(dst);
    const td_tensor *ts[1] = {dst};
    Iter it = make_iter(1, ts);
    switch (dst->dtype) {
    case TD_FLOAT32: launch<1>(it, FillOp<float>{(float)value}, "fill"); break;
    case TD_FLOAT64: launch<1>(it, FillOp<double>{value}, "fill"); break;
    case TD_INT64: launch<1>(it, FillOp<int64_t>{f2i(value)}, "fill"); break;
    case TD_BFLOAT16:
    case TD_FLOAT16: /* the value's bits, rounded on the host as the CPU rounds them */
        launch<1>(it, FillOp<uint16_t>{td_float_to_lowp(dst->dtype, (float)value)}, "fill");
        break;
    default: launch<1>(it, FillOp<uint8_t>{(uint8_t)f2i(value)}, "fill"); break;
    }
}

extern "C" void td_cuda_unary(td_unary_op op, td_tensor *out, const td_tensor *x, const double *p)
{
    use_device_of(out);
    const td_tensor *ts[2] = {out, x};
    Iter it = make_iter(2, ts);
    double p0 = p ? p[0] : 0, p1 = p ? p[1] : 0;
    bool test = op == TD_ISNAN || op == TD_ISINF || op == TD_ISFINITE || op == TD_LOGICAL_NOT;
    if (td_dtype_is_lowp(x->dtype)) {
        if (test) {
            TDC_LOWP_DISPATCH(x->dtype, launch<2>(it, LowTestOp<S>{op}, "unary"));
        } else {
            TDC_LOWP_DISPATCH(x->dtype,
                              launch<2>(it, LowUnaryOp<S>{op, (float)p0, (float)p1}, "unary"));
        }
        return;
    }
    if (test) {
        TDC_DISPATCH(x->dtype, launch<2>(it, TestOp<T>{op}, "unary"));
    } else {
        TDC_DISPATCH(x->dtype, launch<2>(it, UnaryOp<T>{op, p0, p1}, "unary"));
    }
}

extern "C" void td_cuda_unary_grad(td_unary_op op, td_tensor *gx, const td_tensor *x,
                                   const td_tensor *y, const td_tensor *gy, const double *p)
{
    use_device_of(gx);
    const td_tensor *ts[4] = {gx, x, y ? y : x, gy};
    Iter it = make_iter(4, ts);
    double p0 = p ? p[0] : 0, p1 = p ? p[1] : 0;
    if (td_dtype_is_lowp(gx->dtype)) {
        TDC_LOWP_DISPATCH(
            gx->dtype,
            launch<4>(it, LowUnaryGradOp<S>{op, y != NULL, (float)p0, (float)p1}, "unary_grad"));
        return;
    }
    TDC_FLOAT_DISPATCH(gx->dtype,
                       launch<4>(it, UnaryGradOp<T>{op, y != NULL, p0, p1}, "unary_grad"));
}

extern "C" void td_cuda_binary(td_binary_op op, td_tensor *out, const td_tensor *a,
                               const td_tensor *b)
{
    use_device_of(out);
    const td_tensor *ts[3] = {out, a, b};
    Iter it = make_iter(3, ts);
    bool cmp = (op >= TD_EQ && op <= TD_GE) || op == TD_LOGICAL_AND || op == TD_LOGICAL_OR ||
               op == TD_LOGICAL_XOR;
    if (td_dtype_is_lowp(a->dtype)) {
        if (cmp) {
            TDC_LOWP_DISPATCH(a->dtype, launch<3>(it, LowCompareOp<S>{op}, "compare"));
        } else {
            TDC_LOWP_DISPATCH(a->dtype, launch<3>(it, LowBinaryOp<S>{op}, "binary"));
        }
        return;
    }
    if (cmp) {
        TDC_DISPATCH(a->dtype, launch<3>(it, CompareOp<T>{op}, "compare"));
    } else {
        TDC_DISPATCH(a->dtype, launch<3>(it, BinaryOp<T>{op}, "binary"));
    }
}

extern "C" void td_cuda_clamp(td_tensor *out, const td_tensor *x, double lo, double hi)
{
    use_device_of(out);
    const td_tensor *ts[2] = {out, x};
    Iter it = make_iter(2, ts);
    if (td_dtype_is_lowp(x->dtype)) {
        TDC_LOWP_DISPATCH(x->dtype, launch<2>(it, LowClampOp<S>{(float)lo, (float)hi}, "clamp"));
        return;
    }
    TDC_DISPATCH(x->dtype, {
        if constexpr (is_float<T>::value) {
            launch<2>(it, ClampOp<T>{(T)lo, (T)hi}, "clamp");
        } else {
            /* integers between the bounds: >= ceil(lo) and <= floor(hi) */
            constexpr bool is_signed = std::is_signed<T>::value;
            int64_t tmin = is_signed ? INT64_MIN : 0, tmax = is_signed ? INT64_MAX : 255;
            T l = (T)int_bound(ceil(lo), tmin, tmax);
            T h = (T)int_bound(hi != hi ? (double)tmax : floor(hi), tmin, tmax);
            launch<2>(it, ClampOp<T>{l, h}, "clamp");
        }
    });
}

extern "C" void td_cuda_where(td_tensor *out, const td_tensor *cond, const td_tensor *a,
                              const td_tensor *b)
{
    use_device_of(out);
    const td_tensor *ts[4] = {out, cond, a, b};
    Iter it = make_iter(4, ts);
    switch (td_dtype_size(out->dtype)) {
    case 1: launch<4>(it, WhereOp<uint8_t>{}, "where"); break;
    case 2: launch<4>(it, WhereOp<uint16_t>{}, "where"); break;
    case 4: launch<4>(it, WhereOp<uint32_t>{}, "where"); break;
    default: launch<4>(it, WhereOp<uint64_t>{}, "where"); break;
    }
}

extern "C" void td_cuda_nan_to_num(td_tensor *out, const td_tensor *x, double nan, double posinf,
                                   double neginf)
{
    use_device_of(out);
    const td_tensor *ts[2] = {out, x};
    Iter it = make_iter(2, ts);
    if (td_dtype_is_lowp(x->dtype)) {
        TDC_LOWP_DISPATCH(x->dtype,
                          launch<2>(it, LowNanToNumOp<S>{(float)nan, (float)posinf, (float)neginf},
                                    "nan_to_num"));
        return;
    }
    TDC_FLOAT_DISPATCH(x->dtype,
                       launch<2>(it, NanToNumOp<T>{(T)nan, (T)posinf, (T)neginf}, "nan_to_num"));
}
