/* CPU 2-d pooling on NCHW data, for the layers table (nn_layers.c): max,
 * average and adaptive average, forward and backward, float32 and float64,
 * parallel over planes. Averages sum in double. float32 averages go to
 * oneDNN first (nn_pool_dnnl.c), these loops being its reference and
 * fallback; max pooling stays here, as fast as oneDNN's or faster, with
 * PyTorch's NaN and tie order (docs/layers.md has the numbers).
 * Channels-last data goes to nn_pool_nhwc.c, which gives these loops' bits. */
#include "layers.h"
#include "iter.h"
#include "pool_window.h"

#include <math.h>
#include <omp.h>
#include <string.h>

#define POOL_FWD(T)                                                                         \
    do {                                                                                    \
        const T *xp = x;                                                                    \
        T *yp = y;                                                                          \
        int64_t planes = a->n * a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;           \
        _Pragma("omp parallel for schedule(static) if (planes * OH * OW * 4 >= TD_CPU_GRAIN)") \
        for (int64_t pl = 0; pl < planes; pl++) {                                           \
            const T *xi = xp + pl * H * W;                                                  \
            T *yo = yp + pl * OH * OW;                                                      \
            int64_t *io = idx ? idx + pl * OH * OW : NULL;                                  \
            for (int64_t oy = 0; oy < OH; oy++)                                             \
                for (int64_t ox = 0; ox < OW; ox++) {                                       \
                    int64_t o = oy * OW + ox;                                               \
                    if (a->kind == TD_POOL_MAX) {                                           \
                        int64_t hs = oy * a->sh - a->ph, ws = ox * a->sw - a->pw;           \
                        int64_t he = hs + (a->kh - 1) * a->dh + 1, we = ws + (a->kw - 1) * a->dw + 1; \
                        if (he > H) he = H;                                                 \
                        if (we > W) we = W;                                                 \
                        while (hs < 0) hs += a->dh;                                         \
                        while (ws < 0) ws += a->dw;                                         \
                        int64_t best = hs * W + ws;                                         \
                        T mv = -INFINITY;                                                   \
                        for (int64_t yy = hs; yy < he; yy += a->dh)                         \
                            for (int64_t xx = ws; xx < we; xx += a->dw) {                   \
                                T v = xi[yy * W + xx];                                      \
                                if (v > mv || isnan(v)) {                                   \
                                    mv = v;                                                 \
                                    best = yy * W + xx;                                     \
                                }                                                           \
                            }                                                               \
                        yo[o] = mv;                                                         \
                        io[o] = hs < he && ws < we ? best : -1; /* -1: window all padding */ \
                    } else {                                                                \
                        int64_t hs, he, ws, we;                                             \
                        double div = avg_window(a, oy, ox, &hs, &he, &ws, &we);             \
                        double s = 0;                                                       \
                        for (int64_t yy = hs; yy < he; yy++)                                \
                            for (int64_t xx = ws; xx < we; xx++) s += xi[yy * W + xx];      \
                        yo[o] = (T)(div > 0 ? s / div : 0);                                 \
                    }                                                                       \
                }                                                                           \
        }                                                                                   \
    } while (0)

/* one max-pool step of the reference's order: a NaN wins, else a bigger value */
#define MAX_STEP(v, p)                    \
    do {                                  \
        float v_ = (v);                   \
        bool t_ = v_ > mv || v_ != v_;    \
        mv = t_ ? v_ : mv;                \
        best = t_ ? (p) : best;           \
    } while (0)

/* float32 max pool: the same windows and tie / NaN order as POOL_FWD, with
 * the arguments in locals and the 2x2 stride-2 unpadded case unrolled */
