/* Glue for the optimizer kernels (adam.c, sgd.c, adagrad.c; the gradient norms: gradnorm.c).
 *
 * Every function takes NumPy arrays it updates in place. All arguments are checked before
 * anything is written: arrays that are written must be exact (C-contiguous, aligned, writeable,
 * the parameter's dtype and shape; we raise rather than copy, because a copy would silently
 * not be updated), the gradient must match the parameter, `rows` must be strictly increasing
 * ids in range (so no two threads ever own the same row; a private copy, convert.h), and no two
 * arrays may overlap (glue.h). With `table=` given, the table's lock is held around the kernel so
 * that a concurrent backward on another Python thread cannot interleave.
 *
 * Hyper-parameters (lr, betas, eps, weight_decay, momentum, ...) are checked by the Python layer
 * (pyembed.optim, torch's messages), their one owner; here any value is computed with (a NaN lr
 * gives NaN weights, never a crash).
 */
#include "methods.h"
#include "optim_args.h"
#include "table.h"
#include "kernels/adagrad.h"
#include "kernels/adam.h"
#include "kernels/sgd.h"

#include <math.h>
#include <string.h>

/* An ndarray of the parameter's dtype and shape (the parameter itself: float32 or float64, any
 * shape), C-contiguous and aligned; writeable when `write`. Borrowed reference in *out. */
int pe_opt_check_array(PyObject *obj, const char *name, PyArrayObject *like, int write,
                       PyArrayObject **out) {
    if (!PyArray_Check(obj)) return pe_check_exact(obj, name, NPY_FLOAT32, 0, NULL, write, NULL);
    PyArrayObject *ref = like ? like : (PyArrayObject *)obj;
    if (!like && PyArray_TYPE(ref) != NPY_FLOAT32 && PyArray_TYPE(ref) != NPY_FLOAT64) {
        PyErr_Format(PyExc_ValueError, "%s must be float32 or float64, got dtype %S", name,
                     (PyObject *)PyArray_DESCR(ref));
        return -1;
    }
    const int typenum = like && PyArray_ITEMSIZE(like) == 2 ? NPY_FLOAT32 : PyArray_TYPE(ref);
    if (pe_check_exact(obj, name, typenum, PyArray_NDIM(ref), PyArray_DIMS(ref), write,
                       "the parameter") < 0)
        return -1;
    *out = (PyArrayObject *)obj;
    return 0;
}

/* The dtype of a parameter's gradient and state: float32 for a float16 / bfloat16 parameter. */
static int state_type(PyArrayObject *p) {
    return PyArray_ITEMSIZE(p) == 2 ? NPY_FLOAT32 : PyArray_TYPE(p);
}

/* param: pe_opt_check_array's, or a float16 / bfloat16 table's weight (2-D, 16-bit, exact and
 * writeable) when table= is such a table; *h says how the float32 update is rounded back (kind 0:
 * not half). sr != 0: stochastic rounding with seed and step (half.h). Borrowed reference in *out. */
static int check_param(PyObject *mod, PyObject *obj, PyObject *tab_o, int sr, unsigned long long seed,
                       unsigned long long step, PyArrayObject **out, pe_half_round *h) {
    memset(h, 0, sizeof *h);
    if (!PyArray_Check(obj) || PyArray_ITEMSIZE((PyArrayObject *)obj) != 2)
        return pe_opt_check_array(obj, "param", NULL, 1, out);
    PeTable *t = NULL;
    if (pe_parse_table(mod, tab_o, 1, &t) < 0) return -1;
    PyArrayObject *p = (PyArrayObject *)obj;
    if (!t || !t->half) {
        PyErr_Format(PyExc_ValueError, "a float16 / bfloat16 param must be the weight of the "
                     "half table given as table=, got dtype %S", (PyObject *)PyArray_DESCR(p));
        return -1;
    }
    /* the rounding format and the lock come from table=: param must be that table's weight */
    if (PyArray_DATA(p) != (void *)t->weight || !PyArray_EquivTypes(PyArray_DESCR(p), t->wdescr)) {
        PyErr_Format(PyExc_ValueError, "a float16 / bfloat16 param must be the weight of the "
                     "half table given as table= (a %S table), got another array of dtype %S",
                     (PyObject *)t->wdescr, (PyObject *)PyArray_DESCR(p));
        return -1;
    }
    npy_intp shape[2] = {(npy_intp)t->rows, (npy_intp)t->dim};
    if (pe_check_exact(obj, "param", PyArray_TYPE(p), 2, shape, 1, "the table") < 0) return -1;
    h->kind = t->half;
    h->mode = sr ? PE_ROUND_STOCHASTIC : PE_ROUND_NEAREST;
    h->seed = (uint64_t)seed;
    h->step = (uint64_t)step;
    *out = p;
    return 0;
}

