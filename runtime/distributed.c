/* tide.distributed's front-end: checks the arguments once, stages
 * non-contiguous (and, for MPI, device) tensors into contiguous buffers,
 * picks the engine (MPI for CPU tensors, NCCL for CUDA ones, a world of
 * one when no launcher started us), and keeps the collectives in one
 * order on every rank.
 *
 * Non-blocking MPI collectives run on one communication thread in the
 * order they were started; MPI's own non-blocking collectives were slower
 * than its blocking ones here (at 16 MB, 9.9 against 7.4 ms), and would
 * only advance while we call into MPI. A blocking call with nothing
 * queued runs on the caller's thread, so small messages pay no handoff.
 * Results are copied back and averaged on the caller's thread at wait,
 * where the tensor code may run its OpenMP kernels.
 */
#include "dist_engine.h"
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static struct {
    bool initialized, finalized, mpi, nccl, nccl_tried;
    int rank, world, local_rank, local_size, nccl_device;
    td_dist_backend backend;
    double timeout;
} S = {.world = 1, .local_size = 1};

struct td_dist_work {
    td_coll c;
    const char *fname;
    td_tensor *user; /* written in place (all_reduce, broadcast) */
    td_tensor *buf;  /* what the engine writes: user itself, or a staging copy */
    td_tensor *send; /* all_gather, reduce_scatter: the staged input */
    td_tensor *out;  /* all_gather, reduce_scatter: the tensor handed back */
    bool avg;        /* divide by the world size at the end (MPI) */
    bool nccl;
    void *event;
    bool done, finished;
    double t_start, t_end; /* when the engine ran it (MPI) */
    td_status st;
    int arg;
    char msg[1024];
    td_dist_work *next;
};

/* ---- names ------------------------------------------------------------ */

static const char *const op_names[] = {"sum", "avg", "max", "min", "prod"};

td_status td_dist_op_parse(const char *s, td_dist_op *out)
{
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, op_names[i])) {
            *out = (td_dist_op)i;
            return TD_OK;
        }
    return td_error(TD_EINVAL, 0, "unknown op '%s' (expected sum, avg, max, min or prod)", s);
}

const char *td_dist_op_name(td_dist_op op)
{
    return op >= 0 && op <= TD_DIST_PROD ? op_names[op] : "?";
}

bool td_dist_is_initialized(void) { return S.initialized; }
int td_dist_rank(void) { return S.rank; }
int td_dist_world_size(void) { return S.world; }
int td_dist_local_rank(void) { return S.local_rank; }
int td_dist_local_size(void) { return S.local_size; }
int td_dist_launcher_local_size(void) { return td_mpi_launcher_local_size(); }

const char *td_dist_backend_name(void)
{
    if (!S.initialized) return "none";
    if (S.mpi) return S.nccl ? "mpi+nccl" : "mpi";
    return S.nccl ? "nccl" : "self";
}

/* ---- the communication thread ----------------------------------------- */

static pthread_mutex_t q_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t q_cv = PTHREAD_COND_INITIALIZER;
static td_dist_work *q_head, *q_tail;
static bool q_busy, q_thread_up, q_stop;
static pthread_t q_thread;

static void self_run(const td_coll *c)
{
    /* a world of one: gathering and scattering copy, the rest is as is */
    if (c->sig.kind == TD_COLL_ALL_GATHER || c->sig.kind == TD_COLL_REDUCE_SCATTER)
        if (c->recv != c->send) memcpy(c->recv, c->send, (size_t)c->count * c->elem);
}

double td_dist_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void td_dist_work_times(const td_dist_work *w, double *start, double *end)
{
    *start = w->t_start;
    *end = w->t_end;
}

static void execute(td_dist_work *w)
{
    w->t_start = td_dist_now();
    td_clear_error();
    w->st = S.mpi ? td_mpi_run(&w->c, w->fname) : TD_OK;
    if (!S.mpi) self_run(&w->c);
    w->t_end = td_dist_now();
    if (w->st != TD_OK) {
        snprintf(w->msg, sizeof w->msg, "%s", td_last_error());
        w->arg = td_last_error_arg();
    }
}

/* called and returning with q_mu held: w runs with the lock released,
 * marked busy so nothing else starts meanwhile */
