/*
 * test_hf_load.c — HF model directories -> MilesModel (libmiles/hf.c) and the
 * Miles parameter files (miles_model_save / miles_model_load_params).
 *
 * The real all-MiniLM-L6-v2 (models/, fetched by `make weights`) is loaded when
 * present (skipped with a message otherwise).  Small synthetic HF directories
 * (tiny config: H 64, 2 layers) are written here in a temp dir with each naming
 * scheme HF uses, plus broken variants that must fail naming the tensor.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "miles.h"
#include "helpers.h"

#define MINILM_DIR "models/all-MiniLM-L6-v2"

static char tmpdir[256];


static int setup(void **state) {
    (void)state;
    return test_mkdtemp(tmpdir, sizeof tmpdir, "hf_test");
}
static int teardown(void **state) {
    (void)state;
    test_rm_rf(tmpdir);
    return 0;
}

static void spit(const char *path, const char *s) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(s, f);
    fclose(f);
}

static uint64_t rng_state = 7;
static float frand(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (float)((int32_t)(rng_state >> 32)) / 2147483648.0f;
}

/* ------------------------------------------------------- synthetic HF dirs */

static const char *TINY_CONFIG =
    "{\"architectures\":[\"BertModel\"],\"model_type\":\"bert\",\"hidden_act\":\"gelu\","
    "\"vocab_size\":128,\"hidden_size\":64,\"num_hidden_layers\":2,\"num_attention_heads\":4,"
    "\"intermediate_size\":128,\"max_position_embeddings\":64,\"type_vocab_size\":2,"
    "\"layer_norm_eps\":1e-12,\"hidden_dropout_prob\":0.1,\"attention_probs_dropout_prob\":0.1,"
    "\"position_embedding_type\":\"absolute\",\"pad_token_id\":0}";

/* The encoder tensors of the tiny config, HF BertModel names (no "bert."),
 * with random values. */
typedef struct { char name[128]; int ndim; int64_t shape[4]; size_t numel; float *v; } SrcT;
typedef struct { SrcT t[64]; int n; } Src;

static void make_src(Src *s) {
    MilesConfig cfg;
    assert_int_equal(miles_config_preset(&cfg, "miles", "tiny"), MILES_OK);
    MilesModel *m;
    assert_int_equal(miles_model_build(&m, &cfg), MILES_OK);
    s->n = 0;
    for (int i = 0; i < miles_model_num_tensors(m); i++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, i, &ti);
        if (strncmp(ti.name, "bert.", 5)) continue;
        SrcT *t = &s->t[s->n++];
        snprintf(t->name, sizeof t->name, "%s", ti.name + 5);
        t->ndim = ti.ndim;
        memcpy(t->shape, ti.shape, sizeof t->shape);
        t->numel = ti.numel;
        t->v = malloc(ti.numel * sizeof(float));
        for (size_t k = 0; k < ti.numel; k++) t->v[k] = frand();
    }
    miles_model_free(m);
}
static void free_src(Src *s) {
    for (int i = 0; i < s->n; i++) free(s->t[i].v);
}
static const SrcT *src_find(const Src *s, const char *miles_name) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i].name, miles_name + 5)) return &s->t[i];
    return NULL;
}

enum { V_PREFIX = 1, V_GAMMA = 2, V_BF16 = 4, V_EXTRAS = 8 };

/* Write dir/config.json + dir/model.safetensors from src under a naming variant.
 * skip: HF name to leave out; rename_from/to: replace one tensor's shape by its
 * transpose (wrong shape); extra: additional unexpected tensors. */
typedef struct {
    int flags;
    const char *skip;        /* src name to omit */
    const char *transpose;   /* src name written with swapped dims */
    const char *nan_in;      /* src name whose element 3 becomes NaN */
    const char *dup;         /* src name also written under the other prefix */
    int n_extra;
    const char *extra[4];    /* extra F32 [2] tensors */
    const char *cast;        /* src name written as cast_dt (F16, F64 or an integer dtype) */
    int cast_dt;
    int cast_bad;            /* element 3 of the cast tensor: BAD_INF / BAD_NAN / BAD_BIG (F64 only) */
} Variant;
enum { BAD_NONE = 0, BAD_INF, BAD_NAN, BAD_BIG };

static uint16_t bf16_of(float f) { uint32_t u; memcpy(&u, &f, 4); return (uint16_t)(u >> 16); }

/* binary16 by truncation; |f| < 2^-14 becomes a signed zero (no subnormals,
 * so half_to_float below needs only zeros and normals).  Values of frand()
 * are below 1, inside the half range. */
static uint16_t half_of(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    int e = (int)((u >> 23) & 0xff) - 127 + 15;
    if (e <= 0) return sign;
    return (uint16_t)(sign | (uint16_t)(e << 10) | (uint16_t)((u >> 13) & 0x3ffu));
}
static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
    uint32_t u = e ? sign | ((e - 15 + 127) << 23) | (m << 13) : sign;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* The bytes of t written as dtype dt (F16, BF16, F64, I32), element 3 spoiled by bad. */
static void *cast_tensor(const SrcT *t, int dt, int bad) {
    void *out = malloc(t->numel * 8);
    for (size_t k = 0; k < t->numel; k++) {
        if (dt == MILES_DT_F16) ((uint16_t *)out)[k] = half_of(t->v[k]);
        else if (dt == MILES_DT_BF16) ((uint16_t *)out)[k] = bf16_of(t->v[k]);
        else if (dt == MILES_DT_F64) ((double *)out)[k] = (double)t->v[k];
        else ((int32_t *)out)[k] = (int32_t)(t->v[k] * 100.0f);
    }
    if (bad && dt == MILES_DT_F16) ((uint16_t *)out)[3] = bad == BAD_INF ? 0xfc00u : 0x7e00u;
    if (bad && dt == MILES_DT_BF16) ((uint16_t *)out)[3] = bad == BAD_INF ? 0x7f80u : 0xffc1u;
    if (bad && dt == MILES_DT_F64) ((double *)out)[3] = bad == BAD_INF ? INFINITY : bad == BAD_NAN ? NAN : 1e39;
    return out;
}

