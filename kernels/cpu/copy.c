/* copy with dtype conversion, and fill. Conversions follow C casts, except
 * that float-to-integer goes through int64 so out-of-range values wrap
 * (as PyTorch's do on x86) instead of being undefined. bfloat16 and
 * float16 convert through float32 (round to nearest even, as PyTorch:
 * float64 rounds to float32 first). */
#include "cpu.h"
#include "iter.h"
#include "lowp.h"
#include "stream.h"

#include <math.h>
#include <omp.h>

static inline int64_t to_i64_f(double v) { return td_cpu_f2i(v); }
static inline int64_t to_i64_i(int64_t v) { return v; }

/* value of src element converted to dst type D; S is the source type */
#define CONVERT(D, S, v)                                                                           \
    ((D) _Generic((D)0, float                                                                      \
                  : (v), double                                                                    \
                  : (v), default                                                                   \
                  : _Generic((S)0, float                                                           \
                             : to_i64_f((double)(v)), double                                       \
                             : to_i64_f((double)(v)), default                                      \
                             : (v))))

typedef struct {
    td_dtype dst, src;
    bool stream; /* a dense output larger than the cache: non-temporal stores */
} copy_ctx;

/* a copy from or to bfloat16 / float16: float32 in the middle, a chunk at
 * a time (float32 on one side is the chunk itself) */
static void copy_lowp(const copy_ctx *c, char **p, const int64_t *s, int64_t n)
{
    enum { CHUNK = 1024 };
    float buf[CHUNK];
    int64_t sd = s[0], ss = s[1];
    if (c->src == TD_FLOAT32 && ss == 1) {
        if (c->stream && sd == 1)
            td_cpu_lowp_store_nt(c->dst, (uint16_t *)p[0], (const float *)p[1], n);
        else
            td_cpu_lowp_store(c->dst, (uint16_t *)p[0], sd, (const float *)p[1], n);
        return;
    }
    if (c->dst == TD_FLOAT32 && sd == 1) {
        if (c->stream && ss == 1)
            td_cpu_lowp_load_nt(c->src, (float *)p[0], (const uint16_t *)p[1], n);
        else
            td_cpu_lowp_load(c->src, (float *)p[0], (const uint16_t *)p[1], ss, n);
        return;
    }
    for (int64_t i0 = 0; i0 < n; i0 += CHUNK) {
        int64_t m = n - i0 < CHUNK ? n - i0 : CHUNK;
        if (td_dtype_is_lowp(c->src))
            td_cpu_lowp_load(c->src, buf, (const uint16_t *)p[1] + i0 * ss, ss, m);
        else
            TD_CPU_DISPATCH(c->src, {
                const T *x = (const T *)p[1] + i0 * ss;
                for (int64_t i = 0; i < m; i++) buf[i] = (float)x[i * ss];
            })
        if (td_dtype_is_lowp(c->dst))
            td_cpu_lowp_store(c->dst, (uint16_t *)p[0] + i0 * sd, sd, buf, m);
        else
            TD_CPU_DISPATCH(c->dst, {
                T *d = (T *)p[0] + i0 * sd;
                for (int64_t i = 0; i < m; i++) d[i * sd] = CONVERT(T, float, buf[i]);
            })
    }
}

static void copy_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    const copy_ctx *c = ctx;
    int64_t sd = s[0], ss = s[1];
    if (td_dtype_is_lowp(c->dst) || td_dtype_is_lowp(c->src)) {
        copy_lowp(c, p, s, n);
        return;
    }
    TD_CPU_DISPATCH(c->dst, {
        typedef T D;
        D *d = (D *)p[0];
        TD_CPU_DISPATCH(c->src, {
            const T *x = (const T *)p[1];
            if (sd == 1 && ss == 1) {
                for (int64_t i = 0; i < n; i++) d[i] = CONVERT(D, T, x[i]);
            } else {
                for (int64_t i = 0; i < n; i++) d[i * sd] = CONVERT(D, T, x[i * ss]);
            }
        })
    })
}

static void memcpy_parallel(char *d, const char *s, size_t nbytes)
{
    int nt = td_cpu_threads_for((int64_t)nbytes / 4, TD_CPU_GRAIN * 4);
    if (nt == 1) {
        memcpy(d, s, nbytes);
        return;
    }
#pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num(), n = omp_get_num_threads();
        size_t chunk = ((nbytes + n - 1) / n + 63) & ~(size_t)63;
        size_t b = t * chunk, e = b + chunk < nbytes ? b + chunk : nbytes;
        if (b < e) memcpy(d + b, s + b, e - b);
    }
}

/* 8x8 tiles transposed in registers, so both sides move whole cache
 * lines; the ragged edges element by element */
