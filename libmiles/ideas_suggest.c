/*
 * ideas_suggest.c — model-scored title suggestions: edits a creator would make
 * to a draft title, every variant scored by the predictor, only improvements
 * returned.  Bounded (max_variants records scored per call) and deterministic
 * (the seed only orders the edits; no other randomness).
 */
#include "ideas_internal.h"
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <strings.h>

MILES_API void miles_suggest_options_default(MilesSuggestOptions *opt) {
    opt->k = 5;
    opt->max_variants = 48;
    opt->seed = 0;
    opt->words = NULL;
    opt->n_words = 0;
    opt->topic = NULL;
}

/* Hook phrases of short-video titles (the synthetic seed set's and the
 * original prompt's vocabulary). */
static const char *const k_hooks[] = {"POV:", "Wait for it:", "How to", "Nobody tells you this:", "I tried",
                                      "Watch before you", NULL};
static const char *const k_emoji[] = {"\xF0\x9F\x94\xA5" /* fire */, "\xF0\x9F\x98\xB1" /* scream */,
                                      "\xF0\x9F\x98\x82" /* joy */, "\xE2\x9C\xA8" /* sparkles */, NULL};
/* what is appended, and the words that show it is there already */
static const char *const k_longer[][2] = {{"(in 60 seconds)", "60 seconds"}, {"- the full guide", "full guide"}, {NULL, NULL}};
static const char *const k_numbers[] = {"3", "5", "Top 10:", NULL};

typedef struct { char *title, *reason; double score; int order; } Var;
typedef struct { Var *v; int n, cap; } VarList;

static char *strf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *strf(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* Collapse runs of spaces and trim (edits may leave them). */
static void tidy(char *s) {
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == ' ' && (w == s || w[-1] == ' ')) continue;
        *w++ = *r;
    }
    while (w > s && w[-1] == ' ') w--;
    *w = 0;
}

/* Add a variant (takes title and reason); duplicates of the draft or of an
 * earlier variant, empty titles and failed allocations are dropped
 * (an allocation failure is reported by the caller's final check). */
static int add_var(VarList *l, const char *draft, char *title, char *reason, int *oom) {
    if (!title || !reason) { free(title); free(reason); *oom = 1; return 0; }
    tidy(title);
    int dup = !*title || !strcmp(title, draft);
    for (int i = 0; i < l->n && !dup; i++) dup = !strcmp(l->v[i].title, title);
    if (dup) { free(title); free(reason); return 0; }
    if (l->n == l->cap) {
        int nc = l->cap ? 2 * l->cap : 64;
        Var *nv = realloc(l->v, sizeof(Var) * nc);
        if (!nv) { free(title); free(reason); *oom = 1; return 0; }
        l->v = nv;
        l->cap = nc;
    }
    l->v[l->n] = (Var){title, reason, NAN, l->n};
    l->n++;
    return 1;
}

static void free_vars(VarList *l) {
    for (int i = 0; i < l->n; i++) { free(l->v[i].title); free(l->v[i].reason); }
    free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}

/* Emoji-ish code points: 4-byte UTF-8 (U+1F000...), U+2600-U+27BF, U+FE0F, ZWJ. */
static size_t emoji_len(const unsigned char *p) {
    if (p[0] >= 0xF0 && p[0] <= 0xF4 && p[1] && p[2] && p[3]) return 4;
    if (p[0] == 0xE2 && p[1] >= 0x98 && p[1] <= 0x9E && p[2]) return 3;
    if (p[0] == 0xEF && p[1] == 0xB8 && p[2] == 0x8F) return 3;
    if (p[0] == 0xE2 && p[1] == 0x80 && p[2] == 0x8D) return 3;
    return 0;
}

static char *without_emoji(const char *s, int *removed) {
    char *o = malloc(strlen(s) + 1), *w = o;
    if (!o) return NULL;
    *removed = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p;) {
        size_t k = emoji_len(p);
        if (k) { p += k; (*removed)++; continue; }
        *w++ = (char)*p++;
    }
    *w = 0;
    return o;
}

