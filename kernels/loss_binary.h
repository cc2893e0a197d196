/* Kernels of the binary losses: one table per backend. */
#ifndef TIDE_KERNELS_LOSS_BINARY_H
#define TIDE_KERNELS_LOSS_BINARY_H

#include "tide/tide.h"

struct td_binary_loss_kernels {
    int reserved; /* entries come with the losses */
};

#endif
