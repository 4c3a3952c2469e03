/* The compute methods of pyembed._core.Table (declared in table.h, listed in table.c's method
 * table): lookup, renorm, backward, zero_grad, mark_all_touched, add_dense_grad. Each checks every
 * argument with the GIL held, then calls the kernel as glue.h says (under the table's lock when it
 * writes the table). */
#include "table.h"
#include "kernels/gather.h"
#include "kernels/scatter.h"
#include "kernels/half_rows.h"

#include <string.h>

/* max_norm renormalisation of the distinct rows in ids (a private copy: convert.h). */
static int run_renorm(PeTable *self, const int64_t *ids, size_t n, double max_norm,
                      double norm_type) {
    int rc;
    PE_LOCKED(self, 0, rc = PE_BY_TABLE(self, pe_renorm, (void *)self->weight, ids, n,
                                        (size_t)self->dim, self->rows, max_norm, norm_type));
    return rc;
}

/* A real-number argument (None taken as absent: *out unchanged), the TypeError naming it (PyArg's
 * "d" says "must be real number, not str" and names nothing). */
static int parse_real(PyObject *obj, const char *name, double *out) {
    if (obj == Py_None) return 0;
    if (PyBool_Check(obj) || !(PyFloat_Check(obj) || PyIndex_Check(obj) ||
                               PyNumber_Check(obj))) {
        PyErr_Format(PyExc_TypeError, "%s must be a number, got %.80R (%.200s)", name, obj,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    double v = PyFloat_AsDouble(obj);
    if (v == -1.0 && PyErr_Occurred()) return -1;
    *out = v;
    return 0;
}

static int check_renorm_args(double max_norm, double norm_type) {
    const char *name = !(max_norm >= 0.0) ? "max_norm" : !(norm_type > 0.0) ? "norm_type" : NULL;
    if (!name) return 0;
    PyObject *v = PyFloat_FromDouble(name[0] == 'm' ? max_norm : norm_type);
    if (v) {
        PyErr_Format(PyExc_ValueError, "%s must be %s, got %R", name,
                     name[0] == 'm' ? ">= 0" : "> 0", v);
        Py_DECREF(v);
    }
    return -1;
}

/* An out= of a half table's own dtype, checked as pe_out_or_pool checks one (exact, writeable,
 * disjoint from the inputs; pe_check_exact knows dtypes by number, and bfloat16's is not fixed):
 * a new reference or NULL. */
static PyObject *half_out(PyObject *out_obj, int nd, const npy_intp *shape,
                          const pe_span *inputs) {
    PyArrayObject *o = (PyArrayObject *)out_obj;
    if (pe_check_out(out_obj, "out", PyArray_TYPE(o), nd, shape) < 0) return NULL;
    pe_span os = pe_span_of("out", o);
    if (pe_refuse_overlap(&os, inputs, 1) < 0) return NULL;
    return Py_NewRef(out_obj);
}

const char pe_table_lookup_doc[] = PyDoc_STR(
"lookup(ids, out=None, max_norm=None, norm_type=2.0)\n--\n\n"
"Rows of the table for ids of any integer dtype and shape: W[ids], of shape ids.shape + (dim,).\n"
"A float16 / bfloat16 table's rows come as float32 (widened exactly), or with out= of the\n"
"table's own dtype as they are stored.\n"
"out, if given, must be a C-contiguous writeable array of exactly that shape and dtype that\n"
"does not overlap the weight (ids may live anywhere: they are read from a private copy).\n"
"max_norm, if given, first renormalises the looked-up rows in place (see renorm), after every\n"
"argument has been checked. Raises IndexError naming the first id out of range; nothing is\n"
"written then.");

PyObject *pe_table_lookup(PeTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"ids", "out", "max_norm", "norm_type", NULL};
    PyObject *ids_obj, *out_obj = Py_None, *max_norm_obj = Py_None, *norm_type_obj = Py_None;
    double max_norm = 0.0, norm_type = 2.0;
    PyArrayObject *ids = NULL;
    PyObject *out = NULL, *res = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OOO:lookup", kwlist, &ids_obj, &out_obj,
                                     &max_norm_obj, &norm_type_obj))
        return NULL;
    if (parse_real(max_norm_obj, "max_norm", &max_norm) < 0 ||
        parse_real(norm_type_obj, "norm_type", &norm_type) < 0)
        return NULL;
    if (max_norm_obj != Py_None && (check_renorm_args(max_norm, norm_type) < 0 ||
                                    pe_table_refuse_readonly(self, "lookup with max_norm") < 0))
        return NULL;
    if (pe_convert_ids(ids_obj, "ids", self->rows, &ids) < 0) return NULL;
    npy_intp shape[NPY_MAXDIMS];
    int nd = pe_row_shape(ids, "ids", (npy_intp)self->dim, shape);
    if (nd < 0) goto done;
    /* a half table's rows come widened to float32, or as they are into an out= of its dtype */
    int widen = self->half && !(PyArray_Check(out_obj) &&
                                PyArray_EquivTypes(PyArray_DESCR((PyArrayObject *)out_obj),
                                                   self->wdescr));
    pe_span weight = {"the table's weight", self->weight, pe_table_weight_nbytes(self)};
    out = widen || !self->half ? pe_out_or_pool(out_obj, self->typenum, nd, shape, &weight, 1)
                               : half_out(out_obj, nd, shape, &weight);
    if (!out) goto done;
    size_t n = (size_t)PyArray_SIZE(ids), row_bytes = (size_t)self->dim * self->witemsize;
    const int64_t *ip = (const int64_t *)PyArray_DATA(ids);
    void *op = PyArray_DATA((PyArrayObject *)out);
    int rc = PE_OK;
    /* every argument is checked: only now may the weights change (torch renorms, then looks up) */
    if (max_norm_obj != Py_None) rc = run_renorm(self, ip, n, max_norm, norm_type);
    if (rc == PE_OK && widen)
        PE_NOGIL_ABOVE(n * row_bytes * 3, rc = pe_gather_widen(op, (const uint16_t *)self->weight,
                                                               ip, n, (size_t)self->dim,
                                                               self->half));
    else if (rc == PE_OK)
        PE_NOGIL_ABOVE(n * row_bytes, rc = pe_gather(op, self->weight, ip, n, row_bytes));
    res = pe_kernel_result(rc, "lookup", out);
    out = NULL;
