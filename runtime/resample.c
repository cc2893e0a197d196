/* F.pad and F.interpolate's front-end: both are separable resamplings of
 * the trailing dims (kernels/nn_conv.h's td_resample_args), which differ
 * only in their per-dim tables of source indices and weights. The tables
 * are built here on the host, with their inverse (which outputs read each
 * input) for the deterministic backward, and moved to the input's device.
 * Index rules are PyTorch 1.13's (aten/src/ATen/native/UpSample.h). */
#include "internal.h"

#include <math.h>

/* one dim's tables: out * taps source indices (-1: outside, reads the
 * fill value) and weights */
typedef struct {
    int64_t in, out, taps;
    int64_t *idx;
    double *wt;
} dim_map;

typedef struct {
    td_tensor *itab, *wtab; /* on the op's device */
    td_resample_args args;  /* pointers into the tables */
} rs_plan;

typedef struct {
    rs_plan plan;
    int ndim;
    int64_t shape[TD_MAX_DIMS]; /* the input's */
} rs_ctx;

static td_status map_alloc(dim_map *m, int64_t in, int64_t out, int64_t taps)
{
    m->in = in;
    m->out = out;
    m->taps = taps;
    m->idx = malloc((size_t)(out * taps + 1) * sizeof *m->idx);
    m->wt = malloc((size_t)(out * taps + 1) * sizeof *m->wt);
    if (!m->idx || !m->wt) return td_error(TD_ENOMEM, 0, "out of memory for resampling tables");
    return TD_OK;
}

static void map_free(dim_map *m)
{
    free(m->idx);
    free(m->wt);
    m->idx = NULL;
    m->wt = NULL;
}

/* tables of the three dims (leading unused ones of size 1) into one int64
 * and one float64 tensor on dev; per dim: idx, inv_ptr, inv_pos / wt */
static td_status plan_build(dim_map *m, td_dtype dt, int64_t outer, double value, td_device dev,
                            rs_plan *p)
{
    int64_t ni = 0, nw = 0;
    for (int d = 0; d < 3; d++) {
        ni += 2 * m[d].out * m[d].taps + m[d].in + 1;
        nw += m[d].out * m[d].taps;
    }
    td_tensor *hi = NULL, *hw = NULL;
    td_status st = TD_OK;
    TD_CHECK(td_empty(1, &ni, TD_INT64, &hi));
    TD_CHECK(td_empty(1, &nw, TD_FLOAT64, &hw));
    int64_t *ib = td_data_ptr(hi);
    double *wb = td_data_ptr(hw);
    int64_t ioff[3][3], woff[3];
    int64_t io = 0, wo = 0;
    for (int d = 0; d < 3; d++) {
        int64_t n = m[d].out * m[d].taps;
        int64_t *idx = ib + io, *ptr = idx + n, *pos = ptr + m[d].in + 1;
        ioff[d][0] = io;
        ioff[d][1] = io + n;
        ioff[d][2] = io + n + m[d].in + 1;
        woff[d] = wo;
        memcpy(idx, m[d].idx, (size_t)n * sizeof *idx);
        memcpy(wb + wo, m[d].wt, (size_t)n * sizeof *wb);
        /* counting sort of the positions by source index, stable */
        for (int64_t i = 0; i <= m[d].in; i++) ptr[i] = 0;
        for (int64_t q = 0; q < n; q++)
            if (idx[q] >= 0) ptr[idx[q] + 1]++;
        for (int64_t i = 0; i < m[d].in; i++) ptr[i + 1] += ptr[i];
        int64_t *fill = malloc((size_t)(m[d].in + 1) * sizeof *fill);
        if (!fill) {
            st = td_error(TD_ENOMEM, 0, "out of memory for resampling tables");
            goto fail;
        }
        memcpy(fill, ptr, (size_t)(m[d].in + 1) * sizeof *fill);
        for (int64_t q = 0; q < n; q++)
            if (idx[q] >= 0) pos[fill[idx[q]]++] = q;
        free(fill);
        io += 2 * n + m[d].in + 1;
        wo += n;
    }
    TD_CHECK(td_to_device(hi, dev, &p->itab));
    TD_CHECK(td_to_device(hw, dev, &p->wtab));
    td_resample_args *a = &p->args;
    memset(a, 0, sizeof *a);
    a->dtype = dt;
    a->outer = outer;
    a->value = value;
    int64_t *di = td_data_ptr(p->itab);
    double *dw = td_data_ptr(p->wtab);
    for (int d = 0; d < 3; d++) {
        a->in[d] = m[d].in;
        a->out[d] = m[d].out;
        a->taps[d] = m[d].taps;
        a->idx[d] = di + ioff[d][0];
        a->inv_ptr[d] = di + ioff[d][1];
        a->inv_pos[d] = di + ioff[d][2];
        a->wt[d] = dw + woff[d];
    }
fail:
    td_tensor_release(hi);
    td_tensor_release(hw);
    return st;
}

