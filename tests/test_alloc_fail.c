/*
 * test_alloc_fail.c — allocation-failure injection over the parsers and
 * loaders (issue 18).  Each operation is run once to count its library
 * allocations (miles_malloc / miles_calloc / miles_aligned_alloc), then once
 * per allocation with exactly that one failing (miles_alloc_fail_after, an
 * internal test hook): every run must return MILES_ENOMEM (not another
 * status, not a crash), leave no temp file behind, and leak nothing (run
 * under ASan: `make asan`).  Allocations made with plain malloc/strdup or
 * inside cJSON are not reached by the hook.
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
#include "internal.h"
#include "csv_internal.h"
#include "train_internal.h"
#include "helpers.h"

#define VOCAB "tests/fixtures/tokenizer_vocab.txt"
#define ST_FIX "tests/fixtures/st_python.safetensors"
#define CKPT_FIX "tests/fixtures/export_tiny.safetensors"
#define YTDLP_FIX "tests/fixtures/ytdlp_lines.json"

static char g_dir[128], g_csv[300], g_prep[300], g_out[300], g_ckpt[300], g_tt[300];

static int setup(void **state) {
    (void)state;
    if (test_mkdtemp(g_dir, sizeof g_dir, "allocfail") != 0) return -1;
    snprintf(g_csv, sizeof g_csv, "%s/in.csv", g_dir);
    snprintf(g_prep, sizeof g_prep, "%s/data.milesdat", g_dir);
    snprintf(g_out, sizeof g_out, "%s/out", g_dir);
    snprintf(g_ckpt, sizeof g_ckpt, "%s/ck.safetensors", g_dir);
    snprintf(g_tt, sizeof g_tt, "%s/trending.json", g_dir);
    if (miles_synth_write_csv(g_csv, 120, 3) != MILES_OK) return -1;
    MilesPrepareOptions po;
    miles_prepare_options_default(&po);
    po.vocab_dir = VOCAB;
    po.max_len = 16;
    po.language = "any";
    if (miles_data_prepare(g_csv, g_prep, &po, NULL) != MILES_OK) { fprintf(stderr, "%s\n", miles_last_error()); return -1; }
    FILE *f = fopen(g_tt, "wb");
    fputs("{\"collector\": [{\"id\": \"1\", \"text\": \"hello #a\", \"playCount\": 10, \"diggCount\": \"1.2K\","
          " \"createTime\": 1608214517, \"authorMeta\": {\"name\": \"x\"}, \"hashtags\": [{\"name\": \"a\"}],"
          " \"videoMeta\": {\"duration\": 12}},"
          " {\"id\": \"2\", \"text\": \"world\", \"playCount\": 99, \"createTime\": 1608314517,"
          " \"authorMeta\": {\"name\": \"x\"}}]}", f);
    fclose(f);
    return 0;
}
static int teardown(void **state) {
    (void)state;
    test_rm_rf(g_dir);
    return 0;
}

/* ------------------------------------------------------------ operations */

static int op_safetensors(void) {
    MilesSafetensors *st = NULL;
    int s = miles_safetensors_open(&st, ST_FIX);
    if (s == MILES_OK && miles_safetensors_count(st) > 0) {
        size_t n;
        miles_safetensors_info(st, 0, NULL, NULL, NULL, &n);
    }
    miles_safetensors_close(st);
    return s;
}

static int op_checkpoint(void) {
    MilesModel *m = NULL;
    int s = miles_checkpoint_load_model(&m, CKPT_FIX);
    miles_model_free(m);
    return s;
}

/* save (the writer, with its CRCs) and load again */
static int op_checkpoint_roundtrip(void) {
    MilesModel *m = NULL;
    int s = miles_checkpoint_load_model(&m, CKPT_FIX);
    if (s != MILES_OK) return s;
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    MilesTrainState st = {0};
    st.threshold = 0.5;
    s = miles_ckpt_save(g_ckpt, m, NULL, &st, &tc, NULL, NULL);
    miles_model_free(m);
    m = NULL;
    if (s == MILES_OK) s = miles_checkpoint_load_model(&m, g_ckpt);
    miles_model_free(m);
    return s;
}

static int op_tokenizer(void) {
    MilesTokenizer *t = NULL;
    int s = miles_tokenizer_load(&t, VOCAB);
    if (s == MILES_OK) {
        const char *text = "Hello world, this is a test \xF0\x9F\x98\x80";
        int32_t ids[16], mask[16];
        int len;
        s = miles_tokenizer_encode(t, text, strlen(text), NULL, 0, 16, 1, ids, NULL, mask, &len);
    }
    miles_tokenizer_free(t);
    return s;
}

static int op_csv_features(void) {
    static const char text[] = "title,views,likes,publish_date_approx,upload_hour\n"
                               "\"a, b\",10,1,2025-01-02,3\nc \xF0\x9F\x98\x80,12,2,2025-02-28,4\n";
    MilesRecordReader *rd = NULL;
    int s = miles_records_open_csv_memory(&rd, "mem.csv", text, sizeof text - 1);
    MilesRecord rec;
    int r;
    while (s == MILES_OK && (r = miles_records_next(rd, &rec)) == 1) {
        double raw[MILES_NUM_FEATURES];
        uint32_t av;
        s = miles_features_compute(&rec, raw, &av);
    }
    if (s == MILES_OK && r < 0) s = r;
    miles_records_close(rd);
    return s;
}

