/*
 * test_backend.c — device and precision names (miles.h "devices and
 * precisions") and the refusal of combinations this build cannot run.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "gemm_lowp.h"
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precision_names),
        cmocka_unit_test(test_device_names),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
