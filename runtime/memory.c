/* Storage allocation and the byte counts the Lua binding feeds to its
 * collector (Lua cannot see C memory, so without this a training loop
 * would grow until the collector happened to run). */
#include "internal.h"

#include <stdatomic.h>

static _Atomic int64_t live_bytes, peak_bytes, total_bytes, since_bytes;

void td_memory_note_alloc(size_t n)
{
    int64_t live = atomic_fetch_add(&live_bytes, (int64_t)n) + (int64_t)n;
    atomic_fetch_add(&total_bytes, (int64_t)n);
    atomic_fetch_add(&since_bytes, (int64_t)n);
    int64_t peak = atomic_load(&peak_bytes);
    while (live > peak && !atomic_compare_exchange_weak(&peak_bytes, &peak, live)) {
    }
}

void td_memory_note_free(size_t n) { atomic_fetch_sub(&live_bytes, (int64_t)n); }

void td_memory(td_memory_stats *out)
{
    out->live_bytes = atomic_load(&live_bytes);
    out->peak_bytes = atomic_load(&peak_bytes);
    out->allocated_total = atomic_load(&total_bytes);
}

int64_t td_memory_take_allocated(void) { return atomic_exchange(&since_bytes, 0); }
