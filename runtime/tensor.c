/* Storage and tensor headers: refcounting, strided views, element access. */
#include "internal.h"

#include <math.h>
#include <stdio.h>

const td_backend *td_backend_of(const td_tensor *t) { return t->storage->backend; }

/* Shapes that passed td_check_shape never overflow here; the saturation
 * keeps an unchecked one from signed-overflow undefined behaviour. */
int64_t td_shape_numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) return 0;
    for (int i = 0; i < ndim; i++)
        if (__builtin_mul_overflow(n, shape[i], &n)) return INT64_MAX;
    return n;
}

int64_t td_numel(const td_tensor *t) { return td_shape_numel(t->ndim, t->shape); }

/* a * b, saturated: a stride past every real extent (a shape being
 * checked, or the product after the outermost dim) must not be signed
 * overflow */
static int64_t mul_sat(int64_t a, int64_t b)
{
    int64_t r;
    return __builtin_mul_overflow(a, b, &r) ? INT64_MAX : r;
}

void td_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride)
{
    int64_t s = 1;
    for (int i = ndim - 1; i >= 0; i--) {
        stride[i] = s;
        s = mul_sat(s, shape[i] > 1 ? shape[i] : 1);
    }
}

bool td_is_contiguous(const td_tensor *t)
{
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s = mul_sat(s, t->shape[i]);
    }
    return true;
}

bool td_is_channels_last(const td_tensor *t)
{
    if (t->ndim != 4) return false;
    static const int order[4] = {1, 3, 2, 0}; /* C, W, H, N: innermost first */
    int64_t s = 1;
    for (int k = 0; k < 4; k++) {
        int i = order[k];
        if (t->shape[i] != 1 && t->stride[i] != s) return false;
        s = mul_sat(s, t->shape[i]);
    }
    return true;
}

bool td_keeps_channels_last(const td_tensor *t)
{
    return td_device_of(t).type == TD_CPU && td_is_channels_last(t) && !td_is_contiguous(t);
}

td_status td_check_shape(int ndim, const int64_t *shape, int arg)
{
    if (ndim < 0 || ndim > TD_MAX_DIMS)
        return td_error(TD_ESHAPE, arg, "tensors have at most %d dims, got %d", TD_MAX_DIMS, ndim);
    /* a 0 dim empties the tensor but strides still multiply the other
     * dims, so the product skips zeros instead of stopping at them */
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return td_error(TD_ESHAPE, arg, "negative size %lld in dim %d", (long long)shape[i], i);
        if (shape[i] > 1 && n > INT64_MAX / 16 / shape[i])
            return td_error(TD_ESHAPE, arg,
                            "shape too large: its non-zero sizes multiply past 2^59");
        if (shape[i] > 1) n *= shape[i];
    }
    return TD_OK;
}

/* sizes for error messages: "1.50 GiB", "12.0 MiB", "512 bytes" */
static const char *human(int64_t b, char *buf, size_t n)
{
    if (b >= ((int64_t)1 << 30))
        snprintf(buf, n, "%.2f GiB", (double)b / (1 << 30));
    else if (b >= ((int64_t)1 << 20))
        snprintf(buf, n, "%.1f MiB", (double)b / (1 << 20));
    else
        snprintf(buf, n, "%lld bytes", (long long)b);
    return buf;
}

static void (*oom_handler)(void *);
static void *oom_ud;

void td_set_oom_handler(void (*fn)(void *ud), void *ud)
{
    oom_handler = fn;
    oom_ud = ud;
}

/* a device allocation that failed gets one more try after the handler
 * (a full collection in the binding) and emptying the cache */
