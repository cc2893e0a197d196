/* CUDA devices and the caching allocator.
 *
 * cudaMalloc and cudaFree are slow and cudaFree synchronises the device,
 * so a training loop that makes and drops the same tensors every step
 * would spend its time there. Blocks are rounded up to a size class and,
 * when freed, kept on their class's list for the next request of that
 * class; they go back to the driver only on empty_cache, or when a
 * cudaMalloc fails (then the cache is emptied and the call retried once
 * here, before the runtime's own retry after a full collection).
 *
 * Size classes: multiples of 512 bytes up to 4 KiB, then four classes
 * per power of two (2^k times 1, 1.25, 1.5, 1.75), so at most a quarter
 * of a block is slack. Blocks are not split or merged; one stream (the
 * default one) runs every kernel in order, so a block freed by the host
 * can be handed out again at once. */
#include "cuda_internal.h"

#include <cuda_runtime_api.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEVICES 64
#define NCLASSES    256

/* ---- devices ------------------------------------------------------------ */

static pthread_once_t count_once = PTHREAD_ONCE_INIT;
static int device_count;
static const char *count_why;

static void ask_count(void)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        count_why = cudaGetErrorString(e);
        (void)cudaGetLastError(); /* clear it: it is an answer, not a failure */
        n = 0;
    } else if (n == 0) {
        count_why = "the driver reports no device";
    }
    device_count = n > MAX_DEVICES ? MAX_DEVICES : n;
}

int td_cuda_count(const char **why)
{
    pthread_once(&count_once, ask_count);
    if (why) *why = count_why;
    return device_count;
}

static _Thread_local int current = -1;

void td_cuda_use(int device)
{
    if (device == current) return;
    cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess) {
        td_cuda_note_error(e, "cudaSetDevice");
        return;
    }
    current = device;
}

/* ---- errors the void kernels could not return ------------------------------ */

static pthread_mutex_t err_lock = PTHREAD_MUTEX_INITIALIZER;
static char pending[256];

void td_cuda_note_error(int err, const char *where)
{
    pthread_mutex_lock(&err_lock);
    if (!pending[0])
        snprintf(pending, sizeof pending, "CUDA error in %s: %s", where,
                 cudaGetErrorString((cudaError_t)err));
    pthread_mutex_unlock(&err_lock);
}

td_status td_cuda_pending_error(void)
{
    if (td_cuda_count(NULL) == 0) return TD_OK; /* nothing ran; cudart would repeat why */
    cudaError_t e = cudaGetLastError();
    if (e != cudaSuccess) td_cuda_note_error(e, "a kernel launch");
    pthread_mutex_lock(&err_lock);
    td_status st = TD_OK;
    if (pending[0]) {
        st = td_error(TD_EINVAL, 0, "%s", pending);
        pending[0] = '\0';
    }
    pthread_mutex_unlock(&err_lock);
    return st;
}

/* ---- size classes --------------------------------------------------------- */

static int size_class(size_t n)
{
    if (n <= 4096) return n == 0 ? 0 : (int)((n - 1) / 512);   /* 0..7: 512..4096 */
    int k = 63 - __builtin_clzll((unsigned long long)(n - 1)); /* 2^k < n <= 2^(k+1) */
    size_t base = (size_t)1 << k, quarter = base / 4;
    int q = (int)((n - 1 - base) / quarter); /* 0..3 */
    return 8 + (k - 12) * 4 + q;
}

static size_t class_size(int c)
{
    if (c < 8) return (size_t)(c + 1) * 512;
    int k = (c - 8) / 4 + 12, q = (c - 8) % 4;
    size_t base = (size_t)1 << k;
    return base + (size_t)(q + 1) * (base / 4);
}

/* ---- the cache -------------------------------------------------------------- */

typedef struct block {
    void *p;
    struct block *next;
} block;

typedef struct {
    pthread_mutex_t lock;
    block *free_list[NCLASSES];
    int64_t live, peak, total, reserved;
} device_pool;

static device_pool pools[MAX_DEVICES];
static pthread_once_t pools_once = PTHREAD_ONCE_INIT;
static _Atomic int64_t since_bytes;

static void init_pools(void)
{
    for (int i = 0; i < MAX_DEVICES; i++) pthread_mutex_init(&pools[i].lock, NULL);
}

static device_pool *pool_of(int device)
{
    pthread_once(&pools_once, init_pools);
    return device >= 0 && device < MAX_DEVICES ? &pools[device] : NULL;
}

/* every cached block of one pool back to the driver; lock held */
static void release_locked(int device, device_pool *d)
{
    td_cuda_use(device);
    for (int c = 0; c < NCLASSES; c++) {
        while (d->free_list[c]) {
            block *b = d->free_list[c];
            d->free_list[c] = b->next;
            cudaFree(b->p);
            d->reserved -= (int64_t)class_size(c);
            free(b);
        }
    }
}

void *td_cuda_alloc(int device, size_t nbytes)
{
    device_pool *d = pool_of(device);
    if (!d) return NULL;
    int c = size_class(nbytes);
    size_t size = class_size(c);
    void *p = NULL;
    pthread_mutex_lock(&d->lock);
    block *b = d->free_list[c];
    if (b) {
        d->free_list[c] = b->next;
        p = b->p;
        free(b);
    } else {
        td_cuda_use(device);
        if (cudaMalloc(&p, size) != cudaSuccess) {
            (void)cudaGetLastError();
            release_locked(device, d); /* what we hold may be enough, in other classes */
            if (cudaMalloc(&p, size) != cudaSuccess) {
                (void)cudaGetLastError();
                p = NULL;
            }
        }
        if (p) d->reserved += (int64_t)size;
    }
    if (p) {
        d->live += (int64_t)size;
        d->total += (int64_t)size;
        if (d->live > d->peak) d->peak = d->live;
        atomic_fetch_add(&since_bytes, (int64_t)size);
    }
    pthread_mutex_unlock(&d->lock);
    return p;
}

