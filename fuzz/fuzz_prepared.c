/*
 * fuzz_prepared.c — libFuzzer target for the prepared-data reader
 * (libmiles/data_prepared.c: header, split record, section layout, value
 * checks), the file a user may be handed by someone else.
 *
 * Build and run:
 *   make fuzz-run FUZZ_ONLY=prepared FUZZ_TIME=300   (seeds: fuzz/seeds/prepared/)
 *
 * The reader takes a path, so each input goes through a file (in $TMPDIR).
 * Random bytes would almost never get past its three CRC-32s, so the target
 * writes them right first (the payload's at 120, the split record's at 188
 * when the record is flagged, the header's at 124): the fuzzer then explores
 * the layout and value checks behind them.  The CRC checks themselves are the
 * unit tests' (test_data: test_prepared_corrupt).
 *
 * Invariant checked: open either fails with a refusal code and a message, or
 * succeeds, and then every split, title, row id, label, length and the split
 * record are consistent and readable, and the scaler JSON either parses or is
 * refused with a message.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miles.h"

uint32_t miles_crc32(uint32_t crc, const void *buf, size_t n); /* libmiles/data_internal.h */

static void put32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static char path[4096];
    if (!path[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/miles_fuzz_prepared.%d", tmp && *tmp ? tmp : "/tmp", (int)getpid());
    }
    uint8_t *b = malloc(size ? size : 1);
    if (!b) abort();
    memcpy(b, data, size);
    if (size >= 192) {
        put32(b + 120, miles_crc32(0, b + 192, size - 192));
        if (b[128] & 1u) put32(b + 188, miles_crc32(0, b + 128, 60));
        put32(b + 124, miles_crc32(0, b, 124));
    }
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(b, 1, size, f) != size || fclose(f) != 0) abort();
    free(b);

    MilesPrepared *p = NULL;
    int rc = miles_prepared_open(&p, path);   /* reads the whole file: it can go at once */
    unlink(path);
    if (rc != MILES_OK) {
        if ((rc != MILES_EFORMAT && rc != MILES_ENAN && rc != MILES_EUNSUPPORTED && rc != MILES_ERANGE &&
             rc != MILES_ENOMEM) || p != NULL || miles_last_error()[0] == '\0')
            abort();
        return 0;
    }
    int64_t total = 0;
    for (int s = 0; s < 3; s++) {
        MilesDataset v;
        if (miles_prepared_split(p, s, &v) != MILES_OK || v.n < 0) abort();
        total += v.n;
        for (int64_t i = 0; i < v.n; i++) {
            const char *t = miles_prepared_title(p, s, i), *id = miles_prepared_row_id(p, s, i);
            if (!t || !id) abort();
            (void)strlen(t);
            (void)strlen(id);
            if (v.labels[i] != 0 && v.labels[i] != 1) abort();
            if (v.lengths[i] < 0 || v.lengths[i] > v.max_len) abort();
        }
        if (miles_prepared_title(p, s, v.n) != NULL) abort();
    }
    if (total > (int64_t)size) abort();
    MilesPreparedProvenance pv;
    int have = miles_prepared_provenance(p, &pv);
    if (have < 0 || !miles_split_by_name(pv.split_by) || (have && !memchr(pv.language, 0, sizeof pv.language))) abort();
    char *js = NULL;
    if (miles_prepared_provenance_json(p, &js) != MILES_OK || !js) abort();
    free(js);
    MilesScaler *sc = NULL;
    rc = miles_scaler_from_json(&sc, miles_prepared_scaler_json(p));
    if (rc != MILES_OK && (sc != NULL || miles_last_error()[0] == '\0')) abort();
    miles_scaler_free(sc);
    (void)miles_prepared_vocab_hash(p);
    (void)miles_prepared_crc32(p);
    miles_prepared_free(p);
    return 0;
}
