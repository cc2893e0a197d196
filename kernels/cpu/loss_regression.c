/* CPU kernels of the regression losses: mse, l1, smooth_l1, huber, kl_div,
 * poisson_nll and gaussian_nll, forward and closed-form backward.
 *
 * Each is a row loop handed to the strided iterator (contiguous operands
 * coalesce into one flat row, broadcast ones keep stride 0). Every output
 * element depends on its own inputs only, so the split over threads never
 * changes a bit; the reductions happen afterwards in a fixed order
 * (td_loss_reduce_raw).
 *
 * The loops and the forward and backward bodies stay macros, as in
 * elementwise.c: they splice each loss's expression into its own loop, for
 * both float types from one table, which no C function can do without a
 * call per element (no vectorisation) or a copy of the table per type. */
#include "cpu.h"
#include "iter.h"

#include <tgmath.h>

/* float32 exp is ours (vectorises); float64 keeps libm's */
#define EXPV(x) _Generic((x), float : td_cpu_expf, default : exp)(x)
#define SIGN(x) ((T)(((x) > 0) - ((x) < 0)))
#define LOG_2PI 1.83787706640934548356

typedef struct {
    const td_regression_args *a;
    td_regression_wrt wrt;
    int64_t count;
} reg_ctx;

/* ---- forward ----------------------------------------------------------- */

/* o = EXPR(x, y) over a row; the all-contiguous row is the fast path */
#define FWD_LOOP(EXPR)                                                                             \
    do {                                                                                           \
        if (so == 1 && sx == 1 && sy == 1)                                                         \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = px[i], y = py[i];                                                            \
                (void)x, (void)y;                                                                  \
                o[i] = (EXPR);                                                                     \
            }                                                                                      \
        else                                                                                       \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = px[i * sx], y = py[i * sy];                                                  \
                (void)x, (void)y;                                                                  \
                o[i * so] = (EXPR);                                                                \
            }                                                                                      \
    } while (0)

/* xlogy(y, y): 0 at y == 0, NaN for y < 0, as PyTorch 1.13's kl_div */
#define XLOGY_SELF(y) ((y) == 0 ? (T)0 : (y)*log(y))
/* poisson's Stirling term, only where y > 1 */
#define STIRLING(y) (full && (y) > 1 ? (y)*log(y) - (y) + (T)0.5 * log((T)(2 * M_PI) * (y)) : (T)0)

#define FWD_BODY(T_)                                                                               \
    typedef T_ T;                                                                                  \
    const td_regression_args *a = ((const reg_ctx *)ctx)->a;                                       \
    T *o = (T *)p[0];                                                                              \
    const T *px = (const T *)p[1], *py = (const T *)p[2];                                          \
    int64_t so = s[0], sx = s[1], sy = s[2];                                                       \
    const T prm = (T)a->param;                                                                     \
    const bool full = a->full;                                                                     \
    switch (a->op) {                                                                               \
    case TD_REG_MSE: FWD_LOOP((x - y) * (x - y)); break;                                           \
    case TD_REG_L1: FWD_LOOP(fabs(x - y)); break;                                                  \
    case TD_REG_SMOOTH_L1:                                                                         \
        FWD_LOOP(fabs(x - y) < prm ? (T)0.5 * (x - y) * (x - y) / prm                              \
                                   : fabs(x - y) - (T)0.5 * prm);                                  \
        break;                                                                                     \
    case TD_REG_HUBER:                                                                             \
        FWD_LOOP(fabs(x - y) < prm ? (T)0.5 * (x - y) * (x - y)                                    \
                                   : prm * (fabs(x - y) - (T)0.5 * prm));                          \
        break;                                                                                     \
    case TD_REG_KL_DIV: FWD_LOOP(XLOGY_SELF(y) - y * x); break;                                    \
    case TD_REG_KL_DIV_LOG: FWD_LOOP(EXPV(y) * (y - x)); break;                                    \
    case TD_REG_POISSON_LOG: FWD_LOOP(EXPV(x) - y * x + STIRLING(y)); break;                       \
    case TD_REG_POISSON: FWD_LOOP(x - y * log(x + prm) + STIRLING(y)); break;                      \
    case TD_REG_GAUSSIAN: {                                                                        \
        const T *pv = (const T *)p[3];                                                             \
        int64_t sv = s[3];                                                                         \
        const T c = full ? (T)(0.5 * LOG_2PI) : (T)0;                                              \
        for (int64_t i = 0; i < n; i++) {                                                          \
            T d = px[i * sx] - py[i * sy], v = pv[i * sv];                                         \
            v = v < prm ? prm : v; /* NaN stays NaN */                                             \
            T l = (T)0.5 * (log(v) + d * d / v);                                                   \
            o[i * so] = full ? l + c : l;                                                          \
        }                                                                                          \
        break;                                                                                     \
    }                                                                                              \
    }

