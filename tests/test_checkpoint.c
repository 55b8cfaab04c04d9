/*
 * test_checkpoint.c — checkpoint integrity (issue 18): the CRC-32 of every
 * tensor is stored and verified (a flipped bit is refused naming the file and
 * the tensor), so is the header's (a changed metadata digit or dtype), a header length off by one never loads shifted weights,
 * non-finite weights are refused by every loader (model, resume state, the
 * predictor, the exports), the model config is bounded before any allocation
 * (layers, vocabulary, hidden sizes, positions; unknown hidden_act), a
 * non-number decision_threshold is refused, a config that does not describe
 * the tensors (wider, fewer or more layers; another model on resume) is
 * refused naming the tensor and both shapes, and older "miles-checkpoint-1"/-2
 * files (no CRC) still load.
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
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "miles.h"
#include "internal.h"
#include "train_internal.h"
#include "helpers.h"

#define FIX_V1 "tests/fixtures/export_tiny.safetensors" /* a "miles-checkpoint-1" file */

static char g_dir[128];
static char g_good[300];

static MilesModel *tiny_model(void) {
    MilesConfig cfg;
    OK(miles_config_preset(&cfg, "miles", "tiny"));
    cfg.vocab_size = 64;
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &cfg));
    OK(miles_model_init_random(m, 7, 0.02f));
    return m;
}

static void save(const char *path, MilesModel *m) {
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    MilesTrainState st = {0};
    st.threshold = 0.5;
    MilesAdamWConfig oc = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
    MilesAdamW *opt = NULL;
    OK(miles_adamw_build(&opt, m, &oc));
    OK(miles_ckpt_save(path, m, opt, &st, &tc, NULL, NULL));
    miles_adamw_free(opt);
}

static int setup(void **state) {
    (void)state;
    if (test_mkdtemp(g_dir, sizeof g_dir, "ckpt") != 0) return -1;
    snprintf(g_good, sizeof g_good, "%s/good.safetensors", g_dir);
    MilesModel *m = tiny_model();
    save(g_good, m);
    miles_model_free(m);
    return 0;
}
static int teardown(void **state) {
    (void)state;
    test_rm_rf(g_dir);
    return 0;
}

