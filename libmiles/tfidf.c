/*
 * tfidf.c — scikit-learn TfidfVectorizer, re-implemented exactly.
 *
 * Pipeline (sklearn 1.2 feature_extraction/text.py):
 *   preprocess: Python str.lower() (when lowercase)
 *   tokenize:   token_pattern r"(?u)\b\w\w+\b" = maximal runs of >= 2 word
 *               characters; Python's \w on str is str.isalnum() or '_', which
 *               for Unicode 14 is exactly general category L* or N*, or '_'
 *               (checked over all code points by hand; marks Mn/Mc break words)
 *   stop words: sklearn ENGLISH_STOP_WORDS removed, then n-grams joined by ' '
 *   fit:        df per term; keep min_df <= df <= max_df; if more than
 *               max_features remain, keep the max_features largest corpus counts
 *               (ties: alphabetical order, i.e. a stable sort; sklearn uses
 *               numpy's unstable argsort there); vocabulary sorted by code point
 *   idf:        ln((1 + n) / (1 + df)) + 1 (smooth_idf) or ln(n / df) + 1
 *   transform:  counts (or 1 + ln(count) when sublinear_tf) * idf, then each
 *               row divided by its L2 (or L1) norm when that norm is non-zero.
 */
#include "internal.h"

#include <math.h>
#include <utf8proc.h>

#include "baseline_internal.h"

/* sklearn.feature_extraction.text.ENGLISH_STOP_WORDS (scikit-learn 1.2.1), 318
 * words, sorted by code point; tests/test_baseline.c checks it against the list
 * tests/gen_baseline_fixture.py dumps from sklearn. */
#define N_STOP_WORDS 318
static const char *const stop_words[N_STOP_WORDS] = {
    "a", "about", "above", "across", "after", "afterwards",
    "again", "against", "all", "almost", "alone", "along",
    "already", "also", "although", "always", "am", "among",
    "amongst", "amoungst", "amount", "an", "and", "another",
    "any", "anyhow", "anyone", "anything", "anyway", "anywhere",
    "are", "around", "as", "at", "back", "be",
    "became", "because", "become", "becomes", "becoming", "been",
    "before", "beforehand", "behind", "being", "below", "beside",
    "besides", "between", "beyond", "bill", "both", "bottom",
    "but", "by", "call", "can", "cannot", "cant",
    "co", "con", "could", "couldnt", "cry", "de",
    "describe", "detail", "do", "done", "down", "due",
    "during", "each", "eg", "eight", "either", "eleven",
    "else", "elsewhere", "empty", "enough", "etc", "even",
    "ever", "every", "everyone", "everything", "everywhere", "except",
    "few", "fifteen", "fifty", "fill", "find", "fire",
    "first", "five", "for", "former", "formerly", "forty",
    "found", "four", "from", "front", "full", "further",
    "get", "give", "go", "had", "has", "hasnt",
    "have", "he", "hence", "her", "here", "hereafter",
    "hereby", "herein", "hereupon", "hers", "herself", "him",
    "himself", "his", "how", "however", "hundred", "i",
    "ie", "if", "in", "inc", "indeed", "interest",
    "into", "is", "it", "its", "itself", "keep",
    "last", "latter", "latterly", "least", "less", "ltd",
    "made", "many", "may", "me", "meanwhile", "might",
    "mill", "mine", "more", "moreover", "most", "mostly",
    "move", "much", "must", "my", "myself", "name",
    "namely", "neither", "never", "nevertheless", "next", "nine",
    "no", "nobody", "none", "noone", "nor", "not",
    "nothing", "now", "nowhere", "of", "off", "often",
    "on", "once", "one", "only", "onto", "or",
    "other", "others", "otherwise", "our", "ours", "ourselves",
    "out", "over", "own", "part", "per", "perhaps",
    "please", "put", "rather", "re", "same", "see",
    "seem", "seemed", "seeming", "seems", "serious", "several",
    "she", "should", "show", "side", "since", "sincere",
    "six", "sixty", "so", "some", "somehow", "someone",
    "something", "sometime", "sometimes", "somewhere", "still", "such",
    "system", "take", "ten", "than", "that", "the",
    "their", "them", "themselves", "then", "thence", "there",
    "thereafter", "thereby", "therefore", "therein", "thereupon", "these",
    "they", "thick", "thin", "third", "this", "those",
    "though", "three", "through", "throughout", "thru", "thus",
    "to", "together", "too", "top", "toward", "towards",
    "twelve", "twenty", "two", "un", "under", "until",
    "up", "upon", "us", "very", "via", "was",
    "we", "well", "were", "what", "whatever", "when",
    "whence", "whenever", "where", "whereafter", "whereas", "whereby",
    "wherein", "whereupon", "wherever", "whether", "which", "while",
    "whither", "who", "whoever", "whole", "whom", "whose",
    "why", "will", "with", "within", "without", "would",
    "yet", "you", "your", "yours", "yourself", "yourselves",
};

