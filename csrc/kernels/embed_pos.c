/* Fused token + position lookup (see embed_pos.h).
 *
 * Shapes: out (nb, seq, dim); W (num_rows, dim); ids (nb, seq); P (seq, dim).
 * NumPy's `W[ids] * s + pe[:n]` makes three passes over the output and allocates two
 * temporaries; here each output row is read from W and P once and written once (streamed past
 * the cache when large), which is the whole gain.
 */
#include "embed_pos.h"
#include "vec_clones.h"

#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define PE_HAVE_STREAM 1
#define PE_SFENCE() _mm_sfence()
#else
#define PE_HAVE_STREAM 0
#define PE_SFENCE() ((void)0)
#endif

/* Outputs above this many bytes bypass the cache (as gather.c). */
#define PE_STREAM_MIN_BYTES ((size_t)4 << 20)

static inline void stream_row(void *dst, const void *src, size_t bytes) {
#if PE_HAVE_STREAM
    const __m128i *s = (const __m128i *)src;
    __m128i *d = (__m128i *)dst;
    for (size_t v = 0; v < bytes / 16; v++) _mm_stream_si128(d + v, _mm_load_si128(s + v));
#else
    memcpy(dst, src, bytes);
#endif
}

/* rows lo .. hi of the flattened (nb * seq) output. With `stage` (an aligned row of scratch)
 * each row is computed in L1 and streamed out. */
#define DEFINE_ROWS(NAME, T)                                                                     \
    static PE_VEC_CLONES void NAME(T *restrict out, const T *restrict W,                         \
                                   const int64_t *restrict ids, const T *restrict P, size_t lo,  \
                                   size_t hi, size_t seq, size_t dim, T scale,                   \
                                   T *restrict stage) {                                          \
        for (size_t r = lo; r < hi; r++) {                                                       \
            if (r + PE_PREFETCH_DIST < hi) {                                                     \
                const T *pf = W + (size_t)ids[r + PE_PREFETCH_DIST] * dim;                       \
                PE_PREFETCH_R(pf);                                                               \
                PE_PREFETCH_R(pf + 64 / sizeof(T));                                              \
            }                                                                                    \
            const T *restrict w = W + (size_t)ids[r] * dim;                                      \
            T *restrict o = stage ? stage : out + r * dim;                                       \
            if (P) {                                                                             \
                const T *restrict p = P + (r % seq) * dim;                                       \
                for (size_t j = 0; j < dim; j++) o[j] = w[j] * scale + p[j];                     \
            } else {                                                                             \
                for (size_t j = 0; j < dim; j++) o[j] = w[j] * scale;                            \
            }                                                                                    \
            if (stage) stream_row(out + r * dim, stage, dim * sizeof(T));                        \
        }                                                                                        \
        if (stage) PE_SFENCE(); /* each thread orders its own streamed stores */                \
    }

DEFINE_ROWS(embed_rows_f32, float)
DEFINE_ROWS(embed_rows_f64, double)

#define DEFINE_EMBED_POS(NAME, T, ROWS)                                                          \
    int NAME(T *out, const T *W, const int64_t *ids, const T *P, size_t nb, size_t seq,         \
             size_t dim, T scale) {                                                              \
        size_t n = pe_mul_size(nb, seq);                                                         \
        size_t total = pe_mul_size(pe_mul_size(n, dim), sizeof(T));                             \
        if (n == SIZE_MAX || total == SIZE_MAX) return PE_ERR_OVERFLOW;                          \
        if (n == 0 || dim == 0) return PE_OK;                                                    \
        const size_t row_bytes = dim * sizeof(T);                                                \
        const int stream = PE_HAVE_STREAM && total >= PE_STREAM_MIN_BYTES &&                     \
                           row_bytes % 16 == 0 && (uintptr_t)out % 16 == 0;                      \
        int nt = pe_threads_for(total * 2, n);                                                   \
        size_t stride = (row_bytes + 63) / 64 * 64;                                              \
        char *stage = NULL;                                                                      \
        if (stream) {                                                                            \
            stage = (char *)pe_aligned_calloc(pe_mul_size((size_t)nt, stride));                  \
            if (!stage) return PE_ERR_NOMEM;                                                     \
        }                                                                                        \
        (void)nt;                                                                                \
        PE_OMP(omp parallel for num_threads(nt) schedule(static) if (nt > 1))    \
        for (int t = 0; t < nt; t++) {                                                           \
            size_t lo = n * (size_t)t / (size_t)nt, hi = n * (size_t)(t + 1) / (size_t)nt;       \
            ROWS(out, W, ids, P, lo, hi, seq, dim, scale,                                        \
                 stage ? (T *)(stage + (size_t)t * stride) : NULL);                              \
        }                                                                                        \
        pe_aligned_free(stage);                                                                  \
        return PE_OK;                                                                            \
    }

DEFINE_EMBED_POS(pe_embed_positions_f32, float, embed_rows_f32)
DEFINE_EMBED_POS(pe_embed_positions_f64, double, embed_rows_f64)
