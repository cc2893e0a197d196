/* CUDA kernels of the softmax losses: cross_entropy, nll_loss, focal_loss,
 * poly1_cross_entropy (kernels/loss_softmax.h).
 *
 * Fused per row, as llm.c's classifier: one block per row reads the
 * logits once in the forward, keeping a running max and a sum of
 * exponentials rescaled whenever the max grows (online softmax), and once
 * in the backward, recomputing p = exp((x - m) - ls) from the saved row
 * max m and log-sum ls; no softmax is ever stored. The formulas are the
 * CPU kernels' (kernels/cpu/loss_softmax.c) term for term, so the two
 * agree to rounding, non-finite rows included: a row holding +inf, or only
 * -inf, gives NaN as the CPU's two-pass form does.
 *
 * Deterministic: every thread folds its classes j = t, t + T, ... in
 * order, then a fixed halving tree combines the partials; the target check
 * sums per-block partials and folds them in one block. No atomics. */
#include "rows.cuh"

using namespace tdc;

namespace {

template <typename T> struct Part {
    T m, s, s2; /* running max, sum of exp(x - m), and the same over j != y */
    double a,
        b; /* linear sums: sum w x and sum w (smoothing), sum w t' x and sum w t' (prob targets) */
};

template <typename T> __device__ inline T scaled(T s, T m, T to)
{
    return s == (T)0 ? (T)0 : s * dexp<T>(m - to); /* an empty partial stays 0, never 0 * NaN */
}

template <typename T> struct Comb {
    __device__ Part<T> operator()(Part<T> p, Part<T> q) const
    {
        Part<T> r;
        r.m = p.m > q.m ? p.m : q.m;
        r.s = scaled(p.s, p.m, r.m) + scaled(q.s, q.m, r.m);
        r.s2 = scaled(p.s2, p.m, r.m) + scaled(q.s2, q.m, r.m);
        r.a = p.a + q.a;
        r.b = p.b + q.b;
        return r;
    }
};

template <typename T> __device__ inline void push(Part<T> &p, T x, bool other)
{
    if (x > p.m) {
        T f = dexp<T>(p.m - x);
        p.s = p.s * f + (T)1;
        p.s2 = p.s2 * f + (other ? (T)1 : (T)0);
        p.m = x;
    } else if (x != (T)-INFINITY) { /* NaN lands here and poisons the sums, as on the CPU */
        T e = dexp<T>(x - p.m);
        p.s += e;
        if (other) p.s2 += e;
    }
}

/* ---- target check ---------------------------------------------------------------- */

struct Chk {
    long long bad, count;
    double ws;
};

struct ChkComb {
    __device__ Chk operator()(Chk p, Chk q) const
    {
        Chk r;
        r.bad = p.bad < q.bad ? p.bad : q.bad;
        r.count = p.count + q.count;
        r.ws = p.ws + q.ws;
        return r;
    }
};

constexpr long long NONE = 0x7fffffffffffffffLL;
constexpr int CHK_THREADS = 256, CHK_BLOCKS = 1024;

template <typename T>
__global__ void check_partials(const int64_t *t, int64_t rows, int64_t c, int64_t ignore,
                               const T *w, Chk *part)
{
    __shared__ Chk sh[CHK_THREADS];
    Chk acc = {NONE, 0, 0.0};
    int64_t step = (int64_t)gridDim.x * blockDim.x;
    for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += step) {
        int64_t y = t[r];
        if (y == ignore) continue;
        if (y < 0 || y >= c) {
            if (acc.bad == NONE) acc.bad = r; /* r grows: the thread's first is its smallest */
            continue;
        }
        acc.count++;
        if (w) acc.ws += (double)w[y];
    }
    acc = tree_reduce(acc, sh, ChkComb{});
    if (threadIdx.x == 0) part[blockIdx.x] = acc;
}

__global__ void check_final(const Chk *part, int nb, Chk *out)
{
    __shared__ Chk sh[CHK_THREADS];
    Chk acc = {NONE, 0, 0.0};
    for (int i = threadIdx.x; i < nb; i += blockDim.x) acc = ChkComb{}(acc, part[i]);
    acc = tree_reduce(acc, sh, ChkComb{});
    if (threadIdx.x == 0) *out = acc;
}

