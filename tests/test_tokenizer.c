/*
 * test_tokenizer.c — the BERT WordPiece tokenizer against HF BertTokenizerFast
 * (tokenizers 0.19.1) golden fixtures made by tests/gen_tokenizer_fixture.py:
 *   - >= 2,000 real titles/captions + hand-made edge cases, 4 flag settings:
 *     100% exact match required (first mismatch printed in full);
 *   - every Unicode code point in context ("a" c "b"), hashed per 256-block;
 *   - encode: pairs, longest-first truncation, padding modes, batches;
 *   - vocab errors, invalid UTF-8 robustness, hash stability, API edges.
 * Runs from the repository root; needs only tests/fixtures.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "miles.h"
#include "tokenizer_internal.h"
#include "helpers.h"

#define FIXDIR "tests/fixtures/"
#define VOCAB FIXDIR "tokenizer_vocab.txt"
#define MODEL_DIR "models/all-MiniLM-L6-v2"

/* ------------------------------------------------------------ helpers */

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Decode hex s[0..n) into a malloc'd buffer (NUL-terminated); *len bytes. */
static char *unhex(const char *s, size_t n, size_t *len)
{
    char *o = malloc(n / 2 + 1);
    assert_non_null(o);
    for (size_t i = 0; i + 1 < n; i += 2) o[i / 2] = (char)(hexval(s[i]) * 16 + hexval(s[i + 1]));
    o[n / 2] = '\0';
    *len = n / 2;
    return o;
}

/* Split a line on TABs in place (strip the newline); returns the field count. */
static int split_tabs(char *line, char **f, int maxf)
{
    size_t l = strlen(line);
    while (l && (line[l - 1] == '\n' || line[l - 1] == '\r')) line[--l] = '\0';
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p && n < maxf; p++)
        if (*p == '\t') { *p = '\0'; f[n++] = p + 1; }
    return n;
}

/* Parse space- or comma-separated ints; returns count (grows *buf). */
static int parse_ints(const char *s, int32_t **buf, int *cap)
{
    int n = 0;
    while (*s) {
        char *e;
        long v = strtol(s, &e, 10);
        if (e == s) { s++; continue; }
        if (n == *cap) {
            *cap = *cap ? *cap * 2 : 256;
            *buf = realloc(*buf, sizeof(int32_t) * (size_t)*cap);
            assert_non_null(*buf);
        }
        (*buf)[n++] = (int32_t)v;
        s = e;
    }
    return n;
}

static void print_escaped(const char *s, size_t n)
{
    putchar('"');
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') printf("\\%c", c);
        else if (c < 0x20 || c == 0x7f) printf("\\x%02x", c);
        else putchar(c);
    }
    putchar('"');
}

static void print_ids(const MilesTokenizer *t, const char *label, const int32_t *ids, int n)
{
    printf("  %s (%d):", label, n);
    for (int i = 0; i < n; i++) {
        const char *tok = miles_tokenizer_id_to_token(t, ids[i]);
        printf(" %d(%s)", ids[i], tok ? tok : "?");
    }
    printf("\n");
}

static MilesTokenizer *load_cfg(char cfg)
{
    MilesTokenizer *t = NULL;
    int st;
    switch (cfg) {
    case 'c': st = miles_tokenizer_load_opts(&t, VOCAB, 0, 0, -1); break;
    case 'l': st = miles_tokenizer_load_opts(&t, VOCAB, 1, 0, -1); break;
    case 's': st = miles_tokenizer_load_opts(&t, VOCAB, 0, 1, -1); break;
    default: st = miles_tokenizer_load(&t, VOCAB); break;
    }
    if (st != MILES_OK) printf("load %s: %s\n", VOCAB, miles_last_error());
    assert_int_equal(st, MILES_OK);
    return t;
}

static int cfg_index(char c)
{
    const char *cfgs = "ucls";
    const char *p = strchr(cfgs, c);
    assert_non_null(p);
    return (int)(p - cfgs);
}

/* ------------------------------------------------ golden strings (T lines) */

