/* One recurrent layer in one direction: checks, the time loop and one
 * autograd node for the whole sequence.
 *
 * The input's share of every gate is one gemm over all steps up front;
 * each step then costs one gemm with W_hh (and one with W_hr for a
 * projected LSTM) and the backend's pointwise step kernel. Backward walks
 * the steps in reverse with the same two gemms per step and finishes with
 * one gemm each for dx, dW_ih and dW_hh over the whole sequence.
 *
 * Packed sequences run as they are: step t touches only its batch_sizes[t]
 * leading rows (the sequences still running, longest first); the others
 * keep their state, so h_n holds each sequence's state after its own last
 * step, in either direction.
 *
 * The whole-layer path. A backend may instead run the layer in a
 * library's RNN primitive (kernels/rnn.h: oneDNN on the CPU, cuDNN on
 * CUDA) under the same call and node: its layer_plan says which calls it
 * takes (not float64, not packed on oneDNN, ...) and which of those it
 * runs faster than this loop, and TIDE_RNN_IMPL (read once) chooses: auto
 * (the default: the library where the backend measured it faster), onednn
 * or cudnn (the library wherever it takes the call) or loop (always this
 * loop). The node then keeps the library's workspace and copies of what
 * its backward reads besides x and the weights (y, h_n, c_n, h0, c0 and
 * the biases) in one tensor, as the loop keeps its states. */
#include "internal.h"
#include "tide/rnn.h"
#include "../kernels/rnn.h"

#include <pthread.h>
#include <stdio.h>

typedef struct {
    td_rnn_mode mode;
    td_dtype dt;
    int64_t T, B, I, H, P, G, S, rows;
    bool reverse, has_c0, has_bias, packed;
    bool layer;        /* the backend's whole-layer path ran (kernels/rnn.h) */
    int64_t lib_elems; /* layer: the library's workspace, in elements, at the start of ws */
    size_t lib_bytes;  /* ... and in bytes, as the library asked */
    td_tensor *x, *w_ih, *w_hh, *w_hr, *ws;
    int64_t bs[]; /* T step sizes, then T row offsets */
} rnn_ctx;

/* layout of the workspace kept for backward: states Hs (T+1, B, P), cells
 * Cs (T+1, B, H) and the pre-projection outputs Ms (T, B, H), indexed by
 * processing order, and the step kernel's saved gates Sv (rows, S H),
 * indexed as the input's rows. LSTM's Sv first holds x W_ih^T (as wide:
 * S H = G H), which each step reads and overwrites in place with its
 * activated gates, sparing a buffer as large as the input's gates. */
typedef struct {
    int64_t hs, cs, ms, sv, total;
} ws_layout;

static ws_layout layout_of(const rnn_ctx *c)
{
    ws_layout l;
    l.hs = 0;
    l.cs = l.hs + (c->T + 1) * c->B * c->P;
    l.ms = l.cs + (c->mode == TD_RNN_LSTM ? (c->T + 1) * c->B * c->H : 0);
    l.sv = l.ms + (c->w_hr ? c->T * c->B * c->H : 0);
    l.total = l.sv + c->rows * c->S * c->H;
    return l;
}

static size_t esize(td_dtype dt) { return dt == TD_FLOAT32 ? 4 : 8; }

/* element e of a buffer of dtype dt */
static void *at(td_dtype dt, void *p, int64_t e) { return (char *)p + (size_t)e * esize(dt); }

static int64_t time_of(const rnn_ctx *c, int64_t s) { return c->reverse ? c->T - 1 - s : s; }

static td_status gemm(const td_backend *be, const rnn_ctx *c, bool ta, bool tb, int64_t m,
                      int64_t n, int64_t k, const void *a, int64_t lda, const void *b, int64_t ldb,
                      double beta, void *out, int64_t ldc)
{
    if (m == 0 || n == 0) return TD_OK;
    return be->gemm(c->dt, 1, ta, tb, m, n, k, 1.0, a, lda, 0, b, ldb, 0, beta, out, ldc, 0);
}

