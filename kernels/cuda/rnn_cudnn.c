/* The recurrent layers' whole-layer path on CUDA: cuDNN 9's RNN API
 * (cudnnRNNForward, cudnnRNNBackwardData_v8, cudnnRNNBackwardWeights_v8),
 * one layer in one direction per call, float32 and float64, packed
 * sequences included. runtime/rnn.c calls it through the table below
 * (kernels/rnn.h: td_cuda_rnn's step kernels plus the hooks) and runs its
 * own loop for what this does not take: a machine whose cuDNN lacks the
 * RNN entries (or fails to load their sub-library), deterministic mode
 * (cuDNN's RNN promises no bitwise reproducibility; the loop's kernels
 * and cuBLAS calls give the same bits each run), and sizes past cuDNN's
 * int.
 *
 * cuDNN is opened with dlopen, as kernels/cuda/conv.c does, on the first
 * recurrent layer on CUDA; the entries keep the header's prototypes
 * (__typeof__), so a changed signature is a compile error here.
 *
 * Layouts. Sequences are cuDNN's CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED
 * with each sequence's length: that is tide's (T, B, C) when every length
 * is T, and PyTorch's PackedSequence data otherwise (batch_sizes gives
 * the lengths). cuDNN's gates are PyTorch's (LSTM i, f, g, o; GRU r, z,
 * n with the reset gate after the hidden product), with two biases
 * (CUDNN_RNN_DOUBLE_BIAS) and the LSTM projection as cuDNN's projSize.
 * The weights are copied into a weight space each call, each gate's (H,
 * C) block where cudnnGetRNNWeightParams places it, and the gradients out
 * of a zeroed one the same way (cudnnRNNBackwardWeights_v8 adds).
 * cuDNN runs forward in time only: a reversed layer runs on its input with
 * each sequence's steps reversed (a row gather, rnn_cudnn_rows.cu), and
 * its outputs are reversed back; h_n is then the state after the first
 * step, as the reverse direction's is.
 *
 * Float32 runs in full float32 (CUDNN_FMA_MATH, no TF32), so results
 * match the CPU's; TIDE_CUDNN_TF32=1 allows tensor cores, as for conv2d.
 * The reserve space a training forward fills is the ws the runtime keeps
 * on the autograd node; the work space is the caching allocator's. */
#include "nn.h"
#include "../rnn.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TIDE_CUDNN_DIR
#define TIDE_CUDNN_DIR ""
#endif

#define MAX_DEVICES 64

/* ---- loading ------------------------------------------------------------------ */

#define RNN_FUNCS(X)                                                                               \
    X(cudnnGetVersion)                                                                             \
    X(cudnnGetErrorString)                                                                         \
    X(cudnnCreate)                                                                                 \
    X(cudnnCreateTensorDescriptor)                                                                 \
    X(cudnnSetTensorNdDescriptor)                                                                  \
    X(cudnnGetTensorNdDescriptor)                                                                  \
    X(cudnnDestroyTensorDescriptor)                                                                \
    X(cudnnCreateDropoutDescriptor)                                                                \
    X(cudnnSetDropoutDescriptor)                                                                   \
    X(cudnnDestroyDropoutDescriptor)                                                               \
    X(cudnnCreateRNNDescriptor)                                                                    \
    X(cudnnSetRNNDescriptor_v8)                                                                    \
    X(cudnnDestroyRNNDescriptor)                                                                   \
    X(cudnnCreateRNNDataDescriptor)                                                                \
    X(cudnnSetRNNDataDescriptor)                                                                   \
    X(cudnnDestroyRNNDataDescriptor)                                                               \
    X(cudnnGetRNNWeightSpaceSize)                                                                  \
    X(cudnnGetRNNWeightParams)                                                                     \
    X(cudnnGetRNNTempSpaceSizes)                                                                   \
    X(cudnnRNNForward)                                                                             \
    X(cudnnRNNBackwardData_v8)                                                                     \
    X(cudnnRNNBackwardWeights_v8)

#define FIELD(f) __typeof__(&f) f;
static struct {
    RNN_FUNCS(FIELD)
} dnn;
#undef FIELD

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static bool loaded, allow_tf32;