const char *const *miles_tfidf_stop_words(int *count) {
    if (count) *count = N_STOP_WORDS;
    return stop_words;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int is_stop_word(const char *w) {
    return bsearch(&w, stop_words, N_STOP_WORDS, sizeof stop_words[0], cmp_str) != NULL;
}

void miles_tfidf_config_default(MilesTfidfConfig *c) {
    memset(c, 0, sizeof *c);
    c->max_features = 5000;
    c->ngram_min = c->ngram_max = 1;
    c->lowercase = 1;
    c->stop_words_english = 1;
    c->min_df = 2; c->min_df_is_fraction = 0;
    c->max_df = 0.95; c->max_df_is_fraction = 1;
    c->use_idf = 1; c->smooth_idf = 1; c->sublinear_tf = 0;
    c->norm = MILES_NORM_L2;
}

static int check_config(const MilesTfidfConfig *c) {
    if (c->max_features < 0) return miles_error(MILES_EINVAL, "tfidf: max_features = %d < 0", c->max_features);
    if (c->ngram_min < 1 || c->ngram_max < c->ngram_min || c->ngram_max > 16)
        return miles_error(MILES_EINVAL, "tfidf: ngram_range (%d, %d) invalid", c->ngram_min, c->ngram_max);
    if (c->norm < MILES_NORM_NONE || c->norm > MILES_NORM_L2)
        return miles_error(MILES_EINVAL, "tfidf: norm = %d", c->norm);
    if (!(c->min_df >= 0) || !(c->max_df >= 0) ||
        (c->min_df_is_fraction && c->min_df > 1) || (c->max_df_is_fraction && c->max_df > 1))
        return miles_error(MILES_EINVAL, "tfidf: min_df %g / max_df %g out of range (a fraction "
                           "must be in [0,1], a count >= 0)", c->min_df, c->max_df);
    if ((!c->min_df_is_fraction && c->min_df != floor(c->min_df)) ||
        (!c->max_df_is_fraction && c->max_df != floor(c->max_df)))
        return miles_error(MILES_EINVAL, "tfidf: a document-count min_df/max_df must be an integer");
    return MILES_OK;
}

/* ---- Python str.lower() and \w (pystr.c) ------------------------------ */

/* Decode UTF-8 into code points, lowercased like Python's str.lower() when
 * asked; *out (malloc'd) gets *nout code points. */
static int decode_lower(const char *s, size_t len, int lowercase, int doc, int32_t **out,
                        size_t *nout) {
    /* U+0130 lowers to two code points: at most 2 per input byte */
    int32_t *cp = miles_malloc((2 * len + 1) * sizeof *cp);
    if (!cp) return MILES_ENOMEM;
    size_t n = 0, pos = 0;
    while (pos < len) {
        int32_t c;
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + pos,
                                              (utf8proc_ssize_t)(len - pos), &c);
        if (k <= 0 || c < 0) {
            free(cp);
            return miles_error(MILES_EFORMAT, "tfidf: document %d: invalid UTF-8 at byte %zu",
                               doc, pos);
        }
        pos += (size_t)k;
        cp[n++] = c;
    }
    if (lowercase) {
        size_t m = 0;
        int32_t *lc = miles_malloc((2 * n + 1) * sizeof *lc);
        if (!lc) { free(cp); return MILES_ENOMEM; }
        for (size_t i = 0; i < n; i++) {
            int32_t c = cp[i];
            if (c == 0x130) { lc[m++] = 0x69; lc[m++] = 0x307; continue; }
            if (c == 0x3A3) { lc[m++] = miles_py_lower_sigma(cp, 0, (int64_t)i, (int64_t)n); continue; }
            lc[m++] = utf8proc_tolower(c);
        }
        free(cp);
        cp = lc;
        n = m;
    }
    *out = cp;
    *nout = n;
    return MILES_OK;
}

