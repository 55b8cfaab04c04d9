/*
 * test_infer.c — the inference engine (libmiles/model_infer.c) against the
 * reference forward (miles_model_forward, eval mode).
 *
 *   - fp32: bit-identical logits and velocity on the golden fixtures' models
 *     and batches, and on tiny models with heavy, irregular padding (T not a
 *     multiple of 16, a row of padding only, mask holes, a padded first
 *     token), with 1 and 2 threads, all three poolings;
 *   - the engine is dropped when the weights change (init, load, AdamW);
 *   - bf16 / int8 (where the CPU has them): logits within a stated tolerance
 *     of fp32, else refused with MILES_EUNSUPPORTED and a message;
 *   - pinned scores: fp32, bf16 and int8 logits and velocities of two fixed
 *     models hash to the constants in the test, on every machine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "helpers.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "miles.h"
#include "golden_config.h"
#include "model_infer.h"
#include "gemm_lowp.h"
#include "ops_internal.h"

static void set_threads(int n) {
#ifdef _OPENMP
    omp_set_num_threads(n);
#else
    (void)n;
#endif
}

static double max_abs_diff(const float *a, const float *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d; /* NaN fails */
    }
    return m;
}

/* Reference (eval-mode forward) vs the engine at `prec`; returns the max abs
 * logit/velocity difference; *bits_equal says whether all bits agree. */
static double compare(MilesModel *m, const MilesBatch *b, MilesPrecision prec, int *bits_equal) {
    const int B = b->B;
    float *l0 = calloc((size_t)B * 2, sizeof(float)), *v0 = calloc((size_t)B, sizeof(float));
    float *l1 = calloc((size_t)B * 2, sizeof(float)), *v1 = calloc((size_t)B, sizeof(float));
    assert_true(l0 && v0 && l1 && v1);
    MilesBatch eb = *b;
    eb.labels = NULL;
    eb.velocity = NULL;
    OK(miles_model_forward(m, &eb, 0, l0, v0, NULL));
    MilesInfer *e = NULL;
    OK(miles_infer_build(&e, m, prec));
    OK(miles_infer_forward(e, &eb, l1, v1));
    /* a second call on the grown workspace gives the same result */
    float *l2 = calloc((size_t)B * 2, sizeof(float));
    OK(miles_infer_forward(e, &eb, l2, NULL));
    assert_memory_equal(l1, l2, (size_t)B * 2 * sizeof(float));
    free(l2);
    miles_infer_free(e);
    *bits_equal = !memcmp(l0, l1, (size_t)B * 2 * sizeof(float)) && !memcmp(v0, v1, (size_t)B * sizeof(float));
    double d = max_abs_diff(l0, l1, (size_t)B * 2), dv = max_abs_diff(v0, v1, (size_t)B);
    free(l0); free(v0); free(l1); free(v1);
    return d > dv ? d : dv;
}

/* ------------------------------------------------------------ golden fixtures */

static const char *const FIXTURES[] = {GOLDEN_FIXTURES};

static void *read_t(MilesSafetensors *st, const char *name, int i32, size_t *n_out) {
    int i = miles_safetensors_find(st, name);
    if (i < 0) fail_msg("fixture tensor %s missing", name);
    size_t n = 0;
    OK(miles_safetensors_info(st, i, NULL, NULL, NULL, &n));
    void *p = malloc((n ? n : 1) * 4);
    assert_non_null(p);
    if (i32) OK(miles_safetensors_read_i32(st, i, p, n));
    else OK(miles_safetensors_read_f32(st, i, p, n));
    if (n_out) *n_out = n;
    return p;
}

/* The fixture's model (tests/test_golden.c's build: preset structure at the
 * fixture's BERT sizes, weights by checkpoint name). */
static MilesModel *golden_model(MilesSafetensors *st) {
    size_t n;
    int32_t *arch = read_t(st, "meta.arch", 1, &n);
    int32_t *bert = read_t(st, "meta.bert", 1, &n);
    MilesConfig c;
    OK(golden_config(&c, arch, bert, 0));
    free(arch);
    free(bert);
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &c));
    for (int t = 0; t < miles_model_num_tensors(m); t++) {
        MilesTensorInfo ti;
        OK(miles_model_tensor(m, t, &ti));
        int i = miles_safetensors_find(st, ti.name);
        if (i < 0) fail_msg("fixture has no weight %s", ti.name);
        OK(miles_safetensors_read_f32(st, i, ti.data, ti.numel));
    }
    return m;
}

static void test_golden_fp32_bits(void **state) {
    (void)state;
    for (size_t f = 0; f < sizeof FIXTURES / sizeof FIXTURES[0]; f++) {
        MilesSafetensors *st = NULL;
        OK(miles_safetensors_open(&st, FIXTURES[f]));
        MilesModel *m = golden_model(st);
        size_t n, nb;
        int32_t *ids = read_t(st, "input_ids", 1, &n), *tt = read_t(st, "token_type_ids", 1, NULL);
        int32_t *mask = read_t(st, "attention_mask", 1, NULL), *lab = read_t(st, "labels", 1, &nb);
        float *feats = read_t(st, "features", 0, NULL);
        int npad = 0;
        for (size_t i = 0; i < n; i++) npad += !mask[i];
        MilesBatch b = {(int)nb, (int)(n / nb), ids, tt, mask, feats, NULL, NULL};
        for (int th = 1; th <= 2; th++) {
            set_threads(th);
            int eq = 0;
            double d = compare(m, &b, MILES_PRECISION_FP32, &eq);
            printf("  %s B=%d T=%d padded tokens %d, %d thread(s): max |diff| %.3g, bits %s\n", FIXTURES[f], b.B,
                   b.T, npad, th, d, eq ? "equal" : "DIFFER");
            assert_true(eq);
        }
        free(ids); free(tt); free(mask); free(lab); free(feats);
        miles_model_free(m);
        miles_safetensors_close(st);
    }
}