/* A 1-D C-contiguous array of `n` items of `typenum` (uint8 also accepts bool). Borrowed. */
static int check_vector(PyObject *obj, const char *name, int typenum, npy_intp n, int write,
                        PyArrayObject **out) {
    if (PyArray_Check(obj)) { /* the dtypes that stand in for typenum are checked as themselves */
        int t = PyArray_TYPE((PyArrayObject *)obj);
        if ((typenum == NPY_UINT8 && t == NPY_BOOL) ||
            (typenum == NPY_INT64 && PyArray_EquivTypenums(t, NPY_INT64)))
            typenum = t;
    }
    if (pe_check_exact(obj, name, typenum, 1, &n, write, "the parameter's rows") < 0) return -1;
    *out = (PyArrayObject *)obj;
    return 0;
}

/* rows: ids of any integer dtype, in [0, nrows), strictly increasing (a new reference). */
int pe_opt_convert_rows(PyObject *obj, int64_t nrows, PyArrayObject **out) {
    if (pe_convert_ids(obj, "rows", nrows, out) < 0) return -1;
    if (PyArray_NDIM(*out) != 1) {
        PyErr_Format(PyExc_ValueError, "rows must be 1-D, got %d dimensions", PyArray_NDIM(*out));
        Py_CLEAR(*out);
        return -1;
    }
    const int64_t *r = (const int64_t *)PyArray_DATA(*out);
    npy_intp n = PyArray_SIZE(*out);
    for (npy_intp i = 1; i < n; i++) {
        if (r[i] <= r[i - 1]) {
            PyErr_Format(PyExc_ValueError,
                         "rows must be strictly increasing (unique and sorted), but rows[%zd] = "
                         "%lld follows %lld",
                         (Py_ssize_t)i, (long long)r[i], (long long)r[i - 1]);
            Py_CLEAR(*out);
            return -1;
        }
    }
    return 0;
}

/* The (nrows, dim) view of a parameter: 2-D as is; otherwise one row of all its elements. */
void pe_opt_rows_dim(PyArrayObject *p, size_t *nrows, size_t *dim) {
    if (PyArray_NDIM(p) == 2) {
        *nrows = (size_t)PyArray_DIM(p, 0);
        *dim = (size_t)PyArray_DIM(p, 1);
    } else {
        *nrows = 1;
        *dim = (size_t)PyArray_SIZE(p);
    }
}

int pe_opt_need_2d(PyArrayObject *p, const char *what) {
    if (PyArray_NDIM(p) != 2) {
        PyErr_Format(PyExc_ValueError, "%s needs a 2-D parameter (a table of rows), got %d-D",
                     what, PyArray_NDIM(p));
        return -1;
    }
    return 0;
}

/* table= (None or the Table whose lock to hold), the (nrows, dim) view of param p and frozen=
 * (None, or uint8 / bool per row of a 2-D p; borrowed), shared by the optimizer steps. */
static int parse_table_frozen(PyObject *mod, PyObject *tab_o, PyObject *fr_o, PyArrayObject *p,
                              PeTable **tab, PyArrayObject **fr, size_t *nrows, size_t *dim) {
    if (pe_parse_table(mod, tab_o, 1, tab) < 0) return -1;
    if (*tab && pe_table_refuse_readonly(*tab, "an optimizer step") < 0) return -1;
    pe_opt_rows_dim(p, nrows, dim);
    if (fr_o == Py_None) return 0;
    if (pe_opt_need_2d(p, "frozen") < 0) return -1;
    return check_vector(fr_o, "frozen", NPY_UINT8, (npy_intp)*nrows, 0, fr);
}

