/* CPU kernels of the optim family (kernels/nn_optim.h).
 *
 * One pass per parameter: every element reads its param, grad and state
 * once and writes them back once. Coefficients are cast to the element type
 * first, as PyTorch does with its scalar arguments, so float32 works in
 * float32 throughout. Loops are simd and split over threads past a grain. */
#include "cpu.h"
#include "iter.h"

#include <math.h>

/* the update of a few dozen flops per element: worth threads sooner */
#define OPTIM_GRAIN (TD_CPU_GRAIN / 4)

static int optim_threads(int64_t n) { return td_cpu_threads_for(n, OPTIM_GRAIN); }

/* One function per type rather than one macro for both, so that a debugger
 * steps through them; each pair must stay in step, the same arithmetic in
 * the element type. */

static void sgd_f32(int64_t n, float *restrict p, const float *restrict g, float *restrict b,
                    const td_sgd_opts *o)
{
    float lr = (float)o->lr, wd = (float)o->weight_decay, mom = (float)o->momentum;
    float damp = (float)(1.0 - o->dampening), sgn = o->maximize ? -1.0f : 1.0f;
    bool use_wd = o->weight_decay != 0, first = o->first_step, nesterov = o->nesterov;
    int nt = optim_threads(n);
    if (!b) {
#pragma omp parallel for simd num_threads(nt) if (parallel : nt > 1) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float d = sgn * g[i];
            if (use_wd) d += wd * p[i];
            p[i] -= lr * d;
        }
    } else {
#pragma omp parallel for simd num_threads(nt) if (parallel : nt > 1) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            float d = sgn * g[i];
            if (use_wd) d += wd * p[i];
            float bv = first ? d : b[i] * mom + damp * d;
            b[i] = bv;
            d = nesterov ? d + mom * bv : bv;
            p[i] -= lr * d;
        }
    }
}

static void sgd_f64(int64_t n, double *restrict p, const double *restrict g, double *restrict b,
                    const td_sgd_opts *o)
{
    double lr = o->lr, wd = o->weight_decay, mom = o->momentum;
    double damp = 1.0 - o->dampening, sgn = o->maximize ? -1.0 : 1.0;
    bool use_wd = o->weight_decay != 0, first = o->first_step, nesterov = o->nesterov;
    int nt = optim_threads(n);
    if (!b) {
#pragma omp parallel for simd num_threads(nt) if (parallel : nt > 1) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            double d = sgn * g[i];
            if (use_wd) d += wd * p[i];
            p[i] -= lr * d;
        }
    } else {
#pragma omp parallel for simd num_threads(nt) if (parallel : nt > 1) schedule(static)
        for (int64_t i = 0; i < n; i++) {
            double d = sgn * g[i];
            if (use_wd) d += wd * p[i];
            double bv = first ? d : b[i] * mom + damp * d;
            b[i] = bv;
            d = nesterov ? d + mom * bv : bv;
            p[i] -= lr * d;
        }
    }
}

static void cpu_sgd(td_dtype dt, int64_t n, void *param, const void *grad, void *buf,
                    const td_sgd_opts *o)
{
    if (dt == TD_FLOAT32)
        sgd_f32(n, param, grad, buf, o);
    else
        sgd_f64(n, param, grad, buf, o);
}

/* PyTorch 1.13 _single_tensor_adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
 * denom = sqrt(v or max(vmax, v)) / sqrt(1 - b2^t) + eps; p -= lr / (1 - b1^t) m / denom */
static void adam_f32(int64_t n, float *restrict p, const float *restrict g, float *restrict m,
                     float *restrict v, float *restrict vmax, const td_adam_opts *o)
{
    double bc1 = 1.0 - pow(o->beta1, (double)o->step);
    double bc2 = 1.0 - pow(o->beta2, (double)o->step);
    float step_size = (float)(o->lr / bc1), bc2s = (float)sqrt(bc2), eps = (float)o->eps;
    float b1 = (float)o->beta1, c1 = (float)(1.0 - o->beta1), b2 = (float)o->beta2;
    float c2 = (float)(1.0 - o->beta2);
    float wd = (float)o->weight_decay, decay = (float)(1.0 - o->lr * o->weight_decay);
    float sgn = o->maximize ? -1.0f : 1.0f;
    bool coupled = !o->decoupled && o->weight_decay != 0;
    bool decoupled = o->decoupled && o->weight_decay != 0;
    int nt = optim_threads(n);
#pragma omp parallel for simd num_threads(nt) if (parallel : nt > 1) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float pv = p[i], gv = sgn * g[i];
        if (decoupled) pv *= decay;
        if (coupled) gv += wd * pv;
        float mv = m[i] * b1 + c1 * gv;
        float vv = v[i] * b2 + c2 * gv * gv;
        m[i] = mv;
        v[i] = vv;
        if (vmax) {
            vv = vmax[i] > vv ? vmax[i] : vv;
            vmax[i] = vv;
        }
        float denom = sqrtf(vv) / bc2s + eps;
        p[i] = pv - step_size * (mv / denom);
    }
}

