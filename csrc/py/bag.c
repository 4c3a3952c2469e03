/* Glue for EmbeddingBag (csrc/kernels/bag.c): bag_forward, bag_backward, bag_psw_grad.
 * Arguments arrive flattened by pyembed/bag.py: ids (n,), offsets (nb + 1,) with the end of the
 * last bag appended. Everything is checked before a kernel runs; the backward holds the
 * table's lock while it writes. */
#include "methods.h"
#include "table.h"
#include "kernels/bag.h"

#include <string.h>

/* The arguments every bag function takes, converted (ids and offsets are private copies). */
typedef struct {
    PeTable *t;
    PyArrayObject *ids, *off, *psw, *g;
    int64_t pad; /* -1: none (the kernels' convention) */
    size_t nb;
} bag_args;

static void bag_args_clear(bag_args *a) {
    Py_CLEAR(a->ids);
    Py_CLEAR(a->off);
    Py_CLEAR(a->psw);
    Py_CLEAR(a->g);
}

/* offsets (nb + 1,): off[0] = 0, nondecreasing, off[nb] <= n. */
static int check_offsets(const int64_t *o, npy_intp m, npy_intp n) {
    if (o[0] != 0) {
        PyErr_Format(PyExc_ValueError, "offsets[0] must be 0, got %lld", (long long)o[0]);
        return -1;
    }
    for (npy_intp i = 1; i < m; i++) {
        if (o[i] < o[i - 1]) {
            PyErr_Format(PyExc_ValueError,
                         "offsets must be nondecreasing, but offsets[%zd] = %lld < offsets[%zd] = "
                         "%lld",
                         (Py_ssize_t)i, (long long)o[i], (Py_ssize_t)(i - 1), (long long)o[i - 1]);
            return -1;
        }
    }
    if (o[m - 1] > (int64_t)n) {
        PyErr_Format(PyExc_ValueError, "offsets[%zd] = %lld is beyond the %zd ids",
                     (Py_ssize_t)(m - 1), (long long)o[m - 1], (Py_ssize_t)n);
        return -1;
    }
    return 0;
}

/* table, ids (n,) in range, offsets, mode, padding_idx, per_sample_weights (None or (n,), sum
 * only) and, when g_obj is given, grad_output (nb, dim). 0, or -1 with everything cleared. */
static int bag_parse(PyObject *mod, PyObject *table_obj, PyObject *ids_obj, PyObject *off_obj,
                     PyObject *psw_obj, int mode, PyObject *pad_obj, PyObject *g_obj,
                     bag_args *a) {
    memset(a, 0, sizeof *a);
    if (pe_parse_table(mod, table_obj, 0, &a->t) < 0) return -1;
    if (mode != PE_BAG_SUM && mode != PE_BAG_MEAN && mode != PE_BAG_MAX) {
        PyErr_Format(PyExc_ValueError, "mode must be 0 (sum), 1 (mean) or 2 (max), got %d", mode);
        return -1;
    }
    if (pe_parse_padding_idx(pad_obj, a->t->rows, &a->pad) < 0) return -1;
    if (pe_convert_ids(ids_obj, "ids", a->t->rows, &a->ids) < 0) goto fail;
    if (PyArray_NDIM(a->ids) != 1) {
        PyErr_SetString(PyExc_ValueError, "ids must be 1-D here (pyembed.EmbeddingBag flattens)");
        goto fail;
    }
    npy_intp n = PyArray_DIM(a->ids, 0);
    if (pe_convert_ids(off_obj, "offsets", -1, &a->off) < 0) goto fail;
    if (PyArray_NDIM(a->off) != 1 || PyArray_DIM(a->off, 0) < 1) {
        PyErr_SetString(PyExc_ValueError, "offsets must be 1-D with at least one entry");
        goto fail;
    }
    if (check_offsets((const int64_t *)PyArray_DATA(a->off), PyArray_DIM(a->off, 0), n) < 0)
        goto fail;
    a->nb = (size_t)(PyArray_DIM(a->off, 0) - 1);
    if (psw_obj && psw_obj != Py_None) {
        if (mode != PE_BAG_SUM) {
            PyErr_SetString(PyExc_ValueError,
                            "per_sample_weights are only supported with mode='sum' (as torch)");
            goto fail;
        }
        if (pe_convert_float(psw_obj, "per_sample_weights", a->t->typenum, &a->psw) < 0) goto fail;
        if (PyArray_NDIM(a->psw) != 1 || PyArray_DIM(a->psw, 0) != n) {
            pe_shape_error("per_sample_weights", PyArray_NDIM(a->psw), PyArray_DIMS(a->psw), 1, &n,
                           "ids");
            goto fail;
        }
    }
    if (g_obj) {
        npy_intp shape[2] = {(npy_intp)a->nb, (npy_intp)a->t->dim};
        if (pe_convert_float(g_obj, "grad_output", a->t->typenum, &a->g) < 0) goto fail;
        if (PyArray_NDIM(a->g) != 2 || !PyArray_CompareLists(PyArray_DIMS(a->g), shape, 2)) {
            pe_shape_error("grad_output", PyArray_NDIM(a->g), PyArray_DIMS(a->g), 2, shape,
                           "(number of bags, embedding_dim)");
            goto fail;
        }
    }
    return 0;
fail:
    bag_args_clear(a);
    return -1;
}