static td_status run_forward(const rnn_ctx *c, const void *b_ih, const void *b_hh, const void *h0,
                             const void *c0, void *ws, void *res)
{
    const td_backend *be = td_backend_of(c->x);
    const struct td_rnn_kernels *k = be->rnn;
    td_dtype dt = c->dt;
    int64_t B = c->B, H = c->H, P = c->P, GH = c->G * H;
    ws_layout l = layout_of(c);
    const int64_t *bs = c->bs, *off = c->bs + c->T;
    td_tensor *gi = NULL, *gh = NULL;
    td_status st = TD_OK;
    int64_t gis = c->rows * GH, ghs = B * GH;
    td_device dev = td_device_of(c->x);
    char *W = ws;
    if (c->mode != TD_RNN_LSTM) TD_CHECK(td_empty_on(1, &gis, dt, dev, &gi));
    TD_CHECK(td_empty_on(1, &ghs, dt, dev, &gh));
    void *GI = gi ? td_data_ptr(gi) : at(dt, W, l.sv), *GHs = td_data_ptr(gh);
    TD_CHECK(gemm(be, c, false, true, c->rows, GH, c->I, td_data_ptr(c->x), c->I,
                  td_data_ptr(c->w_ih), c->I, 0, GI, GH));
    k->axpby(dt, B * P, 1, h0, 0, at(dt, W, l.hs));
    if (c->mode == TD_RNN_LSTM) k->axpby(dt, B * H, 1, c0, 0, at(dt, W, l.cs));
    for (int64_t s = 0; s < c->T; s++) {
        int64_t t = time_of(c, s), n = bs[t];
        void *hp = at(dt, W, l.hs + s * B * P), *hn = at(dt, W, l.hs + (s + 1) * B * P);
        void *cp = at(dt, W, l.cs + s * B * H), *cn = at(dt, W, l.cs + (s + 1) * B * H);
        void *m = c->w_hr ? at(dt, W, l.ms + s * B * H) : hn;
        TD_CHECK(gemm(be, c, false, true, n, GH, P, hp, P, td_data_ptr(c->w_hh), P, 0, GHs, GH));
        td_rnn_step step = {c->mode,
                            dt,
                            n,
                            H,
                            at(dt, GI, off[t] * GH),
                            GHs,
                            b_ih,
                            b_hh,
                            hp,
                            cp,
                            at(dt, W, l.sv + off[t] * c->S * H),
                            m,
                            cn};
        if (n > 0) k->step(&step);
        if (c->w_hr)
            TD_CHECK(gemm(be, c, false, true, n, P, H, m, H, td_data_ptr(c->w_hr), H, 0, hn, P));
        /* the sequences already ended (or not yet begun) keep their state */
        if (n < B) {
            k->axpby(dt, (B - n) * P, 1, at(dt, hp, n * P), 0, at(dt, hn, n * P));
            if (c->mode == TD_RNN_LSTM)
                k->axpby(dt, (B - n) * H, 1, at(dt, cp, n * H), 0, at(dt, cn, n * H));
        }
        if (n > 0) k->axpby(dt, n * P, 1, hn, 0, at(dt, res, off[t] * P));
    }
    k->axpby(dt, B * P, 1, at(dt, W, l.hs + c->T * B * P), 0, at(dt, res, c->rows * P));
    if (c->mode == TD_RNN_LSTM)
        k->axpby(dt, B * H, 1, at(dt, W, l.cs + c->T * B * H), 0, at(dt, res, c->rows * P + B * P));
fail:
    td_tensor_release(gi);
    td_tensor_release(gh);
    return st;
}

/* ---- the whole-layer path ----------------------------------------------- */

typedef enum { IMPL_AUTO, IMPL_LIBRARY, IMPL_LOOP, IMPL_BAD } rnn_impl;

static pthread_once_t impl_once = PTHREAD_ONCE_INIT;
static rnn_impl impl_chosen;
static char impl_bad[40];

static void read_impl(void)
{
    const char *v = getenv("TIDE_RNN_IMPL");
    if (!v || !*v || strcmp(v, "auto") == 0) {
        impl_chosen = IMPL_AUTO;
    } else if (strcmp(v, "onednn") == 0 || strcmp(v, "cudnn") == 0) {
        impl_chosen = IMPL_LIBRARY;
    } else if (strcmp(v, "loop") == 0) {
        impl_chosen = IMPL_LOOP;
    } else {
        impl_chosen = IMPL_BAD;
        snprintf(impl_bad, sizeof impl_bad, "%s", v);
    }
}

