/* The inner loop of the SGNS kernel, included by sgns.c once per vector implementation.
 *
 * The includer defines: VNAME(x) (the suffix of this instance's names), V_TARGET (a target
 * attribute or nothing), and an 8-lane float vector type VT with V_LD(p), V_ST(p, v), V_ADD,
 * V_MUL, V_SPLAT(x), V_ZERO and V_HSUM(v) = ((v0 + v1) + (v2 + v3)) + ((v4 + v5) + (v6 + v7)).
 * Every instance does the same float operations in the same order, so all give the same bits.
 * The part that does not depend on the vector type (the sigmoid tables, the arguments) is defined
 * once, below; sgns.c uses it too.
 */
#include "sgns.h"
#include "rng.h"
#include "simd.h"

#include <math.h>
#include <string.h>

#ifndef PE_SGNS_LOOP_ONCE /* the type-independent part, defined once */
#define PE_SGNS_LOOP_ONCE

#define AI inline PE_ALWAYS_INLINE

/* sigmoid and -log sigmoid tabulated over [-MAX_EXP, MAX_EXP] at bin centres (word2vec.c uses
 * 1000 bins over [-6, 6]); beyond the range sigmoid is clamped to 0 or 1. */
#define EXP_TABLE_SIZE 1024
#define MAX_EXP 8.0f
#define MAX_NEGATIVE 64

typedef struct {
    float sig[EXP_TABLE_SIZE];
    float nl_pos[EXP_TABLE_SIZE]; /* -log sigmoid(x)  = log1p(exp(-x)): the loss of label 1 */
    float nl_neg[EXP_TABLE_SIZE]; /* -log sigmoid(-x) = log1p(exp(x)):  the loss of label 0 */
} exp_tables;

static double softplus(double x) { return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x)); }

static void build_tables(exp_tables *t) {
    for (int i = 0; i < EXP_TABLE_SIZE; i++) {
        double x = -MAX_EXP + (i + 0.5) * (2.0 * MAX_EXP / EXP_TABLE_SIZE);
        t->sig[i] = (float)(1.0 / (1.0 + exp(-x)));
        t->nl_pos[i] = (float)softplus(-x);
        t->nl_neg[i] = (float)softplus(x);
    }
}

/* Table index of x in (-MAX_EXP, MAX_EXP). The float sum x + MAX_EXP can round up to exactly
 * 2 * MAX_EXP for x just below MAX_EXP, hence the clamp. */
static AI int exp_index(float x) {
    int i = (int)((x + MAX_EXP) * (EXP_TABLE_SIZE / (2.0f * MAX_EXP)));
    return i < EXP_TABLE_SIZE ? i : EXP_TABLE_SIZE - 1;
}

/* sigmoid(f) and, in *loss, -log sigmoid(f) (label 1) or -log sigmoid(-f) (label 0), from one
 * table index. Beyond the range sigmoid is 0 or 1 and the loss its asymptote (0 or |f|); NaN
 * (from a user's NaN row) takes the first branch, never a table index. */
static AI float sigmoid_loss(const exp_tables *t, float f, int label, float *loss) {
    if (!(f > -MAX_EXP)) {
        *loss = label ? -f : 0.0f;
        return 0.0f;
    }
    if (f >= MAX_EXP) {
        *loss = label ? 0.0f : f;
        return 1.0f;
    }
    int i = exp_index(f);
    *loss = label ? t->nl_pos[i] : t->nl_neg[i];
    return t->sig[i];
}

typedef struct {
    float *syn0, *syn1;
    const pe_hs_tree *tree; /* NULL: no hierarchical softmax */
    int sg, cbow_mean, use_ns;
    const int32_t *tokens;
    const double *keep_prob;
    const uint64_t *alias;
    const exp_tables *tab;
    size_t vocab, dim;
    int window, negative;
    double alpha_begin, alpha_slope; /* alpha at absolute position p: begin + slope * (p - first) */
    int64_t first;
    uint64_t seed, counter_base;
} sgns_args;