static td_status resample_backward(td_node *nd, td_tensor *g, td_tensor **gi)
{
    const rs_ctx *c = nd->ctx;
    const td_resample_args *a = &c->plan.args;
    td_tensor *gy = NULL, *gx = NULL;
    td_status st = TD_OK;
    TD_CHECK(td_dense_raw(g, a->dtype, false, &gy));
    TD_CHECK(td_empty_on(c->ndim, c->shape, a->dtype, td_device_of(gy), &gx));
    if (td_numel(gx) > 0)
        TD_CHECK(
            td_backend_of(gy)->conv->nd->resample_backward(a, td_data_ptr(gy), td_data_ptr(gx)));
    gi[0] = gx;
    gx = NULL;
fail:
    td_tensor_release(gy);
    td_tensor_release(gx);
    return st;
}

/* y = the resampling of x's last nd dims by maps m[3 - nd ..] (the others
 * already size 1); one node */
static td_status resample(td_tensor *x, int nd, dim_map *m, double value, const char *fn,
                          const char *node_name, td_tensor **out)
{
    int64_t yshape[TD_MAX_DIMS], outer = 1;
    int lead = x->ndim - nd;
    for (int i = 0; i < x->ndim; i++) {
        yshape[i] = i < lead ? x->shape[i] : m[3 - nd + i - lead].out;
        if (i < lead) outer *= x->shape[i];
    }
    TD_TRY(td_check_shape(x->ndim, yshape, 1));
    if (!td_backend_of(x)->conv->nd)
        return td_error(TD_EINVAL, 1, "%s: not available on %s tensors", fn,
                        td_backend_of(x)->name);
    rs_plan p = {0};
    td_tensor *cx = NULL, *y = NULL;
    td_status st = TD_OK;
    TD_CHECK(plan_build(m, x->dtype, outer, value, td_device_of(x), &p));
    TD_CHECK(td_dense_raw(x, x->dtype, false, &cx));
    TD_CHECK(td_empty_on(x->ndim, yshape, x->dtype, td_device_of(x), &y));
    if (td_numel(y) > 0 && td_numel(x) > 0)
        TD_CHECK(td_backend_of(x)->conv->nd->resample(&p.args, td_data_ptr(cx), td_data_ptr(y)));
    else if (td_numel(y) > 0)
        TD_CHECK(td_fill_(y, value));
    if (td_needs_grad(1, &x)) {
        td_node *node;
        rs_ctx *ctx = NULL;
        TD_CHECK(td_node_new(node_name, resample_backward, 1, &x, &node));
        st = TD_NODE_CTX(node, &ctx);
        if (st == TD_OK) {
            ctx->plan.args = p.args; /* its pointers stay valid while the node keeps the tables */
            ctx->ndim = x->ndim;
            memcpy(ctx->shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
            st = td_node_keep(node, p.itab, &ctx->plan.itab);
        }
        if (st == TD_OK) st = td_node_keep(node, p.wtab, &ctx->plan.wtab);
        TD_CHECK(td_node_finish(node, st, y));
    }
    *out = y;
    y = NULL;
fail:
    td_tensor_release(p.itab);
    td_tensor_release(p.wtab);
    td_tensor_release(cx);
    td_tensor_release(y);
    return st;
}

/* ---- pad ---------------------------------------------------------------- */

static int64_t pad_source(td_pad_mode mode, int64_t i, int64_t n)
{
    switch (mode) {
    case TD_PAD_REFLECT:
        if (i < 0) i = -i;
        if (i >= n) i = 2 * (n - 1) - i;
        return i;
    case TD_PAD_REPLICATE: return i < 0 ? 0 : i >= n ? n - 1 : i;
    case TD_PAD_CIRCULAR: return ((i % n) + n) % n;
    default: return i >= 0 && i < n ? i : -1;
    }
}

static const char *const pad_modes[] = {"constant", "reflect", "replicate", "circular"};

td_status td_pad(td_tensor *x, int npad, const int64_t *pad, td_pad_mode mode, double value,
                 td_tensor **out)
{
    char s1[160];
    if (x->dtype != TD_FLOAT32 && x->dtype != TD_FLOAT64)
        return td_error(TD_EDTYPE, 1, "pad: input must be float32 or float64, got %s",
                        td_dtype_name(x->dtype));
    if (npad % 2 != 0 || npad < 2)
        return td_error(TD_EINVAL, 2,
                        "pad: pad must hold pairs of sizes (left, right, ...), got %d", npad);
    int nd = npad / 2;
    td_shape_str(x, s1, sizeof s1);
    if (nd > x->ndim)
        return td_error(TD_EINVAL, 2, "pad: %d pairs of sizes for input %s of %d dims", nd, s1,
                        x->ndim);
    if (nd > 3)
        return td_error(TD_EINVAL, 2, "pad: pads at most 3 dims, got %d pairs of sizes", nd);
    if (mode != TD_PAD_CONSTANT) {
        if (x->ndim != nd + 1 && x->ndim != nd + 2)
            return td_error(TD_ESHAPE, 1,
                            "pad: %s mode pads %d dims of a %d-dim or %d-dim input, got %s",
                            pad_modes[mode], nd, nd + 1, nd + 2, s1);
        for (int i = 0; i < npad; i++)
            if (pad[i] < 0)
                return td_error(TD_EINVAL, 2,
                                "pad: %s mode takes no negative sizes, got %lld at position %d",
                                pad_modes[mode], (long long)pad[i], i + 1);
    }
    dim_map m[3] = {{0}};
    td_status st = TD_OK;
    for (int d = 0; d < 3; d++) {
        int j = d - (3 - nd); /* index among the padded dims, the first of them leftmost */
        int64_t in = j < 0 ? 1 : x->shape[x->ndim - nd + j];
        /* pad lists the last dim first */
        int64_t l = j < 0 ? 0 : pad[2 * (nd - 1 - j)], r = j < 0 ? 0 : pad[2 * (nd - 1 - j) + 1];
        int64_t outn = in + l + r;
        if (j >= 0) {
            int dim = x->ndim - nd + j;
            if (outn < 0 || l > INT32_MAX || r > INT32_MAX || l < -INT32_MAX || r < -INT32_MAX) {
                st = td_error(TD_EINVAL, 2, "pad: sizes {%lld, %lld} leave dim %d of %s empty",
                              (long long)l, (long long)r, dim + 1, s1);
                goto fail;
            }
            if (mode == TD_PAD_REFLECT && (l >= in || r >= in)) {
                st = td_error(TD_EINVAL, 2,
                              "pad: reflect padding must be smaller than the dim it pads: "
                              "{%lld, %lld} for dim %d of size %lld (input %s)",
                              (long long)l, (long long)r, dim + 1, (long long)in, s1);
                goto fail;
            }
            if (mode == TD_PAD_CIRCULAR && (l > in || r > in)) {
                st = td_error(TD_EINVAL, 2,
                              "pad: circular padding must be at most the dim it pads: "
                              "{%lld, %lld} for dim %d of size %lld (input %s)",
                              (long long)l, (long long)r, dim + 1, (long long)in, s1);
                goto fail;
            }
            if (mode != TD_PAD_CONSTANT && in == 0) {
                st = td_error(TD_ESHAPE, 1, "pad: %s mode cannot pad the empty dim %d of %s",
                              pad_modes[mode], dim + 1, s1);
                goto fail;
            }
        }
        TD_CHECK(map_alloc(&m[d], in, outn, 1));
        for (int64_t o = 0; o < outn; o++) {
            m[d].idx[o] = pad_source(mode, o - l, in);
            m[d].wt[o] = 1.0;
        }
    }
    {
        static const char *const nodes[] = {"ConstantPadNdBackward", "ReflectionPadBackward",
                                            "ReplicationPadBackward", "CircularPadBackward"};
        st = resample(x, nd, m, value, "pad", nodes[mode], out);
    }
fail:
    for (int d = 0; d < 3; d++) map_free(&m[d]);
    return st;
}

/* ---- interpolate -------------------------------------------------------- */

/* PyTorch's area_pixel_compute_scale */
static double linear_scale(int64_t in, int64_t out, bool align, double scale)
{
    if (align) return out > 1 ? (double)(in - 1) / (double)(out - 1) : 0.0;
    return scale > 0 ? 1.0 / scale : (double)in / (double)out;
}

static double cubic1(double x, double a) { return ((a + 2) * x - (a + 3)) * x * x + 1; }
static double cubic2(double x, double a) { return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a; }

static void interp_map(dim_map *m, td_interp_mode mode, bool align, double scale)
{
    int64_t in = m->in;
    for (int64_t o = 0; o < m->out; o++) {
        if (mode == TD_INTERP_NEAREST) {
            /* nearest_idx: float arithmetic, as PyTorch */
            int64_t i;
            if (m->out == in)
                i = o;
            else if (m->out == 2 * in)
                i = o >> 1;
            else {
                float s = scale > 0 ? (float)(1.0 / scale) : (float)in / (float)m->out;
                i = (int64_t)floorf((float)o * s);
                if (i > in - 1) i = in - 1;
            }
            m->idx[o] = i;
            m->wt[o] = 1.0;
        } else if (mode == TD_INTERP_LINEAR) {
            double s = linear_scale(in, m->out, align, scale);
            double src = align ? s * (double)o : s * ((double)o + 0.5) - 0.5;
            if (src < 0) src = 0;
            int64_t i0 = (int64_t)floor(src);
            if (i0 > in - 1) i0 = in - 1;
            double l = src - (double)i0;
            l = l < 0 ? 0 : l > 1 ? 1 : l;
            int64_t i1 = i0 < in - 1 ? i0 + 1 : i0;
            m->idx[2 * o] = i0;
            m->idx[2 * o + 1] = i1;
            m->wt[2 * o] = 1 - l;
            m->wt[2 * o + 1] = l;
        } else {
            double s = linear_scale(in, m->out, align, scale);
            double src = align ? s * (double)o : s * ((double)o + 0.5) - 0.5;
            double fl = floor(src), t = src - fl;
            const double A = -0.75;
            double c[4] = {cubic2(t + 1, A), cubic1(t, A), cubic1(1 - t, A), cubic2(2 - t, A)};
            for (int k = 0; k < 4; k++) {
                int64_t i = (int64_t)fl - 1 + k;
                m->idx[4 * o + k] = i < 0 ? 0 : i > in - 1 ? in - 1 : i;
                m->wt[4 * o + k] = c[k];
            }
        }
    }
}

td_status td_interpolate(td_tensor *x, const int64_t *size, const double *scales,
                         td_interp_mode mode, bool align_corners, td_tensor **out)
{
    char s1[160];
    if (x->dtype != TD_FLOAT32 && x->dtype != TD_FLOAT64)
        return td_error(TD_EDTYPE, 1, "interpolate: input must be float32 or float64, got %s",
                        td_dtype_name(x->dtype));
    td_shape_str(x, s1, sizeof s1);
    int nd = x->ndim - 2;
    if (nd < 1 || nd > 3)
        return td_error(TD_ESHAPE, 1,
                        "interpolate: input must be 3-, 4- or 5-dim (N, C, spatial...), got %s",
                        s1);
    if (mode == TD_INTERP_CUBIC && nd != 2)
        return td_error(TD_ESHAPE, 1, "interpolate: bicubic wants a 4-dim input, got %s", s1);
    if (mode == TD_INTERP_NEAREST && align_corners)
        return td_error(TD_EINVAL, 2,
                        "interpolate: align_corners can only be set with the interpolating modes "
                        "(linear, bilinear, bicubic, trilinear)");
    if (!size && !scales) return td_error(TD_EINVAL, 2, "interpolate: give size or scale_factor");
    dim_map m[3] = {{0}};
    td_status st = TD_OK;
    int64_t taps = mode == TD_INTERP_NEAREST ? 1 : mode == TD_INTERP_LINEAR ? 2 : 4;
    for (int d = 0; d < 3; d++) {
        int j = d - (3 - nd);
        if (j < 0) {
            TD_CHECK(map_alloc(&m[d], 1, 1, 1));
            m[d].idx[0] = 0;
            m[d].wt[0] = 1;
            continue;
        }
        int64_t in = x->shape[2 + j], o;
        double sc = -1;
        if (size) {
            o = size[j];
        } else {
            sc = scales[j];
            if (!(sc > 0) || !isfinite(sc)) {
                st = td_error(TD_EINVAL, 2, "interpolate: scale_factor must be positive, got %g",
                              sc);
                goto fail;
            }
            o = (int64_t)((double)in * sc);
        }
        if (o < 1 || in < 1 || o > INT32_MAX) {
            st = td_error(TD_EINVAL, 2,
                          "interpolate: input %s and output size %lld in spatial dim %d must "
                          "both be positive",
                          s1, (long long)o, j + 1);
            goto fail;
        }
        TD_CHECK(map_alloc(&m[d], in, o, taps));
        interp_map(&m[d], mode, align_corners, sc);
    }
    {
        static const char *const nodes[3][4] = {
            {"", "UpsampleNearest1DBackward", "UpsampleNearest2DBackward",
             "UpsampleNearest3DBackward"},
            {"", "UpsampleLinear1DBackward", "UpsampleBilinear2DBackward",
             "UpsampleTrilinear3DBackward"},
            {"", "", "UpsampleBicubic2DBackward", ""}};
        st = resample(x, nd, m, 0.0, "interpolate", nodes[mode][nd], out);
    }
fail:
    for (int d = 0; d < 3; d++) map_free(&m[d]);
    return st;
}
