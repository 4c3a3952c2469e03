/* libFuzzer harness for the word-vector parsing kernels (csrc/kernels/parse.c), no Python.
 *
 * Built by tests/fuzz/run with clang -fsanitize=fuzzer,address,undefined. The input is
 *   byte 0: mode (bits 0-1: text f32, text f64, binary f32, binary f64)
 *   byte 1: d, the values per row (text: 0..16, binary: 0..8)
 *   byte 2: rows to read (text: 255 means all)
 *   rest:   the file's bytes, in a heap block of exactly that size (ASan sees any overread).
 * The harness allocates as the glue (csrc/py/parse.c) does and checks what parse.h promises:
 * offsets inside the buffer and ordered, error rows and offsets inside the input, and every number
 * a row accepts equal, bit for bit, to strtod of its token in the "C" locale (the kernel's
 * fast path claims exactly that). Any violation aborts, which libFuzzer reports as a crash.
 * The same bytes go through the same calls from Python in targets.py (harness "parse_kernels"),
 * so that a crash found here is replayed through the glue by test_regressions.py. */
#define _GNU_SOURCE
#include "parse.h"

#include <stdio.h>
#include <stdlib.h>
#include <ctype.h>
#include <string.h>

#define CHECK(cond)                                                                   \
    do {                                                                              \
        if (!(cond)) {                                                                \
            fprintf(stderr, "parse_fuzz: check failed: %s (line %d)\n", #cond, __LINE__); \
            abort();                                                                  \
        }                                                                             \
    } while (0)

static int is_sep(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* Every token pe_parse_number accepts: its end is the token's end and its value strtod's of
 * the token without its underscores (Python's float(), which gensim uses, takes "1_0" = 10: an
 * underscore must stand between two digits). */
static void check_numbers(const char *buf, size_t len) {
    char tmp[256];
    const char *p = buf, *end = buf + len;
    while (p < end) {
        while (p < end && is_sep(*p)) p++;
        if (p >= end) break;
        const char *te = p;
        while (te < end && !is_sep(*te)) te++;
        const char *le = memchr(p, '\n', (size_t)(end - p));
        double v = 0;
        const char *q = pe_parse_number(p, le ? le : end, &v);
        if (q) {
            CHECK(q == te);
            size_t n = (size_t)(te - p);
            CHECK(n < sizeof tmp);
            size_t m = 0;
            for (size_t i = 0; i < n; i++) {
                if (p[i] == '_') {
                    CHECK(i > 0 && i + 1 < n && isdigit((unsigned char)p[i - 1]) &&
                          isdigit((unsigned char)p[i + 1]));
                    continue;
                }
                tmp[m++] = p[i];
            }
            tmp[m] = '\0';
            char *se = NULL;
            double w = strtod_l(tmp, &se, pe_c_locale());
            CHECK(se == tmp + m);
            CHECK(memcmp(&v, &w, sizeof v) == 0);
        }
        p = te;
    }
}

static void check_error(const pe_parse_error *e, size_t n, size_t len, int binary) {
    CHECK(e->row >= 0 && (size_t)e->row <= n);
    CHECK(e->offset >= 0 && (size_t)e->offset <= len);
    CHECK(binary ? e->kind == PE_PARSE_TRUNCATED : e->kind >= 1 && e->kind <= 3);
}

static void join(const char *buf, const int64_t *s, const int64_t *e, size_t n) {
    size_t total = n ? n - 1 : 0;
    for (size_t i = 0; i < n; i++) total += (size_t)(e[i] - s[i]);
    char *dst = malloc(total ? total : 1);
    CHECK(dst);
    pe_join_words(dst, buf, s, e, n);
    free(dst);
}

static void run_text(const char *buf, size_t len, size_t d, size_t maxr, int f64) {
    size_t n = 0, consumed = 0, n2 = 0, consumed2 = 0;
    pe_index_lines(NULL, NULL, buf, len, maxr, &n, &consumed);
    CHECK(n <= maxr && consumed <= len);
    size_t na = n ? n : 1;
    int64_t *starts = malloc(na * 8), *ends = malloc(na * 8), *wend = malloc(na * 8);
    void *out = malloc(na * (d ? d : 1) * (f64 ? 8 : 4));
    CHECK(starts && ends && wend && out);
    pe_index_lines(starts, ends, buf, len, n, &n2, &consumed2);
    /* the second pass stops after row n, before any blank lines the first pass skipped */
    CHECK(n2 == n && consumed2 <= consumed);
    for (size_t i = 0; i < n; i++) {
        CHECK(0 <= starts[i] && starts[i] < ends[i] && (size_t)ends[i] <= len);
        CHECK(i == 0 || ends[i - 1] < starts[i]);
    }
    pe_parse_error err;
    memset(&err, 0, sizeof err);
    int rc = f64 ? pe_parse_text_f64(out, wend, buf, starts, ends, n, d, &err)
                 : pe_parse_text_f32(out, wend, buf, starts, ends, n, d, &err);
    if (rc == PE_OK) {
        for (size_t i = 0; i < n; i++) CHECK(starts[i] <= wend[i] && wend[i] <= ends[i]);
        join(buf, starts, wend, n);
    } else {
        CHECK(rc == PE_ERR_PARSE);
        check_error(&err, n, len, 0);
        CHECK((size_t)err.row < n);
    }
    free(starts);
    free(ends);
    free(wend);
    free(out);
}

static void run_binary(const char *buf, size_t len, size_t d, size_t count, int f64) {
    size_t cap = len / (d * 4 + 1), n = count < cap ? count : cap, na = n ? n : 1;
    int64_t *ws = malloc(na * 8), *we = malloc(na * 8);
    void *out = malloc(na * (d ? d : 1) * (f64 ? 8 : 4));
    CHECK(ws && we && out);
    size_t consumed = 0;
    pe_parse_error err;
    memset(&err, 0, sizeof err);
    int rc = f64 ? pe_parse_binary_f64(out, ws, we, buf, len, n, d, &consumed, &err)
                 : pe_parse_binary_f32(out, ws, we, buf, len, n, d, &consumed, &err);
    CHECK(consumed <= len);
    if (rc == PE_OK) {
        for (size_t i = 0; i < n; i++) {
            CHECK(0 <= ws[i] && ws[i] <= we[i] && (size_t)we[i] + 1 + 4 * d <= consumed);
            CHECK(i == 0 || (size_t)we[i - 1] < (size_t)ws[i]);
        }
        join(buf, ws, we, n);
    } else {
        CHECK(rc == PE_ERR_PARSE);
        check_error(&err, n, len, 1);
    }
    free(ws);
    free(we);
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 3) return 0;
    int mode = data[0] & 3;
    size_t rows = data[2];
    size_t len = size - 3;
    /* a copy of exactly len bytes: the kernels must not read past it (no NUL terminator) */
    char *buf = malloc(len ? len : 1);
    CHECK(buf);
    memcpy(buf, data + 3, len);
    if (mode < 2)
        run_text(buf, len, data[1] % 17, rows == 255 ? SIZE_MAX : rows, mode == 1);
    else
        run_binary(buf, len, data[1] % 9, rows, mode == 3);
    check_numbers(buf, len);
    free(buf);
    return 0;
}
