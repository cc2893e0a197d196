/* tide's core: what the kernels may see of the runtime.
 *
 * Status codes, dtypes, the tensor and storage structs, devices, errors,
 * the op codes and option structs the backend table passes, and the few
 * tensor queries a kernel needs. Nothing here allocates a tensor or
 * records autograd: kernels include this header (directly or through
 * kernels/backend.h) and never tide/tide.h, which adds the public API on
 * top of it. The layering test (tests/layering.cmake) keeps it so.
 */
#ifndef TIDE_CORE_H
#define TIDE_CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TD_MAX_DIMS 8

typedef enum {
    TD_OK = 0,
    TD_EINVAL, /* bad value or option */
    TD_ESHAPE, /* shapes that do not fit */
    TD_EDTYPE, /* wrong dtype */
    TD_ERANGE, /* dim or index out of range */
    TD_ENOMEM, /* allocation failed */
    TD_EGRAD,  /* autograd misuse */
    TD_EIO,    /* files */
} td_status;

/* bfloat16 and float16 (docs/precision.md) come last so the others keep
 * their numbers: 2-byte storage, computed in float32 inside */
typedef enum {
    TD_FLOAT32 = 0,
    TD_FLOAT64,
    TD_INT64,
    TD_UINT8,
    TD_BFLOAT16,
    TD_FLOAT16,
    TD_NDTYPES
} td_dtype;

typedef struct td_backend td_backend;
typedef struct td_node td_node;

typedef struct td_storage {
    int refcount;
    void *data;
    size_t nbytes;
    const td_backend *backend;
    int device;       /* index among the backend's devices (cuda:N); 0 on the CPU */
    uint64_t version; /* bumped by every in-place write, checked by autograd */
} td_storage;

typedef struct td_tensor {
    int refcount;
    td_storage *storage;
    int64_t offset; /* in elements */
    int ndim;
    int64_t shape[TD_MAX_DIMS];
    int64_t stride[TD_MAX_DIMS]; /* in elements */
    td_dtype dtype;
    bool requires_grad;
    struct td_tensor *grad; /* leaves: accumulated gradient */
    td_node *grad_fn;       /* non-leaves: the node that made it */
    td_node *acc;           /* leaves that require grad: their accumulator */
} td_tensor;

