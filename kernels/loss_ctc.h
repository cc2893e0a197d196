/* Kernels of the ctc losses: one table per backend. */
#ifndef TIDE_KERNELS_LOSS_CTC_H
#define TIDE_KERNELS_LOSS_CTC_H

#include "tide/core.h"

/* One batch of CTC problems, checked by the front-end. Lengths and target
 * offsets live on the host (as PyTorch keeps them); `targets` is a
 * contiguous int64 tensor on the device, sample b's labels being
 * targets[tg_offset[b] + i] for i < target_len[b], each in [0, C) and not
 * blank. S is the longest target length: alpha and beta tables are
 * (N, T, 2S + 1). */
typedef struct {
    int64_t T, N, C, S;
    int64_t blank;
    const int64_t *input_len;  /* N, each in [0, T] */
    const int64_t *target_len; /* N, each in [0, S] */
    const int64_t *tg_offset;  /* N */
} td_ctc_plan;

struct td_ctc_loss_kernels {
    /* log_probs (T, N, C) float, any strides -> nll (N) = -log p(target | x)
     * (inf where no alignment exists), elem (N) the terms the reduction
     * sums: nll, or 0 where it is inf and zero_infinity, divided by
     * max(target_len, 1) when divide; log_alpha (N, T, 2S + 1) receives the
     * forward variables. nll, elem, log_alpha contiguous, log_probs' dtype. */
    void (*forward)(td_tensor *nll, td_tensor *elem, td_tensor *log_alpha,
                    const td_tensor *log_probs, const td_tensor *targets, const td_ctc_plan *p,
                    bool zero_infinity, bool divide);
    /* grad (T, N, C) contiguous = d(reduced loss)/d(logits through a
     * log_softmax), PyTorch's convention: exp(lp) - occupation / p, scaled
     * by each sample's share of grad_out (a 0-dim tensor for "mean" and
     * "sum", (N) for "none"); rows t >= input_len are 0, and so are samples
     * with an infinite nll when zero_infinity. log_beta (N, T, 2S + 1) is
     * scratch. */
    void (*backward)(td_tensor *grad, td_tensor *log_beta, const td_tensor *grad_out,
                     td_reduction reduction, const td_tensor *log_probs, const td_tensor *targets,
                     const td_tensor *nll, const td_tensor *log_alpha, const td_ctc_plan *p,
                     bool zero_infinity);
};

#endif
