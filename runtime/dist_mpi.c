/* The MPI engine: Open MPI launches the ranks, wires them up (shared
 * memory on one box, TCP or a fabric between boxes) and reduces CPU
 * buffers with its tuned collectives, which beat anything we would write.
 *
 * MPI has no timeouts, so a watchdog thread does: it sees which
 * collective this rank is in, answers the other ranks' watchdogs when
 * they ask, and when this rank has waited too long it asks every other
 * rank where it is, names the ones that never arrived, and ends the job.
 * It talks on a duplicate of the world communicator, so its messages
 * never mix with the collectives'; that needs MPI_THREAD_MULTIPLE, which
 * Debian's Open MPI has.
 */
#include "dist_engine.h"
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *td_coll_describe(const td_coll_sig *s, char *buf, size_t n)
{
    static const char *const kinds[] = {"all_reduce", "broadcast", "all_gather", "reduce_scatter",
                                        "barrier",    "finalize",  "nccl_setup"};
    const char *kind = s->kind >= 0 && s->kind <= TD_COLL_NCCL_ID ? kinds[s->kind] : "?";
    int k = 0;
    if (s->kind == TD_COLL_BARRIER || s->kind == TD_COLL_FINALIZE || s->kind == TD_COLL_NCCL_ID)
        return snprintf(buf, n, "%s", kind), buf;
    if (s->kind == TD_COLL_ALL_REDUCE || s->kind == TD_COLL_REDUCE_SCATTER)
        k = snprintf(buf, n, "%s(%s) ", kind, td_dist_op_name((td_dist_op)s->op));
    else if (s->kind == TD_COLL_BROADCAST)
        k = snprintf(buf, n, "%s(src %d) ", kind, s->root);
    else
        k = snprintf(buf, n, "%s ", kind);
    const char *dt =
        s->dtype >= 0 && s->dtype < TD_NDTYPES ? td_dtype_name((td_dtype)s->dtype) : "?";
    k += snprintf(buf + k, n > (size_t)k ? n - (size_t)k : 0, "%s (", dt);
    for (int i = 0; i < s->ndim && i < TD_MAX_DIMS && (size_t)k < n; i++)
        k += snprintf(buf + k, n - (size_t)k, i ? ", %lld" : "%lld", (long long)s->shape[i]);
    if ((size_t)k < n) snprintf(buf + k, n - (size_t)k, s->ndim == 1 ? ",)" : ")");
    return buf;
}

static int env_int(const char *const *names, int def)
{
    for (; *names; names++) {
        const char *v = getenv(*names);
        if (v && *v) return atoi(v);
    }
    return def;
}

static const char *const size_vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE", NULL};
static const char *const local_vars[] = {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", NULL};

bool td_mpi_launched(void) { return env_int(size_vars, 0) >= 1; }

int td_mpi_launcher_local_size(void)
{
    int n = env_int(local_vars, 0);
    if (n < 1 && td_mpi_launched()) n = env_int(size_vars, 1);
    return n < 1 ? 1 : n;
}

#ifndef TIDE_HAVE_MPI

static td_status no_mpi(void)
{
    return td_error(TD_EINVAL, 0,
                    "this tide was built without MPI; install Open MPI (apt-get install "
                    "openmpi-bin libopenmpi-dev, or `make deps`) and rebuild (make)");
}

td_status td_mpi_init(double timeout, int *rank, int *world, int *local_rank, int *local_size)
{
    (void)timeout, (void)rank, (void)world, (void)local_rank, (void)local_size;
    return no_mpi();
}
td_status td_mpi_run(const td_coll *c, const char *fname)
{
    (void)c, (void)fname;
    return no_mpi();
}
void td_mpi_finalize(void) {}
void td_mpi_abort(int code) { (void)code; }

#else

#include <mpi.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#define TAG_QUERY 1
#define TAG_REPLY 2

static MPI_Comm world_comm = MPI_COMM_NULL, diag_comm = MPI_COMM_NULL;
static int my_rank, n_ranks;
static double timeout_s;

/* where this rank is: read by the watchdog, written around each call */
typedef struct {
    int32_t active; /* inside a collective now */
    int32_t pad;
    uint64_t seq;    /* the collective's number on this rank, from 1 */
    double since;    /* when it was entered (this rank's clock) */
    td_coll_sig sig; /* that collective, or the last one (described only when needed) */
} where_t;
static where_t here;
static pthread_mutex_t here_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_t watchdog;
static atomic_bool watchdog_on, watchdog_stop;

static void nap(long ns)
{
    struct timespec ts = {0, ns};
    nanosleep(&ts, NULL);
}

static td_status mpi_fail(int rc, const char *fname, const char *what)
{
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return td_error(TD_EIO, 0, "%s: MPI failed in %s: %.*s", fname, what, len, msg);
}

static where_t snapshot(void)
{
    pthread_mutex_lock(&here_mu);
    where_t w = here;
    pthread_mutex_unlock(&here_mu);
    return w;
}

static void serve_queries(void)
{
    for (;;) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_QUERY, diag_comm, &flag, &st);
        if (!flag) return;
        int64_t q;
        MPI_Recv(&q, 1, MPI_INT64_T, st.MPI_SOURCE, TAG_QUERY, diag_comm, MPI_STATUS_IGNORE);
        where_t w = snapshot();
        MPI_Send(&w, (int)sizeof w, MPI_BYTE, st.MPI_SOURCE, TAG_REPLY, diag_comm);
    }
}

