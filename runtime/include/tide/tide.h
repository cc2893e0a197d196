/* tide: the C core's public interface.
 *
 * Every fallible function returns td_status (TD_OK = 0) and leaves a
 * message in td_last_error(); td_last_error_arg() tells which argument
 * (1-based, 0 = none) was at fault so the binding can word the error the
 * way Lua's own library does. Results come back through an out-pointer
 * holding one new reference; release it with td_tensor_release.
 *
 * The types (status codes, dtypes, tensors, devices, op codes) live in
 * tide/core.h, the part the kernels see; this header adds the API.
 */
#ifndef TIDE_TIDE_H
#define TIDE_TIDE_H

#include "tide/core.h"

#define TD_VERSION "0.1.0"

/* ---- dtypes ---------------------------------------------------------- */
td_status td_dtype_parse(const char *name, td_dtype *out);
td_dtype td_promote(td_dtype a, td_dtype b);

/* ---- memory ---------------------------------------------------------- */
typedef struct {
    int64_t live_bytes, peak_bytes, allocated_total;
} td_memory_stats;
void td_memory(td_memory_stats *out);
/* bytes allocated since the last call; the binding feeds Lua's collector */
int64_t td_memory_take_allocated(void);

/* ---- devices --------------------------------------------------------- */
/* "cpu", "cuda:0", "cuda:1", ... A tensor lives on its storage's device;
 * every op wants all its tensors on one device (a 0-dim CPU tensor beside
 * a CUDA one is moved, as PyTorch does for scalars). */
td_device td_device_of(const td_tensor *t);
bool td_device_eq(td_device a, td_device b);
/* "cpu", "cuda" (= cuda:0) or "cuda:N"; says nothing of availability */
td_status td_device_parse(const char *s, td_device *out);
/* writes "cpu" or "cuda:N" into buf */
const char *td_device_str(td_device d, char *buf, size_t n);
/* an error unless this build and this machine have the device */
td_status td_device_check(td_device d);
/* "expected all tensors on the same device, got cpu and cuda:0" unless they are */
td_status td_same_device(int n, td_tensor *const *ts);
/* "NAME is not implemented on cuda yet" when any tensor is off the CPU
 * (front-ends whose kernels exist on the CPU only) */
td_status td_require_cpu(const char *name, int n, td_tensor *const *ts);
/* true once any storage was ever made off the CPU (a cheap fast path) */
bool td_devices_used(void);

/* CUDA: every call answers sensibly in a build without CUDA, or on a
 * machine without a driver or GPU (count 0, not available, an error) */
int td_cuda_device_count(void);
bool td_cuda_is_available(void);
td_status td_cuda_synchronize(void); /* every device */
void td_cuda_empty_cache(void);      /* cached blocks go back to the driver */
td_status td_cuda_memory(int device, td_cuda_memory_stats *out);
/* device bytes allocated since the last call, every device (for the collector) */
int64_t td_cuda_memory_take_allocated(void);
/* called once when a device allocation fails, before the one retry (the
 * binding runs a full collection there); NULL to unset */
void td_set_oom_handler(void (*fn)(void *ud), void *ud);

/* ---- tensors --------------------------------------------------------- */
td_status td_empty_on(int ndim, const int64_t *shape, td_dtype dt, td_device dev, td_tensor **out);
/* a copy on dev, recorded by autograd (t itself, retained, when already there) */
td_status td_to_device(td_tensor *t, td_device dev, td_tensor **out);
td_status td_empty(int ndim, const int64_t *shape, td_dtype dt, td_tensor **out);
td_status td_empty_like(const td_tensor *t, td_tensor **out); /* on t's device */
void td_tensor_retain(td_tensor *t);
void td_tensor_release(td_tensor *t);
/* Channels-last (PyTorch's channels_last): a 4-dim (N, C, H, W) tensor
 * stored as N, H, W, C, strides (HWC, 1, WC, C); size-1 dims match any
 * stride, so a tensor can be both contiguous and channels-last. float32
 * CPU convolutions give channels-last outputs (oneDNN's fast layout),
 * and batch norm, pooling and elementwise ops keep the layout they get. */
