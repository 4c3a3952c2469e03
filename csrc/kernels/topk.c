/* Top-k per row with a bounded min-heap (see topk.h). */
#include "topk.h"

#define T float
#define FN(name) name##_f32
#include "topk_tmpl.h"
#undef T
#undef FN

#define T double
#define FN(name) name##_f64
#include "topk_tmpl.h"
#undef T
#undef FN
