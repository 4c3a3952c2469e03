#ifndef PE_LAYERNORM_H
#define PE_LAYERNORM_H
#include "common.h"

/* BERT's input stage in one pass: token + segment + position, then LayerNorm (Ba et al. 2016).
 *   x[r, :]   = (W[ids[r], :] * scale + SG[seg[r], :]) + P[r % seq, :]      (rounded in T, no FMA,
 *               the order of Hugging Face's BertEmbeddings; SG or P NULL: that term left out)
 *   out[r, :] = (x - mean(x)) * rstd * gamma + beta,   rstd = 1 / sqrt(var(x) + eps)
 *   out (n, dim), n = nb * seq    W (num_rows, dim)   ids (n,), checked in range
 *   P (seq, dim): position rows start .. start + seq, already offset by the caller, or NULL
 *   SG (num_segments, dim) or NULL; seg (n,), checked in range (NULL when SG is)
 *   gamma, beta (dim,), or both NULL: no normalisation, out = x
 * The statistics of each row are two-pass sums in double over the float row, in 8 fixed lanes
 * (so vectorised, and the same bits at every vector level and thread count); the normalisation
 * itself is in T, as torch's layer_norm. Parallel over rows. */
int pe_embed_layernorm_f32(float *out, const float *W, const int64_t *ids, const float *P,
                           const float *SG, const int64_t *seg, const float *gamma,
                           const float *beta, size_t nb, size_t seq, size_t dim, float scale,
                           double eps);
int pe_embed_layernorm_f64(double *out, const double *W, const int64_t *ids, const double *P,
                           const double *SG, const int64_t *seg, const double *gamma,
                           const double *beta, size_t nb, size_t seq, size_t dim, double scale,
                           double eps);

/* Its backward, with x recomputed from the tables (call it before the tables change):
 *   dx (n, dim)      = rstd * (g - mean(g) - xhat * mean(g * xhat)),  g = dout * gamma,
 *                      xhat = (x - mean(x)) * rstd: the gradient of each row's sum x, which the
 *                      caller scatters into the token (times scale), segment and position rows
 *   dgamma (dim,)   += sum over rows of dout * xhat      dbeta (dim,) += sum over rows of dout
 *   dout (n, dim); the other arguments as the forward (gamma required).
 * dgamma and dbeta are summed in double over fixed chunks of rows (their size depends on n only),
 * the chunks then added in order: the same bits for every thread count. PE_ERR_NOMEM when the
 * chunk sums cannot be allocated (nothing written then). */
int pe_embed_layernorm_backward_f32(float *dx, float *dgamma, float *dbeta, const float *dout,
                                    const float *W, const int64_t *ids, const float *P,
                                    const float *SG, const int64_t *seg, const float *gamma,
                                    size_t nb, size_t seq, size_t dim, float scale, double eps);
int pe_embed_layernorm_backward_f64(double *dx, double *dgamma, double *dbeta, const double *dout,
                                    const double *W, const int64_t *ids, const double *P,
                                    const double *SG, const int64_t *seg, const double *gamma,
                                    size_t nb, size_t seq, size_t dim, double scale, double eps);

#endif