static void run_cases(MilesTokenizer *const tk[4], const char *only_label, int *checked)
{
    FILE *f = fopen(FIXDIR "tokenizer_cases.txt", "r");
    if (!f) printf("cannot open " FIXDIR "tokenizer_cases.txt (run from the repo root)\n");
    assert_non_null(f);
    char *line = NULL;
    size_t lcap = 0;
    int32_t *exp = NULL, *got = NULL;
    int ecap = 0, gcap = 0, mism = 0, n_cases = 0, n_hash = 0;
    int per_cfg[4] = { 0 };
    while (getline(&line, &lcap, f) > 0) {
        if (line[0] == '#') continue;
        char *fl[8];
        int nf = split_tabs(line, fl, 8);
        if (fl[0][0] == 'H' && nf == 3) {
            if (only_label) continue;
            char h[17];
            assert_int_equal(miles_tokenizer_hash(tk[cfg_index(fl[1][0])], h), MILES_OK);
            if (strcmp(h, fl[2]) != 0) printf("hash mismatch for cfg %s: got %s, expected %s\n", fl[1], h, fl[2]);
            assert_string_equal(h, fl[2]);
            n_hash++;
            continue;
        }
        assert_true(fl[0][0] == 'T' && (nf == 5 || nf == 4));
        if (only_label && fl[1][0] != 'u') continue;
        const MilesTokenizer *t = tk[cfg_index(fl[1][0])];
        size_t len;
        char *text = unhex(fl[3], strlen(fl[3]), &len);
        int ne = nf == 5 ? parse_ints(fl[4], &exp, &ecap) : 0;
        if (gcap < ne + 8) {
            gcap = ne + 8;
            got = realloc(got, sizeof(int32_t) * (size_t)gcap);
        }
        int ng = -1;
        assert_int_equal(miles_tokenizer_tokenize(t, text, len, got, gcap, &ng), MILES_OK);
        int ok = ng == ne;
        for (int i = 0; ok && i < ne; i++) ok = got[i] == exp[i];
        if (!ok) {
            if (mism == 0) {
                printf("FIRST MISMATCH%s%s (cfg %s, source %s), text %zu bytes:\n  ", only_label ? " with " : "",
                       only_label ? only_label : "", fl[1], fl[2], len);
                print_escaped(text, len);
                printf("\n  hex: %s\n", fl[3]);
                print_ids(t, "expected (HF)", exp, ne);
                print_ids(t, "got (Miles)", got, ng < gcap ? ng : gcap);
            }
            mism++;
        }
        n_cases++;
        per_cfg[cfg_index(fl[1][0])]++;
        free(text);
    }
    free(line);
    free(exp);
    free(got);
    fclose(f);
    printf("tokenizer golden%s%s: %d strings checked (u %d, c %d, l %d, s %d), %d hashes, %d mismatches\n",
           only_label ? " via " : "", only_label ? only_label : "", n_cases, per_cfg[0], per_cfg[1], per_cfg[2],
           per_cfg[3], n_hash, mism);
    assert_int_equal(mism, 0);
    if (!only_label) assert_true(per_cfg[0] >= 2000);
    *checked = n_cases;
}

static void test_golden_strings(void **state)
{
    (void)state;
    MilesTokenizer *tk[4] = { load_cfg('u'), load_cfg('c'), load_cfg('l'), load_cfg('s') };
    int n;
    run_cases(tk, NULL, &n);
    for (int i = 0; i < 4; i++) miles_tokenizer_free(tk[i]);
}

/* The real model directory (tokenizer.json + tokenizer_config.json) when
 * `make weights` has fetched it; skipped otherwise. */
static void test_golden_model_dir(void **state)
{
    (void)state;
    struct stat sb;
    if (stat(MODEL_DIR "/vocab.txt", &sb) != 0) {
        printf("skipped: " MODEL_DIR " not present (make weights)\n");
        skip();
    }
    MilesTokenizer *d = NULL;
    int st = miles_tokenizer_load(&d, MODEL_DIR);
    if (st) printf("%s\n", miles_last_error());
    assert_int_equal(st, MILES_OK);
    MilesTokenizer *tk[4] = { d, d, d, d };
    int n;
    run_cases(tk, MODEL_DIR, &n);
    char h1[17], h2[17];
    MilesTokenizer *f = load_cfg('u');
    miles_tokenizer_hash(d, h1);
    miles_tokenizer_hash(f, h2);
    assert_string_equal(h1, h2);
    miles_tokenizer_free(f);
    miles_tokenizer_free(d);
}

/* ------------------------------------------------ every code point (P lines) */

static int put_utf8(uint32_t c, char *o)
{
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 63)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 63)); o[2] = (char)(0x80 | (c & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 63));
    o[2] = (char)(0x80 | ((c >> 6) & 63)); o[3] = (char)(0x80 | (c & 63));
    return 4;
}