/* The gradient argument of a step, in one of three forms:
 *   dense    grad (as param), every row or the rows listed;
 *   compact  compact=True: grad (len(rows), dim), grad[i] the gradient of rows[i];
 *   backward ids= given: grad is grad_output, ids.shape + (dim,) (any real array, converted), and
 *            the step runs in the backward (inbwd.h): padding_idx / scale_grad_by_freq as in
 *            Table.backward, nothing else may be given (rows, compact, row-less param).
 * Checked after rows (converted, a new reference in *rows) and frozen are known. */
typedef struct {
    PyArrayObject *g;   /* borrowed (dense, compact) or owned (backward) */
    PyArrayObject *ids; /* owned: the backward form's private copy, else NULL */
    pe_bwd_batch b;
} step_grad;

static int parse_step_grad(PyObject *g_o, PyObject *ids_o, PyObject *pad_o, int scale,
                           int compact, PyArrayObject *p, PyArrayObject *rows, const uint8_t *fr,
                           step_grad *a) {
    memset(a, 0, sizeof *a);
    if (ids_o == Py_None) {
        if (pad_o != Py_None || scale) {
            PyErr_SetString(PyExc_ValueError, "padding_idx and scale_grad_by_freq need ids (the "
                                              "in-backward form)");
            return -1;
        }
        if (!compact) return pe_opt_check_array(g_o, "grad", p, 0, &a->g);
        if (!rows) {
            PyErr_SetString(PyExc_ValueError, "compact=True needs rows (grad[i] is rows[i]'s)");
            return -1;
        }
        npy_intp shape[2] = {PyArray_SIZE(rows), PyArray_DIM(p, 1)};
        if (pe_check_exact(g_o, "grad", state_type(p), 2, shape, 0, "(len(rows), dim)") < 0)
            return -1;
        a->g = (PyArrayObject *)g_o;
        return 0;
    }
    if (rows || compact) {
        PyErr_SetString(PyExc_ValueError, "ids (the in-backward form) cannot be given with rows "
                                          "or compact=True");
        return -1;
    }
    if (pe_opt_need_2d(p, "ids") < 0) return -1;
    int64_t nrows = (int64_t)PyArray_DIM(p, 0), pad;
    if (pe_parse_padding_idx(pad_o, nrows, &pad) < 0) return -1;
    if (pe_convert_ids(ids_o, "ids", nrows, &a->ids) < 0) return -1;
    npy_intp want[NPY_MAXDIMS];
    int nd = pe_row_shape(a->ids, "ids", PyArray_DIM(p, 1), want);
    if (nd < 0 || pe_convert_float(g_o, "grad", state_type(p), &a->g) < 0) goto fail;
    if (PyArray_NDIM(a->g) != nd || !PyArray_CompareLists(PyArray_DIMS(a->g), want, nd)) {
        pe_shape_error("grad", PyArray_NDIM(a->g), PyArray_DIMS(a->g), nd, want,
                       "ids.shape + (dim,)");
        goto fail;
    }
    pe_bwd_batch b = {(const int64_t *)PyArray_DATA(a->ids), NULL, (size_t)PyArray_SIZE(a->ids),
                      (size_t)PyArray_DIM(p, 1), nrows, pad, scale, fr};
    a->b = b;
    return 0;
fail:
    Py_CLEAR(a->ids);
    Py_CLEAR(a->g);
    return -1;
}

/* The backward form reads grad_output as it was before the step: a private copy when it shares
 * memory with an array the step writes. */
static int step_grad_unshare(step_grad *a, PyArrayObject **written, int n) {
    for (int i = 0; i < n && a->ids; i++)
        if (written[i] && pe_copy_if_overlaps(&a->g, PyArray_DATA(written[i]),
                                              (size_t)PyArray_NBYTES(written[i])) < 0)
            return -1;
    if (a->ids) a->b.dout = PyArray_DATA(a->g);
    return 0;
}

