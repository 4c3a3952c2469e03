/* The body of scatter.c for one element type, included twice (float, double).
 * Before including: T (the element type), FN(name) (adds the _f32 / _f64 suffix).
 * Uses only the headers below and what this header defines.
 *
 * The steps of a scatter-add, one function each:
 *   1. scatter_should_stream: are the rows this call writes fresh (zero, untouched) and past what
 *      the cache keeps? Then each row is summed in L1 and streamed out whole.
 *   2. pe_group_ids (sort.c): positions grouped by id, stably (the order of appearance).
 *   3. scatter_plan: one work item per distinct row, a hot row split into column blocks.
 *   4. FN(sum_item): sum one item's rows in order of appearance, write (or stream) the result.
 * A serial call that streams nothing skips 2-4: FN(scatter_in_order) is already in order.
 */

#include "common.h"
#include "sort.h"
#include "stream.h"
#include "simd.h"

#include <stdlib.h>

#ifndef PE_SCATTER_TMPL_ONCE /* the type-independent steps, defined once */
#define PE_SCATTER_TMPL_ONCE

typedef struct {
    size_t seg;    /* segment index */
    size_t c0, c1; /* column range */
} pe_scatter_item;

#define COL_BLOCK 64     /* elements: a hot row is split in blocks of a multiple of this */
#define STAGE_BYTES 2048 /* a fresh row is summed in L1 this many bytes at a time */

/* Step 1. When the untouched rows this call writes are past what the cache keeps, they are
 * streamed out (see FN(sum_item)). That needs each row summed before it is written, so the
 * grouping, even on one thread; the in-order loop is faster when rows are cached or mostly
 * touched already (a second backward before zero_grad). mark is left as it was. */
static int scatter_should_stream(const void *grad, uint8_t *mark, const int64_t *ids, size_t n,
                                 size_t row_bytes, int64_t padding_idx) {
    const size_t grad_stream_min = pe_mul_size(pe_stream_min_bytes(), PE_STREAM_GRAD_FACTOR);
    if (!PE_HAVE_STREAM || row_bytes % 64 != 0 || (uintptr_t)grad % 64 != 0 ||
        pe_mul_size(n, row_bytes) < grad_stream_min)
        return 0;
    /* distinct untouched rows: flag each once with mark 2, then put the zeros back */
    size_t nfresh = 0;
    for (size_t i = 0; i < n; i++) {
        if (!mark[ids[i]] && ids[i] != padding_idx) {
            mark[ids[i]] = 2;
            nfresh++;
        }
    }
    for (size_t i = 0; i < n; i++)
        if (mark[ids[i]] == 2) mark[ids[i]] = 0;
    return pe_mul_size(nfresh, row_bytes) >= grad_stream_min;
}

/* How many column parts segment k gets: a segment longer than `hot` positions is split, in
 * whole COL_BLOCKs. */
static size_t scatter_parts(const size_t *seg, size_t k, size_t hot, size_t dim) {
    size_t len = seg[k + 1] - seg[k];
    size_t parts = len > hot ? (len + hot - 1) / hot : 1;
    size_t maxparts = (dim + COL_BLOCK - 1) / COL_BLOCK;
    if (parts > maxparts) parts = maxparts ? maxparts : 1;
    return parts;
}

/* Step 3. The work items of nseg segments of m positions for nt threads: a segment longer than
 * m / (4 nt) is split into column blocks, which keeps the per element order (so the bits) and
 * keeps one thread from owning most of the work. NULL when out of memory; free() it. */
static pe_scatter_item *scatter_plan(const size_t *seg, size_t nseg, size_t m, size_t dim, int nt,
                                     size_t *nitems) {
    size_t hot = m / (4 * (size_t)nt) + 1, cap = 0;
    for (size_t k = 0; k < nseg; k++) cap += scatter_parts(seg, k, hot, dim);
    pe_scatter_item *items = (pe_scatter_item *)malloc((cap ? cap : 1) * sizeof(pe_scatter_item));
    if (!items) return NULL;
    const size_t blocks = (dim + COL_BLOCK - 1) / COL_BLOCK;
    size_t ni = 0;
    for (size_t k = 0; k < nseg; k++) {
        size_t parts = scatter_parts(seg, k, hot, dim);
        for (size_t p = 0; p < parts; p++) {
            size_t b0 = blocks * p / parts, b1 = blocks * (p + 1) / parts;
            pe_scatter_item w = {k, b0 * COL_BLOCK, b1 * COL_BLOCK};
            if (w.c1 > dim || p + 1 == parts) w.c1 = dim;
            items[ni++] = w;
        }
    }
    *nitems = ni;
    return items;
}

