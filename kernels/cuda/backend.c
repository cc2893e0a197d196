/* The CUDA backend table, and GEMM through cuBLAS. An entry left NULL is
 * an op CUDA does not have: the runtime (and for the losses the loss
 * table) answers "<op> is not implemented on cuda yet" before reaching it.
 *
 * cuBLAS is opened with dlopen on the first matmul, not linked: linked,
 * libcublas and the libcublasLt it needs (half a gigabyte, with static
 * initialisers) were mapped and run by every `tide`, GPU or not, for
 * about 350 ms and 220 MB of startup. The entry points keep the header's
 * prototypes (__typeof__), so a changed signature is a compile error
 * here; the names are the real symbols, not cublas_v2.h's macros
 * (cublasCreate is cublasCreate_v2). The loader tries the plain name
 * (LD_LIBRARY_PATH, the loader's cache), then the toolkit's folder CMake
 * found it in (TIDE_CUBLAS_DIR), then each entry of TIDE_CUBLAS_PATH
 * (colon-separated, each libcublas.so.13 itself or the folder that holds
 * it). libcublasLt comes with it: libcublas finds it beside itself. */
#include "cuda_internal.h"
#include "nn.h"
#include "../rnn.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TIDE_CUBLAS_DIR
#define TIDE_CUBLAS_DIR ""
#endif

#define MAX_DEVICES 64

/* ---- loading cuBLAS ---------------------------------------------------------- */

/* the soname tide was built against: cublas_api.h's major version */
#define CUBLAS_LIB_NAME "libcublas.so.13"
_Static_assert(CUBLAS_VER_MAJOR == 13, "CUBLAS_LIB_NAME names another cuBLAS than cublas_v2.h's");
#define CUBLAS_HOW_TO_FIX                                                                          \
    "install CUDA 13's cuBLAS (the toolkit, libcublas-13-0, or pip install nvidia-cublas) and "    \
    "put its lib folder on LD_LIBRARY_PATH, or set TIDE_CUBLAS_PATH to " CUBLAS_LIB_NAME           \
    " or the folder holding it"

#define CUBLAS_FUNCS(X)                                                                            \
    X(cublasGetProperty)                                                                           \
    X(cublasGetStatusString)                                                                       \
    X(cublasCreate_v2)                                                                             \
    X(cublasSgemmStridedBatched_64)                                                                \
    X(cublasDgemmStridedBatched_64)                                                                \
    X(cublasGemmStridedBatchedEx_64)

#define FIELD(f) __typeof__(&f) f;
static struct {
    CUBLAS_FUNCS(FIELD)
} blas;
#undef FIELD

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[2048];  /* why not, when not loaded */
static int loaded_version;     /* e.g. 130100, 0 when not loaded */
static char loaded_from[1024]; /* the path that opened */

