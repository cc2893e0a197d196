/* float32 N-d convolution (conv1d, conv3d, the transposed ones) through
 * oneDNN's C API. Our buffers are plain (ncw / nchw / ncdhw activations,
 * oiw / oihw / oidhw weights, with a leading groups dim when grouped); the
 * primitive picks its own layouts (dnnl_format_tag_any), with reorders
 * between: on a 2-core Zen machine conv3d forward + backward of
 * (8, 16, 16, 32, 32) by (32, 16, 3, 3, 3) took 255 to 330 ms so against
 * 690 to 825 ms on the plain layouts. A transposed convolution runs the
 * backward-data primitive as its forward: the same arithmetic as the
 * deconvolution primitive, and one primitive kind fewer to build. As
 * nn_conv_dnnl.c, primitives live in a small LRU cache, and a mutex
 * serialises their use of the one engine, stream and scratchpad. */
#include "cpu.h"
#include "iter.h"
#include "lru.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { K_FWD, K_BWD_DATA, K_BWD_WEIGHTS };

typedef struct {
    int64_t kind, nd, n, c, o, groups, threads;
    int64_t in[3], k[3], out[3], stride[3], pad[3], dil[3];
} nd_key;

enum { S_X, S_W, S_Y, NSLOT };

typedef struct {
    nd_key key;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t x_md, w_md, y_md, scratch_md;
    size_t scratch_size;
    /* the primitive's own layouts and the reorders between ours and them:
     * user -> primitive for inputs, back for outputs; NULL where they
     * agree */
    dnnl_memory_desc_t prim_md[NSLOT];
    dnnl_primitive_t reorder[NSLOT];
    size_t prim_size[NSLOT];
} nd_entry;

/* which slots each kind writes */
static const bool is_out[3][NSLOT] = {{0, 0, 1}, {1, 0, 0}, {0, 1, 0}};

static struct {
    pthread_mutex_t lock;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    bool ready;
    td_lru cache;
    void *scratch;
    size_t scratch_cap;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static td_status dnnl_fail(dnnl_status_t s, const char *what)
{
    return td_error(s == dnnl_out_of_memory ? TD_ENOMEM : TD_EINVAL, 0,
                    "convolution: oneDNN %s failed (status %d)", what, (int)s);
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

static void entry_free(nd_entry *e)
{
    if (!e) return;
    if (e->prim) dnnl_primitive_destroy(e->prim);
    for (int i = 0; i < NSLOT; i++)
        if (e->reorder[i]) dnnl_primitive_destroy(e->reorder[i]);
    free(e);
}

/* a transposed convolution's output_padding may leave trailing input
 * elements no output reads, which oneDNN's size rule (right padding >= 0
 * in effect) cannot express: the input is then described as its read
 * part, a strided view of the whole buffer; the unread elements' gradient
 * is zeroed before the backward-data run */
static int64_t pad_right(const nd_key *k, int i)
{
    return (k->out[i] - 1) * k->stride[i] + k->dil[i] * (k->k[i] - 1) + 1 - k->in[i] - k->pad[i];
}

static bool crops(const nd_key *k)
{
    for (int i = 0; i < k->nd; i++)
        if (pad_right(k, i) < 0) return true;
    return false;
}

static dnnl_status_t mds(const nd_key *k, nd_entry *e)
{
    static const dnnl_format_tag_t act[4] = {0, dnnl_ncw, dnnl_nchw, dnnl_ncdhw};
    static const dnnl_format_tag_t wt[4] = {0, dnnl_oiw, dnnl_oihw, dnnl_oidhw};
    static const dnnl_format_tag_t gwt[4] = {0, dnnl_goiw, dnnl_goihw, dnnl_goidhw};
    int nd = (int)k->nd;
    dnnl_dims_t xd = {k->n, k->c}, yd = {k->n, k->o}, wd = {0};
    int wn = 0;
    if (k->groups > 1) wd[wn++] = k->groups;
    wd[wn++] = k->o / k->groups;
    wd[wn++] = k->c / k->groups;
    for (int i = 0; i < nd; i++) {
        xd[2 + i] = k->in[i];
        yd[2 + i] = k->out[i];
        wd[wn++] = k->k[i];
    }
    dnnl_status_t s;
    if (crops(k)) {
        dnnl_dims_t read = {k->n, k->c}, strides = {0};
        int64_t step = 1;
        for (int i = nd + 1; i >= 0; i--) {
            strides[i] = step;
            step *= xd[i];
        }
        for (int i = 0; i < nd; i++) {
            int64_t pr = pad_right(k, i);
            read[2 + i] = k->in[i] + (pr < 0 ? pr : 0);
        }
        s = dnnl_memory_desc_init_by_strides(&e->x_md, nd + 2, read, dnnl_f32, strides);
    } else {
        s = dnnl_memory_desc_init_by_tag(&e->x_md, nd + 2, xd, dnnl_f32, act[nd]);
    }
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&e->y_md, nd + 2, yd, dnnl_f32, act[nd]);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&e->w_md, wn, wd, dnnl_f32,
                                         k->groups > 1 ? gwt[nd] : wt[nd]);
    return s;
}