static td_status impl_get(rnn_impl *out)
{
    pthread_once(&impl_once, read_impl);
    *out = impl_chosen;
    if (impl_chosen == IMPL_BAD)
        return td_error(TD_EINVAL, 0,
                        "rnn_layer: TIDE_RNN_IMPL must be auto, onednn, cudnn or loop, got '%s'",
                        impl_bad);
    return TD_OK;
}

/* what the node keeps after the library's workspace (elements of ws): the
 * result (y, h_n, c_n), h0, c0 and the biases as the forward saw them */
typedef struct {
    int64_t res, h0, c0, b_ih, b_hh, total;
} keep_layout;

static int64_t result_size(const rnn_ctx *c)
{
    return c->rows * c->P + c->B * c->P + (c->mode == TD_RNN_LSTM ? c->B * c->H : 0);
}

static keep_layout keep_of(const rnn_ctx *c)
{
    keep_layout k;
    int64_t gh = c->G * c->H;
    k.res = c->lib_elems;
    k.h0 = k.res + result_size(c);
    k.c0 = k.h0 + c->B * c->P;
    k.b_ih = k.c0 + (c->mode == TD_RNN_LSTM ? c->B * c->H : 0);
    k.b_hh = k.b_ih + (c->has_bias ? gh : 0);
    k.total = k.b_hh + (c->has_bias ? gh : 0);
    return k;
}

/* the hooks' description of the layer, sizes and flags only */
static td_rnn_layer_desc describe(const rnn_ctx *c, bool training)
{
    td_rnn_layer_desc d = {0};
    d.mode = c->mode;
    d.dtype = c->dt;
    d.T = c->T;
    d.B = c->B;
    d.I = c->I;
    d.H = c->H;
    d.P = c->P;
    d.rows = c->rows;
    d.batch_sizes = c->packed ? c->bs : NULL;
    d.reverse = c->reverse;
    d.training = training;
    d.has_bias = c->has_bias;
    d.has_proj = c->w_hr != NULL;
    return d;
}

/* the forward through the backend's hook; with ws (training) the copies
 * backward reads are left after the library's workspace */
static td_status layer_run_forward(const rnn_ctx *c, td_rnn_layer_desc *d, const void *b_ih,
                                   const void *b_hh, const void *h0, const void *c0, void *ws,
                                   void *res)
{
    const struct td_rnn_kernels *k = td_backend_of(c->x)->rnn;
    td_dtype dt = c->dt;
    bool lstm = c->mode == TD_RNN_LSTM;
    int64_t B = c->B, P = c->P, H = c->H, gh = c->G * c->H;
    d->x = td_data_ptr(c->x);
    d->w_ih = td_data_ptr(c->w_ih);
    d->w_hh = td_data_ptr(c->w_hh);
    d->w_hr = c->w_hr ? td_data_ptr(c->w_hr) : NULL;
    d->b_ih = b_ih;
    d->b_hh = b_hh;
    d->h0 = h0;
    d->c0 = c0;
    d->y = res;
    d->h_n = at(dt, res, c->rows * P);
    d->c_n = lstm ? at(dt, res, c->rows * P + B * P) : NULL;
    d->ws = ws;
    d->ws_size = ws ? c->lib_bytes : 0;
    TD_TRY(k->layer_forward(d));
    if (!ws) return TD_OK;
    keep_layout kl = keep_of(c);
    k->axpby(dt, result_size(c), 1, res, 0, at(dt, ws, kl.res));
    k->axpby(dt, B * P, 1, h0, 0, at(dt, ws, kl.h0));
    if (lstm) k->axpby(dt, B * H, 1, c0, 0, at(dt, ws, kl.c0));
    if (c->has_bias) {
        k->axpby(dt, gh, 1, b_ih, 0, at(dt, ws, kl.b_ih));
        k->axpby(dt, gh, 1, b_hh, 0, at(dt, ws, kl.b_hh));
    }
    return TD_OK;
}

