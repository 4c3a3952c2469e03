/* Argument conversion and checks (see convert.h). The glue's only job besides calling kernels. */
#include "glue.h"
#include "kernels/gather.h"

#include <string.h>

PyObject *pe_shape_str(int ndim, const npy_intp *shape) {
    PyObject *t = PyTuple_New(ndim), *s = NULL;
    if (!t) return NULL;
    for (int i = 0; i < ndim; i++) {
        PyObject *v = PyLong_FromSsize_t(shape[i]);
        if (!v) goto fail;
        PyTuple_SET_ITEM(t, i, v);
    }
    s = PyObject_Repr(t);
fail:
    Py_DECREF(t);
    return s;
}

int pe_shape_error(const char *name, int ndim, const npy_intp *shape, int endim,
                   const npy_intp *eshape, const char *why) {
    PyObject *a = pe_shape_str(ndim, shape), *b = pe_shape_str(endim, eshape);
    if (a && b)
        PyErr_Format(PyExc_ValueError, "%s has shape %U but %s needs shape %U", name, a,
                     why ? why : "this call", b);
    PE_RELEASE(a, b);
    return -1;
}

int pe_raise_kernel_error(int rc, const char *what) {
    switch (rc) {
    case PE_ERR_NOMEM:
        PyErr_Format(PyExc_MemoryError, "%s: out of memory for scratch space", what);
        break;
    case PE_ERR_OVERFLOW:
        PyErr_Format(PyExc_OverflowError, "%s: size does not fit in memory", what);
        break;
    case PE_ERR_INDEX:
        PyErr_Format(PyExc_IndexError, "%s: index out of range", what);
        break;
    default:
        PyErr_Format(PyExc_ValueError, "%s: invalid argument (kernel code %d)", what, rc);
    }
    return -1;
}

/* "ids[1, 2]" style position of flat index `flat` in an array of `shape`. */
static PyObject *position_str(const char *name, int ndim, const npy_intp *shape, npy_intp flat) {
    if (ndim == 0) return PyUnicode_FromFormat("%s[()]", name);
    npy_intp idx[NPY_MAXDIMS];
    for (int d = ndim - 1; d >= 0; d--) {
        npy_intp s = shape[d] > 0 ? shape[d] : 1;
        idx[d] = flat % s;
        flat /= s;
    }
    PyObject *parts = PyList_New(ndim), *sep = NULL, *joined = NULL, *res = NULL;
    if (!parts) return NULL;
    for (int d = 0; d < ndim; d++) {
        PyObject *v = PyUnicode_FromFormat("%zd", (Py_ssize_t)idx[d]);
        if (!v) goto done;
        PyList_SET_ITEM(parts, d, v);
    }
    sep = PyUnicode_FromString(", ");
    if (!sep) goto done;
    joined = PyUnicode_Join(sep, parts);
    if (!joined) goto done;
    res = PyUnicode_FromFormat("%s[%U]", name, joined);
done:
    PE_RELEASE(parts, sep, joined);
    return res;
}

static int raise_bad_id(const char *name, PyArrayObject *arr, npy_intp flat, int64_t num_rows) {
    /* read the offending value from the original array (any integer dtype) */
    PyObject *pos = position_str(name, PyArray_NDIM(arr), PyArray_DIMS(arr), flat);
    PyObject *flatarr = NULL, *val = NULL;
    if (!pos) return -1;
    flatarr = PyArray_Ravel(arr, NPY_CORDER);
    if (flatarr) val = PySequence_GetItem(flatarr, flat);
    if (val) {
        PyObject *ival = PyNumber_Index(val);
        if (ival) {
            PyErr_Format(PyExc_IndexError,
                         "index %S is out of range for an embedding of %lld rows (at %U)", ival,
                         (long long)num_rows, pos);
            Py_DECREF(ival);
        }
    }
    PE_RELEASE(val, flatarr, pos);
    return -1;
}

/* ids given as Python ints that NumPy could not fit in an integer dtype ([1, 2**64] becomes an
 * object array, [1, 2**63] a float64 one): the culprit is an out-of-range id, so say which, as for
 * any other (IndexError naming value and position). Returns 1 when it raised that IndexError, 0
 * when no item is an out-of-range int (the caller's TypeError stands), -1 on another error. */