/* ---- analyzer: document -> list of terms (malloc'd strings) ----------- */

typedef struct Terms { char **v; int n, cap; } Terms;

static void terms_clear(Terms *t) {
    for (int i = 0; i < t->n; i++) free(t->v[i]);
    t->n = 0;
}
static void terms_free(Terms *t) { terms_clear(t); free(t->v); memset(t, 0, sizeof *t); }
static int terms_push(Terms *t, char *s) {
    if (!s) return MILES_ENOMEM;
    if (t->n == t->cap) {
        int nc = t->cap ? 2 * t->cap : 64;
        char **nv = realloc(t->v, (size_t)nc * sizeof *nv);
        if (!nv) { free(s); return miles_error(MILES_ENOMEM, "tfidf: out of memory"); }
        t->v = nv; t->cap = nc;
    }
    t->v[t->n++] = s;
    return MILES_OK;
}

static int analyze(const MilesTfidfConfig *cfg, const char *doc, int doc_index, Terms *out) {
    terms_clear(out);
    if (!doc) return miles_error(MILES_EINVAL, "tfidf: document %d is NULL", doc_index);
    int32_t *cp = NULL;
    size_t n = 0;
    MILES_TRY(decode_lower(doc, strlen(doc), cfg->lowercase, doc_index, &cp, &n));
    Terms toks = {0};
    int s = MILES_OK;
    uint8_t buf[4];
    for (size_t i = 0; i < n && s == MILES_OK;) {
        if (!miles_py_isword(cp[i])) { i++; continue; }
        size_t j = i;
        while (j < n && miles_py_isword(cp[j])) j++;
        if (j - i >= 2) {
            char *w = miles_malloc(4 * (j - i) + 1);
            if (!w) { s = MILES_ENOMEM; break; }
            size_t len = 0;
            for (size_t q = i; q < j; q++) {
                utf8proc_ssize_t k = utf8proc_encode_char(cp[q], buf);
                memcpy(w + len, buf, (size_t)k);
                len += (size_t)k;
            }
            w[len] = 0;
            if (cfg->stop_words_english && is_stop_word(w)) free(w);
            else s = terms_push(&toks, w);
        }
        i = j;
    }
    free(cp);
    /* n-grams of the stop-word-filtered tokens, sklearn _word_ngrams order */
    for (int nn = cfg->ngram_min; nn <= cfg->ngram_max && s == MILES_OK; nn++) {
        for (int i = 0; i + nn <= toks.n && s == MILES_OK; i++) {
            if (nn == 1) { s = terms_push(out, strdup(toks.v[i])); continue; }
            size_t len = 0;
            for (int q = 0; q < nn; q++) len += strlen(toks.v[i + q]) + 1;
            char *g = miles_malloc(len);
            if (!g) { s = MILES_ENOMEM; break; }
            g[0] = 0;
            size_t off = 0;
            for (int q = 0; q < nn; q++) {
                size_t l = strlen(toks.v[i + q]);
                if (q) g[off++] = ' ';
                memcpy(g + off, toks.v[i + q], l);
                off += l;
            }
            g[off] = 0;
            s = terms_push(out, g);
        }
    }
    terms_free(&toks);
    return s;
}

/* ---- string -> id hash map ------------------------------------------- */

typedef struct StrMap { char **key; int *val; size_t cap, n; } StrMap;

