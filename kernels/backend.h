/* The backend table: one per device. The runtime's front-ends check every
 * argument once, allocate the outputs, then call these; kernels trust what
 * they are given and know nothing of Lua or autograd.
 *
 * Conventions: `out` tensors are freshly allocated and contiguous unless
 * said otherwise; inputs may be any strided view (broadcast inputs come as
 * views with stride 0) and have out's shape where it says "same shape".
 */
#ifndef TIDE_KERNELS_BACKEND_H
#define TIDE_KERNELS_BACKEND_H

#include "tide/core.h"
#include "loss_binary.h"
#include "loss_ctc.h"
#include "loss_margin.h"
#include "loss_regression.h"
#include "loss_softmax.h"
#include "nn_conv.h"
#include "attention.h"
#include "nn_layers.h"
#include "nn_optim.h"
#include "nccl.h"
#include "reorder.h"

struct td_backend {
    const char *name;
    int device_type; /* td_device_type: TD_CPU (0) or TD_CUDA */
    /* device memory of device `device` (an index among this backend's
     * devices, 0 on the CPU); alloc returns NULL when it is exhausted */
    void *(*alloc)(int device, size_t nbytes);
    void (*free)(int device, void *p, size_t nbytes);
    /* devices other than the CPU: bytes to (upload) and from (download)
     * the host, both sides contiguous; and giving cached blocks back */
    td_status (*upload)(int device, void *dst, const void *src, size_t nbytes);
    td_status (*download)(int device, void *dst, const void *src, size_t nbytes);
    void (*empty_cache)(void);
    /* devices other than the CPU (NULL on the CPU), what runtime/device.c
     * asks: the devices usable here, asked once and never failing (0 on a
     * machine without a driver or GPU, *why, when not NULL, then saying
     * why); a wait for every device's queued work, reporting a failed
     * launch; the memory of one device (an error for a device out of
     * range); and the bytes allocated on every device since the last call */
    int (*device_count)(const char **why);
    td_status (*synchronize)(void);
    td_status (*memory_stats)(int device, td_cuda_memory_stats *out);
    int64_t (*take_allocated)(void);
    /* optional (NULL on the CPU): page-locked host memory (NULL when none
     * can be had), an upload on the backend's stream that returns before
     * the copy is done (src must stay unchanged until stream_sync), and a
     * wait for that stream; the DataLoader's pinned batches use them */
    void *(*host_alloc)(size_t nbytes);
    void (*host_free)(void *p);
    td_status (*upload_async)(int device, void *dst, const void *src, size_t nbytes);
    td_status (*stream_sync)(int device);

    /* dst = src, same shape, any strides and dtypes on both sides */
    void (*copy)(td_tensor *dst, const td_tensor *src);
    /* every element of dst (any strides) = value */
    void (*fill)(td_tensor *dst, double value);

    /* out = op(x), same shape and float dtype; p holds the op's parameters
     * (the op table's, in its order; NULL for none: zeros) */
    void (*unary)(td_unary_op op, td_tensor *out, const td_tensor *x, const double *p);
    /* gx = gy * op'(x), with y = op(x) given for ops whose derivative uses it */
    void (*unary_grad)(td_unary_op op, td_tensor *gx, const td_tensor *x, const td_tensor *y,
                       const td_tensor *gy, const double *p);
    /* out = a op b; a, b same shape and dtype; out has that dtype, or
     * uint8 for comparisons */
    void (*binary)(td_binary_op op, td_tensor *out, const td_tensor *a, const td_tensor *b);
    void (*clamp)(td_tensor *out, const td_tensor *x, double lo, double hi);
    /* out = cond ? a : b; cond uint8 */
    void (*where)(td_tensor *out, const td_tensor *cond, const td_tensor *a, const td_tensor *b);
    /* out = x with NaN, +inf and -inf replaced; float dtypes, same shape */
    void (*nan_to_num)(td_tensor *out, const td_tensor *x, double nan, double posinf,
                       double neginf);

