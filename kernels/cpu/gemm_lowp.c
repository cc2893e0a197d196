/* bfloat16 and float16 products on the CPU (docs/precision.md). Either
 * way the products are summed in float32 and C is rounded to its dtype
 * once, as PyTorch's bf16 matmul does.
 *
 * bfloat16 runs through oneDNN's matmul primitive where the CPU has
 * AVX512-BF16 (vdpbf16ps): operands with any row stride, transposed or
 * not, the batch strided or broadcast (stride 0), alpha as the output
 * scale and beta as a sum post-op that reads C. Primitives are cached per
 * shape, strides, scalars and thread count (lru.h). At 1024^3 on 2 Zen 4
 * threads it ran at 91 GFLOP/s against 50 for sgemm.
 *
 * Everywhere else the operands go to float32 a block at a time
 * (lowp.h's conversions), sgemm multiplies the block, and the block of C
 * is rounded back: without AVX512-BF16 oneDNN 2.6 refuses bf16 (AVX2) or
 * emulates it on avx512_core at a third of sgemm's rate (16 against 50
 * GFLOP/s, measured with DNNL_MAX_CPU_ISA=AVX512_CORE); oneDNN 2.6.3
 * has no f16 matmul kernel on AMD Zen (a probe at the first use asks), so
 * float16 takes it there; and deterministic mode takes it for sgemm's fixed
 * tiles (a oneDNN matmul splits its sums by the thread count). The
 * float32 copies are blocks of at most BLOCK_A and BLOCK_B floats (64 MB
 * each), whole operands up to 4096^2.
 *
 * TIDE_LOWP_MATMUL=auto (the default), onednn (oneDNN wherever it has a
 * non-reference implementation, emulated or not) or float32 (the
 * fallback always) picks the path; read once, at the first use. */
#include "gemm_lowp.h"
#include "iter.h"
#include "lowp.h"
#include "lru.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- choosing the path ------------------------------------------------ */

enum { USE_AUTO, USE_ONEDNN, USE_FLOAT32, USE_BAD };

static struct {
    pthread_once_t once;
    pthread_mutex_t lock; /* the engine, stream, cache and scratchpad */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    int use;
    char env[64];
    bool onednn[2];    /* [0] bfloat16, [1] float16: through oneDNN */
    char path[2][192]; /* what td_cpu_gemm_path says */
    td_lru cache;
    void *scratch;
    size_t scratch_cap;
} g = {.once = PTHREAD_ONCE_INIT, .lock = PTHREAD_MUTEX_INITIALIZER};

static int slot_of(td_dtype dt) { return dt == TD_BFLOAT16 ? 0 : 1; }
static dnnl_data_type_t dnnl_dt(td_dtype dt) { return dt == TD_BFLOAT16 ? dnnl_bf16 : dnnl_f16; }

/* whether oneDNN has a kernel other than its reference loops for a small
 * product in dt; impl receives its name */
static bool probe(td_dtype dt, char *impl, size_t size)
{
    dnnl_memory_desc_t md[3];
    dnnl_dims_t da = {1, 64, 32}, db = {1, 32, 48}, dc = {1, 64, 48};
    dnnl_matmul_desc_t mm;
    dnnl_primitive_desc_t pd = NULL;
    const char *name = NULL;
    bool ok = dnnl_memory_desc_init_by_tag(&md[0], 3, da, dnnl_dt(dt), dnnl_abc) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&md[1], 3, db, dnnl_dt(dt), dnnl_abc) == dnnl_success &&
              dnnl_memory_desc_init_by_tag(&md[2], 3, dc, dnnl_dt(dt), dnnl_abc) == dnnl_success &&
              dnnl_matmul_desc_init(&mm, &md[0], &md[1], NULL, &md[2]) == dnnl_success &&
              dnnl_primitive_desc_create(&pd, &mm, NULL, g.engine, NULL) == dnnl_success &&
              dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) == dnnl_success &&
              name && strncmp(name, "ref", 3) != 0;
    snprintf(impl, size, "%s", ok ? name : "");
    if (pd) dnnl_primitive_desc_destroy(pd);
    return ok;
}

