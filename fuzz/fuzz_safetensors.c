/*
 * fuzz_safetensors.c — libFuzzer target for the safetensors header parser and
 * readers (libmiles/safetensors.c), through miles_safetensors_open_memory on
 * the fuzzer's exact-size buffer so ASan sees any read past the input.
 *
 * Build and run:
 *   make fuzz-run FUZZ_ONLY=safetensors FUZZ_TIME=300   (Makefile: build, seeds, dictionary)
 *
 * Invariant checked: open either fails with MILES_EFORMAT (and a message) or
 * succeeds, and then every tensor is readable within the buffer and reports
 * consistent sizes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "miles.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    MilesSafetensors *st = NULL;
    int rc = miles_safetensors_open_memory(&st, data, size, "fuzz");
    if (rc != MILES_OK) {
        if (rc != MILES_EFORMAT || st != NULL || miles_last_error()[0] == '\0') abort();
        return 0;
    }
    int n = miles_safetensors_count(st);
    for (int i = 0; i < n; i++) {
        const char *name = miles_safetensors_name(st, i);
        if (!name || miles_safetensors_find(st, name) != i) abort();
        int dt, nd;
        int64_t shape[8];
        size_t numel, nb;
        if (miles_safetensors_info(st, i, &dt, &nd, shape, &numel) != MILES_OK) abort();
        const unsigned char *p = miles_safetensors_data(st, i, &nb);
        if (nb != numel * miles_dtype_size(dt) || nb > size) abort();
        if (nb && (p < data || p + nb > data + size)) abort();
        void *dst = malloc(numel * 4 + 4);
        if (!dst) abort();
        if (dt <= MILES_DT_F64) rc = miles_safetensors_read_f32(st, i, dst, numel);
        else rc = miles_safetensors_read_i32(st, i, dst, numel);
        if (rc != MILES_OK && rc != MILES_ERANGE) abort();
        free(dst);
    }
    (void)miles_safetensors_metadata(st, "format");
    miles_safetensors_close(st);
    return 0;
}
