/*
 * test_export.c — miles_export_hf / miles_export_onnx (libmiles/export_*.c).
 *
 * Runs without Python.  Uses the committed fixture of tests/export_roundtrip.py:
 *   tests/fixtures/export_tiny.safetensors  a small random Miles checkpoint
 *   tests/fixtures/export_vocab/vocab.txt    its 1000-token vocabulary
 *   tests/fixtures/export_io.safetensors     50 tokenized titles + features and the
 *       outputs of Miles, onnxruntime (on the exported ONNX) and PyTorch
 *       (BertModel + miles_head.py on the exported HF directory)
 * Checks: HF directory contents (config keys, tensor names/shapes/bytes,
 * tokenizer files), the ONNX protobuf parsed back with protobuf-c (inputs,
 * outputs, initializers = model tensors byte for byte, topological order,
 * opset), tokenizer-hash refusal, overwrite rules, atomicity under a write
 * failure (RLIMIT_FSIZE), other pooling/head variants, Miles' forward on
 * the fixture inputs against the onnxruntime/PyTorch outputs (<= 1e-4), and
 * the exported graphs run by tests/onnx_ref.c (an ONNX interpreter) against
 * onnxruntime's recorded outputs and Miles' forward (<= 2e-6).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miles.h"
#include "helpers.h"
#include "onnx.pb-c.h"
#include "onnx_ref.h"

/* graph pins (see graph_hash) */
#define PIN_GRAPH_FIXTURE 0x83edeb1349525376ULL
/* test_variants: [seed-notebook cls, miles mean, seed-notebook pooler][full, pooled only] */
static const uint64_t PIN_GRAPH_VARIANT[3][2] = {
    {0x31f098f9715baf72ULL, 0x2008e71a46cfb560ULL},
    {0x42453cf5be7f2ec2ULL, 0x42453cf5be7f2ec2ULL},   /* mean pooling reads every row: no pooled-only graph */
    {0xdf4fbef6b6d8e4aeULL, 0x3f8e8801586662abULL}};
#define POOL_NAME(p) ((p) == MILES_POOL_CLS ? "cls" : (p) == MILES_POOL_MEAN ? "mean" : "pooler")

#define FIX_CKPT "tests/fixtures/export_tiny.safetensors"
#define FIX_VOCAB "tests/fixtures/export_vocab"
#define FIX_IO "tests/fixtures/export_io.safetensors"

static char tmpdir[256];


static int setup(void **state) {
    (void)state;
    return test_mkdtemp(tmpdir, sizeof tmpdir, "export_test");
}
static int teardown(void **state) {
    (void)state;
    test_rm_rf(tmpdir);
    return 0;
}

static int exists(const char *p) {
    struct stat sb;
    return lstat(p, &sb) == 0;
}

static cJSON *read_json(const char *path) {
    cJSON *o = test_read_json(path);
    assert_non_null(o);
    return o;
}

static void expect_status(int got, int want) {
    if (got != want)
        fail_msg("status %s (%s), expected %s", miles_status_name(got), miles_last_error(), miles_status_name(want));
}

/* Write a checkpoint of model m with the standard metadata plus extra pairs. */
static void save_ckpt(const MilesModel *m, const char *path, int n_extra, const char *const *k,
                      const char *const *v) {
    char *cj = NULL;
    assert_int_equal(miles_config_to_json(miles_model_config(m), &cj), MILES_OK);
    const char *keys[10] = {"format", "config"}, *vals[10] = {"miles-checkpoint-1", cj};
    for (int i = 0; i < n_extra; i++) { keys[2 + i] = k[i]; vals[2 + i] = v[i]; }
    int s = miles_model_save(m, path, 2 + n_extra, keys, vals);
    free(cj);
    expect_status(s, MILES_OK);
}

/* ------------------------------------------------------------ names */

static void test_hf_names(void **state) {
    (void)state;
    char b[128];
    assert_int_equal(miles_export_hf_name("bert.encoder.layer.3.attention.self.query.weight", b, sizeof b), MILES_OK);
    assert_string_equal(b, "encoder.layer.3.attention.self.query.weight");
    assert_int_equal(miles_export_hf_name("bert.pooler.dense.bias", b, sizeof b), MILES_OK);
    assert_string_equal(b, "pooler.dense.bias");
    assert_int_equal(miles_export_hf_name("fusion.0.weight", b, sizeof b), MILES_OK);
    assert_string_equal(b, "miles.fusion.0.weight");
    assert_int_equal(miles_export_hf_name("classifier.bias", b, sizeof b), MILES_OK);
    assert_string_equal(b, "miles.classifier.bias");
    assert_int_equal(miles_export_hf_name("classifier.bias", b, 8), MILES_ERANGE);
}

/* ------------------------------------------------------------ HF directory */

/* Every model tensor is in model.safetensors under its HF name, same shape and bytes. */
static void check_hf_tensors(const MilesModel *m, const char *dir) {
    char p[1024];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    MilesSafetensors *st = NULL;
    expect_status(miles_safetensors_open(&st, p), MILES_OK);
    assert_string_equal(miles_safetensors_metadata(st, "format"), "pt");
    int nt = miles_model_num_tensors(m);
    assert_int_equal(miles_safetensors_count(st), nt);
    for (int i = 0; i < nt; i++) {
        MilesTensorInfo ti;
        char hf[160];
        assert_int_equal(miles_model_tensor(m, i, &ti), MILES_OK);
        assert_int_equal(miles_export_hf_name(ti.name, hf, sizeof hf), MILES_OK);
        int j = miles_safetensors_find(st, hf);
        if (j < 0) fail_msg("%s: tensor %s missing", p, hf);
        int dt, nd;
        int64_t sh[8];
        size_t numel, nb;
        assert_int_equal(miles_safetensors_info(st, j, &dt, &nd, sh, &numel), MILES_OK);
        assert_int_equal(dt, MILES_DT_F32);
        assert_int_equal(nd, ti.ndim);
        for (int k = 0; k < nd; k++) assert_int_equal(sh[k], ti.shape[k]);
        const void *data = miles_safetensors_data(st, j, &nb);
        assert_int_equal(nb, ti.numel * sizeof(float));
        assert_memory_equal(data, ti.data, nb);
    }
    miles_safetensors_close(st);
}