static void test_all_codepoints(void **state)
{
    (void)state;
    FILE *f = fopen(FIXDIR "tokenizer_codepoints.txt", "r");
    assert_non_null(f);
    MilesTokenizer *tk[4] = { load_cfg('u'), load_cfg('c'), load_cfg('l'), load_cfg('s') };
    char line[256];
    int blocks = 0, bad = 0;
    long cps = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        char *fl[4];
        assert_int_equal(split_tabs(line, fl, 4), 4);
        const MilesTokenizer *t = tk[cfg_index(fl[1][0])];
        uint32_t blk = (uint32_t)strtoul(fl[2], NULL, 16);
        uint64_t want = strtoull(fl[3], NULL, 16), h = 0xcbf29ce484222325ull;
        for (uint32_t c = blk; c < blk + 256; c++) {
            if (c >= 0xD800 && c <= 0xDFFF) continue;
            char s[8];
            int k = 0;
            s[k++] = 'a';
            k += put_utf8(c, s + k);
            s[k++] = 'b';
            int32_t ids[16];
            int n;
            assert_int_equal(miles_tokenizer_tokenize(t, s, (size_t)k, ids, 16, &n), MILES_OK);
            assert_true(n <= 16);
            for (int i = 0; i < n; i++) {
                uint8_t le[4] = { (uint8_t)ids[i], (uint8_t)(ids[i] >> 8), (uint8_t)(ids[i] >> 16),
                                  (uint8_t)(ids[i] >> 24) };
                h = test_fnv1a(h, le, 4);
            }
            h = test_fnv1a(h, "\xff\xff\xff\xff", 4);
            cps++;
        }
        if (h != want) {
            if (bad < 5)
                printf("code point block U+%04X..U+%04X (cfg %s) differs from HF: regenerate with "
                       "tests/gen_tokenizer_fixture.py and compare 'a'+chr(c)+'b' in that block\n",
                       blk, blk + 255, fl[1]);
            bad++;
        }
        blocks++;
    }
    fclose(f);
    printf("code points: %d blocks, %ld code-point checks, %d mismatching blocks\n", blocks, cps, bad);
    assert_int_equal(bad, 0);
    assert_int_equal(blocks, 3 * 4344);   /* 4352 blocks minus the 8 of surrogates, 3 flag settings */
    for (int i = 0; i < 4; i++) miles_tokenizer_free(tk[i]);
}

/* ------------------------------------------------ encode (E and B lines) */

static void check_vec(const char *what, const int32_t *got, const int32_t *exp, int n, int line, int *bad)
{
    for (int i = 0; i < n; i++)
        if (got[i] != exp[i]) {
            if (*bad == 0) {
                printf("encode fixture line %d: %s differ at %d\n  expected:", line, what, i);
                for (int k = 0; k < n; k++) printf(" %d", exp[k]);
                printf("\n  got:     ");
                for (int k = 0; k < n; k++) printf(" %d", got[k]);
                printf("\n");
            }
            (*bad)++;
            return;
        }
}

/* Every E (single/pair) and B (batch) line of a fixture file, texts with
 * their lengths (so U+0000 inside is text); *n_e, *n_b count the cases. */
static int check_encode_file(MilesTokenizer *t, const char *path, int *n_e_out, int *n_b_out)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *line = NULL;
    size_t lcap = 0;
    int32_t *e_ids = NULL, *e_tt = NULL, *e_m = NULL;
    int c1 = 0, c2 = 0, c3 = 0, bad = 0, n_e = 0, n_b = 0, lineno = 0;
    while (getline(&line, &lcap, f) > 0) {
        lineno++;
        if (line[0] == '#') continue;
        char *fl[9];
        int nf = split_tabs(line, fl, 9);
        int L = atoi(fl[1]), pad = atoi(fl[2]);
        if (fl[0][0] == 'E') {
            assert_int_equal(nf, 8);
            size_t la, lb;
            char *a = unhex(fl[3], strlen(fl[3]), &la);
            char *b = strcmp(fl[4], "-") ? unhex(fl[4], strlen(fl[4]), &lb) : NULL;
            int n1 = parse_ints(fl[5], &e_ids, &c1), n2 = parse_ints(fl[6], &e_tt, &c2),
                n3 = parse_ints(fl[7], &e_m, &c3);
            assert_int_equal(n1, L);
            assert_int_equal(n2, L);
            assert_int_equal(n3, L);
            int32_t *ids = malloc(sizeof(int32_t) * (size_t)L * 3);
            int len = -1;
            /* HF got the texts decoded with 'replace'; our strings may hold
             * invalid bytes: same ids (U+FFFD is removed) */
            assert_int_equal(miles_tokenizer_encode(t, a, la, b, b ? lb : 0, L, pad, ids, ids + L, ids + 2 * L, &len),
                             MILES_OK);
            int real = 0;
            for (int i = 0; i < L; i++) real += e_m[i];
            if (len != real && bad == 0) printf("encode fixture line %d: len %d, expected %d\n", lineno, len, real);
            if (len != real) bad++;
            check_vec("input_ids", ids, e_ids, L, lineno, &bad);
            check_vec("token_type_ids", ids + L, e_tt, L, lineno, &bad);
            check_vec("attention_mask", ids + 2 * L, e_m, L, lineno, &bad);
            free(ids);
            free(a);
            free(b);
            n_e++;
        } else if (fl[0][0] == 'B') {
            assert_int_equal(nf, 8);
            int n = 1;
            for (char *p = fl[3]; *p; p++) n += *p == ',';
            char **texts = calloc((size_t)n, sizeof(char *));
            size_t *lens = calloc((size_t)n, sizeof(size_t));
            char *p = fl[3];
            for (int i = 0; i < n; i++) {
                char *e = strchr(p, ',');
                size_t hl = e ? (size_t)(e - p) : strlen(p);
                texts[i] = unhex(p, hl, &lens[i]);
                p = e ? e + 1 : p + hl;
            }
            int T = atoi(fl[4]);
            int n1 = parse_ints(fl[5], &e_ids, &c1), n2 = parse_ints(fl[6], &e_tt, &c2),
                n3 = parse_ints(fl[7], &e_m, &c3);
            assert_int_equal(n1, n * T);
            assert_int_equal(n2, n * T);
            assert_int_equal(n3, n * T);
            int32_t *ids = malloc(sizeof(int32_t) * (size_t)n * (size_t)L), *tt = malloc(sizeof(int32_t) * (size_t)n * (size_t)L),
                    *m = malloc(sizeof(int32_t) * (size_t)n * (size_t)L);
            int T_out = -1;
            assert_int_equal(miles_tokenizer_encode_batch(t, (const char *const *)texts, lens, n, L, pad, ids, tt, m, &T_out),
                             MILES_OK);
            if (T_out != T) {
                if (bad == 0) printf("encode fixture line %d: batch T %d, expected %d\n", lineno, T_out, T);
                bad++;
            } else {
                check_vec("batch input_ids", ids, e_ids, n * T, lineno, &bad);
                check_vec("batch token_type_ids", tt, e_tt, n * T, lineno, &bad);
                check_vec("batch attention_mask", m, e_m, n * T, lineno, &bad);
            }
            for (int i = 0; i < n; i++) free(texts[i]);
            free(texts);
            free(lens);
            free(ids);
            free(tt);
            free(m);
            n_b++;
        }
    }
    free(line);
    free(e_ids);
    free(e_tt);
    free(e_m);
    fclose(f);
    *n_e_out = n_e;
    *n_b_out = n_b;
    return bad;
}

