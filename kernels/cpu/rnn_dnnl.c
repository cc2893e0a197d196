/* The recurrent layers' whole-layer path on the CPU: oneDNN's RNN
 * primitives (dnnl_vanilla_rnn for tanh and relu, dnnl_lstm with its
 * projection, dnnl_lbr_gru), forward (training and inference) and
 * backward, float32, one layer in one direction per call (left2right, or
 * right2left for reverse). runtime/rnn.c calls it through the table below
 * (kernels/rnn.h: td_cpu_rnn's step kernels plus the hooks) and runs its
 * own loop for what this does not take: float64 (gradcheck), packed
 * sequences (oneDNN has no per-sequence lengths) and anything oneDNN
 * refuses to build.
 *
 * Layouts. Activations are tnc (T, B, C) and states ldnc with L = D = 1,
 * which are tide's (T, B, C) and (B, C) as they are. The weights are
 * given in PyTorch's (G H, C) rows, oneDNN's ldgoi; the primitive picks its
 * own layout (format_tag_any, ldigo or packed) and a reorder, cached with
 * the primitive, copies them in at each call (they may have changed);
 * the weight gradients come out in the backward primitive's layout and
 * are reordered back the same way. Gate orders: LSTM's is PyTorch's (i,
 * f, g, o). oneDNN's linear-before-reset GRU is PyTorch's GRU (the reset
 * gate applied after the hidden product) with the gates u, r, o for
 * PyTorch's z, r, n, so its weights are copied with the first two gates
 * swapped, and its bias has four rows: b_iz + b_hz, b_ir + b_hr, b_in,
 * b_hn. RNN and LSTM take one bias, b_ih + b_hh, whose gradient is both
 * biases'. The projection of an LSTM (PyTorch's (P, H) weight_hr) is
 * oneDNN's weights_projection in ldoi.
 *
 * oneDNN's backward accumulates into its weight gradients, which are
 * therefore zeroed before each call. Primitives (per direction of
 * propagation, shape and thread count) live in a small LRU cache, shapes
 * oneDNN refuses included, so a training loop builds each once; every
 * primitive shares one scratchpad, and the cache's mutex is held through
 * execution, as kernels/cpu/nn_conv_dnnl.c does. */
#include "cpu.h"
#include "iter.h"
#include "lru.h"
#include "../rnn.h"

#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

enum { K_INFER, K_TRAIN, K_BWD };

typedef struct {
    int64_t kind, mode, T, B, I, H, P, reverse, has_bias, has_proj;
    int64_t threads; /* oneDNN splits the work for the count at creation */
} rnn_key;

/* the weights: layer (W_ih), iter (W_hh), projection (W_hr) */
enum { W_LAYER, W_ITER, W_PROJ, NW };

/* A plain (unblocked, maybe padded) layout of a weight, which our own
 * copy fills: PyTorch's row r = (g, o) (gate g, unit o; g = 0 for the
 * projection), column i, sits at element i si + g sg + o so. oneDNN's
 * reorders took 1.3 ms for a (768, 256) weight on this CPU, about ten
 * times a copy's time, and as long as a short sequence's whole step. */
typedef struct {
    bool on;
    int64_t R, C, Hdiv, si, sg, so;
} plain_map;

typedef struct {
    rnn_key key;
    bool ok; /* false: oneDNN would not build this one; the loop runs it */
    dnnl_primitive_t prim;
    dnnl_memory_desc_t user_w[NW], prim_w[NW]; /* weights (backward: also their gradients) */
    dnnl_primitive_t w_in[NW];                 /* user -> primitive; NULL when the same or plain */
    plain_map w_plain[NW];
    size_t w_size[NW];
    dnnl_memory_desc_t user_dw[NW], prim_dw[NW];
    dnnl_primitive_t dw_out[NW]; /* primitive -> user gradients; NULL when the same or plain */
    plain_map dw_plain[NW];
    size_t dw_size[NW];
    dnnl_memory_desc_t ws_md, scratch_md;
    size_t ws_size, scratch_size;
} rnn_entry;

static struct {
    pthread_mutex_t lock;
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    bool ready;
    td_lru cache; /* of rnn_entry */
    void *scratch;
    size_t scratch_cap;
} g = {.lock = PTHREAD_MUTEX_INITIALIZER};