static void choose(void)
{
    const char *env = getenv("TIDE_LOWP_MATMUL");
    snprintf(g.env, sizeof g.env, "%s", env ? env : "");
    g.use = !env || !*env || strcmp(env, "auto") == 0 ? USE_AUTO
            : strcmp(env, "onednn") == 0              ? USE_ONEDNN
            : strcmp(env, "float32") == 0             ? USE_FLOAT32
                                                      : USE_BAD;
    bool engine = dnnl_engine_create(&g.engine, dnnl_cpu, 0) == dnnl_success;
    if (engine &&
        dnnl_stream_create(&g.stream, g.engine, dnnl_stream_default_flags) != dnnl_success)
        engine = false;
    const dnnl_version_t *v = dnnl_version();
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    bool has_bf16 = ((unsigned)isa & (unsigned)dnnl_cpu_isa_avx512_core_bf16) ==
                    (unsigned)dnnl_cpu_isa_avx512_core_bf16;
    for (int s = 0; s < 2; s++) {
        td_dtype dt = s == 0 ? TD_BFLOAT16 : TD_FLOAT16;
        char impl[96] = "";
        bool can = engine && probe(dt, impl, sizeof impl);
        /* bf16 emulated on avx512_core (gemm:jit) loses to the fallback */
        bool fast = can && (s == 1 || has_bf16);
        g.onednn[s] = g.use == USE_ONEDNN ? can : g.use == USE_AUTO && fast;
        if (g.onednn[s])
            snprintf(g.path[s], sizeof g.path[s], "onednn %d.%d.%d %s", v->major, v->minor,
                     v->patch, impl);
        else if (g.use == USE_FLOAT32)
            snprintf(g.path[s], sizeof g.path[s], "float32 fallback (TIDE_LOWP_MATMUL=float32)");
        else if (can)
            snprintf(g.path[s], sizeof g.path[s],
                     "float32 fallback (oneDNN's %s emulates %s without AVX512-BF16, slower than "
                     "sgemm)",
                     impl, td_dtype_name(dt));
        else
            snprintf(g.path[s], sizeof g.path[s],
                     "float32 fallback (oneDNN %d.%d.%d has no %s matmul for this CPU)", v->major,
                     v->minor, v->patch, td_dtype_name(dt));
    }
}

const char *td_cpu_gemm_path(td_dtype dt)
{
    switch (dt) {
    case TD_FLOAT32:
        return td_deterministic() ? "onednn sgemm, fixed tiles (deterministic mode)"
                                  : "onednn sgemm";
    case TD_FLOAT64: return "openblas dgemm";
    case TD_INT64: return "loop";
    case TD_BFLOAT16:
    case TD_FLOAT16: break;
    default: return "none";
    }
    pthread_once(&g.once, choose);
    if (g.use == USE_BAD) return "none (TIDE_LOWP_MATMUL is not auto, onednn or float32)";
    if (g.onednn[slot_of(dt)] && td_deterministic()) return "float32 fallback (deterministic mode)";
    return g.path[slot_of(dt)];
}

/* ---- the float32 fallback --------------------------------------------- */

/* float32 copies: a block of B (k x nb) and of A (mb x k) at most this
 * many floats each (when k alone allows), and C's block (mb x nb). Large:
 * sgemm on row blocks of A lost much of its rate (4096^3 on 2 threads:
 * 46 GFLOP/s with blocks of 1024 rows against 80 whole, float32 itself
 * 65 to 85 in the same runs), so up to 4096^2 the operands convert whole */
#define BLOCK_B (16 << 20)
#define BLOCK_A (16 << 20)

/* d[r * dld + j] = s[r * sld + j] as float32, r < rows, j < cols */
static void load_block(td_dtype dt, float *d, int64_t dld, const uint16_t *s, int64_t sld,
                       int64_t rows, int64_t cols)
{
    int nt = td_cpu_threads_for(rows * cols, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < rows; r++) td_cpu_lowp_load(dt, d + r * dld, s + r * sld, 1, cols);
}

static void store_block(td_dtype dt, uint16_t *d, int64_t dld, const float *s, int64_t sld,
                        int64_t rows, int64_t cols)
{
    int nt = td_cpu_threads_for(rows * cols, TD_CPU_GRAIN);
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
    for (int64_t r = 0; r < rows; r++) td_cpu_lowp_store(dt, d + r * dld, 1, s + r * sld, cols);
}

static int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
static int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }

td_status td_cpu_gemm_lowp_blocked(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m,
                                   int64_t n, int64_t k, double alpha, const uint16_t *a,
                                   int64_t lda, int64_t stride_a, const uint16_t *b, int64_t ldb,
                                   int64_t stride_b, double beta, uint16_t *c, int64_t ldc,
                                   int64_t stride_c, int64_t block_a, int64_t block_b)
{
    int64_t nb = k * n <= block_b ? n : min64(n, max64(64, block_b / k / 64 * 64));
    int64_t mb = k * m <= block_a ? m : min64(m, max64(16, block_a / k / 16 * 16));
    size_t sz_b = (size_t)(k * nb) * 4, sz_a = (size_t)(k * mb) * 4, sz_c = (size_t)(mb * nb) * 4;
    float *fb = td_cpu_alloc(sz_b), *fa = td_cpu_alloc(sz_a), *fc = td_cpu_alloc(sz_c);
    td_status st = TD_OK;
    if (!fa || !fb || !fc) {
        st = td_error(TD_ENOMEM, 0, "matmul: out of memory for the float32 blocks of a %s product",
                      td_dtype_name(dt));
        goto done;
    }
    for (int64_t bi = 0; bi < batch && st == TD_OK; bi++) {
        const uint16_t *ab = a + bi * stride_a, *bb = b + bi * stride_b;
        uint16_t *cb = c + bi * stride_c;
        for (int64_t j0 = 0; j0 < n && st == TD_OK; j0 += nb) {
            int64_t nj = min64(nb, n - j0);
            /* op(B)[:, j0:j0+nj]: B (k, n) columns, or B^T's (n, k) rows */
            if (tb)
                load_block(dt, fb, k, bb + j0 * ldb, ldb, nj, k);
            else
                load_block(dt, fb, nj, bb + j0, ldb, k, nj);
            for (int64_t i0 = 0; i0 < m && st == TD_OK; i0 += mb) {
                int64_t mi = min64(mb, m - i0);
                if (ta)
                    load_block(dt, fa, mi, ab + i0, lda, k, mi);
                else
                    load_block(dt, fa, k, ab + i0 * lda, lda, mi, k);
                if (beta != 0) load_block(dt, fc, nj, cb + i0 * ldc + j0, ldc, mi, nj);
                st = td_cpu_gemm(TD_FLOAT32, 1, ta, tb, mi, nj, k, alpha, fa, ta ? mi : k, 0, fb,
                                 tb ? k : nj, 0, beta, fc, nj, 0);
                if (st == TD_OK) store_block(dt, cb + i0 * ldc + j0, ldc, fc, nj, mi, nj);
            }
        }
    }
done:
    if (fa) td_cpu_free(fa, sz_a);
    if (fb) td_cpu_free(fb, sz_b);
    if (fc) td_cpu_free(fc, sz_c);
    return st;
}

/* ---- oneDNN's matmul -------------------------------------------------- */

/* everything a primitive is built from; bytewise, so no padding */
typedef struct {
    int64_t dt, threads, batch, ba, bb, m, n, k, ta, tb, lda, ldb, ldc, sa, sb, sc;
    double alpha, beta;
} mm_key;

typedef struct {
    mm_key key;            /* first, for td_lru */
    dnnl_primitive_t prim; /* NULL: oneDNN refused these strides (use the fallback) */
    dnnl_memory_t mem[4];  /* src, weights, dst, scratchpad; handles set at each run */
    size_t scratch_size;
} mm_entry;

static void entry_free(mm_entry *e)
{
    if (!e) return;
    if (e->prim) dnnl_primitive_destroy(e->prim);
    for (int i = 0; i < 4; i++)
        if (e->mem[i]) dnnl_memory_destroy(e->mem[i]);
    free(e);
}

/* a (rows, cols) matrix per batch entry, row stride ld, transposed when
 * stored (cols, rows); a batch of 1 gets the stride of its own extent.
 * nd 2 drops the batch (a single product, as PyTorch describes it) */
static dnnl_status_t matrix_md(dnnl_memory_desc_t *md, int nd, td_dtype dt, int64_t nb,
                               int64_t rows, int64_t cols, bool trans, int64_t ld, int64_t stride)
{
    dnnl_dims_t dims = {nb, rows, cols};
    dnnl_dims_t strides = {nb > 1 ? stride : (trans ? cols : rows) * ld, trans ? 1 : ld,
                           trans ? ld : 1};
    int skip = 3 - nd;
    return dnnl_memory_desc_init_by_strides(md, nd, dims + skip, dnnl_dt(dt), strides + skip);
}

