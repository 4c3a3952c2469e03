#ifndef PE_SORT_H
#define PE_SORT_H
#include "common.h"

/* Group positions by id, stably (LSD radix sort: cost grows with n, never with num_rows).
 *   ids  (n,)     values in [0, num_rows); positions whose id == skip are left out (skip < 0: none)
 *   perm (n,)     out: perm[0..*m) = kept positions ordered by id, ties in original order
 *   seg  (n + 1,) out: segment k = perm[seg[k] .. seg[k+1]) holds the positions of the k-th
 *                 smallest distinct id; *nseg segments
 * Returns PE_OK or PE_ERR_NOMEM (nothing written then). Serial. */
int pe_group_ids(size_t *perm, size_t *seg, size_t *m, size_t *nseg,
                 const int64_t *ids, size_t n, int64_t num_rows, int64_t skip);

/* Sort n distinct values in [0, bound) ascending, in place. PE_OK or PE_ERR_NOMEM. */
int pe_sort_rows(int64_t *vals, size_t n, int64_t bound);

#endif