static void max_pool_f32(const td_pool2d_args *a, const float *x, float *y, int64_t *idx)
{
    const int64_t planes = a->n * a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;
    const int64_t kh = a->kh, kw = a->kw, sh = a->sh, sw = a->sw, ph = a->ph, pw = a->pw, dh = a->dh, dw = a->dw;
    /* not when ceil_mode adds a last window that reaches past the input:
     * the unrolled loop reads all four taps */
    const bool two = kh == 2 && kw == 2 && sh == 2 && sw == 2 && ph == 0 && pw == 0 && dh == 1 && dw == 1 &&
                     2 * OH <= H && 2 * OW <= W;
#pragma omp parallel for schedule(static) if (planes * OH * OW * 4 >= TD_CPU_GRAIN)
    for (int64_t pl = 0; pl < planes; pl++) {
        const float *xi = x + pl * H * W;
        float *yo = y + pl * OH * OW;
        int64_t *io = idx + pl * OH * OW;
        for (int64_t oy = 0; oy < OH; oy++) {
            if (two) {
                const float *r0 = xi + 2 * oy * W, *r1 = r0 + W;
                float *yr = yo + oy * OW;
                int64_t *ir = io + oy * OW, base = 2 * oy * W;
                /* branch-free and vectorisable: start from the first value
                 * (what the -inf start gives too) */
                for (int64_t ox = 0; ox < OW; ox++) {
                    float v0 = r0[2 * ox], v1 = r0[2 * ox + 1], v2 = r1[2 * ox], v3 = r1[2 * ox + 1];
                    float m = v0;
                    int64_t k = 0;
                    bool t = v1 > m || v1 != v1;
                    m = t ? v1 : m;
                    k = t ? 1 : k;
                    t = v2 > m || v2 != v2;
                    m = t ? v2 : m;
                    k = t ? W : k;
                    t = v3 > m || v3 != v3;
                    m = t ? v3 : m;
                    k = t ? W + 1 : k;
                    yr[ox] = m;
                    ir[ox] = base + 2 * ox + k;
                }
                continue;
            }
            int64_t hs = oy * sh - ph, he = hs + (kh - 1) * dh + 1;
            if (he > H) he = H;
            if (hs < 0) hs += (-hs + dh - 1) / dh * dh;
            for (int64_t ox = 0; ox < OW; ox++) {
                int64_t ws = ox * sw - pw, we = ws + (kw - 1) * dw + 1;
                if (we > W) we = W;
                if (ws < 0) ws += (-ws + dw - 1) / dw * dw;
                float mv = -INFINITY;
                int64_t best = hs * W + ws;
                for (int64_t yy = hs; yy < he; yy += dh)
                    for (int64_t xx = ws; xx < we; xx += dw) MAX_STEP(xi[yy * W + xx], yy * W + xx);
                yo[oy * OW + ox] = mv;
                /* a dilated window can hold padding only: -1, no gradient */
                io[oy * OW + ox] = hs < he && ws < we ? best : -1;
            }
        }
    }
}

void td_cpu_pool2d(const td_pool2d_args *a, const void *x, void *y, int64_t *idx)
{
    /* oneDNN first for float32 averages, in either layout */
    if (a->dtype == TD_FLOAT32 && a->kind != TD_POOL_MAX && td_pool_dnnl_forward(a, x, y)) return;
    if (a->channels_last) {
        td_cpu_pool2d_nhwc(a, x, y, idx);
        return;
    }
    if (a->dtype == TD_FLOAT32 && a->kind == TD_POOL_MAX)
        max_pool_f32(a, x, y, idx);
    else if (a->dtype == TD_FLOAT32)
        POOL_FWD(float);
    else
        POOL_FWD(double);
}

#define POOL_BWD(T)                                                                         \
    do {                                                                                    \
        const T *gp = gy;                                                                   \
        T *gxp = gx;                                                                        \
        int64_t planes = a->n * a->c, H = a->h, W = a->w, OH = a->oh, OW = a->ow;           \
        _Pragma("omp parallel for schedule(static) if (planes * OH * OW * 4 >= TD_CPU_GRAIN)") \
        for (int64_t pl = 0; pl < planes; pl++) {                                           \
            T *gi = gxp + pl * H * W;                                                       \
            const T *go = gp + pl * OH * OW;                                                \
            memset(gi, 0, sizeof(T) * (size_t)(H * W));                                    \
            if (a->kind == TD_POOL_MAX) {                                                   \
                const int64_t *io = idx + pl * OH * OW;                                     \
                for (int64_t o = 0; o < OH * OW; o++) if (io[o] >= 0) gi[io[o]] += go[o];   \
                continue;                                                                   \
            }                                                                               \
            for (int64_t oy = 0; oy < OH; oy++)                                             \
                for (int64_t ox = 0; ox < OW; ox++) {                                       \
                    int64_t hs, he, ws, we;                                                 \
                    double div = avg_window(a, oy, ox, &hs, &he, &ws, &we);                 \
                    if (div <= 0) continue;                                                 \
                    T g = (T)(go[oy * OW + ox] / div);                                      \
                    for (int64_t yy = hs; yy < he; yy++)                                    \
                        for (int64_t xx = ws; xx < we; xx++) gi[yy * W + xx] += g;          \
                }                                                                           \
        }                                                                                   \
    } while (0)

void td_cpu_pool2d_backward(const td_pool2d_args *a, const void *gy, const int64_t *idx, void *gx)
{
    if (a->dtype == TD_FLOAT32 && a->kind != TD_POOL_MAX && td_pool_dnnl_backward(a, gy, gx)) return;
    if (a->channels_last) {
        td_cpu_pool2d_nhwc_backward(a, gy, idx, gx);
        return;
    }
    if (a->dtype == TD_FLOAT32)
        POOL_BWD(float);
    else
        POOL_BWD(double);
}
