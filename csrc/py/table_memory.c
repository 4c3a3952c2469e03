/* How a pyembed._core.Table comes to be and goes: the weight dtypes it stores, its buffers (64-byte
 * aligned and owned, or a wrapped array's memory kept alive), the constructors Table(),
 * Table.wrap and the unpickler _table_rebuild, the gradient allocated at the first backward, and
 * dealloc, which frees what the constructors allocated. table.c holds the type's slots,
 * attributes and method table, which name the functions here (declared in table.h). */
#include "table.h"
#include "methods.h"

#include <string.h>

/* ---- buffers ---------------------------------------------------------------------------- */

int pe_table_ensure_grad(PeTable *t) {
    if (t->grad) return 0;
    size_t nb = pe_table_nbytes(t);
    /* a mapped table may be larger than memory: its gradient must cost the rows touched only */
    char *g = (char *)(t->owner ? pe_aligned_calloc_small_pages(nb ? nb : 1)
                                : pe_aligned_calloc(nb ? nb : 1));
    uint8_t *mark = (uint8_t *)PyMem_Calloc((size_t)(t->rows ? t->rows : 1), 1);
    int64_t *touched = (int64_t *)PyMem_Malloc((size_t)(t->rows ? t->rows : 1) * sizeof(int64_t));
    if (!g || !mark || !touched) {
        pe_aligned_free(g);
        PyMem_Free(mark);
        PyMem_Free(touched);
        PyErr_Format(PyExc_MemoryError, "cannot allocate the gradient of a %lld x %lld table",
                     (long long)t->rows, (long long)t->dim);
        return -1;
    }
    t->mark = mark;
    t->touched = touched;
    t->n_touched = 0;
    t->touched_sorted = 1;
    t->grad = g; /* last: other threads test grad != NULL */
    return 0;
}

/* The storage of a weight dtype: float32, float64, float16 (NumPy's) or bfloat16 (ml_dtypes', a
 * user dtype NumPy knows by its scalar type's name). *typenum: the arithmetic; *half: PE_HALF_*
 * or 0. -1 with ValueError naming `what` otherwise. */
int pe_table_dtype(PyArray_Descr *d, const char *what, PyObject *shown, int *typenum,
                   int *half) {
    const char *name = d->typeobj ? d->typeobj->tp_name : "";
    const char *dot = strrchr(name, '.');
    *typenum = NPY_FLOAT32;
    *half = 0;
    if (d->type_num == NPY_FLOAT32 || d->type_num == NPY_FLOAT64) *typenum = d->type_num;
    else if (d->type_num == NPY_HALF) *half = PE_HALF_F16;
    else if (PyDataType_ELSIZE(d) == 2 && strcmp(dot ? dot + 1 : name, "bfloat16") == 0)
        *half = PE_HALF_BF16;
    else {
        PyErr_Format(PyExc_ValueError,
                     "%s must be float32 or float64, or float16 or bfloat16 (ml_dtypes), got %R",
                     what, shown ? shown : (PyObject *)d);
        return -1;
    }
    if (!PyArray_ISNBO(d->byteorder)) {
        PyErr_Format(PyExc_ValueError, "%s must be in native byte order, got %R", what,
                     shown ? shown : (PyObject *)d);
        return -1;
    }
    return 0;
}

/* A table of that shape and weight dtype without its weight buffer (NULL), or NULL with the
 * exception set. */
static PeTable *table_shell(PyTypeObject *type, int64_t rows, int64_t dim, PyArray_Descr *wdescr) {
    int typenum, half;
    if (pe_table_dtype(wdescr, "dtype", NULL, &typenum, &half) < 0) return NULL;
    if (rows < 0 || dim < 0) {
        PyErr_Format(PyExc_ValueError,
                     "num_embeddings and embedding_dim must be >= 0, got %lld and %lld",
                     (long long)rows, (long long)dim);
        return NULL;
    }
    size_t itemsize = typenum == NPY_FLOAT64 ? 8 : 4, witemsize = half ? 2 : itemsize;
    size_t elems = pe_mul_size((size_t)rows, (size_t)dim);
    size_t nb = pe_mul_size(elems, itemsize); /* the grad: the larger buffer */
    if (elems == SIZE_MAX || nb == SIZE_MAX || nb > (size_t)PY_SSIZE_T_MAX / 2 ||
        (uint64_t)rows > (uint64_t)PY_SSIZE_T_MAX / 16) {
        PyErr_Format(PyExc_OverflowError, "a %lld x %lld table does not fit in memory",
                     (long long)rows, (long long)dim);
        return NULL;
    }
    PeTable *self = (PeTable *)type->tp_alloc(type, 0);
    if (!self) return NULL;
    self->typenum = typenum;
    self->itemsize = itemsize;
    self->half = half;
    self->witemsize = witemsize;
    Py_INCREF(wdescr);
    self->wdescr = wdescr;
    self->rows = rows;
    self->dim = dim;
    pthread_mutex_init(&self->lock, NULL);
    self->lock_fork_gen = pe_fork_generation;
    return self;
}

