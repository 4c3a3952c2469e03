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
 * function over dim elements, with the per-row state it keeps); g may be overwritten.
 * The driver is one row ahead: `next` names the row the calling thread updates after this one
 * (-1: none) and carries the side job that sums that row's gradient into the thread's other
 * buffer. The update must run the job (pe_bwd_side) over consecutive ranges covering [0, dim)
 * once, in order; an elementwise update runs it part by part between its own parts
 * (pe_bwd_part, PE_BWD_CHUNK bytes a part), so the next row's gradient loads overlap this row's
 * arithmetic (Adam's divisions and square roots), and prefetches the next row's own arrays a
 * part at a time. Summing in parts gives the same bits: each element is summed in the same order.
 * Rows go to threads in any order, each row to exactly one thread, so an update that touches
 * only row r (and per-row counters of r) gives the same bits for every thread count.
 *
 * *n_rows gets the number of distinct rows in the batch other than padding_idx, frozen ones
 * included (an unfused step counts a step whenever it is not 0). PE_OK, or PE_ERR_NOMEM before
 * anything was updated. */
typedef struct pe_bwd_next {
    int64_t row; /* the row this thread updates next, -1: none */
    /* the side job: sums elements [e0, e1) of that row's gradient into its own buffer */
    void (*sum)(const struct pe_bwd_next *self, size_t e0, size_t e1);
    const void *job;
} pe_bwd_next;
typedef void (*pe_row_update)(void *ctx, int64_t row, void *g, const pe_bwd_next *next);

/* Run the side job over [e0, e1): an update calls it over consecutive ranges that cover
 * [0, dim) once, in order, between parts of its own work (the simplest: once over [0, dim)). */
static inline void pe_bwd_side(const pe_bwd_next *next, size_t e0, size_t e1) {
    if (next->sum) next->sum(next, e0, e1);
}

/* The next row's arrays, for an update to prefetch a part at a time while it works on its own
 * row (a burst of a whole row's prefetches stalls on the fill buffers: the earlier whole-row
 * prefetch spent 68% of an SGD step's time on it at dim 4096): the nw (num_rows, dim) arrays w
 * (NULL entries skipped) at row next->row. */
#ifndef PE_BWD_CHUNK
#define PE_BWD_CHUNK 512 /* bytes of a row an update handles between two prefetches */
#endif
typedef struct {
    const char *w[6];
    size_t esize[6];
    int nw;
} pe_bwd_pf;

/* Add the next row of `a` ((num_rows, dim) elements of esize bytes; NULL: none) to f. */
static inline void pe_bwd_pf_add(pe_bwd_pf *f, const void *a, size_t dim, size_t esize,
                                 const pe_bwd_next *next) {
    if (a && next->row >= 0 && f->nw < 6) {
        f->w[f->nw] = (const char *)a + (size_t)next->row * dim * esize;
        f->esize[f->nw++] = esize;
    }
}

/* f for nw arrays of the same element size. */
static inline pe_bwd_pf pe_bwd_pf_init(void *const *w, int nw, const pe_bwd_next *next,
                                       size_t dim, size_t esize) {
    pe_bwd_pf f;
    f.nw = 0;
    for (int a = 0; a < nw; a++) pe_bwd_pf_add(&f, w[a], dim, esize, next);
    return f;
}

/* One part of an update that works in parts: prefetch elements [e0, e1) of the next row's
 * arrays and run the side job over them. */
static inline void pe_bwd_part(const pe_bwd_pf *f, const pe_bwd_next *next, size_t e0,
                               size_t e1) {
    for (int a = 0; a < f->nw; a++)
        for (size_t b = e0 * f->esize[a]; b < e1 * f->esize[a]; b += 64)
            PE_PREFETCH_T0(f->w[a] + b);
    pe_bwd_side(next, e0, e1);
}

/* The whole of g summed before the update reads any of it (row-wise updates need the row's sum
 * of squares first), still in parts, so the next row's prefetches are spread over the sum. */
static inline void pe_bwd_parts_all(const pe_bwd_pf *f, const pe_bwd_next *next, size_t dim,
                                    size_t esize) {
    const size_t ch = PE_BWD_CHUNK / esize;
    for (size_t c0 = 0; c0 < dim; c0 += ch) pe_bwd_part(f, next, c0, dim - c0 < ch ? dim : c0 + ch);
}

typedef struct {
    const int64_t *ids;
    const void *dout;
    size_t n, dim;
    int64_t num_rows, padding_idx; /* padding_idx < 0: none */
    int scale_by_freq;
    const uint8_t *frozen;
} pe_bwd_batch;

/* The team pe_inbwd_* asks for on batch b (gradient elements of esize bytes), for an update that
 * sizes per-thread buffers of its own: the team it gets is no larger unless set_num_threads()
 * runs in between (from another Python thread: the GIL is released), so such an update still
 * needs a fallback for a thread number at or past this. */
int pe_inbwd_threads(const pe_bwd_batch *b, size_t esize);

int pe_inbwd_f32(pe_row_update update, void *ctx, const pe_bwd_batch *b, size_t *n_rows);
int pe_inbwd_f64(pe_row_update update, void *ctx, const pe_bwd_batch *b, size_t *n_rows);

#endif
