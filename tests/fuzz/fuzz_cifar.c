/* libFuzzer target for the CIFAR-10 batch parser (make fuzz): any bytes
 * must give images (N, 3, 32, 32) and N labels in [0, 10), or an error,
 * never a crash, a leak or a read out of bounds. */
#include <stdint.h>
#include <string.h>

#include "tide/tide.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    td_tensor *im = NULL, *lb = NULL;
    if (td_cifar10_parse(data, size, "fuzz", &im, &lb) != TD_OK) {
        if (im || lb) __builtin_trap();
        td_clear_error();
        return 0;
    }
    int64_t n = im->shape[0];
    if ((size_t)n * TD_CIFAR_RECORD != size || lb->shape[0] != n || im->ndim != 4 ||
        im->shape[1] != 3)
        __builtin_trap();
    const int64_t *l = td_data_ptr(lb);
    const uint8_t *p = td_data_ptr(im);
    for (int64_t i = 0; i < n; i++) {
        if (l[i] < 0 || l[i] > 9 || l[i] != data[(size_t)i * TD_CIFAR_RECORD]) __builtin_trap();
        if (memcmp(p + (size_t)i * 3072, data + (size_t)i * TD_CIFAR_RECORD + 1, 3072) != 0)
            __builtin_trap();
    }
    td_tensor_release(im);
    td_tensor_release(lb);
    return 0;
}
