/* Kernels of the regression losses: one table per backend. */
#ifndef TIDE_KERNELS_LOSS_REGRESSION_H
#define TIDE_KERNELS_LOSS_REGRESSION_H

#include "tide/tide.h"

struct td_regression_loss_kernels {
    int reserved; /* entries come with the losses */
};

#endif
