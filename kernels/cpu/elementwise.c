/* unary, unary_grad, binary, clamp, where.
 *
 * Each kernel is a row loop handed to the strided iterator; contiguous
 * operands coalesce into one flat row, so the `stride == 1` branches below
 * are the fast paths and are written as plain loops gcc vectorises. The
 * op switch sits outside the loops, one loop per op.
 *
 * The loops and the tables of cases stay macros: they take each op's
 * expression and splice it into its own loop, for float32 and float64 from
 * one table (tgmath picks each function's precision). A C function can take
 * the expression only as a pointer called per element, which gcc does not
 * vectorise, and the alternative is a hand-kept copy of each table per
 * type. */

#include "activation_math.h"
#include "cpu.h"
#include "iter.h"
#include "lowp.h"
#include "stream.h"

#include <tgmath.h>

/* the integer loops serve int64 and uint8 alike; `x < 0` is simply false
 * for the latter */
#pragma GCC diagnostic ignored "-Wtype-limits"

/* float32 exp is ours (vectorises); float64 keeps libm's */
#define EXPV(x) _Generic((x), float : td_cpu_expf, default : exp)(x)

static inline float sigmoidf_(float x)
{
    float e = td_cpu_expf(-fabsf(x)), r = 1.0f / (1.0f + e);
    return x >= 0 ? r : e * r;
}
static inline double sigmoidd_(double x)
{
    double e = exp(-fabs(x)), r = 1.0 / (1.0 + e);
    return x >= 0 ? r : e * r;
}
#define SIGMOID(x)   _Generic((x), float : sigmoidf_, default : sigmoidd_)(x)

#define SQRT1_2      0.70710678118654752440
#define INV_SQRT_2PI 0.39894228040143267794
/* exact erf form, as PyTorch's default gelu */
#define GELU(x) ((T)0.5 * (x) * ((T)1 + erf((x) * (T)SQRT1_2)))
#define GELU_GRAD(x)                                                                               \
    ((T)0.5 * ((T)1 + erf((x) * (T)SQRT1_2)) + (x) * (T)INV_SQRT_2PI * exp((T)-0.5 * (x) * (x)))
#define SIGN(x) ((T)(((x) > 0) - ((x) < 0)))
/* relu keeps NaN, as PyTorch's clamp_min does */
#define RELU(x) ((x) < 0 ? (T)0 : (x))

/* ---- unary ----------------------------------------------------------- */

typedef struct {
    td_unary_op op;
    td_dtype dt;
    bool has_y;
    double p0, p1; /* the op's parameters (activation_math.h) */
} unary_ctx;

static unary_ctx make_ctx(td_unary_op op, td_dtype dt, bool has_y, const double *p)
{
    return (unary_ctx){op, dt, has_y, p ? p[0] : 0, p ? p[1] : 0};
}

#define UNARY_LOOP(EXPR)                                                                           \
    do {                                                                                           \
        if (so == 1 && sa == 1)                                                                    \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = a[i];                                                                        \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = a[i * sa];                                                                   \
                o[i * so] = (EXPR);                                                                \
            }                                                                                      \
    } while (0)

#define UNARY_FLOAT_CASES                                                                          \
    switch (op) {                                                                                  \
    case TD_EXP: UNARY_LOOP(EXPV(x)); break;                                                       \
    case TD_LOG: UNARY_LOOP(log(x)); break;                                                        \
    case TD_LOG1P: UNARY_LOOP(log1p(x)); break;                                                    \
    case TD_SQRT: UNARY_LOOP(sqrt(x)); break;                                                      \
    case TD_ABS: UNARY_LOOP(fabs(x)); break;                                                       \
    case TD_NEG: UNARY_LOOP(-x); break;                                                            \
    case TD_SIN: UNARY_LOOP(sin(x)); break;                                                        \
    case TD_COS: UNARY_LOOP(cos(x)); break;                                                        \
    case TD_TANH: UNARY_LOOP(tanh(x)); break;                                                      \
    case TD_SIGMOID: UNARY_LOOP(SIGMOID(x)); break;                                                \
    case TD_RELU: UNARY_LOOP(RELU(x)); break;                                                      \
    case TD_GELU:                                                                                  \
        if (p0 != 0)                                                                               \
            UNARY_LOOP(GELU_TANH(x));                                                              \
        else                                                                                       \
            UNARY_LOOP(GELU(x));                                                                   \
        break;                                                                                     \
    case TD_SIGN: UNARY_LOOP(SIGN(x)); break;                                                      \
    case TD_RECIPROCAL: UNARY_LOOP((T)1 / x); break;                                               \
    case TD_SQUARE: UNARY_LOOP(x *x); break;                                                       \
    case TD_FLOOR: UNARY_LOOP(floor(x)); break;                                                    \
    case TD_CEIL: UNARY_LOOP(ceil(x)); break;                                                      \
    case TD_ROUND: UNARY_LOOP(nearbyint(x)); break; /* halves to even, as PyTorch */               \
    case TD_TRUNC: UNARY_LOOP(trunc(x)); break;                                                    \
    case TD_RSQRT: UNARY_LOOP((T)1 / sqrt(x)); break;                                              \
    case TD_TAN: UNARY_LOOP(tan(x)); break;                                                        \
    case TD_ASIN: UNARY_LOOP(asin(x)); break;                                                      \
    case TD_ACOS: UNARY_LOOP(acos(x)); break;                                                      \
    case TD_ATAN: UNARY_LOOP(atan(x)); break;                                                      \
    case TD_SINH: UNARY_LOOP(sinh(x)); break;                                                      \
    case TD_COSH: UNARY_LOOP(cosh(x)); break;                                                      \
    case TD_ASINH: UNARY_LOOP(asinh(x)); break;                                                    \
    case TD_ACOSH: UNARY_LOOP(acosh(x)); break;                                                    \
    case TD_ATANH: UNARY_LOOP(atanh(x)); break;                                                    \
    case TD_ELU: UNARY_LOOP(ELU(x)); break;                                                        \
    case TD_SELU: UNARY_LOOP(SELU(x)); break;                                                      \
    case TD_CELU: UNARY_LOOP(CELU(x)); break;                                                      \
    case TD_SILU: UNARY_LOOP(SILU(x)); break;                                                      \
    case TD_MISH: UNARY_LOOP(MISH(x)); break;                                                      \
    case TD_RELU6: UNARY_LOOP(RELU6(x)); break;                                                    \
    case TD_HARDTANH: UNARY_LOOP(HARDTANH(x)); break;                                              \
    case TD_HARDSWISH: UNARY_LOOP(HARDSWISH(x)); break;                                            \
    case TD_HARDSIGMOID: UNARY_LOOP(HARDSIGMOID(x)); break;                                        \
    case TD_SOFTPLUS: UNARY_LOOP(SOFTPLUS(x)); break;                                              \
    case TD_SOFTSIGN: UNARY_LOOP(SOFTSIGN(x)); break;                                              \
    case TD_LOGSIGMOID: UNARY_LOOP(LOGSIGMOID(x)); break;                                          \
    case TD_THRESHOLD: UNARY_LOOP(THRESHOLD(x)); break;                                            \
    default: break;                                                                                \
    }

