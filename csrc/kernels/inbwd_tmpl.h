/* The body of inbwd.c for one element type (T, FN: float_types.h). */
#include "inbwd.h"
#include "simd.h"
#include "sort.h"

#include <stdlib.h>

/* acc = 0 + d (* sc) (first) or acc += d (* sc), over dim elements; each 64-byte block also
 * prefetches the same block of `next` (NULL: none), so the next row's loads are spread over this
 * row's work instead of issued in one burst that stalls on the fill buffers. */
#define PE_ADD_LOOP(EXPR)                                                        \
    do {                                                                         \
        size_t j0 = 0;                                                           \
        for (; j0 + PE_BLK <= dim; j0 += PE_BLK) {                               \
            if (next) PE_PREFETCH_T1(next + j0);                                 \
            for (size_t j = j0; j < j0 + PE_BLK; j++) acc[j] = EXPR;             \
        }                                                                        \
        if (next && j0 < dim) PE_PREFETCH_T1(next + j0);                         \
        for (size_t j = j0; j < dim; j++) acc[j] = EXPR;                         \
    } while (0)
#define PE_BLK (64 / sizeof(T))
static inline PE_ALWAYS_INLINE void FN(add_body)(T *restrict acc, const T *restrict d,
                                                 const T *next, size_t dim, T sc, int how) {
    switch (how) {
    case 0: PE_ADD_LOOP((T)0 + d[j]); break;
    case 1: PE_ADD_LOOP((T)0 + d[j] * sc); break;
    case 2: PE_ADD_LOOP(acc[j] + d[j]); break;
    default: PE_ADD_LOOP(acc[j] + d[j] * sc); break;
    }
}
#undef PE_BLK
#undef PE_ADD_LOOP

/* FN(add_row): FN(add_body) for each vector level (simd_levels.h) */
#define LV_NAME(s) FN(add_row##s)
#define LV_BODY FN(add_body)
#define LV_PARAMS (T *restrict acc, const T *restrict d, const T *next, size_t dim, T sc, int how)
#define LV_ARGS (acc, d, next, dim, sc, how)
#include "simd_levels.h"

/* acc = 0 + d0 (* sc), then acc += dk (* sc) in order: scatter_tmpl.h's arithmetic, bit for bit,
 * over elements [e0, e1) of the gradient of segment [s0, s1) of the grouped batch. Pieces are
 * visited range by range, and each prefetches the piece PE_SIDE_DIST further on in that order (in
 * a later range once the segment's rows run out). Whole rows (e0 = 0, e1 = dim) for the first row
 * of a thread; the rest is the side job of the update before (inbwd.h), a range at a time. */
#define PE_SIDE_DIST 12
typedef void (*FN(add_fn))(T *restrict, const T *restrict, const T *, size_t, T, int);
static void FN(sum_range)(FN(add_fn) add, T *restrict acc, const T *dout, const size_t *perm,
                          size_t s0, size_t s1, size_t dim, int scale, size_t e0, size_t e1) {
    const T sc = scale ? (T)(1.0 / (double)(s1 - s0)) : (T)1;
    const size_t len = e1 - e0, ns = s1 - s0;
    /* pieces are visited range by range (the update's parts are of equal length but the last) */
    const size_t q0 = e0 / (len ? len : 1) * ns;
    for (size_t k = s0; k < s1; k++) {
        const size_t qd = q0 + (k - s0) + PE_SIDE_DIST, at = qd / ns * len;
        const T *pf = at + len <= dim ? dout + perm[s0 + qd % ns] * dim + at : NULL;
        add(acc + e0, dout + perm[k] * dim + e0, pf, len, sc, (k == s0 ? 0 : 2) + (scale ? 1 : 0));
    }
}

typedef struct {
    FN(add_fn) add;
    T *acc;
    const T *dout;
    const size_t *perm;
    size_t s0, s1, dim;
    int scale;
    const T *ahead; /* the first row of the segment after, most likely this thread's next */
} FN(side);

static void FN(side_sum)(const pe_bwd_next *nx, size_t e0, size_t e1) {
    const FN(side) *j = (const FN(side) *)nx->job;
    /* the pieces sum_range prefetches are a range ahead within the segment: the start of the
     * next segment's first row would come in unasked, so it is fetched a row ahead here */
    if (j->ahead)
        for (size_t b = e0 * sizeof(T); b < e1 * sizeof(T); b += 64)
            PE_PREFETCH_T1((const char *)j->ahead + b);
    FN(sum_range)(j->add, j->acc, j->dout, j->perm, j->s0, j->s1, j->dim, j->scale, e0, e1);
}

int FN(pe_inbwd)(pe_row_update update, void *ctx, const pe_bwd_batch *b, size_t *n_rows) {
    const size_t n = b->n, dim = b->dim;
    const T *dout = (const T *)b->dout;
    const int64_t *ids = b->ids;
    *n_rows = 0;
    const FN(add_fn) add = FN(add_row_pick)();
    const int nt = pe_inbwd_threads(b, sizeof(T));
    /* two dim-long buffers per thread, each on its own cache lines: the row being updated and
     * the next one, summed by the update while it works (inbwd.h's side job) */
    const size_t stride = (dim * sizeof(T) + 63) / 64 * 64;
    size_t *perm = (size_t *)malloc((n ? n : 1) * sizeof(size_t));
    size_t *seg = (size_t *)malloc((n + 1) * sizeof(size_t));
    char *bufs = (char *)pe_aligned_calloc(pe_mul_size(stride ? stride : 64, 2 * (size_t)nt));
    size_t m = 0, nseg = 0;
    int rc = PE_ERR_NOMEM;
    if (perm && seg && bufs)
        rc = pe_group_ids(perm, seg, &m, &nseg, ids, n, b->num_rows, b->padding_idx);
    if (rc == PE_OK) {
        *n_rows = nseg;
        PE_OMP(omp parallel num_threads(nt) if (nt > 1 && nseg > 1))
        {
            T *acc[2];
            acc[0] = (T *)(bufs + 2 * pe_team(NULL) * stride);
            acc[1] = (T *)((char *)acc[0] + stride);
            int cur = 0;
            int64_t row = -1;
            /* each thread updates its rows one behind: the update of a row sums the next one */
            PE_OMP(omp for schedule(dynamic, 8))
            for (size_t k = 0; k < nseg; k++) {
                int64_t r = ids[perm[seg[k]]];
                if (b->frozen && b->frozen[r]) continue;
                if (row < 0) {
                    FN(sum_range)(add, acc[cur], dout, perm, seg[k], seg[k + 1], dim,
                                  b->scale_by_freq, 0, dim);
                } else {
                    const FN(side) job = {add, acc[cur ^ 1], dout, perm, seg[k], seg[k + 1], dim,
                                          b->scale_by_freq,
                                          k + 1 < nseg ? dout + perm[seg[k + 1]] * dim : NULL};
                    const pe_bwd_next nx = {r, FN(side_sum), &job};
                    update(ctx, row, acc[cur], &nx);
                    cur ^= 1;
                }
                row = r;
            }
            if (row >= 0) {
                const pe_bwd_next nx = {-1, NULL, NULL};
                update(ctx, row, acc[cur], &nx);
            }
        }
    }
    pe_aligned_free(bufs);
    free(perm);
    free(seg);
    return rc;
}