static td_status dnnl_fail(dnnl_status_t s, const char *what)
{
    return td_error(s == dnnl_out_of_memory ? TD_ENOMEM : TD_EINVAL, 0,
                    "rnn_layer: oneDNN %s failed (status %d)", what, (int)s);
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

static void entry_free(rnn_entry *e)
{
    if (!e) return;
    if (e->prim) dnnl_primitive_destroy(e->prim);
    for (int i = 0; i < NW; i++) {
        if (e->w_in[i]) dnnl_primitive_destroy(e->w_in[i]);
        if (e->dw_out[i]) dnnl_primitive_destroy(e->dw_out[i]);
    }
    free(e);
}

static int gates_of(int64_t mode) { return mode == TD_RNN_LSTM ? 4 : mode == TD_RNN_GRU ? 3 : 1; }

/* rows of oneDNN's bias: linear-before-reset GRU has a fourth (b_hn) */
static int bias_rows(int64_t mode) { return mode == TD_RNN_GRU ? 4 : gates_of(mode); }

/* the plain descriptors: the user's side of every argument */
typedef struct {
    dnnl_memory_desc_t src_layer, src_iter, src_iter_c, bias, dst_layer, dst_iter, dst_iter_c;
    dnnl_memory_desc_t w[NW], w_any[NW];
} rnn_mds;

static dnnl_status_t make_mds(const rnn_key *k, rnn_mds *m)
{
    int64_t G = gates_of(k->mode);
    dnnl_dims_t sl = {k->T, k->B, k->I}, dl = {k->T, k->B, k->P};
    dnnl_dims_t si = {1, 1, k->B, k->P}, sc = {1, 1, k->B, k->H};
    dnnl_dims_t wl = {1, 1, k->I, G, k->H}, wi = {1, 1, k->P, G, k->H}, wp = {1, 1, k->H, k->P};
    dnnl_dims_t b = {1, 1, bias_rows(k->mode), k->H};
    dnnl_status_t s;
#define MD(md, n, dims, tag)                                                                       \
    if ((s = dnnl_memory_desc_init_by_tag(&(md), n, dims, dnnl_f32, tag)) != dnnl_success) return s;
    MD(m->src_layer, 3, sl, dnnl_tnc)
    MD(m->dst_layer, 3, dl, dnnl_tnc)
    MD(m->src_iter, 4, si, dnnl_ldnc)
    MD(m->dst_iter, 4, si, dnnl_ldnc)
    MD(m->src_iter_c, 4, sc, dnnl_ldnc)
    MD(m->dst_iter_c, 4, sc, dnnl_ldnc)
    MD(m->bias, 4, b, dnnl_ldgo)
    MD(m->w[W_LAYER], 5, wl, dnnl_ldgoi)
    MD(m->w[W_ITER], 5, wi, dnnl_ldgoi)
    MD(m->w[W_PROJ], 4, wp, dnnl_ldoi)
    MD(m->w_any[W_LAYER], 5, wl, dnnl_format_tag_any)
    MD(m->w_any[W_ITER], 5, wi, dnnl_format_tag_any)
    MD(m->w_any[W_PROJ], 4, wp, dnnl_format_tag_any)
#undef MD
    return dnnl_success;
}

static dnnl_status_t fwd_desc(const rnn_key *k, const rnn_mds *m, dnnl_prop_kind_t prop,
                              dnnl_rnn_desc_t *d)
{
    dnnl_rnn_direction_t dir =
        k->reverse ? dnnl_unidirectional_right2left : dnnl_unidirectional_left2right;
    const dnnl_memory_desc_t *bias = &m->bias; /* zeros without one: oneDNN 2.6 wants it */
    switch (k->mode) {
    case TD_RNN_TANH:
    case TD_RNN_RELU:
        return dnnl_vanilla_rnn_forward_desc_init(
            d, prop, k->mode == TD_RNN_TANH ? dnnl_eltwise_tanh : dnnl_eltwise_relu, dir,
            &m->src_layer, &m->src_iter, &m->w_any[W_LAYER], &m->w_any[W_ITER], bias, &m->dst_layer,
            &m->dst_iter, 0, 0.0f, 0.0f);
    case TD_RNN_LSTM:
        return dnnl_lstm_forward_desc_init_v3(d, prop, dir, &m->src_layer, &m->src_iter,
                                              &m->src_iter_c, &m->w_any[W_LAYER], &m->w_any[W_ITER],
                                              NULL, k->has_proj ? &m->w_any[W_PROJ] : NULL, bias,
                                              &m->dst_layer, &m->dst_iter, &m->dst_iter_c, 0);
    default:
        return dnnl_lbr_gru_forward_desc_init(d, prop, dir, &m->src_layer, &m->src_iter,
                                              &m->w_any[W_LAYER], &m->w_any[W_ITER], bias,
                                              &m->dst_layer, &m->dst_iter, 0);
    }
}

/* the diff descriptors are the same plain ones (the weights' "any") */
static dnnl_status_t bwd_desc(const rnn_key *k, const rnn_mds *m, dnnl_rnn_desc_t *d)
{
    dnnl_rnn_direction_t dir =
        k->reverse ? dnnl_unidirectional_right2left : dnnl_unidirectional_left2right;
    const dnnl_memory_desc_t *bias = &m->bias; /* zeros without one: oneDNN 2.6 wants it */
    const dnnl_memory_desc_t *wl = &m->w_any[W_LAYER], *wi = &m->w_any[W_ITER];
    switch (k->mode) {
    case TD_RNN_TANH:
    case TD_RNN_RELU:
        return dnnl_vanilla_rnn_backward_desc_init(
            d, dnnl_backward, k->mode == TD_RNN_TANH ? dnnl_eltwise_tanh : dnnl_eltwise_relu, dir,
            &m->src_layer, &m->src_iter, wl, wi, bias, &m->dst_layer, &m->dst_iter, &m->src_layer,
            &m->src_iter, wl, wi, bias, &m->dst_layer, &m->dst_iter, 0, 0.0f, 0.0f);
    case TD_RNN_LSTM: {
        const dnnl_memory_desc_t *wp = k->has_proj ? &m->w_any[W_PROJ] : NULL;
        return dnnl_lstm_backward_desc_init_v3(
            d, dnnl_backward, dir, &m->src_layer, &m->src_iter, &m->src_iter_c, wl, wi, NULL, wp,
            bias, &m->dst_layer, &m->dst_iter, &m->dst_iter_c, &m->src_layer, &m->src_iter,
            &m->src_iter_c, wl, wi, NULL, wp, bias, &m->dst_layer, &m->dst_iter, &m->dst_iter_c, 0);
    }
    default:
        return dnnl_lbr_gru_backward_desc_init(d, dnnl_backward, dir, &m->src_layer, &m->src_iter,
                                               wl, wi, bias, &m->dst_layer, &m->dst_iter,
                                               &m->src_layer, &m->src_iter, wl, wi, bias,
                                               &m->dst_layer, &m->dst_iter, 0);
    }
}

static const int w_arg[NW] = {DNNL_ARG_WEIGHTS_LAYER, DNNL_ARG_WEIGHTS_ITER,
                              DNNL_ARG_WEIGHTS_PROJECTION};
static const int dw_arg[NW] = {DNNL_ARG_DIFF_WEIGHTS_LAYER, DNNL_ARG_DIFF_WEIGHTS_ITER,
                               DNNL_ARG_DIFF_WEIGHTS_PROJECTION};

/* whether md (a weight of dims (1, 1, C, G, H), or (1, 1, H, P) for the
 * projection) is plain, and its map */
static bool plain_of(const dnnl_memory_desc_t *md, plain_map *m)
{
    const dnnl_blocking_desc_t *b = &md->format_desc.blocking;
    memset(m, 0, sizeof *m);
    if (md->format_kind != dnnl_blocked || b->inner_nblks != 0 || md->extra.flags != 0 ||
        md->offset0 != 0)
        return false;
    for (int k = 0; k < md->ndims; k++)
        if (md->padded_offsets[k] != 0) return false;
    if (md->ndims == 5) {
        *m = (plain_map){true,          md->dims[3] * md->dims[4],
                         md->dims[2],   md->dims[4],
                         b->strides[2], b->strides[3],
                         b->strides[4]};
        return true;
    }
    if (md->ndims == 4) {
        *m = (plain_map){true,          md->dims[3], md->dims[2],  md->dims[3],
                         b->strides[2], 0,           b->strides[3]};
        return true;
    }
    return false;
}

/* between PyTorch's (R, C) rows `user` and the plain layout `prim`
 * (size bytes, zeroed first when padded): to_prim copies user in, else
 * prim out. perm, when not NULL, is the gate order (oneDNN's gate g is
 * PyTorch's perm[g]) */
static void plain_copy(const plain_map *m, float *prim, size_t size, float *user, const int *perm,
                       bool to_prim)
{
    enum { TB = 32 };
    if (to_prim && size != (size_t)(m->R * m->C) * sizeof(float)) memset(prim, 0, size);
    int64_t nr = (m->R + TB - 1) / TB, nc = (m->C + TB - 1) / TB;
    int nt = td_cpu_threads_for(m->R * m->C, TD_CPU_GRAIN);
#pragma omp parallel for collapse(2) num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t rt = 0; rt < nr; rt++)
        for (int64_t ct = 0; ct < nc; ct++) {
            int64_t r1 = rt * TB + TB < m->R ? rt * TB + TB : m->R;
            int64_t c1 = ct * TB + TB < m->C ? ct * TB + TB : m->C;
            for (int64_t r = rt * TB; r < r1; r++) {
                int64_t g = r / m->Hdiv, o = r % m->Hdiv;
                int64_t base = g * m->sg + o * m->so;
                float *u = user + ((perm ? perm[g] : g) * m->Hdiv + o) * m->C;
                if (to_prim)
                    for (int64_t i = ct * TB; i < c1; i++) prim[base + i * m->si] = u[i];
                else
                    for (int64_t i = ct * TB; i < c1; i++) u[i] = prim[base + i * m->si];
            }
        }
}

/* the primitive's descriptor of argument `arg`, and how to move between
 * it and the user's: nothing (they agree), our copy (plain) or a reorder
 * (to it when `in`, from it else) */
static dnnl_status_t arg_layout(dnnl_primitive_desc_t pd, int arg, const dnnl_memory_desc_t *user,
                                bool in, dnnl_memory_desc_t *prim, dnnl_primitive_t *reorder,
                                plain_map *plain, size_t *size)
{
    const dnnl_memory_desc_t *pm = dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg);
    if (!pm) return dnnl_runtime_error;
    *prim = *pm;
    *size = dnnl_memory_desc_get_size(pm);
    *reorder = NULL;
    plain->on = false;
    if (dnnl_memory_desc_equal(pm, user) || plain_of(pm, plain)) return dnnl_success;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_status_t s =
        in ? dnnl_reorder_primitive_desc_create(&rpd, user, g.engine, pm, g.engine, NULL)
           : dnnl_reorder_primitive_desc_create(&rpd, pm, g.engine, user, g.engine, NULL);
    if (s == dnnl_success) s = dnnl_primitive_create(reorder, rpd);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    return s;
}