static void write_dir(const char *dir, const Src *s, const Variant *var) {
    mkdir(dir, 0755);
    char p[1024];
    snprintf(p, sizeof p, "%s/config.json", dir);
    spit(p, TINY_CONFIG);
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    MilesSafetensorsWriter *w;
    assert_int_equal(miles_safetensors_writer_open(&w, p), MILES_OK);
    static uint16_t *bf[64];
    static float *nanbuf;
    static void *castbuf;
    static const float two[2] = {1, 2};
    static const int64_t pos_ids[64] = {0};
    for (int i = 0; i < s->n; i++) {
        const SrcT *t = &s->t[i];
        if (var->skip && !strcmp(var->skip, t->name)) continue;
        char name[256];
        const char *nm = t->name;
        char tmp[200];
        snprintf(tmp, sizeof tmp, "%s", nm);
        size_t L = strlen(tmp);
        if ((var->flags & V_GAMMA) && L > 16 && !strcmp(tmp + L - 16, "LayerNorm.weight"))
            strcpy(tmp + L - 6, "gamma");
        else if ((var->flags & V_GAMMA) && L > 14 && !strcmp(tmp + L - 14, "LayerNorm.bias"))
            strcpy(tmp + L - 4, "beta");
        snprintf(name, sizeof name, "%s%s", (var->flags & V_PREFIX) ? "bert." : "", tmp);
        int64_t shp[4];
        memcpy(shp, t->shape, sizeof shp);
        if (var->transpose && !strcmp(var->transpose, t->name)) { shp[0] = t->shape[1]; shp[1] = t->shape[0]; }
        const void *data = t->v;
        if (var->nan_in && !strcmp(var->nan_in, t->name)) {
            free(nanbuf);
            nanbuf = malloc(t->numel * 4);
            memcpy(nanbuf, t->v, t->numel * 4);
            nanbuf[3] = NAN;
            data = nanbuf;
        }
        if (var->cast && !strcmp(var->cast, t->name)) {
            free(castbuf);   /* the writer reads it until _finish */
            castbuf = cast_tensor(t, var->cast_dt, var->cast_bad);
            assert_int_equal(miles_safetensors_writer_add(w, name, var->cast_dt, t->ndim, shp, castbuf), MILES_OK);
        } else if (var->flags & V_BF16) {
            free(bf[i]);
            bf[i] = malloc(t->numel * 2);
            for (size_t k = 0; k < t->numel; k++) bf[i][k] = bf16_of(t->v[k]);
            assert_int_equal(miles_safetensors_writer_add(w, name, MILES_DT_BF16, t->ndim, shp, bf[i]), MILES_OK);
        } else {
            assert_int_equal(miles_safetensors_writer_add(w, name, MILES_DT_F32, t->ndim, shp, data), MILES_OK);
        }
        if (var->dup && !strcmp(var->dup, t->name)) {
            snprintf(name, sizeof name, "%s%s", (var->flags & V_PREFIX) ? "" : "bert.", tmp);
            assert_int_equal(miles_safetensors_writer_add(w, name, MILES_DT_F32, t->ndim, shp, t->v), MILES_OK);
        }
    }
    if (var->flags & V_EXTRAS) {
        /* what real HF files carry besides parameters */
        const int64_t ps[2] = {1, 64}, one = 2;
        assert_int_equal(miles_safetensors_writer_add(w, (var->flags & V_PREFIX) ? "bert.embeddings.position_ids"
                                                                                 : "embeddings.position_ids",
                                                      MILES_DT_I64, 2, ps, pos_ids), MILES_OK);
        assert_int_equal(miles_safetensors_writer_add(w, "cls.predictions.bias", MILES_DT_F32, 1, &one, two), MILES_OK);
        assert_int_equal(miles_safetensors_writer_add(w, "cls.predictions.transform.LayerNorm.gamma", MILES_DT_F32, 1,
                                                      &one, two), MILES_OK);
    }
    for (int e = 0; e < var->n_extra; e++) {
        const int64_t sh = 2;
        assert_int_equal(miles_safetensors_writer_add(w, var->extra[e], MILES_DT_F32, 1, &sh, two), MILES_OK);
    }
    assert_int_equal(miles_safetensors_writer_finish(w), MILES_OK);
}

/* Every encoder tensor of m equals the source (exactly, or bf16-rounded). */
static void check_loaded(const MilesModel *m, const Src *s, int bf16) {
    int checked = 0;
    for (int i = 0; i < miles_model_num_tensors(m); i++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, i, &ti);
        if (strncmp(ti.name, "bert.", 5)) continue;
        const SrcT *t = src_find(s, ti.name);
        assert_non_null(t);
        assert_int_equal(ti.numel, t->numel);
        for (size_t k = 0; k < t->numel; k++) {
            float want = t->v[k];
            if (bf16) { uint32_t u = (uint32_t)bf16_of(want) << 16; memcpy(&want, &u, 4); }
            if (memcmp(&ti.data[k], &want, 4)) fail_msg("%s[%zu]: %g != %g", ti.name, k, ti.data[k], want);
        }
        checked++;
    }
    assert_int_equal(checked, s->n);
}

