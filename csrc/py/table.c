/* pyembed._core.Table: owns the weight buffer, the lazily allocated gradient and the touched-row
 * list; lookup / renorm / backward / zero_grad call the kernels with the GIL released and the
 * table's lock held. A heap type with GC support (CPython's xxlimited pattern). */
#include "table.h"
#include "pool.h"
#include "gather.h"
#include "scatter.h"
#include "sort.h"

#include <string.h>
#include <structmember.h>

/* ---- helpers ---------------------------------------------------------------------------- */

static size_t table_nbytes(const PeTable *t) {
    return (size_t)t->rows * (size_t)t->dim * t->itemsize;
}

static PyObject *make_view(PeTable *self, char *data) {
    npy_intp dims[2] = {(npy_intp)self->rows, (npy_intp)self->dim};
    PyArray_Descr *d = PyArray_DescrFromType(self->typenum);
    if (!d) return NULL;
    PyObject *arr = PyArray_NewFromDescr(&PyArray_Type, d, 2, dims, NULL, data,
                                         NPY_ARRAY_CARRAY, NULL);
    if (!arr) return NULL;
    Py_INCREF(self);
    if (PyArray_SetBaseObject((PyArrayObject *)arr, (PyObject *)self) < 0) {
        Py_DECREF(arr);
        return NULL;
    }
    return arr;
}

int pe_table_ensure_grad(PeTable *t) {
    if (t->grad) return 0;
    size_t nb = table_nbytes(t);
    char *g = (char *)pe_aligned_calloc(nb ? nb : 1);
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

int pe_is_table(PyObject *module, PyObject *obj) {
    pe_module_state *st = (pe_module_state *)PyModule_GetState(module);
    return st && st->TableType && PyObject_TypeCheck(obj, st->TableType);
}

static PeTable *table_alloc(PyTypeObject *type, int64_t rows, int64_t dim, int typenum) {
    if (rows < 0 || dim < 0) {
        PyErr_Format(PyExc_ValueError,
                     "num_embeddings and embedding_dim must be >= 0, got %lld and %lld",
                     (long long)rows, (long long)dim);
        return NULL;
    }
    size_t itemsize = typenum == NPY_FLOAT64 ? 8 : 4;
    size_t elems = pe_mul_size((size_t)rows, (size_t)dim);
    size_t nb = pe_mul_size(elems, itemsize);
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
    self->rows = rows;
    self->dim = dim;
    self->lock = PyThread_allocate_lock();
    if (!self->lock) {
        Py_DECREF(self);
        PyErr_NoMemory();
        return NULL;
    }
    self->weight = (char *)pe_aligned_calloc(nb ? nb : 1);
    if (!self->weight) {
        Py_DECREF(self);
        PyErr_Format(PyExc_MemoryError, "cannot allocate a %lld x %lld table (%zu bytes)",
                     (long long)rows, (long long)dim, nb);
        return NULL;
    }
    return self;
}

/* ---- type slots ------------------------------------------------------------------------- */

static PyObject *table_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"num_embeddings", "embedding_dim", "dtype", NULL};
    long long rows, dim;
    PyObject *dtype = NULL;
    int typenum = NPY_FLOAT32;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "LL|O:Table", kwlist, &rows, &dim, &dtype))
        return NULL;
    if (dtype && dtype != Py_None && pe_parse_float_dtype(dtype, &typenum) < 0) return NULL;
    return (PyObject *)table_alloc(type, rows, dim, typenum);
}

static int table_traverse(PeTable *self, visitproc visit, void *arg) {
    Py_VISIT(Py_TYPE(self));
    return 0;
}

static int table_clear(PeTable *self) {
    (void)self;
    return 0;
}

static void table_dealloc(PeTable *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakreflist) PyObject_ClearWeakRefs((PyObject *)self);
    pe_aligned_free(self->weight);
    pe_aligned_free(self->grad);
    PyMem_Free(self->mark);
    PyMem_Free(self->touched);
    if (self->lock) PyThread_free_lock(self->lock);
    tp->tp_free((PyObject *)self);
    Py_DECREF(tp);
}

