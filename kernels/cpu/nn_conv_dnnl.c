/* float32 2-d convolution through oneDNN's C API.
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
 * the blocked layout in one reorder, not through channels-last. The backward primitives are built
 * with the forward primitive descriptor as their hint. Primitives live in a small LRU cache so a
 * training loop builds each once. The blocked copies come from our
 * allocator (whose large-block cache makes them cheap to reuse), and every
 * primitive shares one scratchpad. One engine and one stream serve every
 * call; the cache's mutex is held through execution, so the shared stream,
 * scratchpad and cached primitives are never used by two threads at once
 * (oneDNN parallelises each call itself with OpenMP). */
#include "cpu.h"
#include "iter.h"
#include "lru.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { K_FWD, K_BWD_DATA, K_BWD_WEIGHTS };
enum {
    S_DATA,
    S_WEIGHTS,
    S_DST,
    NSLOT
}; /* src or diff_src, weights or diff_weights, dst or diff_dst */

typedef struct {
    int64_t kind, has_bias;
    int64_t n, c, h, w, o, kh, kw, sh, sw, ph, pw, dh, dw, groups, channels_last, x_cl, gy_cl;
    int64_t threads; /* oneDNN splits the work for the count at creation */
} conv_key;

typedef struct {
    conv_key key;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t user_md[NSLOT], prim_md[NSLOT], bias_md;
    dnnl_primitive_t
        reorder[NSLOT]; /* user -> prim for inputs, prim -> user for outputs; NULL = same layout */
    size_t prim_size[NSLOT];
    bool own_reorder[NSLOT]; /* channels-last <-> nChw16c: ours, not oneDNN's */
    dnnl_memory_desc_t scratch_md;
    size_t scratch_size;
} conv_entry;

