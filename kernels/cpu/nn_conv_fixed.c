/* float32 conv2d weight and bias gradients in an order fixed by the
 * shape alone, for deterministic mode.
 *
 * oneDNN's backward-weights primitive splits the sum over the batch
 * between threads in a way that depends on their count, so 1 and 2
 * threads differ in the last bits and training drifts apart. Here the
 * batch is cut into a fixed number of contiguous chunks whatever the
 * thread count; each chunk sums its samples in order (im2col, then a
 * sequential sgemm per group over a few samples at a time, as many as the
 * shape says) into its own partial, and the
 * partials are added in chunk order. Threads only decide who computes
 * which chunk, never what is added to what. */
#include "cpu.h"
#include "iter.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>
#include <string.h>

/* enough chunks to keep 16 threads busy; more would only add partials */
#define CHUNKS 16
/* a thread's im2col columns, in floats: several small samples go to one
 * sgemm (tiny ones run far below the machine's rate), within L2's reach */
#define COL_BUDGET (256 * 1024)

typedef struct {
    const td_conv_args *a;
    const float *x, *gy;
    int64_t cg, og, q, p; /* channels and outputs per group, kh kw cg, oh ow */
    int64_t sub;          /* samples per sgemm */
} fixed_job;

/* sample s, group g as columns: NCHW x gives rows q = (ci, ki, kj), the
 * weight's order, of ld floats, the sample's p columns at col; channels-
 * last x gives p rows of q = (ki, kj, ci) from col on, so each tap copies
 * cg contiguous floats */
static void im2col(const fixed_job *j, int64_t s, int64_t g, float *col, int64_t ld)
{
    const td_conv_args *a = j->a;
    if (!a->x_cl) {
        const float *xs = j->x + (s * a->c + g * j->cg) * a->h * a->w;
        for (int64_t ci = 0; ci < j->cg; ci++)
            for (int64_t ki = 0; ki < a->kh; ki++)
                for (int64_t kj = 0; kj < a->kw; kj++) {
                    float *row = col + ((ci * a->kh + ki) * a->kw + kj) * ld;
                    const float *plane = xs + ci * a->h * a->w;
                    for (int64_t oy = 0; oy < a->oh; oy++) {
                        int64_t iy = oy * a->sh - a->ph + ki * a->dh;
                        float *r = row + oy * a->ow;
                        if (iy < 0 || iy >= a->h) {
                            memset(r, 0, sizeof(float) * (size_t)a->ow);
                            continue;
                        }
                        for (int64_t ox = 0; ox < a->ow; ox++) {
                            int64_t ix = ox * a->sw - a->pw + kj * a->dw;
                            r[ox] = ix >= 0 && ix < a->w ? plane[iy * a->w + ix] : 0.0f;
                        }
                    }
                }
        return;
    }
    const float *xs = j->x + s * a->h * a->w * a->c + g * j->cg;
    for (int64_t oy = 0; oy < a->oh; oy++)
        for (int64_t ox = 0; ox < a->ow; ox++) {
            float *r = col + (oy * a->ow + ox) * j->q;
            for (int64_t ki = 0; ki < a->kh; ki++) {
                int64_t iy = oy * a->sh - a->ph + ki * a->dh;
                for (int64_t kj = 0; kj < a->kw; kj++) {
                    int64_t ix = ox * a->sw - a->pw + kj * a->dw;
                    float *dst = r + (ki * a->kw + kj) * j->cg;
                    if (iy < 0 || iy >= a->h || ix < 0 || ix >= a->w)
                        memset(dst, 0, sizeof(float) * (size_t)j->cg);
                    else
                        memcpy(dst, xs + (iy * a->w + ix) * a->c, sizeof(float) * (size_t)j->cg);
                }
            }
        }
}

/* samples [s0, s1) into pw (o, q in im2col's order) and pb (o), zeroed
 * here, sub samples per sgemm (k = sub * p); runs on one thread, the
 * sgemm included. col holds sub samples' columns, gbuf (NCHW gy only)
 * their gradient as (o, sub * p) */