/* this rank waited too long in `w`: find out who is missing, say so, end the job */
static void time_out(const where_t *w)
{
    where_t *got = calloc((size_t)n_ranks, sizeof *got);
    char *answered = calloc((size_t)n_ranks, 1);
    if (!got || !answered) {
        fprintf(stderr, "tide: rank %d: collective #%llu timed out after %g s\n", my_rank,
                (unsigned long long)w->seq, timeout_s);
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    int64_t q = (int64_t)w->seq;
    for (int r = 0; r < n_ranks; r++)
        if (r != my_rank) MPI_Send(&q, 1, MPI_INT64_T, r, TAG_QUERY, diag_comm);
    int pending = n_ranks - 1;
    double until = td_dist_now() + 2.0;
    while (pending > 0 && td_dist_now() < until) {
        int flag = 0;
        MPI_Status st;
        MPI_Iprobe(MPI_ANY_SOURCE, TAG_REPLY, diag_comm, &flag, &st);
        if (flag) {
            where_t r;
            MPI_Recv(&r, (int)sizeof r, MPI_BYTE, st.MPI_SOURCE, TAG_REPLY, diag_comm,
                     MPI_STATUS_IGNORE);
            if (!answered[st.MPI_SOURCE]) pending--;
            answered[st.MPI_SOURCE] = 1;
            got[st.MPI_SOURCE] = r;
        } else {
            serve_queries();
            nap(1000000);
        }
    }
    char msg[4096], what[200], other[200];
    td_coll_describe(&w->sig, what, sizeof what);
    int k =
        snprintf(msg, sizeof msg,
                 "tide.distributed: rank %d waited more than %g s in %s (its collective #%llu); "
                 "ranks that did not arrive:",
                 my_rank, timeout_s, what, (unsigned long long)w->seq);
    int missing = 0, lower_waiting = 0;
    for (int r = 0; r < n_ranks && (size_t)k < sizeof msg - 200; r++) {
        if (r == my_rank) continue;
        const where_t *o = &got[r];
        bool same = answered[r] && o->active && o->seq == w->seq &&
                    !memcmp(&o->sig, &w->sig, sizeof o->sig);
        if (same) {
            if (r < my_rank) lower_waiting = 1;
            continue;
        }
        missing++;
        td_coll_describe(&o->sig, other, sizeof other);
        if (!answered[r])
            k += snprintf(msg + k, sizeof msg - (size_t)k,
                          "%s rank %d (no answer: it ended, crashed or is stuck in C code)",
                          missing > 1 ? ";" : "", r);
        else if (o->active)
            k += snprintf(msg + k, sizeof msg - (size_t)k,
                          "%s rank %d (waiting in %s, its collective #%llu)",
                          missing > 1 ? ";" : "", r, other, (unsigned long long)o->seq);
        else
            k += snprintf(msg + k, sizeof msg - (size_t)k,
                          "%s rank %d (busy outside any collective after %llu of them; the last "
                          "was %s)",
                          missing > 1 ? ";" : "", r, (unsigned long long)o->seq,
                          o->seq ? other : "none");
    }
    if (!missing)
        snprintf(msg + k, sizeof msg - (size_t)k,
                 " none (every rank is in it; the network may be stuck)");
    /* one message per job: the lowest waiting rank speaks, the others
     * give it time to */
    if (lower_waiting) {
        double until2 = td_dist_now() + 5.0;
        while (td_dist_now() < until2) {
            serve_queries();
            nap(10000000);
        }
    }
    fprintf(stderr, "%s\nset a longer one with tide.distributed.init{timeout = seconds}\n", msg);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
    free(got);
    free(answered);
}

static void *watch(void *arg)
{
    (void)arg;
    while (!atomic_load(&watchdog_stop)) {
        serve_queries();
        where_t w = snapshot();
        if (w.active && td_dist_now() - w.since > timeout_s) time_out(&w);
        nap(20000000);
    }
    return NULL;
}

td_status td_mpi_init(double timeout, int *rank, int *world, int *local_rank, int *local_size)
{
    int inited = 0, provided = 0;
    MPI_Initialized(&inited);
    if (!inited) {
        int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_MULTIPLE, &provided);
        if (rc != MPI_SUCCESS) return mpi_fail(rc, "init", "MPI_Init_thread");
    } else {
        MPI_Query_thread(&provided);
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &world_comm);
    MPI_Comm_dup(MPI_COMM_WORLD, &diag_comm);
    /* errors come back to us as codes, so they become Lua errors */
    MPI_Comm_set_errhandler(world_comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(world_comm, &my_rank);
    MPI_Comm_size(world_comm, &n_ranks);
    MPI_Comm node;
    MPI_Comm_split_type(world_comm, MPI_COMM_TYPE_SHARED, my_rank, MPI_INFO_NULL, &node);
    MPI_Comm_rank(node, local_rank);
    MPI_Comm_size(node, local_size);
    MPI_Comm_free(&node);
    *rank = my_rank;
    *world = n_ranks;
    timeout_s = timeout;
    memset(&here, 0, sizeof here);
    atomic_store(&watchdog_stop, false);
    if (n_ranks > 1 && provided == MPI_THREAD_MULTIPLE &&
        pthread_create(&watchdog, NULL, watch, NULL) == 0)
        atomic_store(&watchdog_on, true);
    else if (n_ranks > 1 && my_rank == 0)
        fprintf(stderr, "tide.distributed: this MPI lacks MPI_THREAD_MULTIPLE; collectives "
                        "will wait without a timeout\n");
    return TD_OK;
}

static void enter(const td_coll_sig *s)
{
    pthread_mutex_lock(&here_mu);
    here.active = 1;
    here.seq++;
    here.since = td_dist_now();
    here.sig = *s;
    pthread_mutex_unlock(&here_mu);
}

static void leave(void)
{
    pthread_mutex_lock(&here_mu);
    here.active = 0;
    pthread_mutex_unlock(&here_mu);
}

static MPI_Datatype mpi_type(const td_coll *c)
{
    if (c->sig.kind == TD_COLL_NCCL_ID) return MPI_BYTE;
    switch ((td_dtype)c->sig.dtype) {
    case TD_FLOAT32: return MPI_FLOAT;
    case TD_FLOAT64: return MPI_DOUBLE;
    case TD_INT64: return MPI_INT64_T;
    default: return MPI_UINT8_T;
    }
}

static MPI_Op mpi_op(td_dist_op op)
{
    switch (op) {
    case TD_DIST_MAX: return MPI_MAX;
    case TD_DIST_MIN: return MPI_MIN;
    case TD_DIST_PROD: return MPI_PROD;
    default: return MPI_SUM;
    }
}

static uint64_t sig_hash(const td_coll_sig *s)
{
    const unsigned char *p = (const unsigned char *)s;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < sizeof *s; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* one small all-reduce: max of h and of ~h tell whether every rank has h */
static td_status agree(const td_coll_sig *s, const char *fname)
{
    uint64_t h = sig_hash(s);
    int64_t v[2] = {(int64_t)h, (int64_t)~h};
    int rc = MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_INT64_T, MPI_MAX, world_comm);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, fname, "the agreement check");
    if ((uint64_t)v[0] == h && (uint64_t)~v[1] == h) return TD_OK;
    td_coll_sig *all = calloc((size_t)n_ranks, sizeof *all);
    if (!all)
        return td_error(TD_ENOMEM, 0, "%s: the ranks disagree (out of memory to say how)", fname);
    rc = MPI_Allgather(s, (int)sizeof *s, MPI_BYTE, all, (int)sizeof *s, MPI_BYTE, world_comm);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(rc, fname, "the agreement check");
    }
    char msg[2048], d[200];
    int k = snprintf(msg, sizeof msg, "the ranks disagree on the collective:");
    for (int r = 0; r < n_ranks && (size_t)k < sizeof msg - 240; r++)
        k += snprintf(msg + k, sizeof msg - (size_t)k, "%s rank %d %s", r ? ";" : "", r,
                      td_coll_describe(&all[r], d, sizeof d));
    free(all);
    return td_error(TD_ESHAPE, 1,
                    "%s: %s (every rank must make the same calls with tensors of "
                    "the same shape and dtype)",
                    fname, msg);
}