static void run_exclusive(td_dist_work *w)
{
    q_busy = true;
    pthread_mutex_unlock(&q_mu);
    execute(w);
    pthread_mutex_lock(&q_mu);
    q_busy = false;
    w->done = true;
    pthread_cond_broadcast(&q_cv);
}

static void *comm_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&q_mu);
    for (;;) {
        while (!q_stop && (!q_head || q_busy)) pthread_cond_wait(&q_cv, &q_mu);
        if (q_stop && !q_head) break;
        td_dist_work *w = q_head;
        q_head = w->next;
        if (!q_head) q_tail = NULL;
        run_exclusive(w);
    }
    pthread_mutex_unlock(&q_mu);
    return NULL;
}

/* blocking: run here when nothing is queued, else queue and wait */
static td_status submit(td_dist_work *w, bool async)
{
    pthread_mutex_lock(&q_mu);
    if (!async && !q_head && !q_busy) {
        run_exclusive(w);
        pthread_mutex_unlock(&q_mu);
        return TD_OK;
    }
    if (!q_thread_up) {
        q_stop = false;
        if (pthread_create(&q_thread, NULL, comm_main, NULL) != 0) {
            pthread_mutex_unlock(&q_mu);
            return td_error(TD_ENOMEM, 0, "%s: cannot start the communication thread", w->fname);
        }
        q_thread_up = true;
    }
    w->next = NULL;
    if (q_tail)
        q_tail->next = w;
    else
        q_head = w;
    q_tail = w;
    pthread_cond_broadcast(&q_cv);
    pthread_mutex_unlock(&q_mu);
    return TD_OK;
}

static void drain(void)
{
    pthread_mutex_lock(&q_mu);
    while (q_head || q_busy) pthread_cond_wait(&q_cv, &q_mu);
    pthread_mutex_unlock(&q_mu);
}

static void stop_thread(void)
{
    pthread_mutex_lock(&q_mu);
    bool up = q_thread_up;
    q_stop = true;
    pthread_cond_broadcast(&q_cv);
    pthread_mutex_unlock(&q_mu);
    if (up) pthread_join(q_thread, NULL);
    q_thread_up = false;
}

/* ---- handles ------------------------------------------------------------ */

static void work_release(td_dist_work *w)
{
    td_tensor_release(w->user);
    td_tensor_release(w->buf);
    td_tensor_release(w->send);
    td_tensor_release(w->out);
    if (w->event) td_cuda_backend()->nccl->event_free(w->event);
    free(w);
}

bool td_dist_work_is_done(td_dist_work *w)
{
    if (w->finished) return true;
    pthread_mutex_lock(&q_mu);
    bool d = w->done;
    pthread_mutex_unlock(&q_mu);
    return d;
}

/* on the caller's thread: the engine is done; put the result where it goes */
static td_status finish(td_dist_work *w)
{
    if (w->st != TD_OK) return td_error(w->st, w->arg, "%s", w->msg);
    bool prev = td_set_grad_enabled(false);
    td_status st = TD_OK;
    td_tensor *target = w->user ? w->user : w->out;
    if (w->avg) {
        td_tensor *q = NULL;
        st = td_binary_scalar(TD_DIV, w->buf, (double)S.world, false, &q);
        if (st == TD_OK) td_backend_of(w->buf)->copy(w->buf, q);
        td_tensor_release(q);
    }
    if (st == TD_OK && target && w->buf != target) {
        td_tensor *m = NULL;
        st = td_on_device_raw(w->buf, td_device_of(target), &m);
        if (st == TD_OK) td_backend_of(target)->copy(target, m);
        td_tensor_release(m);
    }
    if (w->user) td_bump_version(w->user);
    td_set_grad_enabled(prev);
    return st;
}

td_status td_dist_wait(td_dist_work *w)
{
    if (w->finished) return w->st == TD_OK ? TD_OK : td_error(w->st, w->arg, "%s", w->msg);
    if (w->nccl) {
        td_clear_error();
        w->done = true;
        w->st = td_cuda_backend()->nccl->wait(w->event, S.timeout);
        if (w->st != TD_OK) {
            snprintf(w->msg, sizeof w->msg, "%s: %s", w->fname, td_last_error());
            w->arg = 0;
        }
    } else {
        pthread_mutex_lock(&q_mu);
        while (!w->done) pthread_cond_wait(&q_cv, &q_mu);
        pthread_mutex_unlock(&q_mu);
    }
    td_status st = finish(w);
    if (st != TD_OK && w->st == TD_OK) {
        w->st = st;
        snprintf(w->msg, sizeof w->msg, "%s", td_last_error());
    }
    w->finished = true;
    return st;
}