static void *device_alloc(const td_backend *be, td_device dev, size_t nbytes)
{
    void *p = be->alloc(dev.index, nbytes);
    if (p || dev.type == TD_CPU) return p;
    if (oom_handler) oom_handler(oom_ud);
    if (be->empty_cache) be->empty_cache();
    p = be->alloc(dev.index, nbytes);
    if (p) return p;
    char d[32], a[32], f[32], t[32], l[32], r[32];
    td_cuda_memory_stats ms = {0};
    td_cuda_memory(dev.index, &ms);
    td_error(
        TD_ENOMEM, 0,
        "%s out of memory: tried to allocate %s; %s free of %s, tensors hold %s (%s reserved by tide)",
        td_device_str(dev, d, sizeof d), human((int64_t)nbytes, a, sizeof a),
        human(ms.free_bytes, f, sizeof f), human(ms.total_bytes, t, sizeof t),
        human(ms.live_bytes, l, sizeof l), human(ms.reserved_bytes, r, sizeof r));
    return NULL;
}

static td_status storage_new(size_t nbytes, td_device dev, td_storage **out)
{
    const td_backend *be = td_backend_for(dev);
    td_storage *s = calloc(1, sizeof *s);
    if (!s) return td_error(TD_ENOMEM, 0, "out of memory allocating a storage header");
    s->data = device_alloc(be, dev, nbytes ? nbytes : 1);
    if (!s->data) {
        free(s);
        if (dev.type != TD_CPU) return TD_ENOMEM; /* device_alloc said why */
        return td_error(TD_ENOMEM, 0, "out of memory: could not allocate %zu bytes", nbytes);
    }
    s->refcount = 1;
    s->nbytes = nbytes;
    s->backend = be;
    s->device = dev.index;
    if (dev.type == TD_CPU) td_memory_note_alloc(nbytes); /* devices count their own */
    *out = s;
    return TD_OK;
}

static void storage_release(td_storage *s)
{
    if (!s || --s->refcount > 0) return;
    s->backend->free(s->device, s->data, s->nbytes);
    if (s->backend->device_type == TD_CPU) td_memory_note_free(s->nbytes);
    free(s);
}

td_status td_empty_on(int ndim, const int64_t *shape, td_dtype dt, td_device dev, td_tensor **out)
{
    TD_TRY(td_check_shape(ndim, shape, 1));
    if (dev.type != TD_CPU) TD_TRY(td_device_check(dev));
    td_tensor *t = calloc(1, sizeof *t);
    if (!t) return td_error(TD_ENOMEM, 0, "out of memory allocating a tensor header");
    td_status st =
        storage_new((size_t)td_shape_numel(ndim, shape) * td_dtype_size(dt), dev, &t->storage);
    if (st != TD_OK) {
        free(t);
        return st;
    }
    t->refcount = 1;
    t->ndim = ndim;
    t->dtype = dt;
    if (ndim)
        memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim); /* 0-dim: shape may be NULL */
    td_contiguous_strides(ndim, shape, t->stride);
    *out = t;
    return TD_OK;
}

td_status td_empty(int ndim, const int64_t *shape, td_dtype dt, td_tensor **out)
{
    return td_empty_on(ndim, shape, dt, TD_DEVICE_CPU, out);
}

td_status td_empty_like(const td_tensor *t, td_tensor **out)
{
    return td_empty_on(t->ndim, t->shape, t->dtype, td_device_of(t), out);
}

td_status td_empty_layout_on(int ndim, const int64_t *shape, td_dtype dt, td_device dev,
                             bool channels_last, td_tensor **out)
{
    if (!channels_last || ndim != 4) return td_empty_on(ndim, shape, dt, dev, out);
    int64_t nhwc[4] = {shape[0], shape[2], shape[3], shape[1]}, c = shape[1], w = shape[3],
            h = shape[2];
    td_tensor *t;
    TD_TRY(td_empty_on(4, nhwc, dt, dev, &t));
    memcpy(t->shape, shape, 4 * sizeof *shape);
    int64_t stride[4] = {h * w * c, 1, w * c, c};
    memcpy(t->stride, stride, sizeof stride);
    *out = t;
    return TD_OK;
}

td_status td_empty_as(const td_tensor *like, td_dtype dt, td_tensor **out)
{
    return td_empty_layout_on(like->ndim, like->shape, dt, td_device_of(like),
                              td_keeps_channels_last(like), out);
}