#endif /* PE_SGNS_LOOP_ONCE */

/* a . b with two 8-lane accumulators (two chains hide the add latency), a fixed lane order. */
static AI float VNAME(dot)(const float *a, const float *b, size_t D) {
    VT s0 = V_ZERO, s1 = V_ZERO;
    size_t k = 0;
    for (; k + 16 <= D; k += 16) {
        s0 = V_ADD(s0, V_MUL(V_LD(a + k), V_LD(b + k)));
        s1 = V_ADD(s1, V_MUL(V_LD(a + k + 8), V_LD(b + k + 8)));
    }
    if (k + 8 <= D) {
        s0 = V_ADD(s0, V_MUL(V_LD(a + k), V_LD(b + k)));
        k += 8;
    }
    s0 = V_ADD(s0, s1);
    float s = V_HSUM(s0);
    for (; k < D; k++) s += a[k] * b[k];
    return s;
}

/* acc += g * out; out += g * x   (one pass over the output row) */
static AI void VNAME(update_out)(float *acc, float *out, const float *x, float g, size_t D) {
    const VT gv = V_SPLAT(g);
    size_t k = 0;
    for (; k + 8 <= D; k += 8) {
        const VT o = V_LD(out + k);
        V_ST(acc + k, V_ADD(V_LD(acc + k), V_MUL(gv, o)));
        V_ST(out + k, V_ADD(o, V_MUL(gv, V_LD(x + k))));
    }
    for (; k < D; k++) {
        float o = out[k];
        acc[k] += g * o;
        out[k] = o + g * x[k];
    }
}

/* x += acc */
static AI void VNAME(add_row)(float *x, const float *acc, size_t D) {
    size_t k = 0;
    for (; k + 8 <= D; k += 8) V_ST(x + k, V_ADD(V_LD(x + k), V_LD(acc + k)));
    for (; k < D; k++) x[k] += acc[k];
}

/* For distinct rows[0..nt): acc = sum_k g[k] * rows[k] (k in order); rows[k] += g[k] * x;
 * then x += acc. Column blocks outside, targets inside: x and acc stay in registers. */
static AI void VNAME(update_all)(float *x, float *const *rows, const float *g, int nt, size_t D) {
    size_t k = 0;
    for (; k + 8 <= D; k += 8) {
        const VT xv = V_LD(x + k);
        VT acc = V_ZERO;
        for (int t = 0; t < nt; t++) {
            const VT gv = V_SPLAT(g[t]);
            const VT o = V_LD(rows[t] + k);
            acc = V_ADD(acc, V_MUL(gv, o));
            V_ST(rows[t] + k, V_ADD(o, V_MUL(gv, xv)));
        }
        V_ST(x + k, V_ADD(xv, acc));
    }
    for (; k < D; k++) {
        const float xs = x[k];
        float acc = 0.0f;
        for (int t = 0; t < nt; t++) {
            const float o = rows[t][k];
            acc += g[t] * o;
            rows[t][k] = o + g[t] * xs;
        }
        x[k] = xs + acc;
    }
}

/* x *= s */
static AI void VNAME(scale)(float *x, float s, size_t D) {
    const VT sv = V_SPLAT(s);
    size_t k = 0;
    for (; k + 8 <= D; k += 8) V_ST(x + k, V_MUL(V_LD(x + k), sv));
    for (; k < D; k++) x[k] *= s;
}

/* Hierarchical softmax: predict `word` from x along its Huffman path; acc += the gradient of x.
 * A node with a score outside (-MAX_EXP, MAX_EXP) (or NaN) is skipped as in word2vec.c and
 * gensim; its loss (the table's asymptote) still counts. */