static void test_hf_export_fixture(void **state) {
    (void)state;
    char out[512], p[1024];
    snprintf(out, sizeof out, "%s/hf", tmpdir);
    /* vocab from the checkpoint's "vocab_dir" metadata (relative to the repo root) */
    expect_status(miles_export_hf(FIX_CKPT, out, NULL), MILES_OK);
    assert_int_equal(test_count_entries(tmpdir, NULL), 1);   /* no temp directory left beside it */

    MilesModel *m = NULL;
    expect_status(miles_checkpoint_load_model(&m, FIX_CKPT), MILES_OK);
    const MilesConfig *c = miles_model_config(m);
    check_hf_tensors(m, out);

    /* a few names exactly as transformers.BertModel and miles_head.py expect them */
    snprintf(p, sizeof p, "%s/model.safetensors", out);
    MilesSafetensors *st = NULL;
    expect_status(miles_safetensors_open(&st, p), MILES_OK);
    const char *want[] = {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                          "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                          "encoder.layer.0.attention.self.query.weight", "encoder.layer.1.output.LayerNorm.bias",
                          "encoder.layer.1.intermediate.dense.weight", "pooler.dense.weight",
                          "miles.numeric_mlp.0.weight", "miles.fusion.0.bias", "miles.classifier.weight",
                          "miles.regressor.bias"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (miles_safetensors_find(st, want[i]) < 0) fail_msg("missing %s", want[i]);
    int64_t sh[8];
    int nd;
    miles_safetensors_info(st, miles_safetensors_find(st, "miles.fusion.0.weight"), NULL, &nd, sh, NULL);
    assert_int_equal(nd, 2);
    assert_int_equal(sh[0], c->fusion_widths[0]);
    assert_int_equal(sh[1], c->hidden_size + c->numeric_widths[0]);
    miles_safetensors_close(st);

    /* config.json: a BertConfig + the miles object */
    snprintf(p, sizeof p, "%s/config.json", out);
    cJSON *o = read_json(p);
    assert_string_equal(cJSON_GetObjectItem(o, "model_type")->valuestring, "bert");
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(o, "architectures"), 0)->valuestring, "BertModel");
    assert_string_equal(cJSON_GetObjectItem(o, "hidden_act")->valuestring, "gelu");
    assert_int_equal(cJSON_GetObjectItem(o, "vocab_size")->valueint, c->vocab_size);
    assert_int_equal(cJSON_GetObjectItem(o, "hidden_size")->valueint, c->hidden_size);
    assert_int_equal(cJSON_GetObjectItem(o, "num_hidden_layers")->valueint, c->num_hidden_layers);
    assert_int_equal(cJSON_GetObjectItem(o, "num_attention_heads")->valueint, c->num_attention_heads);
    assert_int_equal(cJSON_GetObjectItem(o, "intermediate_size")->valueint, c->intermediate_size);
    assert_int_equal(cJSON_GetObjectItem(o, "max_position_embeddings")->valueint, c->max_position_embeddings);
    assert_int_equal(cJSON_GetObjectItem(o, "type_vocab_size")->valueint, c->type_vocab_size);
    assert_true(cJSON_GetObjectItem(o, "layer_norm_eps")->valuedouble == 1e-12);
    const cJSON *mi = cJSON_GetObjectItem(o, "miles");
    assert_non_null(mi);
    assert_string_equal(cJSON_GetObjectItem(mi, "format")->valuestring, "miles-hf-1");
    assert_string_equal(cJSON_GetObjectItem(mi, "pooling")->valuestring, "pooler");
    assert_true(fabs(cJSON_GetObjectItem(mi, "decision_threshold")->valuedouble - 0.4375) < 1e-12);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(mi, "feature_names")), MILES_NUM_FEATURES);
    assert_string_equal(cJSON_GetArrayItem(cJSON_GetObjectItem(mi, "feature_names"), 0)->valuestring, "views");
    assert_int_equal(cJSON_GetObjectItem(mi, "max_len")->valueint, 40);
    assert_true(cJSON_IsObject(cJSON_GetObjectItem(mi, "data")));
    assert_int_equal(strlen(cJSON_GetObjectItem(mi, "tokenizer_hash")->valuestring), 16);
    /* the embedded model config parses back to the checkpoint's */
    char *cj = cJSON_PrintUnformatted(cJSON_GetObjectItem(mi, "config"));
    MilesConfig back;
    expect_status(miles_config_from_json(&back, cj), MILES_OK);
    free(cj);
    assert_int_equal(back.n_fusion, c->n_fusion);
    assert_int_equal(back.fusion_widths[0], c->fusion_widths[0]);
    assert_int_equal(back.numeric_widths[0], c->numeric_widths[0]);
    assert_int_equal(back.velocity_activation, c->velocity_activation);
    cJSON_Delete(o);

    /* tokenizer files */
    snprintf(p, sizeof p, "%s/tokenizer_config.json", out);
    o = read_json(p);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(o, "do_lower_case")));
    assert_int_equal(cJSON_GetObjectItem(o, "model_max_length")->valueint, 40);
    assert_string_equal(cJSON_GetObjectItem(o, "cls_token")->valuestring, "[CLS]");
    cJSON_Delete(o);
    snprintf(p, sizeof p, "%s/vocab.txt", out);
    test_assert_same_file(p, FIX_VOCAB "/vocab.txt");
    /* the exported directory is itself a valid tokenizer directory with the same hash */
    MilesTokenizer *t1 = NULL, *t2 = NULL;
    expect_status(miles_tokenizer_load(&t1, out), MILES_OK);
    expect_status(miles_tokenizer_load(&t2, FIX_VOCAB), MILES_OK);
    char h1[17], h2[17];
    miles_tokenizer_hash(t1, h1);
    miles_tokenizer_hash(t2, h2);
    assert_string_equal(h1, h2);
    miles_tokenizer_free(t1);
    miles_tokenizer_free(t2);

    snprintf(p, sizeof p, "%s/miles_head.py", out);
    char *py = test_slurp(p, NULL);
    assert_non_null(py);
    assert_non_null(strstr(py, "class MilesModel"));
    assert_non_null(strstr(py, "class MilesHead"));
    free(py);

    /* existing output: refused, then replaced with overwrite */
    expect_status(miles_export_hf(FIX_CKPT, out, NULL), MILES_EINVAL);
    MilesExportOptions opt;
    miles_export_options_default(&opt);
    opt.overwrite = 1;
    opt.vocab_dir = FIX_VOCAB "/vocab.txt";   /* a vocab.txt path works too */
    expect_status(miles_export_hf(FIX_CKPT, out, &opt), MILES_OK);
    assert_int_equal(test_count_entries(tmpdir, NULL), 1);   /* no .old-* or .tmp-* left */
    check_hf_tensors(m, out);

    /* overwrite never replaces a directory that is not a Miles export */
    char other[512];
    snprintf(other, sizeof other, "%s/precious", tmpdir);
    assert_int_equal(mkdir(other, 0755), 0);
    snprintf(p, sizeof p, "%s/keep.txt", other);
    FILE *f = fopen(p, "w");
    fputs("keep", f);
    fclose(f);
    expect_status(miles_export_hf(FIX_CKPT, other, &opt), MILES_EINVAL);
    assert_true(exists(p));
    /* ... nor one whose config.json names another format (an HF model of someone else's, a future layout) */
    const char *configs[] = {"{\"miles\": {\"format\": \"miles-hf-0\"}}", "{\"miles\": {\"format\": 1}}",
                             "{\"model_type\": \"bert\"}", "not json"};
    snprintf(p, sizeof p, "%s/config.json", other);
    for (int i = 0; i < 4; i++) {
        f = fopen(p, "w");
        fputs(configs[i], f);
        fclose(f);
        expect_status(miles_export_hf(FIX_CKPT, other, &opt), MILES_EINVAL);
        assert_non_null(strstr(miles_last_error(), "is not a Miles HF export"));
        assert_true(exists(p));
    }
    test_rm_rf(other);
    test_rm_rf(out);
    miles_model_free(m);
}

