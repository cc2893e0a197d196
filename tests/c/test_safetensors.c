/* safetensors through the C API: a round trip with exact bits, the reader's
 * errors on buffers crafted here, the writer's atomicity when a write fails
 * half-way (a file-size limit), and the generator's state. */
#include <check.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "tide/tide.h"

#define OK(call) ck_assert_msg((call) == TD_OK, "%s", td_last_error())

static char dir[64];

static void setup(void)
{
    strcpy(dir, "/tmp/tide_st_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static int count_entries(void)
{
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void read_all(const char *path, char *buf, size_t cap, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    *len = fread(buf, 1, cap, f);
    fclose(f);
}

START_TEST(test_round_trip_exact)
{
    char path[128];
    snprintf(path, sizeof path, "%s/a.safetensors", dir);
    int64_t n3 = 3;
    td_tensor *i64 = NULL, *f32 = NULL;
    OK(td_empty(1, &n3, TD_INT64, &i64));
    int64_t *p = td_data_ptr(i64);
    p[0] = (1ll << 53) + 1; /* not a double: the bits must travel untouched */
    p[1] = INT64_MIN;
    p[2] = -1;
    OK(td_scalar(0.1, TD_FLOAT32, &f32));
    const char *names[2] = {"z", "a"}, *keys[1] = {"k"}, *vals[1] = {"v"};
    td_tensor *ts[2] = {i64, f32};
    OK(td_save_safetensors(path, 2, names, ts, 1, keys, vals));
    td_safetensors s;
    OK(td_load_safetensors(path, &s));
    ck_assert_int_eq(s.n, 2);
    ck_assert_str_eq(s.names[0], "a"); /* data order = name order */
    ck_assert_str_eq(s.names[1], "z");
    ck_assert_int_eq(s.tensors[0]->ndim, 0);
    ck_assert(*(float *)td_data_ptr(s.tensors[0]) == 0.1f);
    const int64_t *q = td_data_ptr(s.tensors[1]);
    ck_assert(q[0] == (1ll << 53) + 1 && q[1] == INT64_MIN && q[2] == -1);
    ck_assert_int_eq(s.n_meta, 1);
    ck_assert_str_eq(s.meta_keys[0], "k");
    ck_assert_str_eq(s.meta_values[0], "v");
    /* the raw layout: header length, then a header that ends at a multiple of 8 */
    char buf[4096];
    size_t len;
    read_all(path, buf, sizeof buf, &len);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = (h << 8) | (unsigned char)buf[i];
    ck_assert_int_eq((8 + h) % 8, 0);
    ck_assert_int_eq(len, 8 + h + 4 + 24);
    ck_assert_int_eq(buf[8], '{');
    td_safetensors_free(&s);
    ck_assert_int_eq(s.n, 0);
    td_tensor_release(i64);
    td_tensor_release(f32);
}
END_TEST

static td_status parse_str(const char *header, const char *data, size_t dlen, td_safetensors *s)
{
    static char buf[1024];
    size_t h = strlen(header);
    for (int i = 0; i < 8; i++) buf[i] = (char)((h >> (8 * i)) & 0xff);
    memcpy(buf + 8, header, h);
    memcpy(buf + 8 + h, data, dlen);
    return td_parse_safetensors(buf, 8 + h + dlen, "mem.st", s);
}

static void expect_error(const char *header, size_t dlen, const char *part)
{
    static const char data[64];
    td_safetensors s;
    td_status st = parse_str(header, data, dlen, &s);
    ck_assert_msg(st != TD_OK, "accepted: %s", header);
    ck_assert_msg(strstr(td_last_error(), "mem.st: ") == td_last_error(), "%s", td_last_error());
    ck_assert_msg(strstr(td_last_error(), part), "'%s' not in: %s", part, td_last_error());
}

START_TEST(test_reader_errors)
{
    td_safetensors s;
    ck_assert_int_ne(td_parse_safetensors("abc", 3, "mem.st", &s), TD_OK);
    ck_assert(strstr(td_last_error(), "too short"));
    const char big[16] = {0, 0, 0, 0, 1, 0, 0, 0};
    ck_assert_int_ne(td_parse_safetensors(big, 16, "mem.st", &s), TD_OK);
    ck_assert(strstr(td_last_error(), "over the limit"));
    expect_error("{\"a\":", 0, "bad JSON");
    expect_error("{\"a\":{\"dtype\":\"X\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                 "entry 'a': unknown dtype 'X'");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4,
                 "run past the end");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "needs 8");
    expect_error("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4,
                 "not a range");
    expect_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[4],\"data_offsets\":[0,4]},"
                 "\"b\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[2,4]}}",
                 4, "overlap");
    expect_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}", 4,
                 "belong to no entry");
    expect_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}",
                 1, "at most 8");
    expect_error("{\"a\":{\"dtype\":\"U8\",\"shape\":[0,4611686018427387904,4611686018427387904],"
                 "\"data_offsets\":[0,0]}}",
                 0, "too large");
    /* the smallest valid file: an empty header object */
    OK(parse_str("{}", "", 0, &s));
    ck_assert_int_eq(s.n, 0);
    td_safetensors_free(&s);
}
END_TEST