static td_status chunk_sum(const fixed_job *j, int64_t s0, int64_t s1, float *col, float *gbuf,
                           float *pw, float *pb)
{
    const td_conv_args *a = j->a;
    if (pw) memset(pw, 0, sizeof(float) * (size_t)(a->o * j->q));
    if (pb) memset(pb, 0, sizeof(float) * (size_t)a->o);
    for (int64_t sb = s0; sb < s1; sb += j->sub) {
        int64_t se = s1 - sb < j->sub ? s1 : sb + j->sub, k = (se - sb) * j->p;
        if (pw && j->q) {
            /* gy of these samples as an (o, k) operand: channels-last gy is
             * one (k, o) block already; NCHW gy is gathered */
            const float *ga = j->gy + sb * a->o * j->p;
            if (!a->gy_cl) {
                for (int64_t s = sb; s < se; s++)
                    for (int64_t oc = 0; oc < a->o; oc++)
                        memcpy(gbuf + oc * k + (s - sb) * j->p, j->gy + (s * a->o + oc) * j->p,
                               sizeof(float) * (size_t)j->p);
                ga = gbuf;
            }
            for (int64_t g = 0; g < a->groups; g++) {
                for (int64_t s = sb; s < se; s++)
                    im2col(j, s, g, a->x_cl ? col + (s - sb) * j->p * j->q : col + (s - sb) * j->p,
                           k);
                /* pw_g (og, q) += gy_g (og, k) . col, col being (q, k) or (k, q) */
                char tb = a->x_cl ? 'N' : 'T';
                int64_t ldb = a->x_cl ? j->q : k;
                dnnl_status_t st =
                    a->gy_cl ? dnnl_sgemm('T', tb, j->og, j->q, k, 1.0f, ga + g * j->og, a->o, col,
                                          ldb, 1.0f, pw + g * j->og * j->q, j->q)
                             : dnnl_sgemm('N', tb, j->og, j->q, k, 1.0f, ga + g * j->og * k, k, col,
                                          ldb, 1.0f, pw + g * j->og * j->q, j->q);
                if (st != dnnl_success)
                    return td_error(TD_EINVAL, 0, "conv2d: oneDNN sgemm failed (status %d)",
                                    (int)st);
            }
        }
        for (int64_t s = sb; pb && s < se; s++) {
            const float *gys = j->gy + s * a->o * j->p;
            if (a->gy_cl)
                for (int64_t i = 0; i < j->p; i++)
                    for (int64_t oc = 0; oc < a->o; oc++) pb[oc] += gys[i * a->o + oc];
            else
                for (int64_t oc = 0; oc < a->o; oc++) {
                    float t = 0.0f;
                    for (int64_t i = 0; i < j->p; i++) t += gys[oc * j->p + i];
                    pb[oc] += t;
                }
        }
    }
    return TD_OK;
}

td_status td_conv_fixed_backward_weights(const td_conv_args *a, const float *x, const float *gy,
                                         float *gw, float *gb)
{
    fixed_job j = {a, x, gy, a->c / a->groups, a->o / a->groups, 0, a->oh * a->ow, 1};
    j.q = j.cg * a->kh * a->kw;
    int64_t nw = a->o * j.q, nchunk = a->n < CHUNKS ? a->n : CHUNKS, stride = nw + a->o;
    if (nchunk == 0) {
        if (gw) memset(gw, 0, sizeof(float) * (size_t)nw);
        if (gb) memset(gb, 0, sizeof(float) * (size_t)a->o);
        return TD_OK;
    }
    if (j.p * j.q > 0 && j.p * j.q < COL_BUDGET) j.sub = COL_BUDGET / (j.p * j.q);
    if (j.sub > (a->n + nchunk - 1) / nchunk) j.sub = (a->n + nchunk - 1) / nchunk;
    int nt = td_cpu_threads_for(a->n * a->o * j.q * j.p, TD_CPU_GRAIN);
    if (nt > nchunk) nt = (int)nchunk;
    /* each thread's columns, then (NCHW gy) its gathered gradient */
    int64_t per = j.sub * j.p * (j.q + (a->gy_cl ? 0 : a->o));
    size_t part_size = sizeof(float) * (size_t)(nchunk * stride);
    size_t bufs_size = sizeof(float) * (size_t)(per * nt);
    float *part = td_cpu_alloc(part_size), *bufs = gw ? td_cpu_alloc(bufs_size) : NULL;
    if (!part || (gw && !bufs)) {
        if (part) td_cpu_free(part, part_size);
        if (bufs) td_cpu_free(bufs, bufs_size);
        return td_error(TD_ENOMEM, 0,
                        "conv2d: out of memory for the deterministic weight gradient");
    }
    td_status st = TD_OK;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        /* dnnl_sgemm parallelises by the calling thread's count unless told
         * one: the chunk's sum must not depend on it */
        int saved = omp_get_max_threads();
        omp_set_num_threads(1);
        float *col = bufs ? bufs + (size_t)omp_get_thread_num() * (size_t)per : NULL;
        float *gbuf = col ? col + j.sub * j.p * j.q : NULL;
#pragma omp for schedule(static)
        for (int64_t k = 0; k < nchunk; k++) {
            float *pk = part + k * stride;
            td_status s = chunk_sum(&j, a->n * k / nchunk, a->n * (k + 1) / nchunk, col, gbuf,
                                    gw ? pk : NULL, gb ? pk + nw : NULL);
            if (s != TD_OK) {
#pragma omp critical(conv_fixed_error)
                st = s;
            }
        }
        omp_set_num_threads(saved);
    }
    if (st == TD_OK) {
        int64_t total = (gw ? nw : 0) + (gb ? a->o : 0), kk = a->kh * a->kw;
        int rt = td_cpu_threads_for(total * nchunk, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(rt) schedule(static) if (rt > 1)
        for (int64_t i = 0; i < total; i++) {
            /* gw is (o, ci, ki, kj); a channels-last partial holds (o, ki, kj, ci) */
            bool is_w = gw && i < nw;
            int64_t src = i;
            if (is_w && a->x_cl) {
                int64_t oc = i / j.q, r = i % j.q, ci = r / kk, t = r % kk;
                src = oc * j.q + t * j.cg + ci;
            } else if (!is_w) {
                src = nw + (gw ? i - nw : i);
            }
            float s = 0.0f;
            for (int64_t k = 0; k < nchunk; k++) s += part[k * stride + src];
            if (is_w)
                gw[i] = s;
            else
                gb[gw ? i - nw : i] = s;
        }
    }
    td_cpu_free(part, part_size);
    if (bufs) td_cpu_free(bufs, bufs_size);
    return st;
}