static void write_bytes(const char *path, const unsigned char *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* Copy src to dst with metadata `key` set to `value` (NULL: removed) and the
 * first element of tensor `nan_tensor` (NULL: none) set to NaN; CRCs
 * recomputed, so only the change under test differs. */
static void rewrite_crc(const char *src, const char *dst, const char *key, const char *value, const char *nan_tensor,
                        int crc) {
    /* every metadata key of the source (read from its header), the CRCs excepted */
    size_t fn;
    char *raw = test_slurp(src, &fn);
    assert_non_null(raw);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | (unsigned char)raw[i];
    cJSON *hdr = cJSON_ParseWithLength(raw + 8, (size_t)hl);
    free(raw);
    assert_non_null(hdr);
    const cJSON *md = cJSON_GetObjectItemCaseSensitive(hdr, "__metadata__"), *it;
    const char *keys[64];
    size_t nkeys = 0;
    int have_key = 0;
    cJSON_ArrayForEach(it, md) if (nkeys < 64 && strcmp(it->string, MILES_META_CRC32) != 0 &&
                                   strcmp(it->string, MILES_META_HEADER_CRC32) != 0) {
        keys[nkeys++] = it->string;
        have_key |= key && !strcmp(it->string, key);
    }
    if (key && !have_key && nkeys < 64) keys[nkeys++] = key;
    MilesSafetensors *st = NULL;
    OK(miles_safetensors_open(&st, src));
    MilesSafetensorsWriter *w = NULL;
    OK(miles_safetensors_writer_open(&w, dst));
    if (crc) miles_safetensors_writer_crc(w);
    int n = miles_safetensors_count(st);
    void **copies = calloc((size_t)n, sizeof *copies);
    for (int i = 0; i < n; i++) {
        int dt, nd;
        int64_t shp[8];
        size_t nb;
        OK(miles_safetensors_info(st, i, &dt, &nd, shp, NULL));
        const void *d = miles_safetensors_data(st, i, &nb);
        copies[i] = malloc(nb ? nb : 1);
        memcpy(copies[i], d, nb);
        if (nan_tensor && !strcmp(nan_tensor, miles_safetensors_name(st, i))) {
            float x = NAN;
            memcpy(copies[i], &x, 4);
        }
        OK(miles_safetensors_writer_add(w, miles_safetensors_name(st, i), dt, nd, shp, copies[i]));
    }
    for (size_t k = 0; k < nkeys; k++) {
        const char *v = !strcmp(keys[k], key ? key : "") ? value : miles_safetensors_metadata(st, keys[k]);
        if (v) OK(miles_safetensors_writer_metadata(w, keys[k], v));
    }
    OK(miles_safetensors_writer_finish(w));
    cJSON_Delete(hdr);
    for (int i = 0; i < n; i++) free(copies[i]);
    free(copies);
    miles_safetensors_close(st);
}
static void rewrite(const char *src, const char *dst, const char *key, const char *value, const char *nan_tensor) {
    rewrite_crc(src, dst, key, value, nan_tensor, 1);
}

static int expect_open_fails(const char *path, const char *want1, const char *want2) {
    MilesModel *m = NULL;
    int s = miles_checkpoint_load_model(&m, path);
    if (s == MILES_OK) fail_msg("%s loaded (expected an error naming %s)", path, want1);
    const char *e = miles_last_error();
    printf("  refused: %s\n", e);
    if (want1 && !strstr(e, want1)) fail_msg("error does not name \"%s\": %s", want1, e);
    if (want2 && !strstr(e, want2)) fail_msg("error does not name \"%s\": %s", want2, e);
    assert_null(m);
    return s;
}

static void test_crc_stored_and_verified(void **state) {
    (void)state;
    MilesCheckpoint *c = NULL;
    OK(miles_checkpoint_open(&c, g_good));
    assert_string_equal(miles_checkpoint_meta(c, MILES_META_FORMAT), "miles-checkpoint-4");
    assert_non_null(miles_checkpoint_meta(c, MILES_META_CRC32));
    assert_int_equal(strlen(miles_checkpoint_meta(c, MILES_META_HEADER_CRC32)), 8);
    miles_checkpoint_close(c);
    size_t n;
    unsigned char *b = (unsigned char *)test_slurp(g_good, &n);
    assert_non_null(b);
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    /* flip one bit in the middle of the data section: some tensor is named */
    size_t at = 8 + hl + (n - 8 - hl) / 2;
    b[at] ^= 0x10;
    char bad[300];
    snprintf(bad, sizeof bad, "%s/flipped.safetensors", g_dir);
    write_bytes(bad, b, n);
    expect_open_fails(bad, bad, "CRC-32 mismatch");
    /* and the last byte of the last tensor */
    b[at] ^= 0x10;
    b[n - 1] ^= 0x01;
    write_bytes(bad, b, n);
    expect_open_fails(bad, "tensor '", "CRC-32 mismatch");
    free(b);
    /* removing the checksums from a -3 file is refused, not silently accepted */
    char nocrc[300];
    snprintf(nocrc, sizeof nocrc, "%s/nocrc.safetensors", g_dir);
    MilesSafetensors *st = NULL;
    OK(miles_safetensors_open(&st, g_good));
    MilesSafetensorsWriter *w = NULL;
    OK(miles_safetensors_writer_open(&w, nocrc));
    for (int i = 0; i < miles_safetensors_count(st); i++) {
        int dt, nd;
        int64_t shp[8];
        OK(miles_safetensors_info(st, i, &dt, &nd, shp, NULL));
        OK(miles_safetensors_writer_add(w, miles_safetensors_name(st, i), dt, nd, shp,
                                        miles_safetensors_data(st, i, NULL)));
    }
    OK(miles_safetensors_writer_metadata(w, MILES_META_FORMAT, MILES_CHECKPOINT_FORMAT));
    OK(miles_safetensors_writer_metadata(w, MILES_META_CONFIG, miles_safetensors_metadata(st, MILES_META_CONFIG)));
    OK(miles_safetensors_writer_finish(w));
    miles_safetensors_close(st);
    expect_open_fails(nocrc, MILES_META_CRC32, "missing");
}

/* offset of the first `needle` in the header of the file image b[0..n) */
static size_t header_find(const unsigned char *b, size_t n, const char *needle) {
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
    const size_t k = strlen(needle);
    for (size_t i = 8; i + k <= 8 + hl && i + k <= n; i++)
        if (!memcmp(b + i, needle, k)) return i;
    fail_msg("\"%s\" not in the header", needle);
    return 0;
}

/* The header's CRC (miles-checkpoint-4): changes that keep the file
 * well-formed and every tensor's bytes (a digit of the config's
 * layer_norm_eps, a tensor's dtype F32 -> I32 of the same size) are refused;
 * without the key a -4 file is refused, a -3 file (written before it) loads. */
static void test_header_crc(void **state) {
    (void)state;
    size_t n;
    unsigned char *b = (unsigned char *)test_slurp(g_good, &n);
    assert_non_null(b);
    char bad[300];
    snprintf(bad, sizeof bad, "%s/header.safetensors", g_dir);
    /* the config is a JSON string inside the header: layer_norm_eps\":9.99...e-13 */
    size_t at = header_find(b, n, "layer_norm_eps\\\":") + strlen("layer_norm_eps\\\":");
    while (b[at] == ' ') at++;
    const unsigned char digit = b[at];
    assert_true(digit >= '1' && digit <= '9');
    b[at] = digit == '9' ? '8' : digit + 1;
    write_bytes(bad, b, n);
    expect_open_fails(bad, bad, "header CRC-32 mismatch");
    b[at] = digit;
    write_bytes(bad, b, n);
    MilesModel *m = NULL;
    OK(miles_checkpoint_load_model(&m, bad)); /* the surgery itself is sound */
    miles_model_free(m);
    at = header_find(b, n, "\"dtype\":\"F32\"") + strlen("\"dtype\":\"");
    b[at] = 'I';
    write_bytes(bad, b, n);
    expect_open_fails(bad, "header CRC-32 mismatch", "dtype");
    b[at] = 'F';
    /* a value that is not 8 hex digits */
    at = header_find(b, n, "\"" MILES_META_HEADER_CRC32 "\":\"") + strlen("\"" MILES_META_HEADER_CRC32 "\":\"");
    const unsigned char h0 = b[at];
    b[at] = 'g';
    write_bytes(bad, b, n);
    expect_open_fails(bad, MILES_META_HEADER_CRC32, "is not 8 hex digits");
    b[at] = h0;
    /* the key renamed (same length, still valid JSON): a -4 file without it */
    at = header_find(b, n, "\"" MILES_META_HEADER_CRC32 "\"");
    b[at + strlen(MILES_META_HEADER_CRC32)] = 'x';
    write_bytes(bad, b, n);
    expect_open_fails(bad, MILES_META_HEADER_CRC32, "missing in a miles-checkpoint-4 file");
    /* ... and as a -3 file, which had no header CRC: it loads */
    size_t f = header_find(b, n, "miles-checkpoint-4") + strlen("miles-checkpoint-");
    b[f] = '3';
    write_bytes(bad, b, n);
    OK(miles_checkpoint_load_model(&m, bad));
    miles_model_free(m);
    free(b);
}

/* Header length +-1: the data section would start one byte off. */
static void test_header_length_off_by_one(void **state) {
    (void)state;
    size_t n;
    unsigned char *b = (unsigned char *)test_slurp(g_good, &n);
    assert_non_null(b);
    char bad[300];
    snprintf(bad, sizeof bad, "%s/hdr.safetensors", g_dir);
    /* pad the header with 8 more spaces (still valid), so that a length one
     * short still holds the whole JSON and only the data start moves */
    uint64_t hl0 = 0;
    for (int i = 7; i >= 0; i--) hl0 = hl0 << 8 | b[i];
    unsigned char *p = malloc(n + 8);
    memcpy(p, b, 8 + hl0);
    memset(p + 8 + hl0, ' ', 8);
    memcpy(p + 16 + hl0, b + 8 + hl0, n - 8 - hl0);
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)((hl0 + 8) >> (8 * i));
    free(b);
    b = p;
    n += 8;
    write_bytes(bad, b, n);
    MilesModel *ok = NULL;
    OK(miles_checkpoint_load_model(&ok, bad));
    miles_model_free(ok);
    for (int d = -1; d <= 1; d += 2) {
        uint64_t hl = 0;
        for (int i = 7; i >= 0; i--) hl = hl << 8 | b[i];
        uint64_t h2 = hl + (uint64_t)(int64_t)d;
        unsigned char *c = malloc(n);
        memcpy(c, b, n);
        for (int i = 0; i < 8; i++) c[i] = (unsigned char)(h2 >> (8 * i));
        write_bytes(bad, c, n);
        expect_open_fails(bad, bad, NULL);
        /* also without the CRCs' help: a plain safetensors open refuses it */
        MilesSafetensors *st = NULL;
        assert_int_equal(miles_safetensors_open_memory(&st, c, n, "hdr"), MILES_EFORMAT);
        printf("  header %+d: %s\n", d, miles_last_error());
        free(c);
    }
    free(b);
}

