/*
 * fuzz_adapter_tiktok.c — libFuzzer target for the TikTok adapters
 * (libmiles/adapters_tiktok.c): the tiktok-scraper JSON ("collector" array:
 * counts as numbers or "541.2K" strings, createTime) and the VN panel CSV
 * (date-times, counts, mm:ss durations).  The first byte picks the kind;
 * invariants in fuzz_adapter_common.h.
 */
#include "fuzz_adapter_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    if (data[0] & 1) {
        fz_convert("tiktok2020", "trending.json", data + 1, size - 1);
        return 0;
    }
    static const char hdr[] = "vid,user_name,caption,hashtags,post_time_utc,duration,music_title,music_originality,"
                              "music_nused_1,followers_1,scrape_time_1,views_1,likes_1,comments_1,shares_1,saves_1,"
                              "scrape_time_2,followers_2,views_2,likes_2,comments_2,shares_2,saves_2\n";
    size_t n = sizeof hdr - 1 + size - 1;
    uint8_t *buf = malloc(n + 1);
    if (!buf) return 0;
    memcpy(buf, hdr, sizeof hdr - 1);
    memcpy(buf + sizeof hdr - 1, data + 1, size - 1);
    fz_convert("tiktok-vn", "panel_scrape1_recrawl_DERIVED.csv", buf, n);
    free(buf);
    return 0;
}
