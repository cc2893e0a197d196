/* CPU kernels of the softmax losses: cross_entropy, nll_loss, focal_loss,
 * poly1_cross_entropy.
 *
 * Fused per row, as llm.c's classifier: the forward takes the row max and
 * the sum of exponentials (two passes over a row that sits in cache), so
 * logsumexp is exact for any magnitude and no softmax is stored; the
 * backward recomputes p = exp((x - m) - ls) from the saved per-row max m
 * and log-sum ls (kept apart, as log_softmax does, so float32 rows of
 * +-1e4 keep their precision) and writes the closed-form gradient in one
 * pass. Rows go to OpenMP threads;
 * each row's arithmetic is the same at any thread count, so the per-row
 * buffers (and the runtime's fixed-order sum of them) are bitwise stable.
 *
 * The row code takes the class stride `cs` (1 for (N, C), inner for
 * K-dim); it is inlined twice, once with the literal 1, so the common case
 * vectorises around our expf. */
#include "cpu.h"
#include "iter.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* ---- vectorised row loops, one per float type --------------------------- */

/* One function per type rather than one macro for both, so that a debugger
 * steps through them; the pair of each sits together and must stay in step:
 * the same arithmetic, float32 with our expf (td_cpu_expf_nonpos for
 * arguments <= 0 or NaN), float64 with libm's exp. PICK below selects by the
 * pointer's type. */

TD_CPU_ALWAYS_INLINE float rmax_f(const float *x, int64_t c, int64_t cs)
{
    if (cs == 1) return td_cpu_row_max_f32(x, c);
    float m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < c; j++) m = x[j * cs] > m ? x[j * cs] : m;
    return m;
}

TD_CPU_ALWAYS_INLINE double rmax_d(const double *x, int64_t c, int64_t cs)
{
    double m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < c; j++) m = x[j * cs] > m ? x[j * cs] : m;
    return m;
}

/* sum_j exp(x_j - m) */
TD_CPU_ALWAYS_INLINE float rsumexp_f(const float *x, int64_t c, int64_t cs, float m)
{
    float s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < c; j++) s += td_cpu_expf_nonpos(x[j * cs] - m);
    return s;
}

TD_CPU_ALWAYS_INLINE double rsumexp_d(const double *x, int64_t c, int64_t cs, double m)
{
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < c; j++) s += exp(x[j * cs] - m);
    return s;
}

/* the same, and *noty = the sum over j != y (no cancellation) */
TD_CPU_ALWAYS_INLINE float rsumexp2_f(const float *x, int64_t c, int64_t cs, float m, int64_t y,
                                      float *noty)
{
    float s = 0, s2 = 0;
#pragma omp simd reduction(+ : s, s2)
    for (int64_t j = 0; j < c; j++) {
        float e = td_cpu_expf_nonpos(x[j * cs] - m);
        s += e;
        s2 += j == y ? 0.0f : e;
    }
    *noty = s2;
    return s;
}

TD_CPU_ALWAYS_INLINE double rsumexp2_d(const double *x, int64_t c, int64_t cs, double m, int64_t y,
                                       double *noty)
{
    double s = 0, s2 = 0;
#pragma omp simd reduction(+ : s, s2)
    for (int64_t j = 0; j < c; j++) {
        double e = exp(x[j * cs] - m);
        s += e;
        s2 += j == y ? 0.0 : e;
    }
    *noty = s2;
    return s;
}

/* sum_j w_j (lse - x_j) with lse - x_j = (m - x_j) + ls, w NULL = all 1 */
TD_CPU_ALWAYS_INLINE float rsmooth_f(const float *x, const float *w, int64_t c, int64_t cs, float m,
                                     float ls)
{
    float s = 0;
    if (w) {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < c; j++) s += w[j] * ((m - x[j * cs]) + ls);
    } else {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < c; j++) s += (m - x[j * cs]) + ls;
    }
    return s;
}