static void test_nonfinite_weights(void **state) {
    (void)state;
    char bad[300];
    snprintf(bad, sizeof bad, "%s/nan.safetensors", g_dir);
    rewrite(g_good, bad, NULL, NULL, "bert.embeddings.word_embeddings.weight");
    expect_open_fails(bad, "bert.embeddings.word_embeddings.weight", "not finite");
    /* the predictor */
    MilesPredictor *p = NULL;
    MilesPredictorOptions po;
    miles_predictor_options_default(&po);
    assert_int_not_equal(miles_predictor_open(&p, bad, &po), MILES_OK);
    assert_non_null(strstr(miles_last_error(), "not finite"));
    /* resume */
    MilesModel *m = tiny_model();
    MilesAdamWConfig oc = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
    MilesAdamW *opt = NULL;
    OK(miles_adamw_build(&opt, m, &oc));
    MilesTrainState st;
    assert_int_equal(miles_ckpt_load_state(bad, m, opt, &st), MILES_ENAN);
    /* NaN in the optimizer moments is refused on resume too */
    rewrite(g_good, bad, NULL, NULL, "optim.v");
    assert_int_equal(miles_ckpt_load_state(bad, m, opt, &st), MILES_ENAN);
    assert_non_null(strstr(miles_last_error(), "optim.v"));
    OK(miles_ckpt_load_state(g_good, m, opt, &st));
    miles_adamw_free(opt);
    miles_model_free(m);
    /* exports */
    char out[300];
    snprintf(out, sizeof out, "%s/hf_out", g_dir);
    rewrite(g_good, bad, NULL, NULL, "bert.embeddings.word_embeddings.weight");
    assert_int_not_equal(miles_export_hf(bad, out, NULL), MILES_OK);
    assert_non_null(strstr(miles_last_error(), "not finite"));
}