static uint64_t hash_str(const char *s) {
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++) { h ^= (unsigned char)*s; h *= 1099511628211ULL; }
    return h;
}
static void map_free(StrMap *m) { free(m->key); free(m->val); memset(m, 0, sizeof *m); }
static int map_init(StrMap *m, size_t cap) {
    memset(m, 0, sizeof *m);
    m->cap = 16;
    while (m->cap < 2 * cap) m->cap *= 2;
    m->key = miles_calloc(m->cap, sizeof *m->key);
    m->val = miles_calloc(m->cap, sizeof *m->val);
    if (!m->key || !m->val) { map_free(m); return MILES_ENOMEM; }
    return MILES_OK;
}
/* Slot of key (existing or the empty one where it goes). */
static size_t map_slot(const StrMap *m, const char *k) {
    size_t i = hash_str(k) & (m->cap - 1);
    while (m->key[i] && strcmp(m->key[i], k) != 0) i = (i + 1) & (m->cap - 1);
    return i;
}
static int map_get(const StrMap *m, const char *k) {
    if (!m->cap) return -1;
    size_t i = map_slot(m, k);
    return m->key[i] ? m->val[i] : -1;
}
/* Insert (the map borrows k); grows at load 1/2. */
static int map_put(StrMap *m, char *k, int v) {
    if (2 * (m->n + 1) > m->cap) {
        StrMap g;
        MILES_TRY(map_init(&g, m->cap));
        for (size_t i = 0; i < m->cap; i++)
            if (m->key[i]) {
                size_t j = map_slot(&g, m->key[i]);
                g.key[j] = m->key[i]; g.val[j] = m->val[i]; g.n++;
            }
        map_free(m);
        *m = g;
    }
    size_t i = map_slot(m, k);
    if (!m->key[i]) m->n++;
    m->key[i] = k; m->val[i] = v;
    return MILES_OK;
}

/* ---- the vectorizer -------------------------------------------------- */

struct MilesTfidf {
    MilesTfidfConfig cfg;
    int V;
    char **terms;    /* [V] sorted */
    double *idf;     /* [V] */
    StrMap index;    /* term -> column */
};

void miles_tfidf_free(MilesTfidf *t) {
    if (!t) return;
    for (int i = 0; i < t->V; i++) free(t->terms[i]);
    free(t->terms); free(t->idf);
    map_free(&t->index);
    free(t);
}

int miles_tfidf_vocab_size(const MilesTfidf *t) { return t ? t->V : 0; }
const char *miles_tfidf_term(const MilesTfidf *t, int i) {
    return (t && i >= 0 && i < t->V) ? t->terms[i] : NULL;
}
double miles_tfidf_idf(const MilesTfidf *t, int i) {
    return (t && i >= 0 && i < t->V) ? t->idf[i] : NAN;
}
int miles_tfidf_lookup(const MilesTfidf *t, const char *term) {
    return (t && term) ? map_get(&t->index, term) : -1;
}
const MilesTfidfConfig *miles_tfidf_config_of(const MilesTfidf *t) { return &t->cfg; }

/* Build a fitted vectorizer from parts (used by fit and by the JSON loader);
 * takes ownership of terms[] and idf[] (freed on failure too). */
int miles_tfidf_from_parts(MilesTfidf **out, const MilesTfidfConfig *cfg, char **terms,
                           double *idf, int V) {
    *out = NULL;
    MilesTfidf *t = miles_calloc(1, sizeof *t);
    if (!t) {
        for (int i = 0; i < V; i++) free(terms[i]);
        free(terms); free(idf);
        return MILES_ENOMEM;
    }
    t->cfg = *cfg; t->terms = terms; t->idf = idf; t->V = V;
    int s = map_init(&t->index, (size_t)V);
    for (int i = 0; i < V && s == MILES_OK; i++) {
        if (i > 0 && strcmp(terms[i - 1], terms[i]) >= 0)
            s = miles_error(MILES_EFORMAT, "tfidf: vocabulary not sorted/unique at %d (\"%s\")",
                            i, terms[i]);
        else s = map_put(&t->index, terms[i], i);
    }
    if (s != MILES_OK) { miles_tfidf_free(t); return s; }
    *out = t;
    return MILES_OK;
}

typedef struct TermStat { char *term; int64_t df, tf; int keep; } TermStat;

static int cmp_stat_term(const void *a, const void *b) {
    return strcmp(((const TermStat *)a)->term, ((const TermStat *)b)->term);
}
static int cmp_idx_tf_desc(const void *a, const void *b, void *ctx) {
    const TermStat *stats = ctx;
    int i = *(const int *)a, j = *(const int *)b;
    if (stats[i].tf != stats[j].tf) return stats[i].tf > stats[j].tf ? -1 : 1;
    return (i > j) - (i < j);   /* stable: alphabetical order among ties */
}
static int cmp_int(const void *a, const void *b) {
    return (*(const int *)a > *(const int *)b) - (*(const int *)a < *(const int *)b);
}

