/* The row loops of float16 / bfloat16 tables (half_rows.h): the widening lookup and the rounding
 * write-back. The per-element work is half.h's; each loop is compiled for every vector level of
 * simd_levels.h (the conversions are integer selects the compiler vectorises; same bits on all),
 * and the float16 lookup also by hand with the vector conversion instruction (same bits again).
 * Shapes: W (num_rows, dim) 16-bit; out / src (n, dim) float32; ids / rows (n,). */
#include "half_rows.h"
#include "stream.h"

#include <stdint.h>

/* The table row PE_PREFETCH_DIST ids after i (NULL past hi): every lookup loop here prefetches
 * its first two lines, as pe_gather does. */
static inline PE_ALWAYS_INLINE const char *row_ahead(const uint16_t *W, const int64_t *ids,
                                                     size_t i, size_t hi, size_t dim) {
    return i + PE_PREFETCH_DIST < hi ? (const char *)(W + (size_t)ids[i + PE_PREFETCH_DIST] * dim)
                                     : NULL;
}

/* How many of a row's dim floats at d come before its first whole 64-byte line (the part a
 * streaming loop writes through the cache). */
static inline PE_ALWAYS_INLINE size_t line_head(const float *d, size_t dim) {
    const size_t head = ((64 - ((uintptr_t)d & 63)) & 63) / sizeof(float);
    return head < dim ? head : dim;
}

static inline PE_ALWAYS_INLINE void widen_body(float *restrict out, const uint16_t *restrict W,
                                               const int64_t *restrict ids, size_t lo, size_t hi,
                                               size_t dim, int kind) {
    for (size_t i = lo; i < hi; i++) {
        const char *pf = row_ahead(W, ids, i, hi, dim);
        if (pf) {
            PE_PREFETCH_T0(pf);
            PE_PREFETCH_T0(pf + 64);
        }
        pe_widen_row(out + i * dim, W + (size_t)ids[i] * dim, dim, kind);
    }
}

#define LV_NAME(s) widen##s
#define LV_BODY widen_body
#define LV_PARAMS (float *restrict out, const uint16_t *restrict W, const int64_t *restrict ids, \
    size_t lo, size_t hi, size_t dim, int kind)
#define LV_ARGS (out, W, ids, lo, hi, dim, kind)
#include "simd_levels.h"

#if PE_HAVE_STREAM
/* The bfloat16 lookup of rows lo .. hi with streaming stores (an output past what the cache keeps,
 * rows starting on 16 bytes: pe_gather_widen), as pe_gather writes float32 rows: a plain store
 * first reads the line it fills, so a 4096-wide lookup moved 5 bytes for every 2 it read from the
 * table and ran at 0.5-0.9x the float32 lookup. Widening a bfloat16 is a 16-bit shift, two SSE2
 * unpacks per 8 values, so each whole 64-byte output line is made in registers and streamed;
 * a row's partial head and tail lines go through the cache. float16 streams from the vector
 * conversions below (widen_f16_avx512 / _avx2); its integer conversion (no AVX2) is not: there
 * the arithmetic, not the stores, bounds it. */
static void widen_bf16_stream(float *restrict out, const uint16_t *restrict W,
                              const int64_t *restrict ids, size_t lo, size_t hi, size_t dim) {
    const __m128i zero = _mm_setzero_si128();
    for (size_t i = lo; i < hi; i++) {
        const char *pf = row_ahead(W, ids, i, hi, dim);
        if (pf) {
            PE_PREFETCH_R(pf);
            PE_PREFETCH_R(pf + 64);
        }
        float *d = out + i * dim;
        const uint16_t *s = W + (size_t)ids[i] * dim;
        const size_t head = line_head(d, dim);
        pe_widen_row(d, s, head, PE_HALF_BF16);
        size_t j = head;
        for (; j + 16 <= dim; j += 16) {
            const __m128i a = _mm_loadu_si128((const __m128i *)(s + j));
            const __m128i b = _mm_loadu_si128((const __m128i *)(s + j + 8));
            __m128i *o = (__m128i *)(d + j);
            _mm_stream_si128(o, _mm_unpacklo_epi16(zero, a)); /* value << 16 per 32-bit lane */
            _mm_stream_si128(o + 1, _mm_unpackhi_epi16(zero, a));
            _mm_stream_si128(o + 2, _mm_unpacklo_epi16(zero, b));
            _mm_stream_si128(o + 3, _mm_unpackhi_epi16(zero, b));
        }
        pe_widen_row(d + j, s + j, dim - j, PE_HALF_BF16);
    }
    PE_SFENCE(); /* each thread orders its own streamed stores */
}
#endif

