/* CPU kernels of the conv family: float32 through oneDNN
 * (nn_conv_dnnl.c), float64 through the direct loops (nn_conv_direct.c).
 * In deterministic mode float32 weight and bias gradients come from
 * nn_conv_fixed.c, whose order does not depend on the thread count. */
#include "cpu.h"
#include "dnnl_conv.h"

/* bfloat16 reaches the kernels only where td_dc_takes says oneDNN takes it
 * and never in deterministic mode (runtime/conv.c widens it then) */
static bool dnnl_dtype(td_dtype dt) { return dt == TD_FLOAT32 || dt == TD_BFLOAT16; }

static td_status forward(const td_conv_args *a, const void *x, const void *w, const void *b,
                         void *y)
{
    if (dnnl_dtype(a->dtype)) return td_conv_dnnl_forward(a, x, w, b, y);
    return td_conv_direct_forward(a, x, w, b, y);
}

static td_status backward_data(const td_conv_args *a, const void *gy, const void *w, void *gx)
{
    if (dnnl_dtype(a->dtype)) return td_conv_dnnl_backward_data(a, gy, w, gx);
    return td_conv_direct_backward_data(a, gy, w, gx);
}

static td_status backward_weights(const td_conv_args *a, const void *x, const void *gy, void *gw,
                                  void *gb)
{
    if (a->dtype == TD_FLOAT32 && td_deterministic())
        return td_conv_fixed_backward_weights(a, x, gy, gw, gb);
    if (dnnl_dtype(a->dtype)) return td_conv_dnnl_backward_weights(a, x, gy, gw, gb);
    return td_conv_direct_backward_weights(a, x, gy, gw, gb);
}

static td_status backward(const td_conv_args *a, const void *x, const void *w, const void *gy,
                          void *gx, void *gw, void *gb)
{
    if (a->dtype == TD_BFLOAT16 || (a->dtype == TD_FLOAT32 && !td_deterministic()))
        return td_conv_dnnl_backward(a, x, w, gy, gx, gw, gb);
    td_status st = TD_OK;
    if (a->dtype == TD_FLOAT32) {
        if (gx) st = td_conv_dnnl_backward_data(a, gy, w, gx);
        if (st == TD_OK && (gw || gb)) st = td_conv_fixed_backward_weights(a, x, gy, gw, gb);
        return st;
    }
    if (gx) st = td_conv_direct_backward_data(a, gy, w, gx);
    if (st == TD_OK && (gw || gb)) st = td_conv_direct_backward_weights(a, x, gy, gw, gb);
    return st;
}

/* kernels/cpu/nn_convnd.c */
extern const struct td_convnd_kernels td_cpu_convnd;

const struct td_conv_kernels td_cpu_conv = {
    .f32_channels_last = true,
    .forward = forward,
    .backward_data = backward_data,
    .backward_weights = backward_weights,
    .backward = backward,
    .nd = &td_cpu_convnd,
    .takes_lowp = td_dc_takes,
    .path = td_dc_path,
};
