/* float32 and bfloat16 2-d convolution through oneDNN's C API.
 *
 * Each (direction, shape, parameters) gets one primitive, built with
 * dnnl_format_tag_any so oneDNN picks its preferred (blocked) layouts, plus
 * reorders between those and our NCHW / OIHW (GOIHW for groups) buffers
 * where they differ. Direct convolutions take channels-last activations as
 * they are: oneDNN's nhwc kernels (brgconv forward, jit backward) run
 * within a few percent of its blocked ones on this CPU, so only their
 * weights are reordered (and NCHW inputs, by oneDNN's reorder). Winograd
 * convolutions (want_winograd) exist only for blocked layouts, so theirs
 * are reordered too, which their speed pays for; an NCHW input goes to
 * the blocked layout in one reorder, not through channels-last. Building,
 * caching (a small LRU cache, so a training loop builds each primitive
 * once) and running the primitives is dnnl_conv.c's, shared with
 * nn_convnd_dnnl.c.
 *
 * bfloat16 (where dnnl_conv.c's td_dc_takes says so) uses the same
 * primitives with bf16 src, weights, dst and bias, always the direct
 * algorithm (oneDNN's Winograd is float32-only): oneDNN sums in float32
 * and rounds y, gx, gw and gb to bfloat16 once. */
#include "dnnl_conv.h"
#include "iter.h"

#include <stdlib.h>
#include <string.h>

enum { K_FWD = TD_DC_FWD, K_BWD_DATA = TD_DC_BWD_DATA, K_BWD_WEIGHTS = TD_DC_BWD_WEIGHTS };
enum { S_DATA = TD_DC_DATA, S_WEIGHTS = TD_DC_WEIGHTS, S_DST = TD_DC_DST, NSLOT = TD_DC_NSLOT };

typedef struct {
    int64_t kind, has_bias;
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups, channels_last, x_cl, gy_cl;
    int64_t threads; /* oneDNN splits the work for the count at creation */
    int64_t dtype;
} conv_key;

_Static_assert(sizeof(conv_key) <= sizeof(((td_dc_entry *)0)->key), "conv_key too large");

static td_lru cache; /* of td_dc_entry, keyed by conv_key; under td_dc_lock */

/* user (our layout) descriptors of x, w, y: the outputs (y, gx) in
 * channels_last's layout, the inputs (x, gy) in theirs */
static dnnl_status_t user_mds(const conv_key *k, dnnl_memory_desc_t md[NSLOT],
                              dnnl_memory_desc_t *bias)
{
    dnnl_dims_t xd = {k->n, k->c, k->h, k->w};
    int64_t oh = (k->h + 2 * k->ph - k->dh * (k->kh - 1) - 1) / k->sh + 1;
    int64_t ow = (k->w + 2 * k->pw - k->dw * (k->kw - 1) - 1) / k->sw + 1;
    dnnl_dims_t yd = {k->n, k->o, oh, ow};
    dnnl_dims_t bd = {k->o};
    bool data_cl = k->kind == K_BWD_DATA ? k->channels_last : k->x_cl;
    bool dst_cl = k->kind == K_FWD ? k->channels_last : k->gy_cl;
    dnnl_data_type_t dt = td_dc_dt((td_dtype)k->dtype);
    dnnl_status_t s =
        dnnl_memory_desc_init_by_tag(&md[S_DATA], 4, xd, dt, data_cl ? dnnl_nhwc : dnnl_nchw);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&md[S_DST], 4, yd, dt, dst_cl ? dnnl_nhwc : dnnl_nchw);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_tag(bias, 1, bd, dt, dnnl_x);
    if (s != dnnl_success) return s;
    if (k->groups == 1) {
        dnnl_dims_t wd = {k->o, k->c, k->kh, k->kw};
        return dnnl_memory_desc_init_by_tag(&md[S_WEIGHTS], 4, wd, dt, dnnl_oihw);
    }
    dnnl_dims_t wd = {k->groups, k->o / k->groups, k->c / k->groups, k->kh, k->kw};
    return dnnl_memory_desc_init_by_tag(&md[S_WEIGHTS], 5, wd, dt, dnnl_goihw);
}

