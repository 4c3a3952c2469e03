/* Run-time choice of the vector width: the one SIMD dispatch scheme of the kernels.
 *
 * The default build targets baseline x86-64 (SSE2), portable (no -march=native, DESIGN.md); there
 * Adam's sqrt and two divisions per element cost about as much as its memory traffic. On x86-64
 * with GCC the hot loops (optimizers, bags, scatter, fused token + position, sinusoidal, rope) are
 * therefore also compiled for AVX2 and AVX-512 (function-level target attributes, simd_levels.h)
 * and picked at run time from the CPU.
 * Why explicit levels and not GCC's target_clones (which the row loops used before): the level
 * can be lowered at run time (pe_set_simd_level), so the tests run every path and check that all
 * give the same bits, and word2vec can stay off AVX-512 (sgns.c: its lane sums would change
 * order). The dispatch is one load and compare per call; in an A/B against the clones every
 * moved loop ran within the noise of a shared 2-core machine (the optimizers' AVX-512 code is
 * instruction for instruction what it was).
 * The one FMA policy: none. -ffp-contract=off forbids contracting a * b + c (AVX-512F has fused
 * multiply-adds of its own) and no code calls fma(); +, *, /, sqrt are correctly rounded, so
 * every path gives the same bits. */
#ifndef PE_SIMD_H
#define PE_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define PE_X86_DISPATCH 1
#define PE_TARGET_AVX2 __attribute__((target("avx2")))
#define PE_TARGET_AVX512 __attribute__((target("avx512f,prefer-vector-width=512")))
#else
#define PE_X86_DISPATCH 0
#endif

#if defined(__GNUC__)
#define PE_ALWAYS_INLINE __attribute__((always_inline))
#else
#define PE_ALWAYS_INLINE
#endif

enum { PE_SIMD_BASE = 0, PE_SIMD_AVX2 = 1, PE_SIMD_AVX512 = 2 };

/* The level in use: the best the CPU supports unless lowered by pe_set_simd_level. */
int pe_simd_level(void);

/* Use at most `level` (-1: the best available); returns the level now in use. For tests. */
int pe_set_simd_level(int level);

#endif
