/* The CPU backend: its table, and the kernels each op-family file exports
 * to backend.c. Nothing here knows of Lua or autograd. */
#ifndef TIDE_KERNELS_CPU_H
#define TIDE_KERNELS_CPU_H

#include "backend.h"

const td_backend *td_cpu_backend(void);
/* give the allocator's cached large blocks back to the system */
void td_cpu_empty_cache(void);

void *td_cpu_alloc(size_t nbytes);
void td_cpu_free(void *p, size_t nbytes);
/* td_cpu_free for a block whose size will not be asked for again (a
 * buffer that grows): straight back to the system, not into the cache */
void td_cpu_release(void *p, size_t nbytes);

void td_cpu_copy(td_tensor *dst, const td_tensor *src);
void td_cpu_fill(td_tensor *dst, double value);

void td_cpu_unary(td_unary_op op, td_tensor *out, const td_tensor *x, const double *p);
void td_cpu_unary_grad(td_unary_op op, td_tensor *gx, const td_tensor *x, const td_tensor *y,
                       const td_tensor *gy, const double *p);
void td_cpu_binary(td_binary_op op, td_tensor *out, const td_tensor *a, const td_tensor *b);
void td_cpu_clamp(td_tensor *out, const td_tensor *x, double lo, double hi);
void td_cpu_where(td_tensor *out, const td_tensor *cond, const td_tensor *a, const td_tensor *b);
void td_cpu_nan_to_num(td_tensor *out, const td_tensor *x, double nan, double posinf,
                       double neginf);

void td_cpu_reduce(td_reduce_op op, td_tensor *out, td_tensor *idx, const td_tensor *x,
                   int64_t outer, int64_t n, int64_t inner);
void td_cpu_softmax(td_tensor *out, const td_tensor *x, int64_t outer, int64_t n, int64_t inner,
                    bool log);
void td_cpu_softmax_backward(td_tensor *gx, const td_tensor *y, const td_tensor *gy, int64_t outer,
                             int64_t n, int64_t inner, bool log);
void td_cpu_scan(td_reduce_op op, td_tensor *out, const td_tensor *x, int64_t outer, int64_t n,
                 int64_t inner, bool reverse);
void td_cpu_cumprod_backward(td_tensor *gx, const td_tensor *x, const td_tensor *out,
                             const td_tensor *gy, int64_t outer, int64_t n, int64_t inner);

td_status td_cpu_gemm(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      double alpha, const void *a, int64_t lda, int64_t stride_a, const void *b,
                      int64_t ldb, int64_t stride_b, double beta, void *c, int64_t ldc,
                      int64_t stride_c);

void td_cpu_index_select(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index);
void td_cpu_index_add(td_tensor *out, int dim, const td_tensor *index, const td_tensor *src);
void td_cpu_gather(td_tensor *out, const td_tensor *x, int dim, const td_tensor *index);
void td_cpu_scatter(td_tensor *out, int dim, const td_tensor *index, const td_tensor *src,
                    bool accumulate);

/* the loss kernel tables, one per family (loss_*.c) */
extern const struct td_softmax_loss_kernels td_cpu_softmax_loss;
extern const struct td_binary_loss_kernels td_cpu_binary_loss;
extern const struct td_regression_loss_kernels td_cpu_regression_loss;
extern const struct td_margin_loss_kernels td_cpu_margin_loss;
extern const struct td_ctc_loss_kernels td_cpu_ctc_loss;

/* layers and optimizers (nn_*.c) */
extern const struct td_conv_kernels td_cpu_conv;
extern const struct td_layers_kernels td_cpu_layers;
extern const struct td_optim_kernels td_cpu_optim;
/* sort, flip, roll, triangles (reorder.c) */
extern const struct td_reorder_kernels td_cpu_reorder;
/* fused scaled dot-product attention (attention.c) */
extern const struct td_attention_kernels td_cpu_attention;

/* 2-d pooling on channels-last (N, H, W, C) data (nn_pool_nhwc.c): the
 * layers table's pool2d and pool2d_backward when a->channels_last */
void td_cpu_pool2d_nhwc(const td_pool2d_args *a, const void *x, void *y, int64_t *idx);
void td_cpu_pool2d_nhwc_backward(const td_pool2d_args *a, const void *gy, const int64_t *idx,
                                 void *gx);

#endif
