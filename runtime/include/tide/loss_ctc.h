/* ctc losses: front-end declarations (see ../shared/DESIGN.md, "Losses"). */
#ifndef TIDE_LOSS_CTC_H
#define TIDE_LOSS_CTC_H

#include "tide/losses.h"

/* the options (defaults in the loss table) */
typedef td_ctc_loss_opts td_ctc_options;

/* Connectionist temporal classification, PyTorch 1.13's F.ctc_loss.
 *   log_probs      (T, N, C) or unbatched (T, C), float32/float64, log-softmax outputs
 *   targets        (N, S) padded, or 1-D: the N targets concatenated (sum of target_lengths)
 *   input_lengths  int64 (N) (or 0-dim / (1) unbatched), each in [0, T]
 *   target_lengths int64 (N), each >= 0 (and <= S when padded)
 * Per sample: -log p(target | x), inf where no alignment exists (0 with
 * zero_infinity, which also zeroes its gradient). "mean" averages over the
 * batch loss_n / max(target_length_n, 1); "none" gives (N) (a 0-dim tensor
 * unbatched). The gradient sent to log_probs is PyTorch's:
 * exp(log_probs) - occupation probabilities, the gradient with respect to
 * the logits through a log_softmax. Errors blame arguments 1-4, or 5 (the
 * options) for a bad blank. */
td_status td_ctc_loss(td_tensor *log_probs, td_tensor *targets, td_tensor *input_lengths,
                      td_tensor *target_lengths, const td_ctc_options *opt, td_tensor **out);

#endif
