/* The CPU backend table and its allocator.
 *
 * Large blocks are whole 2 MiB huge pages mapped with mmap and kept in a
 * cache when freed: a loop that allocates the same big tensor every
 * iteration then reuses pages already faulted in instead of paying the
 * kernel for fresh zeroed ones each time. The cache holds up to the larger
 * of 256 MiB and the peak of large bytes in use, so a training step, which
 * frees in backward the activations its forward made, finds all of them
 * again in the next step (zeroing fresh pages took an eighth of a resnet18
 * step when the cap was a fixed 256 MiB). The same cap bounds what the
 * process holds, in use and cached together, whenever a new block is
 * mapped (trim_for_miss). A block leaves the cache by munmap, so what the
 * cache lets go leaves the process at once (glibc's malloc kept freed
 * blocks of up to 32 MiB in its heap). */
#include "cpu.h"
#include "gemm_lowp.h"
#include "iter.h"
#include "../rnn.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/mman.h>

#define ALIGN         64
#define LARGE         ((size_t)1 << 20)
#define HUGE_PAGE     ((size_t)2 << 20)
#define CACHE_MIN_CAP ((size_t)256 << 20)
#define CACHE_SLOTS   512

typedef struct {
    void *p;
    size_t size;
    uint64_t age;
} cached_block;

static struct {
    pthread_mutex_t lock;
    cached_block slot[CACHE_SLOTS];
    int count;
    size_t total, live, peak; /* cached bytes; large bytes handed out, and their peak */
    uint64_t clock;
} cache = {.lock = PTHREAD_MUTEX_INITIALIZER};

static size_t large_size(size_t nbytes) { return (nbytes + HUGE_PAGE - 1) / HUGE_PAGE * HUGE_PAGE; }

/* size bytes (a multiple of HUGE_PAGE) aligned to HUGE_PAGE, so the
 * kernel can back them with huge pages; NULL when the kernel refuses */
static void *map_large(size_t size)
{
    if (size > SIZE_MAX - HUGE_PAGE) return NULL;
    char *m =
        mmap(NULL, size + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) return NULL;
    uintptr_t a = ((uintptr_t)m + HUGE_PAGE - 1) & ~(uintptr_t)(HUGE_PAGE - 1);
    char *p = (char *)a;
    if (p > m) munmap(m, (size_t)(p - m));
    size_t tail = (size_t)(m + size + HUGE_PAGE - (p + size));
    if (tail) munmap(p + size, tail);
    madvise(p, size, MADV_HUGEPAGE); /* advice only: failure is harmless */
    return p;
}

static void unmap_large(void *p, size_t size) { munmap(p, size); }

static size_t cache_cap(void) { return cache.peak > CACHE_MIN_CAP ? cache.peak : CACHE_MIN_CAP; }

/* a cached block of exactly size, or NULL; counts size as handed out either way */
static void *cache_take(size_t size)
{
    void *p = NULL;
    pthread_mutex_lock(&cache.lock);
    for (int i = 0; i < cache.count; i++)
        if (cache.slot[i].size == size) {
            p = cache.slot[i].p;
            cache.total -= size;
            cache.slot[i] = cache.slot[--cache.count];
            break;
        }
    cache.live += size;
    if (cache.live > cache.peak) cache.peak = cache.live;
    pthread_mutex_unlock(&cache.lock);
    return p;
}

static void cache_untake(size_t size)
{
    pthread_mutex_lock(&cache.lock);
    cache.live -= size;
    pthread_mutex_unlock(&cache.lock);
}

static int oldest_slot(void)
{
    int o = 0;
    for (int i = 1; i < cache.count; i++)
        if (cache.slot[i].age < cache.slot[o].age) o = i;
    return o;
}

/* slot o out of the cache into out[(*n)++], to be unmapped once the lock
 * is released; call with the lock held */
static void evict(int o, cached_block *out, int *n)
{
    out[(*n)++] = cache.slot[o];
    cache.total -= cache.slot[o].size;
    cache.slot[o] = cache.slot[--cache.count];
}

static void unmap_all(const cached_block *b, int n)
{
    for (int i = 0; i < n; i++) unmap_large(b[i].p, b[i].size);
}

/* keeps p unless it alone exceeds the cap; evicts the oldest to make room */
static void cache_put(void *p, size_t size)
{
    cached_block evicted[CACHE_SLOTS];
    int nev = 0;
    pthread_mutex_lock(&cache.lock);
    cache.live -= size;
    size_t cap = cache_cap();
    if (size > cap) {
        pthread_mutex_unlock(&cache.lock);
        unmap_large(p, size);
        return;
    }
    while (cache.count > 0 && (cache.total + size > cap || cache.count == CACHE_SLOTS))
        evict(oldest_slot(), evicted, &nev);
    cache.slot[cache.count++] = (cached_block){p, size, cache.clock++};
    cache.total += size;
    pthread_mutex_unlock(&cache.lock);
    unmap_all(evicted, nev);
}

