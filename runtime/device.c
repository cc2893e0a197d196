/* Devices: names, the backend of each, moving tensors between them, and
 * the same-device rule every op follows. CUDA is reached only through its
 * backend table, td_cuda_backend(), NULL in a build configured without it
 * (TIDE_HAVE_CUDA), where every CUDA question has a plain answer. */
#include "internal.h"

#include <stdatomic.h>
#include <stdio.h>

#ifndef TIDE_HAVE_CUDA
const td_backend *td_cuda_backend(void) { return NULL; }
#endif

static atomic_bool devices_used;

bool td_devices_used(void) { return atomic_load_explicit(&devices_used, memory_order_relaxed); }

td_device td_device_of(const td_tensor *t)
{
    td_device d = {(td_device_type)t->storage->backend->device_type, t->storage->device};
    return d;
}

bool td_device_eq(td_device a, td_device b) { return a.type == b.type && a.index == b.index; }

const char *td_device_str(td_device d, char *buf, size_t n)
{
    if (d.type == TD_CPU)
        snprintf(buf, n, "cpu");
    else
        snprintf(buf, n, "cuda:%d", d.index);
    return buf;
}

td_status td_device_parse(const char *s, td_device *out)
{
    if (strcmp(s, "cpu") == 0) {
        *out = TD_DEVICE_CPU;
        return TD_OK;
    }
    if (strcmp(s, "cuda") == 0) {
        *out = (td_device){TD_CUDA, 0};
        return TD_OK;
    }
    if (strncmp(s, "cuda:", 5) == 0 && s[5] >= '0' && s[5] <= '9') {
        char *end;
        long i = strtol(s + 5, &end, 10);
        if (*end == '\0' && i < 1024) {
            *out = (td_device){TD_CUDA, (int)i};
            return TD_OK;
        }
    }
    return td_error(TD_EINVAL, 1, "unknown device '%s' (expected 'cpu', 'cuda' or 'cuda:N')", s);
}

/* ---- CUDA, or its absence ---------------------------------------------- */

int td_cuda_device_count(void)
{
    const td_backend *be = td_cuda_backend();
    return be ? be->device_count(NULL) : 0;
}

td_status td_cuda_synchronize(void)
{
    const td_backend *be = td_cuda_backend();
    return be ? be->synchronize() : TD_OK;
}

void td_cuda_empty_cache(void)
{
    const td_backend *be = td_cuda_backend();
    if (be) be->empty_cache();
}

td_status td_cuda_memory(int device, td_cuda_memory_stats *out)
{
    const td_backend *be = td_cuda_backend();
    if (be) return be->memory_stats(device, out);
    memset(out, 0, sizeof *out);
    return TD_OK;
}

int64_t td_cuda_memory_take_allocated(void)
{
    const td_backend *be = td_cuda_backend();
    return be ? be->take_allocated() : 0;
}

bool td_cuda_is_available(void) { return td_cuda_device_count() > 0; }

td_status td_device_check(td_device d)
{
    if (d.type == TD_CPU) return TD_OK;
    char name[32];
    td_device_str(d, name, sizeof name);
    const td_backend *be = td_cuda_backend();
    if (!be)
        return td_error(TD_EINVAL, 0,
                        "device '%s' is not available: this tide was built without CUDA", name);
    const char *why = NULL;
    int n = be->device_count(&why);
    if (n == 0)
        return td_error(TD_EINVAL, 0,
                        "device '%s' is not available: no CUDA GPU is usable here (%s)", name,
                        why ? why : "no device");
    if (d.index >= n)
        return td_error(TD_EINVAL, 0,
                        "device '%s' is out of range: this machine has %d CUDA device%s", name, n,
                        n == 1 ? "" : "s");
    atomic_store(&devices_used, true);
    return TD_OK;
}

const td_backend *td_backend_for(td_device dev)
{
    if (dev.type == TD_CUDA) return td_cuda_backend();
    return dev.type == TD_CPU ? td_cpu_backend() : NULL;
}

/* ---- the same-device rule ------------------------------------------------ */

static td_status mismatch(td_device a, td_device b)
{
    char x[32], y[32];
    return td_error(TD_EINVAL, 0, "expected all tensors on the same device, got %s and %s",
                    td_device_str(a, x, sizeof x), td_device_str(b, y, sizeof y));
}

td_status td_same_device(int n, td_tensor *const *ts)
{
    const td_tensor *first = NULL;
    for (int i = 0; i < n; i++) {
        if (!ts[i]) continue;
        if (!first)
            first = ts[i];
        else if (!td_device_eq(td_device_of(first), td_device_of(ts[i])))
            return mismatch(td_device_of(first), td_device_of(ts[i]));
    }
    return TD_OK;
}

