/* regression losses: front-end declarations (see ../shared/DESIGN.md, "Losses"). */
#ifndef TIDE_LOSS_REGRESSION_H
#define TIDE_LOSS_REGRESSION_H

#include "tide/losses.h"

#endif
