/* CPU kernels of the margin losses (see ../loss_margin.h for the shapes).
 *
 * One pass per row, rows spread over the OpenMP threads. float32 rows are
 * accumulated in double; each row's result is written on its own, so the
 * bits do not depend on the thread count. Hinges follow PyTorch 1.13: the
 * multi-class kernels count a term only where it is > 0, the others (which
 * PyTorch builds on clamp_min) pass the gradient where the hinge is >= 0. */
#include "cpu.h"
#include "iter.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>

#define PTR(T, t)  ((T *)td_cpu_ptr(t))
#define CPTR(T, t) ((const T *)td_cpu_ptr(t))

/* the gradient of sample i's loss: gy holds one value or one per sample */
#define GY(i) ((double)gyp[gy_one ? 0 : (i)] * scale)
#define GY_SETUP(T)                                                                                \
    const T *gyp = CPTR(T, gy);                                                                    \
    bool gy_one = td_numel(gy) == 1

static int threads(int64_t work) { return td_cpu_threads_for(work, TD_CPU_GRAIN_COSTLY); }

/* ---- multi_margin ------------------------------------------------------ */

static void multi_margin(td_tensor *out, const td_tensor *x, const td_tensor *target,
                         const td_tensor *weight, int p, double margin, int64_t n, int64_t c)
{
    int nt = threads(n * c);
    const int64_t *tg = CPTR(int64_t, target);
    TD_CPU_FLOAT_DISPATCH(x->dtype, {
        const T *xp = CPTR(T, x), *wp = weight ? CPTR(T, weight) : NULL;
        T *op = PTR(T, out);
        _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
        for (int64_t r = 0; r < n; r++) {
            const T *row = xp + r * c;
            int64_t y = tg[r];
            double xy = row[y], s = 0;
            for (int64_t i = 0; i < c; i++) {
                if (i == y) continue;
                double z = margin - xy + (double)row[i];
                if (z > 0) s += p == 1 ? z : z * z;
            }
            if (wp) s *= (double)wp[y];
            op[r] = (T)(s / (double)c);
        }
    })
}

static void multi_margin_backward(td_tensor *gx, const td_tensor *gy, double scale,
                                  const td_tensor *x, const td_tensor *target,
                                  const td_tensor *weight, int p, double margin, int64_t n,
                                  int64_t c)
{
    int nt = threads(n * c);
    const int64_t *tg = CPTR(int64_t, target);
    TD_CPU_FLOAT_DISPATCH(x->dtype, {
        const T *xp = CPTR(T, x), *wp = weight ? CPTR(T, weight) : NULL;
        T *gp = PTR(T, gx);
        GY_SETUP(T);
        _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
        for (int64_t r = 0; r < n; r++) {
            const T *row = xp + r * c;
            T *grow = gp + r * c;
            int64_t y = tg[r];
            double xy = row[y], g = GY(r) / (double)c, gyy = 0;
            if (wp) g *= (double)wp[y];
            for (int64_t i = 0; i < c; i++) {
                grow[i] = 0;
                if (i == y) continue;
                double z = margin - xy + (double)row[i];
                if (z > 0) {
                    double d = (p == 1 ? 1.0 : 2.0 * z) * g;
                    grow[i] = (T)d;
                    gyy -= d;
                }
            }
            grow[y] = (T)gyy;
        }
    })
}

/* ---- multilabel_margin ------------------------------------------------- */

/* marks the listed classes of a row; returns the list's length */
static int64_t mark_targets(unsigned char *mark, const int64_t *t, int64_t c)
{
    int64_t len = 0;
    memset(mark, 0, (size_t)c);
    while (len < c && t[len] >= 0) mark[t[len++]] = 1;
    return len;
}

static void multilabel_margin(td_tensor *out, const td_tensor *x, const td_tensor *target,
                              int64_t n, int64_t c)
{
    int nt = threads(n * c * 4);
    const int64_t *tg = CPTR(int64_t, target);
    TD_CPU_FLOAT_DISPATCH(x->dtype, {
        const T *xp = CPTR(T, x);
        T *op = PTR(T, out);
        _Pragma("omp parallel num_threads(nt) if (nt > 1)")
        {
            unsigned char *mark = malloc((size_t)(c > 0 ? c : 1));
            _Pragma("omp for schedule(static)")
            for (int64_t r = 0; r < n; r++) {
                const T *row = xp + r * c;
                const int64_t *t = tg + r * c;
                double s = 0;
                if (mark) {
                    int64_t len = mark_targets(mark, t, c);
                    for (int64_t j = 0; j < len; j++) {
                        double xt = row[t[j]];
                        for (int64_t i = 0; i < c; i++) {
                            if (mark[i]) continue;
                            double z = 1.0 - xt + (double)row[i];
                            if (z > 0) s += z;
                        }
                    }
                } else {
                    s = NAN; /* out of memory: never silently wrong */
                }
                op[r] = (T)(s / (double)c);
            }
            free(mark);
        }
    })
}

