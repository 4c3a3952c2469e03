/* float16 / bfloat16 storage: rows are widened to float32 as they are read and narrowed back as
 * they are written; all arithmetic stays in float32 (DESIGN.md, "Storage dtype is not compute
 * dtype"). Every function here is a static inline over one value or one row, so a kernel compiled
 * for a vector level of simd_levels.h inlines it and vectorises it with its own loop; the bodies
 * are integer and correctly rounded float operations only, so every level gives the same bits.
 *
 * Rounding to the storage type:
 *   PE_ROUND_NEAREST     round to nearest, ties to even: bit for bit what NumPy's astype(float16)
 *                        and ml_dtypes' astype(bfloat16) give, NaN, overflow to inf and
 *                        subnormals included (NumPy keeps a float16 NaN's top payload bits;
 *                        ml_dtypes makes every bfloat16 NaN the quiet 0x7fc0 with its sign).
 *   PE_ROUND_STOCHASTIC  round up with probability (x - down) / (up - down) (Gupta et al. 2015,
 *                        "Deep learning with limited numerical precision"), so the rounding is
 *                        unbiased and small updates are not lost. The random bits are a function of
 *                        (seed, step, row, column) only -- a counter-based hash, not a generator
 *                        state -- so the bits written do not depend on the thread count or on the
 *                        order rows are visited. FBGEMM rounds bfloat16 the same way (the random
 *                        16 bits added below the kept ones, then truncated) but draws the bits from
 *                        a per-thread xorshift state, whose stream depends on how rows are split.
 * NaN is rounded to nearest in both modes; inf stays inf.
 *
 * Shapes: a row is `dim` elements; dst and src do not overlap. */
#ifndef PE_HALF_H
#define PE_HALF_H

#include "simd.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* The storage kinds of a half table and the rounding modes (values shared with the glue). */
enum { PE_HALF_F16 = 1, PE_HALF_BF16 = 2 };
enum { PE_ROUND_NEAREST = 0, PE_ROUND_STOCHASTIC = 1 };

static inline PE_ALWAYS_INLINE uint32_t pe_f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    return u;
}

static inline PE_ALWAYS_INLINE float pe_bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, sizeof x);
    return x;
}

/* ---- widening: exact ------------------------------------------------------------------- */

static inline PE_ALWAYS_INLINE float pe_bf16_to_f32(uint16_t h) {
    return pe_bits_f32((uint32_t)h << 16);
}

/* NumPy's npy_halfbits_to_floatbits: exact, a NaN keeps its payload (not quieted). */
static inline PE_ALWAYS_INLINE float pe_f16_to_f32(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    const uint32_t em = h & 0x7fffu;
    /* subnormals and zero: em * 2^-24, exact in float32 */
    const uint32_t sub = pe_f32_bits((float)(int32_t)em * 0x1p-24f); /* signed: vectorises */
    const uint32_t norm = (em << 13) + 0x38000000u;  /* exponent rebiased by 127 - 15 */
    const uint32_t special = (em << 13) + 0x70000000u; /* inf / NaN: exponent all ones */
    /* masks, not ?: -- a select on a float product is left as a branch (it might trap) */
    const uint32_t is_special = 0u - (uint32_t)(em >= 0x7c00u);
    const uint32_t is_norm = 0u - (uint32_t)(em >= 0x0400u);
    const uint32_t mag = (special & is_special) | (norm & is_norm & ~is_special) | (sub & ~is_norm);
    return pe_bits_f32(sign | mag);
}

/* ---- narrowing ------------------------------------------------------------------------- */