#endif /* PE_SCATTER_TMPL_ONCE */

/* g += d (* sc) over one row; restrict: a grad row never overlaps grad_output (the glue copies
 * inputs that overlap the table's buffers) */
static inline PE_ALWAYS_INLINE void FN(add_row)(T *restrict g, const T *restrict d, size_t dim) {
    for (size_t j = 0; j < dim; j++) g[j] += d[j];
}

static inline PE_ALWAYS_INLINE void
FN(add_scaled)(T *restrict g, const T *restrict d, size_t dim, T sc) {
    for (size_t j = 0; j < dim; j++) g[j] += d[j] * sc;
}

/* acc = 0 + d (* sc): what np.add.at leaves in a zero row, bit for bit (-0.0 gives +0.0) */
static inline PE_ALWAYS_INLINE void
FN(first)(T *restrict acc, const T *restrict d, size_t dim, T sc, int scale) {
    if (scale)
        for (size_t j = 0; j < dim; j++) acc[j] = (T)0 + d[j] * sc;
    else
        for (size_t j = 0; j < dim; j++) acc[j] = (T)0 + d[j];
}

/* Serial, nothing streamed: the direct loop is already in order of appearance. */
static inline PE_ALWAYS_INLINE void
FN(scatter_in_order_body)(T *grad, const pe_touched *tr, const int64_t *ids, const T *dout,
                          size_t n, size_t dim, int64_t padding_idx) {
    for (size_t i = 0; i < n; i++) {
        int64_t r = ids[i];
        if (r == padding_idx) continue;
        if (i + PE_PREFETCH_DIST < n) PE_PREFETCH_W(grad + (size_t)ids[i + PE_PREFETCH_DIST] * dim);
        FN(add_row)(grad + (size_t)r * dim, dout + i * dim, dim);
        pe_touch(tr, r);
    }
}

#define LV_NAME(s) FN(scatter_in_order##s)
#define LV_BODY FN(scatter_in_order_body)
#define LV_PARAMS (T *grad, const pe_touched *tr, const int64_t *ids, const T *dout, size_t n, \
    size_t dim, int64_t padding_idx)
#define LV_ARGS (grad, tr, ids, dout, n, dim, padding_idx)
#include "simd_levels.h"


/* Step 4. One work item: columns c0 .. c1 of one segment's row. With `fresh` (streaming on) a row
 * that was untouched, so zero, is summed in L1 and streamed out: no read of the row, no
 * read-for-ownership of its lines. */
static inline PE_ALWAYS_INLINE void
FN(sum_item_body)(T *grad, const int64_t *ids, const T *dout, size_t dim, const size_t *perm,
                  const size_t *seg, size_t m, size_t nseg, pe_scatter_item w, int scale,
                  const uint8_t *fresh) {
    enum { STAGE = STAGE_BYTES / sizeof(T) };
    size_t s0 = seg[w.seg], s1 = seg[w.seg + 1];
    T *g = grad + (size_t)ids[perm[s0]] * dim;
    const T sc = scale ? (T)(1.0 / (double)(s1 - s0)) : (T)1;
    /* prefetch (into all levels) the head of the rows PE_PREFETCH_DIST positions ahead in this
     * order, and of the grad row PE_PREFETCH_DIST segments ahead; the hardware prefetcher
     * follows each row from there */
    for (size_t k = s0; k < s1 && k + PE_PREFETCH_DIST < m; k++) {
        const T *pd = dout + perm[k + PE_PREFETCH_DIST] * dim + w.c0;
        PE_PREFETCH_T0(pd);
        PE_PREFETCH_T0(pd + 64 / sizeof(T));
    }
    if (w.seg + PE_PREFETCH_DIST < nseg && !(fresh && fresh[w.seg + PE_PREFETCH_DIST])) {
        T *pg = grad + (size_t)ids[perm[seg[w.seg + PE_PREFETCH_DIST]]] * dim + w.c0;
        PE_PREFETCH_W_T0(pg);
        PE_PREFETCH_W_T0(pg + 64 / sizeof(T));
    }
    if (fresh && fresh[w.seg]) {
        PE_ALIGN64 T acc[STAGE];
        for (size_t b0 = w.c0; b0 < w.c1; b0 += STAGE) {
            size_t len = w.c1 - b0 < (size_t)STAGE ? w.c1 - b0 : (size_t)STAGE;
            if (s1 < m) { /* the next segment's row, chunk by chunk: keeps it streaming */
                const char *pn = (const char *)(dout + perm[s1] * dim + b0);
                for (size_t b = 0; b < len * sizeof(T); b += 64) PE_PREFETCH_T0(pn + b);
            }
            FN(first)(acc, dout + perm[s0] * dim + b0, len, sc, scale);
            for (size_t k = s0 + 1; k < s1; k++) {
                const T *d = dout + perm[k] * dim + b0;
                if (scale) FN(add_scaled)(acc, d, len, sc);
                else FN(add_row)(acc, d, len);
            }
            pe_stream_copy(g + b0, acc, len * sizeof(T));
        }
        return;
    }
    for (size_t k = s0; k < s1; k++) {
        const T *d = dout + perm[k] * dim + w.c0;
        if (scale) FN(add_scaled)(g + w.c0, d, w.c1 - w.c0, sc);
        else FN(add_row)(g + w.c0, d, w.c1 - w.c0);
    }
}

