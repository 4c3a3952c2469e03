/* Gradient norms and scaling for clip_grad_norm_ (see gradnorm.h).
 *
 * A float sum is not associative, so the order is fixed by the data, never by the threads:
 * each row (or block) is summed with 8 interleaved accumulators combined in a fixed order
 * (which the compiler may keep in vector registers: the lanes are independent), and the
 * per-row partials are then added serially in row order.
 */
#include "gradnorm.h"


#define T float
#define FN(name) name##_f32
#include "gradnorm_tmpl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include "gradnorm_tmpl.h"
#undef T
#undef FN
