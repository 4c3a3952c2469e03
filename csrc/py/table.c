/* pyembed._core.Table: owns the weight buffer, the lazily allocated gradient and the touched-row
 * list. A heap type with GC support (CPython's xxlimited pattern). This file holds the type
 * itself (slots, GC, attributes, pickling, the method table); its constructors, buffers and
 * dealloc live in table_memory.c, and the compute methods lookup / renorm / backward /
 * zero_grad / mark_all_touched in table_ops.c. */
#include "table.h"
#include "kernels/sort.h"

#include <string.h>
#include <structmember.h>

/* ---- helpers ---------------------------------------------------------------------------- */

volatile unsigned long pe_fork_generation;

static void count_fork_in_child(void) { pe_fork_generation++; }

static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;
static int g_atfork_rc;
static void register_atfork(void) { g_atfork_rc = pthread_atfork(NULL, NULL, count_fork_in_child); }

int pe_table_atfork_init(void) {
    pthread_once(&g_atfork_once, register_atfork);
    if (g_atfork_rc != 0) {
        PyErr_SetString(PyExc_RuntimeError, "pyembed: cannot register the at-fork handler");
        return -1;
    }
    return 0;
}

PyObject *pe_table_view(PeTable *self, char *data, int writeable) {
    npy_intp dims[2] = {(npy_intp)self->rows, (npy_intp)self->dim};
    PyArray_Descr *d = data == self->weight ? (Py_INCREF(self->wdescr), self->wdescr)
                                            : PyArray_DescrFromType(self->typenum);
    if (!d) return NULL;
    PyObject *arr = PyArray_NewFromDescr(&PyArray_Type, d, 2, dims, NULL, data,
                                         writeable ? NPY_ARRAY_CARRAY : NPY_ARRAY_CARRAY_RO, NULL);
    if (!arr) return NULL;
    Py_INCREF(self);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

int pe_table_refuse_readonly(PeTable *t, const char *what) {
    if (!t->readonly) return 0;
    PyErr_Format(PyExc_ValueError,
                 "%s needs a writeable table, but this %lld x %lld table's weight is read-only "
                 "memory (Embedding.from_memmap(..., mode=\"r\")?); open it with mode=\"r+\" "
                 "to train or change it", what, (long long)t->rows, (long long)t->dim);
    return -1;
}

int pe_parse_table(PyObject *module, PyObject *obj, int allow_none, PeTable **out) {
    pe_module_state *st = (pe_module_state *)PyModule_GetState(module);
    *out = NULL;
    if (allow_none && (!obj || obj == Py_None)) return 0;
    if (!obj || !st || !st->TableType || !PyObject_TypeCheck(obj, st->TableType)) {
        PyErr_Format(PyExc_TypeError, "table must be a pyembed.Table%s, got %.200s",
                     allow_none ? " or None" : "", obj ? Py_TYPE(obj)->tp_name : "nothing");
        return -1;
    }
    *out = (PeTable *)obj;
    return 0;
}

/* ---- type slots ------------------------------------------------------------------------- */

static int table_traverse(PeTable *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->wdescr);
    Py_VISIT(self->owner);
    return 0;
}

static int table_clear(PeTable *self) {
    /* owner stays until dealloc: weight points into it (and an array cannot refer back) */
    (void)self;
    return 0;
}

static PyObject *table_repr(PeTable *self) {
    char buf[64];
    snprintf(buf, sizeof buf, "%lld", (long long)(self->rows * self->dim));
    return PyUnicode_FromFormat("%s(num_embeddings=%lld, embedding_dim=%lld, dtype=%s, "
                                "parameters=%s)",
                                _PyType_Name(Py_TYPE(self)), (long long)self->rows,
                                (long long)self->dim,
                                self->half == PE_HALF_BF16  ? "bfloat16"
                                : self->half == PE_HALF_F16 ? "float16"
                                : self->typenum == NPY_FLOAT64 ? "float64"
                                                               : "float32",
                                buf);
}

/* ---- attributes ------------------------------------------------------------------------- */

