/* The data-parallel gradient reducer behind nn.DistributedDataParallel,
 * after PyTorch's (torch/csrc/distributed/c10d/reducer.cpp) and llm.c's
 * overlap: parameters fall into buckets of about bucket_bytes, in the
 * order given (the reverse of the model's, roughly the order backward
 * produces them); when the last gradient of a bucket is accumulated, the
 * gradients are copied into the bucket's flat buffer and its all-reduce
 * starts, while backward goes on with the layers below. Buckets start in
 * index order only, so every rank issues the same collectives in the same
 * order whatever its graph did, and the sums come out bit for bit alike
 * run after run. When the backward ends, the reducer waits for every
 * bucket and writes the averages back into .grad.
 */
#include "dist_engine.h"
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    td_tensor *flat;  /* every parameter's gradient, end to end */
    int first, count; /* its parameters: order[first .. first + count) */
    int waiting;      /* gradients not yet accumulated this backward */
    bool launched;
    td_dist_work *work;
} bucket;

typedef struct {
    td_tensor *param;
    td_tensor *slot; /* a view of the bucket's flat buffer shaped as param */
    int bucket;
    bool ready; /* got a gradient this backward */
} entry;

struct td_ddp {
    int n, n_buckets, next_launch;
    entry *e;
    bucket *b;
    int *by_addr; /* indices into e, sorted by parameter address */
    bool sync, active;
    double wait_s, comm_s;
};

static const entry *sort_base;
static int by_param(const void *a, const void *b)
{
    uintptr_t x = (uintptr_t)sort_base[*(const int *)a].param;
    uintptr_t y = (uintptr_t)sort_base[*(const int *)b].param;
    return x < y ? -1 : x > y;
}

static int find(const td_ddp *d, const td_tensor *leaf)
{
    int lo = 0, hi = d->n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        const td_tensor *p = d->e[d->by_addr[mid]].param;
        if (p == leaf) return d->by_addr[mid];
        if ((uintptr_t)p < (uintptr_t)leaf)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return -1;
}

/* copy the bucket's gradients in (zeros where a parameter got none) and
 * start its average */
static td_status launch(td_ddp *d, bucket *bk)
{
    for (int i = bk->first; i < bk->first + bk->count; i++) {
        entry *en = &d->e[i];
        const td_backend *be = td_backend_of(en->slot);
        if (en->ready && en->param->grad)
            be->copy(en->slot, en->param->grad);
        else
            be->fill(en->slot, 0.0);
    }
    bk->launched = true;
    td_dist_opts o = {.op = TD_DIST_AVG, .async = true, .nocheck = true};
    return td_dist_all_reduce(bk->flat, &o, &bk->work);
}

static td_status launch_ready(td_ddp *d)
{
    while (d->next_launch < d->n_buckets && d->b[d->next_launch].waiting == 0) {
        TD_TRY(launch(d, &d->b[d->next_launch]));
        d->next_launch++;
    }
    return TD_OK;
}

static td_status on_grad(void *ud, td_tensor *leaf)
{
    td_ddp *d = ud;
    if (!d->sync) return TD_OK;
    int i = find(d, leaf);
    if (i < 0 || d->e[i].ready) return TD_OK;
    d->active = true;
    d->e[i].ready = true;
    d->b[d->e[i].bucket].waiting--;
    return launch_ready(d);
}

static void reset(td_ddp *d)
{
    for (int i = 0; i < d->n; i++) d->e[i].ready = false;
    for (int k = 0; k < d->n_buckets; k++) {
        bucket *bk = &d->b[k];
        if (bk->work) td_dist_work_free(bk->work);
        bk->work = NULL;
        bk->launched = false;
        bk->waiting = bk->count;
    }
    d->next_launch = 0;
    d->active = false;
}

static td_status on_end(void *ud, bool ok)
{
    td_ddp *d = ud;
    if (!d->active) return TD_OK;
    td_status st = TD_OK;
    if (!ok) {
        /* the other ranks go on; this one will raise, and the job end */
        reset(d);
        return TD_OK;
    }
    /* buckets whose parameters took no part start now, in order */
    for (; d->next_launch < d->n_buckets && st == TD_OK; d->next_launch++)
        st = launch(d, &d->b[d->next_launch]);
    double t0 = td_dist_now(), comm = 0;
    for (int k = 0; k < d->n_buckets && st == TD_OK; k++) {
        bucket *bk = &d->b[k];
        if (!bk->work) continue;
        st = td_dist_wait(bk->work);
        double a, b;
        td_dist_work_times(bk->work, &a, &b);
        comm += b - a;
    }
    d->wait_s = td_dist_now() - t0;
    d->comm_s = comm;
    bool prev = td_set_grad_enabled(false);
    for (int i = 0; i < d->n && st == TD_OK; i++) {
        entry *en = &d->e[i];
        if (en->param->grad && td_same_shape(en->param->grad, en->param)) {
            td_backend_of(en->param->grad)->copy(en->param->grad, en->slot);
            td_bump_version(en->param->grad);
        } else {
            td_tensor *g = NULL;
            st = td_clone(en->slot, &g);
            if (st == TD_OK) td_set_grad(en->param, g);
            td_tensor_release(g);
        }
    }
    td_set_grad_enabled(prev);
    reset(d);
    return st;
}