/* the op's parameters in the loop's type, for activation_math.h */
#define UNARY_PARAMS(ctx)                                                                          \
    T p0 = (T)((const unary_ctx *)(ctx))->p0, p1 = (T)((const unary_ctx *)(ctx))->p1;              \
    (void)p0, (void)p1

static void unary_f32(void *ctx, char **p, const int64_t *s, int64_t n)
{
    typedef float T;
    td_unary_op op = ((const unary_ctx *)ctx)->op;
    T *o = (T *)p[0];
    const T *a = (const T *)p[1];
    int64_t so = s[0], sa = s[1];
    UNARY_PARAMS(ctx);
    UNARY_FLOAT_CASES
}

static void unary_f64(void *ctx, char **p, const int64_t *s, int64_t n)
{
    typedef double T;
    td_unary_op op = ((const unary_ctx *)ctx)->op;
    T *o = (T *)p[0];
    const T *a = (const T *)p[1];
    int64_t so = s[0], sa = s[1];
    UNARY_PARAMS(ctx);
    UNARY_FLOAT_CASES
}

/* integer results wrap: arithmetic goes through uint64_t, which C defines */
#define UNARY_INT_CASES                                                                            \
    switch (op) {                                                                                  \
    case TD_ABS: UNARY_LOOP(x < 0 ? (T)(0 - (uint64_t)x) : x); break;                              \
    case TD_NEG: UNARY_LOOP((T)(0 - (uint64_t)x)); break;                                          \
    case TD_RELU: UNARY_LOOP(RELU(x)); break;                                                      \
    case TD_SIGN: UNARY_LOOP(SIGN(x)); break;                                                      \
    case TD_SQUARE: UNARY_LOOP((T)((uint64_t)x * (uint64_t)x)); break;                             \
    case TD_FLOOR:                                                                                 \
    case TD_CEIL:                                                                                  \
    case TD_ROUND:                                                                                 \
    case TD_TRUNC: UNARY_LOOP(x); break;                                                           \
    default: UNARY_LOOP((T)td_cpu_f2i(unary_scalar(op, (double)x))); break;                        \
    }

/* the front-end sends integers only for the ops above; anything else is
 * computed in double and truncated rather than left unwritten */
static double unary_scalar(td_unary_op op, double x)
{
    typedef double T;
    switch (op) {
    case TD_EXP: return exp(x);
    case TD_LOG: return log(x);
    case TD_LOG1P: return log1p(x);
    case TD_SQRT: return sqrt(x);
    case TD_SIN: return sin(x);
    case TD_COS: return cos(x);
    case TD_TANH: return tanh(x);
    case TD_SIGMOID: return SIGMOID(x);
    case TD_GELU: return GELU(x);
    case TD_RECIPROCAL: return 1 / x;
    default: return x;
    }
}

static void unary_i64(void *ctx, char **p, const int64_t *s, int64_t n)
{
    typedef int64_t T;
    td_unary_op op = ((const unary_ctx *)ctx)->op;
    T *o = (T *)p[0];
    const T *a = (const T *)p[1];
    int64_t so = s[0], sa = s[1];
    UNARY_INT_CASES
}

static void unary_u8(void *ctx, char **p, const int64_t *s, int64_t n)
{
    typedef uint8_t T;
    td_unary_op op = ((const unary_ctx *)ctx)->op;
    T *o = (T *)p[0];
    const T *a = (const T *)p[1];
    int64_t so = s[0], sa = s[1];
    UNARY_INT_CASES
}