/* ------------------------------------------------------------ tiny models, padding */

static MilesModel *tiny_model(const char *preset, int pooling, uint64_t seed) {
    MilesConfig c;
    OK(miles_config_preset(&c, preset, "tiny"));
    c.pooling = pooling;
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &c));
    OK(miles_model_init_random(m, seed, 0.05f));
    for (int t = 0; t < miles_model_num_tensors(m); t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        for (size_t i = 0; i < ti.numel; i++) {
            float u = (float)(((i * 2654435761u + (size_t)t * 97u) % 1000) / 1000.0 - 0.5);
            if (strstr(ti.name, "LayerNorm.weight")) ti.data[i] = 1.0f + 0.2f * u;
            else if (strstr(ti.name, "bias")) ti.data[i] = 0.04f * u;
            else if (!strncmp(ti.name, "fusion", 6) || !strncmp(ti.name, "numeric", 7) ||
                     !strncmp(ti.name, "classifier", 10) || !strncmp(ti.name, "regressor", 9))
                ti.data[i] *= 3.0f;
        }
    }
    return m;
}

#define PB 9
#define PT 37
typedef struct {
    int32_t ids[PB * PT], tt[PB * PT], mask[PB * PT];
    float feats[PB * MILES_NUM_FEATURES];
    MilesBatch b;
} PadBatch;

/* Lengths 37, 30, 17, 16, 5, 1, 0 (all padding), 20 with holes, 12 with a
 * padded first token: every branch of the engine's length logic. */
static void pad_batch(PadBatch *x, int V) {
    static const int lens[PB] = {37, 30, 17, 16, 5, 1, 0, 20, 12};
    memset(x, 0, sizeof *x);
    for (int r = 0; r < PB; r++) {
        for (int t = 0; t < PT; t++) {
            int i = r * PT + t;
            x->ids[i] = t == 0 ? 2 : 5 + (r * 31 + t * 17) % (V - 5);
            x->mask[i] = t < lens[r];
            x->tt[i] = (r % 2 && t > lens[r] / 2) ? 1 : 0;
        }
        for (int j = 0; j < MILES_NUM_FEATURES; j++)
            x->feats[r * MILES_NUM_FEATURES + j] = (float)sin(1.0 + r * 7.1 + j * 1.3);
    }
    x->mask[7 * PT + 3] = x->mask[7 * PT + 11] = 0; /* holes */
    x->mask[8 * PT + 0] = 0;                         /* padded first token */
    MilesBatch b = {PB, PT, x->ids, x->tt, x->mask, x->feats, NULL, NULL};
    x->b = b;
}

/* A batch of ~1100 real rows: the fp32 GEMMs' tasks then own whole rows
 * (2+ row blocks per thread), so the residual + LayerNorm runs as the GEMM's
 * row epilogue inside its region (the padded batch above, ~140 rows, takes
 * the column-split path with the epilogue after the region, and one title
 * the few-rows path).  Bits as the reference forward, 1 and 2 threads. */
static void test_large_batch_fp32_bits(void **state) {
    (void)state;
    enum { LB = 40, LT = 32 };
    MilesModel *m = tiny_model("miles", MILES_POOL_POOLER, 5);
    const int V = miles_model_config(m)->vocab_size;
    int32_t *ids = calloc(LB * LT, sizeof(int32_t)), *mask = calloc(LB * LT, sizeof(int32_t));
    float *feats = calloc(LB * MILES_NUM_FEATURES, sizeof(float));
    assert_true(ids && mask && feats);
    int rows = 0;
    for (int r = 0; r < LB; r++) {
        const int len = LT - (r * 5) % 13; /* 20..32 */
        for (int t = 0; t < LT; t++) {
            ids[r * LT + t] = t == 0 ? 2 : 5 + (r * 29 + t * 13) % (V - 5);
            mask[r * LT + t] = t < len;
        }
        rows += len;
        for (int j = 0; j < MILES_NUM_FEATURES; j++) feats[r * MILES_NUM_FEATURES + j] = (float)cos(r * 0.7 + j);
    }
    MilesBatch b = {LB, LT, ids, NULL, mask, feats, NULL, NULL};
    for (int th = 1; th <= 2; th++) {
        set_threads(th);
        int eq = 0;
        double d = compare(m, &b, MILES_PRECISION_FP32, &eq);
        printf("  B=%d T=%d (%d real rows), %d thread(s): max |diff| %.3g, bits %s\n", LB, LT, rows, th, d,
               eq ? "equal" : "DIFFER");
        assert_true(eq);
    }
    set_threads(2);
    free(ids), free(mask), free(feats);
    miles_model_free(m);
}

static void test_padding_fp32_bits(void **state) {
    (void)state;
    const char *presets[] = {"miles", "seed-notebook"};
    const int pools[] = {MILES_POOL_POOLER, MILES_POOL_CLS, MILES_POOL_MEAN};
    for (int p = 0; p < 2; p++)
        for (int q = 0; q < 3; q++) {
            MilesModel *m = tiny_model(presets[p], pools[q], 11 + q);
            PadBatch x;
            pad_batch(&x, miles_model_config(m)->vocab_size);
            for (int th = 1; th <= 2; th++) {
                set_threads(th);
                int eq = 0;
                double d = compare(m, &x.b, MILES_PRECISION_FP32, &eq);
                printf("  %s pooling %d, %d thread(s): max |diff| %.3g, bits %s\n", presets[p], pools[q], th, d,
                       eq ? "equal" : "DIFFER");
                assert_true(eq);
            }
            /* batch of one row and its own length (the serving case) */
            MilesBatch one = x.b;
            one.B = 1;
            one.T = 17;
            one.input_ids = x.ids + 2 * PT;
            one.token_type_ids = x.tt + 2 * PT;
            one.attention_mask = x.mask + 2 * PT;
            one.features = x.feats + 2 * MILES_NUM_FEATURES;
            int eq = 0;
            compare(m, &one, MILES_PRECISION_FP32, &eq);
            assert_true(eq);
            miles_model_free(m);
        }
    set_threads(2);
}

