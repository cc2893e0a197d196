/* float32 average pooling through oneDNN's C API, on our NCHW buffers or,
 * when a->channels_last, our NHWC ones (oneDNN's nhwc tag, the same data).
 *
 * oneDNN's NCHW pooling runs 3 to 5 times faster than our plain loops for
 * average pooling (forward and backward), and its nhwc pooling 1.3 to 3
 * times faster forward than nn_pool_nhwc.c's loops (its AVX-512 code
 * against our AVX2 build; backward about even), so float32 avg_pool2d, and
 * adaptive_avg_pool2d where the output divides the input (a plain average
 * pool), come here; nn_pool.c (NCHW) and nn_pool_nhwc.c (NHWC) keep the
 * plain loops as the float64 path, as the reference, and as the fallback
 * for what oneDNN cannot express (count_include_pad where a ceil_mode
 * window reaches past the padding, whose divisor PyTorch clips) or when a
 * oneDNN call fails. Max pooling stays in our loops: they are as fast as
 * oneDNN's and keep PyTorch's NaN and tie order, which oneDNN's does not
 * promise.
 *
 * Each shape gets one entry holding the forward and the backward primitive
 * (built with the forward as its hint), in the LRU cache of lru.h that
 * nn_conv_dnnl.c uses too; one engine and one stream, used under the cache's
 * mutex. */
#include "cpu.h"
#include "lru.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    int64_t n, c, h, w, oh, ow, kh, kw, sh, sw, ph, pw, pr_h, pr_w, include_pad, nhwc;
} pool_key;

typedef struct {
    pool_key key;
    dnnl_memory_desc_t src_md, dst_md;
    dnnl_primitive_t fwd, bwd;
} pool_entry;

static struct {
    pthread_mutex_t lock;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    bool ready, broken;
    td_lru cache; /* of pool_entry */
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static void entry_free(pool_entry *e)
{
    if (!e) return;
    if (e->fwd) dnnl_primitive_destroy(e->fwd);
    if (e->bwd) dnnl_primitive_destroy(e->bwd);
    free(e);
}

static bool ensure_engine(void)
{
    if (g.ready || g.broken) return g.ready;
    if (dnnl_engine_create(&g.engine, dnnl_cpu, 0) != dnnl_success) {
        g.broken = true;
        return false;
    }
    if (dnnl_stream_create(&g.stream, g.engine, dnnl_stream_default_flags) != dnnl_success) {
        dnnl_engine_destroy(g.engine);
        g.broken = true;
        return false;
    }
    g.ready = true;
    return true;
}

/* the key of a's pool as a oneDNN average pool; false where oneDNN's
 * result would differ from PyTorch's */
static bool make_key(const td_pool2d_args *a, pool_key *k)
{
    /* oneDNN has no divisor of the user's choosing */
    if (a->dtype != TD_FLOAT32 || a->n * a->c == 0 || a->divisor_override) return false;
    int64_t kh = a->kh, kw = a->kw, sh = a->sh, sw = a->sw, ph = a->ph, pw = a->pw;
    bool include_pad = a->count_include_pad;
    if (a->kind == TD_POOL_ADAPTIVE_AVG) {
        if (a->h % a->oh || a->w % a->ow) return false;
        kh = sh = a->h / a->oh, kw = sw = a->w / a->ow, ph = pw = 0, include_pad = false;
    } else if (a->kind != TD_POOL_AVG) {
        return false;
    }
    /* oneDNN's right padding: what the last window needs past the input */
    int64_t pr_h = (a->oh - 1) * sh + kh - a->h - ph, pr_w = (a->ow - 1) * sw + kw - a->w - pw;
    if (pr_h < 0) pr_h = 0;
    if (pr_w < 0) pr_w = 0;
    /* PyTorch divides by the window clipped at the padding's end; oneDNN by kh kw */
    if (include_pad && (ph > 0 || pw > 0) && (pr_h > ph || pr_w > pw)) return false;
    if (!include_pad || (ph == 0 && pw == 0)) include_pad = false;
    *k = (pool_key){a->n, a->c, a->h, a->w, a->oh, a->ow, kh,          kw,
                    sh,   sw,   ph,   pw,   pr_h,  pr_w,  include_pad, a->channels_last};
    return true;
}

static pool_entry *entry_build(const pool_key *k)
{
    pool_entry *e = calloc(1, sizeof *e);
    dnnl_primitive_desc_t fpd = NULL, bpd = NULL;
    if (!e) return NULL;
    e->key = *k;
    dnnl_dims_t xd = {k->n, k->c, k->h, k->w}, yd = {k->n, k->c, k->oh, k->ow};
    dnnl_dims_t strides = {k->sh, k->sw}, kernel = {k->kh, k->kw}, dil = {0, 0};
    dnnl_dims_t pl = {k->ph, k->pw}, pr = {k->pr_h, k->pr_w};
    dnnl_alg_kind_t alg =
        k->include_pad ? dnnl_pooling_avg_include_padding : dnnl_pooling_avg_exclude_padding;
    dnnl_pooling_v2_desc_t fd, bd;
    dnnl_format_tag_t tag = k->nhwc ? dnnl_nhwc : dnnl_nchw;
    bool ok =
        dnnl_memory_desc_init_by_tag(&e->src_md, 4, xd, dnnl_f32, tag) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&e->dst_md, 4, yd, dnnl_f32, tag) == dnnl_success &&
        dnnl_pooling_v2_forward_desc_init(&fd, dnnl_forward_training, alg, &e->src_md, &e->dst_md,
                                          strides, kernel, dil, pl, pr) == dnnl_success &&
        dnnl_primitive_desc_create(&fpd, &fd, NULL, g.engine, NULL) == dnnl_success &&
        dnnl_primitive_create(&e->fwd, fpd) == dnnl_success &&
        dnnl_pooling_v2_backward_desc_init(&bd, alg, &e->src_md, &e->dst_md, strides, kernel, dil,
                                           pl, pr) == dnnl_success &&
        dnnl_primitive_desc_create(&bpd, &bd, NULL, g.engine, fpd) == dnnl_success &&
        dnnl_primitive_create(&e->bwd, bpd) == dnnl_success;
    /* the plain layouts were asked for, so no reorder can be needed */
    if (ok) {
        const dnnl_memory_desc_t *s = dnnl_primitive_desc_query_md(fpd, dnnl_query_src_md, 0);
        const dnnl_memory_desc_t *d = dnnl_primitive_desc_query_md(fpd, dnnl_query_dst_md, 0);
        const dnnl_memory_desc_t *ws =
            dnnl_primitive_desc_query_md(fpd, dnnl_query_workspace_md, 0);
        ok = s && d && dnnl_memory_desc_equal(s, &e->src_md) &&
             dnnl_memory_desc_equal(d, &e->dst_md) && (!ws || ws->ndims == 0);
    }
    if (fpd) dnnl_primitive_desc_destroy(fpd);
    if (bpd) dnnl_primitive_desc_destroy(bpd);
    if (!ok) {
        entry_free(e);
        return NULL;
    }
    return e;
}

