/* Ops that move or mask elements: sort, argsort, topk, flip, roll, tril,
 * triu (runtime/sort.c, runtime/shape_ops.c). Every result is a new
 * contiguous tensor, never a view, as in PyTorch. */
#ifndef TIDE_REORDER_H
#define TIDE_REORDER_H

#include "tide/core.h"

/* Stable sort along dim (NaN larger than every number, ties in their
 * order along dim, for descending too): values and int64 indices; values
 * may be NULL (argsort). Gradient to the values' places. */
td_status td_sort(td_tensor *x, int dim, bool descending, td_tensor **values, td_tensor **indices);
td_status td_argsort(td_tensor *x, int dim, bool descending, td_tensor **out);
/* the k largest (or smallest) along dim, in sort's order whether sorted or
 * not: ties come by position, NaN counts as the largest */
td_status td_topk(td_tensor *x, int64_t k, int dim, bool largest, bool sorted, td_tensor **values,
                  td_tensor **indices);
/* reverse the n dims (none twice) */
td_status td_flip(td_tensor *x, int n, const int *dims, td_tensor **out);
/* shift along dims (a dim named twice shifts by the sum), wrapping around;
 * dims NULL: over the flattened tensor, with one shift */
td_status td_roll(td_tensor *x, int nshifts, const int64_t *shifts, const int *dims, int ndims,
                  td_tensor **out);
/* zero above (tril) or below (triu) the diagonal of the last two dims;
 * diagonal > 0 moves it up and right */
td_status td_tril(td_tensor *x, int64_t diagonal, td_tensor **out);
td_status td_triu(td_tensor *x, int64_t diagonal, td_tensor **out);

#endif