int miles_tfidf_fit(MilesTfidf **out, const char *const *docs, int n, const MilesTfidfConfig *cfg) {
    *out = NULL;
    MilesTfidfConfig dflt;
    if (!cfg) { miles_tfidf_config_default(&dflt); cfg = &dflt; }
    MILES_TRY(check_config(cfg));
    if (n <= 0 || !docs) return miles_error(MILES_EINVAL, "tfidf_fit: no documents (n = %d)", n);
    StrMap map;
    MILES_TRY(map_init(&map, 1024));
    TermStat *st = NULL;
    int nst = 0, cst = 0, s = MILES_OK;
    int *seen = NULL, nseen = 0, cseen = 0;
    Terms terms = {0};
    /* corpus pass: df (distinct docs) and total count per term */
    for (int d = 0; d < n && s == MILES_OK; d++) {
        s = analyze(cfg, docs[d], d, &terms);
        nseen = 0;
        for (int i = 0; i < terms.n && s == MILES_OK; i++) {
            int id = map_get(&map, terms.v[i]);
            if (id < 0) {
                if (nst == cst) {
                    int nc = cst ? 2 * cst : 1024;
                    TermStat *ns = realloc(st, (size_t)nc * sizeof *ns);
                    if (!ns) { s = miles_error(MILES_ENOMEM, "tfidf_fit: out of memory"); break; }
                    st = ns; cst = nc;
                }
                id = nst;
                st[nst].term = terms.v[i]; st[nst].df = 0; st[nst].tf = 0; st[nst].keep = 1;
                terms.v[i] = NULL;   /* the stats own the string now */
                nst++;
                s = map_put(&map, st[id].term, id);
                if (s != MILES_OK) break;
            }
            st[id].tf++;
            if (nseen == cseen) {
                int nc = cseen ? 2 * cseen : 256;
                int *ns = realloc(seen, (size_t)nc * sizeof *ns);
                if (!ns) { s = miles_error(MILES_ENOMEM, "tfidf_fit: out of memory"); break; }
                seen = ns; cseen = nc;
            }
            seen[nseen++] = id;
        }
        if (s != MILES_OK) break;
        if (nseen > 1) qsort(seen, (size_t)nseen, sizeof *seen, cmp_int);
        for (int i = 0; i < nseen; i++)
            if (i == 0 || seen[i] != seen[i - 1]) st[seen[i]].df++;
    }
    terms_free(&terms);
    free(seen);
    map_free(&map);
    if (s == MILES_OK && nst == 0)
        s = miles_error(MILES_EINVAL, "tfidf_fit: empty vocabulary; perhaps the documents only "
                        "contain stop words");
    double hi = cfg->max_df_is_fraction ? cfg->max_df * n : cfg->max_df;
    double lo = cfg->min_df_is_fraction ? cfg->min_df * n : cfg->min_df;
    if (s == MILES_OK && hi < lo)
        s = miles_error(MILES_EINVAL, "tfidf_fit: max_df corresponds to fewer documents (%g) "
                        "than min_df (%g)", hi, lo);
    int V = 0;
    char **vt = NULL;
    double *idf = NULL;
    if (s == MILES_OK) {
        qsort(st, (size_t)nst, sizeof *st, cmp_stat_term);
        int kept = 0;
        for (int i = 0; i < nst; i++) {
            st[i].keep = (double)st[i].df <= hi && (double)st[i].df >= lo;
            kept += st[i].keep;
        }
        if (cfg->max_features > 0 && kept > cfg->max_features) {
            int *idx = miles_malloc((size_t)kept * sizeof *idx);
            if (!idx) s = MILES_ENOMEM;
            else {
                int k = 0;
                for (int i = 0; i < nst; i++) if (st[i].keep) idx[k++] = i;
                if (miles_sort_r(idx, (size_t)kept, sizeof *idx, cmp_idx_tf_desc, st) != MILES_OK) s = MILES_ENOMEM;
                for (int i = cfg->max_features; i < kept; i++) st[idx[i]].keep = 0;
                kept = cfg->max_features;
                free(idx);
            }
        }
        if (s == MILES_OK && kept == 0)
            s = miles_error(MILES_EINVAL, "tfidf_fit: after pruning, no terms remain; try a "
                            "lower min_df or a higher max_df");
        if (s == MILES_OK) {
            vt = miles_malloc((size_t)kept * sizeof *vt);
            idf = miles_malloc((size_t)kept * sizeof *idf);
            if (!vt || !idf) { free(vt); free(idf); vt = NULL; idf = NULL; s = MILES_ENOMEM; }
        }
        if (s == MILES_OK) {
            for (int i = 0; i < nst; i++) {
                if (!st[i].keep) continue;
                /* sklearn TfidfTransformer.fit: df += smooth, n += smooth,
                 * idf = log(n / df) + 1 */
                double df = (double)st[i].df + (cfg->smooth_idf ? 1 : 0);
                double ns = (double)n + (cfg->smooth_idf ? 1 : 0);
                idf[V] = cfg->use_idf ? log(ns / df) + 1.0 : 1.0;
                vt[V++] = st[i].term;
                st[i].term = NULL;
            }
        }
    }
    for (int i = 0; i < nst; i++) free(st[i].term);
    free(st);
    if (s != MILES_OK) return s;
    return miles_tfidf_from_parts(out, cfg, vt, idf, V);
}

