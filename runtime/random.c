/* One seeded generator (xoshiro256**, seeded through splitmix64) for every
 * random tensor, so tide.manual_seed(s) reproduces a run. Bulk fills (rand,
 * randn) take one key from it and derive element i from a counter-based
 * hash of (key, i): the fill runs on every thread and still gives the same
 * tensor whatever the thread count. */
#include "internal.h"
#include "../kernels/counter_bits.h"

#include <math.h>
#include <omp.h>

static uint64_t state[4];
static bool seeded;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void td_manual_seed(uint64_t seed)
{
    for (int i = 0; i < 4; i++) state[i] = splitmix(&seed);
    seeded = true;
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t td_random_u64(void)
{
    if (!seeded) td_manual_seed(67280421310721ull); /* PyTorch's default seed */
    uint64_t r = rotl(state[1] * 5, 7) * 9, t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 45);
    return r;
}

/* uniform in [0, n) without modulo bias */
static uint64_t below(uint64_t n)
{
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t r;
    do r = td_random_u64();
    while (r >= limit);
    return r % n;
}

static void store(td_tensor *t, int64_t i, double v)
{
    void *p = td_data_ptr(t);
    switch (t->dtype) {
    case TD_FLOAT32: ((float *)p)[i] = (float)v; break;
    case TD_FLOAT64: ((double *)p)[i] = v; break;
    case TD_INT64: ((int64_t *)p)[i] = (int64_t)v; break;
    case TD_BFLOAT16:
    case TD_FLOAT16: ((uint16_t *)p)[i] = td_float_to_lowp(t->dtype, (float)v); break;
    default: ((uint8_t *)p)[i] = (uint8_t)(int64_t)v; break;
    }
}

#define PARALLEL_FILL 16384

td_status td_rand(int ndim, const int64_t *shape, td_dtype dt, td_tensor **out)
{
    TD_TRY(td_need_float_lowp(dt, 2, "rand", "dtype"));
    td_tensor *t = NULL;
    TD_TRY(td_empty(ndim, shape, dt, &t));
    int64_t n = td_numel(t);
    uint64_t key = td_random_u64();
    if (dt == TD_FLOAT32) {
        float *p = td_data_ptr(t);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_FILL)
        for (int64_t i = 0; i < n; i++)
            p[i] = (float)(td_counter_bits(key, (uint64_t)i) >> 40) * 0x1.0p-24f;
    } else if (td_dtype_is_lowp(dt)) {
        /* as many random bits as the significand holds (PyTorch's
         * digits), so every value is exact and below 1 */
        int bits = dt == TD_BFLOAT16 ? 8 : 11;
        uint16_t *p = td_data_ptr(t);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_FILL)
        for (int64_t i = 0; i < n; i++)
            p[i] = td_float_to_lowp(
                dt, ldexpf((float)(td_counter_bits(key, (uint64_t)i) >> (64 - bits)), -bits));
    } else {
        double *p = td_data_ptr(t);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_FILL)
        for (int64_t i = 0; i < n; i++)
            p[i] = (double)(td_counter_bits(key, (uint64_t)i) >> 11) * 0x1.0p-53;
    }
    *out = t;
    return TD_OK;
}

/* Box-Muller: one pair of normals from one pair of uniforms */
static inline void normal_pair(uint64_t key, int64_t pair, double *z0, double *z1)
{
    /* u1 in (0, 1] */
    double u1 = 1.0 - (double)(td_counter_bits(key, 2 * (uint64_t)pair) >> 11) * 0x1.0p-53;
    double u2 = (double)(td_counter_bits(key, 2 * (uint64_t)pair + 1) >> 11) * 0x1.0p-53;
    double r = sqrt(-2.0 * log(u1)), a = 2.0 * M_PI * u2;
    *z0 = r * cos(a);
    *z1 = r * sin(a);
}