/* ------------------------------------------------------------ tokenizer checks */

/* The fixture model and the hash of the fixture vocabulary (what its
 * checkpoints must record as tokenizer_hash to export). */
static MilesModel *fixture_model(char good[17]) {
    MilesModel *m = NULL;
    expect_status(miles_checkpoint_load_model(&m, FIX_CKPT), MILES_OK);
    MilesTokenizer *tok = NULL;
    expect_status(miles_tokenizer_load(&tok, FIX_VOCAB), MILES_OK);
    miles_tokenizer_hash(tok, good);
    miles_tokenizer_free(tok);
    return m;
}

static void test_hf_tokenizer_checks(void **state) {
    (void)state;
    char good[17];
    MilesModel *m = fixture_model(good);

    char ck[512], out[512];
    snprintf(ck, sizeof ck, "%s/wrong_hash.safetensors", tmpdir);
    snprintf(out, sizeof out, "%s/hf_wrong", tmpdir);
    const char *k[2] = {"tokenizer_hash", "vocab_dir"}, *v[2] = {"0123456789abcdef", FIX_VOCAB};
    save_ckpt(m, ck, 2, k, v);
    expect_status(miles_export_hf(ck, out, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "tokenizer hash"));
    assert_false(exists(out));

    v[0] = good;
    save_ckpt(m, ck, 2, k, v);
    expect_status(miles_export_hf(ck, out, NULL), MILES_OK);
    test_rm_rf(out);

    /* no vocab_dir metadata and no option: a clear error, nothing written */
    save_ckpt(m, ck, 0, NULL, NULL);
    expect_status(miles_export_hf(ck, out, NULL), MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "vocab"));
    assert_false(exists(out));
    /* the ONNX export needs no tokenizer */
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/m.onnx", tmpdir);
    expect_status(miles_export_onnx(ck, onnx, NULL), MILES_OK);
    unlink(onnx);
    unlink(ck);
    /* a scaler that does not parse: refused by both, nothing written (a served export would mis-scale) */
    const char *kb[3] = {"data", "vocab_dir", "tokenizer_hash"}, *vb[3] = {"{\"mean\": [1, 2]}", FIX_VOCAB, good};
    save_ckpt(m, ck, 3, kb, vb);
    expect_status(miles_export_hf(ck, out, NULL), MILES_EFORMAT);
    printf("  bad scaler: %s\n", miles_last_error());
    assert_false(exists(out));
    expect_status(miles_export_onnx(ck, onnx, NULL), MILES_EFORMAT);
    assert_false(exists(onnx));
    unlink(ck);
    /* not a checkpoint */
    expect_status(miles_export_hf(FIX_IO, out, NULL), MILES_EFORMAT);
    assert_false(exists(out));
    assert_int_equal(test_count_entries(tmpdir, NULL), 0);
    miles_model_free(m);
}

/* ------------------------------------------------------------ atomicity */

static void test_atomic_on_write_failure(void **state) {
    (void)state;
    char out[512], onnx[512];
    snprintf(out, sizeof out, "%s/hf_fail", tmpdir);
    snprintf(onnx, sizeof onnx, "%s/fail.onnx", tmpdir);
    /* files may grow to 64 KiB: vocab.txt/config.json/miles_head.py fit, the
     * ~220 KB model.safetensors and ONNX file do not (EFBIG mid-write) */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    lim = old;
    lim.rlim_cur = 64 * 1024;
    void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int s1 = miles_export_hf(FIX_CKPT, out, NULL);
    char e1[512];
    snprintf(e1, sizeof e1, "%s", miles_last_error());
    int s2 = miles_export_onnx(FIX_CKPT, onnx, NULL);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, prev);
    printf("  HF export under a 64 KiB file limit: %s (%s)\n", miles_status_name(s1), e1);
    printf("  ONNX export under a 64 KiB file limit: %s (%s)\n", miles_status_name(s2), miles_last_error());
    assert_int_not_equal(s1, MILES_OK);
    assert_int_not_equal(s2, MILES_OK);
    assert_false(exists(out));
    assert_false(exists(onnx));
    assert_int_equal(test_count_entries(tmpdir, NULL), 0);   /* no temp directory or file left */
    /* and with the limit lifted both succeed */
    expect_status(miles_export_hf(FIX_CKPT, out, NULL), MILES_OK);
    expect_status(miles_export_onnx(FIX_CKPT, onnx, NULL), MILES_OK);
    test_rm_rf(out);
    unlink(onnx);
}

/* ------------------------------------------------------------ ONNX */

static Onnx__ModelProto *load_onnx(const char *path, char **buf) {
    size_t n = 0;
    *buf = test_slurp(path, &n);
    assert_non_null(*buf);
    Onnx__ModelProto *mp = onnx__model_proto__unpack(NULL, n, (const uint8_t *)*buf);
    if (!mp) fail_msg("%s: protobuf-c cannot parse it as onnx.ModelProto", path);
    return mp;
}

