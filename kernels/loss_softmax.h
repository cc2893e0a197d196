/* Kernels of the softmax losses: one table per backend. */
#ifndef TIDE_KERNELS_LOSS_SOFTMAX_H
#define TIDE_KERNELS_LOSS_SOFTMAX_H

#include "tide/tide.h"

struct td_softmax_loss_kernels {
    int reserved; /* entries come with the losses */
};

#endif
