/* The body of embed_pos.c for one element type: float, double (float_types.h), and float
 * computed from float16 / bfloat16 token rows (half_types.h).
 * Before including: T (the element type), S and LD (the stored type of W and its load),
 * FN(name) (adds the _f32 / _f64 / _f16 / _bf16 suffix).
 * Uses only the headers below and what this header defines. */
#include "embed_pos.h"
#include "stream.h"
#include "simd.h"

#ifndef PE_EMBED_POS_TMPL_ONCE
#define PE_EMBED_POS_TMPL_ONCE
/* With one P row per position t (pos NULL, or pos shared by every sequence) the rows are
 * visited position-major, (t, b) for t < seq, b < nb: the P row of position t is then read once
 * per call and reused from L1 for the whole batch, instead of once per sequence (which cost
 * ~1.35x on one core: P fell out of L2 between sequences). The k-th row visited is output row
 * ep_row(k); without P, or with a position per token (packed rows), rows go in order. */
static inline size_t ep_row(size_t k, size_t nb, size_t seq, int major) {
    return major ? (k % nb) * seq + k / nb : k;
}

/* The P row that output row r adds (see embed_pos.h). */
static inline size_t ep_p_row(const int64_t *pos, size_t pos_len, size_t r, size_t seq) {
    return pos ? (size_t)pos[r % pos_len] : r % seq;
}

/* The offset in W (elements) of the token row that the k-th visited row reads. */
static inline size_t ep_w_row(const int64_t *ids, size_t k, size_t nb, size_t seq, int major,
                              size_t dim) {
    return (size_t)ids[ep_row(k, nb, seq, major)] * dim;
}

/* The first two lines of the W row at byte offset `at`: into every level when the output goes
 * through the cache (`keep`), with the NTA hint when it is streamed (the row is used once). */
static inline void ep_prefetch(const void *W, size_t at, int keep) {
    const char *pf = (const char *)W + at;
    if (keep) {
        PE_PREFETCH_T0(pf);
        PE_PREFETCH_T0(pf + 64);
    } else {
        PE_PREFETCH_R(pf);
        PE_PREFETCH_R(pf + 64);
    }
}
#endif

/* Rows lo .. hi of the flattened (nb * seq) output, through the cache; rows are prefetched into
 * every level (T0): with the NTA hint the cached path ran ~1.35x slower (32000 x 512). */
static inline PE_ALWAYS_INLINE void
FN(rows_cached_body)(T *restrict out, const S *restrict W, const int64_t *restrict ids,
                     const T *restrict P, const int64_t *restrict pos, size_t lo, size_t hi,
                     size_t nb, size_t seq, size_t pos_len, int major, size_t dim, T scale) {
    for (size_t k = lo; k < hi; k++) {
        if (k + PE_PREFETCH_DIST < hi)
            ep_prefetch(W, ep_w_row(ids, k + PE_PREFETCH_DIST, nb, seq, major, dim) * sizeof(S), 1);
        const size_t r = ep_row(k, nb, seq, major);
        const S *restrict w = W + (size_t)ids[r] * dim;
        T *restrict o = out + r * dim;
        if (P) {
            const T *restrict p = P + ep_p_row(pos, pos_len, r, seq) * dim;
            for (size_t j = 0; j < dim; j++) o[j] = LD(w[j]) * scale + p[j];
        } else {
            for (size_t j = 0; j < dim; j++) o[j] = LD(w[j]) * scale;
        }
    }
}

#define LV_NAME(s) FN(rows_cached##s)
#define LV_BODY FN(rows_cached_body)
#define LV_PARAMS (T *restrict out, const S *restrict W, const int64_t *restrict ids, \
    const T *restrict P, const int64_t *restrict pos, size_t lo, size_t hi, size_t nb, \
    size_t seq, size_t pos_len, int major, size_t dim, T scale)
#define LV_ARGS (out, W, ids, P, pos, lo, hi, nb, seq, pos_len, major, dim, scale)
#include "simd_levels.h"


/* The same rows streamed past the cache: each 16 bytes are computed and stored at once (the
 * SSE2 baseline is enough: this loop waits on memory, not on arithmetic). Rows are 16-byte
 * multiples and out is 16-byte aligned (checked by the caller). The same two rounded operations
 * per element as FN(rows_cached), so the same bits. */
static void FN(rows_stream)(T *out, const S *W, const int64_t *ids, const T *P,
                            const int64_t *pos, size_t lo, size_t hi, size_t nb, size_t seq,
                            size_t pos_len, int major, size_t dim, T scale) {
    enum { L = 16 / sizeof(T) };
    for (size_t k = lo; k < hi; k++) {
        if (k + PE_PREFETCH_DIST < hi)
            ep_prefetch(W, ep_w_row(ids, k + PE_PREFETCH_DIST, nb, seq, major, dim) * sizeof(S), 0);
        const size_t r = ep_row(k, nb, seq, major);
        const S *w = W + (size_t)ids[r] * dim;
        T *o = out + r * dim;
        const T *p = P ? P + ep_p_row(pos, pos_len, r, seq) * dim : NULL;
        for (size_t j = 0; j < dim; j += L) {
            PE_ALIGN16 T v[L];
            if (p)
                for (size_t l = 0; l < L; l++) v[l] = LD(w[j + l]) * scale + p[j + l];
            else
                for (size_t l = 0; l < L; l++) v[l] = LD(w[j + l]) * scale;
            pe_stream_16(o + j, v);
        }
    }
    PE_SFENCE(); /* each thread orders its own streamed stores */
}

int FN(pe_embed_positions)(T *out, const S *W, const int64_t *ids, const T *P,
                           const int64_t *pos, size_t nb, size_t seq, size_t pos_len, size_t dim,
                           T scale) {
    size_t n = pe_mul_size(nb, seq);
    size_t total = pe_mul_size(pe_mul_size(n, dim), sizeof(T));
    if (n == SIZE_MAX || total == SIZE_MAX) return PE_ERR_OVERFLOW;
    if (n == 0 || dim == 0) return PE_OK;
    if (pos && pos_len != seq && pos_len != n) return PE_ERR_VALUE;
    const int major = P && (!pos || pos_len == seq);
    const size_t row_bytes = dim * sizeof(T);
    /* position-major rows are not adjacent: stream only whole 64-byte lines */
    const int stream = PE_HAVE_STREAM && total >= pe_stream_min_bytes() &&
                       row_bytes % (major ? 64 : 16) == 0 &&
                       (uintptr_t)out % (major ? 64 : 16) == 0;
    int nt = pe_threads_for(total * 2, n);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        size_t lo = n * t / nth, hi = n * (t + 1) / nth;
        if (stream)
            FN(rows_stream)(out, W, ids, P, pos, lo, hi, nb, seq, pos_len, major, dim, scale);
        else FN(rows_cached)(out, W, ids, P, pos, lo, hi, nb, seq, pos_len, major, dim, scale);
    }
    return PE_OK;
}
