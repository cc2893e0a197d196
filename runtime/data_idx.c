/* IDX files (MNIST, Fashion-MNIST), gzip or plain: zlib's gzread reads
 * both. The parser works from memory so a fuzzer can drive it. */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <zlib.h>

#define READ_LIMIT ((size_t)1 << 34) /* 16 GiB: more is a corrupt stream */

td_status td_read_file(const char *path, uint8_t **buf, size_t *n)
{
    *buf = NULL;
    *n = 0;
    gzFile f = gzopen(path, "rb");
    if (!f)
        return td_error(TD_EIO, 0, "%s: cannot open (%s)", path, strerror(errno ? errno : ENOENT));
    size_t cap = 1 << 20, len = 0;
    uint8_t *p = malloc(cap);
    if (!p) {
        gzclose(f);
        return td_error(TD_ENOMEM, 0, "%s: out of memory", path);
    }
    for (;;) {
        if (cap - len < (1 << 16)) {
            if (cap >= READ_LIMIT) {
                free(p);
                gzclose(f);
                return td_error(TD_EINVAL, 0, "%s: larger than %zu bytes", path,
                                (size_t)READ_LIMIT);
            }
            uint8_t *q = realloc(p, cap * 2);
            if (!q) {
                free(p);
                gzclose(f);
                return td_error(TD_ENOMEM, 0, "%s: out of memory", path);
            }
            p = q;
            cap *= 2;
        }
        unsigned want = (unsigned)((cap - len) > (1u << 30) ? (1u << 30) : (cap - len));
        int got = gzread(f, p + len, want);
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            td_status st = td_error(TD_EINVAL, 0, "%s: damaged gzip data (%s)", path,
                                    msg ? msg : "read error");
            free(p);
            gzclose(f);
            return st;
        }
        if (got == 0) break;
        len += (size_t)got;
    }
    int zerr = Z_OK;
    const char *msg = gzerror(f, &zerr);
    if (zerr != Z_OK && zerr != Z_STREAM_END) {
        td_status st = td_error(TD_EINVAL, 0, "%s: damaged or truncated gzip data (%s)", path, msg);
        free(p);
        gzclose(f);
        return st;
    }
    gzclose(f);
    *buf = p;
    *n = len;
    return TD_OK;
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

td_status td_idx_parse(const uint8_t *buf, size_t n, const char *name, td_tensor **out)
{
    *out = NULL;
    if (n < 4)
        return td_error(TD_EINVAL, 0, "%s: truncated IDX file (%zu bytes, no header)", name, n);
    if (buf[0] != 0 || buf[1] != 0)
        return td_error(TD_EINVAL, 0, "%s: bad magic 0x%02x%02x%02x%02x (not an IDX file)", name,
                        buf[0], buf[1], buf[2], buf[3]);
    if (buf[2] != 0x08)
        return td_error(TD_EINVAL, 0,
                        "%s: unsupported IDX data type 0x%02x (only unsigned bytes, 0x08)", name,
                        buf[2]);
    int ndim = buf[3];
    if (ndim < 1 || ndim > 3)
        return td_error(TD_EINVAL, 0, "%s: IDX file with %d dims (expected 1 to 3)", name, ndim);
    size_t header = 4 + 4 * (size_t)ndim;
    if (n < header)
        return td_error(TD_EINVAL, 0, "%s: truncated IDX header (%zu bytes, need %zu)", name, n,
                        header);
    int64_t shape[3];
    uint64_t count = 1;
    bool overflow = false;
    for (int d = 0; d < ndim; d++) {
        shape[d] = be32(buf + 4 + 4 * d);
        if (shape[d] != 0 && count > (UINT64_MAX >> 1) / (uint64_t)shape[d])
            overflow = true;
        else
            count *= (uint64_t)shape[d];
    }
    size_t data = n - header;
    if (overflow || count > data)
        return td_error(TD_EINVAL, 0,
                        "%s: truncated: the header promises %llu bytes of data, the file has %zu",
                        name, overflow ? 0ull : (unsigned long long)count, data);
    if (count < data)
        return td_error(TD_EINVAL, 0,
                        "%s: %zu bytes after the %llu bytes of data the header promises", name,
                        data - (size_t)count, (unsigned long long)count);
    td_tensor *t = NULL;
    TD_TRY(td_empty(ndim, shape, TD_UINT8, &t));
    if (count) memcpy(td_data_ptr(t), buf + header, (size_t)count);
    *out = t;
    return TD_OK;
}

