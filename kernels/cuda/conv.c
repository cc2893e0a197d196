/* conv2d on CUDA through cuDNN 9's convolution API.
 *
 * cuDNN is opened with dlopen on the first convolution, not linked: a GPU
 * machine without cuDNN still runs everything else, and conv2d there says
 * what is missing. The entry points keep the header's prototypes
 * (__typeof__), so a changed signature is a compile error here.
 *
 * Each shape (device, dtype, sizes, stride, padding, dilation, groups,
 * math mode) gets a plan: its descriptors and, per direction, the
 * algorithm chosen the first time that direction runs. The choice times
 * every algorithm cuDNN offers on the real buffers
 * (cudnnFind*AlgorithmEx, as PyTorch's cudnn.benchmark) with a workspace
 * from tide's caching allocator, and keeps the fastest that is
 * deterministic (no atomics: the same bits on every run, as every tide
 * kernel) and fits in memory. Float32 runs in full float32 (CUDNN_FMA_MATH,
 * no TF32), so results match the CPU; TIDE_CUDNN_TF32=1 in the
 * environment allows TF32 tensor cores, TIDE_CUDNN_NONDETERMINISTIC=1
 * allows the algorithms that use atomics (both read once).
 *
 * cuDNN's legacy descriptors count in int: a batch whose input or output
 * has more than INT_MAX elements runs in slices of the batch (backward
 * weights accumulates the slices with beta = 1, in order). The bias is
 * added, and its gradient summed, by our own kernels (nn.cu). */
#include "nn.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TIDE_CUDNN_DIR
#define TIDE_CUDNN_DIR ""
#endif

#define MAX_DEVICES 64

/* ---- loading ------------------------------------------------------------------ */

#define CUDNN_FUNCS(X)                                                                             \
    X(cudnnGetVersion)                                                                             \
    X(cudnnGetErrorString)                                                                         \
    X(cudnnCreate)                                                                                 \
    X(cudnnCreateTensorDescriptor)                                                                 \
    X(cudnnSetTensor4dDescriptor)                                                                  \
    X(cudnnDestroyTensorDescriptor)                                                                \
    X(cudnnCreateFilterDescriptor)                                                                 \
    X(cudnnSetFilter4dDescriptor)                                                                  \
    X(cudnnDestroyFilterDescriptor)                                                                \
    X(cudnnCreateConvolutionDescriptor)                                                            \
    X(cudnnSetConvolution2dDescriptor)                                                             \
    X(cudnnSetConvolutionGroupCount)                                                               \
    X(cudnnSetConvolutionMathType)                                                                 \
    X(cudnnDestroyConvolutionDescriptor)                                                           \
    X(cudnnGetConvolutionForwardWorkspaceSize)                                                     \
    X(cudnnFindConvolutionForwardAlgorithmEx)                                                      \
    X(cudnnConvolutionForward)                                                                     \
    X(cudnnGetConvolutionBackwardDataWorkspaceSize)                                                \
    X(cudnnFindConvolutionBackwardDataAlgorithmEx)                                                 \
    X(cudnnConvolutionBackwardData)                                                                \
    X(cudnnGetConvolutionBackwardFilterWorkspaceSize)                                              \
    X(cudnnFindConvolutionBackwardFilterAlgorithmEx)                                               \
    X(cudnnConvolutionBackwardFilter)

#define FIELD(f) __typeof__(&f) f;
static struct {
    CUDNN_FUNCS(FIELD)
} dnn;
#undef FIELD

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[512];
static size_t loaded_version;
static bool allow_tf32, allow_nondeterministic;

static bool env_on(const char *name)
{
    const char *v = getenv(name);
    return v && *v && strcmp(v, "0") != 0;
}

