/* Parsing of word-vector files (word2vec text/binary, GloVe, fastText .vec); format.h writes them.
 *
 * Shapes (n rows, d values each):
 *   buf            len bytes of the file (or of the part after a header line); need not end in NUL
 *   starts, ends   (n,) int64  byte offsets of each non-blank line in buf, end excludes '\n'/'\r'
 *   word_end       (n,) int64  offset one past the last byte of each row's word
 *   out            (n, d)      float32 or float64, C-contiguous
 *
 * Numbers are read exactly as NumPy/gensim read them: float32 = (float)(correctly rounded double)
 * of the decimal string, i.e. np.float32(s) (double rounding included, so that files written
 * by any tool give the same bits as gensim's loader). Simple decimals take Clinger's exact fast
 * path (at most 2^53 for the digits, power of ten at most 1e22); anything else goes to strtod in
 * the "C" locale, which glibc rounds correctly. Like Python's float() (which gensim's loader
 * calls), single underscores between digits are accepted ("1_000.5"); a token with non-ASCII
 * digits is "not a number" here and read by the glue with float() (csrc/py/parse.c).
 */
#ifndef PE_PARSE_H
#define PE_PARSE_H

#include "common.h"

#include <locale.h>
#if defined(__APPLE__)
#include <xlocale.h>
#endif
#if defined(__GLIBC__) || defined(__APPLE__)
#define PE_HAVE_LOCALE_T 1
#endif

enum {
    PE_PARSE_BAD_NUMBER = 1,   /* a value that is not a number */
    PE_PARSE_FEW_VALUES = 2,   /* fewer than d values on a line */
    PE_PARSE_MANY_VALUES = 3,  /* more than d values on a line */
    PE_PARSE_TRUNCATED = 4,    /* a binary record cut short by the end of the file */
};

/* Where and why parsing failed: row (0-based, among rows of this call), kind, the 0-based field
 * (value) index, the count of values found (FEW/MANY) and the byte offset of the bad field. */
typedef struct {
    int64_t row;
    int kind;
    int64_t field;
    int64_t found;
    int64_t offset;
} pe_parse_error;

/* Index the non-blank lines of buf[0:len): blank (only ' ', '\t', '\r') lines are skipped. At most
 * max_rows lines are indexed. With starts == NULL only counts. Sets *nrows to the number of lines
 * indexed and *consumed to the offset just past the last indexed line's '\n' (or len). Serial,
 * memchr speed. Returns PE_OK. */
int pe_index_lines(int64_t *starts, int64_t *ends, const char *buf, size_t len, size_t max_rows,
                   size_t *nrows, size_t *consumed);

/* Parse rows "word v1 ... vd": the word is the bytes before the first ' ' (as gensim splits)
 * or '\t', then exactly d numbers separated by runs of ' '/'\t'. If the line has a field that is not a
 * number, the last d fields are tried as the numbers and everything before them as the word
 * (GloVe 840B has words with spaces). Parallel over rows (OpenMP), results independent of the
 * thread count; on failure returns PE_ERR_PARSE with *err describing the first bad row (rows
 * after it may have been written). */
int pe_parse_text_f32(float *out, int64_t *word_end, const char *buf, const int64_t *starts,
                      const int64_t *ends, size_t n, size_t d, pe_parse_error *err);
int pe_parse_text_f64(double *out, int64_t *word_end, const char *buf, const int64_t *starts,
                      const int64_t *ends, size_t n, size_t d, pe_parse_error *err);

/* word2vec binary records: optional '\n's, word bytes up to ' ', then d little-endian float32.
 * Reads n records from buf[0:len) (serial: records have no fixed size). word_start/word_end get
 * the word's offsets; *consumed the offset after the last record. A record cut short returns
 * PE_ERR_PARSE with kind TRUNCATED and row = the record index. */
int pe_parse_binary_f32(float *out, int64_t *word_start, int64_t *word_end, const char *buf,
                        size_t len, size_t n, size_t d, size_t *consumed, pe_parse_error *err);
int pe_parse_binary_f64(double *out, int64_t *word_start, int64_t *word_end, const char *buf,
                        size_t len, size_t n, size_t d, size_t *consumed, pe_parse_error *err);

/* dst[...] = word_0 '\n' word_1 '\n' ... word_{n-1} (no trailing '\n'); dst has room for
 * sum(ends - starts) + n - 1 bytes (0 when n == 0). */
void pe_join_words(char *dst, const char *buf, const int64_t *starts, const int64_t *ends,
                   size_t n);

/* Shared with the writer (format.c), so that both use one number grammar and one locale.
 * pe_pow10[k] = 10^k, exact as a double for k <= 22 (Clinger's fast path).
 * pe_parse_number reads the number at p (p < end, not a separator) as the rows above do: returns
 * the end of the token, or NULL if the token up to the next separator is not a number.
 * pe_c_locale: the "C" locale, created once ((locale_t)0 if that failed). */
extern const double pe_pow10[23];
const char *pe_parse_number(const char *p, const char *end, double *out);
#ifdef PE_HAVE_LOCALE_T
locale_t pe_c_locale(void);
#endif

#endif