/* Before a new block is mapped: cached blocks, largest first, as far as
 * it takes to keep what the process holds (in use and cached) within the
 * cache's cap. Blocks are reused only at their own size, and the most of
 * each size a resnet18 step holds at once added up to 90 MB more than its
 * peak in use (600 MB); this brought its peak RSS from 737 to 651 MB
 * (PyTorch's: 694) for about 4% of its step time, the mapping and zeroing
 * of the dozen blocks a step then maps afresh. */
static void trim_for_miss(void)
{
    cached_block evicted[CACHE_SLOTS];
    int nev = 0;
    pthread_mutex_lock(&cache.lock);
    size_t cap = cache_cap();
    while (cache.count > 0 && cache.live + cache.total > cap) {
        int o = 0;
        for (int i = 1; i < cache.count; i++)
            if (cache.slot[i].size > cache.slot[o].size) o = i;
        evict(o, evicted, &nev);
    }
    pthread_mutex_unlock(&cache.lock);
    unmap_all(evicted, nev);
}

void td_cpu_empty_cache(void)
{
    pthread_mutex_lock(&cache.lock);
    unmap_all(cache.slot, cache.count);
    cache.count = 0;
    cache.total = 0;
    cache.peak = cache.live;
    pthread_mutex_unlock(&cache.lock);
}

void *td_cpu_alloc(size_t nbytes)
{
    void *p = NULL;
    if (nbytes < LARGE) {
        size_t size = (nbytes + ALIGN - 1) / ALIGN * ALIGN;
        return posix_memalign(&p, ALIGN, size ? size : ALIGN) == 0 ? p : NULL;
    }
    size_t size = large_size(nbytes);
    p = cache_take(size);
    if (p) return p;
    trim_for_miss();
    if (!(p = map_large(size))) {
        td_cpu_empty_cache();
        if (!(p = map_large(size))) {
            cache_untake(size);
            return NULL;
        }
    }
    return p;
}

void td_cpu_free(void *p, size_t nbytes)
{
    if (!p) return;
    if (nbytes < LARGE)
        free(p);
    else
        cache_put(p, large_size(nbytes));
}

void td_cpu_release(void *p, size_t nbytes)
{
    if (!p) return;
    if (nbytes < LARGE) {
        free(p);
        return;
    }
    cache_untake(large_size(nbytes));
    unmap_large(p, large_size(nbytes));
}

static void *cpu_alloc(int device, size_t nbytes)
{
    (void)device;
    return td_cpu_alloc(nbytes);
}

static void cpu_free(int device, void *p, size_t nbytes)
{
    (void)device;
    td_cpu_free(p, nbytes);
}

static const td_backend cpu_backend = {
    .name = "cpu",
    .device_type = TD_CPU,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .empty_cache = td_cpu_empty_cache,
    .copy = td_cpu_copy,
    .fill = td_cpu_fill,
    .unary = td_cpu_unary,
    .unary_grad = td_cpu_unary_grad,
    .binary = td_cpu_binary,
    .clamp = td_cpu_clamp,
    .where = td_cpu_where,
    .nan_to_num = td_cpu_nan_to_num,
    .reduce = td_cpu_reduce,
    .softmax = td_cpu_softmax,
    .softmax_backward = td_cpu_softmax_backward,
    .scan = td_cpu_scan,
    .cumprod_backward = td_cpu_cumprod_backward,
    .gemm = td_cpu_gemm,
    .index_select = td_cpu_index_select,
    .index_add = td_cpu_index_add,
    .gather = td_cpu_gather,
    .scatter = td_cpu_scatter,
    .softmax_loss = &td_cpu_softmax_loss,
    .binary_loss = &td_cpu_binary_loss,
    .regression_loss = &td_cpu_regression_loss,
    .margin_loss = &td_cpu_margin_loss,
    .ctc_loss = &td_cpu_ctc_loss,
    .conv = &td_cpu_conv,
    .layers = &td_cpu_layers,
    .optim = &td_cpu_optim,
    .reorder = &td_cpu_reorder,
    .rnn = &td_cpu_rnn_dnnl,
    .attention = &td_cpu_attention,
    .gemm_path = td_cpu_gemm_path,
};

const td_backend *td_cpu_backend(void) { return &cpu_backend; }