static void test_synthetic_variants(void **state) {
    (void)state;
    Src s;
    make_src(&s);
    MilesConfig head;
    assert_int_equal(miles_config_preset(&head, "miles", "bert-base"), MILES_OK);   /* BERT part replaced */
    struct { const char *name; int flags; } cases[] = {
        {"prefix", V_PREFIX | V_EXTRAS},
        {"noprefix", V_EXTRAS},
        {"gammabeta_prefix", V_PREFIX | V_GAMMA | V_EXTRAS},
        {"gammabeta_noprefix", V_GAMMA},
        {"bf16", V_PREFIX | V_BF16},
    };
    char dir[512];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        snprintf(dir, sizeof dir, "%s/%s", tmpdir, cases[c].name);
        Variant v = {cases[c].flags};
        write_dir(dir, &s, &v);
        MilesModel *m = NULL;
        MilesLoadReport rep;
        int rc = miles_model_load_hf(&m, dir, &head, 42, &rep);
        print_message("%-20s %s | %s\n", cases[c].name, miles_status_name(rc), rep.message);
        if (rc) fail_msg("%s: %s", cases[c].name, miles_last_error());
        const MilesConfig *mc = miles_model_config(m);
        assert_int_equal(mc->hidden_size, 64);
        assert_int_equal(mc->num_hidden_layers, 2);
        assert_int_equal(mc->vocab_size, 128);
        assert_int_equal(mc->fusion_widths[0], 512);   /* head part from the preset */
        assert_int_equal(rep.n_loaded, s.n);
        assert_int_equal(rep.n_missing, 0);
        assert_int_equal(rep.n_unexpected, 0);
        assert_int_equal(rep.n_ignored, (cases[c].flags & V_EXTRAS) ? 3 : 0);
        if (cases[c].flags & V_EXTRAS) assert_non_null(strstr(rep.message, "cls.predictions.bias"));
        check_loaded(m, &s, cases[c].flags & V_BF16);
        miles_model_free(m);
    }

    /* heads: HF init, deterministic for the seed */
    snprintf(dir, sizeof dir, "%s/prefix", tmpdir);
    MilesModel *a, *b, *c2;
    assert_int_equal(miles_model_load_hf(&a, dir, &head, 1, NULL), MILES_OK);
    assert_int_equal(miles_model_load_hf(&b, dir, &head, 1, NULL), MILES_OK);
    assert_int_equal(miles_model_load_hf(&c2, dir, &head, 2, NULL), MILES_OK);
    int ci = miles_model_find_tensor(a, "classifier.weight"), bi = miles_model_find_tensor(a, "fusion.0.bias");
    assert_true(ci >= 0 && bi >= 0);
    MilesTensorInfo ta, tb, tc, tbias;
    miles_model_tensor(a, ci, &ta);
    miles_model_tensor(b, ci, &tb);
    miles_model_tensor(c2, ci, &tc);
    miles_model_tensor(a, bi, &tbias);
    assert_memory_equal(ta.data, tb.data, ta.numel * 4);
    assert_memory_not_equal(ta.data, tc.data, ta.numel * 4);
    double ss = 0;
    for (size_t k = 0; k < ta.numel; k++) ss += (double)ta.data[k] * ta.data[k];
    double sd = sqrt(ss / ta.numel);
    print_message("classifier.weight init std %.4f (HF: 0.02)\n", sd);
    assert_true(sd > 0.015 && sd < 0.025);
    for (size_t k = 0; k < tbias.numel; k++) assert_true(tbias.data[k] == 0.0f);
    miles_model_free(a);
    miles_model_free(b);
    miles_model_free(c2);

    /* pooling != pooler: pooler tensors are ignored, not unexpected */
    MilesConfig mean = head;
    mean.pooling = MILES_POOL_MEAN;
    MilesLoadReport rep;
    assert_int_equal(miles_model_load_hf(&a, dir, &mean, 1, &rep), MILES_OK);
    assert_int_equal(rep.n_unexpected, 0);
    assert_int_equal(rep.n_ignored, 5);
    assert_int_equal(rep.n_loaded, s.n - 2);
    assert_non_null(strstr(rep.message, "bert.pooler.dense.weight"));
    assert_int_equal(miles_model_find_tensor(a, "bert.pooler.dense.weight"), -1);
    miles_model_free(a);
    free_src(&s);
}

static void expect_fail(const char *label, const char *dir, const MilesConfig *head, int want_rc,
                        const char *const *needles) {
    MilesModel *m = (MilesModel *)0x1;
    MilesLoadReport rep;
    int rc = miles_model_load_hf(&m, dir, head, 3, &rep);
    const char *msg = miles_last_error();
    print_message("%-14s -> %s: %s\n", label, miles_status_name(rc), msg);
    if (rc != want_rc) fail_msg("%s: expected %s, got %s", label, miles_status_name(want_rc), miles_status_name(rc));
    assert_null(m);
    for (int i = 0; needles[i]; i++)
        if (!strstr(msg, needles[i])) fail_msg("%s: message lacks '%s': %s", label, needles[i], msg);
}