static int raise_big_python_int(PyObject *obj, const char *name, int64_t num_rows) {
    PyArrayObject *objs = (PyArrayObject *)PyArray_FROM_OT(obj, NPY_OBJECT);
    PyObject *flat = NULL, *zero = NULL, *rows = NULL;
    int rc = -1;
    if (!objs) return -1;
    flat = PyArray_Ravel(objs, NPY_CORDER);
    zero = PyLong_FromLong(0);
    rows = PyLong_FromLongLong((long long)num_rows);
    if (!flat || !zero || !rows) goto done;
    rc = 0;
    for (npy_intp i = 0; i < PyArray_SIZE((PyArrayObject *)flat); i++) {
        PyObject *v = PySequence_GetItem(flat, i);
        if (!v) {
            rc = -1;
            break;
        }
        int bad = 0;
        if (PyLong_Check(v) && !PyBool_Check(v)) {
            bad = PyObject_RichCompareBool(v, zero, Py_LT);
            if (bad == 0 && num_rows >= 0) bad = PyObject_RichCompareBool(v, rows, Py_GE);
        } else {
            Py_DECREF(v);
            break; /* not an int: the TypeError is right */
        }
        Py_DECREF(v);
        if (bad < 0) {
            rc = -1;
            break;
        }
        if (bad) {
            raise_bad_id(name, objs, i, num_rows);
            rc = 1;
            break;
        }
    }
done:
    PE_RELEASE(rows, zero, flat, objs);
    return rc;
}

int pe_convert_ids(PyObject *obj, const char *name, int64_t num_rows, PyArrayObject **out) {
    PyArrayObject *arr = NULL, *conv = NULL;
    *out = NULL;
    if (PyArray_Check(obj)) {
        Py_INCREF(obj);
        arr = (PyArrayObject *)obj;
    } else {
        arr = (PyArrayObject *)PyArray_FROM_O(obj);
        if (!arr) {
            if (PyErr_ExceptionMatches(PyExc_ValueError)) { /* ragged lists */
                PyErr_Clear();
                PyErr_Format(PyExc_TypeError, "%s must be an array of integers, got %.200s", name,
                             Py_TYPE(obj)->tp_name);
            }
            return -1;
        }
        /* [] becomes float64 in NumPy: an empty list is an empty batch of ids */
        if (PyArray_SIZE(arr) == 0 && !PyArray_ISINTEGER(arr)) {
            npy_intp zero = 0;
            int nd = PyArray_NDIM(arr) > 0 ? PyArray_NDIM(arr) : 1;
            PyArrayObject *e = (PyArrayObject *)PyArray_ZEROS(nd, nd == 1 ? &zero : PyArray_DIMS(arr),
                                                              NPY_INT64, 0);
            Py_DECREF(arr);
            if (!e) return -1;
            *out = e;
            return 0;
        }
    }
    if (!PyArray_ISINTEGER(arr) || PyArray_ISBOOL(arr)) {
        if (!PyArray_Check(obj) && (PyArray_ISOBJECT(arr) || PyArray_ISFLOAT(arr))) {
            int r = raise_big_python_int(obj, name, num_rows);
            if (r != 0) goto fail; /* raised: IndexError, or an error while looking */
        }
        PyErr_Format(PyExc_TypeError, "%s must be integers, got an array of dtype %S", name,
                     (PyObject *)PyArray_DESCR(arr));
        goto fail;
    }
    /* The kernels read a private copy, checked here after the copy: another Python thread may
     * rewrite the caller's array while a kernel runs without the GIL, and a kernel must never index
     * with a value nobody checked (issue 11). 8 bytes per id next to the rows they move. */
    npy_intp n = PyArray_SIZE(arr);
    int is_u64 = PyArray_TYPE(arr) == NPY_UINT64 || PyArray_TYPE(arr) == NPY_ULONGLONG;
    conv = (PyArrayObject *)PyArray_FROM_OTF((PyObject *)arr, is_u64 ? NPY_UINT64 : NPY_INT64,
                                             NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST |
                                                 NPY_ARRAY_ENSURECOPY);
    if (!conv) goto fail;
    if (is_u64) {
        /* values above INT64_MAX would wrap: find them in the copy, then read it as int64 */
        uint64_t lim = num_rows >= 0 ? (uint64_t)num_rows - (num_rows > 0) : (uint64_t)INT64_MAX;
        int64_t bad = num_rows == 0 ? (n > 0 ? 0 : -1)
                                    : pe_find_u64_over((const uint64_t *)PyArray_DATA(conv),
                                                       (size_t)n, lim);
        if (bad >= 0) {
            raise_bad_id(name, conv, (npy_intp)bad, num_rows); /* the value we read */
            goto fail;
        }
        PyArray_Descr *i64 = PyArray_DescrFromType(NPY_INT64);
        if (!i64) goto fail;
        PyObject *view = PyArray_View(conv, i64, NULL); /* steals i64; same bits, all >= 0 */
        if (!view) goto fail;
        Py_SETREF(conv, (PyArrayObject *)view);
    }
    if (num_rows >= 0) {
        int64_t bad;
        const int64_t *p = (const int64_t *)PyArray_DATA(conv);
        PE_NOGIL_ABOVE((size_t)n * sizeof(int64_t), bad = pe_find_bad_id(p, (size_t)n, num_rows));
        if (bad >= 0) {
            raise_bad_id(name, conv, (npy_intp)bad, num_rows); /* the value we read */
            goto fail;
        }
    }
    Py_DECREF(arr);
    *out = conv;
    return 0;
fail:
    PE_RELEASE(arr, conv);
    return -1;
}

