/* Glue for the top-k kernel (csrc/kernels/topk.c): batched similarity queries in pyembed.vectors. */
#include "glue.h"
#include "kernels/topk.h"
#include "methods.h"

/* topk(scores (rows, n), k, scale=None (n,)) -> (indices (rows, k) int64, values (rows, k))
 * Best first; ties by smaller index; NaN last. scores/scale float32 or float64 (the same). */
static PyObject *topk(PyObject *Py_UNUSED(mod), PyObject *args, PyObject *kwargs) {
    static char *kwlist[] = {"scores", "k", "scale", NULL};
    PyObject *s_obj, *scale_obj = Py_None;
    Py_ssize_t k;
    PyArrayObject *scores = NULL, *scale = NULL, *idx = NULL, *val = NULL;
    PyObject *res = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "On|O:topk", kwlist, &s_obj, &k, &scale_obj))
        return NULL;
    int t = PyArray_Check(s_obj) ? PyArray_TYPE((PyArrayObject *)s_obj) : NPY_FLOAT32;
    if (t != NPY_FLOAT64) t = NPY_FLOAT32;
    if (pe_convert_float(s_obj, "scores", t, &scores) < 0) goto fail;
    if (PyArray_NDIM(scores) != 2) {
        PyErr_Format(PyExc_ValueError, "scores must be 2-D (rows, n), got %d dimensions",
                     PyArray_NDIM(scores));
        goto fail;
    }
    npy_intp rows = PyArray_DIM(scores, 0), n = PyArray_DIM(scores, 1);
    if (k < 0 || k > n) {
        PyErr_Format(PyExc_ValueError, "k must be in [0, %zd], got %zd", (Py_ssize_t)n, k);
        goto fail;
    }
    if (scale_obj != Py_None) {
        if (pe_convert_float(scale_obj, "scale", t, &scale) < 0) goto fail;
        if (PyArray_NDIM(scale) != 1 || PyArray_DIM(scale, 0) != n) {
            npy_intp want[1] = {n};
            pe_shape_error("scale", PyArray_NDIM(scale), PyArray_DIMS(scale), 1, want, "topk");
            goto fail;
        }
    }
    npy_intp dims[2] = {rows, (npy_intp)k};
    idx = (PyArrayObject *)PyArray_EMPTY(2, dims, NPY_INT64, 0);
    val = (PyArrayObject *)PyArray_EMPTY(2, dims, t, 0);
    if (!idx || !val) goto fail;
    int rc;
    PE_NOGIL_ABOVE((size_t)PyArray_NBYTES(scores),
                   rc = PE_BY_DTYPE(t, pe_topk, (int64_t *)PyArray_DATA(idx), PyArray_DATA(val),
                                    PyArray_DATA(scores), (size_t)n,
                                    scale ? PyArray_DATA(scale) : NULL, (size_t)rows, (size_t)n,
                                    (size_t)k));
    if (rc != PE_OK) {
        pe_raise_kernel_error(rc, "topk");
        goto fail;
    }
    res = PyTuple_Pack(2, (PyObject *)idx, (PyObject *)val);
fail:
    PE_RELEASE(scores, scale, idx, val);
    return res;
}

PyMethodDef pe_topk_functions[] = {
    {"topk", (PyCFunction)(void (*)(void))topk, METH_VARARGS | METH_KEYWORDS,
     "topk(scores, k, scale=None)\n--\n\n"
     "Per row, the k largest of scores / scale: (indices, values), best first, ties by index."},
    {NULL, NULL, 0, NULL},
};
