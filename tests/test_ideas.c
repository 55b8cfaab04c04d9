/*
 * test_ideas.c — the topic view and the model-scored title suggestions
 * (libmiles/ideas*.c).
 *
 * A tiny random model with the scaler of a prepared synthetic set gives a real
 * predictor.  On the fixture tests/fixtures/ideas_candidates.csv:
 *   - topic matching (whole words, case, plural) and the ranking (scores equal
 *     the predictor's own, best first);
 *   - the original's patterns on a topic with 6 matches (so the top-10 set is
 *     known without the model): average title length 34.5 code points,
 *     average duration 41.5 s, top words counted by hand;
 *   - the topic attributions equal the mean of miles_predictor_explain over
 *     the explained titles; words_up > 0 > words_down;
 *   - suggestions: every one scores strictly above the draft (and re-scoring
 *     its title gives its score), work is bounded by max_variants, and the
 *     same seed gives the same answer;
 *   - tests/test_ideas.sh: miles-predict --topic (JSON, --table, --vibe,
 *     --llm-endpoint against tests/mock_llm.py) and miles-serve's GET /topic
 *     and POST /ideas on loopback.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miles.h"
#include "helpers.h"
#include "ideas_internal.h"

static char g_dir[64];
static MilesPredictor *g_pred;

/* ---- the fixture as owned records ---- */
typedef struct { int n, nrows; char **names; char ***rows; MilesRecord *recs; } Table;
static Table g_tab;

static int load_fixture(const char *path, Table *t) {
    MilesRecordReader *rd = NULL;
    if (miles_records_open_csv(&rd, path) != MILES_OK) return -1;
    const char *const *h = miles_records_header(rd, &t->n);
    t->names = calloc(t->n, sizeof(char *));
    for (int i = 0; i < t->n; i++) t->names[i] = strdup(h[i]);
    MilesRecord rec;
    int s;
    while ((s = miles_records_next(rd, &rec)) == 1) {
        t->rows = realloc(t->rows, sizeof(char **) * (t->nrows + 1));
        char **row = calloc(t->n, sizeof(char *));
        for (int i = 0; i < t->n; i++) row[i] = strdup(rec.values[i]);
        t->rows[t->nrows++] = row;
    }
    miles_records_close(rd);
    t->recs = calloc(t->nrows, sizeof(MilesRecord));
    for (int i = 0; i < t->nrows; i++)
        t->recs[i] = (MilesRecord){t->n, (const char *const *)t->names, (const char *const *)t->rows[i], NULL};
    return s == 0 ? 0 : -1;
}

static int setup(void **state) {
    (void)state;
    const char *vocab = test_find_vocab();
    if (!vocab) { fprintf(stderr, "no vocab fixture\n"); return -1; }
    if (test_mkdtemp(g_dir, sizeof g_dir, "ideas")) return -1;
    char csv[128], dat[128], ck[128];
    snprintf(csv, sizeof csv, "%s/synth.csv", g_dir);
    snprintf(dat, sizeof dat, "%s/data.milesdat", g_dir);
    snprintf(ck, sizeof ck, "%s/model.safetensors", g_dir);
    MilesPrepareOptions po;
    miles_prepare_options_default(&po);
    po.vocab_dir = vocab;
    po.max_len = 32;
    po.language = "any";
    MilesPrepareReport rep;
    MilesPrepared *prep = NULL;
    if (miles_synth_write_csv(csv, 400, 5) != MILES_OK || miles_data_prepare(csv, dat, &po, &rep) != MILES_OK ||
        miles_prepared_open(&prep, dat) != MILES_OK) {
        fprintf(stderr, "prepare: %s\n", miles_last_error());
        return -1;
    }
    MilesTokenizer *tok = NULL;
    if (miles_tokenizer_load(&tok, vocab) != MILES_OK) return -1;
    MilesConfig cfg;
    if (miles_config_preset(&cfg, "miles", "tiny") != MILES_OK) return -1;
    cfg.vocab_size = miles_tokenizer_vocab_size(tok);
    miles_tokenizer_free(tok);
    MilesModel *m = NULL;
    /* std 0.2: a random model whose scores differ visibly between titles */
    if (miles_model_build(&m, &cfg) != MILES_OK || miles_model_init_random(m, 3, 0.2f) != MILES_OK) return -1;
    char *cj = NULL;
    if (miles_config_to_json(&cfg, &cj) != MILES_OK) return -1;
    const char *keys[] = {"format", "config", "data", "tokenizer_hash", "text_clean", "vocab_dir", "decision_threshold"};
    const char *vals[] = {"miles-checkpoint-1", cj, miles_prepared_scaler_json(prep), miles_prepared_vocab_hash(prep),
                          "none", vocab, "0.5"};
    int s = miles_model_save(m, ck, 7, keys, vals);
    free(cj);
    miles_model_free(m);
    miles_prepared_free(prep);
    if (s != MILES_OK || miles_predictor_open(&g_pred, ck, NULL) != MILES_OK) {
        fprintf(stderr, "checkpoint: %s\n", miles_last_error());
        return -1;
    }
    return load_fixture("tests/fixtures/ideas_candidates.csv", &g_tab);
}