/* the primitive for key, or an entry with prim NULL when oneDNN has none */
static td_status build(const mm_key *key, mm_entry **out)
{
    mm_entry *e = calloc(1, sizeof *e);
    if (!e) return td_error(TD_ENOMEM, 0, "matmul: out of memory");
    e->key = *key;
    dnnl_memory_desc_t md[3];
    dnnl_matmul_desc_t mm;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_primitive_desc_t pd = NULL;
    td_dtype dt = (td_dtype)key->dt;
    float alpha = (float)key->alpha;
    int nd = key->batch == 1 ? 2 : 3;
    bool ok =
        matrix_md(&md[0], nd, dt, key->ba, key->m, key->k, key->ta, key->lda, key->sa) ==
            dnnl_success &&
        matrix_md(&md[1], nd, dt, key->bb, key->k, key->n, key->tb, key->ldb, key->sb) ==
            dnnl_success &&
        matrix_md(&md[2], nd, dt, key->batch, key->m, key->n, false, key->ldc, key->sc) ==
            dnnl_success &&
        dnnl_matmul_desc_init(&mm, &md[0], &md[1], NULL, &md[2]) == dnnl_success &&
        dnnl_primitive_attr_create(&attr) == dnnl_success &&
        dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user) == dnnl_success &&
        (alpha == 1.0f ||
         dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha) == dnnl_success) &&
        (key->beta == 0 || (dnnl_post_ops_create(&po) == dnnl_success &&
                            dnnl_post_ops_append_sum(po, (float)key->beta) == dnnl_success &&
                            dnnl_primitive_attr_set_post_ops(attr, po) == dnnl_success)) &&
        dnnl_primitive_desc_create(&pd, &mm, attr, g.engine, NULL) == dnnl_success;
    const char *impl = NULL;
    if (ok)
        ok = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success &&
             impl && strncmp(impl, "ref", 3) != 0;
    dnnl_status_t s = dnnl_success;
    if (ok) {
        const dnnl_memory_desc_t *smd =
            dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
        e->scratch_size = dnnl_memory_desc_get_size(smd);
        s = dnnl_primitive_create(&e->prim, pd);
        for (int i = 0; i < 3 && s == dnnl_success; i++)
            s = dnnl_memory_create(&e->mem[i], &md[i], g.engine, DNNL_MEMORY_NONE);
        if (s == dnnl_success) s = dnnl_memory_create(&e->mem[3], smd, g.engine, DNNL_MEMORY_NONE);
    }
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) {
        entry_free(e);
        return td_error(s == dnnl_out_of_memory ? TD_ENOMEM : TD_EINVAL, 0,
                        "matmul: oneDNN primitive creation failed (status %d)", (int)s);
    }
    if (!ok) { /* remembered, so the fallback is not asked about again */
        if (e->prim) dnnl_primitive_destroy(e->prim);
        e->prim = NULL;
    }
    entry_free(td_lru_add(&g.cache, e));
    *out = e;
    return TD_OK;
}

/* runs the product through oneDNN; *done false when it has no primitive
 * for these strides (the caller falls back); under g.lock */
