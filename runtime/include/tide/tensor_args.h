/* tide: ops that take tensors or lists where they used to take numbers:
 * clamp with tensor bounds, masked_fill with a 0-dim tensor value, split
 * with a list of sizes; and einsum. */
#ifndef TIDE_TENSOR_ARGS_H
#define TIDE_TENSOR_ARGS_H

#include "tide/tide.h"

/* min(max(x, lo), hi), broadcast; lo or hi may be NULL (not both). The
 * gradient as PyTorch's: x where lo <= x <= hi, lo where x < lo, hi
 * where x > hi */
td_status td_clamp_tensor(td_tensor *x, td_tensor *lo, td_tensor *hi, td_tensor **out);
/* x with value (0-dim, cast to x's dtype) where mask; value gets the sum
 * of the gradient over the filled elements */
td_status td_masked_fill_tensor(td_tensor *x, td_tensor *mask, td_tensor *value, td_tensor **out);
/* pieces of the sizes listed along dim; they must add up to its size.
 * *pieces is malloc'd: the caller frees the array and releases each */
td_status td_split_sizes(td_tensor *t, int n, const int64_t *sizes, int dim, int *count,
                         td_tensor ***pieces);
/* torch.einsum's equation over n operands (at most 8 distinct indices,
 * ellipsis dims included), contracted pairwise from the left */
td_status td_einsum(const char *equation, int n, td_tensor **operands, td_tensor **out);

#endif
