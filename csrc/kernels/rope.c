/* Rotary position embedding (see rope.h).
 *
 * Shapes: out, x (outer, seq, hd); pos (seq,); per task a table cs (RB rows, 2 * half):
 * row t holds cos(pos[t] w_j) for j < half, then sin (negated for the inverse).
 * Plan: positions are cut in blocks of RB rows; a task builds the cos/sin rows of its block
 * (walking from one position to the next when they are consecutive, seeking otherwise) and
 * rotates every row of its outer chunk at those positions, so the table is built once per
 * (block, chunk) and read from L1/L2 for every head and batch element.
 */
#include "rope.h"

#define PE_TMPL "rope_tmpl.h"
#include "float_types.h"
