/* Streaming (non-temporal) stores for large elementwise outputs.
 *
 * An ordinary store first reads its cache line (write-allocate), so
 * c = a + b over arrays far larger than the last-level cache moves four
 * streams through memory for three arrays. A non-temporal store writes
 * the line without reading it, and does not evict the inputs from the cache
 * with an output nobody reads soon. Below the cache size the output is
 * better left in the cache for the next op, so only large ops stream. */
#include "stream.h"

#include <immintrin.h>
#include <stdint.h>

/* A fixed 32 MB rather than the cache size the C library reports: in
 * virtual machines that is often the host's whole L3 (512 MB on the
 * 2-core Zen 5 we measure on), while one core complex of a current CPU
 * has 32 MB. Outputs of 32 MB and more come with inputs as large, so the
 * op already streams through memory. */
size_t td_cpu_stream_min_bytes(void) { return (size_t)32 << 20; }

/* o[i] = a[i*sa] OP b[i*sb] for sa, sb in {0, 1}: a scalar prologue to o's
 * 32-byte alignment, 8 lanes a step with streaming stores, a scalar tail */
#define STREAM_LOOP(VEC, SCALAR)                                                                   \
    do {                                                                                           \
        int64_t i = 0;                                                                             \
        for (; i < n && ((uintptr_t)(o + i) & 31); i++) {                                          \
            float x = a[i * sa], y = b[i * sb];                                                    \
            o[i] = SCALAR;                                                                         \
        }                                                                                          \
        __m256 ka = _mm256_set1_ps(a[0]), kb = _mm256_set1_ps(b[0]);                               \
        for (; i + 8 <= n; i += 8) {                                                               \
            __m256 x = sa ? _mm256_loadu_ps(a + i) : ka;                                           \
            __m256 y = sb ? _mm256_loadu_ps(b + i) : kb;                                           \
            _mm256_stream_ps(o + i, VEC(x, y));                                                    \
        }                                                                                          \
        for (; i < n; i++) {                                                                       \
            float x = a[i * sa], y = b[i * sb];                                                    \
            o[i] = SCALAR;                                                                         \
        }                                                                                          \
    } while (0)

bool td_cpu_stream_binary_f32(td_binary_op op, float *restrict o, const float *a, int64_t sa,
                              const float *b, int64_t sb, int64_t n)
{
    if (n <= 0 || (sa != 0 && sa != 1) || (sb != 0 && sb != 1)) return false;
    switch (op) {
    case TD_ADD: STREAM_LOOP(_mm256_add_ps, x + y); break;
    case TD_SUB: STREAM_LOOP(_mm256_sub_ps, x - y); break;
    case TD_MUL: STREAM_LOOP(_mm256_mul_ps, x * y); break;
    case TD_DIV: STREAM_LOOP(_mm256_div_ps, x / y); break;
    default: return false;
    }
    /* the streaming stores are weakly ordered: drain them before the
     * parallel region's barrier lets another thread read the output */
    _mm_sfence();
    return true;
}
