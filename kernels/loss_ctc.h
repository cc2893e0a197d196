/* Kernels of the ctc losses: one table per backend. */
#ifndef TIDE_KERNELS_LOSS_CTC_H
#define TIDE_KERNELS_LOSS_CTC_H

#include "tide/tide.h"

struct td_ctc_loss_kernels {
    int reserved; /* entries come with the losses */
};

#endif