/* json = cfg with the value of "field" replaced by `value` (JSON text) */
static void config_with(const char *cfg, const char *field, const char *value, char *json, size_t cap) {
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", field);
    const char *at = strstr(cfg, pat);
    assert_non_null(at);
    const char *v = at + strlen(pat), *e = v;
    if (*e == '"') { e++; while (*e != '"') e++; e++; }
    else while (*e != ',' && *e != '}') e++;
    snprintf(json, cap, "%.*s%s%s", (int)(v - cfg), cfg, value, e);
}

static void test_config_bounds(void **state) {
    (void)state;
    MilesCheckpoint *c = NULL;
    OK(miles_checkpoint_open(&c, g_good));
    char *cfg = strdup(miles_checkpoint_meta(c, MILES_META_CONFIG));
    miles_checkpoint_close(c);
    struct { const char *field, *value, *want; } cases[] = {
        {"num_hidden_layers", "100000", "num_hidden_layers"},
        {"vocab_size", "4611686018427387904", "vocab_size"},
        {"vocab_size", "-5", "vocab_size"},
        {"hidden_size", "1048576", "hidden_size"},
        {"intermediate_size", "10000000", "intermediate_size"},
        {"max_position_embeddings", "100000000", "max_position_embeddings"},
        {"num_attention_heads", "1.5", "num_attention_heads"},
        {"hidden_act", "\"nope\"", "hidden_act"},
        {"type_vocab_size", "1e300", "type_vocab_size"},
        {"layer_norm_eps", "\"small\"", "\"layer_norm_eps\" missing or not a number"},
        {"pooling", "\"max\"", "unknown pooling \"max\""},
        {"pooling", "2", "\"pooling\" missing"},
        {"velocity_activation", "\"tanh\"", "unknown velocity_activation \"tanh\""},
        {"velocity_activation", "null", "\"velocity_activation\" missing"},
        {"fusion_widths", "[512,64]", "\"fusion_widths\"/\"fusion_dropouts\" missing or of different lengths"},
        {"fusion_dropouts", "{}", "\"fusion_widths\"/\"fusion_dropouts\" missing or of different lengths"},
        {"fusion_widths", "[0]", "bad entry 0 in \"fusion_widths\"/\"fusion_dropouts\""},
        {"numeric_widths", "[2.5]", "bad entry 0 in \"numeric_widths\"/\"numeric_dropouts\""},
        {"numeric_dropouts", "[\"x\"]", "bad entry 0 in \"numeric_widths\"/\"numeric_dropouts\""},
    };
    char bad[300], json[8192];
    snprintf(bad, sizeof bad, "%s/cfg.safetensors", g_dir);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        config_with(cfg, cases[i].field, cases[i].value, json, sizeof json);
        rewrite(g_good, bad, MILES_META_CONFIG, json, NULL);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        expect_open_fails(bad, cases[i].want, NULL);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        if (s > 0.5) fail_msg("%s: refused only after %.2f s (allocated first?)", cases[i].field, s);
        assert_null(strstr(miles_last_error(), "-2147483648"));
    }
    /* more layers than MILES_MAX_MLP, and a config that is not an object */
    MilesConfig jc;
    OK(miles_config_preset(&jc, "miles", "tiny"));
    char *js = NULL;
    OK(miles_config_to_json(&jc, &js));
    char *nw = strstr(js, "\"numeric_widths\":"), *nd = strstr(js, "\"numeric_dropouts\":");
    assert_true(nw && nd && nw < nd);
    char *nd_end = strchr(nd, ']');
    assert_non_null(nd_end);
    snprintf(json, sizeof json, "%.*s\"numeric_widths\":[8,8,8,8,8,8,8,8,8],\"numeric_dropouts\":[0,0,0,0,0,0,0,0,0]%s",
             (int)(nw - js), js, nd_end + 1);
    assert_int_equal(miles_config_from_json(&jc, json), MILES_EFORMAT);
    printf("  refused: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "more than 8 layers in \"numeric_widths\""));
    free(js);
    assert_int_equal(miles_config_from_json(&jc, "[1, 2]"), MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "model config: not a JSON object"));
    assert_int_equal(miles_config_from_json(&jc, "{\"vocab_size\": "), MILES_EFORMAT);
    free(cfg);
    /* the bounds hold for built configs too */
    MilesConfig mc;
    OK(miles_config_preset(&mc, "miles", "tiny"));
    mc.num_hidden_layers = 100000;
    assert_int_equal(miles_config_validate(&mc), MILES_EINVAL);
    OK(miles_config_preset(&mc, "miles", "minilm-l6"));
    OK(miles_config_validate(&mc));
}

/* A config within bounds that does not describe the file's tensors (the
 * "config" metadata is outside the CRCs): every difference is refused,
 * naming the tensor and both shapes; a model of another config is refused on
 * resume too.  Nothing loads part of a model. */
