/* CUDA kernels of ctc_loss (kernels/loss_ctc.h): the alpha (forward) and
 * beta (backward) recursions of Graves et al. 2006 in log space.
 *
 * One block per sample; its threads split the extended label positions
 * s = 0 .. 2 tl (l' = blank l_0 blank l_1 ... blank) and step through time
 * together, a __syncthreads between time steps (step t reads only row
 * t - 1, or t + 1 for beta, which the whole block finished writing). Every
 * formula and its order of operations is the CPU kernel's
 * (kernels/cpu/loss_ctc.c, itself ATen's LossCTC.cpp), so the results
 * agree to the rounding of the device's exp and log. The gradient's
 * per-class sums (log sum over the positions s with l'_s = c of
 * alpha beta) run after the beta table is complete, one thread per
 * (t, c), over s in the CPU's descending order: the same terms in the same
 * order, no atomics, the same bits on every run. */
#include "rows.cuh"

using namespace tdc;

namespace {

constexpr int CTC_THREADS = 256;

/* the plan's host arrays on the device: input_len, target_len, tg_offset */
struct Lens {
    const int64_t *il, *tl, *off;
};

__device__ inline int64_t prime(const int64_t *tg, int64_t s, int64_t blank)
{
    return s % 2 == 0 ? blank : tg[s / 2];
}

struct Geo {
    int64_t T, N, C, L, blank, st0, st1, st2;
};

template <typename T>
__global__ void ctc_forward_kernel(T *nd, T *ed, T *lad, const T *lpd, const int64_t *tgd,
                                   Lens lens, Geo g, bool zero_infinity, bool divide)
{
    const int64_t b = blockIdx.x;
    const int64_t il = lens.il[b], tl = lens.tl[b], blank = g.blank, L = g.L;
    const int64_t *tg = tgd + lens.off[b];
    const T *lp = lpd + b * g.st1;
    T *la = lad + b * g.T * L;
    const T neginf = (T)-INFINITY;
    for (int64_t i = threadIdx.x; i < g.T * L; i += blockDim.x) la[i] = neginf;
    __syncthreads();
    if (il > 0) {
        if (threadIdx.x == 0) {
            la[0] = lp[blank * g.st2];
            if (tl > 0) la[1] = lp[tg[0] * g.st2];
        }
        __syncthreads();
        for (int64_t t = 1; t < il; t++) {
            const T *prev = la + (t - 1) * L;
            T *cur = la + t * L;
            for (int64_t s = threadIdx.x; s < 2 * tl + 1; s += blockDim.x) {
                int64_t c = prime(tg, s, blank);
                T la1 = prev[s], lamax = la1, la2, la3;
                if (s > 0) {
                    la2 = prev[s - 1];
                    if (la2 > lamax) lamax = la2;
                } else {
                    la2 = neginf;
                }
                if (s > 1 && prime(tg, s - 2, blank) != c) {
                    la3 = prev[s - 2];
                    if (la3 > lamax) lamax = la3;
                } else {
                    la3 = neginf;
                }
                if (lamax == neginf) lamax = 0;
                cur[s] = dlog(dexp<T>(la1 - lamax) + dexp<T>(la2 - lamax) + dexp<T>(la3 - lamax)) +
                         lamax + lp[t * g.st0 + c * g.st2];
            }
            __syncthreads();
        }
    }
    if (threadIdx.x != 0) return;
    T loss;
    if (il == 0) {
        /* nothing to align: certain for an empty target, impossible otherwise */
        loss = tl == 0 ? (T)0 : (T)INFINITY;
    } else {
        const T *last = la + (il - 1) * L;
        if (tl == 0) {
            loss = -last[0];
        } else {
            T l1 = last[2 * tl], l2 = last[2 * tl - 1];
            T m = l1 > l2 ? l1 : l2;
            m = m == neginf ? (T)0 : m;
            loss = -(dlog(dexp<T>(l1 - m) + dexp<T>(l2 - m)) + m);
        }
    }
    nd[b] = loss;
    T e = (zero_infinity && loss == (T)INFINITY) ? (T)0 : loss;
    if (divide) e = e / (T)(tl > 1 ? tl : 1);
    ed[b] = e;
}

template <typename T>
__global__ void ctc_backward_kernel(T *gd, T *lbd, const T *god, int64_t gst,
                                    td_reduction reduction, const T *lpd, const int64_t *tgd,
                                    const T *nd, const T *lad, Lens lens, Geo g, bool zero_infinity)
{
    const int64_t b = blockIdx.x;
    const int64_t il = lens.il[b], tl = lens.tl[b], blank = g.blank, L = g.L, C = g.C,
                  NC = g.N * g.C;
    const int64_t *tg = tgd + lens.off[b];
    const T *lp = lpd + b * g.st1, *la = lad + b * g.T * L;
    T *gb = gd + b * C, *lb = lbd + b * g.T * L;
    const T loss = nd[b], neginf = (T)-INFINITY;
    int64_t t_end = il;
    if (zero_infinity && loss == (T)INFINITY) t_end = 0;
    if (t_end > 0) {
        for (int64_t i = threadIdx.x; i < g.T * L; i += blockDim.x) lb[i] = neginf;
        __syncthreads();
        const int64_t tlast = il - 1;
        if (threadIdx.x == 0) {
            lb[tlast * L + 2 * tl] = lp[tlast * g.st0 + blank * g.st2];
            if (tl > 0)
                lb[tlast * L + 2 * tl - 1] =
                    lp[tlast * g.st0 + prime(tg, 2 * tl - 1, blank) * g.st2];
        }
        __syncthreads();
        for (int64_t t = il - 2; t >= 0; t--) {
            const T *next = lb + (t + 1) * L;
            T *cur = lb + t * L;
            for (int64_t s = threadIdx.x; s < 2 * tl + 1; s += blockDim.x) {
                int64_t c = prime(tg, s, blank);
                T lb1 = next[s], lbmax = lb1, lb2, lb3;
                if (s < 2 * tl) {
                    lb2 = next[s + 1];
                    if (lb2 > lbmax) lbmax = lb2;
                } else {
                    lb2 = neginf;
                }
                if (s < 2 * tl - 1 && prime(tg, s + 2, blank) != c) {
                    lb3 = next[s + 2];
                    if (lb3 > lbmax) lbmax = lb3;
                } else {
                    lb3 = neginf;
                }
                if (lbmax == neginf) lbmax = 0;
                cur[s] = dlog(dexp<T>(lb1 - lbmax) + dexp<T>(lb2 - lbmax) + dexp<T>(lb3 - lbmax)) +
                         lbmax + lp[t * g.st0 + c * g.st2];
            }
            __syncthreads();
        }
        /* this sample's share of the reduced loss's gradient */
        T gr;
        if (reduction == TD_REDUCE_NONE)
            gr = god[b * gst];
        else if (reduction == TD_REDUCE_MEAN)
            gr = god[0] / (T)g.N / (T)(tl > 1 ? tl : 1);
        else
            gr = god[0];
        for (int64_t i = threadIdx.x; i < il * C; i += blockDim.x) {
            int64_t t = i / C, c = i - t * C;
            const T *lat = la + t * L, *lbt = lb + t * L;
            T lcab = neginf;
            if (t == tlast) {
                /* the CPU sets the last row's two ends, and only them */
                if (c == blank)
                    lcab = lat[2 * tl] + lbt[2 * tl];
                else if (tl > 0 && c == prime(tg, 2 * tl - 1, blank))
                    lcab = lat[2 * tl - 1] + lbt[2 * tl - 1];
            } else {
                /* positions holding c, in the CPU's descending order */
                for (int64_t s = 2 * tl; s >= 0; s--) {
                    if (prime(tg, s, blank) != c) continue;
                    T lab = lat[s] + lbt[s];
                    if (lcab == neginf) {
                        lcab = lab;
                    } else {
                        T m = lcab > lab ? lcab : lab;
                        lcab = dlog(dexp<T>(lcab - m) + dexp<T>(lab - m)) + m;
                    }
                }
            }
            T l = lp[t * g.st0 + c * g.st2];
            gb[t * NC + c] = (dexp<T>(l) - dexp<T>(lcab + loss - l)) * gr;
        }
    }
    for (int64_t i = t_end * C + threadIdx.x; i < g.T * C; i += blockDim.x) {
        int64_t t = i / C, c = i - t * C;
        gb[t * NC + c] = 0;
    }
}

/* the plan's lengths and offsets copied to the device (3N int64) */
struct DevLens {
    Scratch s;
    Lens lens;
    bool ok;
    explicit DevLens(const td_ctc_plan *p)
        : s(sizeof(int64_t) * (size_t)(3 * p->N)), lens{}, ok(false)
    {
        if (!s.p) return;
        int64_t *d = s.as<int64_t>();
        size_t nb = sizeof(int64_t) * (size_t)p->N;
        if (td_cuda_upload(s.device, d, p->input_len, nb) != TD_OK) return;
        if (td_cuda_upload(s.device, d + p->N, p->target_len, nb) != TD_OK) return;
        if (td_cuda_upload(s.device, d + 2 * p->N, p->tg_offset, nb) != TD_OK) return;
        lens = Lens{d, d + p->N, d + 2 * p->N};
        ok = true;
    }
};

Geo geo_of(const td_ctc_plan *p, const td_tensor *lp)
{
    return Geo{p->T,     p->N,          p->C,          2 * p->S + 1,
               p->blank, lp->stride[0], lp->stride[1], lp->stride[2]};
}

void ctc_forward(td_tensor *nll, td_tensor *elem, td_tensor *log_alpha, const td_tensor *log_probs,
                 const td_tensor *targets, const td_ctc_plan *p, bool zero_infinity, bool divide)
{
    if (p->N == 0) return;
    use_device_of(nll);
    DevLens dl(p);
    if (!dl.ok) return;
    Geo g = geo_of(p, log_probs);
    TDC_FLOAT_DISPATCH(log_probs->dtype, {
        ctc_forward_kernel<T><<<row_blocks(p->N), CTC_THREADS>>>(
            (T *)td_data_ptr(nll), (T *)td_data_ptr(elem), (T *)td_data_ptr(log_alpha),
            (const T *)td_data_ptr(log_probs), (const int64_t *)td_data_ptr(targets), dl.lens, g,
            zero_infinity, divide);
    });
    check_launch("ctc_loss");
}

void ctc_backward(td_tensor *grad, td_tensor *log_beta, const td_tensor *grad_out,
                  td_reduction reduction, const td_tensor *log_probs, const td_tensor *targets,
                  const td_tensor *nll, const td_tensor *log_alpha, const td_ctc_plan *p,
                  bool zero_infinity)
{
    if (p->N == 0) return;
    use_device_of(grad);
    DevLens dl(p);
    if (!dl.ok) return;
    Geo g = geo_of(p, log_probs);
    int64_t gst = grad_out->ndim ? grad_out->stride[0] : 0;
    TDC_FLOAT_DISPATCH(log_probs->dtype, {
        ctc_backward_kernel<T><<<row_blocks(p->N), CTC_THREADS>>>(
            (T *)td_data_ptr(grad), (T *)td_data_ptr(log_beta), (const T *)td_data_ptr(grad_out),
            gst, reduction, (const T *)td_data_ptr(log_probs),
            (const int64_t *)td_data_ptr(targets), (const T *)td_data_ptr(nll),
            (const T *)td_data_ptr(log_alpha), dl.lens, g, zero_infinity);
    });
    check_launch("ctc_loss backward");
}

} // namespace

extern "C" const struct td_ctc_loss_kernels td_cuda_ctc_loss = {
    ctc_forward,
    ctc_backward,
};