static PeTable *table_alloc(PyTypeObject *type, int64_t rows, int64_t dim, PyArray_Descr *wdescr) {
    PeTable *self = table_shell(type, rows, dim, wdescr);
    if (!self) return NULL;
    size_t nb = pe_table_weight_nbytes(self);
    self->weight = (char *)pe_aligned_calloc(nb ? nb : 1);
    if (!self->weight) {
        Py_DECREF(self);
        PyErr_Format(PyExc_MemoryError, "cannot allocate a %lld x %lld table (%zu bytes)",
                     (long long)rows, (long long)dim, nb);
        return NULL;
    }
    return self;
}

/* ---- constructors and dealloc ----------------------------------------------------------- */

/* A size argument as a long long, the error naming it and the value (PyArg's "L" says neither,
 * and takes True for 1). Negative values pass: table_alloc names them. */
static int parse_size(PyObject *obj, const char *name, long long *out) {
    if (PyBool_Check(obj) || !PyIndex_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %.80R (%.200s)", name, obj,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyObject *v = PyNumber_Index(obj);
    if (!v) return -1;
    int overflow = 0;
    *out = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (overflow) PyErr_Format(PyExc_OverflowError, "%s %S does not fit in int64", name, v);
    Py_DECREF(v);
    return overflow || (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* ml_dtypes.bfloat16 for dtype="bfloat16", a name NumPy does not know: the optional dependency is
 * imported when asked for. New reference, or NULL with ImportError naming the package. */
static PyObject *bfloat16_type(void) {
    PyObject *ml = PyImport_ImportModule("ml_dtypes");
    if (!ml) {
        PyErr_SetString(PyExc_ImportError, "dtype='bfloat16' needs the ml_dtypes package: "
                                           "pip install 'pyembed[half]'");
        return NULL;
    }
    PyObject *bf16 = PyObject_GetAttrString(ml, "bfloat16");
    Py_DECREF(ml);
    return bf16;
}

PyObject *pe_table_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"num_embeddings", "embedding_dim", "dtype", NULL};
    long long rows, dim;
    PyObject *rows_obj, *dim_obj, *dtype = NULL;
    PyArray_Descr *d = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:Table", kwlist, &rows_obj, &dim_obj,
                                     &dtype))
        return NULL;
    if (parse_size(rows_obj, "num_embeddings", &rows) < 0 ||
        parse_size(dim_obj, "embedding_dim", &dim) < 0)
        return NULL;
    PyObject *bf16 = NULL;
    int named_bf16 = dtype && PyUnicode_Check(dtype) &&
                     PyUnicode_CompareWithASCIIString(dtype, "bfloat16") == 0;
    if (named_bf16 && !(dtype = bf16 = bfloat16_type())) return NULL;
    if (!dtype || dtype == Py_None) {
        d = PyArray_DescrFromType(NPY_FLOAT32);
    } else if (!PyArray_DescrConverter(dtype, &d)) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) { /* NumPy's message names neither */
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError,
                         "dtype must be float32 or float64, or float16 or bfloat16, got %.80R",
                         dtype);
        }
        Py_XDECREF(bf16);
        return NULL;
    }
    PeTable *t = NULL;
    int typenum, half;
    if (d && pe_table_dtype(d, "dtype", dtype, &typenum, &half) == 0)
        t = table_alloc(type, rows, dim, d);
    Py_XDECREF(d);
    Py_XDECREF(bf16);
    return (PyObject *)t;
}

