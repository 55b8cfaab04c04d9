/*
 * tokenizer_text.c — text -> WordPiece ids, exactly as HF tokenizers'
 * BertTokenizerFast does it (tokenizers 0.19.1):
 *
 *   1. added tokens ([CLS], [SEP], [PAD], [UNK], [MASK], ...) are matched in the
 *      raw text, leftmost-longest, before any normalization; the text between
 *      them is processed on its own;
 *   2. BertNormalizer, per code point, in this order:
 *        clean_text: drop NUL, U+FFFD and "other" chars (Cc Cf Cs Co, but not
 *                    \t \n \r); White_Space chars and \t\n\r become ' ';
 *        handle_chinese_chars: ' ' around CJK ideographs (HF's ranges);
 *        strip_accents: NFD, then drop Mn;
 *        lowercase: Unicode full lowercase mapping (Rust char::to_lowercase);
 *   3. BertPreTokenizer: split on White_Space (removed), isolate punctuation
 *      (ASCII punctuation or Unicode P*);
 *   4. WordPiece: greedy longest-match-first with "##" continuations; a word
 *      of more than max_input_chars_per_word chars, or with an unmatched
 *      position, becomes a single [UNK].
 *
 * The NFD step also reorders combining marks (canonical ordering), which only
 * matters for marks that survive the Mn filter; we do it on the current word.
 *
 * Invalid UTF-8: each maximal ill-formed subpart (the Unicode "best practice"
 * that Python's errors='replace' also follows) becomes one U+FFFD, which
 * cleaning then removes.  With clean_text off, U+FFFD is an ordinary symbol.
 *
 * Speed: ASCII letters/digits/space take a table-free fast path; words are
 * held in per-call buffers (no per-token allocation); vocab lookups are one
 * hash probe per candidate piece, bounded by the longest vocab entry.
 */
#include "tokenizer_internal.h"
#include <utf8proc.h>

/* ---------------------------------------------------------------- Unicode */

/* Rust char::is_whitespace (Unicode White_Space property). */
static int is_ws_std(uint32_t c)
{
    if (c <= 0x20) return c == 0x20 || (c >= 0x09 && c <= 0x0D);
    if (c < 0x85) return 0;
    return c == 0x85 || c == 0xA0 || c == 0x1680 || (c >= 0x2000 && c <= 0x200A) ||
           c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* General category as the Rust crate unicode_categories 0.1.1 (used by HF
 * tokenizers for is_other / is_punctuation / is_mark_nonspacing) sees it: its
 * tables are Unicode 8.0.  Code points assigned later are Cn there, and six
 * characters have changed category since.  utf8proc is Unicode 15.  Only the
 * categories that matter (C*, Mn, P*) are corrected; the range lookup runs
 * only for them. */
extern const uint32_t miles_tok_unicode8_ranges[][2];
extern const int miles_tok_unicode8_nranges;

static int assigned_in_unicode8(uint32_t c)
{
    int lo = 0, hi = miles_tok_unicode8_nranges - 1;
    while (lo <= hi) {
        int mid = (lo + hi) >> 1;
        if (c < miles_tok_unicode8_ranges[mid][0]) hi = mid - 1;
        else if (c > miles_tok_unicode8_ranges[mid][1]) lo = mid + 1;
        else return 1;
    }
    return 0;
}

static int crate_category(uint32_t c)
{
    int cat = utf8proc_category((utf8proc_int32_t)c);
    switch (cat) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF: case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO: case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        break;
    default:
        if (c == 0x166D) return UTF8PROC_CATEGORY_PO;   /* CANADIAN SYLLABICS CHI SIGN: Po until 12.0 */
        if (c == 0x1734) return UTF8PROC_CATEGORY_MN;   /* HANUNOO SIGN PAMUDPOD: Mn until 14.0 */
        return cat;
    }
    if (c < 0x378) return cat;
    if (c == 0x1885 || c == 0x1886) return UTF8PROC_CATEGORY_LO; /* MONGOLIAN ALI GALI BALUDA: Lo until 9.0 */
    if (c == 0xA9BD) return UTF8PROC_CATEGORY_MC;   /* JAVANESE CONSONANT SIGN KERET: Mc until 12.0 */
    if (c == 0x111C9) return UTF8PROC_CATEGORY_PO;  /* SHARADA SANDHI MARK: Po until 11.0 */
    return assigned_in_unicode8(c) ? cat : UTF8PROC_CATEGORY_CN;
}