/* MPI counts are ints: in-place ones go in pieces */
#define CHUNK     ((int64_t)1 << 30)

static td_status run(const td_coll *c, const char *fname)
{
    MPI_Datatype t = mpi_type(c);
    int rc = MPI_SUCCESS;
    char *buf = c->recv;
    switch ((td_coll_kind)c->sig.kind) {
    case TD_COLL_ALL_REDUCE:
        for (int64_t i = 0; i < c->count && rc == MPI_SUCCESS; i += CHUNK) {
            int64_t n = c->count - i < CHUNK ? c->count - i : CHUNK;
            rc = MPI_Allreduce(MPI_IN_PLACE, buf + (size_t)i * c->elem, (int)n, t,
                               mpi_op((td_dist_op)c->sig.op), world_comm);
        }
        break;
    case TD_COLL_BROADCAST:
    case TD_COLL_NCCL_ID:
        for (int64_t i = 0; i < c->count && rc == MPI_SUCCESS; i += CHUNK) {
            int64_t n = c->count - i < CHUNK ? c->count - i : CHUNK;
            rc = MPI_Bcast(buf + (size_t)i * c->elem, (int)n, t, c->sig.root, world_comm);
        }
        break;
    case TD_COLL_ALL_GATHER:
    case TD_COLL_REDUCE_SCATTER:
        if (c->count > INT32_MAX)
            return td_error(TD_EINVAL, 1,
                            "%s: %lld elements per rank is more than MPI can move at once "
                            "(2^31 - 1); split the tensor",
                            fname, (long long)c->count);
        if (c->sig.kind == TD_COLL_ALL_GATHER)
            rc = MPI_Allgather(c->send, (int)c->count, t, c->recv, (int)c->count, t, world_comm);
        else
            rc = MPI_Reduce_scatter_block(c->send, c->recv, (int)c->count, t,
                                          mpi_op((td_dist_op)c->sig.op), world_comm);
        break;
    case TD_COLL_BARRIER:
    case TD_COLL_FINALIZE: rc = MPI_Barrier(world_comm); break;
    }
    return rc == MPI_SUCCESS ? TD_OK : mpi_fail(rc, fname, "the collective");
}

td_status td_mpi_run(const td_coll *c, const char *fname)
{
    enter(&c->sig);
    td_status st = c->check || c->sig.kind == TD_COLL_FINALIZE ? agree(&c->sig, fname) : TD_OK;
    if (st == TD_OK) st = run(c, fname);
    leave();
    return st;
}

void td_mpi_finalize(void)
{
    if (atomic_load(&watchdog_on)) {
        atomic_store(&watchdog_stop, true);
        pthread_join(watchdog, NULL);
        atomic_store(&watchdog_on, false);
    }
    if (diag_comm != MPI_COMM_NULL) MPI_Comm_free(&diag_comm);
    if (world_comm != MPI_COMM_NULL) MPI_Comm_free(&world_comm);
    int fin = 0;
    MPI_Finalized(&fin);
    if (!fin) MPI_Finalize();
}

void td_mpi_abort(int code)
{
    fflush(stdout);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
}

#endif