static void test_config_weights_disagree(void **state) {
    (void)state;
    MilesCheckpoint *c = NULL;
    OK(miles_checkpoint_open(&c, g_good));
    char *cfg = strdup(miles_checkpoint_meta(c, MILES_META_CONFIG));
    miles_checkpoint_close(c);
    MilesConfig mc;
    OK(miles_config_from_json(&mc, cfg));
    char bad[300], json[8192], v[32], want[256];
    snprintf(bad, sizeof bad, "%s/disagree.safetensors", g_dir);
    /* a wider FFN than the weights */
    snprintf(v, sizeof v, "%d", mc.intermediate_size + 8);
    config_with(cfg, "intermediate_size", v, json, sizeof json);
    rewrite(g_good, bad, MILES_META_CONFIG, json, NULL);
    snprintf(want, sizeof want, "intermediate.dense.weight\" has shape [%d,%d], the model (of its \"config\" "
             "metadata) expects [%d,%d]", mc.intermediate_size, mc.hidden_size, mc.intermediate_size + 8, mc.hidden_size);
    assert_int_equal(expect_open_fails(bad, "bert.encoder.layer.0.", want), MILES_ESHAPE);
    /* one layer fewer than the weights: the last layer's tensors are extra */
    snprintf(v, sizeof v, "%d", mc.num_hidden_layers - 1);
    config_with(cfg, "num_hidden_layers", v, json, sizeof json);
    rewrite(g_good, bad, MILES_META_CONFIG, json, NULL);
    snprintf(want, sizeof want, "tensor \"bert.encoder.layer.%d.", mc.num_hidden_layers - 1);
    char want2[128];
    snprintf(want2, sizeof want2, "is not a parameter of the model (of its \"config\" metadata: num_hidden_layers %d,",
             mc.num_hidden_layers - 1);
    assert_int_equal(expect_open_fails(bad, want, want2), MILES_EFORMAT);
    MilesPredictor *p = NULL;
    MilesPredictorOptions po;
    miles_predictor_options_default(&po);
    assert_int_equal(miles_predictor_open(&p, bad, &po), MILES_EFORMAT);
    assert_null(p);
    /* one layer more: the file lacks its tensors */
    snprintf(v, sizeof v, "%d", mc.num_hidden_layers + 1);
    config_with(cfg, "num_hidden_layers", v, json, sizeof json);
    rewrite(g_good, bad, MILES_META_CONFIG, json, NULL);
    snprintf(want, sizeof want, "tensor \"bert.encoder.layer.%d.", mc.num_hidden_layers);
    assert_int_equal(expect_open_fails(bad, want, "missing"), MILES_EMISSING);
    free(cfg);
    /* resume into a model of another vocabulary size */
    MilesConfig oc_cfg = mc;
    oc_cfg.vocab_size = mc.vocab_size + 1;
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &oc_cfg));
    MilesAdamWConfig oc = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.0f, 0};
    MilesAdamW *opt = NULL;
    OK(miles_adamw_build(&opt, m, &oc));
    MilesTrainState st;
    assert_int_equal(miles_ckpt_load_state(g_good, m, opt, &st), MILES_ESHAPE);
    printf("  refused: %s\n", miles_last_error());
    snprintf(want, sizeof want, "\"bert.embeddings.word_embeddings.weight\" has shape [%d,%d], the model (being "
             "resumed) expects [%d,%d]", mc.vocab_size, mc.hidden_size, mc.vocab_size + 1, mc.hidden_size);
    if (!strstr(miles_last_error(), want)) fail_msg("error does not name \"%s\": %s", want, miles_last_error());
    miles_adamw_free(opt);
    miles_model_free(m);
}

static void test_threshold_must_be_number(void **state) {
    (void)state;
    char bad[300];
    snprintf(bad, sizeof bad, "%s/thr.safetensors", g_dir);
    const char *vals[] = {"abc", "0.5x", "nan", "1.5", ""};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++) {
        rewrite(g_good, bad, MILES_META_THRESHOLD, vals[i], NULL);
        MilesCheckpoint *c = NULL;
        assert_int_equal(miles_checkpoint_open(&c, bad), MILES_EFORMAT);
        assert_non_null(strstr(miles_last_error(), MILES_META_THRESHOLD));
    }
    rewrite(g_good, bad, MILES_META_THRESHOLD, "0.375", NULL);
    MilesCheckpoint *c = NULL;
    OK(miles_checkpoint_open(&c, bad));
    assert_true(fabs(miles_checkpoint_threshold(c) - 0.375) < 1e-12);
    miles_checkpoint_close(c);
    /* the writer never stores a threshold its loader would refuse */
    MilesModel *m = tiny_model();
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    MilesTrainState st = {0};
    st.threshold = NAN;
    OK(miles_ckpt_save(bad, m, NULL, &st, &tc, NULL, NULL));
    miles_model_free(m);
    OK(miles_checkpoint_open(&c, bad));
    assert_null(miles_checkpoint_meta(c, MILES_META_THRESHOLD));
    assert_true(miles_checkpoint_threshold(c) == 0.5);
    miles_checkpoint_close(c);
}

/* A calibration stored after training: the copy holds every tensor byte and
 * metadata entry of the original, the Platt map read back to the bit; a
 * malformed one is refused naming the file and the field. */
