/*
 * fuzz_adapter_ytdlp.c — libFuzzer target for the yt-dlp adapter
 * (libmiles/adapters_youtube.c: one .info.json document, a JSON array, or
 * JSON lines; range checks, dates, UTF-8), invariants in fuzz_adapter_common.h.
 * Run through `make fuzz-run` (FUZZ_TIME seconds per target).
 */
#include "fuzz_adapter_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* a line that is not JSON is read as the path of a .json file (yt-dlp
     * --write-info-json lists): keep the fuzzer inside its own directory */
    for (size_t i = 0; i < size; i++)
        if (data[i] == '/' || data[i] == 0) return 0;
    fz_convert("ytdlp", "in.json", data, size);
    return 0;
}
