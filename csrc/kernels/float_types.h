/* Instantiates the include-template named by PE_TMPL (a string) for each float type the kernels
 * serve, the one way every kernel file does it:
 *     #define PE_TMPL "bag_tmpl.h"
 *     #include "float_types.h"
 * The template sees T (float, then double) and FN(name) (name_f32, then name_f64); everything
 * else it uses comes from the headers it includes itself. A template that also reads table rows
 * stored as float16 / bfloat16 (half_types.h) reads them through S (the stored element type) and
 * LD(x) (its value as a T) and writes them with ST(x) (a T as an S); here S is T and LD(x) and
 * ST(x) are x. Undefines PE_TMPL. */
#define T float
#define S float
#define LD(x) (x)
#define ST(x) (x)
#define FN(name) name##_f32
#include PE_TMPL
#undef T
#undef S
#undef FN

#define T double
#define S double
#define FN(name) name##_f64
#include PE_TMPL
#undef T
#undef S
#undef LD
#undef ST
#undef FN

#ifndef PE_TMPL_KEEP
#undef PE_TMPL
#endif
