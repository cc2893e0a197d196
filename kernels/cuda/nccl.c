/* NCCL for CUDA tensors (kernels/nccl.h).
 *
 * libnccl.so.2 is opened with dlopen on first use, not linked: it is not
 * in Debian, GPU machines carry it inside PyTorch's install
 * (site-packages/nvidia/nccl/lib), and a machine without it still runs
 * everything else. The few types and entry points used are declared here
 * with NCCL 2.x's values (src/nccl.h.in); 2.10 or later is required
 * (ncclAvg). The loader tries the plain name (LD_LIBRARY_PATH, the
 * cache), then each entry of TIDE_NCCL_PATH (colon-separated, each
 * libnccl.so.2 itself or the folder that holds it).
 *
 * One communicator: one process drives one GPU. The collectives run on a
 * stream of ours created without cudaStreamNonBlocking: such a stream
 * implicitly synchronises with the legacy default stream every tide
 * kernel runs on, so a collective starts after the kernels that wrote its
 * input, and the kernels queued after it wait for it, as if it were on
 * the kernels' stream. It is not that stream itself because NCCL has had
 * bugs with the NULL stream (its copy-engine collectives, 2.29.2..2.29.6,
 * fail there). An event recorded on our stream (record) thus covers
 * everything queued so far; wait polls it together with NCCL's
 * asynchronous error, and aborts the communicator when either fails or
 * the deadline passes, so a lost peer is an error, not a hang. */
#include "cuda_internal.h"

#include <cuda_runtime_api.h>
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- NCCL's ABI (nccl.h, NCCL 2.x) ------------------------------------------- */

typedef struct ncclComm *ncclComm_t;
typedef struct {
    char internal[TD_NCCL_ID_BYTES];
} ncclUniqueId;
typedef enum { ncclSuccess = 0, ncclInProgress = 7 } ncclResult_t;
typedef enum {
    ncclInt8 = 0,
    ncclUint8 = 1,
    ncclInt32 = 2,
    ncclUint32 = 3,
    ncclInt64 = 4,
    ncclUint64 = 5,
    ncclFloat16 = 6,
    ncclFloat32 = 7,
    ncclFloat64 = 8,
    ncclBfloat16 = 9
} ncclDataType_t;
typedef enum { ncclSum = 0, ncclProd = 1, ncclMax = 2, ncclMin = 3, ncclAvg = 4 } ncclRedOp_t;

#define NCCL_FUNCS(X)                                                                              \
    X(ncclGetVersion, ncclResult_t, (int *version))                                                \
    X(ncclGetErrorString, const char *, (ncclResult_t result))                                     \
    X(ncclGetUniqueId, ncclResult_t, (ncclUniqueId * id))                                          \
    X(ncclCommInitRank, ncclResult_t, (ncclComm_t * comm, int nranks, ncclUniqueId id, int rank))  \
    X(ncclCommDestroy, ncclResult_t, (ncclComm_t comm))                                            \
    X(ncclCommAbort, ncclResult_t, (ncclComm_t comm))                                              \
    X(ncclCommGetAsyncError, ncclResult_t, (ncclComm_t comm, ncclResult_t * err))                  \
    X(ncclAllReduce, ncclResult_t,                                                                 \
      (const void *send, void *recv, size_t count, ncclDataType_t dt, ncclRedOp_t op,              \
       ncclComm_t comm, cudaStream_t stream))                                                      \
    X(ncclBroadcast, ncclResult_t,                                                                 \
      (const void *send, void *recv, size_t count, ncclDataType_t dt, int root, ncclComm_t comm,   \
       cudaStream_t stream))                                                                       \
    X(ncclAllGather, ncclResult_t,                                                                 \
      (const void *send, void *recv, size_t count, ncclDataType_t dt, ncclComm_t comm,             \
       cudaStream_t stream))                                                                       \
    X(ncclReduceScatter, ncclResult_t,                                                             \
      (const void *send, void *recv, size_t count, ncclDataType_t dt, ncclRedOp_t op,              \
       ncclComm_t comm, cudaStream_t stream))

