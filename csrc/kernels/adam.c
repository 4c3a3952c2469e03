/* Adam, AdamW, amsgrad, maximize and torch SparseAdam: one fused pass per element (see adam.h).
 *
 * Dense Adam is memory bound: 28 bytes per float32 parameter (read p, g, m, v; write p, m, v).
 * So the whole update is one loop per contiguous span with restrict pointers and no branches
 * inside (the variants are compile-time constants, see adam_tmpl.h), and the bias corrections
 * are computed once per step in double: lr/bc1 and sqrt(bc2), never pow per element.
 * Formula: Kingma & Ba 2015, Algorithm 1, in torch.optim.Adam's arrangement; decoupled decay:
 * Loshchilov & Hutter 2019; amsgrad: Reddi et al. 2018.
 */
#include "adam.h"
#include "optim_loop.h"
#include "simd.h"

#include <math.h>

/* The 12 loop variants: form (Adam / SparseAdam) x weight decay (none / L2 / decoupled) x amsgrad. */
static int adam_mode(const pe_adam_opts *o, int amsgrad) {
    int wd = o->weight_decay != 0.0 ? (o->decoupled ? 2 : 1) : 0;
    return (o->sparse_form ? 6 : 0) + wd * 2 + (amsgrad ? 1 : 0);
}

#define T float
#define SQRT sqrtf
#define FN(name) name##_f32
#include "adam_tmpl.h"
#undef T
#undef SQRT
#undef FN

#define T double
#define SQRT sqrt
#define FN(name) name##_f64
#include "adam_tmpl.h"
#undef T
#undef SQRT
#undef FN