    /* x contiguous viewed as (outer, n, inner), reduced over n into out
     * (outer, inner). Sums are pairwise in a fixed order, so the bits do not
     * depend on the thread count. idx (int64) receives arg positions for
     * MAX/MIN/ARGMAX/ARGMIN and may be NULL. */
    void (*reduce)(td_reduce_op op, td_tensor *out, td_tensor *idx, const td_tensor *x,
                   int64_t outer, int64_t n, int64_t inner);
    /* softmax or log_softmax of contiguous x over the middle of
     * (outer, n, inner), stable for any magnitude */
    void (*softmax)(td_tensor *out, const td_tensor *x, int64_t outer, int64_t n, int64_t inner,
                    bool log);
    /* gx from y = softmax(x) (or log_softmax) and gy, all contiguous */
    void (*softmax_backward)(td_tensor *gx, const td_tensor *y, const td_tensor *gy, int64_t outer,
                             int64_t n, int64_t inner, bool log);
    /* inclusive scan (TD_SUM or TD_PROD) of contiguous x along the middle of
     * (outer, n, inner) into out (same shape, x's dtype), from the end when
     * reverse. Each line runs in order, floats accumulating in double, so
     * the bits depend on neither the thread count nor the device. */
    void (*scan)(td_reduce_op op, td_tensor *out, const td_tensor *x, int64_t outer, int64_t n,
                 int64_t inner, bool reverse);
    /* gx of out = cumprod(x) from gy, all contiguous, exact where x has
     * zeros (PyTorch's first-zero rule) */
    void (*cumprod_backward)(td_tensor *gx, const td_tensor *x, const td_tensor *out,
                             const td_tensor *gy, int64_t outer, int64_t n, int64_t inner);

    /* C[b] = alpha op(A[b]) op(B[b]) + beta C[b], row-major, for b < batch.
     * float32, float64 or int64; lda etc. are row strides. */
    td_status (*gemm)(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      double alpha, const void *a, int64_t lda, int64_t stride_a, const void *b,
                      int64_t ldb, int64_t stride_b, double beta, void *c, int64_t ldc,
                      int64_t stride_c);

    /* indexing; index is int64 contiguous and already range-checked */
    void (*index_select)(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index);
    /* out[..., index[i], ...] += src[..., i, ...] along dim; out contiguous, in place */
    void (*index_add)(td_tensor *out, int dim, const td_tensor *index, const td_tensor *src);
    void (*gather)(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index);
    /* out contiguous, in place: out[idx along dim] = (or +=) src */
    void (*scatter)(td_tensor *out, int dim, const td_tensor *index, const td_tensor *src,
                    bool accumulate);

    /* losses, one table per family (kernels/loss_*.h); NULL where a
     * backend has none yet (the binding refuses those ops on its tensors) */
    const struct td_softmax_loss_kernels *softmax_loss;
    const struct td_binary_loss_kernels *binary_loss;
    const struct td_regression_loss_kernels *regression_loss;
    const struct td_margin_loss_kernels *margin_loss;
    const struct td_ctc_loss_kernels *ctc_loss;

    /* layers and optimizers (kernels/nn_*.h) */
    const struct td_conv_kernels *conv;
    const struct td_layers_kernels *layers;
    const struct td_optim_kernels *optim;
    /* sort, topk, flip, roll, tril, triu (kernels/reorder.h) */
    const struct td_reorder_kernels *reorder;

    /* collectives across processes (kernels/nccl.h); NULL on the CPU,
     * whose tensors go through MPI in the runtime */
    const struct td_nccl_kernels *nccl;
    /* recurrent layers' per-step kernels (kernels/rnn.h) */
    const struct td_rnn_kernels *rnn;
    /* fused scaled dot-product attention (kernels/attention.h) */
    const struct td_attention_kernels *attention;
    /* how gemm multiplies dt on this machine, in words (tide.backend_info) */
    const char *(*gemm_path)(td_dtype dt);
};

/* The CUDA backend's table (kernels/cuda/backend.c): the runtime's one way
 * to CUDA. A build without CUDA has runtime/device.c's, which returns NULL. */
const td_backend *td_cuda_backend(void);

#endif