td_status td_op_device(int n, td_tensor *const *ts, td_device *out)
{
    td_device dev = TD_DEVICE_CPU;
    bool have = false;
    for (int i = 0; i < n; i++) {
        if (!ts[i] || (ts[i]->ndim == 0 && td_device_of(ts[i]).type == TD_CPU)) continue;
        if (!have) {
            dev = td_device_of(ts[i]);
            have = true;
        } else if (!td_device_eq(dev, td_device_of(ts[i]))) {
            return mismatch(dev, td_device_of(ts[i]));
        }
    }
    *out = dev;
    return TD_OK;
}

td_status td_require_cpu(const char *name, int n, td_tensor *const *ts)
{
    for (int i = 0; i < n; i++)
        if (ts[i] && td_device_of(ts[i]).type != TD_CPU)
            return td_error(TD_EINVAL, 0, "%s is not implemented on cuda yet", name);
    return TD_OK;
}

/* ---- moving tensors ------------------------------------------------------ */

td_status td_full_on(int ndim, const int64_t *shape, double value, td_dtype dt, td_device dev,
                     td_tensor **out)
{
    td_tensor *t = NULL;
    TD_TRY(td_empty_on(ndim, shape, dt, dev, &t));
    td_backend_of(t)->fill(t, value);
    *out = t;
    return TD_OK;
}

/* a contiguous copy of t on its own device (t itself when contiguous) */
static td_status dense(td_tensor *t, td_tensor **out)
{
    if (td_is_contiguous(t)) {
        td_tensor_retain(t);
        *out = t;
        return TD_OK;
    }
    td_tensor *c = NULL;
    TD_TRY(td_empty_like(t, &c));
    td_backend_of(t)->copy(c, t);
    *out = c;
    return TD_OK;
}

/* the bytes of t, copied to a new contiguous tensor on dev, recording nothing */
static td_status move_raw(td_tensor *t, td_device dev, td_tensor **out)
{
    TD_TRY(td_device_check(dev));
    td_device from = td_device_of(t);
    td_tensor *src = NULL, *dst = NULL, *host = NULL;
    td_status st;
    TD_CHECK(dense(t, &src));
    TD_CHECK(td_empty_on(t->ndim, t->shape, t->dtype, dev, &dst));
    size_t nbytes = (size_t)td_numel(t) * td_dtype_size(t->dtype);
    if (nbytes == 0) goto done;
    if (from.type == TD_CPU) {
        TD_CHECK(td_backend_of(dst)->upload(dev.index, td_data_ptr(dst), td_data_ptr(src), nbytes));
    } else if (dev.type == TD_CPU) {
        TD_CHECK(
            td_backend_of(src)->download(from.index, td_data_ptr(dst), td_data_ptr(src), nbytes));
    } else { /* between two GPUs, through the host (peer copies are a later step) */
        TD_CHECK(td_empty(t->ndim, t->shape, t->dtype, &host));
        TD_CHECK(
            td_backend_of(src)->download(from.index, td_data_ptr(host), td_data_ptr(src), nbytes));
        TD_CHECK(
            td_backend_of(dst)->upload(dev.index, td_data_ptr(dst), td_data_ptr(host), nbytes));
    }
done:
    *out = dst;
    dst = NULL;
fail:
    td_tensor_release(src);
    td_tensor_release(dst);
    td_tensor_release(host);
    return st;
}

td_status td_on_device_raw(td_tensor *t, td_device dev, td_tensor **out)
{
    if (td_device_eq(td_device_of(t), dev)) {
        td_tensor_retain(t);
        *out = t;
        return TD_OK;
    }
    return move_raw(t, dev, out);
}

static td_status to_device_backward(td_node *n, td_tensor *g, td_tensor **gi)
{
    /* back to the device the input came from, which the node records */
    td_tensor *m = NULL;
    TD_TRY(td_to_device(g, n->in_device[0], &m));
    td_status st = td_grad_to_input(n, 0, m, gi);
    td_tensor_release(m);
    return st;
}

td_status td_to_device(td_tensor *t, td_device dev, td_tensor **out)
{
    if (td_device_eq(td_device_of(t), dev)) {
        td_tensor_retain(t);
        *out = t;
        return TD_OK;
    }
    td_tensor *c = NULL;
    TD_TRY(move_raw(t, dev, &c));
    if (td_dtype_is_float(t->dtype) && td_needs_grad(1, &t)) {
        td_node *node;
        td_status st = td_node_new("ToCopyBackward", to_device_backward, 1, &t, &node);
        if (st != TD_OK) {
            td_tensor_release(c);
            return st;
        }
        td_node_attach(node, c);
    }
    *out = c;
    return TD_OK;
}
