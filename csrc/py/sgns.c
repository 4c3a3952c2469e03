/* Glue for the word2vec kernels (csrc/kernels/sgns.c): sgns_train and alias_table.
 *
 * The trainer (pyembed/train.py) prepares its arrays once per run and calls sgns_train once per
 * batch, so arguments must already have the exact dtype and layout: we check and raise rather
 * than convert a corpus on every call. Everything is checked before the kernel writes anything.
 * The ids the kernel indexes with (this batch's tokens, the bounds, the alias table) are private
 * copies, checked after copying: another Python thread may rewrite the caller's arrays while the
 * kernel runs without the GIL. */
#include "glue.h"
#include "methods.h"
#include "kernels/sgns.h"

#include <string.h>

PyDoc_STRVAR(sgns_train_doc,
"sgns_train(syn0, syn1, tokens, bounds, keep_prob, alias, *, window=5, negative=5,\n"
"           alpha_begin=0.025, alpha_end=0.025, seed=1, counter_base=0, threads=1, sg=1,\n"
"           cbow_mean=1, hs_syn1=None, points=None, codes=None, code_offsets=None)\n--\n\n"
"Train word2vec on the sentences tokens[bounds[s]:bounds[s+1]], updating syn0 and syn1\n"
"(float32 (V, D), C-contiguous) in place; see csrc/kernels/sgns.h. sg=0: CBOW (cbow_mean=1:\n"
"the mean of the context, 0: the sum). hs_syn1 (float32 (V, D)) with points (int32 (P,)),\n"
"codes (uint8 (P,)) and code_offsets (int64 (V+1,)): hierarchical softmax as well, along\n"
"word w's Huffman path points/codes[code_offsets[w]:code_offsets[w+1]]; with it, negative=0\n"
"turns negative sampling off.\n"
"tokens: int32 (N,) ids in [0, V); bounds: int64 (S+1,) non-decreasing within [0, N];\n"
"keep_prob: float64 (V,); alias: uint64 (V,) from alias_table. The random draws of the token\n"
"at position p are a function of (seed, counter_base + p). threads > 1 updates the tables\n"
"Hogwild-style (results then depend on timing); threads == 1 is deterministic.\n"
"Returns (loss_sum, pairs, words_kept).");