void miles_csr_free(MilesCsr *m) {
    if (!m) return;
    free(m->indptr); free(m->indices); free(m->data);
    memset(m, 0, sizeof *m);
}

typedef struct ColVal { int32_t col; double v; } ColVal;
static int cmp_colval(const void *a, const void *b) {
    return (((const ColVal *)a)->col > ((const ColVal *)b)->col) -
           (((const ColVal *)a)->col < ((const ColVal *)b)->col);
}

int miles_tfidf_transform(const MilesTfidf *t, const char *const *docs, int n, MilesCsr *out) {
    memset(out, 0, sizeof *out);
    if (!t) return miles_error(MILES_EINVAL, "tfidf_transform: NULL vectorizer");
    if (n < 0 || (n > 0 && !docs)) return miles_error(MILES_EINVAL, "tfidf_transform: n = %d", n);
    const MilesTfidfConfig *cfg = &t->cfg;
    out->rows = n; out->cols = t->V;
    out->indptr = miles_calloc((size_t)n + 1, sizeof *out->indptr);
    if (!out->indptr) return MILES_ENOMEM;
    size_t cap = 0, nnz = 0;
    Terms terms = {0};
    ColVal *row = NULL;
    size_t rcap = 0;
    int s = MILES_OK;
    for (int d = 0; d < n && s == MILES_OK; d++) {
        s = analyze(cfg, docs[d], d, &terms);
        if (s != MILES_OK) break;
        if ((size_t)terms.n > rcap) {
            rcap = (size_t)terms.n * 2;
            ColVal *nr = realloc(row, rcap * sizeof *nr);
            if (!nr) { s = miles_error(MILES_ENOMEM, "tfidf_transform: out of memory"); break; }
            row = nr;
        }
        size_t k = 0;
        for (int i = 0; i < terms.n; i++) {
            int c = map_get(&t->index, terms.v[i]);
            if (c >= 0) { row[k].col = c; row[k].v = 1; k++; }
        }
        if (k > 1) qsort(row, k, sizeof *row, cmp_colval);
        size_t m = 0;   /* merge duplicates into counts */
        for (size_t i = 0; i < k; i++) {
            if (m > 0 && row[m - 1].col == row[i].col) row[m - 1].v += 1;
            else row[m++] = row[i];
        }
        double norm = 0;
        for (size_t i = 0; i < m; i++) {
            double v = row[i].v;
            if (cfg->sublinear_tf) v = log(v) + 1.0;
            v *= t->idf[row[i].col];
            row[i].v = v;
            norm += cfg->norm == MILES_NORM_L2 ? v * v : fabs(v);
        }
        if (cfg->norm == MILES_NORM_L2) norm = sqrt(norm);
        if (cfg->norm != MILES_NORM_NONE && norm > 0)
            for (size_t i = 0; i < m; i++) row[i].v /= norm;
        if (nnz + m > cap) {
            size_t nc = (nnz + m) * 2 + 64;
            int32_t *ni = realloc(out->indices, nc * sizeof *ni);
            if (ni) out->indices = ni;
            double *nd = realloc(out->data, nc * sizeof *nd);
            if (nd) out->data = nd;
            if (!ni || !nd) { s = miles_error(MILES_ENOMEM, "tfidf_transform: out of memory"); break; }
            cap = nc;
        }
        for (size_t i = 0; i < m; i++) {
            out->indices[nnz] = row[i].col;
            out->data[nnz++] = row[i].v;
        }
        out->indptr[d + 1] = (int64_t)nnz;
    }
    terms_free(&terms);
    free(row);
    if (s != MILES_OK) miles_csr_free(out);
    return s;
}