static void fwd_f32(void *ctx, char **p, const int64_t *s, int64_t n) { FWD_BODY(float) }
static void fwd_f64(void *ctx, char **p, const int64_t *s, int64_t n) { FWD_BODY(double) }

static int64_t grain_of(td_regression_op op)
{
    return op <= TD_REG_HUBER ? TD_CPU_GRAIN : TD_CPU_GRAIN_COSTLY;
}

static void reg_forward(const td_regression_args *a, td_tensor *out, const td_tensor *x,
                        const td_tensor *y, const td_tensor *v)
{
    const td_tensor *ts[4] = {out, x, y, v};
    td_cpu_iter it;
    td_cpu_iter_init(&it, v ? 4 : 3, ts);
    reg_ctx c = {a, TD_REG_WRT_INPUT, 0};
    td_cpu_iter_run(&it, grain_of(a->op), out->dtype == TD_FLOAT32 ? fwd_f32 : fwd_f64, &c);
}

/* ---- backward ---------------------------------------------------------- */

/* o = gs * EXPR(x, y), gs = scale * g; fast paths: contiguous rows with g
 * contiguous or one broadcast number (the mean and sum reductions) */
#define BWD_LOOP(EXPR)                                                                             \
    do {                                                                                           \
        if (so == 1 && sx == 1 && sy == 1 && sg == 0) {                                            \
            const T gs = scale * pg[0];                                                            \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = px[i], y = py[i];                                                            \
                (void)x, (void)y;                                                                  \
                o[i] = gs * (EXPR);                                                                \
            }                                                                                      \
        } else if (so == 1 && sx == 1 && sy == 1 && sg == 1) {                                     \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = px[i], y = py[i], gs = scale * pg[i];                                        \
                (void)x, (void)y;                                                                  \
                o[i] = gs * (EXPR);                                                                \
            }                                                                                      \
        } else {                                                                                   \
            for (int64_t i = 0; i < n; i++) {                                                      \
                T x = px[i * sx], y = py[i * sy], gs = scale * pg[i * sg];                         \
                (void)x, (void)y;                                                                  \
                o[i * so] = gs * (EXPR);                                                           \
            }                                                                                      \
        }                                                                                          \
    } while (0)

#define SL1_GRAD(d) ((d) <= -prm ? (T)-1 : (d) >= prm ? (T)1 : (d) / prm)
/* d(stirling)/dy where y > 1 */
#define STIRLING_GRAD(y) (full && (y) > 1 ? log(y) + (T)0.5 / (y) : (T)0)
/* gaussian: x is d = input - target, y is var; v = max(var, eps) */
#define CLAMPV(y) ((y) < prm ? prm : (y))

