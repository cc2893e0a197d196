/* The DataLoader's prefetch thread, and the small generator that loaders
 * and samplers own.
 *
 * One thread per epoch assembles batches into a ring of DEPTH slots, at
 * most DEPTH batches ahead of the consumer. The epoch's order and the key
 * of its random transforms are fixed before the thread starts, so the
 * batches do not depend on its timing. The thread reads the source
 * tensors' data only (never their refcounts, which are not atomic) and
 * creates new tensors that nobody else sees until the consumer takes them
 * under the mutex. Errors are thread-local: the thread copies its message
 * into the loader and the consumer re-raises it on its own thread.
 */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>

/* ---- generator -------------------------------------------------------- */

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void td_rng_seed(td_rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t td_rng_next(td_rng *r)
{
    uint64_t *s = r->s;
    uint64_t res = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return res;
}

uint64_t td_rng_below(td_rng *r, uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n, x;
    do x = td_rng_next(r);
    while (x >= limit);
    return x % n;
}

double td_rng_uniform(td_rng *r) { return (double)(td_rng_next(r) >> 11) * 0x1.0p-53; }

void td_rng_permutation(td_rng *r, int64_t n, int64_t *out)
{
    for (int64_t i = 0; i < n; i++) out[i] = i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)td_rng_below(r, (uint64_t)i + 1), t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
}

typedef struct {
    double key;
    int64_t idx;
} keyed;

static int by_key_desc(const void *a, const void *b)
{
    const keyed *x = a, *y = b;
    if (x->key != y->key) return x->key < y->key ? 1 : -1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

td_status td_weighted_sample(td_rng *r, const double *w, int64_t n, int64_t num, bool replacement,
                             int64_t *out)
{
    if (n <= 0) return td_error(TD_EINVAL, 1, "weights must not be empty");
    if (num < 0)
        return td_error(TD_EINVAL, 0, "num_samples must be non-negative, got %lld", (long long)num);
    int64_t positive = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!(w[i] >= 0) || w[i] == INFINITY)
            return td_error(TD_EINVAL, 1,
                            "weight %lld is %g (weights must be finite and non-negative)",
                            (long long)i, w[i]);
        positive += w[i] > 0;
    }
    if (positive == 0) return td_error(TD_EINVAL, 1, "the weights sum to zero");
    if (!replacement && num > positive)
        return td_error(TD_EINVAL, 0,
                        "cannot draw %lld samples without replacement from %lld non-zero weights",
                        (long long)num, (long long)positive);
    if (replacement) {
        double *cum = malloc((size_t)n * sizeof *cum);
        if (!cum) return td_error(TD_ENOMEM, 0, "out of memory");
        double acc = 0;
        for (int64_t i = 0; i < n; i++) cum[i] = acc += w[i];
        for (int64_t k = 0; k < num; k++) {
            double u = td_rng_uniform(r) * acc;
            int64_t lo = 0, hi = n - 1; /* first i with cum[i] > u */
            while (lo < hi) {
                int64_t mid = lo + (hi - lo) / 2;
                if (cum[mid] > u)
                    hi = mid;
                else
                    lo = mid + 1;
            }
            while (w[lo] == 0 && lo + 1 < n) lo++; /* never a zero weight */
            out[k] = lo;
        }
        free(cum);
        return TD_OK;
    }
    /* without replacement: Efraimidis-Spirakis keys log(u) / w (the order
     * of u^(1/w)), the num largest: the same distribution as successive
     * draws renormalised each time, as torch.multinomial */
    keyed *k = malloc((size_t)n * sizeof *k);
    if (!k) return td_error(TD_ENOMEM, 0, "out of memory");
    for (int64_t i = 0; i < n; i++) {
        double u = 1.0 - td_rng_uniform(r); /* (0, 1] */
        k[i].key = w[i] > 0 ? log(u) / w[i] : -INFINITY;
        k[i].idx = i;
    }
    qsort(k, (size_t)n, sizeof *k, by_key_desc);
    for (int64_t j = 0; j < num; j++) out[j] = k[j].idx;
    free(k);
    return TD_OK;
}

/* ---- the loader ------------------------------------------------------- */

#define DEPTH 2

typedef struct {
    td_tensor *x, *y;
    void *staged; /* a pinned copy of x's then y's data (at y_off), or NULL */
    size_t y_off;
} batch;