static void test_synthetic_errors(void **state) {
    (void)state;
    Src s;
    make_src(&s);
    MilesConfig head;
    assert_int_equal(miles_config_preset(&head, "miles", "tiny"), MILES_OK);
    char dir[512];

    snprintf(dir, sizeof dir, "%s/missing", tmpdir);
    Variant v1 = {V_PREFIX, .skip = "encoder.layer.1.attention.self.key.weight"};
    write_dir(dir, &s, &v1);
    expect_fail("missing", dir, &head, MILES_EMISSING,
                (const char *[]){"bert.encoder.layer.1.attention.self.key.weight", "missing (1)", NULL});

    snprintf(dir, sizeof dir, "%s/missing_pooler", tmpdir);
    Variant v1b = {0, .skip = "pooler.dense.bias"};
    write_dir(dir, &s, &v1b);
    expect_fail("missing pooler", dir, &head, MILES_EMISSING, (const char *[]){"bert.pooler.dense.bias", NULL});

    snprintf(dir, sizeof dir, "%s/shape", tmpdir);
    Variant v2 = {V_PREFIX, .transpose = "encoder.layer.0.intermediate.dense.weight"};
    write_dir(dir, &s, &v2);
    expect_fail("wrong shape", dir, &head, MILES_ESHAPE,
                (const char *[]){"bert.encoder.layer.0.intermediate.dense.weight", "[64,128]", "[128,64]", NULL});

    snprintf(dir, sizeof dir, "%s/nan", tmpdir);
    Variant v3 = {0, .nan_in = "embeddings.LayerNorm.bias"};
    write_dir(dir, &s, &v3);
    expect_fail("non-finite", dir, &head, MILES_EFORMAT, (const char *[]){"embeddings.LayerNorm.bias", "not finite", NULL});

    snprintf(dir, sizeof dir, "%s/dup", tmpdir);
    Variant v4 = {V_PREFIX, .dup = "embeddings.word_embeddings.weight"};
    write_dir(dir, &s, &v4);
    expect_fail("duplicate", dir, &head, MILES_EFORMAT,
                (const char *[]){"bert.embeddings.word_embeddings.weight", "both map", NULL});

    /* unexpected tensors: reported by name, not an error */
    snprintf(dir, sizeof dir, "%s/unexpected", tmpdir);
    Variant v5 = {V_PREFIX, .n_extra = 3, .extra = {"bert.encoder.layer.7.output.dense.weight", "classifier.weight",
                                                    "bert.embeddings.extra_thing"}};
    write_dir(dir, &s, &v5);
    MilesModel *m = NULL;
    MilesLoadReport rep;
    int rc = miles_model_load_hf(&m, dir, &head, 3, &rep);
    print_message("unexpected     -> %s: %s\n", miles_status_name(rc), rep.message);
    assert_int_equal(rc, MILES_OK);
    assert_int_equal(rep.n_unexpected, 3);
    assert_non_null(strstr(rep.message, "bert.encoder.layer.7.output.dense.weight"));
    assert_non_null(strstr(rep.message, "classifier.weight"));
    assert_non_null(strstr(rep.message, "bert.embeddings.extra_thing"));
    /* the file's "classifier.weight" must not have been loaded into our head */
    MilesTensorInfo ti;
    miles_model_tensor(m, miles_model_find_tensor(m, "classifier.weight"), &ti);
    assert_false(ti.data[0] == 1.0f && ti.data[1] == 2.0f);
    miles_model_free(m);

    /* pytorch_model.bin only -> conversion hint */
    snprintf(dir, sizeof dir, "%s/ptbin", tmpdir);
    mkdir(dir, 0755);
    char p[600];
    snprintf(p, sizeof p, "%s/config.json", dir);
    spit(p, TINY_CONFIG);
    snprintf(p, sizeof p, "%s/pytorch_model.bin", dir);
    spit(p, "PK");
    expect_fail("pytorch .bin", dir, &head, MILES_EMISSING,
                (const char *[]){"pytorch_model.bin", "python tools/convert_pytorch_bin.py", NULL});

    snprintf(dir, sizeof dir, "%s/empty", tmpdir);
    mkdir(dir, 0755);
    expect_fail("no config", dir, &head, MILES_EMISSING, (const char *[]){"config.json", NULL});

    /* config whose sizes disagree with the weights */
    snprintf(dir, sizeof dir, "%s/cfgmismatch", tmpdir);
    Variant v6 = {V_PREFIX};
    write_dir(dir, &s, &v6);
    snprintf(p, sizeof p, "%s/config.json", dir);
    char cfgtext[2048];
    snprintf(cfgtext, sizeof cfgtext, "%s", TINY_CONFIG);
    char *q = strstr(cfgtext, "\"vocab_size\":128");
    memcpy(q, "\"vocab_size\":130", 16);
    spit(p, cfgtext);
    expect_fail("vocab mismatch", dir, &head, MILES_ESHAPE,
                (const char *[]){"bert.embeddings.word_embeddings.weight", "[128,64]", "[130,64]", NULL});
    free_src(&s);
}

/* A copy of TINY_CONFIG with the text `from` replaced by `to`. */
static void config_with(char *out, size_t cap, const char *from, const char *to) {
    const char *q = strstr(TINY_CONFIG, from);
    assert_non_null(q);
    snprintf(out, cap, "%.*s%s%s", (int)(q - TINY_CONFIG), TINY_CONFIG, to, q + strlen(from));
}

/* Half and double tensors are converted (double only within the f32 range),
 * non-finite elements and integer dtypes are refused naming the tensor (and
 * element); config.json's fields are checked naming the file; a directory
 * without model.safetensors (or its shards) is refused. */
