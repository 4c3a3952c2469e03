/* Glue for the fused input stage with LayerNorm (kernels/layernorm.h): token + segment +
 * position rows and the normalisation, forward and backward. Every argument is converted and
 * checked before anything is written; the kernels run with the GIL released above a small size. */
#include "methods.h"
#include "table.h"
#include "kernels/layernorm.h"

#include <math.h>
#include <string.h>

/* The arguments both directions share, converted and checked. */
typedef struct {
    PeTable *t, *s;                      /* token table; segment table or NULL */
    PyArrayObject *ids, *pos, *seg, *gamma; /* private ids copies; pos, seg, gamma maybe NULL */
    PyArrayObject *pid;                  /* private position_ids copy, or NULL */
    PyArrayObject *extra;                /* beta (forward) or grad_output (backward) */
    npy_intp nb, seq, shape[3];          /* shape: ids.shape + (dim,) */
    size_t pid_len;                      /* values in pid: seq or nb * seq */
    int nd;
    double scale, eps;
} ln_args;

/* The end of both glue functions: pe_kernel_result of the kernel's code for `out` (which it
 * takes over), or NULL (out NULL: an exception is set); every array of `a` released. */
static PyObject *ln_finish(ln_args *a, PyObject *out, int rc, const char *what) {
    PyObject *res = out ? pe_kernel_result(rc, what, out) : NULL;
    PE_RELEASE(a->ids, a->pos, a->pid, a->seg, a->gamma, a->extra);
    return res;
}

/* A (dim,) array of the table's dtype, or NULL for None when allow_none. */
static int ln_vector(PyObject *obj, const char *name, const PeTable *t, int allow_none,
                     PyArrayObject **out) {
    *out = NULL;
    if (obj == Py_None && allow_none) return 0;
    if (pe_convert_float(obj, name, t->typenum, out) < 0) return -1;
    npy_intp want = (npy_intp)t->dim;
    if (PyArray_NDIM(*out) != 1 || PyArray_DIM(*out, 0) != want)
        return pe_shape_error(name, PyArray_NDIM(*out), PyArray_DIMS(*out), 1, &want,
                              "a table of this width");
    return 0;
}

static int ln_parse(PyObject *mod, PyObject *table, PyObject *ids, PyObject *pos,
                    PyObject *position_ids, PyObject *segments, PyObject *segment_ids,
                    PyObject *gamma, int gamma_needed, double scale, double eps, ln_args *a) {
    memset(a, 0, sizeof *a);
    a->scale = scale;
    a->eps = eps;
    if (pe_parse_table(mod, table, 0, &a->t) < 0 || pe_parse_table(mod, segments, 1, &a->s) < 0)
        return -1;
    if (!isfinite(a->scale)) {
        PyErr_SetString(PyExc_ValueError, "scale must be finite");
        return -1;
    }
    if (!(a->eps >= 0.0) || !isfinite(a->eps)) {
        char buf[64];
        snprintf(buf, sizeof buf, "%g", a->eps);
        PyErr_Format(PyExc_ValueError, "eps must be a finite number >= 0, got %s", buf);
        return -1;
    }
    if (a->s && (a->s->typenum != a->t->typenum || a->s->dim != a->t->dim)) {
        PyErr_Format(PyExc_ValueError,
                     "the segment table (width %lld) must have the token table's width %lld and "
                     "dtype", (long long)a->s->dim, (long long)a->t->dim);
        return -1;
    }
    /* one kernel reads both tables through one stored type: a float32 and a float16 table share
     * the compute typenum, so the storage is compared as well */
    if (a->s && a->s->half != a->t->half) {
        PyErr_Format(PyExc_ValueError, "the segment table (dtype %S) must have the token "
                     "table's dtype %S", (PyObject *)a->s->wdescr, (PyObject *)a->t->wdescr);
        return -1;
    }
    if ((a->s == NULL) != (segment_ids == Py_None)) {
        PyErr_SetString(PyExc_ValueError, "segments and segment_ids go together: pass both or "
                                          "neither");
        return -1;
    }
    if (pe_convert_ids(ids, "ids", a->t->rows, &a->ids) < 0) return -1;
    a->nd = PyArray_NDIM(a->ids);
    if (a->nd != 1 && a->nd != 2) {
        PyErr_Format(PyExc_ValueError,
                     "ids must have shape (seq,) or (batch, seq), got %d dimensions", a->nd);
        return -1;
    }
    a->seq = PyArray_DIM(a->ids, a->nd - 1);
    a->nb = a->nd == 2 ? PyArray_DIM(a->ids, 0) : 1;
    memcpy(a->shape, PyArray_DIMS(a->ids), (size_t)a->nd * sizeof(npy_intp));
    a->shape[a->nd] = (npy_intp)a->t->dim;
    if (a->s) {
        if (pe_convert_ids(segment_ids, "segment_ids", a->s->rows, &a->seg) < 0) return -1;
        if (PyArray_NDIM(a->seg) != a->nd ||
            !PyArray_CompareLists(PyArray_DIMS(a->seg), a->shape, a->nd))
            return pe_shape_error("segment_ids", PyArray_NDIM(a->seg), PyArray_DIMS(a->seg),
                                  a->nd, a->shape, "ids");
    }
    if (pe_convert_positions(pos, position_ids, a->t->typenum, (npy_intp)a->t->dim, a->nd,
                             a->shape, &a->pos, &a->pid, &a->pid_len) < 0)
        return -1;
    return ln_vector(gamma, "gamma", a->t, !gamma_needed, &a->gamma);
}