static void test_encode(void **state)
{
    (void)state;
    MilesTokenizer *t = load_cfg('u');
    int n_e = 0, n_b = 0;
    int bad = check_encode_file(t, FIXDIR "tokenizer_encode.txt", &n_e, &n_b);
    printf("encode: %d single/pair cases, %d batches, %d mismatches\n", n_e, n_b, bad);
    assert_int_equal(bad, 0);
    assert_true(n_e >= 200 && n_b >= 20);
    /* texts holding U+0000: HF drops it (BertNormalizer cleaning), so do we;
     * "a\0b c" is [CLS] ab c [SEP] (tests/gen_tokenizer_nul.py) */
    bad = check_encode_file(t, FIXDIR "tokenizer_nul.txt", &n_e, &n_b);
    printf("encode with U+0000: %d single/pair cases, %d batches, %d mismatches\n", n_e, n_b, bad);
    assert_int_equal(bad, 0);
    assert_true(n_e >= 100 && n_b >= 4);
    miles_tokenizer_free(t);
}

/* A big batch (the OpenMP path, n >= 256) row by row against single encodes. */
static void test_batch_parallel(void **state)
{
    (void)state;
    MilesTokenizer *t = load_cfg('u');
    FILE *f = fopen(FIXDIR "tokenizer_cases.txt", "r");
    assert_non_null(f);
    char *line = NULL, **texts = NULL;
    size_t lcap = 0;
    int n = 0;
    while (getline(&line, &lcap, f) > 0) {
        char *fl[6];
        if (line[0] != 'T') continue;
        split_tabs(line, fl, 6);
        if (fl[1][0] != 'u') continue;
        size_t len;
        texts = realloc(texts, sizeof(char *) * (size_t)(n + 1));
        texts[n++] = unhex(fl[3], strlen(fl[3]), &len);
    }
    free(line);
    fclose(f);
    assert_true(n >= 2000);
    for (int pad = 0; pad < 2; pad++) {
        enum { L = 512 };   /* longer than every fixture string: T < L exercises the compaction */
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)n * L), *tt = malloc(sizeof(int32_t) * (size_t)n * L),
                *m = malloc(sizeof(int32_t) * (size_t)n * L);
        int T = -1, maxlen = 0, bad = 0;
        assert_int_equal(miles_tokenizer_encode_batch(t, (const char *const *)texts, NULL, n, L, pad, ids, tt, m, &T), MILES_OK);
        for (int i = 0; i < n; i++) {
            int32_t r[3 * L];
            int len;
            assert_int_equal(miles_tokenizer_encode(t, texts[i], strlen(texts[i]), NULL, 0, L, 0, r, r + L, r + 2 * L, &len), MILES_OK);
            if (len > maxlen) maxlen = len;
            for (int k = 0; k < T && k < L; k++)
                if (ids[(size_t)i * T + k] != r[k] || tt[(size_t)i * T + k] != r[L + k] || m[(size_t)i * T + k] != r[2 * L + k])
                    bad++;
        }
        printf("batch of %d (pad_to_max %d, max_len %d): T %d, %d mismatching entries\n", n, pad, L, T, bad);
        if (!pad) assert_true(T < L);
        assert_int_equal(T, pad ? L : maxlen);
        assert_int_equal(bad, 0);
        free(ids);
        free(tt);
        free(m);
    }
    for (int i = 0; i < n; i++) free(texts[i]);
    free(texts);
    miles_tokenizer_free(t);
}

