/* NCCL for CUDA tensors: the CUDA backend opens libnccl.so.2 with dlopen
 * (it is not in Debian; GPU machines carry it inside PyTorch's install)
 * and queues the collectives on its own stream, after the kernels that
 * wrote their inputs. The runtime (runtime/distributed.c) passes the
 * unique id between ranks over MPI and calls these; buffers are device
 * memory of the device given to init, contiguous, `count` elements. */
#ifndef TIDE_KERNELS_NCCL_H
#define TIDE_KERNELS_NCCL_H

#include "tide/core.h"

#define TD_NCCL_ID_BYTES 128

struct td_nccl_kernels {
    /* libnccl.so.2 is open and has every entry point; else false, with
     * *why (when not NULL) saying what was tried */
    bool (*available)(const char **why);
    /* rank 0 makes the id, every rank joins with it */
    td_status (*unique_id)(unsigned char id[TD_NCCL_ID_BYTES]);
    td_status (*init)(const unsigned char id[TD_NCCL_ID_BYTES], int nranks, int rank, int device);
    /* queued, not waited for; AVG is NCCL's own average */
    td_status (*all_reduce)(void *buf, int64_t count, td_dtype dt, td_dist_op op);
    td_status (*broadcast)(void *buf, int64_t count, td_dtype dt, int root);
    /* recv holds nranks * count elements, rank r's at r * count */
    td_status (*all_gather)(const void *send, void *recv, int64_t count, td_dtype dt);
    /* send holds nranks * count elements; recv gets this rank's count */
    td_status (*reduce_scatter)(const void *send, void *recv, int64_t count, td_dtype dt,
                                td_dist_op op);
    /* an event after everything queued so far; a wait for it that gives
     * up after timeout_s seconds (aborting the communicator, and saying
     * so in the error) or when NCCL reports an asynchronous error */
    td_status (*record)(void **event);
    td_status (*wait)(void *event, double timeout_s);
    void (*event_free)(void *event);
    /* at finalize; abort is for a job that is being torn down */
    void (*destroy)(void);
    void (*abort)(void);
};

#endif
