/* The body of inbwd.c for one element type (T, FN: float_types.h). */
#include "inbwd.h"
#include "sort.h"

#include <stdlib.h>

/* All of row d into L2, one row ahead of the sum that reads it. */
static inline void FN(prefetch_dout)(const T *d, size_t dim) {
    for (size_t b = 0; b < dim * sizeof(T); b += 64) PE_PREFETCH_T1((const char *)d + b);
}

/* acc = 0 + d0 (* sc), then acc += dk (* sc) in order: scatter_tmpl.h's arithmetic, bit for bit.
 * `after`: the first row the thread sums next (NULL: none), prefetched with the last of these. */
static inline void FN(sum_segment)(T *restrict acc, const T *dout, const size_t *perm, size_t s0,
                                   size_t s1, size_t dim, int scale, const T *after) {
    const T sc = scale ? (T)(1.0 / (double)(s1 - s0)) : (T)1;
    for (size_t k = s0; k < s1; k++) {
        const T *restrict d = dout + perm[k] * dim;
        const T *next = k + 1 < s1 ? dout + perm[k + 1] * dim : after;
        if (next) FN(prefetch_dout)(next, dim);
        if (k == s0 && scale)
            for (size_t j = 0; j < dim; j++) acc[j] = (T)0 + d[j] * sc;
        else if (k == s0)
            for (size_t j = 0; j < dim; j++) acc[j] = (T)0 + d[j];
        else if (scale)
            for (size_t j = 0; j < dim; j++) acc[j] += d[j] * sc;
        else
            for (size_t j = 0; j < dim; j++) acc[j] += d[j];
    }
}

int FN(pe_inbwd)(pe_row_update update, void *ctx, const pe_bwd_batch *b, size_t *n_rows) {
    const size_t n = b->n, dim = b->dim;
    const T *dout = (const T *)b->dout;
    const int64_t *ids = b->ids;
    *n_rows = 0;
    const int nt = pe_threads_for(pe_mul_size(pe_mul_size(n, dim), 2 * sizeof(T)), n);
    /* one dim-long buffer per thread, each on its own cache lines */
    const size_t stride = (dim * sizeof(T) + 63) / 64 * 64;
    size_t *perm = (size_t *)malloc((n ? n : 1) * sizeof(size_t));
    size_t *seg = (size_t *)malloc((n + 1) * sizeof(size_t));
    char *bufs = (char *)pe_aligned_calloc(pe_mul_size(stride ? stride : 64, (size_t)nt));
    size_t m = 0, nseg = 0;
    int rc = PE_ERR_NOMEM;
    if (perm && seg && bufs)
        rc = pe_group_ids(perm, seg, &m, &nseg, ids, n, b->num_rows, b->padding_idx);
    if (rc == PE_OK) {
        *n_rows = nseg;
        PE_OMP(omp parallel num_threads(nt) if (nt > 1 && nseg > 1))
        {
            T *acc = (T *)(bufs + pe_team(NULL) * stride);
            int64_t row = -1;
            size_t k_at = 0;
            /* each thread walks its rows one ahead, so the update can prefetch the next one */
            PE_OMP(omp for schedule(dynamic, 8))
            for (size_t k = 0; k < nseg; k++) {
                int64_t r = ids[perm[seg[k]]];
                if (b->frozen && b->frozen[r]) continue;
                if (row >= 0) {
                    FN(sum_segment)(acc, dout, perm, seg[k_at], seg[k_at + 1], dim,
                                    b->scale_by_freq, dout + perm[seg[k]] * dim);
                    update(ctx, row, acc, r);
                }
                row = r;
                k_at = k;
            }
            if (row >= 0) {
                FN(sum_segment)(acc, dout, perm, seg[k_at], seg[k_at + 1], dim, b->scale_by_freq,
                                NULL);
                update(ctx, row, acc, -1);
            }
        }
    }
    pe_aligned_free(bufs);
    free(perm);
    free(seg);
    return rc;
}
