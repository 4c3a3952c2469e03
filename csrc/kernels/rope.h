#ifndef PE_ROPE_H
#define PE_ROPE_H
#include "common.h"

/* Rotary position embedding (Su et al. 2021, "RoFormer", eq. 34): each pair (x1, x2) of the
 * last axis of a row at position p is rotated by the angle p * w_j, w_j = base^(-2j/hd):
 *     out1 = x1 cos - x2 sin,   out2 = x2 cos + x1 sin        (inverse: the angle negated,
 *                                                               which is the backward)
 *   out, x (outer, seq, hd), hd even   pos (seq,): the position of each row t, shared by every
 *   outer slice (a per-row position array is passed as outer = 1, seq = rows)
 *   interleaved = 0: pairs (j, j + hd/2) (GPT-NeoX, HF rotate_half); 1: pairs (2j, 2j+1) (the
 *   paper, Meta's Llama)
 * cos / sin come from the anchored walk of positional.h (no libm call per element, a function
 * of p only); the rotation is done in double and rounded once, so an output is within half an
 * ulp (plus ~1e-10 |x|) of the float64 formula. out may be x itself (in place), but must not
 * overlap it otherwise. Parallel over (position block, outer chunk); any thread count gives the
 * same bits. |pos| <= 2^52 (the glue checks). PE_OK or PE_ERR_NOMEM (nothing written). */
int pe_rope_f32(float *out, const float *x, const int64_t *pos, size_t outer, size_t seq,
                size_t hd, double base, int interleaved, int inverse);
int pe_rope_f64(double *out, const double *x, const int64_t *pos, size_t outer, size_t seq,
                size_t hd, double base, int interleaved, int inverse);

#endif
