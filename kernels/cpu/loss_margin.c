/* CPU kernels of the margin losses. */
#include "cpu.h"

const struct td_margin_loss_kernels td_cpu_margin_loss = {0};
