#ifndef PE_EMBED_POS_H
#define PE_EMBED_POS_H
#include "common.h"

/* The transformer's input stage in one pass (Vaswani et al. 2017, section 3.4):
 *     out[b, t, :] = W[ids[b, t], :] * scale + P[p(b, t), :]  (P == NULL: no position term)
 *   out (nb, seq, dim)   W (num_rows, dim)   ids (nb, seq), checked in range
 *   pos NULL: p(b, t) = t, P (seq, dim) the position rows start .. start + seq, already offset
 *   by the caller; else pos (pos_len,), pos_len == seq (one row of positions for every sequence)
 *   or nb * seq (one per token, packed rows), row r = b * seq + t reads p = pos[r % pos_len],
 *   every value checked by the caller against the rows of P (a private copy: Hugging Face's
 *   position_ids)
 * The multiply and the add are each rounded in T (no FMA), so the result has exactly the bits of
 * NumPy's `W[ids] * T(scale) + P`. Rows of W are prefetched PE_PREFETCH_DIST ids ahead; outputs
 * larger than the cache are streamed. Parallel over rows (b, t): any thread count, same bits. */
int pe_embed_positions_f32(float *out, const float *W, const int64_t *ids, const float *P,
                           const int64_t *pos, size_t nb, size_t seq, size_t pos_len, size_t dim,
                           float scale);
int pe_embed_positions_f64(double *out, const double *W, const int64_t *ids, const double *P,
                           const int64_t *pos, size_t nb, size_t seq, size_t pos_len, size_t dim,
                           double scale);
/* The same from a float16 / bfloat16 table (W: its 16-bit elements, widened exactly), in float:
 * the bits of the _f32 kernel on the widened table. */
int pe_embed_positions_f16(float *out, const uint16_t *W, const int64_t *ids, const float *P,
                           const int64_t *pos, size_t nb, size_t seq, size_t pos_len, size_t dim,
                           float scale);
int pe_embed_positions_bf16(float *out, const uint16_t *W, const int64_t *ids, const float *P,
                            const int64_t *pos, size_t nb, size_t seq, size_t pos_len, size_t dim,
                            float scale);

#endif
