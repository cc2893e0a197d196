/* safetensors files: a JSON header (read and written with jansson) and the
 * raw little-endian bytes of each tensor.
 *
 * The writer goes through a temporary file in the target's directory,
 * fsync'd and renamed over the target, so a crash leaves either the old
 * file or the new one. The reader trusts nothing: the header length, the
 * JSON, each entry's dtype, shape and offsets, and that the entries tile
 * the data region exactly (no overlap, no hole), as the format requires.
 * Every error names the file and, where there is one, the entry.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <dirent.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- dtypes ------------------------------------------------------------- */

static const struct {
    const char *name;
    td_dtype dt;
} DTYPES[] = {{"F32", TD_FLOAT32}, {"F64", TD_FLOAT64},   {"I64", TD_INT64},
              {"U8", TD_UINT8},    {"BF16", TD_BFLOAT16}, {"F16", TD_FLOAT16}};

/* the format's other dtypes: known, but tide has no such tensors */
static const char *const OTHER_DTYPES[] = {"BOOL", "I8",  "I16",     "I32",     "U16",
                                           "U32",  "U64", "F8_E4M3", "F8_E5M2", NULL};

static const char *st_dtype_name(td_dtype dt)
{
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (DTYPES[i].dt == dt) return DTYPES[i].name;
    return NULL;
}

/* 1: one of ours; 0: a format dtype tide lacks; -1: not a safetensors dtype */
static int st_dtype_parse(const char *s, td_dtype *dt)
{
    for (size_t i = 0; i < sizeof DTYPES / sizeof DTYPES[0]; i++)
        if (strcmp(s, DTYPES[i].name) == 0) {
            *dt = DTYPES[i].dt;
            return 1;
        }
    for (int i = 0; OTHER_DTYPES[i]; i++)
        if (strcmp(s, OTHER_DTYPES[i]) == 0) return 0;
    return -1;
}

/* the file's byte order is little-endian; swap in place on a big-endian host */
static void swap_order(void *p, size_t elsize, size_t n)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++, b += elsize)
        for (size_t j = 0; j < elsize / 2; j++) {
            unsigned char c = b[j];
            b[j] = b[elsize - 1 - j];
            b[elsize - 1 - j] = c;
        }
#else
    (void)p, (void)elsize, (void)n;
#endif
}

static uint64_t get_le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | b[i];
    return v;
}

static void put_le64(unsigned char *b, uint64_t v)
{
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

/* ---- writing ------------------------------------------------------------ */

typedef struct {
    const char *name;
    td_tensor *t;
} item;

static int by_name(const void *a, const void *b)
{
    return strcmp(((const item *)a)->name, ((const item *)b)->name);
}

static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n > (1u << 30) ? (1u << 30) : n);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        c += k;
        n -= (size_t)k;
    }
    return 0;
}

/* the header as JSON (sorted keys, compact), padded with spaces so that the
 * data region starts at a multiple of 8; *len is the padded length */