static void adam_f64(int64_t n, double *restrict p, const double *restrict g, double *restrict m,
                     double *restrict v, double *restrict vmax, const td_adam_opts *o)
{
    double bc1 = 1.0 - pow(o->beta1, (double)o->step);
    double bc2 = 1.0 - pow(o->beta2, (double)o->step);
    double step_size = o->lr / bc1, bc2s = sqrt(bc2), eps = o->eps;
    double b1 = o->beta1, c1 = 1.0 - o->beta1, b2 = o->beta2;
    double c2 = 1.0 - o->beta2;
    double wd = o->weight_decay, decay = 1.0 - o->lr * o->weight_decay;
    double sgn = o->maximize ? -1.0 : 1.0;
    bool coupled = !o->decoupled && o->weight_decay != 0;
    bool decoupled = o->decoupled && o->weight_decay != 0;
    int nt = optim_threads(n);
#pragma omp parallel for simd num_threads(nt) if (parallel : nt > 1) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double pv = p[i], gv = sgn * g[i];
        if (decoupled) pv *= decay;
        if (coupled) gv += wd * pv;
        double mv = m[i] * b1 + c1 * gv;
        double vv = v[i] * b2 + c2 * gv * gv;
        m[i] = mv;
        v[i] = vv;
        if (vmax) {
            vv = vmax[i] > vv ? vmax[i] : vv;
            vmax[i] = vv;
        }
        double denom = sqrt(vv) / bc2s + eps;
        p[i] = pv - step_size * (mv / denom);
    }
}

static void cpu_adam(td_dtype dt, int64_t n, void *param, const void *grad, void *exp_avg,
                     void *exp_avg_sq, void *max_sq, const td_adam_opts *o)
{
    if (dt == TD_FLOAT32)
        adam_f32(n, param, grad, exp_avg, exp_avg_sq, max_sq, o);
    else
        adam_f64(n, param, grad, exp_avg, exp_avg_sq, max_sq, o);
}

/* PyTorch 1.13 _single_tensor_rmsprop: sq = a sq + (1 - a) g^2; centered: ga = a ga +
 * (1 - a) g, avg = sqrt(sq - ga^2) + eps, else sqrt(sq) + eps; momentum: buf = mom buf
 * + g / avg, p -= lr buf; else p -= lr g / avg */
static void rmsprop_f32(int64_t n, float *restrict p, const float *restrict g, float *restrict sq,
                        float *restrict ga, float *restrict b, const td_rmsprop_opts *o)
{
    float lr = (float)o->lr, a = (float)o->alpha, c = (float)(1.0 - o->alpha), eps = (float)o->eps;
    float wd = (float)o->weight_decay, mom = (float)o->momentum;
    float sgn = o->maximize ? -1.0f : 1.0f;
    bool use_wd = o->weight_decay != 0;
    int nt = optim_threads(n);
#pragma omp parallel for simd num_threads(nt) if (parallel : nt > 1) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        float gv = sgn * g[i];
        if (use_wd) gv += wd * p[i];
        float sv = sq[i] * a + c * gv * gv;
        sq[i] = sv;
        float avg;
        if (ga) {
            float gav = ga[i] * a + c * gv;
            ga[i] = gav;
            avg = sqrtf(sv - gav * gav) + eps;
        } else {
            avg = sqrtf(sv) + eps;
        }
        if (b) {
            float bv = b[i] * mom + gv / avg;
            b[i] = bv;
            p[i] -= lr * bv;
        } else {
            p[i] -= lr * (gv / avg);
        }
    }
}

static void rmsprop_f64(int64_t n, double *restrict p, const double *restrict g,
                        double *restrict sq, double *restrict ga, double *restrict b,
                        const td_rmsprop_opts *o)
{
    double lr = o->lr, a = o->alpha, c = 1.0 - o->alpha, eps = o->eps;
    double wd = o->weight_decay, mom = o->momentum, sgn = o->maximize ? -1.0 : 1.0;
    bool use_wd = o->weight_decay != 0;
    int nt = optim_threads(n);
#pragma omp parallel for simd num_threads(nt) if (parallel : nt > 1) schedule(static)
    for (int64_t i = 0; i < n; i++) {
        double gv = sgn * g[i];
        if (use_wd) gv += wd * p[i];
        double sv = sq[i] * a + c * gv * gv;
        sq[i] = sv;
        double avg;
        if (ga) {
            double gav = ga[i] * a + c * gv;
            ga[i] = gav;
            avg = sqrt(sv - gav * gav) + eps;
        } else {
            avg = sqrt(sv) + eps;
        }
        if (b) {
            double bv = b[i] * mom + gv / avg;
            b[i] = bv;
            p[i] -= lr * bv;
        } else {
            p[i] -= lr * (gv / avg);
        }
    }
}

static void cpu_rmsprop(td_dtype dt, int64_t n, void *param, const void *grad, void *square_avg,
                        void *grad_avg, void *buf, const td_rmsprop_opts *o)
{
    if (dt == TD_FLOAT32)
        rmsprop_f32(n, param, grad, square_avg, grad_avg, buf, o);
    else
        rmsprop_f64(n, param, grad, square_avg, grad_avg, buf, o);
}

const struct td_optim_kernels td_cpu_optim = {
    .sgd = cpu_sgd,
    .adam = cpu_adam,
    .rmsprop = cpu_rmsprop,
};
