/* The loop skeleton shared by the optimizer kernels (adam_tmpl.h, sgd_tmpl.h): which thread
 * updates which elements, and in which spans. A template keeps only its per-element loop and
 * calls it once per span these helpers hand out.
 *
 * Spans depend on the data and on the thread's share only, and every element is updated by
 * exactly one span with the same arithmetic, so results are the same bits for any thread count.
 * Used inside `PE_OMP(omp parallel num_threads(nt) if (nt > 1))` (common.h):
 *
 *     size_t nth, t = pe_team(&nth);
 *     pe_dense_walk w = pe_dense_walk_init(frozen, nrows, dim, t, nth);
 *     for (size_t off, len; pe_dense_next(&w, &off, &len);) run(P + off, ..., len);
 *
 *     pe_rows_walk w = {.rows = rows, .frozen = frozen, .at = lo, .hi = hi, .merge = 1,
 *                       .row_bytes = dim * sizeof(T), .w = {P, M, V}, .nw = 3, .g = G};
 *     for (size_t r, len; pe_rows_next(&w, &r, &len);) run(P + r * dim, ..., len * dim);
 */
#ifndef PE_OPTIM_LOOP_H
#define PE_OPTIM_LOOP_H

#include "common.h"

/* Where thread k of nth starts in [0, n) elements (k = nth: n). Cut at multiples of 16 elements
 * so every thread starts on a vector boundary; the first cut is 0 and the last n. */
static inline size_t pe_cut16(size_t n, size_t k, size_t nth) {
    if (k == nth) return n;
    return (n / nth * k + n % nth * k / nth) & ~(size_t)15;
}

/* A thread's share of a dense update of (nrows, dim) elements: without frozen rows the elements
 * [pe_cut16(t), pe_cut16(t + 1)) in one span; with them the rows [nrows*t/nth, nrows*(t+1)/nth),
 * frozen rows skipped, each run of unfrozen rows one span. */
typedef struct {
    const uint8_t *frozen; /* (nrows,) 1 = leave the row alone; NULL: none */
    size_t dim;
    size_t at, end; /* what is left: rows with frozen, else elements */
} pe_dense_walk;

/* nrows * dim must fit in size_t (the caller checked). */
static inline pe_dense_walk pe_dense_walk_init(const uint8_t *frozen, size_t nrows, size_t dim,
                                               size_t t, size_t nth) {
    pe_dense_walk w = {frozen, dim, 0, 0};
    if (frozen) {
        w.at = nrows * t / nth;
        w.end = nrows * (t + 1) / nth;
    } else {
        w.at = pe_cut16(nrows * dim, t, nth);
        w.end = pe_cut16(nrows * dim, t + 1, nth);
    }
    return w;
}

/* The next span: its first element in *off, its length in elements in *len; 0 when none is left. */
static inline int pe_dense_next(pe_dense_walk *w, size_t *off, size_t *len) {
    if (!w->frozen) {
        if (w->end <= w->at) return 0;
        *off = w->at;
        *len = w->end - w->at;
        w->at = w->end;
        return 1;
    }
    while (w->at < w->end && w->frozen[w->at]) w->at++;
    size_t s = w->at;
    while (w->at < w->end && !w->frozen[w->at]) w->at++;
    if (w->at == s) return 0;
    *off = s * w->dim;
    *len = (w->at - s) * w->dim;
    return 1;
}

/* A thread's share [at, hi) of a rows list (strictly increasing ids), frozen rows skipped. With
 * `merge`, listed rows that follow each other (frequent ids are small and sorted) and are all
 * unfrozen go in one span; without it (per-row constants) every row is its own span.
 * The head of each row PE_PREFETCH_DIST entries ahead is prefetched in every array (the hardware
 * prefetcher follows the rest of a long row): those updated in place for writing, g for reading. */
typedef struct {
    const int64_t *rows;   /* (n_list,) */
    const uint8_t *frozen; /* (nrows,) or NULL */
    size_t at, hi;         /* list positions still to walk */
    int merge;
    size_t row_bytes;      /* dim * sizeof(T) */
    const void *w[3];      /* the arrays updated in place, w[0..nw) */
    int nw;
    const void *g;         /* the gradient */
    int compact;           /* g is (n_list, dim): list entry i's gradient is row i of g */
    size_t span_at;        /* out (pe_rows_next): list position of the span's first row */
} pe_rows_walk;

/* The element offset of the gradient of the span pe_rows_next just gave (first row r). */
static inline size_t pe_rows_goff(const pe_rows_walk *w, size_t r, size_t dim) {
    return (w->compact ? w->span_at : r) * dim;
}

static inline void pe_rows_prefetch(const pe_rows_walk *w, size_t q) {
    if (q + PE_PREFETCH_DIST >= w->hi) return;
    const size_t pf_bytes = w->row_bytes < 256 ? w->row_bytes : 256;
    size_t pf = (size_t)w->rows[q + PE_PREFETCH_DIST] * w->row_bytes;
    size_t pg = w->compact ? (q + PE_PREFETCH_DIST) * w->row_bytes : pf;
    for (size_t b = 0; b < pf_bytes; b += 64) {
        for (int a = 0; a < w->nw; a++) PE_PREFETCH_W((const char *)w->w[a] + pf + b);
        PE_PREFETCH_R((const char *)w->g + pg + b);
    }
}

/* The next span: its first row in *r, its length in rows in *len; 0 when none is left. */
static inline int pe_rows_next(pe_rows_walk *w, size_t *r, size_t *len) {
    for (; w->at < w->hi; w->at++) {
        const size_t i = w->at;
        pe_rows_prefetch(w, i);
        const size_t row = (size_t)w->rows[i];
        if (w->frozen && w->frozen[row]) continue;
        size_t n = 1;
        while (w->merge && i + n < w->hi && (size_t)w->rows[i + n] == row + n &&
               !(w->frozen && w->frozen[row + n])) {
            pe_rows_prefetch(w, i + n);
            n++;
        }
        w->at = i + n;
        w->span_at = i;
        *r = row;
        *len = n;
        return 1;
    }
    return 0;
}

#endif
