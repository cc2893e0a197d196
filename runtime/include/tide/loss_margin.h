/* margin losses: front-end declarations (see ../shared/DESIGN.md, "Losses"). */
#ifndef TIDE_LOSS_MARGIN_H
#define TIDE_LOSS_MARGIN_H

#include "tide/losses.h"

#endif