static inline void normal_pair_f(uint64_t key, int64_t pair, float *z0, float *z1)
{
    /* 32-bit uniforms keep the tail out to 6.7 sigma */
    float u1 = (float)((double)((td_counter_bits(key, 2 * (uint64_t)pair) >> 32) + 1) * 0x1.0p-32);
    float u2 = (float)(td_counter_bits(key, 2 * (uint64_t)pair + 1) >> 40) * 0x1.0p-24f;
    float r = sqrtf(-2.0f * logf(u1)), a = 6.2831853071795864f * u2;
    *z0 = r * cosf(a);
    *z1 = r * sinf(a);
}

td_status td_randn(int ndim, const int64_t *shape, td_dtype dt, td_tensor **out)
{
    TD_TRY(td_need_float_lowp(dt, 2, "randn", "dtype"));
    td_tensor *t = NULL;
    TD_TRY(td_empty(ndim, shape, dt, &t));
    int64_t n = td_numel(t), pairs = (n + 1) / 2;
    uint64_t key = td_random_u64();
    if (dt == TD_FLOAT32) {
        float *p = td_data_ptr(t);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_FILL / 4)
        for (int64_t k = 0; k < pairs; k++) {
            float z0, z1;
            normal_pair_f(key, k, &z0, &z1);
            p[2 * k] = z0;
            if (2 * k + 1 < n) p[2 * k + 1] = z1;
        }
    } else if (td_dtype_is_lowp(dt)) { /* float32 normals, rounded */
        uint16_t *p = td_data_ptr(t);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_FILL / 4)
        for (int64_t k = 0; k < pairs; k++) {
            float z0, z1;
            normal_pair_f(key, k, &z0, &z1);
            p[2 * k] = td_float_to_lowp(dt, z0);
            if (2 * k + 1 < n) p[2 * k + 1] = td_float_to_lowp(dt, z1);
        }
    } else {
        double *p = td_data_ptr(t);
#pragma omp parallel for schedule(static) if (n >= PARALLEL_FILL / 4)
        for (int64_t k = 0; k < pairs; k++) {
            double z0, z1;
            normal_pair(key, k, &z0, &z1);
            p[2 * k] = z0;
            if (2 * k + 1 < n) p[2 * k + 1] = z1;
        }
    }
    *out = t;
    return TD_OK;
}

td_status td_randint(int64_t low, int64_t high, int ndim, const int64_t *shape, td_dtype dt,
                     td_tensor **out)
{
    if (high <= low)
        return td_error(TD_EINVAL, 2, "randint: high (%lld) must be greater than low (%lld)",
                        (long long)high, (long long)low);
    td_tensor *t = NULL;
    TD_TRY(td_empty(ndim, shape, dt, &t));
    int64_t n = td_numel(t);
    uint64_t range = (uint64_t)(high - low);
    for (int64_t i = 0; i < n; i++) store(t, i, (double)(low + (int64_t)below(range)));
    *out = t;
    return TD_OK;
}

td_status td_randperm(int64_t n, td_dtype dt, td_tensor **out)
{
    if (n < 0)
        return td_error(TD_EINVAL, 1, "randperm: n must be non-negative, got %lld", (long long)n);
    td_tensor *t = NULL;
    TD_TRY(td_empty(1, &n, TD_INT64, &t));
    int64_t *p = td_data_ptr(t);
    for (int64_t i = 0; i < n; i++) p[i] = i;
    for (int64_t i = n - 1; i > 0; i--) { /* Fisher-Yates */
        int64_t j = (int64_t)below((uint64_t)i + 1), tmp = p[i];
        p[i] = p[j];
        p[j] = tmp;
    }
    if (dt == TD_INT64) {
        *out = t;
        return TD_OK;
    }
    td_status st = td_cast_raw(t, dt, out);
    td_tensor_release(t);
    return st;
}

/* the state for checkpoints: all zeros (never a state xoshiro reaches)
 * stands for "not seeded yet" */
void td_random_get_state(uint64_t out[4])
{
    for (int i = 0; i < 4; i++) out[i] = seeded ? state[i] : 0;
}

void td_random_set_state(const uint64_t in[4])
{
    bool any = false;
    for (int i = 0; i < 4; i++) {
        state[i] = in[i];
        any = any || in[i] != 0;
    }
    seeded = any;
}
