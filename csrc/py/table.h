/* The Table type: a 64-byte aligned (num_embeddings, dim) weight buffer, its lazily allocated
 * gradient and the rows touched since the last zero_grad. Other glue files use the struct
 * directly (optimizers read `touched`, bags accumulate into `grad`). */
#ifndef PE_TABLE_H
#define PE_TABLE_H

#include "convert.h"
#include <pythread.h>

typedef struct {
    PyObject_HEAD
    int typenum;      /* NPY_FLOAT32 or NPY_FLOAT64 */
    size_t itemsize;  /* 4 or 8 */
    int64_t rows, dim;
    char *weight;     /* rows * dim * itemsize bytes, 64-byte aligned, owned */
    char *grad;       /* NULL until the first backward; never reallocated afterwards */
    uint8_t *mark;    /* (rows,) 1 where the row is in `touched`; allocated with grad */
    int64_t *touched; /* (rows,) capacity; n_touched used; sorted when touched_sorted */
    size_t n_touched;
    int touched_sorted;
    PyThread_type_lock lock; /* held (GIL released) around every kernel that writes */
    PyObject *weakreflist;
} PeTable;

typedef struct {
    PyTypeObject *TableType;
} pe_module_state;

extern PyType_Spec pe_table_spec;

/* Is `obj` a Table (or subclass)? Uses the type stored in the module state of `module`. */
int pe_is_table(PyObject *module, PyObject *obj);

/* Allocate grad, mark and touched if not yet there (GIL held). 0, or -1 with MemoryError. */
int pe_table_ensure_grad(PeTable *t);

/* Bytes of the weight buffer (and of grad, the same shape). */
static inline size_t pe_table_nbytes(const PeTable *t) {
    return (size_t)t->rows * (size_t)t->dim * t->itemsize;
}

/* The compute methods of the Table type, defined in table_ops.c and listed in the method table
 * of table.c (lookup, renorm, backward take METH_VARARGS | METH_KEYWORDS; zero_grad and
 * mark_all_touched METH_NOARGS), each with its docstring. */
PyObject *pe_table_lookup(PeTable *self, PyObject *args, PyObject *kwds);
PyObject *pe_table_renorm(PeTable *self, PyObject *args, PyObject *kwds);
PyObject *pe_table_backward(PeTable *self, PyObject *args, PyObject *kwds);
PyObject *pe_table_zero_grad(PeTable *self, PyObject *noargs);
PyObject *pe_table_mark_all_touched(PeTable *self, PyObject *noargs);
extern const char pe_table_lookup_doc[], pe_table_renorm_doc[], pe_table_backward_doc[],
    pe_table_zero_grad_doc[], pe_table_mark_all_touched_doc[];

/* Lock helpers: call with the GIL released. */
#define PE_TABLE_LOCK(t) PyThread_acquire_lock((t)->lock, WAIT_LOCK)
#define PE_TABLE_UNLOCK(t) PyThread_release_lock((t)->lock)

/* Module-level functions of table.c (added to the module's method table in module.c). */
extern PyMethodDef pe_table_functions[];

#endif
