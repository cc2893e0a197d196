/* bfloat16 and float16 on the CPU: vector conversions to and from float32
 * (the same bits as core.h's scalar td_float_to_bf16 etc.: round to
 * nearest even, NaN quiet), and the loop adapter that lets a float32
 * elementwise loop serve 2-byte operands.
 *
 * The build targets x86-64-v3: float16 converts with F16C (vcvtph2ps,
 * vcvtps2ph), bfloat16 with AVX2 integer ops (a shift one way; round to
 * nearest even as `(u + 0x7fff + lsb) >> 16` the other). AVX512-BF16's
 * vcvtneps2bf16 is not used: it flushes float32 subnormals to zero. */
#ifndef TIDE_KERNELS_CPU_LOWP_H
#define TIDE_KERNELS_CPU_LOWP_H

#include "iter.h"

#include <immintrin.h>

static inline __m256 td_cpu_bf16_load8(const uint16_t *p)
{
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

static inline __m128i td_cpu_bf16_round8(__m256 v)
{
    __m256i u = _mm256_castps_si256(v), hi = _mm256_srli_epi32(u, 16);
    __m256i lsb = _mm256_and_si256(hi, _mm256_set1_epi32(1));
    __m256i r = _mm256_add_epi32(_mm256_add_epi32(u, _mm256_set1_epi32(0x7fff)), lsb);
    r = _mm256_srli_epi32(r, 16);
    __m256i quiet = _mm256_or_si256(hi, _mm256_set1_epi32(0x40));
    __m256 nan = _mm256_cmp_ps(v, v, _CMP_UNORD_Q);
    r = _mm256_blendv_epi8(r, quiet, _mm256_castps_si256(nan));
    return _mm_packus_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
}

static inline __m256 td_cpu_lowp_load8(td_dtype dt, const uint16_t *p)
{
    if (dt == TD_BFLOAT16) return td_cpu_bf16_load8(p);
    return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p));
}

static inline void td_cpu_lowp_store8(td_dtype dt, uint16_t *p, __m256 v)
{
    __m128i h =
        dt == TD_BFLOAT16 ? td_cpu_bf16_round8(v) : _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128((__m128i *)p, h);
}

/* d[i] = s[i * ss] as float32, i < n */
static inline void td_cpu_lowp_load(td_dtype dt, float *restrict d, const uint16_t *restrict s,
                                    int64_t ss, int64_t n)
{
    int64_t i = 0;
    if (ss == 1) {
        if (dt == TD_BFLOAT16)
            for (; i + 8 <= n; i += 8) _mm256_storeu_ps(d + i, td_cpu_bf16_load8(s + i));
        else
            for (; i + 8 <= n; i += 8)
                _mm256_storeu_ps(d + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(s + i))));
    }
    for (; i < n; i++) d[i] = td_lowp_to_float(dt, s[i * ss]);
}

/* d[i * ds] = s[i] rounded to dt, i < n */
static inline void td_cpu_lowp_store(td_dtype dt, uint16_t *restrict d, int64_t ds,
                                     const float *restrict s, int64_t n)
{
    int64_t i = 0;
    if (ds == 1) {
        if (dt == TD_BFLOAT16)
            for (; i + 8 <= n; i += 8)
                _mm_storeu_si128((__m128i *)(d + i), td_cpu_bf16_round8(_mm256_loadu_ps(s + i)));
        else
            for (; i + 8 <= n; i += 8)
                _mm_storeu_si128((__m128i *)(d + i), _mm256_cvtps_ph(_mm256_loadu_ps(s + i),
                                                                     _MM_FROUND_TO_NEAREST_INT));
    }
    for (; i < n; i++) d[i * ds] = td_float_to_lowp(dt, s[i]);
}

/* The same two loops with non-temporal stores, for outputs larger than the
 * cache (stream.h's threshold): dense destinations only; each ends with
 * an sfence, so the stores are visible before the thread's barrier */
static inline void td_cpu_lowp_load_nt(td_dtype dt, float *restrict d, const uint16_t *restrict s,
                                       int64_t n)
{
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(d + i) & 31); i++) d[i] = td_lowp_to_float(dt, s[i]);
    for (; i + 8 <= n; i += 8) _mm256_stream_ps(d + i, td_cpu_lowp_load8(dt, s + i));
    for (; i < n; i++) d[i] = td_lowp_to_float(dt, s[i]);
    _mm_sfence();
}

static inline void td_cpu_lowp_store_nt(td_dtype dt, uint16_t *restrict d, const float *restrict s,
                                        int64_t n)
{
    int64_t i = 0;
    for (; i < n && ((uintptr_t)(d + i) & 15); i++) d[i] = td_float_to_lowp(dt, s[i]);
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps(s + i);
        __m128i h = dt == TD_BFLOAT16 ? td_cpu_bf16_round8(v)
                                      : _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT);
        _mm_stream_si128((__m128i *)(d + i), h);
    }
    for (; i < n; i++) d[i] = td_float_to_lowp(dt, s[i]);
    _mm_sfence();
}

/* A float32 row loop run over operands some of which are bfloat16 or
 * float16: each such input is converted into a float32 buffer a chunk at a
 * time (a broadcast one, stride 0, once), the loop runs on the buffers, and
 * a 2-byte output (operand 0, which the loop only writes) is rounded back.
 * Other operands (a uint8 comparison result, a uint8 condition) pass
 * through as they are. Use it as the td_cpu_loop with this as its ctx. */
#define TD_CPU_LOWP_CHUNK 1024

typedef struct {
    td_cpu_loop f32; /* the float32 loop */
    void *ctx;       /* and its context */
    int nop;
    td_dtype dt[TD_CPU_MAX_OPS];
} td_cpu_lowp_ctx;

static inline td_cpu_lowp_ctx td_cpu_lowp_wrap(td_cpu_loop f32, void *ctx, int nop,
                                               const td_tensor *const *ts)
{
    td_cpu_lowp_ctx c = {f32, ctx, nop, {TD_FLOAT32}};
    for (int k = 0; k < nop; k++) c.dt[k] = ts[k]->dtype;
    return c;
}

void td_cpu_lowp_loop(void *ctx, char **p, const int64_t *s, int64_t n);

#endif
