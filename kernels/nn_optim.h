/* Kernels of the optim family (issue 4): one table per backend. */
#ifndef TIDE_KERNELS_NN_OPTIM_H
#define TIDE_KERNELS_NN_OPTIM_H

#include "tide/tide.h"

struct td_optim_kernels {
    int reserved; /* entries come with the ops */
};

#endif