/* The ONNX file's metadata value for key, or NULL (copied into v, cap bytes). */
static const char *onnx_prop(const char *path, const char *key, char *v, size_t cap) {
    char *buf = NULL;
    Onnx__ModelProto *mp = load_onnx(path, &buf);
    const char *r = NULL;
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (!strcmp(mp->metadata_props[i]->key, key)) { snprintf(v, cap, "%s", mp->metadata_props[i]->value); r = v; }
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
    return r;
}

/* How the training rows were split (MILES_META_DATA_SPLIT) travels into both
 * exports as stored, a 64-bit seed to its last digit; a value that is not one
 * JSON object (nothing validated it) is left out, not copied into config.json. */
static void test_export_data_split(void **state) {
    (void)state;
    char good[17];
    MilesModel *m = fixture_model(good);
    char ck[512], out[512], onnx[512], cfg[600], v[256];
    snprintf(ck, sizeof ck, "%s/split.safetensors", tmpdir);
    snprintf(out, sizeof out, "%s/hf_split", tmpdir);
    snprintf(onnx, sizeof onnx, "%s/split.onnx", tmpdir);
    snprintf(cfg, sizeof cfg, "%s/config.json", out);
    const char *rec = "{\"by\":\"creator\",\"seed\":18446744073709551557,\"train_frac\":0.7,\"language\":\"en\",\"dedup\":false}";
    const char *bad[] = {rec, "not json", "{\"by\":\"row\"} trailing", "[1]"};
    for (int k = 0; k < 4; k++) {
        const char *keys[3] = {"vocab_dir", "tokenizer_hash", "data_split"}, *vals[3] = {FIX_VOCAB, good, bad[k]};
        save_ckpt(m, ck, 3, keys, vals);
        expect_status(miles_export_hf(ck, out, NULL), MILES_OK);
        expect_status(miles_export_onnx(ck, onnx, NULL), MILES_OK);
        size_t n = 0;
        char *txt = test_slurp(cfg, &n);
        assert_non_null(txt);
        cJSON *o = read_json(cfg);
        const cJSON *ds = cJSON_GetObjectItem(cJSON_GetObjectItem(o, "miles"), "data_split");
        const char *p = onnx_prop(onnx, "data_split", v, sizeof v);
        printf("  data_split %s -> config.json %s, ONNX %s\n", bad[k], cJSON_IsNull(ds) ? "null" : "object",
               p ? p : "(absent)");
        if (k == 0) {
            assert_true(cJSON_IsObject(ds));
            assert_non_null(strstr(txt, "\"seed\":18446744073709551557"));   /* raw: every digit */
            assert_non_null(p);
            assert_string_equal(p, rec);
        } else {
            assert_true(cJSON_IsNull(ds));
            assert_null(p);
        }
        cJSON_Delete(o);
        free(txt);
        test_rm_rf(out);
        unlink(onnx);
        unlink(ck);
    }
    miles_model_free(m);
}

static const Onnx__TensorProto *find_init(const Onnx__GraphProto *g, const char *name) {
    for (size_t i = 0; i < g->n_initializer; i++)
        if (!strcmp(g->initializer[i]->name, name)) return g->initializer[i];
    return NULL;
}
static int count_op(const Onnx__GraphProto *g, const char *op) {
    int n = 0;
    for (size_t i = 0; i < g->n_node; i++) n += !strcmp(g->node[i]->op_type, op);
    return n;
}

static void check_value_info(const Onnx__ValueInfoProto *vi, const char *name, int elem, int ndim,
                             const char *const *dims) {
    assert_string_equal(vi->name, name);
    assert_int_equal(vi->type->value_case, ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE);
    assert_int_equal(vi->type->tensor_type->elem_type, elem);
    const Onnx__TensorShapeProto *sh = vi->type->tensor_type->shape;
    assert_int_equal(sh->n_dim, ndim);
    for (int i = 0; i < ndim; i++) {
        char b[32];
        if (sh->dim[i]->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE)
            snprintf(b, sizeof b, "%lld", (long long)sh->dim[i]->dim_value);
        else
            snprintf(b, sizeof b, "%s", sh->dim[i]->dim_param);
        assert_string_equal(b, dims[i]);
    }
}

