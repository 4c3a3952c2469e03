#ifndef PE_SGNS_H
#define PE_SGNS_H
#include "common.h"

/* word2vec (Mikolov et al. 2013, "Efficient Estimation of Word Representations in Vector Space"
 * and "Distributed Representations of Words and Phrases and their Compositionality"; the loops of
 * word2vec.c and gensim's word2vec_inner.pyx): skip-gram or CBOW, negative sampling and/or
 * hierarchical softmax, fused into one kernel.
 *
 * Shapes (V = vocab, D = dim, N = tokens, S = n_sentences, P = total Huffman path length):
 *   syn0   (V, D)  input vectors: the word vectors users keep            (updated in place)
 *   syn1   (V, D)  output vectors of negative sampling ("syn1neg")        (updated in place)
 *   stats  (1,)    what the call trained (written)
 *   tokens (N,)    word ids in [0, V), every sentence back to back
 *   bounds (S+1,)  sentence s is tokens[bounds[s] : bounds[s+1]], non-decreasing
 *   keep_prob (V,) probability of keeping each occurrence (frequent-word subsampling)
 *   alias  (V,)    the negative-sampling distribution as a packed alias table (pe_alias_build)
 *   tree (optional, hierarchical softmax): syn1 (V, D) inner-node vectors (row V-1 unused),
 *          points (P,) inner nodes in [0, V-1), codes (P,) 0/1, offsets (V+1,): word w's path
 *          from the root is points/codes[offsets[w] : offsets[w+1]]
 *
 * For every sentence: drop each token with probability 1 - keep_prob[id]; then for every kept
 * position c (the center) draw a window reduction b in [0, window); the context is the kept
 * positions j with 0 < |j - c| <= window - b.
 * One "prediction" of the word w = tokens[c] from an input vector x, with gradient sum acc:
 *   hierarchical softmax, for each node b of w's path, in order (a node whose score is outside
 *   (-8, 8) is skipped, as word2vec.c and gensim skip it):
 *     f = x . tree.syn1[point_b];  g = alpha * (1 - code_b - sigmoid(f))
 *     acc += g * tree.syn1[point_b];  tree.syn1[point_b] += g * x
 *   negative sampling, targets t_0 = w (label 1) and `negative` ids drawn from the alias table
 *   (label 0; a draw equal to w is skipped, as word2vec.c does), in order k = 0, 1, ...:
 *     f = x . syn1[t_k];  g = alpha * (label_k - sigmoid(f))  (sigmoid from a table over [-8, 8],
 *     clamped);  acc += g * syn1[t_k];  syn1[t_k] += g * x
 * Skip-gram (sg = 1): for every context j, x = syn0[tokens[j]]: hierarchical softmax then
 *   syn0[tokens[j]] += acc, then negative sampling then syn0[tokens[j]] += acc (acc zeroed for
 *   each); x does not change during one objective, so the scores of distinct negative-sampling
 *   targets are computed up front, in parallel (a repeated target is rescored).
 * CBOW (sg = 0; a center without context is skipped): for each objective in turn (hierarchical
 *   softmax, then negative sampling), x = the sum of the context rows (in position order), times
 *   1/count when cbow_mean; then acc is multiplied by 1/count when not cbow_mean (gensim's rule)
 *   and added to every context row, in position order. 1/count is a float32.
 * Negative sampling runs when negative > 0, or when there is no tree (then negative = 0 trains
 * the positive target alone).
 * alpha falls linearly from alpha_begin at the first token of the call to alpha_end at the last.
 *
 * Randomness is counter based (rng.h): every draw of the token at absolute position p comes from
 * pe_hash64(seed, counter_base + p), so the choices never depend on threads or batch split.
 * Threads: sentences are split in nthreads contiguous ranges of about equal token counts, each run
 * by one thread, updating the shared tables without locks ("Hogwild", Recht et al. 2011, as
 * word2vec.c and gensim do). With nthreads == 1 the result is a deterministic function of the
 * arguments; with more it depends on the interleaving of the threads.
 * Returns PE_OK, PE_ERR_VALUE (an option out of range) or PE_ERR_NOMEM (nothing written then). */
typedef struct {
    double loss;    /* sum of -log sigmoid(+-f) over the trained (prediction, target)s */
    uint64_t pairs; /* predictions trained: (center, context) pairs (sg), centers (CBOW) */
    uint64_t words; /* tokens kept after subsampling */
} pe_sgns_stats;

typedef struct {
    float *syn1;           /* (V, D) */
    const int32_t *points; /* (P,) */
    const uint8_t *codes;  /* (P,) */
    const int64_t *offsets; /* (V+1,) */
} pe_hs_tree;

typedef struct {
    int sg, cbow_mean, window, negative, nthreads;
    double alpha_begin, alpha_end;
    uint64_t seed, counter_base;
} pe_w2v_opts;

/* tree: NULL for negative sampling alone. */
int pe_w2v_train_f32(float *syn0, float *syn1, const pe_hs_tree *tree, pe_sgns_stats *stats,
                     const int32_t *tokens, const int64_t *bounds, size_t n_sentences,
                     const double *keep_prob, const uint64_t *alias, size_t vocab, size_t dim,
                     const pe_w2v_opts *opts);

/* Argument check of a Huffman tree for the glue: -1 if good, else the index of the first bad
 * offset (k < V+1: decreasing or outside [0, P]) or V + 1 + i for the first bad entry i of
 * points (outside [0, V-1)) or codes (not 0 or 1). */
int64_t pe_hs_find_bad(const int32_t *points, const uint8_t *codes, size_t P,
                       const int64_t *offsets, size_t vocab);

/* Vose's alias method: a table from which an id is drawn with probability weights[i] / sum in
 * O(1) (two hashes' worth of bits, one memory access).
 *   table (n,): entry i packs (threshold << 32) | alias; draw i uniformly, keep i when 32 random
 *   bits are below threshold, else take alias.   weights (n,) finite, >= 0, positive sum.
 * n must be in [1, 2^31). Deterministic. PE_OK, PE_ERR_VALUE or PE_ERR_NOMEM. */
int pe_alias_build(uint64_t *table, const double *weights, size_t n);

/* One draw from an alias table of n entries, given 64 random bits. */
static inline uint32_t pe_alias_draw(const uint64_t *table, size_t n, uint64_t h) {
    uint32_t i = (uint32_t)(((h & 0xFFFFFFFFull) * (uint64_t)n) >> 32);
    uint64_t e = table[i];
    return (uint32_t)(h >> 32) < (uint32_t)(e >> 32) ? i : (uint32_t)e;
}

/* Argument checks for the glue (index of the first bad entry, or -1):
 * a token outside [0, vocab); a bound that decreases or leaves [0, n_tokens]; an alias entry
 * that names an id outside [0, n). */
int64_t pe_sgns_find_bad_token(const int32_t *tokens, size_t n, size_t vocab);
int64_t pe_sgns_find_bad_bound(const int64_t *bounds, size_t n, int64_t n_tokens);
int64_t pe_alias_find_bad(const uint64_t *table, size_t n);

#endif
