/* The driver of the optimizers applied in the backward (see inbwd.h): group the batch by id,
 * sum each row's gradient in a per-thread buffer that stays in L1/L2, hand it to the
 * optimizer's row update. A fused step moves each gradient row once (read) and each touched
 * row's weight and state once (read + write), where backward-then-step also writes, reads and
 * clears a gradient row. An optimizer adds itself with a row function (adam_tmpl.h, sgd_tmpl.h:
 * FN(bwd_row)) and the entry point that fills its context. */
#include "inbwd.h"
#include "sort.h"

#include <stdlib.h>

int pe_inbwd_threads(const pe_bwd_batch *b, size_t esize) {
    /* each gradient element is read once and summed into a buffer that is read once */
    return pe_threads_for(pe_mul_size(pe_mul_size(b->n, b->dim), 2 * esize), b->n);
}

#define PE_TMPL "inbwd_tmpl.h"
#include "float_types.h"