/* builds the entry of k; a shape oneDNN does not implement (or refuses)
 * gives an entry with ok false, not an error */
static td_status entry_build(const rnn_key *k, rnn_entry **out)
{
    td_status st = TD_OK;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL, hint = NULL;
    rnn_entry *e = calloc(1, sizeof *e);
    if (!e) return td_error(TD_ENOMEM, 0, "rnn_layer: out of memory");
    e->key = *k;
    rnn_mds m;
    DN(make_mds(k, &m), "memory descriptor");
    DN(dnnl_primitive_attr_create(&attr), "attribute creation");
    DN(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "scratchpad mode");
    dnnl_rnn_desc_t d;
    dnnl_status_t s;
    if (k->kind == K_BWD) {
        dnnl_rnn_desc_t fd;
        s = fwd_desc(k, &m, dnnl_forward_training, &fd);
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&hint, &fd, NULL, g.engine, NULL);
        if (s == dnnl_success) s = bwd_desc(k, &m, &d);
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &d, attr, g.engine, hint);
    } else {
        s = fwd_desc(k, &m, k->kind == K_TRAIN ? dnnl_forward_training : dnnl_forward_inference,
                     &d);
        if (s == dnnl_success) s = dnnl_primitive_desc_create(&pd, &d, attr, g.engine, NULL);
    }
    if (s == dnnl_out_of_memory) DN(s, "primitive descriptor");
    if (s != dnnl_success) goto done; /* not implemented here: the loop runs it */
    int nw = k->has_proj ? NW : W_PROJ;
    for (int i = 0; i < nw; i++) {
        e->user_w[i] = e->user_dw[i] = m.w[i];
        DN(arg_layout(pd, w_arg[i], &m.w[i], true, &e->prim_w[i], &e->w_in[i], &e->w_plain[i],
                      &e->w_size[i]),
           "weights reorder");
        if (k->kind == K_BWD)
            DN(arg_layout(pd, dw_arg[i], &m.w[i], false, &e->prim_dw[i], &e->dw_out[i],
                          &e->dw_plain[i], &e->dw_size[i]),
               "weight gradients reorder");
    }
    const dnnl_memory_desc_t *wm = dnnl_primitive_desc_query_md(pd, dnnl_query_workspace_md, 0);
    if (wm) {
        e->ws_md = *wm;
        e->ws_size = dnnl_memory_desc_get_size(wm);
    }
    const dnnl_memory_desc_t *sm = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (sm) {
        e->scratch_md = *sm;
        e->scratch_size = dnnl_memory_desc_get_size(sm);
    }
    DN(dnnl_primitive_create(&e->prim, pd), "primitive creation");
    e->ok = true;
