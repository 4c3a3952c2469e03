/* Glue for the positional kernels: sinusoidal tables, fused token + position lookup, rotary
 * embeddings. Every argument is converted and checked before anything is written; kernels run
 * with the GIL released above a small size. */
#include "methods.h"
#include "table.h"
#include "kernels/positional.h"
#include "kernels/embed_pos.h"
#include "kernels/rope.h"

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

PyDoc_STRVAR(sinusoidal_doc,
"sinusoidal(num_positions, dim, start=0, base=10000.0, interleaved=True, exponent=0, dtype=None,\n"
"           out=None)\n--\n\n"
"The (num_positions, dim) sinusoidal table of positions start .. start + num_positions - 1.\n"
"exponent 0: w_i = base^(-2i/dim); 1: w_i = base^(-i/(dim/2 - 1)) (tensor2tensor / fairseq).\n"
"interleaved: sin, cos in columns (2i, 2i+1) (the paper); False: [sin | cos] halves, the pairing\n"
"rope's interleaved=False means too. See pyembed.sinusoidal.");

static PyObject *py_sinusoidal(PyObject *Py_UNUSED(mod), PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"num_positions", "dim", "start", "base", "interleaved", "exponent",
                             "dtype", "out", NULL};
    Py_ssize_t n, dim;
    long long start = 0;
    double base = 10000.0;
    int interleaved = 1, exponent = PE_EXP_2I_D, typenum = NPY_FLOAT32, rc;
    PyObject *dtype = Py_None, *out_obj = Py_None, *out = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nn|LdpiOO:sinusoidal", kwlist, &n, &dim, &start,
                                     &base, &interleaved, &exponent, &dtype, &out_obj))
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
    out = pe_out_or_pool(out_obj, typenum, 2, shape, NULL, 0);
    if (!out) return NULL;
    void *p = PyArray_DATA((PyArrayObject *)out);
    PE_NOGIL_ABOVE((size_t)PyArray_NBYTES((PyArrayObject *)out),
                   rc = PE_BY_DTYPE(typenum, pe_sinusoidal, p, (int64_t)start, (size_t)n,
                                    (size_t)dim, base, !interleaved, exponent));
    return pe_kernel_result(rc, "sinusoidal", out);
}

PyDoc_STRVAR(embed_positions_doc,
"embed_positions(table, ids, positions, scale, out=None, *, position_ids=None)\n--\n\n"
"W[ids] * scale + positions, fused: ids (seq,) or (batch, seq) into the Table `table`;\n"
"positions None or an array of shape (seq, dim) (the rows start .. start + seq). The result\n"
"has the bits of NumPy's W[ids] * dtype(scale) + positions. With position_ids (ids' shape, or\n"
"(seq,); each in [0, len(positions))), positions is any (rows, dim) table and the sum is\n"
"W[ids] * scale + positions[position_ids]: Hugging Face's position_ids, packed rows.");

static PyObject *py_embed_positions(PyObject *mod, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"table", "ids", "positions", "scale", "out", "position_ids", NULL};
    PyObject *table_obj, *ids_obj, *pos_obj, *out_obj = Py_None, *pid_obj = Py_None;
    PyObject *out = NULL, *res = NULL;
    PyArrayObject *ids = NULL, *pos = NULL, *pid = NULL;
    size_t pid_len = 0;
    double scale;
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOd|O$O:embed_positions", kwlist, &table_obj,
                                     &ids_obj, &pos_obj, &scale, &out_obj, &pid_obj))
        return NULL;
    PeTable *t;
    if (pe_parse_table(mod, table_obj, 0, &t) < 0) return NULL;
    if (!isfinite(scale)) {
        PyErr_SetString(PyExc_ValueError, "scale must be finite");
        return NULL;
    }
    if (pe_convert_ids(ids_obj, "ids", t->rows, &ids) < 0) return NULL;
    int nd = PyArray_NDIM(ids);
    if (nd != 1 && nd != 2) {
        PyErr_Format(PyExc_ValueError, "ids must have shape (seq,) or (batch, seq), got %d dimensions",
                     nd);
        goto fail;
    }
    npy_intp seq = PyArray_DIM(ids, nd - 1), nb = nd == 2 ? PyArray_DIM(ids, 0) : 1;
    npy_intp shape[3];
    memcpy(shape, PyArray_DIMS(ids), (size_t)nd * sizeof(npy_intp));
    shape[nd] = (npy_intp)t->dim;
    if (pe_convert_positions(pos_obj, pid_obj, t->typenum, (npy_intp)t->dim, nd, shape, &pos, &pid,
                             &pid_len) < 0)
        goto fail;
    pe_span inputs[2] = {{"the token table", t->weight, pe_table_weight_nbytes(t)},
                         pe_span_of("positions", pos)};
    out = pe_out_or_pool(out_obj, t->typenum, nd + 1, shape, inputs, 2);
    if (!out) goto fail;
    void *o = PyArray_DATA((PyArrayObject *)out);
    const int64_t *ip = (const int64_t *)PyArray_DATA(ids);
    const void *pp = pos ? PyArray_DATA(pos) : NULL;
    PE_NOGIL_ABOVE((size_t)PyArray_NBYTES((PyArrayObject *)out),
                   rc = PE_BY_TABLE(t, pe_embed_positions, o, (void *)t->weight, ip, pp,
                                    (const int64_t *)(pid ? PyArray_DATA(pid) : NULL), (size_t)nb,
                                    (size_t)seq, pid_len, (size_t)t->dim, scale));
    res = pe_kernel_result(rc, "embed_positions", out);
    out = NULL;
