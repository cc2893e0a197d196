/* IDX files (MNIST, Fashion-MNIST), gzip or plain: zlib's gzread reads
 * both. The parser works from memory so a fuzzer can drive it; the reader
 * looks at the header first so that a small gzip file cannot make it
 * inflate (or hold) more than the header promises. */
#include "data_io.h"

#include <errno.h>
#include <stdio.h>
#include <sys/stat.h>
#include <zlib.h>

/* deflate cannot shrink data by more than about 1032:1, so a gzip file of
 * s bytes never inflates past this */
#define GZ_MAX_RATIO 1032

td_status td_reader_open(td_reader *r, const char *path, bool gunzip)
{
    memset(r, 0, sizeof *r);
    r->path = path;
    r->gz = gunzip;
    struct stat s;
    errno = 0;
    if (stat(path, &s) != 0 || !S_ISREG(s.st_mode))
        return td_error(TD_EIO, 0, "%s: cannot open (%s)", path,
                        errno ? strerror(errno) : "not a regular file");
    r->size = (uint64_t)s.st_size;
    r->f = gunzip ? (void *)gzopen(path, "rb") : (void *)fopen(path, "rb");
    if (!r->f)
        return td_error(TD_EIO, 0, "%s: cannot open (%s)", path, strerror(errno ? errno : ENOENT));
    return TD_OK;
}

uint64_t td_reader_most(const td_reader *r)
{
    if (!r->gz || gzdirect((gzFile)r->f)) return r->size;
    return r->size > UINT64_MAX / GZ_MAX_RATIO ? UINT64_MAX : r->size * GZ_MAX_RATIO + (1u << 16);
}

td_status td_reader_fill(td_reader *r, size_t upto)
{
    while (r->len < upto) {
        if (r->len == r->cap) {
            size_t want = r->cap < (1 << 20) ? (1 << 20) : r->cap * 2;
            if (want > upto || want < r->cap) want = upto;
            uint8_t *q = realloc(r->p, want);
            if (!q) return td_error(TD_ENOMEM, 0, "%s: out of memory", r->path);
            r->p = q;
            r->cap = want;
        }
        size_t room = r->cap - r->len;
        unsigned chunk = room > (1u << 30) ? (1u << 30) : (unsigned)room;
        if (r->gz) {
            int got = gzread((gzFile)r->f, r->p + r->len, chunk);
            if (got < 0) {
                int zerr = Z_OK;
                const char *msg = gzerror((gzFile)r->f, &zerr);
                return td_error(TD_EINVAL, 0, "%s: damaged or truncated gzip data (%s)", r->path,
                                msg && *msg ? msg : "read error");
            }
            if (got == 0) break;
            r->len += (size_t)got;
        } else {
            size_t got = fread(r->p + r->len, 1, chunk, (FILE *)r->f);
            if (got == 0) {
                if (ferror((FILE *)r->f))
                    return td_error(TD_EIO, 0, "%s: read error (%s)", r->path, strerror(errno));
                break;
            }
            r->len += got;
        }
    }
    if (r->gz) {
        int zerr = Z_OK;
        const char *msg = gzerror((gzFile)r->f, &zerr);
        if (zerr != Z_OK && zerr != Z_STREAM_END)
            return td_error(TD_EINVAL, 0, "%s: damaged or truncated gzip data (%s)", r->path, msg);
    }
    return TD_OK;
}