static void multilabel_margin_backward(td_tensor *gx, const td_tensor *gy, double scale,
                                       const td_tensor *x, const td_tensor *target, int64_t n,
                                       int64_t c)
{
    int nt = threads(n * c * 4);
    const int64_t *tg = CPTR(int64_t, target);
    TD_CPU_FLOAT_DISPATCH(x->dtype, {
        const T *xp = CPTR(T, x);
        T *gp = PTR(T, gx);
        GY_SETUP(T);
        _Pragma("omp parallel num_threads(nt) if (nt > 1)")
        {
            unsigned char *mark = malloc((size_t)(c > 0 ? c : 1));
            double *acc = malloc(sizeof(double) * (size_t)(c > 0 ? c : 1));
            _Pragma("omp for schedule(static)")
            for (int64_t r = 0; r < n; r++) {
                const T *row = xp + r * c;
                const int64_t *t = tg + r * c;
                T *grow = gp + r * c;
                if (!mark || !acc) {
                    for (int64_t i = 0; i < c; i++) grow[i] = (T)NAN;
                    continue;
                }
                double g = GY(r) / (double)c;
                int64_t len = mark_targets(mark, t, c);
                for (int64_t i = 0; i < c; i++) acc[i] = 0;
                for (int64_t j = 0; j < len; j++) {
                    double xt = row[t[j]];
                    for (int64_t i = 0; i < c; i++) {
                        if (mark[i]) continue;
                        double z = 1.0 - xt + (double)row[i];
                        if (z > 0) {
                            acc[i] += g;
                            acc[t[j]] -= g;
                        }
                    }
                }
                for (int64_t i = 0; i < c; i++) grow[i] = (T)acc[i];
            }
            free(mark);
            free(acc);
        }
    })
}

/* ---- hinge_embedding --------------------------------------------------- */

static void hinge_embedding(td_tensor *out, const td_tensor *x, const td_tensor *y, double margin,
                            int64_t n)
{
    int nt = td_cpu_threads_for(n, TD_CPU_GRAIN);
    TD_CPU_FLOAT_DISPATCH(x->dtype, {
        const T *xp = CPTR(T, x), *yp = CPTR(T, y);
        T *op = PTR(T, out);
        _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
        for (int64_t i = 0; i < n; i++) {
            T v = xp[i], t = yp[i], m = (T)(margin - (double)v);
            T hinge = m > 0 ? m : (m != m ? m : 0);
            op[i] = (t != -1 ? v : 0) + (t != 1 ? hinge : 0);
        }
    })
}

static void hinge_embedding_backward(td_tensor *gx, const td_tensor *gy, double scale,
                                     const td_tensor *x, const td_tensor *y, double margin,
                                     int64_t n)
{
    int nt = td_cpu_threads_for(n, TD_CPU_GRAIN);
    TD_CPU_FLOAT_DISPATCH(x->dtype, {
        const T *xp = CPTR(T, x), *yp = CPTR(T, y);
        T *gp = PTR(T, gx);
        GY_SETUP(T);
        _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
        for (int64_t i = 0; i < n; i++) {
            T t = yp[i], m = (T)(margin - (double)xp[i]);
            double d = (t != -1 ? 1.0 : 0.0) - ((t != 1 && m >= 0) ? 1.0 : 0.0);
            gp[i] = (T)(d * GY(i));
        }
    })
}

/* ---- cosine_embedding -------------------------------------------------- */

#define COS_EPS 1e-12

typedef struct {
    double dot, s1, s2, denom, cos;
} cos_parts;

#define COS_ROW(u, v, d, cp)                                                                       \
    do {                                                                                           \
        double dot_ = 0, s1_ = 0, s2_ = 0;                                                         \
        for (int64_t k = 0; k < (d); k++) {                                                        \
            double a_ = (u)[k], b_ = (v)[k];                                                       \
            dot_ += a_ * b_;                                                                       \
            s1_ += a_ * a_;                                                                        \
            s2_ += b_ * b_;                                                                        \
        }                                                                                          \
        (cp).dot = dot_;                                                                           \
        (cp).s1 = s1_ + COS_EPS;                                                                   \
        (cp).s2 = s2_ + COS_EPS;                                                                   \
        (cp).denom = sqrt((cp).s1 * (cp).s2);                                                      \
        (cp).cos = dot_ / (cp).denom;                                                              \
    } while (0)