bool td_is_channels_last(const td_tensor *t);
/* a CPU tensor that is channels-last and not also contiguous: the CPU ops
 * read it without a copy and give outputs (and gradients) in its layout;
 * CUDA tensors never (the CUDA kernels write contiguous outputs) */
bool td_keeps_channels_last(const td_tensor *t);
/* channels-last when channels_last and ndim == 4, else contiguous */
td_status td_empty_layout_on(int ndim, const int64_t *shape, td_dtype dt, td_device dev,
                             bool channels_last, td_tensor **out);
/* like's shape on like's device, channels-last when td_keeps_channels_last(like) */
td_status td_empty_as(const td_tensor *like, td_dtype dt, td_tensor **out);
/* t of dtype dt laid out as a kernel reads it: channels-last when
 * channels_last (4-dim only), else contiguous; a view of t when it already
 * is, else a copy; recording nothing */
td_status td_dense_raw(td_tensor *t, td_dtype dt, bool channels_last, td_tensor **out);
double td_get_flat(const td_tensor *t, int64_t i); /* i-th element in logical order */
td_status td_get(const td_tensor *t, int n, const int64_t *idx, double *out);
td_status td_set(td_tensor *t, int n, const int64_t *idx, double value);
td_status td_item(const td_tensor *t, double *out);
/* all shapes equal */
bool td_same_shape(const td_tensor *a, const td_tensor *b);
/* writes "(2,3)" into buf */
const char *td_shape_str(const td_tensor *t, char *buf, size_t n);

/* ---- creation -------------------------------------------------------- */
td_status td_full(int ndim, const int64_t *shape, double value, td_dtype dt, td_tensor **out);
td_status td_zeros(int ndim, const int64_t *shape, td_dtype dt, td_tensor **out);
td_status td_ones(int ndim, const int64_t *shape, td_dtype dt, td_tensor **out);
td_status td_scalar(double value, td_dtype dt, td_tensor **out);
td_status td_from_data(int ndim, const int64_t *shape, td_dtype dt, const double *values,
                       td_tensor **out);
td_status td_arange(double start, double end, double step, td_dtype dt, td_tensor **out);
td_status td_linspace(double start, double end, int64_t steps, td_dtype dt, td_tensor **out);
td_status td_eye(int64_t n, int64_t m, td_dtype dt, td_tensor **out);
td_status td_rand(int ndim, const int64_t *shape, td_dtype dt, td_tensor **out);
td_status td_randn(int ndim, const int64_t *shape, td_dtype dt, td_tensor **out);
td_status td_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, td_dtype dt,
                     td_tensor **out);
td_status td_randperm(int64_t n, td_dtype dt, td_tensor **out);
void td_manual_seed(uint64_t seed);
uint64_t td_random_u64(void);

/* ---- views (share storage) ------------------------------------------- */
td_status td_view(td_tensor *t, int ndim, const int64_t *shape, td_tensor **out);
td_status td_reshape(td_tensor *t, int ndim, const int64_t *shape, td_tensor **out);
td_status td_transpose(td_tensor *t, int d0, int d1, td_tensor **out);
td_status td_permute(td_tensor *t, int ndim, const int *dims, td_tensor **out);
td_status td_t(td_tensor *t, td_tensor **out);
td_status td_narrow(td_tensor *t, int dim, int64_t start, int64_t len, td_tensor **out);
td_status td_select(td_tensor *t, int dim, int64_t index, td_tensor **out);
td_status td_squeeze(td_tensor *t, int dim, bool all, td_tensor **out);
td_status td_unsqueeze(td_tensor *t, int dim, td_tensor **out);
td_status td_expand(td_tensor *t, int ndim, const int64_t *shape, td_tensor **out);
td_status td_flatten(td_tensor *t, int start, int end, td_tensor **out);
td_status td_contiguous(td_tensor *t,
                        td_tensor **out); /* same tensor, retained, when already contiguous */
