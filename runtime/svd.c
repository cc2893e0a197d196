/* U Vh through LAPACK's dgesvd, taken from OpenBLAS with dlopen at the
 * first call, as kernels/cpu/gemm.c takes cblas_dgemm: only the nuclear
 * norm needs it, and loading OpenBLAS costs every start of tide. */
#include "svd.h"
#include "internal.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

/* Fortran's dgesvd, with the hidden lengths of its two character arguments */
typedef void (*dgesvd_fn)(const char *jobu, const char *jobvt, const int *m, const int *n,
                          double *a, const int *lda, double *s, double *u, const int *ldu,
                          double *vt, const int *ldvt, double *work, const int *lwork, int *info,
                          size_t jobu_len, size_t jobvt_len);

static struct {
    pthread_once_t once;
    dgesvd_fn dgesvd;
    char why[256];
} lapack = {.once = PTHREAD_ONCE_INIT};

static void lapack_open(void)
{
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (h) lapack.dgesvd = (dgesvd_fn)dlsym(h, "dgesvd_");
    if (!lapack.dgesvd)
        snprintf(lapack.why, sizeof lapack.why, "%s",
                 h ? "libopenblas.so.0 has no dgesvd_" : dlerror());
}

/* Row-major A (m x n) is column-major A^T (n x m). With A^T = U' S V'^T,
 * A = V' S U'^T, so U Vh of A is V' U'^T = (U' V'^T)^T, and the
 * column-major n x m product U' V'^T is row-major U Vh as it stands. */
static td_status one(double *at, int m, int n, double *s, double *u, double *vt, double *work,
                     int lwork, double *w)
{
    int k = m < n ? m : n, info = 0;
    lapack.dgesvd("S", "S", &n, &m, at, &n, s, u, &n, vt, &k, work, &lwork, &info, 1, 1);
    if (info != 0)
        return td_error(TD_EINVAL, 1, "norm: the SVD (dgesvd) did not converge (info %d)", info);
    for (int j = 0; j < m; j++)
        for (int i = 0; i < n; i++) {
            double acc = 0;
            for (int l = 0; l < k; l++) acc += u[i + (int64_t)l * n] * vt[l + (int64_t)j * k];
            w[i + (int64_t)j * n] = acc;
        }
    return TD_OK;
}

td_status td_svd_direction(const double *a, int64_t batch, int64_t m, int64_t n, double *w)
{
    if (batch == 0 || m == 0 || n == 0) return TD_OK;
    if (m > 46340 || n > 46340)
        return td_error(TD_ESHAPE, 1, "norm: 'nuc' supports matrices up to 46340 rows and columns");
    pthread_once(&lapack.once, lapack_open);
    if (!lapack.dgesvd)
        return td_error(TD_EINVAL, 0,
                        "norm: 'nuc' needs LAPACK from OpenBLAS (apt-get install libopenblas0): %s",
                        lapack.why);
    int im = (int)m, in = (int)n, k = im < in ? im : in, lwork = -1, info = 0;
    double q = 0;
    lapack.dgesvd("S", "S", &in, &im, NULL, &in, NULL, NULL, &in, NULL, &k, &q, &lwork, &info, 1,
                  1);
    lwork = info == 0 && q >= 1 ? (int)q : 5 * (im + in);
    size_t mn = (size_t)m * (size_t)n;
    double *buf = malloc(sizeof(double) * (mn + (size_t)k + (size_t)n * k + (size_t)k * m + lwork));
    if (!buf) return td_error(TD_ENOMEM, 0, "out of memory in norm's SVD");
    double *at = buf, *s = at + mn, *u = s + k, *vt = u + (size_t)n * k, *work = vt + (size_t)k * m;
    td_status st = TD_OK;
    for (int64_t b = 0; b < batch && st == TD_OK; b++) {
        memcpy(at, a + b * mn, sizeof(double) * mn);
        st = one(at, im, in, s, u, vt, work, lwork, w + b * mn);
    }
    free(buf);
    return st;
}
