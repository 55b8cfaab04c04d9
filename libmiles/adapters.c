/*
 * adapters.c — miles_adapter_convert(): real data sources -> the 58-column
 * seed-schema CSV, plus the helpers the adapters share (count/date parsing,
 * a language heuristic, a report buffer, a hash map).
 * The per-source code is in adapters_youtube.c (ytdlp, youtube2017) and
 * adapters_tiktok.c (tiktok-vn, tiktok2020).  Definitions of every label and
 * velocity: docs/data_sources.md.
 */
#include "sources_internal.h"

#include <ctype.h>
#include <math.h>
#include <utf8proc.h>

/* ---- report ---- */

void src_report(SrcReport *rp, const char *fmt, ...) {
    if (!rp->buf || rp->cap == 0 || rp->len + 1 >= rp->cap) return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(rp->buf + rp->len, rp->cap - rp->len, fmt, ap);
    va_end(ap);
    if (k > 0) rp->len += (size_t)k;
    if (rp->len >= rp->cap) rp->len = rp->cap - 1;
}

/* ---- hash map (FNV-1a, open addressing) ---- */

static uint64_t fnv1a(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ULL; }
    return h;
}

SrcMapEnt *src_map_get(SrcMap *m, const char *key, int insert) {
    if (m->cap == 0 || (insert && (m->n + 1) * 2 > m->cap)) {
        if (!insert && m->cap == 0) return NULL;
        size_t nc = m->cap ? m->cap * 2 : 1024;
        SrcMapEnt *ne = calloc(nc, sizeof *ne);
        if (!ne) { miles_error(MILES_ENOMEM, "out of memory (map)"); return NULL; }
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->e[i].key) continue;
            size_t j = fnv1a(m->e[i].key) & (nc - 1);
            while (ne[j].key) j = (j + 1) & (nc - 1);
            ne[j] = m->e[i];
        }
        free(m->e);
        m->e = ne;
        m->cap = nc;
    }
    size_t j = fnv1a(key) & (m->cap - 1);
    while (m->e[j].key) {
        if (strcmp(m->e[j].key, key) == 0) return &m->e[j];
        j = (j + 1) & (m->cap - 1);
    }
    if (!insert) return NULL;
    char *k = strdup(key);
    if (!k) { miles_error(MILES_ENOMEM, "out of memory (map)"); return NULL; }
    m->e[j].key = k;
    m->e[j].sum = 0;
    m->e[j].count = 0;
    m->e[j].idx = -1;
    m->n++;
    return &m->e[j];
}

void src_map_free(SrcMap *m) {
    for (size_t i = 0; i < m->cap; i++) free(m->e[i].key);
    free(m->e);
    memset(m, 0, sizeof *m);
}

/* ---- numbers and dates ---- */

int src_parse_double(const char *s, double *v) {
    while (*s == ' ') s++;
    if (!*s) return 0;
    char *end;
    double x = strtod(s, &end);
    while (*end == ' ') end++;
    if (end == s || *end || !isfinite(x)) return -1;
    *v = x;
    return 1;
}

int src_parse_count(const char *s, int64_t *v) {
    while (*s == ' ') s++;
    if (!*s) return 0;
    char *end;
    double x = strtod(s, &end);
    if (end == s || !isfinite(x) || x < 0) return -1;
    double mul = 1;
    if (*end == 'K' || *end == 'k') { mul = 1e3; end++; }
    else if (*end == 'M' || *end == 'm') { mul = 1e6; end++; }
    else if (*end == 'B' || *end == 'b') { mul = 1e9; end++; }
    while (*end == ' ') end++;
    if (*end) return -1;
    x *= mul;
    if (x > 9e15) return -1;
    /* "541.2K" is a display rounding of the true count: keep the nearest integer */
    *v = (int64_t)floor(x + 0.5);
    return 1;
}

