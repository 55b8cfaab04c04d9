/*
 * train_log.c — see train_log.h.
 */
#include "train_log.h"
#include "tool_common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <unistd.h>

int train_log_open(TrainLog *L, const char *out_dir, int resume, int progress) {
    memset(L, 0, sizeof *L);
    L->progress = progress;
    L->tty = progress && isatty(2);
    L->ema_loss = NAN;
    L->step0 = -1;
    if (snprintf(L->path, sizeof L->path, "%s/log.jsonl", out_dir) >= (int)sizeof L->path)
        return miles_set_error(MILES_EINVAL, "%s: path too long", out_dir);
    L->resume = resume;
    if (!resume) {
        L->jsonl = fopen(L->path, "w");
        if (!L->jsonl) return miles_set_error(MILES_EIO, "%s: cannot open: %s", L->path, strerror(errno));
    }
    char tb[4200];
    snprintf(tb, sizeof tb, "%s/tb", out_dir);
    if (tool_mkdirs(tb) != 0 || tb_open(&L->tb, tb) != MILES_OK) L->tb = NULL; /* TensorBoard is optional */
    return MILES_OK;
}

/* Keep the complete lines of log.jsonl whose "step" is <= step (atomically
 * rewritten), then open it for appending. */
static int cut_and_open(TrainLog *L, int64_t step) {
    char *text = NULL;
    int s = access(L->path, F_OK) == 0 ? tool_read_file(L->path, &text) : MILES_OK;
    if (s != MILES_OK) return s;
    size_t n = text ? strlen(text) : 0, o = 0;
    int64_t dropped = 0;
    char *out = malloc(n + 1);
    if (!out) { free(text); return miles_set_error(MILES_ENOMEM, "out of memory"); }
    for (size_t i = 0; i < n;) {
        char *nl = memchr(text + i, '\n', n - i);
        if (!nl) { dropped++; break; }   /* a torn last line */
        size_t len = (size_t)(nl - (text + i)) + 1;
        *nl = '\0';
        cJSON *j = cJSON_Parse(text + i);
        const cJSON *st = j ? cJSON_GetObjectItemCaseSensitive(j, "step") : NULL;
        int keep = cJSON_IsObject(j) && (!st || (cJSON_IsNumber(st) && st->valuedouble <= (double)step));
        cJSON_Delete(j);
        *nl = '\n';
        if (keep) { memcpy(out + o, text + i, len); o += len; }
        else dropped++;
        i += len;
    }
    out[o] = '\0';
    free(text);
    s = dropped ? tool_write_text_atomic(L->path, out) : MILES_OK;
    free(out);
    if (s != MILES_OK) return s;
    if (dropped && L->progress)
        fprintf(stderr, "log.jsonl: %lld lines after step %lld (or torn) removed\n", (long long)dropped, (long long)step);
    L->jsonl = fopen(L->path, "a");
    if (!L->jsonl) return miles_set_error(MILES_EIO, "%s: cannot open: %s", L->path, strerror(errno));
    return MILES_OK;
}

void train_log_close(TrainLog *L) {
    if (L->jsonl) fclose(L->jsonl);
    tb_close(L->tb);
    L->jsonl = NULL;
    L->tb = NULL;
}

static void fmt_eta(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) { snprintf(buf, n, "--"); return; }
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else snprintf(buf, n, "%lds", t);
}

/* JSON numbers: %.*g of a finite value, null otherwise. */
static const char *jnum(char *buf, size_t n, int digits, double v) {
    if (isfinite(v)) snprintf(buf, n, "%.*g", digits, v);
    else snprintf(buf, n, "null");
    return buf;
}

/* Dynamic loss scaling (CUDA fp16) shows its scale and skipped steps; other
 * runs (scale 1, nothing skipped) keep the plain line. */
static int has_scaler(const MilesTrainEvent *e) { return e->loss_scale != 1.0 || e->skipped_steps > 0; }

static void progress_line(const TrainLog *L, const MilesTrainEvent *e, double exps, double eta) {
    char t[48];
    fmt_eta(t, sizeof t, eta);
    if (has_scaler(e)) {
        size_t n = strlen(t);
        snprintf(t + n, sizeof t - n, " scale %g skipped %lld", e->loss_scale, (long long)e->skipped_steps);
    }
    if (L->tty) {
        int w = 24, fill = e->batches ? (int)((double)e->batch * w / e->batches) : w;
        char bar[32];
        for (int i = 0; i < w; i++) bar[i] = i < fill ? '#' : '.';
        bar[w] = 0;
        fprintf(stderr, "\repoch %d/%d [%s] %d/%d loss %.4f lr %.2e %.1f ex/s ETA %s   ", e->epoch + 1, e->epochs,
                bar, e->batch, e->batches, L->ema_loss, e->lr, exps, t);
    } else {
        fprintf(stderr, "epoch %d/%d batch %d/%d loss %.4f lr %.2e %.1f ex/s ETA %s\n", e->epoch + 1, e->epochs,
                e->batch, e->batches, L->ema_loss, e->lr, exps, t);
    }
    fflush(stderr);
}

