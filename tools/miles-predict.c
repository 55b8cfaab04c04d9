/*
 * miles-predict — score a file of videos with a trained checkpoint.
 *
 *   miles-predict --checkpoint checkpoints/run1/best.safetensors videos.csv
 *   yt-dlp -j URL... | miles-predict -c best.safetensors --format jsonl - --out scores.jsonl
 *
 * Input: a CSV with a header (the seed schema, or any CSV with a "title"
 * column: other columns are used when the data module knows them), or JSON
 * lines (one object per line: yt-dlp -j output, or request-style objects).
 * Output: CSV or JSON lines with id, title, viral_score, is_viral,
 * predicted_velocity, confidence.  Rows are scored in batches and streamed:
 * memory does not grow with the file.  --out is written atomically.
 */
#include "miles.h"
#include "explain_json.h"
#include "ideas.h"
#include "predict_json.h"
#include "tool_common.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

static void usage(FILE *f) {
    fprintf(f,
"usage: miles-predict --checkpoint FILE [options] INPUT\n"
"  INPUT                CSV with a header row (needs a 'title' column), or JSON lines\n"
"                       (yt-dlp -j output, one object per line); '-' = stdin\n"
"  -c, --checkpoint F   checkpoint written by miles-train (best.safetensors)\n"
"  --vocab DIR          tokenizer directory (default: the checkpoint's vocab_dir)\n"
"  --format F           input format: csv|jsonl (default: from the first byte: '{' = jsonl)\n"
"  -o, --out FILE       output file, written atomically (default stdout)\n"
"  --output-format F    csv|jsonl (default: jsonl if --out ends in .jsonl/.json, else csv)\n"
"  --batch-size N       records per forward pass (default 64)\n"
"  --skip-bad           skip records that cannot be scored (warn on stderr) instead of stopping\n"
"  --explain            add per-token and per-feature attributions (integrated gradients,\n"
"                       docs/explain.md) to every record: JSON lines output only\n"
"  --explain-steps N    integration steps (default 32; cost ~ N+2 forward/backward rows)\n"
"  --explain-target T   prob|logit|velocity (default prob: P(viral))\n"
"  --threads N          OpenMP/BLAS threads\n"
"  --device cpu|cuda|cuda:N   where to score (default cpu)   --precision NAME  fp32 (default)|tf32|fp16|bf16|int8\n"
"                             (CPU: fp32, bf16 with avx512_bf16, int8 with AVX2 + FMA)\n"
"Ideas (docs/serving.md \"Ideas\"): INPUT is then the candidates file\n"
"  --topic T            the candidates matching topic T ranked by score, the patterns of the\n"
"                       top 10, the words/features that push scores up or down, and\n"
"                       model-scored title suggestions (JSON, or a table with --table)\n"
"  --vibe V             funny|educational|inspirational|dramatic (passed to the LLM)\n"
"  --draft TITLE        the title to improve (default: the best matching candidate)\n"
"  --seed N             suggestions' seed (default 0)\n"
"  --llm-endpoint URL   also ask an OpenAI-compatible chat-completions endpoint for 3 ideas,\n"
"                       each scored by the model (--llm-model NAME, --llm-timeout MS: 30000;\n"
"                       the key, if any, from $MILES_LLM_API_KEY)\n"
"  --table              --topic output as text tables instead of JSON\n"
"  -q, --quiet          no progress on stderr\n"
"  -h, --help\n"
"Columns/fields understood: title (required), the seed-schema columns, the 18 feature\n"
"names, view_count/like_count/comment_count/duration_seconds (-> views/likes/comments/\n"
"duration_sec) and yt-dlp keys (duration, repost_count, timestamp, upload_date). See\n"
"docs/serving.md.  Exit status: 0 ok, 1 error, 2 usage.\n");
}

/* ---------------------------------------------------------------- batches */

typedef struct {
    PjRecord *rec;      /* [cap] */
    int64_t *line;      /* input line (CSV record line / JSONL line) */
    int n, cap;
} Batch;

typedef struct {
    MilesPredictor *p;
    FILE *out;
    int jsonl_out;
    int skip_bad;
    int64_t scored, skipped, viral;
    const char *in_name;
    int explain;                  /* --explain: add "explanation" to each JSON line */
    MilesExplainConfig ecfg;
} Ctx;