/* isnan, isinf, isfinite: uint8 out of any dtype; NaN is the one value
 * unequal to itself, and an integer is always finite */
#define TEST_BODY(TYPE)                                                                            \
    typedef TYPE T;                                                                                \
    td_unary_op op = ((const unary_ctx *)ctx)->op;                                                 \
    uint8_t *o = (uint8_t *)p[0];                                                                  \
    const T *a = (const T *)p[1];                                                                  \
    int64_t so = s[0], sa = s[1];                                                                  \
    switch (op) {                                                                                  \
    case TD_ISNAN: UNARY_LOOP(x != x); break;                                                      \
    case TD_ISINF: UNARY_LOOP(fabs(x) == (T)INFINITY); break;                                      \
    default: UNARY_LOOP(x == x && fabs(x) != (T)INFINITY); break;                                  \
    }

static void test_f32(void *ctx, char **p, const int64_t *s, int64_t n) { TEST_BODY(float) }
static void test_f64(void *ctx, char **p, const int64_t *s, int64_t n) { TEST_BODY(double) }

/* logical_not: uint8 out of any dtype; NaN is nonzero, so false */
#define NOT_BODY(TYPE)                                                                             \
    typedef TYPE T;                                                                                \
    uint8_t *o = (uint8_t *)p[0];                                                                  \
    const T *a = (const T *)p[1];                                                                  \
    int64_t so = s[0], sa = s[1];                                                                  \
    (void)ctx;                                                                                     \
    UNARY_LOOP(x == 0);

static void not_f32(void *ctx, char **p, const int64_t *s, int64_t n) { NOT_BODY(float) }
static void not_f64(void *ctx, char **p, const int64_t *s, int64_t n) { NOT_BODY(double) }
static void not_i64(void *ctx, char **p, const int64_t *s, int64_t n) { NOT_BODY(int64_t) }
static void not_u8(void *ctx, char **p, const int64_t *s, int64_t n) { NOT_BODY(uint8_t) }
/* integers, any width: the input is never read */
static void test_int(void *ctx, char **p, const int64_t *s, int64_t n)
{
    uint8_t v = ((const unary_ctx *)ctx)->op == TD_ISFINITE, *o = (uint8_t *)p[0];
    for (int64_t i = 0; i < n; i++) o[i * s[0]] = v;
}

static bool is_test(td_unary_op op)
{
    return op == TD_ISNAN || op == TD_ISINF || op == TD_ISFINITE;
}

static int64_t unary_grain(td_unary_op op)
{
    switch (op) {
    case TD_ABS:
    case TD_NEG:
    case TD_RELU:
    case TD_SIGN:
    case TD_SQUARE:
    case TD_FLOOR:
    case TD_CEIL:
    case TD_ROUND:
    case TD_TRUNC:
    case TD_ISNAN:
    case TD_ISINF:
    case TD_ISFINITE:
    case TD_LOGICAL_NOT:
    case TD_RELU6:
    case TD_HARDTANH:
    case TD_HARDSWISH:
    case TD_HARDSIGMOID:
    case TD_SOFTSIGN:
    case TD_THRESHOLD: return TD_CPU_GRAIN;
    default: return TD_CPU_GRAIN_COSTLY;
    }
}

/* bfloat16 and float16 run the float32 loops through lowp.h's adapter */
void td_cpu_unary(td_unary_op op, td_tensor *out, const td_tensor *x, const double *p)
{
    static const td_cpu_loop loops[TD_NDTYPES] = {unary_f32, unary_f64, unary_i64,
                                                  unary_u8,  unary_f32, unary_f32};
    static const td_cpu_loop tests[TD_NDTYPES] = {test_f32, test_f64, test_int,
                                                  test_int, test_f32, test_f32};
    static const td_cpu_loop nots[TD_NDTYPES] = {not_f32, not_f64, not_i64,
                                                 not_u8,  not_f32, not_f32};
    const td_tensor *ts[2] = {out, x};
    td_cpu_iter it;
    td_cpu_iter_init_any_order(&it, 2, ts);
    unary_ctx c = make_ctx(op, x->dtype, false, p);
    const td_cpu_loop *table = op == TD_LOGICAL_NOT ? nots : is_test(op) ? tests : loops;
    if (td_dtype_is_lowp(x->dtype)) {
        td_cpu_lowp_ctx w = td_cpu_lowp_wrap(table[x->dtype], &c, 2, ts);
        td_cpu_iter_run(&it, unary_grain(op), td_cpu_lowp_loop, &w);
        return;
    }
    td_cpu_iter_run(&it, unary_grain(op), table[x->dtype], &c);
}

/* ---- unary_grad ------------------------------------------------------ */

#define GRAD_LOOP(EXPR)                                                                            \
    do {                                                                                           \
        if (so == 1 && sx == 1 && sy == 1 && sg == 1)                                              \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = px[i], y = py[i], g = pg[i];                                                 \
                (void)x, (void)y;                                                                  \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = px[i * sx], y = py[i * sy], g = pg[i * sg];                                  \
                (void)x, (void)y;                                                                  \
                o[i * so] = (EXPR);                                                                \
            }                                                                                      \
    } while (0)