void td_cuda_free(int device, void *p, size_t nbytes)
{
    device_pool *d = pool_of(device);
    if (!p || !d) return;
    int c = size_class(nbytes);
    block *b = malloc(sizeof *b);
    pthread_mutex_lock(&d->lock);
    d->live -= (int64_t)class_size(c);
    if (b) {
        b->p = p;
        b->next = d->free_list[c];
        d->free_list[c] = b;
    } else { /* no memory for the list node: give the block back instead */
        td_cuda_use(device);
        cudaFree(p);
        d->reserved -= (int64_t)class_size(c);
    }
    pthread_mutex_unlock(&d->lock);
}

void td_cuda_release_cached(void)
{
    int n = td_cuda_count(NULL);
    for (int i = 0; i < n; i++) {
        device_pool *d = pool_of(i);
        pthread_mutex_lock(&d->lock);
        release_locked(i, d);
        pthread_mutex_unlock(&d->lock);
    }
}

int64_t td_cuda_take_allocated(void) { return atomic_exchange(&since_bytes, 0); }

td_status td_cuda_stats(int device, td_cuda_memory_stats *out)
{
    memset(out, 0, sizeof *out);
    int n = td_cuda_count(NULL);
    if (device < 0 || device >= n)
        return td_error(TD_EINVAL, 1, "device 'cuda:%d' is not available (%d CUDA device%s here)",
                        device, n, n == 1 ? "" : "s");
    device_pool *d = pool_of(device);
    pthread_mutex_lock(&d->lock);
    out->live_bytes = d->live;
    out->peak_bytes = d->peak;
    out->allocated_total = d->total;
    out->reserved_bytes = d->reserved;
    pthread_mutex_unlock(&d->lock);
    size_t free_b = 0, total_b = 0;
    td_cuda_use(device);
    if (cudaMemGetInfo(&free_b, &total_b) == cudaSuccess) {
        out->free_bytes = (int64_t)free_b;
        out->total_bytes = (int64_t)total_b;
    } else {
        (void)cudaGetLastError();
    }
    return TD_OK;
}

/* ---- copies to and from the host ------------------------------------------------ */

static td_status copy_bytes(int device, void *dst, const void *src, size_t nbytes,
                            enum cudaMemcpyKind kind, const char *what)
{
    TD_TRY(td_cuda_pending_error());
    td_cuda_use(device);
    cudaError_t e = cudaMemcpy(dst, src, nbytes, kind);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return td_error(TD_EINVAL, 0, "CUDA error copying %zu bytes %s cuda:%d: %s", nbytes, what,
                        device, cudaGetErrorString(e));
    }
    return TD_OK;
}

td_status td_cuda_upload(int device, void *dst, const void *src, size_t nbytes)
{
    return copy_bytes(device, dst, src, nbytes, cudaMemcpyHostToDevice, "to");
}

td_status td_cuda_download(int device, void *dst, const void *src, size_t nbytes)
{
    return copy_bytes(device, dst, src, nbytes, cudaMemcpyDeviceToHost, "from");
}

/* ---- pinned host memory (the DataLoader's staging buffers) ---------------
 * page-locked (cudaHostAllocPortable: any device may copy from it), so
 * cudaMemcpyAsync from it is a real asynchronous DMA on tide's stream (the
 * legacy default stream, where every tide kernel runs); NULL without a GPU
 * or when the driver refuses, and the caller falls back to plain memory. */
void *td_cuda_host_alloc(size_t nbytes)
{
    if (td_cuda_count(NULL) < 1) return NULL;
    void *p = NULL;
    if (cudaHostAlloc(&p, nbytes ? nbytes : 1, cudaHostAllocPortable) != cudaSuccess) {
        (void)cudaGetLastError();
        return NULL;
    }
    return p;
}

void td_cuda_host_free(void *p)
{
    if (p) (void)cudaFreeHost(p);
}

/* src must stay unchanged until td_cuda_stream_sync(device) returns */
td_status td_cuda_upload_async(int device, void *dst, const void *src, size_t nbytes)
{
    TD_TRY(td_cuda_pending_error());
    td_cuda_use(device);
    cudaError_t e = cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyHostToDevice, 0);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return td_error(TD_EINVAL, 0, "CUDA error copying %zu bytes to cuda:%d: %s", nbytes, device,
                        cudaGetErrorString(e));
    }
    return TD_OK;
}

/* waits for everything queued on tide's stream of device (from any thread) */
td_status td_cuda_stream_sync(int device)
{
    td_cuda_use(device);
    cudaError_t e = cudaStreamSynchronize(0);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return td_error(TD_EINVAL, 0, "CUDA error waiting for cuda:%d: %s", device,
                        cudaGetErrorString(e));
    }
    return TD_OK;
}

td_status td_cuda_sync_all(void)
{
    int n = td_cuda_count(NULL);
    for (int i = 0; i < n; i++) {
        td_cuda_use(i);
        cudaError_t e = cudaDeviceSynchronize();
        if (e != cudaSuccess) td_cuda_note_error(e, "cudaDeviceSynchronize");
    }
    return td_cuda_pending_error();
}
