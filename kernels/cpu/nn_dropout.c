/* CPU dropout: out = x * keep(key, i) / (1 - p), the mask drawn from the
 * counter-based stream that rand, randn and the CUDA kernel use too, so
 * the mask depends on (key, i) only: the same at any thread count. */
#include "layers.h"
#include "iter.h"
#include "../counter_bits.h"

#include <omp.h>

void td_cpu_dropout(td_dtype dt, void *out, const void *x, int64_t n, uint64_t key, double p)
{
    /* keep when the top 53 bits, as a uniform in [0, 1), are >= p */
    uint64_t thr = p >= 1 ? UINT64_MAX : (uint64_t)(p * 9007199254740992.0);
    double scale = p >= 1 ? 0 : 1.0 / (1.0 - p);
    if (dt == TD_FLOAT32) {
        const float *xp = x;
        float *o = out, s = (float)scale;
#pragma omp parallel for schedule(static) if (n >= TD_CPU_GRAIN)
        for (int64_t i = 0; i < n; i++)
            o[i] = (td_counter_bits(key, (uint64_t)i) >> 11) >= thr ? xp[i] * s : 0.0f;
    } else {
        const double *xp = x;
        double *o = out;
#pragma omp parallel for schedule(static) if (n >= TD_CPU_GRAIN)
        for (int64_t i = 0; i < n; i++)
            o[i] = (td_counter_bits(key, (uint64_t)i) >> 11) >= thr ? xp[i] * scale : 0.0;
    }
}
