/* CPU kernels of the regression losses. */
#include "cpu.h"

const struct td_regression_loss_kernels td_cpu_regression_loss = {0};
