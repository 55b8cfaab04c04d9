/*
 * fuzz_adapter_ytdlp.c — libFuzzer target for the yt-dlp adapter
 * (libmiles/adapters_youtube.c: one .info.json document, a JSON array, or
 * JSON lines; range checks, dates, UTF-8), invariants in fuzz_adapter_common.h.
 * Run through `make fuzz-run` (FUZZ_TIME seconds per target).
 */
#include "fuzz_adapter_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a line that does not start with '{' may be read as the path of a .json
     * file (yt-dlp --write-info-json lists): such a line may not name anything
     * outside the fuzzer's own directory (no '/') */
    int at_start = 1, pathish = 0;
    for (size_t i = 0; i < size; i++) {
        unsigned char c = data[i];
        if (c == '\n') { at_start = 1; pathish = 0; continue; }
        if (at_start && (c == ' ' || c == '\t')) continue;
        if (at_start) { pathish = c != '{'; at_start = 0; }
        if (pathish && c == '/') return 0;
    }
    fz_convert("ytdlp", "in.json", data, size);
    return 0;
}
