/* The small least-recently-used cache of built oneDNN primitives that
 * dnnl_conv.c (for nn_conv_dnnl.c and nn_convnd_dnnl.c) and nn_pool_dnnl.c
 * keep (one entry per shape, so a training loop builds each once). Entries
 * are the caller's structs whose first member is their key, compared
 * bytewise (keys are plain int64 fields, so no padding differs). Not
 * thread-safe: the callers hold their own mutex. */
#ifndef TIDE_KERNELS_CPU_LRU_H
#define TIDE_KERNELS_CPU_LRU_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define TD_LRU_SIZE 32

typedef struct {
    void *slot[TD_LRU_SIZE];
    uint64_t age[TD_LRU_SIZE];
    int count;
    uint64_t clock;
} td_lru;

/* the entry whose leading key_size bytes equal key, marked as just used;
 * NULL when none */
static inline void *td_lru_find(td_lru *c, const void *key, size_t key_size)
{
    for (int i = 0; i < c->count; i++)
        if (memcmp(c->slot[i], key, key_size) == 0) {
            c->age[i] = ++c->clock;
            return c->slot[i];
        }
    return NULL;
}

/* adds e; when the cache is full, the least recently used entry makes
 * room and is returned for the caller to free (else NULL) */
static inline void *td_lru_add(td_lru *c, void *e)
{
    void *evicted = NULL;
    int i = c->count;
    if (c->count == TD_LRU_SIZE) {
        i = 0;
        for (int j = 1; j < c->count; j++)
            if (c->age[j] < c->age[i]) i = j;
        evicted = c->slot[i];
    } else {
        c->count++;
    }
    c->slot[i] = e;
    c->age[i] = ++c->clock;
    return evicted;
}

#endif
