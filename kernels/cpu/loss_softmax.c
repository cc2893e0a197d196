/* CPU kernels of the softmax losses. */
#include "cpu.h"

const struct td_softmax_loss_kernels td_cpu_softmax_loss = {0};
