/* CPU kernels of the optim family. */
#include "cpu.h"

const struct td_optim_kernels td_cpu_optim = {0};