static void test_synthetic_dtypes_configs(void **state) {
    (void)state;
    Src s;
    make_src(&s);
    MilesConfig head;
    assert_int_equal(miles_config_preset(&head, "miles", "tiny"), MILES_OK);
    const char *T = "encoder.layer.0.attention.output.dense.weight";
    char dir[512], p[600], want[200];
    MilesModel *m = NULL;
    MilesLoadReport rep;

    /* double: every value exactly (the source is float) */
    snprintf(dir, sizeof dir, "%s/f64", tmpdir);
    Variant vd = {V_PREFIX, .cast = T, .cast_dt = MILES_DT_F64};
    write_dir(dir, &s, &vd);
    if (miles_model_load_hf(&m, dir, &head, 3, &rep)) fail_msg("f64: %s", miles_last_error());
    assert_int_equal(rep.n_loaded, s.n);
    check_loaded(m, &s, 0);
    miles_model_free(m);
    /* half: its value, element by element */
    snprintf(dir, sizeof dir, "%s/f16", tmpdir);
    Variant vh = {V_PREFIX, .cast = T, .cast_dt = MILES_DT_F16};
    write_dir(dir, &s, &vh);
    if (miles_model_load_hf(&m, dir, &head, 3, &rep)) fail_msg("f16: %s", miles_last_error());
    assert_int_equal(rep.n_loaded, s.n);
    snprintf(want, sizeof want, "bert.%s", T);
    MilesTensorInfo ti;
    assert_int_equal(miles_model_tensor(m, miles_model_find_tensor(m, want), &ti), MILES_OK);
    const SrcT *src = src_find(&s, want);
    size_t differ = 0;
    for (size_t k = 0; k < ti.numel; k++) {
        float h = half_to_float(half_of(src->v[k]));
        if (memcmp(&ti.data[k], &h, 4)) fail_msg("f16 %s[%zu]: %g != %g", T, k, ti.data[k], h);
        differ += h != src->v[k];
    }
    assert_true(differ > ti.numel / 2);   /* the half values, not the float source */
    miles_model_free(m);

    /* refused: non-finite halves and doubles, doubles beyond f32, integers */
    struct { const char *label; int dt, bad; const char *needle; } bad[] = {
        {"f16 -inf", MILES_DT_F16, BAD_INF, "element 3 is not finite"},
        {"f16 nan", MILES_DT_F16, BAD_NAN, "element 3 is not finite"},
        {"bf16 inf", MILES_DT_BF16, BAD_INF, "element 3 is not finite"},
        {"bf16 -nan", MILES_DT_BF16, BAD_NAN, "element 3 is not finite"},
        {"f64 inf", MILES_DT_F64, BAD_INF, "element 3 is not finite"},
        {"f64 nan", MILES_DT_F64, BAD_NAN, "element 3 is not finite"},
        {"f64 1e39", MILES_DT_F64, BAD_BIG, "element 3 is not finite"},
        {"i32", MILES_DT_I32, BAD_NONE, "has integer dtype I32"},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        snprintf(dir, sizeof dir, "%s/cast%zu", tmpdir, c);
        Variant v = {V_PREFIX, .cast = T, .cast_dt = bad[c].dt, .cast_bad = bad[c].bad};
        write_dir(dir, &s, &v);
        expect_fail(bad[c].label, dir, &head, MILES_EFORMAT, (const char *[]){want, bad[c].needle, NULL});
    }

    /* config.json fields */
    snprintf(dir, sizeof dir, "%s/cfg", tmpdir);
    Variant v0 = {V_PREFIX};
    write_dir(dir, &s, &v0);
    snprintf(p, sizeof p, "%s/config.json", dir);
    struct { const char *from, *to; int rc; const char *needle; } cfgs[] = {
        {NULL, "[1, 2]", MILES_EFORMAT, "top level is not a JSON object"},
        {NULL, "{\"model_type\": \"bert\",", MILES_EFORMAT, "invalid JSON near byte"},
        {"\"layer_norm_eps\":1e-12", "\"layer_norm_eps\":\"small\"", MILES_EFORMAT, "field \"layer_norm_eps\" must be a number"},
        {"\"hidden_dropout_prob\":0.1", "\"hidden_dropout_prob\":[0.1]", MILES_EFORMAT, "field \"hidden_dropout_prob\" must be a number"},
        {"\"hidden_size\":64", "\"hidden_size\":64.5", MILES_EFORMAT, "field \"hidden_size\" must be a non-negative integer"},
        {"\"hidden_size\":64,", "", MILES_EMISSING, "required field \"hidden_size\" is missing"},
        {"\"model_type\":\"bert\"", "\"model_type\":\"roberta\"", MILES_EUNSUPPORTED, "model_type \"roberta\""},
        {"\"hidden_act\":\"gelu\"", "\"hidden_act\":\"gelu_new\"", MILES_EUNSUPPORTED, "hidden_act \"gelu_new\""},
        {"\"position_embedding_type\":\"absolute\"", "\"position_embedding_type\":\"relative_key\"", MILES_EUNSUPPORTED,
         "position_embedding_type \"relative_key\""},
        {"\"position_embedding_type\":\"absolute\"", "\"position_embedding_type\":3", MILES_EUNSUPPORTED,
         "position_embedding_type \"(not a string)\""},
        {"\"num_attention_heads\":4", "\"num_attention_heads\":5", MILES_EINVAL, "not a multiple of num_attention_heads 5"},
        {"\"max_position_embeddings\":64", "\"max_position_embeddings\":0", MILES_EINVAL, "positions 0"},
        {"\"type_vocab_size\":2", "\"type_vocab_size\":0", MILES_EINVAL, "type vocab 0"},
        {"\"layer_norm_eps\":1e-12", "\"layer_norm_eps\":-1e-12", MILES_EINVAL, "eps -1e-12"},
        {"\"num_hidden_layers\":2", "\"num_hidden_layers\":0", MILES_EINVAL, "layers 0"},
    };
    char text[2048];
    for (size_t c = 0; c < sizeof cfgs / sizeof cfgs[0]; c++) {
        if (cfgs[c].from) config_with(text, sizeof text, cfgs[c].from, cfgs[c].to);
        else snprintf(text, sizeof text, "%s", cfgs[c].to);
        spit(p, text);
        expect_fail(cfgs[c].needle, dir, &head, cfgs[c].rc, (const char *[]){p, cfgs[c].needle, NULL});
    }
    spit(p, TINY_CONFIG);
    assert_int_equal(miles_model_load_hf(&m, dir, &head, 3, NULL), MILES_OK);   /* the same directory, mended */
    miles_model_free(m);

    /* no model.safetensors (nor an index of shards) */
    snprintf(dir, sizeof dir, "%s/noweights", tmpdir);
    mkdir(dir, 0755);
    snprintf(p, sizeof p, "%s/config.json", dir);
    spit(p, TINY_CONFIG);
    expect_fail("no weights", dir, &head, MILES_EMISSING, (const char *[]){dir, "no model.safetensors", NULL});
    snprintf(p, sizeof p, "%s/pytorch_model.bin.index.json", dir);
    spit(p, "{\"weight_map\": {}}");
    expect_fail("bin shards", dir, &head, MILES_EMISSING,
                (const char *[]){dir, "pytorch_model.bin", "convert_pytorch_bin.py", NULL});
    free_src(&s);
}

/* ------------------------------------------------------- sharded HF dirs */

#define SHARDED_DIR "tests/fixtures/hf_sharded"

/* A copy of the fixture in tmpdir/name whose index is `index` (a JSON text;
 * NULL: the original); returns the directory in dir[512]. */
static void sharded_copy(char *dir, const char *name, const char *index) {
    snprintf(dir, 512, "%.255s/shards-%.200s", tmpdir, name);   /* beside the other tests' dirs */
    mkdir(dir, 0755);
    DIR *d = opendir(SHARDED_DIR);
    assert_non_null(d);
    struct dirent *e;
    char a[1024], b[1024];
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        snprintf(a, sizeof a, "%s/%s", SHARDED_DIR, e->d_name);
        snprintf(b, sizeof b, "%s/%s", dir, e->d_name);
        assert_int_equal(test_copy_file(a, b), 0);
    }
    closedir(d);
    if (index) {
        snprintf(b, sizeof b, "%s/model.safetensors.index.json", dir);
        spit(b, index);
    }
}

