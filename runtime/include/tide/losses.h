/* Losses: what every loss front-end shares. Each family declares its
 * functions in its own header, included below. */
#ifndef TIDE_LOSSES_H
#define TIDE_LOSSES_H

#include "tide/tide.h"

typedef enum { TD_REDUCE_NONE, TD_REDUCE_MEAN, TD_REDUCE_SUM, TD_REDUCE_BATCHMEAN } td_reduction;

/* "none" | "mean" | "sum" (| "batchmean" where allowed); arg names the
 * argument in errors */
td_status td_reduction_parse(const char *name, bool allow_batchmean, int arg, td_reduction *out);
const char *td_reduction_name(td_reduction r);
/* sum of every element of a loss buffer in a fixed pairwise order (the same
 * bits at any thread count), divided by `divisor` for TD_REDUCE_MEAN (and
 * BATCHMEAN); a 0-dim tensor of elem's dtype. Records no gradient. */
td_status td_loss_reduce_raw(td_tensor *elem, td_reduction r, double divisor, td_tensor **out);

#include "tide/loss_binary.h"
#include "tide/loss_ctc.h"
#include "tide/loss_margin.h"
#include "tide/loss_regression.h"
#include "tide/loss_softmax.h"

#endif
