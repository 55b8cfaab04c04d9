/*
 * train_and_predict.c — the whole library from a program's side, through
 * the public header alone (built against the installed library in make check):
 *
 *   cc train_and_predict.c $(pkg-config --cflags --libs miles) -o train_and_predict
 *   ./train_and_predict WORKDIR VOCAB     (VOCAB: a tokenizer directory or vocab.txt)
 *
 * 1. writes a small synthetic data set and prepares it (features, labels,
 *    splits, scaler, token ids) with a copy of the vocabulary in WORKDIR/vocab;
 * 2. trains a tiny model on it (miles_train_run: the checkpoints carry the
 *    scaler, the text cleaning, the thresholds and the vocabulary itself);
 * 3. copies best.safetensors to WORKDIR/elsewhere and moves the vocabulary
 *    folder away, as on another machine;
 * 4. opens a predictor on the copied checkpoint alone and scores new videos.
 */
#include <miles.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define CHECK(x) do { int _s = (x); if (_s != MILES_OK) { \
    fprintf(stderr, "%s failed: %s (%s)\n", #x, miles_last_error(), miles_status_name(_s)); return 1; } } while (0)

/* src -> dst, atomically (the library's file helpers). */
static int copy_file(const char *src, const char *dst) {
    char *data = NULL;
    size_t n = 0;
    int s = miles_read_file(src, &data, &n);
    if (s == MILES_OK) s = miles_write_file_atomic(dst, data, n);
    free(data);
    return s;
}

/* Training events: the library prints nothing; this program prints a line per evaluation. */
static int on_event(const MilesTrainEvent *e, void *arg) {
    (void)arg;
    if (e->type == MILES_EVENT_EVAL)
        printf("  step %lld: val AUROC %.4f, val loss %.4f%s\n", (long long)e->step, e->val_auroc, e->val_loss,
               e->best ? " (best)" : "");
    return MILES_OK;
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: %s WORKDIR VOCAB\n", argv[0]); return 2; }
    const char *work = argv[1], *vocab_src = argv[2];
    char csv[4096], data[4096], vocab[4096], vocab_txt[4096], away[4096], run[4096], best[4096], elsewhere[4096],
        moved[4096];
    snprintf(csv, sizeof csv, "%s/videos.csv", work);
    snprintf(data, sizeof data, "%s/videos.milesdat", work);
    snprintf(vocab, sizeof vocab, "%s/vocab", work);
    snprintf(vocab_txt, sizeof vocab_txt, "%s/vocab/vocab.txt", work);
    snprintf(away, sizeof away, "%s/vocab.moved-away", work);
    snprintf(run, sizeof run, "%s/run", work);
    snprintf(best, sizeof best, "%s/run/best.safetensors", work);
    snprintf(elsewhere, sizeof elsewhere, "%s/elsewhere", work);
    snprintf(moved, sizeof moved, "%s/elsewhere/best.safetensors", work);
    mkdir(work, 0755);
    mkdir(vocab, 0755);
    mkdir(elsewhere, 0755);
    struct stat sb;
    int is_dir = stat(vocab_src, &sb) == 0 && S_ISDIR(sb.st_mode);
    char src_txt[4096];
    snprintf(src_txt, sizeof src_txt, is_dir ? "%s/vocab.txt" : "%s", vocab_src);
    CHECK(copy_file(src_txt, vocab_txt));

    /* 1. data */
    CHECK(miles_synth_write_csv(csv, 2000, 7));
    MilesPrepareOptions po;
    miles_prepare_options_default(&po);
    po.vocab_dir = vocab;
    po.max_len = 32;
    po.language = "any";
    MilesPrepareReport rep;
    CHECK(miles_data_prepare(csv, data, &po, &rep));
    printf("prepared %lld rows: train %lld, val %lld, test %lld\n", (long long)rep.rows_kept, (long long)rep.n[0],
           (long long)rep.n[1], (long long)rep.n[2]);
    MilesPrepared *prep = NULL;
    CHECK(miles_prepared_open(&prep, data));

    /* 2. a tiny model, trained */
    MilesTokenizer *tok = NULL;
    CHECK(miles_tokenizer_load(&tok, vocab));
    MilesConfig cfg;
    CHECK(miles_config_preset(&cfg, "miles", "tiny"));
    cfg.vocab_size = miles_tokenizer_vocab_size(tok);
    miles_tokenizer_free(tok);
    MilesModel *m = NULL;
    CHECK(miles_model_build(&m, &cfg));
    CHECK(miles_model_init_random(m, 42, 0.02f));
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    tc.batch_size = 32;
    tc.max_len = 32;
    tc.epochs = 2;
    tc.lr = 1e-3f;
    tc.warmup_steps = 5;
    tc.eval_every = 20;
    tc.auto_class_weight = 1;
    tc.out_dir = run;
    tc.vocab_dir = vocab;      /* embedded in every checkpoint */
    tc.callback = on_event;
    MilesTrainResult res;
    CHECK(miles_train_run(m, prep, &tc, &res));
    printf("trained %lld steps: best val AUROC %.4f at step %lld, decision threshold %.4f\n", (long long)res.steps,
           res.best_val_auroc, (long long)res.best_step, res.decision_threshold);
    miles_model_free(m);

    /* 3. "another machine": the checkpoint alone, the vocabulary folder gone */
    CHECK(copy_file(best, moved));
    if (rename(vocab, away) != 0) { perror("moving the vocabulary away"); return 1; }

    /* 4. predict from the copied checkpoint */
    MilesPredictor *p = NULL;
    CHECK(miles_predictor_open(&p, moved, NULL));
    if (strcmp(miles_predictor_tokenizer_hash(p), miles_prepared_vocab_hash(prep)) != 0) {
        fprintf(stderr, "the predictor's tokenizer is not the training one\n");
        return 1;
    }
    const char *names[3] = {"title", "views", "likes"};
    const char *v0[3] = {"POV: you finally fixed the bug 😂", "120000", "9000"};
    const char *v1[3] = {"Quarterly tax filing walkthrough", "300", "4"};
    MilesRecord recs[2] = {{3, names, v0, NULL}, {3, names, v1, NULL}}; /* NULL lengths: NUL-terminated */
    MilesPrediction out[2];
    CHECK(miles_predictor_predict(p, recs, 2, out));
    for (int i = 0; i < 2; i++)
        printf("  \"%s\": P(viral) %.4f (%s), predicted velocity %.1f views/day\n", recs[i].values[0],
               out[i].viral_score, out[i].is_viral ? "viral" : "not viral", out[i].predicted_velocity);
    printf("predicted with %s (vocabulary embedded in the checkpoint; %s no longer exists)\n",
           miles_predictor_version(p), vocab);
    miles_predictor_free(p);
    miles_prepared_free(prep);
    return 0;
}