/* The title without its stopwords (ASCII words only are checked). */
static char *without_stopwords(const char *s, int *removed) {
    char *o = malloc(strlen(s) + 2), *w = o; /* + the space after the last word */
    if (!o) return NULL;
    *removed = 0;
    const char *p = s;
    while (*p) {
        const char *b = p;
        while (*p && *p != ' ') p++;
        char word[64];
        size_t L = (size_t)(p - b), pos = 0;
        int stop = 0;
        if (L < sizeof word) {
            memcpy(word, b, L);
            word[L] = 0;
            char lw[64];
            /* a whole space-separated token that is one stopword (punctuation kept otherwise) */
            if (ideas_next_word(word, &pos, lw, sizeof lw) && pos == L && isalpha((unsigned char)word[0]))
                stop = ideas_is_stopword(lw);
        }
        if (stop) (*removed)++;
        else { memcpy(w, b, L); w += L; *w++ = ' '; }
        while (*p == ' ') p++;
    }
    *w = 0;
    return o;
}

static int n_words_of(const char *s) {
    int n = 0;
    for (const char *p = s; *p;) {
        while (*p == ' ') p++;
        if (!*p) break;
        n++;
        while (*p && *p != ' ') p++;
    }
    return n;
}

/* The first k space-separated words. */
static char *first_words(const char *s, int k) {
    const char *p = s;
    for (int i = 0; i < k && *p; i++) {
        while (*p == ' ') p++;
        while (*p && *p != ' ') p++;
    }
    return strf("%.*s", (int)(p - s), s);
}

static int has_digit(const char *s) {
    for (; *s; s++)
        if (isdigit((unsigned char)*s)) return 1;
    return 0;
}

/* One edit: `edit` names it; combined with the reasons in `pre` (second
 * round), and skipped when `pre` already holds an edit of the same kind (the
 * edit's first two characters: "ho"ok, "ad"ded, "sh"orter, "lo"nger, ...). */
static void add_edit(VarList *l, const char *draft, char *title, const char *pre, char *edit, int *oom,
                     const MilesSuggestOptions *o) {
    if (!title || !edit) { free(title); free(edit); *oom = 1; return; }
    /* an edit must not lose the topic the draft is about (a shorter title may) */
    if (o->topic && miles_topic_match(draft, o->topic) && !miles_topic_match(title, o->topic)) {
        free(title); free(edit); return;
    }
    char kind[3] = {edit[0], edit[0] ? edit[1] : 0, 0};
    int same = !strncmp(pre, kind, 2);
    for (const char *q = pre; !same && (q = strstr(q, " + ")); q += 3) same = !strncmp(q + 3, kind, 2);
    if (same) { free(title); free(edit); return; }
    char *reason = *pre ? strf("%s + %s", pre, edit) : strf("%s", edit);
    free(edit);
    add_var(l, draft, title, reason, oom);
}

/* Every single edit of `t`; `pre` (may be "") holds the edits already made
 * (the second round combines). */
static void gen_edits(VarList *l, const char *draft, const char *t, const char *pre, const MilesSuggestOptions *o,
                      int *oom) {
    for (int i = 0; k_hooks[i]; i++) {
        if (strcasestr(t, k_hooks[i])) continue;
        add_edit(l, draft, strf("%s %s", k_hooks[i], t), pre, strf("hook phrase \"%s\"", k_hooks[i]), oom, o);
    }
    for (int i = 0; i < o->n_words && i < 8; i++) {
        const char *w = o->words[i].word;
        if (!w || !*w || miles_topic_match(t, w)) continue;
        add_edit(l, draft, strf("%s #%s", t, w), pre,
                 strf("added #%s (attribution %+.3g in the topic's top titles)", w, o->words[i].value), oom, o);
    }
    int nw = n_words_of(t), removed = 0;
    char *ns = without_stopwords(t, &removed);
    if (!ns) *oom = 1;
    else if (removed > 0 && n_words_of(ns) >= 2)
        add_edit(l, draft, ns, pre, strf("shorter: %d filler word%s dropped", removed, removed > 1 ? "s" : ""), oom, o);
    else free(ns);
    if (nw >= 5) add_edit(l, draft, first_words(t, (nw + 1) / 2 + 1), pre, strf("shorter: first %d words", (nw + 1) / 2 + 1), oom, o);
    for (int i = 0; k_longer[i][0]; i++)
        if (!strcasestr(t, k_longer[i][1]))
            add_edit(l, draft, strf("%s %s", t, k_longer[i][0]), pre, strf("longer: \"%s\" added", k_longer[i][0]), oom, o);
    char *ne = without_emoji(t, &removed);
    if (!ne) *oom = 1;
    else if (removed) add_edit(l, draft, ne, pre, strf("emoji removed"), oom, o);
    else {
        free(ne);
        for (int i = 0; k_emoji[i]; i++)
            add_edit(l, draft, strf("%s %s", t, k_emoji[i]), pre, strf("emoji %s added", k_emoji[i]), oom, o);
    }
    size_t L = strlen(t);
    char last = L ? t[L - 1] : 0;
    if (last == '?') add_edit(l, draft, strf("%.*s!", (int)(L - 1), t), pre, strf("punctuation: statement instead of a question"), oom, o);
    else if (last == '!' || last == '.')
        add_edit(l, draft, strf("%.*s?", (int)(L - 1), t), pre, strf("punctuation: question instead of a statement"), oom, o);
    else add_edit(l, draft, strf("%s?", t), pre, strf("punctuation: asked as a question"), oom, o);
    if (!has_digit(t))
        for (int i = 0; k_numbers[i]; i++)
            add_edit(l, draft, strf("%s %s", k_numbers[i], t), pre, strf("number \"%s\" in front", k_numbers[i]), oom, o);
}

