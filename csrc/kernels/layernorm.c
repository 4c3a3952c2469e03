/* Token + segment + position embeddings and LayerNorm, fused (see layernorm.h).
 *
 * Shapes: out, dx, dout (n, dim), n = nb * seq; W (num_rows, dim); ids, seg (n,);
 * P (seq, dim); SG (num_segments, dim); gamma, beta, dgamma, dbeta (dim,).
 * Written with torch ops the stage is three lookups, two adds and a layer_norm: five passes over
 * the activations forward and as many back, with torch's embedding backward on top; here each
 * row is built, normalised and written while it sits in L1, and the backward rebuilds it rather
 * than keeping (n, dim) of saved state. The kernels are layernorm_tmpl.h, once per element type
 * and once per 16-bit table type.
 */
#define PE_TMPL "layernorm_tmpl.h"
#define PE_TMPL_KEEP
#include "float_types.h"
#include "half_types.h"
