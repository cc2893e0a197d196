/* Batched row-major GEMM: float32 through oneDNN (its AVX-512 kernels run
 * near the machine's peak), float64 through OpenBLAS, int64 a plain loop,
 * bfloat16 and float16 in gemm_lowp.c.
 * OpenBLAS is opened with dlopen at the first float64 product, not linked:
 * loading it (and the threads it starts) took 7 ms of every start of
 * tide, which float64 matmuls (gradcheck, references) seldom need. */
#include "cpu.h"
#include "gemm_lowp.h"
#include "iter.h"

#include <cblas.h>
#include <dlfcn.h>
#include <limits.h>
#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>

typedef void (*dgemm_fn)(enum CBLAS_ORDER, enum CBLAS_TRANSPOSE, enum CBLAS_TRANSPOSE, int, int,
                         int, double, const double *, int, const double *, int, double, double *,
                         int);

static struct {
    pthread_once_t once;
    dgemm_fn dgemm;
    char why[256];
} blas = {.once = PTHREAD_ONCE_INIT};

static void blas_open(void)
{
    void *h = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (h) blas.dgemm = (dgemm_fn)dlsym(h, "cblas_dgemm");
    if (!blas.dgemm)
        snprintf(blas.why, sizeof blas.why, "%s",
                 h ? "libopenblas.so.0 has no cblas_dgemm" : dlerror());
}

/* A matrix with one stored row may come with any row stride (a view's
 * stride for a size-1 dim is arbitrary); the libraries want >= cols. */
static int64_t fix_ld(int64_t ld, int64_t rows, int64_t cols)
{
    int64_t need = cols > 1 ? cols : 1;
    return rows <= 1 && ld < need ? need : ld;
}

/* k == 0: the product is empty and C = beta C; beta 0 overwrites NaN too */
#define SCALE_C(T)                                                                                 \
    do {                                                                                           \
        for (int64_t bi = 0; bi < batch; bi++) {                                                   \
            T *cb = (T *)c + bi * stride_c;                                                        \
            for (int64_t i = 0; i < m; i++)                                                        \
                for (int64_t j = 0; j < n; j++)                                                    \
                    cb[i * ldc + j] = beta == 0 ? 0 : (T)(beta * cb[i * ldc + j]);                 \
        }                                                                                          \
    } while (0)

static void gemm_i64(bool ta, bool tb, int64_t m, int64_t n, int64_t k, int64_t alpha,
                     const int64_t *a, int64_t lda, const int64_t *b, int64_t ldb, int64_t beta,
                     int64_t *c, int64_t ldc)
{
    int nt = td_cpu_threads_for(m * n * k, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t i = 0; i < m; i++) {
        uint64_t *ci = (uint64_t *)c + i * ldc;
        for (int64_t j = 0; j < n; j++) ci[j] = beta == 0 ? 0 : ci[j] * (uint64_t)beta;
        for (int64_t p = 0; p < k; p++) {
            uint64_t aip = (uint64_t)alpha * (uint64_t)(ta ? a[p * lda + i] : a[i * lda + p]);
            if (tb)
                for (int64_t j = 0; j < n; j++) ci[j] += aip * (uint64_t)b[j * ldb + p];
            else
                for (int64_t j = 0; j < n; j++) ci[j] += aip * (uint64_t)b[p * ldb + j];
        }
    }
}

/* Deterministic mode: oneDNN's sgemm splits its work, the sum over k
 * included, by the thread count, which changes the last bits of a product
 * between 1 and 2 threads. Here C is cut into tiles fixed by the shape and
 * each is one sequential sgemm over the whole k, so threads only decide who
 * computes which tile. Tiles of 512 x 512 (256 x 256 below 2048^2
 * outputs, so 16 threads still find work) leave the packing of the
 * operands a small part of a tile's work: at 4096^2 on 2 threads they
 * ran at 362 GFLOP/s against 322 for 256 and 385 for oneDNN's own split. */
