/* What nn_conv_dnnl.c (2-d) and nn_convnd_dnnl.c (1-d, 3-d, transposed)
 * share: one oneDNN engine, stream and scratchpad, one mutex over them,
 * and the cached convolution primitives, built and run the same way.
 *
 * An entry is one direction's primitive (forward, backward data or
 * backward weights) of one shape, built from layouts the caller asks for
 * (dnnl_format_tag_any: oneDNN's choice, or a fixed tag), with reorders
 * between the primitive's layouts and our buffers' where they differ.
 * Entries live in the caller's LRU cache (lru.h), one cache per caller,
 * under the caller's key: a struct of plain int64 fields whose first is
 * the kind. Hold td_dc_lock() around every other call (oneDNN
 * parallelises each call itself with OpenMP). */
#ifndef TIDE_KERNELS_CPU_DNNL_CONV_H
#define TIDE_KERNELS_CPU_DNNL_CONV_H

#include "cpu.h"
#include "lru.h"

#include <oneapi/dnnl/dnnl.h>

enum { TD_DC_FWD, TD_DC_BWD_DATA, TD_DC_BWD_WEIGHTS };
/* our three buffers: src or diff_src, weights or diff_weights, dst or diff_dst */
enum { TD_DC_DATA, TD_DC_WEIGHTS, TD_DC_DST, TD_DC_NSLOT };

/* the largest key, in int64 fields */
#define TD_DC_KEY_MAX 32

/* what a primitive is built from */
typedef struct {
    int kind; /* TD_DC_FWD, ... */
    dnnl_alg_kind_t alg;
    dnnl_memory_desc_t user[TD_DC_NSLOT]; /* our buffers' layouts */
    dnnl_memory_desc_t want[TD_DC_NSLOT]; /* what the primitive is asked to take */
    bool has_bias;
    dnnl_memory_desc_t bias;
    dnnl_dims_t strides, dil, padl, padr; /* dil as oneDNN counts it: 0 is dense */
} td_dc_desc;

typedef struct {
    int64_t key[TD_DC_KEY_MAX]; /* the caller's key, zero-padded; first, for td_lru */
    int kind;
    dnnl_primitive_t prim;
    dnnl_memory_desc_t user_md[TD_DC_NSLOT], prim_md[TD_DC_NSLOT], bias_md;
    /* user -> prim for inputs, prim -> user for outputs; NULL: same layout */
    dnnl_primitive_t reorder[TD_DC_NSLOT];
    size_t prim_size[TD_DC_NSLOT];
    bool own_reorder[TD_DC_NSLOT]; /* channels-last <-> nChw16c: ours, not oneDNN's */
    dnnl_memory_desc_t scratch_md;
    size_t scratch_size;
} td_dc_entry;

/* diff_dst in the primitives' layout, reordered once and lent from the
 * backward-data run to the backward-weights run of one backward pass; the
 * caller frees buf (td_cpu_free(buf, size)) */
typedef struct {
    dnnl_memory_desc_t md;
    void *buf;
    size_t size;
} td_dc_lent;

void td_dc_lock(void);
void td_dc_unlock(void);

/* who's error for a failed oneDNN call (who names the op: "conv2d") */
td_status td_dc_fail(const char *who, dnnl_status_t s, const char *what);

/* the cached entry whose key is key (key_size bytes), marked as just used;
 * NULL when none */
td_dc_entry *td_dc_find(td_lru *cache, const void *key, size_t key_size);

/* builds d's primitive and its reorders under key, adds it to cache
 * (freeing what that evicts) and gives it in *out */
td_status td_dc_build(const char *who, td_lru *cache, const void *key, size_t key_size,
                      const td_dc_desc *d, td_dc_entry **out);

/* runs e on our buffers ptr[slot] (and bias, or NULL). lent, when not
 * NULL, lends or receives the reordered diff_dst. */
td_status td_dc_run(const char *who, const td_dc_entry *e, void *ptr[TD_DC_NSLOT], void *bias,
                    td_dc_lent *lent);

/* oneDNN's data type of dt (f32, bf16) */
dnnl_data_type_t td_dc_dt(td_dtype dt);

/* whether the oneDNN kernels take dt (bfloat16 where oneDNN has a native
 * kernel and TIDE_LOWP_CONV allows it; float32 always), and the path dt's
 * convolutions take, for tide.backend_info (docs/precision.md). Call
 * without the lock. */
bool td_dc_takes(td_dtype dt);
const char *td_dc_path(td_dtype dt);

#endif