int pe_convert_positions(PyObject *pos_obj, PyObject *pid_obj, int typenum, npy_intp dim, int nd,
                         const npy_intp *shape, PyArrayObject **pos, PyArrayObject **pid,
                         size_t *pid_len) {
    *pos = *pid = NULL;
    *pid_len = 0;
    if (pos_obj == Py_None) {
        if (pid_obj == Py_None) return 0;
        PyErr_SetString(PyExc_ValueError, "position_ids given without positions (the position "
                                          "table they index)");
        return -1;
    }
    if (pe_convert_float(pos_obj, "positions", typenum, pos) < 0) return -1;
    npy_intp want[2] = {pid_obj == Py_None ? shape[nd - 1] : PyArray_DIM(*pos, 0), dim};
    if (PyArray_NDIM(*pos) != 2 || !PyArray_CompareLists(PyArray_DIMS(*pos), want, 2)) {
        pe_shape_error("positions", PyArray_NDIM(*pos), PyArray_DIMS(*pos), 2, want,
                       pid_obj == Py_None ? "ids of this length" : "a table of this width");
        goto fail;
    }
    if (pid_obj == Py_None) return 0;
    if (pe_convert_ids(pid_obj, "position_ids", (int64_t)PyArray_DIM(*pos, 0), pid) < 0) goto fail;
    PyArrayObject *a = *pid;
    int same = PyArray_NDIM(a) == nd && PyArray_CompareLists(PyArray_DIMS(a), shape, nd);
    if (!same && !(PyArray_NDIM(a) == 1 && PyArray_DIM(a, 0) == shape[nd - 1])) {
        pe_shape_error("position_ids", PyArray_NDIM(a), PyArray_DIMS(a), nd, shape,
                       "ids (or shape (seq,))");
        goto fail;
    }
    *pid_len = (size_t)PyArray_SIZE(a);
    return 0;
fail:
    Py_CLEAR(*pos);
    Py_CLEAR(*pid);
    return -1;
}

int pe_convert_float(PyObject *obj, const char *name, int typenum, PyArrayObject **out) {
    PyArrayObject *arr = NULL, *conv = NULL;
    PyArray_Descr *want = NULL;
    *out = NULL;
    arr = (PyArrayObject *)PyArray_FROM_O(obj);
    if (!arr) {
        if (PyErr_ExceptionMatches(PyExc_ValueError)) {
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "%s must be an array of numbers, got %.200s", name,
                         Py_TYPE(obj)->tp_name);
        }
        return -1;
    }
    int t = PyArray_TYPE(arr);
    if (!(PyTypeNum_ISFLOAT(t) || PyTypeNum_ISINTEGER(t)) || PyTypeNum_ISCOMPLEX(t)) {
        PyErr_Format(PyExc_TypeError, "%s must be real numbers, got an array of dtype %S", name,
                     (PyObject *)PyArray_DESCR(arr));
        goto fail;
    }
    want = PyArray_DescrFromType(typenum);
    if (!want) goto fail;
    if (!PyArray_CanCastTypeTo(PyArray_DESCR(arr), want, NPY_SAME_KIND_CASTING)) {
        PyErr_Format(PyExc_TypeError, "%s of dtype %S cannot be cast to %S", name,
                     (PyObject *)PyArray_DESCR(arr), (PyObject *)want);
        goto fail;
    }
    Py_DECREF(want);
    want = NULL;
    conv = (PyArrayObject *)PyArray_FROM_OTF((PyObject *)arr, typenum,
                                             NPY_ARRAY_IN_ARRAY | NPY_ARRAY_FORCECAST);
    if (!conv) goto fail;
    Py_DECREF(arr);
    *out = conv;
    return 0;
