/*
 * ideas.c — the topic view: records matching a topic ranked by the model, the
 * original system's patterns on the best ten (ORIGINAL_SYSTEM.md §9: average
 * title length, duration and score, top words) and, from integrated
 * gradients, which words and features push this topic's scores up or down.
 * The suggestions built on it are in ideas_suggest.c.
 */
#include "ideas_internal.h"
#include "internal.h"

#include <ctype.h>
#include <math.h>

/* The original's pattern extraction dropped English stopwords and "shorts";
 * the same small list serves the attributed words (function words are not
 * ideas). */
static const char *const k_stop[] = {
    "a", "about", "after", "again", "all", "also", "an", "and", "any", "are", "as", "at", "be", "been", "before",
    "but", "by", "can", "could", "did", "do", "does", "for", "from", "get", "got", "had", "has", "have", "he",
    "her", "here", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most",
    "my", "no", "not", "now", "of", "on", "one", "only", "or", "our", "out", "over", "she", "so", "some", "than",
    "that", "the", "their", "them", "then", "there", "these", "they", "this", "those", "to", "too", "up", "us",
    "very", "was", "we", "were", "what", "when", "where", "which", "who", "why", "will", "with", "would", "you",
    "your", "shorts", "short", "video", "videos", NULL};

int ideas_is_stopword(const char *w) {
    for (int i = 0; k_stop[i]; i++)
        if (!strcmp(w, k_stop[i])) return 1;
    return 0;
}

/* Next ASCII word of s from *pos (letters and digits), lowercased into buf;
 * 0 at the end.  Other bytes (punctuation, emoji, non-ASCII) separate words. */
int ideas_next_word(const char *s, size_t *pos, char *buf, size_t cap) {
    size_t i = *pos;
    while (s[i] && !isalnum((unsigned char)s[i])) i++;
    if (!s[i]) { *pos = i; return 0; }
    size_t k = 0;
    while (s[i] && isalnum((unsigned char)s[i])) {
        if (k + 1 < cap) buf[k++] = (char)tolower((unsigned char)s[i]);
        i++;
    }
    buf[k] = 0;
    *pos = i;
    return 1;
}

/* Words equal up to one trailing "s" (plural). */
static int word_eq(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la == lb) return !memcmp(a, b, la);
    if (la == lb + 1 && a[la - 1] == 's') return !memcmp(a, b, lb);
    if (lb == la + 1 && b[lb - 1] == 's') return !memcmp(a, b, la);
    return 0;
}

MILES_API int miles_topic_match(const char *title, const char *topic) {
    if (!topic) return 1;
    if (!title) return 0;
    char tw[128], w[128];
    size_t tp = 0;
    while (ideas_next_word(topic, &tp, tw, sizeof tw)) {
        size_t p = 0;
        int found = 0;
        while (!found && ideas_next_word(title, &p, w, sizeof w)) found = word_eq(w, tw);
        if (!found) return 0;
    }
    return 1;
}

MILES_API void miles_topic_options_default(MilesTopicOptions *opt) {
    opt->top_n = 10;
    opt->max_matches = 100;
    opt->explain_top = 5;
    opt->explain_steps = 16;
    opt->n_words = 10;
}

const char *ideas_record_get(const MilesRecord *r, const char *name) {
    for (int i = 0; i < r->n; i++)
        if (r->names[i] && !strcmp(r->names[i], name)) return r->values[i];
    return NULL;
}

/* ---- a small word -> (sum, count) table (linear: at most a few hundred words) ---- */
typedef struct { char *w; double sum; int count; } Acc;
typedef struct { Acc *a; int n, cap; } AccTab;

static int acc_add(AccTab *t, const char *w, double v) {
    for (int i = 0; i < t->n; i++)
        if (!strcmp(t->a[i].w, w)) { t->a[i].sum += v; t->a[i].count++; return MILES_OK; }
    if (t->n == t->cap) {
        int nc = t->cap ? 2 * t->cap : 32;
        Acc *na = realloc(t->a, sizeof(Acc) * nc);
        if (!na) return miles_error(MILES_ENOMEM, "out of memory");
        t->a = na;
        t->cap = nc;
    }
    char *d = strdup(w);
    if (!d) return miles_error(MILES_ENOMEM, "out of memory");
    t->a[t->n++] = (Acc){d, v, 1};
    return MILES_OK;
}
static void acc_free(AccTab *t) {
    for (int i = 0; i < t->n; i++) free(t->a[i].w);
    free(t->a);
}

