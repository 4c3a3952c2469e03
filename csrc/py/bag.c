/* Glue for EmbeddingBag (csrc/kernels/bag.c): bag_forward, bag_backward, bag_psw_grad.
 * Arguments arrive flattened by pyembed/bag.py: ids (n,), offsets (nb + 1,) with the end of the
 * last bag appended. Everything is checked before a kernel runs; the backward holds the
 * table's lock while it writes. */
#include "positional_glue.h"
#include "bag.h"
#include "table.h"
#include "pool.h"

#include <string.h>

/* table, ids (n,) in range, offsets (nb + 1,): off[0] = 0, nondecreasing, off[nb] <= n. */
static int parse_common(PyObject *mod, PyObject *table_obj, PyObject *ids_obj, PyObject *off_obj,
                        PeTable **t, PyArrayObject **ids, PyArrayObject **off, size_t *nb) {
    *ids = *off = NULL;
    if (!pe_is_table(mod, table_obj)) {
        PyErr_Format(PyExc_TypeError, "table must be a pyembed.Table, got %.200s",
                     Py_TYPE(table_obj)->tp_name);
        return -1;
    }
    *t = (PeTable *)table_obj;
    if (pe_convert_ids(ids_obj, "ids", (*t)->rows, ids) < 0) goto fail;
    if (PyArray_NDIM(*ids) != 1) {
        PyErr_SetString(PyExc_ValueError, "ids must be 1-D here (pyembed.EmbeddingBag flattens)");
        goto fail;
    }
    if (pe_convert_ids(off_obj, "offsets", -1, off) < 0) goto fail;
    if (PyArray_NDIM(*off) != 1 || PyArray_DIM(*off, 0) < 1) {
        PyErr_SetString(PyExc_ValueError, "offsets must be 1-D with at least one entry");
        goto fail;
    }
    {
        const int64_t *o = (const int64_t *)PyArray_DATA(*off);
        npy_intp m = PyArray_DIM(*off, 0), n = PyArray_DIM(*ids, 0);
        if (o[0] != 0) {
            PyErr_Format(PyExc_ValueError, "offsets[0] must be 0, got %lld", (long long)o[0]);
            goto fail;
        }
        for (npy_intp i = 1; i < m; i++) {
            if (o[i] < o[i - 1]) {
                PyErr_Format(PyExc_ValueError,
                             "offsets must be nondecreasing, but offsets[%zd] = %lld < "
                             "offsets[%zd] = %lld",
                             (Py_ssize_t)i, (long long)o[i], (Py_ssize_t)(i - 1),
                             (long long)o[i - 1]);
                goto fail;
            }
        }
        if (o[m - 1] > (int64_t)n) {
            PyErr_Format(PyExc_ValueError, "offsets[%zd] = %lld is beyond the %zd ids",
                         (Py_ssize_t)(m - 1), (long long)o[m - 1], (Py_ssize_t)n);
            goto fail;
        }
        *nb = (size_t)(m - 1);
    }
    return 0;
fail:
    Py_CLEAR(*ids);
    Py_CLEAR(*off);
    return -1;
}

static int check_mode_pad(PeTable *t, int mode, long long pad) {
    if (mode != PE_BAG_SUM && mode != PE_BAG_MEAN && mode != PE_BAG_MAX) {
        PyErr_Format(PyExc_ValueError, "mode must be 0 (sum), 1 (mean) or 2 (max), got %d", mode);
        return -1;
    }
    if (pad < -1 || pad >= t->rows) {
        PyErr_Format(PyExc_ValueError, "padding_idx must be -1 (none) or a row, got %lld", pad);
        return -1;
    }
    return 0;
}

static int convert_psw(PyObject *obj, PeTable *t, int mode, npy_intp n, PyArrayObject **out) {
    *out = NULL;
    if (obj == Py_None) return 0;
    if (mode != PE_BAG_SUM) {
        PyErr_SetString(PyExc_ValueError,
                        "per_sample_weights are only supported with mode='sum' (as torch)");
        return -1;
    }
    if (pe_convert_float(obj, "per_sample_weights", t->typenum, out) < 0) return -1;
    if (PyArray_NDIM(*out) != 1 || PyArray_DIM(*out, 0) != n) {
        pe_shape_error("per_sample_weights", PyArray_NDIM(*out), PyArray_DIMS(*out), 1, &n,
                       "ids");
        Py_CLEAR(*out);
        return -1;
    }
    return 0;
}