#define LN_DATA(arr) ((arr) ? PyArray_DATA(arr) : NULL)

static PyObject *py_embed_layernorm(PyObject *mod, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"table", "ids", "positions", "segments", "segment_ids", "gamma",
                             "beta", "scale", "eps", "out", "position_ids", NULL};
    PyObject *table, *ids, *pos, *segments, *segment_ids, *gamma, *beta_obj, *out_obj = Py_None;
    PyObject *pid_obj = Py_None, *out = NULL;
    ln_args a;
    double scale, eps;
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOdd|O$O:embed_layernorm", kwlist, &table,
                                     &ids, &pos, &segments, &segment_ids, &gamma, &beta_obj,
                                     &scale, &eps, &out_obj, &pid_obj))
        return NULL;
    if (ln_parse(mod, table, ids, pos, pid_obj, segments, segment_ids, gamma, 0, scale, eps,
                 &a) < 0)
        goto fail;
    if (ln_vector(beta_obj, "beta", a.t, a.gamma == NULL, &a.extra) < 0) goto fail;
    if ((a.gamma == NULL) != (a.extra == NULL)) {
        PyErr_SetString(PyExc_ValueError, "gamma and beta go together: pass both or neither");
        goto fail;
    }
    {
        pe_span in[5] = {{"the token table", a.t->weight, pe_table_weight_nbytes(a.t)},
                         {"the segment table", a.s ? a.s->weight : NULL,
                          a.s ? pe_table_weight_nbytes(a.s) : 0},
                         pe_span_of("positions", a.pos), pe_span_of("gamma", a.gamma),
                         pe_span_of("beta", a.extra)};
        out = pe_out_or_pool(out_obj, a.t->typenum, a.nd + 1, a.shape, in, 5);
    }
    if (!out) goto fail;
    void *o = PyArray_DATA((PyArrayObject *)out);
    const int64_t *ip = (const int64_t *)PyArray_DATA(a.ids);
    const int64_t *sp = (const int64_t *)LN_DATA(a.seg), *pip = (const int64_t *)LN_DATA(a.pid);
    const void *pp = LN_DATA(a.pos), *gp = LN_DATA(a.gamma), *bp = LN_DATA(a.extra);
    const void *wp = a.t->weight, *spw = a.s ? a.s->weight : NULL;
    PE_NOGIL_ABOVE((size_t)PyArray_NBYTES((PyArrayObject *)out),
                   rc = PE_BY_TABLE(a.t, pe_embed_layernorm, o, wp, ip, pp, pip, spw, sp, gp,
                                    bp, (size_t)a.nb, (size_t)a.seq, a.pid_len,
                                    (size_t)a.t->dim, scale, eps));
    return ln_finish(&a, out, rc, "embed_layernorm");
fail:
    return ln_finish(&a, NULL, 0, NULL);
}