static PyObject *table_repr(PeTable *self) {
    char buf[64];
    snprintf(buf, sizeof buf, "%lld", (long long)(self->rows * self->dim));
    return PyUnicode_FromFormat("%s(num_embeddings=%lld, embedding_dim=%lld, dtype=%s, "
                                "parameters=%s)",
                                _PyType_Name(Py_TYPE(self)), (long long)self->rows,
                                (long long)self->dim,
                                self->typenum == NPY_FLOAT64 ? "float64" : "float32", buf);
}

/* ---- attributes ------------------------------------------------------------------------- */

static PyObject *get_weight(PeTable *self, void *c) {
    (void)c;
    return make_view(self, self->weight);
}

static int set_weight(PeTable *self, PyObject *value, void *c) {
    (void)c;
    if (!value) {
        PyErr_SetString(PyExc_AttributeError, "cannot delete weight");
        return -1;
    }
    PyArrayObject *arr = NULL;
    if (pe_convert_float(value, "weight", self->typenum, &arr) < 0) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) {
            /* DESIGN: anything but an array of the right shape is a ValueError */
            PyObject *type, *val, *tb;
            PyErr_Fetch(&type, &val, &tb);
            PyErr_Format(PyExc_ValueError, "%S", val ? val : Py_None);
            Py_XDECREF(type);
            Py_XDECREF(val);
            Py_XDECREF(tb);
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
    size_t nb = table_nbytes(self);
    const char *src = (const char *)PyArray_DATA(arr);
    Py_BEGIN_ALLOW_THREADS
    PE_TABLE_LOCK(self);
    memmove(self->weight, src, nb); /* memmove: the value may be a view of this very buffer */
    PE_TABLE_UNLOCK(self);
    Py_END_ALLOW_THREADS
    Py_DECREF(arr);
    return 0;
}

static PyObject *get_grad(PeTable *self, void *c) {
    (void)c;
    if (!self->grad) Py_RETURN_NONE;
    return make_view(self, self->grad);
}

