/*
 * miles-data — the data pipeline command line.
 *
 *   miles-data prepare data/raw.csv --out data/prepared.milesdat
 *   miles-data inspect data/prepared.milesdat
 *   miles-data features --data data/prepared.milesdat title="POV: Budget 😂" views=16174 likes=832
 *   miles-data synth --rows 48079 --seed 42 --out data/synth.csv
 *   miles-data convert --from tiktok-vn ../shared/data/tiktok_vn_ie403/panel_scrape1_recrawl_DERIVED.csv --out data/vn.csv
 *
 * docs/data.md describes the schema, the features, the label and the file format.
 */
#include "miles.h"
#include "tool_common.h"

#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Provided by the sources module (libmiles/synth.c, libmiles/adapters.c);
 * declared here too in case its miles.h section does not declare them. */
int miles_synth_write_csv(const char *path, int64_t rows, uint64_t seed);
int miles_adapter_convert(const char *kind, const char *input, const char *out_csv, char *report,
                          size_t report_cap);

static const char *PROG = "miles-data";

static void usage(FILE *f) {
    fprintf(f,
"usage: miles-data COMMAND [options]\n"
"\n"
"commands:\n"
"  prepare CSV --out FILE     seed-schema CSV -> one prepared binary file (MILESDAT)\n"
"  inspect FILE [--json]      counts, viral rates, threshold, split, scaler of a prepared file\n"
"                             (--json: the same as one JSON object for scripts)\n"
"  features --data FILE|--scaler JSON name=value...\n"
"                             the 18 raw and standardized features of one record\n"
"                             (the exact training code path; what a server must produce)\n"
"  synth --rows N --seed S --out FILE\n"
"                             synthetic 58-column seed-schema CSV (libmiles/synth.c)\n"
"  convert --from KIND INPUT --out FILE\n"
"                             real source -> 58-column seed-schema CSV; KIND is ytdlp,\n"
"                             youtube2017, tiktok-vn or tiktok2020 (docs/data_sources.md)\n"
"  convert --from youtube2017 --country CC INPUT --out FILE\n"
"                             the trending file's country (US CA GB DE FR RU MX IN JP KR);\n"
"                             default: from the file name (CAvideos.csv -> CA), else US\n"
"\n"
"prepare options:\n"
"  --out FILE                 output file (written atomically; required)\n"
"  --vocab DIR                tokenizer directory or vocab.txt (default models/all-MiniLM-L6-v2)\n"
"  --max-len N                tokens per title incl. [CLS]/[SEP] (default 128)\n"
"  --language L               keep rows whose language column is L (default en; 'any' = all)\n"
"  --dedup                    drop rows whose row_id was seen before (keep the first)\n"
"  --text-clean seed|none     clean titles before tokenizing as the original did (default none)\n"
"  --percentile P             viral = velocity >= P-th percentile (default 80)\n"
"  --threshold-scope train|all|cohort  threshold from the training split (default), from all\n"
"                             rows before splitting (the original's behaviour), or per publish\n"
"                             cohort: viral = top (100-P)%% of the videos published in the same\n"
"                             --cohort-days N days (default 7; >= 50 rows a cohort)\n"
"  --cohort-days N            the cohort's window in days (with --threshold-scope cohort)\n"
"  --seed N                   split seed (default 42)\n"
"  --split-by row|creator|time  stratified row split (default), group split by author_handle,\n"
"                             or by publish day: oldest days train, newest test (no day in two)\n"
"  --train-frac F             training share (default 0.7; val and test split the rest)\n"
"  --log1p-counts             log1p on views, likes, comments, shares, saves, creator_avg_views\n"
"                             before standardizing\n"
"  --drop-features a,b        mask these features to 0 after standardization (layout stays 18);\n"
"                             groups: counts (views..saves), rates (the six rates), engagement\n"
"                             (both: what is only measured after publishing)\n"
"  --leak-bound B             warn when |Spearman(feature, velocity)| > B on train (default 0.5)\n"
"  --creator-avg data|prior   creator_avg_views: the CSV's column, else the mean views of the\n"
"                             creator's rows (data, default: in-sample, each row's own views in\n"
"                             it), or the mean views of the creator's videos from earlier\n"
"                             publish days (prior: known at publishing; needs dates)\n"
"  --checkpoint FILE          evaluate that model on this CSV (another source, a later crawl):\n"
"                             its scaler, label threshold, text cleaning, tokenizer and max-len\n"
"                             instead of fitting them, every row in the test split (then\n"
"                             miles-eval --checkpoint FILE --data OUT); only --language,\n"
"                             --dedup, --max-len, --leak-bound and --report go with it\n"
"  --report FILE.json         the report for scripts too (written atomically): rows, threshold\n"
"                             or cohorts, splits, per-feature Spearman, drift, the split rule\n"
"                             and label rule as the file records them\n"
"  -q, --quiet                no report on stdout\n"
"  -h, --help\n"
"\n"
"Exit status: 0 ok, 1 error, 2 usage error.\n");
}