/* miles_model_set_precision routes miles_predict_dataset through the engine
 * and the engine is dropped when the weights change. */
static void test_engine_dropped(void **state) {
    (void)state;
    MilesModel *m = tiny_model("miles", MILES_POOL_MEAN, 5);
    PadBatch x;
    pad_batch(&x, miles_model_config(m)->vocab_size);
    int32_t lens[PB];
    for (int r = 0; r < PB; r++) {
        lens[r] = 0;
        for (int t = 0; t < PT; t++)
            if (x.mask[r * PT + t]) lens[r] = t + 1;
    }
    MilesDataset d;
    memset(&d, 0, sizeof d);
    d.n = PB;
    d.max_len = PT;
    d.input_ids = x.ids;
    d.attention_mask = x.mask;
    d.lengths = lens;
    d.features = x.feats;
    double p_ref[PB], p_eng[PB], v_ref[PB], v_eng[PB];
    OK(miles_predict_dataset(m, &d, 4, 0, p_ref, v_ref));
    OK(miles_model_set_precision(m, MILES_PRECISION_FP32));
    OK(miles_predict_dataset(m, &d, 4, 0, p_eng, v_eng));
    assert_memory_equal(p_ref, p_eng, sizeof p_ref);
    assert_memory_equal(v_ref, v_eng, sizeof v_ref);
    /* new weights: the stale engine must not answer */
    OK(miles_model_init_random(m, 99, 0.05f));
    OK(miles_predict_dataset(m, &d, 4, 0, p_eng, v_eng));
    MilesModel *m2 = tiny_model("miles", MILES_POOL_MEAN, 5);
    OK(miles_model_init_random(m2, 99, 0.05f));
    OK(miles_predict_dataset(m2, &d, 4, 0, p_ref, v_ref));
    assert_memory_equal(p_ref, p_eng, sizeof p_ref);
    miles_model_free(m2);
    miles_model_free(m);
}

/* ------------------------------------------------------------ bf16 / int8 */

static void test_lowp(void **state) {
    (void)state;
    const MilesPrecision precs[2] = {MILES_PRECISION_BF16, MILES_PRECISION_INT8};
    /* logits here are O(1); bf16 rounds every operand to 8 bits of mantissa,
     * int8 to 1/127 of the row range: stated bounds with margin */
    const double tol[2] = {0.01, 0.04};
    for (int k = 0; k < 2; k++) {
        const char *why = NULL;
        int have = miles_gemm_lowp_available(k ? MILES_GEMM_INT8 : MILES_GEMM_BF16, &why);
        MilesModel *m = tiny_model("miles", MILES_POOL_MEAN, 3);
        if (!have) {
            assert_int_equal(miles_model_set_precision(m, precs[k]), MILES_EUNSUPPORTED);
            printf("  %s refused on this CPU: %s\n", miles_precision_name(precs[k]), miles_last_error());
            miles_model_free(m);
            continue;
        }
        PadBatch x;
        pad_batch(&x, miles_model_config(m)->vocab_size);
        double worst = 0.0;
        for (int th = 1; th <= 2; th++) {
            set_threads(th);
            int eq = 0;
            double d = compare(m, &x.b, precs[k], &eq);
            printf("  %s, %d thread(s): max |logit/velocity diff| vs fp32 %.4g (tolerance %.3g)\n",
                   miles_precision_name(precs[k]), th, d, tol[k]);
            assert_true(d <= tol[k]);
            assert_true(d > 0.0); /* it really ran in reduced precision */
            worst = d > worst ? d : worst;
        }
        /* training never takes a reduced precision */
        assert_int_equal(miles_backend_check("cpu", precs[k], 1), MILES_EUNSUPPORTED);
        miles_model_free(m);
    }
    assert_int_equal(miles_model_set_precision(NULL, MILES_PRECISION_FP32), MILES_EINVAL);
    MilesModel *m = tiny_model("miles", MILES_POOL_MEAN, 3);
    assert_int_equal(miles_model_set_precision(m, MILES_PRECISION_FP16), MILES_EUNSUPPORTED);
    printf("  fp16 on the CPU: %s\n", miles_last_error());
    miles_model_free(m);
    set_threads(2);
}


/* Error of got vs the exact value want, in units of the float ulp at want
 * (the spacing of floats in want's binade; 2^-149 in the subnormal range). */
static double ulp_error(float got, double want) {
    if (want == 0.0) return got == 0.0f ? 0.0 : INFINITY;
    int e;
    frexp(want, &e);
    double ulp = ldexp(1.0, (e - 24) < -149 ? -149 : e - 24);
    return fabs((double)got - want) / ulp;
}

/* erf of the GELU pair (miles_erf, run vectorized by the library's
 * erf_forward in this CPU's ISA clone) against double erf over a dense sweep
 * of float bit patterns, both signs: every 263rd over all finite floats
 * (subnormals, tails), every 3rd over [0.5, 4.25) where the error peaks; the
 * special values; and its bits: the same as the scalar inline compiled into
 * this test for the baseline ISA, and for 1 or 2 threads.  In chunks, to keep
 * the memory small. */