#define BAG_DATA(a, field) ((a)->field ? PyArray_DATA((a)->field) : NULL)

static PyObject *bag_forward(PyObject *mod, PyObject *args) {
    PyObject *table_obj, *ids_obj, *off_obj, *psw_obj, *pad_obj, *out = NULL, *am = NULL;
    PyObject *res = NULL;
    int mode, rc;
    bag_args a;
    if (!PyArg_ParseTuple(args, "OOOOiO:bag_forward", &table_obj, &ids_obj, &off_obj, &psw_obj,
                          &mode, &pad_obj))
        return NULL;
    if (bag_parse(mod, table_obj, ids_obj, off_obj, psw_obj, mode, pad_obj, NULL, &a) < 0)
        return NULL;
    PeTable *t = a.t;
    npy_intp shape[2] = {(npy_intp)a.nb, (npy_intp)t->dim};
    out = pe_out_or_pool(NULL, t->typenum, 2, shape, NULL, 0);
    if (!out) goto fail;
    if (mode == PE_BAG_MAX && !(am = pe_out_or_pool(NULL, NPY_INT64, 2, shape, NULL, 0))) goto fail;
    void *o = PyArray_DATA((PyArrayObject *)out);
    int64_t *ap = am ? (int64_t *)PyArray_DATA((PyArrayObject *)am) : NULL;
    PE_NOGIL_ABOVE((size_t)PyArray_SIZE(a.ids) * (size_t)t->dim * t->witemsize,
                   rc = PE_BY_TABLE(t, pe_bag_forward, o, ap, (void *)t->weight,
                                    BAG_DATA(&a, ids), BAG_DATA(&a, off), BAG_DATA(&a, psw), a.nb,
                                    (size_t)t->dim, mode, a.pad));
    if (rc == PE_OK) res = PyTuple_Pack(2, out, am ? am : Py_None);
    else pe_raise_kernel_error(rc, "bag_forward");
fail:
    bag_args_clear(&a);
    PE_RELEASE(out, am);
    return res;
}

/* argmax of a max bag's forward: (nb, dim), every entry -1 (an empty bag) or a row. */
static int convert_argmax(PyObject *obj, const bag_args *a, PyArrayObject **am) {
    npy_intp shape[2] = {(npy_intp)a->nb, (npy_intp)a->t->dim};
    if (obj == Py_None) {
        PyErr_SetString(PyExc_ValueError, "mode max needs the argmax of the forward");
        return -1;
    }
    if (pe_convert_ids(obj, "argmax", -1, am) < 0) return -1;
    if (PyArray_NDIM(*am) != 2 || !PyArray_CompareLists(PyArray_DIMS(*am), shape, 2)) {
        pe_shape_error("argmax", PyArray_NDIM(*am), PyArray_DIMS(*am), 2, shape, "grad_output");
        return -1;
    }
    const int64_t *p = (const int64_t *)PyArray_DATA(*am);
    for (npy_intp e = 0; e < PyArray_SIZE(*am); e++) {
        if (p[e] < -1 || p[e] >= a->t->rows) {
            PyErr_Format(PyExc_IndexError, "argmax value %lld is out of range for %lld rows",
                         (long long)p[e], (long long)a->t->rows);
            return -1;
        }
    }
    return 0;
}