static PyObject *py_embed_layernorm_backward(PyObject *mod, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"table", "ids", "positions", "segments", "segment_ids", "gamma",
                             "grad_output", "dgamma", "dbeta", "scale", "eps", "out",
                             "position_ids", NULL};
    PyObject *table, *ids, *pos, *segments, *segment_ids, *gamma, *g_obj, *dg_obj, *db_obj;
    PyObject *out_obj = Py_None, *pid_obj = Py_None, *out = NULL;
    PyArrayObject *g;
    ln_args a;
    double scale, eps;
    int rc;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOOOOOdd|O$O:embed_layernorm_backward",
                                     kwlist, &table, &ids, &pos, &segments, &segment_ids, &gamma,
                                     &g_obj, &dg_obj, &db_obj, &scale, &eps, &out_obj, &pid_obj))
        return NULL;
    if (ln_parse(mod, table, ids, pos, pid_obj, segments, segment_ids, gamma, 1, scale, eps,
                 &a) < 0)
        goto fail;
    if (pe_convert_float(g_obj, "grad_output", a.t->typenum, &a.extra) < 0) goto fail;
    g = a.extra;
    if (PyArray_NDIM(g) != a.nd + 1 || !PyArray_CompareLists(PyArray_DIMS(g), a.shape, a.nd + 1)) {
        pe_shape_error("grad_output", PyArray_NDIM(g), PyArray_DIMS(g), a.nd + 1, a.shape, "ids");
        goto fail;
    }
    npy_intp dim = (npy_intp)a.t->dim;
    const char *why = "embed_layernorm_backward";
    if (pe_check_exact(dg_obj, "dgamma", a.t->typenum, 1, &dim, 1, why) < 0 ||
        pe_check_exact(db_obj, "dbeta", a.t->typenum, 1, &dim, 1, why) < 0)
        goto fail;
    {
        PyArrayObject *dg = (PyArrayObject *)dg_obj, *db = (PyArrayObject *)db_obj;
        pe_span in[7] = {{"the token table", a.t->weight, pe_table_weight_nbytes(a.t)},
                         {"the segment table", a.s ? a.s->weight : NULL,
                          a.s ? pe_table_weight_nbytes(a.s) : 0},
                         pe_span_of("positions", a.pos), pe_span_of("gamma", a.gamma),
                         pe_span_of("grad_output", g), pe_span_of("dgamma", dg),
                         pe_span_of("dbeta", db)};
        /* dgamma and dbeta are written too: disjoint from each other and from every input */
        if (pe_refuse_overlap(&in[5], in, 5) < 0 || pe_refuse_overlap(&in[6], in, 6) < 0)
            goto fail;
        out = pe_out_or_pool(out_obj, a.t->typenum, a.nd + 1, a.shape, in, 7);
    }
    if (!out) goto fail;
    void *o = PyArray_DATA((PyArrayObject *)out);
    void *dgp = PyArray_DATA((PyArrayObject *)dg_obj), *dbp = PyArray_DATA((PyArrayObject *)db_obj);
    const int64_t *ip = (const int64_t *)PyArray_DATA(a.ids);
    const int64_t *sp = (const int64_t *)LN_DATA(a.seg), *pip = (const int64_t *)LN_DATA(a.pid);
    const void *pp = LN_DATA(a.pos), *gp = LN_DATA(a.gamma), *gop = PyArray_DATA(g);
    const void *wp = a.t->weight, *spw = a.s ? a.s->weight : NULL;
    PE_NOGIL_ABOVE((size_t)PyArray_NBYTES((PyArrayObject *)out),
                   rc = PE_BY_TABLE(a.t, pe_embed_layernorm_backward, o, dgp, dbp, gop,
                                    wp, ip, pp, pip, spw, sp, gp, (size_t)a.nb, (size_t)a.seq,
                                    a.pid_len, (size_t)a.t->dim, scale, eps));
    return ln_finish(&a, out, rc, "embed_layernorm_backward");
fail:
    return ln_finish(&a, NULL, 0, NULL);
}

/* The docstrings, short: pyembed.InputEmbedding documents the stage. */
PyDoc_STRVAR(embed_layernorm_doc,
"embed_layernorm(table, ids, positions, segments, segment_ids, gamma, beta, scale, eps, out=None,"
" *,\nposition_ids=None)\n--\n\nLayerNorm((W[ids] * scale + S[segment_ids]) + positions) * gamma"
" + beta in one pass;\nsegments, positions None: no such term; gamma, beta None: the sum alone."
"\nposition_ids (ids' shape or (seq,)): positions[position_ids] instead of the rows in order.");
PyDoc_STRVAR(embed_layernorm_backward_doc,
"embed_layernorm_backward(table, ids, positions, segments, segment_ids, gamma, grad_output,\n"
"dgamma, dbeta, scale, eps, out=None, *, position_ids=None)\n--\n\nReturns dx (per-row gradient of the sum, rows rebuilt"
" from the tables)\nand adds into dgamma, dbeta ((dim,) arrays): the same bits at any thread count.");

PyMethodDef pe_layernorm_functions[] = {
    PE_KW_METHOD("embed_layernorm", py_embed_layernorm, embed_layernorm_doc),
    PE_KW_METHOD("embed_layernorm_backward", py_embed_layernorm_backward,
                 embed_layernorm_backward_doc),
    {NULL, NULL, 0, NULL},
};