static void test_erf_accuracy(void **state) {
    (void)state;
    enum { CH = 1 << 20 };
    float *x = malloc(2 * CH * sizeof(float)), *y = malloc(2 * CH * sizeof(float)),
          *y2 = malloc(2 * CH * sizeof(float));
    assert_true(x && y && y2);
    const uint32_t lo[2] = {0, 0x3F000000u}, hi[2] = {0x7F800000u, 0x40880000u}, step[2] = {263, 3};
    double worst = 0.0, worst_x = 0.0, worst_abs = 0.0;
    size_t mism = 0, total = 0;
    for (int sw = 0; sw < 2; sw++)
        for (uint64_t u0 = lo[sw]; u0 < hi[sw]; u0 += (uint64_t)CH * step[sw]) {
            size_t n = 0;
            for (uint64_t u = u0; u < hi[sw] && n < CH; u += step[sw], n++) {
                uint32_t b = (uint32_t)u;
                memcpy(&x[n], &b, 4);
                x[CH + n] = -x[n];
            }
            memmove(x + n, x + CH, n * sizeof(float)); /* negatives after the positives */
            set_threads(2);
            erf_forward(y, x, 2 * n);
            set_threads(1);
            erf_forward(y2, x, 2 * n);
            set_threads(2);
            assert_memory_equal(y, y2, 2 * n * sizeof(float));
            for (size_t i = 0; i < 2 * n; i++) {
                double want = erf((double)x[i]);
                double u = ulp_error(y[i], want);
                if (!(u <= worst)) worst = u, worst_x = x[i];
                double ad = fabs((double)y[i] - want);
                if (!(ad <= worst_abs)) worst_abs = ad;
                float sc = miles_erf(x[i]); /* this TU's scalar/baseline-ISA build */
                mism += memcmp(&sc, &y[i], 4) != 0;
            }
            total += 2 * n;
        }
    printf("  erf vs double erf, %zu floats: max %.3f ulp at x = %.9g, max |err| %.3g; "
           "bits differing from the baseline-ISA scalar: %zu\n", total, worst, worst_x, worst_abs, mism);
    assert_true(worst <= 1.0);   /* measured 0.90 (every 7th float); glibc erff ~1 ulp */
    assert_true(worst_abs <= 6e-8);
    assert_int_equal(mism, 0);
    /* specials */
    float sp[6] = {NAN, INFINITY, -INFINITY, 0.0f, -0.0f, 1e-45f}, so[6];
    erf_forward(so, sp, 6);
    assert_true(isnan(so[0]));
    assert_true(so[1] == 1.0f && so[2] == -1.0f);
    assert_true(so[3] == 0.0f && !signbit(so[3]) && so[4] == 0.0f && signbit(so[4]));
    assert_true(so[5] == 1e-45f); /* 2^-149 * 1.128 rounds to 2^-149 */
    free(x); free(y); free(y2);
}

/* gelu_backward's definition (ops.c's generic loop), inlined here */
MILES_FMA_CLONES
static void ref_gelu_backward_loop(float *dinp, const float *inp, const float *dout, size_t n) {
    for (size_t i = 0; i < n; i++) {
        float x = inp[i];
        float cdf = 0.5f * (1.0f + miles_erf(x * 0.70710678118654752440f));
        float pdf = 0.39894228040143267794f * softmax_exp(-0.5f * x * x);
        dinp[i] += dout[i] * (cdf + x * pdf);
    }
}

/* The GELU pair (miles_erf, bit for bit its formula, 1 and 2 threads; the
 * backward as its generic loop) and the GEMM epilogues' miles_gelu_range:
 * within float rounding of the exact GELU and its derivative. */
static void test_gelu_exact(void **state) {
    (void)state;
    const size_t n = 400001; /* odd: a vector tail */
    float *x = malloc(n * sizeof(float)), *a = malloc(n * sizeof(float)), *b = malloc(n * sizeof(float));
    float *d = calloc(n, sizeof(float)), *g = malloc(n * sizeof(float));
    assert_true(x && a && b && d && g);
    for (size_t i = 0; i < n; i++) x[i] = -16.0f + 32.0f * (float)i / (float)(n - 1), g[i] = 1.0f;
    set_threads(1);
    gelu_forward(a, x, n);
    set_threads(2);
    gelu_forward(b, x, n);
    assert_memory_equal(a, b, n * sizeof(float));
    float *r = malloc(n * sizeof(float));
    assert_non_null(r);
    miles_gelu_range(r, x, n);
    gelu_backward(d, x, g, n);
    /* gelu_backward (on AVX-512 CPUs the blocked erf) = its definition, bit
     * for bit, accumulating into a nonzero dinp, 1 and 2 threads */
    {
        float *dout = malloc(n * sizeof(float)), *d1 = malloc(n * sizeof(float)), *d3 = malloc(n * sizeof(float));
        assert_true(dout && d1 && d3);
        for (size_t i = 0; i < n; i++) dout[i] = (float)((i * 2654435761u) % 2001) / 1000.0f - 1.0f, d1[i] = 0.25f;
        ref_gelu_backward_loop(d1, x, dout, n);
        for (int th = 1; th <= 2; th++) {
            for (size_t i = 0; i < n; i++) d3[i] = 0.25f;
            set_threads(th);
            gelu_backward(d3, x, dout, n);
            assert_memory_equal(d1, d3, n * sizeof(float));
        }
        /* gelu_backward_set = the definition into zeros (dinp not read:
         * NaN there; and in place, dinp == dout) */
        for (size_t i = 0; i < n; i++) d1[i] = 0.0f;
        ref_gelu_backward_loop(d1, x, dout, n);
        for (int th = 1; th <= 2; th++) {
            for (size_t i = 0; i < n; i++) d3[i] = NAN;
            set_threads(th);
            gelu_backward_set(d3, x, dout, n);
            assert_memory_equal(d1, d3, n * sizeof(float));
            memcpy(d3, dout, n * sizeof(float));
            gelu_backward_set(d3, x, d3, n);
            assert_memory_equal(d1, d3, n * sizeof(float));
        }
        free(dout); free(d1); free(d3);
    }
    double wf = 0.0, wb = 0.0, wr = 0.0;
    for (size_t i = 0; i < n; i++) {
        float want_bits = 0.5f * x[i] * (1.0f + miles_erf(x[i] * 0.70710678118654752440f));
        assert_memory_equal(&want_bits, &a[i], 4);
        double xd = x[i], cdf = 0.5 * (1.0 + erf(xd / sqrt(2.0)));
        double er = fabs(r[i] - xd * cdf) / (1.0 + fabs(xd));
        wr = test_max_err(wr, er);
        double ef = fabs(a[i] - xd * cdf) / (1.0 + fabs(xd));
        double eb = fabs(d[i] - (cdf + xd * exp(-0.5 * xd * xd) / sqrt(2.0 * M_PI)));
        wf = test_max_err(wf, ef);
        wb = test_max_err(wb, eb);
    }
    printf("  GELU on [-16, 16], max |err| / (1 + |x|): gelu_forward %.3g, miles_gelu_range %.3g (bound 1.5e-7); "
           "gelu_backward max |err| = %.3g (bound 3e-7)\n", wf, wr, wb);
    assert_true(wf <= 1.5e-7);
    assert_true(wr <= 1.5e-7);
    assert_true(wb <= 3e-7);
    free(x); free(a); free(b); free(d); free(g); free(r);
}