static td_status make_header(const char *path, int n, const item *items, int n_meta,
                             const char *const *keys, const char *const *values, char **out,
                             size_t *len)
{
    td_status st = TD_OK;
    json_t *root = json_object();
    if (!root) return td_error(TD_ENOMEM, 0, "save: %s: out of memory", path);
    uint64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const td_tensor *t = items[i].t;
        const char *dt = st_dtype_name(t->dtype);
        if (!dt) {
            st = td_error(TD_EDTYPE, 0,
                          "save: %s: tensor '%s' has dtype %s, which safetensors files do not hold",
                          path, items[i].name, td_dtype_name(t->dtype));
            goto done;
        }
        uint64_t nbytes = (uint64_t)td_numel(t) * td_dtype_size(t->dtype);
        json_t *shape = json_array(), *entry = json_object();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_object_set_new(entry, "dtype", json_string(dt));
        json_object_set_new(entry, "shape", shape);
        json_object_set_new(entry, "data_offsets",
                            json_pack("[II]", (json_int_t)offset, (json_int_t)(offset + nbytes)));
        if (json_object_set_new(root, items[i].name, entry) != 0) {
            st = td_error(TD_EINVAL, 0, "save: %s: tensor name '%s' is not valid UTF-8", path,
                          items[i].name);
            goto done;
        }
        offset += nbytes;
    }
    if (n_meta > 0) {
        json_t *meta = json_object();
        json_object_set_new(root, "__metadata__", meta);
        for (int i = 0; i < n_meta; i++) {
            if (!keys[i] || !values[i]) {
                st = td_error(TD_EINVAL, 0,
                              "save: %s: metadata entry %d is missing its key or value", path,
                              i + 1);
                goto done;
            }
            if (json_object_get(meta, keys[i])) {
                st = td_error(TD_EINVAL, 0, "save: %s: metadata key '%s' appears twice", path,
                              keys[i]);
                goto done;
            }
            json_t *v = json_string(values[i]);
            if (!v || json_object_set_new(meta, keys[i], v) != 0) {
                st = td_error(TD_EINVAL, 0, "save: %s: metadata '%s' is not valid UTF-8", path,
                              keys[i]);
                goto done;
            }
        }
    }
    char *text = json_dumps(root, JSON_SORT_KEYS | JSON_COMPACT);
    if (!text) {
        st = td_error(TD_ENOMEM, 0, "save: %s: out of memory writing the header", path);
        goto done;
    }
    size_t k = strlen(text), padded = k + (8 - (8 + k) % 8) % 8;
    char *h = realloc(text, padded + 1);
    if (!h) {
        free(text);
        st = td_error(TD_ENOMEM, 0, "save: %s: out of memory writing the header", path);
        goto done;
    }
    memset(h + k, ' ', padded - k);
    h[padded] = 0;
    *out = h;
    *len = padded;
done:
    json_decref(root);
    return st;
}

/* one tensor's bytes, contiguous and little-endian */
static td_status write_tensor(int fd, const char *path, const item *it)
{
    td_tensor *c = NULL;
    TD_TRY(td_contiguous(it->t, &c));
    size_t es = td_dtype_size(c->dtype), n = (size_t)td_numel(c);
    td_status st = TD_OK;
    const void *p = td_data_ptr(c);
    void *copy = NULL;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    copy = malloc(n * es + 1);
    if (!copy) {
        td_tensor_release(c);
        return td_error(TD_ENOMEM, 0, "save: %s: out of memory", path);
    }
    memcpy(copy, p, n * es);
    swap_order(copy, es, n);
    p = copy;
#endif
    if (n > 0 && write_all(fd, p, n * es) != 0)
        st = td_error(TD_EIO, 0, "save: %s: writing tensor '%s' failed: %s", path, it->name,
                      strerror(errno));
    free(copy);
    td_tensor_release(c);
    return st;
}

/* make the rename durable: fsync the directory holding path (best effort) */
static void sync_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

/* Temporary files: a process killed between mkstemp and rename leaves its
 * path.tmp.XXXXXX behind. Of the three cures, one fixed name per target lets
 * two concurrent saves of the same target write into one file and publish a
 * mix; O_TMPFILE + linkat cannot replace an existing target (linkat refuses
 * to overwrite, so a named temporary is needed again for the rename) and
 * some filesystems and older kernels lack it. So each save keeps a unique
 * mkstemp name and sweeps the orphans of earlier saves of the same target.
 * A live save holds an exclusive flock on its temporary file for its whole
 * life; the kernel drops it when the process dies, however it dies, so a
 * temporary file whose lock can be taken is an orphan. At most one orphan
 * per target outlives a crash, until the next save of that target. */

/* create path.tmp.XXXXXX, opened and locked */
static td_status make_temp(const char *path, int *fd_out, char **tmp_out)
{
    size_t plen = strlen(path);
    char *tmp = malloc(plen + sizeof ".tmp.XXXXXX");
    if (!tmp) return td_error(TD_ENOMEM, 0, "save: %s: out of memory", path);
    /* a concurrent sweep may lock and unlink the file between mkstemp and
     * our flock; then the name no longer leads to our file: try again */
    for (int attempt = 0; attempt < 8; attempt++) {
        memcpy(tmp, path, plen);
        memcpy(tmp + plen, ".tmp.XXXXXX", sizeof ".tmp.XXXXXX");
        int fd = mkstemp(tmp);
        if (fd < 0) {
            td_status st =
                td_error(TD_EIO, 0, "save: %s: cannot create a temporary file beside it: %s", path,
                         strerror(errno));
            free(tmp);
            return st;
        }
        struct stat mine, named;
        if (flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &mine) == 0 && stat(tmp, &named) == 0 &&
            mine.st_dev == named.st_dev && mine.st_ino == named.st_ino) {
            *fd_out = fd;
            *tmp_out = tmp;
            return TD_OK;
        }
        close(fd);
    }
    free(tmp);
    return td_error(TD_EIO, 0, "save: %s: cannot hold a temporary file beside it", path);
}