static int teardown(void **state) {
    (void)state;
    miles_predictor_free(g_pred);
    for (int i = 0; i < g_tab.nrows; i++) {
        for (int j = 0; j < g_tab.n; j++) free(g_tab.rows[i][j]);
        free(g_tab.rows[i]);
    }
    for (int j = 0; j < g_tab.n; j++) free(g_tab.names[j]);
    free(g_tab.rows); free(g_tab.names); free(g_tab.recs);
    test_rm_rf(g_dir);
    return 0;
}

static const char *title_of(const MilesRecord *r) {
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->names[i], "title")) return r->values[i];
    return NULL;
}

static void test_match(void **state) {
    (void)state;
    assert_int_equal(miles_topic_match("Spicy RAMEN challenge", "ramen"), 1);
    assert_int_equal(miles_topic_match("ramenx challenge", "ramen"), 0);
    assert_int_equal(miles_topic_match("Pasta recipes you need", "recipe"), 1);
    assert_int_equal(miles_topic_match("Pasta recipe", "Recipes"), 1);
    assert_int_equal(miles_topic_match("Street tacos at home", "tacos home"), 1);
    assert_int_equal(miles_topic_match("Street tacos at home", "tacos pizza"), 0);
    assert_int_equal(miles_topic_match("Tokyo on a budget vlog ✈️", "budget-vlog"), 1);
    assert_int_equal(miles_topic_match("anything", ""), 1);
    assert_int_equal(miles_topic_match("anything", NULL), 1);
}

