/*
 * test_serve.c — HTTP tests of miles-serve (and miles-predict) against a
 * server started on loopback.  Setup builds a real checkpoint (synthetic CSV
 * -> prepare -> a few training steps), then runs tests/test_serve.sh, which
 * starts $MILES_BIN/miles-serve on a free port and checks every endpoint, every
 * error status, batching, concurrency, and that the SQLite store survives a
 * restart, in two parts (two tests here).  The script exits non-zero on any
 * mismatch.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "miles.h"
#include "helpers.h"

static char g_dir[64];
static char g_ckpt[300];
static char g_csv[256];

static int setup(void **state) {
    (void)state;
    const char *vocab = test_find_vocab();
    if (!vocab) return -1;
    char vocab_abs[4096];
    if (!realpath(vocab, vocab_abs)) return -1;
    snprintf(g_dir, sizeof g_dir, "/tmp/miles_serve_XXXXXX");
    if (!mkdtemp(g_dir)) return -1;
    snprintf(g_csv, sizeof g_csv, "%s/synth.csv", g_dir);
    char prep_path[256];
    snprintf(prep_path, sizeof prep_path, "%s/data.milesdat", g_dir);
    if (miles_synth_write_csv(g_csv, 1500, 3) != MILES_OK) return -1;
    MilesPrepareOptions po;
    miles_prepare_options_default(&po);
    po.vocab_dir = vocab_abs;
    po.max_len = 32;
    po.language = "any";
    MilesPrepared *prep = NULL;
    if (miles_data_prepare(g_csv, prep_path, &po, NULL) != MILES_OK || miles_prepared_open(&prep, prep_path) != MILES_OK) {
        fprintf(stderr, "%s\n", miles_last_error());
        return -1;
    }
    MilesTokenizer *tok = NULL;
    if (miles_tokenizer_load(&tok, vocab) != MILES_OK) return -1;
    MilesConfig cfg;
    miles_config_preset(&cfg, "miles", "tiny");
    cfg.vocab_size = miles_tokenizer_vocab_size(tok);
    miles_tokenizer_free(tok);
    MilesModel *m = NULL;
    if (miles_model_build(&m, &cfg) != MILES_OK || miles_model_init_random(m, 5, 0.02f) != MILES_OK) return -1;
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    char out[256];
    snprintf(out, sizeof out, "%s/run", g_dir);
    tc.batch_size = 32;
    tc.max_len = 32;
    tc.lr = 1e-3f;
    tc.warmup_steps = 2;
    tc.max_steps = 12;
    tc.eval_every = 6;
    tc.out_dir = out;
    tc.vocab_dir = vocab_abs;
    int s = miles_train_run(m, prep, &tc, NULL);
    miles_model_free(m);
    miles_prepared_free(prep);
    if (s != MILES_OK) { fprintf(stderr, "train: %s\n", miles_last_error()); return -1; }
    snprintf(g_ckpt, sizeof g_ckpt, "%s/best.safetensors", out);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    if (getenv("MILES_KEEP")) { printf("kept %s\n", g_dir); return 0; }
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* tests/test_serve.sh PART: "scores" (the answers, their bits against
 * miles-predict, alone and batched: what `make determinism` runs on every BLAS
 * and thread setting) or "errors_limits" (statuses, limits, access, slow
 * clients, failed starts: the same on any BLAS and thread count). */
static void run_part(const char *part) {
    const char *bin = test_bin_dir();
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "MILES_BIN=%s bash tests/test_serve.sh %s %s %s %s", bin, g_ckpt, g_csv, g_dir, part);
    int rc = system(cmd);
    int code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 255;
    printf("tests/test_serve.sh ... %s: exit status %d\n", part, code);
    assert_int_equal(code, 0);
}

static void test_http_scores(void **state) {
    (void)state;
    run_part("scores");
}

static void test_http_errors_limits(void **state) {
    (void)state;
    run_part("errors_limits");
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_http_scores), cmocka_unit_test(test_http_errors_limits)};
    return cmocka_run_group_tests(tests, setup, teardown);
}