static int cmd_prepare(int argc, char **argv) {
    MilesPrepareOptions o;
    miles_prepare_options_default(&o);
    const char *out = NULL, *scope = "train", *split_by = "row", *clean = "none", *cohort_days = NULL;
    const char *creator_avg = NULL;
    int quiet = 0;
    static const struct option lo[] = {
        {"out", 1, 0, 'o'}, {"vocab", 1, 0, 'v'}, {"max-len", 1, 0, 'm'}, {"language", 1, 0, 'l'},
        {"dedup", 0, 0, 'd'}, {"text-clean", 1, 0, 'c'}, {"percentile", 1, 0, 'p'},
        {"threshold-scope", 1, 0, 's'}, {"seed", 1, 0, 'S'}, {"split-by", 1, 0, 'b'},
        {"train-frac", 1, 0, 'f'}, {"log1p-counts", 0, 0, 'L'}, {"drop-features", 1, 0, 'D'},
        {"leak-bound", 1, 0, 'B'}, {"cohort-days", 1, 0, 'k'}, {"checkpoint", 1, 0, 'C'}, {"quiet", 0, 0, 'q'}, {"help", 0, 0, 'h'},
        {"report", 1, 0, 'R'}, {"creator-avg", 1, 0, 'A'},
        {0, 0, 0, 0}};
    int c;
    double seed = 42;
    const char *ckpt = NULL, *fitting = NULL; /* fitting: the first option --checkpoint replaces */
    const char *report = NULL;
    int max_len_set = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hq", lo, NULL)) != -1) {
        if (c > 0 && strchr("vcpsSbfLDkA", c) && !fitting)
            for (int i = 0; lo[i].name; i++)
                if (lo[i].val == c) fitting = lo[i].name;
        max_len_set |= c == 'm';
        switch (c) {
        case 'C': ckpt = optarg; break;
        case 'R': report = optarg; break;
        case 'o': out = optarg; break;
        case 'v': o.vocab_dir = optarg; break;
        case 'm': if (tool_parse_int(optarg, "--max-len", 2, 4096, &o.max_len)) return 2; break;
        case 'l': o.language = optarg; break;
        case 'd': o.dedup = 1; break;
        case 'c': clean = optarg; break;
        case 'p': /* an open interval: [%g] of the parser would print 1e-9 and 100 - 1e-9 as "1e-09" and "100" */
            if (tool_parse_double(optarg, "--percentile", 0, 100, &o.percentile)) return 2;
            if (!(o.percentile > 0 && o.percentile < 100)) {
                fprintf(stderr, "--percentile: expected a number strictly between 0 and 100, got \"%s\"\n", optarg);
                return 2;
            }
            break;
        case 's': scope = optarg; break;
        case 'k': cohort_days = optarg; break;
        case 'A': creator_avg = optarg; break;
        case 'S': if (tool_parse_double(optarg, "--seed", 0, 9007199254740992.0, &seed)) return 2; break;
        case 'b': split_by = optarg; break;
        case 'f': if (tool_parse_double(optarg, "--train-frac", 0.01, 0.99, &o.train_frac)) return 2; break;
        case 'L': o.log1p_counts = 1; break;
        case 'D': if (tool_feature_mask(optarg, &o.drop_mask)) return 2; break;
        case 'B': if (tool_parse_double(optarg, "--leak-bound", 0, 1, &o.leak_bound)) return 2; break;
        case 'q': quiet = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (seed != floor(seed)) { fprintf(stderr, "%s: --seed must be a whole number\n", PROG); return 2; }
    o.seed = (uint64_t)seed;
    if (tool_prepare_words(PROG, split_by, scope, cohort_days, clean, creator_avg, &o)) return 2;
    if (optind != argc - 1 || !out) {
        fprintf(stderr, "%s prepare: need exactly one input CSV and --out FILE\n", PROG);
        return 2;
    }
    /* no output may be an input: the CSV (the library refuses --out too), the checkpoint, each other */
    const char *csv = argv[optind];
    if (tool_refuse_clobber(PROG, "--out", out, "checkpoint", ckpt) ||
        tool_refuse_clobber(PROG, "--report", report, "input CSV", csv) ||
        tool_refuse_clobber(PROG, "--report", report, "checkpoint", ckpt) ||
        tool_refuse_clobber(PROG, "--report", report, "--out file", out))
        return 2;
    if (report && !strcmp(report, out)) { fprintf(stderr, "%s: --report and --out name the same file\n", PROG); return 2; }
    MilesPrepareReport rep;
    int st;
    if (ckpt) {
        if (fitting) {
            fprintf(stderr, "%s prepare: --%s cannot go with --checkpoint: the checkpoint's scaler, threshold, split, "
                    "text cleaning and tokenizer are used\n", PROG, fitting);
            return 2;
        }
        if (!max_len_set) o.max_len = 0; /* the checkpoint's */
        MilesCheckpoint *ck = NULL;
        st = miles_checkpoint_open(&ck, ckpt);
        if (st == MILES_OK) st = miles_data_prepare_for(argv[optind], out, ck, &o, &rep);
        miles_checkpoint_close(ck);
    } else {
        st = miles_data_prepare(argv[optind], out, &o, &rep);
    }
    if (st) return tool_fail(PROG, st);
    if (report && tool_write_prepare_report(PROG, report, argv[optind], out, &rep, o.leak_bound)) return 1;
    if (!quiet) {
        static char buf[16384];
        miles_prepare_report_format(&rep, o.leak_bound, buf, sizeof buf);
        fputs(buf, stdout);
        printf("wrote %s\n", out);
    }
    return 0;
}

static void print_features(const double *raw, const float *z, uint32_t avail) {
    printf("%-20s %22s %14s\n", "feature", "raw", "standardized");
    for (int f = 0; f < MILES_NUM_FEATURES; f++) {
        if (avail >> f & 1u) printf("%-20s %22.17g %14.8g\n", miles_feature_names[f], raw[f], (double)z[f]);
        else printf("%-20s %22s %14.8g\n", miles_feature_names[f], "missing", (double)z[f]);
    }
}

/* Split s of p in *v; its viral count. */
static int64_t split_viral(MilesPrepared *p, int s, MilesDataset *v) {
    miles_prepared_split(p, s, v);
    int64_t viral = 0;
    for (int64_t i = 0; i < v->n; i++) viral += v->labels[i];
    return viral;
}

/* inspect --json: what the text shows, for scripts (the scaler parsed in) */
static int inspect_json(const char *path, MilesPrepared *p) {
    static const char *names[3] = {"train", "val", "test"};
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "file", path);
    char crc[12];
    snprintf(crc, sizeof crc, "%08x", miles_prepared_crc32(p));
    cJSON_AddStringToObject(j, "crc32", crc);
    cJSON_AddStringToObject(j, "vocab_hash", miles_prepared_vocab_hash(p));
    cJSON_AddStringToObject(j, "text_clean", miles_prepared_text_clean(p) == MILES_TEXT_CLEAN_SEED ? "seed" : "none");
    cJSON *sp = cJSON_AddObjectToObject(j, "splits");
    for (int s = 0; s < 3; s++) {
        MilesDataset v;
        int64_t viral = split_viral(p, s, &v);
        cJSON *e = cJSON_AddObjectToObject(sp, names[s]);
        cJSON_AddNumberToObject(e, "n", (double)v.n);
        cJSON_AddNumberToObject(e, "viral", (double)viral);
        if (v.n) cJSON_AddNumberToObject(e, "viral_rate", (double)viral / (double)v.n);
        else cJSON_AddNullToObject(e, "viral_rate");
        if (s == 0) cJSON_AddNumberToObject(j, "max_len", v.max_len);
    }
    cJSON_AddItemToObject(j, "split_rule", tool_split_json(p));
    cJSON *scaler = cJSON_Parse(miles_prepared_scaler_json(p));   /* the loader parsed it already */
    if (scaler) cJSON_AddItemToObject(j, "scaler", scaler);
    tool_json_exact_all(j);
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    if (!txt) return tool_fail(PROG, MILES_ENOMEM);
    puts(txt);
    free(txt);
    return 0;
}