static void load(void)
{
    const char *v = getenv("TIDE_CUDNN_TF32");
    allow_tf32 = v && *v && strcmp(v, "0") != 0;
    void *h = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
    if (!h && TIDE_CUDNN_DIR[0]) h = dlopen(TIDE_CUDNN_DIR "/libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
    if (!h) return; /* the loop runs every layer */
#define LOOKUP(f)                                                                                  \
    {                                                                                              \
        void *s = dlsym(h, #f);                                                                    \
        if (!s) return;                                                                            \
        memcpy(&dnn.f, &s, sizeof s);                                                              \
    }
    RNN_FUNCS(LOOKUP)
#undef LOOKUP
    size_t ver = dnn.cudnnGetVersion();
    loaded = ver >= 90000 && ver < 100000;
}

/* cuDNN answered that it cannot run RNNs here (its RNN sub-library did
 * not load): every later call runs the loop without asking again */
static bool rnn_broken;

static td_status dnn_fail(cudnnStatus_t s, const char *what)
{
    return td_error(s == CUDNN_STATUS_ALLOC_FAILED ? TD_ENOMEM : TD_EINVAL, 0,
                    "rnn_layer: cuDNN %s failed: %s", what, dnn.cudnnGetErrorString(s));
}

/* ---- handles, one per device ---------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cudnnHandle_t handles[MAX_DEVICES];
static cudnnDropoutDescriptor_t no_dropout[MAX_DEVICES];

/* the handle of device, and a dropout descriptor of 0 (one layer has no
 * dropout, but the descriptor wants one) */
static cudnnStatus_t handle_for(int device, cudnnHandle_t *h, cudnnDropoutDescriptor_t *dd)
{
    cudnnStatus_t s = CUDNN_STATUS_SUCCESS;
    if (device < 0 || device >= MAX_DEVICES) return CUDNN_STATUS_BAD_PARAM;
    pthread_mutex_lock(&lock);
    if (!handles[device]) {
        td_cuda_use(device);
        s = dnn.cudnnCreate(&handles[device]);
        if (s != CUDNN_STATUS_SUCCESS) handles[device] = NULL;
    }
    if (s == CUDNN_STATUS_SUCCESS && !no_dropout[device]) {
        cudnnDropoutDescriptor_t d;
        s = dnn.cudnnCreateDropoutDescriptor(&d);
        if (s == CUDNN_STATUS_SUCCESS) {
            s = dnn.cudnnSetDropoutDescriptor(d, handles[device], 0.0f, NULL, 0, 0);
            if (s == CUDNN_STATUS_SUCCESS)
                no_dropout[device] = d;
            else
                dnn.cudnnDestroyDropoutDescriptor(d);
        }
    }
    *h = handles[device];
    *dd = no_dropout[device];
    pthread_mutex_unlock(&lock);
    return s;
}

/* ---- one call's descriptors ------------------------------------------------------- */

typedef struct {
    int device;
    cudnnHandle_t h;
    cudnnRNNDescriptor_t rd;
    cudnnRNNDataDescriptor_t xd, yd;
    cudnnTensorDescriptor_t hd, cd;
    cudnnDataType_t dt;
    size_t w_size, work_size, reserve_size;
    int *lens; /* each sequence's length (host) */
} desc;

static void desc_free(desc *s)
{
    if (s->rd) dnn.cudnnDestroyRNNDescriptor(s->rd);
    if (s->xd) dnn.cudnnDestroyRNNDataDescriptor(s->xd);
    if (s->yd) dnn.cudnnDestroyRNNDataDescriptor(s->yd);
    if (s->hd) dnn.cudnnDestroyTensorDescriptor(s->hd);
    if (s->cd) dnn.cudnnDestroyTensorDescriptor(s->cd);
    free(s->lens);
    memset(s, 0, sizeof *s);
}

static int gates_of(td_rnn_mode m) { return m == TD_RNN_LSTM ? 4 : m == TD_RNN_GRU ? 3 : 1; }

/* whether cuDNN's int sizes hold the layer */
static bool fits(const td_rnn_layer_desc *d)
{
    int64_t G = gates_of(d->mode), wide = d->I > d->P ? d->I : d->P;
    return d->T <= INT_MAX && d->B <= INT_MAX && d->I <= INT_MAX && G * d->H <= INT_MAX &&
           d->rows * wide <= INT_MAX && G * d->H * wide <= INT_MAX;
}

#define DS(call)                                                                                   \
    do {                                                                                           \
        s = (call);                                                                                \
        if (s != CUDNN_STATUS_SUCCESS) return s;                                                   \
    } while (0)

/* every descriptor of the layer d describes, and the sizes of its spaces */
static cudnnStatus_t describe(const td_rnn_layer_desc *d, desc *o)
{
    cudnnStatus_t s;
    cudnnDropoutDescriptor_t dd;
    o->dt = d->dtype == TD_FLOAT64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    DS(handle_for(o->device, &o->h, &dd));
    static const cudnnRNNMode_t cell[] = {CUDNN_RNN_TANH, CUDNN_RNN_RELU, CUDNN_LSTM, CUDNN_GRU};
    cudnnMathType_t math =
        d->dtype == TD_FLOAT32 && !allow_tf32 ? CUDNN_FMA_MATH : CUDNN_DEFAULT_MATH;
    DS(dnn.cudnnCreateRNNDescriptor(&o->rd));
    DS(dnn.cudnnSetRNNDescriptor_v8(o->rd, CUDNN_RNN_ALGO_STANDARD, cell[d->mode],
                                    d->has_bias ? CUDNN_RNN_DOUBLE_BIAS : CUDNN_RNN_NO_BIAS,
                                    CUDNN_UNIDIRECTIONAL, CUDNN_LINEAR_INPUT, o->dt, o->dt, math,
                                    (int32_t)d->I, (int32_t)d->H, (int32_t)d->P, 1, dd,
                                    CUDNN_RNN_PADDED_IO_DISABLED));
    o->lens = malloc(sizeof(int) * (size_t)d->B);
    if (!o->lens) return CUDNN_STATUS_ALLOC_FAILED;
    for (int64_t b = 0; b < d->B; b++) {
        int64_t n = d->T;
        if (d->batch_sizes)
            for (n = 0; n < d->T && d->batch_sizes[n] > b;) n++;
        o->lens[b] = (int)n;
    }
    DS(dnn.cudnnCreateRNNDataDescriptor(&o->xd));
    DS(dnn.cudnnCreateRNNDataDescriptor(&o->yd));
    DS(dnn.cudnnSetRNNDataDescriptor(o->xd, o->dt, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED,
                                     (int)d->T, (int)d->B, (int)d->I, o->lens, NULL));
    DS(dnn.cudnnSetRNNDataDescriptor(o->yd, o->dt, CUDNN_RNN_DATA_LAYOUT_SEQ_MAJOR_PACKED,
                                     (int)d->T, (int)d->B, (int)d->P, o->lens, NULL));
    int hdim[3] = {1, (int)d->B, (int)d->P}, hstr[3] = {(int)(d->B * d->P), (int)d->P, 1};
    int cdim[3] = {1, (int)d->B, (int)d->H}, cstr[3] = {(int)(d->B * d->H), (int)d->H, 1};
    DS(dnn.cudnnCreateTensorDescriptor(&o->hd));
    DS(dnn.cudnnCreateTensorDescriptor(&o->cd));
    DS(dnn.cudnnSetTensorNdDescriptor(o->hd, o->dt, 3, hdim, hstr));
    DS(dnn.cudnnSetTensorNdDescriptor(o->cd, o->dt, 3, cdim, cstr));
    DS(dnn.cudnnGetRNNWeightSpaceSize(o->h, o->rd, &o->w_size));
    DS(dnn.cudnnGetRNNTempSpaceSizes(
        o->h, o->rd, d->training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE, o->xd,
        &o->work_size, &o->reserve_size));
    return CUDNN_STATUS_SUCCESS;
}

/* ---- the weight space ------------------------------------------------------------- */

/* where cuDNN keeps linear layer id's matrix and bias in the space w,
 * and their element counts (NULL and 0 where there is none) */
static cudnnStatus_t params(const desc *o, void *w, int id, void **m, int64_t *mn, void **b,
                            int64_t *bn)
{
    cudnnTensorDescriptor_t td[2] = {NULL, NULL};
    void *addr[2] = {NULL, NULL};
    int64_t count[2] = {0, 0};
    cudnnStatus_t s = dnn.cudnnCreateTensorDescriptor(&td[0]);
    if (s == CUDNN_STATUS_SUCCESS) s = dnn.cudnnCreateTensorDescriptor(&td[1]);
    if (s == CUDNN_STATUS_SUCCESS)
        s = dnn.cudnnGetRNNWeightParams(o->h, o->rd, 0, o->w_size, w, id, td[0], &addr[0], td[1],
                                        &addr[1]);
    for (int k = 0; k < 2 && s == CUDNN_STATUS_SUCCESS; k++) {
        if (!addr[k]) continue;
        cudnnDataType_t dt;
        int nd = 0, dims[8], str[8];
        s = dnn.cudnnGetTensorNdDescriptor(td[k], 8, &dt, &nd, dims, str);
        count[k] = 1;
        for (int i = 0; i < nd; i++) count[k] *= dims[i];
    }
    for (int k = 0; k < 2; k++)
        if (td[k]) dnn.cudnnDestroyTensorDescriptor(td[k]);
    *m = addr[0];
    *mn = count[0];
    *b = addr[1];
    *bn = count[1];
    return s;
}

/* a block of the layer: linear layer id's matrix (is_bias false) or bias
 * in cuDNN's space, and its PyTorch counterpart (NULL: not wanted) */
typedef struct {
    int id;
    bool is_bias;
    int64_t n; /* elements */
    void *tide;
} block;

/* the blocks of d's weights (gradients when grads), in cuDNN's linear
 * layer ids; returns their count */
static int blocks_of(const td_rnn_layer_desc *d, bool grads, block *bl)
{
    int G = gates_of(d->mode), n = 0;
    int64_t H = d->H, es = d->dtype == TD_FLOAT64 ? 8 : 4;
    char *w_ih = grads ? d->dw_ih : (char *)d->w_ih, *w_hh = grads ? d->dw_hh : (char *)d->w_hh;
    char *b_ih = grads ? d->db_ih : (char *)d->b_ih, *b_hh = grads ? d->db_hh : (char *)d->b_hh;
    char *w_hr = grads ? d->dw_hr : (char *)d->w_hr;
    for (int j = 0; j < G; j++) {
        bl[n++] = (block){j, false, H * d->I, w_ih ? w_ih + j * H * d->I * es : NULL};
        bl[n++] = (block){G + j, false, H * d->P, w_hh ? w_hh + j * H * d->P * es : NULL};
        if (d->has_bias) {
            bl[n++] = (block){j, true, H, b_ih ? b_ih + j * H * es : NULL};
            bl[n++] = (block){G + j, true, H, b_hh ? b_hh + j * H * es : NULL};
        }
    }
    if (d->has_proj) bl[n++] = (block){8, false, d->P * H, w_hr};
    return n;
}

/* tide's weights into the space w (in true), or the gradients out of it */
static td_status copy_weights(const desc *o, const td_rnn_layer_desc *d, void *w, bool in)
{
    block bl[4 * 4 + 1];
    int nb = blocks_of(d, !in, bl);
    size_t es = d->dtype == TD_FLOAT64 ? 8 : 4;
    for (int i = 0; i < nb; i++) {
        if (!bl[i].tide) continue;
        void *m, *b;
        int64_t mn, bn;
        cudnnStatus_t s = params(o, w, bl[i].id, &m, &mn, &b, &bn);
        if (s != CUDNN_STATUS_SUCCESS) return dnn_fail(s, "weight layout query");
        void *at = bl[i].is_bias ? b : m;
        int64_t n = bl[i].is_bias ? bn : mn;
        if (!at || n != bl[i].n)
            return td_error(TD_EINVAL, 0,
                            "rnn_layer: cuDNN's weight space holds %lld elements for %s %d, "
                            "tide has %lld",
                            (long long)n, bl[i].is_bias ? "bias" : "matrix", bl[i].id,
                            (long long)bl[i].n);
        cudaError_t e = cudaMemcpyAsync(in ? at : bl[i].tide, in ? bl[i].tide : at, (size_t)n * es,
                                        cudaMemcpyDeviceToDevice, 0);
        if (e != cudaSuccess) {
            td_cuda_note_error(e, "rnn_layer weight copy");
            return td_cuda_pending_error();
        }
    }
    return TD_OK;
}

/* ---- reversed layers ---------------------------------------------------------------- */

/* rnn_cudnn_rows.cu: dst row r = src row map[r], rows of width elements */
void td_cuda_rnn_gather_rows(td_dtype dt, int64_t rows, int64_t width, const int64_t *map,
                             const void *src, void *dst);

/* the row of step t of sequence b in the packed layout is off[t] + b: the
 * map from each row to the row of the same sequence's mirrored step */
static int64_t *reverse_map(const td_rnn_layer_desc *d, const int *lens)
{
    int64_t *map = malloc(sizeof(int64_t) * (size_t)d->rows),
            *off = malloc(sizeof(int64_t) * (size_t)d->T);
    if (!map || !off) {
        free(map);
        free(off);
        return NULL;
    }
    for (int64_t t = 0, o = 0; t < d->T; t++) {
        off[t] = o;
        o += d->batch_sizes ? d->batch_sizes[t] : d->B;
    }
    for (int64_t t = 0; t < d->T; t++) {
        int64_t n = d->batch_sizes ? d->batch_sizes[t] : d->B;
        for (int64_t b = 0; b < n; b++) map[off[t] + b] = off[lens[b] - 1 - t] + b;
    }
    free(off);
    return map;
}

/* ---- running ---------------------------------------------------------------------- */

/* device buffers of one call, freed together */
typedef struct {
    int device;
    void *p[12];
    size_t n[12];
    int count;
} bufs;

static void *get(bufs *bf, size_t n)
{
    if (bf->count == (int)(sizeof bf->p / sizeof bf->p[0])) return NULL;
    void *p = td_cuda_alloc(bf->device, n > 0 ? n : 1);
    if (p) {
        bf->p[bf->count] = p;
        bf->n[bf->count++] = n > 0 ? n : 1;
    }
    return p;
}

static void bufs_free(bufs *bf)
{
    for (int i = 0; i < bf->count; i++) td_cuda_free(bf->device, bf->p[i], bf->n[i]);
    bf->count = 0;
}

#define NEED(p)                                                                                    \
    do {                                                                                           \
        if (!(p)) {                                                                                \
            st = td_error(TD_ENOMEM, 0, "cuda:%d out of memory in rnn_layer (cuDNN)", o.device);   \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

#define DNN(call, what)                                                                            \
    do {                                                                                           \
        cudnnStatus_t dnn_s_ = (call);                                                             \
        if (dnn_s_ != CUDNN_STATUS_SUCCESS) {                                                      \
            st = dnn_fail(dnn_s_, what);                                                           \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

/* what both directions start with: the descriptors, the weight space
 * filled, the lengths on the device and, reversed, the row map there */
typedef struct {
    void *w, *work;
    int32_t *dev_lens;
    int64_t *dev_map;
} start_out;

static td_status start(const td_rnn_layer_desc *d, desc *o_, bufs *bf, start_out *so)
{
    td_status st = TD_OK;
    desc o = {.device = td_cuda_device_of_ptr(d->x)};
    memset(so, 0, sizeof *so);
    if (o.device < 0) return td_cuda_pending_error();
    bf->device = o.device;
    td_cuda_use(o.device);
    TD_TRY(td_cuda_pending_error());
    DNN(describe(d, &o), "RNN descriptor");
    NEED(so->w = get(bf, o.w_size));
    cudaError_t e = cudaMemsetAsync(so->w, 0, o.w_size, 0); /* any gaps between the blocks */
    if (e != cudaSuccess) td_cuda_note_error(e, "rnn_layer weight space");
    if ((st = copy_weights(&o, d, so->w, true)) != TD_OK) goto fail;
    if (o.work_size) NEED(so->work = get(bf, o.work_size));
    NEED(so->dev_lens = get(bf, sizeof(int32_t) * (size_t)d->B));
    if ((st = td_cuda_upload(o.device, so->dev_lens, o.lens, sizeof(int32_t) * (size_t)d->B)) !=
        TD_OK)
        goto fail;
    if (d->reverse) {
        int64_t *map = reverse_map(d, o.lens);
        NEED(map);
        so->dev_map = get(bf, sizeof(int64_t) * (size_t)d->rows);
        if (so->dev_map)
            st = td_cuda_upload(o.device, so->dev_map, map, sizeof(int64_t) * (size_t)d->rows);
        free(map);
        NEED(so->dev_map);
        if (st != TD_OK) goto fail;
    }
    *o_ = o;
    return TD_OK;
fail:
    desc_free(&o);
    return st;
}

/* src's rows reversed per sequence into a new buffer (width elements each) */
static void *flipped(const td_rnn_layer_desc *d, bufs *bf, const int64_t *dev_map, const void *src,
                     int64_t width)
{
    size_t es = d->dtype == TD_FLOAT64 ? 8 : 4;
    void *p = get(bf, (size_t)(d->rows * width) * es);
    if (p) td_cuda_rnn_gather_rows(d->dtype, d->rows, width, dev_map, src, p);
    return p;
}

static td_status plan(const td_rnn_layer_desc *d, td_rnn_layer_fit *fit, size_t *ws_size)
{
    *fit = TD_RNN_LAYER_NO;
    *ws_size = 0;
    if (d->dtype != TD_FLOAT32 && d->dtype != TD_FLOAT64) return TD_OK;
    if (d->has_proj && d->mode != TD_RNN_LSTM) return TD_OK;
    pthread_once(&load_once, load);
    if (!loaded || rnn_broken || td_deterministic() || !fits(d)) return TD_OK;
    desc o = {.device = td_cuda_device_of_ptr(d->x)};
    if (o.device < 0 || o.device >= MAX_DEVICES) return td_cuda_pending_error();
    td_cuda_use(o.device);
    cudnnStatus_t s = describe(d, &o);
    if (s == CUDNN_STATUS_SUCCESS) {
        *fit = TD_RNN_LAYER_YES;
        *ws_size = d->training ? o.reserve_size : 0;
    } else if (s == CUDNN_STATUS_SUBLIBRARY_LOADING_FAILED ||
               s == CUDNN_STATUS_SUBLIBRARY_VERSION_MISMATCH) {
        rnn_broken = true; /* no RNN in this cuDNN: the loop, from now on */
    } else if (s == CUDNN_STATUS_ALLOC_FAILED) {
        desc_free(&o);
        return dnn_fail(s, "RNN descriptor");
    }
    desc_free(&o);
    return TD_OK;
}

static td_status forward(const td_rnn_layer_desc *d)
{
    td_status st = TD_OK;
    bufs bf = {.count = 0};
    desc o = {.device = -1};
    start_out so;
    bool lstm = d->mode == TD_RNN_LSTM;
    if ((st = start(d, &o, &bf, &so)) != TD_OK) goto fail;
    size_t reserve = d->training ? o.reserve_size : 0;
    if (d->training && d->ws_size < reserve) {
        st = td_error(TD_EINVAL, 0, "rnn_layer: cuDNN's reserve space needs %zu bytes, got %zu",
                      reserve, d->ws_size);
        goto fail;
    }
    const void *x = d->x;
    void *y = d->y;
    if (d->reverse) {
        NEED(x = flipped(d, &bf, so.dev_map, d->x, d->I));
        NEED(y = get(&bf, (size_t)(d->rows * d->P) * (d->dtype == TD_FLOAT64 ? 8 : 4)));
    }
    DNN(dnn.cudnnRNNForward(o.h, o.rd,
                            d->training ? CUDNN_FWD_MODE_TRAINING : CUDNN_FWD_MODE_INFERENCE,
                            so.dev_lens, o.xd, x, o.yd, y, o.hd, d->h0, d->h_n, o.cd,
                            lstm ? d->c0 : NULL, lstm ? d->c_n : NULL, o.w_size, so.w, o.work_size,
                            so.work, reserve, reserve ? d->ws : NULL),
        "RNN forward");
    if (d->reverse) td_cuda_rnn_gather_rows(d->dtype, d->rows, d->P, so.dev_map, y, d->y);
    st = td_cuda_pending_error();
fail:
    bufs_free(&bf);
    if (o.device >= 0) desc_free(&o);
    return st;
}

static td_status backward(const td_rnn_layer_desc *d)
{
    td_status st = TD_OK;
    bufs bf = {.count = 0};
    desc o = {.device = -1};
    start_out so;
    bool lstm = d->mode == TD_RNN_LSTM;
    size_t es = d->dtype == TD_FLOAT64 ? 8 : 4;
    if ((st = start(d, &o, &bf, &so)) != TD_OK) goto fail;
    if (d->ws_size < o.reserve_size) {
        st = td_error(TD_EINVAL, 0, "rnn_layer: cuDNN's reserve space needs %zu bytes, got %zu",
                      o.reserve_size, d->ws_size);
        goto fail;
    }
    const void *x = d->x, *y = d->y, *dy = d->dy;
    void *dx = d->dx;
    if (d->reverse) {
        NEED(x = flipped(d, &bf, so.dev_map, d->x, d->I));
        NEED(y = flipped(d, &bf, so.dev_map, d->y, d->P));
        NEED(dy = flipped(d, &bf, so.dev_map, d->dy, d->P));
        NEED(dx = get(&bf, (size_t)(d->rows * d->I) * es));
    }
    DNN(dnn.cudnnRNNBackwardData_v8(o.h, o.rd, so.dev_lens, o.yd, y, dy, o.xd, dx, o.hd, d->h0,
                                    d->dh_n, d->dh0, o.cd, lstm ? d->c0 : NULL,
                                    lstm ? d->dc_n : NULL, lstm ? d->dc0 : NULL, o.w_size, so.w,
                                    o.work_size, so.work, o.reserve_size, d->ws),
        "RNN backward data");
    if (d->reverse) td_cuda_rnn_gather_rows(d->dtype, d->rows, d->I, so.dev_map, dx, d->dx);
    if (d->dw_ih || d->dw_hh || d->db_ih || d->dw_hr) {
        void *dw;
        NEED(dw = get(&bf, o.w_size));
        cudaError_t e = cudaMemsetAsync(dw, 0, o.w_size, 0);
        if (e != cudaSuccess) td_cuda_note_error(e, "rnn_layer backward");
        DNN(dnn.cudnnRNNBackwardWeights_v8(o.h, o.rd, CUDNN_WGRAD_MODE_ADD, so.dev_lens, o.xd, x,
                                           o.hd, d->h0, o.yd, y, o.w_size, dw, o.work_size, so.work,
                                           o.reserve_size, d->ws),
            "RNN backward weights");
        if ((st = copy_weights(&o, d, dw, false)) != TD_OK) goto fail;
    }
    st = td_cuda_pending_error();
fail:
    bufs_free(&bf);
    if (o.device >= 0) desc_free(&o);
    return st;
}

/* td_cuda_rnn's step kernels, and the hooks */
static void step(const td_rnn_step *s) { td_cuda_rnn.step(s); }
static void step_backward(const td_rnn_step_grad *s) { td_cuda_rnn.step_backward(s); }
static void axpby(td_dtype dt, int64_t n, double a, const void *x, double b, void *y)
{
    td_cuda_rnn.axpby(dt, n, a, x, b, y);
}

const struct td_rnn_kernels td_cuda_rnn_cudnn = {
    .step = step,
    .step_backward = step_backward,
    .axpby = axpby,
    .layer_plan = plan,
    .layer_forward = forward,
    .layer_backward = backward,
};