/* The bag backward kernel on the table's grad and touched list (table lock held). */
static int bag_scatter(bag_args *a, const int64_t *am, int mode) {
    PeTable *t = a->t;
    size_t before = t->n_touched;
    int rc = PE_BY_DTYPE(t->typenum, pe_bag_backward, (void *)t->grad, t->mark, t->touched,
                         &t->n_touched, BAG_DATA(a, ids), BAG_DATA(a, off), BAG_DATA(a, g),
                         BAG_DATA(a, psw), am, a->nb, (size_t)t->dim, mode, a->pad);
    if (t->n_touched != before) t->touched_sorted = 0;
    return rc;
}

static PyObject *bag_backward(PyObject *mod, PyObject *args) {
    PyObject *table_obj, *ids_obj, *off_obj, *g_obj, *psw_obj, *am_obj, *pad_obj, *res = NULL;
    PyArrayObject *am = NULL;
    int mode, rc;
    bag_args a;
    if (!PyArg_ParseTuple(args, "OOOOOOiO:bag_backward", &table_obj, &ids_obj, &off_obj, &g_obj,
                          &psw_obj, &am_obj, &mode, &pad_obj))
        return NULL;
    if (bag_parse(mod, table_obj, ids_obj, off_obj, psw_obj, mode, pad_obj, g_obj, &a) < 0)
        return NULL;
    if (pe_table_refuse_readonly(a.t, "backward") < 0) goto fail;
    if (mode == PE_BAG_MAX && convert_argmax(am_obj, &a, &am) < 0) goto fail;
    if (pe_copy_if_overlaps(&a.g, a.t->grad, pe_table_nbytes(a.t)) < 0) goto fail;
    if (pe_table_ensure_grad(a.t) < 0) goto fail;
    const int64_t *ap = am ? (const int64_t *)PyArray_DATA(am) : NULL;
    PE_LOCKED(a.t, 0, rc = bag_scatter(&a, ap, mode));
    res = pe_kernel_result(rc, "bag_backward", Py_NewRef(Py_None));
fail:
    bag_args_clear(&a);
    Py_XDECREF(am);
    return res;
}

static PyObject *bag_psw_grad(PyObject *mod, PyObject *args) {
    PyObject *table_obj, *ids_obj, *off_obj, *g_obj, *pad_obj, *out = NULL, *res = NULL;
    bag_args a;
    int rc;
    if (!PyArg_ParseTuple(args, "OOOOO:bag_psw_grad", &table_obj, &ids_obj, &off_obj, &g_obj,
                          &pad_obj))
        return NULL;
    if (bag_parse(mod, table_obj, ids_obj, off_obj, NULL, PE_BAG_SUM, pad_obj, g_obj, &a) < 0)
        return NULL;
    PeTable *t = a.t;
    npy_intp n = PyArray_DIM(a.ids, 0);
    out = PyArray_EMPTY(1, &n, t->typenum, 0);
    if (!out) goto fail;
    void *o = PyArray_DATA((PyArrayObject *)out);
    PE_NOGIL_ABOVE((size_t)n * (size_t)t->dim * t->witemsize,
                   rc = PE_BY_TABLE(t, pe_bag_psw_grad, o, (void *)t->weight,
                                    BAG_DATA(&a, ids), BAG_DATA(&a, off), BAG_DATA(&a, g),
                                    (size_t)n, a.nb, (size_t)t->dim, a.pad));
    res = pe_kernel_result(rc, "bag_psw_grad", out);
    out = NULL;
fail:
    bag_args_clear(&a);
    Py_XDECREF(out);
    return res;
}

PyMethodDef pe_bag_functions[] = {
    {"bag_forward", bag_forward, METH_VARARGS,
     "bag_forward(table, ids, offsets, per_sample_weights, mode, padding_idx)\n--\n\n"
     "EmbeddingBag forward over flat ids and offsets (nb + 1 entries). Returns (out, argmax);\n"
     "argmax is None unless mode is max (2). padding_idx: None, or a row (negative: from the\n"
     "end, as torch). See pyembed.EmbeddingBag."},
    {"bag_backward", bag_backward, METH_VARARGS,
     "bag_backward(table, ids, offsets, grad_output, per_sample_weights, argmax, mode, "
     "padding_idx)\n--\n\nAccumulate an EmbeddingBag's gradient into the table."},
    {"bag_psw_grad", bag_psw_grad, METH_VARARGS,
     "bag_psw_grad(table, ids, offsets, grad_output, padding_idx)\n--\n\n"
     "Gradient of a sum bag with respect to its per-sample weights."},
    {NULL, NULL, 0, NULL},
};