static void step_grad_release(step_grad *a) {
    if (a->ids) PE_RELEASE(a->ids, a->g);
}

/* ---- adam_step -------------------------------------------------------------------------- */

PyDoc_STRVAR(adam_step_doc,
"adam_step(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq=None, *, step=0, lr=1e-3,\n"
"          beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0, decoupled=False,\n"
"          maximize=False, sparse_form=False, rows=None, row_step=None, frozen=None, table=None,\n"
"          compact=False, ids=None, padding_idx=None, scale_grad_by_freq=False,\n"
"          stochastic_rounding=False, seed=0, round_step=0)\n"
"--\n\n"
"One Adam step in place on param, exp_avg, exp_avg_sq (and max_exp_avg_sq: amsgrad).\n"
"step is the step being taken (t >= 1); decoupled: AdamW decay; sparse_form: torch SparseAdam's\n"
"arithmetic. rows (strictly increasing ids): update only those rows of a 2-D param; row_step:\n"
"an int64 counter per row, incremented for each updated row and used for its bias corrections.\n"
"frozen: uint8/bool per row; rows marked non-zero are not changed. table: hold its lock.\n"
"compact=True: grad is (len(rows), dim), grad[i] the gradient of rows[i].\n"
"ids: the step in the backward: grad is the lookup's grad_output (ids.shape + (dim,)); the rows\n"
"in ids are updated with the gradient Table.backward(ids, grad, padding_idx,\n"
"scale_grad_by_freq) would have summed, without it. Returns the number of distinct rows in ids\n"
"(padding_idx left out; a step counts when it is not 0); None in the other forms.\n"
"A float16 / bfloat16 param is the weight of the half table given as table=: grad and state\n"
"float32, each row widened, updated in float32 and rounded back to nearest even, or with\n"
"stochastic_rounding=True as narrow_rows(stochastic=True, seed=seed, step=round_step) rounds\n"
"(with row_step: the row's new step instead of round_step).");

/* The end of a step, rows and the gradient released: None, or (backward form) the number of rows
 * in the batch; NULL with the kernel's error, or when `failed` (an exception is set). */
static PyObject *step_end(int failed, int rc, const char *what, step_grad *a, size_t n_rows,
                          PyArrayObject *rows) {
    Py_XDECREF(rows);
    PyObject *res = NULL;
    if (!failed && rc != PE_OK) pe_raise_kernel_error(rc, what);
    else if (!failed) res = a->ids ? PyLong_FromSize_t(n_rows) : Py_NewRef(Py_None);
    step_grad_release(a);
    return res;
}