static int cmd_inspect(int argc, char **argv) {
    const char *path = NULL;
    int json = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = 1;
        else if (!path) path = argv[i];
        else path = "";
    }
    if (!path || !*path) { fprintf(stderr, "usage: %s inspect FILE [--json] (one prepared file)\n", PROG); return 2; }
    MilesPrepared *p;
    int st = miles_prepared_open(&p, path);
    if (st) return tool_fail(PROG, st);
    if (json) {
        st = inspect_json(path, p);
        miles_prepared_free(p);
        return st;
    }
    static const char *names[3] = {"train", "val", "test"};
    MilesDataset v;
    printf("%s: data CRC-32 %08x, vocab hash %s, text cleaning %s\n", path, miles_prepared_crc32(p),
           miles_prepared_vocab_hash(p), miles_prepared_text_clean(p) == MILES_TEXT_CLEAN_SEED ? "seed" : "none");
    for (int s = 0; s < 3; s++) {
        int64_t viral = split_viral(p, s, &v);
        printf("  %-5s n=%-7lld viral=%-6lld rate=%.4f max_len=%d\n", names[s], (long long)v.n, (long long)viral,
               v.n ? (double)viral / (double)v.n : 0.0, v.max_len);
    }
    miles_prepared_split(p, 0, &v);
    if (v.n > 0) {
        printf("first training example: id %s title \"%s\" label %d velocity %.17g (scaled %.8g)\n",
               miles_prepared_row_id(p, 0, 0), miles_prepared_title(p, 0, 0), v.labels[0], v.velocity_raw[0],
               (double)v.velocity[0]);
        print_features(v.features_raw, v.features, v.avail[0]);
    }
    char how[256];
    tool_split_describe(p, how, sizeof how);
    printf("split: %s\n", how);
    printf("scaler:\n%s\n", miles_prepared_scaler_json(p));
    miles_prepared_free(p);
    return 0;
}

