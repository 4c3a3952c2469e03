/* Deterministic scatter-add (the lookup's backward) and clearing of touched rows.
 *
 * Shapes: grad (num_rows, dim); ids (n,); dout (n, dim).
 * Plan (as FBGEMM / llm.c): a stable radix grouping of positions by id (sort.c), then every
 * distinct row is summed in the order its ids appear, in parallel over rows. Never atomics on
 * floats: any thread count gives the same bits as the serial loop and as np.add.at. A hot row
 * (Zipf: one id can be a tenth of the batch) is split into column blocks, which keeps the per
 * element order and so the bits, and keeps one thread from owning most of the work.
 */
#include "scatter.h"
#include "sort.h"
#include "stream.h"
#include "vec_clones.h"

#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

typedef struct {
    size_t seg;    /* segment index */
    size_t c0, c1; /* column range */
} work_item;

#define COL_BLOCK 64    /* elements: a hot row is split in blocks of a multiple of this */
#define STAGE_BYTES 2048 /* a fresh row is summed in L1 this many bytes at a time */

#define DEFINE_SCATTER(NAME, T)                                                                 \
    /* g += d (* sc) over one row; restrict: a grad row never overlaps grad_output (the glue    \
     * copies inputs that overlap the table's buffers) */                                       \
    static PE_VEC_CLONES void NAME##_add_row(T *restrict g, const T *restrict d, size_t dim) {  \
        for (size_t j = 0; j < dim; j++) g[j] += d[j];                                          \
    }                                                                                           \
    static PE_VEC_CLONES void NAME##_add_scaled(T *restrict g, const T *restrict d, size_t dim, \
                                                T sc) {                                         \
        for (size_t j = 0; j < dim; j++) g[j] += d[j] * sc;                                     \
    }                                                                                           \
    /* acc = 0 + d (* sc): what np.add.at leaves in a zero row, bit for bit (-0.0 gives +0.0) */ \
    static PE_VEC_CLONES void NAME##_first(T *restrict acc, const T *restrict d, size_t dim,    \
                                           T sc, int scale) {                                   \
        if (scale)                                                                              \
            for (size_t j = 0; j < dim; j++) acc[j] = (T)0 + d[j] * sc;                         \
        else                                                                                    \
            for (size_t j = 0; j < dim; j++) acc[j] = (T)0 + d[j];                              \
    }                                                                                           \
                                                                                                \
    /* One work item: columns c0 .. c1 of one segment's row. With `fresh` (streaming on) a row  \
     * that was untouched, so zero, is summed in L1 and streamed out: no read of the row, no    \
     * read-for-ownership of its lines. */                                                      \
    static void NAME##_item(T *grad, const int64_t *ids, const T *dout, size_t dim,             \
                            const size_t *perm, const size_t *seg, size_t m, size_t nseg,       \
                            work_item w, int scale, const uint8_t *fresh) {                     \
        enum { STAGE = STAGE_BYTES / sizeof(T) };                                               \
        size_t s0 = seg[w.seg], s1 = seg[w.seg + 1];                                            \
        T *g = grad + (size_t)ids[perm[s0]] * dim;                                              \
        const T sc = scale ? (T)(1.0 / (double)(s1 - s0)) : (T)1;                               \
        /* prefetch (into all levels) the head of the rows PE_PREFETCH_DIST positions ahead in  \
         * this order, and of the grad row PE_PREFETCH_DIST segments ahead; the hardware        \
         * prefetcher follows each row from there */                                            \
        for (size_t k = s0; k < s1 && k + PE_PREFETCH_DIST < m; k++) {                          \
            const T *pd = dout + perm[k + PE_PREFETCH_DIST] * dim + w.c0;                       \
            PE_PREFETCH_T0(pd);                                                                 \
            PE_PREFETCH_T0(pd + 64 / sizeof(T));                                                \
        }                                                                                       \
        if (w.seg + PE_PREFETCH_DIST < nseg && !(fresh && fresh[w.seg + PE_PREFETCH_DIST])) {   \
            T *pg = grad + (size_t)ids[perm[seg[w.seg + PE_PREFETCH_DIST]]] * dim + w.c0;       \
            PE_PREFETCH_W_T0(pg);                                                               \
            PE_PREFETCH_W_T0(pg + 64 / sizeof(T));                                              \
        }                                                                                       \
        if (fresh && fresh[w.seg]) {                                                            \
            PE_ALIGN64 T acc[STAGE];                                                            \
            for (size_t b0 = w.c0; b0 < w.c1; b0 += STAGE) {                                    \
                size_t len = w.c1 - b0 < (size_t)STAGE ? w.c1 - b0 : (size_t)STAGE;             \
                if (s1 < m) { /* the next segment's row, chunk by chunk: keeps it streaming */  \
                    const char *pn = (const char *)(dout + perm[s1] * dim + b0);                \
                    for (size_t b = 0; b < len * sizeof(T); b += 64) PE_PREFETCH_T0(pn + b);    \
                }                                                                               \
                NAME##_first(acc, dout + perm[s0] * dim + b0, len, sc, scale);                  \
                for (size_t k = s0 + 1; k < s1; k++) {                                          \
                    const T *d = dout + perm[k] * dim + b0;                                     \
                    if (scale) NAME##_add_scaled(acc, d, len, sc);                              \
                    else NAME##_add_row(acc, d, len);                                           \
                }                                                                               \
                pe_stream_copy(g + b0, acc, len * sizeof(T));                                   \
            }                                                                                   \
            return;                                                                             \
        }                                                                                       \
        for (size_t k = s0; k < s1; k++) {                                                      \
            const T *d = dout + perm[k] * dim + w.c0;                                           \
            if (scale) NAME##_add_scaled(g + w.c0, d, w.c1 - w.c0, sc);                         \
            else NAME##_add_row(g + w.c0, d, w.c1 - w.c0);                                      \
        }                                                                                       \
    }                                                                                           \
                                                                                                \
    int NAME(T *grad, uint8_t *mark, int64_t *touched, size_t *n_touched, const int64_t *ids,   \
             const T *dout, size_t n, size_t dim, int64_t num_rows, int64_t padding_idx,        \
             int scale_by_freq) {                                                               \
        size_t work = pe_mul_size(pe_mul_size(n, dim), 2 * sizeof(T));                          \
        int nt = pe_threads_for(work, n);                                                       \
        /* When the untouched rows this call writes are past what the cache keeps, they are     \
         * streamed out (see NAME##_item). That needs each row summed before it is written, so  \
         * the grouping, even on one thread; the in-order loop is faster when rows are cached   \
         * or mostly touched already (a second backward before zero_grad). */                   \
        const size_t row_bytes = dim * sizeof(T);                                               \
        const size_t grad_stream_min = pe_mul_size(pe_stream_min_bytes(), PE_STREAM_GRAD_FACTOR); \
        int stream = PE_HAVE_STREAM && row_bytes % 64 == 0 && (uintptr_t)grad % 64 == 0 &&      \
                     pe_mul_size(n, row_bytes) >= grad_stream_min;                              \
        if (stream) {                                                                           \
            /* distinct untouched rows: flag each once with mark 2, then put the zeros back */  \
            size_t nfresh = 0;                                                                  \
            for (size_t i = 0; i < n; i++) {                                                    \
                if (!mark[ids[i]] && ids[i] != padding_idx) {                                   \
                    mark[ids[i]] = 2;                                                           \
                    nfresh++;                                                                   \
                }                                                                               \
            }                                                                                   \
            for (size_t i = 0; i < n; i++)                                                      \
                if (mark[ids[i]] == 2) mark[ids[i]] = 0;                                        \
            stream = pe_mul_size(nfresh, row_bytes) >= grad_stream_min;                         \
        }                                                                                       \
        if (nt <= 1 && !scale_by_freq && !stream) {                                             \
            /* serial: the direct loop is already in order of appearance */                     \
            for (size_t i = 0; i < n; i++) {                                                    \
                int64_t r = ids[i];                                                             \
                if (r == padding_idx) continue;                                                 \
                if (i + PE_PREFETCH_DIST < n) {                                                 \
                    PE_PREFETCH_W(grad + (size_t)ids[i + PE_PREFETCH_DIST] * dim);              \
                }                                                                               \
                NAME##_add_row(grad + (size_t)r * dim, dout + i * dim, dim);                    \
                if (!mark[r]) {                                                                 \
                    mark[r] = 1;                                                                \
                    touched[(*n_touched)++] = r;                                                \
                }                                                                               \
            }                                                                                   \
            return PE_OK;                                                                       \
        }                                                                                       \
        size_t *perm = (size_t *)malloc((n ? n : 1) * sizeof(size_t));                          \
        size_t *seg = (size_t *)malloc((n + 1) * sizeof(size_t));                               \
        work_item *items = NULL;                                                                \
        uint8_t *fresh = NULL;                                                                  \
        size_t m = 0, nseg = 0, nitems = 0;                                                     \
        int rc = PE_ERR_NOMEM;                                                                  \
        if (perm && seg) rc = pe_group_ids(perm, seg, &m, &nseg, ids, n, num_rows, padding_idx); \
        if (rc == PE_OK) {                                                                      \
            /* a segment longer than m / (4 nt) is split into column blocks */                  \
            size_t hot = m / (4 * (size_t)nt) + 1;                                              \
            size_t cap = 0;                                                                     \
            for (size_t k = 0; k < nseg; k++) {                                                 \
                size_t len = seg[k + 1] - seg[k];                                               \
                size_t parts = len > hot ? (len + hot - 1) / hot : 1;                           \
                size_t maxparts = (dim + COL_BLOCK - 1) / COL_BLOCK;                            \
                if (parts > maxparts) parts = maxparts ? maxparts : 1;                          \
                cap += parts;                                                                   \
            }                                                                                   \
            items = (work_item *)malloc((cap ? cap : 1) * sizeof(work_item));                   \
            if (stream) fresh = (uint8_t *)malloc(nseg ? nseg : 1);                             \
            if (!items || (stream && !fresh)) rc = PE_ERR_NOMEM;                                \
            else {                                                                              \
                for (size_t k = 0; k < nseg; k++) {                                             \
                    size_t len = seg[k + 1] - seg[k];                                           \
                    size_t parts = len > hot ? (len + hot - 1) / hot : 1;                       \
                    size_t maxparts = (dim + COL_BLOCK - 1) / COL_BLOCK;                        \
                    if (parts > maxparts) parts = maxparts ? maxparts : 1;                      \
                    size_t blocks = (dim + COL_BLOCK - 1) / COL_BLOCK;                          \
                    for (size_t p = 0; p < parts; p++) {                                        \
                        size_t b0 = blocks * p / parts, b1 = blocks * (p + 1) / parts;          \
                        work_item w = {k, b0 * COL_BLOCK, b1 * COL_BLOCK};                      \
                        if (w.c1 > dim || p + 1 == parts) w.c1 = dim;                           \
                        items[nitems++] = w;                                                    \
                    }                                                                           \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
        if (rc == PE_OK) {                                                                      \
            for (size_t k = 0; k < nseg; k++) {                                                 \
                int64_t r = ids[perm[seg[k]]];                                                  \
                if (fresh) fresh[k] = !mark[r];                                                 \
                if (!mark[r]) {                                                                 \
                    mark[r] = 1;                                                                \
                    touched[(*n_touched)++] = r;                                                \
                }                                                                               \
            }                                                                                   \
            if (nt > 1 && nitems > 1) {                                                         \
                PE_PARALLEL_ITEMS(NAME##_item(grad, ids, dout, dim, perm, seg, m, nseg,         \
                                              items[it], scale_by_freq, fresh))                 \
            } else {                                                                            \
                for (size_t it = 0; it < nitems; it++)                                          \
                    NAME##_item(grad, ids, dout, dim, perm, seg, m, nseg, items[it],            \
                                scale_by_freq, fresh);                                          \
                if (fresh) PE_SFENCE();                                                         \
            }                                                                                   \
        }                                                                                       \
        free(fresh);                                                                            \
        free(items);                                                                            \
        free(perm);                                                                             \
        free(seg);                                                                              \
        return rc;                                                                              \
    }

/* Each thread fences its own streamed rows before the team ends. */
#ifdef _OPENMP
#define PE_PARALLEL_ITEMS(CALL)                                                \
    _Pragma("omp parallel num_threads(nt)")                                    \
    {                                                                          \
        _Pragma("omp for schedule(dynamic, 16)")                               \
        for (size_t it = 0; it < nitems; it++) { CALL; }                       \
        PE_SFENCE();                                                           \
    }
#else
#define PE_PARALLEL_ITEMS(CALL)                                                \
    do {                                                                       \
        for (size_t it = 0; it < nitems; it++) { CALL; }                       \
        PE_SFENCE();                                                           \
    } while (0);
#endif

DEFINE_SCATTER(pe_scatter_add_f32, float)
DEFINE_SCATTER(pe_scatter_add_f64, double)

/* Rows of at least 4 KiB in a clear past what the cache keeps (PE_STREAM_GRAD_FACTOR times
 * pe_stream_min_bytes) are zeroed with streaming stores: they skip the read-for-ownership of every
 * line, a third of memset's traffic. */
#define PE_ZERO_STREAM_ROW ((size_t)4096)

static void zero_row(char *dst, size_t row_bytes, int stream) {
#if PE_HAVE_STREAM
    if (stream) {
        __m128i z = _mm_setzero_si128();
        size_t b = 0;
        for (; b + 64 <= row_bytes; b += 64) {
            _mm_stream_si128((__m128i *)(dst + b), z);
            _mm_stream_si128((__m128i *)(dst + b + 16), z);
            _mm_stream_si128((__m128i *)(dst + b + 32), z);
            _mm_stream_si128((__m128i *)(dst + b + 48), z);
        }
        if (b < row_bytes) memset(dst + b, 0, row_bytes - b);
        return;
    }
#else
    (void)stream;
#endif
    memset(dst, 0, row_bytes);
}

void pe_zero_rows(void *grad, uint8_t *mark, const int64_t *rows, size_t n, size_t row_bytes) {
    char *g = (char *)grad;
    size_t total = pe_mul_size(n, row_bytes);
    /* grad rows start 64-byte aligned when row_bytes is a multiple of 64 (the buffer is) */
    int stream = row_bytes >= PE_ZERO_STREAM_ROW && row_bytes % 64 == 0 &&
                 ((uintptr_t)g % 64) == 0 &&
                 total >= pe_mul_size(pe_stream_min_bytes(), PE_STREAM_GRAD_FACTOR);
    int nt = pe_threads_for(total, n);
    /* each thread fences its own streaming stores */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        PE_OMP(omp for schedule(static))
        for (size_t k = 0; k < n; k++) {
            zero_row(g + (size_t)rows[k] * row_bytes, row_bytes, stream);
            mark[rows[k]] = 0;
        }
        if (stream) PE_SFENCE();
    }
    (void)nt;
}