/* Structural checks of an exported model against the Miles model m. */
static void check_onnx(const char *path, const MilesModel *m) {
    char *buf = NULL;
    Onnx__ModelProto *mp = load_onnx(path, &buf);
    const MilesConfig *c = miles_model_config(m);
    assert_int_equal(mp->ir_version, 8);
    assert_int_equal(mp->n_opset_import, 1);
    assert_string_equal(mp->opset_import[0]->domain, "");
    assert_int_equal(mp->opset_import[0]->version, 17);
    const Onnx__GraphProto *g = mp->graph;
    assert_non_null(g);

    /* inputs and outputs */
    assert_int_equal(g->n_input, 4);
    static const char *const bt[2] = {"batch", "sequence"}, *const b2[2] = {"batch", "2"},
                             *const b1[1] = {"batch"}, *const bf[2] = {"batch", "18"};
    check_value_info(g->input[0], "input_ids", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 2, bt);
    check_value_info(g->input[1], "attention_mask", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 2, bt);
    check_value_info(g->input[2], "token_type_ids", ONNX__TENSOR_PROTO__DATA_TYPE__INT64, 2, bt);
    check_value_info(g->input[3], "features", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, bf);
    assert_int_equal(g->n_output, 3);
    check_value_info(g->output[0], "logits", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 2, b2);
    check_value_info(g->output[1], "viral_prob", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, b1);
    check_value_info(g->output[2], "velocity", ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT, 1, b1);

    /* every model tensor is an initializer with the same name, dims and bytes */
    int nt = miles_model_num_tensors(m);
    size_t weight_inits = 0;
    for (int i = 0; i < nt; i++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, i, &ti);
        const Onnx__TensorProto *t = find_init(g, ti.name);
        if (!t) fail_msg("initializer %s missing", ti.name);
        assert_int_equal(t->data_type, ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT);
        assert_int_equal(t->n_dims, ti.ndim);
        for (int k = 0; k < ti.ndim; k++) assert_int_equal(t->dims[k], ti.shape[k]);
        assert_true(t->has_raw_data);
        assert_int_equal(t->raw_data.len, ti.numel * sizeof(float));
        assert_memory_equal(t->raw_data.data, ti.data, t->raw_data.len);
        weight_inits++;
    }
    /* the rest are small constants */
    for (size_t i = 0; i < g->n_initializer; i++)
        if (strncmp(g->initializer[i]->name, "const_", 6) != 0 &&
            miles_model_find_tensor(m, g->initializer[i]->name) < 0)
            fail_msg("unexpected initializer %s", g->initializer[i]->name);
    assert_true(weight_inits <= g->n_initializer);

    /* topological order: every node input is a graph input, an initializer or an
     * earlier node's output; every op is a standard one we mean to emit */
    static const char *const ops[] = {"Gather", "Shape", "Range", "Add", "LayerNormalization", "Reshape",
                                      "Cast", "Sub", "Mul", "Unsqueeze", "ReduceMax", "Concat", "Gemm",
                                      "Transpose", "MatMul", "Softmax", "Erf", "Tanh", "ReduceSum", "Max",
                                      "Reciprocal", "Relu", "Sigmoid", "Squeeze", "Identity"};
    size_t cap = g->n_node + 8, n_avail = 0;
    const char **avail = calloc(cap + g->n_input, sizeof *avail);
    for (size_t i = 0; i < g->n_input; i++) avail[n_avail++] = g->input[i]->name;
    for (size_t i = 0; i < g->n_node; i++) {
        const Onnx__NodeProto *nd = g->node[i];
        int known = 0;
        for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) known |= !strcmp(nd->op_type, ops[k]);
        if (!known) fail_msg("node %s: unexpected op %s", nd->name, nd->op_type);
        assert_true(nd->domain == NULL || nd->domain[0] == '\0');
        for (size_t j = 0; j < nd->n_input; j++) {
            int ok = find_init(g, nd->input[j]) != NULL;
            for (size_t k = 0; !ok && k < n_avail; k++) ok = !strcmp(avail[k], nd->input[j]);
            if (!ok) fail_msg("node %s (%s): input %s is not defined before it", nd->name, nd->op_type, nd->input[j]);
        }
        assert_int_equal(nd->n_output, 1);
        avail[n_avail++] = nd->output[0];
    }
    for (size_t i = 0; i < g->n_output; i++) {
        int ok = 0;
        for (size_t k = 0; !ok && k < n_avail; k++) ok = !strcmp(avail[k], g->output[i]->name);
        if (!ok) fail_msg("graph output %s is produced by no node", g->output[i]->name);
    }
    free(avail);

    /* per-variant structure */
    int L = c->num_hidden_layers;
    assert_int_equal(count_op(g, "LayerNormalization"), 1 + 2 * L);
    assert_int_equal(count_op(g, "Erf"), L);
    assert_int_equal(count_op(g, "Softmax"), L + 1);
    assert_int_equal(count_op(g, "Tanh"), c->pooling == MILES_POOL_POOLER);
    assert_int_equal(count_op(g, "ReduceSum"), c->pooling == MILES_POOL_MEAN ? 2 : 0);
    assert_int_equal(count_op(g, "Sigmoid"), c->velocity_activation == MILES_VEL_SIGMOID);
    assert_int_equal(count_op(g, "Relu"), c->n_numeric + c->n_fusion);
    assert_int_equal(count_op(g, "Gemm"), 6 * L + (c->pooling == MILES_POOL_POOLER) + c->n_numeric + c->n_fusion + 2);

    /* metadata: the model config round-trips */
    const char *cfg_json = NULL;
    for (size_t i = 0; i < mp->n_metadata_props; i++)
        if (!strcmp(mp->metadata_props[i]->key, "miles_config")) cfg_json = mp->metadata_props[i]->value;
    assert_non_null(cfg_json);
    MilesConfig back;
    expect_status(miles_config_from_json(&back, cfg_json), MILES_OK);
    assert_int_equal(back.hidden_size, c->hidden_size);
    assert_int_equal(back.pooling, c->pooling);
    assert_int_equal(back.n_fusion, c->n_fusion);

    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
}

/* The exported graphs are pinned.  test_export parses a graph and checks its
 * structure, but runs no ONNX: onnxruntime runs it in tests/export_roundtrip.py
 * (not in CI; it needs the reference stack).  So that a change to the graph
 * (a Transpose perm, a constant's shape) cannot pass CI unnoticed, the FNV-1a of
 * each packed GraphProto (nodes, attributes, initializers: model tensors and
 * constants) plus the IR and opset versions is compared with the value of the
 * graph onnxruntime last checked.  Changed the exporter on purpose?  Run
 *   /opt/miles-ref/bin/python tests/export_roundtrip.py --bin build/bin
 * (every checkpoint within 1e-4 of Miles' forward), then update the pins with
 * the values this test prints.  Checked with onnxruntime 1.17.3, 2026-12-07. */
static uint64_t graph_hash(const char *path) {
    char *buf = NULL;
    Onnx__ModelProto *mp = load_onnx(path, &buf);
    size_t n = onnx__graph_proto__get_packed_size(mp->graph);
    uint8_t *packed = malloc(n ? n : 1);
    assert_non_null(packed);
    assert_int_equal(onnx__graph_proto__pack(mp->graph, packed), n);
    uint64_t h = test_fnv1a(TEST_FNV_BASIS, packed, n);
    h = test_fnv1a(h, &mp->ir_version, sizeof mp->ir_version);
    for (size_t i = 0; i < mp->n_opset_import; i++)
        h = test_fnv1a(h, &mp->opset_import[i]->version, sizeof mp->opset_import[i]->version);
    free(packed);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
    return h;
}

static void expect_graph_pin(const char *label, const char *path, uint64_t want) {
    uint64_t h = graph_hash(path);
    printf("  ONNX graph %-34s 0x%016llx\n", label, (unsigned long long)h);
    if (h != want)
        fail_msg("%s: the exported graph changed (0x%016llx, pinned 0x%016llx): run tests/export_roundtrip.py "
                 "and update the pin (see graph_hash)", label, (unsigned long long)h, (unsigned long long)want);
}

/* 1 if a node of the ONNX file writes `name` */
static int has_node_output(const char *path, const char *name) {
    char *buf = NULL;
    Onnx__ModelProto *mp = load_onnx(path, &buf);
    int found = 0;
    for (size_t i = 0; i < mp->graph->n_node; i++)
        for (size_t j = 0; j < mp->graph->node[i]->n_output; j++)
            found |= !strcmp(mp->graph->node[i]->output[j], name);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
    return found;
}