static void load(void)
{
    void *h =
        td_cuda_dlopen(CUBLAS_LIB_NAME, TIDE_CUBLAS_DIR, "TIDE_CUBLAS_PATH", CUBLAS_HOW_TO_FIX,
                       load_error, sizeof load_error, loaded_from, sizeof loaded_from);
    if (!h) return;
#define LOOKUP(f)                                                                                  \
    {                                                                                              \
        void *s = dlsym(h, #f);                                                                    \
        if (!s) {                                                                                  \
            snprintf(load_error, sizeof load_error, "%s lacks %s", loaded_from, #f);               \
            return;                                                                                \
        }                                                                                          \
        memcpy(&blas.f, &s, sizeof s);                                                             \
    }
    CUBLAS_FUNCS(LOOKUP)
#undef LOOKUP
    int major = 0, minor = 0, patch = 0;
    if (blas.cublasGetProperty(MAJOR_VERSION, &major) != CUBLAS_STATUS_SUCCESS ||
        blas.cublasGetProperty(MINOR_VERSION, &minor) != CUBLAS_STATUS_SUCCESS ||
        blas.cublasGetProperty(PATCH_LEVEL, &patch) != CUBLAS_STATUS_SUCCESS ||
        major != CUBLAS_VER_MAJOR) {
        snprintf(load_error, sizeof load_error, "%s says version %d.%d.%d", loaded_from, major,
                 minor, patch);
        return;
    }
    loaded_version = major * 10000 + minor * 100 + patch;
}

td_status td_cublas_load(void)
{
    pthread_once(&load_once, load);
    if (!loaded_version)
        return td_error(TD_EINVAL, 0, "matmul on cuda needs cuBLAS 13 (" CUBLAS_LIB_NAME "): %s",
                        load_error);
    return TD_OK;
}

int td_cublas_version(void) { return loaded_version; }

/* ---- handles, one per device ------------------------------------------------- */

static pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;
static cublasHandle_t handles[MAX_DEVICES];

static td_status handle_for(int device, cublasHandle_t *out)
{
    if (device < 0 || device >= MAX_DEVICES)
        return td_error(TD_EINVAL, 0, "matmul: bad CUDA device %d", device);
    TD_TRY(td_cublas_load());
    pthread_mutex_lock(&handle_lock);
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
    if (!handles[device]) {
        td_cuda_use(device);
        s = blas.cublasCreate_v2(&handles[device]);
        if (s != CUBLAS_STATUS_SUCCESS) handles[device] = NULL;
    }
    *out = handles[device];
    pthread_mutex_unlock(&handle_lock);
    if (s != CUBLAS_STATUS_SUCCESS)
        return td_error(TD_EINVAL, 0, "matmul: could not start cuBLAS on cuda:%d: %s", device,
                        blas.cublasGetStatusString(s));
    return TD_OK;
}

/* which device a pointer lives on: GEMM receives pointers, not tensors */
static td_status device_of_ptr(const void *p, int *device)
{
    struct cudaPointerAttributes a;
    cudaError_t e = cudaPointerGetAttributes(&a, p);
    if (e != cudaSuccess || a.type != cudaMemoryTypeDevice) {
        (void)cudaGetLastError();
        return td_error(TD_EINVAL, 0, "matmul: an operand is not in CUDA device memory");
    }
    *device = a.device;
    return TD_OK;
}

/* row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: the
 * operands swap places and keep their transpose flags. bfloat16 and
 * float16 go through cublasGemmStridedBatchedEx with float32 compute
 * (CUBLAS_COMPUTE_32F: products summed in float32, C rounded once) */
td_status td_cuda_gemm(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m, int64_t n,
                       int64_t k, double alpha, const void *a, int64_t lda, int64_t stride_a,
                       const void *b, int64_t ldb, int64_t stride_b, double beta, void *c,
                       int64_t ldc, int64_t stride_c)
{
    if (dt != TD_FLOAT32 && dt != TD_FLOAT64 && !td_dtype_is_lowp(dt))
        return td_error(TD_EDTYPE, 1, "matmul of %s tensors is not implemented on cuda yet",
                        td_dtype_name(dt));
    if (batch == 0 || m == 0 || n == 0) return TD_OK;
    int device = 0;
    TD_TRY(device_of_ptr(c, &device));
    TD_TRY(td_cuda_pending_error());
    td_cuda_use(device);
    size_t es = td_dtype_size(dt);
    if (k == 0 && beta == 0) { /* nothing to multiply: C is zero */
        for (int64_t i = 0; i < batch; i++) {
            cudaError_t e = cudaMemset2D((char *)c + i * stride_c * (int64_t)es, (size_t)ldc * es,
                                         0, (size_t)n * es, (size_t)m);
            if (e != cudaSuccess) {
                (void)cudaGetLastError();
                return td_error(TD_EINVAL, 0, "matmul: %s", cudaGetErrorString(e));
            }
        }
        return TD_OK;
    }
    cublasHandle_t h = NULL;
    TD_TRY(handle_for(device, &h));
    cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasStatus_t s;
    if (td_dtype_is_lowp(dt)) {
        float fa = (float)alpha, fb = (float)beta;
        cudaDataType t = dt == TD_BFLOAT16 ? CUDA_R_16BF : CUDA_R_16F;
        s = blas.cublasGemmStridedBatchedEx_64(h, opb, opa, n, m, k, &fa, b, t, ldb, stride_b, a, t,
                                               lda, stride_a, &fb, c, t, ldc, stride_c, batch,
                                               CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
    } else if (dt == TD_FLOAT32) {
        float fa = (float)alpha, fb = (float)beta;
        s = blas.cublasSgemmStridedBatched_64(h, opb, opa, n, m, k, &fa, b, ldb, stride_b, a, lda,
                                              stride_a, &fb, c, ldc, stride_c, batch);
    } else {
        s = blas.cublasDgemmStridedBatched_64(h, opb, opa, n, m, k, &alpha, b, ldb, stride_b, a,
                                              lda, stride_a, &beta, c, ldc, stride_c, batch);
    }
    if (s != CUBLAS_STATUS_SUCCESS)
        return td_error(TD_EINVAL, 0, "matmul: cuBLAS failed on cuda:%d: %s", device,
                        blas.cublasGetStatusString(s));
    return TD_OK;
}

static const char *td_cuda_gemm_path(td_dtype dt)
{
    switch (dt) {
    case TD_FLOAT32: return "cublas sgemm";
    case TD_FLOAT64: return "cublas dgemm";
    case TD_BFLOAT16: return "cublas gemmex bf16, CUBLAS_COMPUTE_32F";
    case TD_FLOAT16: return "cublas gemmex fp16, CUBLAS_COMPUTE_32F";
    default: return "none";
    }
}

/* ---- the table --------------------------------------------------------------- */

static const td_backend cuda_backend = {
    .name = "cuda",
    .device_type = TD_CUDA,
    .alloc = td_cuda_alloc,
    .free = td_cuda_free,
    .upload = td_cuda_upload,
    .download = td_cuda_download,
    .host_alloc = td_cuda_host_alloc,
    .host_free = td_cuda_host_free,
    .upload_async = td_cuda_upload_async,
    .stream_sync = td_cuda_stream_sync,
    .empty_cache = td_cuda_release_cached,
    .device_count = td_cuda_count,
    .synchronize = td_cuda_sync_all,
    .memory_stats = td_cuda_stats,
    .take_allocated = td_cuda_take_allocated,
    .copy = td_cuda_copy,
    .fill = td_cuda_fill,
    .unary = td_cuda_unary,
    .unary_grad = td_cuda_unary_grad,
    .binary = td_cuda_binary,
    .clamp = td_cuda_clamp,
    .where = td_cuda_where,
    .nan_to_num = td_cuda_nan_to_num,
    .reduce = td_cuda_reduce,
    .softmax = td_cuda_softmax,
    .softmax_backward = td_cuda_softmax_backward,
    .scan = td_cuda_scan,
    .cumprod_backward = td_cuda_cumprod_backward,
    .gemm = td_cuda_gemm,
    .conv = &td_cuda_conv,
    .layers = &td_cuda_layers,
    .softmax_loss = &td_cuda_softmax_loss,
    .index_select = td_cuda_index_select,
    .index_add = td_cuda_index_add,
    .gather = td_cuda_gather,
    .scatter = td_cuda_scatter,
    .binary_loss = &td_cuda_binary_loss,
    .regression_loss = &td_cuda_regression_loss,
    .optim = &td_cuda_optim,
    .reorder = &td_cuda_reorder,
    .margin_loss = &td_cuda_margin_loss,
    .ctc_loss = &td_cuda_ctc_loss,
    .nccl = &td_cuda_nccl,
    .attention = &td_cuda_attention,
    .rnn = &td_cuda_rnn_cudnn,
    .gemm_path = td_cuda_gemm_path,
};

const td_backend *td_cuda_backend(void) { return &cuda_backend; }