static void load(void)
{
    allow_tf32 = env_on("TIDE_CUDNN_TF32");
    allow_nondeterministic = env_on("TIDE_CUDNN_NONDETERMINISTIC");
    void *h = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
    if (!h && TIDE_CUDNN_DIR[0]) h = dlopen(TIDE_CUDNN_DIR "/libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        const char *e = dlerror();
        snprintf(load_error, sizeof load_error,
                 "conv2d on cuda needs cuDNN 9 (libcudnn.so.9 on the library path): %s",
                 e ? e : "not found");
        return;
    }
#define LOOKUP(f)                                                                                  \
    {                                                                                              \
        void *s = dlsym(h, #f);                                                                    \
        if (!s) {                                                                                  \
            snprintf(load_error, sizeof load_error,                                                \
                     "the loaded cuDNN lacks %s (tide wants cuDNN 9)", #f);                        \
            return;                                                                                \
        }                                                                                          \
        memcpy(&dnn.f, &s, sizeof s);                                                              \
    }
    CUDNN_FUNCS(LOOKUP)
#undef LOOKUP
    size_t v = dnn.cudnnGetVersion();
    if (v < 90000 || v >= 100000) {
        snprintf(load_error, sizeof load_error,
                 "tide wants cuDNN 9, the loaded libcudnn.so.9 says version %zu", v);
        return;
    }
    loaded_version = v;
}

td_status td_cudnn_load(void)
{
    pthread_once(&load_once, load);
    if (load_error[0]) return td_error(TD_EINVAL, 0, "%s", load_error);
    return TD_OK;
}

size_t td_cudnn_version(void) { return loaded_version; }

static td_status dnn_fail(cudnnStatus_t s, const char *what)
{
    return td_error(TD_EINVAL, 0, "conv2d: cuDNN %s failed: %s", what, dnn.cudnnGetErrorString(s));
}

#define DNN_TRY(call, what)                                                                        \
    do {                                                                                           \
        cudnnStatus_t dnn_s_ = (call);                                                             \
        if (dnn_s_ != CUDNN_STATUS_SUCCESS) return dnn_fail(dnn_s_, what);                         \
    } while (0)

/* ---- handles, one per device ---------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cudnnHandle_t handles[MAX_DEVICES];

/* lock held */
static td_status handle_for(int device, cudnnHandle_t *out)
{
    if (device < 0 || device >= MAX_DEVICES)
        return td_error(TD_EINVAL, 0, "conv2d: bad CUDA device %d", device);
    if (!handles[device]) {
        td_cuda_use(device);
        cudnnStatus_t s = dnn.cudnnCreate(&handles[device]);
        if (s != CUDNN_STATUS_SUCCESS) {
            handles[device] = NULL;
            return td_error(TD_EINVAL, 0, "conv2d: could not start cuDNN on cuda:%d: %s", device,
                            dnn.cudnnGetErrorString(s));
        }
    }
    *out = handles[device];
    return TD_OK;
}

/* ---- plans ------------------------------------------------------------------------ */

enum { FWD, BWD_DATA, BWD_FILTER, NDIR };
#define KEY_LEN 18

typedef struct plan {
    struct plan *next;
    int64_t key[KEY_LEN];
    int device;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
    bool chosen[NDIR];
    int algo[NDIR];
    size_t ws[NDIR];
} plan;

static plan *plans;

/* whether algorithms that accumulate with atomics may compete: asked for
 * in the environment, and not in deterministic mode */
static bool nondeterministic_ok(void) { return allow_nondeterministic && !td_deterministic(); }

static void make_key(const td_conv_args *a, int64_t n, int device, int64_t *k)
{
    int64_t v[KEY_LEN] = {device, a->dtype, n,     a->c,      a->h,       a->w,
                          a->o,   a->kh,    a->kw, a->sh,     a->sw,      a->ph,
                          a->pw,  a->dh,    a->dw, a->groups, allow_tf32, nondeterministic_ok()};
    memcpy(k, v, sizeof v);
}

static td_status describe(plan *p, const td_conv_args *a, int64_t n)
{
    cudnnDataType_t dt = a->dtype == TD_FLOAT64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    DNN_TRY(dnn.cudnnCreateTensorDescriptor(&p->xd), "descriptor");
    DNN_TRY(dnn.cudnnCreateTensorDescriptor(&p->yd), "descriptor");
    DNN_TRY(dnn.cudnnCreateFilterDescriptor(&p->wd), "descriptor");
    DNN_TRY(dnn.cudnnCreateConvolutionDescriptor(&p->cd), "descriptor");
    DNN_TRY(dnn.cudnnSetTensor4dDescriptor(p->xd, CUDNN_TENSOR_NCHW, dt, (int)n, (int)a->c,
                                           (int)a->h, (int)a->w),
            "input descriptor");
    DNN_TRY(dnn.cudnnSetTensor4dDescriptor(p->yd, CUDNN_TENSOR_NCHW, dt, (int)n, (int)a->o,
                                           (int)a->oh, (int)a->ow),
            "output descriptor");
    DNN_TRY(dnn.cudnnSetFilter4dDescriptor(p->wd, dt, CUDNN_TENSOR_NCHW, (int)a->o,
                                           (int)(a->c / a->groups), (int)a->kh, (int)a->kw),
            "weight descriptor");
    DNN_TRY(dnn.cudnnSetConvolution2dDescriptor(p->cd, (int)a->ph, (int)a->pw, (int)a->sh,
                                                (int)a->sw, (int)a->dh, (int)a->dw,
                                                CUDNN_CROSS_CORRELATION, dt),
            "convolution descriptor");
    DNN_TRY(dnn.cudnnSetConvolutionGroupCount(p->cd, (int)a->groups), "group count");
    cudnnMathType_t math =
        a->dtype == TD_FLOAT32 && allow_tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
    DNN_TRY(dnn.cudnnSetConvolutionMathType(p->cd, math), "math type");
    return TD_OK;
}

static void plan_free(plan *p)
{
    if (p->xd) dnn.cudnnDestroyTensorDescriptor(p->xd);
    if (p->yd) dnn.cudnnDestroyTensorDescriptor(p->yd);
    if (p->wd) dnn.cudnnDestroyFilterDescriptor(p->wd);
    if (p->cd) dnn.cudnnDestroyConvolutionDescriptor(p->cd);
    free(p);
}

/* the plan of a batch slice of n images; lock held */
static td_status plan_for(const td_conv_args *a, int64_t n, int device, plan **out)
{
    int64_t key[KEY_LEN];
    make_key(a, n, device, key);
    for (plan *p = plans; p; p = p->next)
        if (memcmp(p->key, key, sizeof key) == 0) {
            *out = p;
            return TD_OK;
        }
    plan *p = calloc(1, sizeof *p);
    if (!p) return td_error(TD_ENOMEM, 0, "out of memory in conv2d");
    memcpy(p->key, key, sizeof key);
    p->device = device;
    td_status st = describe(p, a, n);
    if (st != TD_OK) {
        plan_free(p);
        return st;
    }
    p->next = plans;
    plans = p;
    *out = p;
    return TD_OK;
}

/* ---- choosing an algorithm ------------------------------------------------------------ */

/* the most workspace an algorithm search may take: a quarter of what the
 * device has free, at most 1 GiB */
static size_t workspace_cap(void)
{
    size_t free_b = 0, total = 0;
    if (cudaMemGetInfo(&free_b, &total) != cudaSuccess) {
        (void)cudaGetLastError();
        return (size_t)64 << 20;
    }
    size_t cap = free_b / 4;
    return cap < ((size_t)1 << 30) ? cap : ((size_t)1 << 30);
}

static size_t ws_size(cudnnHandle_t h, const plan *p, int dir, int algo)
{
    size_t s = 0;
    cudnnStatus_t st;
    if (dir == FWD)
        st = dnn.cudnnGetConvolutionForwardWorkspaceSize(h, p->xd, p->wd, p->cd, p->yd,
                                                         (cudnnConvolutionFwdAlgo_t)algo, &s);
    else if (dir == BWD_DATA)
        st = dnn.cudnnGetConvolutionBackwardDataWorkspaceSize(
            h, p->wd, p->yd, p->cd, p->xd, (cudnnConvolutionBwdDataAlgo_t)algo, &s);
    else
        st = dnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(
            h, p->xd, p->yd, p->cd, p->wd, (cudnnConvolutionBwdFilterAlgo_t)algo, &s);
    return st == CUDNN_STATUS_SUCCESS ? s : SIZE_MAX;
}

static const int algo_count[NDIR] = {CUDNN_CONVOLUTION_FWD_ALGO_COUNT,
                                     CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT,
                                     CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT};
/* deterministic algorithms that need no or little workspace, for when the
 * search fails */
static const int fallback_algo[NDIR] = {CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM,
                                        CUDNN_CONVOLUTION_BWD_DATA_ALGO_1,
                                        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1};

typedef struct {
    int algo;
    cudnnStatus_t status;
    size_t memory;
    cudnnDeterminism_t determinism;
} found;

/* times every algorithm on the real buffers; a, b are the inputs and out
 * the output of direction dir (forward: x, w -> y; backward data: w, gy
 * -> gx; backward filter: x, gy -> gw), out is overwritten. lock held */
static td_status choose(cudnnHandle_t h, plan *p, int dir, const void *a, const void *b, void *out)
{
    if (p->chosen[dir]) return TD_OK;
    size_t cap = workspace_cap(), need = 0;
    for (int i = 0; i < algo_count[dir]; i++) {
        size_t s = ws_size(h, p, dir, i);
        if (s != SIZE_MAX && s <= cap && s > need) need = s;
    }
    void *ws = need ? td_cuda_alloc(p->device, need) : NULL;
    while (need && !ws) { /* take what the device can give */
        need /= 2;
        ws = need ? td_cuda_alloc(p->device, need) : NULL;
    }
    found f[8];
    int cnt = 0;
    cudnnStatus_t s;
    if (dir == FWD) {
        cudnnConvolutionFwdAlgoPerf_t r[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        s = dnn.cudnnFindConvolutionForwardAlgorithmEx(h, p->xd, a, p->wd, b, p->cd, p->yd, out,
                                                       CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &cnt, r,
                                                       ws, need);
        for (int i = 0; s == CUDNN_STATUS_SUCCESS && i < cnt && i < 8; i++)
            f[i] = (found){(int)r[i].algo, r[i].status, r[i].memory, r[i].determinism};
    } else if (dir == BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        s = dnn.cudnnFindConvolutionBackwardDataAlgorithmEx(
            h, p->wd, a, p->yd, b, p->cd, p->xd, out, CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &cnt,
            r, ws, need);
        for (int i = 0; s == CUDNN_STATUS_SUCCESS && i < cnt && i < 8; i++)
            f[i] = (found){(int)r[i].algo, r[i].status, r[i].memory, r[i].determinism};
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t r[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        s = dnn.cudnnFindConvolutionBackwardFilterAlgorithmEx(
            h, p->xd, a, p->yd, b, p->cd, p->wd, out, CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &cnt,
            r, ws, need);
        for (int i = 0; s == CUDNN_STATUS_SUCCESS && i < cnt && i < 8; i++)
            f[i] = (found){(int)r[i].algo, r[i].status, r[i].memory, r[i].determinism};
    }
    if (ws) td_cuda_free(p->device, ws, need);
    if (s != CUDNN_STATUS_SUCCESS) cnt = 0;
    (void)cudaGetLastError(); /* a failed trial leaves nothing we need to see */
    int best = -1;
    size_t best_ws = 0;
    /* the results come fastest first */
    for (int i = 0; i < cnt && i < 8 && best < 0; i++) {
        if (f[i].status != CUDNN_STATUS_SUCCESS || f[i].memory > need) continue;
        if (f[i].determinism != CUDNN_DETERMINISTIC && !nondeterministic_ok()) continue;
        best = f[i].algo;
        best_ws = f[i].memory;
    }
    if (best < 0) {
        best = fallback_algo[dir];
        best_ws = ws_size(h, p, dir, best);
        if (best_ws == SIZE_MAX)
            return td_error(TD_EINVAL, 0,
                            "conv2d: cuDNN has no algorithm for this convolution (%s)",
                            dir == FWD        ? "forward"
                            : dir == BWD_DATA ? "backward data"
                                              : "backward weights");
    }
    p->algo[dir] = best;
    p->ws[dir] = best_ws;
    p->chosen[dir] = true;
    return TD_OK;
}

/* ---- running ---------------------------------------------------------------------------- */

typedef struct {
    int device;
    cudnnHandle_t h;
    int64_t step;   /* images per slice */
    int64_t xs, ys; /* elements per image of x and y */
} run_ctx;

static td_status start(const td_conv_args *a, const void *any, run_ctx *r)
{
    TD_TRY(td_cudnn_load());
    r->device = td_cuda_device_of_ptr(any);
    if (r->device < 0)
        return td_error(TD_EINVAL, 0, "conv2d: an operand is not in CUDA device memory");
    TD_TRY(td_cuda_pending_error());
    td_cuda_use(r->device);
    r->xs = a->c * a->h * a->w;
    r->ys = a->o * a->oh * a->ow;
    int64_t per = r->xs > r->ys ? r->xs : r->ys;
    if (per > INT_MAX || a->o * (a->c / a->groups) * a->kh * a->kw > INT_MAX)
        return td_error(
            TD_ESHAPE, 1,
            "conv2d: one image (%lld input, %lld output elements) is too large for cuDNN",
            (long long)r->xs, (long long)r->ys);
    r->step = INT_MAX / per;
    if (r->step > a->n) r->step = a->n;
    pthread_mutex_lock(&lock);
    td_status st = handle_for(r->device, &r->h);
    pthread_mutex_unlock(&lock);
    return st;
}

static size_t es(const td_conv_args *a) { return a->dtype == TD_FLOAT64 ? 8 : 4; }

/* cuDNN's alpha or beta, 1 or 0 (v), in a's compute type: double for
 * float64, float otherwise */
static const void *scale(const td_conv_args *a, int v)
{
    static const double d[2] = {0, 1};
    static const float f[2] = {0, 1};
    return a->dtype == TD_FLOAT64 ? (const void *)&d[v] : (const void *)&f[v];
}

/* the plan for a slice, its algorithm for dir chosen on these buffers */
static td_status ready(const td_conv_args *a, run_ctx *r, int64_t n, int dir, const void *in1,
                       const void *in2, void *out, plan **p)
{
    pthread_mutex_lock(&lock);
    td_status st = plan_for(a, n, r->device, p);
    if (st == TD_OK) st = choose(r->h, *p, dir, in1, in2, out);
    pthread_mutex_unlock(&lock);
    return st;
}

/* a workspace of plan p's size for dir; *ws NULL when none is needed */
static td_status workspace(const plan *p, int dir, void **ws)
{
    *ws = NULL;
    if (!p->ws[dir]) return TD_OK;
    *ws = td_cuda_alloc(p->device, p->ws[dir]);
    if (!*ws)
        return td_error(TD_ENOMEM, 0,
                        "cuda:%d out of memory: conv2d's cuDNN workspace of %zu bytes", p->device,
                        p->ws[dir]);
    return TD_OK;
}

static td_status forward(const td_conv_args *a, const void *x, const void *w, const void *b,
                         void *y)
{
    run_ctx r;
    TD_TRY(start(a, x, &r));
    const void *one = scale(a, 1), *zero = scale(a, 0);
    for (int64_t i = 0; i < a->n; i += r.step) {
        int64_t n = a->n - i < r.step ? a->n - i : r.step;
        const char *xi = (const char *)x + (size_t)(i * r.xs) * es(a);
        char *yi = (char *)y + (size_t)(i * r.ys) * es(a);
        plan *p = NULL;
        void *ws = NULL;
        TD_TRY(ready(a, &r, n, FWD, xi, w, yi, &p));
        TD_TRY(workspace(p, FWD, &ws));
        cudnnStatus_t s = dnn.cudnnConvolutionForward(r.h, one, p->xd, xi, p->wd, w, p->cd,
                                                      (cudnnConvolutionFwdAlgo_t)p->algo[FWD], ws,
                                                      p->ws[FWD], zero, p->yd, yi);
        if (ws) td_cuda_free(p->device, ws, p->ws[FWD]);
        if (s != CUDNN_STATUS_SUCCESS) return dnn_fail(s, "forward");
    }
    if (b) td_cuda_add_channel(a->dtype, y, b, a->n, a->o, a->oh * a->ow);
    return td_cuda_pending_error();
}

static td_status backward_data(const td_conv_args *a, const void *gy, const void *w, void *gx)
{
    run_ctx r;
    TD_TRY(start(a, gy, &r));
    const void *one = scale(a, 1), *zero = scale(a, 0);
    for (int64_t i = 0; i < a->n; i += r.step) {
        int64_t n = a->n - i < r.step ? a->n - i : r.step;
        const char *gyi = (const char *)gy + (size_t)(i * r.ys) * es(a);
        char *gxi = (char *)gx + (size_t)(i * r.xs) * es(a);
        plan *p = NULL;
        void *ws = NULL;
        TD_TRY(ready(a, &r, n, BWD_DATA, w, gyi, gxi, &p));
        TD_TRY(workspace(p, BWD_DATA, &ws));
        cudnnStatus_t s = dnn.cudnnConvolutionBackwardData(
            r.h, one, p->wd, w, p->yd, gyi, p->cd, (cudnnConvolutionBwdDataAlgo_t)p->algo[BWD_DATA],
            ws, p->ws[BWD_DATA], zero, p->xd, gxi);
        if (ws) td_cuda_free(p->device, ws, p->ws[BWD_DATA]);
        if (s != CUDNN_STATUS_SUCCESS) return dnn_fail(s, "backward data");
    }
    return td_cuda_pending_error();
}

static td_status backward_weights(const td_conv_args *a, const void *x, const void *gy, void *gw,
                                  void *gb)
{
    run_ctx r;
    TD_TRY(start(a, gy, &r));
    if (gb) td_cuda_channel_sum(a->dtype, gy, gb, a->n, a->o, a->oh * a->ow);
    if (!gw) return td_cuda_pending_error();
    const void *one = scale(a, 1), *zero = scale(a, 0);
    size_t wbytes = (size_t)(a->o * (a->c / a->groups) * a->kh * a->kw) * es(a);
    void *scratch = NULL; /* the search's output once gw holds a slice's sum */
    td_status st = TD_OK;
    for (int64_t i = 0; i < a->n && st == TD_OK; i += r.step) {
        int64_t n = a->n - i < r.step ? a->n - i : r.step;
        const char *xi = (const char *)x + (size_t)(i * r.xs) * es(a);
        const char *gyi = (const char *)gy + (size_t)(i * r.ys) * es(a);
        if (i > 0 && !scratch && !(scratch = td_cuda_alloc(r.device, wbytes))) {
            st = td_error(TD_ENOMEM, 0, "cuda:%d out of memory in conv2d backward", r.device);
            break;
        }
        plan *p = NULL;
        void *ws = NULL;
        st = ready(a, &r, n, BWD_FILTER, xi, gyi, i > 0 ? scratch : gw, &p);
        if (st == TD_OK) st = workspace(p, BWD_FILTER, &ws);
        if (st != TD_OK) break;
        cudnnStatus_t s = dnn.cudnnConvolutionBackwardFilter(
            r.h, one, p->xd, xi, p->yd, gyi, p->cd,
            (cudnnConvolutionBwdFilterAlgo_t)p->algo[BWD_FILTER], ws, p->ws[BWD_FILTER],
            i > 0 ? one : zero, p->wd, gw);
        if (ws) td_cuda_free(p->device, ws, p->ws[BWD_FILTER]);
        if (s != CUDNN_STATUS_SUCCESS) st = dnn_fail(s, "backward weights");
    }
    if (scratch) td_cuda_free(r.device, scratch, wbytes);
    return st != TD_OK ? st : td_cuda_pending_error();
}

static td_status backward(const td_conv_args *a, const void *x, const void *w, const void *gy,
                          void *gx, void *gw, void *gb)
{
    if (gx) TD_TRY(backward_data(a, gy, w, gx));
    if (gw || gb) TD_TRY(backward_weights(a, x, gy, gw, gb));
    return TD_OK;
}

/* kernels/cuda/conv_nd.c */
extern const struct td_convnd_kernels td_cuda_convnd;

const struct td_conv_kernels td_cuda_conv = {
    .forward = forward,
    .backward_data = backward_data,
    .backward_weights = backward_weights,
    .backward = backward,
    .nd = &td_cuda_convnd,
};
