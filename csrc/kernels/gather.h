#ifndef PE_GATHER_H
#define PE_GATHER_H
#include "common.h"

/* First position i with ids[i] outside [0, num_rows), or -1 when all are in range.
 *   ids (n,) */
int64_t pe_find_bad_id(const int64_t *ids, size_t n, int64_t num_rows);

/* First position i with ids[i] > limit, or -1.  ids (n,) unsigned (uint64 input). */
int64_t pe_find_u64_over(const uint64_t *ids, size_t n, uint64_t limit);

/* out[i, :] = W[ids[i], :]  (bitwise copy, so any dtype: rows of row_bytes bytes)
 *   out (n, row_bytes)   W (num_rows, row_bytes)   ids (n,), already checked in range
 * Parallel over i above a size threshold; large outputs use streaming stores. */
int pe_gather(void *out, const void *W, const int64_t *ids, size_t n, size_t row_bytes);

/* torch.embedding_renorm_: for each distinct id, if ||W[id]||_p > max_norm, scale the row by
 * max_norm / (norm + 1e-7). Norms and scale in double.
 *   W (num_rows, dim)   ids (n,), checked   p = norm_type (inf allowed)
 * Returns PE_OK or PE_ERR_NOMEM (nothing changed then). */
int pe_renorm_f32(float *W, const int64_t *ids, size_t n, size_t dim, int64_t num_rows,
                  double max_norm, double norm_type);
int pe_renorm_f64(double *W, const int64_t *ids, size_t n, size_t dim, int64_t num_rows,
                  double max_norm, double norm_type);
/* The same on a float16 / bfloat16 table (W: its 16-bit elements): norms of the widened rows,
 * each scaled element rounded back to nearest even (torch: the half row times a float scale). */
int pe_renorm_f16(uint16_t *W, const int64_t *ids, size_t n, size_t dim, int64_t num_rows,
                  double max_norm, double norm_type);
int pe_renorm_bf16(uint16_t *W, const int64_t *ids, size_t n, size_t dim, int64_t num_rows,
                   double max_norm, double norm_type);

#endif
