/*
 * bench_tokenizer — single-thread tokenizer throughput over the golden fixture
 * strings (tests/fixtures/tokenizer_cases.txt, the "u" set: YouTube titles,
 * TikTok captions, edge cases), repeated to ~1 s per measurement.
 *
 *   build/bench/bench_tokenizer [VOCAB_DIR_OR_FILE] [CASES_FILE]
 *
 * Compare with bench/bench_tokenizer_hf.py (same strings, HF tokenizers).
 * Run from the repository root with OMP_NUM_THREADS=1.
 */
#include "miles.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int hexval(int c) { return c <= '9' ? c - '0' : c - 'a' + 10; }

int main(int argc, char **argv)
{
    const char *vocab = argc > 1 ? argv[1] : "tests/fixtures/tokenizer_vocab.txt";
    const char *cases = argc > 2 ? argv[2] : "tests/fixtures/tokenizer_cases.txt";
    MilesTokenizer *t;
    if (miles_tokenizer_load(&t, vocab) != MILES_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", miles_last_error());
        return 1;
    }
    FILE *f = fopen(cases, "r");
    if (!f) { perror(cases); return 1; }
    char **texts = NULL;
    size_t *lens = NULL, n = 0, cap = 0, bytes = 0;
    char *line = NULL;
    size_t lcap = 0;
    while (getline(&line, &lcap, f) > 0) {
        if (strncmp(line, "T\tu\t", 4) != 0) continue;
        char *h = strchr(line + 4, '\t') + 1;
        char *e = strchr(h, '\t');
        size_t hl = e ? (size_t)(e - h) : strcspn(h, "\n");
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            texts = realloc(texts, cap * sizeof *texts);
            lens = realloc(lens, cap * sizeof *lens);
        }
        texts[n] = malloc(hl / 2 + 1);
        for (size_t i = 0; i < hl / 2; i++) texts[n][i] = (char)(hexval(h[2 * i]) * 16 + hexval(h[2 * i + 1]));
        texts[n][hl / 2] = '\0';
        lens[n] = hl / 2;
        bytes += lens[n];
        n++;
    }
    free(line);
    fclose(f);
    int32_t ids[4096];
    /* 1. tokenize() one string at a time */
    long reps = 0, toks = 0;
    double t0 = now(), el;
    do {
        for (size_t i = 0; i < n; i++) {
            int k;
            miles_tokenizer_tokenize(t, texts[i], lens[i], ids, 4096, &k);
            toks += k;
        }
        reps++;
    } while ((el = now() - t0) < 1.0);
    printf("miles tokenize (1 thread): %zu strings x %ld reps in %.3f s: %.2f M tokens/s, %.0f k strings/s, %.1f MB/s\n",
           n, reps, el, toks / el / 1e6, n * reps / el / 1e3, bytes * reps / el / 1e6);
    /* 2. encode_batch, max_len 128, chunks of 64 rows (below the OpenMP threshold) */
    enum { CH = 64, L = 128 };
    static int32_t bi[CH * L], bt[CH * L], bm[CH * L];
    reps = 0;
    long real = 0;
    t0 = now();
    do {
        for (size_t i = 0; i < n; i += CH) {
            int m = (int)(n - i < CH ? n - i : CH), T;
            miles_tokenizer_encode_batch(t, (const char *const *)texts + i, NULL, m, L, 0, bi, bt, bm, &T);
            for (int r = 0; r < m * T; r++) real += bm[r];
        }
        reps++;
    } while ((el = now() - t0) < 1.0);
    printf("miles encode_batch (max_len 128, 64 rows, 1 thread): %.2f M tokens/s, %.0f k strings/s\n",
           real / el / 1e6, n * reps / el / 1e3);
    for (size_t i = 0; i < n; i++) free(texts[i]);
    free(texts);
    free(lens);
    miles_tokenizer_free(t);
    return 0;
}
