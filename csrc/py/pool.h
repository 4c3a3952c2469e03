/* A small cache of large output buffers. A training loop calls lookup() with the same batch shape
 * every step and drops the previous output; a fresh 32 MiB array costs 8192 page faults (more than
 * the copy itself), a recycled one none. Arrays made here own their buffer through a capsule base
 * whose destructor hands the buffer back. Used with the GIL held only. */
#ifndef PE_POOL_H
#define PE_POOL_H
#include "convert.h"

/* An uninitialised C-contiguous array of `typenum`; large ones come from the pool. */
PyObject *pe_pool_empty(int nd, const npy_intp *shape, int typenum);

#endif