fail:
    PE_RELEASE(ids, pos, pid, out);
    return res;
}

PyDoc_STRVAR(rope_doc,
"rope(x, positions=None, base=10000.0, interleaved=False, inverse=False, out=None)\n--\n\n"
"Rotary embedding of the last axis of x (..., seq, head_dim). positions: None (0 .. seq-1),\n"
"shape (seq,) shared by all leading axes, or shape x.shape[:-1]. inverse rotates by the\n"
"negative angle (the backward). float64 x stays float64; anything else is computed as float32.\n"
"out may be x itself.");

static PyObject *py_rope(PyObject *Py_UNUSED(mod), PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"x", "positions", "base", "interleaved", "inverse", "out", NULL};
    PyObject *x_obj, *pos_obj = Py_None, *out_obj = Py_None, *out = NULL, *res = NULL;
    PyArrayObject *x = NULL, *pos = NULL;
    double base = 10000.0;
    int interleaved = 0, inverse = 0, rc, typenum = NPY_FLOAT32;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O|OdppO:rope", kwlist, &x_obj, &pos_obj, &base,
                                     &interleaved, &inverse, &out_obj))
        return NULL;
    if (check_base(base) < 0) return NULL;
    if (PyArray_Check(x_obj) && PyArray_TYPE((PyArrayObject *)x_obj) == NPY_FLOAT64)
        typenum = NPY_FLOAT64;
    if (pe_convert_float(x_obj, "x", typenum, &x) < 0) return NULL;
    int nd = PyArray_NDIM(x);
    if (nd < 2) {
        PyErr_Format(PyExc_ValueError, "x must have shape (..., seq, head_dim), got %d dimension(s)",
                     nd);
        goto fail;
    }
    npy_intp hd = PyArray_DIM(x, nd - 1), seq = PyArray_DIM(x, nd - 2);
    size_t rows = (size_t)(PyArray_SIZE(x) / (hd ? hd : 1));
    if (hd % 2) {
        PyErr_Format(PyExc_ValueError, "head_dim (the last axis of x) must be even, got %zd",
                     (Py_ssize_t)hd);
        goto fail;
    }
    size_t outer, nseq;
    if (pos_obj == Py_None) {
        npy_intp n = seq;
        pos = (PyArrayObject *)PyArray_Arange(0.0, (double)n, 1.0, NPY_INT64);
        if (!pos) goto fail;
        outer = hd && seq ? rows / (size_t)seq : 0;
        nseq = (size_t)seq;
    } else {
        if (pe_convert_ids(pos_obj, "positions", -1, &pos) < 0) goto fail;
        if (PyArray_NDIM(pos) == 1 && PyArray_DIM(pos, 0) == seq) {
            outer = hd && seq ? rows / (size_t)seq : 0;
            nseq = (size_t)seq;
        } else if (PyArray_NDIM(pos) == nd - 1 &&
                   PyArray_CompareLists(PyArray_DIMS(pos), PyArray_DIMS(x), nd - 1)) {
            outer = 1; /* one position per row */
            nseq = hd ? rows : 0;
        } else {
            pe_shape_error("positions", PyArray_NDIM(pos), PyArray_DIMS(pos), nd - 1,
                           PyArray_DIMS(x), "x (or shape (seq,))");
            goto fail;
        }
        const int64_t *pp = (const int64_t *)PyArray_DATA(pos);
        for (npy_intp i = 0; i < PyArray_SIZE(pos); i++) {
            if (pp[i] > PE_MAX_POSITION || pp[i] < -PE_MAX_POSITION) {
                PyErr_Format(PyExc_OverflowError,
                             "positions[%zd] = %lld is beyond +-2^52", (Py_ssize_t)i,
                             (long long)pp[i]);
                goto fail;
            }
        }
    }
    {
        /* out may be x itself (each pair is read before it is written), not a part of it */
        int in_place = out_obj != Py_None && PyArray_Check(out_obj) &&
                       PyArray_DATA((PyArrayObject *)out_obj) == PyArray_DATA(x);
        pe_span xs = pe_span_of("x", x);
        out = pe_out_or_pool(out_obj, typenum, nd, PyArray_DIMS(x), &xs, !in_place);
        if (!out) goto fail;
    }
    void *o = PyArray_DATA((PyArrayObject *)out);
    const void *xp = PyArray_DATA(x);
    const int64_t *pp = (const int64_t *)PyArray_DATA(pos);
    PE_NOGIL_ABOVE((size_t)PyArray_NBYTES(x),
                   rc = PE_BY_DTYPE(typenum, pe_rope, o, xp, pp, outer, nseq, (size_t)hd, base,
                                    interleaved, inverse));
    res = pe_kernel_result(rc, "rope", out);
    out = NULL;
fail:
    PE_RELEASE(x, pos, out);
    return res;
}

PyMethodDef pe_positional_functions[] = {
    PE_KW_METHOD("rope", py_rope, rope_doc),
    PE_KW_METHOD("embed_positions", py_embed_positions, embed_positions_doc),
    PE_KW_METHOD("sinusoidal", py_sinusoidal, sinusoidal_doc),
    {NULL, NULL, 0, NULL},
};