TD_CPU_ALWAYS_INLINE double rsmooth_d(const double *x, const double *w, int64_t c, int64_t cs,
                                      double m, double ls)
{
    double s = 0;
    if (w) {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < c; j++) s += w[j] * ((m - x[j * cs]) + ls);
    } else {
#pragma omp simd reduction(+ : s)
        for (int64_t j = 0; j < c; j++) s += (m - x[j * cs]) + ls;
    }
    return s;
}

/* t'_j = k1 t_j + k0: returns sum_j w_j t'_j (lse - x_j), *tw = sum_j w_j t'_j */
TD_CPU_ALWAYS_INLINE float rprob_f(const float *x, const float *t, const float *w, int64_t c,
                                   int64_t cs, float m, float ls, float k1, float k0, float *tw)
{
    float s = 0, s2 = 0;
    if (w) {
#pragma omp simd reduction(+ : s, s2)
        for (int64_t j = 0; j < c; j++) {
            float wt = w[j] * (k1 * t[j * cs] + k0);
            s2 += wt;
            s += wt * ((m - x[j * cs]) + ls);
        }
    } else {
#pragma omp simd reduction(+ : s, s2)
        for (int64_t j = 0; j < c; j++) {
            float wt = k1 * t[j * cs] + k0;
            s2 += wt;
            s += wt * ((m - x[j * cs]) + ls);
        }
    }
    *tw = s2;
    return s;
}

TD_CPU_ALWAYS_INLINE double rprob_d(const double *x, const double *t, const double *w, int64_t c,
                                    int64_t cs, double m, double ls, double k1, double k0,
                                    double *tw)
{
    double s = 0, s2 = 0;
    if (w) {
#pragma omp simd reduction(+ : s, s2)
        for (int64_t j = 0; j < c; j++) {
            double wt = w[j] * (k1 * t[j * cs] + k0);
            s2 += wt;
            s += wt * ((m - x[j * cs]) + ls);
        }
    } else {
#pragma omp simd reduction(+ : s, s2)
        for (int64_t j = 0; j < c; j++) {
            double wt = k1 * t[j * cs] + k0;
            s2 += wt;
            s += wt * ((m - x[j * cs]) + ls);
        }
    }
    *tw = s2;
    return s;
}

/* g_j = A exp((x_j - m) - ls) - B w_j (w NULL: - B); any: the argument may be > 0 */
TD_CPU_ALWAYS_INLINE void rgrad_f(float *g, const float *x, const float *w, int64_t c, int64_t cs,
                                  float m, float ls, float A, float B, int any)
{
    if (any) {
#pragma omp simd
        for (int64_t j = 0; j < c; j++) g[j * cs] = A * td_cpu_expf((x[j * cs] - m) - ls) - B;
    } else if (w) {
#pragma omp simd
        for (int64_t j = 0; j < c; j++)
            g[j * cs] = A * td_cpu_expf_nonpos((x[j * cs] - m) - ls) - B * w[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < c; j++)
            g[j * cs] = A * td_cpu_expf_nonpos((x[j * cs] - m) - ls) - B;
    }
}

TD_CPU_ALWAYS_INLINE void rgrad_d(double *g, const double *x, const double *w, int64_t c,
                                  int64_t cs, double m, double ls, double A, double B, int any)
{
    if (any) {
#pragma omp simd
        for (int64_t j = 0; j < c; j++) g[j * cs] = A * exp((x[j * cs] - m) - ls) - B;
    } else if (w) {
#pragma omp simd
        for (int64_t j = 0; j < c; j++) g[j * cs] = A * exp((x[j * cs] - m) - ls) - B * w[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < c; j++) g[j * cs] = A * exp((x[j * cs] - m) - ls) - B;
    }
}

