/* Autocast: mixed precision by op, as PyTorch's autocast.
 *
 * Inside a region the ops whose cost is their products (matmul, mm, bmm,
 * addmm, linear, the convolutions) cast their float32 inputs to the
 * region's dtype (bfloat16 or float16) and run there; float64 inputs are
 * left alone, as PyTorch leaves them. The casts are recorded by autograd,
 * so float32 parameters get float32 gradients (master weights) and the
 * optimizers need no change. Ops that need float32's range (the losses,
 * the norms) take low-precision inputs in float32, region or not.
 * Regions nest; the state belongs to the calling thread.
 */
#ifndef TIDE_AUTOCAST_H
#define TIDE_AUTOCAST_H

#include "tide/core.h"

/* opens a region: on with dtype (bfloat16 or float16), or off (enabled
 * false: the ops inside run as written, e.g. one float32 step inside a
 * bfloat16 region); *depth receives the depth to hand back to exit */
td_status td_autocast_enter(td_dtype dt, bool enabled, int *depth);
/* closes the innermost region, which must be the one depth opened */
td_status td_autocast_exit(int depth);
/* whether the innermost region casts, and to what (float32 when none) */
bool td_autocast_enabled(void);
td_dtype td_autocast_dtype(void);

/* For a lower-precision op's front-end when td_autocast_enabled(): its
 * inputs as it runs them (float32 ones cast to the region's dtype, the
 * rest as they are; out[i] a new reference, NULL for a NULL input), and
 * autocast suspended until td_autocast_end, so the op, called again on
 * out, runs as written and the ops it is made of do not cast again. */
td_status td_autocast_begin(int n, td_tensor *const *in, td_tensor **out, int *depth);
void td_autocast_end(int n, td_tensor **out, int depth);
/* the inputs of an op that computes in float32 (the losses): bfloat16
 * and float16 ones cast to float32, region or not; release out with
 * td_autocast_release */
td_status td_autocast_float32(int n, td_tensor *const *in, td_tensor **out);
void td_autocast_release(int n, td_tensor **t);

#endif