START_TEST(test_atomic_write)
{
    char path[128];
    snprintf(path, sizeof path, "%s/ck.safetensors", dir);
    int64_t n = 4;
    td_tensor *small = NULL, *large = NULL;
    OK(td_ones(1, &n, TD_FLOAT32, &small));
    const char *name[1] = {"x"};
    OK(td_save_safetensors(path, 1, name, &small, 0, NULL, NULL));
    char before[4096], after[4096];
    size_t lb, la;
    read_all(path, before, sizeof before, &lb);

    /* a write that fails half-way: the file-size limit stops the data */
    int64_t big = 1 << 20;
    OK(td_zeros(1, &big, TD_FLOAT64, &large));
    struct rlimit old, lim;
    getrlimit(RLIMIT_FSIZE, &old);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    signal(SIGXFSZ, SIG_IGN);
    ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
    td_status st = td_save_safetensors(path, 1, name, &large, 0, NULL, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, SIG_DFL);
    ck_assert_int_eq(st, TD_EIO);
    ck_assert_msg(strstr(td_last_error(), "writing tensor 'x' failed"), "%s", td_last_error());
    ck_assert_msg(strstr(td_last_error(), path), "%s", td_last_error());
    read_all(path, after, sizeof after, &la);
    ck_assert_int_eq(la, lb);
    ck_assert(memcmp(before, after, lb) == 0);
    ck_assert_int_eq(count_entries(), 1); /* no temporary file left */

    /* duplicate names and a reserved name never touch the disk */
    const char *dup[2] = {"x", "x"}, *res[1] = {"__metadata__"};
    td_tensor *two[2] = {small, small};
    ck_assert_int_eq(td_save_safetensors(path, 2, dup, two, 0, NULL, NULL), TD_EINVAL);
    ck_assert_int_eq(td_save_safetensors(path, 1, res, &small, 0, NULL, NULL), TD_EINVAL);
    ck_assert_int_eq(count_entries(), 1);
    td_tensor_release(small);
    td_tensor_release(large);
}
END_TEST

START_TEST(test_random_state)
{
    uint64_t s[4], z[4] = {0, 0, 0, 0};
    td_manual_seed(11);
    td_random_get_state(s);
    uint64_t a = td_random_u64(), b = td_random_u64();
    td_manual_seed(12);
    td_random_set_state(s);
    ck_assert(td_random_u64() == a && td_random_u64() == b);
    /* all zeros is "not seeded": the next draw uses the default seed */
    td_random_set_state(z);
    uint64_t d = td_random_u64();
    td_manual_seed(67280421310721ull);
    ck_assert(td_random_u64() == d);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("safetensors");
    TCase *tc = tcase_create("all");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_round_trip_exact);
    tcase_add_test(tc, test_reader_errors);
    tcase_add_test(tc, test_atomic_write);
    tcase_add_test(tc, test_random_state);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