static void test_calibration_metadata(void **state) {
    (void)state;
    char cal[300], bad[300], nodir[300];
    snprintf(cal, sizeof cal, "%s/cal.safetensors", g_dir);
    snprintf(bad, sizeof bad, "%s/calbad.safetensors", g_dir);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir.safetensors", g_dir);
    MilesCheckpoint *c = NULL, *k = NULL;
    MilesPlatt p, got;
    int present = -1;
    OK(miles_checkpoint_open(&c, g_good));
    memset(&got, 0x55, sizeof got);
    OK(miles_checkpoint_calibration(c, &got, &present));
    assert_int_equal(present, 0);
    assert_true(got.a == 0 && got.b == 0 && got.n == 0);   /* cleared, not left as it was */
    assert_int_equal(miles_checkpoint_calibration(NULL, &got, &present), MILES_EINVAL);
    memset(&p, 0, sizeof p);
    p.a = 0.8525512345678901;
    p.b = -1.1000512345678901;
    p.n = 609;
    p.n_pos = 121;
    OK(miles_checkpoint_save_calibrated(c, cal, &p, "val"));
    OK(miles_checkpoint_open(&k, cal));
    OK(miles_checkpoint_calibration(k, &got, &present));
    assert_int_equal(present, 1);
    assert_memory_equal(&got.a, &p.a, sizeof p.a);
    assert_memory_equal(&got.b, &p.b, sizeof p.b);
    assert_int_equal(got.n, 609);
    assert_int_equal(got.n_pos, 121);
    MilesSafetensors *s0 = NULL, *s1 = NULL;
    OK(miles_safetensors_open(&s0, g_good));
    OK(miles_safetensors_open(&s1, cal));
    assert_int_equal(miles_safetensors_count(s1), miles_safetensors_count(s0));
    for (int i = 0; i < miles_safetensors_count(s0); i++) {
        size_t n0, n1;
        const void *d0 = miles_safetensors_data(s0, i, &n0);
        int j = miles_safetensors_find(s1, miles_safetensors_name(s0, i));
        assert_true(j >= 0);
        const void *d1 = miles_safetensors_data(s1, j, &n1);
        assert_int_equal(n0, n1);
        assert_memory_equal(d0, d1, n0);
    }
    int nk = 0;
    for (int i = 0; i < miles_safetensors_metadata_count(s0); i++) {
        const char *key = miles_safetensors_metadata_key(s0, i);
        assert_non_null(miles_safetensors_metadata(s1, key));
        if (strcmp(key, MILES_META_CRC32) && strcmp(key, MILES_META_HEADER_CRC32)) {
            assert_string_equal(miles_safetensors_metadata(s1, key), miles_safetensors_metadata(s0, key));
            nk++;
        }
    }
    assert_true(nk >= 5);
    assert_int_equal(miles_safetensors_metadata_count(s1), miles_safetensors_metadata_count(s0) + 1);
    assert_null(miles_safetensors_metadata_key(s1, miles_safetensors_metadata_count(s1)));
    assert_null(miles_safetensors_metadata_key(s1, -1));
    assert_non_null(strstr(miles_safetensors_metadata(s1, MILES_META_CALIBRATION), "\"fitted_on\":\"val\""));
    miles_safetensors_close(s0);
    miles_safetensors_close(s1);
    /* over its own file (the handle still reads the old one): replaced, not added */
    p.a = 2;
    p.b = 0.25;
    OK(miles_checkpoint_save_calibrated(k, cal, &p, "val"));
    miles_checkpoint_close(k);
    OK(miles_checkpoint_open(&k, cal));
    OK(miles_checkpoint_calibration(k, &got, &present));
    assert_true(present == 1 && got.a == 2 && got.b == 0.25);
    OK(miles_safetensors_open(&s1, cal));
    OK(miles_safetensors_open(&s0, g_good));
    assert_int_equal(miles_safetensors_metadata_count(s1), miles_safetensors_metadata_count(s0) + 1);
    miles_safetensors_close(s0);
    miles_safetensors_close(s1);
    miles_checkpoint_close(k);
    /* what the writer refuses: a map that is not increasing, not finite, or fitted on one class */
    const double as[] = {0, -1, NAN, 1, 1, 1}, bs[] = {0, 0, 0, INFINITY, 0, 0};
    const int ns[] = {10, 10, 10, 10, 10, 1}, nps[] = {2, 2, 2, 2, 10, 0};
    for (int i = 0; i < 6; i++) {
        MilesPlatt q = p;
        q.a = as[i];
        q.b = bs[i];
        q.n = ns[i];
        q.n_pos = nps[i];
        assert_int_equal(miles_checkpoint_save_calibrated(c, bad, &q, "val"), MILES_EINVAL);
        assert_non_null(strstr(miles_last_error(), "a calibration needs a > 0"));
        assert_int_not_equal(access(bad, F_OK), 0);
    }
    assert_int_equal(miles_checkpoint_save_calibrated(NULL, bad, &p, "val"), MILES_EINVAL);
    assert_int_equal(miles_checkpoint_save_calibrated(c, NULL, &p, "val"), MILES_EINVAL);
    assert_int_equal(miles_checkpoint_save_calibrated(c, bad, NULL, "val"), MILES_EINVAL);
    assert_int_equal(miles_checkpoint_save_calibrated(c, bad, &p, NULL), MILES_EINVAL);
    assert_int_not_equal(access(bad, F_OK), 0);
    {   /* the least the writer takes: 2 rows, 1 positive */
        MilesPlatt q = p;
        q.n = 2;
        q.n_pos = 1;
        OK(miles_checkpoint_save_calibrated(c, bad, &q, "val"));
        unlink(bad);
    }
    assert_int_equal(miles_checkpoint_save_calibrated(c, bad, &p, "va\"l"), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "fitted_on"));
    assert_int_equal(miles_checkpoint_save_calibrated(c, bad, &p, ""), MILES_EINVAL);
    assert_int_not_equal(access(bad, F_OK), 0);
    assert_int_not_equal(miles_checkpoint_save_calibrated(c, nodir, &p, "val"), MILES_OK);
    assert_int_not_equal(access(nodir, F_OK), 0);
    miles_checkpoint_close(c);
    /* what the reader refuses, naming the file and the field */
    static const struct { const char *value, *names; } cases[] = {
        {"not json", "not a JSON object"},
        {"{\"method\":\"isotonic\",\"a\":1,\"b\":0,\"n\":10,\"n_pos\":2}", "\"method\""},
        {"{\"method\":\"platt\",\"a\":-1,\"b\":0,\"n\":10,\"n_pos\":2}", "\"a\""},
        {"{\"method\":\"platt\",\"a\":0,\"b\":0,\"n\":10,\"n_pos\":2}", "\"a\""},
        {"{\"method\":\"platt\",\"a\":1,\"b\":0,\"n\":2147483648,\"n_pos\":2}", "\"n\""},
        {"{\"method\":\"platt\",\"a\":\"1\",\"b\":0,\"n\":10,\"n_pos\":2}", "\"a\""},
        {"{\"method\":\"platt\",\"a\":1,\"n\":10,\"n_pos\":2}", "\"b\""},
        {"{\"method\":\"platt\",\"a\":1,\"b\":0,\"n\":1,\"n_pos\":2}", "\"n\""},
        {"{\"method\":\"platt\",\"a\":1,\"b\":0,\"n\":10,\"n_pos\":10}", "\"n_pos\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        rewrite(g_good, bad, MILES_META_CALIBRATION, cases[i].value, NULL);
        OK(miles_checkpoint_open(&c, bad));
        assert_int_equal(miles_checkpoint_calibration(c, &got, &present), MILES_EFORMAT);
        const char *e = miles_last_error();
        if (!strstr(e, bad) || !strstr(e, "\"calibration\"") || !strstr(e, cases[i].names))
            fail_msg("case %zu: %s", i, e);
        assert_int_equal(present, 0);
        miles_checkpoint_close(c);
        MilesPredictor *pr = NULL;
        assert_int_equal(miles_predictor_open(&pr, bad, NULL), MILES_EFORMAT);
        assert_null(pr);
        if (i == 0) {   /* the exports copy it: they refuse it too */
            char out[300];
            snprintf(out, sizeof out, "%s/hf_cal", g_dir);
            assert_int_equal(miles_export_hf(bad, out, NULL), MILES_EFORMAT);
            assert_non_null(strstr(miles_last_error(), "\"calibration\""));
            snprintf(out, sizeof out, "%s/cal.onnx", g_dir);
            assert_int_equal(miles_export_onnx(bad, out, NULL), MILES_EFORMAT);
            assert_non_null(strstr(miles_last_error(), "\"calibration\""));
            assert_int_not_equal(access(out, F_OK), 0);
        }
    }
    /* the least that loads: n = 2, one positive */
    rewrite(g_good, bad, MILES_META_CALIBRATION, "{\"method\":\"platt\",\"a\":1e-300,\"b\":0,\"n\":2,\"n_pos\":1}",
            NULL);
    OK(miles_checkpoint_open(&c, bad));
    OK(miles_checkpoint_calibration(c, &got, &present));
    assert_true(present == 1 && got.a == 1e-300 && got.n == 2 && got.n_pos == 1);
    miles_checkpoint_close(c);
}