/* "any"-layout descriptors of the same shapes, except that with nhwc
 * the activations are channels-last (which the primitive then takes as
 * they are where they come so, else through a reorder) */
static dnnl_status_t any_mds(const conv_key *k, bool nhwc, const dnnl_memory_desc_t user[NSLOT],
                             dnnl_memory_desc_t any[NSLOT])
{
    for (int i = 0; i < NSLOT; i++) {
        bool act = nhwc && k->channels_last && i != S_WEIGHTS;
        dnnl_status_t s =
            dnnl_memory_desc_init_by_tag(&any[i], user[i].ndims, user[i].dims, user[i].data_type,
                                         act ? dnnl_nhwc : dnnl_format_tag_any);
        if (s != dnnl_success) return s;
    }
    return dnnl_success;
}

/* k's primitive for alg, built and cached */
static td_status build(const conv_key *k, dnnl_alg_kind_t alg, td_dc_entry **out)
{
    td_dc_desc d = {.kind = (int)k->kind,
                    .alg = alg,
                    .has_bias = k->has_bias,
                    .strides = {k->sh, k->sw},
                    .dil = {k->dh - 1, k->dw - 1},
                    .padl = {k->ph, k->pw},
                    .padr = {k->ph, k->pw}};
    dnnl_status_t s = user_mds(k, d.user, &d.bias);
    if (s == dnnl_success) s = any_mds(k, alg != dnnl_convolution_winograd, d.user, d.want);
    if (s != dnnl_success) return td_dc_fail("conv2d", s, "memory descriptor");
    return td_dc_build("conv2d", &cache, k, sizeof *k, &d, out);
}

/* Winograd F(4x4, 3x3) (oneDNN's jit_wino_4x3) does a 3x3 stride-1
 * convolution in about half the multiplications. Measured on a 2-core Zen 5
 * in resnet18's and smallcnn's shapes it beats the direct kernels by 1.2x
 * to 2.8x from 32 channels up, blocked reorders of the activations
 * included; below 32 channels (a network's first layer) it is slower. Its
 * weight gradient gains nothing on 4x4 maps and needs a 125 MB scratchpad
 * there, so that direction asks for 8x8 and up. Its rounding differs from
 * the direct kernels' by a few float32 ulps of the sum (tested against the
 * float64 loops); TIDE_CONV_WINOGRAD=0 keeps every shape direct. */
static bool want_winograd(const conv_key *k)
{
    static int enabled = -1;
    if (enabled < 0) {
        const char *v = getenv("TIDE_CONV_WINOGRAD");
        enabled = !(v && strcmp(v, "0") == 0);
    }
    return enabled && k->dtype == TD_FLOAT32 && k->kh == 3 && k->kw == 3 && k->sh == 1 &&
           k->sw == 1 && k->dh == 1 && k->dw == 1 && k->groups == 1 && k->c >= 32 && k->o >= 32 &&
           (k->kind != K_BWD_WEIGHTS || k->h * k->w >= 64);
}

/* the cached entry for k (built on a miss); call with the lock held */
static td_status entry_get(const conv_key *k, td_dc_entry **out)
{
    if ((*out = td_dc_find(&cache, k, sizeof *k))) return TD_OK;
    td_status st = TD_EINVAL;
    /* a shape oneDNN has no Winograd kernel for (this CPU, these channel
     * counts) falls back to the direct algorithm */
    if (want_winograd(k)) st = build(k, dnnl_convolution_winograd, out);
    if (st != TD_OK) st = build(k, dnnl_convolution_direct, out);
    return st;
}

/* run the primitive of `kind` on our buffers ptr[slot] (and bias, or NULL);
 * call with the lock held. sh, when not NULL, lends or receives the
 * reordered diff_dst. */
static td_status run_locked(int kind, const td_conv_args *a, void *ptr[NSLOT], void *bias,
                            td_dc_lent *sh)
{
    conv_key k = {kind,
                  bias != NULL,
                  a->n,
                  a->c,
                  a->h,
                  a->w,
                  a->o,
                  a->kh,
                  a->kw,
                  a->sh,
                  a->sw,
                  a->ph,
                  a->pw,
                  a->dh,
                  a->dw,
                  a->groups,
                  a->channels_last,
                  a->x_cl,
                  a->gy_cl,
                  td_cpu_threads_sync(),
                  a->dtype};
    td_dc_entry *e;
    td_status st = entry_get(&k, &e);
    return st != TD_OK ? st : td_dc_run("conv2d", e, ptr, bias, sh);
}

