/* Writing of word-vector files (word2vec text and binary, as gensim writes them); parse.h reads
 * them back.
 *
 * Shapes (n rows, d values each):
 *   words          a blob of the rows' words, row i's at words[wstart[i]:wend[i]]
 *   wstart, wend   (n,) int64  byte offsets into words
 *   vecs           (n, d)      float32 or float64, C-contiguous
 *   dst            the output bytes; room as each function states
 *
 * Round trip: every value written reads back through parse.h's reader to the same bits; the bytes
 * do not depend on the thread count.
 */
#ifndef PE_FORMAT_H
#define PE_FORMAT_H

#include "common.h"

/* Text rows "word v1 ... vd\n" into dst. words: a blob with row i's word at
 * words[wstart[i]:wend[i]]. Each value is written with the fewest significant digits that read
 * back (through the reader, parse.h) to the same bits: %.{6..9}g for float32, %.{15..17}g for
 * float64, in the "C" locale. dst must have room for pe_format_text_bound(...) bytes; *written
 * gets the bytes used. Parallel over rows. Returns PE_ERR_NOMEM if scratch allocation fails. */
size_t pe_format_text_bound(const int64_t *wstart, const int64_t *wend, size_t n, size_t d);
int pe_format_text_f32(char *dst, size_t *written, const char *words, const int64_t *wstart,
                       const int64_t *wend, const float *vecs, size_t n, size_t d);
int pe_format_text_f64(char *dst, size_t *written, const char *words, const int64_t *wstart,
                       const int64_t *wend, const double *vecs, size_t n, size_t d);

/* word2vec binary records "word " + d little-endian float32 (no '\n' after the vector, as gensim
 * writes; the C tool's reader and ours accept both). dst has room for
 * sum(wend - wstart) + n * (1 + 4 d) bytes. Serial (memcpy speed). */
void pe_format_binary_f32(char *dst, const char *words, const int64_t *wstart, const int64_t *wend,
                          const float *vecs, size_t n, size_t d);

#endif
