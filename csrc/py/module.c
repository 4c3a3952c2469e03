/* pyembed._core: module init (multi-phase, PEP 489) and the thread functions.
 * Each glue file exports a PyMethodDef table; exec adds them all to the module. */
#define PY_ARRAY_UNIQUE_SYMBOL pyembed_ARRAY_API
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <numpy/arrayobject.h>

#include "kernels/common.h"
#include "table.h"
#include "methods.h"
#include "kernels/rng.h"
#include "pool.h"

#include <limits.h>
#include <math.h>

static PyObject *set_num_threads(PyObject *Py_UNUSED(mod), PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    if (n < 1 || n > 4096) {
        PyErr_Format(PyExc_ValueError, "num_threads must be between 1 and 4096, got %ld", n);
        return NULL;
    }
    pe_set_num_threads((int)n);
    Py_RETURN_NONE;
}

static PyObject *get_num_threads(PyObject *Py_UNUSED(mod), PyObject *noargs) {
    (void)noargs;
    return PyLong_FromLong(pe_get_num_threads());
}

static PyObject *have_openmp(PyObject *Py_UNUSED(mod), PyObject *noargs) {
    (void)noargs;
    return PyBool_FromLong(pe_have_openmp());
}

/* stream_threshold() -> (llc_bytes, stream_min_bytes); stream_threshold(n) sets the latter. */
static PyObject *stream_threshold(PyObject *Py_UNUSED(mod), PyObject *args) {
    PyObject *n_obj = Py_None;
    if (!PyArg_ParseTuple(args, "|O:stream_threshold", &n_obj)) return NULL;
    if (n_obj != Py_None) {
        if (!PyLong_Check(n_obj) || PyBool_Check(n_obj)) {
            PyErr_Format(PyExc_TypeError, "stream_threshold: n must be an int, got %.200s",
                         Py_TYPE(n_obj)->tp_name);
            return NULL;
        }
        int overflow = 0;
        long long n = PyLong_AsLongLongAndOverflow(n_obj, &overflow);
        if (n == -1 && PyErr_Occurred()) return NULL;
        if (overflow || n <= 0) {
            PyErr_Format(PyExc_ValueError,
                         "stream_threshold: n must be a positive byte count, got %S", n_obj);
            return NULL;
        }
        pe_set_stream_min_bytes((size_t)n);
    }
    return Py_BuildValue("(KK)", (unsigned long long)pe_llc_size(),
                         (unsigned long long)pe_stream_min_bytes());
}

/* fill_normal(out, seed, mean, std) / fill_uniform(out, seed, lo, hi): out is a writeable
 * C-contiguous float32/float64 array (usually a Table's weight). */
static PyObject *fill_common(PyObject *args, int normal) {
    PyObject *out_obj;
    unsigned long long seed, first = 0, step = 1;
    double a, b;
    if (!PyArg_ParseTuple(args, normal ? "OKdd|KK:fill_normal" : "OKdd|KK:fill_uniform", &out_obj,
                          &seed, &a, &b, &first, &step))
        return NULL;
    if (!PyArray_Check(out_obj)) {
        PyErr_SetString(PyExc_TypeError, "out must be a numpy.ndarray");
        return NULL;
    }
    PyArrayObject *out = (PyArrayObject *)out_obj;
    int t = PyArray_TYPE(out);
    if ((t != NPY_FLOAT32 && t != NPY_FLOAT64) || !PyArray_IS_C_CONTIGUOUS(out) ||
        !PyArray_ISWRITEABLE(out) || !PyArray_ISALIGNED(out) || !PyArray_ISNOTSWAPPED(out)) {
        PyErr_SetString(PyExc_ValueError,
                        "out must be a writeable C-contiguous float32 or float64 array");
        return NULL;
    }
    if (!isfinite(a) || !isfinite(b) || (normal ? b < 0 : b < a)) {
        PyErr_SetString(PyExc_ValueError, normal ? "mean and std must be finite, std >= 0"
                                                 : "bounds must be finite with lo <= hi");
        return NULL;
    }
    size_t n = (size_t)PyArray_SIZE(out);
    void *p = PyArray_DATA(out);
    if (first != 0 || step != 1) {
        /* rows first, first + step, ... of a bigger table (a shard of one, pyembed.distributed) */
        if (PyArray_NDIM(out) != 2) {
            PyErr_Format(PyExc_ValueError, "out must be 2-D (rows, dim) with first_row/row_step, "
                         "got %d dimension(s)", PyArray_NDIM(out));
            return NULL;
        }
        size_t rows = (size_t)PyArray_DIM(out, 0), dim = (size_t)PyArray_DIM(out, 1);
        /* the counter of the last element, (first + (rows-1)*step + 1) * dim, must fit 64 bits */
        unsigned long long last = rows ? (unsigned long long)(rows - 1) : 0;
        if (rows && ((step && last > (ULLONG_MAX - first) / step) ||
                     (dim && first + last * step >= ULLONG_MAX / dim))) {
            PyErr_Format(PyExc_OverflowError, "first_row %llu + %zu rows x row_step %llu of "
                         "dim %zu pass the generator's 64-bit counter", first, rows, step, dim);
            return NULL;
        }
        if (normal)
            PE_NOGIL_ABOVE((size_t)PyArray_NBYTES(out),
                           PE_BY_DTYPE(t, pe_fill_normal_rows, p, rows, dim, first, step, seed, a, b));
        else
            PE_NOGIL_ABOVE((size_t)PyArray_NBYTES(out),
                           PE_BY_DTYPE(t, pe_fill_uniform_rows, p, rows, dim, first, step, seed, a, b));
        Py_RETURN_NONE;
    }
    if (normal)
        PE_NOGIL_ABOVE((size_t)PyArray_NBYTES(out), PE_BY_DTYPE(t, pe_fill_normal, p, n, seed, a, b));
    else
        PE_NOGIL_ABOVE((size_t)PyArray_NBYTES(out), PE_BY_DTYPE(t, pe_fill_uniform, p, n, seed, a, b));
    Py_RETURN_NONE;
}