static PyObject *get_touched(PeTable *self, void *c) {
    (void)c;
    npy_intp n = 0;
    int64_t *copy = NULL;
    int rc = PE_OK;
    if (!self->grad) return PyArray_ZEROS(1, &n, NPY_INT64, 0);
    /* sort and copy under the lock (a backward in another thread may append meanwhile) into a
     * raw buffer, then build the array with the GIL back */
    Py_BEGIN_ALLOW_THREADS
    PE_TABLE_LOCK(self);
    if (!self->touched_sorted) {
        rc = pe_sort_rows(self->touched, self->n_touched, self->rows);
        if (rc == PE_OK) self->touched_sorted = 1;
    }
    if (rc == PE_OK) {
        n = (npy_intp)self->n_touched;
        copy = (int64_t *)PyMem_RawMalloc((size_t)(n ? n : 1) * sizeof(int64_t));
        if (copy) memcpy(copy, self->touched, (size_t)n * sizeof(int64_t));
        else rc = PE_ERR_NOMEM;
    }
    PE_TABLE_UNLOCK(self);
    Py_END_ALLOW_THREADS
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
    return (PyObject *)PyArray_DescrFromType(self->typenum);
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
     "The accumulated gradient (an array sharing the table's memory), or None before the first "
     "backward.", NULL},
    {"touched", (getter)get_touched, NULL,
     "Sorted int64 ids of the rows that received gradient since the last zero_grad().", NULL},
    {"num_touched", (getter)get_n_touched, NULL, "len(touched), without sorting.", NULL},
    {"num_embeddings", (getter)get_num_embeddings, NULL, "Number of rows.", NULL},
    {"embedding_dim", (getter)get_embedding_dim, NULL, "Length of each row.", NULL},
    {"dtype", (getter)get_dtype, NULL, "numpy.dtype of the weights (float32 or float64).", NULL},
    {"shape", (getter)get_shape, NULL, "(num_embeddings, embedding_dim)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

/* ---- methods ---------------------------------------------------------------------------- */

/* An input the kernel reads while it writes weight, grad or out must not share their memory: an id
 * rewritten mid-call would index out of range (a crash), and np.add.at reads grad_output as it was
 * before the call. The converted inputs are C-contiguous, so [data, data + nbytes) is their extent;
 * an input overlapping [buf, buf + nb) is replaced by a private copy. 0, or -1 with an exception. */
static int copy_if_overlaps(PyArrayObject **arr, const void *buf, size_t nb) {
    const char *b = (const char *)buf, *p = (const char *)PyArray_DATA(*arr);
    size_t pn = (size_t)PyArray_NBYTES(*arr);
    if (!b || !nb || !pn || p >= b + nb || b >= p + pn) return 0;
    PyArrayObject *c = (PyArrayObject *)PyArray_NewCopy(*arr, NPY_CORDER);
    if (!c) return -1;
    Py_DECREF(*arr);
    *arr = c;
    return 0;
}

static int parse_padding_idx(PyObject *obj, int64_t rows, int64_t *out) {
    *out = -1;
    if (!obj || obj == Py_None) return 0;
    long long v = PyLong_AsLongLong(obj);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (v < 0) v += rows; /* torch accepts a negative padding_idx counted from the end */
    if (v < 0 || v >= rows) {
        PyErr_Format(PyExc_ValueError, "padding_idx %S must be within [-%lld, %lld)", obj,
                     (long long)rows, (long long)rows);
        return -1;
    }
    *out = v;
    return 0;
}

/* max_norm renormalisation of the distinct rows in ids (GIL released, table lock held). */
static int run_renorm(PeTable *self, const int64_t *ids, size_t n, double max_norm,
                      double norm_type) {
    int rc;
    Py_BEGIN_ALLOW_THREADS
    PE_TABLE_LOCK(self);
    if (self->typenum == NPY_FLOAT32)
        rc = pe_renorm_f32((float *)self->weight, ids, n, (size_t)self->dim, self->rows, max_norm,
                           norm_type);
    else
        rc = pe_renorm_f64((double *)self->weight, ids, n, (size_t)self->dim, self->rows,
                           max_norm, norm_type);
    PE_TABLE_UNLOCK(self);
    Py_END_ALLOW_THREADS
    return rc;
}

static int check_renorm_args(double max_norm, double norm_type) {
    if (!(max_norm >= 0.0)) {
        PyObject *v = PyFloat_FromDouble(max_norm);
        if (v) {
            PyErr_Format(PyExc_ValueError, "max_norm must be >= 0, got %R", v);
            Py_DECREF(v);
        }
        return -1;
    }
    if (!(norm_type > 0.0)) {
        PyErr_SetString(PyExc_ValueError, "norm_type must be > 0");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(lookup_doc,
"lookup(ids, out=None, max_norm=None, norm_type=2.0)\n--\n\n"
"Rows of the table for ids of any integer dtype and shape: W[ids], of shape ids.shape + (dim,).\n"
"out, if given, must be a C-contiguous writeable array of exactly that shape and dtype.\n"
"max_norm, if given, first renormalises the looked-up rows in place (see renorm), after every\n"
"argument has been checked. Raises IndexError naming the first id out of range; nothing is\n"
"written then.");

static PyObject *table_lookup(PeTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"ids", "out", "max_norm", "norm_type", NULL};
    PyObject *ids_obj, *out_obj = Py_None, *max_norm_obj = Py_None;
    double max_norm = 0.0, norm_type = 2.0;
    PyArrayObject *ids = NULL;
    PyObject *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOd:lookup", kwlist, &ids_obj, &out_obj,
                                     &max_norm_obj, &norm_type))
        return NULL;
    if (max_norm_obj != Py_None) {
        max_norm = PyFloat_AsDouble(max_norm_obj);
        if (max_norm == -1.0 && PyErr_Occurred()) return NULL;
        if (check_renorm_args(max_norm, norm_type) < 0) return NULL;
    }
    if (pe_convert_ids(ids_obj, "ids", self->rows, &ids) < 0) return NULL;
    int nd = PyArray_NDIM(ids);
    if (nd + 1 > NPY_MAXDIMS) {
        PyErr_Format(PyExc_ValueError, "ids has %d dimensions; at most %d are allowed", nd,
                     NPY_MAXDIMS - 1);
        goto fail;
    }
    npy_intp shape[NPY_MAXDIMS];
    if (nd) memcpy(shape, PyArray_DIMS(ids), (size_t)nd * sizeof(npy_intp)); /* 0-d: DIMS is NULL */
    shape[nd] = (npy_intp)self->dim;
    if (out_obj != Py_None) {
        if (pe_check_out(out_obj, "out", self->typenum, nd + 1, shape) < 0) goto fail;
        char *o = (char *)PyArray_DATA((PyArrayObject *)out_obj);
        size_t onb = (size_t)PyArray_NBYTES((PyArrayObject *)out_obj);
        if (onb && o < self->weight + table_nbytes(self) && self->weight < o + onb) {
            PyErr_SetString(PyExc_ValueError, "out overlaps the table's weight");
            goto fail;
        }
        Py_INCREF(out_obj);
        out = out_obj;
    } else {
        out = pe_pool_empty(nd + 1, shape, self->typenum);
        if (!out) goto fail;
    }
    if (copy_if_overlaps(&ids, PyArray_DATA((PyArrayObject *)out),
                         (size_t)PyArray_NBYTES((PyArrayObject *)out)) < 0 ||
        (max_norm_obj != Py_None && copy_if_overlaps(&ids, self->weight, table_nbytes(self)) < 0))
        goto fail;
    size_t n = (size_t)PyArray_SIZE(ids);
    size_t row_bytes = (size_t)self->dim * self->itemsize;
    int rc;
    /* every argument is checked: only now may the weights change (torch renorms, then looks up) */
    if (max_norm_obj != Py_None &&
        (rc = run_renorm(self, (const int64_t *)PyArray_DATA(ids), n, max_norm, norm_type)) != PE_OK) {
        pe_raise_kernel_error(rc, "lookup");
        goto fail;
    }
    if (n * row_bytes > ((size_t)1 << 16)) {
        Py_BEGIN_ALLOW_THREADS
        rc = pe_gather(PyArray_DATA((PyArrayObject *)out), self->weight,
                       (const int64_t *)PyArray_DATA(ids), n, row_bytes);
        Py_END_ALLOW_THREADS
    } else {
        rc = pe_gather(PyArray_DATA((PyArrayObject *)out), self->weight,
                       (const int64_t *)PyArray_DATA(ids), n, row_bytes);
    }
    if (rc != PE_OK) {
        pe_raise_kernel_error(rc, "lookup");
        goto fail;
    }
    Py_DECREF(ids);
    return out;
fail:
    Py_XDECREF(ids);
    Py_XDECREF(out);
    return NULL;
}

