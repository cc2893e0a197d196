/* CPU kernels of the ctc losses: the alpha (forward) and beta (backward)
 * recursions of Graves et al. 2006 in log space, one sample per task.
 *
 * The extended label sequence of a target l_0 .. l_(n-1) is
 * l' = blank l_0 blank l_1 ... blank l_(n-1) blank, 2n + 1 long; alpha and
 * beta are (T, 2n + 1) tables per sample, rows 2S + 1 wide. The formulas
 * and their order of operations are PyTorch's (ATen's LossCTC.cpp), so the
 * results agree to the rounding of exp and log. Samples are independent,
 * each writes only its own slots, and the batch sum is done afterwards in
 * a fixed order by the front-end, so the bits do not depend on the thread
 * count. */
#include "cpu.h"
#include "iter.h"

#include <math.h>
#include <omp.h>

/* libm's exp and log at T's precision, as std::exp / std::log are */
#define EXP(x) _Generic((x), float : expf, default : exp)(x)
#define LOG(x) _Generic((x), float : logf, default : log)(x)

/* label s of the extended sequence of a target tg */
static inline int64_t prime(const int64_t *tg, int64_t s, int64_t blank)
{
    return s % 2 == 0 ? blank : tg[s / 2];
}

static int threads_for(const td_ctc_plan *p)
{
    int64_t work = p->N * p->T * (2 * p->S + 1);
    int nt = td_cpu_threads_for(work, TD_CPU_GRAIN_COSTLY);
    return nt > p->N ? (int)(p->N > 0 ? p->N : 1) : nt;
}

/* ---- forward ------------------------------------------------------------ */

/* sample b's alpha table and loss */
static void forward_sample(td_tensor *nll, td_tensor *elem, td_tensor *log_alpha,
                           const td_tensor *log_probs, const td_tensor *targets,
                           const td_ctc_plan *p, bool zero_infinity, bool divide, int64_t b)
{
    const int64_t L = 2 * p->S + 1, st0 = log_probs->stride[0], st1 = log_probs->stride[1],
                  st2 = log_probs->stride[2];
    const int64_t *tgd = (const int64_t *)td_cpu_ptr(targets);
    TD_CPU_FLOAT_DISPATCH(log_probs->dtype, {
        const T *lpd = (const T *)td_cpu_ptr(log_probs);
        T *nd = (T *)td_cpu_ptr(nll), *ed = (T *)td_cpu_ptr(elem),
          *lad = (T *)td_cpu_ptr(log_alpha);
        const T neginf = -INFINITY;
        {
            const int64_t il = p->input_len[b], tl = p->target_len[b], blank = p->blank;
            const int64_t *tg = tgd + p->tg_offset[b];
            const T *lp = lpd + b * st1;
            T *la = lad + b * p->T * L;
            for (int64_t i = 0; i < p->T * L; i++) la[i] = neginf;
            T loss;
            if (il == 0) {
                /* nothing to align: certain for an empty target, impossible
                 * otherwise (PyTorch reads outside its table here) */
                loss = tl == 0 ? (T)0 : (T)INFINITY;
            } else {
                la[0] = lp[blank * st2];
                if (tl > 0) la[1] = lp[tg[0] * st2];
                for (int64_t t = 1; t < il; t++) {
                    const T *prev = la + (t - 1) * L;
                    T *cur = la + t * L;
                    for (int64_t s = 0; s < 2 * tl + 1; s++) {
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
                        cur[s] = LOG(EXP(la1 - lamax) + EXP(la2 - lamax) + EXP(la3 - lamax)) +
                                 lamax + lp[t * st0 + c * st2];
                    }
                }
                const T *last = la + (il - 1) * L;
                if (tl == 0) {
                    loss = -last[0];
                } else {
                    T l1 = last[2 * tl], l2 = last[2 * tl - 1];
                    T m = l1 > l2 ? l1 : l2;
                    m = m == neginf ? 0 : m;
                    loss = -(LOG(EXP(l1 - m) + EXP(l2 - m)) + m);
                }
            }
            nd[b] = loss;
            T e = (zero_infinity && loss == (T)INFINITY) ? (T)0 : loss;
            if (divide) e = e / (T)(tl > 1 ? tl : 1);
            ed[b] = e;
        }
    })
}

static void forward(td_tensor *nll, td_tensor *elem, td_tensor *log_alpha,
                    const td_tensor *log_probs, const td_tensor *targets, const td_ctc_plan *p,
                    bool zero_infinity, bool divide)
{
    int nt = threads_for(p);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t b = 0; b < p->N; b++)
        forward_sample(nll, elem, log_alpha, log_probs, targets, p, zero_infinity, divide, b);
}

/* ---- backward ----------------------------------------------------------- */