/* prob targets: g_j = gr (p_j tw - w_j t'_j); gt_j = gr k1 w_j (lse - x_j) */
TD_CPU_ALWAYS_INLINE void rgrad_prob_f(float *g, float *gt, const float *x, const float *t,
                                       const float *w, int64_t c, int64_t cs, float m, float ls,
                                       float k1, float k0, float tw, float gr)
{
#pragma omp simd
    for (int64_t j = 0; j < c; j++) {
        float wj = w ? w[j] : 1.0f;
        g[j * cs] =
            gr * (td_cpu_expf_nonpos((x[j * cs] - m) - ls) * tw - wj * (k1 * t[j * cs] + k0));
    }
    if (gt) {
        for (int64_t j = 0; j < c; j++)
            gt[j * cs] = gr * k1 * (w ? w[j] : 1.0f) * ((m - x[j * cs]) + ls);
    }
}

TD_CPU_ALWAYS_INLINE void rgrad_prob_d(double *g, double *gt, const double *x, const double *t,
                                       const double *w, int64_t c, int64_t cs, double m, double ls,
                                       double k1, double k0, double tw, double gr)
{
#pragma omp simd
    for (int64_t j = 0; j < c; j++) {
        double wj = w ? w[j] : 1.0;
        g[j * cs] = gr * (exp((x[j * cs] - m) - ls) * tw - wj * (k1 * t[j * cs] + k0));
    }
    if (gt) {
        for (int64_t j = 0; j < c; j++)
            gt[j * cs] = gr * k1 * (w ? w[j] : 1.0) * ((m - x[j * cs]) + ls);
    }
}

TD_CPU_ALWAYS_INLINE void rzero_f(float *g, int64_t c, int64_t cs)
{
    for (int64_t j = 0; j < c; j++) g[j * cs] = 0;
}

TD_CPU_ALWAYS_INLINE void rzero_d(double *g, int64_t c, int64_t cs)
{
    for (int64_t j = 0; j < c; j++) g[j * cs] = 0;
}