/* Ranking and the original's patterns on the "ramen" topic (6 matches). */
static void test_topic_patterns(void **state) {
    (void)state;
    MilesTopicOptions o;
    miles_topic_options_default(&o);
    o.explain_top = 3;
    o.explain_steps = 8;
    MilesTopic *t = NULL;
    OK(miles_topic_analyze(g_pred, g_tab.recs, g_tab.nrows, "ramen", &o, &t));
    assert_int_equal(t->n_records, 15);
    assert_int_equal(t->n_matched, 6);
    assert_int_equal(t->n_top, 6);
    /* the matches: v01..v05 and v13, best first, scores = the predictor's own */
    int seen = 0;
    for (int i = 0; i < t->n_matches; i++) {
        int k = t->matches[i].index;
        assert_true(k <= 4 || k == 12);
        seen |= 1 << k;
        MilesPrediction pr;
        OK(miles_predictor_predict(g_pred, &g_tab.recs[k], 1, &pr));
        assert_true(fabs(pr.viral_score - t->matches[i].score) < 1e-6);
        if (i) assert_true(t->matches[i - 1].score >= t->matches[i].score);
        printf("  %d %.6f %s\n", i, t->matches[i].score, title_of(&g_tab.recs[k]));
    }
    assert_int_equal(seen, 0x1f | 1 << 12);
    assert_true(t->matches[0].score > t->matches[5].score); /* the ranking is not a tie */
    /* patterns (hand-computed on the six titles) */
    assert_true(fabs(t->avg_title_length - 34.5) < 1e-12);
    assert_true(fabs(t->avg_duration - 41.5) < 1e-12);
    double sum = 0;
    for (int i = 0; i < 6; i++) sum += t->matches[i].score;
    assert_true(fabs(t->avg_score - sum / 6) < 1e-12);
    static const char *words[] = {"ramen", "cheap", "challenge", "ending", "expensive", "fancy", "gone", "hack", "home", "insane"};
    static const int counts[] = {6, 2, 1, 1, 1, 1, 1, 1, 1, 1};
    assert_int_equal(t->n_top_words, 10);
    for (int i = 0; i < 10; i++) {
        assert_string_equal(t->top_words[i].word, words[i]);
        assert_int_equal(t->top_words[i].count, counts[i]);
    }
    /* attributions: the mean of the explanations of the top 3 */
    assert_int_equal(t->n_explained, 3);
    MilesExplainConfig cfg;
    miles_predictor_explain_config(g_pred, &cfg);
    cfg.steps = 8;
    double fa[MILES_NUM_FEATURES] = {0}, maxerr = 0;
    for (int i = 0; i < 3; i++) {
        MilesRecordExplanation *e = NULL;
        OK(miles_predictor_explain(g_pred, &g_tab.recs[t->matches[i].index], &cfg, &e));
        for (int f = 0; f < MILES_NUM_FEATURES; f++) fa[f] += e->ig->features[f] / 3.0;
        miles_record_explanation_free(e);
    }
    for (int f = 0; f < MILES_NUM_FEATURES; f++) maxerr = test_max_err(maxerr, fabs(fa[f] - t->feature_attr[f]));
    printf("  feature attribution max |diff| %.3g; %d words up, %d down\n", maxerr, t->n_up, t->n_down);
    assert_true(maxerr < 1e-6);
    assert_true(t->n_up + t->n_down > 0);
    for (int i = 0; i < t->n_up; i++) {
        assert_true(t->words_up[i].value > 0);
        if (i) assert_true(t->words_up[i - 1].value >= t->words_up[i].value);
    }
    for (int i = 0; i < t->n_down; i++) {
        assert_true(t->words_down[i].value < 0);
        if (i) assert_true(t->words_down[i - 1].value <= t->words_down[i].value);
    }
    miles_topic_free(t);

    /* plural matching and no match */
    OK(miles_topic_analyze(g_pred, g_tab.recs, g_tab.nrows, "recipe", NULL, &t));
    assert_int_equal(t->n_matched, 2);
    miles_topic_free(t);
    OK(miles_topic_analyze(g_pred, g_tab.recs, g_tab.nrows, "zebra", NULL, &t));
    assert_int_equal(t->n_matched, 0);
    assert_int_equal(t->n_top, 0);
    assert_true(isnan(t->avg_duration));
    miles_topic_free(t);
    /* the average duration: over the top titles that give one (duration_sec, else
     * duration_seconds; the predictor has refused negative or unparsable ones already) */
    {
        const char *dn[] = {"title", "duration_sec", "duration_seconds"};
        const char *d0[] = {"ramen night one", "12", ""}, *d1[] = {"ramen two", "", ""},
                   *d2[] = {"ramen three", "", "30"}, *d3[] = {"ramen four", "", ""}, *d4[] = {"ramen five", "", ""};
        MilesRecord dr[5] = {{3, dn, d0, NULL}, {3, dn, d1, NULL}, {3, dn, d2, NULL}, {3, dn, d3, NULL}, {3, dn, d4, NULL}};
        MilesTopicOptions to;
        miles_topic_options_default(&to);
        to.explain_top = 0;
        int rc = miles_topic_analyze(g_pred, dr, 5, "ramen", &to, &t);
        if (rc) fail_msg("%s", miles_last_error());
        printf("  durations 12, none, (30), none, none: average %g over %d top titles\n", t->avg_duration, t->n_top);
        assert_int_equal(t->n_top, 5);
        assert_true(t->avg_duration == 21.0);
        miles_topic_free(t);
        /* option limits: max_matches 1 and explain_steps 4096 pass, 4097 does not */
        to.max_matches = 1;
        to.explain_steps = 4096;
        OK(miles_topic_analyze(g_pred, dr, 5, "ramen", &to, &t));
        assert_int_equal(t->n_matched, 5);
        assert_int_equal(t->n_top, 1);
        miles_topic_free(t);
        to.explain_steps = 4097;
        assert_int_equal(miles_topic_analyze(g_pred, dr, 5, "ramen", &to, &t), MILES_EINVAL);
        assert_null(t);
    }
    /* a record without a title is refused, naming it */
    const char *nm[] = {"views"}, *vv[] = {"10"};
    MilesRecord bad[2] = {g_tab.recs[0], {1, nm, vv, NULL}};
    assert_int_equal(miles_topic_analyze(g_pred, bad, 2, "ramen", NULL, &t), MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "record 1"));
    /* a bad value in a match is named by the caller's index (record 2), not by
     * its place among the matches (0): records 0 and 1 do not match */
    const char *n3[] = {"title", "views"}, *v0[] = {"dogs at the park", "10"}, *v1[] = {"a zebra", "12"},
               *v2[] = {"ramen at midnight", "lots"};
    MilesRecord three[3] = {{2, n3, v0, NULL}, {2, n3, v1, NULL}, {2, n3, v2, NULL}};
    int rc = miles_topic_analyze(g_pred, three, 3, "ramen", NULL, &t);
    printf("  bad match: %s\n", miles_last_error());
    assert_int_not_equal(rc, MILES_OK);
    assert_null(t);
    assert_non_null(strstr(miles_last_error(), "record 2: "));
    assert_non_null(strstr(miles_last_error(), "views"));
    assert_null(strstr(miles_last_error(), "record 0"));
    /* options out of range */
    MilesTopicOptions bo;
    miles_topic_options_default(&bo);
    bo.top_n = 0;
    assert_int_equal(miles_topic_analyze(g_pred, g_tab.recs, g_tab.nrows, "ramen", &bo, &t), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "topic options out of range (top_n 0"));
}

