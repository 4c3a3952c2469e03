/* pyembed._core.narrow_rows: float32 rows rounded into a float16 / bfloat16 table, to nearest even
 * or stochastically (kernels/half_rows.h). What the optimizers will do per row after their
 * float32 update, exposed for the tests and for writing float32 values into a half table. */
#include "methods.h"
#include "table.h"
#include "kernels/half_rows.h"

#include <string.h>

/* A non-negative integer below 2^64 (None: *out unchanged), errors naming it and the value. */
static int parse_u64(PyObject *obj, const char *name, uint64_t *out) {
    if (obj == Py_None) return 0;
    if (PyBool_Check(obj) || !PyLong_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s must be an int, got %.80R (%.200s)", name, obj,
                     Py_TYPE(obj)->tp_name);
        return -1;
    }
    unsigned long long v = PyLong_AsUnsignedLongLong(obj);
    if (v == (unsigned long long)-1 && PyErr_Occurred()) {
        PyErr_Clear();
        PyErr_Format(PyExc_ValueError, "%s must be within [0, 2**64), got %R", name, obj);
        return -1;
    }
    *out = (uint64_t)v;
    return 0;
}

/* ValueError naming the first id of `rows` (checked in range) that repeats an earlier one: two
 * writes of one row would race between threads. 0 or -1. */
static int check_distinct(const int64_t *rows, npy_intp n, int64_t num_rows) {
    uint8_t *seen = (uint8_t *)PyMem_Calloc((size_t)(num_rows ? num_rows : 1), 1);
    if (!seen) return PyErr_NoMemory(), -1;
    npy_intp bad = -1;
    for (npy_intp i = 0; i < n && bad < 0; i++) {
        if (seen[rows[i]]) bad = i;
        seen[rows[i]] = 1;
    }
    PyMem_Free(seen);
    if (bad < 0) return 0;
    PyErr_Format(PyExc_ValueError, "rows must be distinct, but rows[%zd] = %lld appears before it",
                 (Py_ssize_t)bad, (long long)rows[bad]);
    return -1;
}

PyDoc_STRVAR(narrow_rows_doc,
"narrow_rows(table, values, rows=None, stochastic=False, seed=0, step=0)\n--\n\n"
"Write float32 values into a float16 / bfloat16 table: W[rows[i]] = round(values[i]) (rows None:\n"
"every row, values of the table's shape). Rounding to nearest even gives exactly NumPy's\n"
"astype(float16) / ml_dtypes' astype(bfloat16); stochastic=True rounds up with probability\n"
"equal to the distance from the value below, with random bits that are a function of\n"
"(seed, step, row, column) only: the same bits for any thread count. values must be a\n"
"C-contiguous float32 array of shape (len(rows), embedding_dim); rows distinct.");

static PyObject *narrow_rows(PyObject *mod, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"table", "values", "rows", "stochastic", "seed", "step", NULL};
    PyObject *table_obj, *values_obj, *rows_obj = Py_None, *seed_obj = Py_None;
    PyObject *step_obj = Py_None;
    int stochastic = 0, rc;
    uint64_t seed = 0, step = 0;
    PyArrayObject *rows = NULL;
    PeTable *t;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|OpOO:narrow_rows", kwlist, &table_obj,
                                     &values_obj, &rows_obj, &stochastic, &seed_obj, &step_obj))
        return NULL;
    if (pe_parse_table(mod, table_obj, 0, &t) < 0) return NULL;
    if (!t->half) {
        PyErr_Format(PyExc_ValueError, "narrow_rows needs a float16 or bfloat16 table, got %R",
                     table_obj);
        return NULL;
    }
    if (parse_u64(seed_obj, "seed", &seed) < 0 || parse_u64(step_obj, "step", &step) < 0)
        return NULL;
    npy_intp shape[2] = {(npy_intp)t->rows, (npy_intp)t->dim};
    if (rows_obj != Py_None) {
        if (pe_convert_ids(rows_obj, "rows", t->rows, &rows) < 0) return NULL;
        if (PyArray_NDIM(rows) != 1) {
            PyErr_Format(PyExc_ValueError, "rows must be 1-D, got %d dimensions",
                         PyArray_NDIM(rows));
            goto fail;
        }
        shape[0] = PyArray_DIM(rows, 0);
        if (check_distinct((const int64_t *)PyArray_DATA(rows), shape[0], t->rows) < 0) goto fail;
    }
    if (pe_check_exact(values_obj, "values", NPY_FLOAT32, 2, shape, 0,
                       rows ? "(len(rows), embedding_dim)" : "the table") < 0)
        goto fail;
    pe_span w = {"the table's weight", t->weight, pe_table_weight_nbytes(t)};
    pe_span v = pe_span_of("values", (PyArrayObject *)values_obj);
    if (pe_refuse_overlap(&v, &w, 1) < 0) goto fail;
    const float *src = (const float *)PyArray_DATA((PyArrayObject *)values_obj);
    const int64_t *rp = rows ? (const int64_t *)PyArray_DATA(rows) : NULL;
    PE_LOCKED(t, 0,
              rc = pe_narrow_rows((uint16_t *)t->weight, src, rp, (size_t)shape[0],
                                  (size_t)t->dim, t->half,
                                  stochastic ? PE_ROUND_STOCHASTIC : PE_ROUND_NEAREST, seed, step));
    Py_XDECREF(rows);
    return pe_kernel_result(rc, "narrow_rows", Py_NewRef(Py_None));
fail:
    Py_XDECREF(rows);
    return NULL;
}

PyMethodDef pe_half_functions[] = {
    PE_KW_METHOD("narrow_rows", narrow_rows, narrow_rows_doc),
    {NULL, NULL, 0, NULL},
};