td_status td_dense_raw(td_tensor *t, td_dtype dt, bool channels_last, td_tensor **out)
{
    bool cl = channels_last && t->ndim == 4;
    if (t->dtype == dt && (cl ? td_is_channels_last(t) : td_is_contiguous(t)))
        return td_make_view(t, t->ndim, t->shape, t->stride, t->offset, out);
    TD_TRY(td_empty_layout_on(t->ndim, t->shape, dt, td_device_of(t), cl, out));
    td_backend_of(t)->copy(*out, t);
    return TD_OK;
}

td_status td_make_view(td_tensor *base, int ndim, const int64_t *shape, const int64_t *stride,
                       int64_t offset, td_tensor **out)
{
    TD_TRY(td_check_shape(ndim, shape, 2));
    td_tensor *t = calloc(1, sizeof *t);
    if (!t) return td_error(TD_ENOMEM, 0, "out of memory allocating a tensor header");
    t->refcount = 1;
    t->storage = base->storage;
    base->storage->refcount++;
    t->offset = offset;
    t->ndim = ndim;
    t->dtype = base->dtype;
    if (ndim) { /* 0-dim: shape and stride may be NULL */
        memcpy(t->shape, shape, sizeof(int64_t) * (size_t)ndim);
        memcpy(t->stride, stride, sizeof(int64_t) * (size_t)ndim);
    }
    *out = t;
    return TD_OK;
}

void td_tensor_retain(td_tensor *t)
{
    if (t) t->refcount++;
}

void td_tensor_release(td_tensor *t)
{
    if (!t || --t->refcount > 0) return;
    if (t->acc) {
        t->acc->leaf = NULL; /* the accumulator may outlive its leaf in a graph */
        td_node_release(t->acc);
    }
    td_node_release(t->grad_fn);
    td_tensor_release(t->grad);
    storage_release(t->storage);
    free(t);
}

void td_release_many(int n, td_tensor **ts)
{
    for (int i = 0; i < n; i++) {
        td_tensor_release(ts[i]);
        ts[i] = NULL;
    }
}

void td_bump_version(td_tensor *t) { t->storage->version++; }

void *td_data_ptr(const td_tensor *t)
{
    return (char *)t->storage->data + t->offset * (int64_t)td_dtype_size(t->dtype);
}

static double load(const td_tensor *t, int64_t off)
{
    const char *p = (const char *)t->storage->data;
    switch (t->dtype) {
    case TD_FLOAT32: return ((const float *)p)[off];
    case TD_FLOAT64: return ((const double *)p)[off];
    case TD_INT64: return (double)((const int64_t *)p)[off];
    case TD_BFLOAT16:
    case TD_FLOAT16: return td_lowp_to_float(t->dtype, ((const uint16_t *)p)[off]);
    default: return ((const uint8_t *)p)[off];
    }
}

/* C leaves float-to-integer conversion undefined out of range (and for
 * NaN); go through int64 with a guard, so uint8 wraps as PyTorch's does */
static int64_t to_int64(double v)
{
    return (v >= -9223372036854775808.0 && v < 9223372036854775808.0) ? (int64_t)v : INT64_MIN;
}

void td_store_at(td_tensor *t, int64_t off, double v)
{
    char *p = (char *)t->storage->data;
    switch (t->dtype) {
    case TD_FLOAT32: ((float *)p)[off] = (float)v; break;
    case TD_FLOAT64: ((double *)p)[off] = v; break;
    case TD_INT64: ((int64_t *)p)[off] = to_int64(v); break;
    case TD_BFLOAT16:
    case TD_FLOAT16: ((uint16_t *)p)[off] = td_float_to_lowp(t->dtype, (float)v); break;
    default: ((uint8_t *)p)[off] = (uint8_t)to_int64(v); break;
    }
}

double td_get_flat(const td_tensor *t, int64_t i)
{
    int64_t off = t->offset;
    for (int d = t->ndim - 1; d >= 0; d--) {
        off += (i % t->shape[d]) * t->stride[d];
        i /= t->shape[d];
    }
    return load(t, off);
}

