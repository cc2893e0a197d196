/* rnn: one layer, one direction of a recurrent network (RNN, LSTM, GRU),
 * the piece tide.nn's RNN modules stack. */
#ifndef TIDE_RNN_H
#define TIDE_RNN_H

#include "tide/tide.h"

typedef enum { TD_RNN_KIND_TANH, TD_RNN_KIND_RELU, TD_RNN_KIND_LSTM, TD_RNN_KIND_GRU } td_rnn_kind;

/* One layer's inputs. G is 1 (RNN), 4 (LSTM: i, f, g, o) or 3 (GRU: r, z,
 * n); H the hidden size; P the state size (H, or the projection size of
 * an LSTM with w_hr). x is (T, B, I), or packed (rows, I) with
 * batch_sizes: T non-increasing counts summing to rows, the sequences
 * still running at each step, longest first (PyTorch's PackedSequence).
 *   h0 (B, P), c0 (B, H) LSTM only, w_ih (G H, I), w_hh (G H, P),
 *   b_ih, b_hh (G H) or NULL, w_hr (P, H) or NULL (LSTM only) */
typedef struct {
    td_rnn_kind kind;
    td_tensor *x, *h0, *c0, *w_ih, *w_hh, *b_ih, *b_hh, *w_hr;
    const int64_t *batch_sizes; /* NULL when x is (T, B, I) */
    int64_t steps;              /* T, the length of batch_sizes */
    bool reverse;               /* run from the last step to the first */
} td_rnn_layer_args;

/* Runs the layer and returns one 1-dim tensor holding, in order, the
 * outputs (T, B, P) or (rows, P) (zeros never: each step's rows are the
 * running sequences), h_n (B, P) and, for LSTM, c_n (B, H); h_n and c_n
 * hold each sequence's state after its last step. float32 or float64; one
 * autograd node for the whole layer. Errors name argument 1 (x), 2 (h0),
 * 3 (c0), 4 to 8 (w_ih, w_hh, b_ih, b_hh, w_hr) or 9 (batch_sizes). */
td_status td_rnn_layer(const td_rnn_layer_args *a, td_tensor **out);

#endif