static PyObject *adam_step(PyObject *mod, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"param", "grad", "exp_avg", "exp_avg_sq", "max_exp_avg_sq",
                             "step", "lr", "beta1", "beta2", "eps", "weight_decay", "decoupled",
                             "maximize", "sparse_form", "rows", "row_step", "frozen", "table",
                             "compact", "ids", "padding_idx", "scale_grad_by_freq",
                             "stochastic_rounding", "seed", "round_step", NULL};
    PyObject *p_o, *g_o, *m_o, *v_o, *vmax_o = Py_None, *rows_o = Py_None, *rs_o = Py_None;
    PyObject *fr_o = Py_None, *tab_o = Py_None, *ids_o = Py_None, *pad_o = Py_None;
    long long step = 0;
    double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.0;
    int decoupled = 0, maximize = 0, sparse_form = 0, compact = 0, scale = 0, sr = 0;
    unsigned long long seed = 0, rstep = 0;
    pe_half_round h;
    PyArrayObject *p, *m, *v, *vmax = NULL, *rs = NULL, *fr = NULL, *rows = NULL;
    PeTable *tab = NULL;
    step_grad a = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOO|O$LdddddpppOOOOpOOppKK:adam_step",
                                     kwlist, &p_o, &g_o, &m_o, &v_o, &vmax_o, &step, &lr, &b1,
                                     &b2, &eps, &wd, &decoupled, &maximize, &sparse_form, &rows_o,
                                     &rs_o, &fr_o, &tab_o, &compact, &ids_o, &pad_o, &scale, &sr,
                                     &seed, &rstep))
        return NULL;
    if (check_param(mod, p_o, tab_o, sr, seed, rstep, &p, &h) < 0) return NULL;
    if (pe_opt_check_array(m_o, "exp_avg", p, 1, &m) < 0) return NULL;
    if (pe_opt_check_array(v_o, "exp_avg_sq", p, 1, &v) < 0) return NULL;
    if (vmax_o != Py_None && pe_opt_check_array(vmax_o, "max_exp_avg_sq", p, 1, &vmax) < 0)
        return NULL;
    size_t nrows, dim;
    if (parse_table_frozen(mod, tab_o, fr_o, p, &tab, &fr, &nrows, &dim) < 0) return NULL;
    if (rs_o != Py_None) {
        if (rows_o == Py_None && ids_o == Py_None) {
            PyErr_SetString(PyExc_ValueError, "row_step needs rows or ids (it is for the lazy "
                                              "update)");
            return NULL;
        }
        if (check_vector(rs_o, "row_step", NPY_INT64, (npy_intp)nrows, 1, &rs) < 0) return NULL;
    } else if (step < 1) {
        PyErr_Format(PyExc_ValueError, "step must be >= 1, got %lld", step);
        return NULL;
    }
    if (rows_o != Py_None) {
        if (pe_opt_need_2d(p, "rows") < 0) return NULL;
        if (pe_opt_convert_rows(rows_o, (int64_t)nrows, &rows) < 0) return NULL;
    }
    const uint8_t *FR = fr ? (const uint8_t *)PyArray_DATA(fr) : NULL;
    if (parse_step_grad(g_o, ids_o, pad_o, scale, compact, p, rows, FR, &a) < 0) goto fail;
    {
        PyArrayObject *written[] = {p, m, v, vmax, rs};
        if (step_grad_unshare(&a, written, 5) < 0) goto fail;
        pe_span spans[] = {pe_span_of("param", p), pe_span_of("grad", a.ids ? NULL : a.g),
                           pe_span_of("exp_avg", m), pe_span_of("exp_avg_sq", v),
                           pe_span_of("max_exp_avg_sq", vmax), pe_span_of("row_step", rs)};
        if (pe_check_disjoint(spans, 6) < 0) goto fail;
    }
    pe_adam_opts o = {lr, b1, b2, eps, wd, (int64_t)step, decoupled, maximize, sparse_form};
    int rc;
    size_t n_rows = 0;
    const int t = PyArray_TYPE(p);
    void *P = PyArray_DATA(p), *G = PyArray_DATA(a.g), *M = PyArray_DATA(m), *V = PyArray_DATA(v);
    void *VM = vmax ? PyArray_DATA(vmax) : NULL;
    int64_t *RS = rs ? (int64_t *)PyArray_DATA(rs) : NULL;
    const int64_t *R = rows ? (const int64_t *)PyArray_DATA(rows) : NULL;
    size_t nl = rows ? (size_t)PyArray_SIZE(rows) : a.b.n;
    float *M32 = (float *)M, *V32 = (float *)V, *VM32 = (float *)VM;
    if (h.kind)
        PE_LOCKED(tab, (R || a.ids ? nl : nrows) * dim * 14,
                  rc = a.ids ? pe_adam_half_bwd((uint16_t *)P, M32, V32, VM32, RS, &a.b, &o, &h,
                                                &n_rows)
                             : pe_adam_half_rows((uint16_t *)P, M32, V32, VM32, RS,
                                                 (const float *)G, compact, R, nl, FR, nrows, dim,
                                                 &o, &h));
    else
    PE_LOCKED(tab, (R || a.ids ? nl : nrows) * dim * 4 * PyArray_ITEMSIZE(p),
              rc = a.ids ? PE_BY_DTYPE(t, pe_adam_bwd, P, M, V, VM, RS, &a.b, &o, &n_rows)
                   : R ? PE_BY_DTYPE(t, pe_adam_rows, P, M, V, VM, RS, G, compact, R, nl, FR,
                                     nrows, dim, &o)
                       : PE_BY_DTYPE(t, pe_adam, P, M, V, VM, G, FR, nrows, dim, &o));
    return step_end(0, rc, "adam_step", &a, n_rows, rows);