/* The fixture's index with weight_map[tensor] set to file (NULL: removed). */
static char *index_with(const char *tensor, const char *file) {
    cJSON *o = test_read_json(SHARDED_DIR "/model.safetensors.index.json");
    cJSON *map = cJSON_GetObjectItemCaseSensitive(o, "weight_map");
    if (file) {
        cJSON_DeleteItemFromObjectCaseSensitive(map, tensor);
        cJSON_AddStringToObject(map, tensor, file);
    } else {
        assert_non_null(cJSON_GetObjectItemCaseSensitive(map, tensor));
        cJSON_DeleteItemFromObjectCaseSensitive(map, tensor);
    }
    char *t = cJSON_Print(o);
    cJSON_Delete(o);
    return t;
}

/* tests/fixtures/hf_sharded (tests/gen_hf_sharded.py): a tiny BERT that
 * transformers 4.40.2 saved in 10 shards.  Every encoder tensor must equal the
 * single-file copy bit for bit, and the encoder's last hidden state must match
 * transformers' for the same ids; then broken indexes are refused naming the
 * tensor and the files. */
static void test_sharded_hf(void **state) {
    (void)state;
    MilesConfig head;
    assert_int_equal(miles_config_preset(&head, "miles", "tiny"), MILES_OK);
    head.pooling = MILES_POOL_POOLER;
    MilesModel *m = NULL;
    MilesLoadReport rep;
    if (miles_model_load_hf(&m, SHARDED_DIR, &head, 5, &rep)) fail_msg("%s", miles_last_error());
    print_message("sharded: %s\n", rep.message);
    assert_non_null(strstr(rep.message, SHARDED_DIR "/model.safetensors.index.json: loaded"));
    assert_int_equal(miles_model_config(m)->hidden_size, 16);

    MilesSafetensors *ex;
    assert_int_equal(miles_safetensors_open(&ex, SHARDED_DIR "/expected.safetensors"), MILES_OK);
    int n_bert = 0;
    for (int t = 0; t < miles_model_num_tensors(m); t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        if (strncmp(ti.name, "bert.", 5)) continue;
        size_t n;
        float *want = test_st_f32(ex, ti.name, NULL, NULL, &n);
        assert_int_equal(n, ti.numel);
        if (memcmp(want, ti.data, n * 4)) fail_msg("%s differs from the single-file copy", ti.name);
        free(want);
        n_bert++;
    }
    assert_int_equal(n_bert, miles_safetensors_count(ex));
    assert_int_equal(rep.n_loaded, n_bert);
    assert_int_equal(rep.n_missing, 0);
    assert_int_equal(rep.n_unexpected, 2);   /* the classifier of BertForSequenceClassification */
    assert_non_null(strstr(rep.message, "classifier.weight"));
    miles_safetensors_close(ex);

    /* the encoder computes what transformers computed with these weights */
    MilesSafetensors *lh;
    assert_int_equal(miles_safetensors_open(&lh, SHARDED_DIR "/last_hidden.safetensors"), MILES_OK);
    int nd;
    int64_t sh[8];
    size_t n;
    int32_t *ids = test_st_i32(lh, "ids", &nd, sh, &n), *mask = test_st_i32(lh, "mask", NULL, NULL, NULL);
    int32_t *types = test_st_i32(lh, "types", NULL, NULL, NULL);
    float *want = test_st_f32(lh, "last_hidden", NULL, NULL, NULL);
    const int B = (int)sh[0], T = (int)sh[1], H = 16;
    float *feat = calloc((size_t)B * MILES_NUM_FEATURES, sizeof(float)), logits[8];
    MilesBatch b = {.B = B, .T = T, .input_ids = ids, .token_type_ids = types, .attention_mask = mask,
                    .features = feat};
    if (miles_model_forward(m, &b, 0, logits, NULL, NULL)) fail_msg("%s", miles_last_error());
    const float *h = miles_model_last_hidden(m);
    assert_non_null(h);
    double err = 0;
    int real = 0;
    for (int r = 0; r < B * T; r++) {
        if (!mask[r]) continue;
        real++;
        for (int c = 0; c < H; c++) err = test_max_err(err, fabs((double)h[(size_t)r * H + c] - want[(size_t)r * H + c]));
    }
    print_message("sharded: last hidden state vs transformers at %d real tokens: max abs err %.3g (tol 2e-5)\n",
                  real, err);
    assert_true(real == 12 && err <= 2e-5);
    free(ids);
    free(mask);
    free(types);
    free(want);
    free(feat);
    miles_safetensors_close(lh);
    miles_model_free(m);

    /* broken indexes and shards */
    char dir[512], p[1024];
    const char *t0 = "bert.encoder.layer.0.attention.self.query.weight";   /* in shard 3 */
    char *ix = index_with(t0, "model-00004-of-00010.safetensors");
    sharded_copy(dir, "moved", ix);
    expect_fail("tensor moved", dir, &head, MILES_EFORMAT,
                (const char *[]){"model-00003-of-00010.safetensors", t0, "puts it in model-00004-of-00010", NULL});
    free(ix);
    ix = index_with(t0, NULL);
    sharded_copy(dir, "unlisted", ix);
    expect_fail("not listed", dir, &head, MILES_EFORMAT, (const char *[]){t0, "is not in the index", NULL});
    free(ix);
    ix = index_with("bert.encoder.layer.0.extra", "model-00001-of-00010.safetensors");
    sharded_copy(dir, "extra", ix);
    expect_fail("listed, absent", dir, &head, MILES_EMISSING,
                (const char *[]){"bert.encoder.layer.0.extra", "should be in model-00001-of-00010", NULL});
    free(ix);
    ix = index_with("bert.encoder.layer.0.extra", "../model-00001-of-00010.safetensors");
    sharded_copy(dir, "escape", ix);
    expect_fail("path in index", dir, &head, MILES_EFORMAT,
                (const char *[]){"bert.encoder.layer.0.extra", "must be a file name beside the index", NULL});
    free(ix);
    sharded_copy(dir, "lost", NULL);
    snprintf(p, sizeof p, "%s/model-00007-of-00010.safetensors", dir);
    assert_int_equal(unlink(p), 0);
    expect_fail("shard missing", dir, &head, MILES_EMISSING, (const char *[]){"lists model-00007-of-00010", NULL});
    sharded_copy(dir, "cut", NULL);
    snprintf(p, sizeof p, "%s/model-00001-of-00010.safetensors", dir);
    assert_int_equal(truncate(p, 100), 0);
    expect_fail("shard cut", dir, &head, MILES_EFORMAT, (const char *[]){"model-00001-of-00010.safetensors", NULL});
    sharded_copy(dir, "badjson", "{\"weight_map\": {\"a\": ");
    expect_fail("bad index", dir, &head, MILES_EFORMAT, (const char *[]){"index.json", "invalid JSON", NULL});
    sharded_copy(dir, "empty", "{\"metadata\": {}, \"weight_map\": {}}");
    expect_fail("empty index", dir, &head, MILES_EFORMAT, (const char *[]){"no \"weight_map\"", NULL});
    sharded_copy(dir, "numbers", "{\"weight_map\": {\"bert.pooler.dense.bias\": 7}}");
    expect_fail("number in map", dir, &head, MILES_EFORMAT, (const char *[]){"bert.pooler.dense.bias", NULL});

    /* a shard's tensors still pass the single-file checks (shape against config.json) */
    sharded_copy(dir, "shape", NULL);
    snprintf(p, sizeof p, "%s/config.json", dir);
    char *cfg = test_slurp(p, NULL);
    char *q = strstr(cfg, "\"intermediate_size\": 32");
    assert_non_null(q);
    memcpy(q, "\"intermediate_size\": 31", 23);
    spit(p, cfg);
    free(cfg);
    expect_fail("shard shape", dir, &head, MILES_ESHAPE,
                (const char *[]){"bert.encoder.layer.0.intermediate.dense.weight: file [32,16] vs model [31,16]", NULL});
}