static const char *rec_id(const PjRecord *r) {
    static const char *keys[] = {"row_id", "video_id", "id"};
    for (size_t i = 0; i < 3; i++) {
        const char *v = pj_record_get(r, keys[i]);
        if (v && *v) return v;
    }
    return "";
}

static void emit(Ctx *c, const PjRecord *r, const MilesPrediction *o) {
    if (c->jsonl_out) {
        cJSON *j = cJSON_CreateObject();
        cJSON_AddStringToObject(j, "id", rec_id(r));
        cJSON_AddStringToObject(j, "title", pj_record_get(r, "title"));
        cJSON_AddNumberToObject(j, "viral_score", o->viral_score);
        if (miles_predictor_calibration(c->p)) cJSON_AddNumberToObject(j, "viral_score_model", o->viral_score_model);
        cJSON_AddBoolToObject(j, "is_viral", o->is_viral);
        cJSON_AddNumberToObject(j, "predicted_velocity", o->predicted_velocity);
        cJSON_AddNumberToObject(j, "confidence", o->confidence);
        cJSON_AddItemToObject(j, "filled", pj_feature_list(o->filled));
        if (c->explain) {
            MilesRecord rv = pj_record_view(r);
            cJSON *e = NULL;
            if (explain_record_json(c->p, &rv, &c->ecfg, &e) == MILES_OK) cJSON_AddItemToObject(j, "explanation", e);
            else cJSON_AddStringToObject(j, "explanation_error", miles_last_error());
        }
        char *s = cJSON_PrintUnformatted(j);
        fputs(s, c->out);
        fputc('\n', c->out);
        free(s);
        cJSON_Delete(j);
    } else {
        tool_csv_cell(c->out, rec_id(r));
        fputc(',', c->out);
        tool_csv_cell(c->out, pj_record_get(r, "title"));
        fprintf(c->out, ",%.9g,%d,%.9g,%.9g,%d", o->viral_score, o->is_viral, o->predicted_velocity, o->confidence,
                __builtin_popcount(o->filled));
        if (miles_predictor_calibration(c->p)) fprintf(c->out, ",%.9g", o->viral_score_model);
        fputc('\n', c->out);
    }
    c->scored++;
    c->viral += o->is_viral;
}

/* Score and write the batch; on a bad record either stop or (skip_bad) score
 * the others one by one. */
static int flush_batch(Ctx *c, Batch *b) {
    if (b->n == 0) return MILES_OK;
    MilesRecord *rv = malloc(sizeof(MilesRecord) * b->n);
    MilesPrediction *o = malloc(sizeof(MilesPrediction) * b->n);
    if (!rv || !o) { free(rv); free(o); return MILES_ENOMEM; }
    for (int i = 0; i < b->n; i++) rv[i] = pj_record_view(&b->rec[i]);
    int s = miles_predictor_predict(c->p, rv, b->n, o);
    if (s == MILES_OK) {
        for (int i = 0; i < b->n; i++) emit(c, &b->rec[i], &o[i]);
    } else {
        s = MILES_OK;
        for (int i = 0; i < b->n && s == MILES_OK; i++) {
            int si = miles_predictor_predict(c->p, &rv[i], 1, &o[i]);
            if (si == MILES_OK) { emit(c, &b->rec[i], &o[i]); continue; }
            const char *msg = miles_last_error();
            if (!strncmp(msg, "record 0: ", 10)) msg += 10;
            if (c->skip_bad) {
                fprintf(stderr, "miles-predict: %s:%lld: skipped: %s\n", c->in_name, (long long)b->line[i], msg);
                c->skipped++;
            } else {
                char m[1024];
                snprintf(m, sizeof m, "%s", msg);
                s = miles_set_error(si, "%s:%lld: %s (--skip-bad skips such records)", c->in_name, (long long)b->line[i], m);
            }
        }
    }
    for (int i = 0; i < b->n; i++) pj_record_free(&b->rec[i]);
    b->n = 0;
    free(rv);
    free(o);
    return s;
}

static PjRecord *batch_slot(Batch *b, int64_t line) {
    b->line[b->n] = line;
    PjRecord *r = &b->rec[b->n++];
    memset(r, 0, sizeof *r);
    return r;
}

