/* Deterministic scatter-add (the lookup's backward) and clearing of touched rows.
 *
 * Shapes: grad (num_rows, dim); ids (n,); dout (n, dim).
 * Plan (as FBGEMM / llm.c): a stable radix grouping of positions by id (sort.c), then every
 * distinct row is summed in the order its ids appear, in parallel over rows. Never atomics on
 * floats: any thread count gives the same bits as the serial loop and as np.add.at. A hot row
 * (Zipf: one id can be a tenth of the batch) is split into column blocks, which keeps the per
 * element order and so the bits, and keeps one thread from owning most of the work.
 * The steps are scatter_tmpl.h's functions, instantiated once per element type.
 */
#include "scatter.h"
#include "stream.h"

#include <string.h>

#define PE_TMPL "scatter_tmpl.h"
#include "float_types.h"

/* Rows of at least 4 KiB in a clear past what the cache keeps (PE_STREAM_GRAD_FACTOR times
 * pe_stream_min_bytes) are zeroed with streaming stores: they skip the read-for-ownership of every
 * line, a third of memset's traffic. */
#define PE_ZERO_STREAM_ROW ((size_t)4096)

void pe_zero_rows(void *grad, uint8_t *mark, const int64_t *rows, size_t n, size_t row_bytes) {
    char *g = (char *)grad;
    size_t total = pe_mul_size(n, row_bytes);
    /* grad rows start 64-byte aligned when row_bytes is a multiple of 64 (the buffer is) */
    int stream = row_bytes >= PE_ZERO_STREAM_ROW && row_bytes % 64 == 0 &&
                 ((uintptr_t)g % 64) == 0 &&
                 total >= pe_mul_size(pe_stream_min_bytes(), PE_STREAM_GRAD_FACTOR);
    int nt = pe_threads_for(total, n);
    /* each thread fences its own streaming stores */
    PE_OMP(omp parallel num_threads(nt) if (nt > 1))
    {
        PE_OMP(omp for schedule(static))
        for (size_t k = 0; k < n; k++) {
            if (stream) pe_stream_zero(g + (size_t)rows[k] * row_bytes, row_bytes);
            else memset(g + (size_t)rows[k] * row_bytes, 0, row_bytes);
            mark[rows[k]] = 0;
        }
        if (stream) PE_SFENCE();
    }
    (void)nt;
}