static bool exists(const char *path)
{
    struct stat s;
    return stat(path, &s) == 0;
}

/* path of base (plain) or base.gz in dir, whichever exists (gzip first) */
static td_status find_file(const char *dir, const char *base, const char *hint, char *path,
                           size_t cap)
{
    snprintf(path, cap, "%s/%s.gz", dir, base);
    if (exists(path)) return TD_OK;
    snprintf(path, cap, "%s/%s", dir, base);
    if (exists(path)) return TD_OK;
    return td_error(TD_EIO, 0, "%s not found (expected at %s/%s.gz or %s/%s)%s%s", base, dir, base,
                    dir, base, hint && *hint ? "; " : "", hint ? hint : "");
}

static td_status read_idx(const char *path, td_tensor **out)
{
    uint8_t *buf;
    size_t n;
    TD_TRY(td_read_file(path, &buf, &n));
    td_status st = td_idx_parse(buf, n, path, out);
    free(buf);
    return st;
}

td_status td_mnist_load(const char *dir, const char *split, const char *missing_hint,
                        td_tensor **images, td_tensor **labels)
{
    *images = *labels = NULL;
    const char *pre;
    if (strcmp(split, "train") == 0)
        pre = "train";
    else if (strcmp(split, "test") == 0)
        pre = "t10k";
    else
        return td_error(TD_EINVAL, 0, "split must be \"train\" or \"test\", got \"%s\"", split);
    char ipath[4096], lpath[4096], base[64];
    snprintf(base, sizeof base, "%s-images-idx3-ubyte", pre);
    TD_TRY(find_file(dir, base, missing_hint, ipath, sizeof ipath));
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", pre);
    TD_TRY(find_file(dir, base, missing_hint, lpath, sizeof lpath));

    td_tensor *im = NULL, *lb = NULL, *im4 = NULL, *lb64 = NULL;
    td_status st;
    TD_CHECK(read_idx(ipath, &im));
    if (im->ndim != 3) {
        st = td_error(TD_EINVAL, 0,
                      "%s: images file with %d dims (expected 3: count, rows, columns)", ipath,
                      im->ndim);
        goto fail;
    }
    TD_CHECK(read_idx(lpath, &lb));
    if (lb->ndim != 1) {
        st = td_error(TD_EINVAL, 0, "%s: labels file with %d dims (expected 1)", lpath, lb->ndim);
        goto fail;
    }
    if (lb->shape[0] != im->shape[0]) {
        st = td_error(TD_EINVAL, 0, "%s holds %lld labels but %s holds %lld images", lpath,
                      (long long)lb->shape[0], ipath, (long long)im->shape[0]);
        goto fail;
    }
    const uint8_t *lp = td_data_ptr(lb);
    for (int64_t i = 0; i < lb->shape[0]; i++)
        if (lp[i] > 9) {
            st = td_error(TD_EINVAL, 0, "%s: label %d of sample %lld is outside [0, 10)", lpath,
                          lp[i], (long long)i);
            goto fail;
        }
    int64_t shape4[4] = {im->shape[0], 1, im->shape[1], im->shape[2]};
    TD_CHECK(td_view(im, 4, shape4, &im4));
    TD_CHECK(td_empty(1, lb->shape, TD_INT64, &lb64));
    int64_t *dst = td_data_ptr(lb64);
    for (int64_t i = 0; i < lb->shape[0]; i++) dst[i] = lp[i];
    td_tensor_release(im);
    td_tensor_release(lb);
    *images = im4;
    *labels = lb64;
    return TD_OK;
fail:
    td_tensor_release(im);
    td_tensor_release(lb);
    td_tensor_release(im4);
    td_tensor_release(lb64);
    return st;
}