static PyObject *sgns_train(PyObject *Py_UNUSED(mod), PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"syn0", "syn1", "tokens", "bounds", "keep_prob", "alias",
                             "window", "negative", "alpha_begin", "alpha_end", "seed",
                             "counter_base", "threads", "sg", "cbow_mean", "hs_syn1", "points",
                             "codes", "code_offsets", NULL};
    PyObject *syn0_o, *syn1_o, *tok_o, *bnd_o, *keep_o, *alias_o;
    PyObject *hs_o = Py_None, *pts_o = Py_None, *codes_o = Py_None, *offs_o = Py_None;
    int window = 5, negative = 5, threads = 1, sg = 1, cbow_mean = 1;
    double a0 = 0.025, a1 = 0.025;
    unsigned long long seed = 1, counter_base = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OOOOOO|$iiddKKippOOOO:sgns_train", kwlist,
                                     &syn0_o, &syn1_o, &tok_o, &bnd_o, &keep_o, &alias_o, &window,
                                     &negative, &a0, &a1, &seed, &counter_base, &threads, &sg,
                                     &cbow_mean, &hs_o, &pts_o, &codes_o, &offs_o))
        return NULL;
    const int hs = hs_o != Py_None;
    if (hs != (pts_o != Py_None) || hs != (codes_o != Py_None) || hs != (offs_o != Py_None)) {
        PyErr_SetString(PyExc_ValueError,
                        "hs_syn1, points, codes and code_offsets go together: give all or none");
        return NULL;
    }
    npy_intp free2[2] = {-1, -1}, free1[1] = {-1};
    if (pe_check_exact(syn0_o, "syn0", NPY_FLOAT32, 2, free2, 1, "sgns_train") < 0) return NULL;
    PyArrayObject *syn0 = (PyArrayObject *)syn0_o;
    npy_intp V = PyArray_DIM(syn0, 0), D = PyArray_DIM(syn0, 1);
    npy_intp shape_vd[2] = {V, D}, shape_v[1] = {V};
    if (pe_check_exact(syn1_o, "syn1", NPY_FLOAT32, 2, shape_vd, 1, "sgns_train") < 0) return NULL;
    PyArrayObject *syn1 = (PyArrayObject *)syn1_o;
    if (V < 1) {
        PyErr_SetString(PyExc_ValueError, "syn0 must have at least one row (an empty vocabulary)");
        return NULL;
    }
    if (V >= ((npy_intp)1 << 31)) {
        PyErr_Format(PyExc_ValueError, "a vocabulary of %zd words does not fit int32 ids",
                     (Py_ssize_t)V);
        return NULL;
    }
    pe_span syns[3] = {pe_span_of("syn0", syn0), pe_span_of("syn1", syn1)};
    if (hs) {
        if (pe_check_exact(hs_o, "hs_syn1", NPY_FLOAT32, 2, shape_vd, 1, "sgns_train") < 0)
            return NULL;
        syns[2] = pe_span_of("hs_syn1", (PyArrayObject *)hs_o);
    }
    if (pe_check_disjoint(syns, 2 + hs) < 0) return NULL;
    if (pe_check_exact(tok_o, "tokens", NPY_INT32, 1, free1, 0, "sgns_train") < 0) return NULL;
    if (pe_check_exact(keep_o, "keep_prob", NPY_FLOAT64, 1, shape_v, 0, "sgns_train") < 0) return NULL;
    if (pe_check_exact(bnd_o, "bounds", NPY_INT64, 1, free1, 0, "sgns_train") < 0) return NULL;
    if (pe_check_exact(alias_o, "alias", NPY_UINT64, 1, shape_v, 0, "sgns_train") < 0) return NULL;
    PyArrayObject *tok = (PyArrayObject *)tok_o, *bnd = (PyArrayObject *)bnd_o;
    npy_intp N = PyArray_DIM(tok, 0), nb = PyArray_DIM(bnd, 0);
    if (nb < 1) {
        PyErr_SetString(PyExc_ValueError, "bounds must hold at least one offset");
        return NULL;
    }
    if (window < 1) {
        PyErr_Format(PyExc_ValueError, "window must be >= 1, got %d", window);
        return NULL;
    }
    if (negative < 0 || negative > 64) {
        PyErr_Format(PyExc_ValueError, "negative must be in [0, 64], got %d", negative);
        return NULL;
    }
    if (!(a0 >= 0.0) || !(a1 >= 0.0) || !isfinite(a0) || !isfinite(a1)) {
        PyObject *v0 = PyFloat_FromDouble(a0), *v1 = PyFloat_FromDouble(a1);
        if (v0 && v1)
            PyErr_Format(PyExc_ValueError,
                         "alpha_begin and alpha_end must be finite and >= 0, got %R and %R", v0, v1);
        PE_RELEASE(v0, v1);
        return NULL;
    }
    if (threads < 1) {
        PyErr_Format(PyExc_ValueError, "threads must be >= 1, got %d", threads);
        return NULL;
    }
    PyArrayObject *b_copy = NULL, *t_copy = NULL, *al_copy = NULL;
    PyArrayObject *p_copy = NULL, *c_copy = NULL, *o_copy = NULL;
    PyObject *res = NULL;
    pe_hs_tree tree = {0};
    if (hs) {
        npy_intp shape_off[1] = {V + 1};
        if (pe_private_exact(pts_o, "points", NPY_INT32, 1, free1, "sgns_train", &p_copy) < 0)
            goto done;
        npy_intp shape_p[1] = {PyArray_DIM(p_copy, 0)};
        if (pe_private_exact(codes_o, "codes", NPY_UINT8, 1, shape_p, "sgns_train", &c_copy) < 0 ||
            pe_private_exact(offs_o, "code_offsets", NPY_INT64, 1, shape_off, "sgns_train",
                             &o_copy) < 0)
            goto done;
        tree.syn1 = (float *)PyArray_DATA((PyArrayObject *)hs_o);
        tree.points = (const int32_t *)PyArray_DATA(p_copy);
        tree.codes = (const uint8_t *)PyArray_DATA(c_copy);
        tree.offsets = (const int64_t *)PyArray_DATA(o_copy);
        int64_t bad = pe_hs_find_bad(tree.points, tree.codes, (size_t)shape_p[0], tree.offsets,
                                     (size_t)V);
        if (bad >= 0 && bad <= V) {
            PyErr_Format(PyExc_ValueError,
                         "code_offsets[%lld] = %lld: code_offsets must be non-decreasing within "
                         "[0, %zd]", (long long)bad, (long long)tree.offsets[bad],
                         (Py_ssize_t)shape_p[0]);
            goto done;
        }
        if (bad > V) {
            npy_intp i = (npy_intp)(bad - V - 1);
            PyErr_Format(PyExc_ValueError,
                         "points[%zd] = %d, codes[%zd] = %d: points must be in [0, %zd) and "
                         "codes 0 or 1", (Py_ssize_t)i, (int)tree.points[i], (Py_ssize_t)i,
                         (int)tree.codes[i], (Py_ssize_t)(V - 1));
            goto done;
        }
    }
    if (pe_private_exact(bnd_o, "bounds", NPY_INT64, 1, free1, "sgns_train", &b_copy) < 0 ||
        pe_private_exact(alias_o, "alias", NPY_UINT64, 1, shape_v, "sgns_train", &al_copy) < 0)
        goto done;
    int64_t *b = (int64_t *)PyArray_DATA(b_copy);
    int64_t bad = pe_sgns_find_bad_bound(b, (size_t)nb, (int64_t)N);
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError,
                     "bounds[%lld] = %lld: bounds must be non-decreasing within [0, %zd]",
                     (long long)bad, (long long)b[bad], (Py_ssize_t)N);
        goto done;
    }
    /* only this batch's tokens, tokens[first:last), are copied (the trainer passes the whole
     * corpus every batch); bounds and counter_base shift by `first` so that the token at
     * absolute position p still draws from counter_base + p */
    int64_t first = b[0], last = b[nb - 1];
    npy_intp span[1] = {(npy_intp)(last - first)};
    t_copy = (PyArrayObject *)PyArray_EMPTY(1, span, NPY_INT32, 0);
    if (!t_copy) goto done;
    int32_t *t = (int32_t *)PyArray_DATA(t_copy);
    memcpy(t, (const int32_t *)PyArray_DATA(tok) + first, (size_t)span[0] * sizeof(int32_t));
    for (npy_intp i = 0; i < nb; i++) b[i] -= first;
    bad = pe_sgns_find_bad_token(t, (size_t)span[0], (size_t)V);
    if (bad >= 0) {
        PyErr_Format(PyExc_IndexError, "token %d at tokens[%lld] is out of range for %zd words",
                     (int)t[bad], (long long)(first + bad), (Py_ssize_t)V);
        goto done;
    }
    const uint64_t *al = (const uint64_t *)PyArray_DATA(al_copy);
    bad = pe_alias_find_bad(al, (size_t)V);
    if (bad >= 0) {
        PyErr_Format(PyExc_ValueError, "alias[%lld] names an id outside [0, %zd)", (long long)bad,
                     (Py_ssize_t)V);
        goto done;
    }
    pe_sgns_stats st;
    const pe_w2v_opts opts = {.sg = sg, .cbow_mean = cbow_mean, .window = window,
                              .negative = negative, .nthreads = threads, .alpha_begin = a0,
                              .alpha_end = a1, .seed = (uint64_t)seed,
                              .counter_base = (uint64_t)counter_base + (uint64_t)first};
    int rc;
    Py_BEGIN_ALLOW_THREADS /* word2vec batches are long: always worth releasing */
    rc = pe_w2v_train_f32((float *)PyArray_DATA(syn0), (float *)PyArray_DATA(syn1),
                          hs ? &tree : NULL, &st, t, b, (size_t)(nb - 1),
                          (const double *)PyArray_DATA((PyArrayObject *)keep_o), al, (size_t)V,
                          (size_t)D, &opts);
    Py_END_ALLOW_THREADS
    if (rc != PE_OK) {
        pe_raise_kernel_error(rc, "sgns_train");
        goto done;
    }
    res = Py_BuildValue("(dKK)", st.loss, (unsigned long long)st.pairs,
                        (unsigned long long)st.words);