/* ------------------------------------------------------------ real model */

static void test_real_minilm(void **state) {
    (void)state;
    if (access(MINILM_DIR "/model.safetensors", R_OK) != 0) {
        print_message("SKIP: " MINILM_DIR "/model.safetensors not found; run `make weights`\n");
        skip();
    }
    MilesConfig head;
    assert_int_equal(miles_config_preset(&head, "miles", "bert-base"), MILES_OK);
    MilesModel *m = NULL;
    MilesLoadReport rep;
    int rc = miles_model_load_hf(&m, MINILM_DIR, &head, 0, &rep);
    print_message("MiniLM: %s | %s\n", miles_status_name(rc), rep.message);
    if (rc) fail_msg("%s", miles_last_error());
    const MilesConfig *c = miles_model_config(m);
    assert_int_equal(c->hidden_size, 384);
    assert_int_equal(c->num_hidden_layers, 6);
    assert_int_equal(c->num_attention_heads, 12);
    assert_int_equal(rep.n_loaded, 5 + 16 * 6 + 2);
    assert_int_equal(rep.n_missing, 0);
    assert_int_equal(rep.n_unexpected, 0);
    assert_int_equal(rep.n_ignored, 1);   /* embeddings.position_ids */

    /* values equal the file's, read independently */
    MilesSafetensors *st;
    assert_int_equal(miles_safetensors_open(&st, MINILM_DIR "/model.safetensors"), MILES_OK);
    const char *names[] = {"embeddings.word_embeddings.weight", "encoder.layer.5.output.LayerNorm.weight",
                           "encoder.layer.3.attention.self.value.bias", "pooler.dense.weight"};
    for (int k = 0; k < 4; k++) {
        int i = miles_safetensors_find(st, names[k]);
        assert_true(i >= 0);
        size_t n;
        miles_safetensors_info(st, i, NULL, NULL, NULL, &n);
        float *ref = malloc(n * 4);
        assert_int_equal(miles_safetensors_read_f32(st, i, ref, n), MILES_OK);
        char mn[128];
        snprintf(mn, sizeof mn, "bert.%s", names[k]);
        MilesTensorInfo ti;
        assert_int_equal(miles_model_tensor(m, miles_model_find_tensor(m, mn), &ti), MILES_OK);
        assert_int_equal(ti.numel, n);
        assert_memory_equal(ti.data, ref, n * 4);
        free(ref);
    }
    miles_safetensors_close(st);
    miles_model_free(m);

    head.pooling = MILES_POOL_MEAN;
    assert_int_equal(miles_model_load_hf(&m, MINILM_DIR, &head, 0, &rep), MILES_OK);
    assert_int_equal(rep.n_loaded, 5 + 16 * 6);
    assert_int_equal(rep.n_ignored, 3);
    miles_model_free(m);
}

/* ------------------------------------------------ save / load parameters */

