/* An include-template: one function compiled for every vector level of simd.h, and its dispatcher.
 * Before including, define:
 *   LV_NAME(suffix)  the names: LV_NAME(_base), LV_NAME(_avx2), LV_NAME(_avx512) are the variants,
 *                    LV_NAME() the dispatcher, e.g. #define LV_NAME(s) FN(add_rows##s)
 *   LV_BODY          a `static inline PE_ALWAYS_INLINE void` function holding the plain-C loop
 *   LV_PARAMS        its parameter list, in parentheses
 *   LV_ARGS          the matching argument list, in parentheses
 * This header undefines the four. The body is inlined into each variant and compiled for that
 * variant's target (simd.h: no FMA on any of them, so all give the same bits). */
#include "simd.h"

#if PE_X86_DISPATCH
PE_TARGET_AVX512 static void LV_NAME(_avx512) LV_PARAMS { LV_BODY LV_ARGS; }
PE_TARGET_AVX2 static void LV_NAME(_avx2) LV_PARAMS { LV_BODY LV_ARGS; }
#endif
static void LV_NAME(_base) LV_PARAMS { LV_BODY LV_ARGS; }

/* LV_NAME(_pick)(): the variant for the level in use, for a caller that calls it many times on
 * short spans (the in-backward updates' parts): one level check instead of one a call. */
#if defined(__GNUC__)
__attribute__((unused))
#endif
static __typeof__(&LV_NAME(_base)) LV_NAME(_pick)(void) {
#if PE_X86_DISPATCH
    const int level = pe_simd_level();
    if (level == PE_SIMD_AVX512) return LV_NAME(_avx512);
    if (level == PE_SIMD_AVX2) return LV_NAME(_avx2);
#endif
    return LV_NAME(_base);
}

#if defined(__GNUC__)
__attribute__((unused))
#endif
static void LV_NAME() LV_PARAMS { LV_NAME(_pick)() LV_ARGS; }

#undef LV_NAME
#undef LV_BODY
#undef LV_PARAMS
#undef LV_ARGS
