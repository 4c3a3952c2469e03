/* Run-time ISA dispatch for the few loops that gain from wider vectors (positional walk, rope,
 * fused token + position, bags). GCC's target_clones builds one copy per ISA and picks at load
 * time (ifunc); the default build stays portable (no -march=native, DESIGN.md). None of the
 * clones may use FMA: -ffp-contract=off forbids contraction and no code calls fma(), so every
 * clone computes the same bits.
 * The optimizer and word2vec loops use simd.h's explicit levels instead: there the tests lower the
 * level (pe_set_simd_level) to check that every path gives the same bits, and word2vec must stay
 * off AVX-512 (its lane sums would change order). The loops here are checked against NumPy
 * references on whichever clone the CPU picks.
 */
#ifndef PE_VEC_CLONES_H
#define PE_VEC_CLONES_H

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && defined(__has_attribute)
#if __has_attribute(target_clones) && defined(__linux__)
#define PE_VEC_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif
#endif
#ifndef PE_VEC_CLONES
#define PE_VEC_CLONES
#endif

#endif