/* a channels-last copy, recorded (the same tensor, retained, when already channels-last) */
td_status td_contiguous_channels_last(td_tensor *t, td_tensor **out);
td_status td_clone(td_tensor *t, td_tensor **out);
td_status td_to_dtype(td_tensor *t, td_dtype dt, td_tensor **out);
/* float32 to bfloat16 or float16 rounding up with probability proportional
 * to the distance from the value below (runtime/lowp.c; CPU), random bits
 * from tide's generator */
td_status td_to_dtype_stochastic(td_tensor *t, td_dtype dt, td_tensor **out);
td_status td_detach(td_tensor *t, td_tensor **out);
td_status td_cat(int n, td_tensor **ts, int dim, td_tensor **out);
td_status td_stack(int n, td_tensor **ts, int dim, td_tensor **out);
/* split into pieces of `size` along dim; *pieces is malloc'd, caller frees array and releases each
 */
td_status td_split(td_tensor *t, int64_t size, int dim, int *count, td_tensor ***pieces);
td_status td_chunk(td_tensor *t, int64_t chunks, int dim, int *count, td_tensor ***pieces);
/* normalise a possibly negative dim; arg is the argument number for errors */
td_status td_wrap_dim(int dim, int ndim, int arg, int *out);

/* ---- elementwise ----------------------------------------------------- */
/* The elementwise op table: one row per unary or binary op, the only home
 * of its Lua name and its autograd node's name. The binding registers the
 * unary rows (tide.exp, x:exp()), the runtime names nodes from it, and the
 * table-driven tests (tests/lua/op_table_spec.lua, tests/cuda/op_parity.lua)
 * walk it with samples from each row's domain. */
typedef enum {
    TD_DOMAIN_REAL,        /* any real */
    TD_DOMAIN_POSITIVE,    /* > 0 (log, sqrt, reciprocal; pow's base) */
    TD_DOMAIN_OFF_KINK,    /* away from 0, where the derivative jumps (abs, relu, sign) */
    TD_DOMAIN_OFF_INTEGER, /* away from integers and halves, where floor and round jump */
    TD_DOMAIN_UNIT,        /* inside (-1, 1) (asin, acos, atanh; tan, far from its poles) */
    TD_DOMAIN_ABOVE_ONE,   /* > 1 (acosh) */
} td_op_domain;
/* where the binding puts a row: tide.X and x:X(), tide.F.X, or both
 * (what PyTorch has as torch.X, torch.nn.functional.X or both) */
typedef enum { TD_SCOPE_TENSOR, TD_SCOPE_F, TD_SCOPE_BOTH } td_op_scope;
/* a named parameter of a row (elu's alpha), in PyTorch's order */
typedef struct {
    const char *name;
    double value;               /* the default; for a required one, a typical value for samples */
    bool required;              /* PyTorch gives it no default (threshold's threshold, value) */
    const char *const *choices; /* a string option's values, value indexing them; else NULL */
} td_op_param;
#define TD_OP_MAX_PARAMS 3
typedef struct {
    const char *name;    /* "exp" */
    const char *node;    /* "ExpBackward"; NULL where there is no gradient */
    int arity;           /* 1 or 2 */
    int op;              /* its td_unary_op or td_binary_op */
    td_op_domain domain; /* of its inputs, for samples */
    const char *summary; /* one line, for help */
    td_op_scope scope;
    td_op_param params[TD_OP_MAX_PARAMS]; /* unary rows; the first without a name ends them */
} td_op_def;
int td_op_count(void);
const td_op_def *td_op_at(int i);
int td_op_nparams(const td_op_def *d);
/* the row's values of its parameters (defaults, and typical values of the
 * required ones) into p[TD_OP_MAX_PARAMS] */
