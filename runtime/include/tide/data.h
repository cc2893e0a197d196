/* data: dataset readers (IDX, CIFAR-10 binary), a small seeded generator,
 * and the DataLoader's prefetch thread.
 *
 * Readers never abort on bad input: a damaged file gives TD_EIO (missing,
 * unreadable) or TD_EINVAL (wrong magic, truncated, counts that disagree,
 * labels out of range) with a message that names the file.
 */
#ifndef TIDE_DATA_H
#define TIDE_DATA_H

#include "tide/tide.h"

/* ---- a generator of its own (xoshiro256**), for loaders and samplers ---- */
typedef struct {
    uint64_t s[4];
} td_rng;
void td_rng_seed(td_rng *r, uint64_t seed);
uint64_t td_rng_next(td_rng *r);
uint64_t td_rng_below(td_rng *r, uint64_t n); /* uniform in [0, n), n > 0 */
double td_rng_uniform(td_rng *r);             /* [0, 1) */
/* out[0..n) = a uniform random permutation of 0..n-1 */
void td_rng_permutation(td_rng *r, int64_t n, int64_t *out);
/* PyTorch's WeightedRandomSampler: num indices in [0, n) drawn with
 * probability proportional to w (with or without replacement) */
td_status td_weighted_sample(td_rng *r, const double *w, int64_t n, int64_t num, bool replacement,
                             int64_t *out);

/* ---- IDX (MNIST's format) --------------------------------------------- */
/* parse an IDX file held in memory (unsigned-byte data only) into a uint8
 * tensor of the header's dims; name is used in messages */
td_status td_idx_parse(const uint8_t *buf, size_t n, const char *name, td_tensor **out);
/* read an IDX file, gzip or plain, into a malloc'd buffer: its header first, then at
 * most the data the header promises plus one byte, so a bomb is refused early */
td_status td_read_file(const char *path, uint8_t **buf, size_t *n);
/* MNIST-style directory: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz];
 * split "train" or "test"; images (N, 1, H, W) uint8, labels (N) int64 in
 * [0, 10). missing_hint (may be NULL) is appended to a missing-file error. */
td_status td_mnist_load(const char *dir, const char *split, const char *missing_hint,
                        td_tensor **images, td_tensor **labels);

/* ---- CIFAR-10 binary batches ------------------------------------------ */
#define TD_CIFAR_RECORD 3073
/* parse whole 3073-byte records (label, then 3x32x32 bytes) into images
 * (N, 3, 32, 32) uint8 and labels (N) int64 */
td_status td_cifar10_parse(const uint8_t *buf, size_t n, const char *name, td_tensor **images,
                           td_tensor **labels);
/* data_batch_1..5.bin ("train") or test_batch.bin ("test") under dir */
td_status td_cifar10_load(const char *dir, const char *split, const char *missing_hint,
                          td_tensor **images, td_tensor **labels);

/* ---- transforms applied by the loader thread, in order ----------------- */
typedef enum { TD_TF_NORMALIZE, TD_TF_RANDOM_CROP, TD_TF_RANDOM_HFLIP } td_transform_kind;
#define TD_TF_MAX_CHANNELS 16
typedef struct {
    td_transform_kind kind;
    int nch;                         /* normalize: 1 (all channels) or C */
    double mean[TD_TF_MAX_CHANNELS]; /* normalize */
    double std[TD_TF_MAX_CHANNELS];
    int64_t size_h, size_w, padding; /* random_crop */
    double p;                        /* random_hflip */
} td_transform;

/* in place on a contiguous float32 (B, C, H, W) batch (normalize: ndim >= 2,
 * channels on dim 1); random choices come from counter hashes of (key,
 * first + sample) so they do not depend on timing. random_crop gives a new
 * tensor in *out (the input is left alone); the others return x retained. */
td_status td_transform_apply(const td_transform *tf, td_tensor *x, uint64_t key, int64_t first,
                             td_tensor **out);

/* ---- the DataLoader ---------------------------------------------------- */
typedef struct td_loader td_loader;
typedef struct {
    int64_t batch_size;
    bool drop_last;
    int n_transforms;
    const td_transform *transforms;
    /* where the batches go ({TD_CPU, 0}, the zero value: as assembled). On
     * CUDA with pin_memory the thread also copies each batch into a
     * page-locked staging buffer (one per ring slot) and td_loader_next
     * starts an asynchronous upload from it on tide's stream; the thread
     * waits for that stream before it refills the slot. Without pinned
     * memory (or without pin_memory) the upload is an ordinary copy.
     * pin_memory with the CPU as destination does nothing. */
    td_device device;
    bool pin_memory;
} td_loader_opts;

/* images (N, ...) of any dtype, labels (N, ...) of any dtype; both are made
 * contiguous and retained. uint8 images become float32 in [0, 1], other
 * dtypes are copied as they are; transforms need float32 (B, C, H, W). */
td_status td_loader_new(td_tensor *images, td_tensor *labels, const td_loader_opts *o,
                        td_loader **out);
/* batches in an epoch of len samples */
int64_t td_loader_num_batches(const td_loader *l, int64_t len);
/* stop any running epoch and start one over order[0..len) (copied; every
 * entry checked to be in [0, N)); key seeds the random transforms */
td_status td_loader_start(td_loader *l, const int64_t *order, int64_t len, uint64_t key);
/* the next batch (new references), or *x = *y = NULL at the end of the
 * epoch; blocks while the thread is behind */
td_status td_loader_next(td_loader *l, td_tensor **x, td_tensor **y);
/* stop and join the thread, drop prefetched batches (idempotent) */
void td_loader_stop(td_loader *l);
void td_loader_free(td_loader *l);

#endif