done:
    PE_RELEASE(ids, out);
    return res;
}

const char pe_table_renorm_doc[] = PyDoc_STR(
"renorm(ids, max_norm, norm_type=2.0)\n--\n\n"
"torch.embedding_renorm_: every distinct row in ids whose norm_type-norm exceeds max_norm is\n"
"scaled in place to norm max_norm / (norm + 1e-7) * norm.");

PyObject *pe_table_renorm(PeTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"ids", "max_norm", "norm_type", NULL};
    PyObject *ids_obj, *max_norm_obj, *norm_type_obj = Py_None;
    double max_norm = NAN, norm_type = 2.0;
    PyArrayObject *ids = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O:renorm", kwlist, &ids_obj, &max_norm_obj,
                                     &norm_type_obj))
        return NULL;
    if (max_norm_obj == Py_None) { /* required here: None is not "no renorm" */
        PyErr_SetString(PyExc_TypeError, "max_norm must be a number, got None (NoneType)");
        return NULL;
    }
    if (parse_real(max_norm_obj, "max_norm", &max_norm) < 0 ||
        parse_real(norm_type_obj, "norm_type", &norm_type) < 0)
        return NULL;
    if (check_renorm_args(max_norm, norm_type) < 0 ||
        pe_table_refuse_readonly(self, "renorm") < 0)
        return NULL;
    if (pe_convert_ids(ids_obj, "ids", self->rows, &ids) < 0) return NULL;
    int rc = run_renorm(self, (const int64_t *)PyArray_DATA(ids), (size_t)PyArray_SIZE(ids),
                        max_norm, norm_type);
    Py_DECREF(ids);
    if (rc != PE_OK) return pe_raise_kernel_error(rc, "renorm"), NULL;
    Py_RETURN_NONE;
}

const char pe_table_backward_doc[] = PyDoc_STR(
"backward(ids, grad_output, padding_idx=None, scale_grad_by_freq=False)\n--\n\n"
"Accumulate the lookup's gradient: np.add.at(grad, ids, grad_output), each row summed in the\n"
"order its ids appear (bitwise identical for every thread count). The padding row (None: none;\n"
"negative: counted from the end, as torch) gets none; with scale_grad_by_freq each contribution\n"
"is scaled by 1 / (count of its id in ids). grad_output must have shape ids.shape + (dim,).");

/* The scatter-add kernel on the table's grad and touched list (table lock held). */
static int scatter(PeTable *t, const int64_t *ids, const void *g, size_t n, int64_t pad,
                   int scale) {
    size_t before = t->n_touched;
    int rc = PE_BY_DTYPE(t->typenum, pe_scatter_add, (void *)t->grad, t->mark, t->touched,
                         &t->n_touched, ids, g, n, (size_t)t->dim, t->rows, pad, scale);
    if (t->n_touched != before) t->touched_sorted = 0;
    return rc;
}