#define PICK(x, name)                                                                              \
    _Generic((x), float * : name##_f, const float * : name##_f, default : name##_d)
#define RMAX(x, ...)       PICK(x, rmax)(x, __VA_ARGS__)
#define RSUMEXP(x, ...)    PICK(x, rsumexp)(x, __VA_ARGS__)
#define RSUMEXP2(x, ...)   PICK(x, rsumexp2)(x, __VA_ARGS__)
#define RSMOOTH(x, ...)    PICK(x, rsmooth)(x, __VA_ARGS__)
#define RPROB(x, ...)      PICK(x, rprob)(x, __VA_ARGS__)
#define RGRAD(g, ...)      PICK(g, rgrad)(g, __VA_ARGS__)
#define RGRAD_PROB(g, ...) PICK(g, rgrad_prob)(g, __VA_ARGS__)
#define RZERO(g, ...)      PICK(g, rzero)(g, __VA_ARGS__)

/* ---- target check -------------------------------------------------------- */

static int64_t check_targets(const td_smx_args *a, int64_t *count, double *wsum)
{
    int64_t rows = a->n * a->inner, cnt = 0;
    double ws = 0;
    const int64_t *t = a->target;
    for (int64_t r = 0; r < rows; r++) {
        int64_t y = t[r];
        if (y == a->ignore_index) continue;
        if (y < 0 || y >= a->c) return r;
        cnt++;
        if (a->weight)
            ws += a->dtype == TD_FLOAT32 ? ((const float *)a->weight)[y]
                                         : ((const double *)a->weight)[y];
    }
    *count = cnt;
    *wsum = a->weight ? ws : (double)cnt;
    return -1;
}

/* ---- forward ------------------------------------------------------------- */

/* A focal row's loss *l and closed-form dloss/dx_y *gg, and ls2 = the log
 * of s2, from the target's logit xy, the row max m, the sums of
 * exp(x_j - m) over all classes (s) and all but the target (s2), and the
 * target's alpha */
static void focal_terms(const td_smx_args *a, double xy, double m, double s, double s2, double al,
                        double *l, double *gg, double *ls2)
{
    double ls = log(s);
    *ls2 = log(s2);
    /* log p_y; when y holds the max, s = 1 + s2 and log1p keeps p_y ~ 1 exact */
    double logp = xy == m ? -log1p(s2) : (xy - m) - ls;
    double l1mp = *ls2 - ls; /* log(1 - p_y) without cancellation; -inf when p_y rounds to 1 */
    double g = a->gamma;
    double pw = g == 0 ? 1.0 : exp(g * l1mp);
    double p = exp(logp);
    *l = -al * pw * logp;
    *gg = al * pw * (g * p * logp - exp(l1mp));
    if (TD_SMX_IS_POLY(a->kind)) { /* + epsilon (1 - p)^(g + 1) */
        *l += a->epsilon * pw * exp(l1mp);
        *gg -= a->epsilon * (g + 1) * p * pw * exp(l1mp);
    }
}

TD_CPU_ALWAYS_INLINE void fwd_row(const td_smx_args *a, int64_t r, int64_t cs, void *loss,
                                  void *aux0, void *aux1)
{
    int64_t c = a->c, i = r / a->inner, k = r - i * a->inner;
    int64_t base = i * c * a->inner + k;
    TD_CPU_FLOAT_DISPATCH(a->dtype, {
        const T *x = (const T *)a->x + base;
        const T *w = (const T *)a->weight;
        T *L = (T *)loss + r;
        T *st = aux0 ? (T *)aux0 + 2 * r : NULL; /* (row max, log of the sum) */
        if (a->prob) {                           /* CE with class probabilities */
            const T *t = (const T *)a->prob + base;
            T m = RMAX(x, c, cs);
            T ls = (T)log((double)RSUMEXP(x, c, cs, m));
            T tw;
            double e = a->smoothing;
            *L = RPROB(x, t, w, c, cs, m, ls, (T)(1 - e), (T)(e / (double)c), &tw);
            st[0] = m, st[1] = ls;
            ((T *)aux1)[r] = tw;
            return;
        }
        int64_t y = a->target[r];
        if (y == a->ignore_index) {
            *L = 0;
            if (st) st[0] = st[1] = 0;
            if (aux1) ((T *)aux1)[r] = 0;
            return;
        }
        double wy = w ? (double)w[y] : 1.0;
        double xy = (double)x[y * cs];
        if (a->kind == TD_SMX_NLL) {
            *L = (T)(-wy * xy);
            return;
        }
        T m = RMAX(x, c, cs);
        if (TD_SMX_IS_FOCAL(a->kind)) {
            T s2;
            T s = RSUMEXP2(x, c, cs, m, y, &s2);
            double al = a->alpha ? (double)((const T *)a->alpha)[y] : a->alpha_scalar;
            double l, gg, ls2;
            focal_terms(a, xy, (double)m, (double)s, (double)s2, al, &l, &gg, &ls2);
            *L = (T)l;
            st[0] = m, st[1] = (T)ls2; /* q_j = p_j / (1 - p_y) = exp((x_j - m) - ls2) */
            ((T *)aux1)[r] = (T)gg;
            return;
        }
        double ls = log((double)RSUMEXP(x, c, cs, m));
        double nlp = ((double)m - xy) + ls; /* -log p_y, as log_softmax forms it */
        double e = a->smoothing;
        double l = (1 - e) * wy * nlp;
        if (e > 0) l += e / (double)c * (double)RSMOOTH(x, w, c, cs, m, (T)ls);
        if (TD_SMX_IS_POLY(a->kind)) {
            double pt = (1 - e) * exp(-nlp) + e / (double)c;
            l += a->epsilon * wy * (1 - pt);
        }
        *L = (T)l;
        st[0] = m, st[1] = (T)ls;
    })
}

static void fwd_rows(const td_smx_args *a, int64_t r0, int64_t r1, void *loss, void *aux0,
                     void *aux1)
{
    if (a->inner == 1)
        for (int64_t r = r0; r < r1; r++) fwd_row(a, r, 1, loss, aux0, aux1);
    else
        for (int64_t r = r0; r < r1; r++) fwd_row(a, r, a->inner, loss, aux0, aux1);
}

static void forward(const td_smx_args *a, void *loss, void *aux0, void *aux1)
{
    int64_t rows = a->n * a->inner;
    if (rows == 0) return;
    int64_t work = a->kind == TD_SMX_NLL ? rows : rows * a->c;
    int nt = td_cpu_threads_for(work, TD_CPU_GRAIN_COSTLY);
    if (nt <= 1) {
        fwd_rows(a, 0, rows, loss, aux0, aux1);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int64_t r0 = rows * t / n, r1 = rows * (t + 1) / n;
        fwd_rows(a, r0, r1, loss, aux0, aux1);
    }
}

/* ---- backward ------------------------------------------------------------ */

TD_CPU_ALWAYS_INLINE void bwd_row(const td_smx_args *a, int64_t r, int64_t cs, double wtotal,
                                  const void *aux0, const void *aux1, const void *gy, double scale,
                                  void *gx, void *gtp)
{
    int64_t c = a->c, i = r / a->inner, k = r - i * a->inner;
    int64_t base = i * c * a->inner + k;
    TD_CPU_FLOAT_DISPATCH(a->dtype, {
        const T *x = a->x ? (const T *)a->x + base : NULL;
        const T *w = (const T *)a->weight;
        const T *st = aux0 ? (const T *)aux0 + 2 * r : NULL;
        T *g = (T *)gx + base;
        double gr = scale * (gy ? (double)((const T *)gy)[r] : 1.0);
        if (a->prob) {
            const T *t = (const T *)a->prob + base;
            double e = a->smoothing;
            RGRAD_PROB(g, gtp ? (T *)gtp + base : NULL, x, t, w, c, cs, st[0], st[1], (T)(1 - e),
                       (T)(e / (double)c), ((const T *)aux1)[r], (T)gr);
            return;
        }
        int64_t y = a->target[r];
        if (y == a->ignore_index) {
            RZERO(g, c, cs);
            return;
        }
        double wy = w ? (double)w[y] : 1.0;
        if (a->kind == TD_SMX_NLL) {
            RZERO(g, c, cs);
            g[y * cs] = (T)(-gr * wy);
            return;
        }
        if (TD_SMX_IS_FOCAL(a->kind)) {
            double gg = gr * (double)((const T *)aux1)[r];
            if (st[1] == -INFINITY)
                RZERO(g, c, cs); /* every p_j, j != y, is 0: q_j is bounded, g is 0 */
            else
                RGRAD(g, x, NULL, c, cs, st[0], st[1], (T)-gg, (T)0, 1);
            g[y * cs] = (T)gg;
            return;
        }
        double e = a->smoothing;
        double A = (1 - e) * wy + e * wtotal / (double)c, D = (1 - e) * wy;
        if (TD_SMX_IS_POLY(a->kind)) {
            double py = exp(((double)x[y * cs] - (double)st[0]) - (double)st[1]);
            double bp = a->epsilon * wy * (1 - e) * py;
            A += bp;
            D += bp;
        }
        RGRAD(g, x, w, c, cs, st[0], st[1], (T)(gr * A), (T)(gr * e / (double)c), 0);
        g[y * cs] = (T)((double)g[y * cs] - gr * D);
    })
}

static void bwd_rows(const td_smx_args *a, int64_t r0, int64_t r1, double wtotal, const void *aux0,
                     const void *aux1, const void *gy, double scale, void *gx, void *gt)
{
    if (a->inner == 1)
        for (int64_t r = r0; r < r1; r++) bwd_row(a, r, 1, wtotal, aux0, aux1, gy, scale, gx, gt);
    else
        for (int64_t r = r0; r < r1; r++)
            bwd_row(a, r, a->inner, wtotal, aux0, aux1, gy, scale, gx, gt);
}

/* sum_j w_j, or C without weights */
static double class_weight_total(const td_smx_args *a)
{
    if (!a->weight) return (double)a->c;
    double w = 0;
    for (int64_t j = 0; j < a->c; j++)
        w +=
            a->dtype == TD_FLOAT32 ? ((const float *)a->weight)[j] : ((const double *)a->weight)[j];
    return w;
}

static void backward(const td_smx_args *a, const void *aux0, const void *aux1, const void *gy,
                     double scale, void *gx, void *gt)
{
    int64_t rows = a->n * a->inner;
    if (rows == 0) return;
    double wtotal = class_weight_total(a);
    int nt = td_cpu_threads_for(rows * a->c, TD_CPU_GRAIN_COSTLY);
    if (nt <= 1) {
        bwd_rows(a, 0, rows, wtotal, aux0, aux1, gy, scale, gx, gt);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int64_t r0 = rows * t / n, r1 = rows * (t + 1) / n;
        bwd_rows(a, r0, r1, wtotal, aux0, aux1, gy, scale, gx, gt);
    }
}

/* ---- forward and backward fused ----------------------------------------- */

/* *m = the row's max and g[j] = exp(x[j] - m); returns their sum. Always
 * inlined, so each target clone of its callers runs its own vectors. */
TD_CPU_ALWAYS_INLINE float exp_row_f32(const float *x, float *g, int64_t c, float *m)
{
    float mx = td_cpu_row_max_f32(x, c), s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < c; j++) {
        float e = td_cpu_expf_nonpos(x[j] - mx);
        g[j] = e;
        s += e;
    }
    *m = mx;
    return s;
}

