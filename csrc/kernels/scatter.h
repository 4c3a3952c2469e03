#ifndef PE_SCATTER_H
#define PE_SCATTER_H
#include "common.h"

/* Backward of the lookup: for every position i with ids[i] != padding_idx,
 *     grad[ids[i], :] += dout[i, :] * s_i        (s_i = 1, or 1/count(ids[i]) with scale_by_freq)
 * each row's contributions added in order of i, exactly as np.add.at — so the result is bitwise
 * identical for every thread count. Rows that receive a gradient and are not yet marked get
 * mark[row] = 1 and are appended to touched[*n_touched] (touched has room for num_rows).
 *   grad (num_rows, dim)   mark (num_rows,)   touched (num_rows,)
 *   ids (n,) checked in [0, num_rows)   dout (n, dim)   padding_idx < 0: none
 * Parallel over distinct rows (and column blocks of hot rows). PE_OK or PE_ERR_NOMEM, in which
 * case nothing was written. */
int pe_scatter_add_f32(float *grad, uint8_t *mark, int64_t *touched, size_t *n_touched,
                       const int64_t *ids, const float *dout, size_t n, size_t dim,
                       int64_t num_rows, int64_t padding_idx, int scale_by_freq);
int pe_scatter_add_f64(double *grad, uint8_t *mark, int64_t *touched, size_t *n_touched,
                       const int64_t *ids, const double *dout, size_t n, size_t dim,
                       int64_t num_rows, int64_t padding_idx, int scale_by_freq);

/* grad[rows[k], :] = 0 for k < n, and mark[rows[k]] = 0.   grad (num_rows, row_bytes) */
void pe_zero_rows(void *grad, uint8_t *mark, const int64_t *rows, size_t n, size_t row_bytes);

#endif