static void cosine_embedding(td_tensor *out, const td_tensor *x1, const td_tensor *x2,
                             const td_tensor *y, double margin, int64_t n, int64_t d)
{
    int nt = threads(n * d);
    TD_CPU_FLOAT_DISPATCH(x1->dtype, {
        const T *ap = CPTR(T, x1), *bp = CPTR(T, x2), *yp = CPTR(T, y);
        T *op = PTR(T, out);
        _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
        for (int64_t r = 0; r < n; r++) {
            cos_parts cp;
            COS_ROW(ap + r * d, bp + r * d, d, cp);
            double t = yp[r], l = 0;
            if (t == 1)
                l = 1 - cp.cos;
            else if (t == -1)
                l = cp.cos - margin > 0 ? cp.cos - margin : 0;
            op[r] = (T)l;
        }
    })
}

static void cosine_embedding_backward(td_tensor *g1, td_tensor *g2, const td_tensor *gy,
                                      double scale, const td_tensor *x1, const td_tensor *x2,
                                      const td_tensor *y, double margin, int64_t n, int64_t d)
{
    int nt = threads(n * d);
    TD_CPU_FLOAT_DISPATCH(x1->dtype, {
        const T *ap = CPTR(T, x1), *bp = CPTR(T, x2), *yp = CPTR(T, y);
        T *g1p = g1 ? PTR(T, g1) : NULL, *g2p = g2 ? PTR(T, g2) : NULL;
        GY_SETUP(T);
        _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
        for (int64_t r = 0; r < n; r++) {
            const T *a = ap + r * d, *b = bp + r * d;
            cos_parts cp;
            COS_ROW(a, b, d, cp);
            double t = yp[r], c = 0;
            if (t == 1)
                c = -1;
            else if (t == -1 && cp.cos - margin >= 0)
                c = 1;
            double g = c * GY(r);
            for (int64_t k = 0; k < d; k++) {
                double av = a[k], bv = b[k];
                if (g1p) g1p[r * d + k] = (T)(g * (bv / cp.denom - cp.cos * av / cp.s1));
                if (g2p) g2p[r * d + k] = (T)(g * (av / cp.denom - cp.cos * bv / cp.s2));
            }
        }
    })
}

/* ---- margin_ranking ---------------------------------------------------- */

static void margin_ranking(td_tensor *out, const td_tensor *x1, const td_tensor *x2,
                           const td_tensor *y, double margin, int64_t n)
{
    int nt = td_cpu_threads_for(n, TD_CPU_GRAIN);
    TD_CPU_FLOAT_DISPATCH(x1->dtype, {
        const T *ap = CPTR(T, x1), *bp = CPTR(T, x2), *yp = CPTR(T, y);
        T *op = PTR(T, out);
        _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
        for (int64_t i = 0; i < n; i++) {
            T z = -yp[i] * (ap[i] - bp[i]) + (T)margin;
            op[i] = z > 0 ? z : (z != z ? z : 0);
        }
    })
}

static void margin_ranking_backward(td_tensor *g1, td_tensor *g2, const td_tensor *gy, double scale,
                                    const td_tensor *x1, const td_tensor *x2, const td_tensor *y,
                                    double margin, int64_t n)
{
    int nt = td_cpu_threads_for(n, TD_CPU_GRAIN);
    TD_CPU_FLOAT_DISPATCH(x1->dtype, {
        const T *ap = CPTR(T, x1), *bp = CPTR(T, x2), *yp = CPTR(T, y);
        T *g1p = g1 ? PTR(T, g1) : NULL, *g2p = g2 ? PTR(T, g2) : NULL;
        GY_SETUP(T);
        _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
        for (int64_t i = 0; i < n; i++) {
            T z = -yp[i] * (ap[i] - bp[i]) + (T)margin;
            double g = z >= 0 ? -(double)yp[i] * GY(i) : 0.0;
            if (g1p) g1p[i] = (T)g;
            if (g2p) g2p[i] = (T)-g;
        }
    })
}

/* ---- triplet_margin ---------------------------------------------------- */

/* |u - v + eps|_p */
#define DIST(u, v, d, np, eps, out)                                                                \
    do {                                                                                           \
        double s_ = 0;                                                                             \
        for (int64_t k = 0; k < (d); k++) {                                                        \
            double e_ = (double)(u)[k] - (double)(v)[k] + (eps);                                   \
            s_ += (np) == 2 ? e_ * e_ : (np) == 1 ? fabs(e_) : pow(fabs(e_), (np));                \
        }                                                                                          \
        (out) = (np) == 2 ? sqrt(s_) : (np) == 1 ? s_ : pow(s_, 1.0 / (np));                       \
    } while (0)