static int cmd_features(int argc, char **argv) {
    const char *data = NULL, *scaler_path = NULL;
    static const struct option lo[] = {{"data", 1, 0, 'd'}, {"scaler", 1, 0, 's'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'd': data = optarg; break;
        case 's': scaler_path = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!data == !scaler_path) { fprintf(stderr, "%s features: give one of --data FILE or --scaler JSON\n", PROG); return 2; }
    int n = argc - optind;
    const char **names = calloc((size_t)n + 1, sizeof *names), **vals = calloc((size_t)n + 1, sizeof *vals);
    char **copies = calloc((size_t)n + 1, sizeof *copies);
    if (!names || !vals || !copies) { fprintf(stderr, "%s: out of memory\n", PROG); return 1; }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        copies[i] = strdup(argv[optind + i]);
        char *eq = copies[i] ? strchr(copies[i], '=') : NULL;
        if (!eq) { fprintf(stderr, "%s features: '%s' is not name=value\n", PROG, argv[optind + i]); rc = 2; goto out; }
        *eq = '\0';
        names[i] = copies[i];
        vals[i] = eq + 1;
    }
    MilesScaler *sc = NULL;
    int st;
    if (data) {
        MilesPrepared *p;
        st = miles_prepared_open(&p, data);
        if (!st) {
            st = miles_scaler_from_json(&sc, miles_prepared_scaler_json(p));
            if (st) {
                char pre[1200];
                snprintf(pre, sizeof pre, "%s: the embedded scaler", data);
                tool_error_prefix(st, pre);
            }
            miles_prepared_free(p);
        }
    } else {
        char *text = NULL;
        st = tool_read_file(scaler_path, &text);
        /* blame the scaler file, not the data */
        if (!st && (st = miles_scaler_from_json(&sc, text)) != MILES_OK) tool_error_prefix(st, scaler_path);
        free(text);
    }
    if (st) { rc = tool_fail(PROG, st); goto out; }
    double raw[MILES_NUM_FEATURES];
    float z[MILES_NUM_FEATURES];
    uint32_t avail = 0;
    MilesRecord rec = {n, names, vals, NULL};
    st = miles_features_compute(&rec, raw, &avail);
    if (!st) st = miles_scaler_transform(sc, raw, avail, z);
    miles_scaler_free(sc);
    if (st) { rc = tool_fail(PROG, st); goto out; }
    print_features(raw, z, avail);
out:
    for (int i = 0; i < n; i++) free(copies[i]);
    free(copies); free(names); free(vals);
    return rc;
}