PyDoc_STRVAR(renorm_doc,
"renorm(ids, max_norm, norm_type=2.0)\n--\n\n"
"torch.embedding_renorm_: every distinct row in ids whose norm_type-norm exceeds max_norm is\n"
"scaled in place to norm max_norm / (norm + 1e-7) * norm.");

static PyObject *table_renorm(PeTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"ids", "max_norm", "norm_type", NULL};
    PyObject *ids_obj;
    double max_norm, norm_type = 2.0;
    PyArrayObject *ids = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Od|d:renorm", kwlist, &ids_obj, &max_norm,
                                     &norm_type))
        return NULL;
    if (check_renorm_args(max_norm, norm_type) < 0) return NULL;
    if (pe_convert_ids(ids_obj, "ids", self->rows, &ids) < 0) return NULL;
    if (copy_if_overlaps(&ids, self->weight, table_nbytes(self)) < 0) {
        Py_DECREF(ids);
        return NULL;
    }
    int rc = run_renorm(self, (const int64_t *)PyArray_DATA(ids), (size_t)PyArray_SIZE(ids),
                        max_norm, norm_type);
    Py_DECREF(ids);
    if (rc != PE_OK) return pe_raise_kernel_error(rc, "renorm"), NULL;
    Py_RETURN_NONE;
}

PyDoc_STRVAR(backward_doc,
"backward(ids, grad_output, padding_idx=None, scale_grad_by_freq=False)\n--\n\n"
"Accumulate the lookup's gradient: np.add.at(grad, ids, grad_output), each row summed in the\n"
"order its ids appear (bitwise identical for every thread count). The padding row gets none;\n"
"with scale_grad_by_freq each contribution is scaled by 1 / (count of its id in ids).\n"
"grad_output must have shape ids.shape + (embedding_dim,).");