void td_dist_work_free(td_dist_work *w)
{
    if (!w) return;
    if (!w->finished) td_dist_wait(w);
    work_release(w);
}

/* ---- init and the end ------------------------------------------------- */

static void at_exit(void)
{
    if (!S.initialized || S.finalized) return;
    if (td_dist_finalize() != TD_OK) {
        fprintf(stderr, "tide.distributed: at exit: %s\n", td_last_error());
        td_dist_abort(1);
    }
}

static td_status nccl_start(int device);

td_status td_dist_init(const td_dist_init_opts *o)
{
    if (S.initialized) return td_error(TD_EINVAL, 0, "init: already initialized");
    if (S.finalized)
        return td_error(TD_EINVAL, 0,
                        "init: tide.distributed was finalized, and MPI cannot start again in the "
                        "same process");
    if (!(o->timeout > 0))
        return td_error(TD_EINVAL, 1,
                        "init: option 'timeout' must be a positive number of "
                        "seconds");
    S.timeout = o->timeout;
    S.backend = o->backend;
    bool launched = td_mpi_launched();
    if (launched || o->backend == TD_DIST_MPI) {
        TD_TRY(td_mpi_init(o->timeout, &S.rank, &S.world, &S.local_rank, &S.local_size));
        S.mpi = true;
    }
    S.initialized = true;
    static bool registered;
    if (!registered) atexit(at_exit);
    registered = true;
    if (o->backend == TD_DIST_NCCL) {
        int n = td_cuda_device_count();
        td_status st = n > 0 ? nccl_start(S.local_rank % n)
                             : td_error(TD_EINVAL, 0,
                                        "init: backend 'nccl' needs a CUDA device, and this "
                                        "machine has none usable");
        if (st != TD_OK) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", td_last_error());
            td_dist_finalize();
            return td_error(st, 0, "%s", msg);
        }
    }
    return TD_OK;
}

td_status td_dist_finalize(void)
{
    if (!S.initialized) return TD_OK;
    drain();
    td_status st = TD_OK;
    if (S.mpi) {
        td_dist_work w = {.fname = "finalize"};
        w.c.sig.kind = TD_COLL_FINALIZE;
        execute(&w);
        if (w.st != TD_OK) st = td_error(w.st, w.arg, "%s", w.msg);
    }
    stop_thread();
    if (S.nccl) td_cuda_backend()->nccl->destroy();
    if (S.mpi) td_mpi_finalize();
    bool mpi = S.mpi;
    memset(&S, 0, sizeof S);
    S.world = S.local_size = 1;
    S.finalized = mpi;
    return st;
}

void td_dist_abort(int code)
{
    if (!S.initialized || !S.mpi || S.world < 2) return;
    if (S.nccl) td_cuda_backend()->nccl->abort();
    td_mpi_abort(code);
}

/* ---- NCCL --------------------------------------------------------------- */

static td_status nccl_start(int device)
{
    const td_backend *cu = td_cuda_backend();
    const char *why = "this tide was built without CUDA";
    if (!cu || !cu->nccl || !cu->nccl->available(&why))
        return td_error(TD_EINVAL, 0, "NCCL is not available: %s", why);
    unsigned char id[TD_NCCL_ID_BYTES] = {0};
    if (S.rank == 0) TD_TRY(cu->nccl->unique_id(id));
    if (S.mpi) {
        td_dist_work w = {.fname = "init"};
        w.c.sig.kind = TD_COLL_NCCL_ID;
        w.c.send = w.c.recv = id;
        w.c.count = TD_NCCL_ID_BYTES;
        w.c.elem = 1;
        w.c.check = true;
        TD_TRY(submit(&w, false));
        if (w.st != TD_OK) return td_error(w.st, w.arg, "%s", w.msg);
    }
    TD_TRY(cu->nccl->init(id, S.world, S.rank, device));
    S.nccl = true;
    S.nccl_device = device;
    return TD_OK;
}

/* CUDA tensors go through NCCL when it is up or can be brought up (auto),
 * else through MPI by way of the host */