#define LV_NAME(s) FN(sum_item##s)
#define LV_BODY FN(sum_item_body)
#define LV_PARAMS (T *grad, const int64_t *ids, const T *dout, size_t dim, const size_t *perm, \
    const size_t *seg, size_t m, size_t nseg, pe_scatter_item w, int scale, const uint8_t *fresh)
#define LV_ARGS (grad, ids, dout, dim, perm, seg, m, nseg, w, scale, fresh)
#include "simd_levels.h"


int FN(pe_scatter_add)(T *grad, uint8_t *mark, int64_t *touched, size_t *n_touched,
                       const int64_t *ids, const T *dout, size_t n, size_t dim, int64_t num_rows,
                       int64_t padding_idx, int scale_by_freq) {
    const pe_touched tr = {mark, touched, n_touched};
    const int nt = pe_threads_for(pe_mul_size(pe_mul_size(n, dim), 2 * sizeof(T)), n);
    const int stream = scatter_should_stream(grad, mark, ids, n, dim * sizeof(T), padding_idx);
    if (nt <= 1 && !scale_by_freq && !stream) {
        FN(scatter_in_order)(grad, &tr, ids, dout, n, dim, padding_idx);
        return PE_OK;
    }
    size_t *perm = (size_t *)malloc((n ? n : 1) * sizeof(size_t));
    size_t *seg = (size_t *)malloc((n + 1) * sizeof(size_t));
    pe_scatter_item *items = NULL;
    uint8_t *fresh = NULL;
    size_t m = 0, nseg = 0, nitems = 0;
    int rc = PE_ERR_NOMEM;
    if (perm && seg) rc = pe_group_ids(perm, seg, &m, &nseg, ids, n, num_rows, padding_idx);
    if (rc == PE_OK) {
        items = scatter_plan(seg, nseg, m, dim, nt, &nitems);
        if (stream) fresh = (uint8_t *)malloc(nseg ? nseg : 1);
        if (!items || (stream && !fresh)) rc = PE_ERR_NOMEM;
    }
    if (rc == PE_OK) {
        /* nothing can fail from here: the touched list, then the sums */
        for (size_t k = 0; k < nseg; k++) {
            int64_t r = ids[perm[seg[k]]];
            if (fresh) fresh[k] = !mark[r];
            pe_touch(&tr, r);
        }
        /* each thread fences its own streamed rows before the team ends */
        PE_OMP(omp parallel num_threads(nt) if (nt > 1 && nitems > 1))
        {
            PE_OMP(omp for schedule(dynamic, 16))
            for (size_t it = 0; it < nitems; it++)
                FN(sum_item)(grad, ids, dout, dim, perm, seg, m, nseg, items[it], scale_by_freq,
                             fresh);
            if (fresh) PE_SFENCE();
        }
    }
    free(fresh);
    free(items);
    free(perm);
    free(seg);
    return rc;
}