/* The reference loops of the AVX-512 test: miles_erf / gelu_elem inlined
 * here, in this TU's FMA clones (the library's old erf_chunk/gelu_chunk). */
MILES_FMA_CLONES
static void ref_erf_loop(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = miles_erf(inp[i]);
}

MILES_FMA_CLONES
static void ref_gelu_loop(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = 0.5f * inp[i] * (1.0f + miles_erf(inp[i] * 0.70710678118654752440f));
}

MILES_FMA_CLONES
static void ref_gelu_fast_loop(float *out, const float *inp, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = miles_gelu_fast_elem(inp[i]);
}

/* The GEMM epilogues' block forms, miles_gelu_rows / miles_gelu_fast_rows:
 * in place over rows x cols of a strided block, each row the bits of the
 * row functions, the floats between rows untouched (rows of 37: a partial
 * vector at every row's end). */
static void test_gelu_rows(void **state) {
    (void)state;
    enum { R = 5, NC = 37, RS = 45 };
    float c[R * RS], ref[R * RS];
    for (int fast = 0; fast < 2; fast++) {
        for (int i = 0; i < R * RS; i++) c[i] = ref[i] = (float)((i * 7919) % 2001 - 1000) / 150.0f;
        if (fast) {
            miles_gelu_fast_rows(c, RS, R, NC);
            for (int i = 0; i < R; i++) miles_gelu_fast_range(ref + i * RS, ref + i * RS, NC);
        } else {
            miles_gelu_rows(c, RS, R, NC);
            for (int i = 0; i < R; i++) miles_gelu_range(ref + i * RS, ref + i * RS, NC);
        }
        int differ = 0, changed = 0;
        for (int i = 0; i < R * RS; i++) {
            differ += memcmp(&c[i], &ref[i], sizeof(float)) != 0;
            changed += i % RS < NC && c[i] != (float)((i * 7919) % 2001 - 1000) / 150.0f;
        }
        printf("  miles_gelu%s_rows over %d x %d (stride %d): %d floats differ from the row function's\n",
               fast ? "_fast" : "", R, NC, RS, differ);
        assert_int_equal(differ, 0);
        assert_true(changed > R * NC / 2); /* it did compute: most inputs are not fixed points */
    }
}

/* The bf16/int8 engine's GELU (miles_gelu_fast_elem, its GEMM epilogue's
 * miles_gelu_fast_range) against the exact GELU in double over every 61st
 * float: |err| <= 3e-7 (1 + |x|) (measured 1.8e-7: the rational erf's error
 * near |z| ~ 3.3), exactly -0 or 0 far in the negative tail (the saturation
 * at |z| >= 3.92), x itself far in the positive one; NaN -> NaN, +inf ->
 * +inf, -inf -> NaN (as the exact formula).  miles_gelu_fast_range gives
 * the elementwise function's bits. */
static void test_gelu_fast(void **state) {
    (void)state;
    double worst = 0.0;
    float worst_x = 0.0f;
    size_t bad_bits = 0, bad_tail = 0;
    enum { CH = 4096 };
#pragma omp parallel
    {
        float x[CH], r[CH];
        double w = 0.0;
        float wx = 0.0f;
        size_t bb = 0, bt = 0;
#pragma omp for schedule(dynamic, 64)
        for (uint64_t c = 0; c < (1ull << 32) / 61 / CH + 1; c++) {
            size_t n = 0;
            for (uint64_t k = c * CH * 61; k < (1ull << 32) && n < CH; k += 61, n++) {
                uint32_t b = (uint32_t)k;
                memcpy(&x[n], &b, 4);
            }
            miles_gelu_fast_range(r, x, n);
            for (size_t i = 0; i < n; i++) {
                const float f = miles_gelu_fast_elem(x[i]);
                bb += memcmp(&f, &r[i], 4) != 0;
                if (!isfinite(x[i])) continue;
                const double xd = x[i], g = 0.5 * xd * erfc(-xd / sqrt(2.0));
                const double e = fabs((double)r[i] - g) / (1.0 + fabs(xd));
                if (e > w) w = e, wx = x[i];
                if (xd < -6.0) bt += r[i] != 0.0f; /* the saturated tail: -0 */
                if (xd > 6.0) bt += r[i] != x[i];
            }
        }
#pragma omp critical
        {
            if (w > worst) worst = w, worst_x = wx;
            bad_bits += bb, bad_tail += bt;
        }
    }
    const float sp[4] = {NAN, INFINITY, -INFINITY, -0.0f};
    float so[4];
    miles_gelu_fast_range(so, sp, 4);
    printf("  fast GELU (bf16/int8 engine): max |err| / (1 + |x|) %.3g at x = %g (bound 3e-7); "
           "range vs element bits differ %zu; tails off %zu\n", worst, (double)worst_x, bad_bits, bad_tail);
    assert_true(worst <= 3e-7);
    assert_int_equal(bad_bits, 0);
    assert_int_equal(bad_tail, 0);
    assert_true(isnan(so[0]) && so[1] == INFINITY && isnan(so[2]) && so[3] == 0.0f);
}

