/* EmbeddingBag forward / backward (see bag.h).
 *
 * Shapes: W, grad (num_rows, dim); ids (n,); off (nb + 1,); out, dout, argmax (nb, dim).
 * The forward streams each bag's rows through one output row held in L1 (prefetching rows
 * PE_PREFETCH_DIST positions ahead), never materialising the (n, dim) gather that the NumPy
 * expression `W[ids].reshape(B, L, dim).sum(1)` makes. The backward gives each thread a range
 * of columns and walks all positions in order, so no two threads write the same element and each
 * element sums in the order np.add.at would: deterministic without sorting or atomics.
 * The kernels are bag_tmpl.h, instantiated once per element type.
 */
#define PE_TMPL "bag_tmpl.h"
#define PE_TMPL_KEEP
#include "float_types.h"
#include "half_types.h"
