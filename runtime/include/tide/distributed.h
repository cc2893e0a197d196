/* tide.distributed: collectives across processes, for data-parallel
 * training.
 *
 * Ranks are launched by mpirun (Open MPI); MPI reduces CPU tensors and
 * NCCL (opened at run time, see kernels/nccl.h) CUDA ones. A process not
 * started by a launcher is a world of one: every collective works there
 * and changes nothing, so a script runs unchanged with and without
 * mpirun. Every rank must call the same collectives in the same order;
 * each call first checks, with one small all-reduce, that the ranks agree
 * on the collective, the dtype and the shape (unless check is false), and
 * a collective that waits longer than the timeout ends the job with a
 * message naming the ranks that never arrived.
 */
#ifndef TIDE_DISTRIBUTED_H
#define TIDE_DISTRIBUTED_H

#include "tide/core.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { TD_DIST_AUTO, TD_DIST_MPI, TD_DIST_NCCL } td_dist_backend;

typedef struct {
    td_dist_backend backend; /* AUTO: MPI for CPU tensors, NCCL for CUDA ones when it loads */
    double timeout;          /* seconds a collective may wait for the other ranks (600) */
} td_dist_init_opts;

/* "sum", "avg", "max", "min", "prod" */
td_status td_dist_op_parse(const char *s, td_dist_op *out);
const char *td_dist_op_name(td_dist_op op);

td_status td_dist_init(const td_dist_init_opts *opts);
bool td_dist_is_initialized(void);
/* rank 0 of 1 before init */
int td_dist_rank(void);
int td_dist_world_size(void);
int td_dist_local_rank(void);
int td_dist_local_size(void);
/* "mpi", "mpi+nccl", "self" (a world of one) or "none" before init */
const char *td_dist_backend_name(void);
/* waits for pending work, then a barrier, then shuts MPI and NCCL down;
 * a no-op when not initialized */
td_status td_dist_finalize(void);
/* for a process that is failing: ends every rank of the job now with the
 * exit code (MPI_Abort); returns only when not initialized or alone */
void td_dist_abort(int code);
/* what the launcher says before init: ranks on this node (1 without one) */
int td_dist_launcher_local_size(void);

/* A collective started with async = true returns a handle; its tensors
 * hold the result only after td_dist_wait. Handles complete in the order
 * they were made. */
typedef struct td_dist_work td_dist_work;
td_status td_dist_wait(td_dist_work *w);
bool td_dist_work_is_done(td_dist_work *w); /* true once finished (wait still needed) */
void td_dist_work_free(td_dist_work *w);    /* waits first if needed */

typedef struct {
    td_dist_op op; /* all_reduce, reduce_scatter */
    int src;       /* broadcast */
    bool async;    /* return a handle in *work instead of waiting */
    bool nocheck;  /* skip the cross-rank agreement check */
} td_dist_opts;

/* in place, any dtype (AVG: float only), any strides */
td_status td_dist_all_reduce(td_tensor *t, const td_dist_opts *o, td_dist_work **work);
td_status td_dist_broadcast(td_tensor *t, const td_dist_opts *o, td_dist_work **work);
/* out: (world, t's shape), rank r's tensor at out[r] */
td_status td_dist_all_gather(td_tensor *t, const td_dist_opts *o, td_tensor **out,
                             td_dist_work **work);
/* t: (world * k, ...), reduced over ranks; out: this rank's (k, ...) slice */
td_status td_dist_reduce_scatter(td_tensor *t, const td_dist_opts *o, td_tensor **out,
                                 td_dist_work **work);
td_status td_dist_barrier(void);

/* out = the sum of x over the ranks, recorded for autograd: the gradient
 * that reaches x is the sum of out's gradients over the ranks (what a
 * statistic shared by every rank, as SyncBatchNorm's, needs) */
td_status td_dist_all_reduce_sum_grad(td_tensor *x, td_tensor **out);

/* ---- data-parallel gradient reducer (nn.DistributedDataParallel) ------ */
/* Parameters are grouped, in the order given, into buckets of about
 * bucket_bytes; during backward, as the last gradient of a bucket is
 * accumulated, the bucket is copied into one flat buffer and its
 * all-reduce starts (buckets start in index order, so every rank starts
 * them alike); when the backward ends, it waits for all of them and
 * writes the averages back into each parameter's .grad. */
typedef struct td_ddp td_ddp;
td_status td_ddp_new(int n, td_tensor *const *params, int64_t bucket_bytes, td_ddp **out);
void td_ddp_free(td_ddp *d);
/* false: backward accumulates locally, nothing is reduced (no_sync) */
void td_ddp_set_sync(td_ddp *d, bool on);
int td_ddp_bucket_count(const td_ddp *d);
/* seconds spent waiting for all-reduces after the last backward ended,
 * and seconds the all-reduces took in all (both from the last backward) */
void td_ddp_last_timing(const td_ddp *d, double *wait_s, double *comm_s);

#ifdef __cplusplus
}
#endif

#endif