static int cmd_synth(int argc, char **argv) {
    const char *out = NULL;
    double rows = -1, seed = 42;
    static const struct option lo[] = {{"rows", 1, 0, 'r'}, {"seed", 1, 0, 's'}, {"out", 1, 0, 'o'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'r': if (tool_parse_double(optarg, "--rows", 1, 1e9, &rows)) return 2; break;
        case 's': if (tool_parse_double(optarg, "--seed", 0, 9007199254740992.0, &seed)) return 2; break;
        case 'o': out = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (rows < 1 || rows != floor(rows) || seed != floor(seed) || !out || optind != argc) {
        fprintf(stderr, "%s synth: need --rows N (whole number) --out FILE [--seed S]\n", PROG);
        return 2;
    }
    int st = miles_synth_write_csv(out, (int64_t)rows, (uint64_t)seed);
    if (st) return tool_fail(PROG, st);
    printf("wrote %s (%lld rows, seed %llu)\n", out, (long long)rows, (unsigned long long)seed);
    return 0;
}

static int cmd_convert(int argc, char **argv) {
    const char *out = NULL, *kind = NULL, *country = NULL;
    static const struct option lo[] = {{"from", 1, 0, 'f'}, {"out", 1, 0, 'o'}, {"country", 1, 0, 'c'},
                                       {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
        switch (c) {
        case 'f': kind = optarg; break;
        case 'o': out = optarg; break;
        case 'c': country = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!kind || !out || optind != argc - 1) {
        fprintf(stderr, "%s convert: need --from KIND INPUT --out FILE\n", PROG);
        return 2;
    }
    if (tool_refuse_clobber(PROG, "--out", out, "input", argv[optind])) return 2;   /* a source data set, destroyed */
    char kind_cc[64];
    if (country) { /* youtube2017 only: the file's country (else from <CC>videos.csv) */
        if (strcmp(kind, "youtube2017") != 0) {
            fprintf(stderr, "%s convert: --country applies to --from youtube2017 only\n", PROG);
            return 2;
        }
        snprintf(kind_cc, sizeof kind_cc, "youtube2017:%.8s", country);
        kind = kind_cc;
    }
    static char report[65536];
    report[0] = '\0';
    int st = miles_adapter_convert(kind, argv[optind], out, report, sizeof report);
    if (report[0]) fputs(report, st ? stderr : stdout);
    if (st) return tool_fail(PROG, st);
    printf("wrote %s\n", out);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) { usage(stderr); return 2; }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) { usage(stdout); return 0; }
    argc--; argv++;
    if (!strcmp(cmd, "prepare")) return cmd_prepare(argc, argv);
    if (!strcmp(cmd, "inspect")) return cmd_inspect(argc, argv);
    if (!strcmp(cmd, "features")) return cmd_features(argc, argv);
    if (!strcmp(cmd, "synth")) return cmd_synth(argc, argv);
    if (!strcmp(cmd, "convert")) return cmd_convert(argc, argv);
    fprintf(stderr, "%s: unknown command '%s' (try --help)\n", PROG, cmd);
    return 2;
}
