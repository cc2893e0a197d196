/* The CPU backend's bfloat16 and float16 GEMM (kernels/cpu/gemm_lowp.c)
 * called directly, against a double loop. The operands are multiples of
 * 1/8 below 2 in magnitude, exact in both dtypes, so each product and
 * every partial sum is exact in float32: the only rounding is C's, once,
 * and the result must equal the reference rounded to the dtype bit for
 * bit, whichever path (oneDNN or the float32 fallback) runs. */
#include "internal.h"
#include "cpu/cpu.h"
#include "cpu/gemm_lowp.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static const td_backend *be;
static unsigned seed = 1;

static uint16_t *operand(td_dtype dt, int64_t n)
{
    uint16_t *p = malloc((size_t)(n > 0 ? n : 1) * 2);
    ck_assert_ptr_nonnull(p);
    for (int64_t i = 0; i < n; i++)
        p[i] = td_float_to_lowp(dt, (float)((int)(rand_r(&seed) % 31) - 15) / 8.0f);
    return p;
}

static double val(td_dtype dt, const uint16_t *p, int64_t i) { return td_lowp_to_float(dt, p[i]); }

typedef struct {
    int64_t batch, m, n, k;
    bool ta, tb;
    int64_t pad;           /* added to every leading dimension */
    bool bcast_a, bcast_b; /* stride 0 over the batch */
    double alpha, beta;
    int64_t samples; /* 0: check every element, else this many */
    int64_t block;   /* > 0: the float32 fallback with blocks of this many floats */
} gcase;

/* c = alpha op(a) op(b) + beta c over a random case; checks C exactly */
static void run_case(td_dtype dt, gcase g)
{
    int64_t ar = g.ta ? g.k : g.m, ac = g.ta ? g.m : g.k;
    int64_t br = g.tb ? g.n : g.k, bc = g.tb ? g.k : g.n;
    int64_t lda = ac + g.pad, ldb = bc + g.pad, ldc = g.n + g.pad;
    int64_t sa = g.bcast_a ? 0 : ar * lda, sb = g.bcast_b ? 0 : br * ldb, sc = g.m * ldc;
    uint16_t *a = operand(dt, (g.bcast_a ? 1 : g.batch) * ar * lda);
    uint16_t *b = operand(dt, (g.bcast_b ? 1 : g.batch) * br * ldb);
    uint16_t *c = operand(dt, g.batch * sc), *c0 = malloc((size_t)(g.batch * sc) * 2);
    ck_assert_ptr_nonnull(c0);
    memcpy(c0, c, (size_t)(g.batch * sc) * 2);
    if (g.k == 0 && g.beta == 0) c[0] = td_float_to_lowp(dt, NAN); /* overwritten */
    if (g.block)
        ck_assert_int_eq(td_cpu_gemm_lowp_blocked(dt, g.batch, g.ta, g.tb, g.m, g.n, g.k, g.alpha,
                                                  a, lda, sa, b, ldb, sb, g.beta, c, ldc, sc,
                                                  g.block, g.block),
                         TD_OK);
    else
        ck_assert_int_eq(be->gemm(dt, g.batch, g.ta, g.tb, g.m, g.n, g.k, g.alpha, a, lda, sa, b,
                                  ldb, sb, g.beta, c, ldc, sc),
                         TD_OK);
    int64_t total = g.batch * g.m * g.n, count = g.samples ? g.samples : total;
    for (int64_t s = 0; s < count; s++) {
        int64_t e = g.samples ? (int64_t)(rand_r(&seed) % (unsigned)total) : s;
        if (g.samples && s < 4) /* the corners of the last batch entry */
            e = (g.batch - 1) * g.m * g.n + (s & 1 ? g.m - 1 : 0) * g.n + (s & 2 ? g.n - 1 : 0);
        int64_t bi = e / (g.m * g.n), i = e / g.n % g.m, j = e % g.n;
        double sum = 0;
        for (int64_t p = 0; p < g.k; p++) {
            double x = val(dt, a, bi * sa + (g.ta ? p * lda + i : i * lda + p));
            double y = val(dt, b, bi * sb + (g.tb ? j * ldb + p : p * ldb + j));
            sum += x * y;
        }
        double want =
            g.alpha * sum + (g.beta == 0 ? 0 : g.beta * val(dt, c0, bi * sc + i * ldc + j));
        uint16_t w = td_float_to_lowp(dt, (float)want), got = c[bi * sc + i * ldc + j];
        if (td_lowp_to_float(dt, got) != td_lowp_to_float(dt, w)) /* -0 == 0 */
            ck_abort_msg("%s b=%lld m=%lld n=%lld k=%lld ta=%d tb=%d: C[%lld,%lld,%lld] = %g, "
                         "expected %g",
                         td_dtype_name(dt), (long long)g.batch, (long long)g.m, (long long)g.n,
                         (long long)g.k, g.ta, g.tb, (long long)bi, (long long)i, (long long)j,
                         (double)td_lowp_to_float(dt, got), want);
    }
    /* the padding between rows of C is left alone */
    for (int64_t bi = 0; bi < g.batch; bi++)
        for (int64_t i = 0; i < g.m; i++)
            for (int64_t j = g.n; j < ldc; j++)
                ck_assert_uint_eq(c[bi * sc + i * ldc + j], c0[bi * sc + i * ldc + j]);
    free(a);
    free(b);
    free(c);
    free(c0);
}

