/* Gradient norms and scaling for clip_grad_norm_ (see gradnorm.h).
 *
 * A float sum is not associative, so the order is fixed by the data, never by the threads:
 * each row (or block) is summed with 8 interleaved accumulators combined in a fixed order
 * (which the compiler may keep in vector registers: the lanes are independent), and the
 * per-row partials are then added serially in row order.
 */
#include "gradnorm.h"


#define PE_TMPL "gradnorm_tmpl.h"
#include "float_types.h"