static inline PE_ALWAYS_INLINE uint16_t pe_f32_to_bf16_rn(float x) {
    const uint32_t u = pe_f32_bits(x);
    const uint32_t nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
    const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

/* r: 32 random bits; the low 16 are used. */
static inline PE_ALWAYS_INLINE uint16_t pe_f32_to_bf16_sr(float x, uint32_t r) {
    const uint32_t u = pe_f32_bits(x);
    const uint32_t nan = ((u >> 16) & 0x8000u) | 0x7fc0u;
    const uint32_t rounded = (u + (r & 0xffffu)) >> 16;
    return (uint16_t)((u & 0x7fffffffu) > 0x7f800000u ? nan : rounded);
}

/* A float16 NaN as NumPy makes it: the top 10 payload bits, at least one of them set. */
static inline PE_ALWAYS_INLINE uint32_t pe_f16_nan(uint32_t a) {
    const uint32_t m = (a >> 13) & 0x3ffu;
    return 0x7c00u | (m ? m : 1u);
}

/* NumPy's npy_floatbits_to_halfbits. */
static inline PE_ALWAYS_INLINE uint16_t pe_f32_to_f16_rn(float x) {
    const uint32_t u = pe_f32_bits(x);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t a = u & 0x7fffffffu;
    /* below 2^-14: adding 0.5 (ulp 2^-24, the float16 subnormal step) rounds to nearest even */
    const uint32_t sub = pe_f32_bits(pe_bits_f32(a) + 0.5f) - 0x3f000000u;
    const uint32_t norm = (a - 0x38000000u + 0x0fffu + ((a >> 13) & 1u)) >> 13;
    const uint32_t big = a > 0x7f800000u ? pe_f16_nan(a) : 0x7c00u; /* >= 65520: inf */
    const uint32_t is_big = 0u - (uint32_t)(a >= 0x477ff000u);
    const uint32_t is_norm = 0u - (uint32_t)(a >= 0x38800000u); /* masks: see pe_f16_to_f32 */
    const uint32_t mag = (big & is_big) | (norm & is_norm & ~is_big) | (sub & ~is_norm);
    return (uint16_t)(sign | mag);
}

/* r: 32 random bits. In the normal range the low 13 of them are added below the kept bits (the
 * bfloat16 rule); below 2^-14 the step is fixed (2^-24), and the remainder, scaled to 32 bits,
 * is compared with r (probabilities to 2^-32: an error below 2^-32 for values under 2^-32). */
static inline PE_ALWAYS_INLINE uint16_t pe_f32_to_f16_sr(float x, uint32_t r) {
    const uint32_t u = pe_f32_bits(x);
    const uint32_t sign = (u >> 16) & 0x8000u;
    const uint32_t a = u & 0x7fffffffu;
    const uint32_t norm = (a - 0x38000000u + (r & 0x1fffu)) >> 13;
    /* value = sig * 2^(e - 150) = sig * 2^-24 / 2^s with s = 126 - e >= 14 here */
    const uint32_t e = a >> 23 ? a >> 23 : 1u;
    const uint64_t sig = (a & 0x7fffffu) | (a >> 23 ? 0x800000u : 0u);
    const uint32_t s = 126u - (e < 126u ? e : 125u);
    const uint64_t q = s < 32u ? sig >> s : 0u;
    const uint64_t rem = sig - (q << (s < 32u ? s : 0u));
    const uint64_t p32 = s <= 32u ? rem << (32u - s) : s < 56u ? rem >> (s - 32u) : 0u;
    const uint32_t sub = (uint32_t)q + ((uint64_t)r < p32);
    const uint32_t mag = a > 0x7f800000u   ? pe_f16_nan(a)
                         : a >= 0x47800000u ? 0x7c00u
                         : a >= 0x38800000u ? norm
                                            : sub;
    return (uint16_t)(sign | mag);
}

/* ---- the random bits of stochastic rounding --------------------------------------------- */

/* SplitMix64's finaliser (Steele et al. 2014): a bijection of 64 bits that mixes every input
 * bit into every output bit. */
static inline PE_ALWAYS_INLINE uint64_t pe_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* The key of one row's draws at one step; pe_sr_bits(key, col) the 32 bits of one element. */
static inline uint64_t pe_sr_key(uint64_t seed, uint64_t step, uint64_t row) {
    const uint64_t g = 0x9e3779b97f4a7c15ull; /* 2^64 / golden ratio: SplitMix64's increment */
    return pe_mix64(seed + g * pe_mix64(step + g * pe_mix64(row + g)));
}

static inline PE_ALWAYS_INLINE uint32_t pe_sr_bits(uint64_t key, uint64_t col) {
    return (uint32_t)(pe_mix64(key + 0x9e3779b97f4a7c15ull * (col + 1)) >> 32);
}

/* ---- rows ------------------------------------------------------------------------------ */

/* dst[k] = float(src[k]), k < dim.   kind: PE_HALF_F16 or PE_HALF_BF16. */
static inline PE_ALWAYS_INLINE void pe_widen_row(float *restrict dst, const uint16_t *restrict src,
                                                 size_t dim, int kind) {
    if (kind == PE_HALF_BF16) {
        for (size_t k = 0; k < dim; k++) dst[k] = pe_bf16_to_f32(src[k]);
    } else {
        for (size_t k = 0; k < dim; k++) dst[k] = pe_f16_to_f32(src[k]);
    }
}

/* dst[k] = round(src[k]), k < dim, for table row `row` at optimizer step `step`: the wrapper an
 * update kernel puts around its float32 arithmetic (widen -> update -> narrow). seed and step
 * matter only to PE_ROUND_STOCHASTIC. */
static inline PE_ALWAYS_INLINE void pe_narrow_row(uint16_t *restrict dst, const float *restrict src,
                                                  size_t dim, int kind, int mode, uint64_t seed,
                                                  uint64_t step, int64_t row) {
    if (mode == PE_ROUND_STOCHASTIC) {
        const uint64_t key = pe_sr_key(seed, step, (uint64_t)row);
        if (kind == PE_HALF_BF16) {
            for (size_t k = 0; k < dim; k++) dst[k] = pe_f32_to_bf16_sr(src[k], pe_sr_bits(key, k));
        } else {
            for (size_t k = 0; k < dim; k++) dst[k] = pe_f32_to_f16_sr(src[k], pe_sr_bits(key, k));
        }
    } else if (kind == PE_HALF_BF16) {
        for (size_t k = 0; k < dim; k++) dst[k] = pe_f32_to_bf16_rn(src[k]);
    } else {
        for (size_t k = 0; k < dim; k++) dst[k] = pe_f32_to_f16_rn(src[k]);
    }
}

/* ---- optimizer updates on half rows ----------------------------------------------------- */

/* How an optimizer writes its float32 result back into a half table: kind (PE_HALF_*), mode
 * (PE_ROUND_*), and the seed and step of stochastic rounding (the random bits of element (r, c)
 * are those pe_narrow_row draws for row r at this step: pe_sr_bits(pe_sr_key(seed, step, r), c)). */
typedef struct {
    int kind, mode;
    uint64_t seed, step;
} pe_half_round;

/* An update kernel widens a half row PE_HALF_CHUNK elements at a time into a float32 buffer on
 * its stack, runs its float32 span function on it and narrows it back: the arithmetic is
 * elementwise, so the chunks give the bits of one float32 row. */
#define PE_HALF_CHUNK 256

/* dst[k] = round(src[k]), k < n: columns col0 .. col0 + n of a row whose stochastic-rounding key
 * is `key` (pe_sr_key; unused when rounding to nearest). */
static inline void pe_narrow_span(uint16_t *restrict dst, const float *restrict src, size_t n,
                                  const pe_half_round *h, uint64_t key, size_t col0) {
    if (h->mode == PE_ROUND_STOCHASTIC) {
        if (h->kind == PE_HALF_BF16) {
            for (size_t k = 0; k < n; k++)
                dst[k] = pe_f32_to_bf16_sr(src[k], pe_sr_bits(key, col0 + k));
        } else {
            for (size_t k = 0; k < n; k++)
                dst[k] = pe_f32_to_f16_sr(src[k], pe_sr_bits(key, col0 + k));
        }
    } else if (h->kind == PE_HALF_BF16) {
        for (size_t k = 0; k < n; k++) dst[k] = pe_f32_to_bf16_rn(src[k]);
    } else {
        for (size_t k = 0; k < n; k++) dst[k] = pe_f32_to_f16_rn(src[k]);
    }
}

#endif