done:
    *out = e;
    e = NULL;
fail:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (hint) dnnl_primitive_desc_destroy(hint);
    if (attr) dnnl_primitive_attr_destroy(attr);
    entry_free(e);
    return st;
}

/* the cached entry of k (built on a miss); lock held */
static td_status entry_get(const rnn_key *k, rnn_entry **out)
{
    if ((*out = td_lru_find(&g.cache, k, sizeof *k))) return TD_OK;
    rnn_entry *e;
    td_status st = entry_build(k, &e);
    if (st != TD_OK) return st;
    entry_free(td_lru_add(&g.cache, e));
    *out = e;
    return TD_OK;
}

static rnn_key key_of(const td_rnn_layer_desc *d, int kind)
{
    return (rnn_key){kind,
                     d->mode,
                     d->T,
                     d->B,
                     d->I,
                     d->H,
                     d->P,
                     d->reverse,
                     d->has_bias,
                     d->has_proj,
                     td_cpu_threads_sync()};
}

/* ---- which calls, and which way ------------------------------------------------------- */

/* Whether oneDNN's primitive is the default for this call (TIDE_RNN_IMPL
 * = auto), as measured on an AMD EPYC (Zen 5) at 2 threads, every mode
 * and batch 1 to 64, hidden 32 to 1024, 1 to 128 steps, forward alone and
 * forward + backward, each against tide's loop (docs/rnn.md has the
 * numbers). oneDNN wins by 1.1x to 3x, forward most, where each step's
 * products have some size; the loop wins:
 *   - on one step (the cells): oneDNN's per-call cost makes forward +
 *     backward 1.3x to 2.5x slower, GRU's forward up to 2.4x;
 *   - on tiny products (batch under 4, or batch x hidden under 256): 1.2x
 *     to 2x, and 1.2x at hidden 512, batch 2;
 *   - in training, GRU below batch 16 or hidden 128 (lbr_gru's backward,
 *     1.3x to 1.9x slower) and plain RNN below batch 16 (1.2x to 1.9x).
 * GRU's backward at hidden 256, batch 32 to 64 is also 1.2x to 1.4x
 * slower in oneDNN (192, 384 and 512 are faster); that one shape is left
 * to oneDNN. */