/* ------------------------------------------------------------ the graph run */

/* Runs the exported graph in tests/onnx_ref.c (the ONNX operators as the
 * specification defines them) on a batch: ids, mask and type ids [B,T] (int32,
 * given to the graph as int64), features [B,F].  out: logits [B,2],
 * viral_prob [B], velocity [B], pooled [B,H], each shape checked. */
static void run_graph(const char *onnx, int B, int T, int H, const int32_t *ids, const int32_t *mask,
                      const int32_t *tt, float *feat, OnnxRefTensor out[4]) {
    const int64_t bt[2] = {B, T}, bf[2] = {B, MILES_NUM_FEATURES};
    OnnxRefTensor in[4] = {onnx_ref_i64_from_i32(ids, 2, bt), onnx_ref_i64_from_i32(mask, 2, bt),
                           onnx_ref_i64_from_i32(tt, 2, bt), onnx_ref_view_f32(feat, 2, bf)};
    const char *in_names[4] = {"input_ids", "attention_mask", "token_type_ids", "features"};
    const char *out_names[4] = {"logits", "viral_prob", "velocity", "pooled"};
    char err[512];
    if (onnx_ref_run(onnx, 4, in_names, in, 4, out_names, out, err, sizeof err)) fail_msg("%s: %s", onnx, err);
    for (int k = 0; k < 3; k++) onnx_ref_free(&in[k]);
    const int rank[4] = {2, 1, 1, 2};
    const int64_t last[4] = {2, B, B, H};
    for (int k = 0; k < 4; k++) {
        if (out[k].ndim != rank[k] || out[k].dims[0] != B || out[k].dims[rank[k] - 1] != last[k] || out[k].dtype != 1)
            fail_msg("%s: output %s has rank %d [%lld, ...] (want rank %d, [%d, ..., %lld])", onnx, out_names[k],
                     out[k].ndim, (long long)out[k].dims[0], rank[k], B, (long long)last[k]);
    }
}

/* The graph's answers on a batch against Miles' forward on it: logits and
 * velocity, and viral_prob against softmax(logits)[1].  Returns the max abs
 * error. */
static double graph_vs_forward(const char *onnx, MilesModel *m, const MilesBatch *b, OnnxRefTensor out[4]) {
    const MilesConfig *c = miles_model_config(m);
    float *logits = malloc(sizeof(float) * 2 * (size_t)b->B), *vel = malloc(sizeof(float) * (size_t)b->B);
    float *prob = malloc(sizeof(float) * (size_t)b->B);
    assert_true(logits && vel && prob);
    expect_status(miles_model_forward(m, b, 0, logits, vel, NULL), MILES_OK);
    for (int r = 0; r < b->B; r++) {
        double a = logits[2 * r], d = logits[2 * r + 1], mx = a > d ? a : d;
        prob[r] = (float)(exp(d - mx) / (exp(a - mx) + exp(d - mx)));
    }
    run_graph(onnx, b->B, b->T, c->hidden_size, b->input_ids, b->attention_mask, b->token_type_ids,
              (float *)b->features, out);
    double w = test_max_err(test_max_abs_diff(logits, out[0].f, 2 * (size_t)b->B),
                            test_max_err(test_max_abs_diff(prob, out[1].f, (size_t)b->B),
                                         test_max_abs_diff(vel, out[2].f, (size_t)b->B)));
    free(logits); free(vel); free(prob);
    return w;
}

static void free_outs(OnnxRefTensor out[4]) {
    for (int k = 0; k < 4; k++) onnx_ref_free(&out[k]);
}

static void test_onnx_fixture(void **state) {
    (void)state;
    char out[512];
    snprintf(out, sizeof out, "%s/fixture.onnx", tmpdir);
    expect_status(miles_export_onnx(FIX_CKPT, out, NULL), MILES_OK);
    MilesModel *m = NULL;
    expect_status(miles_checkpoint_load_model(&m, FIX_CKPT), MILES_OK);
    check_onnx(out, m);
    expect_graph_pin("fixture", out, PIN_GRAPH_FIXTURE);
    /* metadata carried over from the checkpoint */
    char *buf = NULL;
    Onnx__ModelProto *mp = load_onnx(out, &buf);
    int have_thr = 0, have_data = 0;
    for (size_t i = 0; i < mp->n_metadata_props; i++) {
        if (!strcmp(mp->metadata_props[i]->key, "decision_threshold"))
            have_thr = !strcmp(mp->metadata_props[i]->value, "0.4375");
        if (!strcmp(mp->metadata_props[i]->key, "data")) have_data = mp->metadata_props[i]->value[0] == '{';
    }
    assert_true(have_thr);
    assert_true(have_data);
    onnx__model_proto__free_unpacked(mp, NULL);
    free(buf);
    /* existing file: refused unless overwrite */
    expect_status(miles_export_onnx(FIX_CKPT, out, NULL), MILES_EINVAL);
    MilesExportOptions opt;
    miles_export_options_default(&opt);
    opt.overwrite = 1;
    expect_status(miles_export_onnx(FIX_CKPT, out, &opt), MILES_OK);
    assert_int_equal(test_count_entries(tmpdir, NULL), 1);
    unlink(out);
    miles_model_free(m);
}

static int32_t *read_i32(const MilesSafetensors *st, const char *name, int *B, int *T) {
    int nd;
    int64_t sh[8];
    int32_t *x = test_st_i32(st, name, &nd, sh, NULL);
    assert_int_equal(nd, 2);
    *B = (int)sh[0];
    *T = (int)sh[1];
    return x;
}

/* The fixture checkpoint's model and the 50 recorded titles' inputs. */
typedef struct {
    MilesModel *m;
    MilesSafetensors *st;
    int B, T;
    int32_t *ids, *mask, *tt;
    float *feat;
} FixtureIO;

