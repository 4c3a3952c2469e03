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

#define PE_TMPL "adam_tmpl.h"
#include "float_types.h"