static td_status use_nccl(const char *fname, td_tensor *t, bool *yes)
{
    *yes = false;
    if (t->storage->backend->device_type != TD_CUDA) return TD_OK;
    int dev = t->storage->device;
    if (!S.nccl && !S.nccl_tried && S.backend == TD_DIST_AUTO && (S.world > 1 || !S.mpi)) {
        S.nccl_tried = true;
        if (S.world > 1 && nccl_start(dev) != TD_OK && S.rank == 0)
            fprintf(stderr,
                    "tide.distributed: %s; CUDA tensors go through MPI by way of the host\n",
                    td_last_error());
    }
    if (!S.nccl) return TD_OK;
    if (dev != S.nccl_device)
        return td_error(TD_EINVAL, 1,
                        "%s: this rank's NCCL communicator is on cuda:%d, the tensor on cuda:%d",
                        fname, S.nccl_device, dev);
    *yes = true;
    return TD_OK;
}

static td_status nccl_issue(td_dist_work *w)
{
    const struct td_nccl_kernels *k = td_cuda_backend()->nccl;
    const td_coll *c = &w->c;
    td_dtype dt = (td_dtype)c->sig.dtype;
    td_dist_op op = (td_dist_op)c->sig.op;
    switch ((td_coll_kind)c->sig.kind) {
    case TD_COLL_ALL_REDUCE: TD_TRY(k->all_reduce(c->recv, c->count, dt, op)); break;
    case TD_COLL_BROADCAST: TD_TRY(k->broadcast(c->recv, c->count, dt, c->sig.root)); break;
    case TD_COLL_ALL_GATHER: TD_TRY(k->all_gather(c->send, c->recv, c->count, dt)); break;
    case TD_COLL_REDUCE_SCATTER:
        TD_TRY(k->reduce_scatter(c->send, c->recv, c->count, dt, op));
        break;
    default: break;
    }
    return k->record(&w->event);
}

/* ---- the collectives ------------------------------------------------------ */

static td_status check_common(const char *fname, td_tensor *t)
{
    if (!S.initialized)
        return td_error(TD_EINVAL, 0,
                        "%s: tide.distributed is not initialized (call tide.distributed.init{} "
                        "first)",
                        fname);
    if (!t->storage->data && td_numel(t) > 0)
        return td_error(TD_EINVAL, 1, "%s: the tensor has no storage", fname);
    return td_refuse_lowp(t->dtype, 1, fname, "the tensor"); /* MPI has no such type */
}

static td_status check_writable(const char *fname, td_tensor *t)
{
    if (td_grad_enabled() && t->requires_grad && td_is_leaf(t))
        return td_error(TD_EGRAD, 1,
                        "%s: a leaf tensor that requires grad cannot be changed in place (do it "
                        "inside tide.no_grad)",
                        fname);
    return TD_OK;
}

/* a contiguous buffer with t's values, on the host when `host` */
static td_status stage(td_tensor *t, bool host, td_tensor **out)
{
    if (host && td_device_of(t).type != TD_CPU) {
        td_tensor *m = NULL;
        TD_TRY(td_on_device_raw(t, TD_DEVICE_CPU, &m));
        if (td_is_contiguous(m)) {
            *out = m;
            return TD_OK;
        }
        t = m;
        td_status st = td_empty(t->ndim, t->shape, t->dtype, out);
        if (st == TD_OK) td_backend_of(*out)->copy(*out, t);
        td_tensor_release(m);
        return st;
    }
    if (td_is_contiguous(t)) {
        td_tensor_retain(t);
        *out = t;
        return TD_OK;
    }
    TD_TRY(td_empty_on(t->ndim, t->shape, t->dtype, td_device_of(t), out));
    td_backend_of(t)->copy(*out, t);
    return TD_OK;
}

