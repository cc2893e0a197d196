/* The CUDA backend table, and GEMM through cuBLAS. An entry left NULL is
 * an op CUDA does not have: the runtime (and for the losses the loss
 * table) answers "<op> is not implemented on cuda yet" before reaching it. */
#include "cuda_internal.h"
#include "nn.h"

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <pthread.h>

#define MAX_DEVICES 64

/* ---- cuBLAS ---------------------------------------------------------------- */

static pthread_mutex_t handle_lock = PTHREAD_MUTEX_INITIALIZER;
static cublasHandle_t handles[MAX_DEVICES];

static td_status handle_for(int device, cublasHandle_t *out)
{
    if (device < 0 || device >= MAX_DEVICES)
        return td_error(TD_EINVAL, 0, "matmul: bad CUDA device %d", device);
    pthread_mutex_lock(&handle_lock);
    cublasStatus_t s = CUBLAS_STATUS_SUCCESS;
    if (!handles[device]) {
        td_cuda_use(device);
        s = cublasCreate(&handles[device]);
        if (s != CUBLAS_STATUS_SUCCESS) handles[device] = NULL;
    }
    *out = handles[device];
    pthread_mutex_unlock(&handle_lock);
    if (s != CUBLAS_STATUS_SUCCESS)
        return td_error(TD_EINVAL, 0, "matmul: could not start cuBLAS on cuda:%d: %s", device,
                        cublasGetStatusString(s));
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
 * operands swap places and keep their transpose flags */
td_status td_cuda_gemm(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m, int64_t n,
                       int64_t k, double alpha, const void *a, int64_t lda, int64_t stride_a,
                       const void *b, int64_t ldb, int64_t stride_b, double beta, void *c,
                       int64_t ldc, int64_t stride_c)
{
    if (dt != TD_FLOAT32 && dt != TD_FLOAT64)
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
    if (dt == TD_FLOAT32) {
        float fa = (float)alpha, fb = (float)beta;
        s = cublasSgemmStridedBatched_64(h, opb, opa, n, m, k, &fa, b, ldb, stride_b, a, lda,
                                         stride_a, &fb, c, ldc, stride_c, batch);
    } else {
        s = cublasDgemmStridedBatched_64(h, opb, opa, n, m, k, &alpha, b, ldb, stride_b, a, lda,
                                         stride_a, &beta, c, ldc, stride_c, batch);
    }
    if (s != CUBLAS_STATUS_SUCCESS)
        return td_error(TD_EINVAL, 0, "matmul: cuBLAS failed on cuda:%d: %s", device,
                        cublasGetStatusString(s));
    return TD_OK;
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
    .reduce = td_cuda_reduce,
    .softmax = td_cuda_softmax,
    .softmax_backward = td_cuda_softmax_backward,
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
    .margin_loss = &td_cuda_margin_loss,
    .ctc_loss = &td_cuda_ctc_loss,
    .nccl = &td_cuda_nccl,
};

const td_backend *td_cuda_backend(void) { return &cuda_backend; }