int ideas_edits(const char *draft, const char *t, const char *pre, const MilesSuggestOptions *o, char ***titles,
                char ***reasons, int *n) {
    *titles = *reasons = NULL;
    *n = 0;
    VarList l = {0};
    int oom = 0;
    gen_edits(&l, draft, t, pre, o, &oom);
    if (!oom && l.n) {
        *titles = malloc(sizeof(char *) * l.n);
        *reasons = malloc(sizeof(char *) * l.n);
        if (!*titles || !*reasons) oom = 1;
    }
    if (oom) {
        free(*titles);
        free(*reasons);
        *titles = *reasons = NULL;
        free_vars(&l);
        return miles_error(MILES_ENOMEM, "out of memory");
    }
    for (int i = 0; i < l.n; i++) {
        (*titles)[i] = l.v[i].title;
        (*reasons)[i] = l.v[i].reason;
    }
    *n = l.n;
    free(l.v);
    return MILES_OK;
}

/* Score variants [from, l->n) with the draft's other fields. */
static int score_vars(MilesPredictor *p, const MilesRecord *draft, VarList *l, int from) {
    int n = l->n - from;
    if (n <= 0) return MILES_OK;
    int nf = draft->n;
    MilesRecord *recs = miles_malloc(sizeof(MilesRecord) * n);
    const char **names = miles_malloc(sizeof(char *) * (size_t)n * (nf + 1));
    const char **vals = miles_malloc(sizeof(char *) * (size_t)n * (nf + 1));
    MilesPrediction *out = miles_malloc(sizeof(MilesPrediction) * n);
    int s = recs && names && vals && out ? MILES_OK : MILES_ENOMEM;
    for (int i = 0; i < n && s == MILES_OK; i++) {
        const char **nm = names + (size_t)i * (nf + 1), **vv = vals + (size_t)i * (nf + 1);
        int k = 0;
        nm[k] = "title";
        vv[k++] = l->v[from + i].title;
        /* title_length / has_emoji are derived from each variant's own title */
        for (int j = 0; j < nf; j++) {
            const char *name = draft->names[j];
            if (!strcmp(name, "title") || !strcmp(name, "title_length") || !strcmp(name, "has_emoji")) continue;
            nm[k] = name;
            vv[k++] = draft->values[j];
        }
        recs[i] = (MilesRecord){k, nm, vv, NULL};
    }
    if (s == MILES_OK) s = miles_predictor_predict(p, recs, n, out);
    if (s == MILES_OK)
        for (int i = 0; i < n; i++) l->v[from + i].score = out[i].viral_score;
    free(recs); free(names); free(vals); free(out);
    return s;
}

/* Keep at most `keep` of variants [from, l->n), chosen in a seeded order. */
static void keep_seeded(VarList *l, int from, int keep, uint64_t *rng) {
    int n = l->n - from;
    if (n <= keep) return;
    int *perm = malloc(sizeof(int) * n);
    if (!perm) { /* no scratch: keep the first ones, still deterministic */
        for (int i = from + keep; i < l->n; i++) { free(l->v[i].title); free(l->v[i].reason); }
        l->n = from + keep;
        return;
    }
    for (int i = 0; i < n; i++) perm[i] = i;
    miles_shuffle(perm, n, sizeof(int), rng);
    /* mark the dropped ones, then compact in the original order */
    char *drop = calloc(n, 1);
    for (int i = keep; i < n; i++) if (drop) drop[perm[i]] = 1;
    int w = from;
    for (int i = 0; i < n; i++) {
        Var v = l->v[from + i];
        if (drop ? drop[i] : i >= keep) { free(v.title); free(v.reason); continue; }
        l->v[w++] = v;
    }
    l->n = w;
    free(drop);
    free(perm);
}