/* The AVX-512 and AVX2 GELU and erf (ops_avx512.c, ops_avx2.c: what gelu_forward,
 * miles_gelu_range and erf_forward run on a CPU with AVX-512F) against
 * gelu_elem / miles_erf, and the bf16/int8 engine's fast GELU against
 * miles_gelu_fast_elem, bit for bit: both GELUs over every float (2^32: all NaN
 * payloads, +-inf, +-0, subnormals, the class boundaries of x / sqrt 2 at
 * 0.8, 1.3 and 4), erf over every 5th.  The floats go in a scrambled order
 * (bits = u * an odd constant, a permutation) so each vector mixes the
 * three pieces; each chunk is split at odd offsets (tails shorter than 16,
 * blocks ending mid-vector), every other chunk in place.  ~6 s on 2 cores
 * (every 13th / 29th / 17th float under ASan). */
static void erf_gelu_bits(const char *isa, MilesEltFn fn[3]) {
    MilesEltFn ref[3] = {ref_gelu_loop, ref_erf_loop, ref_gelu_fast_loop};
    enum { CH = 1 << 16 };
#ifdef __SANITIZE_ADDRESS__ /* the ASan/UBSan build (make asan) runs ~10x slower: a stride of odd steps */
    const uint64_t step[3] = {13, 29, 17};
#else
    const uint64_t step[3] = {1, 5, 1};
#endif
    size_t mism[3] = {0, 0, 0}, total[3] = {0, 0, 0};
    for (int op = 0; op < 3; op++) {
        const uint64_t nch = ((1ull << 32) / step[op] + CH - 1) / CH;
        size_t bad = 0, cnt = 0;
#pragma omp parallel reduction(+ : bad, cnt)
        {
            float *x = malloc(CH * sizeof(float)), *want = malloc(CH * sizeof(float)),
                  *got = malloc(CH * sizeof(float));
            if (!x || !want || !got) bad++; /* fails the test below */
#pragma omp for schedule(dynamic, 16)
            for (uint64_t c = 0; c < nch; c++) {
                if (!x || !want || !got) continue;
                size_t n = 0;
                for (uint64_t k = c * CH * step[op]; k < (1ull << 32) && n < CH; k += step[op], n++) {
                    uint32_t b = (uint32_t)k * 0x9E3779B1u;
                    memcpy(&x[n], &b, 4);
                }
                ref[op](want, x, n);
                const size_t a = c % 37 < n ? c % 37 : n, e = n - a < c % 23 ? n - a : c % 23;
                const size_t cut[4] = {0, a, n - e, n};
                if (c & 1) memcpy(got, x, n * sizeof(float));
                for (int p = 0; p < 3; p++)
                    fn[op](got + cut[p], (c & 1 ? got : x) + cut[p], cut[p + 1] - cut[p]);
                if (memcmp(want, got, n * sizeof(float)))
                    for (size_t i = 0; i < n; i++) bad += memcmp(&want[i], &got[i], 4) != 0;
                cnt += n;
            }
            free(x); free(want); free(got);
        }
        mism[op] = bad;
        total[op] = cnt;
    }
    printf("  %s vs scalar bits: GELU %zu floats, %zu differ; erf %zu floats, %zu differ; "
           "fast GELU %zu floats, %zu differ\n", isa, total[0], mism[0], total[1], mism[1], total[2], mism[2]);
    assert_true(total[0] == ((1ull << 32) + step[0] - 1) / step[0]);
    assert_true(total[2] == ((1ull << 32) + step[2] - 1) / step[2]);
    assert_int_equal(mism[0], 0);
    assert_int_equal(mism[1], 0);
    assert_int_equal(mism[2], 0);
}

/* ... for each of the two builds this CPU runs: AVX-512F (ops_avx512.c) and
 * AVX2 + FMA (ops_avx2.c, what a CPU without AVX-512 runs) */
static void test_erf_gelu_every_float(void **state) {
    (void)state;
    MilesEltFn f512[3] = {miles_gelu_avx512(), miles_erf_avx512(), miles_gelu_fast_avx512()};
    MilesEltFn f2[3] = {miles_gelu_avx2(), miles_erf_avx2(), miles_gelu_fast_avx2()};
    int have512 = f512[0] && f512[1] && f512[2], have2 = f2[0] && f2[1] && f2[2];
#if defined(__x86_64__) && defined(__GNUC__)
    have512 = have512 && __builtin_cpu_supports("avx512f");
    have2 = have2 && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    have512 = have2 = 0;
#endif
    if (have512) erf_gelu_bits("AVX-512", f512);
    else printf("  AVX-512 GELU/erf: not built or no AVX-512F on this CPU; comparison skipped\n");
    if (have2) erf_gelu_bits("AVX2", f2);
    else printf("  AVX2 GELU/erf: not built or no AVX2 + FMA on this CPU; comparison skipped\n");
}

/* The attention softmax's exp loop for AVX2 (ops_avx2.c: what both softmax
 * loops run on a CPU without AVX-512) against softmax_exp(x - mx) in C, bit
 * for bit: mx = 0 over every float (x - 0 is x: NaN payloads, +-inf, the
 * clamp at -87 and the subnormal results below it), then mx = 3.5 over
 * every 7th, in the scrambled order of erf_gelu_bits, each chunk cut at odd
 * offsets (rows not a multiple of 8). */