struct td_loader {
    td_tensor *images, *labels; /* contiguous, retained */
    int64_t n, row_elems, label_elems;
    td_dtype out_dtype;
    int64_t batch_size;
    bool drop_last;
    int n_transforms;
    td_transform *transforms;
    /* the epoch, fixed before the thread starts */
    int64_t *order, len, nbatches;
    uint64_t key;
    /* shared with the thread, under mu */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    bool running;
    bool stop, failed;
    td_status fail_status;
    char fail_msg[1024];
    int64_t produced, consumed;
    batch ring[DEPTH];
    /* CUDA batches: the device's backend (NULL: batches stay on the CPU),
     * and when pinning, one page-locked staging buffer per ring slot; only
     * the thread (and td_loader_free, after it) touches pin and pin_cap */
    td_device device;
    const td_backend *be;
    bool pin;
    void *pin_buf[DEPTH];
    size_t pin_cap[DEPTH];
};

td_status td_loader_new(td_tensor *images, td_tensor *labels, const td_loader_opts *o,
                        td_loader **out)
{
    *out = NULL;
    if (images->ndim < 1) return td_error(TD_ESHAPE, 1, "images must have a first (sample) dim");
    if (labels->ndim < 1) return td_error(TD_ESHAPE, 2, "labels must have a first (sample) dim");
    if (images->shape[0] != labels->shape[0])
        return td_error(TD_ESHAPE, 2, "%lld images but %lld labels", (long long)images->shape[0],
                        (long long)labels->shape[0]);
    if (o->batch_size < 1)
        return td_error(TD_EINVAL, 0, "batch_size must be at least 1, got %lld",
                        (long long)o->batch_size);
    td_dtype odt = images->dtype == TD_UINT8 ? TD_FLOAT32 : images->dtype;
    for (int t = 0; t < o->n_transforms; t++) {
        const td_transform *tf = &o->transforms[t];
        if (odt != TD_FLOAT32)
            return td_error(TD_EDTYPE, 0,
                            "built-in transforms need uint8 or float32 images, got %s",
                            td_dtype_name(images->dtype));
        int want = tf->kind == TD_TF_NORMALIZE ? 2 : 4;
        if ((want == 4 && images->ndim != 4) || images->ndim < want)
            return td_error(TD_ESHAPE, 0, "transform %d needs images (N, C, H, W), got %d dims",
                            t + 1, images->ndim);
        if (tf->kind == TD_TF_NORMALIZE)
            for (int c = 0; c < tf->nch; c++)
                if (!(tf->std[c] != 0))
                    return td_error(TD_EINVAL, 0, "normalize: std %d is zero", c + 1);
    }
    if (o->device.type != TD_CPU) TD_TRY(td_device_check(o->device));
    td_loader *l = calloc(1, sizeof *l);
    if (!l) return td_error(TD_ENOMEM, 0, "out of memory");
    td_status st = td_contiguous(images, &l->images);
    if (st == TD_OK) st = td_contiguous(labels, &l->labels);
    if (st == TD_OK && o->n_transforms) {
        l->transforms = malloc((size_t)o->n_transforms * sizeof *l->transforms);
        if (!l->transforms)
            st = td_error(TD_ENOMEM, 0, "out of memory");
        else
            memcpy(l->transforms, o->transforms, (size_t)o->n_transforms * sizeof *l->transforms);
    }
    if (st != TD_OK) {
        td_tensor_release(l->images);
        td_tensor_release(l->labels);
        free(l);
        return st;
    }
    l->n = images->shape[0];
    l->device = o->device;
    if (o->device.type != TD_CPU) {
        l->be = td_backend_for(o->device);
        l->pin = o->pin_memory && l->be && l->be->host_alloc && l->be->upload_async &&
                 l->be->stream_sync;
    }
    l->row_elems =
        l->n ? td_numel(images) / l->n : td_shape_numel(images->ndim - 1, images->shape + 1);
    l->label_elems =
        l->n ? td_numel(labels) / l->n : td_shape_numel(labels->ndim - 1, labels->shape + 1);
    l->out_dtype = odt;
    l->batch_size = o->batch_size;
    l->drop_last = o->drop_last;
    l->n_transforms = o->n_transforms;
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    *out = l;
    return TD_OK;
}

int64_t td_loader_num_batches(const td_loader *l, int64_t len)
{
    return l->drop_last ? len / l->batch_size : (len + l->batch_size - 1) / l->batch_size;
}