fail:
    PE_RELEASE(want, arr);
    return -1;
}

/* An input array of exactly this dtype, C-contiguous and aligned, with ndim dims; shape entries
 * < 0 are free. Writeable when `writeable`. */
int pe_check_exact(PyObject *obj, const char *name, int typenum, int ndim,
                   const npy_intp *shape, int writeable, const char *why) {
    if (!PyArray_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be a numpy.ndarray, got %.200s", name,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    PyArrayObject *a = (PyArrayObject *)obj;
    if (PyArray_TYPE(a) != typenum || !PyArray_ISNOTSWAPPED(a)) {
        PyArray_Descr *want = PyArray_DescrFromType(typenum);
        if (want) {
            PyErr_Format(PyExc_ValueError, "%s has dtype %S but must have dtype %S", name,
                         (PyObject *)PyArray_DESCR(a), (PyObject *)want);
            Py_DECREF(want);
        }
        return -1;
    }
    int bad = PyArray_NDIM(a) != ndim;
    for (int d = 0; !bad && d < ndim; d++)
        if (shape[d] >= 0 && PyArray_DIM(a, d) != shape[d]) bad = 1;
    if (bad) {
        npy_intp want[NPY_MAXDIMS];
        for (int d = 0; d < ndim; d++)
            want[d] = shape[d] >= 0 ? shape[d] : (d < PyArray_NDIM(a) ? PyArray_DIM(a, d) : 0);
        return pe_shape_error(name, PyArray_NDIM(a), PyArray_DIMS(a), ndim, want, why ? why : "this call");
    }
    if (!PyArray_IS_C_CONTIGUOUS(a) || !PyArray_ISALIGNED(a)) {
        PyErr_Format(PyExc_ValueError, "%s must be C-contiguous and aligned", name);
        return -1;
    }
    if (writeable && !PyArray_ISWRITEABLE(a)) {
        PyErr_Format(PyExc_ValueError, "%s is read-only", name);
        return -1;
    }
    return 0;
}

int pe_check_out(PyObject *out, const char *name, int typenum, int ndim, const npy_intp *shape) {
    return pe_check_exact(out, name, typenum, ndim, shape, 1, "the result");
}

int pe_parse_float_dtype(PyObject *obj, int *typenum) {
    PyArray_Descr *d = NULL;
    if (!PyArray_DescrConverter(obj, &d)) {
        if (PyErr_ExceptionMatches(PyExc_TypeError)) { /* NumPy's message names neither */
            PyErr_Clear();
            PyErr_Format(PyExc_TypeError, "dtype must be float32 or float64, got %.80R", obj);
        }
        return -1;
    }
    int t = d->type_num;
    Py_DECREF(d);
    if (t != NPY_FLOAT32 && t != NPY_FLOAT64) {
        PyErr_Format(PyExc_ValueError, "dtype must be float32 or float64, got %R", obj);
        return -1;
    }
    *typenum = t;
    return 0;
}

int pe_parse_padding_idx(PyObject *obj, int64_t rows, int64_t *out) {
    *out = -1;
    if (!obj || obj == Py_None) return 0;
    if (!PyLong_Check(obj) || PyBool_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "padding_idx must be an int or None, got %.200s",
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    int overflow = 0;
    long long v = PyLong_AsLongLongAndOverflow(obj, &overflow);
    if (v == -1 && PyErr_Occurred()) return -1;
    if (!overflow && v < 0) v += rows; /* torch: a negative padding_idx counts from the end */
    if (overflow || v < 0 || v >= rows) {
        PyErr_Format(PyExc_ValueError, "padding_idx %S must be within [-%lld, %lld)", obj,
                     (long long)rows, (long long)rows);
        return -1;
    }
    *out = v;
    return 0;
}

int pe_row_shape(PyArrayObject *ids, const char *name, npy_intp dim, npy_intp *shape) {
    int nd = PyArray_NDIM(ids);
    if (nd + 1 > NPY_MAXDIMS) {
        PyErr_Format(PyExc_ValueError, "%s has %d dimensions; at most %d are allowed", name, nd,
                     NPY_MAXDIMS - 1);
        return -1;
    }
    if (nd) memcpy(shape, PyArray_DIMS(ids), (size_t)nd * sizeof(npy_intp)); /* 0-d: DIMS NULL */
    shape[nd] = dim;
    return nd + 1;
}
