/* The thin SVD's direction U Vh, for the nuclear norm's gradient. */
#ifndef TIDE_SVD_H
#define TIDE_SVD_H

#include "tide/core.h"

/* for each of `batch` row-major m x n float64 matrices at a, U Vh (m x n,
 * row-major) at w, through LAPACK's dgesvd (OpenBLAS, opened with dlopen) */
td_status td_svd_direction(const double *a, int64_t batch, int64_t m, int64_t n, double *w);

#endif