/* sort keys: value descending (sign = +1) or ascending (-1), then word */
static int cmp_acc(const void *x, const void *y, void *ctx) {
    const Acc *a = x, *b = y;
    double sign = *(const double *)ctx;
    double va = sign * a->sum / a->count, vb = sign * b->sum / b->count;
    if (va != vb) return va > vb ? -1 : 1;
    return strcmp(a->w, b->w);
}
static int cmp_count(const void *x, const void *y, void *ctx) {
    (void)ctx;
    const Acc *a = x, *b = y;
    if (a->count != b->count) return a->count > b->count ? -1 : 1;
    return strcmp(a->w, b->w);
}

/* Up to n entries of t (sorted already) passing keep, as owned MilesTopicWord. */
static int take_words(const AccTab *t, int n, int mode, MilesTopicWord **out, int *n_out) {
    *out = NULL;
    *n_out = 0;
    MilesTopicWord *w = miles_calloc(n > 0 ? n : 1, sizeof *w);
    if (!w) return MILES_ENOMEM;
    int k = 0;
    for (int i = 0; i < t->n && k < n; i++) {
        double mean = t->a[i].sum / t->a[i].count;
        if (mode > 0 && !(mean > 0)) continue;
        if (mode < 0 && !(mean < 0)) continue;
        if (!(w[k].word = strdup(t->a[i].w))) {
            for (int j = 0; j < k; j++) free(w[j].word);
            free(w);
            return miles_error(MILES_ENOMEM, "out of memory");
        }
        w[k].value = mode ? mean : t->a[i].count;
        w[k].count = t->a[i].count;
        k++;
    }
    *out = w;
    *n_out = k;
    return MILES_OK;
}

static int cmp_match(const void *x, const void *y, void *ctx) {
    (void)ctx;
    const MilesTopicMatch *a = x, *b = y;
    if (a->score != b->score) return a->score > b->score ? -1 : 1;
    return (a->index > b->index) - (a->index < b->index);
}

MILES_API void miles_topic_free(MilesTopic *t) {
    if (!t) return;
    free(t->matches);
    MilesTopicWord *lists[3] = {t->top_words, t->words_up, t->words_down};
    int ns[3] = {t->n_top_words, t->n_up, t->n_down};
    for (int l = 0; l < 3; l++) {
        for (int i = 0; i < ns[l]; i++) free(lists[l][i].word);
        free(lists[l]);
    }
    free(t);
}

/* Attributions of the explained top titles: words and features. */
static int topic_attributions(MilesPredictor *p, const MilesRecord *recs, MilesTopic *t, const MilesTopicOptions *o) {
    int ne = o->explain_top < t->n_top ? o->explain_top : t->n_top;
    if (ne <= 0) return MILES_OK;
    MilesExplainConfig cfg;
    miles_predictor_explain_config(p, &cfg);
    cfg.steps = o->explain_steps;
    AccTab words = {0};
    int s = MILES_OK;
    for (int i = 0; i < ne && s == MILES_OK; i++) {
        MilesRecordExplanation *e = NULL;
        s = miles_predictor_explain(p, &recs[t->matches[i].index], &cfg, &e);
        if (s != MILES_OK) { s = miles_error_prefix(s, "record %d", t->matches[i].index); break; }
        for (int f = 0; f < MILES_NUM_FEATURES; f++) t->feature_attr[f] += e->ig->features[f];
        for (int w = 0; w < e->n_words && s == MILES_OK; w++) {
            /* a word piece run may hold punctuation: keep the ASCII word part */
            char buf[128];
            size_t pos = 0;
            if (e->words[w].text[0] == '[') continue; /* [UNK] and other special tokens are no words */
            if (!ideas_next_word(e->words[w].text, &pos, buf, sizeof buf)) continue;
            if (strlen(buf) < 2 || ideas_is_stopword(buf)) continue;
            s = acc_add(&words, buf, e->words[w].attribution);
        }
        miles_record_explanation_free(e);
        t->n_explained++;
    }
    if (s == MILES_OK) {
        for (int f = 0; f < MILES_NUM_FEATURES; f++) t->feature_attr[f] /= t->n_explained;
        double up = 1, down = -1;
        s = miles_sort_r(words.a, words.n, sizeof(Acc), cmp_acc, &up);
        if (s == MILES_OK) s = take_words(&words, o->n_words, 1, &t->words_up, &t->n_up);
        if (s == MILES_OK) s = miles_sort_r(words.a, words.n, sizeof(Acc), cmp_acc, &down);
        if (s == MILES_OK) s = take_words(&words, o->n_words, -1, &t->words_down, &t->n_down);
    }
    acc_free(&words);
    return s;
}