/* ------------------------------------------------ vocab errors */

static char tmpdir[256];

static void write_file(const char *name, const char *data, size_t n)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static void expect_load_error(const char *path, int code, const char *needle1, const char *needle2)
{
    MilesTokenizer *t = (MilesTokenizer *)0x1;
    int st = miles_tokenizer_load(&t, path);
    const char *msg = miles_last_error();
    printf("  load %s -> %s: %s\n", path, miles_status_name(st), msg);
    assert_int_equal(st, code);
    assert_null(t);
    if (needle1) assert_non_null(strstr(msg, needle1));
    if (needle2) assert_non_null(strstr(msg, needle2));
}

static void test_vocab_errors(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/miles_tok_test_XXXXXX");
    assert_non_null(mkdtemp(tmpdir));
    char p[512];

    snprintf(p, sizeof p, "%s/missing.txt", tmpdir);
    expect_load_error(p, MILES_EMISSING, "missing.txt", NULL);
    expect_load_error(tmpdir, MILES_EMISSING, tmpdir, "vocab.txt");

    write_file("empty.txt", "", 0);
    snprintf(p, sizeof p, "%s/empty.txt", tmpdir);
    expect_load_error(p, MILES_EFORMAT, "empty.txt", "empty");

    const char dup[] = "[PAD]\n[UNK]\nhello\nworld\nhello\n";
    write_file("dup.txt", dup, sizeof dup - 1);
    snprintf(p, sizeof p, "%s/dup.txt", tmpdir);
    expect_load_error(p, MILES_EFORMAT, "dup.txt:5", "duplicate token \"hello\" (first at line 3)");

    const char nounk[] = "[PAD]\nhello\n";
    write_file("nounk.txt", nounk, sizeof nounk - 1);
    snprintf(p, sizeof p, "%s/nounk.txt", tmpdir);
    expect_load_error(p, MILES_EFORMAT, "nounk.txt", "[UNK]");

    const char bad8[] = "[UNK]\nab\xff\n";
    write_file("bad8.txt", bad8, sizeof bad8 - 1);
    snprintf(p, sizeof p, "%s/bad8.txt", tmpdir);
    expect_load_error(p, MILES_EFORMAT, "bad8.txt:2", "UTF-8");

    /* malformed tokenizer_config.json in a directory */
    char sub[512];
    snprintf(sub, sizeof sub, "%s/d", tmpdir);
    assert_int_equal(mkdir(sub, 0700), 0);
    const char v[] = "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\nhello\r\n##lo\r\nhel\r\nworld";   /* CRLF, no final newline */
    write_file("d/vocab.txt", v, sizeof v - 1);
    write_file("d/tokenizer_config.json", "{\"do_lower_case\": tru", 21);
    expect_load_error(sub, MILES_EFORMAT, "tokenizer_config.json", "JSON");

    /* a good config: cased, CRLF vocab, final line without newline */
    write_file("d/tokenizer_config.json", "{\"do_lower_case\": false}", 24);
    MilesTokenizer *t = NULL;
    assert_int_equal(miles_tokenizer_load(&t, sub), MILES_OK);
    assert_int_equal(miles_tokenizer_vocab_size(t), 8);
    assert_int_equal(miles_tokenizer_token_to_id(t, "world"), 7);
    assert_int_equal(miles_tokenizer_token_to_id(t, "hello\r"), -1);
    int lo, sa, cj;
    miles_tokenizer_flags(t, &lo, &sa, &cj);
    assert_int_equal(lo, 0);
    assert_int_equal(sa, 0);
    assert_int_equal(cj, 1);
    int32_t ids[8];
    int n;
    assert_int_equal(miles_tokenizer_tokenize(t, "hello Hello hello[SEP]", 22, ids, 8, &n), MILES_OK);
    assert_int_equal(n, 4);                 /* cased: "Hello" is unknown */
    assert_int_equal(ids[0], 4);
    assert_int_equal(ids[1], 1);
    assert_int_equal(ids[2], 4);
    assert_int_equal(ids[3], 3);
    assert_int_equal(miles_tokenizer_tokenize(t, "hello hello", 11, ids, 8, &n), MILES_OK);
    assert_int_equal(n, 2);
    miles_tokenizer_free(t);

    /* tokenizer.json whose vocab disagrees with vocab.txt */
    const char tj[] = "{\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true},"
                      "\"model\":{\"type\":\"WordPiece\",\"vocab\":{\"[PAD]\":0,\"[UNK]\":2}}}";
    write_file("d/tokenizer.json", tj, sizeof tj - 1);
    expect_load_error(sub, MILES_EFORMAT, "tokenizer.json", "[UNK]");
    const char tj2[] = "{\"normalizer\":{\"type\":\"NFKC\"}}";
    write_file("d/tokenizer.json", tj2, sizeof tj2 - 1);
    expect_load_error(sub, MILES_EUNSUPPORTED, "tokenizer.json", "NFKC");

    /* tokenizer.json describing another pipeline, or contradicting vocab.txt:
     * refused naming the file and what differs */
    static const struct { const char *json; int code; const char *needle; } tjs[] = {
        {"{\"pre_tokenizer\":{\"type\":\"ByteLevel\"}}", MILES_EUNSUPPORTED, "pre_tokenizer ByteLevel"},
        {"{\"pre_tokenizer\":{\"kind\":1}}", MILES_EUNSUPPORTED, "pre_tokenizer (without a type) is not supported"},
        {"{\"model\":{\"type\":\"BPE\"}}", MILES_EUNSUPPORTED, "model type BPE is not supported"},
        {"{\"model\":{\"type\":\"WordPiece\",\"continuing_subword_prefix\":\"@@\"}}", MILES_EUNSUPPORTED,
         "continuing_subword_prefix \"@@\""},
        {"{\"model\":{\"max_input_chars_per_word\":0}}", MILES_EFORMAT, "max_input_chars_per_word 0 out of range"},
        {"{\"model\":{\"unk_token\":\"<unk>\"}}", MILES_EFORMAT, "unk_token \"<unk>\" is not in the vocabulary"},
        {"{\"model\":{\"vocab\":{\"[PAD]\":0,\"[UNK]\":1}}}", MILES_EFORMAT, "model.vocab has 2 tokens, vocab.txt 8"},
        {"{\"added_tokens\":[{\"content\":\"[CLS]\"}]}", MILES_EFORMAT, "added_tokens entry without content/id"},
        {"{\"added_tokens\":[{\"content\":\"[CLS]\",\"id\":2,\"lstrip\":true}]}", MILES_EUNSUPPORTED,
         "\"[CLS]\" uses normalized/lstrip/rstrip/single_word"},
        {"{\"added_tokens\":[{\"content\":\"[CLS]\",\"id\":3}]}", MILES_EFORMAT,
         "added token \"[CLS]\" id 3 is not that vocab.txt entry"},
        {"{\"added_tokens\":[{\"content\":\"[CLS]\",\"id\":99}]}", MILES_EFORMAT, "id 99 is not that vocab.txt entry"},
    };
    for (size_t i = 0; i < sizeof tjs / sizeof *tjs; i++) {
        write_file("d/tokenizer.json", tjs[i].json, strlen(tjs[i].json));
        expect_load_error(sub, tjs[i].code, "tokenizer.json", tjs[i].needle);
    }
    /* one that agrees: its max_input_chars_per_word (4) is used: "hello" is [UNK], "hel" is not */
    const char tjok[] = "{\"normalizer\":{\"type\":\"BertNormalizer\",\"clean_text\":true},"
                        "\"pre_tokenizer\":{\"type\":\"BertPreTokenizer\"},"
                        "\"model\":{\"type\":\"WordPiece\",\"unk_token\":{\"content\":\"[UNK]\"},"
                        "\"continuing_subword_prefix\":\"##\",\"max_input_chars_per_word\":4,"
                        "\"vocab\":{\"[PAD]\":0,\"[UNK]\":1,\"[CLS]\":2,\"[SEP]\":3,\"hello\":4,\"##lo\":5,\"hel\":6,\"world\":7}},"
                        "\"added_tokens\":[{\"content\":\"[CLS]\",\"id\":2,\"special\":true}]}";
    write_file("d/tokenizer.json", tjok, sizeof tjok - 1);
    assert_int_equal(miles_tokenizer_load(&t, sub), MILES_OK);
    assert_int_equal(miles_tokenizer_tokenize(t, "hello hel", 9, ids, 8, &n), MILES_OK);
    assert_int_equal(n, 2);
    assert_int_equal(ids[0], 1);
    assert_int_equal(ids[1], 6);
    miles_tokenizer_free(t);
    /* tokenizer_config.json that is JSON but not an object */
    snprintf(p, sizeof p, "%s/d/tokenizer.json", tmpdir);
    unlink(p);
    write_file("d/tokenizer_config.json", "[1, 2]", 6);
    expect_load_error(sub, MILES_EFORMAT, "tokenizer_config.json", "not a JSON object");

    /* a vocabulary without [CLS] / [SEP] loads (tokenize works) but cannot encode */
    const char nocls[] = "[PAD]\n[UNK]\nhello\n";
    write_file("nocls.txt", nocls, sizeof nocls - 1);
    snprintf(p, sizeof p, "%s/nocls.txt", tmpdir);
    assert_int_equal(miles_tokenizer_load(&t, p), MILES_OK);
    int32_t tt[8], mk[8];
    assert_int_equal(miles_tokenizer_encode(t, "hello", 5, NULL, 0, 8, 0, ids, tt, mk, &n), MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "[CLS]/[SEP] not in the vocabulary"));
    miles_tokenizer_free(t);

    const char *rm[] = { "empty.txt", "dup.txt", "nounk.txt", "bad8.txt", "nocls.txt", "d/vocab.txt",
                         "d/tokenizer_config.json", "d/tokenizer.json" };
    for (size_t i = 0; i < sizeof rm / sizeof *rm; i++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, rm[i]);
        unlink(p);
    }
    rmdir(sub);
    rmdir(tmpdir);
}

