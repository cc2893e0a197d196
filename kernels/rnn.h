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

struct td_rnn_kernels {
    void (*step)(const td_rnn_step *s);
    void (*step_backward)(const td_rnn_step_grad *s);
    /* y = a x + b y over n elements (y is not read when b is 0) */
    void (*axpby)(td_dtype dt, int64_t n, double a, const void *x, double b, void *y);
};

/* the tables (kernels/cpu/rnn_step.c, kernels/cuda/rnn.cu) */
extern const struct td_rnn_kernels td_cpu_rnn;
#ifdef __cplusplus
extern "C" const struct td_rnn_kernels td_cuda_rnn;
#else
extern const struct td_rnn_kernels td_cuda_rnn;
#endif

#endif
