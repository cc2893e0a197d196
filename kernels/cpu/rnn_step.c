/* The recurrent family's per-step pointwise kernels on the CPU: gate
 * activations and the state update of RNN, LSTM and GRU cells, and their
 * backward. Arithmetic in double whatever the storage, so float32 and
 * float64 share one loop; the step's matrix products (the time) are the
 * runtime's gemm calls around these. */
#include "../rnn.h"
#include "iter.h"

#include <math.h>
#include <string.h>

static inline double ld(td_dtype dt, const void *p, int64_t i)
{
    return dt == TD_FLOAT32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

static inline void st(td_dtype dt, void *p, int64_t i, double v)
{
    if (dt == TD_FLOAT32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

static inline double sigm(double x) { return 1.0 / (1.0 + exp(-x)); }

static int gates_of(td_rnn_mode m) { return m == TD_RNN_LSTM ? 4 : m == TD_RNN_GRU ? 3 : 1; }

/* pre-activation of gate g, unit k of row r: the input part and the hidden part */
static inline double pre_i(const td_rnn_step *s, int64_t r, int g, int64_t k, int64_t gh)
{
    int64_t j = g * s->h + k;
    return ld(s->dtype, s->gi, r * gh + j) + (s->b_ih ? ld(s->dtype, s->b_ih, j) : 0);
}

static inline double pre_h(const td_rnn_step *s, int64_t r, int g, int64_t k, int64_t gh)
{
    int64_t j = g * s->h + k;
    return ld(s->dtype, s->gh, r * gh + j) + (s->b_hh ? ld(s->dtype, s->b_hh, j) : 0);
}

/* float32: float arithmetic with tide's vectorisable expf, rows in
 * parallel, units in a loop the compiler vectorises */
static inline float sigmf(float x) { return 1.0f / (1.0f + td_cpu_expf(-x)); }
static inline float tanhf_fast(float x) { return 1.0f - 2.0f / (1.0f + td_cpu_expf(2.0f * x)); }

static void step_f32(const td_rnn_step *s)
{
    int64_t h = s->h, gh = gates_of(s->mode) * h;
    const float *gi = s->gi, *gg = s->gh, *bi = s->b_ih, *bh = s->b_hh;
    int nt = td_cpu_threads_for(s->n * gh, TD_CPU_GRAIN_COSTLY);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < s->n; r++) {
        const float *a = gi + r * gh, *b = gg + r * gh;
        float *ho = (float *)s->h_out + r * h, *sv = (float *)s->saved + r * 4 * h;
#define PRE(j) (a[j] + b[j] + (bi ? bi[j] + bh[j] : 0.0f))
        switch (s->mode) {
        case TD_RNN_TANH:
            for (int64_t k = 0; k < h; k++) ho[k] = tanhf_fast(PRE(k));
            break;
        case TD_RNN_RELU:
            for (int64_t k = 0; k < h; k++) {
                float v = PRE(k);
                ho[k] = v > 0 ? v : (v == v ? 0.0f : v);
            }
            break;
        case TD_RNN_LSTM: {
            const float *cp = (const float *)s->c_prev + r * h;
            float *co = (float *)s->c_out + r * h;
            for (int64_t k = 0; k < h; k++) {
                float i = sigmf(PRE(k)), f = sigmf(PRE(h + k));
                float g = tanhf_fast(PRE(2 * h + k)), o = sigmf(PRE(3 * h + k));
                float c = f * cp[k] + i * g;
                sv[k] = i;
                sv[h + k] = f;
                sv[2 * h + k] = g;
                sv[3 * h + k] = o;
                co[k] = c;
                ho[k] = o * tanhf_fast(c);
            }
            break;
        }
        case TD_RNN_GRU: {
            const float *hp = (const float *)s->h_prev + r * h;
            for (int64_t k = 0; k < h; k++) {
                float rg = sigmf(PRE(k)), z = sigmf(PRE(h + k));
                float hn = b[2 * h + k] + (bh ? bh[2 * h + k] : 0.0f);
                float n = tanhf_fast(a[2 * h + k] + (bi ? bi[2 * h + k] : 0.0f) + rg * hn);
                sv[k] = rg;
                sv[h + k] = z;
                sv[2 * h + k] = n;
                sv[3 * h + k] = hn;
                ho[k] = (1 - z) * n + z * hp[k];
            }
            break;
        }
        }
#undef PRE
    }
}

static void step_backward_f32(const td_rnn_step_grad *s)
{
    int64_t h = s->h, gh = gates_of(s->mode) * h;
    int nt = td_cpu_threads_for(s->n * gh, TD_CPU_GRAIN_COSTLY);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < s->n; r++) {
        const float *dh = (const float *)s->dh + r * h, *sv = (const float *)s->saved + r * 4 * h;
        float *dgi = (float *)s->dgi + r * gh, *dgh = (float *)s->dgh + r * gh;
        switch (s->mode) {
        case TD_RNN_TANH:
        case TD_RNN_RELU: {
            const float *y = (const float *)s->h_out + r * h;
            for (int64_t k = 0; k < h; k++) {
                float d =
                    s->mode == TD_RNN_TANH ? dh[k] * (1 - y[k] * y[k]) : (y[k] > 0 ? dh[k] : 0);
                dgi[k] = d;
                dgh[k] = d;
            }
            break;
        }
        case TD_RNN_LSTM: {
            const float *cp = (const float *)s->c_prev + r * h,
                        *co = (const float *)s->c_out + r * h;
            float *dcp = (float *)s->dc + r * h;
            for (int64_t k = 0; k < h; k++) {
                float i = sv[k], f = sv[h + k], g = sv[2 * h + k], o = sv[3 * h + k];
                float tc = tanhf_fast(co[k]);
                float dc = dcp[k] + dh[k] * o * (1 - tc * tc);
                float di = dc * g * i * (1 - i), df = dc * cp[k] * f * (1 - f);
                float dg = dc * i * (1 - g * g), dout = dh[k] * tc * o * (1 - o);
                dgi[k] = dgh[k] = di;
                dgi[h + k] = dgh[h + k] = df;
                dgi[2 * h + k] = dgh[2 * h + k] = dg;
                dgi[3 * h + k] = dgh[3 * h + k] = dout;
                dcp[k] = dc * f;
            }
            break;
        }
        case TD_RNN_GRU: {
            const float *hp = (const float *)s->h_prev + r * h;
            float *dhp = (float *)s->dh_prev + r * h;
            for (int64_t k = 0; k < h; k++) {
                float rg = sv[k], z = sv[h + k], n = sv[2 * h + k], hn = sv[3 * h + k];
                float d = dh[k];
                float dn = d * (1 - z) * (1 - n * n);
                float dz = d * (hp[k] - n) * z * (1 - z);
                float dr = dn * hn * rg * (1 - rg);
                dgi[k] = dgh[k] = dr;
                dgi[h + k] = dgh[h + k] = dz;
                dgi[2 * h + k] = dn;
                dgh[2 * h + k] = dn * rg;
                dhp[k] = d * z;
            }
            break;
        }
        }
    }
}

static void step(const td_rnn_step *s)
{
    if (s->dtype == TD_FLOAT32) {
        step_f32(s);
        return;
    }
    td_dtype dt = s->dtype;
    int64_t h = s->h, gh = gates_of(s->mode) * h, total = s->n * h;
#pragma omp parallel for schedule(static) if (total >= TD_CPU_GRAIN_COSTLY)
    for (int64_t e = 0; e < total; e++) {
        int64_t r = e / h, k = e % h;
        switch (s->mode) {
        case TD_RNN_TANH:
        case TD_RNN_RELU: {
            double a = pre_i(s, r, 0, k, gh) + pre_h(s, r, 0, k, gh);
            st(dt, s->h_out, e, s->mode == TD_RNN_TANH ? tanh(a) : (a > 0 ? a : (a == a ? 0 : a)));
            break;
        }
        case TD_RNN_LSTM: {
            double i = sigm(pre_i(s, r, 0, k, gh) + pre_h(s, r, 0, k, gh));
            double f = sigm(pre_i(s, r, 1, k, gh) + pre_h(s, r, 1, k, gh));
            double g = tanh(pre_i(s, r, 2, k, gh) + pre_h(s, r, 2, k, gh));
            double o = sigm(pre_i(s, r, 3, k, gh) + pre_h(s, r, 3, k, gh));
            double c = f * ld(dt, s->c_prev, e) + i * g;
            int64_t sv = r * 4 * h + k;
            st(dt, s->saved, sv, i);
            st(dt, s->saved, sv + h, f);
            st(dt, s->saved, sv + 2 * h, g);
            st(dt, s->saved, sv + 3 * h, o);
            st(dt, s->c_out, e, c);
            st(dt, s->h_out, e, o * tanh(c));
            break;
        }
        case TD_RNN_GRU: {
            double rg = sigm(pre_i(s, r, 0, k, gh) + pre_h(s, r, 0, k, gh));
            double z = sigm(pre_i(s, r, 1, k, gh) + pre_h(s, r, 1, k, gh));
            double hn = pre_h(s, r, 2, k, gh);
            double n = tanh(pre_i(s, r, 2, k, gh) + rg * hn);
            int64_t sv = r * 4 * h + k;
            st(dt, s->saved, sv, rg);
            st(dt, s->saved, sv + h, z);
            st(dt, s->saved, sv + 2 * h, n);
            st(dt, s->saved, sv + 3 * h, hn);
            st(dt, s->h_out, e, (1 - z) * n + z * ld(dt, s->h_prev, e));
            break;
        }
        }
    }
}

static void step_backward(const td_rnn_step_grad *s)
{
    if (s->dtype == TD_FLOAT32) {
        step_backward_f32(s);
        return;
    }
    td_dtype dt = s->dtype;
    int64_t h = s->h, gh = gates_of(s->mode) * h, total = s->n * h;
#pragma omp parallel for schedule(static) if (total >= TD_CPU_GRAIN_COSTLY)
    for (int64_t e = 0; e < total; e++) {
        int64_t r = e / h, k = e % h, gj = r * gh + k;
        double dh = ld(dt, s->dh, e);
        switch (s->mode) {
        case TD_RNN_TANH:
        case TD_RNN_RELU: {
            double y = ld(dt, s->h_out, e);
            double d = s->mode == TD_RNN_TANH ? dh * (1 - y * y) : (y > 0 ? dh : 0);
            st(dt, s->dgi, gj, d);
            st(dt, s->dgh, gj, d);
            break;
        }
        case TD_RNN_LSTM: {
            int64_t sv = r * 4 * h + k;
            double i = ld(dt, s->saved, sv), f = ld(dt, s->saved, sv + h);
            double g = ld(dt, s->saved, sv + 2 * h), o = ld(dt, s->saved, sv + 3 * h);
            double tc = tanh(ld(dt, s->c_out, e));
            double dc = ld(dt, s->dc, e) + dh * o * (1 - tc * tc);
            double d[4] = {dc * g * i * (1 - i), dc * ld(dt, s->c_prev, e) * f * (1 - f),
                           dc * i * (1 - g * g), dh * tc * o * (1 - o)};
            for (int q = 0; q < 4; q++) {
                st(dt, s->dgi, gj + q * h, d[q]);
                st(dt, s->dgh, gj + q * h, d[q]);
            }
            st(dt, s->dc, e, dc * f);
            break;
        }
        case TD_RNN_GRU: {
            int64_t sv = r * 4 * h + k;
            double rg = ld(dt, s->saved, sv), z = ld(dt, s->saved, sv + h);
            double n = ld(dt, s->saved, sv + 2 * h), hn = ld(dt, s->saved, sv + 3 * h);
            double hp = ld(dt, s->h_prev, e);
            double dn = dh * (1 - z) * (1 - n * n);
            double dz = dh * (hp - n) * z * (1 - z);
            double dr = dn * hn * rg * (1 - rg);
            st(dt, s->dgi, gj, dr);
            st(dt, s->dgh, gj, dr);
            st(dt, s->dgi, gj + h, dz);
            st(dt, s->dgh, gj + h, dz);
            st(dt, s->dgi, gj + 2 * h, dn);
            st(dt, s->dgh, gj + 2 * h, dn * rg);
            st(dt, s->dh_prev, e, dh * z);
            break;
        }
        }
    }
}

static void axpby(td_dtype dt, int64_t n, double a, const void *x, double b, void *y)
{
#pragma omp parallel for schedule(static) if (n >= TD_CPU_GRAIN)
    for (int64_t i = 0; i < n; i++)
        st(dt, y, i, a * ld(dt, x, i) + (b != 0 ? b * ld(dt, y, i) : 0));
}

const struct td_rnn_kernels td_cpu_rnn = {
    .step = step,
    .step_backward = step_backward,
    .axpby = axpby,
};