/* ---- errors ---------------------------------------------------------- */
const char *td_last_error(void);
int td_last_error_arg(void);
td_status td_error(td_status code, int arg, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void td_clear_error(void);
/* prefix the pending message with "in NAME: " style context */
void td_error_prefix(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- deterministic mode (tide.use_deterministic) ---------------------- */
/* while on, a kernel whose bits would depend on the thread count or on
 * scheduling takes an order fixed by the shape instead */
bool td_deterministic(void);

/* ---- dtypes ---------------------------------------------------------- */
size_t td_dtype_size(td_dtype dt);
const char *td_dtype_name(td_dtype dt);
bool td_dtype_is_float(td_dtype dt);
/* bfloat16 or float16: stored in 2 bytes, computed in float32 */
static inline bool td_dtype_is_lowp(td_dtype dt) { return dt == TD_BFLOAT16 || dt == TD_FLOAT16; }

/* Scalar conversions between float32 and the two low-precision formats,
 * bit for bit: round to nearest even, overflow to inf, subnormals kept,
 * NaN stays NaN with the quiet bit set. A double converts through float
 * first, as PyTorch's c10::BFloat16(double) does. The CPU kernels have
 * vector forms of the same rules (kernels/cpu/lowp.h). */
static inline uint32_t td_f32_bits(float f)
{
    union {
        float f;
        uint32_t u;
    } v;
    v.f = f;
    return v.u;
}
static inline float td_bits_f32(uint32_t u)
{
    union {
        float f;
        uint32_t u;
    } v;
    v.u = u;
    return v.f;
}
static inline float td_bf16_to_float(uint16_t h) { return td_bits_f32((uint32_t)h << 16); }
static inline uint16_t td_float_to_bf16(float f)
{
    uint32_t u = td_f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u);
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}
static inline float td_f16_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    if (e == 0x1f) return td_bits_f32(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0u));
    if (e) return td_bits_f32(sign | ((e + 112u) << 23) | (m << 13));
    return td_bits_f32(sign | td_f32_bits((float)m * 5.9604644775390625e-8f)); /* m 2^-24 */
}
static inline uint16_t td_float_to_f16(float f)
{
    uint32_t u = td_f32_bits(f), sign = (u >> 16) & 0x8000u, a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    if (a >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* >= 65520 rounds to inf */
    if (a >= 0x38800000u) {                                  /* a normal float16 */
        uint32_t r = a - 0x38000000u;
        return (uint16_t)(sign | ((r + 0xfffu + ((r >> 13) & 1u)) >> 13));
    }
    if (a <= 0x33000000u) return (uint16_t)sign; /* <= 2^-25, half the least subnormal */
    uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u, shift = 126u - e;
    uint32_t q = m >> shift, rem = m & ((1u << shift) - 1u), half = 1u << (shift - 1u);
    q += rem > half || (rem == half && (q & 1u));
    return (uint16_t)(sign | q);
}
/* PyTorch's torch.finfo of a float dtype (an error for the others):
 * bits, eps (2^-mantissa bits), max and min (-max) finite, tiny (the
 * smallest normal), resolution (10^-digits) */
typedef struct {
    int bits;
    double eps, max, min, tiny, resolution;
} td_finfo_t;
td_status td_finfo(td_dtype dt, td_finfo_t *out);

/* element value of a 2-byte float of dtype dt, and back (RNE) */
static inline float td_lowp_to_float(td_dtype dt, uint16_t h)
{
    return dt == TD_BFLOAT16 ? td_bf16_to_float(h) : td_f16_to_float(h);
}
static inline uint16_t td_float_to_lowp(td_dtype dt, float f)
{
    return dt == TD_BFLOAT16 ? td_float_to_bf16(f) : td_float_to_f16(f);
}

/* ---- devices --------------------------------------------------------- */
typedef enum { TD_CPU = 0, TD_CUDA } td_device_type;
typedef struct {
    td_device_type type;
    int index;
} td_device;
#define TD_DEVICE_CPU ((td_device){TD_CPU, 0})

typedef struct {
    int64_t live_bytes, peak_bytes, allocated_total; /* bytes held by tensors */
    int64_t reserved_bytes;                          /* live + cached by the allocator */
    int64_t free_bytes, total_bytes;                 /* the device's own view */
} td_cuda_memory_stats;

/* ---- tensor queries -------------------------------------------------- */
int64_t td_numel(const td_tensor *t);
bool td_is_contiguous(const td_tensor *t);
void *td_data_ptr(const td_tensor *t); /* at offset */

/* ---- op codes the backend table takes --------------------------------- */
typedef enum {
    TD_EXP,
    TD_LOG,
    TD_LOG1P,
    TD_SQRT,
    TD_ABS,
    TD_NEG,
    TD_SIN,
    TD_COS,
    TD_TANH,
    TD_SIGMOID,
    TD_RELU,
    TD_GELU,
    TD_SIGN,
    TD_RECIPROCAL,
    TD_SQUARE,
    TD_FLOOR,
    TD_CEIL,
    TD_ROUND, /* half to even */
    TD_TRUNC,
    TD_ISNAN, /* these three write uint8, from any input dtype */
    TD_ISINF,
    TD_ISFINITE,
    TD_RSQRT,
    TD_TAN,
    TD_ASIN,
    TD_ACOS,
    TD_ATAN,
    TD_SINH,
    TD_COSH,
    TD_ASINH,
    TD_ACOSH,
    TD_ATANH,
    TD_LOGICAL_NOT, /* uint8 from any dtype, as the three tests */
    /* activations; those with parameters (the op table's rows name them)
     * read them from the kernels' param argument, in the row's order */
    TD_ELU, /* alpha */
    TD_SELU,
    TD_CELU, /* alpha */
    TD_SILU,
    TD_MISH,
    TD_RELU6,
    TD_HARDTANH, /* min_val, max_val */
    TD_HARDSWISH,
    TD_HARDSIGMOID,
    TD_SOFTPLUS, /* beta, threshold */
    TD_SOFTSIGN,
    TD_LOGSIGMOID,
    TD_THRESHOLD, /* threshold, value */
    TD_NUNARY
} td_unary_op;
typedef enum {
    TD_ADD,
    TD_SUB,
    TD_MUL,
    TD_DIV,
    TD_POW,
    TD_MAXIMUM,
    TD_MINIMUM,
    TD_EQ,
    TD_NE,
    TD_LT,
    TD_LE,
    TD_GT,
    TD_GE,
    TD_LOGICAL_AND, /* these three: uint8, nonzero is true, as the comparisons */
    TD_LOGICAL_OR,
    TD_LOGICAL_XOR,
    TD_ATAN2,
    TD_NBINARY
} td_binary_op;
/* ALL and ANY give uint8 whatever the input's dtype */
typedef enum { TD_SUM, TD_PROD, TD_MAX, TD_MIN, TD_ARGMAX, TD_ARGMIN, TD_ALL, TD_ANY } td_reduce_op;

/* a collective's reduction (tide.distributed); AVG is a SUM divided by the
 * number of ranks, float dtypes only */
typedef enum { TD_DIST_SUM, TD_DIST_AVG, TD_DIST_MAX, TD_DIST_MIN, TD_DIST_PROD } td_dist_op;

/* a loss's reduction (the CTC backward scales its gradient by it) */
typedef enum { TD_REDUCE_NONE, TD_REDUCE_MEAN, TD_REDUCE_SUM, TD_REDUCE_BATCHMEAN } td_reduction;

/* ---- optimizer options (tide/optim.h's steps, the kernels' updates) --- */
typedef struct {
    double lr, momentum, dampening, weight_decay;
    bool nesterov, maximize;
    bool first_step; /* momentum_buf holds nothing yet: it becomes the first d_p */
} td_sgd_opts;

typedef struct {
    double lr, beta1, beta2, eps, weight_decay;
    int64_t step; /* the step being taken, counted from 1 */
    bool amsgrad, maximize;
    bool decoupled; /* AdamW: param *= 1 - lr wd first, instead of grad += wd param */
} td_adam_opts;

typedef struct {
    double lr, alpha, eps, weight_decay, momentum;
    bool centered, maximize;
} td_rmsprop_opts;

#ifdef __cplusplus
}
#endif

#endif
