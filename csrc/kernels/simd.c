/* Run-time ISA level for the optimizer loops (see simd.h). */
#include "simd.h"

static int g_best = -1;  /* what the CPU supports; -1 until first asked */
static int g_level = -1; /* what we use; -1 until first asked */

static int best_level(void) {
#if PE_X86_DISPATCH
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) return PE_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2")) return PE_SIMD_AVX2;
#endif
    return PE_SIMD_BASE;
}

int pe_simd_level(void) {
    if (g_level < 0) {
        g_best = best_level();
        g_level = g_best;
    }
    return g_level;
}

int pe_set_simd_level(int level) {
    (void)pe_simd_level();
    g_level = level < 0 || level > g_best ? g_best : level;
    return g_level;
}
