/* Fused token + position lookup (see embed_pos.h).
 *
 * Shapes: out (nb, seq, dim); W (num_rows, dim); ids (nb, seq); P (seq, dim).
 * NumPy's `W[ids] * s + pe[:n]` makes three passes over the output and allocates two
 * temporaries; here each output row is read from W once and written once (streamed past the
 * cache when large), and each P row read once for the batch, which is the whole gain.
 */
#include "embed_pos.h"
#include "stream.h"
#include "vec_clones.h"

#include <string.h>

/* With a position term the rows are visited position-major, (t, b) for t < seq, b < nb: the P
 * row of position t is then read once per call and reused from L1 for the whole batch, instead of
 * once per sequence (which cost ~1.35x on one core: P fell out of L2 between sequences). The
 * k-th row visited is output row ep_row(k); without P, rows go in order. */
static inline size_t ep_row(size_t k, size_t nb, size_t seq, const void *P) {
    return P ? (k % nb) * seq + k / nb : k;
}

#if PE_HAVE_STREAM
/* The streamed path: each vector is computed and stored past the cache at once (SSE2, the
 * baseline: this loop waits on memory, not on arithmetic). Rows are 16-byte multiples and out
 * is 16-byte aligned (checked by the caller). The same two rounded operations per element as
 * the plain loop, so the same bits. */
#define DEFINE_STREAM_ROWS(NAME, T, V, SET1, LOADU, MUL, ADD, STREAM)                           \
    static void NAME(T *out, const T *W, const int64_t *ids, const T *P, size_t lo, size_t hi,  \
                     size_t nb, size_t seq, size_t dim, T scale) {                              \
        const V s = SET1(scale);                                                                \
        const size_t L = 16 / sizeof(T);                                                        \
        for (size_t k = lo; k < hi; k++) {                                                      \
            if (k + PE_PREFETCH_DIST < hi) {                                                    \
                const T *pf = W + (size_t)ids[ep_row(k + PE_PREFETCH_DIST, nb, seq, P)] * dim;  \
                PE_PREFETCH_R(pf);                                                              \
                PE_PREFETCH_R(pf + 64 / sizeof(T));                                             \
            }                                                                                   \
            const size_t r = ep_row(k, nb, seq, P);                                             \
            const T *w = W + (size_t)ids[r] * dim;                                              \
            T *o = out + r * dim;                                                               \
            if (P) {                                                                            \
                const T *p = P + (k / nb) * dim;                                                \
                for (size_t j = 0; j < dim; j += L)                                             \
                    STREAM(o + j, ADD(MUL(LOADU(w + j), s), LOADU(p + j)));                     \
            } else {                                                                            \
                for (size_t j = 0; j < dim; j += L) STREAM(o + j, MUL(LOADU(w + j), s));        \
            }                                                                                   \
        }                                                                                       \
        PE_SFENCE(); /* each thread orders its own streamed stores */                           \
    }

DEFINE_STREAM_ROWS(stream_rows_f32, float, __m128, _mm_set1_ps, _mm_loadu_ps, _mm_mul_ps,
                   _mm_add_ps, _mm_stream_ps)
DEFINE_STREAM_ROWS(stream_rows_f64, double, __m128d, _mm_set1_pd, _mm_loadu_pd, _mm_mul_pd,
                   _mm_add_pd, _mm_stream_pd)
#endif

/* rows lo .. hi of the flattened (nb * seq) output, through the cache; rows are prefetched into
 * every level (T0): with the NTA hint the cached path ran ~1.35x slower (32000 x 512) */
#define DEFINE_ROWS(NAME, T)                                                                    \
    static PE_VEC_CLONES void NAME(T *restrict out, const T *restrict W,                        \
                                   const int64_t *restrict ids, const T *restrict P, size_t lo, \
                                   size_t hi, size_t nb, size_t seq, size_t dim, T scale) {     \
        for (size_t k = lo; k < hi; k++) {                                                      \
            if (k + PE_PREFETCH_DIST < hi) {                                                    \
                const T *pf = W + (size_t)ids[ep_row(k + PE_PREFETCH_DIST, nb, seq, P)] * dim;  \
                PE_PREFETCH_T0(pf);                                                             \
                PE_PREFETCH_T0(pf + 64 / sizeof(T));                                            \
            }                                                                                   \
            const size_t r = ep_row(k, nb, seq, P);                                             \
            const T *restrict w = W + (size_t)ids[r] * dim;                                     \
            T *restrict o = out + r * dim;                                                      \
            if (P) {                                                                            \
                const T *restrict p = P + (k / nb) * dim;                                       \
                for (size_t j = 0; j < dim; j++) o[j] = w[j] * scale + p[j];                    \
            } else {                                                                            \
                for (size_t j = 0; j < dim; j++) o[j] = w[j] * scale;                           \
            }                                                                                   \
        }                                                                                       \
    }

DEFINE_ROWS(embed_rows_f32, float)
DEFINE_ROWS(embed_rows_f64, double)

#if PE_HAVE_STREAM
#define PE_STREAM_CALL(SROWS, ...) SROWS(__VA_ARGS__)
#else
#define PE_STREAM_CALL(SROWS, ...) ((void)0)
#endif

#define DEFINE_EMBED_POS(NAME, T, ROWS, SROWS)                                                  \
    int NAME(T *out, const T *W, const int64_t *ids, const T *P, size_t nb, size_t seq,         \
             size_t dim, T scale) {                                                             \
        size_t n = pe_mul_size(nb, seq);                                                        \
        size_t total = pe_mul_size(pe_mul_size(n, dim), sizeof(T));                             \
        if (n == SIZE_MAX || total == SIZE_MAX) return PE_ERR_OVERFLOW;                         \
        if (n == 0 || dim == 0) return PE_OK;                                                   \
        const size_t row_bytes = dim * sizeof(T);                                               \
        /* position-major rows (with P) are not adjacent: stream only whole 64-byte lines */  \
        const int stream = PE_HAVE_STREAM && total >= pe_stream_min_bytes() &&                  \
                           row_bytes % (P ? 64 : 16) == 0 && (uintptr_t)out % (P ? 64 : 16) == 0; \
        int nt = pe_threads_for(total * 2, n);                                                  \
        (void)nt;                                                                               \
        PE_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))                   \
        for (int t = 0; t < nt; t++) {                                                          \
            size_t lo = n * (size_t)t / (size_t)nt, hi = n * (size_t)(t + 1) / (size_t)nt;      \
            if (stream)                                                                         \
                PE_STREAM_CALL(SROWS, out, W, ids, P, lo, hi, nb, seq, dim, scale);             \
            else                                                                                \
                ROWS(out, W, ids, P, lo, hi, nb, seq, dim, scale);                              \
        }                                                                                       \
        return PE_OK;                                                                           \
    }

DEFINE_EMBED_POS(pe_embed_positions_f32, float, embed_rows_f32, stream_rows_f32)
DEFINE_EMBED_POS(pe_embed_positions_f64, double, embed_rows_f64, stream_rows_f64)
