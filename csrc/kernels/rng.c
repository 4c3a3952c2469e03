/* Counter-based random fills for initialisation (see rng.h). Threads split the index range;
 * since each element is a function of (seed, index) alone, the bits never depend on threads. */
#include "rng.h"

#define PE_TMPL "rng_tmpl.h"
#include "float_types.h"