/* Howard Hinnant's civil-calendar algorithms (proleptic Gregorian). */
int64_t src_days_from_civil(int64_t y, unsigned m, unsigned d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void src_civil_from_days(int64_t z, int *y, int *m, int *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned dd = doy - (153 * mp + 2) / 5 + 1;
    unsigned mm = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (mm <= 2));
    *m = (int)mm;
    *d = (int)dd;
}

int src_parse_datetime(const char *s, int64_t *unix_s) {
    while (*s == ' ') s++;
    if (!*s) return 0;
    int y, mo, d, h = 0, mi = 0, se = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3) return -1;
    const char *p = s + n;
    if (*p == ' ' || *p == 'T') {
        int n2 = 0;
        if (sscanf(p + 1, "%2d:%2d:%2d%n", &h, &mi, &se, &n2) != 3) return -1;
        p += 1 + n2;
    }
    /* a trailing ".123", "Z" or "+07:00" is accepted and ignored (see callers) */
    if (*p && *p != '.' && *p != 'Z' && *p != '+' && *p != '-') return -1;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return -1;
    *unix_s = src_days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + se;
    return 1;
}

/* ---- text ---- */

/* Letters only used by Vietnamese among Latin-script languages: ă â đ ê ô ơ ư
 * (and capitals) and the precomposed tone-marked letters U+1EA0..U+1EF9. */
static int is_vietnamese_cp(int32_t cp) {
    switch (cp) {
    case 0x0103: case 0x0102: case 0x0111: case 0x0110: case 0x01A1: case 0x01A0:
    case 0x01B0: case 0x01AF: return 1;
    default: return cp >= 0x1EA0 && cp <= 0x1EF9;
    }
}

static int word_in(const char *w, const char *const *list) {
    for (; *list; list++)
        if (strcmp(w, *list) == 0) return 1;
    return 0;
}

const char *src_guess_language(const char *s) {
    static const char *const en[] = {"the", "a", "an", "you", "your", "i", "me", "my", "to", "and", "of", "in",
        "is", "it", "this", "that", "for", "on", "with", "what", "when", "how", "why", "who", "we", "are", "be",
        "do", "don't", "can", "so", "just", "not", "no", "all", "was", "have", "get", "like", "love", "when",
        "if", "at", "from", "out", "up", "new", "best", "day", "life", "time", "people", "first", "how", NULL};
    static const char *const nl[] = {"de", "het", "een", "en", "ik", "je", "jij", "niet", "van", "dat", "die",
        "wat", "met", "voor", "zijn", "op", "maar", "ook", "nog", "mijn", "wie", "als", "naar", "deze", NULL};
    static const char *const es[] = {"el", "la", "los", "las", "que", "y", "en", "un", "una", "por", "para",
        "con", "es", "mi", "tu", "se", "lo", "como", "pero", NULL};
    static const char *const id[] = {"yang", "dan", "di", "ini", "itu", "aku", "kamu", "ke", "dari", "tidak",
        "ada", "apa", "untuk", "saya", "gak", "nya", NULL};
    long n_vi = 0, n_th = 0, n_kana = 0, n_hangul = 0, n_han = 0, n_cyr = 0, n_ar = 0, n_dev = 0, n_latin = 0;
    long h_en = 0, h_nl = 0, h_es = 0, h_id = 0;
    char word[64];
    int wl = 0, in_tag = 0;
    const utf8proc_uint8_t *p = (const utf8proc_uint8_t *)s;
    for (;;) {
        utf8proc_int32_t cp = 0;
        utf8proc_ssize_t k = *p ? utf8proc_iterate(p, -1, &cp) : 0;
        if (k < 0) return "und";
        int letter = 0;
        if (k > 0) {
            if (is_vietnamese_cp(cp)) n_vi++;
            else if (cp >= 0x0E00 && cp <= 0x0E7F) n_th++;
            else if (cp >= 0x3040 && cp <= 0x30FF) n_kana++;
            else if ((cp >= 0xAC00 && cp <= 0xD7AF) || (cp >= 0x1100 && cp <= 0x11FF)) n_hangul++;
            else if (cp >= 0x4E00 && cp <= 0x9FFF) n_han++;
            else if (cp >= 0x0400 && cp <= 0x04FF) n_cyr++;
            else if (cp >= 0x0600 && cp <= 0x06FF) n_ar++;
            else if (cp >= 0x0900 && cp <= 0x097F) n_dev++;
            if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '\'' ||
                (cp >= 0xC0 && cp <= 0x24F && cp != 0xD7 && cp != 0xF7)) {
                letter = 1;
                if (cp != '\'') n_latin++;
            }
        }
        if (letter) {
            if (wl < (int)sizeof word - 4) {
                if (cp < 128) word[wl++] = (char)tolower((int)cp);
                else wl += (int)utf8proc_encode_char(utf8proc_tolower(cp), (utf8proc_uint8_t *)word + wl);
            }
        } else {
            if (wl > 0 && !in_tag) {
                word[wl] = '\0';
                h_en += word_in(word, en);
                h_nl += word_in(word, nl);
                h_es += word_in(word, es);
                h_id += word_in(word, id);
            }
            wl = 0;
            in_tag = (k > 0 && (cp == '#' || cp == '@'));
        }
        if (k == 0) break;
        p += k;
    }
    /* script first: any Vietnamese-only letter wins (captions mix in English tags) */
    if (n_vi >= 1) return "vi";
    if (n_th) return "th";
    if (n_kana) return "ja";
    if (n_hangul) return "ko";
    if (n_han) return "zh";
    if (n_cyr) return "ru";
    if (n_ar) return "ar";
    if (n_dev) return "hi";
    if (n_latin == 0) return "und";
    long best = h_en;
    const char *lang = "en";
    if (h_nl > best) { best = h_nl; lang = "nl"; }
    if (h_es > best) { best = h_es; lang = "es"; }
    if (h_id > best) { best = h_id; lang = "id"; }
    return best > 0 ? lang : "und";
}