static void fixture_io_open(FixtureIO *f) {
    memset(f, 0, sizeof *f);
    expect_status(miles_checkpoint_load_model(&f->m, FIX_CKPT), MILES_OK);
    expect_status(miles_safetensors_open(&f->st, FIX_IO), MILES_OK);
    int B2, T2;
    f->ids = read_i32(f->st, "input_ids", &f->B, &f->T);
    f->mask = read_i32(f->st, "attention_mask", &B2, &T2);
    assert_true(B2 == f->B && T2 == f->T);
    f->tt = read_i32(f->st, "token_type_ids", &B2, &T2);
    assert_true(B2 == f->B && T2 == f->T);
    size_t nf;
    f->feat = test_st_f32(f->st, "features", NULL, NULL, &nf);
    assert_int_equal(nf, (size_t)f->B * MILES_NUM_FEATURES);
}

static void fixture_io_close(FixtureIO *f) {
    free(f->ids); free(f->mask); free(f->tt); free(f->feat);
    miles_safetensors_close(f->st);
    miles_model_free(f->m);
}

/* The fixture's graph, run by tests/onnx_ref.c on the 50 recorded titles,
 * against what onnxruntime 1.17.3 answered on the same graph (recorded by
 * tests/export_roundtrip.py: this checks the interpreter) and against Miles'
 * forward (this checks the graph, in CI, without onnxruntime). */
static void test_fixture_graph_run(void **state) {
    (void)state;
    char onnx[512];
    snprintf(onnx, sizeof onnx, "%s/fixture.onnx", tmpdir);
    expect_status(miles_export_onnx(FIX_CKPT, onnx, NULL), MILES_OK);
    FixtureIO f;
    fixture_io_open(&f);
    MilesSafetensors *st = f.st;
    const int B = f.B;
    MilesBatch b = {f.B, f.T, f.ids, f.tt, f.mask, f.feat, NULL, NULL};
    OnnxRefTensor out[4];
    double w_fwd = graph_vs_forward(onnx, f.m, &b, out);
    const char *names[3] = {"ort.logits", "ort.viral_prob", "ort.velocity"};
    double w_ort = 0;
    for (int k = 0; k < 3; k++) {
        size_t n;
        float *ref = test_st_f32(st, names[k], NULL, NULL, &n);
        assert_int_equal(n, out[k].n);
        w_ort = test_max_err(w_ort, test_max_abs_diff(out[k].f, ref, n));
        free(ref);
    }
    printf("  onnx_ref on the fixture graph (%d titles): max |ref - onnxruntime| %.3e, |ref - miles| %.3e\n", B, w_ort,
           w_fwd);
    if (!(w_ort <= 2e-6)) fail_msg("the interpreter differs from onnxruntime by %.3e > 2e-6", w_ort);
    if (!(w_fwd <= 2e-6)) fail_msg("the exported graph differs from Miles' forward by %.3e > 2e-6", w_fwd);
    free_outs(out);
    fixture_io_close(&f);
}

/* A batch for the variants: ragged lengths (a full row, a [CLS]-only row, an
 * all-padding row), both token types, features in [-2, 2). */
static void variant_batch(int B, int T, int vocab, int32_t *ids, int32_t *mask, int32_t *tt, float *feat) {
    static const int len[6] = {9, 1, 5, 0, 3, 8};
    uint32_t x = 12345;
    for (int r = 0; r < B; r++)
        for (int t = 0; t < T; t++) {
            x = x * 1664525u + 1013904223u;
            int real = t < len[r % 6];
            ids[r * T + t] = real ? (t ? 5 + (int)(x >> 8) % (vocab - 5) : 2) : 0;
            mask[r * T + t] = real;
            tt[r * T + t] = real && t >= 4;
        }
    for (int k = 0; k < B * MILES_NUM_FEATURES; k++) {
        x = x * 1664525u + 1013904223u;
        feat[k] = (float)((x >> 8) % 4000) / 1000.0f - 2.0f;
    }
}

/* Pooling / head variants built here: cls + seed-notebook head (no numeric MLP,
 * two fusion layers, linear velocity), mean + miles head. */