static void test_save_load_params(void **state) {
    (void)state;
    MilesConfig cfg;
    assert_int_equal(miles_config_preset(&cfg, "miles", "tiny"), MILES_OK);
    MilesModel *a, *b;
    assert_int_equal(miles_model_build(&a, &cfg), MILES_OK);
    assert_int_equal(miles_model_build(&b, &cfg), MILES_OK);
    assert_int_equal(miles_model_init_random(a, 11, 0.02f), MILES_OK);
    assert_int_equal(miles_model_init_random(b, 12, 0.02f), MILES_OK);
    /* make every tensor non-trivial (biases/LN are constants after init) */
    for (int i = 0; i < miles_model_num_tensors(a); i++) {
        MilesTensorInfo ti;
        miles_model_tensor(a, i, &ti);
        for (size_t k = 0; k < ti.numel; k++) ti.data[k] += 1e-3f * frand();
    }
    char path[512];
    snprintf(path, sizeof path, "%s/params.safetensors", tmpdir);
    const char *keys[] = {"config", "note"}, *vals[] = {"{\"preset\":\"miles\"}", "unit test"};
    assert_int_equal(miles_model_save(a, path, 2, keys, vals), MILES_OK);
    MilesSafetensors *st;
    assert_int_equal(miles_safetensors_open(&st, path), MILES_OK);
    assert_int_equal(miles_safetensors_count(st), miles_model_num_tensors(a));
    assert_string_equal(miles_safetensors_metadata(st, "config"), "{\"preset\":\"miles\"}");
    assert_string_equal(miles_safetensors_metadata(st, "note"), "unit test");
    miles_safetensors_close(st);

    assert_int_equal(miles_model_load_params(b, path), MILES_OK);
    for (int i = 0; i < miles_model_num_tensors(a); i++) {
        MilesTensorInfo ta, tb;
        miles_model_tensor(a, i, &ta);
        miles_model_tensor(b, i, &tb);
        assert_string_equal(ta.name, tb.name);
        assert_memory_equal(ta.data, tb.data, ta.numel * 4);   /* bit-exact */
    }

    /* truncated copies are refused and leave the model untouched */
    FILE *f = fopen(path, "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)n);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    char tpath[600];
    snprintf(tpath, sizeof tpath, "%s/trunc.safetensors", tmpdir);
    MilesModel *c;
    assert_int_equal(miles_model_build(&c, &cfg), MILES_OK);
    assert_int_equal(miles_model_init_random(c, 13, 0.02f), MILES_OK);
    MilesTensorInfo c0;
    miles_model_tensor(c, 0, &c0);
    float before = c0.data[5];
    const long cuts[] = {1, 4, 100, n / 2, n - 9};
    for (int k = 0; k < 5; k++) {
        f = fopen(tpath, "wb");
        fwrite(buf, 1, (size_t)(n - cuts[k]), f);
        fclose(f);
        int rc = miles_model_load_params(c, tpath);
        print_message("truncated by %ld bytes -> %s: %s\n", cuts[k], miles_status_name(rc), miles_last_error());
        assert_int_equal(rc, MILES_EFORMAT);
        assert_non_null(strstr(miles_last_error(), tpath));
        assert_true(c0.data[5] == before);
    }
    free(buf);

    /* wrong configuration: a different fusion width -> shape error naming the tensor */
    MilesConfig cfg2 = cfg;
    cfg2.fusion_widths[0] = 32;
    MilesModel *d;
    assert_int_equal(miles_model_build(&d, &cfg2), MILES_OK);
    assert_int_equal(miles_model_load_params(d, path), MILES_ESHAPE);
    print_message("other width: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "fusion.0.weight"));
    miles_model_free(d);
    /* no pooler in the model: the file's pooler is unexpected */
    cfg2 = cfg;
    cfg2.pooling = MILES_POOL_CLS;
    assert_int_equal(miles_model_build(&d, &cfg2), MILES_OK);
    assert_int_equal(miles_model_load_params(d, path), MILES_EFORMAT);
    print_message("no pooler: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "bert.pooler.dense"));
    /* and the reverse: a pooler model from a pooler-less file -> missing */
    char p2[600];
    snprintf(p2, sizeof p2, "%s/nopool.safetensors", tmpdir);
    assert_int_equal(miles_model_save(d, p2, 0, NULL, NULL), MILES_OK);
    assert_int_equal(miles_model_load_params(c, p2), MILES_EMISSING);
    print_message("pooler missing: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "bert.pooler.dense.weight"));
    miles_model_free(d);

    /* NaN parameters are refused */
    MilesTensorInfo ti;
    miles_model_tensor(a, 7, &ti);
    ti.data[2] = NAN;
    assert_int_equal(miles_model_save(a, path, 0, NULL, NULL), MILES_OK);
    assert_int_equal(miles_model_load_params(c, path), MILES_ENAN);
    assert_non_null(strstr(miles_last_error(), ti.name));
    assert_true(c0.data[5] == before);

    /* a parameter stored as integers, or as a half with an Inf: refused, model untouched */
    ti.data[2] = 0.5f;
    struct { int dt, bad, rc; const char *needle; } casts[] = {
        {MILES_DT_I32, BAD_NONE, MILES_EFORMAT, "has integer dtype I32"},
        {MILES_DT_F16, BAD_INF, MILES_ENAN, "element 3 is NaN or Inf"},
        {MILES_DT_F64, BAD_BIG, MILES_ENAN, "element 3 is NaN or Inf"},
    };
    for (size_t k = 0; k < sizeof casts / sizeof casts[0]; k++) {
        MilesSafetensorsWriter *w;
        assert_int_equal(miles_safetensors_writer_open(&w, path), MILES_OK);
        void *cast = NULL;
        for (int i = 0; i < miles_model_num_tensors(a); i++) {
            MilesTensorInfo tw;
            miles_model_tensor(a, i, &tw);
            const void *data = tw.data;
            int dt = MILES_DT_F32;
            if (i == 7) {
                SrcT t = {.numel = tw.numel, .v = tw.data};
                data = cast = cast_tensor(&t, casts[k].dt, casts[k].bad);
                dt = casts[k].dt;
            }
            assert_int_equal(miles_safetensors_writer_add(w, tw.name, dt, tw.ndim, tw.shape, data), MILES_OK);
        }
        assert_int_equal(miles_safetensors_writer_finish(w), MILES_OK);
        free(cast);
        int rc = miles_model_load_params(c, path);
        print_message("tensor 7 as %s: %s\n", miles_dtype_name(casts[k].dt), miles_last_error());
        assert_int_equal(rc, casts[k].rc);
        assert_non_null(strstr(miles_last_error(), ti.name));
        assert_non_null(strstr(miles_last_error(), casts[k].needle));
        assert_true(c0.data[5] == before);
    }

    miles_model_free(a);
    miles_model_free(b);
    miles_model_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_synthetic_variants),
        cmocka_unit_test(test_synthetic_errors),
        cmocka_unit_test(test_synthetic_dtypes_configs),
        cmocka_unit_test(test_sharded_hf),
        cmocka_unit_test(test_real_minilm),
        cmocka_unit_test(test_save_load_params),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