/* where y was not given, it is recomputed from x */
#define GRAD_CASES                                                                                 \
    switch (op) {                                                                                  \
    case TD_EXP:                                                                                   \
        if (hy)                                                                                    \
            GRAD_LOOP(g *y);                                                                       \
        else                                                                                       \
            GRAD_LOOP(g *EXPV(x));                                                                 \
        break;                                                                                     \
    case TD_LOG: GRAD_LOOP(g / x); break;                                                          \
    case TD_LOG1P: GRAD_LOOP(g / (1 + x)); break;                                                  \
    case TD_SQRT:                                                                                  \
        if (hy)                                                                                    \
            GRAD_LOOP(g / (2 * y));                                                                \
        else                                                                                       \
            GRAD_LOOP(g / (2 * sqrt(x)));                                                          \
        break;                                                                                     \
    case TD_ABS: GRAD_LOOP(g *SIGN(x)); break;                                                     \
    case TD_NEG: GRAD_LOOP(-g); break;                                                             \
    case TD_SIN: GRAD_LOOP(g *cos(x)); break;                                                      \
    case TD_COS: GRAD_LOOP(-g *sin(x)); break;                                                     \
    case TD_TANH:                                                                                  \
        if (hy)                                                                                    \
            GRAD_LOOP(g *(1 - y * y));                                                             \
        else                                                                                       \
            GRAD_LOOP(g *(1 - tanh(x) * tanh(x)));                                                 \
        break;                                                                                     \
    case TD_SIGMOID:                                                                               \
        if (hy)                                                                                    \
            GRAD_LOOP(g *y *(1 - y));                                                              \
        else                                                                                       \
            GRAD_LOOP(g *SIGMOID(x) * (1 - SIGMOID(x)));                                           \
        break;                                                                                     \
    case TD_RELU: GRAD_LOOP(x <= 0 ? (T)0 : g); break; /* NaN passes g, as PyTorch */              \
    case TD_GELU:                                                                                  \
        if (p0 != 0)                                                                               \
            GRAD_LOOP(GELU_TANH_GRAD(x));                                                          \
        else                                                                                       \
            GRAD_LOOP(g *GELU_GRAD(x));                                                            \
        break;                                                                                     \
    case TD_SIGN: GRAD_LOOP(g * 0); break;                                                         \
    case TD_RECIPROCAL:                                                                            \
        if (hy)                                                                                    \
            GRAD_LOOP(-g *y *y);                                                                   \
        else                                                                                       \
            GRAD_LOOP(-g / (x * x));                                                               \
        break;                                                                                     \
    case TD_SQUARE: GRAD_LOOP(2 * x * g); break;                                                   \
    case TD_FLOOR:                                                                                 \
    case TD_CEIL:                                                                                  \
    case TD_ROUND:                                                                                 \
    case TD_TRUNC: GRAD_LOOP(((void)g, (T)0)); break; /* 0 even for a NaN g, as PyTorch */         \
    case TD_RSQRT: GRAD_LOOP(RSQRT_GRAD(x)); break;                                                \
    case TD_TAN: GRAD_LOOP(TAN_GRAD(x)); break;                                                    \
    case TD_ASIN: GRAD_LOOP(ASIN_GRAD(x)); break;                                                  \
    case TD_ACOS: GRAD_LOOP(ACOS_GRAD(x)); break;                                                  \
    case TD_ATAN: GRAD_LOOP(ATAN_GRAD(x)); break;                                                  \
    case TD_SINH: GRAD_LOOP(g *cosh(x)); break;                                                    \
    case TD_COSH: GRAD_LOOP(g *sinh(x)); break;                                                    \
    case TD_ASINH: GRAD_LOOP(ASINH_GRAD(x)); break;                                                \
    case TD_ACOSH: GRAD_LOOP(ACOSH_GRAD(x)); break;                                                \
    case TD_ATANH: GRAD_LOOP(ATANH_GRAD(x)); break;                                                \
    case TD_ELU: GRAD_LOOP(ELU_GRAD(x)); break;                                                    \
    case TD_SELU: GRAD_LOOP(SELU_GRAD(x)); break;                                                  \
    case TD_CELU: GRAD_LOOP(CELU_GRAD(x)); break;                                                  \
    case TD_SILU: GRAD_LOOP(SILU_GRAD(x)); break;                                                  \
    case TD_MISH: GRAD_LOOP(MISH_GRAD(x)); break;                                                  \
    case TD_RELU6: GRAD_LOOP(RELU6_GRAD(x)); break;                                                \
    case TD_HARDTANH: GRAD_LOOP(HARDTANH_GRAD(x)); break;                                          \
    case TD_HARDSWISH: GRAD_LOOP(HARDSWISH_GRAD(x)); break;                                        \
    case TD_HARDSIGMOID: GRAD_LOOP(HARDSIGMOID_GRAD(x)); break;                                    \
    case TD_SOFTPLUS: GRAD_LOOP(SOFTPLUS_GRAD(x)); break;                                          \
    case TD_SOFTSIGN: GRAD_LOOP(SOFTSIGN_GRAD(x)); break;                                          \
    case TD_LOGSIGMOID: GRAD_LOOP(LOGSIGMOID_GRAD(x)); break;                                      \
    case TD_THRESHOLD: GRAD_LOOP(THRESHOLD_GRAD(x)); break;                                        \
    default: GRAD_LOOP(((void)g, (T)0)); break; /* the ops without a gradient */                   \
    }