static td_status gemm_onednn(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m, int64_t n,
                             int64_t k, double alpha, const uint16_t *a, int64_t lda,
                             int64_t stride_a, const uint16_t *b, int64_t ldb, int64_t stride_b,
                             double beta, uint16_t *c, int64_t ldc, int64_t stride_c, bool *done)
{
    /* a broadcast operand (stride 0) is a batch of 1 to oneDNN; both
     * broadcast: one product per batch entry */
    int64_t ba = batch > 1 && stride_a == 0 ? 1 : batch,
            bb = batch > 1 && stride_b == 0 ? 1 : batch;
    int64_t runs = 1, nb = batch;
    if (ba == 1 && bb == 1) {
        runs = batch;
        nb = 1;
    }
    mm_key key = (mm_key){dt,       omp_get_max_threads(),
                          nb,       ba,
                          bb,       m,
                          n,        k,
                          ta,       tb,
                          lda,      ldb,
                          ldc,      stride_a,
                          stride_b, stride_c,
                          alpha,    beta};
    if (ba == 1) key.sa = 0;
    if (bb == 1) key.sb = 0;
    if (nb == 1) key.sc = 0;
    mm_entry *e = td_lru_find(&g.cache, &key, sizeof key);
    if (!e) {
        td_status st = build(&key, &e);
        if (st != TD_OK) return st;
    }
    *done = e->prim != NULL;
    if (!*done) return TD_OK;
    if (e->scratch_size > g.scratch_cap) {
        if (g.scratch) td_cpu_release(g.scratch, g.scratch_cap);
        g.scratch_cap = 0;
        if (!(g.scratch = td_cpu_alloc(e->scratch_size)))
            return td_error(TD_ENOMEM, 0, "matmul: out of memory for oneDNN's scratchpad");
        g.scratch_cap = e->scratch_size;
    }
    dnnl_status_t s = dnnl_memory_set_data_handle_v2(e->mem[1], (void *)b, g.stream);
    if (s == dnnl_success) s = dnnl_memory_set_data_handle_v2(e->mem[3], g.scratch, g.stream);
    for (int64_t r = 0; r < runs && s == dnnl_success; r++) {
        s = dnnl_memory_set_data_handle_v2(e->mem[0], (void *)(a + r * stride_a), g.stream);
        if (s == dnnl_success)
            s = dnnl_memory_set_data_handle_v2(e->mem[2], c + r * stride_c, g.stream);
        dnnl_exec_arg_t args[4] = {{DNNL_ARG_SRC, e->mem[0]},
                                   {DNNL_ARG_WEIGHTS, e->mem[1]},
                                   {DNNL_ARG_DST, e->mem[2]},
                                   {DNNL_ARG_SCRATCHPAD, e->mem[3]}};
        if (s == dnnl_success) s = dnnl_primitive_execute(e->prim, g.stream, 4, args);
    }
    if (s == dnnl_success) s = dnnl_stream_wait(g.stream);
    if (s != dnnl_success)
        return td_error(TD_EINVAL, 0,
                        "oneDNN %s matmul failed (status %d) for m=%lld n=%lld k=%lld",
                        td_dtype_name(dt), (int)s, (long long)m, (long long)n, (long long)k);
    return TD_OK;
}

/* ---- the entry -------------------------------------------------------- */

static int64_t fix_ld(int64_t ld, int64_t rows, int64_t cols)
{
    int64_t need = cols > 1 ? cols : 1;
    return rows <= 1 && ld < need ? need : ld;
}

td_status td_cpu_gemm_lowp(td_dtype dt, int64_t batch, bool ta, bool tb, int64_t m, int64_t n,
                           int64_t k, double alpha, const void *a, int64_t lda, int64_t stride_a,
                           const void *b, int64_t ldb, int64_t stride_b, double beta, void *c,
                           int64_t ldc, int64_t stride_c)
{
    if (batch <= 0 || m == 0 || n == 0) return TD_OK;
    pthread_once(&g.once, choose);
    if (g.use == USE_BAD)
        return td_error(TD_EINVAL, 0,
                        "matmul: TIDE_LOWP_MATMUL must be auto, onednn or float32, got '%s'",
                        g.env);
    td_cpu_threads_sync();
    ldc = fix_ld(ldc, m, n);
    uint16_t *cc = c;
    if (k == 0) { /* the product is empty: C = beta C, beta 0 overwriting NaN too */
        for (int64_t bi = 0; bi < batch; bi++)
            for (int64_t i = 0; i < m; i++) {
                uint16_t *row = cc + bi * stride_c + i * ldc;
                for (int64_t j = 0; j < n; j++)
                    row[j] = td_float_to_lowp(
                        dt, beta == 0 ? 0.0f : (float)(beta * td_lowp_to_float(dt, row[j])));
            }
        return TD_OK;
    }
    lda = ta ? fix_ld(lda, k, m) : fix_ld(lda, m, k);
    ldb = tb ? fix_ld(ldb, n, k) : fix_ld(ldb, k, n);
    if (g.onednn[slot_of(dt)] && !td_deterministic()) {
        bool done = false;
        pthread_mutex_lock(&g.lock);
        td_status st = gemm_onednn(dt, batch, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                   stride_b, beta, c, ldc, stride_c, &done);
        pthread_mutex_unlock(&g.lock);
        if (st != TD_OK || done) return st;
    }
    return td_cpu_gemm_lowp_blocked(dt, batch, ta, tb, m, n, k, alpha, a, lda, stride_a, b, ldb,
                                    stride_b, beta, c, ldc, stride_c, BLOCK_A, BLOCK_B);
}
