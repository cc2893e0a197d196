/* Kernels of the margin losses: one table per backend. */
#ifndef TIDE_KERNELS_LOSS_MARGIN_H
#define TIDE_KERNELS_LOSS_MARGIN_H

#include "tide/tide.h"

struct td_margin_loss_kernels {
    int reserved; /* entries come with the losses */
};

#endif
