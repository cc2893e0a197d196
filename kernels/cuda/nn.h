/* The CUDA backend's conv and layers families: convolution
 * through cuDNN (conv.c), batch norm and pooling as our own kernels
 * (nn.cu). Plain C declarations; the .cu file gives them C linkage. */
#ifndef TIDE_KERNELS_CUDA_NN_H
#define TIDE_KERNELS_CUDA_NN_H

#include "cuda_internal.h"

#ifdef __cplusplus
extern "C" {
#endif

extern const struct td_conv_kernels td_cuda_conv;
extern const struct td_layers_kernels td_cuda_layers;

/* cuDNN is loaded on first use (conv.c); TD_OK when libcudnn.so.9 and
 * every entry tide calls were found, else the error says what is missing.
 * Needs no GPU: tests call it on the build machine. */
td_status td_cudnn_load(void);
/* the loaded library's version (e.g. 91900), 0 before a load */
size_t td_cudnn_version(void);

/* which CUDA device holds p; -1 (and an error noted) when none does */
int td_cuda_device_of_ptr(const void *p);

/* nn.cu helpers the conv entries share: y (n, c, inner) += b[c], and
 * out[c] = the sum of g (n, c, inner) over n and inner, in a fixed order */
void td_cuda_add_channel(td_dtype dt, void *y, const void *b, int64_t n, int64_t c, int64_t inner);
void td_cuda_channel_sum(td_dtype dt, const void *g, void *out, int64_t n, int64_t c,
                         int64_t inner);

#ifdef __cplusplus
}
#endif

#endif