/* rnn_backward of the whole-layer path */
static td_status layer_backward(td_node *nd, td_tensor *g, td_tensor **gi_out)
{
    const rnn_ctx *c = nd->ctx;
    const struct td_rnn_kernels *k = td_backend_of(c->x)->rnn;
    td_dtype dt = c->dt;
    td_device dev = td_device_of(c->x);
    bool lstm = c->mode == TD_RNN_LSTM;
    int64_t B = c->B, H = c->H, P = c->P, GH = c->G * c->H;
    enum { NG = 8 };
    td_tensor *gy = NULL, *gr[NG] = {0};
    td_status st = TD_OK;
    TD_CHECK(td_dense_raw(g, dt, false, &gy));
    char *W = td_data_ptr(c->ws), *G = td_data_ptr(gy);
    keep_layout kl = keep_of(c);
    td_rnn_layer_desc d = describe(c, true);
    d.x = td_data_ptr(c->x);
    d.w_ih = td_data_ptr(c->w_ih);
    d.w_hh = td_data_ptr(c->w_hh);
    d.w_hr = c->w_hr ? td_data_ptr(c->w_hr) : NULL;
    d.b_ih = c->has_bias ? at(dt, W, kl.b_ih) : NULL;
    d.b_hh = c->has_bias ? at(dt, W, kl.b_hh) : NULL;
    d.h0 = at(dt, W, kl.h0);
    d.c0 = lstm ? at(dt, W, kl.c0) : NULL;
    d.y = at(dt, W, kl.res);
    d.h_n = at(dt, W, kl.res + c->rows * P);
    d.c_n = lstm ? at(dt, W, kl.res + c->rows * P + B * P) : NULL;
    d.ws = W;
    d.ws_size = c->lib_bytes;
    d.dy = G;
    d.dh_n = at(dt, G, c->rows * P);
    d.dc_n = lstm ? at(dt, G, c->rows * P + B * P) : NULL;
    int64_t shp_h[2] = {B, P}, shp_c[2] = {B, H};
    TD_CHECK(td_empty_on(c->x->ndim, c->x->shape, dt, dev, &gr[0]));
    TD_CHECK(td_empty_on(2, shp_h, dt, dev, &gr[1]));
    if (lstm) TD_CHECK(td_empty_on(2, shp_c, dt, dev, &gr[2]));
    if (nd->next[3]) TD_CHECK(td_empty_on(2, c->w_ih->shape, dt, dev, &gr[3]));
    if (nd->next[4]) TD_CHECK(td_empty_on(2, c->w_hh->shape, dt, dev, &gr[4]));
    if (c->has_bias && (nd->next[5] || nd->next[6])) {
        TD_CHECK(td_empty_on(1, &GH, dt, dev, &gr[5]));
        TD_CHECK(td_empty_on(1, &GH, dt, dev, &gr[6]));
    }
    if (nd->next[7] && c->w_hr) TD_CHECK(td_empty_on(2, c->w_hr->shape, dt, dev, &gr[7]));
    void *ptr[NG];
    for (int j = 0; j < NG; j++) ptr[j] = gr[j] ? td_data_ptr(gr[j]) : NULL;
    d.dx = ptr[0];
    d.dh0 = ptr[1];
    d.dc0 = ptr[2];
    d.dw_ih = ptr[3];
    d.dw_hh = ptr[4];
    d.db_ih = ptr[5];
    d.db_hh = ptr[6];
    d.dw_hr = ptr[7];
    TD_CHECK(k->layer_backward(&d));
    for (int j = 0; j < NG; j++) {
        if (nd->next[j]) {
            gi_out[j] = gr[j];
        } else {
            td_tensor_release(gr[j]);
            gi_out[j] = NULL;
        }
        gr[j] = NULL;
    }
fail:
    td_release_many(NG, gr);
    td_tensor_release(gy);
    return st;
}

/* ---- backward ----------------------------------------------------------- */

/* gradients of the inputs, in the node's edge order: x, h0, c0, w_ih,
 * w_hh, b_ih, b_hh, w_hr */
