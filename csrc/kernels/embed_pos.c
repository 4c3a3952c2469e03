/* Fused token + position lookup (see embed_pos.h).
 *
 * Shapes: out (nb, seq, dim); W (num_rows, dim); ids (nb, seq); P (seq, dim).
 * NumPy's `W[ids] * s + pe[:n]` makes three passes over the output and allocates two
 * temporaries; here each output row is read from W once and written once (streamed past the
 * cache when large), and each P row read once for the batch, which is the whole gain.
 * The kernels are embed_pos_tmpl.h, instantiated once per element type.
 */
#define PE_TMPL "embed_pos_tmpl.h"
#define PE_TMPL_KEEP
#include "float_types.h"
#include "half_types.h"
