/* The oneDNN convolution machinery of nn_conv_dnnl.c and nn_convnd_dnnl.c
 * (see dnnl_conv.h). The backward primitives are built with the forward
 * primitive descriptor as their hint. The copies in the primitives'
 * layouts come from our allocator (whose large-block cache makes them
 * cheap to reuse), and every primitive shares one scratchpad. One engine
 * and one stream serve every call; the mutex is held through execution,
 * so the shared stream, scratchpad and cached primitives are never used by
 * two threads at once. */
#include "dnnl_conv.h"
#include "iter.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct {
    pthread_mutex_t lock;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    bool ready;
    void *scratch; /* one scratchpad for every primitive, grown to the largest asked */
    size_t scratch_cap;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

/* which slots each kind writes */
static const bool is_out[3][TD_DC_NSLOT] = {{0, 0, 1}, {1, 0, 0}, {0, 1, 0}};

void td_dc_lock(void) { pthread_mutex_lock(&g.lock); }
void td_dc_unlock(void) { pthread_mutex_unlock(&g.lock); }

td_status td_dc_fail(const char *who, dnnl_status_t s, const char *what)
{
    return td_error(s == dnnl_out_of_memory ? TD_ENOMEM : TD_EINVAL, 0,
                    "%s: oneDNN %s failed (status %d)", who, what, (int)s);
}