/* The common case, float32 cross-entropy on (N, C) with class indices,
 * with one exp per logit instead of two: the exponentials e_j = exp(x_j -
 * m) are kept as they are summed, and the gradient is then A e_j / s - B
 * w_j (the separate backward's A exp((x_j - m) - ls) - B w_j, rounded once
 * more or less: within 2 ulps of it). Built for AVX-512 too, taken where
 * the CPU has it: twice the lanes for the exponentials, 1.5x faster on Zen
 * 5. (Streaming stores of the gradient, tried, gained nothing measurable.) */
__attribute__((target_clones("arch=x86-64-v4", "default"))) static void
fwd_grad_ce_row_f32(const td_smx_args *a, int64_t r, double wtotal, float *loss, float *aux0,
                    double scale, float *gx)
{
    int64_t c = a->c, y = a->target[r];
    const float *x = (const float *)a->x + r * c;
    const float *w = a->weight;
    float *g = gx + r * c, *st = aux0 + 2 * r;
    if (y == a->ignore_index) {
        loss[r] = 0;
        st[0] = st[1] = 0;
        memset(g, 0, sizeof(float) * (size_t)c);
        return;
    }
    float m, s = exp_row_f32(x, g, c, &m);
    double wy = w ? (double)w[y] : 1.0, xy = (double)x[y];
    double ls = log((double)s), e = a->smoothing;
    double l = (1 - e) * wy * (((double)m - xy) + ls);
    if (e > 0) l += e / (double)c * (double)rsmooth_f(x, w, c, 1, m, (float)ls);
    loss[r] = (float)l;
    st[0] = m, st[1] = (float)ls;
    double A = (1 - e) * wy + e * wtotal / (double)c, D = (1 - e) * wy;
    float k = (float)(scale * A / (double)s), b = (float)(scale * e / (double)c);
    if (w) {
#pragma omp simd
        for (int64_t j = 0; j < c; j++) g[j] = k * g[j] - b * w[j];
    } else {
#pragma omp simd
        for (int64_t j = 0; j < c; j++) g[j] = k * g[j] - b;
    }
    g[y] = (float)((double)g[y] - scale * D);
}

