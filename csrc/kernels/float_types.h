/* Instantiates the include-template named by PE_TMPL (a string) for each float type the kernels
 * serve, the one way every kernel file does it:
 *     #define PE_TMPL "bag_tmpl.h"
 *     #include "float_types.h"
 * The template sees T (float, then double) and FN(name) (name_f32, then name_f64); everything
 * else it uses comes from the headers it includes itself. Undefines PE_TMPL. */
#define T float
#define FN(name) name##_f32
#include PE_TMPL
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include PE_TMPL
#undef T
#undef FN

#undef PE_TMPL