static int on_step(TrainLog *L, const MilesTrainEvent *e) {
    const MilesTrainEvent at = *e; /* epoch and micro-batches done after this step */
    L->ema_loss = isnan(L->ema_loss) ? e->loss : 0.95 * L->ema_loss + 0.05 * e->loss;
    double exps = e->examples / (e->elapsed_s > 1e-9 ? e->elapsed_s : 1e-9);
    double eta = e->step > L->step0 ? e->elapsed_s / (double)(e->step - L->step0) * (double)(e->total_steps - e->step)
                                    : NAN;
    char a[40], b[40], sc[96] = "";
    if (has_scaler(e))
        snprintf(sc, sizeof sc, ",\"loss_scale\":%.8g,\"skipped_steps\":%lld", e->loss_scale,
                 (long long)e->skipped_steps);
    fprintf(L->jsonl, "{\"type\":\"step\",\"step\":%lld,\"epoch\":%d,\"batch\":%d,\"loss\":%s,\"lr\":%.8g,"
                      "\"grad_norm\":%s,\"examples_per_s\":%.4g,\"elapsed_s\":%.3f%s}\n",
            (long long)e->step, at.epoch + 1, at.batch, jnum(a, sizeof a, 8, e->loss), e->lr,
            jnum(b, sizeof b, 8, e->grad_norm), exps, e->elapsed_s, sc);
    if (L->tb) {
        tb_scalar(L->tb, "train/loss", e->step, (float)e->loss);
        tb_scalar(L->tb, "train/lr", e->step, (float)e->lr);
        tb_scalar(L->tb, "train/grad_norm", e->step, (float)e->grad_norm);
        if (has_scaler(e)) {
            tb_scalar(L->tb, "train/loss_scale", e->step, (float)e->loss_scale);
            tb_scalar(L->tb, "train/skipped_steps", e->step, (float)e->skipped_steps);
        }
    }
    /* a line each time a multiple of 50 steps is passed (events come every log_every steps) */
    if (L->progress && (L->tty || e->step / 50 != L->last_step / 50 || at.batch == at.batches))
        progress_line(L, &at, exps, eta);
    L->last_step = e->step;
    return MILES_OK;
}

static int on_eval(TrainLog *L, const MilesTrainEvent *e) {
    /* an evaluation at an epoch's end comes after the trainer moved to the
     * next epoch (batch 0): it belongs to the epoch just finished */
    MilesTrainEvent at = *e;
    if (at.batch == 0 && at.epoch > 0) at.epoch--;
    char a[40], b[40], c[40], d[40], f[40];
    fprintf(L->jsonl, "{\"type\":\"eval\",\"step\":%lld,\"epoch\":%d,\"val_auroc\":%s,\"val_loss\":%s,"
                      "\"val_velocity_mae\":%s,\"val_best_f1\":%s,\"val_f1_threshold\":%s,\"improved\":%s}\n",
            (long long)e->step, at.epoch + 1, jnum(a, sizeof a, 10, e->val_auroc), jnum(b, sizeof b, 8, e->val_loss),
            jnum(c, sizeof c, 8, e->val_velocity_mae), jnum(d, sizeof d, 8, e->val_best_f1),
            jnum(f, sizeof f, 8, e->val_f1_threshold), e->best ? "true" : "false");
    if (L->tb) {
        tb_scalar(L->tb, "val/auroc", e->step, (float)e->val_auroc);
        tb_scalar(L->tb, "val/loss", e->step, (float)e->val_loss);
        tb_scalar(L->tb, "val/velocity_mae", e->step, (float)e->val_velocity_mae);
    }
    if (L->progress) {
        if (L->tty) fputc('\n', stderr);
        fprintf(stderr, "eval step %lld: val AUROC %.4f  loss %.4f  velocity MAE %.4f  best F1 %.4f @ %.3f%s\n",
                (long long)e->step, e->val_auroc, e->val_loss, e->val_velocity_mae, e->val_best_f1,
                e->val_f1_threshold, e->best ? "  (best)" : "");
    }
    return MILES_OK;
}

int train_log_event(const MilesTrainEvent *e, void *arg) {
    TrainLog *L = arg;
    switch (e->type) {
    case MILES_EVENT_START:
        L->step0 = e->start_step;
        L->last_step = e->start_step;
        if (L->resume && !L->jsonl) {
            int s = cut_and_open(L, e->resumed ? e->start_step : 0);
            if (s != MILES_OK) return s;
        }
        if (L->progress && e->resumed)
            fprintf(stderr, "resumed at step %lld (epoch %d, batch %d)\n", (long long)e->start_step, e->epoch + 1,
                    e->batch);
        if (L->progress && e->ranks > 1)
            fprintf(stderr, "data parallel: %d ranks%s\n", e->ranks, e->zero1 ? ", ZeRO-1 sharded AdamW moments" : "");
        return MILES_OK;
    case MILES_EVENT_STEP: return on_step(L, e);
    case MILES_EVENT_EVAL: return on_eval(L, e);
    case MILES_EVENT_CHECKPOINT:
        /* the logs on disk keep up with the checkpoints */
        if (L->jsonl) fflush(L->jsonl);
        if (L->tb) tb_flush(L->tb);
        return MILES_OK;
    case MILES_EVENT_EARLY_STOP:
        if (L->progress)
            fprintf(stderr, "early stopping: no val AUROC gain > %g for %d evaluations\n", e->min_delta, e->patience);
        return MILES_OK;
    case MILES_EVENT_END:
        if (L->tty) fputc('\n', stderr);
        if (L->jsonl) fflush(L->jsonl);
        return MILES_OK;
    }
    return MILES_OK;
}
