/* float32 and bfloat16 N-d convolution (conv1d, conv3d, the transposed ones) through
 * oneDNN's C API. Our buffers are plain (ncw / nchw / ncdhw activations,
 * oiw / oihw / oidhw weights, with a leading groups dim when grouped); the
 * primitive picks its own layouts (dnnl_format_tag_any), with reorders
 * between: on a 2-core Zen machine conv3d forward + backward of
 * (8, 16, 16, 32, 32) by (32, 16, 3, 3, 3) took 255 to 330 ms so against
 * 690 to 825 ms on the plain layouts. A transposed convolution runs the
 * backward-data primitive as its forward: the same arithmetic as the
 * deconvolution primitive, and one primitive kind fewer to build.
 * Building, caching (a small LRU cache of our own) and running the
 * primitives is dnnl_conv.c's, shared with nn_conv_dnnl.c: the one engine,
 * stream and scratchpad, under one mutex. */
#include "dnnl_conv.h"
#include "iter.h"

#include <string.h>

enum { K_FWD = TD_DC_FWD, K_BWD_DATA = TD_DC_BWD_DATA, K_BWD_WEIGHTS = TD_DC_BWD_WEIGHTS };

typedef struct {
    int64_t kind, nd, n, c, o, groups, threads;
    int64_t in[3], k[3], out[3], stride[3], pad[3], dil[3];
    int64_t dtype; /* float32, or bfloat16 (bf16 buffers, summed in float32) */
} nd_key;

enum { S_X = TD_DC_DATA, S_W = TD_DC_WEIGHTS, S_Y = TD_DC_DST, NSLOT = TD_DC_NSLOT };

_Static_assert(sizeof(nd_key) <= sizeof(((td_dc_entry *)0)->key), "nd_key too large");

static td_lru cache; /* of td_dc_entry, keyed by nd_key; under td_dc_lock */

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

/* our buffers' layouts in md[slot] */
static dnnl_status_t mds(const nd_key *k, dnnl_memory_desc_t md[NSLOT])
{
    static const dnnl_format_tag_t act[4] = {0, dnnl_ncw, dnnl_nchw, dnnl_ncdhw};
    static const dnnl_format_tag_t wt[4] = {0, dnnl_oiw, dnnl_oihw, dnnl_oidhw};
    static const dnnl_format_tag_t gwt[4] = {0, dnnl_goiw, dnnl_goihw, dnnl_goidhw};
    int nd = (int)k->nd;
    dnnl_data_type_t dt = td_dc_dt((td_dtype)k->dtype);
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
        s = dnnl_memory_desc_init_by_strides(&md[S_X], nd + 2, read, dt, strides);
    } else {
        s = dnnl_memory_desc_init_by_tag(&md[S_X], nd + 2, xd, dt, act[nd]);
    }
    if (s == dnnl_success) s = dnnl_memory_desc_init_by_tag(&md[S_Y], nd + 2, yd, dt, act[nd]);
    if (s == dnnl_success)
        s = dnnl_memory_desc_init_by_tag(&md[S_W], wn, wd, dt, k->groups > 1 ? gwt[nd] : wt[nd]);
    return s;
}

/* k's primitive, built and cached */
static td_status build(const nd_key *k, td_dc_entry **out)
{
    td_dc_desc d = {.kind = (int)k->kind, .alg = dnnl_convolution_direct};
    dnnl_status_t s = mds(k, d.user);
    for (int i = 0; i < NSLOT && s == dnnl_success; i++)
        s = dnnl_memory_desc_init_by_tag(&d.want[i], d.user[i].ndims, d.user[i].dims,
                                         d.user[i].data_type, dnnl_format_tag_any);
    if (s != dnnl_success) return td_dc_fail("convolution", s, "memory descriptor");
    for (int i = 0; i < k->nd; i++) {
        d.strides[i] = k->stride[i];
        d.dil[i] = k->dil[i] - 1;
        d.padl[i] = k->pad[i];
        /* the right padding that makes oneDNN's sizes agree exactly (a
         * transposed convolution's output may need less than the left) */
        d.padr[i] = pad_right(k, i) > 0 ? pad_right(k, i) : 0;
    }
    return td_dc_build("convolution", &cache, k, sizeof *k, &d, out);
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
    k.dtype = a->dtype;
    for (int i = 0; i < 3; i++) {
        k.in[i] = a->in[i];
        k.k[i] = a->k[i];
        k.out[i] = a->out[i];
        k.stride[i] = a->stride[i];
        k.pad[i] = a->pad[i];
        k.dil[i] = a->dil[i];
    }
    void *ptr[NSLOT] = {x, w, y};
    td_dc_entry *e = td_dc_find(&cache, &k, sizeof k);
    td_status st = e ? TD_OK : build(&k, &e);
    if (st != TD_OK) return st;
    if (kind == K_BWD_DATA && crops(&k)) {
        size_t bytes =
            td_dtype_size(a->dtype) * (size_t)(a->n * a->c * a->in[0] * a->in[1] * a->in[2]);
        memset(x, 0, bytes);
    }
    return td_dc_run("convolution", e, ptr, NULL, NULL);
}

static td_status run(int kind, const td_convnd_args *a, const void *x, const void *w, const void *y)
{
    td_dc_lock();
    td_status st = run_locked(kind, a, (void *)x, (void *)w, (void *)y);
    td_dc_unlock();
    return st;
}

td_status td_convnd_dnnl_forward(const td_convnd_args *a, const void *x, const void *w, void *y)
{
    return run(K_FWD, a, x, w, y);
}

td_status td_convnd_dnnl_backward_data(const td_convnd_args *a, const void *gy, const void *w,
                                       void *gx)
{
    return run(K_BWD_DATA, a, gx, w, gy);
}

td_status td_convnd_dnnl_backward_weights(const td_convnd_args *a, const void *x, const void *gy,
                                          void *gw)
{
    return run(K_BWD_WEIGHTS, a, x, gw, gy);
}