fail:
    return step_end(1, PE_OK, "adam_step", &a, 0, rows);
}

/* ---- sgd_step --------------------------------------------------------------------------- */

PyDoc_STRVAR(sgd_step_doc,
"sgd_step(param, grad, momentum_buffer=None, *, lr=1e-3, momentum=0.0, dampening=0.0,\n"
"         weight_decay=0.0, nesterov=False, maximize=False, first=False, rows=None,\n"
"         frozen=None, table=None, compact=False, ids=None, padding_idx=None,\n"
"         scale_grad_by_freq=False, stochastic_rounding=False, seed=0, round_step=0)\n--\n\n"
"One SGD step in place (torch.optim.SGD's arithmetic). momentum_buffer is required when\n"
"momentum != 0; first=True sets it to the gradient (torch's first step). rows / frozen / table /\n"
"compact / ids / padding_idx / scale_grad_by_freq (and the result) and a float16 / bfloat16\n"
"param (stochastic_rounding / seed / round_step) as in adam_step.");

static PyObject *sgd_step(PyObject *mod, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"param", "grad", "momentum_buffer", "lr", "momentum", "dampening",
                             "weight_decay", "nesterov", "maximize", "first", "rows", "frozen",
                             "table", "compact", "ids", "padding_idx", "scale_grad_by_freq",
                             "stochastic_rounding", "seed", "round_step", NULL};
    PyObject *p_o, *g_o, *b_o = Py_None, *rows_o = Py_None, *fr_o = Py_None, *tab_o = Py_None;
    PyObject *ids_o = Py_None, *pad_o = Py_None;
    double lr = 1e-3, mom = 0.0, damp = 0.0, wd = 0.0;
    int nesterov = 0, maximize = 0, first = 0, compact = 0, scale = 0, sr = 0;
    unsigned long long seed = 0, rstep = 0;
    pe_half_round h;
    PyArrayObject *p, *b = NULL, *fr = NULL, *rows = NULL;
    PeTable *tab = NULL;
    step_grad a = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO|O$ddddpppOOOpOOppKK:sgd_step", kwlist,
                                     &p_o, &g_o, &b_o, &lr, &mom, &damp, &wd, &nesterov,
                                     &maximize, &first, &rows_o, &fr_o, &tab_o, &compact, &ids_o,
                                     &pad_o, &scale, &sr, &seed, &rstep))
        return NULL;
    if (check_param(mod, p_o, tab_o, sr, seed, rstep, &p, &h) < 0) return NULL;
    if (mom != 0.0) {
        if (b_o == Py_None) {
            PyErr_SetString(PyExc_ValueError, "momentum != 0 needs a momentum_buffer");
            return NULL;
        }
        if (pe_opt_check_array(b_o, "momentum_buffer", p, 1, &b) < 0) return NULL;
    }
    size_t nrows, dim;
    if (parse_table_frozen(mod, tab_o, fr_o, p, &tab, &fr, &nrows, &dim) < 0) return NULL;
    if (rows_o != Py_None) {
        if (pe_opt_need_2d(p, "rows") < 0) return NULL;
        if (pe_opt_convert_rows(rows_o, (int64_t)nrows, &rows) < 0) return NULL;
    }
    const uint8_t *FR = fr ? (const uint8_t *)PyArray_DATA(fr) : NULL;
    if (parse_step_grad(g_o, ids_o, pad_o, scale, compact, p, rows, FR, &a) < 0) goto fail;
    {
        PyArrayObject *written[] = {p, b};
        if (step_grad_unshare(&a, written, 2) < 0) goto fail;
        pe_span spans[] = {pe_span_of("param", p), pe_span_of("grad", a.ids ? NULL : a.g),
                           pe_span_of("momentum_buffer", b)};
        if (pe_check_disjoint(spans, 3) < 0) goto fail;
    }
    pe_sgd_opts o = {lr, mom, damp, wd, nesterov, maximize, first};
    int rc;
    size_t n_rows = 0;
    const int t = PyArray_TYPE(p);
    void *P = PyArray_DATA(p), *G = PyArray_DATA(a.g), *B = b ? PyArray_DATA(b) : NULL;
    const int64_t *R = rows ? (const int64_t *)PyArray_DATA(rows) : NULL;
    size_t nl = rows ? (size_t)PyArray_SIZE(rows) : a.b.n;
    if (h.kind)
        PE_LOCKED(tab, (R || a.ids ? nl : nrows) * dim * 10,
                  rc = a.ids ? pe_sgd_half_bwd((uint16_t *)P, (float *)B, &a.b, &o, &h, &n_rows)
                             : pe_sgd_half_rows((uint16_t *)P, (float *)B, (const float *)G,
                                                compact, R, nl, FR, nrows, dim, &o, &h));
    else
    PE_LOCKED(tab, (R || a.ids ? nl : nrows) * dim * 3 * PyArray_ITEMSIZE(p),
              rc = a.ids ? PE_BY_DTYPE(t, pe_sgd_bwd, P, B, &a.b, &o, &n_rows)
                   : R ? PE_BY_DTYPE(t, pe_sgd_rows, P, B, G, compact, R, nl, FR, nrows, dim, &o)
                       : PE_BY_DTYPE(t, pe_sgd, P, B, G, FR, nrows, dim, &o));
    return step_end(0, rc, "sgd_step", &a, n_rows, rows);