/* sample b's beta table and its slice grad[:, b, :] */
static void backward_sample(td_tensor *grad, td_tensor *log_beta, const td_tensor *grad_out,
                            td_reduction reduction, const td_tensor *log_probs,
                            const td_tensor *targets, const td_tensor *nll,
                            const td_tensor *log_alpha, const td_ctc_plan *p, bool zero_infinity,
                            int64_t b)
{
    const int64_t L = 2 * p->S + 1, N = p->N, C = p->C, st0 = log_probs->stride[0],
                  st1 = log_probs->stride[1], st2 = log_probs->stride[2];
    const int64_t *tgd = (const int64_t *)td_cpu_ptr(targets);
    const int64_t gst = grad_out->ndim ? grad_out->stride[0] : 0;
    TD_CPU_FLOAT_DISPATCH(log_probs->dtype, {
        const T *lpd = (const T *)td_cpu_ptr(log_probs), *nd = (const T *)td_cpu_ptr(nll),
                *lad = (const T *)td_cpu_ptr(log_alpha), *god = (const T *)td_cpu_ptr(grad_out);
        T *gd = (T *)td_cpu_ptr(grad), *lbd = (T *)td_cpu_ptr(log_beta);
        const T neginf = -INFINITY;
        {
            const int64_t il = p->input_len[b], tl = p->target_len[b], blank = p->blank;
            const int64_t *tg = tgd + p->tg_offset[b];
            const T *lp = lpd + b * st1, *la = lad + b * p->T * L;
            T *g = gd + b * C, *lb = lbd + b * p->T * L;
            const T loss = nd[b];
            int64_t t_end = il;
            if (zero_infinity && loss == (T)INFINITY) t_end = 0;
            /* g(t, c) holds log sum over s with l'_s = c of alpha beta */
            for (int64_t t = 0; t < t_end; t++)
                for (int64_t c = 0; c < C; c++) g[t * N * C + c] = neginf;
            if (t_end > 0) {
                for (int64_t i = 0; i < p->T * L; i++) lb[i] = neginf;
                const int64_t tlast = il - 1;
                lb[tlast * L + 2 * tl] = lp[tlast * st0 + blank * st2];
                g[tlast * N * C + blank] = la[tlast * L + 2 * tl] + lb[tlast * L + 2 * tl];
                if (tl > 0) {
                    int64_t c = prime(tg, 2 * tl - 1, blank);
                    lb[tlast * L + 2 * tl - 1] = lp[tlast * st0 + c * st2];
                    g[tlast * N * C + c] = la[tlast * L + 2 * tl - 1] + lb[tlast * L + 2 * tl - 1];
                }
                for (int64_t t = il - 2; t >= 0; t--) {
                    const T *next = lb + (t + 1) * L;
                    T *cur = lb + t * L, *gt = g + t * N * C;
                    for (int64_t s = 2 * tl; s >= 0; s--) {
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
                        cur[s] = LOG(EXP(lb1 - lbmax) + EXP(lb2 - lbmax) + EXP(lb3 - lbmax)) +
                                 lbmax + lp[t * st0 + c * st2];
                        T lab = la[t * L + s] + cur[s], lcab = gt[c];
                        if (lcab == neginf) {
                            lcab = lab;
                        } else {
                            T m = lcab > lab ? lcab : lab;
                            lcab = LOG(EXP(lcab - m) + EXP(lab - m)) + m;
                        }
                        gt[c] = lcab;
                    }
                }
                /* this sample's share of the reduced loss's gradient */
                T gr;
                if (reduction == TD_REDUCE_NONE)
                    gr = god[b * gst];
                else if (reduction == TD_REDUCE_MEAN)
                    gr = god[0] / (T)N / (T)(tl > 1 ? tl : 1);
                else
                    gr = god[0];
                for (int64_t t = 0; t < il; t++) {
                    T *gt = g + t * N * C;
                    for (int64_t c = 0; c < C; c++) {
                        T l = lp[t * st0 + c * st2];
                        gt[c] = (EXP(l) - EXP(gt[c] + loss - l)) * gr;
                    }
                }
            }
            for (int64_t t = t_end; t < p->T; t++)
                for (int64_t c = 0; c < C; c++) g[t * N * C + c] = 0;
        }
    })
}

static void backward(td_tensor *grad, td_tensor *log_beta, const td_tensor *grad_out,
                     td_reduction reduction, const td_tensor *log_probs, const td_tensor *targets,
                     const td_tensor *nll, const td_tensor *log_alpha, const td_ctc_plan *p,
                     bool zero_infinity)
{
    int nt = threads_for(p);
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1) if (nt > 1)
    for (int64_t b = 0; b < p->N; b++)
        backward_sample(grad, log_beta, grad_out, reduction, log_probs, targets, nll, log_alpha, p,
                        zero_infinity, b);
}

const struct td_ctc_loss_kernels td_cpu_ctc_loss = {
    .forward = forward,
    .backward = backward,
};