static AI void VNAME(hs_predict)(const sgns_args *a, const float *x, float *acc, uint32_t word,
                                 float alpha, double *loss) {
    const size_t D = a->dim;
    const pe_hs_tree *tr = a->tree;
    for (int64_t b = tr->offsets[word]; b < tr->offsets[word + 1]; b++) {
        float *row = tr->syn1 + (size_t)tr->points[b] * D;
        const float f = VNAME(dot)(x, row, D);
        const int label = 1 - (int)tr->codes[b];
        float lk;
        const float sg = sigmoid_loss(a->tab, f, label, &lk);
        *loss += lk;
        if (!(f > -MAX_EXP) || f >= MAX_EXP) continue;
        VNAME(update_out)(acc, row, x, ((label ? 1.0f : 0.0f) - sg) * alpha, D);
    }
}

/* Negative sampling, one target at a time (CBOW: x is the context vector, not a table row):
 * acc += the gradient of x. */
static AI void VNAME(ns_predict)(const sgns_args *a, const float *x, float *acc, uint32_t word,
                                 uint64_t state, uint64_t *draw, float alpha, double *loss) {
    const size_t D = a->dim;
    for (int k = 0; k <= a->negative; k++) {
        uint32_t t = word;
        if (k > 0) {
            t = pe_alias_draw(a->alias, a->vocab, pe_hash64(state, (*draw)++));
            if (t == word) continue;
        }
        float *row = a->syn1 + (size_t)t * D;
        float lk;
        const float sg = sigmoid_loss(a->tab, VNAME(dot)(x, row, D), k == 0, &lk);
        *loss += lk;
        VNAME(update_out)(acc, row, x, ((k == 0 ? 1.0f : 0.0f) - sg) * alpha, D);
    }
}

/* CBOW for the center c with context kept positions [lo, hi) minus c: each objective builds the
 * context vector from the current rows (gensim recomputes it after the hierarchical softmax
 * step has moved them), predicts, and spreads the gradient over the context rows. */
static AI void VNAME(cbow_center)(const sgns_args *a, const int32_t *kept_id, size_t lo,
                                  size_t hi, size_t c, float *neu1, float *acc, uint64_t state,
                                  uint64_t draw, float alpha, double *loss) {
    const size_t D = a->dim;
    const float inv = 1.0f / (float)(hi - lo - 1);
    for (int obj = 0; obj < 2; obj++) {
        if (obj == 0 ? a->tree == NULL : !a->use_ns) continue;
        memset(neu1, 0, D * sizeof(float));
        for (size_t m = lo; m < hi; m++)
            if (m != c) VNAME(add_row)(neu1, a->syn0 + (size_t)kept_id[m] * D, D);
        if (a->cbow_mean) VNAME(scale)(neu1, inv, D);
        memset(acc, 0, D * sizeof(float));
        if (obj == 0) VNAME(hs_predict)(a, neu1, acc, (uint32_t)kept_id[c], alpha, loss);
        else VNAME(ns_predict)(a, neu1, acc, (uint32_t)kept_id[c], state, &draw, alpha, loss);
        if (!a->cbow_mean) VNAME(scale)(acc, inv, D);
        for (size_t m = lo; m < hi; m++)
            if (m != c) VNAME(add_row)(a->syn0 + (size_t)kept_id[m] * D, acc, D);
    }
}

/* Train the sentences [s0, s1). kept_id / kept_pos: scratch for the longest sentence;
 * acc, neu1: scratch of D floats each. */