static PyObject *get_weight(PeTable *self, void *c) {
    (void)c;
    return pe_table_view(self, self->weight, !self->readonly);
}

/* `value` as a C-contiguous (rows, dim) array of the half table's own dtype, by NumPy's cast
 * (ml_dtypes' for bfloat16): exactly what value.astype(dtype) gives, from any real dtype (NumPy
 * rounds float64 to float16 directly, not twice through float32). New reference, or NULL with
 * ValueError. */
static PyArrayObject *as_half_weight(PeTable *self, PyObject *value, const char *name) {
    PyArrayObject *arr = (PyArrayObject *)PyArray_FROM_O(value), *conv = NULL;
    if (!arr) return NULL;
    PyArray_Descr *d = PyArray_DESCR(arr);
    int t = PyArray_TYPE(arr);
    int same = PyArray_EquivTypes(d, self->wdescr);
    int typenum, half, ok = same || PyTypeNum_ISFLOAT(t) || PyTypeNum_ISINTEGER(t);
    if (!ok) { /* the other half dtype (bfloat16 into float16) */
        ok = pe_table_dtype(d, name, NULL, &typenum, &half) == 0;
        PyErr_Clear();
    }
    if (!ok || PyTypeNum_ISCOMPLEX(t) || t == NPY_BOOL) {
        PyErr_Format(PyExc_ValueError, "%s must be real numbers, got an array of dtype %S", name,
                     (PyObject *)d);
        goto done;
    }
    npy_intp want[2] = {(npy_intp)self->rows, (npy_intp)self->dim};
    if (PyArray_NDIM(arr) != 2 || !PyArray_CompareLists(PyArray_DIMS(arr), want, 2)) {
        pe_shape_error(name, PyArray_NDIM(arr), PyArray_DIMS(arr), 2, want, "this table");
        goto done;
    }
    Py_INCREF(self->wdescr); /* stolen */
    conv = (PyArrayObject *)PyArray_FromArray(arr, self->wdescr,
                                              NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
done:
    Py_DECREF(arr);
    return conv;
}

static int set_half_weight(PeTable *self, PyObject *value) {
    PyArrayObject *arr = as_half_weight(self, value, "weight");
    if (!arr) return -1;
    size_t nb = pe_table_weight_nbytes(self);
    const char *src = (const char *)PyArray_DATA(arr);
    PE_LOCKED(self, nb, memmove(self->weight, src, nb)); /* memmove: src may be this buffer */
    Py_DECREF(arr);
    return 0;
}

static int set_weight(PeTable *self, PyObject *value, void *c) {
    (void)c;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete weight");
        return -1;
    }
    if (pe_table_refuse_readonly(self, "assigning weight") < 0) return -1;
    PyArrayObject *arr = NULL;
    if (self->half) return set_half_weight(self, value);
    if (pe_convert_float(value, "weight", self->typenum, &arr) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            /* DESIGN: anything but an array of the right shape is a ValueError */
            PyObject *type, *val, *tb;
            PyErr_Fetch(&type, &val, &tb);
            PyErr_Format(PyExc_ValueError, "%S", val ? val : Py_None);
            PE_RELEASE(type, val, tb);
        }
        return -1;
    }
    npy_intp want[2] = {(npy_intp)self->rows, (npy_intp)self->dim};
    if (PyArray_NDIM(arr) != 2 || !PyArray_CompareLists(PyArray_DIMS(arr), want, 2)) {
        pe_shape_error("weight", PyArray_NDIM(arr), PyArray_DIMS(arr), 2, want,
                       "this table");
        Py_DECREF(arr);
        return -1;
    }
    size_t nb = pe_table_nbytes(self);
    const char *src = (const char *)PyArray_DATA(arr);
    PE_LOCKED(self, nb, memmove(self->weight, src, nb)); /* memmove: src may be this buffer */
    Py_DECREF(arr);
    return 0;
}

static PyObject *get_grad(PeTable *self, void *c) {
    (void)c;
    if (!self->grad) Py_RETURN_NONE;
    /* read-only: the kernels rely on rows outside touched being zero (add_dense_grad adds) */
    return pe_table_view(self, self->grad, 0);
}

