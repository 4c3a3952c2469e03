#ifndef PE_HALF_ROWS_H
#define PE_HALF_ROWS_H
#include "common.h"
#include "half.h"

/* out[i, :] = float(W[ids[i], :])  (the lookup of a half table, widened exactly)
 *   out (n, dim) float32   W (num_rows, dim) float16 or bfloat16 (kind: PE_HALF_*)
 *   ids (n,), already checked in range
 * Rows prefetched PE_PREFETCH_DIST ids ahead; parallel over i above a size threshold. */
int pe_gather_widen(float *out, const uint16_t *W, const int64_t *ids, size_t n, size_t dim,
                    int kind);

/* W[rows[i], :] = round(src[i, :])  (rows NULL: row i), rounded as half.h's pe_narrow_row with
 * `mode`, `seed` and `step`, so the bits depend on neither the thread count nor the order.
 *   W (num_rows, dim)   src (n, dim) float32   rows (n,) distinct ids, checked in range
 * Parallel over i above a size threshold. */
int pe_narrow_rows(uint16_t *W, const float *src, const int64_t *rows, size_t n, size_t dim,
                   int kind, int mode, uint64_t seed, uint64_t step);

#endif