#define FIELD(name, ret, args) ret(*name) args;
static struct {
    NCCL_FUNCS(FIELD)
    /* optional (2.13 and later): the detail behind an error code */
    const char *(*ncclGetLastError)(ncclComm_t comm);
} nc;
#undef FIELD

/* ---- loading ---------------------------------------------------------------- */

#define LIB_NAME "libnccl.so.2"
#define HOW_TO_FIX                                                                                 \
    "install PyTorch's NCCL (pip install nvidia-nccl-cu13) and put its nvidia/nccl/lib folder "    \
    "on LD_LIBRARY_PATH, or set TIDE_NCCL_PATH to libnccl.so.2 or the folder holding it"

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static char load_error[1024]; /* why not, when not loaded */
static bool loaded;

static void load(void)
{
    void *h = td_cuda_dlopen(LIB_NAME, NULL, "TIDE_NCCL_PATH", HOW_TO_FIX, load_error,
                             sizeof load_error, NULL, 0);
    if (!h) return;
#define LOOKUP(name, ret, args)                                                                    \
    {                                                                                              \
        void *s = dlsym(h, #name);                                                                 \
        if (!s) {                                                                                  \
            snprintf(load_error, sizeof load_error,                                                \
                     "the loaded " LIB_NAME " lacks %s (tide wants NCCL "                          \
                     "2.10 or later)",                                                             \
                     #name);                                                                       \
            return;                                                                                \
        }                                                                                          \
        memcpy(&nc.name, &s, sizeof s);                                                            \
    }
    NCCL_FUNCS(LOOKUP)
#undef LOOKUP
    void *last = dlsym(h, "ncclGetLastError");
    if (last) memcpy(&nc.ncclGetLastError, &last, sizeof last);
    int v = 0;
    if (nc.ncclGetVersion(&v) != ncclSuccess || v < 21000 || v >= 30000) {
        snprintf(load_error, sizeof load_error,
                 "tide wants NCCL 2.10 or later in 2.x, the loaded " LIB_NAME " says version %d",
                 v);
        return;
    }
    loaded = true;
}

static bool nccl_available(const char **why)
{
    pthread_once(&load_once, load);
    if (why) *why = loaded ? NULL : load_error;
    return loaded;
}

#define NEED_NCCL(what)                                                                            \
    do {                                                                                           \
        if (!nccl_available(NULL))                                                                 \
            return td_error(TD_EINVAL, 0, "%s: NCCL is not available: %s", what, load_error);      \
    } while (0)

/* ---- the communicator ------------------------------------------------------- */

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static ncclComm_t comm;
static int comm_device = -1;
static cudaStream_t stream;
static bool aborted;                       /* by wait's error or abort, until the next init */
static const char *last_op = "collective"; /* the latest one queued, for wait's errors */

typedef struct {
    cudaEvent_t ev;
    const char *what;
} nccl_event;

static td_status nccl_fail(ncclResult_t r, const char *what)
{
    const char *detail = comm && nc.ncclGetLastError ? nc.ncclGetLastError(comm) : NULL;
    if (detail && *detail)
        return td_error(TD_EINVAL, 0, "NCCL %s failed: %s (%s)", what, nc.ncclGetErrorString(r),
                        detail);
    return td_error(TD_EINVAL, 0, "NCCL %s failed: %s", what, nc.ncclGetErrorString(r));
}

static td_status cuda_fail(cudaError_t e, const char *what)
{
    (void)cudaGetLastError();
    return td_error(TD_EINVAL, 0, "NCCL %s: CUDA error: %s", what, cudaGetErrorString(e));
}

static td_status nccl_unique_id(unsigned char id[TD_NCCL_ID_BYTES])
{
    NEED_NCCL("unique id");
    ncclUniqueId u;
    ncclResult_t r = nc.ncclGetUniqueId(&u);
    if (r != ncclSuccess) return nccl_fail(r, "unique id (ncclGetUniqueId)");
    memcpy(id, u.internal, TD_NCCL_ID_BYTES);
    return TD_OK;
}

static td_status nccl_init(const unsigned char id[TD_NCCL_ID_BYTES], int nranks, int rank,
                           int device)
{
    NEED_NCCL("init");
    if (nranks < 1 || rank < 0 || rank >= nranks)
        return td_error(TD_EINVAL, 0, "NCCL init: rank %d is outside [0, %d)", rank, nranks);
    int ndev = td_cuda_count(NULL);
    if (device < 0 || device >= ndev)
        return td_error(TD_EINVAL, 0, "NCCL init: cuda:%d is not a device here (%d usable)", device,
                        ndev);
    pthread_mutex_lock(&lock);
    td_status st = TD_OK;
    if (comm) {
        st = td_error(TD_EINVAL, 0, "NCCL init: a communicator is already open (finalize first)");
        goto out;
    }
    if (stream && device != comm_device) { /* an earlier init was on another device */
        td_cuda_use(comm_device);
        (void)cudaStreamDestroy(stream);
        stream = NULL;
    }
    td_cuda_use(device);
    if ((st = td_cuda_pending_error()) != TD_OK) goto out;
    if (!stream) {
        /* blocking: ordered with the legacy default stream (see the top) */
        cudaError_t e = cudaStreamCreateWithFlags(&stream, cudaStreamDefault);
        if (e != cudaSuccess) {
            stream = NULL;
            st = cuda_fail(e, "init (cudaStreamCreate)");
            goto out;
        }
        comm_device = device;
    }
    ncclUniqueId u;
    memcpy(u.internal, id, TD_NCCL_ID_BYTES);
    ncclComm_t c = NULL;
    ncclResult_t r = nc.ncclCommInitRank(&c, nranks, u, rank);
    if (r != ncclSuccess) {
        st = nccl_fail(r, "init (ncclCommInitRank)");
        goto out;
    }
    comm = c;
    aborted = false;
out:
    pthread_mutex_unlock(&lock);
    return st;
}

/* lock held */
static td_status ready(const char *what)
{
    if (!comm && aborted)
        return td_error(TD_EINVAL, 0,
                        "NCCL %s: the communicator was aborted after an earlier error or timeout",
                        what);
    if (!comm) return td_error(TD_EINVAL, 0, "NCCL %s: NCCL is not initialized", what);
    td_cuda_use(comm_device);
    return td_cuda_pending_error();
}

static td_status to_nccl_dtype(td_dtype dt, const char *what, ncclDataType_t *out)
{
    switch (dt) {
    case TD_FLOAT32: *out = ncclFloat32; return TD_OK;
    case TD_FLOAT64: *out = ncclFloat64; return TD_OK;
    case TD_INT64: *out = ncclInt64; return TD_OK;
    case TD_UINT8: *out = ncclUint8; return TD_OK;
    default: break;
    }
    return td_error(TD_EDTYPE, 0, "NCCL %s of %s tensors is not supported", what,
                    td_dtype_name(dt));
}

static td_status to_nccl_op(td_dist_op op, td_dtype dt, const char *what, ncclRedOp_t *out)
{
    switch (op) {
    case TD_DIST_SUM: *out = ncclSum; return TD_OK;
    case TD_DIST_PROD: *out = ncclProd; return TD_OK;
    case TD_DIST_MAX: *out = ncclMax; return TD_OK;
    case TD_DIST_MIN: *out = ncclMin; return TD_OK;
    case TD_DIST_AVG:
        if (dt != TD_FLOAT32 && dt != TD_FLOAT64)
            return td_error(TD_EDTYPE, 0, "NCCL %s: avg of %s tensors is not supported", what,
                            td_dtype_name(dt));
        *out = ncclAvg;
        return TD_OK;
    }
    return td_error(TD_EINVAL, 0, "NCCL %s: unknown reduction %d", what, (int)op);
}

static td_status check_count(int64_t count, const char *what)
{
    if (count < 0)
        return td_error(TD_EINVAL, 0, "NCCL %s: negative count %lld", what, (long long)count);
    return TD_OK;
}

/* The collectives' common part: the arguments checked and mapped, then
 * the lock taken and the communicator found ready; on TD_OK the caller
 * makes its one NCCL call and hands the result to issued(), which
 * releases the lock. op is NULL for the collectives that do not reduce. */
static td_status begin(const char *what, int64_t count, td_dtype dt, const td_dist_op *op,
                       ncclDataType_t *t, ncclRedOp_t *o)
{
    NEED_NCCL(what);
    TD_TRY(check_count(count, what));
    TD_TRY(to_nccl_dtype(dt, what, t));
    if (op) TD_TRY(to_nccl_op(*op, dt, what, o));
    pthread_mutex_lock(&lock);
    td_status st = ready(what);
    if (st != TD_OK) pthread_mutex_unlock(&lock);
    return st;
}

static td_status issued(const char *what, ncclResult_t r)
{
    td_status st = r == ncclSuccess ? TD_OK : nccl_fail(r, what);
    if (st == TD_OK) last_op = what;
    pthread_mutex_unlock(&lock);
    return st;
}

static td_status nccl_all_reduce(void *buf, int64_t count, td_dtype dt, td_dist_op op)
{
    ncclDataType_t t = ncclFloat32;
    ncclRedOp_t o = ncclSum;
    TD_TRY(begin("all-reduce", count, dt, &op, &t, &o));
    return issued("all-reduce", nc.ncclAllReduce(buf, buf, (size_t)count, t, o, comm, stream));
}

static td_status nccl_broadcast(void *buf, int64_t count, td_dtype dt, int root)
{
    ncclDataType_t t = ncclFloat32;
    ncclRedOp_t o = ncclSum;
    TD_TRY(begin("broadcast", count, dt, NULL, &t, &o));
    return issued("broadcast", nc.ncclBroadcast(buf, buf, (size_t)count, t, root, comm, stream));
}

static td_status nccl_all_gather(const void *send, void *recv, int64_t count, td_dtype dt)
{
    ncclDataType_t t = ncclFloat32;
    ncclRedOp_t o = ncclSum;
    TD_TRY(begin("all-gather", count, dt, NULL, &t, &o));
    return issued("all-gather", nc.ncclAllGather(send, recv, (size_t)count, t, comm, stream));
}

static td_status nccl_reduce_scatter(const void *send, void *recv, int64_t count, td_dtype dt,
                                     td_dist_op op)
{
    ncclDataType_t t = ncclFloat32;
    ncclRedOp_t o = ncclSum;
    TD_TRY(begin("reduce-scatter", count, dt, &op, &t, &o));
    return issued("reduce-scatter",
                  nc.ncclReduceScatter(send, recv, (size_t)count, t, o, comm, stream));
}

/* ---- events and waiting ------------------------------------------------------ */

static td_status nccl_record(void **event)
{
    NEED_NCCL("record");
    *event = NULL;
    nccl_event *e = calloc(1, sizeof *e);
    if (!e) return td_error(TD_ENOMEM, 0, "NCCL record: out of memory");
    pthread_mutex_lock(&lock);
    td_status st = ready("record");
    if (st == TD_OK) {
        cudaError_t ce = cudaEventCreateWithFlags(&e->ev, cudaEventDisableTiming);
        if (ce != cudaSuccess) {
            e->ev = NULL;
            st = cuda_fail(ce, "record (cudaEventCreate)");
        } else if ((ce = cudaEventRecord(e->ev, stream)) != cudaSuccess) {
            st = cuda_fail(ce, "record (cudaEventRecord)");
        }
        e->what = last_op;
    }
    pthread_mutex_unlock(&lock);
    if (st != TD_OK) {
        if (e->ev) (void)cudaEventDestroy(e->ev);
        free(e);
        return st;
    }
    *event = e;
    return TD_OK;
}

static void nccl_event_free(void *event)
{
    nccl_event *e = event;
    if (!e) return;
    if (e->ev) (void)cudaEventDestroy(e->ev);
    free(e);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* lock held: abort and forget the communicator (its stream stays, for a
 * later init on the same device) */
static void abort_locked(void)
{
    if (comm) {
        (void)nc.ncclCommAbort(comm);
        aborted = true;
    }
    comm = NULL;
}

#define SPIN_POLLS   64 /* back to back first: a finished event answers in ~1 us */
#define MAX_SLEEP_US 100

static td_status nccl_wait(void *event, double timeout_s)
{
    NEED_NCCL("wait");
    nccl_event *e = event;
    if (!e || !e->ev) return td_error(TD_EINVAL, 0, "NCCL wait: no event");
    double deadline = timeout_s > 0 ? now_s() + timeout_s : 0;
    long nap = 1;
    for (int polls = 0;; polls++) {
        cudaError_t ce = cudaEventQuery(e->ev);
        if (ce == cudaSuccess) return TD_OK;
        if (ce != cudaErrorNotReady) {
            pthread_mutex_lock(&lock);
            abort_locked();
            pthread_mutex_unlock(&lock);
            (void)cudaGetLastError();
            return td_error(TD_EINVAL, 0,
                            "NCCL %s failed: CUDA error: %s; the communicator was aborted", e->what,
                            cudaGetErrorString(ce));
        }
        pthread_mutex_lock(&lock);
        ncclResult_t async = ncclSuccess;
        ncclResult_t r = comm ? nc.ncclCommGetAsyncError(comm, &async) : ncclSuccess;
        if (r == ncclSuccess && async != ncclSuccess && async != ncclInProgress) r = async;
        td_status st = TD_OK;
        if (!comm) {
            st = td_error(TD_EINVAL, 0,
                          "NCCL %s cannot finish: the communicator was aborted or destroyed",
                          e->what);
        } else if (r != ncclSuccess) {
            const char *detail = nc.ncclGetLastError ? nc.ncclGetLastError(comm) : NULL;
            st = td_error(TD_EINVAL, 0, "NCCL %s failed: %s%s%s%s; the communicator was aborted",
                          e->what, nc.ncclGetErrorString(r), detail && *detail ? " (" : "",
                          detail && *detail ? detail : "", detail && *detail ? ")" : "");
            abort_locked();
        } else if (deadline > 0 && now_s() > deadline) {
            st = td_error(TD_EINVAL, 0,
                          "NCCL %s did not finish within %g s; the communicator was aborted",
                          e->what, timeout_s);
            abort_locked();
        }
        pthread_mutex_unlock(&lock);
        if (st != TD_OK) return st;
        if (polls >= SPIN_POLLS) {
            sleep_us(nap);
            if (nap < MAX_SLEEP_US) nap = nap * 2 > MAX_SLEEP_US ? MAX_SLEEP_US : nap * 2;
        }
    }
}

/* ---- teardown ------------------------------------------------------------------ */

/* a communicator exists only once the library is loaded: neither loads it */
static void nccl_destroy(void)
{
    pthread_mutex_lock(&lock);
    if (comm) {
        td_cuda_use(comm_device);
        (void)nc.ncclCommDestroy(comm);
        comm = NULL;
    }
    aborted = false;
    pthread_mutex_unlock(&lock);
}

static void nccl_abort(void)
{
    pthread_mutex_lock(&lock);
    abort_locked();
    pthread_mutex_unlock(&lock);
}

const struct td_nccl_kernels td_cuda_nccl = {
    .available = nccl_available,
    .unique_id = nccl_unique_id,
    .init = nccl_init,
    .all_reduce = nccl_all_reduce,
    .broadcast = nccl_broadcast,
    .all_gather = nccl_all_gather,
    .reduce_scatter = nccl_reduce_scatter,
    .record = nccl_record,
    .wait = nccl_wait,
    .event_free = nccl_event_free,
    .destroy = nccl_destroy,
    .abort = nccl_abort,
};