static void fill_sig(td_coll *c, td_coll_kind kind, const td_tensor *t, td_dist_op op, int root)
{
    memset(&c->sig, 0, sizeof c->sig);
    c->sig.kind = kind;
    c->sig.dtype = t->dtype;
    c->sig.op = op;
    c->sig.root = root;
    c->sig.ndim = t->ndim;
    memcpy(c->sig.shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    c->elem = td_dtype_size(t->dtype);
}

static td_status check_op(const char *fname, const td_tensor *t, td_dist_op op)
{
    if (op < TD_DIST_SUM || op > TD_DIST_PROD)
        return td_error(TD_EINVAL, 2, "%s: unknown reduction op %d", fname, (int)op);
    if (op == TD_DIST_AVG && !td_dtype_is_float(t->dtype))
        return td_error(TD_EDTYPE, 1,
                        "%s: op 'avg' needs a float tensor, got %s (reduce with 'sum' and divide)",
                        fname, td_dtype_name(t->dtype));
    return TD_OK;
}

/* start w (made by the caller), hand back the handle or wait for it */
static td_status launch(td_dist_work *w, const td_dist_opts *o, td_dist_work **work)
{
    td_status st;
    if (w->nccl) {
        td_clear_error();
        st = nccl_issue(w);
        if (st != TD_OK) {
            snprintf(w->msg, sizeof w->msg, "%s: %s", w->fname, td_last_error());
            work_release(w);
            return td_error(st, 0, "%s", w->msg);
        }
    } else {
        st = submit(w, o->async);
        if (st != TD_OK) {
            work_release(w);
            return st;
        }
    }
    if (o->async) {
        *work = w;
        return TD_OK;
    }
    st = td_dist_wait(w);
    work_release(w);
    return st;
}

static td_status new_work(const char *fname, td_dist_work **out)
{
    *out = calloc(1, sizeof **out);
    if (!*out) return td_error(TD_ENOMEM, 0, "%s: out of memory", fname);
    (*out)->fname = fname;
    return TD_OK;
}

/* all_reduce and broadcast: in place */
static td_status in_place(const char *fname, td_coll_kind kind, td_tensor *t, td_dist_op op,
                          int root, const td_dist_opts *o, td_dist_work **work)
{
    TD_TRY(check_common(fname, t));
    TD_TRY(check_writable(fname, t));
    bool nccl;
    TD_TRY(use_nccl(fname, t, &nccl));
    td_dist_work *w;
    TD_TRY(new_work(fname, &w));
    w->nccl = nccl;
    fill_sig(&w->c, kind, t, op, root);
    w->c.check = !o->nocheck;
    td_tensor_retain(t);
    w->user = t;
    td_status st = stage(t, !nccl, &w->buf);
    if (st != TD_OK) {
        work_release(w);
        return st;
    }
    w->c.send = w->c.recv = td_data_ptr(w->buf);
    w->c.count = td_numel(t);
    if (op == TD_DIST_AVG && !nccl) {
        w->c.sig.op = TD_DIST_SUM; /* every rank does the same, so the check still holds */
        w->avg = S.world > 1;
    }
    return launch(w, o, work);
}

td_status td_dist_all_reduce(td_tensor *t, const td_dist_opts *o, td_dist_work **work)
{
    TD_TRY(check_op("all_reduce", t, o->op));
    return in_place("all_reduce", TD_COLL_ALL_REDUCE, t, o->op, 0, o, work);
}

td_status td_dist_broadcast(td_tensor *t, const td_dist_opts *o, td_dist_work **work)
{
    if (S.initialized && (o->src < 0 || o->src >= S.world))
        return td_error(TD_ERANGE, 2, "broadcast: src %d is not a rank (the world has %d)", o->src,
                        S.world);
    return in_place("broadcast", TD_COLL_BROADCAST, t, TD_DIST_SUM, o->src, o, work);
}

/* all_gather and reduce_scatter: a new tensor of `shape` */
static td_status to_new(const char *fname, td_coll_kind kind, td_tensor *t, td_dist_op op, int ndim,
                        const int64_t *shape, const td_dist_opts *o, td_tensor **out,
                        td_dist_work **work)
{
    bool nccl;
    TD_TRY(use_nccl(fname, t, &nccl));
    td_dist_work *w;
    TD_TRY(new_work(fname, &w));
    w->nccl = nccl;
    fill_sig(&w->c, kind, t, op, 0);
    w->c.check = !o->nocheck;
    td_status st = stage(t, !nccl, &w->send);
    if (st == TD_OK) st = td_empty_on(ndim, shape, t->dtype, td_device_of(t), &w->out);
    if (st == TD_OK && td_device_of(w->send).type != td_device_of(w->out).type)
        st = td_empty(ndim, shape, t->dtype, &w->buf);
    else if (st == TD_OK) {
        td_tensor_retain(w->out);
        w->buf = w->out;
    }
    if (st != TD_OK) {
        work_release(w);
        return st;
    }
    w->c.send = td_data_ptr(w->send);
    w->c.recv = td_data_ptr(w->buf);
    w->c.count = kind == TD_COLL_ALL_GATHER ? td_numel(t) : td_numel(w->out);
    if (op == TD_DIST_AVG && !nccl) {
        w->c.sig.op = TD_DIST_SUM;
        w->avg = S.world > 1;
    }
    td_tensor *res = w->out;
    td_tensor_retain(res);
    st = launch(w, o, work);
    if (st != TD_OK) {
        td_tensor_release(res);
        return st;
    }
    *out = res;
    return TD_OK;
}

td_status td_dist_all_gather(td_tensor *t, const td_dist_opts *o, td_tensor **out,
                             td_dist_work **work)
{
    const char *fname = "all_gather";
    TD_TRY(check_common(fname, t));
    if (t->ndim >= TD_MAX_DIMS)
        return td_error(TD_ESHAPE, 1, "%s: a %d-dim tensor gathers to more than %d dims", fname,
                        t->ndim, TD_MAX_DIMS);
    int64_t shape[TD_MAX_DIMS];
    shape[0] = S.world;
    memcpy(shape + 1, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    return to_new(fname, TD_COLL_ALL_GATHER, t, TD_DIST_SUM, t->ndim + 1, shape, o, out, work);
}

td_status td_dist_reduce_scatter(td_tensor *t, const td_dist_opts *o, td_tensor **out,
                                 td_dist_work **work)
{
    const char *fname = "reduce_scatter";
    TD_TRY(check_common(fname, t));
    TD_TRY(check_op(fname, t, o->op));
    if (t->ndim < 1 || t->shape[0] % S.world != 0)
        return td_error(TD_ESHAPE, 1,
                        "%s: dim 0 of the tensor (%lld) must be a multiple of the world size (%d)",
                        fname, t->ndim < 1 ? 0LL : (long long)t->shape[0], S.world);
    int64_t shape[TD_MAX_DIMS];
    memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->ndim);
    shape[0] /= S.world;
    return to_new(fname, TD_COLL_REDUCE_SCATTER, t, o->op, t->ndim, shape, o, out, work);
}

td_status td_dist_barrier(void)
{
    if (!S.initialized)
        return td_error(TD_EINVAL, 0,
                        "barrier: tide.distributed is not initialized (call "
                        "tide.distributed.init{} first)");
    td_dist_work *w;
    TD_TRY(new_work("barrier", &w));
    w->c.sig.kind = TD_COLL_BARRIER;
    w->c.check = true;
    td_dist_opts o = {0};
    return launch(w, &o, NULL);
}

/* ---- all-reduce for autograd ------------------------------------------- */

static td_status sum_over_ranks(td_tensor *x, td_tensor **out)
{
    bool prev = td_set_grad_enabled(false);
    td_tensor *c = NULL;
    td_status st = td_empty_on(x->ndim, x->shape, x->dtype, td_device_of(x), &c);
    if (st == TD_OK) {
        td_backend_of(x)->copy(c, x);
        td_dist_opts o = {.op = TD_DIST_SUM};
        st = td_dist_all_reduce(c, &o, NULL);
    }
    td_set_grad_enabled(prev);
    if (st != TD_OK) {
        td_tensor_release(c);
        return st;
    }
    *out = c;
    return TD_OK;
}

static td_status all_reduce_backward(td_node *n, td_tensor *g, td_tensor **grads)
{
    (void)n;
    return sum_over_ranks(g, &grads[0]);
}

td_status td_dist_all_reduce_sum_grad(td_tensor *x, td_tensor **out)
{
    if (!td_dtype_is_float(x->dtype))
        return td_error(TD_EDTYPE, 1, "all_reduce: a differentiable sum needs a float tensor");
    td_tensor *o = NULL;
    TD_TRY(sum_over_ranks(x, &o));
    if (td_needs_grad(1, &x)) {
        td_node *node;
        td_status st = td_node_new("AllReduceBackward", all_reduce_backward, 1, &x, &node);
        if (st == TD_OK) st = td_node_finish(node, st, o);
        if (st != TD_OK) {
            td_tensor_release(o);
            return st;
        }
    }
    *out = o;
    return TD_OK;
}