#define GRAD_BODY(TYPE)                                                                            \
    typedef TYPE T;                                                                                \
    const unary_ctx *c = ctx;                                                                      \
    td_unary_op op = c->op;                                                                        \
    bool hy = c->has_y;                                                                            \
    T *o = (T *)p[0];                                                                              \
    const T *px = (const T *)p[1], *py = (const T *)p[2], *pg = (const T *)p[3];                   \
    int64_t so = s[0], sx = s[1], sy = s[2], sg = s[3];                                            \
    UNARY_PARAMS(ctx);                                                                             \
    GRAD_CASES

static void grad_f32(void *ctx, char **p, const int64_t *s, int64_t n) { GRAD_BODY(float) }
static void grad_f64(void *ctx, char **p, const int64_t *s, int64_t n) { GRAD_BODY(double) }

void td_cpu_unary_grad(td_unary_op op, td_tensor *gx, const td_tensor *x, const td_tensor *y,
                       const td_tensor *gy, const double *p)
{
    const td_tensor *ts[4] = {gx, x, y ? y : x, gy};
    td_cpu_iter it;
    td_cpu_iter_init_any_order(&it, 4, ts);
    unary_ctx c = make_ctx(op, gx->dtype, y != NULL, p);
    if (td_dtype_is_lowp(gx->dtype)) {
        td_cpu_lowp_ctx w = td_cpu_lowp_wrap(grad_f32, &c, 4, ts);
        td_cpu_iter_run(&it, unary_grain(op), td_cpu_lowp_loop, &w);
        return;
    }
    td_cpu_iter_run(&it, unary_grain(op), gx->dtype == TD_FLOAT64 ? grad_f64 : grad_f32, &c);
}

/* ---- binary ---------------------------------------------------------- */

typedef struct {
    td_binary_op op;
    bool stream; /* an output past the cache: streaming stores (stream.c) */
} binary_ctx;

