#ifndef PE_SGNS_H
#define PE_SGNS_H
#include "common.h"

/* Skip-gram with negative sampling (Mikolov et al. 2013, "Distributed Representations of Words
 * and Phrases and their Compositionality"; the loop of word2vec.c), fused into one kernel.
 *
 * Shapes (V = vocab, D = dim, N = tokens, S = n_sentences):
 *   syn0   (V, D)  input vectors: the word vectors users keep            (updated in place)
 *   syn1   (V, D)  output vectors of the negative-sampling objective     (updated in place)
 *   stats  (1,)    what the call trained (written)
 *   tokens (N,)    word ids in [0, V), every sentence back to back
 *   bounds (S+1,)  sentence s is tokens[bounds[s] : bounds[s+1]], non-decreasing
 *   keep_prob (V,) probability of keeping each occurrence (frequent-word subsampling)
 *   alias  (V,)    the negative-sampling distribution as a packed alias table (pe_alias_build)
 *
 * For every sentence: drop each token with probability 1 - keep_prob[id]; then for every kept
 * position c (the center) draw a window reduction b in [0, window) and for every context position
 * j with 0 < |j - c| <= window - b: with x = syn0[tokens[j]] and targets t_0 = tokens[c]
 * (label 1) and `negative` ids t_k drawn from the alias table (label 0; a draw equal to t_0 is
 * skipped, as word2vec.c does), in order k = 0, 1, ...:
 *     f_k = x . syn1[t_k]
 *     g_k = alpha * (label_k - sigmoid(f_k))     (sigmoid from a table over [-8, 8], clamped)
 *     acc += g_k * syn1[t_k];   syn1[t_k] += g_k * x
 * and then syn0[tokens[j]] += acc (x itself does not change during the loop, so the scores of
 * distinct targets are computed up front, in parallel; a repeated target is rescored).
 * alpha falls linearly from alpha_begin at the first token of the call to alpha_end at the last.
 *
 * Randomness is counter based (rng.h): every draw of the token at absolute position p comes from
 * pe_hash64(seed, counter_base + p), so the choices never depend on threads or batch split.
 * Threads: sentences are split in nthreads contiguous ranges of about equal token counts, each run
 * by one thread, updating the shared tables without locks ("Hogwild", Recht et al. 2011, as
 * word2vec.c and gensim do). With nthreads == 1 the result is a deterministic function of the
 * arguments; with more it depends on the interleaving of the threads.
 * Returns PE_OK or PE_ERR_NOMEM (nothing written then). */
typedef struct {
    double loss;    /* sum of -log sigmoid(+-f) over the trained (pair, target)s */
    uint64_t pairs; /* (center, context) pairs trained */
    uint64_t words; /* tokens kept after subsampling */
} pe_sgns_stats;

int pe_sgns_train_f32(float *syn0, float *syn1, pe_sgns_stats *stats, const int32_t *tokens,
                      const int64_t *bounds, size_t n_sentences, const double *keep_prob,
                      const uint64_t *alias, size_t vocab, size_t dim, int window, int negative,
                      double alpha_begin, double alpha_end, uint64_t seed, uint64_t counter_base,
                      int nthreads);

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