/* the cached entry for k, built on a miss; NULL when oneDNN declines; call
 * with the lock held */
static pool_entry *entry_get(const pool_key *k)
{
    pool_entry *e = td_lru_find(&g.cache, k, sizeof *k);
    if (e) return e;
    if (!(e = entry_build(k))) return NULL;
    entry_free(td_lru_add(&g.cache, e));
    return e;
}

/* run one direction on (input of the primitive, output); false when not taken */
static bool run(const td_pool2d_args *a, bool backward, const float *in, float *out)
{
    pool_key k;
    if (!make_key(a, &k)) return false;
    bool done = false;
    dnnl_memory_t src = NULL, dst = NULL;
    pthread_mutex_lock(&g.lock);
    pool_entry *e = ensure_engine() ? entry_get(&k) : NULL;
    if (e &&
        dnnl_memory_create(&src, &e->src_md, g.engine, backward ? out : (void *)in) ==
            dnnl_success &&
        dnnl_memory_create(&dst, &e->dst_md, g.engine, backward ? (void *)in : out) ==
            dnnl_success) {
        dnnl_exec_arg_t args[2] = {{backward ? DNNL_ARG_DIFF_SRC : DNNL_ARG_SRC, src},
                                   {backward ? DNNL_ARG_DIFF_DST : DNNL_ARG_DST, dst}};
        done =
            dnnl_primitive_execute(backward ? e->bwd : e->fwd, g.stream, 2, args) == dnnl_success &&
            dnnl_stream_wait(g.stream) == dnnl_success;
    }
    if (src) dnnl_memory_destroy(src);
    if (dst) dnnl_memory_destroy(dst);
    pthread_mutex_unlock(&g.lock);
    return done;
}

bool td_pool_dnnl_forward(const td_pool2d_args *a, const float *x, float *y)
{
    return run(a, false, x, y);
}

bool td_pool_dnnl_backward(const td_pool2d_args *a, const float *gy, float *gx)
{
    return run(a, true, gy, gx);
}
