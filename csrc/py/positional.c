/* Glue for the positional kernels: sinusoidal tables, fused token + position lookup, rotary
 * embeddings. Every argument is converted and checked before anything is written; kernels run
 * with the GIL released above a small size. */
#include "positional_glue.h"
#include "positional.h"

#include <math.h>
#include <string.h>

/* Positions must stay where double holds integers and p * w keeps its accuracy. */
#define PE_MAX_POSITION ((int64_t)1 << 52)

static int check_base(double base) {
    if (!(base > 0.0) || !isfinite(base)) {
        char buf[64];
        snprintf(buf, sizeof buf, "%g", base);
        PyErr_Format(PyExc_ValueError, "base must be a finite number > 0, got %s", buf);
        return -1;
    }
    return 0;
}

/* An out= array of the given type and shape, or a new one. New reference or NULL. */
static PyObject *make_out(PyObject *out_obj, int typenum, int ndim, const npy_intp *shape) {
    if (out_obj && out_obj != Py_None) {
        if (pe_check_out(out_obj, "out", typenum, ndim, shape) < 0) return NULL;
        Py_INCREF(out_obj);
        return out_obj;
    }
    return PyArray_EMPTY(ndim, shape, typenum, 0);
}

PyDoc_STRVAR(sinusoidal_doc,
"sinusoidal(num_positions, dim, start=0, base=10000.0, halves=False, exponent=0, dtype=None,\n"
"           out=None)\n--\n\n"
"The (num_positions, dim) sinusoidal table of positions start .. start + num_positions - 1.\n"
"exponent 0: w_i = base^(-2i/dim); 1: w_i = base^(-i/(dim/2 - 1)) (tensor2tensor / fairseq).\n"
"halves: [sin | cos] instead of interleaved. See pyembed.sinusoidal.");

static PyObject *py_sinusoidal(PyObject *mod, PyObject *args, PyObject *kwds) {
    (void)mod;
    static char *kwlist[] = {"num_positions", "dim", "start", "base", "halves", "exponent",
                             "dtype", "out", NULL};
    Py_ssize_t n, dim;
    long long start = 0;
    double base = 10000.0;
    int halves = 0, exponent = PE_EXP_2I_D, typenum = NPY_FLOAT32, rc;
    PyObject *dtype = Py_None, *out_obj = Py_None, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nn|LdpiOO:sinusoidal", kwlist, &n, &dim, &start,
                                     &base, &halves, &exponent, &dtype, &out_obj))
        return NULL;
    if (n < 0 || dim < 0) {
        PyErr_Format(PyExc_ValueError, "num_positions and dim must be >= 0, got %zd and %zd", n,
                     dim);
        return NULL;
    }
    if (check_base(base) < 0) return NULL;
    if (exponent != PE_EXP_2I_D && exponent != PE_EXP_HALF) {
        PyErr_Format(PyExc_ValueError, "exponent must be 0 or 1, got %d", exponent);
        return NULL;
    }
    if (start < -PE_MAX_POSITION || start > PE_MAX_POSITION ||
        (int64_t)n > PE_MAX_POSITION - start) {
        PyErr_Format(PyExc_OverflowError,
                     "positions %lld .. %lld + %zd must lie within +-2^52", start, start, n);
        return NULL;
    }
    if (dtype != Py_None && pe_parse_float_dtype(dtype, &typenum) < 0) return NULL;
    if (out_obj != Py_None && dtype == Py_None && PyArray_Check(out_obj))
        typenum = PyArray_TYPE((PyArrayObject *)out_obj) == NPY_FLOAT64 ? NPY_FLOAT64 : NPY_FLOAT32;
    npy_intp shape[2] = {(npy_intp)n, (npy_intp)dim};
    if (pe_mul_size((size_t)n, (size_t)dim) > (size_t)PY_SSIZE_T_MAX / 8) {
        PyErr_Format(PyExc_OverflowError, "a %zd x %zd table does not fit in memory", n, dim);
        return NULL;
    }
    out = make_out(out_obj, typenum, 2, shape);
    if (!out) return NULL;
    void *p = PyArray_DATA((PyArrayObject *)out);
    Py_BEGIN_ALLOW_THREADS
    if (typenum == NPY_FLOAT32)
        rc = pe_sinusoidal_f32((float *)p, (int64_t)start, (size_t)n, (size_t)dim, base, halves,
                               exponent);
    else
        rc = pe_sinusoidal_f64((double *)p, (int64_t)start, (size_t)n, (size_t)dim, base, halves,
                               exponent);
    Py_END_ALLOW_THREADS
    if (rc != PE_OK) {
        Py_DECREF(out);
        return pe_raise_kernel_error(rc, "sinusoidal"), NULL;
    }
    return out;
}

PyMethodDef pe_positional_functions[] = {
    {"sinusoidal", (PyCFunction)(void (*)(void))py_sinusoidal, METH_VARARGS | METH_KEYWORDS,
     sinusoidal_doc},
    {NULL, NULL, 0, NULL},
};
