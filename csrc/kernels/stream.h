/* Non-temporal ("streaming") stores, shared by the kernels that write large outputs.
 *
 * A streaming store skips the read-for-ownership of the line it fills, so a copy moves 2 bytes per
 * byte instead of 3, but leaves nothing in cache: kernels use it only from pe_stream_min_bytes()
 * of output on (common.h). SSE2 (the x86-64 baseline) is enough: these loops wait on memory.
 * Each thread issues PE_SFENCE() after its own streamed stores, before the data is handed on.
 */
#ifndef PE_STREAM_H
#define PE_STREAM_H

#include <stddef.h>
#include <string.h>

#if defined(__SSE2__)
#include <emmintrin.h>
#define PE_HAVE_STREAM 1
#define PE_SFENCE() _mm_sfence()
#else
#define PE_HAVE_STREAM 0
#define PE_SFENCE() ((void)0)
#endif

#if defined(__GNUC__)
#define PE_ALIGN64 __attribute__((aligned(64)))
#define PE_ALIGN16 __attribute__((aligned(16)))
#else
#define PE_ALIGN64
#define PE_ALIGN16
#endif

/* Store the 16 bytes at src (16-byte aligned, usually a local the compiler keeps in a register)
 * to 16-byte aligned dst, streamed. The caller fences. */
static inline void pe_stream_16(void *dst, const void *src) {
#if PE_HAVE_STREAM
    _mm_stream_si128((__m128i *)dst, _mm_load_si128((const __m128i *)src));
#else
    memcpy(dst, src, 16);
#endif
}

/* Copy `bytes` (a multiple of 16) from 16-byte aligned src to 16-byte aligned dst with streaming
 * stores (a plain memcpy where there are none). The caller fences. */
static inline void pe_stream_copy(void *dst, const void *src, size_t bytes) {
#if PE_HAVE_STREAM
    const __m128i *s = (const __m128i *)src;
    __m128i *d = (__m128i *)dst;
    for (size_t v = 0; v < bytes / 16; v++) _mm_stream_si128(d + v, _mm_load_si128(s + v));
#else
    memcpy(dst, src, bytes);
#endif
}

/* dst[0 .. bytes) = 0, 16-byte aligned dst: whole 64-byte lines with streaming stores, the rest
 * (a partial last line) through the cache. The caller fences. */
static inline void pe_stream_zero(void *dst, size_t bytes) {
    char *d = (char *)dst;
    size_t b = 0;
#if PE_HAVE_STREAM
    const __m128i z = _mm_setzero_si128();
    for (; b + 64 <= bytes; b += 64) {
        _mm_stream_si128((__m128i *)(d + b), z);
        _mm_stream_si128((__m128i *)(d + b + 16), z);
        _mm_stream_si128((__m128i *)(d + b + 32), z);
        _mm_stream_si128((__m128i *)(d + b + 48), z);
    }
#endif
    if (b < bytes) memset(d + b, 0, bytes - b);
}

#endif