static td_status run(int kind, const td_conv_args *a, void *ptr[NSLOT], void *bias)
{
    td_dc_lock();
    td_status st = run_locked(kind, a, ptr, bias, NULL);
    td_dc_unlock();
    return st;
}

/* bfloat16's bias_grad: the same sums in double, rounded once */
static void bias_grad_bf16(const td_conv_args *a, const uint16_t *gy, uint16_t *gb)
{
    int64_t plane = a->oh * a->ow;
    for (int64_t oc = 0; oc < a->o; oc++) {
        double s = 0;
        for (int64_t ni = 0; ni < a->n; ni++)
            for (int64_t i = 0; i < plane; i++)
                s += td_bf16_to_float(a->gy_cl ? gy[(ni * plane + i) * a->o + oc]
                                               : gy[(ni * a->o + oc) * plane + i]);
        gb[oc] = td_float_to_bf16((float)s);
    }
}

/* gy summed over n, oh, ow */
static void bias_grad(const td_conv_args *a, const void *gyv, void *gbv)
{
    if (a->dtype == TD_BFLOAT16) {
        bias_grad_bf16(a, gyv, gbv);
        return;
    }
    const float *gy = gyv;
    float *gb = gbv;
    if (a->gy_cl) { /* rows of o channels, summed a block of channels at a time */
        enum { B = 256 };
        int64_t rows = a->n * a->oh * a->ow;
        for (int64_t c0 = 0; c0 < a->o; c0 += B) {
            int64_t w = a->o - c0 < B ? a->o - c0 : B;
            double s[B] = {0};
            for (int64_t r = 0; r < rows; r++)
                for (int64_t j = 0; j < w; j++) s[j] += gy[r * a->o + c0 + j];
            for (int64_t j = 0; j < w; j++) gb[c0 + j] = (float)s[j];
        }
        return;
    }
    int64_t plane = a->oh * a->ow;
    for (int64_t oc = 0; oc < a->o; oc++) {
        double s = 0;
        for (int64_t ni = 0; ni < a->n; ni++) {
            const float *p = gy + (ni * a->o + oc) * plane;
            for (int64_t i = 0; i < plane; i++) s += p[i];
        }
        gb[oc] = (float)s;
    }
}

td_status td_conv_dnnl_forward(const td_conv_args *a, const void *x, const void *w, const void *b,
                               void *y)
{
    void *p[NSLOT] = {(void *)x, (void *)w, y};
    return run(K_FWD, a, p, (void *)b);
}

td_status td_conv_dnnl_backward_data(const td_conv_args *a, const void *gy, const void *w, void *gx)
{
    void *p[NSLOT] = {gx, (void *)w, (void *)gy};
    return run(K_BWD_DATA, a, p, NULL);
}

td_status td_conv_dnnl_backward_weights(const td_conv_args *a, const void *x, const void *gy,
                                        void *gw, void *gb)
{
    if (!gw) {
        bias_grad(a, gy, gb);
        return TD_OK;
    }
    void *p[NSLOT] = {(void *)x, gw, (void *)gy};
    return run(K_BWD_WEIGHTS, a, p, gb);
}

td_status td_conv_dnnl_backward(const td_conv_args *a, const void *x, const void *w, const void *gy,
                                void *gx, void *gw, void *gb)
{
    td_dc_lent sh = {.buf = NULL};
    td_status st = TD_OK;
    td_dc_lock();
    if (gx) {
        void *p[NSLOT] = {gx, (void *)w, (void *)gy};
        st = run_locked(K_BWD_DATA, a, p, NULL, &sh);
    }
    if (st == TD_OK && gw) {
        void *p[NSLOT] = {(void *)x, gw, (void *)gy};
        st = run_locked(K_BWD_WEIGHTS, a, p, gb, &sh);
    }
    if (sh.buf) td_cpu_free(sh.buf, sh.size);
    td_dc_unlock();
    if (st == TD_OK && gb && !gw) bias_grad(a, gy, gb);
    return st;
}