/* ---------------------------------------------------------------- progress */

/* Number of lines of a regular file (for the ETA; CSV fields with newlines make it an upper bound). */
static int64_t count_lines(const char *path) {
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    static char buf[1 << 16];
    int64_t n = 0;
    size_t k;
    while ((k = fread(buf, 1, sizeof buf, f)) > 0)
        for (size_t i = 0; i < k; i++) n += buf[i] == '\n';
    fclose(f);
    return n;
}


/* One line of a JSON-lines file made ready to parse: a UTF-8 BOM dropped from
 * line 1 (the format sniffing skips one too), U+0000 escapes marked (titles
 * may hold them).  Returns the length to parse, or -1 for a blank line. */
static ssize_t jsonl_line(char *line, ssize_t len, int64_t lineno) {
    if (lineno == 1 && len >= 3 && !memcmp(line, "\xEF\xBB\xBF", 3)) {
        memmove(line, line + 3, (size_t)len - 2);   /* with the NUL */
        len -= 3;
    }
    if (strspn(line, " \t\r\n") == (size_t)len) return -1;
    return (ssize_t)pj_json_mark_nul(line, (size_t)len);
}

/* ---------------------------------------------------------------- readers */

static int run_csv(Ctx *c, const char *path, Batch *b, int batch_size, ToolProgress *pg) {
    MilesRecordReader *rd = NULL;
    TOOL_TRY(miles_records_open_csv(&rd, path));
    int hn = 0, has_title = 0, s;
    const char *const *header = miles_records_header(rd, &hn);
    for (int i = 0; i < hn; i++) has_title |= !strcmp(header[i], "title");
    if (!has_title) s = miles_set_error(MILES_EMISSING, "%s:1: no 'title' column in the header", path);
    else s = MILES_OK;
    MilesRecord rec;
    while (s == MILES_OK && (s = miles_records_next(rd, &rec)) == 1) {
        s = MILES_OK;
        PjRecord *r = batch_slot(b, miles_records_line(rd));
        for (int i = 0; i < rec.n && s == MILES_OK; i++)
            if (rec.values[i][0]) s = pj_record_add(r, rec.names[i], rec.values[i]);
        if (s) s = miles_set_error(MILES_ENOMEM, "out of memory");
        if (s == MILES_OK && b->n == batch_size) s = flush_batch(c, b);
        tool_progress_update(pg, c->scored + c->skipped);
    }
    if (s < 0 && b->n > 0) {
        /* a malformed CSV record stops the run; the records before it are
         * scored first, so that an earlier bad value is the one named */
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", miles_last_error());
        int f = flush_batch(c, b);
        s = f != MILES_OK ? f : miles_set_error(s, "%s", msg);
    }
    if (s == MILES_OK) s = flush_batch(c, b);
    miles_records_close(rd);
    return s;
}

static int run_jsonl(Ctx *c, FILE *in, Batch *b, int batch_size, ToolProgress *pg) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    int64_t lineno = 0;
    int s = MILES_OK;
    while (s == MILES_OK && (len = getline(&line, &cap, in)) >= 0) {
        lineno++;
        if ((len = jsonl_line(line, len, lineno)) < 0) continue;
        cJSON *o = cJSON_ParseWithLength(line, (size_t)len);
        char err[512];
        PjRecord tmp;
        int rs = o ? pj_record_from_json(o, "", &tmp, err, sizeof err) : MILES_EFORMAT;
        if (!o) snprintf(err, sizeof err, "not a JSON object (malformed JSON)");
        cJSON_Delete(o);
        if (rs != MILES_OK) {
            /* the records read before this line first: their errors (found when
             * a batch is scored) are reported, or skipped, in file order */
            if ((s = flush_batch(c, b)) != MILES_OK) break;
            if (c->skip_bad) {
                fprintf(stderr, "miles-predict: %s:%lld: skipped: %s\n", c->in_name, (long long)lineno, err);
                c->skipped++;
                continue;
            }
            s = miles_set_error(rs, "%s:%lld: %s (--skip-bad skips such records)", c->in_name, (long long)lineno, err);
            break;
        }
        PjRecord *r = batch_slot(b, lineno);
        *r = tmp;
        if (b->n == batch_size) s = flush_batch(c, b);
        tool_progress_update(pg, c->scored + c->skipped);
    }
    if (s == MILES_OK && ferror(in)) s = miles_set_error(MILES_EIO, "%s: read error", c->in_name);
    if (s == MILES_OK) s = flush_batch(c, b);
    free(line);
    return s;
}