/* unicode_categories' is_other(): Cc, Cf, Cs, Co (not Cn: unassigned code
 * points are kept and end up as [UNK]). */
static int is_other(uint32_t c)
{
    switch (crate_category(c)) {
    case UTF8PROC_CATEGORY_CC: case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS: case UTF8PROC_CATEGORY_CO:
        return 1;
    default:
        return 0;
    }
}

static int is_punct(uint32_t c)
{
    if (c < 0x80)
        return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) ||
               (c >= 123 && c <= 126);
    switch (crate_category(c)) {
    case UTF8PROC_CATEGORY_PC: case UTF8PROC_CATEGORY_PD: case UTF8PROC_CATEGORY_PS:
    case UTF8PROC_CATEGORY_PE: case UTF8PROC_CATEGORY_PI: case UTF8PROC_CATEGORY_PF:
    case UTF8PROC_CATEGORY_PO:
        return 1;
    default:
        return 0;
    }
}

/* HF tokenizers' is_chinese_char.  Note 0x2B920 (the Python slow tokenizer
 * says 0x2B820): we follow the fast (Rust) code. */
static int is_cjk(uint32_t c)
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
           (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
           (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

static int ccc_of(uint32_t c)
{
    return c < 0x300 ? 0 : utf8proc_get_property((utf8proc_int32_t)c)->combining_class;
}

/* ------------------------------------------------------------------- UTF-8 */

/* Decode one code point at s[0..n), n >= 1.  Invalid: U+FFFD and the length of
 * the maximal subpart (1..3 bytes), like Python's 'replace' error handler. */
static uint32_t utf8_next(const uint8_t *s, size_t n, size_t *adv)
{
    uint32_t b0 = s[0];
    if (b0 < 0x80) { *adv = 1; return b0; }
    int need;
    uint32_t cp;
    uint8_t lo = 0x80, hi = 0xBF;   /* allowed range of the second byte */
    if (b0 >= 0xC2 && b0 <= 0xDF) { need = 1; cp = b0 & 0x1F; }
    else if (b0 >= 0xE0 && b0 <= 0xEF) {
        need = 2; cp = b0 & 0x0F;
        if (b0 == 0xE0) lo = 0xA0;
        else if (b0 == 0xED) hi = 0x9F;      /* no surrogates */
    } else if (b0 >= 0xF0 && b0 <= 0xF4) {
        need = 3; cp = b0 & 0x07;
        if (b0 == 0xF0) lo = 0x90;
        else if (b0 == 0xF4) hi = 0x8F;      /* <= U+10FFFF */
    } else { *adv = 1; return 0xFFFD; }
    size_t i = 1;
    for (int k = 0; k < need; k++, i++) {
        if (i >= n) { *adv = i; return 0xFFFD; }
        uint8_t b = s[i];
        uint8_t l = k == 0 ? lo : 0x80, h = k == 0 ? hi : 0xBF;
        if (b < l || b > h) { *adv = i; return 0xFFFD; }
        cp = (cp << 6) | (b & 0x3F);
    }
    *adv = i;
    return cp;
}

static int utf8_put(uint32_t c, char *o)
{
    if (c < 0x80) { o[0] = (char)c; return 1; }
    if (c < 0x800) { o[0] = (char)(0xC0 | (c >> 6)); o[1] = (char)(0x80 | (c & 0x3F)); return 2; }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12)); o[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        o[2] = (char)(0x80 | (c & 0x3F)); return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18)); o[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((c >> 6) & 0x3F)); o[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

/* ------------------------------------------------------------- word state */

typedef struct Word {
    const MilesTokenizer *t;
    MilesTokOut *out;
    uint32_t *cp;      /* [max_chars + 1] normalized chars of the current word */
    int n;             /* chars seen (saturates at max_chars + 1) */
    int run_start;     /* first index of the current run of non-starters */
    char *bytes;       /* [4 * (max_chars + 1)] UTF-8 of the word */
    int *bo;           /* [max_chars + 2] byte offset of each char */
    int32_t *sub;      /* [max_chars + 1] pieces found so far */
} Word;

static inline void emit(MilesTokOut *o, int32_t id)
{
    if (o->n < o->cap) o->ids[o->n] = id;
    if (o->n < INT32_MAX) o->n++;
}

uint64_t miles_tok_hash(const char *s, size_t n, int cont)
{
    uint64_t h = 0x9E3779B97F4A7C15ull * (uint64_t)(n + 1) ^ (cont ? 0xA0761D6478BD642Full : 0);
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, s, 8);
        h = (h ^ v) * 0xff51afd7ed558ccdull;
        h ^= h >> 29;
        s += 8; n -= 8;
    }
    if (n) {
        uint64_t v = 0;
        memcpy(&v, s, n);
        h = (h ^ v) * 0xc4ceb9fe1a85ec53ull;
        h ^= h >> 29;
    }
    h *= 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