static double score_title(const MilesRecord *draft, const char *title) {
    const char *nm[16], *vv[16];
    int k = 0;
    nm[k] = "title"; vv[k++] = title;
    for (int i = 0; i < draft->n && k < 16; i++)
        if (strcmp(draft->names[i], "title")) { nm[k] = draft->names[i]; vv[k++] = draft->values[i]; }
    MilesRecord r = {k, nm, vv, NULL};
    MilesPrediction pr;
    OK(miles_predictor_predict(g_pred, &r, 1, &pr));
    return pr.viral_score;
}

static void test_suggestions(void **state) {
    (void)state;
    MilesTopic *t = NULL;
    OK(miles_topic_analyze(g_pred, g_tab.recs, g_tab.nrows, "ramen", NULL, &t));
    int improved = 0, total = 0;
    for (int d = 0; d < g_tab.nrows; d++) {
        const MilesRecord *draft = &g_tab.recs[d];
        MilesSuggestOptions o;
        miles_suggest_options_default(&o);
        o.seed = (uint64_t)d;
        o.words = t->words_up;
        o.n_words = t->n_up;
        o.topic = "ramen";
        MilesSuggestions *s = NULL;
        OK(miles_suggest_titles(g_pred, draft, &o, &s));
        assert_true(s->n_scored <= o.max_variants && s->n_scored > 0);
        assert_true(s->n <= o.k);
        assert_true(fabs(s->draft_score - score_title(draft, title_of(draft))) < 1e-6);
        for (int i = 0; i < s->n; i++) {
            assert_true(s->items[i].score > s->draft_score);        /* never below (or equal to) the draft */
            assert_true(fabs(s->items[i].delta - (s->items[i].score - s->draft_score)) < 1e-12);
            assert_true(fabs(score_title(draft, s->items[i].title) - s->items[i].score) < 1e-6);
            assert_true(strcmp(s->items[i].title, title_of(draft)) != 0);
            assert_true(s->items[i].reason[0] != 0);
            /* a draft about the topic keeps it in every suggestion */
            if (miles_topic_match(title_of(draft), "ramen")) assert_int_equal(miles_topic_match(s->items[i].title, "ramen"), 1);
            if (i) assert_true(s->items[i - 1].score >= s->items[i].score);
        }
        if (d < 3)
            for (int i = 0; i < s->n; i++)
                printf("  %.4f -> %.4f (%+.4f) %s [%s]\n", s->draft_score, s->items[i].score, s->items[i].delta,
                       s->items[i].title, s->items[i].reason);
        improved += s->n > 0;
        total++;
        /* determinism: the same seed, the same answer */
        MilesSuggestions *s2 = NULL;
        OK(miles_suggest_titles(g_pred, draft, &o, &s2));
        assert_int_equal(s->n, s2->n);
        assert_int_equal(s->n_scored, s2->n_scored);
        for (int i = 0; i < s->n; i++) {
            assert_string_equal(s->items[i].title, s2->items[i].title);
            assert_string_equal(s->items[i].reason, s2->items[i].reason);
            assert_true(s->items[i].score == s2->items[i].score);
        }
        miles_suggestions_free(s2);
        /* bounded work */
        o.max_variants = 5;
        OK(miles_suggest_titles(g_pred, draft, &o, &s2));
        assert_true(s2->n_scored <= 5);
        for (int i = 0; i < s2->n; i++) assert_true(s2->items[i].score > s2->draft_score);
        miles_suggestions_free(s2);
        miles_suggestions_free(s);
    }
    printf("  %d of %d drafts got at least one better-scored variant\n", improved, total);
    assert_true(improved > 0); /* the property above is not vacuous */
    miles_topic_free(t);
    /* no title: refused */
    const char *nm[] = {"views"}, *vv[] = {"10"};
    MilesRecord bad = {1, nm, vv, NULL};
    MilesSuggestions *s = NULL;
    /* option limits: k >= 1, max_variants in [1, 4096], n_words >= 0 with words */
    const struct { int k, max_variants, n_words, rc; } lim[] = {
        {1, 1, 0, MILES_OK}, {1, 4096, 0, MILES_OK}, {0, 48, 0, MILES_EINVAL}, {5, 0, 0, MILES_EINVAL},
        {5, 4097, 0, MILES_EINVAL}, {5, 48, -1, MILES_EINVAL}, {5, 48, 1, MILES_EINVAL}};
    for (size_t i = 0; i < sizeof lim / sizeof *lim; i++) {
        MilesSuggestOptions o;
        miles_suggest_options_default(&o);
        o.k = lim[i].k;
        o.max_variants = lim[i].max_variants;
        o.n_words = lim[i].n_words;   /* words stays NULL */
        int rc = miles_suggest_titles(g_pred, &g_tab.recs[0], &o, &s);
        if (rc != lim[i].rc) fail_msg("k %d, max_variants %d, n_words %d: %s", o.k, o.max_variants, o.n_words,
                                      miles_status_name(rc));
        if (rc == MILES_OK) {
            assert_true(s->n <= 1 && s->n_scored <= o.max_variants);
            miles_suggestions_free(s);
            s = NULL;
        } else {
            assert_null(s);
            assert_non_null(strstr(miles_last_error(), "suggest options out of range"));
        }
    }
    assert_int_equal(miles_suggest_titles(g_pred, &bad, NULL, &s), MILES_EMISSING);
    assert_null(s);
}