/* ------------------------------------------------ invalid UTF-8, robustness */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 16);
}

static void test_invalid_utf8(void **state)
{
    (void)state;
    MilesTokenizer *t = load_cfg('u');
    int V = miles_tokenizer_vocab_size(t);
    static const char *alphabet[] = { "a", "b", "Z", " ", ".", "\xc3\xa9", "\xe4\xb8\xad", "\xf0\x9f\x94\xa5",
                                      "e\xcc\x81", "##", "'", "\xd8\xb3", "\xe0\xb8\x81", "9" };
    char buf[700], clean[700];
    int32_t ids[64], ids2[64];
    long checked = 0, equal = 0;
    for (int it = 0; it < 20000; it++) {
        /* random bytes: must never crash, ids in range, n >= written */
        int len = (int)(rnd() % 300);
        for (int i = 0; i < len; i++) {
            uint32_t r = rnd();
            buf[i] = (char)((r & 3) ? (r >> 8) : 0x80 | (r >> 8));
        }
        int n = -1;
        assert_int_equal(miles_tokenizer_tokenize(t, buf, (size_t)len, ids, (int)(rnd() % 64), &n), MILES_OK);
        assert_true(n >= 0);
        /* valid text with 0xFF/0x80/truncated-lead bytes inserted == the text without them */
        int cl = 0, bl = 0;
        int parts = (int)(rnd() % 20);
        for (int k = 0; k < parts; k++) {
            if (rnd() % 4 == 0) {
                static const char *junk[] = { "\xff", "\x80", "\xc3", "\xe4\xb8", "\xf0\x9f\x94", "\xed\xa0\x80" };
                const char *j = junk[rnd() % 6];
                memcpy(buf + bl, j, strlen(j));
                bl += (int)strlen(j);
            }
            const char *a = alphabet[rnd() % (sizeof alphabet / sizeof *alphabet)];
            size_t al = strlen(a);
            memcpy(buf + bl, a, al);
            memcpy(clean + cl, a, al);
            bl += (int)al;
            cl += (int)al;
        }
        int n1, n2;
        assert_int_equal(miles_tokenizer_tokenize(t, buf, (size_t)bl, ids, 64, &n1), MILES_OK);
        assert_int_equal(miles_tokenizer_tokenize(t, clean, (size_t)cl, ids2, 64, &n2), MILES_OK);
        assert_int_equal(n1, n2);
        for (int i = 0; i < n1 && i < 64; i++) {
            assert_true(ids[i] >= 0 && ids[i] < V);
            assert_int_equal(ids[i], ids2[i]);
        }
        checked++;
        equal++;
    }
    /* every prefix of a multi-byte string (truncated sequences at the end) */
    const char *s = "h\xc3\xa9llo \xe4\xb8\xad\xe6\x96\x87 \xf0\x9f\x94\xa5 w\xcc\x81orld";
    for (size_t k = 0; k <= strlen(s); k++) {
        int n;
        assert_int_equal(miles_tokenizer_tokenize(t, s, k, ids, 64, &n), MILES_OK);
        assert_true(n >= 0 && n < 64);
    }
    printf("invalid UTF-8: %ld random byte strings, %ld junk-insertion equalities held\n", checked, equal);
    miles_tokenizer_free(t);
}

