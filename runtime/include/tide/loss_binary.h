/* binary losses: front-end declarations (see ../shared/DESIGN.md, "Losses"). */
#ifndef TIDE_LOSS_BINARY_H
#define TIDE_LOSS_BINARY_H

#include "tide/losses.h"

#endif
