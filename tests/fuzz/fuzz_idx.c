/* libFuzzer target for the IDX parser (make fuzz): any bytes must give a
 * uint8 tensor whose size matches the header, or an error, never a crash,
 * a leak or a read out of bounds. */
#include <stdint.h>
#include <string.h>

#include "tide/tide.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    td_tensor *t = NULL;
    if (td_idx_parse(data, size, "fuzz", &t) != TD_OK) {
        if (t) __builtin_trap();
        td_clear_error();
        return 0;
    }
    if (t->dtype != TD_UINT8 || t->ndim != data[3]) __builtin_trap();
    size_t header = 4 + 4 * (size_t)t->ndim;
    if (header + (size_t)td_numel(t) != size) __builtin_trap();
    if (td_numel(t) && memcmp(td_data_ptr(t), data + header, (size_t)td_numel(t)) != 0)
        __builtin_trap();
    td_tensor_release(t);
    return 0;
}
