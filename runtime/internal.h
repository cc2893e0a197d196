/* Shared by the runtime's own files: the backend table, the autograd node,
 * and small helpers. Kernels see only the backend table (kernels/backend.h).
 */
#ifndef TIDE_INTERNAL_H
#define TIDE_INTERNAL_H

#include "tide/tide.h"
#include "../kernels/backend.h"

#include <stdlib.h>
#include <string.h>

#define TD_TRY(expr)                                                                               \
    do {                                                                                           \
        td_status td_try_st_ = (expr);                                                             \
        if (td_try_st_ != TD_OK) return td_try_st_;                                                \
    } while (0)

/* go to `fail` on error, with `st` holding the status */
#define TD_CHECK(expr)                                                                             \
    do {                                                                                           \
        st = (expr);                                                                               \
        if (st != TD_OK) goto fail;                                                                \
    } while (0)

void td_memory_note_alloc(size_t n);
void td_memory_note_free(size_t n);
const td_backend *td_cpu_backend(void);
/* the thread count the CPU kernels take at their next call (0: leave it),
 * and taking it now (kernels/cpu/iter.c; runtime/threads.c sets it) */
void td_cpu_set_thread_target(int n);
int td_cpu_threads_sync(void);
const td_backend *td_backend_of(const td_tensor *t);
/* the backend of a device (NULL for CUDA in a build without it) */
const td_backend *td_backend_for(td_device dev);
/* whether t's convolution kernels take its low dtype as it is (bfloat16 on
 * oneDNN where the CPU has AVX512-BF16, not in deterministic mode); else
 * conv.c and conv_nd.c widen to float32 (runtime/conv.c) */
bool td_conv_takes_lowp(const td_tensor *t);
/* the device an op over ts runs on (NULL entries skipped): 0-dim CPU
 * tensors follow the others, anything else must agree */
td_status td_op_device(int n, td_tensor *const *ts, td_device *out);
/* t where an op on dev can read it: t retained, or a copy of a 0-dim
 * CPU tensor, recording nothing */
td_status td_on_device_raw(td_tensor *t, td_device dev, td_tensor **out);
td_status td_full_on(int ndim, const int64_t *shape, double value, td_dtype dt, td_device dev,
                     td_tensor **out);

/* a header over t's storage with new sizes; retains storage */
td_status td_make_view(td_tensor *base, int ndim, const int64_t *shape, const int64_t *stride,
                       int64_t offset, td_tensor **out);
void td_contiguous_strides(int ndim, const int64_t *shape, int64_t *stride);
int64_t td_shape_numel(int ndim, const int64_t *shape);
td_status td_check_shape(int ndim, const int64_t *shape, int arg);
void td_bump_version(td_tensor *t);
/* write element `off` of t's storage (not counting t->offset) as t's dtype */
void td_store_at(td_tensor *t, int64_t off, double v);
void td_release_many(int n, td_tensor **ts);
/* an autograd-tracked alias of t (for ops that are the identity here) */
td_status td_detach_view_like(td_tensor *t, td_tensor **out);
/* a stride-0 broadcast view of t with the given shape, not recorded */
td_status td_broadcast_view(td_tensor *t, int ndim, const int64_t *shape, td_tensor **out);
/* dtype cast that records nothing (for kernels' inputs) */
td_status td_cast_raw(td_tensor *t, td_dtype dt, td_tensor **out);
/* "FN: WHAT must be float32 or float64, got int64 (convert with
 * :float())" unless dt is float32 or float64 (bfloat16 and float16 get
 * td_refuse_lowp's message); arg is the Lua argument number */
td_status td_need_float(td_dtype dt, int arg, const char *fn, const char *what);
/* the same, admitting bfloat16 and float16 too (ops that compute them in
 * float32) */
td_status td_need_float_lowp(td_dtype dt, int arg, const char *fn, const char *what);
/* "FN: WHAT is bfloat16, which FN does not support yet (convert with
 * :float())" for bfloat16 and float16, TD_OK for any other dtype: the
 * refusal of ops without a low-precision path (docs/precision.md) */
td_status td_refuse_lowp(td_dtype dt, int arg, const char *fn, const char *what);
/* x (bfloat16 or float16) through float32: fn(x cast to float32, args),
 * a float32 result cast back to x's dtype, each step recorded, so a
 * low-precision input computes in float32 and its gradient comes back in
 * its dtype (runtime/lowp.c) */
