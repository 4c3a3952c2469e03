/* Counter-based random fills for initialisation (see rng.h). Threads split the index range;
 * since each element is a function of (seed, index) alone, the bits never depend on threads. */
#include "rng.h"

#define T float
#define FN(name) name##_f32
#include "rng_tmpl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include "rng_tmpl.h"
#undef T
#undef FN
