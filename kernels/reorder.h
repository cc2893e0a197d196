/* Kernels that move or mask elements without arithmetic: sort and topk,
 * flip and roll, tril and triu. One table per backend. */
#ifndef TIDE_KERNELS_REORDER_H
#define TIDE_KERNELS_REORDER_H

#include "tide/core.h"

struct td_reorder_kernels {
    /* x contiguous, viewed as (outer, n, inner): the first k (k <= n) of
     * each line's stable sort along n into values (may be NULL) and
     * indices (int64), both contiguous (outer, k, inner). NaN counts as
     * larger than every number; equal keys keep their order along n, for
     * descending too. An error only when scratch memory runs out. */
    td_status (*sort)(td_tensor *values, td_tensor *indices, const td_tensor *x, int64_t outer,
                      int64_t n, int64_t inner, int64_t k, bool descending);
    /* out contiguous, x any strides, both of one shape and dtype:
     * out[c] = x[s], per dim s_d = size_d - 1 - c_d where flip[d], else
     * (c_d - shift[d]) mod size_d, shift[d] in [0, size_d) */
    void (*remap)(td_tensor *out, const td_tensor *x, const int64_t *shift, const bool *flip);
    /* out contiguous, x any strides, one shape of at least 2 dims: over the
     * last two (row i, column j), x where j - i <= diagonal (lower) or
     * j - i >= diagonal (upper), else 0 */
    void (*tri)(td_tensor *out, const td_tensor *x, int64_t diagonal, bool upper);
};

#endif