/* The edit rules, without a model: every single edit of a title, in order. */
typedef struct { const char *title, *reason; } Edit;

static int expect_edits(const char *label, const char *draft, const char *t, const char *pre,
                        const MilesSuggestOptions *o, const Edit *want, int n_want) {
    char **ti = NULL, **re = NULL;
    int n = -1;
    OK(ideas_edits(draft, t, pre, o, &ti, &re, &n));
    printf("  %s: %d edits\n", label, n);
    int bad = n != n_want;
    for (int i = 0; i < n && i < n_want; i++)
        if (strcmp(ti[i], want[i].title) || strcmp(re[i], want[i].reason)) {
            printf("  edit %d: got \"%s\" [%s], want \"%s\" [%s]\n", i, ti[i], re[i], want[i].title, want[i].reason);
            bad = 1;
        }
    if (bad)   /* the whole list, as C, to compare (or, after a deliberate change, to paste) */
        for (int i = 0; i < n; i++) printf("    {\"%s\", \"%s\"},\n", ti[i], re[i]);
    for (int i = 0; i < n; i++) { free(ti[i]); free(re[i]); }
    free(ti);
    free(re);
    if (bad) printf("  %s: %d edits, want %d (listed above)\n", label, n, n_want);
    return bad;
}

static void test_edit_rules(void **state) {
    (void)state;
    MilesSuggestOptions o;
    miles_suggest_options_default(&o);
    MilesTopicWord words[1];
    memset(words, 0, sizeof words);
    words[0].word = "spicy";
    words[0].value = 0.12;
    o.words = words;
    o.n_words = 1;
    /* read off the rules by hand (hooks, the topic's words, filler words, the
     * first half, longer, emoji, punctuation, numbers), then checked here */
    const Edit plain[] = {
        {"POV: the best ramen in tokyo",
         "hook phrase \"POV:\""},
        {"Wait for it: the best ramen in tokyo",
         "hook phrase \"Wait for it:\""},
        {"How to the best ramen in tokyo",
         "hook phrase \"How to\""},
        {"Nobody tells you this: the best ramen in tokyo",
         "hook phrase \"Nobody tells you this:\""},
        {"I tried the best ramen in tokyo",
         "hook phrase \"I tried\""},
        {"Watch before you the best ramen in tokyo",
         "hook phrase \"Watch before you\""},
        {"the best ramen in tokyo #spicy",
         "added #spicy (attribution +0.12 in the topic's top titles)"},
        {"best ramen tokyo",
         "shorter: 2 filler words dropped"},
        {"the best ramen in",
         "shorter: first 4 words"},
        {"the best ramen in tokyo (in 60 seconds)",
         "longer: \"(in 60 seconds)\" added"},
        {"the best ramen in tokyo - the full guide",
         "longer: \"- the full guide\" added"},
        {"the best ramen in tokyo \xF0\x9F\x94\xA5",
         "emoji \xF0\x9F\x94\xA5 added"},
        {"the best ramen in tokyo \xF0\x9F\x98\xB1",
         "emoji \xF0\x9F\x98\xB1 added"},
        {"the best ramen in tokyo \xF0\x9F\x98\x82",
         "emoji \xF0\x9F\x98\x82 added"},
        {"the best ramen in tokyo \xE2\x9C\xA8",
         "emoji \xE2\x9C\xA8 added"},
        {"the best ramen in tokyo?",
         "punctuation: asked as a question"},
        {"3 the best ramen in tokyo",
         "number \"3\" in front"},
        {"5 the best ramen in tokyo",
         "number \"5\" in front"},
        {"Top 10: the best ramen in tokyo",
         "number \"Top 10:\" in front"},
    };
    const Edit round2[] = {
        {"POV: the best ramen in tokyo #spicy",
         "hook phrase \"POV:\" + added #spicy (attribution +0.12 in the topic's top titles)"},
        {"POV: best ramen tokyo",
         "hook phrase \"POV:\" + shorter: 2 filler words dropped"},
        {"POV: the best ramen",
         "hook phrase \"POV:\" + shorter: first 4 words"},
        {"POV: the best ramen in tokyo (in 60 seconds)",
         "hook phrase \"POV:\" + longer: \"(in 60 seconds)\" added"},
        {"POV: the best ramen in tokyo - the full guide",
         "hook phrase \"POV:\" + longer: \"- the full guide\" added"},
        {"POV: the best ramen in tokyo \xF0\x9F\x94\xA5",
         "hook phrase \"POV:\" + emoji \xF0\x9F\x94\xA5 added"},
        {"POV: the best ramen in tokyo \xF0\x9F\x98\xB1",
         "hook phrase \"POV:\" + emoji \xF0\x9F\x98\xB1 added"},
        {"POV: the best ramen in tokyo \xF0\x9F\x98\x82",
         "hook phrase \"POV:\" + emoji \xF0\x9F\x98\x82 added"},
        {"POV: the best ramen in tokyo \xE2\x9C\xA8",
         "hook phrase \"POV:\" + emoji \xE2\x9C\xA8 added"},
        {"POV: the best ramen in tokyo?",
         "hook phrase \"POV:\" + punctuation: asked as a question"},
        {"3 POV: the best ramen in tokyo",
         "hook phrase \"POV:\" + number \"3\" in front"},
        {"5 POV: the best ramen in tokyo",
         "hook phrase \"POV:\" + number \"5\" in front"},
        {"Top 10: POV: the best ramen in tokyo",
         "hook phrase \"POV:\" + number \"Top 10:\" in front"},
    };
    const Edit emoji[] = {
        {"POV: ramen: 10/10 in the city \xF0\x9F\x98\x82",
         "hook phrase \"POV:\""},
        {"Wait for it: ramen: 10/10 in the city \xF0\x9F\x98\x82",
         "hook phrase \"Wait for it:\""},
        {"How to ramen: 10/10 in the city \xF0\x9F\x98\x82",
         "hook phrase \"How to\""},
        {"Nobody tells you this: ramen: 10/10 in the city \xF0\x9F\x98\x82",
         "hook phrase \"Nobody tells you this:\""},
        {"I tried ramen: 10/10 in the city \xF0\x9F\x98\x82",
         "hook phrase \"I tried\""},
        {"Watch before you ramen: 10/10 in the city \xF0\x9F\x98\x82",
         "hook phrase \"Watch before you\""},
        {"ramen: 10/10 in the city \xF0\x9F\x98\x82 #spicy",
         "added #spicy (attribution +0.12 in the topic's top titles)"},
        {"ramen: 10/10 city \xF0\x9F\x98\x82",
         "shorter: 2 filler words dropped"},
        {"ramen: 10/10 in the",
         "shorter: first 4 words"},
        {"ramen: 10/10 in the city \xF0\x9F\x98\x82 (in 60 seconds)",
         "longer: \"(in 60 seconds)\" added"},
        {"ramen: 10/10 in the city \xF0\x9F\x98\x82 - the full guide",
         "longer: \"- the full guide\" added"},
        {"ramen: 10/10 in the city",
         "emoji removed"},
        {"ramen: 10/10 in the city \xF0\x9F\x98\x82?",
         "punctuation: asked as a question"},
    };
    const Edit topic[] = {
        {"POV: we walked all night for ramen",
         "hook phrase \"POV:\""},
        {"Wait for it: we walked all night for ramen",
         "hook phrase \"Wait for it:\""},
        {"How to we walked all night for ramen",
         "hook phrase \"How to\""},
        {"Nobody tells you this: we walked all night for ramen",
         "hook phrase \"Nobody tells you this:\""},
        {"I tried we walked all night for ramen",
         "hook phrase \"I tried\""},
        {"Watch before you we walked all night for ramen",
         "hook phrase \"Watch before you\""},
        {"we walked all night for ramen #spicy",
         "added #spicy (attribution +0.12 in the topic's top titles)"},
        {"walked night ramen",
         "shorter: 3 filler words dropped"},
        {"we walked all night for ramen (in 60 seconds)",
         "longer: \"(in 60 seconds)\" added"},
        {"we walked all night for ramen - the full guide",
         "longer: \"- the full guide\" added"},
        {"we walked all night for ramen \xF0\x9F\x94\xA5",
         "emoji \xF0\x9F\x94\xA5 added"},
        {"we walked all night for ramen \xF0\x9F\x98\xB1",
         "emoji \xF0\x9F\x98\xB1 added"},
        {"we walked all night for ramen \xF0\x9F\x98\x82",
         "emoji \xF0\x9F\x98\x82 added"},
        {"we walked all night for ramen \xE2\x9C\xA8",
         "emoji \xE2\x9C\xA8 added"},
        {"we walked all night for ramen?",
         "punctuation: asked as a question"},
        {"3 we walked all night for ramen",
         "number \"3\" in front"},
        {"5 we walked all night for ramen",
         "number \"5\" in front"},
        {"Top 10: we walked all night for ramen",
         "number \"Top 10:\" in front"},
    };
#define N_OF(x) ((int)(sizeof x / sizeof *x))
    int bad = 0;
    bad += expect_edits("plain draft", "the best ramen in tokyo", "the best ramen in tokyo", "", &o, plain, N_OF(plain));
    bad += expect_edits("round 2 after a hook", "the best ramen in tokyo", "POV: the best ramen in tokyo",
                        "hook phrase \"POV:\"", &o, round2, N_OF(round2));
    bad += expect_edits("emoji, digits, punctuation", "ramen: 10/10 in the city \xF0\x9F\x98\x82",
                        "ramen: 10/10 in the city \xF0\x9F\x98\x82", "", &o, emoji, N_OF(emoji));
    o.topic = "ramen";
    bad += expect_edits("topic kept", "we walked all night for ramen", "we walked all night for ramen", "", &o, topic, N_OF(topic));
    assert_int_equal(bad, 0);
#undef N_OF
}