static td_status sgemm_fixed(int64_t batch, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                             float alpha, const float *a, int64_t lda, int64_t stride_a,
                             const float *b, int64_t ldb, int64_t stride_b, float beta, float *c,
                             int64_t ldc, int64_t stride_c)
{
    int64_t ts = m * n >= 2048 * 2048 ? 512 : 256;
    int64_t tm = (m + ts - 1) / ts, tn = (n + ts - 1) / ts;
    int64_t tiles = batch * tm * tn;
    int nt = td_cpu_threads_for(batch * m * n * k, TD_CPU_GRAIN);
    if (nt > tiles) nt = (int)tiles;
    dnnl_status_t bad = dnnl_success;
#pragma omp parallel num_threads(nt) if (nt > 1)
    {
        int saved = omp_get_max_threads();
        omp_set_num_threads(1); /* each tile sequential, whoever runs it */
#pragma omp for schedule(static)
        for (int64_t t = 0; t < tiles; t++) {
            int64_t bi = t / (tm * tn), i0 = t / tn % tm * ts, j0 = t % tn * ts;
            int64_t mi = m - i0 < ts ? m - i0 : ts, nj = n - j0 < ts ? n - j0 : ts;
            const float *ab = a + bi * stride_a + (ta ? i0 : i0 * lda);
            const float *bb = b + bi * stride_b + (tb ? j0 * ldb : j0);
            dnnl_status_t st = dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', mi, nj, k, alpha, ab, lda,
                                          bb, ldb, beta, c + bi * stride_c + i0 * ldc + j0, ldc);
            if (st != dnnl_success) {
#pragma omp critical(sgemm_fixed_error)
                bad = st;
            }
        }
        omp_set_num_threads(saved);
    }
    if (bad != dnnl_success)
        return td_error(TD_EINVAL, 0, "oneDNN sgemm failed (status %d) for m=%lld n=%lld k=%lld",
                        (int)bad, (long long)m, (long long)n, (long long)k);
    return TD_OK;
}

td_status td_cpu_gemm(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m, int64_t n, int64_t k,
                      double alpha, const void *a, int64_t lda, int64_t stride_a, const void *b,
                      int64_t ldb, int64_t stride_b, double beta, void *c, int64_t ldc,
                      int64_t stride_c)
{
    if (batch <= 0 || m == 0 || n == 0) return TD_OK;
    if (td_dtype_is_lowp(dt)) /* bfloat16, float16: gemm_lowp.c */
        return td_cpu_gemm_lowp(dt, batch, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                stride_b, beta, c, ldc, stride_c);
    td_cpu_threads_sync(); /* dnnl_sgemm reads the count at each call */
    ldc = fix_ld(ldc, m, n);
    if (k == 0) {
        switch (dt) {
        case TD_FLOAT32: SCALE_C(float); break;
        case TD_FLOAT64: SCALE_C(double); break;
        case TD_INT64: SCALE_C(int64_t); break;
        default: break;
        }
        return TD_OK;
    }
    lda = ta ? fix_ld(lda, k, m) : fix_ld(lda, m, k);
    ldb = tb ? fix_ld(ldb, n, k) : fix_ld(ldb, k, n);
    if (dt == TD_FLOAT32 && td_deterministic())
        return sgemm_fixed(batch, ta, tb, m, n, k, (float)alpha, a, lda, stride_a, b, ldb, stride_b,
                           (float)beta, c, ldc, stride_c);
    for (int64_t i = 0; i < batch; i++) {
        if (dt == TD_FLOAT32) {
            dnnl_status_t st =
                dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, (float)alpha,
                           (const float *)a + i * stride_a, lda, (const float *)b + i * stride_b,
                           ldb, (float)beta, (float *)c + i * stride_c, ldc);
            if (st != dnnl_success)
                return td_error(TD_EINVAL, 0,
                                "oneDNN sgemm failed (status %d) for m=%lld n=%lld k=%lld", (int)st,
                                (long long)m, (long long)n, (long long)k);
        } else if (dt == TD_FLOAT64) {
            if (m > INT_MAX || n > INT_MAX || k > INT_MAX || lda > INT_MAX || ldb > INT_MAX ||
                ldc > INT_MAX)
                return td_error(TD_ESHAPE, 0, "float64 matmul dims exceed OpenBLAS's 32-bit limit");
            pthread_once(&blas.once, blas_open);
            if (!blas.dgemm)
                return td_error(TD_EINVAL, 0,
                                "float64 matmul needs OpenBLAS (apt-get install libopenblas0): %s",
                                blas.why);
            blas.dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                       tb ? CblasTrans : CblasNoTrans, (int)m, (int)n, (int)k, alpha,
                       (const double *)a + i * stride_a, (int)lda, (const double *)b + i * stride_b,
                       (int)ldb, beta, (double *)c + i * stride_c, (int)ldc);
        } else if (dt == TD_INT64) {
            gemm_i64(ta, tb, m, n, k, td_cpu_f2i(alpha), (const int64_t *)a + i * stride_a, lda,
                     (const int64_t *)b + i * stride_b, ldb, td_cpu_f2i(beta),
                     (int64_t *)c + i * stride_c, ldc);
        } else {
            return td_error(TD_EDTYPE, 0, "matmul is not defined for %s", td_dtype_name(dt));
        }
    }
    return TD_OK;
}
