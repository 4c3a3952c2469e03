/* The glue's calling helpers (see glue.h). */
#include "glue.h"
#include "pool.h"

static int spans_overlap(const pe_span *a, const pe_span *b) {
    const char *p = (const char *)a->data, *q = (const char *)b->data;
    return p && q && a->nbytes && b->nbytes && p < q + b->nbytes && q < p + a->nbytes;
}

int pe_refuse_overlap(const pe_span *a, const pe_span *others, int n) {
    for (int i = 0; i < n; i++) {
        if (spans_overlap(a, &others[i])) {
            PyErr_Format(PyExc_ValueError, "%s overlaps %s (they share memory)", a->name,
                         others[i].name);
            return -1;
        }
    }
    return 0;
}

int pe_check_disjoint(const pe_span *spans, int n) {
    for (int i = 0; i + 1 < n; i++)
        if (pe_refuse_overlap(&spans[i], spans + i + 1, n - i - 1) < 0) return -1;
    return 0;
}

int pe_copy_if_overlaps(PyArrayObject **arr, const void *buf, size_t nb) {
    pe_span a = pe_span_of("", *arr), b = {"", buf, nb};
    if (!spans_overlap(&a, &b)) return 0;
    PyArrayObject *c = (PyArrayObject *)PyArray_NewCopy(*arr, NPY_CORDER);
    if (!c) return -1;
    Py_SETREF(*arr, c);
    return 0;
}

PyObject *pe_out_or_pool(PyObject *out_obj, int typenum, int ndim, const npy_intp *shape,
                         const pe_span *inputs, int n_inputs) {
    if (!out_obj || out_obj == Py_None) return pe_pool_empty(ndim, shape, typenum);
    if (pe_check_out(out_obj, "out", typenum, ndim, shape) < 0) return NULL;
    pe_span o = pe_span_of("out", (PyArrayObject *)out_obj);
    if (pe_refuse_overlap(&o, inputs, n_inputs) < 0) return NULL;
    return Py_NewRef(out_obj);
}

int pe_private_exact(PyObject *obj, const char *name, int typenum, int ndim, const npy_intp *shape,
                     const char *why, PyArrayObject **out) {
    *out = NULL;
    if (pe_check_exact(obj, name, typenum, ndim, shape, 0, why) < 0) return -1;
    *out = (PyArrayObject *)PyArray_NewCopy((PyArrayObject *)obj, NPY_CORDER);
    return *out ? 0 : -1;
}

PyObject *pe_kernel_result(int rc, const char *what, PyObject *out) {
    if (rc == PE_OK) return out;
    Py_XDECREF(out);
    pe_raise_kernel_error(rc, what);
    return NULL;
}
