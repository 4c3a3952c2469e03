#ifndef PE_LAYERNORM_H
#define PE_LAYERNORM_H
#include "common.h"

/* pe_embed_layernorm_<sfx>: BERT's input stage in one pass, token + segment + position, then
 * LayerNorm (Ba et al. 2016).
 *   x[r, :]   = (W[ids[r], :] * scale + SG[seg[r], :]) + P[p(r), :]        (rounded in T, no FMA,
 *               the order of Hugging Face's BertEmbeddings; SG or P NULL: that term left out)
 *   out[r, :] = (x - mean(x)) * rstd * gamma + beta,   rstd = 1 / sqrt(var(x) + eps)
 *   out (n, dim), n = nb * seq    W (num_rows, dim)   ids (n,), checked in range
 *   pos NULL: p(r) = r % seq and P (seq, dim) the position rows start .. start + seq, already
 *   offset by the caller, or NULL; else pos (pos_len,), pos_len == seq (shared by every
 *   sequence) or n (packed rows), p(r) = pos[r % pos_len], each value checked by the caller
 *   against the rows of P (a private copy: Hugging Face's position_ids)
 *   SG (num_segments, dim) or NULL; seg (n,), checked in range (NULL when SG is)
 *   gamma, beta (dim,), or both NULL: no normalisation, out = x
 * The statistics of each row are two-pass sums in double over the float row, in 8 fixed lanes
 * (so vectorised, and the same bits at every vector level and thread count); the normalisation
 * itself is in T, as torch's layer_norm. Parallel over rows.
 *
 * pe_embed_layernorm_backward_<sfx>: its backward, with x recomputed from the tables (call it
 * before the tables change):
 *   dx (n, dim)      = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dout * gamma,
 *                      xhat = (x - mean(x)) * rstd: the gradient of each row's sum x, which the
 *                      caller scatters into the token (times scale), segment and position rows
 *   dgamma (dim,)   += sum over rows of dout * xhat      dbeta (dim,) += sum over rows of dout
 *   dout (n, dim); the other arguments as the forward (gamma required).
 * dgamma and dbeta are summed in double over fixed chunks of rows (their size depends on n only),
 * the chunks then added in order: the same bits for every thread count. PE_ERR_NOMEM when the
 * chunk sums cannot be allocated (nothing written then).
 *
 * Both are declared once per element type (sfx: f32, f64, f16, bf16): T above is `real`, the
 * arithmetic and the type of every output, P, gamma, beta and dout; `stored` is the element of
 * the tables W and SG. The f16 / bf16 kernels read float16 / bfloat16 tables (their 16-bit
 * elements, widened exactly) and compute in float: the bits of the _f32 kernels on the widened
 * tables. One macro, so the four signatures cannot drift apart. */
#define PE_LAYERNORM_KERNELS(sfx, real, stored)                                                    \
    int pe_embed_layernorm_##sfx(real *out, const stored *W, const int64_t *ids, const real *P,   \
                                 const int64_t *pos, const stored *SG, const int64_t *seg,        \
                                 const real *gamma, const real *beta, size_t nb, size_t seq,      \
                                 size_t pos_len, size_t dim, real scale, double eps);             \
    int pe_embed_layernorm_backward_##sfx(real *dx, real *dgamma, real *dbeta, const real *dout,  \
                                          const stored *W, const int64_t *ids, const real *P,     \
                                          const int64_t *pos, const stored *SG,                   \
                                          const int64_t *seg, const real *gamma, size_t nb,       \
                                          size_t seq, size_t pos_len, size_t dim, real scale,     \
                                          double eps)
PE_LAYERNORM_KERNELS(f32, float, float);
PE_LAYERNORM_KERNELS(f64, double, double);
PE_LAYERNORM_KERNELS(f16, float, uint16_t);
PE_LAYERNORM_KERNELS(bf16, float, uint16_t);

#endif
