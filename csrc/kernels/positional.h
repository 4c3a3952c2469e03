#ifndef PE_POSITIONAL_H
#define PE_POSITIONAL_H
#include "common.h"

/* sin / cos of p * w_i for integer positions p, accurate to ~|p| 2^-53 absolute (1e-10 at 2^20),
 * without a transcendental call per element: within a block of PE_ANGLE_BLOCK positions that
 * starts at a multiple of PE_ANGLE_BLOCK, (sin, cos) is anchored with libm at the block start and
 * rotated forward one position at a time in double (angle addition). A value is therefore a
 * function of (p, w_i) alone: the same bits for every call, range, start and thread count.
 * The walk adds ~2^-53 per step, so after < 256 steps the error is < 1e-13 — far under
 * float32's 3e-8 half-ulp; the anchor's error is that of rounding p * w_i to double
 * (|p w| 2^-53: 1.2e-10 at p = 2^20). The block is long so that the libm anchors (~20 ns a
 * pair) cost < 10% of the rows; starting mid-block walks up to 255 steps without writing. */
#define PE_ANGLE_BLOCK 256

/* Frequency conventions (exponent=):
 *   PE_EXP_2I_D   w_i = base^(-2i/dim), i < ceil(dim/2)  (Vaswani et al. 2017; RoPE)
 *   PE_EXP_HALF   w_i = base^(-i/max(h-1, 1)), i < h = dim/2  (tensor2tensor get_timing_signal_1d,
 *                 fairseq SinusoidalPositionalEmbedding; an odd dim gets a zero last column, as
 *                 both pad it) */
enum { PE_EXP_2I_D = 0, PE_EXP_HALF = 1 };

/* Sinusoidal table: row r is position p = start + r.
 *   out (n, dim)
 *   layout_halves = 0: out[r, 2i] = sin(p w_i), out[r, 2i+1] = cos(p w_i)
 *   layout_halves = 1: out[r, i] = sin(p w_i), out[r, h + i] = cos(p w_i), h = dim / 2
 *   odd dim: the last column is sin(p w_h) (PE_EXP_2I_D) or 0 (PE_EXP_HALF).
 * Computed in double, rounded once to the output type. Parallel over position blocks; bitwise
 * identical for every thread count. start and start + n must lie within +-2^52 (the glue checks).
 * PE_OK, PE_ERR_NOMEM (nothing written), PE_ERR_VALUE (bad base / exponent). */
int pe_sinusoidal_f32(float *out, int64_t start, size_t n, size_t dim, double base,
                      int layout_halves, int exponent);
int pe_sinusoidal_f64(double *out, int64_t start, size_t n, size_t dim, double base,
                      int layout_halves, int exponent);

/* Building blocks shared with rope.c --------------------------------------------------------
 * w, sd, cd (nf,): the frequencies and sin/cos of one step; z (2 nf,): interleaved
 * (sin, cos) pairs, z[2i] = sin(p w_i), z[2i+1] = cos(p w_i). */
void pe_angle_freqs(double *w, double *sd, double *cd, size_t nf, size_t dim, double base,
                    int exponent);
/* z = sin, cos (p w) by the anchored walk (a function of p only). */
void pe_angle_seek(double *z, const double *w, const double *sd, const double *cd, size_t nf,
                   int64_t p);
/* Advance z from position p to p + 1 (the same step the walk takes). */
void pe_angle_step(double *z, const double *sd, const double *cd, size_t nf);
/* First position of p's anchor block (floor to a multiple of PE_ANGLE_BLOCK). */
static inline int64_t pe_angle_block_start(int64_t p) {
    int64_t q = p / PE_ANGLE_BLOCK;
    if (p % PE_ANGLE_BLOCK < 0) q--;
    return q * PE_ANGLE_BLOCK;
}

#endif