/* unlink every unlocked path.tmp.XXXXXX but `mine` (best effort: a sweep that
 * fails leaves orphans, never a wrong checkpoint) */
static void sweep_stale_temps(const char *path, const char *mine)
{
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t dlen = slash ? (size_t)(slash - path) + 1 : 0, blen = strlen(base);
    char *dir = slash ? strndup(path, slash == path ? 1 : (size_t)(slash - path)) : strdup(".");
    if (!dir) return;
    DIR *d = opendir(dir);
    free(dir);
    if (!d) return;
    size_t cap = dlen + blen + sizeof ".tmp.XXXXXX";
    char *cand = malloc(cap);
    struct dirent *e;
    while (cand && (e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strlen(n) != blen + sizeof ".tmp.XXXXXX" - 1 || strncmp(n, base, blen) != 0 ||
            strncmp(n + blen, ".tmp.", 5) != 0)
            continue;
        memcpy(cand, path, dlen);
        memcpy(cand + dlen, n, blen + sizeof ".tmp.XXXXXX");
        if (strcmp(cand, mine) == 0) continue;
        int fd = open(cand, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) continue;
        struct stat sb;
        /* unlink while holding the lock, so its owner (if it was just
         * created) sees its name gone and makes another */
        if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0)
            unlink(cand);
        close(fd);
    }
    free(cand);
    closedir(d);
}

td_status td_save_safetensors(const char *path, int n, const char *const *names,
                              td_tensor *const *tensors, int n_meta, const char *const *meta_keys,
                              const char *const *meta_values)
{
    if (!path || !*path) return td_error(TD_EINVAL, 1, "save: the path is empty");
    if (n < 0 || n_meta < 0) return td_error(TD_EINVAL, 2, "save: negative count");
    td_status st = TD_OK;
    item *items = malloc(sizeof(item) * (size_t)(n + 1));
    char *header = NULL, *tmp = NULL;
    int fd = -1;
    if (!items) return td_error(TD_ENOMEM, 0, "save: %s: out of memory", path);
    for (int i = 0; i < n; i++) {
        if (!names[i] || !tensors[i]) {
            st = td_error(TD_EINVAL, 2, "save: %s: entry %d has no name or no tensor", path, i + 1);
            goto fail;
        }
        if (strcmp(names[i], "__metadata__") == 0) {
            st = td_error(TD_EINVAL, 2,
                          "save: %s: '__metadata__' is reserved and cannot name a tensor", path);
            goto fail;
        }
        items[i] = (item){names[i], tensors[i]};
    }
    qsort(items, (size_t)n, sizeof(item), by_name);
    for (int i = 1; i < n; i++)
        if (strcmp(items[i].name, items[i - 1].name) == 0) {
            st =
                td_error(TD_EINVAL, 2, "save: %s: two tensors are named '%s'", path, items[i].name);
            goto fail;
        }
    size_t hlen = 0;
    TD_CHECK(make_header(path, n, items, n_meta, meta_keys, meta_values, &header, &hlen));

    TD_CHECK(make_temp(path, &fd, &tmp));
    sweep_stale_temps(path, tmp);
    /* mkstemp makes the file 0600; give it the mode open(2) would */
    mode_t mask = umask(0);
    umask(mask);
    fchmod(fd, 0666 & ~mask);

    unsigned char len8[8];
    put_le64(len8, hlen);
    if (write_all(fd, len8, 8) != 0 || write_all(fd, header, hlen) != 0) {
        st = td_error(TD_EIO, 0, "save: %s: writing the header failed: %s", path, strerror(errno));
        goto fail;
    }
    for (int i = 0; i < n; i++) TD_CHECK(write_tensor(fd, path, &items[i]));
    if (fsync(fd) != 0) {
        st = td_error(TD_EIO, 0, "save: %s: fsync failed: %s", path, strerror(errno));
        goto fail;
    }
    int rc = close(fd);
    fd = -1;
    if (rc != 0) {
        st = td_error(TD_EIO, 0, "save: %s: closing the temporary file failed: %s", path,
                      strerror(errno));
        goto fail;
    }
    if (rename(tmp, path) != 0) {
        st = td_error(TD_EIO, 0, "save: %s: cannot rename the temporary file over it: %s", path,
                      strerror(errno));
        goto fail;
    }
    sync_dir(path);
    free(tmp);
    free(header);
    free(items);
    return TD_OK;
fail:
    if (fd >= 0) close(fd);
    if (tmp) {
        unlink(tmp);
        free(tmp);
    }
    free(header);
    free(items);
    return st;
}

