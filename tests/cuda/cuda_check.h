/* What every tests/cuda program needs: random inputs, copies between the
 * devices, the CUDA-vs-CPU comparison (normalised MSE, NaN only where the
 * CPU has it, integers exact), identical-bits checks, sentinel guards
 * around outputs, and the one-op parity and same-error drivers. Check's
 * ck_assert_* report failures, so the callers stay short. */
#ifndef TIDE_TESTS_CUDA_CHECK_H
#define TIDE_TESTS_CUDA_CHECK_H

#include "internal.h"

#include <check.h>

#define SKIP 77 /* ctest's SKIP_RETURN_CODE: no GPU usable here */

/* a tests/cuda program's main: SKIP, printing why (and note, when not
 * NULL), where no GPU is usable; else the suite make_suite builds, run
 * after td_manual_seed(seed): EXIT_FAILURE when a test fails */
int run_cuda_suite(Suite *(*make_suite)(void), uint64_t seed, const char *note);

/* standard normal floats; integers uniform in [-50, 50) ([0, 50) for uint8) */
td_tensor *randn(td_dtype dt, int ndim, const int64_t *shape);
/* int64 uniform in [lo, hi) */
td_tensor *randint(int64_t lo, int64_t hi, int ndim, const int64_t *shape);
/* uniform in (lo, hi) */
td_tensor *uniform(td_dtype dt, int ndim, const int64_t *shape, double lo, double hi);
/* t * k; t is released */
td_tensor *scaled(td_tensor *t, double k);

td_tensor *gpu(td_tensor *t);  /* a copy on cuda:0 */
td_tensor *host(td_tensor *t); /* a copy on the CPU */

/* compares cpu with the CUDA result g under NMSE tol (0: 1e-7 for float32,
 * 1e-15 for float64); expect_close and expect_close_tol release g,
 * expect_close_keep does not */
void expect_close_tol(const char *what, const td_tensor *cpu, td_tensor *g, double tol);
void expect_close(const char *what, const td_tensor *cpu, td_tensor *g);
void expect_close_keep(const char *what, const td_tensor *cpu, td_tensor *g);
void expect_close_keep_tol(const char *what, const td_tensor *cpu, td_tensor *g, double tol);

/* a and b (either device) hold the same bytes */
void same_bits(const char *what, td_tensor *a, td_tensor *b);

/* a CUDA float32 buffer of GUARD + n + GUARD sentinels, and the view of its
 * middle; check_guards fails when a kernel wrote outside that view */
#define GUARD    1024
#define SENTINEL 12345.0
td_tensor *guarded(int64_t n, td_tensor **view);
void check_guards(const char *what, td_tensor *buf, int64_t n);

/* an op over n inputs (NULL entries allowed) */
typedef td_status (*op_fn)(const void *ctx, td_tensor **in, td_tensor **out);

/* runs f on the CPU inputs and on their CUDA copies, compares the result,
 * then (grad_mask: the inputs to differentiate) backpropagates the same
 * random upstream gradient on both and compares every gradient */
void parity_tol(const char *what, op_fn f, const void *ctx, int n, td_tensor **cin,
                unsigned grad_mask, double tol);
void parity(const char *what, op_fn f, const void *ctx, int n, td_tensor **cin, unsigned grad_mask);

/* the same call on both devices fails with the same message */
void same_error(const char *what, op_fn f, const void *ctx, int n, td_tensor **cin);

#endif