int64_t cuda_check_targets(const td_smx_args *a, int64_t *count, double *wsum)
{
    *count = 0;
    *wsum = 0;
    int64_t rows = a->n * a->inner;
    if (rows == 0) return -1;
    if (!use_device_of_ptr(a->target, "cross_entropy target check")) return -1;
    int nb = (int)blocks_for(rows, CHK_THREADS);
    if (nb > CHK_BLOCKS) nb = CHK_BLOCKS;
    Scratch s(sizeof(Chk) * (size_t)(nb + 1));
    if (!s.p) return -1;
    Chk *part = s.as<Chk>();
    TDC_FLOAT_DISPATCH(a->dtype, {
        check_partials<T><<<nb, CHK_THREADS>>>(a->target, rows, a->c, a->ignore_index,
                                               (const T *)a->weight, part);
    });
    check_final<<<1, CHK_THREADS>>>(part, nb, part + nb);
    check_launch("cross_entropy target check");
    Chk h = {NONE, 0, 0.0};
    if (td_cuda_download(s.device, &h, part + nb, sizeof h) != TD_OK) return -1;
    if (h.bad != NONE) return h.bad;
    *count = h.count;
    *wsum = a->weight ? h.ws : (double)h.count;
    return -1;
}

/* ---- forward ------------------------------------------------------------------------ */

template <typename T> __global__ void nll_forward(td_smx_args a, T *loss)
{
    int64_t rows = a.n * a.inner, step = (int64_t)gridDim.x * blockDim.x;
    const T *w = (const T *)a.weight;
    for (int64_t r = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; r < rows; r += step) {
        int64_t y = a.target[r];
        if (y == a.ignore_index) {
            loss[r] = 0;
            continue;
        }
        int64_t i = r / a.inner, k = r - i * a.inner;
        const T *x = (const T *)a.x + i * a.c * a.inner + k;
        double wy = w ? (double)w[y] : 1.0;
        loss[r] = (T)(-wy * (double)x[y * a.inner]);
    }
}

template <typename T> __global__ void smx_forward(td_smx_args a, T *loss, T *aux0, T *aux1)
{
    extern __shared__ __align__(16) unsigned char smem[];
    Part<T> *sh = (Part<T> *)smem;
    const int64_t c = a.c, cs = a.inner, rows = a.n * a.inner;
    const T *w = (const T *)a.weight;
    const double e = a.smoothing;
    const T k1 = (T)(1 - e), k0 = (T)(e / (double)c);
    const bool smooth = !TD_SMX_IS_FOCAL(a.kind) && !a.prob && e > 0;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t i = r / a.inner, k = r - i * a.inner, base = i * c * a.inner + k;
        const T *x = (const T *)a.x + base;
        const T *t = a.prob ? (const T *)a.prob + base : nullptr;
        int64_t y = -1;
        if (!t) {
            y = a.target[r];
            if (y == a.ignore_index) { /* the whole block takes this branch */
                if (threadIdx.x == 0) {
                    loss[r] = 0;
                    if (aux0) aux0[2 * r] = aux0[2 * r + 1] = 0;
                    if (aux1) aux1[r] = 0;
                }
                continue;
            }
        }
        Part<T> p = {(T)-INFINITY, (T)0, (T)0, 0.0, 0.0};
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            T xv = x[j * cs];
            push(p, xv, j != y);
            if (t) {
                T wt = (w ? w[j] : (T)1) * (k1 * t[j * cs] + k0);
                p.b += (double)wt;
                p.a += (double)wt * (double)xv;
            } else if (smooth) {
                double wj = w ? (double)w[j] : 1.0;
                p.a += wj * (double)xv;
                p.b += wj;
            }
        }
        p = tree_reduce(p, sh, Comb<T>{});
        if (threadIdx.x != 0) continue;
        T m = p.m, s = p.s, s2 = p.s2;
        if (!(m > (T)-INFINITY && m < (T)INFINITY)) s = s2 = (T)NAN; /* the CPU's exp(inf - inf) */
        if (t) {
            T ls = (T)log((double)s);
            loss[r] = (T)(((double)m + (double)ls) * p.b - p.a);
            aux0[2 * r] = m;
            aux0[2 * r + 1] = ls;
            aux1[r] = (T)p.b;
            continue;
        }
        double wy = w ? (double)w[y] : 1.0;
        double xy = (double)x[y * cs];
        if (TD_SMX_IS_FOCAL(a.kind)) {
            double ls = log((double)s), ls2 = log((double)s2);
            double logp = xy == (double)m ? -log1p((double)s2) : (xy - (double)m) - ls;
            double l1mp = ls2 - ls;
            double g = a.gamma;
            double pw = g == 0 ? 1.0 : exp(g * l1mp);
            double al = a.alpha ? (double)((const T *)a.alpha)[y] : a.alpha_scalar;
            double pp = exp(logp);
            double l = -al * pw * logp, gg = al * pw * (g * pp * logp - exp(l1mp));
            if (TD_SMX_IS_POLY(a.kind)) { /* + epsilon (1 - p)^(g + 1) */
                l += a.epsilon * pw * exp(l1mp);
                gg -= a.epsilon * (g + 1) * pp * pw * exp(l1mp);
            }
            loss[r] = (T)l;
            aux0[2 * r] = m;
            aux0[2 * r + 1] = (T)ls2;
            aux1[r] = (T)gg;
            continue;
        }
        double ls = log((double)s);
        double nlp = ((double)m - xy) + ls;
        double l = (1 - e) * wy * nlp;
        if (e > 0) {
            double lsr = (double)(T)ls; /* the CPU sums with ls rounded to T */
            l += e / (double)c * (((double)m + lsr) * p.b - p.a);
        }
        if (TD_SMX_IS_POLY(a.kind)) {
            double pt = (1 - e) * exp(-nlp) + e / (double)c;
            l += a.epsilon * wy * (1 - pt);
        }
        loss[r] = (T)l;
        aux0[2 * r] = m;
        aux0[2 * r + 1] = (T)ls;
    }
}

