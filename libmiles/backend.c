/*
 * backend.c — which device/precision combinations this libmiles can run
 * (miles.h, "devices and precisions").
 *
 * The CPU trains in fp32 (the reference); CPU inference (model_infer.c)
 * also runs bf16 and int8 where the CPU has the instructions (gemm_lowp.h);
 * the CUDA backend (kernels/, issue 14) plugs in here.  Until then every other
 * combination is refused up front, with the reason, instead of failing
 * somewhere inside a run.
 */
#include "internal.h"
#include "gemm_lowp.h"

int miles_backend_check(const char *device, MilesPrecision precision, int training) {
    int is_cuda = 0, index = 0;
    MILES_TRY(miles_device_parse(device, &is_cuda, &index));
    if ((int)precision < MILES_PRECISION_FP32 || (int)precision > MILES_PRECISION_INT8)
        return miles_error(MILES_EINVAL, "precision %d is not a MilesPrecision", (int)precision);
    if (is_cuda)
        return miles_error(MILES_EUNSUPPORTED,
                           "device '%s': this libmiles has no CUDA backend (built without it)", device);
    if (precision == MILES_PRECISION_FP32) return MILES_OK;
    if (training)
        return miles_error(MILES_EUNSUPPORTED, "precision %s on the CPU: the CPU trains in fp32 only",
                           miles_precision_name(precision));
    /* CPU inference: bf16 and int8 through gemm_lowp (model_infer.c) where
     * the CPU has the instructions */
    if (precision == MILES_PRECISION_BF16 || precision == MILES_PRECISION_INT8) {
        const char *why = NULL;
        MilesGemmPrecision gp = precision == MILES_PRECISION_BF16 ? MILES_GEMM_BF16 : MILES_GEMM_INT8;
        if (!miles_gemm_lowp_available(gp, &why))
            return miles_error(MILES_EUNSUPPORTED, "precision %s on the CPU: %s", miles_precision_name(precision),
                               why ? why : "this CPU lacks the instructions");
        return MILES_OK;
    }
    return miles_error(MILES_EUNSUPPORTED, "precision %s on the CPU: CPU inference runs fp32, bf16 or int8 only",
                       miles_precision_name(precision));
}