typedef td_status (*td_lowp_fn)(td_tensor *xf, const void *args, td_tensor **out);
td_status td_lowp_via_float32(td_tensor *x, td_lowp_fn fn, const void *args, td_tensor **out);
/* element i of t in logical order, on any device (a download for devices;
 * runtime/loss_common.c) */
td_status td_read_flat(const td_tensor *t, int64_t i, double *out);

/* ---- autograd node --------------------------------------------------- */
#define TD_NODE_MAX_SAVED 6
typedef struct td_node td_node;
/* computes the gradient for each edge (NULL where next[i] is NULL or the
 * gradient is zero); grads_in[i] are new references */
typedef td_status (*td_backward_fn)(td_node *n, td_tensor *grad, td_tensor **grads_in);

typedef struct {
    td_tensor *t;
    uint64_t version;
    td_tensor **slot; /* the context field that names it (td_node_keep), or NULL */
} td_saved;

struct td_node {
    int refcount;
    const char *name;
    td_backward_fn backward;
    int n_next;
    td_node **next;  /* grad_fn or accumulator of each input, NULL if none */
    td_tensor *leaf; /* accumulator nodes only: weak pointer to the leaf */
    td_saved saved[TD_NODE_MAX_SAVED];
    int n_saved;
    bool released;
    /* shapes and dtypes of the inputs, to shape the gradients */
    int in_ndim[3];
    int64_t in_shape[3][TD_MAX_DIMS];
    td_dtype in_dtype[3];
    td_device in_device[3];
    void *ctx; /* the op's own typed context (td_node_ctx), freed with the node */
    /* engine scratch */
    td_tensor *pending;
    int deps;
    int64_t seq;
};

/* true when any of the inputs needs a gradient and grad mode is on */
bool td_needs_grad(int n, td_tensor *const *inputs);
/* a node with one edge per input; records their shapes (first 3) */
td_status td_node_new(const char *name, td_backward_fn fn, int n, td_tensor *const *inputs,
                      td_node **out);
/* The node's typed context: `size` zeroed bytes that live as long as the
 * node, holding what backward needs (dims, options, sizes). One per node;
 * an op declares its own struct, so backward reads names, not slots:
 *     conv_ctx *c;  TD_CHECK(TD_NODE_CTX(node, &c));  c->stride = ...;
 * and in backward `const conv_ctx *c = node->ctx;`. A struct ending in a
 * flexible array asks for its length with td_node_ctx directly. */
td_status td_node_ctx(td_node *n, size_t size, void **out);
#define TD_NODE_CTX(node, pp) td_node_ctx((node), sizeof **(pp), (void **)(pp))
/* keep t (a detached alias) for backward in *slot, a td_tensor * field of
 * the node's context: checked for in-place changes before backward runs,
 * released with the graph (and *slot set to NULL then) */
td_status td_node_keep(td_node *n, td_tensor *t, td_tensor **slot);
/* hand a tensor kept in *slot over to the caller, reference and all, and
 * forget it (*slot NULL, no longer checked or released): a gradient the
 * forward computed, which backward gives away once; a later backward of a
 * retained graph finds *slot NULL. NULL when nothing is kept there. */
td_tensor *td_node_take(td_node *n, td_tensor **slot);
/* the usual end of recording: on st == TD_OK attach node to out (stealing
 * it), else release node; returns st */
td_status td_node_finish(td_node *n, td_status st, td_tensor *out);
/* attach node to output: out->grad_fn = node, out->requires_grad = true; steals node */
void td_node_attach(td_node *n, td_tensor *out);
void td_node_release(td_node *n);
/* gradient of input i, summed to its shape and cast to its dtype */
td_status td_grad_to_input(td_node *n, int i, td_tensor *g, td_tensor **out);

/* Listeners told, during every backward, when a leaf's .grad has just been
 * written (on_grad), and when the backward ends (on_end, with whether it
 * succeeded; the backward fails with on_end's error). The data-parallel
 * reducer starts its all-reduces from them. */
typedef struct {
    td_status (*on_grad)(void *ud, td_tensor *leaf);
    td_status (*on_end)(void *ud, bool ok);
    void *ud;
} td_grad_listener;
td_status td_grad_listen(const td_grad_listener *l);
void td_grad_unlisten(void *ud);

#endif