#if PE_X86_DISPATCH
#include <immintrin.h>
/* The float16 lookup of rows lo .. hi with the hardware conversion (vcvtph2ps: AVX-512F, or F16C
 * beside AVX2), 16 or 8 values an instruction: the integer conversion of pe_f16_to_f32 runs at
 * about 4 values a nanosecond even in cache, which made a 4096-wide float16 lookup 0.6-0.8x the
 * float32 one. The conversion is exact for every finite value and infinity, as the integer
 * one; it quiets a signaling NaN (sets the mantissa's top bit), which NumPy keeps, so those
 * lanes get that bit cleared again: the same bits as pe_f16_to_f32 for all 65536 inputs at every
 * level (tests/test_half.py). Denormals-are-zero in MXCSR does not flush its subnormal inputs
 * (checked with DAZ set on this project's Xeon), so a caller's MXCSR cannot change the bits. */
/* One block of values at d (STEP of them) from s: converted, signaling NaNs re-signalled,
 * stored (streamed when `stream`: d is then on a 64-byte line). */
PE_TARGET_AVX512 static inline PE_ALWAYS_INLINE void f16_block_avx512(float *d, const uint16_t *s,
                                                                      int stream) {
    const __m256i h = _mm256_loadu_si256((const __m256i *)s);
    const __m512i h32 = _mm512_cvtepu16_epi32(h);
    const __mmask16 nan =
        _mm512_cmpgt_epu32_mask(_mm512_and_si512(h32, _mm512_set1_epi32(0x7fff)),
                                _mm512_set1_epi32(0x7c00));
    const __mmask16 snan = _mm512_mask_testn_epi32_mask(nan, h32, _mm512_set1_epi32(0x200));
    const __m512i f = _mm512_castps_si512(_mm512_cvtph_ps(h));
    const __m512i v = _mm512_mask_xor_epi32(f, snan, f, _mm512_set1_epi32(0x400000));
    if (stream)
        _mm512_stream_si512((void *)d, v);
    else
        _mm512_storeu_si512(d, v);
}

__attribute__((target("avx2,f16c"))) static inline PE_ALWAYS_INLINE void
f16_block_avx2(float *d, const uint16_t *s, int stream) {
    const __m128i h = _mm_loadu_si128((const __m128i *)s);
    const __m256i h32 = _mm256_cvtepu16_epi32(h);
    const __m256i nan = _mm256_cmpgt_epi32(_mm256_and_si256(h32, _mm256_set1_epi32(0x7fff)),
                                           _mm256_set1_epi32(0x7c00));
    const __m256i sig = _mm256_cmpeq_epi32(_mm256_and_si256(h32, _mm256_set1_epi32(0x200)),
                                           _mm256_setzero_si256());
    const __m256i fix = _mm256_and_si256(_mm256_and_si256(nan, sig), _mm256_set1_epi32(0x400000));
    const __m256i v = _mm256_xor_si256(_mm256_castps_si256(_mm256_cvtph_ps(h)), fix);
    if (stream)
        _mm256_stream_si256((__m256i *)d, v);
    else
        _mm256_storeu_si256((__m256i *)d, v);
}

/* Rows lo .. hi, STEP values a BLOCK call (the integer conversion for a row's partial head line
 * when streaming, and for its tail) */
#define PE_F16_ROWS(STEP, BLOCK)                                                               \
    for (size_t i = lo; i < hi; i++) {                                                         \
        const char *pf = row_ahead(W, ids, i, hi, dim);                                        \
        if (pf) {                                                                              \
            PE_PREFETCH_T0(pf);                                                                \
            PE_PREFETCH_T0(pf + 64);                                                           \
        }                                                                                      \
        float *restrict d = out + i * dim;                                                     \
        const uint16_t *restrict s = W + (size_t)ids[i] * dim;                                 \
        size_t j = 0;                                                                          \
        if (stream) /* to the first whole line: those are streamed */                         \
            for (const size_t head = line_head(d, dim); j < head; j++)                        \
                d[j] = pe_f16_to_f32(s[j]);                                                    \
        for (; j + (STEP) <= dim; j += (STEP)) BLOCK(d + j, s + j, stream);                    \
        for (; j < dim; j++) d[j] = pe_f16_to_f32(s[j]);                                       \
    }                                                                                          \
    if (stream) _mm_sfence(); /* each thread orders its own streamed stores */

PE_TARGET_AVX512 static void widen_f16_avx512(float *restrict out, const uint16_t *restrict W,
                                              const int64_t *restrict ids, size_t lo, size_t hi,
                                              size_t dim, int stream) {
    PE_F16_ROWS(16, f16_block_avx512)
}