void pe_table_dealloc(PeTable *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
    if (!self->owner) pe_aligned_free(self->weight);
    Py_CLEAR(self->owner);
    pe_aligned_free(self->grad);
    PyMem_Free(self->mark);
    PyMem_Free(self->touched);
    pthread_mutex_destroy(&self->lock);
    Py_XDECREF(self->wdescr);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

const char pe_table_wrap_doc[] = PyDoc_STR(
"wrap(weight)\n--\n\n"
"A Table whose weight IS weight's memory (no copy): a 2-D, C-contiguous, aligned float32 or\n"
"float64 array in native byte order, such as a numpy.memmap of a file larger than RAM. The\n"
"table keeps the array alive; lookups, backward and lazy optimizer steps touch only the pages\n"
"of the rows they use, and the gradient's pages cost memory only where rows are touched. A\n"
"read-only array gives a read-only table: lookups only (backward, renorm, weight assignment and\n"
"optimizer steps raise ValueError).");

PyObject *pe_table_wrap(PyTypeObject *type, PyObject *arg) {
    if (!PyArray_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "weight must be a numpy array, got %.200s",
                     Py_TYPE(arg)->tp_name);
        return NULL;
    }
    PyArrayObject *a = (PyArrayObject *)arg;
    int typenum = PyArray_TYPE(a);
    if (PyArray_NDIM(a) != 2 || (typenum != NPY_FLOAT32 && typenum != NPY_FLOAT64) ||
        !PyArray_ISNOTSWAPPED(a) || !PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISALIGNED(a)) {
        PyObject *descr = (PyObject *)PyArray_DESCR(a);
        PyErr_Format(PyExc_ValueError,
                     "weight must be a 2-D C-contiguous aligned float32 or float64 array in "
                     "native byte order (its memory becomes the table's), got a %d-D %S array%s%s",
                     PyArray_NDIM(a), descr, PyArray_IS_C_CONTIGUOUS(a) ? "" : ", not C-contiguous",
                     PyArray_ISALIGNED(a) ? "" : ", not aligned");
        return NULL;
    }
    PeTable *self = table_shell(type, (int64_t)PyArray_DIM(a, 0), (int64_t)PyArray_DIM(a, 1),
                                PyArray_DESCR(a));
    if (!self) return NULL;
    self->weight = (char *)PyArray_DATA(a);
    self->owner = Py_NewRef(arg);
    self->readonly = !PyArray_ISWRITEABLE(a);
    return (PyObject *)self;
}

/* ---- module functions ------------------------------------------------------------------- */

static PyObject *table_rebuild(PyObject *mod, PyObject *args) {
    PyObject *cls, *w_obj, *g_obj, *t_obj;
    PyArrayObject *w = NULL, *g = NULL, *t = NULL;
    PeTable *self = NULL;
    if (!PyArg_ParseTuple(args, "OOOO:_table_rebuild", &cls, &w_obj, &g_obj, &t_obj)) return NULL;
    pe_module_state *st = (pe_module_state *)PyModule_GetState(mod);
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, st->TableType)) {
        PyErr_SetString(PyExc_TypeError, "_table_rebuild: first argument must be a Table type");
        return NULL;
    }
    int typenum, half;
    if (!PyArray_Check(w_obj) || PyArray_NDIM((PyArrayObject *)w_obj) != 2 ||
        pe_table_dtype(PyArray_DESCR((PyArrayObject *)w_obj), "weight", NULL, &typenum,
                       &half) < 0) {
        PyErr_Clear();
        PyErr_SetString(PyExc_ValueError, "_table_rebuild: weight must be a 2-D float array");
        return NULL;
    }
    w = (PyArrayObject *)PyArray_FROM_OF(w_obj, NPY_ARRAY_IN_ARRAY);
    if (!w) goto fail;
    npy_intp *dims = PyArray_DIMS(w);
    self = table_alloc((PyTypeObject *)cls, (int64_t)dims[0], (int64_t)dims[1], PyArray_DESCR(w));
    if (!self) goto fail;
    memcpy(self->weight, PyArray_DATA(w), pe_table_weight_nbytes(self));
    if (g_obj != Py_None) {
        if (pe_convert_float(g_obj, "grad", typenum, &g) < 0) goto fail;
        if (PyArray_NDIM(g) != 2 || !PyArray_CompareLists(PyArray_DIMS(g), dims, 2)) {
            pe_shape_error("grad", PyArray_NDIM(g), PyArray_DIMS(g), 2, dims, "the weight");
            goto fail;
        }
        if (pe_convert_ids(t_obj, "touched", self->rows, &t) < 0) goto fail;
        if ((size_t)PyArray_SIZE(t) > (size_t)self->rows) {
            PyErr_SetString(PyExc_ValueError, "_table_rebuild: too many touched rows");
            goto fail;
        }
        if (pe_table_ensure_grad(self) < 0) goto fail;
        memcpy(self->grad, PyArray_DATA(g), pe_table_nbytes(self));
        const int64_t *tp = (const int64_t *)PyArray_DATA(t);
        for (npy_intp i = 0; i < PyArray_SIZE(t); i++) {
            if (!self->mark[tp[i]]) {
                self->mark[tp[i]] = 1;
                self->touched[self->n_touched++] = tp[i];
            }
        }
        self->touched_sorted = 0;
    }
    PE_RELEASE(w, g, t);
    return (PyObject *)self;
fail:
    PE_RELEASE(w, g, t, self);
    return NULL;
}

PyMethodDef pe_table_functions[] = {
    {"_table_rebuild", table_rebuild, METH_VARARGS, "Unpickle a Table (internal)."},
    {NULL, NULL, 0, NULL},
};