/* ------------------------------------------------ API edges, hash */

static void test_api(void **state)
{
    (void)state;
    MilesTokenizer *t = load_cfg('u');
    assert_int_equal(miles_tokenizer_vocab_size(t), 30522);
    assert_int_equal(miles_tokenizer_special_id(t, "cls"), 101);
    assert_int_equal(miles_tokenizer_special_id(t, "sep"), 102);
    assert_int_equal(miles_tokenizer_special_id(t, "pad"), 0);
    assert_int_equal(miles_tokenizer_special_id(t, "unk"), 100);
    assert_int_equal(miles_tokenizer_special_id(t, "mask"), 103);
    assert_int_equal(miles_tokenizer_special_id(t, "bos"), -1);
    assert_int_equal(miles_tokenizer_token_to_id(t, "[CLS]"), 101);
    assert_int_equal(miles_tokenizer_token_to_id(t, "##ing"), 2075);
    assert_int_equal(miles_tokenizer_token_to_id(t, "ing"), 13749);
    assert_int_equal(miles_tokenizer_token_to_id(t, "no such token"), -1);
    assert_string_equal(miles_tokenizer_id_to_token(t, 101), "[CLS]");
    assert_string_equal(miles_tokenizer_id_to_token(t, 30521), "##～");
    assert_null(miles_tokenizer_id_to_token(t, 30522));
    assert_null(miles_tokenizer_id_to_token(t, -1));

    /* cap smaller than the count: writes cap, reports the total */
    const char *s = "the quick brown fox jumps over the lazy dog";
    int32_t ids[4] = { -7, -7, -7, -7 };
    int n;
    assert_int_equal(miles_tokenizer_tokenize(t, s, strlen(s), ids, 3, &n), MILES_OK);
    assert_int_equal(n, 9);
    assert_int_equal(ids[0], 1996);
    assert_int_equal(ids[3], -7);
    assert_int_equal(miles_tokenizer_tokenize(t, s, strlen(s), NULL, 0, &n), MILES_OK);
    assert_int_equal(n, 9);
    assert_int_equal(miles_tokenizer_tokenize(t, NULL, 0, NULL, 0, &n), MILES_OK);
    assert_int_equal(n, 0);
    assert_int_equal(miles_tokenizer_tokenize(t, s, strlen(s), NULL, 5, &n), MILES_EINVAL);
    /* embedded NUL with an explicit length: removed like HF */
    assert_int_equal(miles_tokenizer_tokenize(t, "ab\0cd", 5, ids, 4, &n), MILES_OK);
    int32_t ref[4];
    int nr;
    assert_int_equal(miles_tokenizer_tokenize(t, "abcd", 4, ref, 4, &nr), MILES_OK);
    assert_int_equal(n, nr);
    assert_int_equal(ids[0], ref[0]);

    int32_t e[8], tt[8], m[8];
    int len;
    assert_int_equal(miles_tokenizer_encode(t, "hi", 2, NULL, 0, 1, 0, e, tt, m, &len), MILES_EINVAL);
    assert_int_equal(miles_tokenizer_encode(t, "hi", 2, "there", 5, 2, 0, e, tt, m, &len), MILES_EINVAL);
    assert_int_equal(miles_tokenizer_encode(t, "hi", 2, NULL, 0, 2, 1, e, NULL, NULL, &len), MILES_OK);
    assert_int_equal(len, 2);
    assert_int_equal(e[0], 101);
    assert_int_equal(e[1], 102);
    assert_int_equal(miles_tokenizer_encode(t, "hello world", 11, "again", 5, 8, 1, e, tt, m, &len), MILES_OK);
    assert_int_equal(len, 6);
    int32_t want_ids[8] = { 101, 7592, 2088, 102, 2153, 102, 0, 0 }, want_tt[8] = { 0, 0, 0, 0, 1, 1, 0, 0 };
    for (int i = 0; i < 8; i++) {
        assert_int_equal(e[i], want_ids[i]);
        assert_int_equal(tt[i], want_tt[i]);
        assert_int_equal(m[i], i < 6);
    }
    const char *texts[2] = { "a", NULL };
    int T;
    assert_int_equal(miles_tokenizer_encode_batch(t, texts, NULL, 2, 8, 0, e, tt, m, &T), MILES_EINVAL);
    assert_int_equal(miles_tokenizer_encode_batch(t, texts, NULL, 0, 8, 0, e, tt, m, &T), MILES_OK);
    assert_int_equal(T, 0);

    /* hash: stable across loads, sensitive to flags */
    char h1[17], h2[17], h3[17];
    MilesTokenizer *t2 = load_cfg('u'), *tc = load_cfg('c');
    miles_tokenizer_hash(t, h1);
    miles_tokenizer_hash(t2, h2);
    miles_tokenizer_hash(tc, h3);
    printf("hash uncased %s, cased %s\n", h1, h3);
    assert_string_equal(h1, h2);
    assert_string_not_equal(h1, h3);
    assert_int_equal((int)strlen(h1), 16);
    miles_tokenizer_free(t2);
    miles_tokenizer_free(tc);
    miles_tokenizer_free(t);
    miles_tokenizer_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_strings),
        cmocka_unit_test(test_golden_model_dir),
        cmocka_unit_test(test_all_codepoints),
        cmocka_unit_test(test_encode),
        cmocka_unit_test(test_batch_parallel),
        cmocka_unit_test(test_vocab_errors),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_api),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
