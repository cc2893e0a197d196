/* CUDA kernels of the margin losses (kernels/loss_margin.h):
 * multi_margin, multilabel_margin, hinge_embedding, cosine_embedding,
 * margin_ranking, triplet_margin, and the target range check.
 *
 * The CPU kernels' formulas (kernels/cpu/loss_margin.c) term for term, in
 * their order: a row's sums run in one thread, in double, over the row in
 * order, so each row's value is the CPU's to the rounding of the device's
 * libm (sqrt is exact on both; pow within an ulp). Backwards that need a
 * row's sums (cosine, triplet) compute them once per row into scratch,
 * then write the gradient one thread per element; multilabel_margin marks
 * each row's listed classes once, then one thread per element repeats the
 * CPU's additions of +-g in the CPU's order, so the bits agree. Nothing is
 * reduced across rows and nothing uses atomics, except the range check's
 * integer atomicMin, whose result does not depend on the order. */
#include "rows.cuh"

using namespace tdc;

namespace {

template <typename T> const T *cptr(const td_tensor *t)
{
    return t ? (const T *)td_data_ptr(t) : nullptr;
}

template <typename T> T *mptr(td_tensor *t) { return t ? (T *)td_data_ptr(t) : nullptr; }

/* the gradient of sample i's loss: gy holds one value or one per sample */
template <typename T> __device__ inline double gy_at(const T *gy, bool one, int64_t i, double scale)
{
    return (double)gy[one ? 0 : i] * scale;
}

#define GRID_LOOP(i, n)                                                                            \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                      \
         i += (int64_t)gridDim.x * blockDim.x)

/* ---- target range check ---------------------------------------------------- */

__global__ void range_kernel(const int64_t *t, int64_t n, int64_t lo, int64_t hi,
                             unsigned long long *bad)
{
    GRID_LOOP(i, n)
    {
        int64_t v = t[i];
        if (v < lo || v >= hi)
            atomicMin(bad, (unsigned long long)i); /* integers: any order gives the smallest */
    }
}

int64_t check_range(const td_tensor *target, int64_t n, int64_t lo, int64_t hi)
{
    if (n <= 0) return -1;
    use_device_of(target);
    Scratch s(sizeof(unsigned long long));
    if (!s.p) return -1;
    cudaMemsetAsync(s.p, 0xff, sizeof(unsigned long long));
    range_kernel<<<blocks_for(n), THREADS>>>(cptr<int64_t>(target), n, lo, hi,
                                             s.as<unsigned long long>());
    check_launch("margin loss target check");
    unsigned long long h = ~0ULL;
    if (td_cuda_download(s.device, &h, s.p, sizeof h) != TD_OK) return -1;
    return h == ~0ULL ? -1 : (int64_t)h;
}

/* ---- multi_margin ---------------------------------------------------------- */