#define DN(call, what)                                                                             \
    do {                                                                                           \
        dnnl_status_t dn_s_ = (call);                                                              \
        if (dn_s_ != dnnl_success) {                                                               \
            st = td_dc_fail(who, dn_s_, what);                                                     \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static td_status ensure_engine(const char *who)
{
    if (g.ready) return TD_OK;
    dnnl_status_t s = dnnl_engine_create(&g.engine, dnnl_cpu, 0);
    if (s != dnnl_success) return td_dc_fail(who, s, "engine creation");
    s = dnnl_stream_create(&g.stream, g.engine, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        dnnl_engine_destroy(g.engine);
        return td_dc_fail(who, s, "stream creation");
    }
    g.ready = true;
    return TD_OK;
}

static void entry_free(td_dc_entry *e)
{
    if (!e) return;
    if (e->prim) dnnl_primitive_destroy(e->prim);
    for (int i = 0; i < TD_DC_NSLOT; i++)
        if (e->reorder[i]) dnnl_primitive_destroy(e->reorder[i]);
    free(e);
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

td_dc_entry *td_dc_find(td_lru *cache, const void *key, size_t key_size)
{
    return td_lru_find(cache, key, key_size);
}

/* d's primitive descriptor in *pd; hint receives the forward one a
 * backward primitive is built with */
static td_status prim_desc(const char *who, const td_dc_desc *d, dnnl_primitive_attr_t attr,
                           dnnl_primitive_desc_t *pd, dnnl_primitive_desc_t *hint)
{
    td_status st = TD_OK;
    const dnnl_memory_desc_t *w = d->want, *bias = d->has_bias ? &d->bias : NULL;
    dnnl_convolution_desc_t fd, bd;
    DN(dnnl_dilated_convolution_forward_desc_init(
           &fd, dnnl_forward_training, d->alg, &w[TD_DC_DATA], &w[TD_DC_WEIGHTS], bias,
           &w[TD_DC_DST], d->strides, d->dil, d->padl, d->padr),
       "forward descriptor");
    if (d->kind == TD_DC_FWD) {
        DN(dnnl_primitive_desc_create(pd, &fd, attr, g.engine, NULL),
           "forward primitive descriptor");
        return TD_OK;
    }
    DN(dnnl_primitive_desc_create(hint, &fd, NULL, g.engine, NULL), "forward primitive descriptor");
    if (d->kind == TD_DC_BWD_DATA)
        DN(dnnl_dilated_convolution_backward_data_desc_init(&bd, d->alg, &w[TD_DC_DATA],
                                                            &w[TD_DC_WEIGHTS], &w[TD_DC_DST],
                                                            d->strides, d->dil, d->padl, d->padr),
           "backward data descriptor");
    else
        DN(dnnl_dilated_convolution_backward_weights_desc_init(
               &bd, d->alg, &w[TD_DC_DATA], &w[TD_DC_WEIGHTS], bias, &w[TD_DC_DST], d->strides,
               d->dil, d->padl, d->padr),
           "backward weights descriptor");
    DN(dnnl_primitive_desc_create(pd, &bd, attr, g.engine, *hint), "backward primitive descriptor");
fail:
    return st;
}

td_status td_dc_build(const char *who, td_lru *cache, const void *key, size_t key_size,
                      const td_dc_desc *d, td_dc_entry **out)
{
    td_status st = ensure_engine(who);
    if (st != TD_OK) return st;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL, hint = NULL, rpd = NULL;
    td_dc_entry *e = calloc(1, sizeof *e);
    if (!e) return td_error(TD_ENOMEM, 0, "%s: out of memory", who);
    memcpy(e->key, key, key_size < sizeof e->key ? key_size : sizeof e->key);
    e->kind = d->kind;
    memcpy(e->user_md, d->user, sizeof e->user_md);
    e->bias_md = d->bias;
    DN(dnnl_primitive_attr_create(&attr), "attribute creation");
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    if ((st = prim_desc(who, d, attr, &pd, &hint)) != TD_OK) goto fail;
    static const dnnl_query_t q[3][TD_DC_NSLOT] = {
        {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
        {dnnl_query_diff_src_md, dnnl_query_weights_md, dnnl_query_diff_dst_md},
        {dnnl_query_src_md, dnnl_query_diff_weights_md, dnnl_query_diff_dst_md},
    };
    for (int i = 0; i < TD_DC_NSLOT; i++) {
        const dnnl_memory_desc_t *pm = dnnl_primitive_desc_query_md(pd, q[d->kind][i], 0);
        if (!pm) {
            st = td_error(TD_EINVAL, 0, "%s: oneDNN gave no memory descriptor for argument %d", who,
                          i);
            goto fail;
        }
        e->prim_md[i] = *pm;
        e->prim_size[i] = dnnl_memory_desc_get_size(pm);
        if (dnnl_memory_desc_equal(pm, &e->user_md[i])) continue;
        if (i != TD_DC_WEIGHTS)
            DN(is_cl_to_blocked(&e->user_md[i], pm, &e->own_reorder[i]), "memory descriptor");
        if (is_out[d->kind][i])
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
    entry_free(td_lru_add(cache, e));
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

/* the shared scratchpad holds at least size bytes. One buffer rather than
 * one per call: each shape's scratchpad has its own size, and the
 * allocator's cache, which reuses only equal sizes, would keep one of each
 * (Winograd's run to 50 MB) */
static td_status scratch_reserve(const char *who, size_t size)
{
    if (size <= g.scratch_cap) return TD_OK;
    if (g.scratch) td_cpu_release(g.scratch, g.scratch_cap);
    g.scratch_cap = 0;
    if (!(g.scratch = td_cpu_alloc(size)))
        return td_error(TD_ENOMEM, 0, "%s: out of memory for a %zu-byte scratchpad", who, size);
    g.scratch_cap = size;
    return TD_OK;
}

static td_status exec(const char *who, dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args,
                      const char *what)
{
    dnnl_status_t s = dnnl_primitive_execute(p, g.stream, nargs, args);
    if (s == dnnl_success) s = dnnl_stream_wait(g.stream);
    return s == dnnl_success ? TD_OK : td_dc_fail(who, s, what);
}

td_status td_dc_run(const char *who, const td_dc_entry *e, void *ptr[TD_DC_NSLOT], void *bias,
                    td_dc_lent *sh)
{
    static const int arg_id[3][TD_DC_NSLOT] = {
        {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
        {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST},
        {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST},
    };
    int kind = e->kind;
    td_status st = TD_OK;
    dnnl_memory_t umem[TD_DC_NSLOT] = {0}, pmem[TD_DC_NSLOT] = {0}, bmem = NULL, smem = NULL;
    void *pbuf[TD_DC_NSLOT] = {0};
    dnnl_exec_arg_t args[TD_DC_NSLOT + 2];
    int nargs = 0;
    for (int i = 0; i < TD_DC_NSLOT; i++) {
        DN(dnnl_memory_create(&umem[i], &e->user_md[i], g.engine, ptr[i]), "memory creation");
        dnnl_memory_t use = umem[i];
        if (e->reorder[i]) {
            bool lent =
                sh && i == TD_DC_DST && sh->buf && dnnl_memory_desc_equal(&sh->md, &e->prim_md[i]);
            if (!lent) {
                pbuf[i] = td_cpu_alloc(e->prim_size[i]);
                if (!pbuf[i]) {
                    st = td_error(TD_ENOMEM, 0, "%s: out of memory for a %zu-byte blocked buffer",
                                  who, e->prim_size[i]);
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
                else if ((st = exec(who, e->reorder[i], 2, ra, "reorder")) != TD_OK)
                    goto fail;
                if (sh && i == TD_DC_DST && !sh->buf) { /* keep it for the next call */
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
        args[nargs++] =
            (dnnl_exec_arg_t){kind == TD_DC_FWD ? DNNL_ARG_BIAS : DNNL_ARG_DIFF_BIAS, bmem};
    }
    if (e->scratch_size > 0) {
        if ((st = scratch_reserve(who, e->scratch_size)) != TD_OK) goto fail;
        DN(dnnl_memory_create(&smem, &e->scratch_md, g.engine, g.scratch), "memory creation");
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, smem};
    }
    if ((st = exec(who, e->prim, nargs, args, "convolution")) != TD_OK) goto fail;
    for (int i = 0; i < TD_DC_NSLOT; i++)
        if (e->reorder[i] && is_out[kind][i]) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, pmem[i]}, {DNNL_ARG_TO, umem[i]}};
            if (e->own_reorder[i])
                cl_blocked(ptr[i], pbuf[i], &e->user_md[i], false);
            else if ((st = exec(who, e->reorder[i], 2, ra, "reorder")) != TD_OK)
                goto fail;
        }
fail:
    for (int i = 0; i < TD_DC_NSLOT; i++) {
        if (umem[i]) dnnl_memory_destroy(umem[i]);
        if (pmem[i]) dnnl_memory_destroy(pmem[i]);
        if (pbuf[i]) td_cpu_free(pbuf[i], e->prim_size[i]);
    }
    if (bmem) dnnl_memory_destroy(bmem);
    if (smem) dnnl_memory_destroy(smem);
    return st;
}

dnnl_data_type_t td_dc_dt(td_dtype dt) { return dt == TD_BFLOAT16 ? dnnl_bf16 : dnnl_f32; }

/* ---- which path bfloat16 takes -------------------------------------------
 * bfloat16 convolutions run on oneDNN's bf16 primitives (bf16 src, weights
 * and dst, summed in float32 inside oneDNN) where the CPU has AVX512-BF16;
 * elsewhere, and for float16 (oneDNN 2.6.3 has no f16 convolution for
 * these CPUs), runtime/conv.c widens to float32. TIDE_LOWP_CONV=auto (the
 * default), onednn (wherever oneDNN has a non-reference bf16 kernel,
 * emulated or not) or float32 (the widening path always) picks it; read
 * once, at the first use. */

enum { USE_AUTO, USE_ONEDNN, USE_FLOAT32, USE_BAD };

static struct {
    pthread_once_t once;
    int use;
    bool bf16;      /* bfloat16 through oneDNN */
    char path[192]; /* bfloat16's path */
} lp = {.once = PTHREAD_ONCE_INIT};

/* whether oneDNN has a kernel other than its reference loops for a small
 * bf16 convolution; impl receives its name */
static bool probe(char *impl, size_t size)
{
    dnnl_memory_desc_t x, w, y;
    dnnl_dims_t xd = {2, 32, 8, 8}, wd = {32, 32, 3, 3}, yd = {2, 32, 8, 8};
    dnnl_dims_t st = {1, 1}, dil = {0, 0}, pad = {1, 1};
    dnnl_convolution_desc_t cd;
    dnnl_primitive_desc_t pd = NULL;
    const char *name = NULL;
    bool ok =
        dnnl_memory_desc_init_by_tag(&x, 4, xd, dnnl_bf16, dnnl_format_tag_any) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&w, 4, wd, dnnl_bf16, dnnl_format_tag_any) == dnnl_success &&
        dnnl_memory_desc_init_by_tag(&y, 4, yd, dnnl_bf16, dnnl_format_tag_any) == dnnl_success &&
        dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_training,
                                                   dnnl_convolution_direct, &x, &w, NULL, &y, st,
                                                   dil, pad, pad) == dnnl_success &&
        dnnl_primitive_desc_create(&pd, &cd, NULL, g.engine, NULL) == dnnl_success &&
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success && name &&
        strncmp(name, "ref", 3) != 0;
    snprintf(impl, size, "%s", ok ? name : "");
    if (pd) dnnl_primitive_desc_destroy(pd);
    return ok;
}

static void choose(void)
{
    const char *env = getenv("TIDE_LOWP_CONV");
    lp.use = !env || !*env || strcmp(env, "auto") == 0 ? USE_AUTO
             : strcmp(env, "onednn") == 0              ? USE_ONEDNN
             : strcmp(env, "float32") == 0             ? USE_FLOAT32
                                                       : USE_BAD;
    pthread_mutex_lock(&g.lock);
    bool engine = ensure_engine("conv2d") == TD_OK;
    pthread_mutex_unlock(&g.lock);
    if (!engine) td_clear_error();
    const dnnl_version_t *v = dnnl_version();
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    bool has_bf16 = ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
                    (unsigned)dnnl_cpu_isa_avx512_core_bf16;
    char impl[96] = "";
    bool can = engine && probe(impl, sizeof impl);
    lp.bf16 = lp.use == USE_ONEDNN ? can : lp.use == USE_AUTO && can && has_bf16;
    if (lp.bf16)
        snprintf(lp.path, sizeof lp.path, "onednn %d.%d.%d %s", v->major, v->minor, v->patch, impl);
    else if (lp.use == USE_FLOAT32)
        snprintf(lp.path, sizeof lp.path, "float32 fallback (TIDE_LOWP_CONV=float32)");
    else if (lp.use == USE_BAD)
        snprintf(lp.path, sizeof lp.path,
                 "float32 fallback (TIDE_LOWP_CONV is not auto, onednn or float32)");
    else if (can)
        snprintf(lp.path, sizeof lp.path,
                 "float32 fallback (oneDNN's %s emulates bfloat16 without AVX512-BF16)", impl);
    else
        snprintf(lp.path, sizeof lp.path,
                 "float32 fallback (oneDNN %d.%d.%d has no bfloat16 convolution for this CPU)",
                 v->major, v->minor, v->patch);
}

bool td_dc_takes(td_dtype dt)
{
    if (dt == TD_FLOAT32) return true;
    if (dt != TD_BFLOAT16) return false;
    pthread_once(&lp.once, choose);
    return lp.bf16;
}

const char *td_dc_path(td_dtype dt)
{
    switch (dt) {
    case TD_FLOAT32:
        return td_deterministic()
                   ? "onednn, fixed-order weight gradients (deterministic mode)"
                   : "onednn (winograd for 3x3 stride 1 from 32 channels, else direct)";
    case TD_FLOAT64: return "direct loops";
    case TD_FLOAT16: return "float32 fallback (oneDNN 2.6.3 has no float16 convolution here)";
    case TD_BFLOAT16: break;
    default: return "none";
    }
    pthread_once(&lp.once, choose);
    if (lp.bf16 && td_deterministic()) return "float32 fallback (deterministic mode)";
    return lp.path;
}