/* ---------------------------------------------------------------- ideas (--topic) */

typedef struct { const char *topic, *vibe, *draft, *llm_endpoint, *llm_model; uint64_t seed; long llm_timeout; int table; } IdeasArgs;

/* All records of a CSV or JSON lines file (ideas need the whole candidate set). */
static int read_all(const char *path, int jsonl, PjRecord **out, int *n_out) {
    PjRecord *recs = NULL;
    int n = 0, cap = 0, s = MILES_OK;
    if (!jsonl) {
        MilesRecordReader *rd = NULL;
        TOOL_TRY(miles_records_open_csv(&rd, path));
        MilesRecord rec;
        while (s == MILES_OK && (s = miles_records_next(rd, &rec)) == 1) {
            s = MILES_OK;
            if (n == cap) { cap = cap ? 2 * cap : 256; recs = realloc(recs, sizeof(PjRecord) * cap); }
            if (!recs) { s = miles_set_error(MILES_ENOMEM, "out of memory"); break; }
            memset(&recs[n], 0, sizeof(PjRecord));
            for (int i = 0; i < rec.n && s == MILES_OK; i++)
                if (rec.values[i][0] && pj_record_add(&recs[n], rec.names[i], rec.values[i])) s = miles_set_error(MILES_ENOMEM, "out of memory");
            n++;
        }
        miles_records_close(rd);
    } else {
        FILE *f = fopen(path, "rb");
        if (!f) return miles_set_error(MILES_EIO, "%s: %s", path, strerror(errno));
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        int64_t lineno = 0;
        while (s == MILES_OK && (len = getline(&line, &lcap, f)) >= 0) {
            lineno++;
            if ((len = jsonl_line(line, len, lineno)) < 0) continue;
            cJSON *o = cJSON_ParseWithLength(line, (size_t)len);
            char err[512];
            if (n == cap) { cap = cap ? 2 * cap : 256; recs = realloc(recs, sizeof(PjRecord) * cap); }
            if (!recs) { s = miles_set_error(MILES_ENOMEM, "out of memory"); cJSON_Delete(o); break; }
            int rs = o ? pj_record_from_json(o, "", &recs[n], err, sizeof err) : MILES_EFORMAT;
            if (!o) snprintf(err, sizeof err, "not a JSON object (malformed JSON)");
            cJSON_Delete(o);
            if (rs) s = miles_set_error(rs, "%s:%lld: %s", path, (long long)lineno, err);
            else n++;
        }
        free(line);
        fclose(f);
    }
    if (s < 0) {
        for (int i = 0; i < n; i++) pj_record_free(&recs[i]);
        free(recs);
        return s;
    }
    *out = recs;
    *n_out = n;
    return MILES_OK;
}