__attribute__((target("avx2,f16c"))) static void
widen_f16_avx2(float *restrict out, const uint16_t *restrict W, const int64_t *restrict ids,
               size_t lo, size_t hi, size_t dim, int stream) {
    PE_F16_ROWS(8, f16_block_avx2)
}
#undef PE_F16_ROWS

/* 2: widen_f16_avx512, 1: widen_f16_avx2, 0: neither (the level in use, and F16C for AVX2) */
static int f16_hw(void) {
    const int level = pe_simd_level();
    if (level == PE_SIMD_AVX512) return 2;
    return level == PE_SIMD_AVX2 && __builtin_cpu_supports("f16c") ? 1 : 0;
}
#endif

static inline PE_ALWAYS_INLINE void narrow_body(uint16_t *restrict W, const float *restrict src,
                                                const int64_t *restrict rows, size_t lo, size_t hi,
                                                size_t dim, int kind, int mode, uint64_t seed,
                                                uint64_t step) {
    for (size_t i = lo; i < hi; i++) {
        const int64_t r = rows ? rows[i] : (int64_t)i;
        pe_narrow_row(W + (size_t)r * dim, src + i * dim, dim, kind, mode, seed, step, r);
    }
}

#define LV_NAME(s) narrow##s
#define LV_BODY narrow_body
#define LV_PARAMS (uint16_t *restrict W, const float *restrict src, const int64_t *restrict rows, \
    size_t lo, size_t hi, size_t dim, int kind, int mode, uint64_t seed, uint64_t step)
#define LV_ARGS (W, src, rows, lo, hi, dim, kind, mode, seed, step)
#include "simd_levels.h"

int pe_gather_widen(float *out, const uint16_t *W, const int64_t *ids, size_t n, size_t dim,
                    int kind) {
    size_t total = pe_mul_size(pe_mul_size(n, dim), sizeof(float) + sizeof(uint16_t));
    if (total == SIZE_MAX) return PE_ERR_OVERFLOW;
    if (kind != PE_HALF_F16 && kind != PE_HALF_BF16) return PE_ERR_VALUE;
    /* every row starts on 16 bytes when out does and a row is a multiple of 16 bytes; from twice
     * the float32 gather's threshold: at 32 MiB of bfloat16 output (the threshold 30 MiB)
     * streaming was 0.72-0.89x the cached stores, at 64 MiB 1.13-1.41x, at 128 MiB 1.7-2.2x
     * (one thread, 480 MiB L3, uniform and Zipf ids) */
    const int stream = PE_HAVE_STREAM && dim % 4 == 0 && (uintptr_t)out % 16 == 0 &&
                       pe_mul_size(n, dim * sizeof(float)) / 2 >= pe_stream_min_bytes();
#if PE_X86_DISPATCH
    const int hw = kind == PE_HALF_F16 ? f16_hw() : 0;
#endif
    int nt = pe_threads_for(total, n);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        const size_t lo = n * t / nth, hi = n * (t + 1) / nth;
#if PE_X86_DISPATCH
        if (hw) {
            if (hw == 2)
                widen_f16_avx512(out, W, ids, lo, hi, dim, stream);
            else
                widen_f16_avx2(out, W, ids, lo, hi, dim, stream);
        } else
#endif
#if PE_HAVE_STREAM
        if (stream && kind == PE_HALF_BF16)
            widen_bf16_stream(out, W, ids, lo, hi, dim);
        else
#endif
            widen(out, W, ids, lo, hi, dim, kind);
    }
    (void)stream;
    return PE_OK;
}

int pe_narrow_rows(uint16_t *W, const float *src, const int64_t *rows, size_t n, size_t dim,
                   int kind, int mode, uint64_t seed, uint64_t step) {
    /* stochastic rounding hashes every element: count it as a few more bytes of work */
    size_t per = mode == PE_ROUND_STOCHASTIC ? 32 : sizeof(float) + sizeof(uint16_t);
    size_t total = pe_mul_size(pe_mul_size(n, dim), per);
    if (total == SIZE_MAX) return PE_ERR_OVERFLOW;
    if ((kind != PE_HALF_F16 && kind != PE_HALF_BF16) ||
        (mode != PE_ROUND_NEAREST && mode != PE_ROUND_STOCHASTIC))
        return PE_ERR_VALUE;
    int nt = pe_threads_for(total, n);
    (void)nt; /* unused in a serial build */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        size_t nth, t = pe_team(&nth);
        narrow(W, src, rows, n * t / nth, n * (t + 1) / nth, dim, kind, mode, seed, step);
    }
    return PE_OK;
}