static td_status element_offset(const td_tensor *t, int n, const int64_t *idx, int64_t *off)
{
    if (n != t->ndim)
        return td_error(TD_EINVAL, 1, "expected %d indices for a %d-dim tensor, got %d", t->ndim,
                        t->ndim, n);
    int64_t o = t->offset;
    for (int d = 0; d < n; d++) {
        int64_t i = idx[d] < 0 ? idx[d] + t->shape[d] : idx[d];
        if (i < 0 || i >= t->shape[d])
            return td_error(TD_ERANGE, d + 1, "index %lld is out of range for dim %d of size %lld",
                            (long long)idx[d], d, (long long)t->shape[d]);
        o += i * t->stride[d];
    }
    *off = o;
    return TD_OK;
}

/* element `off` of a device tensor's storage, through the host */
static td_status load_device(const td_tensor *t, int64_t off, double *out)
{
    union {
        float f;
        double d;
        int64_t i;
        uint8_t u;
        uint16_t h;
    } v;
    size_t es = td_dtype_size(t->dtype);
    TD_TRY(t->storage->backend->download(t->storage->device, &v,
                                         (const char *)t->storage->data + off * (int64_t)es, es));
    switch (t->dtype) {
    case TD_FLOAT32: *out = v.f; break;
    case TD_FLOAT64: *out = v.d; break;
    case TD_INT64: *out = (double)v.i; break;
    case TD_BFLOAT16:
    case TD_FLOAT16: *out = td_lowp_to_float(t->dtype, v.h); break;
    default: *out = v.u; break;
    }
    return TD_OK;
}

td_status td_get(const td_tensor *t, int n, const int64_t *idx, double *out)
{
    int64_t off;
    TD_TRY(element_offset(t, n, idx, &off));
    if (t->storage->backend->device_type != TD_CPU) return load_device(t, off, out);
    *out = load(t, off);
    return TD_OK;
}

td_status td_set(td_tensor *t, int n, const int64_t *idx, double value)
{
    int64_t off;
    TD_TRY(element_offset(t, n, idx, &off));
    if (t->storage->backend->device_type != TD_CPU) { /* fill a one-element view */
        td_tensor *one = NULL;
        TD_TRY(td_make_view(t, 0, NULL, NULL, off, &one));
        t->storage->backend->fill(one, value);
        td_tensor_release(one);
    } else {
        td_store_at(t, off, value);
    }
    td_bump_version(t);
    return TD_OK;
}

td_status td_item(const td_tensor *t, double *out)
{
    if (td_numel(t) != 1)
        return td_error(TD_EINVAL, 1, "a tensor with %lld elements cannot be converted to a number",
                        (long long)td_numel(t));
    if (t->storage->backend->device_type != TD_CPU) {
        int64_t off = t->offset; /* one element: every index is 0 */
        return load_device(t, off, out);
    }
    *out = td_get_flat(t, 0);
    return TD_OK;
}

bool td_same_shape(const td_tensor *a, const td_tensor *b)
{
    if (a->ndim != b->ndim) return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return false;
    return true;
}

const char *td_shape_str(const td_tensor *t, char *buf, size_t n)
{
    size_t used = (size_t)snprintf(buf, n, "(");
    for (int i = 0; i < t->ndim && used < n; i++)
        used +=
            (size_t)snprintf(buf + used, n - used, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (used < n) snprintf(buf + used, n - used, ")");
    return buf;
}

td_status td_wrap_dim(int dim, int ndim, int arg, int *out)
{
    int n = ndim > 0 ? ndim : 1;
    if (dim < -n || dim >= n)
        return td_error(TD_ERANGE, arg,
                        "dim %d is out of range for a %d-dim tensor (expected [%d, %d])", dim, ndim,
                        -n, n - 1);
    *out = dim < 0 ? dim + n : dim;
    return TD_OK;
}
