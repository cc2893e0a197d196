/* serialize: safetensors files and the generator's state.
 *
 * The format (https://github.com/huggingface/safetensors): 8 bytes of
 * little-endian header length N, N bytes of JSON
 *   {"NAME": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]},
 *    "__metadata__": {"key": "value"}}
 * then the data region, each tensor's bytes little-endian and row-major,
 * offsets relative to the start of the region, which they cover exactly.
 * tide reads and writes F32, F64, I64 and U8 (float32, float64, int64,
 * uint8). Nothing in a file is ever executed.
 */
#ifndef TIDE_SERIALIZE_H
#define TIDE_SERIALIZE_H

#include "tide/tide.h"

/* a loaded file: tensors in data order, metadata in header order; every
 * string and tensor is owned by the struct (td_safetensors_free) */
typedef struct {
    int n;
    char **names;
    td_tensor **tensors;
    int n_meta;
    char **meta_keys;
    char **meta_values;
} td_safetensors;

/* headers larger than this are rejected as damaged (the reference reader's
 * limit too) */
#define TD_SAFETENSORS_MAX_HEADER (100u * 1000u * 1000u)

/* write n tensors under their names, plus n_meta metadata strings, to path:
 * into path.tmp.XXXXXX in the same directory, fsync'd, then renamed over
 * path, so path holds either its old content or the whole new file. Names
 * must be distinct and not "__metadata__". Any tensor layout is accepted;
 * the file holds it contiguous. */
td_status td_save_safetensors(const char *path, int n, const char *const *names,
                              td_tensor *const *tensors, int n_meta, const char *const *meta_keys,
                              const char *const *meta_values);

/* read a whole file with a strict check of the header; errors name the
 * file and the entry. *out is filled only on success. */
td_status td_load_safetensors(const char *path, td_safetensors *out);

/* the same reader over a buffer in memory; label names it in errors (the
 * fuzz target's entry point) */
td_status td_parse_safetensors(const void *data, size_t size, const char *label,
                               td_safetensors *out);

/* release everything a successful load put in *st, and zero it */
void td_safetensors_free(td_safetensors *st);

/* ---- the generator's state (random.c) ---------------------------------- */
/* xoshiro256** state; all zeros means "not seeded yet" (the next draw seeds
 * with the default seed), which is not a valid state otherwise */
void td_random_get_state(uint64_t out[4]);
void td_random_set_state(const uint64_t in[4]);

#endif
