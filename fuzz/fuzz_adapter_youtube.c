/*
 * fuzz_adapter_youtube.c — libFuzzer target for the YouTube trending (2017)
 * CSV adapter (libmiles/adapters_youtube.c: snapshot dates "13.09", glued and
 * shifted records, counts), invariants in fuzz_adapter_common.h.
 */
#include "fuzz_adapter_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* the header the adapter needs, so that the fuzzer spends its time in the rows */
    static const char hdr[] = "video_id,title,channel_title,category_id,tags,views,likes,dislikes,comment_total,"
                              "thumbnail_link,date,,,,,,,,,,\n";   /* as USvideos.csv: 21 columns */
    int raw = size > 0 && data[0] == '!';   /* '!': the bytes as they are, header included */
    size_t n = raw ? size - 1 : sizeof hdr - 1 + size;
    uint8_t *buf = malloc(n + 1);
    if (!buf) return 0;
    if (raw) memcpy(buf, data + 1, n);
    else { memcpy(buf, hdr, sizeof hdr - 1); if (size) memcpy(buf + sizeof hdr - 1, data, size); }
    fz_convert("youtube2017", "in.csv", buf, n);
    free(buf);
    return 0;
}
