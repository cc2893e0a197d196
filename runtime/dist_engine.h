/* What runtime/distributed.c (the front-end) asks of the MPI engine
 * (dist_mpi.c). The front-end has checked the arguments and made the
 * buffers contiguous; the engine moves bytes, checks that the ranks agree,
 * and watches for ranks that never arrive. */
#ifndef TIDE_DIST_ENGINE_H
#define TIDE_DIST_ENGINE_H

#include "tide/core.h"

typedef enum {
    TD_COLL_ALL_REDUCE,
    TD_COLL_BROADCAST,
    TD_COLL_ALL_GATHER,
    TD_COLL_REDUCE_SCATTER,
    TD_COLL_BARRIER,
    TD_COLL_FINALIZE,
    TD_COLL_NCCL_ID,
} td_coll_kind;

/* what every rank must pass alike */
typedef struct {
    int32_t kind, dtype, op, root, ndim, pad;
    int64_t shape[TD_MAX_DIMS];
} td_coll_sig;

typedef struct {
    td_coll_sig sig;
    const void *send; /* == recv for the in-place ones */
    void *recv;
    int64_t count; /* elements this rank sends (reduce_scatter: receives) */
    size_t elem;   /* bytes per element (NCCL_ID: 1) */
    bool check;    /* agree on sig first */
} td_coll;

/* "all_reduce(sum) float32 (4, 3)" */
const char *td_coll_describe(const td_coll_sig *s, char *buf, size_t n);

/* started by mpirun (or another MPI launcher), whatever this build has */
bool td_mpi_launched(void);
int td_mpi_launcher_local_size(void);
td_status td_mpi_init(double timeout, int *rank, int *world, int *local_rank, int *local_size);
/* blocking; fname names the Lua function in errors. Safe from one thread
 * at a time (the front-end serialises). AVG arrives here as SUM. */
td_status td_mpi_run(const td_coll *c, const char *fname);
void td_mpi_finalize(void);
/* monotonic seconds, for the timeout and the reducer's timings */
double td_dist_now(void);
/* when the engine started and ended a handle's work (0 for NCCL's) */
struct td_dist_work;
void td_dist_work_times(const struct td_dist_work *w, double *start, double *end);
void td_mpi_abort(int code);

#endif