#define BWD_BODY(T_)                                                                               \
    typedef T_ T;                                                                                  \
    const reg_ctx *c = ctx;                                                                        \
    const td_regression_args *a = c->a;                                                            \
    T *o = (T *)p[0];                                                                              \
    const T *pg = (const T *)p[1], *px = (const T *)p[2], *py = (const T *)p[3];                   \
    int64_t so = s[0], sg = s[1], sx = s[2], sy = s[3];                                            \
    const T prm = (T)a->param, scale = (T)a->scale;                                                \
    const bool full = a->full, tgt = c->wrt == TD_REG_WRT_TARGET;                                  \
    const T sgn = tgt ? (T)-1 : (T)1;                                                              \
    switch (a->op) {                                                                               \
    case TD_REG_MSE: BWD_LOOP(sgn *(T)2 * (x - y)); break;                                         \
    case TD_REG_L1: BWD_LOOP(sgn *SIGN(x - y)); break;                                             \
    case TD_REG_SMOOTH_L1:                                                                         \
        /* PyTorch's branch order, and for the target its swapped arguments:                       \
         * with beta = 0 both gradients are -1 at d = 0 */                                         \
        BWD_LOOP(SL1_GRAD(tgt ? y - x : x - y));                                                   \
        break;                                                                                     \
    case TD_REG_HUBER: BWD_LOOP(sgn *(fabs(x - y) < prm ? (x - y) : prm * SIGN(x - y))); break;    \
    case TD_REG_KL_DIV: /* d/dy: xlogy(y != 0, y) + y / y - x, NaN at y = 0 as PyTorch */          \
        if (tgt)                                                                                   \
            BWD_LOOP((y != 0 ? log(y) : (T)0) + y / y - x);                                        \
        else                                                                                       \
            BWD_LOOP(-y);                                                                          \
        break;                                                                                     \
    case TD_REG_KL_DIV_LOG:                                                                        \
        if (tgt)                                                                                   \
            BWD_LOOP(EXPV(y) * (y - x) + EXPV(y));                                                 \
        else                                                                                       \
            BWD_LOOP(-EXPV(y));                                                                    \
        break;                                                                                     \
    case TD_REG_POISSON_LOG:                                                                       \
        if (tgt)                                                                                   \
            BWD_LOOP(STIRLING_GRAD(y) - x);                                                        \
        else                                                                                       \
            BWD_LOOP(EXPV(x) - y);                                                                 \
        break;                                                                                     \
    case TD_REG_POISSON:                                                                           \
        if (tgt)                                                                                   \
            BWD_LOOP(STIRLING_GRAD(y) - log(x + prm));                                             \
        else                                                                                       \
            BWD_LOOP((T)1 - y / (x + prm));                                                        \
        break;                                                                                     \
    case TD_REG_GAUSSIAN:                                                                          \
        if (c->wrt == TD_REG_WRT_VAR)                                                              \
            BWD_LOOP((T)0.5 * ((T)1 / CLAMPV(y) - x * x / CLAMPV(y) / CLAMPV(y)));                 \
        else                                                                                       \
            BWD_LOOP(sgn *x / CLAMPV(y));                                                          \
        break;                                                                                     \
    }

static void bwd_f32(void *ctx, char **p, const int64_t *s, int64_t n) { BWD_BODY(float) }
static void bwd_f64(void *ctx, char **p, const int64_t *s, int64_t n) { BWD_BODY(double) }

static void reg_backward(const td_regression_args *a, td_regression_wrt wrt, td_tensor *gin,
                         const td_tensor *g, const td_tensor *x, const td_tensor *y)
{
    const td_tensor *ts[4] = {gin, g, x, y};
    td_cpu_iter it;
    td_cpu_iter_init(&it, 4, ts);
    reg_ctx c = {a, wrt, 0};
    td_cpu_iter_run(&it, grain_of(a->op), gin->dtype == TD_FLOAT32 ? bwd_f32 : bwd_f64, &c);
}

/* ---- checks ------------------------------------------------------------ */

typedef struct {
    double bound;
    int64_t count;
} below_ctx;

#define BELOW_BODY(T)                                                                              \
    below_ctx *c = ctx;                                                                            \
    const T *px = (const T *)p[0];                                                                 \
    int64_t k = 0;                                                                                 \
    for (int64_t i = 0; i < n; i++) k += px[i * s[0]] < (T)c->bound;                               \
    c->count += k;

static void below_f32(void *ctx, char **p, const int64_t *s, int64_t n) { BELOW_BODY(float) }
static void below_f64(void *ctx, char **p, const int64_t *s, int64_t n) { BELOW_BODY(double) }

static int64_t reg_count_below(const td_tensor *x, double bound)
{
    const td_tensor *ts[1] = {x};
    td_cpu_iter it;
    td_cpu_iter_init(&it, 1, ts);
    below_ctx c = {bound, 0};
    td_cpu_iter_run(&it, 0, x->dtype == TD_FLOAT32 ? below_f32 : below_f64, &c);
    return c.count;
}

const struct td_regression_loss_kernels td_cpu_regression_loss = {
    .forward = reg_forward,
    .backward = reg_backward,
    .count_below = reg_count_below,
};