static void test_softmax_exp_every_float(void **state) {
    (void)state;
    const MilesExpShiftFn fn = miles_softmax_exp_avx2();
#if defined(__x86_64__) && defined(__GNUC__)
    const int have = fn && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    const int have = 0;
#endif
    if (!have) {
        printf("  AVX2 softmax exp: not built or no AVX2 + FMA on this CPU; comparison skipped\n");
        return;
    }
    enum { CH = 1 << 16 };
#ifdef __SANITIZE_ADDRESS__
    const uint64_t step[2] = {13, 29};
#else
    const uint64_t step[2] = {1, 7};
#endif
    const float mxs[2] = {0.0f, 3.5f};
    size_t bad = 0, cnt = 0;
    for (int pass = 0; pass < 2; pass++) {
        const uint64_t nch = ((1ull << 32) / step[pass] + CH - 1) / CH;
        const float mx = mxs[pass];
#pragma omp parallel reduction(+ : bad, cnt)
        {
            float *want = malloc(CH * sizeof(float)), *got = malloc(CH * sizeof(float));
            if (!want || !got) bad++;
#pragma omp for schedule(dynamic, 16)
            for (uint64_t c = 0; c < nch; c++) {
                if (!want || !got) continue;
                int n = 0;
                for (uint64_t k = c * CH * step[pass]; k < (1ull << 32) && n < CH; k += step[pass], n++) {
                    uint32_t b = (uint32_t)k * 0x9E3779B1u;
                    memcpy(&got[n], &b, 4);
                    want[n] = softmax_exp(got[n] - mx);
                }
                const int a = (int)(c % 37) < n ? (int)(c % 37) : n, e = n - a < (int)(c % 23) ? n - a : (int)(c % 23);
                const int cut[4] = {0, a, n - e, n};
                for (int p = 0; p < 3; p++) fn(got + cut[p], cut[p + 1] - cut[p], mx);
                if (memcmp(want, got, (size_t)n * sizeof(float)))
                    for (int i = 0; i < n; i++) bad += memcmp(&want[i], &got[i], 4) != 0;
                cnt += (size_t)n;
            }
            free(want); free(got);
        }
    }
    printf("  AVX2 softmax exp vs scalar bits: %zu floats, %zu differ\n", cnt, bad);
    assert_true(cnt == ((1ull << 32) + step[0] - 1) / step[0] + ((1ull << 32) + step[1] - 1) / step[1]);
    assert_int_equal(bad, 0);
}

/* ------------------------------------------------------------ accuracy of a trained model */

/* A tiny model trained on the synthetic set (where the titles carry signal):
 * AUROC and velocity R^2 on the test split in bf16 / int8 against fp32,
 * within the bounds (0.002 / 0.005). */
static void test_trained_accuracy(void **state) {
    (void)state;
    set_threads(2);
    char dir[256], csv[300], dat[300], run[300];
    assert_int_equal(test_mkdtemp(dir, sizeof dir, "infer"), 0);
    snprintf(csv, sizeof csv, "%s/synth.csv", dir);
    snprintf(dat, sizeof dat, "%s/data.milesdat", dir);
    snprintf(run, sizeof run, "%s/run", dir);
    OK(miles_synth_write_csv(csv, 4000, 3));
    MilesPrepareOptions po;
    miles_prepare_options_default(&po);
    po.vocab_dir = "tests/fixtures/tokenizer_vocab.txt";
    po.max_len = 32;
    po.language = "any";
    MilesPrepareReport rep;
    OK(miles_data_prepare(csv, dat, &po, &rep));
    MilesPrepared *prep = NULL;
    OK(miles_prepared_open(&prep, dat));
    MilesTokenizer *tok = NULL;
    OK(miles_tokenizer_load(&tok, po.vocab_dir));
    MilesConfig cfg;
    OK(miles_config_preset(&cfg, "miles", "tiny"));
    cfg.vocab_size = miles_tokenizer_vocab_size(tok);
    miles_tokenizer_free(tok);
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &cfg));
    OK(miles_model_init_random(m, 1, 0.02f));
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    tc.batch_size = 32;
    tc.max_len = 32;
    tc.lr = 2e-3f;
    tc.warmup_steps = 10;
    tc.max_steps = 200;
    tc.eval_every = 1000;
    tc.patience = 100;
    tc.out_dir = run;
    tc.loss.w_cls = 0.5f; /* the default 0.05 leaves the velocity head unlearned in 200 steps */
    tc.loss.w_reg = 0.5f;
    MilesTrainResult res;
    OK(miles_train_run(m, prep, &tc, &res));
    MilesDataset d;
    OK(miles_prepared_split(prep, MILES_SPLIT_TEST, &d));
    assert_true(d.n > 100);
    double *p = malloc(sizeof(double) * d.n), *v = malloc(sizeof(double) * d.n), *vt = malloc(sizeof(double) * d.n);
    double *p32 = malloc(sizeof(double) * d.n);
    assert_true(p && v && vt && p32);
    for (int64_t i = 0; i < d.n; i++) vt[i] = d.velocity[i];
    const MilesPrecision precs[3] = {MILES_PRECISION_FP32, MILES_PRECISION_BF16, MILES_PRECISION_INT8};
    const double bound[3] = {0.0, 0.002, 0.005};
    double auc[3], r2[3];
    for (int k = 0; k < 3; k++) {
        /* the scoring path miles-eval uses (the CPU backend builds the engine) */
        int s = miles_predict_dataset_on(m, NULL, precs[k], &d, 64, 32, p, v);
        if (s == MILES_EUNSUPPORTED) {
            printf("  %s refused on this CPU: %s\n", miles_precision_name(precs[k]), miles_last_error());
            continue;
        }
        OK(s);
        if (k == 0) memcpy(p32, p, sizeof(double) * d.n);
        else { /* it really ran in reduced precision */
            int differ = 0;
            for (int64_t i = 0; i < d.n; i++) differ |= p[i] != p32[i];
            assert_true(differ);
        }
        MilesMetrics mm;
        MilesMetricsOptions mo;
        miles_metrics_options_default(&mo);
        mo.n_bootstrap = 0;
        OK(miles_metrics_compute(&mm, p, d.labels, (int)d.n, v, vt, &mo));
        auc[k] = mm.auroc;
        r2[k] = mm.velocity.r2;
        printf("  %s: test n=%lld AUROC %.5f (diff %+.5f), velocity R^2 %.5f (diff %+.5f), bound %.3f\n",
               miles_precision_name(precs[k]), (long long)d.n, auc[k], auc[k] - auc[0], r2[k], r2[k] - r2[0],
               bound[k]);
        if (k == 0) {
            /* the model learned something: the comparison means something */
            assert_true(auc[0] > 0.6);
            assert_true(r2[0] > 0.03);
        } else {
            assert_true(fabs(auc[k] - auc[0]) <= bound[k]);
            assert_true(fabs(r2[k] - r2[0]) <= bound[k]);
        }
    }
    free(p); free(v); free(vt); free(p32);
    miles_model_free(m);
    miles_prepared_free(prep);
    test_rm_rf(dir);
}