static void test_variants(void **state) {
    (void)state;
    MilesTokenizer *tok = NULL;
    expect_status(miles_tokenizer_load(&tok, FIX_VOCAB), MILES_OK);
    struct { const char *preset; int pooling; } vars[] = {
        {"seed-notebook", MILES_POOL_CLS}, {"miles", MILES_POOL_MEAN}, {"seed-notebook", MILES_POOL_POOLER}};
    for (size_t v = 0; v < sizeof vars / sizeof *vars; v++) {
        MilesConfig cfg;
        expect_status(miles_config_preset(&cfg, vars[v].preset, "tiny"), MILES_OK);
        cfg.vocab_size = miles_tokenizer_vocab_size(tok);
        cfg.hidden_size = 16;
        cfg.num_attention_heads = 2;
        cfg.intermediate_size = 32;
        cfg.pooling = vars[v].pooling;
        for (int i = 0; i < cfg.n_fusion; i++) cfg.fusion_widths[i] = 8 + 4 * i;
        for (int i = 0; i < cfg.n_numeric; i++) cfg.numeric_widths[i] = 6;
        MilesModel *m = NULL;
        expect_status(miles_model_build(&m, &cfg), MILES_OK);
        expect_status(miles_model_init_random(m, 7 + v, 0.2f), MILES_OK);
        char ck[512], hf[512], onnx[512];
        snprintf(ck, sizeof ck, "%s/v%zu.safetensors", tmpdir, v);
        snprintf(hf, sizeof hf, "%s/v%zu_hf", tmpdir, v);
        snprintf(onnx, sizeof onnx, "%s/v%zu.onnx", tmpdir, v);
        save_ckpt(m, ck, 0, NULL, NULL);
        MilesExportOptions opt;
        miles_export_options_default(&opt);
        opt.vocab_dir = FIX_VOCAB;
        expect_status(miles_export_hf(ck, hf, &opt), MILES_OK);
        check_hf_tensors(m, hf);
        char p[1024];
        snprintf(p, sizeof p, "%s/model.safetensors", hf);
        MilesSafetensors *st = NULL;
        expect_status(miles_safetensors_open(&st, p), MILES_OK);
        assert_int_equal(miles_safetensors_find(st, "pooler.dense.weight") >= 0, cfg.pooling == MILES_POOL_POOLER);
        assert_int_equal(miles_safetensors_find(st, "miles.numeric_mlp.0.weight") >= 0, cfg.n_numeric > 0);
        miles_safetensors_close(st);
        snprintf(p, sizeof p, "%s/config.json", hf);
        cJSON *o = read_json(p);
        const cJSON *mi = cJSON_GetObjectItem(o, "miles");
        assert_string_equal(cJSON_GetObjectItem(mi, "pooling")->valuestring,
                            cfg.pooling == MILES_POOL_CLS ? "cls" : cfg.pooling == MILES_POOL_MEAN ? "mean" : "pooler");
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(mi, "data")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItem(mi, "decision_threshold")));
        cJSON_Delete(o);
        expect_status(miles_export_onnx(ck, onnx, NULL), MILES_OK);
        check_onnx(onnx, m);
        char label[64];
        snprintf(label, sizeof label, "%s/%s", vars[v].preset, POOL_NAME(vars[v].pooling));
        expect_graph_pin(label, onnx, PIN_GRAPH_VARIANT[v][0]);
        assert_true(has_node_output(onnx, "last_hidden_state") && has_node_output(onnx, "pooled"));
        /* what the graph computes, full and pooled-only, against Miles' forward */
        enum { VB = 6, VT = 9 };
        int32_t ids[VB * VT], mask[VB * VT], tt[VB * VT];
        float feat[VB * MILES_NUM_FEATURES];
        variant_batch(VB, VT, cfg.vocab_size, ids, mask, tt, feat);
        MilesBatch b = {VB, VT, ids, tt, mask, feat, NULL, NULL};
        OnnxRefTensor full[4], cls[4];
        double w_full = graph_vs_forward(onnx, m, &b, full);
        /* the [CLS]-rows-only last layer: a valid graph with the same tensors,
         * no full last hidden state where pooling reads only row 0 (outputs
         * against the full graph in onnxruntime: tests/export_roundtrip.py) */
        opt.pooled_only = 1;
        opt.overwrite = 1;
        expect_status(miles_export_onnx(ck, onnx, &opt), MILES_OK);
        check_onnx(onnx, m);
        snprintf(label, sizeof label, "%s/%s, pooled only", vars[v].preset, POOL_NAME(vars[v].pooling));
        expect_graph_pin(label, onnx, PIN_GRAPH_VARIANT[v][1]);
        assert_int_equal(has_node_output(onnx, "last_hidden_state"), cfg.pooling == MILES_POOL_MEAN);
        assert_true(has_node_output(onnx, "pooled"));
        double w_cls = graph_vs_forward(onnx, m, &b, cls);
        double w_pool = test_max_abs_diff(full[3].f, cls[3].f, full[3].n);
        snprintf(label, sizeof label, "%s/%s", vars[v].preset, POOL_NAME(vars[v].pooling));
        printf("  onnx_ref %-22s max |graph - miles| %.3e, pooled-only graph %.3e, their pooled vectors %.3e\n",
               label, w_full, w_cls, w_pool);
        if (!(w_full <= 2e-6 && w_cls <= 2e-6 && w_pool <= 2e-6))
            fail_msg("%s: the graph run differs from Miles' forward (%.3e, %.3e, pooled %.3e > 2e-6)", label, w_full,
                     w_cls, w_pool);
        free_outs(full);
        free_outs(cls);
        test_rm_rf(hf);
        unlink(onnx);
        unlink(ck);
        miles_model_free(m);
    }
    miles_tokenizer_free(tok);
}

/* ------------------------------------------------------------ numbers */

/* Miles' forward on the fixture inputs vs the onnxruntime and PyTorch outputs
 * recorded by tests/export_roundtrip.py on the exported models. */
static void test_fixture_outputs(void **state) {
    (void)state;
    FixtureIO f;
    fixture_io_open(&f);
    MilesModel *m = f.m;
    MilesSafetensors *st = f.st;
    const int B = f.B;
    assert_int_equal(B, 50);
    float *logits = malloc((size_t)B * 2 * sizeof(float)), *vel = malloc((size_t)B * sizeof(float));
    float *prob = malloc((size_t)B * sizeof(float));
    MilesBatch b = {B, f.T, f.ids, f.tt, f.mask, f.feat, NULL, NULL};
    expect_status(miles_model_forward(m, &b, 0, logits, vel, NULL), MILES_OK);
    for (int r = 0; r < B; r++) {
        double a = logits[2 * r], c = logits[2 * r + 1], mx = a > c ? a : c;
        prob[r] = (float)(exp(c - mx) / (exp(a - mx) + exp(c - mx)));
    }
    const char *src[3] = {"miles", "ort", "torch"};
    double worst = 0;
    for (int s = 0; s < 3; s++) {
        size_t n1, n2, n3;
        char k[64];
        snprintf(k, sizeof k, "%s.logits", src[s]);
        float *L = test_st_f32(st, k, NULL, NULL, &n1);
        snprintf(k, sizeof k, "%s.viral_prob", src[s]);
        float *P = test_st_f32(st, k, NULL, NULL, &n2);
        snprintf(k, sizeof k, "%s.velocity", src[s]);
        float *V = test_st_f32(st, k, NULL, NULL, &n3);
        assert_int_equal(n1, (size_t)B * 2);
        assert_int_equal(n2, (size_t)B);
        assert_int_equal(n3, (size_t)B);
        double dl = test_max_abs_diff(logits, L, n1), dp = test_max_abs_diff(prob, P, n2), dv = test_max_abs_diff(vel, V, n3);
        printf("  max |miles - %-5s| logits %.3e  viral_prob %.3e  velocity %.3e\n", src[s], dl, dp, dv);
        double w = test_max_err(dl, test_max_err(dp, dv));
        if (!(w <= 1e-4)) fail_msg("miles vs %s: max abs error %.3e > 1e-4", src[s], w);
        worst = test_max_err(worst, w);
        free(L); free(P); free(V);
    }
    /* the outputs vary across titles (the comparison is not between constants) */
    double mn = 1, mx = 0;
    for (int r = 0; r < B; r++) { mn = fmin(mn, prob[r]); mx = test_max_err(mx, prob[r]); }
    printf("  viral_prob range over %d titles: [%.4f, %.4f]; worst error %.3e\n", B, mn, mx, worst);
    assert_true(mx - mn > 0.1);
    free(logits); free(vel); free(prob);
    fixture_io_close(&f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hf_names),
        cmocka_unit_test_setup_teardown(test_export_data_split, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hf_export_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hf_tokenizer_checks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_on_write_failure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_onnx_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_variants, setup, teardown),
        cmocka_unit_test(test_fixture_outputs),
        cmocka_unit_test_setup_teardown(test_fixture_graph_run, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
