/* softmax losses: front-end declarations (see ../shared/DESIGN.md, "Losses"). */
#ifndef TIDE_LOSS_SOFTMAX_H
#define TIDE_LOSS_SOFTMAX_H

#include "tide/losses.h"

#endif