static PyObject *fill_normal(PyObject *Py_UNUSED(mod), PyObject *args) { return fill_common(args, 1); }
static PyObject *fill_uniform(PyObject *Py_UNUSED(mod), PyObject *args) { return fill_common(args, 0); }

static PyMethodDef module_functions[] = {
    {"set_num_threads", set_num_threads, METH_O,
     "set_num_threads(n)\n--\n\nUse n threads in every kernel (n >= 1)."},
    {"get_num_threads", get_num_threads, METH_NOARGS,
     "get_num_threads()\n--\n\nThe number of threads kernels use (1 in a forked child)."},
    {"have_openmp", have_openmp, METH_NOARGS,
     "have_openmp()\n--\n\nWhether the extension was built with OpenMP."},
    {"stream_threshold", stream_threshold, METH_VARARGS,
     "stream_threshold(n=None)\n--\n\nReturn (last-level cache bytes, 0 if unknown; output bytes "
     "from which kernels\nwrite with streaming stores). With n, set the latter first "
     "(PYEMBED_STREAM_MIN_BYTES sets it at\n"
     "import; default max(4 MiB, LLC / 16); gradient rows stream from 4x it)."},
    {"fill_normal", fill_normal, METH_VARARGS,
     "fill_normal(out, seed, mean, std, first_row=0, row_step=1)\n--\n\nFill out with N(mean, std^2), a function of (seed, index). With first_row/row_step,\nout (rows, dim) gets rows first_row, first_row + row_step, ... of the whole table's fill."},
    {"fill_uniform", fill_uniform, METH_VARARGS,
     "fill_uniform(out, seed, lo, hi, first_row=0, row_step=1)\n--\n\nFill out with U[lo, hi), a function of (seed, index); first_row/row_step as fill_normal."},
    {NULL, NULL, 0, NULL},
};

/* The method tables of the other glue files. */
static PyMethodDef *const glue_tables[] = {
    pe_table_functions,
    pe_parse_functions,
    pe_topk_functions,
    pe_pool_functions,
    pe_sgns_functions,
    pe_optim_functions,
    pe_gradnorm_functions,
    pe_positional_functions,
    pe_bag_functions,
    pe_half_functions,
    pe_layernorm_functions,
};

static int module_exec(PyObject *m) {
    if (PyArray_ImportNumPyAPI() < 0) return -1;
    (void)pe_get_num_threads(); /* reads PYEMBED_NUM_THREADS and registers the kernels' fork
                                   handler now, before any fork can happen */
    if (pe_table_atfork_init() < 0) return -1; /* the tables' locks: see table.h */
    pe_module_state *st = (pe_module_state *)PyModule_GetState(m);
    st->TableType = (PyTypeObject *)PyType_FromModuleAndSpec(m, &pe_table_spec, NULL);
    if (!st->TableType) return -1;
    if (PyModule_AddType(m, st->TableType) < 0) return -1;
    for (size_t i = 0; i < sizeof(glue_tables) / sizeof(glue_tables[0]); i++)
        if (PyModule_AddFunctions(m, glue_tables[i]) < 0) return -1;
    (void)pe_stream_min_bytes(); /* decided once here, not raced on by kernels without the GIL */
    return 0;
}

static int module_traverse(PyObject *m, visitproc visit, void *arg) {
    pe_module_state *st = (pe_module_state *)PyModule_GetState(m);
    if (st) Py_VISIT(st->TableType);
    return 0;
}

static int module_clear(PyObject *m) {
    pe_module_state *st = (pe_module_state *)PyModule_GetState(m);
    if (st) Py_CLEAR(st->TableType);
    return 0;
}

static void module_free(void *m) { module_clear((PyObject *)m); }

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
#if PY_VERSION_HEX >= 0x030C0000
    {Py_mod_multiple_interpreters, Py_MOD_MULTIPLE_INTERPRETERS_NOT_SUPPORTED},
#endif
#if PY_VERSION_HEX >= 0x030D0000
    /* the glue needs the GIL: it serialises the checks made before a kernel runs (a table's lazy
       grad and its lock after a fork, the output pool's free list); kernels run without it */
    {Py_mod_gil, Py_MOD_GIL_USED},
#endif
    {0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "pyembed._core",
    .m_doc = "C kernels and the Table type under pyembed.",
    .m_size = sizeof(pe_module_state),
    .m_methods = module_functions,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
    .m_free = module_free,
};

PyMODINIT_FUNC PyInit__core(void) { return PyModuleDef_Init(&module_def); }
