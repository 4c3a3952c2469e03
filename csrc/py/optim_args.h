/* The argument checks the optimizer glue (optim.c) shares with the gradient-norm glue
 * (gradnorm.c); each raises a Python exception and returns -1 on bad input. */
#ifndef PE_OPTIM_ARGS_H
#define PE_OPTIM_ARGS_H
#include "glue.h"

#include <stdint.h>

/* An ndarray of the parameter's dtype and shape (like: the parameter, or NULL for any float
 * array), exact and (write) writeable; a borrowed reference in *out. */
int pe_opt_check_array(PyObject *obj, const char *name, PyArrayObject *like, int write,
                       PyArrayObject **out);
/* rows: ids of any integer dtype, in [0, nrows), strictly increasing (a new reference). */
int pe_opt_convert_rows(PyObject *obj, int64_t nrows, PyArrayObject **out);
/* The (nrows, dim) view of a parameter: 2-D as is; otherwise one row of all its elements. */
void pe_opt_rows_dim(PyArrayObject *p, size_t *nrows, size_t *dim);
/* -1 with an error naming `what` unless p is 2-D. */
int pe_opt_need_2d(PyArrayObject *p, const char *what);

#endif
