#ifndef PE_INBWD_H
#define PE_INBWD_H
#include "common.h"

/* An optimizer applied in the lookup's backward (issue 12): no (num_rows, dim) gradient exists.
 *
 * Shapes: ids (n,) checked in [0, num_rows); dout (n, dim) in T (float / double, the table's);
 * frozen (num_rows,) uint8 or NULL.
 *
 * The batch is grouped by id, stably (sort.h); each distinct row r that is neither padding_idx
 * nor frozen has its gradient summed in a per-thread buffer of dim values in order of appearance,
 *     g = (0 + dout[i0] (* s)) + dout[i1] (* s) + ...     (s = T(1 / count(r)) with scale_by_freq)
 * which is bit for bit what the scatter-add (scatter.h) leaves in a zero gradient row, and then
 * `update(ctx, r, g, next)` is called: the optimizer's update of that one row (its span
 * function over dim elements, with the per-row state it keeps). `next` is the row the calling
 * thread updates after this one (-1: none), for the update to prefetch; g may be overwritten.
 * Rows go to threads in any order, each row to exactly one thread, so an update that touches
 * only row r (and per-row counters of r) gives the same bits for every thread count.
 *
 * *n_rows gets the number of distinct rows in the batch other than padding_idx, frozen ones
 * included (an unfused step counts a step whenever it is not 0). PE_OK, or PE_ERR_NOMEM before
 * anything was updated. */
typedef void (*pe_row_update)(void *ctx, int64_t row, void *g, int64_t next);

typedef struct {
    const int64_t *ids;
    const void *dout;
    size_t n, dim;
    int64_t num_rows, padding_idx; /* padding_idx < 0: none */
    int scale_by_freq;
    const uint8_t *frozen;
} pe_bwd_batch;

int pe_inbwd_f32(pe_row_update update, void *ctx, const pe_bwd_batch *b, size_t *n_rows);
int pe_inbwd_f64(pe_row_update update, void *ctx, const pe_bwd_batch *b, size_t *n_rows);

#endif
