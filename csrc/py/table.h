/* The Table type: a 64-byte aligned (num_embeddings, dim) weight buffer, its lazily allocated
 * gradient and the rows touched since the last zero_grad. Other glue files use the struct
 * directly (optimizers read `touched`, bags accumulate into `grad`). */
#ifndef PE_TABLE_H
#define PE_TABLE_H

#include "glue.h"
#include "kernels/half.h"
#include <pthread.h>

typedef struct {
    PyObject_HEAD
    int typenum;      /* the arithmetic and the gradient: NPY_FLOAT32 or NPY_FLOAT64 */
    size_t itemsize;  /* of typenum: 4 or 8 */
    int half;         /* 0, or PE_HALF_F16 / PE_HALF_BF16 (kernels/half.h): weight stored in 16
                         bits, widened to float32 (typenum) as read, rounded back as written */
    size_t witemsize; /* bytes per weight element: itemsize, or 2 */
    PyArray_Descr *wdescr; /* the weight's dtype (owned): ml_dtypes' for bfloat16 */
    int64_t rows, dim;
    char *weight;     /* rows * dim * witemsize bytes: 64-byte aligned and owned, or owner's */
    PyObject *owner;  /* NULL, or the array whose memory weight is (Table.wrap: a memmap); kept
                       * alive as long as the table, and weight is never freed then */
    int readonly;     /* weight is read-only memory (a mode="r" map): nothing may write it */
    char *grad;       /* rows * dim * itemsize; NULL until the first backward; never reallocated */
    uint8_t *mark;    /* (rows,) 1 where the row is in `touched`; allocated with grad */
    int64_t *touched; /* (rows,) capacity; n_touched used; sorted when touched_sorted */
    size_t n_touched;
    int touched_sorted;
    pthread_mutex_t lock; /* held (GIL released) around every kernel that writes */
    unsigned long lock_fork_gen; /* pe_fork_generation when `lock` was last initialised */
    PyObject *weakreflist;
} PeTable;

typedef struct {
    PyTypeObject *TableType;
} pe_module_state;

extern PyType_Spec pe_table_spec;

/* `obj` as a Table (or subclass; the type stored in the module state of `module`): *out gets a
 * borrowed pointer, NULL for None when allow_none. TypeError naming `table` otherwise. */
int pe_parse_table(PyObject *module, PyObject *obj, int allow_none, PeTable **out);

/* 0 if t's weight may be written (or, for `what` = a backward, the table may be trained), else
 * -1 with a ValueError saying that `what` needs a writeable table. */
int pe_table_refuse_readonly(PeTable *t, const char *what);

/* Allocate grad, mark and touched if not yet there (GIL held). 0, or -1 with MemoryError. */
int pe_table_ensure_grad(PeTable *t);

/* The weight dtype d as a table stores it: *typenum the arithmetic (NPY_FLOAT32 / NPY_FLOAT64),
 * *half PE_HALF_* or 0. 0, or -1 with ValueError naming `what` (and `shown`, when not NULL, as
 * the value given) for any other dtype or a non-native byte order. */
int pe_table_dtype(PyArray_Descr *d, const char *what, PyObject *shown, int *typenum, int *half);

/* The Table type's constructors and dealloc, defined in table_memory.c and named by table.c's
 * slots and method table: tp_new (Table(num_embeddings, embedding_dim, dtype)), tp_dealloc, and
 * the class method wrap (METH_O | METH_CLASS) with its docstring. */
PyObject *pe_table_new(PyTypeObject *type, PyObject *args, PyObject *kwds);
void pe_table_dealloc(PeTable *self);
PyObject *pe_table_wrap(PyTypeObject *type, PyObject *arg);
extern const char pe_table_wrap_doc[];

/* Bytes of the grad buffer (and of the weight, unless the table is stored in half precision). */
static inline size_t pe_table_nbytes(const PeTable *t) {
    return (size_t)t->rows * (size_t)t->dim * t->itemsize;
}