static PyObject *table_backward(PeTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"ids", "grad_output", "padding_idx", "scale_grad_by_freq", NULL};
    PyObject *ids_obj, *g_obj, *pad_obj = Py_None;
    int scale = 0;
    int64_t pad;
    PyArrayObject *ids = NULL, *g = NULL;
    int fresh_grad = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|Op:backward", kwlist, &ids_obj, &g_obj,
                                     &pad_obj, &scale))
        return NULL;
    if (parse_padding_idx(pad_obj, self->rows, &pad) < 0) return NULL;
    if (pe_convert_ids(ids_obj, "ids", self->rows, &ids) < 0) return NULL;
    if (pe_convert_float(g_obj, "grad_output", self->typenum, &g) < 0) goto fail;
    {
        int nd = PyArray_NDIM(ids);
        npy_intp want[NPY_MAXDIMS];
        if (nd + 1 > NPY_MAXDIMS) {
            PyErr_SetString(PyExc_ValueError, "ids has too many dimensions");
            goto fail;
        }
        if (nd) memcpy(want, PyArray_DIMS(ids), (size_t)nd * sizeof(npy_intp));
        want[nd] = (npy_intp)self->dim;
        if (PyArray_NDIM(g) != nd + 1 || !PyArray_CompareLists(PyArray_DIMS(g), want, nd + 1)) {
            pe_shape_error("grad_output", PyArray_NDIM(g), PyArray_DIMS(g), nd + 1, want,
                           "ids.shape + (embedding_dim,)");
            goto fail;
        }
    }
    fresh_grad = self->grad == NULL;
    if (copy_if_overlaps(&ids, self->grad, table_nbytes(self)) < 0 ||
        copy_if_overlaps(&g, self->grad, table_nbytes(self)) < 0)
        goto fail;
    if (pe_table_ensure_grad(self) < 0) goto fail;
    {
        size_t n = (size_t)PyArray_SIZE(ids);
        const int64_t *ip = (const int64_t *)PyArray_DATA(ids);
        const void *gp = PyArray_DATA(g);
        int rc;
        Py_BEGIN_ALLOW_THREADS
        PE_TABLE_LOCK(self);
        size_t before = self->n_touched;
        if (self->typenum == NPY_FLOAT32)
            rc = pe_scatter_add_f32((float *)self->grad, self->mark, self->touched,
                                    &self->n_touched, ip, (const float *)gp, n,
                                    (size_t)self->dim, self->rows, pad, scale);
        else
            rc = pe_scatter_add_f64((double *)self->grad, self->mark, self->touched,
                                    &self->n_touched, ip, (const double *)gp, n,
                                    (size_t)self->dim, self->rows, pad, scale);
        if (self->n_touched != before) self->touched_sorted = 0;
        PE_TABLE_UNLOCK(self);
        Py_END_ALLOW_THREADS
        if (rc != PE_OK) {
            pe_raise_kernel_error(rc, "backward");
            goto fail;
        }
    }
    Py_DECREF(ids);
    Py_DECREF(g);
    Py_RETURN_NONE;
fail:
    (void)fresh_grad; /* a fresh grad buffer is all zeros: the table is logically unchanged */
    Py_XDECREF(ids);
    Py_XDECREF(g);
    return NULL;
}

PyDoc_STRVAR(zero_grad_doc,
"zero_grad()\n--\n\n"
"Clear the gradient of the touched rows only (cost grows with the rows touched, not the table)\n"
"and empty the touched list.");

