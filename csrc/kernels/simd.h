/* Run-time choice of the vector width for the optimizer loops (adam.c, sgd.c).
 *
 * The default build targets baseline x86-64 (SSE2); Adam's sqrt and two divisions per element
 * then cost about as much as its memory traffic. On x86-64 with GCC the loops are also compiled
 * for AVX2 and AVX-512 (function-level target attributes) and picked at run time from the CPU.
 * With -ffp-contract=off there is no FMA on any path, and +, *, /, sqrt are correctly rounded,
 * so every path gives the same bits. */
#ifndef PE_SIMD_H
#define PE_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__)
#define PE_X86_DISPATCH 1
#define PE_TARGET_AVX2 __attribute__((target("avx2")))
#define PE_TARGET_AVX512 __attribute__((target("avx512f,prefer-vector-width=512")))
#else
#define PE_X86_DISPATCH 0
#endif

enum { PE_SIMD_BASE = 0, PE_SIMD_AVX2 = 1, PE_SIMD_AVX512 = 2 };

/* The level in use: the best the CPU supports unless lowered by pe_set_simd_level. */
int pe_simd_level(void);

/* Use at most `level` (-1: the best available); returns the level now in use. For tests. */
int pe_set_simd_level(int level);

#endif