/* d |e|_p / d e_k, with |e|_p = dist (0 where dist is 0, as PyTorch) */
static inline double dnorm(double e, double dist, double np)
{
    if (np == 1) return e > 0 ? 1.0 : e < 0 ? -1.0 : 0.0;
    if (dist == 0) return 0;
    if (np == 2) return e / dist;
    double s = e > 0 ? 1.0 : e < 0 ? -1.0 : 0.0;
    return s * pow(fabs(e), np - 1) / pow(dist, np - 1);
}

static void triplet_margin(td_tensor *out, const td_tensor *a, const td_tensor *p,
                           const td_tensor *q, double margin, double np, double eps, bool swap,
                           int64_t n, int64_t d)
{
    int nt = threads(n * d * 3);
    TD_CPU_FLOAT_DISPATCH(a->dtype, {
        const T *ap = CPTR(T, a), *pp = CPTR(T, p), *qp = CPTR(T, q);
        T *op = PTR(T, out);
        _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
        for (int64_t r = 0; r < n; r++) {
            const T *ar = ap + r * d, *pr = pp + r * d, *qr = qp + r * d;
            double dp, dn, ds;
            DIST(ar, pr, d, np, eps, dp);
            DIST(ar, qr, d, np, eps, dn);
            if (swap) {
                DIST(pr, qr, d, np, eps, ds);
                dn = ds < dn ? ds : dn;
            }
            double z = margin + dp - dn;
            op[r] = (T)(z > 0 ? z : (z != z ? z : 0));
        }
    })
}

static void triplet_margin_backward(td_tensor *ga, td_tensor *gp, td_tensor *gq,
                                    const td_tensor *gy, double scale, const td_tensor *a,
                                    const td_tensor *p, const td_tensor *q, double margin,
                                    double np, double eps, bool swap, int64_t n, int64_t d)
{
    int nt = threads(n * d * 6);
    TD_CPU_FLOAT_DISPATCH(a->dtype, {
        const T *ap = CPTR(T, a), *pp = CPTR(T, p), *qp = CPTR(T, q);
        T *gap = ga ? PTR(T, ga) : NULL, *gpp = gp ? PTR(T, gp) : NULL;
        T *gqp = gq ? PTR(T, gq) : NULL;
        GY_SETUP(T);
        _Pragma("omp parallel for num_threads(nt) schedule(static) if (nt > 1)")
        for (int64_t r = 0; r < n; r++) {
            const T *ar = ap + r * d, *pr = pp + r * d, *qr = qp + r * d;
            double dp, dn, ds = 0, wn = 1, ws = 0;
            DIST(ar, pr, d, np, eps, dp);
            DIST(ar, qr, d, np, eps, dn);
            double dneg = dn;
            if (swap) {
                DIST(pr, qr, d, np, eps, ds);
                /* min's gradient: to the smaller, half each on a tie */
                if (ds < dn)
                    wn = 0, ws = 1, dneg = ds;
                else if (ds == dn)
                    wn = 0.5, ws = 0.5;
            }
            double z = margin + dp - dneg;
            double g = z >= 0 ? GY(r) : 0.0;
            for (int64_t k = 0; k < d; k++) {
                double uap = 0, uan = 0, upn = 0;
                if (g != 0) {
                    uap = dnorm((double)ar[k] - (double)pr[k] + eps, dp, np);
                    uan = wn != 0 ? dnorm((double)ar[k] - (double)qr[k] + eps, dn, np) : 0;
                    upn = ws != 0 ? dnorm((double)pr[k] - (double)qr[k] + eps, ds, np) : 0;
                }
                if (gap) gap[r * d + k] = (T)(g * (uap - wn * uan));
                if (gpp) gpp[r * d + k] = (T)(g * (-uap - ws * upn));
                if (gqp) gqp[r * d + k] = (T)(g * (wn * uan + ws * upn));
            }
        }
    })
}

/* ---- target check -------------------------------------------------------- */

static int64_t check_range(const td_tensor *target, int64_t n, int64_t lo, int64_t hi)
{
    const int64_t *t = CPTR(int64_t, target);
    for (int64_t i = 0; i < n; i++)
        if (t[i] < lo || t[i] >= hi) return i;
    return -1;
}

const struct td_margin_loss_kernels td_cpu_margin_loss = {
    .multi_margin = multi_margin,
    .multi_margin_backward = multi_margin_backward,
    .multilabel_margin = multilabel_margin,
    .multilabel_margin_backward = multilabel_margin_backward,
    .hinge_embedding = hinge_embedding,
    .hinge_embedding_backward = hinge_embedding_backward,
    .cosine_embedding = cosine_embedding,
    .cosine_embedding_backward = cosine_embedding_backward,
    .margin_ranking = margin_ranking,
    .margin_ranking_backward = margin_ranking_backward,
    .triplet_margin = triplet_margin,
    .triplet_margin_backward = triplet_margin_backward,
    .check_range = check_range,
};
