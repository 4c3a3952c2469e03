/* SGD with momentum / dampening / Nesterov / weight decay in one fused pass (see sgd.h).
 * torch's single-tensor SGD makes two passes with momentum (buffer, then parameter); here the
 * parameter and the buffer are updated in the same loop: 20 bytes per float32 element instead of 24.
 */
#include "sgd.h"
#include "optim_loop.h"
#include "simd.h"

/* weight decay x {no momentum, first step, later step} x nesterov (nesterov needs momentum) */
static int sgd_mode(const pe_sgd_opts *o, int has_buf) {
    int wd = o->weight_decay != 0.0;
    int mom = has_buf ? (o->first ? 1 : 2) : 0;
    int nest = has_buf && o->nesterov;
    return wd * 6 + mom * 2 + nest;
}

#define T float
#define FN(name) name##_f32
#include "sgd_tmpl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include "sgd_tmpl.h"
#undef T
#undef FN
