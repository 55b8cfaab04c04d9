/*
 * fuzz_csv.c — libFuzzer target for the CSV reader and the per-record feature
 * computation (number, date, day-name and UTF-8 title handling).
 *
 *   make fuzz-run FUZZ_ONLY=csv FUZZ_TIME=300   (Makefile: build, seeds, dictionary)
 */
#include "miles.h"
#include "csv_internal.h"
#include "data_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    MilesCsv *r;
    if (miles_csv_open_mem(&r, "fuzz.csv", (const char *)data, size) != MILES_OK) return 0;
    int nf, st;
    const char *const *f;
    char **header = NULL;
    int nh = 0;
    while ((st = miles_csv_next(r, &nf, &f)) == 1) {
        /* every field is valid NUL-terminated UTF-8 */
        for (int i = 0; i < nf; i++)
            if (miles_utf8_length(f[i]) < 0) abort();
        if (!header) {
            header = calloc((size_t)nf + 1, sizeof *header);
            if (!header) break;
            for (int i = 0; i < nf; i++) header[i] = strdup(f[i]);
            nh = nf;
            continue;
        }
        if (nf != nh) abort(); /* the reader must reject ragged records */
        double raw[MILES_NUM_FEATURES];
        uint32_t avail = 0;
        if (miles_features_compute(&(MilesRecord){nf, (const char *const *)header, f, NULL}, raw, &avail) == MILES_OK) {
            for (int k = 0; k < MILES_NUM_FEATURES; k++) {
                int have = (avail >> k) & 1u;
                if (have && !isfinite(raw[k])) abort();  /* available features are finite */
                if (!have && !isnan(raw[k])) abort();    /* missing ones are NaN, never 0 */
            }
        }
        for (int i = 0; i < nf; i++) {
            char *c = NULL;
            if (miles_text_clean(f[i], strlen(f[i]), MILES_TEXT_CLEAN_SEED, &c, NULL) == MILES_OK && miles_utf8_length(c) < 0) abort();
            free(c);
            (void)miles_has_emoji(f[i], strlen(f[i]));
        }
    }
    for (int i = 0; i < nh; i++) free(header[i]);
    free(header);
    miles_csv_free(r);
    return 0;
}
