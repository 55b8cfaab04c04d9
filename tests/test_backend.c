/*
 * test_backend.c — device and precision names (miles.h "devices and
 * precisions"), the refusal of combinations this build cannot run (one
 * line naming why), and checkpoints through the backend interface
 * (backend_internal.h) bit for bit.  Under `make backend-sim-test`
 * MILES_CUDA_BACKEND names the CUDA backend built on the SIMT emulator, and
 * the round trip also goes through it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <stdlib.h>
#include <unistd.h>

#include "internal.h"
#include "gemm_lowp.h"
#include "train_internal.h"
#include "helpers.h"

static void test_precision_names(void **state) {
    (void)state;
    const char *names[] = {"fp32", "tf32", "fp16", "bf16", "int8"};
    for (int i = 0; i < 5; i++) {
        MilesPrecision p = (MilesPrecision)-1;
        OK(miles_precision_parse(names[i], &p));
        assert_int_equal(p, i);
        assert_string_equal(miles_precision_name(p), names[i]);
    }
    MilesPrecision p = MILES_PRECISION_BF16;
    assert_int_equal(miles_precision_parse("FP32", &p), MILES_EINVAL);
    assert_int_equal(miles_precision_parse("", &p), MILES_EINVAL);
    assert_int_equal(miles_precision_parse(NULL, &p), MILES_EINVAL);
    assert_int_equal(p, MILES_PRECISION_BF16); /* untouched on error */
    assert_string_equal(miles_precision_name((MilesPrecision)7), "?");
}

static void test_device_names(void **state) {
    (void)state;
    int cuda = -1, idx = -1;
    OK(miles_device_parse(NULL, &cuda, &idx));
    assert_true(cuda == 0 && idx == 0);
    OK(miles_device_parse("cpu", &cuda, &idx));
    assert_true(cuda == 0);
    OK(miles_device_parse("cuda", &cuda, &idx));
    assert_true(cuda == 1 && idx == 0);
    OK(miles_device_parse("cuda:3", &cuda, &idx));
    assert_true(cuda == 1 && idx == 3);
    const char *bad[] = {"gpu", "cuda:", "cuda:x", "cuda:1x", "cuda:-1", "cuda:99999", "CPU", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(miles_device_parse(bad[i], &cuda, &idx), MILES_EINVAL);
        printf("  rejected '%s': %s\n", bad[i], miles_last_error());
    }
}

/* What the CPU accepts: fp32 everywhere; bf16/int8 for inference only, where
 * the CPU has the instructions (model_infer.c, gemm_lowp.h).  The predictor
 * refuses before it reads the checkpoint. */
static void test_refusals(void **state) {
    (void)state;
    OK(miles_backend_check(NULL, MILES_PRECISION_FP32, 1));
    OK(miles_backend_check("cpu", MILES_PRECISION_FP32, 0));
    assert_int_equal(miles_backend_check("cpu", MILES_PRECISION_FP16, 1), MILES_EUNSUPPORTED);
    assert_int_equal(miles_backend_check("cpu", MILES_PRECISION_FP16, 0), MILES_EUNSUPPORTED);
    assert_int_equal(miles_backend_check("cpu", MILES_PRECISION_BF16, 1), MILES_EUNSUPPORTED);
    assert_int_equal(miles_backend_check("cpu", MILES_PRECISION_INT8, 1), MILES_EUNSUPPORTED);
    const MilesPrecision lowp[2] = {MILES_PRECISION_BF16, MILES_PRECISION_INT8};
    for (int k = 0; k < 2; k++) {
        int have = miles_gemm_lowp_available(k ? MILES_GEMM_INT8 : MILES_GEMM_BF16, NULL);
        int s = miles_backend_check("cpu", lowp[k], 0);
        printf("  %s inference on this CPU: %s\n", miles_precision_name(lowp[k]), s ? miles_last_error() : "accepted");
        assert_int_equal(s, have ? MILES_OK : MILES_EUNSUPPORTED);
    }
    assert_int_equal(miles_backend_check("cpu", (MilesPrecision)9, 0), MILES_EINVAL);
    MilesPredictorOptions o;
    miles_predictor_options_default(&o);
    assert_null(o.device);
    assert_int_equal(o.precision, MILES_PRECISION_FP32);
    o.device = "cuda:1";
    MilesPredictor *p = (MilesPredictor *)1;
    assert_int_equal(miles_predictor_open(&p, "/nonexistent/best.safetensors", &o), MILES_EUNSUPPORTED);
    assert_null(p);
    printf("  cuda: %s\n", miles_last_error());
    assert_non_null(strstr(miles_last_error(), "cuda:1"));
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    assert_null(tc.device);
    assert_int_equal(tc.precision, MILES_PRECISION_FP32);
}

/* A refusal is exactly one line that names `want`. */
static void assert_one_line(int s, const char *want) {
    const char *e = miles_last_error();
    printf("  -> %s\n", e);
    assert_int_equal(s, MILES_EUNSUPPORTED);
    assert_non_null(strstr(e, want));
    assert_null(strchr(e, '\n'));
}

/* "library not found" / "not a backend" from the loader, whatever the
 * machine; with the emulated backend (MILES_CUDA_BACKEND set by
 * backend-sim-test): "no CUDA device N" and "no CUDA device" (SIMT_DEVICES=0
 * is the shell test's business). */