static td_status rnn_backward(td_node *nd, td_tensor *g, td_tensor **gi_out)
{
    const rnn_ctx *c = nd->ctx;
    if (c->layer) return layer_backward(nd, g, gi_out);
    const td_backend *be = td_backend_of(c->x);
    const struct td_rnn_kernels *k = be->rnn;
    td_dtype dt = c->dt;
    td_device dev = td_device_of(c->x);
    int64_t B = c->B, H = c->H, P = c->P, GH = c->G * H, T = c->T;
    ws_layout l = layout_of(c);
    const int64_t *bs = c->bs, *off = c->bs + T;
    enum { NG = 8 };
    td_tensor *gy = NULL, *dh = NULL, *dc = NULL, *dgi = NULL, *dgh = NULL, *dm = NULL,
              *ones = NULL;
    td_tensor *gr[NG] = {0};
    td_status st = TD_OK;
    int64_t n1;
    TD_CHECK(td_dense_raw(g, dt, false, &gy));
    const char *G = td_data_ptr(gy);
    char *W = td_data_ptr(c->ws);
    int64_t bp = B * P, bh = B * H, dgis = c->rows * GH, dghs = T * B * GH;
    TD_CHECK(td_empty_on(1, &bp, dt, dev, &dh));
    TD_CHECK(td_full_on(1, &bh, 0, dt, dev, &dc));
    TD_CHECK(td_empty_on(1, &dgis, dt, dev, &dgi));
    TD_CHECK(td_full_on(1, &dghs, 0, dt, dev, &dgh));
    if (c->w_hr) TD_CHECK(td_empty_on(1, &bh, dt, dev, &dm));
    void *DH = td_data_ptr(dh), *DC = td_data_ptr(dc), *DGI = td_data_ptr(dgi),
         *DGH = td_data_ptr(dgh);
    k->axpby(dt, B * P, 1, at(dt, (void *)G, c->rows * P), 0, DH);
    if (c->mode == TD_RNN_LSTM)
        k->axpby(dt, B * H, 1, at(dt, (void *)G, c->rows * P + B * P), 0, DC);
    if (nd->next[7]) TD_CHECK(td_full_on(2, c->w_hr->shape, 0, dt, dev, &gr[7]));
    for (int64_t s = T - 1; s >= 0; s--) {
        int64_t t = time_of(c, s), n = bs[t];
        if (n == 0) continue;
        k->axpby(dt, n * P, 1, at(dt, (void *)G, off[t] * P), 1, DH);
        const void *din = DH;
        if (c->w_hr) {
            void *ms = at(dt, W, l.ms + s * B * H);
            if (gr[7])
                TD_CHECK(gemm(be, c, true, false, P, H, n, DH, P, ms, H, 1, td_data_ptr(gr[7]), H));
            TD_CHECK(gemm(be, c, false, false, n, H, P, DH, P, td_data_ptr(c->w_hr), H, 0,
                          td_data_ptr(dm), H));
            din = td_data_ptr(dm);
        }
        td_rnn_step_grad sg = {c->mode,
                               dt,
                               n,
                               H,
                               at(dt, W, l.sv + off[t] * c->S * H),
                               at(dt, W, l.hs + (s + 1) * B * P),
                               at(dt, W, l.hs + s * B * P),
                               at(dt, W, l.cs + s * B * H),
                               at(dt, W, l.cs + (s + 1) * B * H),
                               din,
                               DC,
                               at(dt, DGI, off[t] * GH),
                               at(dt, DGH, s * B * GH),
                               DH};
        k->step_backward(&sg);
        TD_CHECK(gemm(be, c, false, false, n, P, GH, at(dt, DGH, s * B * GH), GH,
                      td_data_ptr(c->w_hh), P, c->mode == TD_RNN_GRU ? 1 : 0, DH, P));
    }
    if (nd->next[0]) {
        TD_CHECK(td_empty_on(c->x->ndim, c->x->shape, dt, dev, &gr[0]));
        TD_CHECK(gemm(be, c, false, false, c->rows, c->I, GH, DGI, GH, td_data_ptr(c->w_ih), c->I,
                      0, td_data_ptr(gr[0]), c->I));
    }
    if (nd->next[1]) {
        int64_t shp[2] = {B, P};
        TD_CHECK(td_empty_on(2, shp, dt, dev, &gr[1]));
        k->axpby(dt, B * P, 1, DH, 0, td_data_ptr(gr[1]));
    }
    if (nd->next[2] && c->mode == TD_RNN_LSTM) {
        int64_t shp[2] = {B, H};
        TD_CHECK(td_empty_on(2, shp, dt, dev, &gr[2]));
        k->axpby(dt, B * H, 1, DC, 0, td_data_ptr(gr[2]));
    }
    if (nd->next[3]) {
        TD_CHECK(td_empty_on(2, c->w_ih->shape, dt, dev, &gr[3]));
        TD_CHECK(gemm(be, c, true, false, GH, c->I, c->rows, DGI, GH, td_data_ptr(c->x), c->I, 0,
                      td_data_ptr(gr[3]), c->I));
    }
    if (nd->next[4]) {
        TD_CHECK(td_empty_on(2, c->w_hh->shape, dt, dev, &gr[4]));
        TD_CHECK(gemm(be, c, true, false, GH, P, T * B, DGH, GH, at(dt, W, l.hs), P, 0,
                      td_data_ptr(gr[4]), P));
    }
    /* bias gradients: column sums, as a product with a row of ones */
    n1 = c->rows > T * B ? c->rows : T * B;
    if (nd->next[5] || nd->next[6]) TD_CHECK(td_full_on(1, &n1, 1, dt, dev, &ones));
    for (int j = 5; j <= 6; j++) {
        if (!nd->next[j]) continue;
        TD_CHECK(td_empty_on(1, &GH, dt, dev, &gr[j]));
        TD_CHECK(gemm(be, c, false, false, 1, GH, j == 5 ? c->rows : T * B, td_data_ptr(ones), n1,
                      j == 5 ? DGI : DGH, GH, 0, td_data_ptr(gr[j]), GH));
    }
    for (int j = 0; j < NG; j++) {
        gi_out[j] = gr[j];
        gr[j] = NULL;
    }
fail:
    td_release_many(NG, gr);
    td_tensor_release(gy);
    td_tensor_release(dh);
    td_tensor_release(dc);
    td_tensor_release(dgi);
    td_tensor_release(dgh);
    td_tensor_release(dm);
    td_tensor_release(ones);
    return st;
}

