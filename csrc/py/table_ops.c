/* The compute methods of pyembed._core.Table (declared in table.h, listed in table.c's method
 * table): lookup, renorm, backward, zero_grad, mark_all_touched. Each checks every argument with
 * the GIL held, then calls the kernel with the GIL released and the table's lock held. */
#include "table.h"
#include "pool.h"
#include "gather.h"
#include "scatter.h"

#include <string.h>

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

const char pe_table_lookup_doc[] = PyDoc_STR(
"lookup(ids, out=None, max_norm=None, norm_type=2.0)\n--\n\n"
"Rows of the table for ids of any integer dtype and shape: W[ids], of shape ids.shape + (dim,).\n"
"out, if given, must be a C-contiguous writeable array of exactly that shape and dtype.\n"
"max_norm, if given, first renormalises the looked-up rows in place (see renorm), after every\n"
"argument has been checked. Raises IndexError naming the first id out of range; nothing is\n"
"written then.");

PyObject *pe_table_lookup(PeTable *self, PyObject *args, PyObject *kwds) {
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
        if (onb && o < self->weight + pe_table_nbytes(self) && self->weight < o + onb) {
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
        (max_norm_obj != Py_None &&
         copy_if_overlaps(&ids, self->weight, pe_table_nbytes(self)) < 0))
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

const char pe_table_renorm_doc[] = PyDoc_STR(
"renorm(ids, max_norm, norm_type=2.0)\n--\n\n"
"torch.embedding_renorm_: every distinct row in ids whose norm_type-norm exceeds max_norm is\n"
"scaled in place to norm max_norm / (norm + 1e-7) * norm.");

PyObject *pe_table_renorm(PeTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"ids", "max_norm", "norm_type", NULL};
    PyObject *ids_obj;
    double max_norm, norm_type = 2.0;
    PyArrayObject *ids = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Od|d:renorm", kwlist, &ids_obj, &max_norm,
                                     &norm_type))
        return NULL;
    if (check_renorm_args(max_norm, norm_type) < 0) return NULL;
    if (pe_convert_ids(ids_obj, "ids", self->rows, &ids) < 0) return NULL;
    if (copy_if_overlaps(&ids, self->weight, pe_table_nbytes(self)) < 0) {
        Py_DECREF(ids);
        return NULL;
    }
    int rc = run_renorm(self, (const int64_t *)PyArray_DATA(ids), (size_t)PyArray_SIZE(ids),
                        max_norm, norm_type);
    Py_DECREF(ids);
    if (rc != PE_OK) return pe_raise_kernel_error(rc, "renorm"), NULL;
    Py_RETURN_NONE;
}

const char pe_table_backward_doc[] = PyDoc_STR(
"backward(ids, grad_output, padding_idx=None, scale_grad_by_freq=False)\n--\n\n"
"Accumulate the lookup's gradient: np.add.at(grad, ids, grad_output), each row summed in the\n"
"order its ids appear (bitwise identical for every thread count). The padding row gets none;\n"
"with scale_grad_by_freq each contribution is scaled by 1 / (count of its id in ids).\n"
"grad_output must have shape ids.shape + (embedding_dim,).");

PyObject *pe_table_backward(PeTable *self, PyObject *args, PyObject *kwds) {
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
    if (copy_if_overlaps(&ids, self->grad, pe_table_nbytes(self)) < 0 ||
        copy_if_overlaps(&g, self->grad, pe_table_nbytes(self)) < 0)
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

const char pe_table_zero_grad_doc[] = PyDoc_STR(
"zero_grad()\n--\n\n"
"Clear the gradient of the touched rows only (cost grows with the rows touched, not the table)\n"
"and empty the touched list.");

PyObject *pe_table_zero_grad(PeTable *self, PyObject *noargs) {
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

const char pe_table_mark_all_touched_doc[] = PyDoc_STR(
"mark_all_touched()\n--\n\n"
"Allocate the gradient if needed and mark every row touched (for dense gradients such as the\n"
"tied output head, which write into every row).");

PyObject *pe_table_mark_all_touched(PeTable *self, PyObject *noargs) {
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