/* Focal loss (and poly1 on focal) on (N, C) float32 the same way: the
 * exponentials kept in the gradient's row give both sums, and the
 * gradient -gg e_j / s2 off the target (the separate backward's -gg
 * exp((x_j - m) - ls2)). The per-row scalars are fwd_row's (focal_terms). */
__attribute__((target_clones("arch=x86-64-v4", "default"))) static void
fwd_grad_focal_row_f32(const td_smx_args *a, int64_t r, float *loss, float *aux0, float *aux1,
                       double scale, float *gx)
{
    int64_t c = a->c, y = a->target[r];
    const float *x = (const float *)a->x + r * c;
    float *g = gx + r * c, *st = aux0 + 2 * r;
    if (y == a->ignore_index) {
        loss[r] = 0;
        st[0] = st[1] = 0;
        aux1[r] = 0;
        memset(g, 0, sizeof(float) * (size_t)c);
        return;
    }
    float m, s = exp_row_f32(x, g, c, &m);
    float s2 = s - g[y], xy = x[y];
    /* as rsumexp2: the sum without the target's term, not s minus it,
     * where that would cancel (the target near the max) */
    if (s2 < 0.5f * s) {
        s2 = 0;
        for (int64_t j = 0; j < c; j++) s2 += j == y ? 0.0f : g[j];
    }
    double al = a->alpha ? (double)((const float *)a->alpha)[y] : a->alpha_scalar;
    double l, gg, ls2;
    focal_terms(a, (double)xy, (double)m, (double)s, (double)s2, al, &l, &gg, &ls2);
    loss[r] = (float)l;
    st[0] = m, st[1] = (float)ls2;
    aux1[r] = (float)gg;
    double ggs = scale * (double)(float)gg;
    if (s2 == 0) {
        memset(g, 0, sizeof(float) * (size_t)c);
    } else {
        float k = (float)(-ggs / (double)s2);
#pragma omp simd
        for (int64_t j = 0; j < c; j++) g[j] = k * g[j];
    }
    g[y] = (float)ggs;
}