/* ---- reading ------------------------------------------------------------ */

/* where the bytes come from: a buffer, or a file read with pread */
typedef struct {
    const unsigned char *mem;
    int fd;
    uint64_t size;
} source;

static int src_read(const source *s, uint64_t off, void *dst, size_t n)
{
    if (off > s->size || n > s->size - off) {
        errno = EIO;
        return -1;
    }
    if (s->mem) {
        if (n) memcpy(dst, s->mem + off, n);
        return 0;
    }
    char *c = dst;
    while (n > 0) {
        ssize_t k = pread(s->fd, c, n > (1u << 30) ? (1u << 30) : n, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -1;
        if (k == 0) { /* the file shrank under us */
            errno = EIO;
            return -1;
        }
        c += k;
        n -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

typedef struct {
    const char *name; /* owned by the JSON root */
    td_dtype dt;
    int ndim;
    int64_t shape[TD_MAX_DIMS];
    uint64_t begin, end;
} entry;

static td_status bad(const char *label, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static td_status bad(const char *label, const char *fmt, ...)
{
    char msg[900];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return td_error(TD_EIO, 0, "%s: %s", label, msg);
}

static const char *shape_text(const entry *e, char *buf, size_t n)
{
    size_t k = 0;
    buf[k++] = '(';
    for (int d = 0; d < e->ndim && k < n - 24; d++)
        k += (size_t)snprintf(buf + k, n - k, d ? ",%lld" : "%lld", (long long)e->shape[d]);
    snprintf(buf + k, n - k, ")");
    return buf;
}

static td_status parse_entry(const char *label, const char *name, json_t *v, uint64_t data_size,
                             entry *e)
{
    e->name = name;
    if (!json_is_object(v)) return bad(label, "entry '%s' is not a JSON object", name);
    json_t *dt = json_object_get(v, "dtype"), *shape = json_object_get(v, "shape"),
           *offs = json_object_get(v, "data_offsets");
    if (!json_is_string(dt)) return bad(label, "entry '%s' has no dtype string", name);
    int known = st_dtype_parse(json_string_value(dt), &e->dt);
    if (known < 0) return bad(label, "entry '%s': unknown dtype '%s'", name, json_string_value(dt));
    if (known == 0)
        return bad(label,
                   "entry '%s': dtype %s is not one tide reads (F32, F64, BF16, F16, I64, U8)",
                   name, json_string_value(dt));
    if (!json_is_array(shape)) return bad(label, "entry '%s' has no shape array", name);
    size_t nd = json_array_size(shape);
    if (nd > TD_MAX_DIMS)
        return bad(label, "entry '%s' has %zu dims; tide tensors have at most 8", name, nd);
    e->ndim = (int)nd;
    /* the product of the dims (zeros counted as ones) bounds the strides */
    int64_t span = 1, numel = 1;
    for (size_t d = 0; d < nd; d++) {
        json_t *x = json_array_get(shape, d);
        if (!json_is_integer(x))
            return bad(label, "entry '%s': shape entry %zu is not an integer", name, d + 1);
        json_int_t s = json_integer_value(x);
        if (s < 0)
            return bad(label, "entry '%s': shape entry %zu is negative (%lld)", name, d + 1,
                       (long long)s);
        int64_t m = s > 0 ? s : 1;
        if (span > (INT64_MAX / 8) / m)
            return bad(label, "entry '%s': the shape is too large", name);
        span *= m;
        numel *= s;
        e->shape[d] = s;
    }
    if (!json_is_array(offs) || json_array_size(offs) != 2 ||
        !json_is_integer(json_array_get(offs, 0)) || !json_is_integer(json_array_get(offs, 1)))
        return bad(label, "entry '%s': data_offsets must be two integers [begin, end]", name);
    json_int_t b = json_integer_value(json_array_get(offs, 0)),
               en = json_integer_value(json_array_get(offs, 1));
    if (b < 0 || en < b)
        return bad(label, "entry '%s': data_offsets [%lld, %lld) are not a range", name,
                   (long long)b, (long long)en);
    if ((uint64_t)en > data_size)
        return bad(
            label,
            "entry '%s': data_offsets [%lld, %lld) run past the end of the data (%llu bytes; is the file "
            "truncated?)",
            name, (long long)b, (long long)en, (unsigned long long)data_size);
    e->begin = (uint64_t)b;
    e->end = (uint64_t)en;
    uint64_t need = (uint64_t)numel * td_dtype_size(e->dt);
    if (e->end - e->begin != need) {
        char buf[200];
        return bad(
            label,
            "entry '%s': data_offsets [%lld, %lld) hold %llu bytes, but %s of shape %s needs %llu",
            name, (long long)b, (long long)en, (unsigned long long)(e->end - e->begin),
            json_string_value(dt), shape_text(e, buf, sizeof buf), (unsigned long long)need);
    }
    return TD_OK;
}

static int by_offset(const void *a, const void *b)
{
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* the entries must tile [0, data_size): sorted by offset, each begins where
 * the one before ended */
static td_status check_tiling(const char *label, int n, const entry *es, uint64_t data_size)
{
    uint64_t pos = 0;
    for (int i = 0; i < n; i++) {
        if (es[i].begin < pos)
            return bad(label,
                       "entries '%s' and '%s' overlap (data_offsets [%llu, %llu) and [%llu, %llu))",
                       es[i - 1].name, es[i].name, (unsigned long long)es[i - 1].begin,
                       (unsigned long long)es[i - 1].end, (unsigned long long)es[i].begin,
                       (unsigned long long)es[i].end);
        if (es[i].begin > pos)
            return bad(label, "bytes [%llu, %llu) of the data belong to no entry (before '%s')",
                       (unsigned long long)pos, (unsigned long long)es[i].begin, es[i].name);
        pos = es[i].end;
    }
    if (pos != data_size)
        return bad(label, "bytes [%llu, %llu) at the end of the data belong to no entry",
                   (unsigned long long)pos, (unsigned long long)data_size);
    return TD_OK;
}

void td_safetensors_free(td_safetensors *s)
{
    if (!s) return;
    for (int i = 0; i < s->n; i++) {
        if (s->names) free(s->names[i]);
        if (s->tensors && s->tensors[i]) td_tensor_release(s->tensors[i]);
    }
    for (int i = 0; i < s->n_meta; i++) {
        if (s->meta_keys) free(s->meta_keys[i]);
        if (s->meta_values) free(s->meta_values[i]);
    }
    free(s->names);
    free(s->tensors);
    free(s->meta_keys);
    free(s->meta_values);
    memset(s, 0, sizeof *s);
}

static td_status parse(const char *label, const source *src, td_safetensors *out)
{
    if (src->size < 8)
        return bad(label, "the file is too short (%llu bytes) to hold a safetensors header",
                   (unsigned long long)src->size);
    unsigned char len8[8];
    if (src_read(src, 0, len8, 8) != 0) return bad(label, "read failed: %s", strerror(errno));
    uint64_t hlen = get_le64(len8);
    if (hlen > TD_SAFETENSORS_MAX_HEADER)
        return bad(label,
                   "header length %llu is over the limit of %u bytes (not a safetensors file?)",
                   (unsigned long long)hlen, TD_SAFETENSORS_MAX_HEADER);
    if (hlen > src->size - 8)
        return bad(
            label,
            "header length %llu runs past the end of the file (%llu bytes; is it truncated?)",
            (unsigned long long)hlen, (unsigned long long)src->size);
    uint64_t data_size = src->size - 8 - hlen;

    td_status st = TD_OK;
    td_safetensors r = {0};
    entry *es = NULL;
    json_t *root = NULL;
    char *text = malloc(hlen + 1);
    if (!text) return td_error(TD_ENOMEM, 0, "%s: out of memory reading the header", label);
    if (src_read(src, 8, text, hlen) != 0) {
        st = bad(label, "read failed: %s", strerror(errno));
        goto fail;
    }
    json_error_t jerr;
    root = json_loadb(text, hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        st = bad(label, "bad JSON in the header: %s (line %d, column %d, byte %d)", jerr.text,
                 jerr.line, jerr.column, jerr.position);
        goto fail;
    }
    if (!json_is_object(root)) {
        st = bad(label, "the header is not a JSON object");
        goto fail;
    }
    json_t *meta = json_object_get(root, "__metadata__");
    if (meta && !json_is_object(meta)) {
        st = bad(label, "__metadata__ is not a JSON object");
        goto fail;
    }
    size_t count = json_object_size(root) - (meta ? 1 : 0),
           mcount = meta ? json_object_size(meta) : 0;
    es = calloc(count + 1, sizeof(entry));
    r.names = calloc(count + 1, sizeof(char *));
    r.tensors = calloc(count + 1, sizeof(td_tensor *));
    r.meta_keys = calloc(mcount + 1, sizeof(char *));
    r.meta_values = calloc(mcount + 1, sizeof(char *));
    if (!es || !r.names || !r.tensors || !r.meta_keys || !r.meta_values) {
        st = td_error(TD_ENOMEM, 0, "%s: out of memory reading the header", label);
        goto fail;
    }
    const char *key;
    json_t *v;
    int n = 0;
    json_object_foreach(root, key, v)
    {
        if (v == meta) continue;
        TD_CHECK(parse_entry(label, key, v, data_size, &es[n]));
        n++;
    }
    if (meta) {
        json_object_foreach(meta, key, v)
        {
            if (!json_is_string(v)) {
                st = bad(label, "__metadata__ value '%s' is not a string", key);
                goto fail;
            }
            r.meta_keys[r.n_meta] = strdup(key);
            r.meta_values[r.n_meta] = strdup(json_string_value(v));
            r.n_meta++;
            if (!r.meta_keys[r.n_meta - 1] || !r.meta_values[r.n_meta - 1]) {
                st = td_error(TD_ENOMEM, 0, "%s: out of memory reading the header", label);
                goto fail;
            }
        }
    }
    qsort(es, (size_t)n, sizeof(entry), by_offset);
    TD_CHECK(check_tiling(label, n, es, data_size));

    for (int i = 0; i < n; i++) {
        td_tensor *t = NULL;
        st = td_empty(es[i].ndim, es[i].shape, es[i].dt, &t);
        if (st != TD_OK) {
            td_error_prefix("%s: entry '%s': ", label, es[i].name);
            goto fail;
        }
        r.tensors[i] = t;
        r.names[i] = strdup(es[i].name);
        r.n = i + 1;
        if (!r.names[i]) {
            st = td_error(TD_ENOMEM, 0, "%s: out of memory", label);
            goto fail;
        }
        size_t nb = (size_t)(es[i].end - es[i].begin);
        if (src_read(src, 8 + hlen + es[i].begin, td_data_ptr(t), nb) != 0) {
            st = bad(label, "reading entry '%s' failed: %s", es[i].name, strerror(errno));
            goto fail;
        }
        swap_order(td_data_ptr(t), td_dtype_size(t->dtype), (size_t)td_numel(t));
    }
    free(es);
    free(text);
    json_decref(root);
    *out = r;
    return TD_OK;
fail:
    td_safetensors_free(&r);
    free(es);
    free(text);
    json_decref(root);
    return st;
}

td_status td_parse_safetensors(const void *data, size_t size, const char *label,
                               td_safetensors *out)
{
    source s = {data, -1, size};
    if (!data && size) return td_error(TD_EINVAL, 1, "parse_safetensors: no data");
    static const unsigned char empty[1];
    if (!data) s.mem = empty;
    return parse(label ? label : "(memory)", &s, out);
}

td_status td_load_safetensors(const char *path, td_safetensors *out)
{
    if (!path || !*path) return td_error(TD_EINVAL, 1, "load: the path is empty");
    /* O_NONBLOCK: opening a FIFO would otherwise wait for a writer forever,
     * before fstat could refuse it; on a regular file it changes nothing */
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) return td_error(TD_EIO, 0, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return td_error(TD_EIO, 0, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return td_error(TD_EIO, 0, "%s: not a regular file", path);
    }
    source s = {NULL, fd, (uint64_t)sb.st_size};
    td_status st = parse(path, &s, out);
    close(fd);
    return st;
}