static void print_table(FILE *f, const cJSON *v) {
    fprintf(f, "topic \"%s\": %d of %d candidates match\n\n", cJSON_GetObjectItem(v, "topic")->valuestring,
            cJSON_GetObjectItem(v, "matched")->valueint, cJSON_GetObjectItem(v, "records")->valueint);
    fprintf(f, "%-6s %-8s %s\n", "rank", "score", "title");
    const cJSON *it;
    int k = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(v, "top_candidates"))
        fprintf(f, "%-6d %-8.4f %s\n", ++k, cJSON_GetObjectItem(it, "viral_score")->valuedouble,
                cJSON_GetObjectItem(it, "title")->valuestring);
    const cJSON *p = cJSON_GetObjectItem(v, "patterns"), *d = cJSON_GetObjectItem(p, "avg_duration");
    const cJSON *al = cJSON_GetObjectItem(p, "avg_title_length"), *as = cJSON_GetObjectItem(p, "avg_score");
    fprintf(f, "\npatterns of the top %d: avg title length %.1f, avg duration %s%.1f%s, avg score %.4f\n  top words:",
            cJSON_GetObjectItem(p, "n")->valueint, cJSON_IsNumber(al) ? al->valuedouble : 0,
            cJSON_IsNumber(d) ? "" : "n/a (", cJSON_IsNumber(d) ? d->valuedouble : 0, cJSON_IsNumber(d) ? " s" : ")",
            cJSON_IsNumber(as) ? as->valuedouble : 0);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(p, "top_words"))
        fprintf(f, " %s(%d)", cJSON_GetObjectItem(it, "word")->valuestring, cJSON_GetObjectItem(it, "count")->valueint);
    const cJSON *a = cJSON_GetObjectItem(v, "attributions");
    const char *lists[2] = {"words_up", "words_down"};
    for (int l = 0; l < 2; l++) {
        fprintf(f, "\n  %s:", l ? "words pushing scores down" : "words pushing scores up");
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(a, lists[l]))
            fprintf(f, " %s(%+.2g)", cJSON_GetObjectItem(it, "word")->valuestring,
                    cJSON_GetObjectItem(it, "attribution")->valuedouble);
    }
    fprintf(f, "\n  features (mean attribution, largest first):");
    k = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(a, "features"))
        if (k++ < 6) fprintf(f, " %s(%+.2g)", cJSON_GetObjectItem(it, "name")->valuestring,
                             cJSON_GetObjectItem(it, "attribution")->valuedouble);
    const cJSON *sg = cJSON_GetObjectItem(v, "suggestions");
    if (sg) {
        fprintf(f, "\n\nsuggestions for \"%s\" (%s, score %.4f; %d variants scored):\n",
                cJSON_GetObjectItem(sg, "draft")->valuestring, cJSON_GetObjectItem(sg, "draft_source")->valuestring,
                cJSON_GetObjectItem(sg, "draft_score")->valuedouble, cJSON_GetObjectItem(sg, "scored")->valueint);
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(sg, "items"))
            fprintf(f, "  %.4f (%+.4f) %s\n      %s\n", cJSON_GetObjectItem(it, "viral_score")->valuedouble,
                    cJSON_GetObjectItem(it, "delta")->valuedouble, cJSON_GetObjectItem(it, "title")->valuestring,
                    cJSON_GetObjectItem(it, "reason")->valuestring);
        if (!cJSON_GetArraySize(cJSON_GetObjectItem(sg, "items"))) fprintf(f, "  (no edit scored higher than the draft)\n");
    }
    const cJSON *ideas = cJSON_GetObjectItem(v, "ideas");
    if (ideas) {
        fprintf(f, "\nLLM ideas (scored by Miles):\n");
        cJSON_ArrayForEach(it, ideas)
            fprintf(f, "  %.4f %s\n      %s\n", cJSON_GetObjectItem(it, "viral_score")->valuedouble,
                    cJSON_GetObjectItem(it, "title")->valuestring, cJSON_GetObjectItem(it, "reasoning")->valuestring);
    }
    fputc('\n', f);
}

static int run_ideas(MilesPredictor *p, const char *input, int jsonl_in, const IdeasArgs *a, FILE *out) {
    PjRecord *recs = NULL;
    int n = 0;
    TOOL_TRY(read_all(input, jsonl_in, &recs, &n));
    MilesRecord *rv = malloc(sizeof(MilesRecord) * (n ? n : 1));
    int s = rv ? MILES_OK : miles_set_error(MILES_ENOMEM, "out of memory");
    for (int i = 0; i < n && rv; i++) rv[i] = pj_record_view(&recs[i]);
    const char *dn[] = {"title"}, *dv[] = {a->draft};
    MilesRecord draft = {1, dn, dv, NULL};
    IdeasQuery q = {a->topic, a->vibe, a->draft ? &draft : NULL, a->seed, 10, 1};
    cJSON *view = NULL;
    if (s == MILES_OK) s = ideas_view_json(p, rv, n, &q, &view);
    if (s == MILES_OK && a->llm_endpoint) { /* every idea is scored by the model before it is shown */
        IdeasLlm llm = {a->llm_endpoint, a->llm_model, getenv("MILES_LLM_API_KEY"), a->llm_timeout};
        cJSON *ideas = NULL;
        char err[1024];
        if (ideas_llm_ask(&llm, view, &ideas, err, sizeof err)) s = miles_set_error(MILES_EIO, "%s", err);
        else if ((s = ideas_score(p, ideas)) == MILES_OK) cJSON_AddItemToObject(view, "ideas", ideas);
        else cJSON_Delete(ideas);
    }
    if (s == MILES_OK) {
        if (a->table) print_table(out, view);
        else {
            char *txt = cJSON_Print(view);
            fprintf(out, "%s\n", txt);
            free(txt);
        }
    }
    cJSON_Delete(view);
    for (int i = 0; i < n; i++) pj_record_free(&recs[i]);
    free(recs);
    free(rv);
    return s;
}