/* Sort the touched list if needed and copy it into a raw buffer (table lock held, no GIL). */
static int sorted_touched_copy(PeTable *self, int64_t **copy, npy_intp *n) {
    if (!self->touched_sorted) {
        int rc = pe_sort_rows(self->touched, self->n_touched, self->rows);
        if (rc != PE_OK) return rc;
        self->touched_sorted = 1;
    }
    *n = (npy_intp)self->n_touched;
    *copy = (int64_t *)PyMem_RawMalloc((size_t)(*n ? *n : 1) * sizeof(int64_t));
    if (!*copy) return PE_ERR_NOMEM;
    memcpy(*copy, self->touched, (size_t)*n * sizeof(int64_t));
    return PE_OK;
}

static PyObject *get_touched(PeTable *self, void *c) {
    (void)c;
    npy_intp n = 0;
    int64_t *copy = NULL;
    int rc = PE_OK;
    if (!self->grad) return PyArray_ZEROS(1, &n, NPY_INT64, 0);
    /* sort and copy under the lock (a backward in another thread may append meanwhile) into a
     * raw buffer, then build the array with the GIL back */
    PE_LOCKED(self, 0, rc = sorted_touched_copy(self, &copy, &n));
    if (rc != PE_OK) return pe_raise_kernel_error(rc, "touched"), NULL;
    PyArrayObject *out = (PyArrayObject *)PyArray_EMPTY(1, &n, NPY_INT64, 0);
    if (out) memcpy(PyArray_DATA(out), copy, (size_t)n * sizeof(int64_t));
    PyMem_RawFree(copy);
    return (PyObject *)out;
}

static PyObject *get_num_embeddings(PeTable *self, void *c) {
    (void)c;
    return PyLong_FromLongLong(self->rows);
}

static PyObject *get_embedding_dim(PeTable *self, void *c) {
    (void)c;
    return PyLong_FromLongLong(self->dim);
}

static PyObject *get_dtype(PeTable *self, void *c) {
    (void)c;
    Py_INCREF(self->wdescr);
    return (PyObject *)self->wdescr;
}

static PyObject *get_shape(PeTable *self, void *c) {
    (void)c;
    return Py_BuildValue("(LL)", (long long)self->rows, (long long)self->dim);
}

static PyObject *get_n_touched(PeTable *self, void *c) {
    (void)c;
    return PyLong_FromSize_t(self->grad ? self->n_touched : 0);
}