PyObject *pe_table_backward(PeTable *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"ids", "grad_output", "padding_idx", "scale_grad_by_freq", NULL};
    PyObject *ids_obj, *g_obj, *pad_obj = Py_None;
    int scale = 0;
    int64_t pad;
    PyArrayObject *ids = NULL, *g = NULL;
    PyObject *res = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|Op:backward", kwlist, &ids_obj, &g_obj,
                                     &pad_obj, &scale))
        return NULL;
    /* its gradient could never be applied: refuse training a table that cannot change */
    if (pe_table_refuse_readonly(self, "backward") < 0) return NULL;
    if (pe_parse_padding_idx(pad_obj, self->rows, &pad) < 0) return NULL;
    if (pe_convert_ids(ids_obj, "ids", self->rows, &ids) < 0) return NULL;
    npy_intp want[NPY_MAXDIMS];
    int nd = pe_row_shape(ids, "ids", (npy_intp)self->dim, want);
    if (nd < 0) goto done;
    if (pe_convert_float(g_obj, "grad_output", self->typenum, &g) < 0) goto done;
    if (PyArray_NDIM(g) != nd || !PyArray_CompareLists(PyArray_DIMS(g), want, nd)) {
        pe_shape_error("grad_output", PyArray_NDIM(g), PyArray_DIMS(g), nd, want,
                       "ids.shape + (embedding_dim,)");
        goto done;
    }
    /* np.add.at reads grad_output as it was before the call */
    if (pe_copy_if_overlaps(&g, self->grad, pe_table_nbytes(self)) < 0) goto done;
    /* a grad allocated here and left unused on failure is all zeros: the table is unchanged */
    if (pe_table_ensure_grad(self) < 0) goto done;
    const int64_t *ip = (const int64_t *)PyArray_DATA(ids);
    const void *gp = PyArray_DATA(g);
    size_t n = (size_t)PyArray_SIZE(ids);
    int rc;
    PE_LOCKED(self, 0, rc = scatter(self, ip, gp, n, pad, scale));
    res = pe_kernel_result(rc, "backward", Py_NewRef(Py_None));
done:
    PE_RELEASE(ids, g);
    return res;
}

const char pe_table_zero_grad_doc[] = PyDoc_STR(
"zero_grad()\n--\n\n"
"Clear the gradient of the touched rows only (cost grows with the rows touched, not the table)\n"
"and empty the touched list.");

static void zero_touched(PeTable *t) {
    pe_zero_rows(t->grad, t->mark, t->touched, t->n_touched, (size_t)t->dim * t->itemsize);
    t->n_touched = 0;
    t->touched_sorted = 1;
}

PyObject *pe_table_zero_grad(PeTable *self, PyObject *noargs) {
    (void)noargs;
    if (!self->grad) Py_RETURN_NONE;
    PE_LOCKED(self, 0, zero_touched(self));
    Py_RETURN_NONE;
}

/* Every row touched (table lock held). */
static void mark_all(PeTable *t) {
    for (int64_t r = 0; r < t->rows; r++) t->touched[r] = r;
    memset(t->mark, 1, (size_t)t->rows);
    t->n_touched = (size_t)t->rows;
    t->touched_sorted = 1;
}

const char pe_table_mark_all_touched_doc[] = PyDoc_STR(
"mark_all_touched()\n--\n\n"
"Allocate the gradient if needed and mark every row touched (for dense gradients such as the\n"
"tied output head, which write into every row).");

PyObject *pe_table_mark_all_touched(PeTable *self, PyObject *noargs) {
    (void)noargs;
    if (pe_table_refuse_readonly(self, "mark_all_touched") < 0 || pe_table_ensure_grad(self) < 0)
        return NULL;
    PE_LOCKED(self, 0, mark_all(self));
    Py_RETURN_NONE;
}

const char pe_table_add_dense_grad_doc[] = PyDoc_STR(
"add_dense_grad(dense)\n--\n\n"
"grad += dense for a (num_embeddings, embedding_dim) gradient that reaches every row (a tied\n"
"output head's), marking every row touched. grad is read-only to users, because the kernels rely\n"
"on the rows outside touched being zero; this is the way a dense gradient gets in.");

PyObject *pe_table_add_dense_grad(PeTable *self, PyObject *dense_obj) {
    PyArrayObject *dense = NULL;
    PyObject *view = NULL, *sum = NULL;
    npy_intp shape[2] = {(npy_intp)self->rows, (npy_intp)self->dim};
    if (pe_table_refuse_readonly(self, "add_dense_grad") < 0) return NULL;
    if (pe_convert_float(dense_obj, "dense", self->typenum, &dense) < 0) return NULL;
    if (PyArray_NDIM(dense) != 2 || !PyArray_CompareLists(PyArray_DIMS(dense), shape, 2)) {
        pe_shape_error("dense", PyArray_NDIM(dense), PyArray_DIMS(dense), 2, shape, "this table");
        goto done;
    }
    if (pe_table_ensure_grad(self) < 0) goto done;
    view = pe_table_view(self, self->grad, 1);
    if (!view) goto done;
    PE_LOCKED(self, 0, mark_all(self));
    sum = PyNumber_InPlaceAdd(view, (PyObject *)dense); /* one NumPy call, with the GIL */
done:
    PE_RELEASE(dense, view);
    if (!sum) return NULL;
    Py_DECREF(sum);
    Py_RETURN_NONE;
}
