/* Forward lookup: out = W[ids], plus the id checks and max_norm renormalisation around it.
 *
 * Shapes: W (num_rows, dim); ids (n,) int64; out (n, dim).
 * The gather is a row memcpy with rows prefetched PE_PREFETCH_DIST ids ahead. When the output is
 * past what the cache keeps (pe_stream_min_bytes, common.h), non-temporal (streaming) stores skip
 * the read-for-ownership of each output line, so the copy moves 2 bytes per byte instead of 3 —
 * how it beats np.take on one thread.
 */
#include "gather.h"
#include "sort.h"
#include "stream.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>


int64_t pe_find_bad_id(const int64_t *ids, size_t n, int64_t num_rows) {
    /* Branch-free scan in blocks; only a block with a bad id is searched again. */
    const size_t B = 256;
    for (size_t s = 0; s < n; s += B) {
        size_t e = s + B < n ? s + B : n;
        int bad = 0;
        for (size_t i = s; i < e; i++) bad |= ((uint64_t)ids[i] >= (uint64_t)num_rows);
        if (PE_UNLIKELY(bad)) {
            for (size_t i = s; i < e; i++)
                if ((uint64_t)ids[i] >= (uint64_t)num_rows) return (int64_t)i;
        }
    }
    return -1;
}

int64_t pe_find_u64_over(const uint64_t *ids, size_t n, uint64_t limit) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] > limit) return (int64_t)i;
    return -1;
}

static void copy_rows(char *out, const char *W, const int64_t *ids, size_t lo, size_t hi,
                      size_t row_bytes, int stream) {
#if PE_HAVE_STREAM
    if (stream) {
        for (size_t i = lo; i < hi; i++) {
            if (i + PE_PREFETCH_DIST < hi) {
                const char *pf = W + (size_t)ids[i + PE_PREFETCH_DIST] * row_bytes;
                PE_PREFETCH_R(pf);
                PE_PREFETCH_R(pf + 64);
            }
            const char *s = W + (size_t)ids[i] * row_bytes;
            char *d = out + i * row_bytes;
            /* Only whole 64-byte lines are streamed: a partial line (a row that does not start
             * on a line, as in NumPy's 16-byte-aligned arrays) would be written to memory as a
             * read-modify-write. The partial head and tail go through the cache. */
            size_t head = (size_t)((64 - ((uintptr_t)d & 63)) & 63);
            if (head > row_bytes) head = row_bytes;
            size_t body = (row_bytes - head) & ~(size_t)63;
            memcpy(d, s, head);
            const __m128i *src = (const __m128i *)(s + head);
            __m128i *dst = (__m128i *)(d + head);
            for (size_t v = 0; v < body / 16; v += 4) {
                __m128i a = _mm_loadu_si128(src + v), b = _mm_loadu_si128(src + v + 1);
                __m128i c = _mm_loadu_si128(src + v + 2), e = _mm_loadu_si128(src + v + 3);
                _mm_stream_si128(dst + v, a);
                _mm_stream_si128(dst + v + 1, b);
                _mm_stream_si128(dst + v + 2, c);
                _mm_stream_si128(dst + v + 3, e);
            }
            memcpy(d + head + body, s + head + body, row_bytes - head - body);
        }
        PE_SFENCE();
        return;
    }
#else
    (void)stream;
#endif
    for (size_t i = lo; i < hi; i++) {
        if (i + PE_PREFETCH_DIST < hi) {
            /* into every cache level: the NTA hint made cached tables 1.5x slower */
            const char *pf = W + (size_t)ids[i + PE_PREFETCH_DIST] * row_bytes;
            PE_PREFETCH_T0(pf);
            PE_PREFETCH_T0(pf + 64);
        }
        memcpy(out + i * row_bytes, W + (size_t)ids[i] * row_bytes, row_bytes);
    }
}

int pe_gather(void *out, const void *W, const int64_t *ids, size_t n, size_t row_bytes) {
    size_t total = pe_mul_size(n, row_bytes);
    if (total == SIZE_MAX) return PE_ERR_OVERFLOW;
    int stream = PE_HAVE_STREAM && total >= pe_stream_min_bytes() && row_bytes % 16 == 0 &&
                 ((uintptr_t)out % 16) == 0;
    int nt = pe_threads_for(total, n);
    if (nt <= 1) { /* small lookups: not even an inactive team */
        copy_rows((char *)out, (const char *)W, ids, 0, n, row_bytes, stream);
        return PE_OK;
    }
    PE_OMP(omp parallel num_threads(nt))
    {
        size_t nth, t = pe_team(&nth);
        copy_rows((char *)out, (const char *)W, ids, n * t / nth, n * (t + 1) / nth, row_bytes,
                  stream);
    }
    return PE_OK;
}

#define PE_TMPL "gather_tmpl.h"
#define PE_TMPL_KEEP
#include "float_types.h"
#include "half_types.h"