static bool preferred(const td_rnn_layer_desc *d)
{
    if (d->T < 2 || d->B < 4 || d->B * d->H < 256) return false;
    if (!d->training) return true;
    if (d->mode == TD_RNN_GRU) return d->B >= 16 && d->H >= 128;
    if (d->mode == TD_RNN_TANH || d->mode == TD_RNN_RELU) return d->B >= 16;
    return true;
}

static td_status plan(const td_rnn_layer_desc *d, td_rnn_layer_fit *fit, size_t *ws_size)
{
    *fit = TD_RNN_LAYER_NO;
    *ws_size = 0;
    if (d->dtype != TD_FLOAT32 || d->batch_sizes || d->T < 1 || d->B < 1) return TD_OK;
    if (d->has_proj && d->mode != TD_RNN_LSTM) return TD_OK;
    pthread_mutex_lock(&g.lock);
    rnn_entry *f = NULL, *b = NULL;
    td_status st = ensure_engine();
    rnn_key kf = key_of(d, d->training ? K_TRAIN : K_INFER);
    if (st == TD_OK) st = entry_get(&kf, &f);
    if (st == TD_OK && f->ok && d->training) {
        /* built now, so that a shape whose backward oneDNN lacks runs the loop both ways */
        rnn_key kb = key_of(d, K_BWD);
        st = entry_get(&kb, &b);
    }
    if (st == TD_OK && f->ok && (!d->training || b->ok)) {
        *fit = preferred(d) ? TD_RNN_LAYER_YES : TD_RNN_LAYER_SLOWER;
        *ws_size = f->ws_size;
    }
    pthread_mutex_unlock(&g.lock);
    return st;
}

/* ---- running -------------------------------------------------------------------------- */

/* the shared scratchpad holds at least size bytes; lock held */
static td_status scratch_reserve(size_t size)
{
    if (size <= g.scratch_cap) return TD_OK;
    if (g.scratch) td_cpu_release(g.scratch, g.scratch_cap);
    g.scratch_cap = 0;
    if (!(g.scratch = td_cpu_alloc(size)))
        return td_error(TD_ENOMEM, 0, "rnn_layer: out of memory for a %zu-byte scratchpad", size);
    g.scratch_cap = size;
    return TD_OK;
}

static td_status exec(dnnl_primitive_t p, int nargs, const dnnl_exec_arg_t *args, const char *what)
{
    dnnl_status_t s = dnnl_primitive_execute(p, g.stream, nargs, args);
    if (s == dnnl_success) s = dnnl_stream_wait(g.stream);
    return s == dnnl_success ? TD_OK : dnnl_fail(s, what);
}

/* PyTorch's GRU gates r, z, n as oneDNN's u, r, o: oneDNN's gate j is
 * PyTorch's gru_gate[j]; the swap is its own inverse */
static const int gru_gate[3] = {1, 0, 2};

