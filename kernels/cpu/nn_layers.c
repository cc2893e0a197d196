/* CPU kernels of the layers family. */
#include "cpu.h"

const struct td_layers_kernels td_cpu_layers = {0};