void td_op_param_values(const td_op_def *d, double *p);
/* NULL when name is no elementwise op */
const td_op_def *td_op_find(const char *name);
/* the row of a unary or binary op */
const td_op_def *td_unary_def(td_unary_op op);
const td_op_def *td_binary_def(td_binary_op op);

/* td_unary with the row's parameter values; td_unary_p with the op's
 * parameters p[0..nparams) (NULL: the row's values) */
td_status td_unary(td_unary_op op, td_tensor *x, td_tensor **out);
td_status td_unary_p(td_unary_op op, td_tensor *x, const double *p, td_tensor **out);
td_status td_binary(td_binary_op op, td_tensor *a, td_tensor *b, td_tensor **out);
td_status td_binary_scalar(td_binary_op op, td_tensor *a, double s, bool scalar_first,
                           td_tensor **out);
td_status td_pow_scalar(td_tensor *x, double p, td_tensor **out);
td_status td_clamp(td_tensor *x, double lo, double hi, td_tensor **out); /* +-inf = no bound */
td_status td_where(td_tensor *cond, td_tensor *a, td_tensor *b, td_tensor **out);
td_status td_masked_fill(td_tensor *x, td_tensor *mask, double value, td_tensor **out);
/* round to decimals (0: the op table's round; < 0: to tens, hundreds...) */
td_status td_round_decimals(td_tensor *x, int decimals, td_tensor **out);
/* NaN, +inf, -inf replaced; posinf / neginf NULL: the dtype's max / lowest */
td_status td_nan_to_num(td_tensor *x, double nan, const double *posinf, const double *neginf,
                        td_tensor **out);
/* |a - b| <= atol + rtol |b| elementwise (uint8), or for every element */
td_status td_isclose(td_tensor *a, td_tensor *b, double rtol, double atol, bool equal_nan,
                     td_tensor **out);
td_status td_allclose(td_tensor *a, td_tensor *b, double rtol, double atol, bool equal_nan,
                      bool *out);
/* in place: self op= other (other broadcast to self) */
td_status td_binary_(td_binary_op op, td_tensor *self, td_tensor *other);
td_status td_fill_(td_tensor *self, double value);
td_status td_copy_(td_tensor *self, td_tensor *src);
td_status td_broadcast_shape(const td_tensor *a, const td_tensor *b, int *ndim, int64_t *shape);

/* ---- reductions (dim < 0 after wrapping never happens; use all=true) -- */
td_status td_sum(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out);
td_status td_mean(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out);
td_status td_prod(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out);
td_status td_var(td_tensor *x, int dim, bool all, bool keepdim, int64_t correction,
                 td_tensor **out);
td_status td_std(td_tensor *x, int dim, bool all, bool keepdim, int64_t correction,
                 td_tensor **out);
td_status td_norm(td_tensor *x, double p, int dim, bool all, bool keepdim, td_tensor **out);
/* values and 0-based indices; indices may be NULL */
td_status td_max(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **values,
                 td_tensor **indices);
td_status td_min(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **values,
                 td_tensor **indices);
td_status td_argmax(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out);
td_status td_argmin(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out);
td_status td_softmax(td_tensor *x, int dim, td_tensor **out);
td_status td_log_softmax(td_tensor *x, int dim, td_tensor **out);
/* uint8: is every (any) element non-zero; NaN counts as non-zero */
td_status td_all(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out);
td_status td_any(td_tensor *x, int dim, bool all, bool keepdim, td_tensor **out);
/* log sum exp over the ndims dims listed (negative ones wrap); integer
 * input gives float32 */
td_status td_logsumexp(td_tensor *x, int ndims, const int *dims, bool keepdim, td_tensor **out);
/* inclusive scans along dim; has_dtype casts x to dtype first, else
 * integer input scans in int64 */
td_status td_cumsum(td_tensor *x, int dim, bool has_dtype, td_dtype dtype, td_tensor **out);
td_status td_cumprod(td_tensor *x, int dim, bool has_dtype, td_dtype dtype, td_tensor **out);
/* int64 (..., num_classes) with a 1 at each class; num_classes < 0 means
 * max + 1 */
