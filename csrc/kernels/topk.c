/* Top-k per row with a bounded min-heap (see topk.h). */
#include "topk.h"

#define PE_TMPL "topk_tmpl.h"
#include "float_types.h"
