/*
 * backend.c — which device/precision combinations this libmiles can run
 * (miles.h, "devices and precisions").
 *
 * Today only the CPU fp32 reference is wired to the trainer and the
 * predictor; the CUDA backend (kernels/, issue 14) and the CPU bf16/int8
 * inference paths (issue 16) plug in here.  Until then every other
 * combination is refused up front, with the reason, instead of failing
 * somewhere inside a run.
 */
#include "internal.h"

int miles_backend_check(const char *device, MilesPrecision precision, int training) {
    int is_cuda = 0, index = 0;
    MILES_TRY(miles_device_parse(device, &is_cuda, &index));
    if ((int)precision < MILES_PRECISION_FP32 || (int)precision > MILES_PRECISION_INT8)
        return miles_error(MILES_EINVAL, "precision %d is not a MilesPrecision", (int)precision);
    if (is_cuda)
        return miles_error(MILES_EUNSUPPORTED,
                           "device '%s': this libmiles has no CUDA backend (built without it)", device);
    if (precision != MILES_PRECISION_FP32)
        return miles_error(MILES_EUNSUPPORTED, "precision %s on the CPU: %s", miles_precision_name(precision),
                           training ? "the CPU trains in fp32 only"
                                    : "not available in this build (CPU inference runs fp32)");
    return MILES_OK;
}