static td_status entry_build(const nd_key *k, nd_entry **out)
{
    td_status st = TD_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL, hint = NULL, rpd = NULL;
    nd_entry *e = calloc(1, sizeof *e);
    if (!e) return td_error(TD_ENOMEM, 0, "convolution: out of memory");
    e->key = *k;
    DN(mds(k, e), "memory descriptor");
    dnnl_memory_desc_t *user[NSLOT] = {&e->x_md, &e->w_md, &e->y_md}, any[NSLOT];
    for (int i = 0; i < NSLOT; i++)
        DN(dnnl_memory_desc_init_by_tag(&any[i], user[i]->ndims, user[i]->dims, dnnl_f32,
                                        dnnl_format_tag_any),
           "memory descriptor");
    DN(dnnl_primitive_attr_create(&attr), "attribute creation");
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    dnnl_dims_t strides = {0}, dil = {0}, padl = {0}, padr = {0};
    for (int i = 0; i < k->nd; i++) {
        strides[i] = k->stride[i];
        dil[i] = k->dil[i] - 1;
        padl[i] = k->pad[i];
        /* the right padding that makes oneDNN's sizes agree exactly (a
         * transposed convolution's output may need less than the left) */
        padr[i] = pad_right(k, i) > 0 ? pad_right(k, i) : 0;
    }
    dnnl_convolution_desc_t fd, d;
    DN(dnnl_dilated_convolution_forward_desc_init(&fd, dnnl_forward_training,
                                                  dnnl_convolution_direct, &any[S_X], &any[S_W],
                                                  NULL, &any[S_Y], strides, dil, padl, padr),
       "forward descriptor");
    if (k->kind == K_FWD) {
        DN(dnnl_primitive_desc_create(&pd, &fd, attr, g.engine, NULL),
           "forward primitive descriptor");
    } else {
        DN(dnnl_primitive_desc_create(&hint, &fd, NULL, g.engine, NULL),
           "forward primitive descriptor");
        if (k->kind == K_BWD_DATA)
            DN(dnnl_dilated_convolution_backward_data_desc_init(&d, dnnl_convolution_direct,
                                                                &any[S_X], &any[S_W], &any[S_Y],
                                                                strides, dil, padl, padr),
               "backward data descriptor");
        else
            DN(dnnl_dilated_convolution_backward_weights_desc_init(
                   &d, dnnl_convolution_direct, &any[S_X], &any[S_W], NULL, &any[S_Y], strides, dil,
                   padl, padr),
               "backward weights descriptor");
        DN(dnnl_primitive_desc_create(&pd, &d, attr, g.engine, hint),
           "backward primitive descriptor");
    }
    static const dnnl_query_t q[3][NSLOT] = {
        {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
        {dnnl_query_diff_src_md, dnnl_query_weights_md, dnnl_query_diff_dst_md},
        {dnnl_query_src_md, dnnl_query_diff_weights_md, dnnl_query_diff_dst_md},
    };
    for (int i = 0; i < NSLOT; i++) {
        const dnnl_memory_desc_t *pm = dnnl_primitive_desc_query_md(pd, q[k->kind][i], 0);
        if (!pm) {
            st = td_error(TD_EINVAL, 0, "convolution: oneDNN gave no memory descriptor");
            goto fail;
        }
        e->prim_md[i] = *pm;
        e->prim_size[i] = dnnl_memory_desc_get_size(pm);
        if (dnnl_memory_desc_equal(pm, user[i])) continue;
        if (is_out[k->kind][i])
            DN(dnnl_reorder_primitive_desc_create(&rpd, pm, g.engine, user[i], g.engine, NULL),
               "reorder descriptor");
        else
            DN(dnnl_reorder_primitive_desc_create(&rpd, user[i], g.engine, pm, g.engine, NULL),
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

static td_status scratch_reserve(size_t size)
{
    if (size <= g.scratch_cap) return TD_OK;
    if (g.scratch) td_cpu_release(g.scratch, g.scratch_cap);
    g.scratch_cap = 0;
    if (!(g.scratch = td_cpu_alloc(size)))
        return td_error(TD_ENOMEM, 0, "convolution: out of memory for a %zu-byte scratchpad", size);
    g.scratch_cap = size;
    return TD_OK;
}

/* x, w, y: our buffers in the roles of the forward convolution */
static td_status run_locked(int kind, const td_convnd_args *a, void *x, void *w, void *y)
{
    nd_key k;
    memset(&k, 0, sizeof k);
    k.kind = kind;
    k.nd = a->nd;
    k.n = a->n;
    k.c = a->c;
    k.o = a->o;
    k.groups = a->groups;
    k.threads = td_cpu_threads_sync();
    for (int i = 0; i < 3; i++) {
        k.in[i] = a->in[i];
        k.k[i] = a->k[i];
        k.out[i] = a->out[i];
        k.stride[i] = a->stride[i];
        k.pad[i] = a->pad[i];
        k.dil[i] = a->dil[i];
    }
    td_status st = TD_OK;
    dnnl_memory_t um[NSLOT] = {0}, pm[NSLOT] = {0}, sm = NULL;
    void *buf[NSLOT] = {0};
    void *ptr[NSLOT] = {x, w, y};
    nd_entry *e = td_lru_find(&g.cache, &k, sizeof k);
    if ((st = ensure_engine()) != TD_OK) return st;
    if (!e) {
        if ((st = entry_build(&k, &e)) != TD_OK) return st;
        entry_free(td_lru_add(&g.cache, e));
    }
    static const int ids[3][3] = {
        {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
        {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST},
        {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST},
    };
    const dnnl_memory_desc_t *umd[NSLOT] = {&e->x_md, &e->w_md, &e->y_md};
    dnnl_exec_arg_t args[4];
    int nargs = 0;
    if (kind == K_BWD_DATA && crops(&k)) {
        size_t bytes = sizeof(float) * (size_t)(a->n * a->c * a->in[0] * a->in[1] * a->in[2]);
        memset(x, 0, bytes);
    }
    for (int i = 0; i < NSLOT; i++) {
        DN(dnnl_memory_create(&um[i], umd[i], g.engine, ptr[i]), "memory creation");
        dnnl_memory_t use = um[i];
        if (e->reorder[i]) {
            if (!(buf[i] = td_cpu_alloc(e->prim_size[i]))) {
                st = td_error(TD_ENOMEM, 0, "convolution: out of memory for a %zu-byte buffer",
                              e->prim_size[i]);
                goto fail;
            }
            DN(dnnl_memory_create(&pm[i], &e->prim_md[i], g.engine, buf[i]), "memory creation");
            use = pm[i];
            if (!is_out[kind][i]) {
                dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, um[i]}, {DNNL_ARG_TO, pm[i]}};
                DN(dnnl_primitive_execute(e->reorder[i], g.stream, 2, ra), "reorder");
            }
        }
        args[nargs++] = (dnnl_exec_arg_t){ids[kind][i], use};
    }
    if (e->scratch_size > 0) {
        if ((st = scratch_reserve(e->scratch_size)) != TD_OK) goto fail;
        DN(dnnl_memory_create(&sm, &e->scratch_md, g.engine, g.scratch), "memory creation");
        args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sm};
    }
    DN(dnnl_primitive_execute(e->prim, g.stream, nargs, args), "convolution");
    for (int i = 0; i < NSLOT; i++)
        if (e->reorder[i] && is_out[kind][i]) {
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, pm[i]}, {DNNL_ARG_TO, um[i]}};
            DN(dnnl_primitive_execute(e->reorder[i], g.stream, 2, ra), "reorder");
        }
    DN(dnnl_stream_wait(g.stream), "convolution");
fail:
    for (int i = 0; i < NSLOT; i++) {
        if (um[i]) dnnl_memory_destroy(um[i]);
        if (pm[i]) dnnl_memory_destroy(pm[i]);
        if (buf[i]) td_cpu_free(buf[i], e->prim_size[i]);
    }
    if (sm) dnnl_memory_destroy(sm);
    return st;
}

static td_status run(int kind, const td_convnd_args *a, const void *x, const void *w, const void *y)
{
    pthread_mutex_lock(&g.lock);
    td_status st = run_locked(kind, a, (void *)x, (void *)w, (void *)y);
    pthread_mutex_unlock(&g.lock);
    return st;
}

td_status td_convnd_dnnl_forward(const td_convnd_args *a, const float *x, const float *w, float *y)
{
    return run(K_FWD, a, x, w, y);
}

td_status td_convnd_dnnl_backward_data(const td_convnd_args *a, const float *gy, const float *w,
                                       float *gx)
{
    return run(K_BWD_DATA, a, gx, w, gy);
}

td_status td_convnd_dnnl_backward_weights(const td_convnd_args *a, const float *x, const float *gy,
                                          float *gw)
{
    return run(K_BWD_WEIGHTS, a, x, gw, gy);
}