/* ---- dispatcher ---- */

int miles_adapter_convert(const char *kind, const char *input, const char *out_csv, char *report,
                          size_t report_cap) {
    if (report && report_cap) report[0] = '\0';
    if (!kind || !input || !out_csv) return miles_error(MILES_EINVAL, "miles_adapter_convert: NULL argument");
    int (*fn)(const char *, FILE *, SrcReport *, int64_t *) = NULL;
    const char *country = NULL; /* "youtube2017:CC": the trending file's country */
    if (strncmp(kind, "youtube2017:", 12) == 0) {
        country = kind + 12;
        fn = src_adapter_youtube2017;
    } else if (strcmp(kind, "ytdlp") == 0) fn = src_adapter_ytdlp;
    else if (strcmp(kind, "youtube2017") == 0) fn = src_adapter_youtube2017;
    else if (strcmp(kind, "tiktok-vn") == 0) fn = src_adapter_tiktok_vn;
    else if (strcmp(kind, "tiktok2020") == 0) fn = src_adapter_tiktok2020;
    else
        return miles_error(MILES_EINVAL, "unknown source kind \"%s\" (expected ytdlp, youtube2017, tiktok-vn, tiktok2020)",
                           kind);
    SrcReport rp = {report, report_cap, 0};
    src_report(&rp, "source %s: %s\n", kind, input);
    MilesAtomicFile af;
    MILES_TRY(miles_atomic_open(&af, out_csv));
    int64_t rows = 0;
    int s = src_csv_write_header(af.fp);
    if (s == MILES_OK)
        s = country ? src_adapter_youtube2017_country(input, country, af.fp, &rp, &rows) : fn(input, af.fp, &rp, &rows);
    if (s != MILES_OK) {
        miles_atomic_abort(&af);
        return s;
    }
    s = miles_atomic_commit(&af);
    if (s != MILES_OK) return s;
    src_report(&rp, "wrote %lld rows to %s\n", (long long)rows, out_csv);
    return MILES_OK;
}
