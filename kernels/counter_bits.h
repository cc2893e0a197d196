/* The counter-based random stream behind rand and randn (runtime/random.c),
 * the data augmentations (runtime/data_transform.c) and dropout's mask on
 * the CPU and on CUDA (kernels/cuda/nn.cu). Element i
 * of the stream keyed by key depends on (key, i) only, so a fill can run on
 * any number of threads, or on the GPU, and still give the same bits; the
 * three must agree bit for bit, hence this one definition, C and CUDA alike. */
#ifndef TIDE_KERNELS_COUNTER_BITS_H
#define TIDE_KERNELS_COUNTER_BITS_H

#include <stdint.h>

#ifdef __CUDACC__
#define TD_COUNTER_BITS_FN static inline __host__ __device__
#else
#define TD_COUNTER_BITS_FN static inline
#endif

/* splitmix64's finaliser over a Weyl sequence, as Java's SplittableRandom */
TD_COUNTER_BITS_FN uint64_t td_counter_bits(uint64_t key, uint64_t i)
{
    uint64_t z = key + (i + 1) * 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

#undef TD_COUNTER_BITS_FN

#endif