static td_status gather(td_loader *l, int64_t first, int64_t count, td_tensor **ox, td_tensor **oy)
{
    td_tensor *x = NULL, *y = NULL;
    int64_t shape[TD_MAX_DIMS];
    shape[0] = count;
    for (int d = 1; d < l->images->ndim; d++) shape[d] = l->images->shape[d];
    TD_TRY(td_empty(l->images->ndim, shape, l->out_dtype, &x));
    for (int d = 1; d < l->labels->ndim; d++) shape[d] = l->labels->shape[d];
    td_status st = td_empty(l->labels->ndim, shape, l->labels->dtype, &y);
    if (st != TD_OK) {
        td_tensor_release(x);
        return st;
    }
    const int64_t *order = l->order + first;
    int64_t re = l->row_elems;
    if (l->images->dtype == TD_UINT8) {
        const uint8_t *src = td_data_ptr(l->images);
        float *dst = td_data_ptr(x);
        const float scale = 1.0f / 255.0f;
        for (int64_t j = 0; j < count; j++) {
            const uint8_t *s = src + order[j] * re;
            float *d = dst + j * re;
            for (int64_t i = 0; i < re; i++) d[i] = (float)s[i] * scale;
        }
    } else {
        size_t rb = (size_t)re * td_dtype_size(l->images->dtype);
        const char *src = td_data_ptr(l->images);
        char *dst = td_data_ptr(x);
        for (int64_t j = 0; j < count; j++) memcpy(dst + j * rb, src + order[j] * rb, rb);
    }
    size_t lb = (size_t)l->label_elems * td_dtype_size(l->labels->dtype);
    const char *lsrc = td_data_ptr(l->labels);
    char *ldst = td_data_ptr(y);
    for (int64_t j = 0; j < count; j++) memcpy(ldst + j * lb, lsrc + order[j] * lb, lb);
    *ox = x;
    *oy = y;
    return TD_OK;
}

static td_status make_batch(td_loader *l, int64_t b, td_tensor **ox, td_tensor **oy)
{
    int64_t first = b * l->batch_size, count = l->len - first;
    if (count > l->batch_size) count = l->batch_size;
    td_tensor *x, *y;
    TD_TRY(gather(l, first, count, &x, &y));
    for (int t = 0; t < l->n_transforms; t++) {
        td_tensor *nx;
        td_status st = td_transform_apply(
            &l->transforms[t], x, l->key + (uint64_t)(t + 1) * 0xd1b54a32d192ed03ull, first, &nx);
        td_tensor_release(x);
        if (st != TD_OK) {
            td_tensor_release(y);
            return st;
        }
        x = nx;
    }
    *ox = x;
    *oy = y;
    return TD_OK;
}

/* copies batch b's data into its slot's pinned buffer, once the upload
 * that last read that buffer is done; without pinned memory (none could
 * be had) the batch goes unstaged and is uploaded by an ordinary copy */
static td_status stage(td_loader *l, int64_t b, batch *out)
{
    int slot = (int)(b % DEPTH);
    size_t xb = (size_t)td_numel(out->x) * td_dtype_size(out->x->dtype);
    size_t yb = (size_t)td_numel(out->y) * td_dtype_size(out->y->dtype);
    size_t y_off = (xb + 255) & ~(size_t)255, need = y_off + yb;
    TD_TRY(l->be->stream_sync(l->device.index)); /* the slot's last upload is done */
    if (l->pin_cap[slot] < need) {
        l->be->host_free(l->pin_buf[slot]);
        l->pin_buf[slot] = l->be->host_alloc(need);
        l->pin_cap[slot] = l->pin_buf[slot] ? need : 0;
    }
    if (!l->pin_buf[slot]) return TD_OK;
    memcpy(l->pin_buf[slot], td_data_ptr(out->x), xb);
    memcpy((char *)l->pin_buf[slot] + y_off, td_data_ptr(out->y), yb);
    out->staged = l->pin_buf[slot];
    out->y_off = y_off;
    return TD_OK;
}

static void *worker(void *arg)
{
    td_loader *l = arg;
    for (int64_t b = 0; b < l->nbatches; b++) {
        pthread_mutex_lock(&l->mu);
        while (!l->stop && l->produced - l->consumed >= DEPTH) pthread_cond_wait(&l->cv, &l->mu);
        bool stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (stop) break;
        td_tensor *x = NULL, *y = NULL;
        td_status st = make_batch(l, b, &x, &y);
        batch got = {x, y, NULL, 0};
        if (st == TD_OK && l->pin) {
            st = stage(l, b, &got);
            if (st != TD_OK) {
                td_tensor_release(x);
                td_tensor_release(y);
            }
        }
        pthread_mutex_lock(&l->mu);
        if (st != TD_OK) {
            l->failed = true;
            l->fail_status = st;
            snprintf(l->fail_msg, sizeof l->fail_msg, "%s", td_last_error());
        } else {
            l->ring[b % DEPTH] = got;
            l->produced++;
        }
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
        if (st != TD_OK) break;
    }
    return NULL;
}

