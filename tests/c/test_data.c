/* tide's data readers and loader through the public C API (tide/data.h):
 * the IDX and CIFAR parsers on buffers built here (good and damaged), the
 * prefetch thread (order, partial batches, stop mid-epoch over and over,
 * errors raised on the consumer's thread, no leaked bytes), and the
 * generator's permutations and weighted draws. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "tide/tide.h"

#define OK(call) ck_assert_int_eq((call), TD_OK)

static size_t put_be32(uint8_t *p, uint32_t v)
{
    p[0] = v >> 24;
    p[1] = v >> 16;
    p[2] = v >> 8;
    p[3] = v;
    return 4;
}

/* an IDX3 file of n images h x w, pixel k of image i = (7 i + k) % 256 */
static size_t idx3(uint8_t *buf, uint32_t n, uint32_t h, uint32_t w)
{
    size_t p = 0;
    buf[p++] = 0;
    buf[p++] = 0;
    buf[p++] = 8;
    buf[p++] = 3;
    p += put_be32(buf + p, n);
    p += put_be32(buf + p, h);
    p += put_be32(buf + p, w);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t k = 0; k < h * w; k++) buf[p++] = (uint8_t)((7 * i + k) % 256);
    return p;
}

static void expect_error(td_status st, const char *needle)
{
    ck_assert_int_ne(st, TD_OK);
    ck_assert_msg(strstr(td_last_error(), needle), "error '%s' lacks '%s'", td_last_error(),
                  needle);
}

