/* tide: reductions over a list of dims, amax and amin, the norms beyond
 * a p-norm over one dim, and the dtype option of the reductions.
 *
 * dims lists ndims dims of x (negative ones wrap; one named twice is an
 * error); ndims == 0 reduces every dim. The kernels reduce one (outer, n,
 * inner) axis: several dims are brought together by a permutation and a
 * reshape, then reduced in one pass, so the result does not depend on the
 * order the dims are listed in. has_dtype casts x to dtype first, as
 * PyTorch's dtype argument does.
 */
#ifndef TIDE_REDUCE_DIMS_H
#define TIDE_REDUCE_DIMS_H

#include "tide/tide.h"

td_status td_sum_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, bool has_dtype,
                      td_dtype dtype, td_tensor **out);
td_status td_mean_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, bool has_dtype,
                       td_dtype dtype, td_tensor **out);
td_status td_prod_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, bool has_dtype,
                       td_dtype dtype, td_tensor **out);
/* the largest (smallest) value; ties share the gradient evenly, NaN wins */
td_status td_amax(td_tensor *x, int ndims, const int *dims, bool keepdim, td_tensor **out);
td_status td_amin(td_tensor *x, int ndims, const int *dims, bool keepdim, td_tensor **out);
td_status td_var_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, int64_t correction,
                      td_tensor **out);
td_status td_std_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, int64_t correction,
                      td_tensor **out);
/* uint8, as td_all and td_any */
td_status td_all_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, td_tensor **out);
td_status td_any_dims(td_tensor *x, int ndims, const int *dims, bool keepdim, td_tensor **out);
/* the vector p-norm over dims: p = 0 counts non-zeros, +inf and -inf are
 * amax and amin of |x|, negative p as the formula gives */
td_status td_norm_dims(td_tensor *x, double p, int ndims, const int *dims, bool keepdim,
                       td_tensor **out);
/* the nuclear norm (sum of singular values) of the matrices over dims d0,
 * d1; computed in float64 through LAPACK's dgesvd */
td_status td_norm_nuc(td_tensor *x, int d0, int d1, bool keepdim, td_tensor **out);
/* softmax and log_softmax of x cast to dtype first */
td_status td_softmax_dtype(td_tensor *x, int dim, bool log, bool has_dtype, td_dtype dtype,
                           td_tensor **out);

#endif