void td_ddp_free(td_ddp *d)
{
    if (!d) return;
    td_grad_unlisten(d);
    reset(d);
    for (int i = 0; i < d->n; i++) {
        td_tensor_release(d->e[i].param);
        td_tensor_release(d->e[i].slot);
    }
    for (int k = 0; k < d->n_buckets; k++) td_tensor_release(d->b[k].flat);
    free(d->e);
    free(d->b);
    free(d->by_addr);
    free(d);
}

static td_status make_buckets(td_ddp *d, int64_t cap)
{
    for (int i = 0; i < d->n;) {
        td_tensor *p0 = d->e[i].param;
        int64_t numel = 0;
        int j = i;
        /* one dtype and device per bucket; at least one parameter each */
        while (j < d->n && d->e[j].param->dtype == p0->dtype &&
               td_device_eq(td_device_of(d->e[j].param), td_device_of(p0)) &&
               (j == i ||
                (numel + td_numel(d->e[j].param)) * (int64_t)td_dtype_size(p0->dtype) <= cap)) {
            numel += td_numel(d->e[j].param);
            j++;
        }
        bucket *bk = &d->b[d->n_buckets];
        memset(bk, 0, sizeof *bk);
        bk->first = i;
        bk->count = j - i;
        bk->waiting = bk->count;
        TD_TRY(td_empty_on(1, &numel, p0->dtype, td_device_of(p0), &bk->flat));
        td_backend_of(bk->flat)->fill(bk->flat, 0.0);
        int64_t off = 0;
        for (int k = i; k < j; k++) {
            td_tensor *p = d->e[k].param, *piece = NULL;
            TD_TRY(td_narrow(bk->flat, 0, off, td_numel(p), &piece));
            td_status st = td_view(piece, p->ndim, p->shape, &d->e[k].slot);
            td_tensor_release(piece);
            TD_TRY(st);
            d->e[k].bucket = d->n_buckets;
            off += td_numel(p);
        }
        d->n_buckets++;
        i = j;
    }
    return TD_OK;
}

td_status td_ddp_new(int n, td_tensor *const *params, int64_t bucket_bytes, td_ddp **out)
{
    if (!td_dist_is_initialized())
        return td_error(TD_EINVAL, 0,
                        "DistributedDataParallel: tide.distributed is not initialized (call "
                        "tide.distributed.init{} first)");
    if (bucket_bytes < 1)
        return td_error(TD_EINVAL, 2, "DistributedDataParallel: bucket size must be positive");
    for (int i = 0; i < n; i++) {
        if (!td_is_leaf(params[i]) || !params[i]->requires_grad)
            return td_error(TD_EINVAL, 1,
                            "DistributedDataParallel: parameter %d is not a leaf that requires "
                            "grad",
                            i + 1);
        if (!td_dtype_is_float(params[i]->dtype))
            return td_error(TD_EDTYPE, 1, "DistributedDataParallel: parameter %d is %s, not float",
                            i + 1, td_dtype_name(params[i]->dtype));
        TD_TRY(td_refuse_lowp(params[i]->dtype, 1, "DistributedDataParallel", "a parameter"));
        for (int j = 0; j < i; j++)
            if (params[j] == params[i])
                return td_error(TD_EINVAL, 1,
                                "DistributedDataParallel: parameter %d is parameter %d again",
                                i + 1, j + 1);
    }
    td_ddp *d = calloc(1, sizeof *d);
    if (!d) return td_error(TD_ENOMEM, 0, "out of memory");
    d->n = n;
    d->sync = true;
    d->e = calloc((size_t)(n ? n : 1), sizeof *d->e);
    d->b = calloc((size_t)(n ? n : 1), sizeof *d->b);
    d->by_addr = calloc((size_t)(n ? n : 1), sizeof *d->by_addr);
    if (!d->e || !d->b || !d->by_addr) {
        td_ddp_free(d);
        return td_error(TD_ENOMEM, 0, "out of memory");
    }
    for (int i = 0; i < n; i++) {
        td_tensor_retain(params[i]);
        d->e[i].param = params[i];
        d->by_addr[i] = i;
    }
    sort_base = d->e;
    qsort(d->by_addr, (size_t)n, sizeof *d->by_addr, by_param);
    td_status st = make_buckets(d, bucket_bytes);
    td_grad_listener l = {on_grad, on_end, d};
    if (st == TD_OK) st = td_grad_listen(&l);
    if (st != TD_OK) {
        td_ddp_free(d);
        return st;
    }
    *out = d;
    return TD_OK;
}

void td_ddp_set_sync(td_ddp *d, bool on) { d->sync = on; }
int td_ddp_bucket_count(const td_ddp *d) { return d->n_buckets; }

void td_ddp_last_timing(const td_ddp *d, double *wait_s, double *comm_s)
{
    *wait_s = d->wait_s;
    *comm_s = d->comm_s;
}