static PyObject *table_zero_grad(PeTable *self, PyObject *noargs) {
    (void)noargs;
    if (!self->grad) Py_RETURN_NONE;
    Py_BEGIN_ALLOW_THREADS
    PE_TABLE_LOCK(self);
    pe_zero_rows(self->grad, self->mark, self->touched, self->n_touched,
                 (size_t)self->dim * self->itemsize);
    self->n_touched = 0;
    self->touched_sorted = 1;
    PE_TABLE_UNLOCK(self);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

PyDoc_STRVAR(mark_all_doc,
"mark_all_touched()\n--\n\n"
"Allocate the gradient if needed and mark every row touched (for dense gradients such as the\n"
"tied output head, which write into every row).");

static PyObject *table_mark_all_touched(PeTable *self, PyObject *noargs) {
    (void)noargs;
    if (pe_table_ensure_grad(self) < 0) return NULL;
    Py_BEGIN_ALLOW_THREADS
    PE_TABLE_LOCK(self);
    for (int64_t r = 0; r < self->rows; r++) self->touched[r] = r;
    memset(self->mark, 1, (size_t)self->rows);
    self->n_touched = (size_t)self->rows;
    self->touched_sorted = 1;
    PE_TABLE_UNLOCK(self);
    Py_END_ALLOW_THREADS
    Py_RETURN_NONE;
}

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
    Py_XDECREF(mod);
    Py_XDECREF(rebuild);
    Py_XDECREF(w);
    Py_XDECREF(g);
    Py_XDECREF(t);
    return res;
}

static PyObject *table_sizeof(PeTable *self, PyObject *noargs) {
    (void)noargs;
    size_t s = sizeof(PeTable) + table_nbytes(self);
    if (self->grad) s += table_nbytes(self) + (size_t)self->rows * (1 + sizeof(int64_t));
    return PyLong_FromSize_t(s);
}

static PyMethodDef table_methods[] = {
    {"lookup", (PyCFunction)(void (*)(void))table_lookup, METH_VARARGS | METH_KEYWORDS,
     lookup_doc},
    {"renorm", (PyCFunction)(void (*)(void))table_renorm, METH_VARARGS | METH_KEYWORDS,
     renorm_doc},
    {"backward", (PyCFunction)(void (*)(void))table_backward, METH_VARARGS | METH_KEYWORDS,
     backward_doc},
    {"zero_grad", (PyCFunction)table_zero_grad, METH_NOARGS, zero_grad_doc},
    {"mark_all_touched", (PyCFunction)table_mark_all_touched, METH_NOARGS, mark_all_doc},
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
"weight and grad are NumPy arrays sharing the table's memory; the table outlives them.");

static PyType_Slot table_slots[] = {
    {Py_tp_new, table_new},
    {Py_tp_dealloc, table_dealloc},
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
    if (!PyArray_Check(w_obj) || PyArray_NDIM((PyArrayObject *)w_obj) != 2 ||
        (PyArray_TYPE((PyArrayObject *)w_obj) != NPY_FLOAT32 &&
         PyArray_TYPE((PyArrayObject *)w_obj) != NPY_FLOAT64)) {
        PyErr_SetString(PyExc_ValueError, "_table_rebuild: weight must be a 2-D float array");
        return NULL;
    }
    int typenum = PyArray_TYPE((PyArrayObject *)w_obj);
    w = (PyArrayObject *)PyArray_FROM_OTF(w_obj, typenum, NPY_ARRAY_IN_ARRAY);
    if (!w) goto fail;
    npy_intp *dims = PyArray_DIMS(w);
    self = table_alloc((PyTypeObject *)cls, (int64_t)dims[0], (int64_t)dims[1], typenum);
    if (!self) goto fail;
    memcpy(self->weight, PyArray_DATA(w), table_nbytes(self));
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
        memcpy(self->grad, PyArray_DATA(g), table_nbytes(self));
        const int64_t *tp = (const int64_t *)PyArray_DATA(t);
        for (npy_intp i = 0; i < PyArray_SIZE(t); i++) {
            if (!self->mark[tp[i]]) {
                self->mark[tp[i]] = 1;
                self->touched[self->n_touched++] = tp[i];
            }
        }
        self->touched_sorted = 0;
    }
    Py_DECREF(w);
    Py_XDECREF(g);
    Py_XDECREF(t);
    return (PyObject *)self;
fail:
    Py_XDECREF(w);
    Py_XDECREF(g);
    Py_XDECREF(t);
    Py_XDECREF(self);
    return NULL;
}

PyMethodDef pe_table_functions[] = {
    {"_table_rebuild", table_rebuild, METH_VARARGS, "Unpickle a Table (internal)."},
    {NULL, NULL, 0, NULL},
};