/* the three fast shapes: all contiguous, and one side a broadcast scalar */
#define BIN_LOOP(OT, EXPR)                                                                         \
    do {                                                                                           \
        OT *o = (OT *)p[0];                                                                        \
        if (so == 1 && sa == 1 && sb == 1) {                                                       \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T a = pa[i], b = pb[i];                                                            \
                o[i] = (OT)(EXPR);                                                                 \
            }                                                                                      \
        } else if (so == 1 && sa == 1 && sb == 0) {                                                \
            T b = pb[0];                                                                           \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T a = pa[i];                                                                       \
                o[i] = (OT)(EXPR);                                                                 \
            }                                                                                      \
        } else if (so == 1 && sa == 0 && sb == 1) {                                                \
            T a = pa[0];                                                                           \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T b = pb[i];                                                                       \
                o[i] = (OT)(EXPR);                                                                 \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T a = pa[i * sa], b = pb[i * sb];                                                  \
                o[i * so] = (OT)(EXPR);                                                            \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define BIN_COMPARE_CASES                                                                          \
    case TD_EQ: BIN_LOOP(uint8_t, a == b); break;                                                  \
    case TD_NE: BIN_LOOP(uint8_t, a != b); break;                                                  \
    case TD_LT: BIN_LOOP(uint8_t, a < b); break;                                                   \
    case TD_LE: BIN_LOOP(uint8_t, a <= b); break;                                                  \
    case TD_GT: BIN_LOOP(uint8_t, a > b); break;                                                   \
    case TD_GE: BIN_LOOP(uint8_t, a >= b); break;                                                  \
    case TD_LOGICAL_AND: BIN_LOOP(uint8_t, (a != 0) & (b != 0)); break;                            \
    case TD_LOGICAL_OR: BIN_LOOP(uint8_t, (a != 0) | (b != 0)); break;                             \
    case TD_LOGICAL_XOR: BIN_LOOP(uint8_t, (a != 0) ^ (b != 0)); break;

/* maximum/minimum propagate NaN from either side */
#define BIN_FLOAT_CASES                                                                            \
    switch (op) {                                                                                  \
    case TD_ADD: BIN_LOOP(T, a + b); break;                                                        \
    case TD_SUB: BIN_LOOP(T, a - b); break;                                                        \
    case TD_MUL: BIN_LOOP(T, a *b); break;                                                         \
    case TD_DIV: BIN_LOOP(T, a / b); break;                                                        \
    case TD_POW: BIN_LOOP(T, pow(a, b)); break;                                                    \
    case TD_ATAN2: BIN_LOOP(T, atan2(a, b)); break;                                                \
    case TD_MAXIMUM: BIN_LOOP(T, (a > b || a != a) ? a : b); break;                                \
    case TD_MINIMUM:                                                                               \
        BIN_LOOP(T, (a < b || a != a) ? a : b);                                                    \
        break;                                                                                     \
        BIN_COMPARE_CASES                                                                          \
    default: break;                                                                                \
    }

static int64_t ipow(int64_t base, int64_t e)
{
    if (e < 0) return base == 1 ? 1 : base == -1 ? ((e & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)base;
    for (; e; e >>= 1, b *= b)
        if (e & 1) r *= b;
    return (int64_t)r;
}

static int64_t idiv(int64_t a, int64_t b)
{
    if (b == 0) return 0;
    if (b == -1) return (int64_t)(0 - (uint64_t)a);
    return a / b;
}

#define BIN_INT_CASES                                                                              \
    switch (op) {                                                                                  \
    case TD_ADD: BIN_LOOP(T, (uint64_t)a + (uint64_t)b); break;                                    \
    case TD_SUB: BIN_LOOP(T, (uint64_t)a - (uint64_t)b); break;                                    \
    case TD_MUL: BIN_LOOP(T, (uint64_t)a *(uint64_t)b); break;                                     \
    case TD_DIV: BIN_LOOP(T, idiv(a, b)); break;                                                   \
    case TD_POW: BIN_LOOP(T, ipow(a, b)); break;                                                   \
    case TD_MAXIMUM: BIN_LOOP(T, a > b ? a : b); break;                                            \
    case TD_MINIMUM:                                                                               \
        BIN_LOOP(T, a < b ? a : b);                                                                \
        break;                                                                                     \
        BIN_COMPARE_CASES                                                                          \
    default: break;                                                                                \
    }

#define BIN_BODY(TYPE, CASES)                                                                      \
    typedef TYPE T;                                                                                \
    td_binary_op op = ((const binary_ctx *)ctx)->op;                                               \
    const T *pa = (const T *)p[1], *pb = (const T *)p[2];                                          \
    int64_t so = s[0], sa = s[1], sb = s[2];                                                       \
    CASES

static void binary_f32(void *ctx, char **p, const int64_t *s, int64_t n)
{
    const binary_ctx *c = ctx;
    if (c->stream && s[0] == 1 &&
        td_cpu_stream_binary_f32(c->op, (float *)p[0], (const float *)p[1], s[1],
                                 (const float *)p[2], s[2], n))
        return;
    BIN_BODY(float, BIN_FLOAT_CASES)
}
static void binary_f64(void *ctx, char **p, const int64_t *s, int64_t n)
{
    BIN_BODY(double, BIN_FLOAT_CASES)
}
static void binary_i64(void *ctx, char **p, const int64_t *s, int64_t n)
{
    BIN_BODY(int64_t, BIN_INT_CASES)
}
static void binary_u8(void *ctx, char **p, const int64_t *s, int64_t n)
{
    BIN_BODY(uint8_t, BIN_INT_CASES)
}

/* bfloat16 / float16 +, -, *, / over a dense output and operands that are
 * dense or broadcast scalars: 8 at a time converted, computed and rounded
 * in registers, without lowp.h's buffers (the same bits as that path);
 * other strides go through it */
typedef struct {
    td_cpu_lowp_ctx wrap;
    td_binary_op op;
    td_dtype dt;
    bool stream; /* an output larger than the cache: non-temporal stores */
} lowp_arith_ctx;

TD_CPU_ALWAYS_INLINE __m256 arith8(td_binary_op op, __m256 x, __m256 y)
{
    switch (op) {
    case TD_ADD: return _mm256_add_ps(x, y);
    case TD_SUB: return _mm256_sub_ps(x, y);
    case TD_MUL: return _mm256_mul_ps(x, y);
    default: return _mm256_div_ps(x, y);
    }
}

TD_CPU_ALWAYS_INLINE float arith1(td_binary_op op, float x, float y)
{
    switch (op) {
    case TD_ADD: return x + y;
    case TD_SUB: return x - y;
    case TD_MUL: return x * y;
    default: return x / y;
    }
}

TD_CPU_ALWAYS_INLINE uint16_t arith_at(td_dtype dt, td_binary_op op, const uint16_t *a, int64_t sa,
                                       const uint16_t *b, int64_t sb, int64_t i)
{
    return td_float_to_lowp(
        dt, arith1(op, td_lowp_to_float(dt, a[i * sa]), td_lowp_to_float(dt, b[i * sb])));
}

/* nt: non-temporal stores, from the output's first 16-byte boundary */
TD_CPU_ALWAYS_INLINE void lowp_arith(td_dtype dt, td_binary_op op, bool nt, uint16_t *o,
                                     const uint16_t *a, int64_t sa, const uint16_t *b, int64_t sb,
                                     int64_t n)
{
    __m256 ca = _mm256_set1_ps(td_lowp_to_float(dt, a[0]));
    __m256 cb = _mm256_set1_ps(td_lowp_to_float(dt, b[0]));
    int64_t i = 0;
    if (nt)
        for (; i < n && ((uintptr_t)(o + i) & 15); i++) o[i] = arith_at(dt, op, a, sa, b, sb, i);
    for (; i + 8 <= n; i += 8) {
        __m256 x = sa ? td_cpu_lowp_load8(dt, a + i) : ca,
               y = sb ? td_cpu_lowp_load8(dt, b + i) : cb, r = arith8(op, x, y);
        if (nt)
            _mm_stream_si128((__m128i *)(o + i),
                             dt == TD_BFLOAT16 ? td_cpu_bf16_round8(r)
                                               : _mm256_cvtps_ph(r, _MM_FROUND_TO_NEAREST_INT));
        else
            td_cpu_lowp_store8(dt, o + i, r);
    }
    for (; i < n; i++) o[i] = arith_at(dt, op, a, sa, b, sb, i);
    if (nt) _mm_sfence(); /* before the thread's barrier, as stream.c */
}

#define LOWP_ARITH_CASES(DT)                                                                       \
    switch (c->op) {                                                                               \
    case TD_ADD: lowp_arith(DT, TD_ADD, c->stream, o, a, s[1], b, s[2], n); break;                 \
    case TD_SUB: lowp_arith(DT, TD_SUB, c->stream, o, a, s[1], b, s[2], n); break;                 \
    case TD_MUL: lowp_arith(DT, TD_MUL, c->stream, o, a, s[1], b, s[2], n); break;                 \
    default: lowp_arith(DT, TD_DIV, c->stream, o, a, s[1], b, s[2], n); break;                     \
    }

static void lowp_arith_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    lowp_arith_ctx *c = ctx;
    if (s[0] != 1 || (s[1] != 0 && s[1] != 1) || (s[2] != 0 && s[2] != 1)) {
        td_cpu_lowp_loop(&c->wrap, p, s, n);
        return;
    }
    uint16_t *o = (uint16_t *)p[0];
    const uint16_t *a = (const uint16_t *)p[1], *b = (const uint16_t *)p[2];
    if (c->dt == TD_BFLOAT16)
        LOWP_ARITH_CASES(TD_BFLOAT16)
    else
        LOWP_ARITH_CASES(TD_FLOAT16)
}

/* A float32 op whose output and one operand are dense in one layout and
 * whose other operand is dense in the transposed one (channels-last
 * activations times an NCHW tensor: per image, (HW, C) against (C, HW)).
 * Read along the output, that operand gives one element per cache line
 * (0.6 ms for 1.6M elements, against 0.14 ms in one layout); here bands
 * of its rows are transposed into a small buffer first, a whole line at a
 * time, and the op runs flat on them. Returns false for any other op. */
static bool binary_transposed(const td_cpu_iter *it, binary_ctx c)
{
    enum { BUF = 8192 }; /* floats per band: 32 KB, an L1's worth */
    if (it->elsize[0] != 4 || it->elsize[1] != 4 || it->ndim < 2 || it->ndim > 3) return false;
    int in = it->ndim - 1, mid = it->ndim - 2, t = 0;
    if (it->stride[0][in] != 1) return false;
    for (int k = 1; k <= 2; k++) {
        const int64_t *sk = it->stride[k];
        if (sk[in] == 1) continue;
        if (t || sk[mid] != 1 || sk[in] <= 1) return false;
        t = k;
    }
    int64_t rows = it->shape[mid], cols = it->shape[in];
    if (!t || cols > BUF / 8) return false;
    int64_t band = BUF / cols / 8 * 8, bands = (rows + band - 1) / band;
    int64_t batch = it->ndim == 3 ? it->shape[0] : 1, jobs = batch * bands;
    c.stream = false;
    int nt = td_cpu_threads_for(it->numel, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t q = 0; q < jobs; q++) {
        float buf[BUF];
        int64_t bi = q / bands, r0 = (q % bands) * band, nr = rows - r0 < band ? rows - r0 : band;
        char *p[3];
        for (int k = 0; k < 3; k++)
            p[k] = it->data[k] +
                   4 * ((it->ndim == 3 ? bi * it->stride[k][0] : 0) + r0 * it->stride[k][mid]);
        td_cpu_transpose4((uint32_t *)buf, cols, (const uint32_t *)p[t], it->stride[t][in], nr,
                          cols);
        const int64_t s[3] = {1, 1, 1};
        for (int64_t r = 0; r < nr; r++) {
            char *row[3];
            for (int k = 0; k < 3; k++)
                row[k] = k == t ? (char *)(buf + r * cols) : p[k] + 4 * r * it->stride[k][mid];
            binary_f32(&c, row, s, cols);
        }
    }
    return true;
}

void td_cpu_binary(td_binary_op op, td_tensor *out, const td_tensor *a, const td_tensor *b)
{
    static const td_cpu_loop loops[TD_NDTYPES] = {binary_f32, binary_f64, binary_i64, binary_u8};
    const td_tensor *ts[3] = {out, a, b};
    td_cpu_iter it;
    td_cpu_iter_init_any_order(&it, 3, ts);
    int64_t grain = op == TD_POW || op == TD_ATAN2 ? TD_CPU_GRAIN_COSTLY : TD_CPU_GRAIN;
    if (td_dtype_is_lowp(a->dtype)) {
        binary_ctx c = {op, false};
        td_cpu_lowp_ctx w = td_cpu_lowp_wrap(binary_f32, &c, 3, ts);
        if (op == TD_ADD || op == TD_SUB || op == TD_MUL || op == TD_DIV) {
            lowp_arith_ctx f = {w, op, a->dtype, (size_t)it.numel * 2 >= td_cpu_stream_min_bytes()};
            td_cpu_iter_run(&it, grain, lowp_arith_loop, &f);
            return;
        }
        td_cpu_iter_run(&it, grain, td_cpu_lowp_loop, &w);
        return;
    }
    if (out->dtype == TD_FLOAT32 && a->dtype == TD_FLOAT32 &&
        binary_transposed(&it, (binary_ctx){op, false}))
        return;
    binary_ctx c = {op, out->dtype == TD_FLOAT32 &&
                            (size_t)it.numel * sizeof(float) >= td_cpu_stream_min_bytes()};
    td_cpu_iter_run(&it, grain, loops[a->dtype], &c);
}

/* ---- clamp ----------------------------------------------------------- */

typedef struct {
    td_dtype dt;
    double lo, hi;
} clamp_ctx;

/* NaN fails both tests and so stays NaN */
#define CLAMP_LOOP(lo, hi)                                                                         \
    do {                                                                                           \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T v = a[i * sa];                                                                       \
            v = v < lo ? lo : v;                                                                   \
            o[i * so] = v > hi ? hi : v;                                                           \
        }                                                                                          \
    } while (0)