fail:
    return step_end(1, PE_OK, "sgd_step", &a, 0, rows);
}

/* ---- adagrad_step ----------------------------------------------------------------------- */

PyDoc_STRVAR(adagrad_step_doc,
"adagrad_step(param, grad, state_sum, *, lr=1e-2, eps=1e-10, weight_decay=0.0,\n"
"             decoupled=False, maximize=False, sparse_form=False, rowwise=False, rows=None,\n"
"             compact=False, frozen=None, table=None, ids=None, padding_idx=None,\n"
"             scale_grad_by_freq=False, stochastic_rounding=False, seed=0, round_step=0)\n"
"--\n\n"
"One Adagrad step in place on param and state_sum (torch.optim.Adagrad's arithmetic; lr is the\n"
"step's decayed rate). sparse_form: torch's sparse-gradient arithmetic. rowwise: FBGEMM's\n"
"row-wise Adagrad, state_sum one value per row (shape (nrows,)), decoupled: its DECOUPLED\n"
"weight decay (else L2). compact: grad is (len(rows), dim), grad[i] the gradient of rows[i].\n"
"rows / frozen / table / ids / padding_idx / scale_grad_by_freq (the step in the backward) as in\n"
"adam_step; returns what adam_step returns. A float16 / bfloat16 param (stochastic_rounding /\n"
"seed / round_step) as in adam_step.");

/* One glue for both Adagrads: the state's shape is all that differs (rowwise: one per row). */
static char *adagrad_kwlist[] = {"param", "grad", "state_sum", "lr", "eps", "weight_decay",
                                 "decoupled", "maximize", "sparse_form", "rowwise", "rows",
                                 "compact", "frozen", "table", "ids", "padding_idx",
                                 "scale_grad_by_freq", "stochastic_rounding", "seed",
                                 "round_step", NULL};