START_TEST(test_idx_parse)
{
    uint8_t buf[256];
    size_t n = idx3(buf, 3, 2, 5);
    td_tensor *t = NULL;
    OK(td_idx_parse(buf, n, "x.idx", &t));
    ck_assert_int_eq(t->ndim, 3);
    ck_assert_int_eq(t->shape[0], 3);
    ck_assert_int_eq(t->shape[2], 5);
    ck_assert_int_eq(t->dtype, TD_UINT8);
    const uint8_t *p = td_data_ptr(t);
    ck_assert_int_eq(p[17], (7 * 1 + 7) % 256); /* image 1, pixel 7 */
    td_tensor_release(t);

    expect_error(td_idx_parse(buf, n - 1, "x.idx", &t),
                 "x.idx: truncated: the header promises 30 bytes");
    ck_assert_ptr_null(t);
    expect_error(td_idx_parse(buf, 3, "x.idx", &t), "x.idx: truncated IDX file");
    expect_error(td_idx_parse(buf, 10, "x.idx", &t), "truncated IDX header");
    buf[n] = 1;
    expect_error(td_idx_parse(buf, n + 1, "x.idx", &t), "1 bytes after");
    buf[0] = 0x1f;
    expect_error(td_idx_parse(buf, n, "x.idx", &t), "x.idx: bad magic 0x1f000803");
    buf[0] = 0;
    buf[2] = 0x0d;
    expect_error(td_idx_parse(buf, n, "x.idx", &t), "unsupported IDX data type 0x0d");
    buf[2] = 8;
    buf[3] = 9;
    expect_error(td_idx_parse(buf, n, "x.idx", &t), "9 dims");
    /* dims whose product overflows */
    uint8_t big[16] = {0,    0,    8,    3,    0xff, 0xff, 0xff, 0xff,
                       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    expect_error(td_idx_parse(big, sizeof big, "big", &t), "big: truncated");
    /* zero images is a valid, empty file */
    n = idx3(buf, 0, 28, 28);
    OK(td_idx_parse(buf, n, "empty", &t));
    ck_assert_int_eq(td_numel(t), 0);
    td_tensor_release(t);
}
END_TEST

START_TEST(test_cifar_parse)
{
    size_t n = 3 * TD_CIFAR_RECORD;
    uint8_t *buf = malloc(n);
    for (size_t r = 0; r < 3; r++) {
        buf[r * TD_CIFAR_RECORD] = (uint8_t)(9 - r);
        for (size_t k = 0; k < 3072; k++)
            buf[r * TD_CIFAR_RECORD + 1 + k] = (uint8_t)((r + k) % 251);
    }
    td_tensor *im = NULL, *lb = NULL;
    OK(td_cifar10_parse(buf, n, "b.bin", &im, &lb));
    ck_assert_int_eq(im->shape[0], 3);
    ck_assert_int_eq(im->shape[1], 3);
    ck_assert_int_eq(im->shape[3], 32);
    ck_assert_int_eq(lb->dtype, TD_INT64);
    ck_assert_int_eq(((int64_t *)td_data_ptr(lb))[2], 7);
    /* record 2, channel 1, row 3, column 4 */
    double v;
    int64_t at[4] = {2, 1, 3, 4};
    OK(td_get(im, 4, at, &v));
    ck_assert_int_eq((int)v, (2 + 1024 + 3 * 32 + 4) % 251);
    td_tensor_release(im);
    td_tensor_release(lb);
    expect_error(td_cifar10_parse(buf, n - 1, "b.bin", &im, &lb), "b.bin: truncated: 9218 bytes");
    ck_assert_ptr_null(im);
    expect_error(td_cifar10_parse(buf, 0, "b.bin", &im, &lb), "empty file");
    buf[TD_CIFAR_RECORD] = 10;
    expect_error(td_cifar10_parse(buf, n, "b.bin", &im, &lb),
                 "label 10 of record 1 is outside [0, 10)");
    free(buf);
}
END_TEST

/* a dataset of n uint8 images (2, 2, 2) filled with i % 256, labels i */
static void counting(int64_t n, td_tensor **x, td_tensor **y)
{
    int64_t s[4] = {n, 2, 2, 2};
    OK(td_empty(4, s, TD_UINT8, x));
    OK(td_empty(1, &n, TD_INT64, y));
    uint8_t *p = td_data_ptr(*x);
    int64_t *l = td_data_ptr(*y);
    for (int64_t i = 0; i < n; i++) {
        memset(p + i * 8, (int)(i % 256), 8);
        l[i] = i;
    }
}

START_TEST(test_loader_epoch)
{
    td_memory_stats before, after;
    td_memory(&before);
    td_tensor *x, *y;
    counting(10, &x, &y);
    td_loader_opts o = {.batch_size = 4};
    td_loader *l;
    OK(td_loader_new(x, y, &o, &l));
    ck_assert_int_eq(td_loader_num_batches(l, 10), 3);
    int64_t order[10] = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0};
    OK(td_loader_start(l, order, 10, 1));
    int64_t seen = 0, sizes[3] = {4, 4, 2};
    for (int b = 0; b < 3; b++) {
        td_tensor *bx, *by;
        OK(td_loader_next(l, &bx, &by));
        ck_assert_ptr_nonnull(bx);
        ck_assert_int_eq(bx->dtype, TD_FLOAT32);
        ck_assert_int_eq(bx->shape[0], sizes[b]);
        const float *fx = td_data_ptr(bx);
        const int64_t *ly = td_data_ptr(by);
        for (int64_t j = 0; j < sizes[b]; j++) {
            ck_assert_int_eq(ly[j], order[seen]);
            ck_assert_float_eq_tol(fx[j * 8 + 7], (float)order[seen] / 255.0f, 1e-7);
            seen++;
        }
        td_tensor_release(bx);
        td_tensor_release(by);
    }
    td_tensor *bx, *by;
    OK(td_loader_next(l, &bx, &by));
    ck_assert_ptr_null(bx);
    OK(td_loader_next(l, &bx, &by)); /* still the end */
    ck_assert_ptr_null(bx);
    int64_t bad[2] = {0, 10};
    expect_error(td_loader_start(l, bad, 2, 0),
                 "sample index 10 (position 1 of the epoch) is outside [0, 10)");
    td_loader_free(l);

    td_loader_opts od = {.batch_size = 4, .drop_last = true};
    OK(td_loader_new(x, y, &od, &l));
    ck_assert_int_eq(td_loader_num_batches(l, 10), 2);
    td_loader_free(l);
    td_loader_opts o0 = {.batch_size = 0};
    expect_error(td_loader_new(x, y, &o0, &l), "batch_size must be at least 1");
    td_tensor_release(x);
    td_tensor_release(y);
    td_memory(&after);
    ck_assert_int_eq(after.live_bytes, before.live_bytes);
}
END_TEST

