/* Glue for the gradient-norm kernels (kernels/gradnorm.h: clip_grad_norm_'s norm and scaling) and
 * the test hook that lowers the vector level; the argument checks are optim.c's (optim_args.h). */
#include "methods.h"
#include "optim_args.h"
#include "table.h"
#include "kernels/gradnorm.h"
#include "kernels/simd.h"

#include <string.h>

/* The (grad, rows, table) arguments shared by grad_norm and scale_grad: grad a float array
 * (writeable when `write`), rows None or ids of grad's rows (a private copy), table None or the
 * Table whose lock to hold. */
typedef struct {
    PyArrayObject *g, *rows; /* g borrowed, rows owned */
    PeTable *tab;
    const int64_t *R;        /* NULL: every row */
    size_t nl, nrows, dim, work_bytes;
} grad_rows;

static int parse_grad_rows(PyObject *mod, PyObject *g_o, PyObject *rows_o, PyObject *tab_o,
                           int write, grad_rows *a) {
    memset(a, 0, sizeof *a);
    if (pe_parse_table(mod, tab_o, 1, &a->tab) < 0) return -1;
    /* the table's own grad is read-only to users (table.c) but written here, under its lock */
    /* only the grad itself (its dtype and shape, not a view of it as another dtype) */
    if (write && a->tab && a->tab->grad && PyArray_Check(g_o) &&
        PyArray_DATA((PyArrayObject *)g_o) == (void *)a->tab->grad &&
        PyArray_TYPE((PyArrayObject *)g_o) == a->tab->typenum &&
        PyArray_IS_C_CONTIGUOUS((PyArrayObject *)g_o) && PyArray_NDIM((PyArrayObject *)g_o) == 2 &&
        PyArray_DIM((PyArrayObject *)g_o, 0) == (npy_intp)a->tab->rows &&
        PyArray_DIM((PyArrayObject *)g_o, 1) == (npy_intp)a->tab->dim)
        write = 0;
    if (pe_opt_check_array(g_o, "grad", NULL, write, &a->g) < 0) return -1;
    pe_opt_rows_dim(a->g, &a->nrows, &a->dim);
    if (rows_o != Py_None) {
        if (pe_opt_need_2d(a->g, "rows") < 0) return -1;
        if (pe_opt_convert_rows(rows_o, (int64_t)a->nrows, &a->rows) < 0) return -1;
        a->R = (const int64_t *)PyArray_DATA(a->rows);
        a->nl = (size_t)PyArray_SIZE(a->rows);
    }
    a->work_bytes = (a->R ? a->nl : a->nrows) * a->dim * (size_t)PyArray_ITEMSIZE(a->g);
    return 0;
}

PyDoc_STRVAR(grad_norm_doc,
"grad_norm(grad, rows=None, norm_type=2.0, table=None)\n--\n\n"
"sum(|g|**norm_type) over rows of a 2-D grad (all of grad when rows is None), in double; the\n"
"max |g| when norm_type is inf. Bitwise identical for every thread count.");

static PyObject *grad_norm(PyObject *mod, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"grad", "rows", "norm_type", "table", NULL};
    PyObject *g_o, *rows_o = Py_None, *tab_o = Py_None;
    double nt = 2.0, out = 0.0;
    grad_rows a;
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OdO:grad_norm", kwlist, &g_o, &rows_o, &nt,
                                     &tab_o))
        return NULL;
    if (!(nt > 0.0)) {
        PyObject *v = PyFloat_FromDouble(nt);
        if (v) PyErr_Format(PyExc_ValueError, "norm_type must be > 0, got %R", v);
        Py_XDECREF(v);
        return NULL;
    }
    if (parse_grad_rows(mod, g_o, rows_o, tab_o, 0, &a) < 0) return PE_RELEASE(a.rows), NULL;
    PE_LOCKED(a.tab, a.work_bytes,
              rc = PE_BY_DTYPE(PyArray_TYPE(a.g), pe_grad_norm, &out, PyArray_DATA(a.g), a.R, a.nl,
                               a.nrows, a.dim, nt));
    PE_RELEASE(a.rows);
    return pe_kernel_result(rc, "grad_norm", rc == PE_OK ? PyFloat_FromDouble(out) : NULL);
}

PyDoc_STRVAR(scale_grad_doc,
"scale_grad(grad, coef, rows=None, table=None)\n--\n\n"
"grad[rows] *= coef in place (all of grad when rows is None); coef rounded to grad's dtype.");

static PyObject *scale_grad(PyObject *mod, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"grad", "coef", "rows", "table", NULL};
    PyObject *g_o, *rows_o = Py_None, *tab_o = Py_None;
    double coef;
    grad_rows a;
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Od|OO:scale_grad", kwlist, &g_o, &coef, &rows_o,
                                     &tab_o))
        return NULL;
    if (parse_grad_rows(mod, g_o, rows_o, tab_o, 1, &a) < 0) return PE_RELEASE(a.rows), NULL;
    PE_LOCKED(a.tab, a.work_bytes,
              rc = PE_BY_DTYPE(PyArray_TYPE(a.g), pe_scale_rows, PyArray_DATA(a.g), a.R, a.nl,
                               a.nrows, a.dim, coef));
    PE_RELEASE(a.rows);
    return pe_kernel_result(rc, "scale_grad", Py_NewRef(Py_None));
}

static PyObject *set_simd_level(PyObject *Py_UNUSED(mod), PyObject *arg) {
    long level = PyLong_AsLong(arg);
    if (level == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLong(pe_set_simd_level(level < -1 ? -1 : (int)level));
}

PyMethodDef pe_gradnorm_functions[] = {
    {"_set_simd_level", set_simd_level, METH_O,
     "_set_simd_level(level)\n--\n\nUse at most this vector level in the optimizer loops (0 "
     "baseline, 1 AVX2, 2 AVX-512, -1 the best the CPU has); returns the level now in use. For "
     "tests: every level gives the same bits."},
    PE_KW_METHOD("grad_norm", grad_norm, grad_norm_doc),
    PE_KW_METHOD("scale_grad", scale_grad, scale_grad_doc),
    {NULL, NULL, 0, NULL},
};
