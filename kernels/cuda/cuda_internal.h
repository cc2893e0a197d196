/* Shared by the CUDA backend's files: the allocator and host helpers
 * (alloc.c, backend.c, C) and the kernels (*.cu, C++ with C linkage). */
#ifndef TIDE_KERNELS_CUDA_INTERNAL_H
#define TIDE_KERNELS_CUDA_INTERNAL_H

#ifdef __cplusplus
extern "C" {
#endif
#include "../backend.h"
#ifdef __cplusplus
}
#endif

#define TD_TRY(expr)                                                                               \
    do {                                                                                           \
        td_status td_try_st_ = (expr);                                                             \
        if (td_try_st_ != TD_OK) return td_try_st_;                                                \
    } while (0)

#ifdef __cplusplus
extern "C" {
#endif

/* Devices, for the table's device entries (alloc.c). Every one answers
 * on a machine without a driver or GPU: the count is 0 and `why` says
 * what cudart reported, so `tide.cuda.is_available()` is false there and
 * moving a tensor to "cuda" is an error, never a crash. */
/* devices usable here (asked once); *why, when not NULL, gets cudart's
 * reason for 0 */
int td_cuda_count(const char **why);
td_status td_cuda_sync_all(void);
/* cached blocks of every device back to the driver */
void td_cuda_release_cached(void);
td_status td_cuda_stats(int device, td_cuda_memory_stats *out);
int64_t td_cuda_take_allocated(void);

/* make `device` current on this thread (cheap when it already is) */
void td_cuda_use(int device);
/* record a failed launch or call; the next upload, download or
 * synchronize reports it (the void kernels of the table cannot) */
void td_cuda_note_error(int err, const char *where);
td_status td_cuda_pending_error(void);

/* allocator (alloc.c) */
void *td_cuda_alloc(int device, size_t nbytes);
void td_cuda_free(int device, void *p, size_t nbytes);
td_status td_cuda_upload(int device, void *dst, const void *src, size_t nbytes);
td_status td_cuda_download(int device, void *dst, const void *src, size_t nbytes);
void *td_cuda_host_alloc(size_t nbytes);
void td_cuda_host_free(void *p);
td_status td_cuda_upload_async(int device, void *dst, const void *src, size_t nbytes);
td_status td_cuda_stream_sync(int device);

/* kernels (elementwise.cu, reduce.cu); tensors are on the device of `out` */
void td_cuda_copy(td_tensor *dst, const td_tensor *src);
void td_cuda_fill(td_tensor *dst, double value);
void td_cuda_unary(td_unary_op op, td_tensor *out, const td_tensor *x, const double *p);
void td_cuda_unary_grad(td_unary_op op, td_tensor *gx, const td_tensor *x, const td_tensor *y,
                        const td_tensor *gy, const double *p);
void td_cuda_binary(td_binary_op op, td_tensor *out, const td_tensor *a, const td_tensor *b);
void td_cuda_clamp(td_tensor *out, const td_tensor *x, double lo, double hi);
void td_cuda_where(td_tensor *out, const td_tensor *cond, const td_tensor *a, const td_tensor *b);
void td_cuda_nan_to_num(td_tensor *out, const td_tensor *x, double nan, double posinf,
                        double neginf);
void td_cuda_reduce(td_reduce_op op, td_tensor *out, td_tensor *idx, const td_tensor *x,
                    int64_t outer, int64_t n, int64_t inner);
void td_cuda_softmax(td_tensor *out, const td_tensor *x, int64_t outer, int64_t n, int64_t inner,
                     bool log);
void td_cuda_softmax_backward(td_tensor *gx, const td_tensor *y, const td_tensor *gy, int64_t outer,
                              int64_t n, int64_t inner, bool log);
void td_cuda_scan(td_reduce_op op, td_tensor *out, const td_tensor *x, int64_t outer, int64_t n,
                  int64_t inner, bool reverse);
void td_cuda_cumprod_backward(td_tensor *gx, const td_tensor *x, const td_tensor *out,
                              const td_tensor *gy, int64_t outer, int64_t n, int64_t inner);

/* losses, index ops, layers and optimizers (loss_*.cu, index.cu, nn_*.cu) */
extern const struct td_softmax_loss_kernels td_cuda_softmax_loss;
extern const struct td_binary_loss_kernels td_cuda_binary_loss;
extern const struct td_regression_loss_kernels td_cuda_regression_loss;
extern const struct td_margin_loss_kernels td_cuda_margin_loss;
extern const struct td_reorder_kernels td_cuda_reorder; /* reorder.cu */
extern const struct td_ctc_loss_kernels td_cuda_ctc_loss;
extern const struct td_attention_kernels td_cuda_attention; /* attention.cu */
extern const struct td_optim_kernels td_cuda_optim;
/* NCCL, opened with dlopen on first use (nccl.c) */
extern const struct td_nccl_kernels td_cuda_nccl;
void td_cuda_index_select(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index);
void td_cuda_index_add(td_tensor *out, int dim, const td_tensor *index, const td_tensor *src);
void td_cuda_gather(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index);
void td_cuda_scatter(td_tensor *out, int dim, const td_tensor *index, const td_tensor *src,
                     bool accumulate);

/* cuBLAS (backend.c), loaded on first use: TD_OK when libcublas.so.13
 * and every entry tide calls were found, else the error says where it
 * looked and how to fix it. Needs no GPU: tests call it on the build
 * machine. The version is e.g. 130100 (13.1.0), 0 before a load. */
td_status td_cublas_load(void);
int td_cublas_version(void);
td_status td_cuda_gemm(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m, int64_t n,
                       int64_t k, double alpha, const void *a, int64_t lda, int64_t stride_a,
                       const void *b, int64_t ldb, int64_t stride_b, double beta, void *c,
                       int64_t ldc, int64_t stride_c);

#ifdef __cplusplus
}
#endif

/* dlopen of a CUDA library that may be missing (kernels/cuda/dl_open.c):
 * its plain name (LD_LIBRARY_PATH, the loader's cache), then dir/name when
 * dir is not empty, then each entry of the environment variable env (the
 * library itself or its folder, colon-separated). NULL when none opens,
 * with why (why_n bytes) listing each try and then fix; else path (may be
 * NULL) holds what opened and why is empty. */
void *td_cuda_dlopen(const char *name, const char *dir, const char *env, const char *fix, char *why,
                     size_t why_n, char *path, size_t path_n);

#endif
