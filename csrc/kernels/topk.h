/* Top-k selection per row, for batched similarity queries.
 *
 * Shapes:
 *   scores   (rows, n)  row r at scores + r * stride (stride >= n), float32 / float64
 *   scale    (n,)       optional (NULL: none); the score of column j is scores[r, j] / scale[j]
 *                       (one IEEE division, the same bits as NumPy's `scores / scale`)
 *   out_idx  (rows, k)  int64 column indices, best first
 *   out_val  (rows, k)  the scores of those columns
 *
 * Order: larger score first; equal scores by smaller column index; NaN scores come last (as
 * NumPy's sorts put them). k <= n. A bounded min-heap per row: O(n log k), one pass over the
 * row, no n-sized scratch. Parallel over rows; the result does not depend on the thread count.
 */
#ifndef PE_TOPK_H
#define PE_TOPK_H

#include "common.h"

int pe_topk_f32(int64_t *out_idx, float *out_val, const float *scores, size_t stride,
                const float *scale, size_t rows, size_t n, size_t k);
int pe_topk_f64(int64_t *out_idx, double *out_val, const double *scores, size_t stride,
                const double *scale, size_t rows, size_t n, size_t k);

#endif