int miles_tok_lookup(const MilesTokenizer *t, const char *s, size_t n, int cont)
{
    uint64_t h = miles_tok_hash(s, n, cont);
    uint32_t tag = (uint32_t)(h >> 32);
    for (uint32_t i = (uint32_t)h & t->hmask;; i = (i + 1) & t->hmask) {
        int32_t id = t->hid[i];
        if (id < 0) return -1;
        if (t->hhash[i] != tag || t->hcont[i] != (uint8_t)cont) continue;
        const char *k = t->strbuf + t->tok_off[id];
        size_t kl = t->tok_len[id];
        if (cont) { k += 2; kl -= 2; }
        if (kl == n && memcmp(k, s, n) == 0) return id;
    }
}

/* WordPiece on the finished word. */
static void flush(Word *w)
{
    const MilesTokenizer *t = w->t;
    int n = w->n;
    w->n = 0;
    w->run_start = 0;
    if (n == 0) return;
    if (n > t->max_chars) { emit(w->out, t->unk_id); return; }
    int nb = 0;
    for (int i = 0; i < n; i++) {
        w->bo[i] = nb;
        nb += utf8_put(w->cp[i], w->bytes + nb);
    }
    w->bo[n] = nb;
    int nsub = 0, start = 0;
    while (start < n) {
        int end = n;
        while (w->bo[end] - w->bo[start] > t->max_tok_bytes) end--;
        int id = -1;
        for (; end > start; end--) {
            id = miles_tok_lookup(t, w->bytes + w->bo[start], (size_t)(w->bo[end] - w->bo[start]),
                                  start > 0);
            if (id >= 0) break;
        }
        if (id < 0) { emit(w->out, t->unk_id); return; }
        w->sub[nsub++] = id;
        start = end;
    }
    for (int i = 0; i < nsub; i++) emit(w->out, w->sub[i]);
}

/* Append a normalized, non-space, non-punctuation char.  ccc > 0 chars are
 * placed by canonical ordering (stable by combining class) within the run. */
static inline void push(Word *w, uint32_t c, int ccc)
{
    int lim = w->t->max_chars;
    if (w->n > lim) return;
    if (ccc == 0) {
        w->cp[w->n++] = c;
        w->run_start = w->n;
        return;
    }
    int j = w->n;
    while (j > w->run_start && ccc_of(w->cp[j - 1]) > ccc) {
        w->cp[j] = w->cp[j - 1];
        j--;
    }
    w->cp[j] = c;
    w->n++;
}

/* Pre-tokenizer on one normalized char. */
static void pretok(Word *w, uint32_t c, int ccc)
{
    if (is_ws_std(c)) { flush(w); return; }
    if (is_punct(c)) { flush(w); push(w, c, 0); flush(w); return; }
    push(w, c, ccc);
}

/* Lowercase (Rust char::to_lowercase) one char and pre-tokenize the result. */
static void lower_pretok(Word *w, uint32_t c, int ccc)
{
    if (w->t->lowercase) {
        if (c == 0x130) {                  /* the one multi-char full lowercase mapping */
            pretok(w, 0x69, 0);
            pretok(w, 0x307, 230);
            return;
        }
        c = (uint32_t)utf8proc_tolower((utf8proc_int32_t)c);
    }
    pretok(w, c, ccc);
}