/* ------------------------------------------------------- pinned scores */

/* The engine's logits and velocities at fp32, bf16 and int8 for fixed
 * weights and a fixed batch (made without libm: tests/helpers.c), hashed and
 * compared with the constants here, with 1 and 2 threads: a score is the same
 * to the bit on every machine that runs the precision (the int8 kernels sum
 * exactly: AVX-512 VNNI, AVX-VNNI and AVX2's vpmaddwd give one result; bf16
 * runs where avx512_bf16 is), in every cell of `make determinism` and, for the
 * tiny model, under qemu as Haswell and Nehalem (`make portability-check`).
 * A deliberate change of the engine's arithmetic updates the constant. */
static const struct {
    const char *what;
    uint64_t pin[3]; /* fp32, bf16, int8 */
} INFER_PINS[2] = {
    {"miles, MiniLM-L6 layers, mean, B8 T32", {0x06de141315a7ce30ULL, 0x9f9d3f81054a5e07ULL, 0x7f63a7e9161a80d0ULL}},
    {"seed-notebook, tiny H40 I104, pooler, B12 T20", {0xe393aa27ce86d121ULL, 0x29a3e1d2c5cb3541ULL, 0x8e43ef64af768be4ULL}},
};

static void test_inference_pin(void **state) {
    (void)state;
    MilesConfig cfg[2];
    OK(miles_config_preset(&cfg[0], "miles", "minilm-l6"));
    cfg[0].vocab_size = 1000;
    cfg[0].pooling = MILES_POOL_MEAN;
    OK(miles_config_preset(&cfg[1], "seed-notebook", "tiny"));
    cfg[1].pooling = MILES_POOL_POOLER;
    cfg[1].hidden_size = 40; /* as test_model.c's pin: not a power of two, vector tails */
    cfg[1].intermediate_size = 104;
    const int Bs[2] = {8, 12}, Ts[2] = {32, 20};
    const MilesPrecision precs[3] = {MILES_PRECISION_FP32, MILES_PRECISION_BF16, MILES_PRECISION_INT8};
    const int tiny_only = getenv("MILES_PIN_TINY_ONLY") != NULL; /* under qemu: see test_model.c */
    TestPinBatch *x = malloc(sizeof *x);
    assert_non_null(x);
    float logits[16 * 2], vel[16];
    int failed = 0;
    for (int k = tiny_only ? 1 : 0; k < 2; k++) {
        MilesModel *m = NULL;
        OK(miles_model_build(&m, &cfg[k]));
        test_pin_weights(m, 1207 + (uint64_t)k);
        test_pin_batch(x, Bs[k], Ts[k], cfg[k].vocab_size, 5 + (uint64_t)k);
        x->b.labels = NULL;
        x->b.velocity = NULL;
        for (int q = 0; q < 3; q++) {
            const char *why = NULL;
            if (q && !miles_gemm_lowp_available(q == 1 ? MILES_GEMM_BF16 : MILES_GEMM_INT8, &why)) {
                printf("  pin %-46s %-4s not on this CPU\n", INFER_PINS[k].what, miles_precision_name(precs[q]));
                continue;
            }
            for (int th = 1; th <= 2; th++) {
                set_threads(th);
                MilesInfer *e = NULL;
                OK(miles_infer_build(&e, m, precs[q]));
                OK(miles_infer_forward(e, &x->b, logits, vel));
                miles_infer_free(e);
                uint64_t h = test_fnv1a(TEST_FNV_BASIS, logits, (size_t)Bs[k] * 2 * sizeof(float));
                h = test_fnv1a(h, vel, (size_t)Bs[k] * sizeof(float));
                const uint64_t want = INFER_PINS[k].pin[q];
                printf("  pin %-46s %-4s %d thread(s): 0x%016llx (pinned 0x%016llx) logit[0] %.9g\n",
                       INFER_PINS[k].what, miles_precision_name(precs[q]), th, (unsigned long long)h,
                       (unsigned long long)want, logits[0]);
                if (!isfinite(logits[0]) || h != want) failed++;
            }
        }
        miles_model_free(m);
    }
    free(x);
    set_threads(2);
    if (failed) fail_msg("%d pinned score hash(es) differ (printed above)", failed);
}

int main(void) {
    /* bit identity is the own GEMM's contract (MILES_GEMM=blas gives shape-dependent bits) */
    miles_gemm_use_blas(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_fp32_bits),
        cmocka_unit_test(test_padding_fp32_bits),
        cmocka_unit_test(test_engine_dropped),
        cmocka_unit_test(test_lowp),
        cmocka_unit_test(test_large_batch_fp32_bits),
        cmocka_unit_test(test_erf_accuracy),
        cmocka_unit_test(test_gelu_exact),
        cmocka_unit_test(test_erf_gelu_every_float),
        cmocka_unit_test(test_softmax_exp_every_float),
        cmocka_unit_test(test_gelu_fast),
        cmocka_unit_test(test_gelu_rows),
        cmocka_unit_test(test_trained_accuracy),
        cmocka_unit_test(test_inference_pin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
