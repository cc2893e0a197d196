/* The DataLoader's built-in transforms, on float32 batches (B, C, H, W).
 * They run on the loader thread: no Lua, no global generator; each random
 * choice is a counter hash of (key, sample position in the epoch). */
#include "internal.h"
#include "../kernels/counter_bits.h"

static td_status check_batch(const td_tensor *x, int min_dim, int max_dim, const char *name)
{
    if (x->dtype != TD_FLOAT32)
        return td_error(TD_EDTYPE, 0, "%s works on float32 batches, got %s", name,
                        td_dtype_name(x->dtype));
    if (x->ndim < min_dim || x->ndim > max_dim) {
        char b[96];
        return td_error(TD_ESHAPE, 0, "%s needs a batch (B, C, H, W), got shape %s", name,
                        td_shape_str(x, b, sizeof b));
    }
    if (!td_is_contiguous(x)) return td_error(TD_EINVAL, 0, "%s needs a contiguous batch", name);
    return TD_OK;
}

static td_status normalize(const td_transform *tf, td_tensor *x)
{
    TD_TRY(check_batch(x, 2, TD_MAX_DIMS, "normalize"));
    int64_t B = x->shape[0], C = x->shape[1];
    if (tf->nch != 1 && tf->nch != C)
        return td_error(TD_ESHAPE, 0,
                        "normalize has %d means and stds but the batch has %lld channels", tf->nch,
                        (long long)C);
    int64_t inner = (B > 0 && C > 0) ? td_numel(x) / (B * C) : 0;
    float *p = td_data_ptr(x);
    for (int64_t b = 0; b < B; b++)
        for (int64_t c = 0; c < C; c++) {
            int k = tf->nch == 1 ? 0 : (int)c;
            float m = (float)tf->mean[k], s = (float)(1.0 / tf->std[k]);
            float *q = p + (b * C + c) * inner;
            for (int64_t i = 0; i < inner; i++) q[i] = (q[i] - m) * s;
        }
    td_bump_version(x);
    return TD_OK;
}

static td_status hflip(const td_transform *tf, td_tensor *x, uint64_t key, int64_t first)
{
    TD_TRY(check_batch(x, 4, 4, "random_hflip"));
    int64_t B = x->shape[0], rows = x->shape[1] * x->shape[2], W = x->shape[3];
    float *p = td_data_ptr(x);
    for (int64_t b = 0; b < B; b++) {
        double u = (double)(td_counter_bits(key, (uint64_t)(first + b)) >> 11) * 0x1.0p-53;
        if (!(u < tf->p)) continue;
        for (int64_t r = 0; r < rows; r++) {
            float *q = p + (b * rows + r) * W;
            for (int64_t i = 0, j = W - 1; i < j; i++, j--) {
                float t = q[i];
                q[i] = q[j];
                q[j] = t;
            }
        }
    }
    td_bump_version(x);
    return TD_OK;
}

static td_status crop(const td_transform *tf, td_tensor *x, uint64_t key, int64_t first,
                      td_tensor **out)
{
    TD_TRY(check_batch(x, 4, 4, "random_crop"));
    int64_t B = x->shape[0], C = x->shape[1], H = x->shape[2], W = x->shape[3];
    int64_t pad = tf->padding, sh = tf->size_h, sw = tf->size_w;
    if (sh > H + 2 * pad || sw > W + 2 * pad)
        return td_error(TD_ESHAPE, 0,
                        "random_crop of %lldx%lld does not fit a %lldx%lld image with padding %lld",
                        (long long)sh, (long long)sw, (long long)H, (long long)W, (long long)pad);
    int64_t shape[4] = {B, C, sh, sw};
    td_tensor *y = NULL;
    TD_TRY(td_empty(4, shape, TD_FLOAT32, &y));
    const float *src = td_data_ptr(x);
    float *dst = td_data_ptr(y);
    uint64_t ny = (uint64_t)(H + 2 * pad - sh + 1), nx = (uint64_t)(W + 2 * pad - sw + 1);
    for (int64_t b = 0; b < B; b++) {
        uint64_t r = td_counter_bits(key, (uint64_t)(first + b));
        int64_t oy = (int64_t)((r >> 32) % ny) - pad, ox = (int64_t)((r & 0xffffffffu) % nx) - pad;
        for (int64_t c = 0; c < C; c++) {
            const float *s = src + (b * C + c) * H * W;
            float *d = dst + (b * C + c) * sh * sw;
            for (int64_t i = 0; i < sh; i++) {
                int64_t yy = oy + i;
                float *row = d + i * sw;
                if (yy < 0 || yy >= H) {
                    memset(row, 0, (size_t)sw * sizeof(float));
                    continue;
                }
                for (int64_t j = 0; j < sw; j++) {
                    int64_t xx = ox + j;
                    row[j] = (xx >= 0 && xx < W) ? s[yy * W + xx] : 0.0f;
                }
            }
        }
    }
    *out = y;
    return TD_OK;
}

td_status td_transform_apply(const td_transform *tf, td_tensor *x, uint64_t key, int64_t first,
                             td_tensor **out)
{
    *out = NULL;
    td_status st;
    switch (tf->kind) {
    case TD_TF_NORMALIZE: st = normalize(tf, x); break;
    case TD_TF_RANDOM_HFLIP: st = hflip(tf, x, key, first); break;
    case TD_TF_RANDOM_CROP: return crop(tf, x, key, first, out);
    default: return td_error(TD_EINVAL, 0, "unknown transform %d", (int)tf->kind);
    }
    if (st != TD_OK) return st;
    td_tensor_retain(x);
    *out = x;
    return TD_OK;
}