static PyGetSetDef table_getset[] = {
    {"weight", (getter)get_weight, (setter)set_weight,
     "The (num_embeddings, embedding_dim) weights as a NumPy array sharing the table's memory.\n"
     "Assigning an array of that shape copies it in.", NULL},
    {"grad", (getter)get_grad, NULL,
     "The accumulated gradient (a read-only array sharing the table's memory), or None before the "
     "first backward. Rows outside touched are zero and the kernels rely on it (a backward may "
     "write an untouched row instead of adding to it), so it is read-only: gradients get in "
     "through backward and add_dense_grad, and out through zero_grad.", NULL},
    {"touched", (getter)get_touched, NULL,
     "Sorted int64 ids of the rows that received gradient since the last zero_grad().", NULL},
    {"num_touched", (getter)get_n_touched, NULL, "len(touched), without sorting.", NULL},
    {"num_embeddings", (getter)get_num_embeddings, NULL, "Number of rows.", NULL},
    {"embedding_dim", (getter)get_embedding_dim, NULL, "Length of each row.", NULL},
    {"dtype", (getter)get_dtype, NULL,
     "numpy.dtype of the weights (float32, float64, float16 or ml_dtypes' bfloat16). The gradient\n"
     "of a float16 / bfloat16 table is float32.", NULL},
    {"shape", (getter)get_shape, NULL, "(num_embeddings, embedding_dim)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyObject *table_reduce(PeTable *self, PyObject *noargs) {
    (void)noargs;
    PyObject *mod = NULL, *rebuild = NULL, *w = NULL, *g = NULL, *t = NULL, *res = NULL;
    PyObject *wv = get_weight(self, NULL);
    if (!wv) return NULL;
    w = PyArray_NewCopy((PyArrayObject *)wv, NPY_CORDER);
    Py_DECREF(wv);
    if (!w) goto done;
    if (self->grad) {
        PyObject *gv = get_grad(self, NULL);
        if (!gv) goto done;
        g = PyArray_NewCopy((PyArrayObject *)gv, NPY_CORDER);
        Py_DECREF(gv);
        if (!g) goto done;
    } else {
        g = Py_NewRef(Py_None);
    }
    t = get_touched(self, NULL);
    if (!t) goto done;
    mod = PyImport_ImportModule("pyembed._core");
    if (!mod) goto done;
    rebuild = PyObject_GetAttrString(mod, "_table_rebuild");
    if (!rebuild) goto done;
    res = Py_BuildValue("(O(OOOO))", rebuild, (PyObject *)Py_TYPE(self), w, g, t);
done:
    PE_RELEASE(mod, rebuild, w, g, t);
    return res;
}

static PyObject *table_sizeof(PeTable *self, PyObject *noargs) {
    (void)noargs;
    size_t s = sizeof(PeTable) + (self->owner ? 0 : pe_table_weight_nbytes(self));
    if (self->grad) s += pe_table_nbytes(self) + (size_t)self->rows * (1 + sizeof(int64_t));
    return PyLong_FromSize_t(s);
}

static PyMethodDef table_methods[] = {
    PE_KW_METHOD("lookup", pe_table_lookup, pe_table_lookup_doc),
    PE_KW_METHOD("renorm", pe_table_renorm, pe_table_renorm_doc),
    PE_KW_METHOD("backward", pe_table_backward, pe_table_backward_doc),
    {"zero_grad", (PyCFunction)pe_table_zero_grad, METH_NOARGS, pe_table_zero_grad_doc},
    {"add_dense_grad", (PyCFunction)pe_table_add_dense_grad, METH_O, pe_table_add_dense_grad_doc},
    {"mark_all_touched", (PyCFunction)pe_table_mark_all_touched, METH_NOARGS,
     pe_table_mark_all_touched_doc},
    {"wrap", (PyCFunction)pe_table_wrap, METH_O | METH_CLASS, pe_table_wrap_doc},
    {"__reduce__", (PyCFunction)table_reduce, METH_NOARGS, "Pickle support."},
    {"__sizeof__", (PyCFunction)table_sizeof, METH_NOARGS, "Bytes held, buffers included."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef table_members[] = {
    {"__weaklistoffset__", T_PYSSIZET, offsetof(PeTable, weakreflist), READONLY, NULL},
    {NULL, 0, 0, 0, NULL},
};

PyDoc_STRVAR(table_doc,
"Table(num_embeddings, embedding_dim, dtype=numpy.float32)\n--\n\n"
"A (num_embeddings, embedding_dim) embedding table in 64-byte aligned memory, zero-filled,\n"
"with its lazily allocated gradient and the list of rows touched since the last zero_grad().\n"
"weight and grad are NumPy arrays sharing the table's memory; the table outlives them.\n"
"dtype: float32, float64, float16 or ml_dtypes.bfloat16; a float16 / bfloat16 table is read as\n"
"float32 (lookups return float32) and its gradient is float32.");

static PyType_Slot table_slots[] = {
    {Py_tp_new, pe_table_new},
    {Py_tp_dealloc, pe_table_dealloc},
    {Py_tp_traverse, table_traverse},
    {Py_tp_clear, table_clear},
    {Py_tp_repr, table_repr},
    {Py_tp_getset, table_getset},
    {Py_tp_methods, table_methods},
    {Py_tp_members, table_members},
    {Py_tp_doc, (void *)table_doc},
    {0, NULL},
};

PyType_Spec pe_table_spec = {
    .name = "pyembed._core.Table",
    .basicsize = sizeof(PeTable),
    .itemsize = 0,
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .slots = table_slots,
};

