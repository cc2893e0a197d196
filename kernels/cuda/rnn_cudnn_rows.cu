/* The row gather kernels/cuda/rnn_cudnn.c reverses sequences with: cuDNN
 * runs forward in time only, so a reversed layer runs on its input with
 * each sequence's steps mirrored, and its outputs are mirrored back. */
#include "common.cuh"

using namespace tdc;

namespace {

template <typename T>
__global__ void gather_rows_k(int64_t rows, int64_t width, const int64_t *map, const T *src, T *dst)
{
    int64_t total = rows * width, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t e = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
        int64_t r = e / width, k = e - r * width;
        dst[e] = src[map[r] * width + k];
    }
}

} // namespace

/* dst row r = src row map[r] (map on the device), rows of width elements,
 * on the current device's stream */
extern "C" void td_cuda_rnn_gather_rows(td_dtype dt, int64_t rows, int64_t width,
                                        const int64_t *map, const void *src, void *dst)
{
    if (rows * width == 0) return;
    TDC_FLOAT_DISPATCH(dt, {
        gather_rows_k<T>
            <<<blocks_for(rows * width), THREADS>>>(rows, width, map, (const T *)src, (T *)dst);
    });
    check_launch("rnn_layer row gather");
}
