/* N-d convolution on CUDA through cuDNN's Nd descriptors: conv1d (as a
 * 2-d convolution of height 1), conv3d, and the transposed ones, whose
 * forward is cuDNN's backward data. cuDNN is opened as conv.c opens it
 * (td_cudnn_load says whether it can be), with the few Nd entry points
 * this file needs looked up here. Algorithms come from cuDNN's heuristics
 * (the _v7 queries): the first that is deterministic and whose workspace
 * can be had, so the bits are the same on every run; float32 runs in full
 * float32 (CUDNN_FMA_MATH). Descriptors are built per call: these shapes
 * are not training's hot path as conv2d's are. */
#include "nn.h"

#include <cuda_runtime_api.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#ifndef TIDE_CUDNN_DIR
#define TIDE_CUDNN_DIR ""
#endif

#define MAX_DEVICES 64

td_status td_cuda_resample(const td_resample_args *a, const void *x, void *y);
td_status td_cuda_resample_backward(const td_resample_args *a, const void *gy, void *gx);

#define ND_FUNCS(X)                                                                                \
    X(cudnnGetErrorString)                                                                         \
    X(cudnnCreate)                                                                                 \
    X(cudnnCreateTensorDescriptor)                                                                 \
    X(cudnnSetTensorNdDescriptor)                                                                  \
    X(cudnnDestroyTensorDescriptor)                                                                \
    X(cudnnCreateFilterDescriptor)                                                                 \
    X(cudnnSetFilterNdDescriptor)                                                                  \
    X(cudnnDestroyFilterDescriptor)                                                                \
    X(cudnnCreateConvolutionDescriptor)                                                            \
    X(cudnnSetConvolutionNdDescriptor)                                                             \
    X(cudnnSetConvolutionGroupCount)                                                               \
    X(cudnnSetConvolutionMathType)                                                                 \
    X(cudnnDestroyConvolutionDescriptor)                                                           \
    X(cudnnGetConvolutionForwardAlgorithm_v7)                                                      \
    X(cudnnGetConvolutionBackwardDataAlgorithm_v7)                                                 \
    X(cudnnGetConvolutionBackwardFilterAlgorithm_v7)                                               \
    X(cudnnGetConvolutionForwardWorkspaceSize)                                                     \
    X(cudnnGetConvolutionBackwardDataWorkspaceSize)                                                \
    X(cudnnGetConvolutionBackwardFilterWorkspaceSize)                                              \
    X(cudnnConvolutionForward)                                                                     \
    X(cudnnConvolutionBackwardData)                                                                \
    X(cudnnConvolutionBackwardFilter)

#define FIELD(f) __typeof__(&f) f;
static struct {
    ND_FUNCS(FIELD)
} dnn;
#undef FIELD

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static cudnnHandle_t handles[MAX_DEVICES];