/* The exports copy the scaler: they refuse one the predictor refuses. */
static void test_export_refuses_bad_scaler(void **state) {
    (void)state;
    char bad[300], out[300];
    snprintf(bad, sizeof bad, "%s/scaler.safetensors", g_dir);
    snprintf(out, sizeof out, "%s/hf_scaler", g_dir);
    rewrite(g_good, bad, MILES_META_SCALER, "{\"mean\": [1, 2", NULL);
    MilesPredictor *p = NULL;
    assert_int_not_equal(miles_predictor_open(&p, bad, NULL), MILES_OK);
    assert_int_not_equal(miles_export_hf(bad, out, NULL), MILES_OK);
    printf("  export: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), bad));
    assert_int_not_equal(access(out, F_OK), 0);
    snprintf(out, sizeof out, "%s/m.onnx", g_dir);
    assert_int_not_equal(miles_export_onnx(bad, out, NULL), MILES_OK);
    assert_non_null(strstr(miles_last_error(), bad));
}

static void test_older_format_loads(void **state) {
    (void)state;
    char v2[300];
    snprintf(v2, sizeof v2, "%s/v2.safetensors", g_dir);
    rewrite_crc(g_good, v2, MILES_META_FORMAT, "miles-checkpoint-2", NULL, 0);
    const char *files[] = {FIX_V1, v2};
    const char *formats[] = {"miles-checkpoint-1", "miles-checkpoint-2"};
    /* (-3, the tensor CRCs without the header's: test_header_crc) */
    for (int i = 0; i < 2; i++) {
        MilesCheckpoint *c = NULL;
        OK(miles_checkpoint_open(&c, files[i]));
        assert_string_equal(miles_checkpoint_meta(c, MILES_META_FORMAT), formats[i]);
        assert_null(miles_checkpoint_meta(c, MILES_META_CRC32));
        MilesModel *m = NULL;
        OK(miles_checkpoint_model(c, &m));
        miles_model_free(m);
        miles_checkpoint_close(c);
    }
}

/* What a checkpoint without the training contract (no embedded tokenizer, no
 * vocab_dir, no data scalers) says when asked for them, and an unknown
 * text_clean; a tokenizer larger than the model's vocabulary is refused. */
static void test_contract_refusals(void **state) {
    (void)state;
    MilesCheckpoint *c = NULL;
    OK(miles_checkpoint_open(&c, g_good));
    MilesTokenizer *tok = (MilesTokenizer *)0x1;
    assert_int_equal(miles_checkpoint_tokenizer(c, NULL, &tok), MILES_EMISSING);
    printf("  refused: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "no embedded tokenizer and no metadata \"vocab_dir\""));
    assert_null(tok);
    /* tests/fixtures/tokenizer_vocab.txt has more tokens than the model's 64 */
    assert_int_equal(miles_checkpoint_tokenizer(c, "tests/fixtures/tokenizer_vocab.txt", &tok), MILES_ESHAPE);
    printf("  refused: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "but the model's vocab_size is 64"));
    assert_null(tok);
    assert_int_equal(miles_checkpoint_tokenizer(c, "tests/fixtures/no_such_vocab", &tok), MILES_EMISSING);
    printf("  refused: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "tokenizer 'tests/fixtures/no_such_vocab'"));
    int mode = -1;
    OK(miles_checkpoint_text_clean(c, &mode)); /* absent: none */
    assert_int_equal(mode, MILES_TEXT_CLEAN_NONE);
    miles_checkpoint_close(c);

    char bad[300];
    snprintf(bad, sizeof bad, "%s/clean.safetensors", g_dir);
    const struct { const char *value; int rc, mode; } cleans[] = {
        {"seed", MILES_OK, MILES_TEXT_CLEAN_SEED}, {"none", MILES_OK, MILES_TEXT_CLEAN_NONE},
        {"aggressive", MILES_EFORMAT, MILES_TEXT_CLEAN_NONE}, {"", MILES_EFORMAT, MILES_TEXT_CLEAN_NONE}};
    for (size_t i = 0; i < sizeof cleans / sizeof *cleans; i++) {
        rewrite(g_good, bad, MILES_META_TEXT_CLEAN, cleans[i].value, NULL);
        OK(miles_checkpoint_open(&c, bad));
        assert_int_equal(miles_checkpoint_text_clean(c, &mode), cleans[i].rc);
        assert_int_equal(mode, cleans[i].mode);
        if (cleans[i].rc) {
            printf("  refused: %s\n", miles_last_error());
            assert_non_null(strstr(miles_last_error(), bad));
            assert_non_null(strstr(miles_last_error(), "unknown text_clean"));
        }
        miles_checkpoint_close(c);
    }
    /* a vocab_dir hint that no longer exists: named, with what to do */
    snprintf(bad, sizeof bad, "%s/hint.safetensors", g_dir);
    rewrite(g_good, bad, MILES_META_VOCAB_DIR, "/nonexistent/vocab", NULL);
    OK(miles_checkpoint_open(&c, bad));
    assert_int_equal(miles_checkpoint_tokenizer(c, NULL, &tok), MILES_EMISSING);
    printf("  refused: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "/nonexistent/vocab"));
    assert_non_null(strstr(miles_last_error(), "pass the tokenizer directory explicitly"));
    miles_checkpoint_close(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_stored_and_verified),
        cmocka_unit_test(test_header_crc),
        cmocka_unit_test(test_header_length_off_by_one),
        cmocka_unit_test(test_nonfinite_weights),
        cmocka_unit_test(test_config_bounds),
        cmocka_unit_test(test_config_weights_disagree),
        cmocka_unit_test(test_threshold_must_be_number),
        cmocka_unit_test(test_calibration_metadata),
        cmocka_unit_test(test_export_refuses_bad_scaler),
        cmocka_unit_test(test_older_format_loads),
        cmocka_unit_test(test_contract_refusals),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