static int op_prepare(void) {
    MilesPrepareOptions po;
    miles_prepare_options_default(&po);
    po.vocab_dir = VOCAB;
    po.max_len = 16;
    po.language = "any";
    char out[320];
    snprintf(out, sizeof out, "%s/p2.milesdat", g_dir);
    int s = miles_data_prepare(g_csv, out, &po, NULL);
    unlink(out);
    return s;
}

static int op_prepared_open(void) {
    MilesPrepared *p = NULL;
    int s = miles_prepared_open(&p, g_prep);
    MilesScaler *sc = NULL;
    if (s == MILES_OK) s = miles_scaler_from_json(&sc, miles_prepared_scaler_json(p));
    miles_scaler_free(sc);
    miles_prepared_free(p);
    return s;
}

static int op_ytdlp(void) {
    int s = miles_adapter_convert("ytdlp", YTDLP_FIX, g_out, NULL, 0);
    unlink(g_out);
    return s;
}

static int op_tiktok(void) {
    int s = miles_adapter_convert("tiktok2020", g_tt, g_out, NULL, 0);
    unlink(g_out);
    return s;
}

/* the trainer's epoch order with length bucketing: a failed scratch
 * allocation is an error, never a silent plain order (another run) */
static int op_epoch_order(void) {
    int32_t len[300];
    int64_t order[300];
    for (int i = 0; i < 300; i++) len[i] = 3 + (i * 7) % 20;
    MilesDataset d;
    memset(&d, 0, sizeof d);
    d.n = 300;
    d.max_len = 32;
    d.lengths = len;
    return miles_train_epoch_order(order, &d, 7, 1, 4, 1);
}

/* ------------------------------------------------------------ the driver */

static void run_op(const char *name, int (*op)(void)) {
    miles_alloc_fail_after(-1);
    OK(op());
    long n = miles_alloc_calls();
    assert_true(n > 0);
    /* every failure point when there are few, else an even sample of 400 */
    long stride = n > 400 ? n / 400 : 1;
    int tried = 0, enomem = 0, other = 0, tolerated = 0;
    for (long k = 0; k < n; k += stride) {
        miles_alloc_fail_after(k);
        int s = op();
        long made = miles_alloc_calls();
        miles_alloc_fail_after(-1);
        tried++;
        if (made <= k) continue;   /* the run took another path and never reached point k */
        if (s == MILES_ENOMEM) enomem++;
        else if (s == MILES_OK) tolerated++;
        else {
            other++;
            printf("  %s: failure at allocation %ld gave %s: %s\n", name, k, miles_status_name(s), miles_last_error());
        }
        if (test_count_entries(g_dir, ".tmp.") != 0) fail_msg("%s: allocation %ld failed: a temp file is left", name, k);
    }
    printf("%-22s %5ld allocations, %3d failure points tried: %d MILES_ENOMEM, %d tolerated, %d other\n", name, n,
           tried, enomem, tolerated, other);
    assert_int_equal(other, 0);
    assert_int_equal(tolerated, 0);
    assert_true(enomem > 0);
}

static void test_safetensors(void **s) { (void)s; run_op("safetensors open", op_safetensors); }
static void test_checkpoint(void **s) { (void)s; run_op("checkpoint load", op_checkpoint); }
static void test_checkpoint_roundtrip(void **s) { (void)s; run_op("checkpoint save+load", op_checkpoint_roundtrip); }
static void test_tokenizer(void **s) { (void)s; run_op("tokenizer load+encode", op_tokenizer); }
static void test_csv_features(void **s) { (void)s; run_op("CSV records+features", op_csv_features); }
static void test_prepare(void **s) { (void)s; run_op("prepare", op_prepare); }
static void test_prepared_open(void **s) { (void)s; run_op("prepared open+scaler", op_prepared_open); }
static void test_ytdlp(void **s) { (void)s; run_op("adapter ytdlp", op_ytdlp); }
static void test_tiktok(void **s) { (void)s; run_op("adapter tiktok2020", op_tiktok); }
static void test_epoch_order(void **s) { (void)s; run_op("epoch order, bucketed", op_epoch_order); }

/* The environment variable arms the same hook for a whole process. */
static void test_env_hook(void **state) {
    (void)state;
    char exe[512], cmd[2048];
    test_tool(exe, sizeof exe, "miles-data");
    snprintf(cmd, sizeof cmd, "MILES_ALLOC_FAIL_AFTER=3 %s inspect %s > /dev/null 2> %s/err.txt", exe, g_prep, g_dir);
    int rc = system(cmd);
    snprintf(cmd, sizeof cmd, "%s/err.txt", g_dir);
    char *err = test_slurp(cmd, NULL);
    printf("  MILES_ALLOC_FAIL_AFTER=3 miles-data inspect: exit %d, %s", WEXITSTATUS(rc), err ? err : "");
    assert_int_equal(WEXITSTATUS(rc), 1);
    assert_non_null(err);
    assert_non_null(strstr(err, "MILES_ENOMEM"));
    free(err);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_safetensors),   cmocka_unit_test(test_checkpoint),
        cmocka_unit_test(test_checkpoint_roundtrip), cmocka_unit_test(test_tokenizer),
        cmocka_unit_test(test_csv_features),  cmocka_unit_test(test_prepare),
        cmocka_unit_test(test_prepared_open), cmocka_unit_test(test_ytdlp),
        cmocka_unit_test(test_tiktok),        cmocka_unit_test(test_env_hook),
        cmocka_unit_test(test_epoch_order),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