template <typename T>
__global__ void multi_margin_kernel(T *op, const T *xp, const int64_t *tg, const T *wp, int p,
                                    double margin, int64_t n, int64_t c)
{
    GRID_LOOP(r, n)
    {
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
}

void multi_margin(td_tensor *out, const td_tensor *x, const td_tensor *target,
                  const td_tensor *weight, int p, double margin, int64_t n, int64_t c)
{
    if (n == 0) return;
    use_device_of(out);
    TDC_FLOAT_DISPATCH(x->dtype, {
        multi_margin_kernel<T><<<blocks_for(n), THREADS>>>(
            mptr<T>(out), cptr<T>(x), cptr<int64_t>(target), cptr<T>(weight), p, margin, n, c);
    });
    check_launch("multi_margin_loss");
}

/* one thread per element; the target's entry sums the others' in order */
template <typename T>
__global__ void multi_margin_bwd_kernel(T *gp, const T *gy, bool gy_one, double scale, const T *xp,
                                        const int64_t *tg, const T *wp, int p, double margin,
                                        int64_t n, int64_t c)
{
    GRID_LOOP(e, n * c)
    {
        int64_t r = e / c, i = e - r * c;
        const T *row = xp + r * c;
        int64_t y = tg[r];
        double xy = row[y], g = gy_at(gy, gy_one, r, scale) / (double)c;
        if (wp) g *= (double)wp[y];
        if (i != y) {
            double z = margin - xy + (double)row[i];
            gp[e] = z > 0 ? (T)((p == 1 ? 1.0 : 2.0 * z) * g) : (T)0;
            continue;
        }
        double gyy = 0;
        for (int64_t k = 0; k < c; k++) {
            if (k == y) continue;
            double z = margin - xy + (double)row[k];
            if (z > 0) gyy -= (p == 1 ? 1.0 : 2.0 * z) * g;
        }
        gp[e] = (T)gyy;
    }
}

void multi_margin_backward(td_tensor *gx, const td_tensor *gy, double scale, const td_tensor *x,
                           const td_tensor *target, const td_tensor *weight, int p, double margin,
                           int64_t n, int64_t c)
{
    if (n * c == 0) return;
    use_device_of(gx);
    TDC_FLOAT_DISPATCH(x->dtype, {
        multi_margin_bwd_kernel<T><<<blocks_for(n * c), THREADS>>>(
            mptr<T>(gx), cptr<T>(gy), td_numel(gy) == 1, scale, cptr<T>(x), cptr<int64_t>(target),
            cptr<T>(weight), p, margin, n, c);
    });
    check_launch("multi_margin_loss backward");
}

/* ---- multilabel_margin ------------------------------------------------------ */

/* one thread per row: mark (N, C) flags the listed classes, len (N) the
 * list's length (up to the first negative entry) */
__global__ void mark_kernel(unsigned char *mark, int64_t *len, const int64_t *tg, int64_t n,
                            int64_t c)
{
    GRID_LOOP(r, n)
    {
        unsigned char *m = mark + r * c;
        const int64_t *t = tg + r * c;
        for (int64_t i = 0; i < c; i++) m[i] = 0;
        int64_t l = 0;
        while (l < c && t[l] >= 0) m[t[l++]] = 1;
        len[r] = l;
    }
}

template <typename T>
__global__ void multilabel_kernel(T *op, const T *xp, const int64_t *tg, const unsigned char *mark,
                                  const int64_t *len, int64_t n, int64_t c)
{
    GRID_LOOP(r, n)
    {
        const T *row = xp + r * c;
        const int64_t *t = tg + r * c;
        const unsigned char *m = mark + r * c;
        double s = 0;
        for (int64_t j = 0; j < len[r]; j++) {
            double xt = row[t[j]];
            for (int64_t i = 0; i < c; i++) {
                if (m[i]) continue;
                double z = 1.0 - xt + (double)row[i];
                if (z > 0) s += z;
            }
        }
        op[r] = (T)(s / (double)c);
    }
}

/* element (r, i): the CPU adds +g to an unlisted class once per listed j
 * whose hinge is active, and -g to a listed class once per (j naming it,
 * unlisted k) pair whose hinge is active, j outer and k inner: the same
 * additions in the same order give the same bits */
template <typename T>
__global__ void multilabel_bwd_kernel(T *gp, const T *gy, bool gy_one, double scale, const T *xp,
                                      const int64_t *tg, const unsigned char *mark,
                                      const int64_t *len, int64_t n, int64_t c)
{
    GRID_LOOP(e, n * c)
    {
        int64_t r = e / c, i = e - r * c;
        const T *row = xp + r * c;
        const int64_t *t = tg + r * c;
        const unsigned char *m = mark + r * c;
        double g = gy_at(gy, gy_one, r, scale) / (double)c, acc = 0;
        if (!m[i]) {
            for (int64_t j = 0; j < len[r]; j++) {
                double z = 1.0 - (double)row[t[j]] + (double)row[i];
                if (z > 0) acc += g;
            }
        } else {
            for (int64_t j = 0; j < len[r]; j++) {
                if (t[j] != i) continue;
                double xt = row[i];
                for (int64_t k = 0; k < c; k++) {
                    if (m[k]) continue;
                    double z = 1.0 - xt + (double)row[k];
                    if (z > 0) acc -= g;
                }
            }
        }
        gp[e] = (T)acc;
    }
}

void multilabel_margin(td_tensor *out, const td_tensor *x, const td_tensor *target, int64_t n,
                       int64_t c)
{
    if (n == 0) return;
    use_device_of(out);
    Scratch s((size_t)(n * c) + sizeof(int64_t) * (size_t)(n + 1));
    if (!s.p) return;
    int64_t *len = s.as<int64_t>();
    unsigned char *mark = (unsigned char *)(len + n + 1);
    mark_kernel<<<blocks_for(n), THREADS>>>(mark, len, cptr<int64_t>(target), n, c);
    TDC_FLOAT_DISPATCH(x->dtype, {
        multilabel_kernel<T><<<blocks_for(n), THREADS>>>(mptr<T>(out), cptr<T>(x),
                                                         cptr<int64_t>(target), mark, len, n, c);
    });
    check_launch("multilabel_margin_loss");
}

void multilabel_margin_backward(td_tensor *gx, const td_tensor *gy, double scale,
                                const td_tensor *x, const td_tensor *target, int64_t n, int64_t c)
{
    if (n * c == 0) return;
    use_device_of(gx);
    Scratch s((size_t)(n * c) + sizeof(int64_t) * (size_t)(n + 1));
    if (!s.p) return;
    int64_t *len = s.as<int64_t>();
    unsigned char *mark = (unsigned char *)(len + n + 1);
    mark_kernel<<<blocks_for(n), THREADS>>>(mark, len, cptr<int64_t>(target), n, c);
    TDC_FLOAT_DISPATCH(x->dtype, {
        multilabel_bwd_kernel<T>
            <<<blocks_for(n * c), THREADS>>>(mptr<T>(gx), cptr<T>(gy), td_numel(gy) == 1, scale,
                                             cptr<T>(x), cptr<int64_t>(target), mark, len, n, c);
    });
    check_launch("multilabel_margin_loss backward");
}

/* ---- hinge_embedding ---------------------------------------------------------- */

template <typename T>
__global__ void hinge_kernel(T *op, const T *xp, const T *yp, double margin, int64_t n)
{
    GRID_LOOP(i, n)
    {
        T v = xp[i], t = yp[i], m = (T)(margin - (double)v);
        T hinge = m > 0 ? m : (m != m ? m : (T)0);
        op[i] = (t != -1 ? v : (T)0) + (t != 1 ? hinge : (T)0);
    }
}

template <typename T>
__global__ void hinge_bwd_kernel(T *gp, const T *gy, bool gy_one, double scale, const T *xp,
                                 const T *yp, double margin, int64_t n)
{
    GRID_LOOP(i, n)
    {
        T t = yp[i], m = (T)(margin - (double)xp[i]);
        double d = (t != -1 ? 1.0 : 0.0) - ((t != 1 && m >= 0) ? 1.0 : 0.0);
        gp[i] = (T)(d * gy_at(gy, gy_one, i, scale));
    }
}

void hinge_embedding(td_tensor *out, const td_tensor *x, const td_tensor *y, double margin,
                     int64_t n)
{
    if (n == 0) return;
    use_device_of(out);
    TDC_FLOAT_DISPATCH(x->dtype, {
        hinge_kernel<T>
            <<<blocks_for(n), THREADS>>>(mptr<T>(out), cptr<T>(x), cptr<T>(y), margin, n);
    });
    check_launch("hinge_embedding_loss");
}

void hinge_embedding_backward(td_tensor *gx, const td_tensor *gy, double scale, const td_tensor *x,
                              const td_tensor *y, double margin, int64_t n)
{
    if (n == 0) return;
    use_device_of(gx);
    TDC_FLOAT_DISPATCH(x->dtype, {
        hinge_bwd_kernel<T><<<blocks_for(n), THREADS>>>(mptr<T>(gx), cptr<T>(gy), td_numel(gy) == 1,
                                                        scale, cptr<T>(x), cptr<T>(y), margin, n);
    });
    check_launch("hinge_embedding_loss backward");
}

/* ---- cosine_embedding ------------------------------------------------------------ */

constexpr double COS_EPS = 1e-12;

struct CosParts {
    double dot, s1, s2, denom, cos;
};

template <typename T> __device__ inline CosParts cos_row(const T *u, const T *v, int64_t d)
{
    double dot = 0, s1 = 0, s2 = 0;
    for (int64_t k = 0; k < d; k++) {
        double a = u[k], b = v[k];
        dot += a * b;
        s1 += a * a;
        s2 += b * b;
    }
    CosParts cp;
    cp.dot = dot;
    cp.s1 = s1 + COS_EPS;
    cp.s2 = s2 + COS_EPS;
    cp.denom = sqrt(cp.s1 * cp.s2);
    cp.cos = dot / cp.denom;
    return cp;
}

template <typename T>
__global__ void cosine_kernel(T *op, const T *ap, const T *bp, const T *yp, double margin,
                              int64_t n, int64_t d)
{
    GRID_LOOP(r, n)
    {
        CosParts cp = cos_row(ap + r * d, bp + r * d, d);
        double t = yp[r], l = 0;
        if (t == 1)
            l = 1 - cp.cos;
        else if (t == -1)
            l = cp.cos - margin > 0 ? cp.cos - margin : 0;
        op[r] = (T)l;
    }
}

/* per row: parts and the coefficient g of the row's gradient */
struct CosRow {
    CosParts cp;
    double g;
};

template <typename T>
__global__ void cosine_rows_kernel(CosRow *rows, const T *gy, bool gy_one, double scale,
                                   const T *ap, const T *bp, const T *yp, double margin, int64_t n,
                                   int64_t d)
{
    GRID_LOOP(r, n)
    {
        CosParts cp = cos_row(ap + r * d, bp + r * d, d);
        double t = yp[r], c = 0;
        if (t == 1)
            c = -1;
        else if (t == -1 && cp.cos - margin >= 0)
            c = 1;
        rows[r].cp = cp;
        rows[r].g = c * gy_at(gy, gy_one, r, scale);
    }
}

template <typename T>
__global__ void cosine_bwd_kernel(T *g1p, T *g2p, const CosRow *rows, const T *ap, const T *bp,
                                  int64_t n, int64_t d)
{
    GRID_LOOP(e, n * d)
    {
        const CosRow R = rows[e / d];
        double av = ap[e], bv = bp[e];
        if (g1p) g1p[e] = (T)(R.g * (bv / R.cp.denom - R.cp.cos * av / R.cp.s1));
        if (g2p) g2p[e] = (T)(R.g * (av / R.cp.denom - R.cp.cos * bv / R.cp.s2));
    }
}

void cosine_embedding(td_tensor *out, const td_tensor *x1, const td_tensor *x2, const td_tensor *y,
                      double margin, int64_t n, int64_t d)
{
    if (n == 0) return;
    use_device_of(out);
    TDC_FLOAT_DISPATCH(x1->dtype, {
        cosine_kernel<T><<<blocks_for(n), THREADS>>>(mptr<T>(out), cptr<T>(x1), cptr<T>(x2),
                                                     cptr<T>(y), margin, n, d);
    });
    check_launch("cosine_embedding_loss");
}

void cosine_embedding_backward(td_tensor *g1, td_tensor *g2, const td_tensor *gy, double scale,
                               const td_tensor *x1, const td_tensor *x2, const td_tensor *y,
                               double margin, int64_t n, int64_t d)
{
    if (n == 0 || (!g1 && !g2)) return;
    use_device_of(g1 ? g1 : g2);
    Scratch s(sizeof(CosRow) * (size_t)n);
    if (!s.p) return;
    TDC_FLOAT_DISPATCH(x1->dtype, {
        cosine_rows_kernel<T><<<blocks_for(n), THREADS>>>(s.as<CosRow>(), cptr<T>(gy),
                                                          td_numel(gy) == 1, scale, cptr<T>(x1),
                                                          cptr<T>(x2), cptr<T>(y), margin, n, d);
        if (d > 0)
            cosine_bwd_kernel<T><<<blocks_for(n * d), THREADS>>>(
                mptr<T>(g1), mptr<T>(g2), s.as<CosRow>(), cptr<T>(x1), cptr<T>(x2), n, d);
    });
    check_launch("cosine_embedding_loss backward");
}

/* ---- margin_ranking -------------------------------------------------------------- */

template <typename T>
__global__ void ranking_kernel(T *op, const T *ap, const T *bp, const T *yp, double margin,
                               int64_t n)
{
    GRID_LOOP(i, n)
    {
        T z = -yp[i] * (ap[i] - bp[i]) + (T)margin;
        op[i] = z > 0 ? z : (z != z ? z : (T)0);
    }
}

template <typename T>
__global__ void ranking_bwd_kernel(T *g1p, T *g2p, const T *gy, bool gy_one, double scale,
                                   const T *ap, const T *bp, const T *yp, double margin, int64_t n)
{
    GRID_LOOP(i, n)
    {
        T z = -yp[i] * (ap[i] - bp[i]) + (T)margin;
        double g = z >= 0 ? -(double)yp[i] * gy_at(gy, gy_one, i, scale) : 0.0;
        if (g1p) g1p[i] = (T)g;
        if (g2p) g2p[i] = (T)-g;
    }
}

void margin_ranking(td_tensor *out, const td_tensor *x1, const td_tensor *x2, const td_tensor *y,
                    double margin, int64_t n)
{
    if (n == 0) return;
    use_device_of(out);
    TDC_FLOAT_DISPATCH(x1->dtype, {
        ranking_kernel<T><<<blocks_for(n), THREADS>>>(mptr<T>(out), cptr<T>(x1), cptr<T>(x2),
                                                      cptr<T>(y), margin, n);
    });
    check_launch("margin_ranking_loss");
}

void margin_ranking_backward(td_tensor *g1, td_tensor *g2, const td_tensor *gy, double scale,
                             const td_tensor *x1, const td_tensor *x2, const td_tensor *y,
                             double margin, int64_t n)
{
    if (n == 0 || (!g1 && !g2)) return;
    use_device_of(g1 ? g1 : g2);
    TDC_FLOAT_DISPATCH(x1->dtype, {
        ranking_bwd_kernel<T><<<blocks_for(n), THREADS>>>(mptr<T>(g1), mptr<T>(g2), cptr<T>(gy),
                                                          td_numel(gy) == 1, scale, cptr<T>(x1),
                                                          cptr<T>(x2), cptr<T>(y), margin, n);
    });
    check_launch("margin_ranking_loss backward");
}

/* ---- triplet_margin -------------------------------------------------------------- */

/* |u - v + eps|_p, the CPU's DIST */
template <typename T>
__device__ inline double dist(const T *u, const T *v, int64_t d, double np, double eps)
{
    double s = 0;
    for (int64_t k = 0; k < d; k++) {
        double e = (double)u[k] - (double)v[k] + eps;
        s += np == 2 ? e * e : np == 1 ? fabs(e) : pow(fabs(e), np);
    }
    return np == 2 ? sqrt(s) : np == 1 ? s : pow(s, 1.0 / np);
}

/* d |e|_p / d e_k, with |e|_p = dist (0 where dist is 0, as PyTorch) */
__device__ inline double dnorm(double e, double dist, double np)
{
    if (np == 1) return e > 0 ? 1.0 : e < 0 ? -1.0 : 0.0;
    if (dist == 0) return 0;
    if (np == 2) return e / dist;
    double s = e > 0 ? 1.0 : e < 0 ? -1.0 : 0.0;
    return s * pow(fabs(e), np - 1) / pow(dist, np - 1);
}

template <typename T>
__global__ void triplet_kernel(T *op, const T *ap, const T *pp, const T *qp, double margin,
                               double np, double eps, bool swap, int64_t n, int64_t d)
{
    GRID_LOOP(r, n)
    {
        const T *ar = ap + r * d, *pr = pp + r * d, *qr = qp + r * d;
        double dp = dist(ar, pr, d, np, eps), dn = dist(ar, qr, d, np, eps);
        if (swap) {
            double ds = dist(pr, qr, d, np, eps);
            dn = ds < dn ? ds : dn;
        }
        double z = margin + dp - dn;
        op[r] = (T)(z > 0 ? z : (z != z ? z : 0));
    }
}

struct TripRow {
    double dp, dn, ds, wn, ws, g;
};

template <typename T>
__global__ void triplet_rows_kernel(TripRow *rows, const T *gy, bool gy_one, double scale,
                                    const T *ap, const T *pp, const T *qp, double margin, double np,
                                    double eps, bool swap, int64_t n, int64_t d)
{
    GRID_LOOP(r, n)
    {
        const T *ar = ap + r * d, *pr = pp + r * d, *qr = qp + r * d;
        TripRow R;
        R.dp = dist(ar, pr, d, np, eps);
        R.dn = dist(ar, qr, d, np, eps);
        R.ds = 0;
        R.wn = 1;
        R.ws = 0;
        double dneg = R.dn;
        if (swap) {
            R.ds = dist(pr, qr, d, np, eps);
            /* min's gradient: to the smaller, half each on a tie */
            if (R.ds < R.dn)
                R.wn = 0, R.ws = 1, dneg = R.ds;
            else if (R.ds == R.dn)
                R.wn = 0.5, R.ws = 0.5;
        }
        double z = margin + R.dp - dneg;
        R.g = z >= 0 ? gy_at(gy, gy_one, r, scale) : 0.0;
        rows[r] = R;
    }
}

template <typename T>
__global__ void triplet_bwd_kernel(T *gap, T *gpp, T *gqp, const TripRow *rows, const T *ap,
                                   const T *pp, const T *qp, double np, double eps, int64_t n,
                                   int64_t d)
{
    GRID_LOOP(e, n * d)
    {
        const TripRow R = rows[e / d];
        double uap = 0, uan = 0, upn = 0;
        if (R.g != 0) {
            uap = dnorm((double)ap[e] - (double)pp[e] + eps, R.dp, np);
            uan = R.wn != 0 ? dnorm((double)ap[e] - (double)qp[e] + eps, R.dn, np) : 0;
            upn = R.ws != 0 ? dnorm((double)pp[e] - (double)qp[e] + eps, R.ds, np) : 0;
        }
        if (gap) gap[e] = (T)(R.g * (uap - R.wn * uan));
        if (gpp) gpp[e] = (T)(R.g * (-uap - R.ws * upn));
        if (gqp) gqp[e] = (T)(R.g * (R.wn * uan + R.ws * upn));
    }
}

void triplet_margin(td_tensor *out, const td_tensor *a, const td_tensor *p, const td_tensor *q,
                    double margin, double np, double eps, bool swap, int64_t n, int64_t d)
{
    if (n == 0) return;
    use_device_of(out);
    TDC_FLOAT_DISPATCH(a->dtype, {
        triplet_kernel<T><<<blocks_for(n), THREADS>>>(mptr<T>(out), cptr<T>(a), cptr<T>(p),
                                                      cptr<T>(q), margin, np, eps, swap, n, d);
    });
    check_launch("triplet_margin_loss");
}

void triplet_margin_backward(td_tensor *ga, td_tensor *gp, td_tensor *gq, const td_tensor *gy,
                             double scale, const td_tensor *a, const td_tensor *p,
                             const td_tensor *q, double margin, double np, double eps, bool swap,
                             int64_t n, int64_t d)
{
    td_tensor *any = ga ? ga : gp ? gp : gq;
    if (n == 0 || !any) return;
    use_device_of(any);
    Scratch s(sizeof(TripRow) * (size_t)n);
    if (!s.p) return;
    TDC_FLOAT_DISPATCH(a->dtype, {
        triplet_rows_kernel<T><<<blocks_for(n), THREADS>>>(
            s.as<TripRow>(), cptr<T>(gy), td_numel(gy) == 1, scale, cptr<T>(a), cptr<T>(p),
            cptr<T>(q), margin, np, eps, swap, n, d);
        if (d > 0)
            triplet_bwd_kernel<T><<<blocks_for(n * d), THREADS>>>(
                mptr<T>(ga), mptr<T>(gp), mptr<T>(gq), s.as<TripRow>(), cptr<T>(a), cptr<T>(p),
                cptr<T>(q), np, eps, n, d);
    });
    check_launch("triplet_margin_loss backward");
}

} // namespace

extern "C" const struct td_margin_loss_kernels td_cuda_margin_loss = {
    multi_margin,    multi_margin_backward,    multilabel_margin, multilabel_margin_backward,
    hinge_embedding, hinge_embedding_backward, cosine_embedding,  cosine_embedding_backward,
    margin_ranking,  margin_ranking_backward,  triplet_margin,    triplet_margin_backward,
    check_range,
};