/* (3 H, C) rows with the first two gates swapped, from src into dst */
static void gru_swap(float *dst, const float *src, int64_t H, int64_t C)
{
    size_t blk = (size_t)(H * C);
    for (int j = 0; j < 3; j++) memcpy(dst + j * blk, src + gru_gate[j] * blk, blk * sizeof *dst);
}

/* the bias oneDNN takes (bias_rows(mode) rows of H) from PyTorch's two */
static void bias_in(const td_rnn_layer_desc *d, float *out)
{
    const float *bi = d->b_ih, *bh = d->b_hh;
    int64_t H = d->H;
    if (d->mode == TD_RNN_GRU) {
        for (int j = 0; j < 2; j++) {
            int64_t o = gru_gate[j] * H;
            for (int64_t k = 0; k < H; k++) out[j * H + k] = bi[o + k] + bh[o + k];
        }
        memcpy(out + 2 * H, bi + 2 * H, (size_t)H * sizeof *out);
        memcpy(out + 3 * H, bh + 2 * H, (size_t)H * sizeof *out);
        return;
    }
    int64_t n = gates_of(d->mode) * H;
    for (int64_t k = 0; k < n; k++) out[k] = bi[k] + bh[k];
}

/* PyTorch's two bias gradients from oneDNN's one */
static void bias_out(const td_rnn_layer_desc *d, const float *db)
{
    float *gi = d->db_ih, *gh = d->db_hh;
    int64_t H = d->H;
    if (d->mode == TD_RNN_GRU) {
        for (int j = 0; j < 2; j++) {
            size_t o = (size_t)(gru_gate[j] * H);
            memcpy(gi + o, db + j * H, (size_t)H * sizeof *gi);
            memcpy(gh + o, db + j * H, (size_t)H * sizeof *gh);
        }
        memcpy(gi + 2 * H, db + 2 * H, (size_t)H * sizeof *gi);
        memcpy(gh + 2 * H, db + 3 * H, (size_t)H * sizeof *gh);
        return;
    }
    size_t n = (size_t)(gates_of(d->mode) * H);
    memcpy(gi, db, n * sizeof *gi);
    memcpy(gh, db, n * sizeof *gh);
}

/* buffers one call allocates, freed together */
typedef struct {
    void *p[16];
    size_t n[16];
    int count;
} pool;

static void *pool_alloc(pool *pl, size_t n)
{
    if (pl->count == (int)(sizeof pl->p / sizeof pl->p[0])) return NULL;
    void *p = td_cpu_alloc(n > 0 ? n : 1);
    if (p) {
        pl->p[pl->count] = p;
        pl->n[pl->count++] = n > 0 ? n : 1;
    }
    return p;
}

static void pool_free(pool *pl)
{
    for (int i = 0; i < pl->count; i++) td_cpu_free(pl->p[i], pl->n[i]);
    pl->count = 0;
}

/* memories created for one call, destroyed together */
typedef struct {
    dnnl_exec_arg_t a[32];
    int n;
    dnnl_memory_t made[48];
    int nmade;
} args_t;

static dnnl_status_t mem(args_t *a, const dnnl_memory_desc_t *md, void *ptr, dnnl_memory_t *out)
{
    if (a->nmade == (int)(sizeof a->made / sizeof a->made[0]) ||
        a->n == (int)(sizeof a->a / sizeof a->a[0]))
        return dnnl_out_of_memory;
    dnnl_status_t s = dnnl_memory_create(out, md, g.engine, ptr);
    if (s == dnnl_success) a->made[a->nmade++] = *out;
    return s;
}

static dnnl_status_t arg(args_t *a, int id, const dnnl_memory_desc_t *md, const void *ptr)
{
    dnnl_memory_t m;
    dnnl_status_t s = mem(a, md, (void *)ptr, &m);
    if (s == dnnl_success) a->a[a->n++] = (dnnl_exec_arg_t){id, m};
    return s;
}

static void args_free(args_t *a)
{
    for (int i = 0; i < a->nmade; i++) dnnl_memory_destroy(a->made[i]);
    a->nmade = a->n = 0;
}

