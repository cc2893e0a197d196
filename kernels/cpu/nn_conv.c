/* CPU kernels of the conv family. */
#include "cpu.h"

const struct td_conv_kernels td_cpu_conv = {0};