static int cmp_var(const void *x, const void *y, void *ctx) {
    (void)ctx;
    const Var *a = x, *b = y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->order > b->order) - (a->order < b->order);
}

MILES_API void miles_suggestions_free(MilesSuggestions *s) {
    if (!s) return;
    for (int i = 0; i < s->n; i++) { free(s->items[i].title); free(s->items[i].reason); }
    free(s->items);
    free(s);
}

MILES_API int miles_suggest_titles(MilesPredictor *p, const MilesRecord *draft, const MilesSuggestOptions *opt,
                                   MilesSuggestions **out) {
    if (!p || !draft || !out) return miles_error(MILES_EINVAL, "miles_suggest_titles: bad arguments");
    *out = NULL;
    MilesSuggestOptions o;
    if (opt) o = *opt;
    else miles_suggest_options_default(&o);
    if (o.k < 1 || o.max_variants < 1 || o.max_variants > 4096 || o.n_words < 0 || (o.n_words > 0 && !o.words))
        return miles_error(MILES_EINVAL, "suggest options out of range (k %d, max_variants %d in [1, 4096], n_words %d)",
                           o.k, o.max_variants, o.n_words);
    const char *title = ideas_record_get(draft, "title");
    if (!title || !*title) return miles_error(MILES_EMISSING, "field 'title': a draft title is required");
    char *t0 = strdup(title);
    if (!t0) return miles_error(MILES_ENOMEM, "out of memory");
    tidy(t0);

    /* the draft itself, scored the same way as its variants */
    VarList l = {0};
    int oom = 0, s = MILES_OK;
    Var d0 = {strdup(t0), strdup(""), NAN, -1};
    l.v = malloc(sizeof(Var) * 64);
    if (!l.v || !d0.title || !d0.reason) { free(l.v); free(d0.title); free(d0.reason); free(t0); return miles_error(MILES_ENOMEM, "out of memory"); }
    l.cap = 64;
    l.v[l.n++] = d0;
    s = score_vars(p, draft, &l, 0);
    double base = l.v[0].score;
    uint64_t rng = o.seed;

    /* round 1: single edits; round 2: single edits on the two best improvements */
    int budget1 = o.max_variants >= 4 ? o.max_variants * 2 / 3 : o.max_variants;
    if (s == MILES_OK) {
        gen_edits(&l, t0, t0, "", &o, &oom);
        keep_seeded(&l, 1, budget1, &rng);
        s = score_vars(p, draft, &l, 1);
    }
    int n1 = l.n;
    if (s == MILES_OK && !oom && n1 - 1 < o.max_variants) {
        Var *sorted = malloc(sizeof(Var) * (n1 - 1 > 0 ? n1 - 1 : 1));
        if (!sorted) oom = 1;
        else {
            memcpy(sorted, l.v + 1, sizeof(Var) * (n1 - 1));
            s = miles_sort_r(sorted, n1 - 1, sizeof(Var), cmp_var, NULL);
            for (int b = 0; b < 2 && b < n1 - 1 && s == MILES_OK; b++) {
                if (!(sorted[b].score > base)) break;
                gen_edits(&l, t0, sorted[b].title, sorted[b].reason, &o, &oom);
            }
            free(sorted);
        }
        if (s == MILES_OK) {
            keep_seeded(&l, n1, o.max_variants - (n1 - 1), &rng);
            s = score_vars(p, draft, &l, n1);
        }
    }
    if (s == MILES_OK && oom) s = miles_error(MILES_ENOMEM, "out of memory");
    MilesSuggestions *r = NULL;
    if (s == MILES_OK) {
        int nv = l.n - 1;
        s = miles_sort_r(l.v + 1, nv, sizeof(Var), cmp_var, NULL);
        r = miles_calloc(1, sizeof *r);
        if (r) r->items = miles_calloc(o.k, sizeof(MilesSuggestion));
        if (!r || !r->items) { free(r); r = NULL; s = MILES_ENOMEM; }
        for (int i = 0; s == MILES_OK && i < nv && r->n < o.k; i++) {
            Var *v = &l.v[1 + i];
            if (!(v->score > base)) break; /* sorted: no improvement beyond here */
            r->items[r->n++] = (MilesSuggestion){v->title, v->score, v->score - base, v->reason};
            v->title = v->reason = NULL; /* moved */
        }
        if (r) { r->draft_score = base; r->n_scored = nv; }
    }
    free_vars(&l);
    free(t0);
    if (s != MILES_OK) { miles_suggestions_free(r); return s; }
    *out = r;
    return MILES_OK;
}