static const char *const arg_names[] = {"x", "h0", "c0", "w_ih", "w_hh", "b_ih", "b_hh", "w_hr"};

/* t must be 2-dim (r, cols), or 1-dim (r) when cols < 0, of dtype dt */
static td_status check_2d(td_tensor *t, int arg, int64_t r, int64_t cols, td_dtype dt)
{
    char s[160];
    const char *name = arg_names[arg - 1];
    if (t->dtype != dt)
        return td_error(TD_EDTYPE, arg, "rnn_layer: %s must be %s like the input, got %s", name,
                        td_dtype_name(dt), td_dtype_name(t->dtype));
    bool ok = cols < 0 ? (t->ndim == 1 && t->shape[0] == r)
                       : (t->ndim == 2 && t->shape[0] == r && t->shape[1] == cols);
    if (!ok) {
        td_shape_str(t, s, sizeof s);
        if (cols < 0)
            return td_error(TD_ESHAPE, arg, "rnn_layer: %s must have shape (%lld), got %s", name,
                            (long long)r, s);
        return td_error(TD_ESHAPE, arg, "rnn_layer: %s must have shape (%lld, %lld), got %s", name,
                        (long long)r, (long long)cols, s);
    }
    return TD_OK;
}

static td_status check_args(const td_rnn_layer_args *a, rnn_ctx *c)
{
    char s[160];
    td_tensor *x = a->x;
    TD_TRY(td_need_float(x->dtype, 1, "rnn", "input"));
    c->dt = x->dtype;
    c->mode = (td_rnn_mode)a->kind;
    c->G = c->mode == TD_RNN_LSTM ? 4 : c->mode == TD_RNN_GRU ? 3 : 1;
    c->S = c->mode == TD_RNN_LSTM || c->mode == TD_RNN_GRU ? 4 : 0;
    if (a->batch_sizes) {
        if (x->ndim != 2) {
            td_shape_str(x, s, sizeof s);
            return td_error(TD_ESHAPE, 1,
                            "rnn_layer: packed input must be 2-dim (rows, input_size), got %s", s);
        }
        int64_t sum = 0;
        for (int64_t t = 0; t < a->steps; t++) {
            if (a->batch_sizes[t] < 1 || (t > 0 && a->batch_sizes[t] > a->batch_sizes[t - 1]))
                return td_error(TD_EINVAL, 9,
                                "rnn_layer: batch_sizes must be positive and non-increasing");
            sum += a->batch_sizes[t];
        }
        if (a->steps < 1 || sum != x->shape[0])
            return td_error(TD_ESHAPE, 9,
                            "rnn_layer: batch_sizes sum to %lld, the packed input has %lld rows",
                            (long long)sum, (long long)x->shape[0]);
        c->T = a->steps;
        c->B = a->batch_sizes[0];
    } else {
        if (x->ndim != 3) {
            td_shape_str(x, s, sizeof s);
            return td_error(TD_ESHAPE, 1,
                            "rnn_layer: input must be 3-dim (T, B, input_size), got %s", s);
        }
        c->T = x->shape[0];
        c->B = x->shape[1];
        if (c->T < 1 || c->B < 1) {
            td_shape_str(x, s, sizeof s);
            return td_error(TD_ESHAPE, 1, "rnn_layer: input %s has no steps or no batch", s);
        }
    }
    c->I = x->shape[x->ndim - 1];
    c->rows = c->T * c->B;
    if (a->batch_sizes) c->rows = x->shape[0];
    if (a->w_ih->ndim != 2 || a->w_ih->shape[0] % c->G != 0 || a->w_ih->shape[0] == 0) {
        td_shape_str(a->w_ih, s, sizeof s);
        return td_error(TD_ESHAPE, 4,
                        "rnn_layer: w_ih must be (%lld hidden_size, input_size), got %s",
                        (long long)c->G, s);
    }
    c->H = a->w_ih->shape[0] / c->G;
    c->P = a->w_hr ? a->w_hr->shape[0] : c->H;
    if (a->w_hr && c->mode != TD_RNN_LSTM)
        return td_error(TD_EINVAL, 8, "rnn_layer: w_hr (a projection) is for LSTM only");
    if (a->w_hr) TD_TRY(check_2d(a->w_hr, 8, c->P, c->H, c->dt));
    TD_TRY(check_2d(a->w_ih, 4, c->G * c->H, c->I, c->dt));
    TD_TRY(check_2d(a->w_hh, 5, c->G * c->H, c->P, c->dt));
    if (a->b_ih) TD_TRY(check_2d(a->b_ih, 6, c->G * c->H, -1, c->dt));
    if (a->b_hh) TD_TRY(check_2d(a->b_hh, 7, c->G * c->H, -1, c->dt));
    if ((a->b_ih == NULL) != (a->b_hh == NULL))
        return td_error(TD_EINVAL, 6, "rnn_layer: b_ih and b_hh must be given together");
    TD_TRY(check_2d(a->h0, 2, c->B, c->P, c->dt));
    if (c->mode == TD_RNN_LSTM) {
        if (!a->c0) return td_error(TD_EINVAL, 3, "rnn_layer: LSTM needs c0");
        TD_TRY(check_2d(a->c0, 3, c->B, c->H, c->dt));
    } else if (a->c0) {
        return td_error(TD_EINVAL, 3, "rnn_layer: c0 is for LSTM only");
    }
    td_tensor *all[8] = {a->x, a->h0, a->c0, a->w_ih, a->w_hh, a->b_ih, a->b_hh, a->w_hr};
    TD_TRY(td_same_device(8, all));
    if (!td_backend_of(x)->rnn) {
        char d[32];
        return td_error(TD_EINVAL, 1, "rnn_layer: not implemented on %s",
                        td_device_str(td_device_of(x), d, sizeof d));
    }
    c->reverse = a->reverse;
    c->has_bias = a->b_ih != NULL;
    c->packed = a->batch_sizes != NULL;
    return TD_OK;
}