/* The same for a few classes (C <= FEW), eight rows at a time: a row of
 * ten logits leaves most of a vector idle and spends its time on the
 * per-row work, so the eight rows are transposed into t[class][row] and
 * every step runs across rows. Each row's arithmetic is the row
 * function's, in the same order, but for the vectorised sum of
 * exponentials, which here adds the classes one by one. */
enum { FEW = 16, LANES = 8 };
__attribute__((target_clones("arch=x86-64-v4", "default"))) static void
fwd_grad_ce_few_f32(const td_smx_args *a, int64_t r0, double wtotal, float *loss, float *aux0,
                    double scale, float *gx)
{
    int64_t c = a->c;
    const float *xb = (const float *)a->x + r0 * c;
    const float *w = a->weight;
    float *gb = gx + r0 * c;
    double e = a->smoothing;
    float t[FEW][LANES], m[LANES], s[LANES], k[LANES];
    for (int l = 0; l < LANES; l++)
        for (int64_t j = 0; j < c; j++) t[j][l] = xb[l * c + j];
    for (int l = 0; l < LANES; l++) m[l] = -INFINITY, s[l] = 0;
    for (int64_t j = 0; j < c; j++)
#pragma omp simd
        for (int l = 0; l < LANES; l++) m[l] = t[j][l] > m[l] ? t[j][l] : m[l];
    for (int64_t j = 0; j < c; j++)
#pragma omp simd
        for (int l = 0; l < LANES; l++) {
            float ex = td_cpu_expf_nonpos(t[j][l] - m[l]);
            t[j][l] = ex;
            s[l] += ex;
        }
    double D[LANES];
    for (int l = 0; l < LANES; l++) {
        int64_t r = r0 + l, y = a->target[r];
        float *st = aux0 + 2 * r;
        if (y == a->ignore_index) {
            loss[r] = 0, st[0] = st[1] = 0, k[l] = 0, D[l] = 0;
            continue;
        }
        const float *x = xb + l * c;
        double wy = w ? (double)w[y] : 1.0, ls = log((double)s[l]);
        double lr = (1 - e) * wy * (((double)m[l] - (double)x[y]) + ls);
        if (e > 0) lr += e / (double)c * (double)rsmooth_f(x, w, c, 1, m[l], (float)ls);
        loss[r] = (float)lr;
        st[0] = m[l], st[1] = (float)ls;
        k[l] = (float)(scale * ((1 - e) * wy + e * wtotal / (double)c) / (double)s[l]);
        D[l] = (1 - e) * wy;
    }
    float b = (float)(scale * e / (double)c);
    for (int64_t j = 0; j < c; j++) {
        float bj = w ? b * w[j] : b;
#pragma omp simd
        for (int l = 0; l < LANES; l++) t[j][l] = k[l] * t[j][l] - bj;
    }
    for (int l = 0; l < LANES; l++) {
        int64_t y = a->target[r0 + l];
        float *g = gb + l * c;
        if (y == a->ignore_index) {
            memset(g, 0, sizeof(float) * (size_t)c);
            continue;
        }
        for (int64_t j = 0; j < c; j++) g[j] = t[j][l];
        g[y] = (float)((double)g[y] - scale * D[l]);
    }
}