/* strip_accents (NFD, drop Mn) then lowercase one cleaned char. */
static void normalize_char(Word *w, uint32_t c)
{
    const MilesTokenizer *t = w->t;
    if (!t->strip_accents) {
        lower_pretok(w, c, 0);        /* no NFD: no reordering either */
        return;
    }
    if (c < 0xC0) {                   /* Latin-1 below À has no decomposition */
        lower_pretok(w, c, ccc_of(c));
        return;
    }
    utf8proc_int32_t d[32];
    int last_bound = 0;
    utf8proc_ssize_t nd = utf8proc_decompose_char((utf8proc_int32_t)c, d, 32,
                                                  UTF8PROC_DECOMPOSE, &last_bound);
    if (nd < 1 || nd > 32) { d[0] = (utf8proc_int32_t)c; nd = 1; }
    for (utf8proc_ssize_t k = 0; k < nd; k++) {
        uint32_t x = (uint32_t)d[k];
        const utf8proc_property_t *p = utf8proc_get_property(d[k]);
        if ((p->category == UTF8PROC_CATEGORY_MN || x == 0x1734) && crate_category(x) == UTF8PROC_CATEGORY_MN) {
            /* dropped, but a dropped starter still ends the reordering run */
            if (p->combining_class == 0 && w->n <= t->max_chars) w->run_start = w->n;
            continue;
        }
        lower_pretok(w, x, p->combining_class);
    }
}

/* One decoded input char through the whole normalizer + pre-tokenizer. */
static void process_char(Word *w, uint32_t c)
{
    const MilesTokenizer *t = w->t;
    if (t->clean_text) {
        /* HF filters first (controls other than \t\n\r go, so U+000B, U+000C and
         * U+0085 are removed, not spaces), then maps White_Space to ' ' */
        if (c == 0 || c == 0xFFFD) return;
        if (c != '\t' && c != '\n' && c != '\r' && is_other(c)) return;
        if (is_ws_std(c)) { flush(w); return; }
    }
    if (t->handle_chinese && is_cjk(c)) {
        flush(w);
        normalize_char(w, c);
        flush(w);
        return;
    }
    normalize_char(w, c);
}

/* Added token starting at s (leftmost-longest: the table is longest first). */
static int match_added(const MilesTokenizer *t, const uint8_t *s, size_t n)
{
    for (int k = 0; k < t->n_added; k++) {
        const MilesAddedToken *a = &t->added[k];
        if ((size_t)a->len <= n && (uint8_t)a->text[0] == s[0] && memcmp(a->text, s, (size_t)a->len) == 0)
            return k;
    }
    return -1;
}

int miles_tok_run(const MilesTokenizer *t, const char *text, size_t len, MilesTokOut *out)
{
    int mc = t->max_chars;
    /* per-call word buffers: on the stack for the usual max_chars (100) */
    enum { STACK_CHARS = 256 };
    uint32_t s_cp[STACK_CHARS + 1];
    char s_bytes[4 * (STACK_CHARS + 1)];
    int s_bo[STACK_CHARS + 2];
    int32_t s_sub[STACK_CHARS + 1];
    void *heap = NULL;
    Word w = { .t = t, .out = out, .cp = s_cp, .bytes = s_bytes, .bo = s_bo, .sub = s_sub };
    if (mc > STACK_CHARS) {
        size_t m = (size_t)mc + 2;
        heap = miles_malloc(m * (sizeof(uint32_t) + 4 + sizeof(int) + sizeof(int32_t)));
        if (!heap) return MILES_ENOMEM;
        w.cp = heap;
        w.bo = (int *)(w.cp + m);
        w.sub = (int32_t *)(w.bo + m);
        w.bytes = (char *)(w.sub + m);
    }
    const uint8_t *s = (const uint8_t *)text;
    const int lower = t->lowercase;
    size_t i = 0;
    while (i < len) {
        uint8_t b = s[i];
        if (t->added_first[b]) {
            int k = match_added(t, s + i, len - i);
            if (k >= 0) {
                flush(&w);
                emit(out, t->added[k].id);
                i += (size_t)t->added[k].len;
                continue;
            }
        }
        /* fast path: ASCII letters and digits (starters, no decomposition) */
        if ((b | 0x20) - 'a' < 26u || b - '0' < 10u) {
            if (w.n <= mc) {
                w.cp[w.n++] = (lower && b - 'A' < 26u) ? b + 32u : b;
                w.run_start = w.n;
            }
            i++;
            continue;
        }
        if (b == ' ') { flush(&w); i++; continue; }
        /* ASCII punctuation: isolated (no decomposition or case mapping) */
        if (b < 0x80 && is_punct(b)) {
            flush(&w);
            push(&w, b, 0);
            flush(&w);
            i++;
            continue;
        }
        size_t adv;
        uint32_t c = utf8_next(s + i, len - i, &adv);
        process_char(&w, c);
        i += adv;
    }
    flush(&w);
    free(heap);
    return MILES_OK;
}