static void load(void)
{
    void *h = dlopen("libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
    if (!h && TIDE_CUDNN_DIR[0]) h = dlopen(TIDE_CUDNN_DIR "/libcudnn.so.9", RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(load_error, sizeof load_error, "convolution on cuda needs cuDNN 9");
        return;
    }
#define LOOKUP(f)                                                                                  \
    {                                                                                              \
        void *s = dlsym(h, #f);                                                                    \
        if (!s) {                                                                                  \
            snprintf(load_error, sizeof load_error, "the loaded cuDNN lacks %s", #f);              \
            return;                                                                                \
        }                                                                                          \
        memcpy(&dnn.f, &s, sizeof s);                                                              \
    }
    ND_FUNCS(LOOKUP)
#undef LOOKUP
}

static td_status fail(cudnnStatus_t s, const char *what)
{
    return td_error(TD_EINVAL, 0, "convolution: cuDNN %s failed: %s", what,
                    dnn.cudnnGetErrorString(s));
}

#define DNN(call, what)                                                                            \
    do {                                                                                           \
        cudnnStatus_t dnn_s_ = (call);                                                             \
        if (dnn_s_ != CUDNN_STATUS_SUCCESS) {                                                      \
            st = fail(dnn_s_, what);                                                               \
            goto done;                                                                             \
        }                                                                                          \
    } while (0)

enum { FWD, BWD_DATA, BWD_FILTER };

typedef struct {
    int device;
    cudnnHandle_t h;
    cudnnTensorDescriptor_t xd, yd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t cd;
} job;

static void job_free(job *j)
{
    if (j->xd) dnn.cudnnDestroyTensorDescriptor(j->xd);
    if (j->yd) dnn.cudnnDestroyTensorDescriptor(j->yd);
    if (j->wd) dnn.cudnnDestroyFilterDescriptor(j->wd);
    if (j->cd) dnn.cudnnDestroyConvolutionDescriptor(j->cd);
}

/* contiguous strides of dims */
static void strides_of(int nb, const int *dims, int *st)
{
    int64_t s = 1;
    for (int i = nb - 1; i >= 0; i--) {
        st[i] = (int)s;
        s *= dims[i];
    }
}

/* descriptors of a on the device holding ptr; conv1d is 2-d with height 1 */
static td_status job_start(const td_convnd_args *a, const void *ptr, job *j)
{
    memset(j, 0, sizeof *j);
    TD_TRY(td_cudnn_load());
    pthread_once(&once, load);
    if (load_error[0]) return td_error(TD_EINVAL, 0, "%s", load_error);
    j->device = td_cuda_device_of_ptr(ptr);
    if (j->device < 0 || j->device >= MAX_DEVICES)
        return td_error(TD_EINVAL, 0, "convolution: an operand is not in CUDA device memory");
    TD_TRY(td_cuda_pending_error());
    td_cuda_use(j->device);
    int64_t xs = a->c * a->in[0] * a->in[1] * a->in[2],
            ys = a->o * a->out[0] * a->out[1] * a->out[2];
    if (a->n * xs > INT_MAX || a->n * ys > INT_MAX)
        return td_error(TD_ESHAPE, 1, "convolution: the tensors are too large for cuDNN on cuda");
    for (int i = 0; i < a->nd; i++) {
        /* cuDNN pads both sides alike: an output_padding of a stride or
         * more (which a larger dilation allows) leaves a size it rejects */
        int64_t ek = a->dil[i] * (a->k[i] - 1) + 1;
        if ((a->in[i] + 2 * a->pad[i] - ek) / a->stride[i] + 1 != a->out[i])
            return td_error(TD_EINVAL, 3,
                            "conv_transpose: output_padding of stride (%lld) or more is not "
                            "supported on cuda",
                            (long long)a->stride[i]);
    }
    pthread_mutex_lock(&lock);
    td_status st = TD_OK;
    if (!handles[j->device]) {
        cudnnStatus_t s = dnn.cudnnCreate(&handles[j->device]);
        if (s != CUDNN_STATUS_SUCCESS) {
            handles[j->device] = NULL;
            st = fail(s, "start");
        }
    }
    j->h = handles[j->device];
    pthread_mutex_unlock(&lock);
    if (st != TD_OK) return st;
    int sp = a->nd == 1 ? 2 : a->nd, nb = sp + 2;
    int xdim[5], ydim[5], wdim[5], xst[5], yst[5], pad[3], str[3], dil[3];
    xdim[0] = (int)a->n;
    xdim[1] = (int)a->c;
    ydim[0] = (int)a->n;
    ydim[1] = (int)a->o;
    wdim[0] = (int)a->o;
    wdim[1] = (int)(a->c / a->groups);
    for (int i = 0; i < sp; i++) {
        /* 1-d: a leading spatial dim of 1 */
        int s = a->nd == 1 ? i - 1 : i;
        bool unit = s < 0;
        xdim[2 + i] = unit ? 1 : (int)a->in[s];
        ydim[2 + i] = unit ? 1 : (int)a->out[s];
        wdim[2 + i] = unit ? 1 : (int)a->k[s];
        pad[i] = unit ? 0 : (int)a->pad[s];
        str[i] = unit ? 1 : (int)a->stride[s];
        dil[i] = unit ? 1 : (int)a->dil[s];
    }
    strides_of(nb, xdim, xst);
    strides_of(nb, ydim, yst);
    cudnnDataType_t dt = a->dtype == TD_FLOAT64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
    DNN(dnn.cudnnCreateTensorDescriptor(&j->xd), "descriptor");
    DNN(dnn.cudnnCreateTensorDescriptor(&j->yd), "descriptor");
    DNN(dnn.cudnnCreateFilterDescriptor(&j->wd), "descriptor");
    DNN(dnn.cudnnCreateConvolutionDescriptor(&j->cd), "descriptor");
    DNN(dnn.cudnnSetTensorNdDescriptor(j->xd, dt, nb, xdim, xst), "input descriptor");
    DNN(dnn.cudnnSetTensorNdDescriptor(j->yd, dt, nb, ydim, yst), "output descriptor");
    DNN(dnn.cudnnSetFilterNdDescriptor(j->wd, dt, CUDNN_TENSOR_NCHW, nb, wdim),
        "weight descriptor");
    DNN(dnn.cudnnSetConvolutionNdDescriptor(j->cd, sp, pad, str, dil, CUDNN_CROSS_CORRELATION, dt),
        "convolution descriptor");
    DNN(dnn.cudnnSetConvolutionGroupCount(j->cd, (int)a->groups), "group count");
    DNN(dnn.cudnnSetConvolutionMathType(j->cd, CUDNN_FMA_MATH), "math type");
done:
    if (st != TD_OK) job_free(j);
    return st;
}

/* the first deterministic algorithm of cuDNN's ranking for dir, and its
 * workspace (allocated; *ws NULL when none is needed) */
static td_status pick(job *j, int dir, int *algo, void **ws, size_t *wsize)
{
    enum { MAXA = 16 };
    int cnt = 0, best = -1;
    size_t need = 0;
    cudnnStatus_t s;
    *ws = NULL;
    *wsize = 0;
    if (dir == FWD) {
        cudnnConvolutionFwdAlgoPerf_t r[MAXA];
        s = dnn.cudnnGetConvolutionForwardAlgorithm_v7(j->h, j->xd, j->wd, j->cd, j->yd, MAXA, &cnt,
                                                       r);
        for (int i = 0; s == CUDNN_STATUS_SUCCESS && i < cnt && best < 0; i++)
            if (r[i].status == CUDNN_STATUS_SUCCESS && r[i].determinism == CUDNN_DETERMINISTIC &&
                dnn.cudnnGetConvolutionForwardWorkspaceSize(
                    j->h, j->xd, j->wd, j->cd, j->yd, r[i].algo, &need) == CUDNN_STATUS_SUCCESS)
                best = (int)r[i].algo;
    } else if (dir == BWD_DATA) {
        cudnnConvolutionBwdDataAlgoPerf_t r[MAXA];
        s = dnn.cudnnGetConvolutionBackwardDataAlgorithm_v7(j->h, j->wd, j->yd, j->cd, j->xd, MAXA,
                                                            &cnt, r);
        for (int i = 0; s == CUDNN_STATUS_SUCCESS && i < cnt && best < 0; i++)
            if (r[i].status == CUDNN_STATUS_SUCCESS && r[i].determinism == CUDNN_DETERMINISTIC &&
                dnn.cudnnGetConvolutionBackwardDataWorkspaceSize(
                    j->h, j->wd, j->yd, j->cd, j->xd, r[i].algo, &need) == CUDNN_STATUS_SUCCESS)
                best = (int)r[i].algo;
    } else {
        cudnnConvolutionBwdFilterAlgoPerf_t r[MAXA];
        s = dnn.cudnnGetConvolutionBackwardFilterAlgorithm_v7(j->h, j->xd, j->yd, j->cd, j->wd,
                                                              MAXA, &cnt, r);
        for (int i = 0; s == CUDNN_STATUS_SUCCESS && i < cnt && best < 0; i++)
            if (r[i].status == CUDNN_STATUS_SUCCESS && r[i].determinism == CUDNN_DETERMINISTIC &&
                dnn.cudnnGetConvolutionBackwardFilterWorkspaceSize(
                    j->h, j->xd, j->yd, j->cd, j->wd, r[i].algo, &need) == CUDNN_STATUS_SUCCESS)
                best = (int)r[i].algo;
    }
    if (s != CUDNN_STATUS_SUCCESS) return fail(s, "algorithm query");
    if (best < 0)
        return td_error(TD_EINVAL, 0,
                        "convolution: cuDNN has no deterministic algorithm for this shape");
    if (need) {
        *ws = td_cuda_alloc(j->device, need);
        if (!*ws)
            return td_error(TD_ENOMEM, 0, "cuda:%d out of memory: a cuDNN workspace of %zu bytes",
                            j->device, need);
    }
    *algo = best;
    *wsize = need;
    return TD_OK;
}

static td_status run(int dir, const td_convnd_args *a, const void *x, const void *w, const void *y)
{
    job j;
    TD_TRY(job_start(a, dir == BWD_FILTER ? w : x, &j));
    double one64 = 1, zero64 = 0;
    float one32 = 1, zero32 = 0;
    const void *one = a->dtype == TD_FLOAT64 ? (const void *)&one64 : (const void *)&one32;
    const void *zero = a->dtype == TD_FLOAT64 ? (const void *)&zero64 : (const void *)&zero32;
    int algo = 0;
    void *ws = NULL;
    size_t wsize = 0;
    td_status st = pick(&j, dir, &algo, &ws, &wsize);
    if (st == TD_OK) {
        cudnnStatus_t s;
        if (dir == FWD)
            s = dnn.cudnnConvolutionForward(j.h, one, j.xd, x, j.wd, w, j.cd,
                                            (cudnnConvolutionFwdAlgo_t)algo, ws, wsize, zero, j.yd,
                                            (void *)y);
        else if (dir == BWD_DATA)
            s = dnn.cudnnConvolutionBackwardData(j.h, one, j.wd, w, j.yd, y, j.cd,
                                                 (cudnnConvolutionBwdDataAlgo_t)algo, ws, wsize,
                                                 zero, j.xd, (void *)x);
        else
            s = dnn.cudnnConvolutionBackwardFilter(j.h, one, j.xd, x, j.yd, y, j.cd,
                                                   (cudnnConvolutionBwdFilterAlgo_t)algo, ws, wsize,
                                                   zero, j.wd, (void *)w);
        if (s != CUDNN_STATUS_SUCCESS) st = fail(s, "convolution");
    }
    if (ws) td_cuda_free(j.device, ws, wsize);
    job_free(&j);
    return st != TD_OK ? st : td_cuda_pending_error();
}

static td_status forward(const td_convnd_args *a, const void *x, const void *w, void *y)
{
    return run(FWD, a, x, w, y);
}

static td_status backward_data(const td_convnd_args *a, const void *gy, const void *w, void *gx)
{
    return run(BWD_DATA, a, gx, w, gy);
}

static td_status backward_weights(const td_convnd_args *a, const void *x, const void *gy, void *gw)
{
    return run(BWD_FILTER, a, x, gw, gy);
}

const struct td_convnd_kernels td_cuda_convnd = {
    .forward = forward,
    .backward_data = backward_data,
    .backward_weights = backward_weights,
    .resample = td_cuda_resample,
    .resample_backward = td_cuda_resample_backward,
};
