/* CUDA kernels of the binary losses (kernels/loss_binary.h): bce,
 * bce_with_logits, sigmoid_focal, asymmetric, soft_margin,
 * multilabel_soft_margin.
 *
 * One thread per element (per row for multilabel_soft_margin, whose row
 * sum runs in order as on the CPU), with the CPU kernels' stable formulas
 * (kernels/cpu/loss_binary.c) built from e = exp(-|x|); log1p(e) is
 * libm's where the CPU uses its own float series (both within rounding).
 * An input the loss refuses (p outside [0, 1] for bce, y outside [0, 1]
 * for sigmoid_focal) lowers a device flag to its index with an integer
 * atomicMin, whose result does not depend on the order; the flag is read
 * back once, so the front-end raises the CPU's error. */
#include "rows.cuh"

using namespace tdc;

namespace {

enum Kind { BCE, BCEL, SFOCAL, ASL, SOFT };

template <typename T> struct BinArgs {
    T sc, keep, half, g, al, gp, gn, clip, leps;
};

template <typename T> __device__ inline void stable(T xv, T &e, T &lp, T &r, T &spn, T &spx)
{
    T ax = xv < 0 ? -xv : xv;
    e = dexp<T>(-ax);
    lp = dlog1p(e);
    r = (T)1 / ((T)1 + e);
    spn = (xv < 0 ? -xv : (T)0) + lp;
    spx = (xv > 0 ? xv : (T)0) + lp;
}

template <typename T>
__global__ void bin_kernel(Kind kind, int64_t n, BinArgs<T> k, T *l, T *gx, T *gy, const T *xp,
                           const T *yp, const T *wp, const T *pwp, unsigned long long *bad)
{
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {
        T xv = xp[i], yy = yp[i], ww = wp ? wp[i] : (T)1;
        switch (kind) {
        case BCE: {
            T pv = xv, t = yy;
            if (!(pv >= 0 && pv <= 1)) {
                atomicMin(bad, (unsigned long long)i);
                continue;
            }
            T lp = dlog(pv), l1 = dlog((T)1 - pv);
            lp = lp < (T)-100 ? (T)-100 : lp;
            l1 = l1 < (T)-100 ? (T)-100 : l1;
            l[i] = ((t - 1) * l1 - t * lp) * ww;
            if (gx) {
                T den = ((T)1 - pv) * pv;
                den = den < (T)1e-12f ? (T)1e-12f : den;
                gx[i] = k.sc * ((pv - t) / den) * ww;
            }
            if (gy) gy[i] = -k.sc * dlog(pv / ((T)1 - pv)) * ww;
        } break;
        case BCEL: {
            T e, lp, r, spn, spx;
            stable(xv, e, lp, r, spn, spx);
            yy = yy * k.keep + k.half;
            T sg = xv >= 0 ? r : e * r;
            if (pwp) {
                T pv = pwp[i];
                l[i] = ww * (((T)1 - yy) * spx + pv * yy * spn);
                if (gx) gx[i] = k.sc * ww * ((pv * yy + (T)1 - yy) * sg - pv * yy);
                if (gy) gy[i] = k.sc * k.keep * ww * (pv * spn - spx);
            } else {
                l[i] = ww * (((T)1 - yy) * spx + yy * spn);
                if (gx) gx[i] = k.sc * ww * (sg - yy);
                if (gy) gy[i] = -k.sc * k.keep * ww * xv;
            }
        } break;
        case SFOCAL: {
            if (!(yy >= 0 && yy <= 1)) {
                atomicMin(bad, (unsigned long long)i);
                continue;
            }
            T e, lp, r, spn, spx;
            stable(xv, e, lp, r, spn, spx);
            T s = xv >= 0 ? r : e * r;
            T ls = -spn, lt = -spx;
            T a1 = yy > 0 ? dlog(yy) + lt : (T)-INFINITY;
            T a2 = yy < 1 ? dlog((T)1 - yy) + ls : (T)-INFINITY;
            T hi = a1 > a2 ? a1 : a2, lo = a1 > a2 ? a2 : a1;
            T lq = hi + dlog1p(dexp<T>(lo - hi));
            T qg = k.g == 0 ? (T)1 : dexp<T>(k.g * lq);
            T at = k.al >= 0 ? k.al * yy + ((T)1 - k.al) * ((T)1 - yy) : (T)1;
            T ce = yy * spn + ((T)1 - yy) * spx;
            l[i] = at * ce * qg;
            if (gx) {
                T extra = k.g == 0 ? (T)0 : k.g * ce * ((T)1 - 2 * yy) * dexp<T>(ls + lt - lq);
                gx[i] = k.sc * at * qg * ((s - yy) + extra);
            }
        } break;
        case ASL: {
            T e, lp, r, spn, spx;
            stable(xv, e, lp, r, spn, spx);
            T s = xv >= 0 ? r : e * r, t = xv >= 0 ? e * r : r;
            T ls = -spn, lt = -spx;
            T lpos = ls > k.leps ? ls : k.leps;
            T wpos = k.gp == 0 ? (T)1 : dexp<T>(k.gp * lt);
            T lossv = -yy * wpos * lpos;
            T d = yy * wpos * (k.gp * s * lpos - (ls >= k.leps ? t : (T)0));
            T om, lom, pm, dpm;
            if (k.clip > 0) {
                om = t + k.clip;
                dpm = om <= 1 ? s * t : (T)0;
                om = om < 1 ? om : (T)1;
                lom = dlog(om);
                pm = s - k.clip;
                pm = pm > 0 ? pm : (T)0;
            } else {
                om = t, lom = lt, pm = s, dpm = s * t;
            }
            T lneg = lom > k.leps ? lom : k.leps;
            T A, dA;
            if (k.gn == 0) {
                A = 1, dA = 0;
            } else if (k.clip > 0) {
                A = dpow(pm, k.gn);
                dA = pm > 0 ? k.gn * dpow(pm, k.gn - 1) * dpm : (T)0;
            } else {
                A = dexp<T>(k.gn * ls);
                dA = k.gn * A * t;
            }
            T dB = lom >= k.leps ? (k.clip > 0 ? -dpm / om : -s) : (T)0;
            lossv -= ((T)1 - yy) * A * lneg;
            d -= ((T)1 - yy) * (dA * lneg + A * dB);
            l[i] = lossv;
            if (gx) gx[i] = k.sc * d;
        } break;
        default: { /* soft margin */
            T z = -yy * xv, e, lp, r, spn, spx;
            stable(z, e, lp, r, spn, spx);
            l[i] = spx;
            if (gx) gx[i] = -k.sc * yy * (z >= 0 ? r : e * r);
        } break;
        }
    }
}

template <typename T> const T *ptr(const td_tensor *t)
{
    return t ? (const T *)td_data_ptr(t) : nullptr;
}

int64_t run(Kind kind, const td_binary_loss_args *a, int64_t n, td_tensor *loss, td_tensor *dx,
            td_tensor *dy, const td_tensor *x, const td_tensor *y, const td_tensor *w,
            const td_tensor *pw)
{
    if (n == 0) return -1;
    use_device_of(loss);
    bool checks = kind == BCE || kind == SFOCAL;
    Scratch s(checks ? sizeof(unsigned long long) : 0);
    unsigned long long *bad = checks ? s.as<unsigned long long>() : nullptr;
    if (checks) {
        if (!bad) return -1;
        cudaMemsetAsync(bad, 0xff, sizeof(unsigned long long));
    }
    TDC_FLOAT_DISPATCH(x->dtype, {
        BinArgs<T> k = {(T)a->scale,
                        (T)(1 - a->smoothing),
                        (T)(a->smoothing / 2),
                        (T)a->gamma,
                        (T)a->alpha,
                        (T)a->gamma_pos,
                        (T)a->gamma_neg,
                        (T)a->clip,
                        kind == ASL ? (T)log(a->eps) : (T)0};
        bin_kernel<T><<<blocks_for(n), THREADS>>>(
            kind, n, k, (T *)td_data_ptr(loss), dx ? (T *)td_data_ptr(dx) : nullptr,
            dy ? (T *)td_data_ptr(dy) : nullptr, ptr<T>(x), ptr<T>(y), ptr<T>(w), ptr<T>(pw), bad);
    });
    check_launch("binary loss");
    if (!checks) return -1;
    unsigned long long h = ~0ULL;
    if (td_cuda_download(s.device, &h, bad, sizeof h) != TD_OK) return -1;
    return h == ~0ULL ? -1 : (int64_t)h;
}

int64_t bce(const td_binary_loss_args *a, int64_t n, td_tensor *loss, td_tensor *dx, td_tensor *dy,
            const td_tensor *x, const td_tensor *y, const td_tensor *w, const td_tensor *pw)
{
    return run(BCE, a, n, loss, dx, dy, x, y, w, pw);
}

int64_t bce_logits(const td_binary_loss_args *a, int64_t n, td_tensor *loss, td_tensor *dx,
                   td_tensor *dy, const td_tensor *x, const td_tensor *y, const td_tensor *w,
                   const td_tensor *pw)
{
    return run(BCEL, a, n, loss, dx, dy, x, y, w, pw);
}

int64_t sigmoid_focal(const td_binary_loss_args *a, int64_t n, td_tensor *loss, td_tensor *dx,
                      td_tensor *dy, const td_tensor *x, const td_tensor *y, const td_tensor *w,
                      const td_tensor *pw)
{
    (void)dy, (void)w, (void)pw;
    return run(SFOCAL, a, n, loss, dx, nullptr, x, y, nullptr, nullptr);
}

int64_t asymmetric(const td_binary_loss_args *a, int64_t n, td_tensor *loss, td_tensor *dx,
                   td_tensor *dy, const td_tensor *x, const td_tensor *y, const td_tensor *w,
                   const td_tensor *pw)
{
    (void)dy, (void)w, (void)pw;
    return run(ASL, a, n, loss, dx, nullptr, x, y, nullptr, nullptr);
}

int64_t soft_margin(const td_binary_loss_args *a, int64_t n, td_tensor *loss, td_tensor *dx,
                    td_tensor *dy, const td_tensor *x, const td_tensor *y, const td_tensor *w,
                    const td_tensor *pw)
{
    (void)dy, (void)w, (void)pw;
    return run(SOFT, a, n, loss, dx, nullptr, x, y, nullptr, nullptr);
}

/* one thread per row; the row's sum runs in order, as on the CPU */
template <typename T>
__global__ void mlsm_kernel(int64_t rows, int64_t C, T sc, T *l, T *gx, T *gy, const T *xp,
                            const T *yp, const T *wp)
{
    T invc = (T)1 / (T)C;
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t row = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; row < rows; row += step) {
        T acc = 0;
        for (int64_t c = row * C; c < row * C + C; c++) {
            T xv = xp[c], yy = yp[c], ww = wp ? wp[c] : (T)1;
            T e, lp, r, spn, spx;
            stable(xv, e, lp, r, spn, spx);
            acc += (yy * spn + ((T)1 - yy) * spx) * ww;
            if (gx) gx[c] = sc * ww * ((xv >= 0 ? r : e * r) - yy) * invc;
            if (gy) gy[c] = -sc * ww * xv * invc;
        }
        l[row] = acc / (T)C;
    }
}

int64_t multilabel_soft_margin(const td_binary_loss_args *a, int64_t n, td_tensor *loss,
                               td_tensor *dx, td_tensor *dy, const td_tensor *x, const td_tensor *y,
                               const td_tensor *w, const td_tensor *pw)
{
    (void)pw;
    int64_t C = a->cols, rows = C > 0 ? n / C : 0;
    if (rows == 0) return -1;
    use_device_of(loss);
    TDC_FLOAT_DISPATCH(x->dtype, {
        mlsm_kernel<T><<<blocks_for(rows), THREADS>>>(
            rows, C, (T)a->scale, (T *)td_data_ptr(loss), dx ? (T *)td_data_ptr(dx) : nullptr,
            dy ? (T *)td_data_ptr(dy) : nullptr, ptr<T>(x), ptr<T>(y), ptr<T>(w));
    });
    check_launch("multilabel_soft_margin_loss");
    return -1;
}

} // namespace

extern "C" const struct td_binary_loss_kernels td_cuda_binary_loss = {
    bce, bce_logits, sigmoid_focal, asymmetric, soft_margin, multilabel_soft_margin,
};
