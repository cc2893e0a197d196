/* ctc losses: front-end declarations (see ../shared/DESIGN.md, "Losses"). */
#ifndef TIDE_LOSS_CTC_H
#define TIDE_LOSS_CTC_H

#include "tide/losses.h"

#endif