void cuda_forward(const td_smx_args *a, void *loss, void *aux0, void *aux1)
{
    int64_t rows = a->n * a->inner;
    if (rows == 0) return;
    if (!use_device_of_ptr(loss, "softmax loss forward")) return;
    TDC_FLOAT_DISPATCH(a->dtype, {
        if (a->kind == TD_SMX_NLL) {
            nll_forward<T><<<blocks_for(rows), THREADS>>>(*a, (T *)loss);
        } else {
            int nt = row_threads(a->c);
            smx_forward<T><<<row_blocks(rows), nt, sizeof(Part<T>) * (size_t)nt>>>(
                *a, (T *)loss, (T *)aux0, (T *)aux1);
        }
    });
    check_launch("softmax loss forward");
}

/* ---- backward ----------------------------------------------------------------------- */

template <typename T> __global__ void weight_total(const T *w, int64_t c, double *out)
{
    __shared__ double sh[THREADS];
    double acc = 0;
    for (int64_t j = threadIdx.x; j < c; j += blockDim.x) acc += (double)w[j];
    acc = tree_reduce(acc, sh, Sum{});
    if (threadIdx.x == 0) *out = acc;
}

/* one thread per element of gx: 0, or -g w_y at the target */
template <typename T> __global__ void nll_backward(td_smx_args a, const T *gy, double scale, T *gx)
{
    int64_t total = a.n * a.c * a.inner, step = (int64_t)gridDim.x * blockDim.x, ci = a.c * a.inner;
    const T *w = (const T *)a.weight;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += step) {
        int64_t i = e / ci, rem = e - i * ci, j = rem / a.inner, k = rem - j * a.inner,
                r = i * a.inner + k;
        int64_t y = a.target[r];
        T v = 0;
        if (y != a.ignore_index && j == y) {
            double gr = scale * (gy ? (double)gy[r] : 1.0);
            double wy = w ? (double)w[y] : 1.0;
            v = (T)(-gr * wy);
        }
        gx[e] = v;
    }
}