static int64_t int_bound(double v, int64_t min, int64_t max)
{
    if (v != v) return min;
    if (v <= (double)min) return min;
    if (v >= (double)max) return max;
    return (int64_t)v;
}

static void clamp_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    const clamp_ctx *c = ctx;
    int64_t so = s[0], sa = s[1];
    TD_CPU_DISPATCH(c->dt, {
        T *o = (T *)p[0];
        const T *a = (const T *)p[1];
        if ((T)0.5 != 0) {
            T lo = (T)c->lo, hi = (T)c->hi;
            CLAMP_LOOP(lo, hi);
        } else {
            int64_t tmin = (T)-1 < 0 ? INT64_MIN : 0, tmax = (T)-1 < 0 ? INT64_MAX : 255;
            /* integers between the bounds are those >= ceil(lo) and <= floor(hi) */
            T lo = (T)int_bound(ceil(c->lo), tmin, tmax);
            T hi = (T)int_bound(c->hi != c->hi ? (double)tmax : floor(c->hi), tmin, tmax);
            CLAMP_LOOP(lo, hi);
        }
    })
}

void td_cpu_clamp(td_tensor *out, const td_tensor *x, double lo, double hi)
{
    const td_tensor *ts[2] = {out, x};
    td_cpu_iter it;
    td_cpu_iter_init_any_order(&it, 2, ts);
    clamp_ctx c = {x->dtype, lo, hi};
    if (td_dtype_is_lowp(x->dtype)) {
        c.dt = TD_FLOAT32;
        td_cpu_lowp_ctx w = td_cpu_lowp_wrap(clamp_loop, &c, 2, ts);
        td_cpu_iter_run(&it, TD_CPU_GRAIN, td_cpu_lowp_loop, &w);
        return;
    }
    td_cpu_iter_run(&it, TD_CPU_GRAIN, clamp_loop, &c);
}

