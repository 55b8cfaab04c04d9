/*
 * fuzz_json.c — libFuzzer target for the scaler JSON reader (what a
 * checkpoint or a server loads): parse, and when accepted, serialize, re-parse
 * and check the round trip transforms identically.
 *
 *   make fuzz-run FUZZ_ONLY=json FUZZ_TIME=300   (Makefile: build, seeds, dictionary)
 */
#include "miles.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    MilesScaler *s = NULL;
    if (miles_scaler_from_json(&s, text) == MILES_OK) {
        char *json = NULL;
        if (miles_scaler_to_json(s, &json) != MILES_OK) abort();
        MilesScaler *t = NULL;
        if (miles_scaler_from_json(&t, json) != MILES_OK) abort(); /* our own output must load */
        double raw[MILES_NUM_FEATURES];
        for (int k = 0; k < MILES_NUM_FEATURES; k++) raw[k] = (double)(k * 1000 + 7) / 3.0;
        float a[MILES_NUM_FEATURES], b[MILES_NUM_FEATURES];
        miles_scaler_transform(s, raw, (1u << MILES_NUM_FEATURES) - 1, a);
        miles_scaler_transform(t, raw, (1u << MILES_NUM_FEATURES) - 1, b);
        if (memcmp(a, b, sizeof a)) abort(); /* exact round trip */
        if (miles_scaler_creator_avg(s) != miles_scaler_creator_avg(t)) abort();   /* the feature's rule too */
        (void)miles_scaler_velocity_unscale(s, 0.5);
        miles_scaler_free(t);
        free(json);
        miles_scaler_free(s);
    }
    free(text);
    return 0;
}