static void test_cuda_refusal_lines(void **state) {
    (void)state;
    const char *orig = getenv("MILES_CUDA_BACKEND");
    char keep[4096] = "";
    if (orig) snprintf(keep, sizeof keep, "%s", orig);
    setenv("MILES_CUDA_BACKEND", "/nonexistent/libmiles_cuda.so", 1);
    assert_one_line(miles_device_check("cuda", MILES_PRECISION_FP32, 1), "library not found");
    MilesPredictorOptions o;
    miles_predictor_options_default(&o);
    o.device = "cuda";
    MilesPredictor *p = NULL;
    assert_one_line(miles_predictor_open(&p, "/nonexistent/best.safetensors", &o), "library not found");
    /* a shared object that is not a backend: the C library */
    setenv("MILES_CUDA_BACKEND", "libc.so.6", 1);
    assert_one_line(miles_device_check("cuda:0", MILES_PRECISION_FP16, 0), "not a Miles CUDA backend");
    if (keep[0]) {
        setenv("MILES_CUDA_BACKEND", keep, 1);
        int s = miles_device_check("cuda", MILES_PRECISION_FP32, 1);
        printf("  emulated backend %s: %s\n", keep, s == MILES_OK ? "usable" : miles_last_error());
        if (s == MILES_OK) {
            assert_one_line(miles_device_check("cuda:7", MILES_PRECISION_FP32, 1), "no CUDA device 7");
            assert_one_line(miles_device_check("cuda", MILES_PRECISION_INT8, 0), "CPU inference precision");
        }
    } else unsetenv("MILES_CUDA_BACKEND");
}

static int file_equal(const char *a, const char *b) {
    char *da = NULL, *db = NULL;
    size_t na = 0, nb = 0;
    OK(miles_read_file(a, &da, &na));
    OK(miles_read_file(b, &db, &nb));
    int eq = na == nb && memcmp(da, db, na) == 0;
    free(da);
    free(db);
    return eq;
}

/* A checkpoint (parameters, AdamW moments, state) loaded into a backend and
 * read back into a fresh host model writes the same bytes: on the CPU, and on
 * the CUDA backend when one is usable here. */
static void test_checkpoint_roundtrip(void **state) {
    (void)state;
    char dir[512], a[600], b[600];
    assert_int_equal(test_mkdtemp(dir, sizeof dir, "backend"), 0);
    snprintf(a, sizeof a, "%s/a.safetensors", dir);
    MilesConfig cfg;
    OK(miles_config_preset(&cfg, "miles", "tiny"));
    MilesModel *m = NULL;
    OK(miles_model_build(&m, &cfg));
    OK(miles_model_init_random(m, 7, 0.02f));
    MilesAdamWConfig oc = {1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0};
    MilesAdamW *opt = NULL;
    OK(miles_adamw_build(&opt, m, &oc));
    size_t n = miles_model_num_params(m);
    uint64_t x = 99;
    for (size_t i = 0; i < n; i++) { /* moments nobody would get by accident */
        x = x * 6364136223846793005ull + 1442695040888963407ull;
        miles_adamw_m(opt)[i] = (float)((int64_t)(x >> 11) % 100000) * 1e-9f;
        miles_adamw_v(opt)[i] = (float)((x >> 40) % 100000) * 1e-12f;
    }
    miles_adamw_set_steps(opt, 17);
    MilesTrainConfig tc;
    miles_train_config_default(&tc);
    MilesTrainState st = {0};
    st.step = 17;
    st.threshold = 0.375;
    OK(miles_ckpt_save(a, m, opt, &st, &tc, NULL, NULL));
    const char *devices[2] = {"cpu", getenv("MILES_CUDA_BACKEND") ? "cuda" : NULL};
    for (int d = 0; d < 2 && devices[d]; d++) {
        if (miles_device_check(devices[d], MILES_PRECISION_FP32, 1) != MILES_OK) {
            printf("  %s: %s (round trip not run)\n", devices[d], miles_last_error());
            fail(); /* MILES_CUDA_BACKEND was set to a backend that should work */
        }
        MilesModel *m2 = NULL, *m3 = NULL;
        MilesAdamW *o2 = NULL, *o3 = NULL;
        OK(miles_model_build(&m2, &cfg));
        OK(miles_model_build(&m3, &cfg));
        OK(miles_adamw_build(&o2, m2, &oc));
        OK(miles_adamw_build(&o3, m3, &oc));
        MilesTrainState st2 = {0};
        OK(miles_ckpt_load_state(a, m2, o2, &st2));
        MilesBackend be;
        OK(miles_backend_open(&be, devices[d], MILES_PRECISION_FP32, m2, &oc));
        OK(be.ops->write_params(be.state, m2));
        OK(be.ops->write_optim(be.state, miles_adamw_m(o2), miles_adamw_v(o2), miles_adamw_steps(o2)));
        int64_t t = 0;
        OK(be.ops->read_params(be.state, m3));
        OK(be.ops->read_optim(be.state, miles_adamw_m(o3), miles_adamw_v(o3), &t));
        miles_adamw_set_steps(o3, t);
        miles_backend_close(&be);
        snprintf(b, sizeof b, "%s/b_%s.safetensors", dir, devices[d]);
        OK(miles_ckpt_save(b, m3, o3, &st2, &tc, NULL, NULL));
        int eq = file_equal(a, b);
        printf("  %s: checkpoint through the backend %s (%zu parameters, step %lld)\n", devices[d],
               eq ? "bit-identical" : "DIFFERS", n, (long long)t);
        assert_true(eq);
        assert_int_equal(t, 17);
        miles_adamw_free(o2);
        miles_adamw_free(o3);
        miles_model_free(m2);
        miles_model_free(m3);
    }
    miles_adamw_free(opt);
    miles_model_free(m);
    test_rm_rf(dir);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precision_names),
        cmocka_unit_test(test_device_names),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_cuda_refusal_lines),
        cmocka_unit_test(test_checkpoint_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
