/* CIFAR-10, binary version: each batch file is a run of 3073-byte records,
 * one label byte then the 32x32 red, green and blue planes. The batches
 * are plain files; nothing is gunzipped. */
#include "data_io.h"

#include <stdio.h>
#include <sys/stat.h>

#define PIXELS (3 * 32 * 32)
/* the real batches hold 10000 records each; a larger file is not one */
#define MAX_RECORDS 10000

td_status td_cifar10_parse(const uint8_t *buf, size_t n, const char *name, td_tensor **images,
                           td_tensor **labels)
{
    *images = *labels = NULL;
    if (n == 0) return td_error(TD_EINVAL, 0, "%s: empty file (expected 3073-byte records)", name);
    if (n % TD_CIFAR_RECORD)
        return td_error(
            TD_EINVAL, 0,
            "%s: truncated: %zu bytes is not a whole number of 3073-byte records (%zu left over)",
            name, n, n % TD_CIFAR_RECORD);
    int64_t count = (int64_t)(n / TD_CIFAR_RECORD);
    for (int64_t i = 0; i < count; i++) {
        uint8_t lab = buf[(size_t)i * TD_CIFAR_RECORD];
        if (lab > 9)
            return td_error(TD_EINVAL, 0, "%s: label %d of record %lld is outside [0, 10)", name,
                            lab, (long long)i);
    }
    int64_t ishape[4] = {count, 3, 32, 32};
    td_tensor *im = NULL, *lb = NULL;
    TD_TRY(td_empty(4, ishape, TD_UINT8, &im));
    td_status st = td_empty(1, &count, TD_INT64, &lb);
    if (st != TD_OK) {
        td_tensor_release(im);
        return st;
    }
    uint8_t *ip = td_data_ptr(im);
    int64_t *lp = td_data_ptr(lb);
    for (int64_t i = 0; i < count; i++) {
        const uint8_t *rec = buf + (size_t)i * TD_CIFAR_RECORD;
        lp[i] = rec[0];
        memcpy(ip + (size_t)i * PIXELS, rec + 1, PIXELS);
    }
    *images = im;
    *labels = lb;
    return TD_OK;
}

static td_status read_plain(const char *path, const char *dir, const char *hint, uint8_t **buf,
                            size_t *n)
{
    *buf = NULL;
    *n = 0;
    struct stat s;
    if (stat(path, &s) != 0)
        return td_error(TD_EIO, 0,
                        "%s not found (CIFAR-10's binary version is expected under %s: "
                        "data_batch_1.bin ... data_batch_5.bin, test_batch.bin)%s%s",
                        path, dir, hint && *hint ? "; " : "", hint ? hint : "");
    td_reader r;
    td_status st = td_reader_open(&r, path, false);
    /* one byte past the largest batch tells a file that runs on */
    if (st == TD_OK) st = td_reader_fill(&r, (size_t)MAX_RECORDS * TD_CIFAR_RECORD + 1);
    if (st == TD_OK && r.len > (size_t)MAX_RECORDS * TD_CIFAR_RECORD)
        st = td_error(TD_EINVAL, 0,
                      "%s: larger than a CIFAR-10 batch (at most %d records of 3073 bytes, %zu "
                      "bytes)",
                      path, MAX_RECORDS, (size_t)MAX_RECORDS * TD_CIFAR_RECORD);
    if (st == TD_OK) {
        *buf = r.p;
        *n = r.len;
        r.p = NULL;
    }
    td_reader_close(&r);
    return st;
}

td_status td_cifar10_load(const char *dir, const char *split, const char *missing_hint,
                          td_tensor **images, td_tensor **labels)
{
    *images = *labels = NULL;
    const char *names[5];
    int nfiles;
    if (strcmp(split, "train") == 0) {
        static const char *train[5] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                       "data_batch_4.bin", "data_batch_5.bin"};
        memcpy(names, train, sizeof train);
        nfiles = 5;
    } else if (strcmp(split, "test") == 0) {
        names[0] = "test_batch.bin";
        nfiles = 1;
    } else {
        return td_error(TD_EINVAL, 0, "split must be \"train\" or \"test\", got \"%s\"", split);
    }
    td_tensor *ims[5] = {0}, *lbs[5] = {0};
    td_status st = TD_OK;
    for (int f = 0; f < nfiles; f++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[f]);
        uint8_t *buf;
        size_t n;
        st = read_plain(path, dir, missing_hint, &buf, &n);
        if (st != TD_OK) break;
        st = td_cifar10_parse(buf, n, path, &ims[f], &lbs[f]);
        free(buf);
        if (st != TD_OK) break;
    }
    if (st == TD_OK && nfiles == 1) {
        *images = ims[0];
        *labels = lbs[0];
        return TD_OK;
    }
    if (st == TD_OK) st = td_cat(nfiles, ims, 0, images);
    if (st == TD_OK) st = td_cat(nfiles, lbs, 0, labels);
    if (st != TD_OK) {
        td_tensor_release(*images);
        *images = NULL;
    }
    for (int f = 0; f < nfiles; f++) {
        td_tensor_release(ims[f]);
        td_tensor_release(lbs[f]);
    }
    return st;
}
