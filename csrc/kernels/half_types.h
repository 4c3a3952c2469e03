/* The float16 / bfloat16 instance of an include-template that reads table rows (float_types.h):
 * T is float (the arithmetic), S is uint16_t (the stored bits), LD(x) widens a stored element
 * exactly and ST(x) rounds a float to nearest even (half.h), FN(name) is name_f16, then name_bf16. PE_HALF_TMPL is defined meanwhile, so a
 * template can leave out what half tables do not need (their gradients are float32: the _f32
 * instance). Include after float_types.h with PE_TMPL_KEEP defined; undefines PE_TMPL. */
#include "half.h"

#define PE_HALF_TMPL 1
#define T float
#define S uint16_t

#define LD(x) pe_f16_to_f32(x)
#define ST(x) pe_f32_to_f16_rn(x)
#define FN(name) name##_f16
#include PE_TMPL
#undef LD
#undef ST
#undef FN

#define LD(x) pe_bf16_to_f32(x)
#define ST(x) pe_f32_to_bf16_rn(x)
#define FN(name) name##_bf16
#include PE_TMPL
#undef LD
#undef ST
#undef FN

#undef T
#undef S
#undef PE_HALF_TMPL
#undef PE_TMPL
#undef PE_TMPL_KEEP