td_status td_one_hot(td_tensor *x, int64_t num_classes, td_tensor **out);
/* sum a broadcast gradient back to a shape */
td_status td_sum_to_shape(td_tensor *g, int ndim, const int64_t *shape, td_tensor **out);

/* ---- linear algebra -------------------------------------------------- */
td_status td_mm(td_tensor *a, td_tensor *b, td_tensor **out);
td_status td_bmm(td_tensor *a, td_tensor *b, td_tensor **out);
td_status td_matmul(td_tensor *a, td_tensor *b, td_tensor **out);
td_status td_addmm(td_tensor *input, td_tensor *a, td_tensor *b, double beta, double alpha,
                   td_tensor **out);
/* how matmul multiplies dt on dev here, in words ("onednn sgemm", "float32
 * fallback (...)"; tide.backend_info, docs/precision.md) */
td_status td_matmul_path(td_device dev, td_dtype dt, const char **out);
/* how the convolutions compute dt on dev here ("onednn 2.6.3 jit_bf16:
 * avx512_core_bf16", "float32 fallback (...)"; tide.backend_info) */
td_status td_conv_path(td_device dev, td_dtype dt, const char **out);

/* ---- indexing -------------------------------------------------------- */
td_status td_index_select(td_tensor *x, int dim, td_tensor *index, td_tensor **out);
td_status td_gather(td_tensor *x, int dim, td_tensor *index, td_tensor **out);
/* out = copy of x with src scattered (accumulate = add instead of copy) */
td_status td_scatter(td_tensor *x, int dim, td_tensor *index, td_tensor *src, bool accumulate,
                     td_tensor **out);
td_status td_scatter_scalar(td_tensor *x, int dim, td_tensor *index, double value, td_tensor **out);
td_status td_index_add(td_tensor *x, int dim, td_tensor *index, td_tensor *src, td_tensor **out);

/* ---- autograd -------------------------------------------------------- */
bool td_grad_enabled(void);
bool td_set_grad_enabled(bool on); /* returns the previous mode */
td_status td_set_requires_grad(td_tensor *t, bool on);
/* grad may be NULL for a one-element root */
td_status td_backward(td_tensor *root, td_tensor *grad, bool retain_graph);
bool td_is_leaf(const td_tensor *t);
const char *td_grad_fn_name(const td_tensor *t);
void td_set_grad(td_tensor *t, td_tensor *grad); /* retains grad; NULL clears */

/* ---- threads --------------------------------------------------------- */
/* a fixed count from now on (the caller keeps n within td_max_threads) */
void td_set_num_threads(int n);
int td_get_num_threads(void);
/* deterministic mode: every op gives the same bits at any thread count
 * (docs/determinism.md); td_deterministic() in tide/core.h reads it */
void td_set_deterministic(bool on);
/* the most threads set_num_threads and TIDE_NUM_THREADS take: 4 per online CPU */
int td_max_threads(void);
/* s read as a thread count from 1 to td_max_threads(), or 0 when it is not
 * one (TIDE_NUM_THREADS, `tide --threads`) */
int td_thread_count(const char *s);
/* the default (runtime/threads.c): TIDE_NUM_THREADS, else OMP_NUM_THREADS,
 * else every core we may use (under an MPI launcher the node's cores
 * shared among its ranks), following the cores other processes leave
 * free unless TIDE_FOLLOW_FREE_CORES=0 */
void td_threads_init(void);
/* whether the count follows free cores (no count was given) */
bool td_threads_follow_free_cores(void);

#include "tide/losses.h"
#include "tide/conv.h"
#include "tide/layers.h"
#include "tide/optim.h"
#include "tide/data.h"
#include "tide/serialize.h"
#include "tide/distributed.h"
#include "tide/reorder.h"
#include "tide/rnn.h"
#include "tide/attention.h"

#endif