/* Bytes of the weight buffer. */
static inline size_t pe_table_weight_nbytes(const PeTable *t) {
    return (size_t)t->rows * (size_t)t->dim * t->witemsize;
}

/* The kernel of an op that reads a table's weight: fn_f16 / fn_bf16 for half tables (W passed as
 * their 16-bit elements, the rest float32), else PE_BY_DTYPE's fn_f32 / fn_f64. */
#define PE_BY_TABLE(t, fn, ...)                                                                  \
    ((t)->half == PE_HALF_F16    ? fn##_f16(__VA_ARGS__)                                        \
     : (t)->half == PE_HALF_BF16 ? fn##_bf16(__VA_ARGS__)                                       \
                                 : PE_BY_DTYPE((t)->typenum, fn, __VA_ARGS__))

/* The compute methods of the Table type, defined in table_ops.c and listed in the method table
 * of table.c (lookup, renorm, backward take METH_VARARGS | METH_KEYWORDS; zero_grad and
 * mark_all_touched METH_NOARGS, add_dense_grad METH_O), each with its docstring. */
PyObject *pe_table_lookup(PeTable *self, PyObject *args, PyObject *kwds);
PyObject *pe_table_renorm(PeTable *self, PyObject *args, PyObject *kwds);
PyObject *pe_table_backward(PeTable *self, PyObject *args, PyObject *kwds);
PyObject *pe_table_zero_grad(PeTable *self, PyObject *noargs);
PyObject *pe_table_mark_all_touched(PeTable *self, PyObject *noargs);
PyObject *pe_table_add_dense_grad(PeTable *self, PyObject *dense);
extern const char pe_table_lookup_doc[], pe_table_renorm_doc[], pe_table_backward_doc[],
    pe_table_zero_grad_doc[], pe_table_mark_all_touched_doc[], pe_table_add_dense_grad_doc[];

/* A (rows, dim) array over `data` (the weight or the grad), the table as its base; writeable or
 * read-only. New reference or NULL. */
PyObject *pe_table_view(PeTable *t, char *data, int writeable);

/* os.fork() copies a table's lock as it is: held, if another thread was inside a writing kernel,
 * by a thread the child does not have. A glue-side at-fork handler (pe_table_atfork_init, called
 * once at import) counts forks in pe_fork_generation; a table whose lock is of an older generation
 * gets a fresh one before its next use, with the GIL held, so exactly one thread does it. */
extern volatile unsigned long pe_fork_generation;
int pe_table_atfork_init(void);
static inline void pe_table_lock_after_fork(PeTable *t) {
    if (PE_UNLIKELY(t->lock_fork_gen != pe_fork_generation)) {
        pthread_mutex_init(&t->lock, NULL);
        t->lock_fork_gen = pe_fork_generation;
    }
}

/* Run the statement(s) under table t's lock, with the GIL released: a thread waiting for the
 * lock with the GIL held would stall every Python thread. With t NULL (an optimizer step on
 * arrays that belong to no table), PE_NOGIL_ABOVE(nbytes, ...). */
#define PE_LOCKED(t, nbytes, ...)                                                                \
    do {                                                                                         \
        PeTable *pe_locked_t_ = (t);                                                             \
        if (pe_locked_t_) {                                                                      \
            pe_table_lock_after_fork(pe_locked_t_);                                              \
            Py_BEGIN_ALLOW_THREADS pthread_mutex_lock(&pe_locked_t_->lock);                      \
            __VA_ARGS__;                                                                         \
            pthread_mutex_unlock(&pe_locked_t_->lock);                                           \
            Py_END_ALLOW_THREADS                                                                 \
        } else {                                                                                 \
            PE_NOGIL_ABOVE(nbytes, __VA_ARGS__);                                                 \
        }                                                                                        \
    } while (0)

#endif