START_TEST(test_loader_stop_anywhere)
{
    td_memory_stats before, after;
    td_memory(&before);
    td_tensor *x, *y;
    counting(1000, &x, &y);
    td_transform tf[2] = {{.kind = TD_TF_RANDOM_HFLIP, .p = 0.5},
                          {.kind = TD_TF_NORMALIZE, .nch = 1, .mean = {0.5}, .std = {0.25}}};
    td_loader_opts o = {.batch_size = 7, .n_transforms = 2, .transforms = tf};
    td_loader *l;
    OK(td_loader_new(x, y, &o, &l));
    int64_t *order = malloc(1000 * sizeof *order);
    for (int i = 0; i < 1000; i++) order[i] = (i * 37) % 1000;
    /* start, take k batches, start again (which stops the old thread) */
    for (int k = 0; k < 60; k++) {
        OK(td_loader_start(l, order, 1000, (uint64_t)k));
        for (int b = 0; b < k % 5; b++) {
            td_tensor *bx, *by;
            OK(td_loader_next(l, &bx, &by));
            ck_assert_ptr_nonnull(bx);
            ck_assert_float_eq_tol(((float *)td_data_ptr(bx))[0],
                                   ((float)((order[b * 7]) % 256) / 255.0f - 0.5f) / 0.25f, 1e-5);
            td_tensor_release(bx);
            td_tensor_release(by);
        }
        if (k % 2) td_loader_stop(l);
    }
    td_loader_stop(l);
    td_loader_stop(l);
    td_loader_free(l);
    free(order);
    td_tensor_release(x);
    td_tensor_release(y);
    td_memory(&after);
    ck_assert_int_eq(after.live_bytes, before.live_bytes);
}
END_TEST

START_TEST(test_loader_thread_error)
{
    td_tensor *x, *y;
    counting(20, &x, &y);
    /* three means for a two-channel batch: fails on the thread */
    td_transform tf = {.kind = TD_TF_NORMALIZE, .nch = 3, .mean = {0, 0, 0}, .std = {1, 1, 1}};
    td_loader_opts o = {.batch_size = 5, .n_transforms = 1, .transforms = &tf};
    td_loader *l;
    OK(td_loader_new(x, y, &o, &l));
    int64_t order[20];
    for (int i = 0; i < 20; i++) order[i] = i;
    OK(td_loader_start(l, order, 20, 0));
    td_tensor *bx, *by;
    expect_error(td_loader_next(l, &bx, &by),
                 "normalize has 3 means and stds but the batch has 2 channels");
    ck_assert_ptr_null(bx);
    td_loader_free(l);
    /* a crop that does not fit is refused on the thread too */
    td_transform crop = {.kind = TD_TF_RANDOM_CROP, .size_h = 5, .size_w = 5, .padding = 1};
    o.transforms = &crop;
    OK(td_loader_new(x, y, &o, &l));
    OK(td_loader_start(l, order, 20, 0));
    expect_error(td_loader_next(l, &bx, &by),
                 "random_crop of 5x5 does not fit a 2x2 image with padding 1");
    td_loader_free(l);
    td_tensor_release(x);
    td_tensor_release(y);
}
END_TEST

START_TEST(test_generator)
{
    td_rng a, b;
    td_rng_seed(&a, 42);
    td_rng_seed(&b, 42);
    int64_t p[100], q[100], hits[100] = {0};
    td_rng_permutation(&a, 100, p);
    td_rng_permutation(&b, 100, q);
    ck_assert_mem_eq(p, q, sizeof p);
    for (int i = 0; i < 100; i++) hits[p[i]]++;
    for (int i = 0; i < 100; i++) ck_assert_int_eq(hits[i], 1);
    /* weighted draws with replacement: frequencies near 0.1 .. 0.4 */
    double w[5] = {1, 2, 3, 4, 0};
    int64_t n = 200000, *out = malloc((size_t)n * sizeof *out), count[5] = {0};
    OK(td_weighted_sample(&a, w, 5, n, true, out));
    for (int64_t i = 0; i < n; i++) count[out[i]]++;
    for (int k = 0; k < 4; k++)
        ck_assert_double_eq_tol((double)count[k] / n, (k + 1) / 10.0, 0.006);
    ck_assert_int_eq(count[4], 0);
    /* without replacement: a permutation of the non-zero ones */
    OK(td_weighted_sample(&a, w, 5, 4, false, out));
    int64_t seen[5] = {0};
    for (int i = 0; i < 4; i++) seen[out[i]]++;
    ck_assert_int_eq(seen[4], 0);
    for (int k = 0; k < 4; k++) ck_assert_int_eq(seen[k], 1);
    expect_error(td_weighted_sample(&a, w, 5, 5, false, out),
                 "cannot draw 5 samples without replacement");
    double bad[2] = {1, NAN};
    expect_error(td_weighted_sample(&a, bad, 2, 1, true, out), "weight 1 is nan");
    free(out);
}
END_TEST

static Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *tc = tcase_create("data");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_idx_parse);
    tcase_add_test(tc, test_cifar_parse);
    tcase_add_test(tc, test_loader_epoch);
    tcase_add_test(tc, test_loader_stop_anywhere);
    tcase_add_test(tc, test_loader_thread_error);
    tcase_add_test(tc, test_generator);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(data_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