V_TARGET static void VNAME(sgns_range)(const sgns_args *a, const int64_t *bounds, size_t s0,
                                      size_t s1, int32_t *kept_id, int64_t *kept_pos,
                                      float *acc, float *neu1, pe_sgns_stats *st) {
    const size_t D = a->dim;
    double loss = 0.0;
    uint64_t pairs = 0, words = 0;
    uint32_t targets[MAX_NEGATIVE + 1];
    uint8_t dup[MAX_NEGATIVE + 1];
    float f[MAX_NEGATIVE + 1], g[MAX_NEGATIVE + 1];
    float *rows[MAX_NEGATIVE + 1];
    for (size_t s = s0; s < s1; s++) {
        /* frequent-word subsampling: the dropped words leave the sentence, which widens the
         * window (word2vec.c) */
        size_t n = 0;
        for (int64_t p = bounds[s]; p < bounds[s + 1]; p++) {
            int32_t w = a->tokens[p];
            uint64_t h = pe_hash64(a->seed, a->counter_base + (uint64_t)p);
            if (pe_u01(h) < a->keep_prob[w]) {
                kept_id[n] = w;
                kept_pos[n] = p;
                n++;
            }
        }
        words += n;
        for (size_t c = 0; c < n; c++) {
            const uint64_t state = pe_hash64(a->seed, a->counter_base + (uint64_t)kept_pos[c]);
            uint64_t draw = 1;
            const int reduce = (int)(pe_hash64(state, draw++) % (uint64_t)a->window);
            const size_t span = (size_t)(a->window - reduce);
            const size_t lo = c > span ? c - span : 0;
            const size_t hi = c + span + 1 < n ? c + span + 1 : n;
            const float alpha =
                (float)(a->alpha_begin + a->alpha_slope * (double)(kept_pos[c] - a->first));
            const uint32_t center = (uint32_t)kept_id[c];
            if (!a->sg) {
                if (hi - lo > 1) {
                    VNAME(cbow_center)(a, kept_id, lo, hi, c, neu1, acc, state, draw, alpha, &loss);
                    pairs++;
                }
                continue;
            }
            for (size_t j = lo; j < hi; j++) {
                if (j == c) continue;
                float *x = a->syn0 + (size_t)kept_id[j] * D;
                pairs++;
                if (a->tree) {
                    memset(acc, 0, D * sizeof(float));
                    VNAME(hs_predict)(a, x, acc, center, alpha, &loss);
                    VNAME(add_row)(x, acc, D);
                }
                if (!a->use_ns) continue;
                int nt = 0, any_dup = 0;
                targets[nt] = center;
                dup[nt++] = 0;
                for (int k = 0; k < a->negative; k++) {
                    uint32_t t = pe_alias_draw(a->alias, a->vocab, pe_hash64(state, draw++));
                    if (t == center) continue;
                    uint8_t d = 0;
                    for (int m = 1; m < nt; m++) d |= targets[m] == t;
                    any_dup |= d;
                    targets[nt] = t;
                    dup[nt++] = d;
                    PE_PREFETCH_W(a->syn1 + (size_t)t * D);
                }
                /* Scores before any update: the 1 + negative dots are independent. A target
                 * drawn twice is rescored after its first update, so the result is exactly the
                 * sequential loop of word2vec.c and gensim. */
                for (int k = 0; k < nt; k++) f[k] = VNAME(dot)(x, a->syn1 + (size_t)targets[k] * D, D);
                if (!any_dup) {
                    /* distinct rows: all steps are known now, so sweep the columns once with
                     * every target inside (the accumulator stays in a register; per element the
                     * same operations in the same order as the loop below) */
                    for (int k = 0; k < nt; k++) {
                        float lk;
                        const float sg = sigmoid_loss(a->tab, f[k], k == 0, &lk);
                        g[k] = ((k == 0 ? 1.0f : 0.0f) - sg) * alpha;
                        loss += lk;
                        rows[k] = a->syn1 + (size_t)targets[k] * D;
                    }
                    VNAME(update_all)(x, rows, g, nt, D);
                } else {
                    memset(acc, 0, D * sizeof(float));
                    for (int k = 0; k < nt; k++) {
                        if (dup[k]) f[k] = VNAME(dot)(x, a->syn1 + (size_t)targets[k] * D, D);
                        float lk;
                        const float sg = sigmoid_loss(a->tab, f[k], k == 0, &lk);
                        const float gk = ((k == 0 ? 1.0f : 0.0f) - sg) * alpha;
                        loss += lk;
                        VNAME(update_out)(acc, a->syn1 + (size_t)targets[k] * D, x, gk, D);
                    }
                    VNAME(add_row)(x, acc, D);
                }
            }
        }
    }
    st->loss += loss;
    st->pairs += pairs;
    st->words += words;
}

