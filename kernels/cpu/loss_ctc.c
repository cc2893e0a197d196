/* CPU kernels of the ctc losses. */
#include "cpu.h"

const struct td_ctc_loss_kernels td_cpu_ctc_loss = {0};