done:
    PE_RELEASE(b_copy, t_copy, al_copy, p_copy, c_copy, o_copy);
    return res;
}

PyDoc_STRVAR(alias_table_doc,
"alias_table(weights)\n--\n\n"
"A packed alias table (uint64 (n,)) drawing id i with probability weights[i] / sum(weights)\n"
"(Vose's method). weights: 1-D, finite, >= 0, positive sum, 1 <= n < 2**31.");

static PyObject *alias_table(PyObject *Py_UNUSED(mod), PyObject *arg) {
    PyArrayObject *w = NULL;
    PyObject *out = NULL, *res = NULL;
    if (pe_convert_float(arg, "weights", NPY_FLOAT64, &w) < 0) return NULL;
    if (PyArray_NDIM(w) != 1 || PyArray_DIM(w, 0) < 1 || PyArray_DIM(w, 0) >= ((npy_intp)1 << 31)) {
        PyObject *shp = pe_shape_str(PyArray_NDIM(w), PyArray_DIMS(w));
        if (shp)
            PyErr_Format(PyExc_ValueError,
                         "weights must be 1-D with 1 to 2**31-1 entries, got shape %U", shp);
        Py_XDECREF(shp);
        goto fail;
    }
    npy_intp n = PyArray_DIM(w, 0);
    out = PyArray_EMPTY(1, &n, NPY_UINT64, 0);
    if (!out) goto fail;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pe_alias_build((uint64_t *)PyArray_DATA((PyArrayObject *)out),
                        (const double *)PyArray_DATA(w), (size_t)n);
    Py_END_ALLOW_THREADS
    if (rc == PE_ERR_VALUE) {
        PyErr_SetString(PyExc_ValueError,
                        "weights must be finite and >= 0 with a positive finite sum");
        goto fail;
    }
    res = pe_kernel_result(rc, "alias_table", out);
    out = NULL;
fail:
    PE_RELEASE(w, out);
    return res;
}

PyMethodDef pe_sgns_functions[] = {
    PE_KW_METHOD("sgns_train", sgns_train, sgns_train_doc),
    {"alias_table", alias_table, METH_O, alias_table_doc},
    {NULL, NULL, 0, NULL},
};