static struct {
    pthread_mutex_t lock;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    dnnl_status_t init_status;
    bool ready;
    td_lru cache;  /* of conv_entry */
    void *scratch; /* one scratchpad for every primitive, grown to the largest asked */
    size_t scratch_cap;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static td_status dnnl_fail(dnnl_status_t s, const char *what)
{
    return td_error(s == dnnl_out_of_memory ? TD_ENOMEM : TD_EINVAL, 0,
                    "conv2d: oneDNN %s failed (status %d)", what, (int)s);
}

#define DN(call, what)                                                                             \
    do {                                                                                           \
        dnnl_status_t dn_s_ = (call);                                                              \
        if (dn_s_ != dnnl_success) {                                                               \
            st = dnnl_fail(dn_s_, what);                                                           \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static td_status ensure_engine(void)
{
    if (g.ready) return TD_OK;
    dnnl_status_t s = dnnl_engine_create(&g.engine, dnnl_cpu, 0);
    if (s != dnnl_success) return dnnl_fail(s, "engine creation");
    s = dnnl_stream_create(&g.stream, g.engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        dnnl_engine_destroy(g.engine);
        return dnnl_fail(s, "stream creation");
    }
    g.ready = true;
    return TD_OK;
}

static void entry_free(conv_entry *e)
{
    if (!e) return;
    if (e->prim) dnnl_primitive_destroy(e->prim);
    for (int i = 0; i < NSLOT; i++)
        if (e->reorder[i]) dnnl_primitive_destroy(e->reorder[i]);
    free(e);
}

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
    dnnl_status_t s =
        dnnl_memory_desc_init_by_tag(&md[S_DATA], 4, xd, dnnl_f32, data_cl ? dnnl_nhwc : dnnl_nchw);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&md[S_DST], 4, yd, dnnl_f32,
                                         dst_cl ? dnnl_nhwc : dnnl_nchw);
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_tag(bias, 1, bd, dnnl_f32, dnnl_x);
    if (s != dnnl_success) return s;
    if (k->groups == 1) {
        dnnl_dims_t wd = {k->o, k->c, k->kh, k->kw};
        return dnnl_memory_desc_init_by_tag(&md[S_WEIGHTS], 4, wd, dnnl_f32, dnnl_oihw);
    }
    dnnl_dims_t wd = {k->groups, k->o / k->groups, k->c / k->groups, k->kh, k->kw};
    return dnnl_memory_desc_init_by_tag(&md[S_WEIGHTS], 5, wd, dnnl_f32, dnnl_goihw);
}

/* "any"-layout descriptors of the same shapes, except that with nhwc
 * the activations are channels-last (which the primitive then takes as
 * they are where they come so, else through a reorder) */
static dnnl_status_t any_mds(const conv_key *k, bool nhwc, const dnnl_memory_desc_t user[NSLOT],
                             dnnl_memory_desc_t any[NSLOT])
{
    for (int i = 0; i < NSLOT; i++) {
        bool act = nhwc && k->channels_last && i != S_WEIGHTS;
        dnnl_status_t s = dnnl_memory_desc_init_by_tag(
            &any[i], user[i].ndims, user[i].dims, dnnl_f32, act ? dnnl_nhwc : dnnl_format_tag_any);
        if (s != dnnl_success) return s;
    }
    return dnnl_success;
}

static dnnl_status_t fwd_desc(const conv_key *k, dnnl_alg_kind_t alg,
                              const dnnl_memory_desc_t any[NSLOT], const dnnl_memory_desc_t *bias,
                              dnnl_convolution_desc_t *d)
{
    dnnl_dims_t strides = {k->sh, k->sw}, dil = {k->dh - 1, k->dw - 1}, pad = {k->ph, k->pw};
    return dnnl_dilated_convolution_forward_desc_init(d, dnnl_forward_training, alg, &any[S_DATA],
                                                      &any[S_WEIGHTS], bias, &any[S_DST], strides,
                                                      dil, pad, pad);
}

/* whether user is channels-last and prim the same tensor in nChw16c with
 * no padding: the activations' reorder for Winograd */
static dnnl_status_t is_cl_to_blocked(const dnnl_memory_desc_t *user,
                                      const dnnl_memory_desc_t *prim, bool *yes)
{
    dnnl_memory_desc_t nhwc, blk;
    *yes = false;
    if (user->ndims != 4 || user->dims[1] % 16 != 0) return dnnl_success;
    dnnl_status_t s = dnnl_memory_desc_init_by_tag(&nhwc, 4, user->dims, dnnl_f32, dnnl_nhwc);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&blk, 4, user->dims, dnnl_f32, dnnl_nChw16c);
    if (s == dnnl_success)
        *yes = dnnl_memory_desc_equal(user, &nhwc) && dnnl_memory_desc_equal(prim, &blk);
    return s;
}

/* Between channels-last (n, hw, c) and nChw16c (n, c / 16, hw, 16): each
 * 16-channel group of a position is one 64-byte line on both sides.
 * oneDNN's own reorder took 0.74 ms for (128, 64, 14, 14) each way in
 * smallcnn's backward, several times the memory's time. */
static void cl_blocked(float *cl, float *blk, const dnnl_memory_desc_t *md, bool to_blocked)
{
    int64_t n = md->dims[0], c = md->dims[1], hw = md->dims[2] * md->dims[3], cb = c / 16;
    int nt = td_cpu_threads_for(n * c * hw, TD_CPU_GRAIN);
#pragma omp parallel for collapse(2) num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t i = 0; i < n; i++)
        for (int64_t b = 0; b < cb; b++) {
            float *pb = blk + (i * cb + b) * hw * 16, *pc = cl + i * hw * c + b * 16;
            if (to_blocked)
                for (int64_t p = 0; p < hw; p++) memcpy(pb + p * 16, pc + p * c, 64);
            else
                for (int64_t p = 0; p < hw; p++) memcpy(pc + p * c, pb + p * 16, 64);
        }
}