#define NEED(p)                                                                                    \
    do {                                                                                           \
        if (!(p)) {                                                                                \
            st = td_error(TD_ENOMEM, 0, "rnn_layer: out of memory");                               \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* The arguments both directions share: the states, the bias, the
 * outputs and the weights in the primitive's layout, reordered from the
 * user's (GRU's gates swapped first); lock held */
static td_status common_args(const td_rnn_layer_desc *d, const rnn_entry *e, const rnn_mds *m,
                             args_t *a, pool *pl)
{
    td_status st = TD_OK;
    bool lstm = d->mode == TD_RNN_LSTM;
    const void *w[NW] = {d->w_ih, d->w_hh, d->w_hr};
    int64_t cols[NW] = {d->I, d->P, 0};
    DN(arg(a, DNNL_ARG_SRC_LAYER, &m->src_layer, d->x), "memory creation");
    DN(arg(a, DNNL_ARG_SRC_ITER, &m->src_iter, d->h0), "memory creation");
    if (lstm) DN(arg(a, DNNL_ARG_SRC_ITER_C, &m->src_iter_c, d->c0), "memory creation");
    DN(arg(a, DNNL_ARG_DST_LAYER, &m->dst_layer, d->y), "memory creation");
    DN(arg(a, DNNL_ARG_DST_ITER, &m->dst_iter, d->h_n), "memory creation");
    if (lstm) DN(arg(a, DNNL_ARG_DST_ITER_C, &m->dst_iter_c, d->c_n), "memory creation");
    size_t nb = (size_t)(bias_rows(d->mode) * d->H) * sizeof(float);
    float *b = pool_alloc(pl, nb);
    NEED(b);
    if (d->has_bias)
        bias_in(d, b);
    else
        memset(b, 0, nb);
    DN(arg(a, DNNL_ARG_BIAS, &m->bias, b), "memory creation");
    const int *perm = d->mode == TD_RNN_GRU ? gru_gate : NULL;
    for (int i = 0; i < (d->has_proj ? NW : W_PROJ); i++) {
        const void *src = w[i];
        if (e->w_plain[i].on) {
            float *buf = pool_alloc(pl, e->w_size[i]);
            NEED(buf);
            plain_copy(&e->w_plain[i], buf, e->w_size[i], (float *)src, perm, true);
            DN(arg(a, w_arg[i], &e->prim_w[i], buf), "memory creation");
            continue;
        }
        if (d->mode == TD_RNN_GRU) {
            float *sw = pool_alloc(pl, (size_t)(3 * d->H * cols[i]) * sizeof(float));
            NEED(sw);
            gru_swap(sw, src, d->H, cols[i]);
            src = sw;
        }
        if (!e->w_in[i]) {
            DN(arg(a, w_arg[i], &e->prim_w[i], src), "memory creation");
            continue;
        }
        void *buf = pool_alloc(pl, e->w_size[i]);
        NEED(buf);
        dnnl_memory_t um, pm;
        DN(mem(a, &e->user_w[i], (void *)src, &um), "memory creation");
        DN(mem(a, &e->prim_w[i], buf, &pm), "memory creation");
        dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, um}, {DNNL_ARG_TO, pm}};
        if ((st = exec(e->w_in[i], 2, ra, "weights reorder")) != TD_OK) goto fail;
        a->a[a->n++] = (dnnl_exec_arg_t){w_arg[i], pm};
    }
    if (e->scratch_size > 0) {
        if ((st = scratch_reserve(e->scratch_size)) != TD_OK) goto fail;
        DN(arg(a, DNNL_ARG_SCRATCHPAD, &e->scratch_md, g.scratch), "memory creation");
    }
fail:
    return st;
}

static td_status forward(const td_rnn_layer_desc *d)
{
    td_status st = TD_OK;
    args_t a = {.n = 0};
    pool pl = {.count = 0};
    rnn_mds m;
    rnn_entry *e = NULL;
    pthread_mutex_lock(&g.lock);
    rnn_key k = key_of(d, d->training ? K_TRAIN : K_INFER);
    if ((st = ensure_engine()) != TD_OK || (st = entry_get(&k, &e)) != TD_OK) goto fail;
    if (!e->ok) {
        st = td_error(TD_EINVAL, 0, "rnn_layer: oneDNN has no RNN primitive for this layer");
        goto fail;
    }
    DN(make_mds(&k, &m), "memory descriptor");
    if ((st = common_args(d, e, &m, &a, &pl)) != TD_OK) goto fail;
    if (d->training) {
        if (d->ws_size < e->ws_size) {
            st = td_error(TD_EINVAL, 0, "rnn_layer: oneDNN's workspace needs %zu bytes, got %zu",
                          e->ws_size, d->ws_size);
            goto fail;
        }
        DN(arg(&a, DNNL_ARG_WORKSPACE, &e->ws_md, d->ws), "memory creation");
    }
    st = exec(e->prim, a.n, a.a, "RNN forward");
fail:
    args_free(&a);
    pool_free(&pl);
    pthread_mutex_unlock(&g.lock);
    return st;
}