static PyObject *bag_forward(PyObject *mod, PyObject *args) {
    PyObject *table_obj, *ids_obj, *off_obj, *psw_obj, *out = NULL, *am = NULL;
    PyArrayObject *ids = NULL, *off = NULL, *psw = NULL;
    PeTable *t;
    int mode, rc;
    long long pad;
    size_t nb;
    if (!PyArg_ParseTuple(args, "OOOOiL:bag_forward", &table_obj, &ids_obj, &off_obj, &psw_obj,
                          &mode, &pad))
        return NULL;
    if (parse_common(mod, table_obj, ids_obj, off_obj, &t, &ids, &off, &nb) < 0) return NULL;
    if (check_mode_pad(t, mode, pad) < 0) goto fail;
    if (convert_psw(psw_obj, t, mode, PyArray_DIM(ids, 0), &psw) < 0) goto fail;
    {
        npy_intp shape[2] = {(npy_intp)nb, (npy_intp)t->dim};
        out = pe_pool_empty(2, shape, t->typenum);
        if (!out) goto fail;
        if (mode == PE_BAG_MAX) {
            am = pe_pool_empty(2, shape, NPY_INT64);
            if (!am) goto fail;
        }
    }
    {
        void *o = PyArray_DATA((PyArrayObject *)out);
        int64_t *a = am ? (int64_t *)PyArray_DATA((PyArrayObject *)am) : NULL;
        const int64_t *ip = (const int64_t *)PyArray_DATA(ids), *op = (const int64_t *)PyArray_DATA(off);
        const void *pp = psw ? PyArray_DATA(psw) : NULL;
        Py_BEGIN_ALLOW_THREADS
        if (t->typenum == NPY_FLOAT32)
            rc = pe_bag_forward_f32((float *)o, a, (const float *)t->weight, ip, op,
                                    (const float *)pp, nb, (size_t)t->dim, mode, (int64_t)pad);
        else
            rc = pe_bag_forward_f64((double *)o, a, (const double *)t->weight, ip, op,
                                    (const double *)pp, nb, (size_t)t->dim, mode, (int64_t)pad);
        Py_END_ALLOW_THREADS
    }
    if (rc != PE_OK) {
        pe_raise_kernel_error(rc, "bag_forward");
        goto fail;
    }
    Py_DECREF(ids);
    Py_DECREF(off);
    Py_XDECREF(psw);
    if (!am) am = Py_NewRef(Py_None);
    {
        PyObject *res = PyTuple_Pack(2, out, am);
        Py_DECREF(out);
        Py_DECREF(am);
        return res;
    }
fail:
    Py_XDECREF(ids);
    Py_XDECREF(off);
    Py_XDECREF(psw);
    Py_XDECREF(out);
    Py_XDECREF(am);
    return NULL;
}

static PyObject *bag_backward(PyObject *mod, PyObject *args) {
    PyObject *table_obj, *ids_obj, *off_obj, *g_obj, *psw_obj, *am_obj;
    PyArrayObject *ids = NULL, *off = NULL, *psw = NULL, *g = NULL, *am = NULL;
    PeTable *t;
    int mode, rc;
    long long pad;
    size_t nb;
    if (!PyArg_ParseTuple(args, "OOOOOOiL:bag_backward", &table_obj, &ids_obj, &off_obj, &g_obj,
                          &psw_obj, &am_obj, &mode, &pad))
        return NULL;
    if (parse_common(mod, table_obj, ids_obj, off_obj, &t, &ids, &off, &nb) < 0) return NULL;
    if (check_mode_pad(t, mode, pad) < 0) goto fail;
    if (convert_psw(psw_obj, t, mode, PyArray_DIM(ids, 0), &psw) < 0) goto fail;
    npy_intp shape[2] = {(npy_intp)nb, (npy_intp)t->dim};
    if (pe_convert_float(g_obj, "grad_output", t->typenum, &g) < 0) goto fail;
    if (PyArray_NDIM(g) != 2 || !PyArray_CompareLists(PyArray_DIMS(g), shape, 2)) {
        pe_shape_error("grad_output", PyArray_NDIM(g), PyArray_DIMS(g), 2, shape,
                       "(number of bags, embedding_dim)");
        goto fail;
    }
    if (mode == PE_BAG_MAX) {
        if (am_obj == Py_None) {
            PyErr_SetString(PyExc_ValueError, "mode max needs the argmax of the forward");
            goto fail;
        }
        if (pe_convert_ids(am_obj, "argmax", -1, &am) < 0) goto fail;
        if (PyArray_NDIM(am) != 2 || !PyArray_CompareLists(PyArray_DIMS(am), shape, 2)) {
            pe_shape_error("argmax", PyArray_NDIM(am), PyArray_DIMS(am), 2, shape, "grad_output");
            goto fail;
        }
        const int64_t *a = (const int64_t *)PyArray_DATA(am);
        for (npy_intp e = 0; e < PyArray_SIZE(am); e++) {
            if (a[e] < -1 || a[e] >= t->rows) {
                PyErr_Format(PyExc_IndexError, "argmax value %lld is out of range for %lld rows",
                             (long long)a[e], (long long)t->rows);
                goto fail;
            }
        }
    }
    if (pe_table_ensure_grad(t) < 0) goto fail;
    {
        const int64_t *ip = (const int64_t *)PyArray_DATA(ids), *op = (const int64_t *)PyArray_DATA(off);
        const int64_t *ap = am ? (const int64_t *)PyArray_DATA(am) : NULL;
        const void *pp = psw ? PyArray_DATA(psw) : NULL, *gp = PyArray_DATA(g);
        Py_BEGIN_ALLOW_THREADS
        PE_TABLE_LOCK(t);
        size_t before = t->n_touched;
        if (t->typenum == NPY_FLOAT32)
            rc = pe_bag_backward_f32((float *)t->grad, t->mark, t->touched, &t->n_touched, ip, op,
                                     (const float *)gp, (const float *)pp, ap, nb, (size_t)t->dim,
                                     mode, (int64_t)pad);
        else
            rc = pe_bag_backward_f64((double *)t->grad, t->mark, t->touched, &t->n_touched, ip,
                                     op, (const double *)gp, (const double *)pp, ap, nb,
                                     (size_t)t->dim, mode, (int64_t)pad);
        if (t->n_touched != before) t->touched_sorted = 0;
        PE_TABLE_UNLOCK(t);
        Py_END_ALLOW_THREADS
    }
    if (rc != PE_OK) {
        pe_raise_kernel_error(rc, "bag_backward");
        goto fail;
    }
    Py_DECREF(ids);
    Py_DECREF(off);
    Py_XDECREF(psw);
    Py_DECREF(g);
    Py_XDECREF(am);
    Py_RETURN_NONE;
fail:
    Py_XDECREF(ids);
    Py_XDECREF(off);
    Py_XDECREF(psw);
    Py_XDECREF(g);
    Py_XDECREF(am);
    return NULL;
}