template <typename T>
__global__ void smx_backward(td_smx_args a, const T *aux0, const T *aux1, const T *gy, double scale,
                             T *gx, T *gtp, const double *wtotal_p)
{
    const int64_t c = a.c, cs = a.inner, rows = a.n * a.inner;
    const T *w = (const T *)a.weight;
    const double e = a.smoothing;
    const double wtotal = wtotal_p ? *wtotal_p : (double)c;
    for (int64_t r = blockIdx.x; r < rows; r += gridDim.x) {
        int64_t i = r / a.inner, k = r - i * a.inner, base = i * c * a.inner + k;
        const T *x = (const T *)a.x + base;
        T *g = gx + base;
        double gr = scale * (gy ? (double)gy[r] : 1.0);
        T m = aux0[2 * r], ls = aux0[2 * r + 1];
        if (a.prob) {
            const T *t = (const T *)a.prob + base;
            T k1 = (T)(1 - e), k0 = (T)(e / (double)c), tw = aux1[r], grt = (T)gr;
            T *gt = gtp ? gtp + base : nullptr;
            for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
                T wj = w ? w[j] : (T)1;
                T xv = x[j * cs];
                g[j * cs] = grt * (dexp<T>((xv - m) - ls) * tw - wj * (k1 * t[j * cs] + k0));
                if (gt) gt[j * cs] = grt * k1 * wj * ((m - xv) + ls);
            }
            continue;
        }
        int64_t y = a.target[r];
        if (y == a.ignore_index) {
            for (int64_t j = threadIdx.x; j < c; j += blockDim.x) g[j * cs] = 0;
            continue;
        }
        if (TD_SMX_IS_FOCAL(a.kind)) {
            double gg = gr * (double)aux1[r];
            T A = (T)-gg;
            bool zero = ls == (T)-INFINITY; /* every p_j, j != y, is 0: q_j is bounded, g is 0 */
            for (int64_t j = threadIdx.x; j < c; j += blockDim.x)
                g[j * cs] = j == y ? (T)gg : zero ? (T)0 : A * dexp<T>((x[j * cs] - m) - ls) - (T)0;
            continue;
        }
        double wy = w ? (double)w[y] : 1.0;
        double A = (1 - e) * wy + e * wtotal / (double)c, D = (1 - e) * wy;
        if (TD_SMX_IS_POLY(a.kind)) {
            double py = exp(((double)x[y * cs] - (double)m) - (double)ls);
            double bp = a.epsilon * wy * (1 - e) * py;
            A += bp;
            D += bp;
        }
        T At = (T)(gr * A), Bt = (T)(gr * e / (double)c);
        for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
            T v = At * dexp<T>((x[j * cs] - m) - ls) - (w ? Bt * w[j] : Bt);
            if (j == y) v = (T)((double)v - gr * D);
            g[j * cs] = v;
        }
    }
}

void cuda_backward(const td_smx_args *a, const void *aux0, const void *aux1, const void *gy,
                   double scale, void *gx, void *gt)
{
    int64_t rows = a->n * a->inner;
    if (rows == 0) return;
    if (!use_device_of_ptr(gx, "softmax loss backward")) return;
    TDC_FLOAT_DISPATCH(a->dtype, {
        if (a->kind == TD_SMX_NLL) {
            nll_backward<T>
                <<<blocks_for(rows * a->c), THREADS>>>(*a, (const T *)gy, scale, (T *)gx);
        } else {
            Scratch wt(a->weight ? sizeof(double) : 0);
            const double *wtp = nullptr;
            if (a->weight && wt.p) {
                weight_total<T><<<1, THREADS>>>((const T *)a->weight, a->c, wt.as<double>());
                wtp = wt.as<double>();
            }
            smx_backward<T><<<row_blocks(rows), row_threads(a->c)>>>(
                *a, (const T *)aux0, (const T *)aux1, (const T *)gy, scale, (T *)gx, (T *)gt, wtp);
        }
    });
    check_launch("softmax loss backward");
}

} // namespace

/* forward_grad NULL: the runtime runs forward and backward apart here */
extern "C" const struct td_softmax_loss_kernels td_cuda_softmax_loss = {
    cuda_check_targets,
    cuda_forward,
    cuda_backward,
    nullptr,
};