void td_reader_close(td_reader *r)
{
    if (r->f) {
        if (r->gz)
            gzclose((gzFile)r->f);
        else
            fclose((FILE *)r->f);
    }
    free(r->p);
    memset(r, 0, sizeof *r);
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

/* the data bytes an IDX header of ndim dims promises (0 when a dim is 0);
 * false when the nonzero dims multiply past 2^63, since even an empty
 * tensor of that shape could not be indexed */
static bool idx_count(const uint8_t *dims, int ndim, uint64_t *count)
{
    uint64_t c = 1;
    bool empty = false;
    *count = 0;
    for (int d = 0; d < ndim; d++) {
        uint64_t k = be32(dims + 4 * d);
        if (k == 0) {
            empty = true;
            continue;
        }
        if (c > (UINT64_MAX >> 1) / k) return false;
        c *= k;
    }
    *count = empty ? 0 : c;
    return true;
}

td_status td_read_file(const char *path, uint8_t **buf, size_t *n)
{
    *buf = NULL;
    *n = 0;
    td_reader r;
    td_status st = td_reader_open(&r, path, true);
    if (st != TD_OK) goto fail;
    /* anything short of a whole, plausible header goes to the parser as
     * is, which names the problem */
    TD_CHECK(td_reader_fill(&r, 4));
    if (r.len < 4 || r.p[0] || r.p[1] || r.p[2] != 0x08 || r.p[3] < 1 || r.p[3] > 3) goto keep;
    size_t header = 4 + 4 * (size_t)r.p[3];
    TD_CHECK(td_reader_fill(&r, header));
    if (r.len < header) goto keep;
    uint64_t count;
    if (!idx_count(r.p + 4, r.p[3], &count)) goto keep; /* the parser reports the overflow */
    /* a plain file's shortfall is read and reported by the parser with
     * the size it has; a gzip file is judged before inflating it */
    uint64_t most = gzdirect((gzFile)r.f) ? UINT64_MAX : td_reader_most(&r);
    if (count > most || count > SIZE_MAX - header - 1) {
        st = td_error(TD_EINVAL, 0,
                      "%s: truncated: the header promises %llu bytes of data, more than a "
                      "%llu-byte file can hold",
                      path, (unsigned long long)count, (unsigned long long)r.size);
        goto fail;
    }
    /* one byte past the promise tells a file that runs on */
    TD_CHECK(td_reader_fill(&r, header + (size_t)count + 1));
    if (r.len > header + count) {
        /* a plain file's excess is known from its size; a gzip stream's is
         * not, and finding it out is what a bomb wants */
        if (gzdirect((gzFile)r.f))
            st = td_error(TD_EINVAL, 0,
                          "%s: %llu bytes after the %llu bytes of data the header promises", path,
                          (unsigned long long)(r.size - header - count), (unsigned long long)count);
        else
            st = td_error(TD_EINVAL, 0,
                          "%s: more data than the %llu bytes the header promises (the stream "
                          "runs on past them)",
                          path, (unsigned long long)count);
        goto fail;
    }
keep:
    *buf = r.p;
    *n = r.len;
    r.p = NULL;
    st = TD_OK;
fail:
    td_reader_close(&r);
    return st;
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
    for (int d = 0; d < ndim; d++) shape[d] = be32(buf + 4 + 4 * d);
    uint64_t count;
    bool fits = idx_count(buf + 4, ndim, &count);
    bool empty = shape[0] == 0 || (ndim > 1 && shape[1] == 0) || (ndim > 2 && shape[2] == 0);
    size_t data = n - header;
    if (!fits && empty)
        return td_error(TD_EINVAL, 0,
                        "%s: dims %lld x %lld x %lld: the nonzero dims multiply past 2^63, too "
                        "large a shape even with no data",
                        name, (long long)shape[0], ndim > 1 ? (long long)shape[1] : 1ll,
                        ndim > 2 ? (long long)shape[2] : 1ll);
    if (!fits)
        return td_error(TD_EINVAL, 0,
                        "%s: truncated: the header promises more than 2^63 bytes of data (dims "
                        "%lld x %lld x %lld), the file has %zu",
                        name, (long long)shape[0], ndim > 1 ? (long long)shape[1] : 1ll,
                        ndim > 2 ? (long long)shape[2] : 1ll, data);
    if (count > data)
        return td_error(TD_EINVAL, 0,
                        "%s: truncated: the header promises %llu bytes of data, the file has %zu",
                        name, (unsigned long long)count, data);
    if (count < data)
        return td_error(TD_EINVAL, 0,
                        "%s: %zu bytes after the %llu bytes of data the header promises", name,
                        data - (size_t)count, (unsigned long long)count);
    td_tensor *t = NULL;
    /* an empty shape can still be too large to index (a zero dim beside
     * dims past 2^59): name the file */
    td_status st = td_empty(ndim, shape, TD_UINT8, &t);
    if (st != TD_OK) {
        td_error_prefix("%s: ", name);
        return st;
    }
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