static PyObject *bag_psw_grad(PyObject *mod, PyObject *args) {
    PyObject *table_obj, *ids_obj, *off_obj, *g_obj, *out = NULL;
    PyArrayObject *ids = NULL, *off = NULL, *g = NULL;
    PeTable *t;
    long long pad;
    size_t nb;
    int rc;
    if (!PyArg_ParseTuple(args, "OOOOL:bag_psw_grad", &table_obj, &ids_obj, &off_obj, &g_obj,
                          &pad))
        return NULL;
    if (parse_common(mod, table_obj, ids_obj, off_obj, &t, &ids, &off, &nb) < 0) return NULL;
    if (check_mode_pad(t, PE_BAG_SUM, pad) < 0) goto fail;
    npy_intp shape[2] = {(npy_intp)nb, (npy_intp)t->dim};
    if (pe_convert_float(g_obj, "grad_output", t->typenum, &g) < 0) goto fail;
    if (PyArray_NDIM(g) != 2 || !PyArray_CompareLists(PyArray_DIMS(g), shape, 2)) {
        pe_shape_error("grad_output", PyArray_NDIM(g), PyArray_DIMS(g), 2, shape,
                       "(number of bags, embedding_dim)");
        goto fail;
    }
    npy_intp n = PyArray_DIM(ids, 0);
    out = PyArray_EMPTY(1, &n, t->typenum, 0);
    if (!out) goto fail;
    {
        void *o = PyArray_DATA((PyArrayObject *)out);
        const int64_t *ip = (const int64_t *)PyArray_DATA(ids), *op = (const int64_t *)PyArray_DATA(off);
        const void *gp = PyArray_DATA(g);
        Py_BEGIN_ALLOW_THREADS
        if (t->typenum == NPY_FLOAT32)
            rc = pe_bag_psw_grad_f32((float *)o, (const float *)t->weight, ip, op,
                                     (const float *)gp, (size_t)n, nb, (size_t)t->dim,
                                     (int64_t)pad);
        else
            rc = pe_bag_psw_grad_f64((double *)o, (const double *)t->weight, ip, op,
                                     (const double *)gp, (size_t)n, nb, (size_t)t->dim,
                                     (int64_t)pad);
        Py_END_ALLOW_THREADS
    }
    if (rc != PE_OK) {
        pe_raise_kernel_error(rc, "bag_psw_grad");
        goto fail;
    }
    Py_DECREF(ids);
    Py_DECREF(off);
    Py_DECREF(g);
    return out;
fail:
    Py_XDECREF(ids);
    Py_XDECREF(off);
    Py_XDECREF(g);
    Py_XDECREF(out);
    return NULL;
}

PyMethodDef pe_bag_functions[] = {
    {"bag_forward", bag_forward, METH_VARARGS,
     "bag_forward(table, ids, offsets, per_sample_weights, mode, padding_idx)\n--\n\n"
     "EmbeddingBag forward over flat ids and offsets (nb + 1 entries). Returns (out, argmax);\n"
     "argmax is None unless mode is max (2). See pyembed.EmbeddingBag."},
    {"bag_backward", bag_backward, METH_VARARGS,
     "bag_backward(table, ids, offsets, grad_output, per_sample_weights, argmax, mode, "
     "padding_idx)\n--\n\nAccumulate an EmbeddingBag's gradient into the table."},
    {"bag_psw_grad", bag_psw_grad, METH_VARARGS,
     "bag_psw_grad(table, ids, offsets, grad_output, padding_idx)\n--\n\n"
     "Gradient of a sum bag with respect to its per-sample weights."},
    {NULL, NULL, 0, NULL},
};
