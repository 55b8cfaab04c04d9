/*
 * fuzz_tokenizer — libFuzzer target for the BERT WordPiece tokenizer.
 *
 *   make fuzz-run FUZZ_ONLY=tokenizer FUZZ_TIME=300   (Makefile: build, seeds, dictionary)
 *
 * Input: the first byte picks the flags and the cap; the rest is split at the
 * first 0xFE byte (if any) into text a and pair b.  Checks: no crash/UB/leak,
 * ids in range, n >= 0, tokenize() agrees with itself at a smaller cap, the
 * encode() layout ([CLS] ... [SEP], mask/type ids) is consistent, and
 * inserting invalid bytes is the same as leaving them out.
 */
#include "miles.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static MilesTokenizer *tk[4];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc; (void)argv;
    const char *v = getenv("MILES_FUZZ_VOCAB");
    if (!v) v = "tests/fixtures/tokenizer_vocab.txt";
    int flags[4][2] = { { -1, -1 }, { 0, 0 }, { 1, 0 }, { 0, 1 } };
    for (int i = 0; i < 4; i++)
        if (miles_tokenizer_load_opts(&tk[i], v, flags[i][0], flags[i][1], -1) != MILES_OK) {
            fprintf(stderr, "fuzz_tokenizer: %s (set MILES_FUZZ_VOCAB)\n", miles_last_error());
            abort();
        }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    const MilesTokenizer *t = tk[data[0] & 3];
    int cap = (data[0] >> 2) & 63;
    data++, size--;
    int V = miles_tokenizer_vocab_size(t);
    int32_t *ids = malloc(sizeof(int32_t) * 64), *ids2 = malloc(sizeof(int32_t) * 64);
    int n = -1, n2 = -1;
    if (miles_tokenizer_tokenize(t, (const char *)data, size, ids, 64, &n) != MILES_OK || n < 0) abort();
    for (int i = 0; i < n && i < 64; i++)
        if (ids[i] < 0 || ids[i] >= V) abort();
    if (miles_tokenizer_tokenize(t, (const char *)data, size, ids2, cap, &n2) != MILES_OK || n2 != n) abort();
    for (int i = 0; i < cap && i < n; i++)
        if (ids2[i] != ids[i]) abort();

    /* encode a (and b): NUL-terminated copies */
    const uint8_t *sep = memchr(data, 0xFE, size);
    size_t la = sep ? (size_t)(sep - data) : size;
    char *a = malloc(la + 1), *b = NULL;
    memcpy(a, data, la);
    a[la] = 0;
    if (sep) {
        size_t lb = size - la - 1;
        b = malloc(lb + 1);
        memcpy(b, sep + 1, lb);
        b[lb] = 0;
    }
    int L = 3 + (cap % 40);
    int32_t *e = malloc(sizeof(int32_t) * (size_t)L * 3);
    int len = -1;
    if (miles_tokenizer_encode(t, a, strlen(a), b, b ? strlen(b) : 0, L, 1, e, e + L, e + 2 * L, &len) != MILES_OK) abort();
    if (len < 2 || len > L || e[0] != miles_tokenizer_special_id(t, "cls") ||
        e[len - 1] != miles_tokenizer_special_id(t, "sep"))
        abort();
    for (int i = 0; i < L; i++) {
        if (e[2 * L + i] != (i < len)) abort();
        if (i >= len && (e[i] != miles_tokenizer_special_id(t, "pad") || e[L + i] != 0)) abort();
        if (e[L + i] && !b) abort();
    }
    /* invalid bytes vanish: a with 0xFF after every ASCII letter == a.  Not
     * near '[' (an added token like [MASK] must not be broken up) */
    if (!memchr(a, '[', la) && la < 4096) {
        char *w = malloc(2 * la + 1);
        size_t k = 0;
        for (size_t i = 0; i < la; i++) {
            w[k++] = a[i];
            if ((a[i] | 0x20) >= 'a' && (a[i] | 0x20) <= 'z') w[k++] = (char)0xFF;
        }
        int n3 = -1, n4 = -1;
        miles_tokenizer_tokenize(t, a, la, ids, 64, &n3);
        miles_tokenizer_tokenize(t, w, k, ids2, 64, &n4);
        if (n3 != n4) abort();
        for (int i = 0; i < n3 && i < 64; i++)
            if (ids[i] != ids2[i]) abort();
        free(w);
    }
    free(e);
    free(a);
    free(b);
    free(ids);
    free(ids2);
    return 0;
}