int main(int argc, char **argv) {
    tool_init(argv);
    const char *ckpt = NULL, *vocab = NULL, *fmt = NULL, *out = NULL, *ofmt = NULL;
    int batch = 64, threads = 0, quiet = 0, skip_bad = 0, explain = 0, explain_steps = 32, explain_target = 0;
    IdeasArgs ia = {0};
    ia.llm_timeout = 30000;
    enum { O_VOCAB = 256, O_FMT, O_OFMT, O_BATCH, O_THREADS, O_SKIP, O_EXPLAIN, O_ESTEPS, O_ETARGET, O_DEVICE, O_PREC,
           O_TOPIC, O_VIBE, O_DRAFT, O_SEED, O_LLM, O_LLM_MODEL, O_LLM_TIMEOUT, O_TABLE };
    const char *device = NULL;
    MilesPrecision precision = MILES_PRECISION_FP32;
    static const struct option lo[] = {
        {"checkpoint", 1, 0, 'c'}, {"vocab", 1, 0, O_VOCAB}, {"format", 1, 0, O_FMT}, {"out", 1, 0, 'o'},
        {"output-format", 1, 0, O_OFMT}, {"batch-size", 1, 0, O_BATCH}, {"threads", 1, 0, O_THREADS},
        {"skip-bad", 0, 0, O_SKIP}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'}, {"explain", 0, 0, O_EXPLAIN},
        {"explain-steps", 1, 0, O_ESTEPS}, {"explain-target", 1, 0, O_ETARGET}, {"device", 1, 0, O_DEVICE},
        {"precision", 1, 0, O_PREC}, {"topic", 1, 0, O_TOPIC},
        {"vibe", 1, 0, O_VIBE}, {"draft", 1, 0, O_DRAFT}, {"seed", 1, 0, O_SEED}, {"llm-endpoint", 1, 0, O_LLM},
        {"llm-model", 1, 0, O_LLM_MODEL}, {"llm-timeout", 1, 0, O_LLM_TIMEOUT}, {"table", 0, 0, O_TABLE}, {0, 0, 0, 0}};
    int seed_i, tmo_i;
    int ch;
    while ((ch = getopt_long(argc, argv, "c:o:qh", lo, NULL)) != -1) {
        switch (ch) {
        case 'c': ckpt = optarg; break;
        case O_VOCAB: vocab = optarg; break;
        case O_FMT: fmt = optarg; break;
        case 'o': out = optarg; break;
        case O_OFMT: ofmt = optarg; break;
        case O_BATCH: if (tool_parse_int(optarg, "--batch-size", 1, 4096, &batch)) return 2; break;
        case O_THREADS: if (tool_parse_int(optarg, "--threads", 1, 4096, &threads)) return 2; break;
        case O_SKIP: skip_bad = 1; break;
        case O_DEVICE: if (tool_parse_device(optarg, "--device", &device)) return 2; break;
        case O_PREC: if (tool_parse_precision(optarg, "--precision", &precision)) return 2; break;
        case O_EXPLAIN: explain = 1; break;
        case O_ESTEPS: if (tool_parse_int(optarg, "--explain-steps", 1, 4096, &explain_steps)) return 2; break;
        case O_ETARGET:
            if ((explain_target = explain_target_by_name(optarg)) < 0) {
                fprintf(stderr, "miles-predict: --explain-target must be prob, logit or velocity\n");
                return 2;
            }
            break;
        case O_TOPIC: ia.topic = optarg; break;
        case O_VIBE: ia.vibe = optarg; break;
        case O_DRAFT: ia.draft = optarg; break;
        case O_SEED: if (tool_parse_int(optarg, "--seed", 0, 2147483647, &seed_i)) return 2; ia.seed = (uint64_t)seed_i; break;
        case O_LLM: ia.llm_endpoint = optarg; break;
        case O_LLM_MODEL: ia.llm_model = optarg; break;
        case O_LLM_TIMEOUT: if (tool_parse_int(optarg, "--llm-timeout", 1, 600000, &tmo_i)) return 2; ia.llm_timeout = tmo_i; break;
        case O_TABLE: ia.table = 1; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!ckpt || optind != argc - 1) { usage(stderr); return 2; }
    if (miles_device_check(device, precision, 0) != MILES_OK) return tool_fail("miles-predict", MILES_EUNSUPPORTED);
    if (explain && tool_explain_refusal(device, precision)) {
        fprintf(stderr, "miles-predict: --explain with --device %s --precision %s: %s\n", device,
                miles_precision_name(precision), tool_explain_refusal(device, precision));
        return 2;
    }
    const char *input = argv[optind];
    if (tool_refuse_clobber("miles-predict", "--out", out, "input", input) ||
        tool_refuse_clobber("miles-predict", "--out", out, "checkpoint", ckpt))
        return 2;
    if (!ia.topic && (ia.vibe || ia.draft || ia.llm_endpoint || ia.table)) {
        fprintf(stderr, "miles-predict: --vibe, --draft, --llm-endpoint and --table need --topic\n");
        return 2;
    }
    if (ia.topic && (explain || out || ofmt || skip_bad)) {
        fprintf(stderr, "miles-predict: --topic prints one JSON object (or --table) to stdout: no --explain/--out/--output-format/--skip-bad\n");
        return 2;
    }
    if (!ideas_vibe_ok(ia.vibe)) {
        fprintf(stderr, "miles-predict: --vibe must be funny, educational, inspirational or dramatic\n");
        return 2;
    }
    if (ia.draft && !*ia.draft) { fprintf(stderr, "miles-predict: --draft must not be empty\n"); return 2; }
    if (fmt && strcmp(fmt, "csv") && strcmp(fmt, "jsonl")) { fprintf(stderr, "miles-predict: --format must be csv or jsonl\n"); return 2; }
    if (ofmt && strcmp(ofmt, "csv") && strcmp(ofmt, "jsonl")) { fprintf(stderr, "miles-predict: --output-format must be csv or jsonl\n"); return 2; }
    int jsonl_out = 0;
    if (ofmt) jsonl_out = !strcmp(ofmt, "jsonl");
    else if (out) {
        size_t L = strlen(out);
        jsonl_out = (L > 6 && !strcmp(out + L - 6, ".jsonl")) || (L > 5 && !strcmp(out + L - 5, ".json"));
    }
    if (explain && !jsonl_out && (ofmt || out)) { /* CSV asked for, explicitly or by --out's name */
        fprintf(stderr, "miles-predict: --explain writes JSON lines (use --output-format jsonl or --out F.jsonl)\n");
        return 2;
    }
    if (explain) jsonl_out = 1;
    tool_set_threads(threads);

    /* input format: from --format, else the first non-blank byte */
    int stdin_in = !strcmp(input, "-");
    FILE *in = stdin_in ? stdin : fopen(input, "rb");
    if (!in) { fprintf(stderr, "miles-predict: %s: %s\n", input, strerror(errno)); return 1; }
    int jsonl_in;
    if (fmt) jsonl_in = !strcmp(fmt, "jsonl");
    else {
        int c0;
        while ((c0 = getc(in)) == ' ' || c0 == '\n' || c0 == '\r' || c0 == '\t' || c0 == 0xEF || c0 == 0xBB || c0 == 0xBF) {}
        jsonl_in = c0 == '{';
        if (c0 == '[') { fprintf(stderr, "miles-predict: %s is a JSON array; give JSON lines (yt-dlp -j), e.g. jq -c '.[]'\n", input); return 1; }
        if (stdin_in) {
            if (c0 != EOF) ungetc(c0, in);
        } else rewind(in);
    }
    if (!jsonl_in && stdin_in) { fprintf(stderr, "miles-predict: CSV input must be a file (not stdin)\n"); return 2; }
    if (ia.topic && stdin_in) { fprintf(stderr, "miles-predict: --topic reads a candidates file (not stdin)\n"); return 2; }
    if (!jsonl_in && !stdin_in) { fclose(in); in = NULL; }

    MilesPredictorOptions po;
    miles_predictor_options_default(&po);
    po.vocab_dir = vocab;
    po.batch_size = batch;
    po.device = device;
    po.precision = precision;
    MilesPredictor *p = NULL;
    int s = miles_predictor_open(&p, ckpt, &po);
    if (s != MILES_OK) return tool_fail("miles-predict", s);
    if (!quiet && miles_scaler_creator_avg(miles_predictor_scaler(p)) == MILES_CREATOR_AVG_PRIOR)
        /* the model's feature is not what a converted CSV holds: say so once, before any score */
        fputs("miles-predict: note: this model learned creator_avg_views from each creator's earlier videos "
              "(prepare --creator-avg prior); a record's creator_avg_views is used as given (the converters write "
              "the in-sample mean); to score a CSV as the model was trained: miles-data prepare --checkpoint, "
              "then miles-eval\n", stderr);

    if (ia.topic) {
        if (in) fclose(in);
        s = run_ideas(p, input, jsonl_in, &ia, stdout);
        miles_predictor_free(p);
        if (s != MILES_OK) return tool_fail("miles-predict", s);
        return fflush(stdout) == 0 ? 0 : 1;
    }
    MilesAtomicFile af;
    FILE *of = stdout;
    if (out) {
        if ((s = miles_atomic_open(&af, out)) != MILES_OK) return tool_fail("miles-predict", s);
        of = af.fp;
    }
    if (!jsonl_out)   /* a calibrated checkpoint's viral_score is recalibrated; the model's own follows */
        fputs(miles_predictor_calibration(p) ? "id,title,viral_score,is_viral,predicted_velocity,confidence,n_filled,"
                                               "viral_score_model\n"
                                             : "id,title,viral_score,is_viral,predicted_velocity,confidence,n_filled\n",
              of);
    Ctx c = {p, of, jsonl_out, skip_bad, 0, 0, 0, stdin_in ? "<stdin>" : input};
    c.explain = explain;
    if (explain) {
        miles_predictor_explain_config(p, &c.ecfg);
        c.ecfg.steps = explain_steps;
        c.ecfg.target = explain_target;
    }
    Batch b = {calloc(batch, sizeof(PjRecord)), calloc(batch, sizeof(int64_t)), 0, batch};
    /* records read (scored + skipped; the summary line tells them apart) of
     * the file's lines, counted for files over 1 MiB */
    int64_t total_est = 0;
    if (!stdin_in && !quiet) {
        struct stat stt;
        if (stat(input, &stt) == 0 && stt.st_size > (1 << 20)) total_est = count_lines(input) - !jsonl_in;
    }
    ToolProgress pg;
    tool_progress_start(&pg, !quiet, "read", "records", total_est, 1);
    if (!b.rec || !b.line) s = miles_set_error(MILES_ENOMEM, "out of memory");
    else s = jsonl_in ? run_jsonl(&c, in, &b, batch, &pg) : run_csv(&c, input, &b, batch, &pg);
    if (in && !stdin_in) fclose(in);
    if (s == MILES_OK && !out && (fflush(of) != 0 || ferror(of))) s = miles_set_error(MILES_EIO, "writing stdout failed");
    if (out) {
        if (s == MILES_OK) s = miles_atomic_commit(&af);
        else miles_atomic_abort(&af);
    }
    tool_progress_end(&pg, c.scored + c.skipped);
    for (int i = 0; i < b.n; i++) pj_record_free(&b.rec[i]);
    free(b.rec);
    free(b.line);
    if (s != MILES_OK) {
        miles_predictor_free(p);
        return tool_fail("miles-predict", s);
    }
    if (!quiet)
        fprintf(stderr, "miles-predict: %lld records scored (%lld viral at threshold %.4f), %lld skipped; model %s%s%s\n",
                (long long)c.scored, (long long)c.viral, miles_predictor_threshold(p), (long long)c.skipped,
                miles_predictor_version(p), out ? "; wrote " : "", out ? out : "");
    miles_predictor_free(p);
    return 0;
}