td_status td_rnn_layer(const td_rnn_layer_args *a, td_tensor **out)
{
    rnn_ctx hdr = {0};
    TD_TRY(check_args(a, &hdr));
    size_t ctx_size = sizeof(rnn_ctx) + sizeof(int64_t) * 2 * (size_t)hdr.T;
    rnn_ctx *c = calloc(1, ctx_size);
    if (!c) return td_error(TD_ENOMEM, 0, "rnn_layer: out of memory");
    *c = hdr;
    for (int64_t t = 0, o = 0; t < c->T; t++) {
        c->bs[t] = a->batch_sizes ? a->batch_sizes[t] : c->B;
        c->bs[c->T + t] = a->batch_sizes ? o : t * c->B;
        o += c->bs[t];
    }
    td_dtype dt = c->dt;
    td_device dev = td_device_of(a->x);
    td_tensor *cx = NULL, *cwi = NULL, *cwh = NULL, *cwr = NULL, *cbi = NULL, *cbh = NULL,
              *ch0 = NULL, *cc0 = NULL, *ws = NULL, *res = NULL;
    td_status st = TD_OK;
    TD_CHECK(td_dense_raw(a->x, dt, false, &cx));
    TD_CHECK(td_dense_raw(a->w_ih, dt, false, &cwi));
    TD_CHECK(td_dense_raw(a->w_hh, dt, false, &cwh));
    TD_CHECK(td_dense_raw(a->h0, dt, false, &ch0));
    if (a->w_hr) TD_CHECK(td_dense_raw(a->w_hr, dt, false, &cwr));
    if (a->c0) TD_CHECK(td_dense_raw(a->c0, dt, false, &cc0));
    if (a->b_ih) TD_CHECK(td_dense_raw(a->b_ih, dt, false, &cbi));
    if (a->b_hh) TD_CHECK(td_dense_raw(a->b_hh, dt, false, &cbh));
    c->x = cx;
    c->w_ih = cwi;
    c->w_hh = cwh;
    c->w_hr = cwr;
    td_tensor *ins[8] = {a->x, a->h0, a->c0, a->w_ih, a->w_hh, a->b_ih, a->b_hh, a->w_hr};
    bool grad = td_needs_grad(8, ins);
    int64_t nres = result_size(c);
    TD_CHECK(td_empty_on(1, &nres, dt, dev, &res));
    /* the backend's whole-layer path where it takes the call and is chosen */
    const struct td_rnn_kernels *k = td_backend_of(cx)->rnn;
    rnn_impl impl;
    td_rnn_layer_desc d = describe(c, grad);
    d.x = td_data_ptr(cx); /* for the plan: the device */
    td_rnn_layer_fit fit = TD_RNN_LAYER_NO;
    size_t lib_bytes = 0;
    TD_CHECK(impl_get(&impl));
    if (impl != IMPL_LOOP && k->layer_plan) TD_CHECK(k->layer_plan(&d, &fit, &lib_bytes));
    c->layer = fit == TD_RNN_LAYER_YES || (fit == TD_RNN_LAYER_SLOWER && impl == IMPL_LIBRARY);
    const void *pbi = cbi ? td_data_ptr(cbi) : NULL, *pbh = cbh ? td_data_ptr(cbh) : NULL;
    const void *pc0 = cc0 ? td_data_ptr(cc0) : NULL;
    if (c->layer) {
        int64_t e = (int64_t)((lib_bytes + esize(dt) - 1) / esize(dt));
        c->lib_bytes = grad ? lib_bytes : 0;
        c->lib_elems = grad ? (e + 15) / 16 * 16 : 0; /* the copies start 64-byte aligned */
        keep_layout kl = keep_of(c);
        if (grad) TD_CHECK(td_empty_on(1, &kl.total, dt, dev, &ws));
        TD_CHECK(layer_run_forward(c, &d, pbi, pbh, td_data_ptr(ch0), pc0,
                                   ws ? td_data_ptr(ws) : NULL, td_data_ptr(res)));
    } else {
        ws_layout l = layout_of(c);
        TD_CHECK(td_empty_on(1, &l.total, dt, dev, &ws));
        TD_CHECK(
            run_forward(c, pbi, pbh, td_data_ptr(ch0), pc0, td_data_ptr(ws), td_data_ptr(res)));
    }
    if (grad) {
        td_node *node;
        rnn_ctx *nc = NULL;
        TD_CHECK(td_node_new("RnnBackward", rnn_backward, 8, ins, &node));
        st = td_node_ctx(node, ctx_size, (void **)&nc);
        if (st == TD_OK) {
            memcpy(nc, c, ctx_size);
            nc->x = nc->w_ih = nc->w_hh = nc->w_hr = nc->ws = NULL;
            st = td_node_keep(node, cx, &nc->x);
        }
        if (st == TD_OK) st = td_node_keep(node, cwi, &nc->w_ih);
        if (st == TD_OK) st = td_node_keep(node, cwh, &nc->w_hh);
        if (st == TD_OK && cwr) st = td_node_keep(node, cwr, &nc->w_hr);
        if (st == TD_OK) st = td_node_keep(node, ws, &nc->ws);
        TD_CHECK(td_node_finish(node, st, res));
    }
    *out = res;
    res = NULL;
fail:
    free(c);
    td_tensor *tmp[10] = {cx, cwi, cwh, cwr, cbi, cbh, ch0, cc0, ws, res};
    td_release_many(10, tmp);
    return st;
}