static void every_layout(td_dtype dt)
{
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        run_case(dt, (gcase){1, 7, 5, 9, ta, tb, 0, false, false, 1, 0, 0, 0});
        run_case(dt, (gcase){1, 17, 33, 40, ta, tb, 3, false, false, 0.5, 0, 0, 0});
        run_case(dt, (gcase){3, 6, 4, 8, ta, tb, 1, false, false, 1, 0, 0, 0});
        run_case(dt, (gcase){3, 6, 4, 8, ta, tb, 0, true, false, 1, 0, 0, 0});
        run_case(dt, (gcase){3, 6, 4, 8, ta, tb, 2, false, true, 1, 0, 0, 0});
        run_case(dt, (gcase){4, 5, 3, 7, ta, tb, 0, true, true, 1, 0, 0, 0});
        run_case(dt, (gcase){2, 9, 11, 13, ta, tb, 1, false, false, -2, 0.5, 0, 0});
        run_case(dt, (gcase){2, 9, 11, 13, ta, tb, 0, false, true, 1, 1, 0, 0});
        run_case(dt, (gcase){1, 1, 1, 1, ta, tb, 0, false, false, 1, 0, 0, 0});
        run_case(dt, (gcase){1, 1, 64, 64, ta, tb, 0, false, false, 1, 0, 0, 0});
        run_case(dt, (gcase){1, 64, 1, 64, ta, tb, 0, false, false, 1, 0, 0, 0});
    }
    /* k = 0: C = beta C (beta 0 writes zeros over NaN) */
    run_case(dt, (gcase){2, 3, 4, 0, false, false, 1, false, false, 1, 0, 0, 0});
    run_case(dt, (gcase){2, 3, 4, 0, false, true, 0, false, false, 1, -2, 0, 0});
}

START_TEST(bf16_layouts) { every_layout(TD_BFLOAT16); }
END_TEST

START_TEST(f16_layouts) { every_layout(TD_FLOAT16); }
END_TEST

/* deterministic mode takes the float32 fallback for bfloat16 as well */
START_TEST(deterministic_layouts)
{
    bool was = td_deterministic();
    td_set_deterministic(true);
    every_layout(TD_BFLOAT16);
    td_set_deterministic(was);
}
END_TEST

/* the fallback's blocks, made small: 64 * 256 floats at k = 256 are row
 * blocks of 64 (150 rows: 64, 64, 22) and column blocks of 64 (200: 64,
 * 64, 64, 8); at k = 300, 5000 floats give the least blocks, 16 rows and
 * 64 columns. Both dtypes, every layout, a batch, padded rows, beta. */
START_TEST(fallback_blocks)
{
    for (int t = 0; t < 4; t++)
        for (int d = 0; d < 2; d++) {
            td_dtype dt = d ? TD_FLOAT16 : TD_BFLOAT16;
            run_case(dt,
                     (gcase){2, 150, 200, 256, t & 1, t & 2, 3, false, false, 1, 0.5, 0, 64 * 256});
            run_case(dt, (gcase){1, 37, 70, 300, t & 1, t & 2, 0, false, true, -2, 0, 0, 5000});
        }
}
END_TEST

/* a product big enough that the default path cuts the fallback's blocks
 * (k m and k n above 2^24 floats), checked at sampled elements and the
 * corners */
START_TEST(fallback_large)
{
    run_case(TD_FLOAT16, (gcase){1, 2080, 2100, 8192, false, true, 0, false, false, 1, 0, 200, 0});
}
END_TEST

START_TEST(path_words)
{
    ck_assert_ptr_nonnull(be->gemm_path);
    ck_assert_str_eq(be->gemm_path(TD_FLOAT32), "onednn sgemm");
    const char *p = be->gemm_path(TD_BFLOAT16);
    ck_assert(strncmp(p, "onednn ", 7) == 0 || strncmp(p, "float32 fallback", 16) == 0);
    p = be->gemm_path(TD_FLOAT16);
    ck_assert(strncmp(p, "onednn ", 7) == 0 || strncmp(p, "float32 fallback", 16) == 0);
}
END_TEST

int main(void)
{
    be = td_cpu_backend();
    Suite *s = suite_create("gemm_lowp");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, bf16_layouts);
    tcase_add_test(tc, f16_layouts);
    tcase_add_test(tc, deterministic_layouts);
    tcase_add_test(tc, fallback_blocks);
    tcase_add_test(tc, fallback_large);
    tcase_add_test(tc, path_words);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