MILES_API int miles_topic_analyze(MilesPredictor *p, const MilesRecord *recs, int n, const char *topic,
                                  const MilesTopicOptions *opt, MilesTopic **out) {
    if (!p || !out || n < 0 || (n > 0 && !recs)) return miles_error(MILES_EINVAL, "miles_topic_analyze: bad arguments");
    *out = NULL;
    MilesTopicOptions o;
    if (opt) o = *opt;
    else miles_topic_options_default(&o);
    if (o.top_n < 1 || o.max_matches < 1 || o.explain_top < 0 || o.explain_steps < 1 || o.explain_steps > 4096 ||
        o.n_words < 0)
        return miles_error(MILES_EINVAL, "topic options out of range (top_n %d, max_matches %d, explain_top %d, "
                           "explain_steps %d, n_words %d)", o.top_n, o.max_matches, o.explain_top, o.explain_steps, o.n_words);
    MilesTopic *t = miles_calloc(1, sizeof *t);
    if (!t) return MILES_ENOMEM;
    t->n_records = n;
    t->avg_duration = NAN;
    int *idx = miles_malloc(sizeof(int) * (n ? n : 1));
    MilesRecord *sel = miles_malloc(sizeof(MilesRecord) * (n ? n : 1));
    MilesPrediction *pr = miles_malloc(sizeof(MilesPrediction) * (n ? n : 1));
    int s = idx && sel && pr ? MILES_OK : MILES_ENOMEM;
    int m = 0;
    for (int i = 0; i < n && s == MILES_OK; i++) {
        const char *title = ideas_record_get(&recs[i], "title");
        if (!title) s = miles_error(MILES_EMISSING, "record %d: field 'title' is required", i);
        else if (miles_topic_match(title, topic)) { idx[m] = i; sel[m] = recs[i]; m++; }
    }
    if (s == MILES_OK && m > 0) {
        s = miles_predictor_predict(p, sel, m, pr);
        if (s != MILES_OK) {
            /* name the caller's record, not the position among the matches */
            int k;
            const char *msg = miles_last_error(), *rest;
            if (sscanf(msg, "record %d: ", &k) == 1 && k >= 0 && k < m && (rest = strstr(msg, ": "))) {
                char buf[1024];
                snprintf(buf, sizeof buf, "%s", rest + 2);
                s = miles_error(s, "record %d: %s", idx[k], buf);
            }
        }
    }
    if (s == MILES_OK) {
        t->n_matched = m;
        t->matches = miles_malloc(sizeof(MilesTopicMatch) * (m ? m : 1));
        if (!t->matches) s = MILES_ENOMEM;
    }
    if (s == MILES_OK) {
        for (int i = 0; i < m; i++) t->matches[i] = (MilesTopicMatch){idx[i], pr[i].viral_score, pr[i].predicted_velocity};
        s = miles_sort_r(t->matches, m, sizeof(MilesTopicMatch), cmp_match, NULL);
        t->n_matches = m < o.max_matches ? m : o.max_matches;
    }
    free(idx); free(sel); free(pr);

    /* the original's patterns on the best ones */
    AccTab top = {0};
    if (s == MILES_OK) {
        t->n_top = t->n_matches < o.top_n ? t->n_matches : o.top_n;
        int n_dur = 0;
        double sum_len = 0, sum_score = 0, sum_dur = 0;
        for (int i = 0; i < t->n_top && s == MILES_OK; i++) {
            const MilesRecord *r = &recs[t->matches[i].index];
            const char *title = ideas_record_get(r, "title");
            int64_t L = miles_utf8_length(title);
            sum_len += L > 0 ? (double)L : 0;
            sum_score += t->matches[i].score;
            /* the duration as given (seed column or the original API's field) */
            const char *dv = ideas_record_get(r, "duration_sec");
            if (!dv || !*dv) dv = ideas_record_get(r, "duration_seconds");
            char *end;
            double d = dv && *dv ? strtod(dv, &end) : NAN;
            if (dv && *dv && end != dv && isfinite(d) && d >= 0) { sum_dur += d; n_dur++; }
            char w[128];
            size_t pos = 0;
            while (s == MILES_OK && ideas_next_word(title, &pos, w, sizeof w))
                if (strlen(w) > 3 && !ideas_is_stopword(w)) s = acc_add(&top, w, 0);
        }
        if (t->n_top > 0) {
            t->avg_title_length = sum_len / t->n_top;
            t->avg_score = sum_score / t->n_top;
        }
        if (n_dur > 0) t->avg_duration = sum_dur / n_dur;
        if (s == MILES_OK) s = miles_sort_r(top.a, top.n, sizeof(Acc), cmp_count, NULL);
        if (s == MILES_OK) s = take_words(&top, o.n_words, 0, &t->top_words, &t->n_top_words);
    }
    acc_free(&top);
    if (s == MILES_OK) s = topic_attributions(p, recs, t, &o);
    if (s != MILES_OK) { miles_topic_free(t); return s; }
    *out = t;
    return MILES_OK;
}
