/* CPU kernels of the binary losses. */
#include "cpu.h"

const struct td_binary_loss_kernels td_cpu_binary_loss = {0};