static void fwd_grad_rows(const td_smx_args *a, int64_t r0, int64_t r1, double wtotal, void *loss,
                          void *aux0, void *aux1, double scale, void *gx)
{
    if (a->kind == TD_SMX_CE && a->dtype == TD_FLOAT32 && a->inner == 1 && !a->prob) {
        int64_t r = r0;
        if (a->c <= FEW)
            for (; r + LANES <= r1; r += LANES)
                fwd_grad_ce_few_f32(a, r, wtotal, loss, aux0, scale, gx);
        for (; r < r1; r++) fwd_grad_ce_row_f32(a, r, wtotal, loss, aux0, scale, gx);
        return;
    }
    if (TD_SMX_IS_FOCAL(a->kind) && a->dtype == TD_FLOAT32 && a->inner == 1) {
        for (int64_t r = r0; r < r1; r++) fwd_grad_focal_row_f32(a, r, loss, aux0, aux1, scale, gx);
        return;
    }
    if (a->inner == 1)
        for (int64_t r = r0; r < r1; r++) {
            fwd_row(a, r, 1, loss, aux0, aux1);
            bwd_row(a, r, 1, wtotal, aux0, aux1, NULL, scale, gx, NULL);
        }
    else
        for (int64_t r = r0; r < r1; r++) {
            fwd_row(a, r, a->inner, loss, aux0, aux1);
            bwd_row(a, r, a->inner, wtotal, aux0, aux1, NULL, scale, gx, NULL);
        }
}

/* Each row's logits are read once from memory for both: (8192, 1000)
 * float32 moves 65 MB instead of the 98 MB of a forward pass and a
 * backward pass. Row by row the arithmetic is that of forward() and
 * backward() (float32 cross-entropy on (N, C): fwd_grad_ce_row_f32). A K-dim input
 * (inner > 1) has its rows interleaved in memory; it is fused too, but
 * gains little. */
static void forward_grad(const td_smx_args *a, void *loss, void *aux0, void *aux1, double scale,
                         void *gx)
{
    int64_t rows = a->n * a->inner;
    if (rows == 0) return;
    double wtotal = class_weight_total(a);
    int nt = td_cpu_threads_for(rows * a->c, TD_CPU_GRAIN_COSTLY);
    if (nt <= 1) {
        fwd_grad_rows(a, 0, rows, wtotal, loss, aux0, aux1, scale, gx);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        int64_t r0 = rows * t / n, r1 = rows * (t + 1) / n;
        fwd_grad_rows(a, r0, r1, wtotal, loss, aux0, aux1, scale, gx);
    }
}

const struct td_softmax_loss_kernels td_cpu_softmax_loss = {
    .check_targets = check_targets,
    .forward = forward,
    .backward = backward,
    .forward_grad = forward_grad,
};
