/* attention: fused scaled dot-product attention (PyTorch 2.0's
 * F.scaled_dot_product_attention).
 *
 * Argument numbers in errors are the Lua call's: 1 query, 2 key, 3 value,
 * 4 the options table.
 */
#ifndef TIDE_ATTENTION_H
#define TIDE_ATTENTION_H

#include "tide/tide.h"

typedef struct {
    /* NULL, or broadcastable to (..., L, S): uint8 (non-zero = takes part)
     * or query's float dtype (added to the scores) */
    td_tensor *attn_mask;
    double dropout_p; /* on the probabilities, applied whatever the mode */
    bool is_causal;   /* key j takes part for query i when j <= i */
} td_sdpa_opts;
#define TD_SDPA_OPTS_DEFAULT                                                                       \
    {                                                                                              \
        NULL, 0.0, false                                                                           \
    }

/* softmax(q k^T / sqrt(E) + mask) v for q (..., L, E), k (..., S, E), v
 * (..., S, Ev) with the same leading dims: out (..., L, Ev). One fused
 * kernel, in memory linear in L and S; gradients for q, k and v (the
 * mask is a constant). */
td_status td_scaled_dot_product_attention(td_tensor *q, td_tensor *k, td_tensor *v,
                                          const td_sdpa_opts *o, td_tensor **out);

#endif
