/* Kernels of the recurrent family: one table per backend.
 *
 * The runtime (runtime/rnn.c) drives the time loop with the backend's
 * gemm; these are the per-step pointwise parts. Rows are one batch
 * element each; only the first n rows (the sequences still running at
 * this step, sorted longest first) are touched. Every array is
 * contiguous, row-major, of the step's dtype (float32 or float64):
 *   gi (n, G h)  x W_ih^T without bias        gh (n, G h)  h_prev W_hh^T without bias
 *   b_ih, b_hh (G h) or NULL                  h_prev (n, h)  c_prev, c (n, h), LSTM only
 *   saved (n, S h): what backward needs       h (n, h): the new state (LSTM: o tanh(c),
 *                                             before any projection)
 * with, per mode, G and S: RNN 1 and 0 (backward reads h), LSTM 4 and 4
 * (i, f, g, o activated), GRU 3 and 4 (r, z, n activated, and
 * W_hn h_prev + b_hn). Gate order is PyTorch's.
 */
#ifndef TIDE_KERNELS_RNN_H
#define TIDE_KERNELS_RNN_H

#include "tide/core.h"

typedef enum { TD_RNN_TANH, TD_RNN_RELU, TD_RNN_LSTM, TD_RNN_GRU } td_rnn_mode;

typedef struct {
    td_rnn_mode mode;
    td_dtype dtype;
    int64_t n, h;
    const void *gi, *gh, *b_ih, *b_hh, *h_prev, *c_prev;
    void *saved, *h_out, *c_out;
} td_rnn_step;

/* backward of one step: dh (n, h), the gradient reaching the new state
 * (LSTM: reaching o tanh(c)), dc (n, h) the one reaching c, replaced by
 * the one reaching c_prev; dgi, dgh (n, G h) receive the gradients of the
 * pre-activation gates through x W_ih^T + b_ih and h_prev W_hh^T + b_hh
 * (equal but for GRU's n gate); dh_prev (GRU only, may alias dh) receives
 * the part of h_prev's gradient that does not go through W_hh */
typedef struct {
    td_rnn_mode mode;
    td_dtype dtype;
    int64_t n, h;
    const void *saved, *h_out, *h_prev, *c_prev, *c_out;
    const void *dh;
    void *dc, *dgi, *dgh, *dh_prev;
} td_rnn_step_grad;

/* The whole-layer path: one call runs one layer in one direction over
 * every step in a library's RNN primitive (oneDNN on the CPU, cuDNN on
 * CUDA), under the runtime's same call and autograd node as its own loop.
 * Every array is contiguous, on the backend's device, of dtype, in
 * PyTorch's layouts and gate orders (the hooks reorder):
 *   x (T, B, I), or packed (rows, I) with batch_sizes (host memory, T
 *   non-increasing counts, longest first); y likewise (T, B, P) or (rows, P)
 *   h0, h_n (B, P); c0, c_n (B, H), LSTM only, else NULL
 *   w_ih (G H, I), w_hh (G H, P), b_ih, b_hh (G H) or both NULL,
 *   w_hr (P, H) or NULL (LSTM only; P = H without it)
 * ws (ws_size bytes, from layer_plan) is what a training forward leaves
 * for backward, kept by the runtime on the autograd node; unused in
 * inference (training false). Backward reads the forward's inputs and
 * outputs (y, h_n, c_n: the runtime keeps copies) and ws; it writes dx,
 * dh0 and dc0 (LSTM) always, and each weight's gradient whose pointer is
 * not NULL (both biases' or neither), overwriting them. */
typedef struct {
    td_rnn_mode mode;
    td_dtype dtype;
    int64_t T, B, I, H, P, rows;
    const int64_t *batch_sizes; /* NULL when x is (T, B, I) */
    bool reverse, training, has_bias, has_proj;
    const void *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh, *w_hr;
    void *y, *h_n, *c_n;
    void *ws;
    size_t ws_size;
    const void *dy, *dh_n, *dc_n;
    void *dx, *dh0, *dc0, *dw_ih, *dw_hh, *db_ih, *db_hh, *dw_hr;
} td_rnn_layer_desc;

/* layer_plan's answer: whether the whole-layer path takes a call */
typedef enum {
    TD_RNN_LAYER_NO,     /* not supported: the runtime runs its loop */
    TD_RNN_LAYER_SLOWER, /* supported, measured slower than the loop: taken only when asked for */
    TD_RNN_LAYER_YES     /* supported and the default */
} td_rnn_layer_fit;

struct td_rnn_kernels {
    void (*step)(const td_rnn_step *s);
    void (*step_backward)(const td_rnn_step_grad *s);
    /* y = a x + b y over n elements (y is not read when b is 0) */
    void (*axpby)(td_dtype dt, int64_t n, double a, const void *x, double b, void *y);
    /* The whole-layer path, NULL where a backend has none. layer_plan
     * reads d's sizes, dtype, mode, flags and batch_sizes, and x for its
     * device (no other pointer is set yet); it says whether the path
     * takes the call and, for training, the bytes of ws. An error is a
     * failure of the library, not a "no". */
    td_status (*layer_plan)(const td_rnn_layer_desc *d, td_rnn_layer_fit *fit, size_t *ws_size);
    td_status (*layer_forward)(const td_rnn_layer_desc *d);
    td_status (*layer_backward)(const td_rnn_layer_desc *d);
};

/* the tables (kernels/cpu/rnn_step.c, kernels/cuda/rnn.cu: the step
 * kernels; kernels/cpu/rnn_dnnl.c, kernels/cuda/rnn_cudnn.c: the same
 * with the whole-layer hooks, which the backends' tables point to) */
extern const struct td_rnn_kernels td_cpu_rnn;
extern const struct td_rnn_kernels td_cpu_rnn_dnnl;
#ifdef __cplusplus
extern "C" const struct td_rnn_kernels td_cuda_rnn;
extern "C" const struct td_rnn_kernels td_cuda_rnn_cudnn;
#else
extern const struct td_rnn_kernels td_cuda_rnn;
extern const struct td_rnn_kernels td_cuda_rnn_cudnn;
#endif

#endif