/* ideas_suggest.c's tidy: runs of spaces collapsed, ends trimmed. */
static void tidy_copy(char *out, size_t cap, const char *s) {
    size_t w = 0;
    for (; *s && w + 1 < cap; s++) {
        if (*s == ' ' && (w == 0 || out[w - 1] == ' ')) continue;
        out[w++] = *s;
    }
    while (w > 0 && out[w - 1] == ' ') w--;
    out[w] = 0;
}

/* Titles seen so far (the draft and every variant), for the count below. */
typedef struct { char **t; int n; } Seen;
static int seen_add(Seen *s, const char *t) {
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->t[i], t)) return 0;
    s->t = realloc(s->t, sizeof(char *) * (s->n + 1));
    s->t[s->n++] = strdup(t);
    return 1;
}

/* The search's second round: with room for every variant, the two best
 * first-round edits that beat the draft are edited again.  Which two depends
 * on the model, but the result says (the first two items without " + " in
 * their reason are the two best first-round edits, in the same order), so
 * the number of variants scored follows from the rules: the first round's
 * edits plus the new titles of both second rounds. */
static void test_second_round(void **state) {
    (void)state;
    MilesTopic *t = NULL;
    OK(miles_topic_analyze(g_pred, g_tab.recs, g_tab.nrows, "ramen", NULL, &t));
    int checked = 0;
    for (int d = 0; d < g_tab.nrows && d < 12; d++) {
        const MilesRecord *draft = &g_tab.recs[d];
        MilesSuggestOptions o;
        miles_suggest_options_default(&o);
        o.k = 4096;
        o.max_variants = 4096;
        o.words = t->words_up;
        o.n_words = t->n_up;
        o.topic = "ramen";
        MilesSuggestions *s = NULL;
        OK(miles_suggest_titles(g_pred, draft, &o, &s));
        char t0[512];
        tidy_copy(t0, sizeof t0, title_of(draft));
        Seen seen = {NULL, 0};
        seen_add(&seen, t0);
        char **ti, **re;
        int n1;
        OK(ideas_edits(t0, t0, "", &o, &ti, &re, &n1));
        int expect = 0;
        for (int i = 0; i < n1; i++) { expect += seen_add(&seen, ti[i]); free(ti[i]); free(re[i]); }
        free(ti);
        free(re);
        assert_int_equal(expect, n1);   /* the rules make no duplicates in one round */
        int rounds = 0;
        for (int i = 0; i < s->n && rounds < 2; i++) {
            if (strstr(s->items[i].reason, " + ")) continue;
            int n2;
            OK(ideas_edits(t0, s->items[i].title, s->items[i].reason, &o, &ti, &re, &n2));
            for (int k = 0; k < n2; k++) { expect += seen_add(&seen, ti[k]); free(ti[k]); free(re[k]); }
            free(ti);
            free(re);
            rounds++;
        }
        if (s->n_scored != expect)
            fail_msg("draft %d: %d variants scored, the rules give %d (%d second rounds)", d, s->n_scored, expect, rounds);
        checked += rounds > 0;
        for (int i = 0; i < seen.n; i++) free(seen.t[i]);
        free(seen.t);
        miles_suggestions_free(s);
    }
    printf("  second rounds checked on %d drafts\n", checked);
    assert_true(checked > 0);
    miles_topic_free(t);
}

/* The tools on this checkpoint (tests/test_ideas.sh). */
static void test_tools(void **state) {
    (void)state;
    const char *bin = test_bin_dir();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "MILES_BIN=%s bash tests/test_ideas.sh %s/model.safetensors %s", bin, g_dir, g_dir);
    int rc = system(cmd);
    printf("tests/test_ideas.sh exit status %d\n", rc);
    assert_int_equal(rc, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),
        cmocka_unit_test(test_topic_patterns),
        cmocka_unit_test(test_suggestions),
        cmocka_unit_test(test_edit_rules),
        cmocka_unit_test(test_second_round),
        cmocka_unit_test(test_tools),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