static td_status backward(const td_rnn_layer_desc *d)
{
    td_status st = TD_OK;
    args_t a = {.n = 0};
    pool pl = {.count = 0};
    rnn_mds m;
    rnn_entry *e = NULL;
    bool lstm = d->mode == TD_RNN_LSTM;
    pthread_mutex_lock(&g.lock);
    rnn_key k = key_of(d, K_BWD);
    if ((st = ensure_engine()) != TD_OK || (st = entry_get(&k, &e)) != TD_OK) goto fail;
    if (!e->ok) {
        st = td_error(TD_EINVAL, 0, "rnn_layer: oneDNN has no RNN backward for this layer");
        goto fail;
    }
    DN(make_mds(&k, &m), "memory descriptor");
    if ((st = common_args(d, e, &m, &a, &pl)) != TD_OK) goto fail;
    DN(arg(&a, DNNL_ARG_WORKSPACE, &e->ws_md, d->ws), "memory creation");
    DN(arg(&a, DNNL_ARG_DIFF_SRC_LAYER, &m.src_layer, d->dx), "memory creation");
    DN(arg(&a, DNNL_ARG_DIFF_SRC_ITER, &m.src_iter, d->dh0), "memory creation");
    DN(arg(&a, DNNL_ARG_DIFF_DST_LAYER, &m.dst_layer, d->dy), "memory creation");
    DN(arg(&a, DNNL_ARG_DIFF_DST_ITER, &m.dst_iter, d->dh_n), "memory creation");
    if (lstm) {
        DN(arg(&a, DNNL_ARG_DIFF_SRC_ITER_C, &m.src_iter_c, d->dc0), "memory creation");
        DN(arg(&a, DNNL_ARG_DIFF_DST_ITER_C, &m.dst_iter_c, d->dc_n), "memory creation");
    }
    /* the gradients oneDNN accumulates into, zeroed, in its layout */
    int nw = d->has_proj ? NW : W_PROJ;
    void *dw[NW] = {0};
    float *db = NULL;
    size_t db_size = (size_t)(bias_rows(d->mode) * d->H) * sizeof(float);
    for (int i = 0; i < nw; i++) {
        NEED(dw[i] = pool_alloc(&pl, e->dw_size[i]));
        memset(dw[i], 0, e->dw_size[i]);
        DN(arg(&a, dw_arg[i], &e->prim_dw[i], dw[i]), "memory creation");
    }
    NEED(db = pool_alloc(&pl, db_size));
    memset(db, 0, db_size);
    DN(arg(&a, DNNL_ARG_DIFF_BIAS, &m.bias, db), "memory creation");
    if ((st = exec(e->prim, a.n, a.a, "RNN backward")) != TD_OK) goto fail;
    /* back to PyTorch's layouts: the wanted gradients only */
    void *out[NW] = {d->dw_ih, d->dw_hh, d->dw_hr};
    int64_t cols[NW] = {d->I, d->P, 0};
    const int *perm = d->mode == TD_RNN_GRU ? gru_gate : NULL;
    for (int i = 0; i < nw; i++) {
        if (!out[i]) continue;
        if (e->dw_plain[i].on) {
            plain_copy(&e->dw_plain[i], dw[i], e->dw_size[i], out[i], perm, false);
            continue;
        }
        void *dst = out[i];
        size_t n = dnnl_memory_desc_get_size(&e->user_dw[i]);
        if (d->mode == TD_RNN_GRU) NEED(dst = pool_alloc(&pl, n));
        if (e->dw_out[i]) {
            dnnl_memory_t pm, um;
            DN(mem(&a, &e->prim_dw[i], dw[i], &pm), "memory creation");
            DN(mem(&a, &e->user_dw[i], dst, &um), "memory creation");
            dnnl_exec_arg_t ra[2] = {{DNNL_ARG_FROM, pm}, {DNNL_ARG_TO, um}};
            if ((st = exec(e->dw_out[i], 2, ra, "weight gradients reorder")) != TD_OK) goto fail;
        } else {
            memcpy(dst, dw[i], n);
        }
        if (d->mode == TD_RNN_GRU) gru_swap(out[i], dst, d->H, cols[i]);
    }
    if (d->has_bias && d->db_ih) bias_out(d, db);
fail:
    args_free(&a);
    pool_free(&pl);
    pthread_mutex_unlock(&g.lock);
    return st;
}

/* td_cpu_rnn's step kernels, and the hooks */
static void step(const td_rnn_step *s) { td_cpu_rnn.step(s); }
static void step_backward(const td_rnn_step_grad *s) { td_cpu_rnn.step_backward(s); }
static void axpby(td_dtype dt, int64_t n, double a, const void *x, double b, void *y)
{
    td_cpu_rnn.axpby(dt, n, a, x, b, y);
}

const struct td_rnn_kernels td_cpu_rnn_dnnl = {
    .step = step,
    .step_backward = step_backward,
    .axpby = axpby,
    .layer_plan = plan,
    .layer_forward = forward,
    .layer_backward = backward,
};
