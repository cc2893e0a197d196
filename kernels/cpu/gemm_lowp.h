/* bfloat16 and float16 GEMM on the CPU (gemm_lowp.c): td_cpu_gemm's
 * path for the two 2-byte dtypes, and the words tide.backend_info() shows
 * for each dtype's path (docs/precision.md). */
#ifndef TIDE_KERNELS_CPU_GEMM_LOWP_H
#define TIDE_KERNELS_CPU_GEMM_LOWP_H

#include "cpu.h"

/* td_cpu_gemm's contract, dt bfloat16 or float16: the products summed in
 * float32, C rounded to dt once */
td_status td_cpu_gemm_lowp(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m, int64_t n,
                           int64_t k, double alpha, const void *a, int64_t lda, int64_t stride_a,
                           const void *b, int64_t ldb, int64_t stride_b, double beta, void *c,
                           int64_t ldc, int64_t stride_c);

/* the float32 fallback with its blocks' sizes given (floats per block of
 * A and of B; tests), ld >= the row length already; k > 0 */
td_status td_cpu_gemm_lowp_blocked(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m,
                                   int64_t n, int64_t k, double alpha, const uint16_t *a,
                                   int64_t lda, int64_t stride_a, const uint16_t *b, int64_t ldb,
                                   int64_t stride_b, double beta, uint16_t *c, int64_t ldc,
                                   int64_t stride_c, int64_t block_a, int64_t block_b);

/* how td_cpu_gemm multiplies dt here, now ("onednn 2.6.3
 * brg:avx512_core_bf16", "float32 fallback (...)", ...) */
const char *td_cpu_gemm_path(td_dtype dt);

#endif