static td_status entry_build(const conv_key *k, dnnl_alg_kind_t alg, conv_entry **out)
{
    td_status st = TD_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL, hint = NULL, rpd = NULL;
    conv_entry *e = calloc(1, sizeof *e);
    if (!e) return td_error(TD_ENOMEM, 0, "conv2d: out of memory");
    e->key = *k;
    dnnl_memory_desc_t any[NSLOT];
    DN(user_mds(k, e->user_md, &e->bias_md), "memory descriptor");
    DN(any_mds(k, alg != dnnl_convolution_winograd, e->user_md, any), "memory descriptor");
    DN(dnnl_primitive_attr_create(&attr), "attribute creation");
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    const dnnl_memory_desc_t *bias = k->has_bias ? &e->bias_md : NULL;
    dnnl_convolution_desc_t d;
    dnnl_dims_t strides = {k->sh, k->sw}, dil = {k->dh - 1, k->dw - 1}, pad = {k->ph, k->pw};
    if (k->kind == K_FWD) {
        DN(fwd_desc(k, alg, any, bias, &d), "forward descriptor");
        DN(dnnl_primitive_desc_create(&pd, &d, attr, g.engine, NULL),
           "forward primitive descriptor");
    } else {
        dnnl_convolution_desc_t fd;
        DN(fwd_desc(k, alg, any, bias, &fd), "forward descriptor");
        DN(dnnl_primitive_desc_create(&hint, &fd, NULL, g.engine, NULL),
           "forward primitive descriptor");
        if (k->kind == K_BWD_DATA)
            DN(dnnl_dilated_convolution_backward_data_desc_init(
                   &d, alg, &any[S_DATA], &any[S_WEIGHTS], &any[S_DST], strides, dil, pad, pad),
               "backward data descriptor");
        else
            DN(dnnl_dilated_convolution_backward_weights_desc_init(
                   &d, alg, &any[S_DATA], &any[S_WEIGHTS], bias, &any[S_DST], strides, dil, pad,
                   pad),
               "backward weights descriptor");
        DN(dnnl_primitive_desc_create(&pd, &d, attr, g.engine, hint),
           "backward primitive descriptor");
    }
    static const dnnl_query_t q[3][NSLOT] = {
        {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
        {dnnl_query_diff_src_md, dnnl_query_weights_md, dnnl_query_diff_dst_md},
        {dnnl_query_src_md, dnnl_query_diff_weights_md, dnnl_query_diff_dst_md},
    };
    static const bool is_out[3][NSLOT] = {{0, 0, 1}, {1, 0, 0}, {0, 1, 0}};
    for (int i = 0; i < NSLOT; i++) {
        const dnnl_memory_desc_t *pm = dnnl_primitive_desc_query_md(pd, q[k->kind][i], 0);
        if (!pm) {
            st = td_error(TD_EINVAL, 0, "conv2d: oneDNN gave no memory descriptor for argument %d",
                          i);
            goto fail;
        }
        e->prim_md[i] = *pm;
        e->prim_size[i] = dnnl_memory_desc_get_size(pm);
        if (dnnl_memory_desc_equal(pm, &e->user_md[i])) continue;
        if (i != S_WEIGHTS)
            DN(is_cl_to_blocked(&e->user_md[i], pm, &e->own_reorder[i]), "memory descriptor");
        if (is_out[k->kind][i])
            DN(dnnl_reorder_primitive_desc_create(&rpd, pm, g.engine, &e->user_md[i], g.engine,
                                                  NULL),
               "reorder descriptor");
        else
            DN(dnnl_reorder_primitive_desc_create(&rpd, &e->user_md[i], g.engine, pm, g.engine,
                                                  NULL),
               "reorder descriptor");
        DN(dnnl_primitive_create(&e->reorder[i], rpd), "reorder creation");
        dnnl_primitive_desc_destroy(rpd);
        rpd = NULL;
    }
    const dnnl_memory_desc_t *sm = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (sm) {
        e->scratch_md = *sm;
        e->scratch_size = dnnl_memory_desc_get_size(sm);
    }
    DN(dnnl_primitive_create(&e->prim, pd), "primitive creation");
    *out = e;
    e = NULL;
fail:
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (hint) dnnl_primitive_desc_destroy(hint);
    if (attr) dnnl_primitive_attr_destroy(attr);
    entry_free(e);
    return st;
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
    return enabled && k->kh == 3 && k->kw == 3 && k->sh == 1 && k->sw == 1 && k->dh == 1 &&
           k->dw == 1 && k->groups == 1 && k->c >= 32 && k->o >= 32 &&
           (k->kind != K_BWD_WEIGHTS || k->h * k->w >= 64);
}

/* the cached entry for k (built on a miss); call with the lock held */
static td_status entry_get(const conv_key *k, conv_entry **out)
{
    if ((*out = td_lru_find(&g.cache, k, sizeof *k))) return TD_OK;
    conv_entry *e;
    td_status st = TD_EINVAL;
    /* a shape oneDNN has no Winograd kernel for (this CPU, these channel
     * counts) falls back to the direct algorithm */
    if (want_winograd(k)) st = entry_build(k, dnnl_convolution_winograd, &e);
    if (st != TD_OK) st = entry_build(k, dnnl_convolution_direct, &e);
    if (st != TD_OK) return st;
    entry_free(td_lru_add(&g.cache, e));
    *out = e;
    return TD_OK;
}

/* the shared scratchpad holds at least size bytes; call with the lock held.
 * One buffer rather than one per call: each shape's scratchpad has its own
 * size, and the allocator's cache, which reuses only equal sizes, would
 * keep one of each (Winograd's run to 50 MB) */
static td_status scratch_reserve(size_t size)
{
    if (size <= g.scratch_cap) return TD_OK;
    if (g.scratch) td_cpu_release(g.scratch, g.scratch_cap);
    g.scratch_cap = 0;
    if (!(g.scratch = td_cpu_alloc(size)))
        return td_error(TD_ENOMEM, 0, "conv2d: out of memory for a %zu-byte scratchpad", size);
    g.scratch_cap = size;
    return TD_OK;
}

static td_status exec(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args, const char *what)
{
    dnnl_status_t s = dnnl_primitive_execute(p, g.stream, nargs, args);
    if (s == dnnl_success) s = dnnl_stream_wait(g.stream);
    return s == dnnl_success ? TD_OK : dnnl_fail(s, what);
}

/* diff_dst in the primitives' layout, reordered once and shared by the
 * backward-data and backward-weights calls of one backward pass */
typedef struct {
    dnnl_memory_desc_t md;
    void *buf;
    size_t size;
} shared_dst;

/* run the primitive of `kind` on our buffers ptr[slot] (and bias, or NULL);
 * call with the lock held. sh, when not NULL, lends or receives the
 * reordered diff_dst. */
static td_status run_locked(int kind, const td_conv_args *a, void *ptr[NSLOT], void *bias,
                            shared_dst *sh)
{
    static const int arg_id[3][NSLOT] = {
        {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
        {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST},
        {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST},
    };
    static const bool is_out[3][NSLOT] = {{0, 0, 1}, {1, 0, 0}, {0, 1, 0}};
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
                  td_cpu_threads_sync()};
    td_status st = TD_OK;
    dnnl_memory_t umem[NSLOT] = {0}, pmem[NSLOT] = {0}, bmem = NULL, smem = NULL;
    void *pbuf[NSLOT] = {0};
    conv_entry *e = NULL;
    if ((st = ensure_engine()) != TD_OK || (st = entry_get(&k, &e)) != TD_OK) goto fail;
    dnnl_exec_arg_t args[NSLOT + 2];
    int nargs = 0;
    for (int i = 0; i < NSLOT; i++) {
        DN(dnnl_memory_create(&umem[i], &e->user_md[i], g.engine, ptr[i]), "memory creation");
        dnnl_memory_t use = umem[i];
        if (e->reorder[i]) {
            bool lent =
                sh && i == S_DST && sh->buf && dnnl_memory_desc_equal(&sh->md, &e->prim_md[i]);
            if (!lent) {
                pbuf[i] = td_cpu_alloc(e->prim_size[i]);
                if (!pbuf[i]) {
                    st = td_error(TD_ENOMEM, 0,
                                  "conv2d: out of memory for a %zu-byte blocked buffer",
                                  e->prim_size[i]);
                    goto fail;
                }
            }
            DN(dnnl_memory_create(&pmem[i], &e->prim_md[i], g.engine, lent ? sh->buf : pbuf[i]),
               "memory creation");
            use = pmem[i];
            if (!is_out[kind][i] && !lent) {
                dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, umem[i]}, {DNNL_ARG_TO, pmem[i]}};
                if (e->own_reorder[i])
                    cl_blocked(ptr[i], pbuf[i], &e->user_md[i], true);
                else if ((st = exec(e->reorder[i], 2, ra, "reorder")) != TD_OK)
                    goto fail;
                if (sh && i == S_DST && !sh->buf) { /* keep it for the next call */
                    sh->md = e->prim_md[i];
                    sh->buf = pbuf[i];
                    sh->size = e->prim_size[i];
                    pbuf[i] = NULL;
                }
            }
        }
        args[nargs++] = (dnnl_exec_arg_t){arg_id[kind][i], use};
    }
    if (bias) {
        DN(dnnl_memory_create(&bmem, &e->bias_md, g.engine, bias), "memory creation");
        args[nargs++] = (dnnl_exec_arg_t){kind == K_FWD ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS, bmem};
    }
    if (e->scratch_size > 0) {
        if ((st = scratch_reserve(e->scratch_size)) != TD_OK) goto fail;
        DN(dnnl_memory_create(&smem, &e->scratch_md, g.engine, g.scratch), "memory creation");
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, smem};
    }
    if ((st = exec(e->prim, nargs, args, "convolution")) != TD_OK) goto fail;
    for (int i = 0; i < NSLOT; i++)
        if (e->reorder[i] && is_out[kind][i]) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, pmem[i]}, {DNNL_ARG_TO, umem[i]}};
            if (e->own_reorder[i])
                cl_blocked(ptr[i], pbuf[i], &e->user_md[i], false);
            else if ((st = exec(e->reorder[i], 2, ra, "reorder")) != TD_OK)
                goto fail;
        }
