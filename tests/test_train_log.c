/*
 * test_train_log.c — miles-train's log of training events (tools/train_log.c):
 * the exact OUT/log.jsonl lines of steps and evaluations (non-finite numbers
 * as null, the loss scale only when it is not 1, an epoch-end evaluation
 * counted in the epoch just finished), and --resume's cut: the lines of
 * steps after the checkpoint, lines that are not JSON objects and a torn
 * last line removed, the rest kept byte for byte and appended to.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cjson/cJSON.h>

#include "miles.h"
#include "train_log.h"
#include "helpers.h"

static char g_dir[256];

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(g_dir, sizeof g_dir, "trainlog");
}
static int teardown(void **state) {
    (void)state;
    test_rm_rf(g_dir);
    return 0;
}

static MilesTrainEvent ev(int type, int64_t step) {
    MilesTrainEvent e;
    memset(&e, 0, sizeof e);
    e.type = type;
    e.step = step;
    e.total_steps = 10;
    e.epochs = 2;
    e.batches = 5;
    e.loss_scale = 1.0;
    return e;
}

static void send(TrainLog *L, const MilesTrainEvent *e) { assert_int_equal(train_log_event(e, L), MILES_OK); }

static char *log_text(const char *dir) {
    char p[512];
    snprintf(p, sizeof p, "%s/log.jsonl", dir);
    char *t = test_slurp(p, NULL);
    assert_non_null(t);
    return t;
}

static void test_lines(void **state) {
    (void)state;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/fresh", g_dir);
    TrainLog L;
    assert_int_equal(train_log_open(&L, dir, 0, 0), MILES_EIO);   /* the tool creates OUT first */
    assert_int_equal(mkdir(dir, 0755), 0);
    assert_int_equal(train_log_open(&L, dir, 0, 0), MILES_OK);
    MilesTrainEvent e = ev(MILES_EVENT_START, 0);
    send(&L, &e);
    e = ev(MILES_EVENT_STEP, 1);
    e.batch = 1;
    e.loss = 0.5;
    e.lr = 1e-5;
    e.grad_norm = NAN;
    e.examples = 32;
    e.elapsed_s = 2.0;
    send(&L, &e);
    e = ev(MILES_EVENT_STEP, 5);   /* the epoch's last batch; fp16's scaler shown */
    e.batch = 5;
    e.loss = INFINITY;
    e.lr = 2.5e-5;
    e.grad_norm = 1.25;
    e.examples = 160;
    e.elapsed_s = 4.0;
    e.loss_scale = 1024;
    e.skipped_steps = 2;
    send(&L, &e);
    e = ev(MILES_EVENT_EVAL, 5);   /* at the epoch's end: the trainer is at epoch 1, batch 0 */
    e.epoch = 1;
    e.val_auroc = 0.75;
    e.val_loss = 0.4;
    e.val_velocity_mae = NAN;
    e.val_best_f1 = 0.6;
    e.val_f1_threshold = 0.45;
    e.best = 1;
    send(&L, &e);
    e = ev(MILES_EVENT_EVAL, 7);   /* mid-epoch */
    e.epoch = 1;
    e.batch = 2;
    e.val_auroc = 0.5;
    send(&L, &e);
    e = ev(MILES_EVENT_CHECKPOINT, 7);
    send(&L, &e);
    e = ev(MILES_EVENT_END, 7);
    send(&L, &e);
    train_log_close(&L);
    char *t = log_text(dir);
    const char *want =
        "{\"type\":\"step\",\"step\":1,\"epoch\":1,\"batch\":1,\"loss\":0.5,\"lr\":1e-05,\"grad_norm\":null,"
        "\"examples_per_s\":16,\"elapsed_s\":2.000}\n"
        "{\"type\":\"step\",\"step\":5,\"epoch\":1,\"batch\":5,\"loss\":null,\"lr\":2.5e-05,\"grad_norm\":1.25,"
        "\"examples_per_s\":40,\"elapsed_s\":4.000,\"loss_scale\":1024,\"skipped_steps\":2}\n"
        "{\"type\":\"eval\",\"step\":5,\"epoch\":1,\"val_auroc\":0.75,\"val_loss\":0.4,\"val_velocity_mae\":null,"
        "\"val_best_f1\":0.6,\"val_f1_threshold\":0.45,\"improved\":true}\n"
        "{\"type\":\"eval\",\"step\":7,\"epoch\":2,\"val_auroc\":0.5,\"val_loss\":0,\"val_velocity_mae\":0,"
        "\"val_best_f1\":0,\"val_f1_threshold\":0,\"improved\":false}\n";
    if (strcmp(t, want)) fail_msg("log.jsonl:\n%s\nwant:\n%s", t, want);
    /* every line is JSON (null, not nan) */
    for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
        cJSON *j = cJSON_Parse(line);
        assert_true(cJSON_IsObject(j));
        cJSON_Delete(j);
    }
    free(t);
    char tb[400];
    snprintf(tb, sizeof tb, "%s/tb", dir);
    assert_int_equal(test_count_entries(tb, "tfevents"), 1);
}