static PyObject *adagrad_step(PyObject *mod, PyObject *args, PyObject *kwds) {
    PyObject *p_o, *g_o, *s_o, *rows_o = Py_None, *fr_o = Py_None, *tab_o = Py_None;
    PyObject *ids_o = Py_None, *pad_o = Py_None;
    double lr = 1e-2, eps = 1e-10, wd = 0.0;
    int decoupled = 0, maximize = 0, sparse_form = 0, rowwise = 0, compact = 0, scale = 0;
    int sr = 0;
    unsigned long long seed = 0, rstep = 0;
    pe_half_round h;
    PyArrayObject *p, *s, *fr = NULL, *rows = NULL;
    PeTable *tab = NULL;
    step_grad a = {0};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOO|$dddppppOpOOOOppKK:adagrad_step",
                                     adagrad_kwlist, &p_o, &g_o, &s_o, &lr, &eps, &wd,
                                     &decoupled, &maximize, &sparse_form, &rowwise, &rows_o,
                                     &compact, &fr_o, &tab_o, &ids_o, &pad_o, &scale, &sr, &seed,
                                     &rstep))
        return NULL;
    if (check_param(mod, p_o, tab_o, sr, seed, rstep, &p, &h) < 0) return NULL;
    size_t nrows, dim;
    if (parse_table_frozen(mod, tab_o, fr_o, p, &tab, &fr, &nrows, &dim) < 0) return NULL;
    if ((rowwise ? check_vector(s_o, "state_sum", state_type(p), (npy_intp)nrows, 1, &s)
                 : pe_opt_check_array(s_o, "state_sum", p, 1, &s)) < 0)
        return NULL;
    if (rows_o != Py_None) {
        if (pe_opt_need_2d(p, "rows") < 0) return NULL;
        if (pe_opt_convert_rows(rows_o, (int64_t)nrows, &rows) < 0) return NULL;
    }
    const uint8_t *FR = fr ? (const uint8_t *)PyArray_DATA(fr) : NULL;
    if (parse_step_grad(g_o, ids_o, pad_o, scale, compact, p, rows, FR, &a) < 0) goto fail;
    {
        PyArrayObject *written[] = {p, s};
        if (step_grad_unshare(&a, written, 2) < 0) goto fail;
        pe_span spans[] = {pe_span_of("param", p), pe_span_of("grad", a.ids ? NULL : a.g),
                           pe_span_of("state_sum", s)};
        if (pe_check_disjoint(spans, 3) < 0) goto fail;
    }
    pe_adagrad_opts o = {lr, eps, wd, decoupled, maximize, sparse_form};
    int rc;
    size_t n_rows = 0;
    const int t = PyArray_TYPE(p);
    void *P = PyArray_DATA(p), *G = PyArray_DATA(a.g), *S = PyArray_DATA(s);
    const int64_t *R = rows ? (const int64_t *)PyArray_DATA(rows) : NULL;
    size_t nl = rows ? (size_t)PyArray_SIZE(rows) : a.b.n;
    if (h.kind)
        PE_LOCKED(tab, (R || a.ids ? nl : nrows) * dim * 10,
                  rc = a.ids ? pe_adagrad_half_bwd((uint16_t *)P, (float *)S, rowwise, &a.b, &o,
                                                   &h, &n_rows)
                             : pe_adagrad_half_rows((uint16_t *)P, (float *)S, (const float *)G,
                                                    rowwise, compact, R, nl, FR, nrows, dim, &o,
                                                    &h));
    else
    PE_LOCKED(tab, (R || a.ids ? nl : nrows) * dim * 3 * PyArray_ITEMSIZE(p),
              rc = a.ids ? PE_BY_DTYPE(t, pe_adagrad_bwd, P, S, rowwise, &a.b, &o, &n_rows)
                   : R ? (rowwise ? PE_BY_DTYPE(t, pe_rowwise_adagrad_rows, P, S, G, compact, R,
                                                nl, FR, nrows, dim, &o)
                                  : PE_BY_DTYPE(t, pe_adagrad_rows, P, S, G, compact, R, nl, FR,
                                                nrows, dim, &o))
                       : (rowwise ? PE_BY_DTYPE(t, pe_rowwise_adagrad, P, S, G, FR, nrows, dim, &o)
                                  : PE_BY_DTYPE(t, pe_adagrad, P, S, G, FR, nrows, dim, &o)));
    return step_end(0, rc, "adagrad_step", &a, n_rows, rows);
fail:
    return step_end(1, PE_OK, "adagrad_step", &a, 0, rows);
}

PyMethodDef pe_optim_functions[] = {
    PE_KW_METHOD("adam_step", adam_step, adam_step_doc),
    PE_KW_METHOD("sgd_step", sgd_step, sgd_step_doc),
    PE_KW_METHOD("adagrad_step", adagrad_step, adagrad_step_doc),
    {NULL, NULL, 0, NULL},
};