void td_cpu_transpose4(uint32_t *restrict dst, int64_t dld, const uint32_t *restrict src,
                       int64_t sld, int64_t rows, int64_t cols)
{
    int64_t r8 = rows & ~(int64_t)7, c8 = cols & ~(int64_t)7;
    for (int64_t i = 0; i < r8; i += 8) {
        for (int64_t j = 0; j < c8; j += 8) {
            __m256 v[8], t[8];
            for (int k = 0; k < 8; k++)
                v[k] = _mm256_loadu_ps((const float *)src + (j + k) * sld + i);
            for (int k = 0; k < 8; k += 2) {
                t[k] = _mm256_unpacklo_ps(v[k], v[k + 1]);
                t[k + 1] = _mm256_unpackhi_ps(v[k], v[k + 1]);
            }
            for (int k = 0; k < 8; k += 4) {
                v[k] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(1, 0, 1, 0));
                v[k + 1] = _mm256_shuffle_ps(t[k], t[k + 2], _MM_SHUFFLE(3, 2, 3, 2));
                v[k + 2] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(1, 0, 1, 0));
                v[k + 3] = _mm256_shuffle_ps(t[k + 1], t[k + 3], _MM_SHUFFLE(3, 2, 3, 2));
            }
            for (int k = 0; k < 4; k++) {
                float *d0 = (float *)dst + (i + k) * dld + j, *d1 = d0 + 4 * dld;
                _mm256_storeu_ps(d0, _mm256_permute2f128_ps(v[k], v[k + 4], 0x20));
                _mm256_storeu_ps(d1, _mm256_permute2f128_ps(v[k], v[k + 4], 0x31));
            }
        }
        for (int64_t ii = i; ii < i + 8; ii++)
            for (int64_t j = c8; j < cols; j++) dst[ii * dld + j] = src[j * sld + ii];
    }
    for (int64_t i = r8; i < rows; i++)
        for (int64_t j = 0; j < cols; j++) dst[i * dld + j] = src[j * sld + i];
}

/* A copy between two dense layouts of one 4-byte dtype that is a batch of
 * 2-d transposes (NCHW <-> channels-last: per image, (C, HW) <-> (HW, C)):
 * the strided loop reads one element per cache line and ran at 16 GB/s
 * (6.4 MB in 0.8 ms); tiles read and write whole lines. Returns false for
 * any other copy. */
static bool copy_transposed(const td_cpu_iter *it)
{
    if (it->elsize[0] != 4 || it->ndim < 2 || it->ndim > 3) return false;
    int in = it->ndim - 1, mid = it->ndim - 2;
    const int64_t *sd = it->stride[0], *ss = it->stride[1];
    if (sd[in] != 1 || ss[mid] != 1 || ss[in] <= 1 || sd[mid] <= 1) return false;
    int64_t batch = it->ndim == 3 ? it->shape[0] : 1, rows = it->shape[mid], cols = it->shape[in];
    int64_t bd = it->ndim == 3 ? sd[0] : 0, bs = it->ndim == 3 ? ss[0] : 0;
    /* split the rows of every image into bands of 64 among the threads */
    int64_t bands = (rows + 63) / 64, jobs = batch * bands;
    int nt = td_cpu_threads_for(it->numel, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t q = 0; q < jobs; q++) {
        int64_t b = q / bands, r0 = (q % bands) * 64, nr = rows - r0 < 64 ? rows - r0 : 64;
        td_cpu_transpose4((uint32_t *)it->data[0] + b * bd + r0 * sd[mid], sd[mid],
                          (const uint32_t *)it->data[1] + b * bs + r0, ss[in], nr, cols);
    }
    return true;
}

void td_cpu_copy(td_tensor *dst, const td_tensor *src)
{
    const td_tensor *ts[2] = {dst, src};
    td_cpu_iter it;
    td_cpu_iter_init_any_order(&it, 2, ts);
    if (it.numel == 0) return;
    if (dst->dtype == src->dtype && it.ndim == 1 && it.stride[0][0] == 1 && it.stride[1][0] == 1) {
        memcpy_parallel(it.data[0], it.data[1], (size_t)it.numel * (size_t)it.elsize[0]);
        return;
    }
    if (dst->dtype == src->dtype && copy_transposed(&it)) return;
    copy_ctx c = {dst->dtype, src->dtype,
                  (size_t)it.numel * (size_t)it.elsize[0] >= td_cpu_stream_min_bytes()};
    td_cpu_iter_run(&it, TD_CPU_GRAIN, copy_loop, &c);
}

typedef struct {
    double f;
    int64_t i;
    td_dtype dt;
} fill_ctx;

static void fill_loop(void *ctx, char **p, const int64_t *s, int64_t n)
{
    const fill_ctx *c = ctx;
    int64_t sd = s[0];
    if (td_dtype_is_lowp(c->dt)) {
        uint16_t *d = (uint16_t *)p[0], v = td_float_to_lowp(c->dt, (float)c->f);
        for (int64_t i = 0; i < n; i++) d[i * sd] = v;
        return;
    }
    TD_CPU_DISPATCH(c->dt, {
        T *d = (T *)p[0];
        T v = _Generic((T)0, float : (T)c->f, double : (T)c->f, default : (T)c->i);
        if (sd == 1) {
            for (int64_t i = 0; i < n; i++) d[i] = v;
        } else {
            for (int64_t i = 0; i < n; i++) d[i * sd] = v;
        }
    })
}

void td_cpu_fill(td_tensor *dst, double value)
{
    const td_tensor *ts[1] = {dst};
    td_cpu_iter it;
    td_cpu_iter_init_any_order(&it, 1, ts);
    fill_ctx c = {value, td_cpu_f2i(value), dst->dtype};
    td_cpu_iter_run(&it, TD_CPU_GRAIN, fill_loop, &c);
}