fail:
    for (int i = 0; i < NSLOT; i++) {
        if (umem[i]) dnnl_memory_destroy(umem[i]);
        if (pmem[i]) dnnl_memory_destroy(pmem[i]);
        if (pbuf[i]) td_cpu_free(pbuf[i], e->prim_size[i]);
    }
    if (bmem) dnnl_memory_destroy(bmem);
    if (smem) dnnl_memory_destroy(smem);
    return st;
}

static td_status run(int kind, const td_conv_args *a, void *ptr[NSLOT], void *bias)
{
    pthread_mutex_lock(&g.lock);
    td_status st = run_locked(kind, a, ptr, bias, NULL);
    pthread_mutex_unlock(&g.lock);
    return st;
}

/* gy summed over n, oh, ow */
static void bias_grad(const td_conv_args *a, const float *gy, float *gb)
{
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

td_status td_conv_dnnl_forward(const td_conv_args *a, const float *x, const float *w,
                               const float *b, float *y)
{
    void *p[NSLOT] = {(void *)x, (void *)w, y};
    return run(K_FWD, a, p, (void *)b);
}

td_status td_conv_dnnl_backward_data(const td_conv_args *a, const float *gy, const float *w,
                                     float *gx)
{
    void *p[NSLOT] = {gx, (void *)w, (void *)gy};
    return run(K_BWD_DATA, a, p, NULL);
}

td_status td_conv_dnnl_backward_weights(const td_conv_args *a, const float *x, const float *gy,
                                        float *gw, float *gb)
{
    if (!gw) {
        bias_grad(a, gy, gb);
        return TD_OK;
    }
    void *p[NSLOT] = {(void *)x, gw, (void *)gy};
    return run(K_BWD_WEIGHTS, a, p, gb);
}

td_status td_conv_dnnl_backward(const td_conv_args *a, const float *x, const float *w,
                                const float *gy, float *gx, float *gw, float *gb)
{
    shared_dst sh = {.buf = NULL};
    td_status st = TD_OK;
    pthread_mutex_lock(&g.lock);
    if (gx) {
        void *p[NSLOT] = {gx, (void *)w, (void *)gy};
        st = run_locked(K_BWD_DATA, a, p, NULL, &sh);
    }
    if (st == TD_OK && gw) {
        void *p[NSLOT] = {(void *)x, gw, (void *)gy};
        st = run_locked(K_BWD_WEIGHTS, a, p, gb, &sh);
    }
    if (sh.buf) td_cpu_free(sh.buf, sh.size);
    pthread_mutex_unlock(&g.lock);
    if (st == TD_OK && gb && !gw) bias_grad(a, gy, gb);
    return st;
}
