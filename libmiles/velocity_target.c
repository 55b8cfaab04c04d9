/*
 * velocity_target.c — what the velocity head is trained to predict, and back.
 *
 * Engagement velocity (views per day) is heavy-tailed: min-max scaling puts
 * almost every example near 0 and a sigmoid head then learns a constant.  The
 * default recipe therefore predicts z = (log1p(v) - mean) / std with mean/std
 * of log1p(v) on the training split, through a linear head; predictions come
 * back in views/day as expm1(z * std + mean).  MILES_VTARGET_MINMAX is the
 * seed's (v - min) / (max - min) with the scaler's train min/max.  Checkpoints
 * carry the choice under MILES_META_VELOCITY_TARGET (+ mean, std); a
 * checkpoint without the key is a min-max one (everything written before it).
 */
#include "train_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *miles_velocity_target_name(int kind) {
    return kind == MILES_VTARGET_LOG1P_Z ? "log1p_z" : kind == MILES_VTARGET_MINMAX ? "minmax" : "unknown";
}

int miles_velocity_target_parse(const char *name, int *kind) {
    if (name && !strcmp(name, "log1p_z")) *kind = MILES_VTARGET_LOG1P_Z;
    else if (name && !strcmp(name, "minmax")) *kind = MILES_VTARGET_MINMAX;
    else return miles_error(MILES_EINVAL, "velocity target \"%s\" is not log1p_z or minmax", name ? name : "(null)");
    return MILES_OK;
}

/* log1p of a velocity; velocities are non-negative rates, so a negative one
 * (a data error upstream) counts as 0 rather than leaving log1p's domain. */
static double lp(double v) { return log1p(v > 0.0 ? v : 0.0); }

int miles_velocity_target_fit(MilesVelocityTarget *t, int kind, const double *velocity, int64_t n) {
    if (!t) return miles_error(MILES_EINVAL, "miles_velocity_target_fit: NULL target");
    memset(t, 0, sizeof *t);
    t->kind = kind;
    t->std = 1.0;
    if (kind == MILES_VTARGET_MINMAX) return MILES_OK;
    if (kind != MILES_VTARGET_LOG1P_Z) return miles_error(MILES_EINVAL, "velocity target kind %d is unknown", kind);
    if (!velocity || n < 1) return miles_error(MILES_EINVAL, "velocity target: no training velocities to fit on");
    /* two passes in double: mean, then the population variance (ddof 0, as
     * sklearn's StandardScaler); a constant target keeps std 1 (no division by 0) */
    double s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        if (!isfinite(velocity[i]))
            return miles_error(MILES_EINVAL, "velocity target: training velocity %lld is %g", (long long)i,
                               velocity[i]);
        s += lp(velocity[i]);
    }
    const double mean = s / (double)n;
    double ss = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = lp(velocity[i]) - mean;
        ss += d * d;
    }
    const double sd = sqrt(ss / (double)n);
    t->mean = mean;
    t->std = sd > 0.0 ? sd : 1.0;
    return MILES_OK;
}

double miles_velocity_target_transform(const MilesVelocityTarget *t, const MilesScaler *s, double v) {
    if (t && t->kind == MILES_VTARGET_LOG1P_Z) return (lp(v) - t->mean) / t->std;
    return s ? miles_scaler_velocity_scale(s, v) : NAN;
}

double miles_velocity_target_inverse(const MilesVelocityTarget *t, const MilesScaler *s, double y) {
    if (t && t->kind == MILES_VTARGET_LOG1P_Z) {
        double v = expm1(y * t->std + t->mean);
        return v > 0.0 ? v : 0.0; /* views per day are not negative */
    }
    return s ? miles_scaler_velocity_unscale(s, y) : NAN;
}

int miles_velocity_target_to_meta(const MilesVelocityTarget *t, char mean[32], char std[32]) {
    snprintf(mean, 32, "%.17g", t->mean);
    snprintf(std, 32, "%.17g", t->std);
    return MILES_OK;
}

int miles_velocity_target_from_meta(MilesVelocityTarget *t, const char *kind, const char *mean, const char *std) {
    memset(t, 0, sizeof *t);
    t->kind = MILES_VTARGET_MINMAX;
    t->std = 1.0;
    if (!kind) return MILES_OK; /* older checkpoints: min-max */
    MILES_TRY(miles_velocity_target_parse(kind, &t->kind));
    if (t->kind == MILES_VTARGET_MINMAX) return MILES_OK;
    char *e1 = NULL, *e2 = NULL;
    t->mean = mean ? strtod(mean, &e1) : NAN;
    t->std = std ? strtod(std, &e2) : NAN;
    if (!mean || !std || *e1 || *e2 || !isfinite(t->mean) || !(t->std > 0.0) || !isfinite(t->std))
        return miles_error(MILES_EFORMAT, "checkpoint metadata: velocity target %s needs a finite %s and a positive "
                           "%s (got %s, %s)", kind, MILES_META_VELOCITY_MEAN, MILES_META_VELOCITY_STD,
                           mean ? mean : "none", std ? std : "none");
    return MILES_OK;
}

int miles_checkpoint_velocity_target(const MilesCheckpoint *c, MilesVelocityTarget *out) {
    if (!c || !out) return miles_error(MILES_EINVAL, "miles_checkpoint_velocity_target: NULL argument");
    return miles_velocity_target_from_meta(out, miles_checkpoint_meta(c, MILES_META_VELOCITY_TARGET),
                                           miles_checkpoint_meta(c, MILES_META_VELOCITY_MEAN),
                                           miles_checkpoint_meta(c, MILES_META_VELOCITY_STD));
}