void td_loader_stop(td_loader *l)
{
    if (!l->running) return;
    pthread_mutex_lock(&l->mu);
    l->stop = true;
    pthread_cond_broadcast(&l->cv);
    pthread_mutex_unlock(&l->mu);
    pthread_join(l->thread, NULL);
    l->running = false;
    for (int64_t b = l->consumed; b < l->produced; b++) {
        batch *s = &l->ring[b % DEPTH];
        td_tensor_release(s->x);
        td_tensor_release(s->y);
        s->x = s->y = NULL;
    }
    l->consumed = l->produced = 0;
    free(l->order);
    l->order = NULL;
    l->len = l->nbatches = 0;
}

td_status td_loader_start(td_loader *l, const int64_t *order, int64_t len, uint64_t key)
{
    td_loader_stop(l);
    if (len < 0) return td_error(TD_EINVAL, 0, "negative epoch length");
    for (int64_t i = 0; i < len; i++)
        if (order[i] < 0 || order[i] >= l->n)
            return td_error(TD_ERANGE, 0,
                            "sample index %lld (position %lld of the epoch) is outside [0, %lld)",
                            (long long)order[i], (long long)i, (long long)l->n);
    l->order = malloc((size_t)(len ? len : 1) * sizeof *l->order);
    if (!l->order) return td_error(TD_ENOMEM, 0, "out of memory");
    if (len) memcpy(l->order, order, (size_t)len * sizeof *order);
    l->len = len;
    l->nbatches = td_loader_num_batches(l, len);
    l->key = key;
    l->stop = l->failed = false;
    l->produced = l->consumed = 0;
    int e = pthread_create(&l->thread, NULL, worker, l);
    if (e) {
        free(l->order);
        l->order = NULL;
        return td_error(TD_ENOMEM, 0, "cannot start the loader thread (%s)", strerror(e));
    }
    l->running = true;
    return TD_OK;
}

/* the CPU batch b on the loader's device: an asynchronous upload from its
 * pinned copy, or an ordinary one; the CPU tensors are released */
static td_status to_device(td_loader *l, batch *b, td_tensor **ox, td_tensor **oy)
{
    td_tensor *gx = NULL, *gy = NULL;
    td_status st;
    if (b->staged) {
        st = td_empty_on(b->x->ndim, b->x->shape, b->x->dtype, l->device, &gx);
        if (st == TD_OK) st = td_empty_on(b->y->ndim, b->y->shape, b->y->dtype, l->device, &gy);
        if (st == TD_OK)
            st = l->be->upload_async(l->device.index, td_data_ptr(gx), b->staged,
                                     (size_t)td_numel(gx) * td_dtype_size(gx->dtype));
        if (st == TD_OK)
            st = l->be->upload_async(l->device.index, td_data_ptr(gy), (char *)b->staged + b->y_off,
                                     (size_t)td_numel(gy) * td_dtype_size(gy->dtype));
    } else {
        st = td_to_device(b->x, l->device, &gx);
        if (st == TD_OK) st = td_to_device(b->y, l->device, &gy);
    }
    td_tensor_release(b->x);
    td_tensor_release(b->y);
    if (st != TD_OK) {
        if (gx) td_tensor_release(gx);
        if (gy) td_tensor_release(gy);
        return st;
    }
    *ox = gx;
    *oy = gy;
    return TD_OK;
}

td_status td_loader_next(td_loader *l, td_tensor **x, td_tensor **y)
{
    *x = *y = NULL;
    if (!l->running) return TD_OK;
    pthread_mutex_lock(&l->mu);
    while (l->consumed == l->produced && !l->failed && l->produced < l->nbatches)
        pthread_cond_wait(&l->cv, &l->mu);
    td_status st = TD_OK;
    batch got = {0};
    if (l->consumed < l->produced) {
        batch *s = &l->ring[l->consumed % DEPTH];
        got = *s;
        s->x = s->y = NULL;
        s->staged = NULL;
    } else if (l->failed) {
        st = td_error(l->fail_status, 0, "%s", l->fail_msg);
    }
    pthread_mutex_unlock(&l->mu);
    if (got.x) {
        /* the upload starts before consumed moves on: until then the thread
         * leaves this slot (and its pinned buffer) alone */
        if (l->be)
            st = to_device(l, &got, x, y);
        else
            *x = got.x, *y = got.y;
        pthread_mutex_lock(&l->mu);
        l->consumed++;
        pthread_cond_broadcast(&l->cv);
        pthread_mutex_unlock(&l->mu);
    }
    if (!*x) td_loader_stop(l); /* end of epoch or failure: join now */
    return st;
}

void td_loader_free(td_loader *l)
{
    if (!l) return;
    td_loader_stop(l);
    if (l->pin) {
        (void)l->be->stream_sync(l->device.index); /* no upload still reads them */
        for (int i = 0; i < DEPTH; i++) l->be->host_free(l->pin_buf[i]);
    }
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv);
    td_tensor_release(l->images);
    td_tensor_release(l->labels);
    free(l->transforms);
    free(l);
}