/* log.jsonl as a kill -9 leaves it: steps after the last checkpoint (2) and a torn line */
static const char *KILLED =
    "{\"type\":\"step\",\"step\":1,\"loss\":0.9}\n"
    "{\"type\":\"step\",\"step\":2,\"loss\":0.8}\n"
    "{\"type\":\"eval\",\"step\":2,\"val_auroc\":0.6}\n"
    "{\"type\":\"note\"}\n"
    "[1, 2]\n"
    "{\"type\":\"step\",\"step\":\"2\"}\n"
    "{\"type\":\"step\",\"step\":3,\"loss\":0.7}\n"
    "{\"type\":\"eval\",\"step\":4,\"val_auroc\":0.7}\n"
    "{\"type\":\"step\",\"st";

static void resume_into(const char *name, const char *existing, int resumed, int64_t at, char *dir, size_t cap) {
    snprintf(dir, cap, "%s/%s", g_dir, name);
    assert_int_equal(mkdir(dir, 0755), 0);
    if (existing) {
        char p[512];
        snprintf(p, sizeof p, "%s/log.jsonl", dir);
        FILE *f = fopen(p, "w");
        assert_non_null(f);
        fputs(existing, f);
        fclose(f);
    }
    TrainLog L;
    assert_int_equal(train_log_open(&L, dir, 1, 0), MILES_OK);
    MilesTrainEvent e = ev(MILES_EVENT_START, at);
    e.resumed = resumed;
    e.start_step = at;
    send(&L, &e);
    e = ev(MILES_EVENT_STEP, at + 1);
    e.loss = 0.25;
    e.lr = 1e-3;
    e.grad_norm = 2;
    e.examples = 8;
    e.elapsed_s = 1;
    send(&L, &e);
    e = ev(MILES_EVENT_END, at + 1);
    send(&L, &e);
    train_log_close(&L);
}

static void test_resume_cut(void **state) {
    (void)state;
    char dir[300];
    const char *step3 = "{\"type\":\"step\",\"step\":3,\"epoch\":1,\"batch\":0,\"loss\":0.25,\"lr\":0.001,\"grad_norm\":2,"
                        "\"examples_per_s\":8,\"elapsed_s\":1.000}\n";
    resume_into("killed", KILLED, 1, 2, dir, sizeof dir);
    char *t = log_text(dir);
    char want[2048];
    snprintf(want, sizeof want, "%s%s",
             "{\"type\":\"step\",\"step\":1,\"loss\":0.9}\n"
             "{\"type\":\"step\",\"step\":2,\"loss\":0.8}\n"
             "{\"type\":\"eval\",\"step\":2,\"val_auroc\":0.6}\n"
             "{\"type\":\"note\"}\n", step3);
    if (strcmp(t, want)) fail_msg("log.jsonl after the cut:\n%s\nwant:\n%s", t, want);
    free(t);
    /* --resume that found no checkpoint starts at 0: every stepped line goes */
    const char *step1 = "{\"type\":\"step\",\"step\":1,\"epoch\":1,\"batch\":0,\"loss\":0.25,\"lr\":0.001,\"grad_norm\":2,"
                        "\"examples_per_s\":8,\"elapsed_s\":1.000}\n";
    resume_into("fresh_start", KILLED, 0, 0, dir, sizeof dir);
    t = log_text(dir);
    snprintf(want, sizeof want, "{\"type\":\"note\"}\n%s", step1);
    if (strcmp(t, want)) fail_msg("log.jsonl:\n%s\nwant:\n%s", t, want);
    free(t);
    /* no log.jsonl yet (deleted by hand): created */
    resume_into("nolog", NULL, 1, 2, dir, sizeof dir);
    t = log_text(dir);
    assert_string_equal(t, step3);
    free(t);
    /* only a torn last line to remove: still rewritten, or the next line would be glued to it */
    char torn[512];
    snprintf(torn, sizeof torn, "%s", "{\"type\":\"step\",\"step\":1,\"loss\":0.9}\n{\"type\":\"step\",\"step\":2,\"lo");
    resume_into("torn", torn, 1, 2, dir, sizeof dir);
    t = log_text(dir);
    snprintf(want, sizeof want, "{\"type\":\"step\",\"step\":1,\"loss\":0.9}\n%s", step3);
    assert_string_equal(t, want);
    free(t);
    /* nothing to cut: the file is appended to as it is */
    const char *clean = "{\"type\":\"step\",\"step\":1,\"loss\":0.9}\n{\"type\":\"step\",\"step\":2,\"loss\":0.8}\n";
    resume_into("clean", clean, 1, 2, dir, sizeof dir);
    t = log_text(dir);
    snprintf(want, sizeof want, "%s%s", clean, step3);
    assert_string_equal(t, want);
    free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines),
        cmocka_unit_test(test_resume_cut),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