/* ---- where ----------------------------------------------------------- */

/* moves bits only, so the element size is all that matters */
#define WHERE_LOOP(W)                                                                              \
    do {                                                                                           \
        W *o = (W *)p[0];                                                                          \
        const uint8_t *c = (const uint8_t *)p[1];                                                  \
        const W *a = (const W *)p[2], *b = (const W *)p[3];                                        \
        for (int64_t i = 0; i < n; i++) o[i * s[0]] = c[i * s[1]] ? a[i * s[2]] : b[i * s[3]];     \
    } while (0)

static void where_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    switch (*(const size_t *)ctx) {
    case 1: WHERE_LOOP(uint8_t); break;
    case 2: WHERE_LOOP(uint16_t); break;
    case 4: WHERE_LOOP(uint32_t); break;
    default: WHERE_LOOP(uint64_t); break;
    }
}

void td_cpu_where(td_tensor *out, const td_tensor *cond, const td_tensor *a, const td_tensor *b)
{
    const td_tensor *ts[4] = {out, cond, a, b};
    td_cpu_iter it;
    td_cpu_iter_init_any_order(&it, 4, ts);
    size_t es = td_cpu_elsize(out->dtype);
    td_cpu_iter_run(&it, TD_CPU_GRAIN, where_loop, &es);
}

/* ---- nan_to_num ------------------------------------------------------ */

typedef struct {
    td_dtype dt;
    double nan, posinf, neginf;
} nan_to_num_ctx;

static void nan_to_num_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    const nan_to_num_ctx *c = ctx;
    TD_CPU_FLOAT_DISPATCH(c->dt, {
        T *o = (T *)p[0];
        const T *a = (const T *)p[1];
        T nan = (T)c->nan, pos = (T)c->posinf, neg = (T)c->neginf;
        for (int64_t i = 0; i < n; i++) {
            T v = a[i * s[1]];
            o[i * s[0]] = v != v ? nan : v == (T)INFINITY ? pos : v == (T)-INFINITY ? neg : v;
        }
    })
}

void td_cpu_nan_to_num(td_tensor *out, const td_tensor *x, double nan, double posinf, double neginf)
{
    const td_tensor *ts[2] = {out, x};
    td_cpu_iter it;
    td_cpu_iter_init_any_order(&it, 2, ts);
    nan_to_num_ctx c = {x->dtype, nan, posinf, neginf};
    if (td_dtype_is_lowp(x->dtype)) {
        c.dt = TD_FLOAT32;
        td_cpu_lowp_ctx w = td_cpu_lowp_wrap(nan_to_num_loop, &c, 2, ts);
        td_cpu_iter_run(&it, TD_CPU_GRAIN, td_cpu_lowp_loop, &w);
        return;
    }
    td_cpu_iter_run(&it, TD_CPU_GRAIN, nan_to_num_loop, &c);
}
