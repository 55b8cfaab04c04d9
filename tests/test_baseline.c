/*
 * test_baseline.c — TF-IDF and logistic-regression baselines against
 * scikit-learn 1.2.1 (tests/fixtures/baseline_{text,numeric}.json, made by
 * tests/gen_baseline_fixture.py from real USvideos.csv titles and counts).
 *
 * Tolerances: vocabulary identical (same strings, same order); idf and TF-IDF
 * entries 1e-12; logistic-regression coefficients, intercept and test
 * probabilities 1e-4 (the brief's bound; observed errors are printed, and are
 * far smaller because both sides converge to the exact optimum).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "miles.h"
#include "baseline_internal.h"
#include "internal.h"
#include "fixtures/baseline_stop_words.h"
#include "helpers.h"

#define TOL_IDF 1e-12
#define TOL_LR 1e-4

static cJSON *g_text, *g_num;


static int setup(void **state) {
    (void)state;
    g_text = test_read_json("tests/fixtures/baseline_text.json");
    g_num = test_read_json("tests/fixtures/baseline_numeric.json");
    return g_text && g_num ? 0 : -1;
}

static int teardown(void **state) {
    (void)state;
    cJSON_Delete(g_text);
    cJSON_Delete(g_num);
    return 0;
}

static const char **str_array(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    const char **v = malloc((size_t)*n * sizeof *v);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) v[i++] = x->valuestring;
    return v;
}
static double *dbl_array(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    double *v = malloc((size_t)(*n ? *n : 1) * sizeof *v);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) v[i++] = x->valuedouble;
    return v;
}
static int32_t *int_array(const cJSON *a, int *n) {
    *n = cJSON_GetArraySize(a);
    int32_t *v = malloc((size_t)*n * sizeof *v);
    int i = 0;
    const cJSON *x;
    cJSON_ArrayForEach(x, a) v[i++] = (int32_t)x->valueint;
    return v;
}
static double getd(const cJSON *o, const char *k) {
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, k);
    assert_non_null(x);
    return cJSON_IsBool(x) ? cJSON_IsTrue(x) : x->valuedouble;
}

static void config_from_json(const cJSON *c, MilesTfidfConfig *t) {
    miles_tfidf_config_default(t);
    t->max_features = (int)getd(c, "max_features");
    t->ngram_min = (int)getd(c, "ngram_min");
    t->ngram_max = (int)getd(c, "ngram_max");
    t->lowercase = (int)getd(c, "lowercase");
    t->stop_words_english = (int)getd(c, "stop_words_english");
    t->min_df = getd(c, "min_df");
    t->min_df_is_fraction = (int)getd(c, "min_df_is_fraction");
    t->max_df = getd(c, "max_df");
    t->max_df_is_fraction = (int)getd(c, "max_df_is_fraction");
    t->smooth_idf = (int)getd(c, "smooth_idf");
    t->sublinear_tf = (int)getd(c, "sublinear_tf");
    t->use_idf = (int)getd(c, "use_idf");
    const char *nm = cJSON_GetObjectItem(c, "norm")->valuestring;
    t->norm = !strcmp(nm, "l2") ? MILES_NORM_L2 : !strcmp(nm, "l1") ? MILES_NORM_L1 : MILES_NORM_NONE;
}

static void test_stop_words(void **state) {
    (void)state;
    int n;
    const char *const *w = miles_tfidf_stop_words(&n);
    int want = (int)(sizeof miles_english_stop_words / sizeof miles_english_stop_words[0]);
    assert_int_equal(n, want);
    assert_int_equal(n, 318);
    for (int i = 0; i < n; i++) assert_string_equal(w[i], miles_english_stop_words[i]);
}

static double maxerr(const double *a, const double *b, int n) {
    double m = 0;
    for (int i = 0; i < n; i++) if (fabs(a[i] - b[i]) > m || isnan(a[i] - b[i])) m = isnan(a[i] - b[i]) ? INFINITY : fabs(a[i] - b[i]);
    return m;
}

static void test_text_golden(void **state) {
    (void)state;
    int ntr, nte, nl;
    const char **train = str_array(cJSON_GetObjectItem(g_text, "train_texts"), &ntr);
    const char **test = str_array(cJSON_GetObjectItem(g_text, "test_texts"), &nte);
    int32_t *ytr = int_array(cJSON_GetObjectItem(g_text, "train_labels"), &nl);
    assert_int_equal(nl, ntr);
    const cJSON *cs;
    int ncase = 0;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(g_text, "cases")) {
        const char *name = cJSON_GetObjectItem(cs, "name")->valuestring;
        MilesTfidfConfig cfg;
        config_from_json(cJSON_GetObjectItem(cs, "config"), &cfg);
        if (!strcmp(name, "miles_default")) {
            /* the defaults are the original's TfidfVectorizer (ORIGINAL_SYSTEM.md) */
            MilesTfidfConfig d;
            miles_tfidf_config_default(&d);
            assert_true(d.max_features == cfg.max_features && d.ngram_min == cfg.ngram_min &&
                        d.ngram_max == cfg.ngram_max && d.lowercase == cfg.lowercase &&
                        d.stop_words_english == cfg.stop_words_english && d.min_df == cfg.min_df &&
                        d.min_df_is_fraction == cfg.min_df_is_fraction && d.max_df == cfg.max_df &&
                        d.max_df_is_fraction == cfg.max_df_is_fraction && d.use_idf == cfg.use_idf &&
                        d.smooth_idf == cfg.smooth_idf && d.sublinear_tf == cfg.sublinear_tf && d.norm == cfg.norm);
        }
        MilesTfidf *tf;
        assert_int_equal(miles_tfidf_fit(&tf, train, ntr, &cfg), MILES_OK);
        int V;
        const char **voc = str_array(cJSON_GetObjectItem(cs, "vocabulary"), &V);
        if (miles_tfidf_vocab_size(tf) != V) {
            fprintf(stderr, "%s: vocabulary size %d, sklearn %d\n", name, miles_tfidf_vocab_size(tf), V);
            for (int i = 0, j = 0; i < V || j < miles_tfidf_vocab_size(tf);) {
                const char *a = i < V ? voc[i] : NULL, *b = miles_tfidf_term(tf, j);
                int c = !a ? 1 : !b ? -1 : strcmp(a, b);
                if (c < 0) { fprintf(stderr, "  only sklearn: %s\n", a); i++; }
                else if (c > 0) { fprintf(stderr, "  only miles: %s\n", b); j++; }
                else { i++; j++; }
            }
            fail();
        }
        for (int i = 0; i < V; i++) {
            assert_string_equal(miles_tfidf_term(tf, i), voc[i]);
            assert_int_equal(miles_tfidf_lookup(tf, voc[i]), i);
        }
        int ni;
        double *idf = dbl_array(cJSON_GetObjectItem(cs, "idf"), &ni);
        double *mine = malloc((size_t)V * sizeof *mine);
        for (int i = 0; i < V; i++) mine[i] = miles_tfidf_idf(tf, i);
        double e_idf = maxerr(mine, idf, V);
        assert_true(e_idf <= TOL_IDF);
        /* test-set TF-IDF matrix, entry by entry */
        MilesCsr X;
        assert_int_equal(miles_tfidf_transform(tf, test, nte, &X), MILES_OK);
        int np, nx, nd;
        double *ip = dbl_array(cJSON_GetObjectItem(cs, "test_indptr"), &np);
        double *ix = dbl_array(cJSON_GetObjectItem(cs, "test_indices"), &nx);
        double *dv = dbl_array(cJSON_GetObjectItem(cs, "test_data"), &nd);
        assert_int_equal(np, nte + 1);
        for (int i = 0; i <= nte; i++)
            if (X.indptr[i] != (int64_t)ip[i]) {
                fprintf(stderr, "%s: test row %d has %lld entries, sklearn %lld: \"%s\"\n", name,
                        i - 1, (long long)(X.indptr[i] - X.indptr[i - 1]),
                        (long long)(ip[i] - ip[i - 1]), test[i - 1]);
                fail();
            }
        for (int k = 0; k < nx; k++) assert_int_equal(X.indices[k], (int32_t)ix[k]);
        double e_x = maxerr(X.data, dv, nd);
        assert_true(e_x <= TOL_IDF);
        printf("%s: vocabulary %d terms identical; idf max err %.3g; test TF-IDF (%d nnz) max err %.3g\n",
               name, V, e_idf, nd, e_x);
        const cJSON *coef_j = cJSON_GetObjectItem(cs, "coef");
        if (coef_j) {
            const cJSON *lr = cJSON_GetObjectItem(cs, "lr");
            MilesLogRegConfig lc;
            miles_logreg_config_default(&lc);
            lc.C = getd(lr, "C");
            lc.class_weight_balanced = (int)getd(lr, "balanced");
            MilesCsr Xtr;
            assert_int_equal(miles_tfidf_transform(tf, train, ntr, &Xtr), MILES_OK);
            MilesLogReg *m;
            assert_int_equal(miles_logreg_fit_csr(&m, &Xtr, ytr, &lc), MILES_OK);
            MilesLogRegInfo info;
            miles_logreg_info(m, &info);
            int nc;
            double *coef = dbl_array(coef_j, &nc);
            double *coef_lb = dbl_array(cJSON_GetObjectItem(cs, "coef_lbfgs"), &nc);
            assert_int_equal(nc, V);
            double e_c = maxerr(miles_logreg_coef(m), coef, V);
            double e_b = fabs(miles_logreg_intercept(m) - getd(cs, "intercept"));
            double e_lb = maxerr(miles_logreg_coef(m), coef_lb, V);
            double *p = malloc((size_t)nte * sizeof *p);
            assert_int_equal(miles_logreg_predict_proba_csr(m, &X, p), MILES_OK);
            double *pw = dbl_array(cJSON_GetObjectItem(cs, "proba_test"), &np);
            double e_p = maxerr(p, pw, nte);
            printf("  logreg (C=%g, balanced=%d): %d L-BFGS iterations, max|grad| %.2g, converged %d;\n"
                   "  max err vs sklearn newton-cholesky: coef %.3g, intercept %.3g, P(test) %.3g "
                   "(sklearn lbfgs's own coef differ by %.3g)\n",
                   lc.C, lc.class_weight_balanced, info.n_iter, info.grad_max, info.converged,
                   e_c, e_b, e_p, e_lb);
            assert_true(info.converged);
            assert_true(e_c <= TOL_LR);
            assert_true(e_b <= TOL_LR);
            assert_true(e_p <= TOL_LR);
            /* the whole text baseline gives the same probabilities */
            MilesBaseline *b;
            assert_int_equal(miles_baseline_fit_text(&b, train, ytr, ntr, &cfg, &lc), MILES_OK);
            double *pb = malloc((size_t)nte * sizeof *pb);
            assert_int_equal(miles_baseline_predict_proba(b, test, NULL, nte, 0, pb), MILES_OK);
            assert_true(maxerr(pb, p, nte) == 0);
            miles_baseline_free(b);
            free(pb); free(p); free(pw); free(coef); free(coef_lb);
            miles_csr_free(&Xtr);
            miles_logreg_free(m);
        }
        if (!strcmp(name, "miles_default")) {
            /* Python str.lower() specials: final sigma, U+0130 -> i + U+0307 */
            assert_true(miles_tfidf_lookup(tf, "οδυσσευς") >= 0);
            assert_true(miles_tfidf_lookup(tf, "σοφια") >= 0);
            assert_true(miles_tfidf_lookup(tf, "stanbul") >= 0);
            assert_true(miles_tfidf_lookup(tf, "snake_case_title") >= 0);
            assert_int_equal(miles_tfidf_lookup(tf, "the"), -1);
        }
        free(ip); free(ix); free(dv); free(idf); free(mine); free(voc);
        miles_csr_free(&X);
        miles_tfidf_free(tf);
        ncase++;
    }
    assert_int_equal(ncase, 3);
    free(train); free(test); free(ytr);
}

static void test_numeric_golden(void **state) {
    (void)state;
    int F = (int)getd(g_num, "n_features"), nx, ny, nt;
    double *xd = dbl_array(cJSON_GetObjectItem(g_num, "X_train"), &nx);
    double *td = dbl_array(cJSON_GetObjectItem(g_num, "X_test"), &nt);
    int32_t *y = int_array(cJSON_GetObjectItem(g_num, "y_train"), &ny);
    assert_int_equal(F, MILES_NUM_FEATURES);
    assert_int_equal(nx, ny * F);
    int n = ny, nte = nt / F;
    float *X = malloc((size_t)nx * sizeof *X), *Xt = malloc((size_t)nt * sizeof *Xt);
    for (int i = 0; i < nx; i++) { X[i] = (float)xd[i]; assert_true((double)X[i] == xd[i]); }
    for (int i = 0; i < nt; i++) Xt[i] = (float)td[i];
    const cJSON *cs;
    cJSON_ArrayForEach(cs, cJSON_GetObjectItem(g_num, "cases")) {
        MilesLogRegConfig lc;
        miles_logreg_config_default(&lc);
        lc.C = getd(cs, "C");
        lc.class_weight_balanced = (int)getd(cs, "balanced");
        MilesBaseline *b;
        assert_int_equal(miles_baseline_fit_numeric(&b, X, n, F, y, &lc), MILES_OK);
        const MilesLogReg *m = miles_baseline_logreg(b);
        MilesLogRegInfo info;
        miles_logreg_info(m, &info);
        int nc, np;
        double *coef = dbl_array(cJSON_GetObjectItem(cs, "coef"), &nc);
        double *coef_lb = dbl_array(cJSON_GetObjectItem(cs, "coef_lbfgs"), &nc);
        double *pw = dbl_array(cJSON_GetObjectItem(cs, "proba_test"), &np);
        assert_int_equal(nc, F);
        assert_int_equal(np, nte);
        double *p = malloc((size_t)nte * sizeof *p);
        assert_int_equal(miles_baseline_predict_proba(b, NULL, Xt, nte, F, p), MILES_OK);
        double e_c = maxerr(miles_logreg_coef(m), coef, F);
        double e_b = fabs(miles_logreg_intercept(m) - getd(cs, "intercept"));
        double e_p = maxerr(p, pw, nte);
        printf("numeric %s: %d iterations, max|grad| %.2g; max err coef %.3g, intercept %.3g, "
               "P(test) %.3g (sklearn lbfgs differs by %.3g)\n",
               cJSON_GetObjectItem(cs, "name")->valuestring, info.n_iter, info.grad_max, e_c, e_b,
               e_p, maxerr(miles_logreg_coef(m), coef_lb, F));
        assert_true(info.converged);
        assert_true(e_c <= TOL_LR && e_b <= TOL_LR && e_p <= TOL_LR);
        free(coef); free(coef_lb); free(pw); free(p);
        miles_baseline_free(b);
    }
    free(xd); free(td); free(y); free(X); free(Xt);
}

static void tmp_path(char *buf, size_t n, const char *name) {
    const char *d = getenv("TMPDIR");
    snprintf(buf, n, "%s/miles_test_baseline_%d_%s", d ? d : "/tmp", (int)getpid(), name);
}

static void test_save_load(void **state) {
    (void)state;
    int ntr, nte, nl;
    const char **train = str_array(cJSON_GetObjectItem(g_text, "train_texts"), &ntr);
    const char **test = str_array(cJSON_GetObjectItem(g_text, "test_texts"), &nte);
    int32_t *ytr = int_array(cJSON_GetObjectItem(g_text, "train_labels"), &nl);
    MilesBaseline *b, *b2;
    assert_int_equal(miles_baseline_fit_text(&b, train, ytr, ntr, NULL, NULL), MILES_OK);
    char path[512];
    tmp_path(path, sizeof path, "text.json");
    assert_int_equal(miles_baseline_save(b, path), MILES_OK);
    assert_int_equal(miles_baseline_load(&b2, path), MILES_OK);
    assert_true(miles_baseline_is_text(b2));
    double *p1 = malloc((size_t)nte * sizeof *p1), *p2 = malloc((size_t)nte * sizeof *p2);
    assert_int_equal(miles_baseline_predict_proba(b, test, NULL, nte, 0, p1), MILES_OK);
    assert_int_equal(miles_baseline_predict_proba(b2, test, NULL, nte, 0, p2), MILES_OK);
    for (int i = 0; i < nte; i++) assert_true(p1[i] == p2[i]);   /* bit-exact round trip */
    assert_int_equal(miles_tfidf_vocab_size(miles_baseline_tfidf(b2)),
                     miles_tfidf_vocab_size(miles_baseline_tfidf(b)));
    miles_baseline_free(b2);

    /* damaged files: truncated, a field missing, wrong shapes */
    char *txt;
    size_t n;
    assert_int_equal(miles_read_file(path, &txt, &n), MILES_OK);
    char bad[512];
    tmp_path(bad, sizeof bad, "bad.json");
    assert_int_equal(miles_write_file_atomic(bad, txt, n / 2), MILES_OK);
    assert_int_equal(miles_baseline_load(&b2, bad), MILES_EFORMAT);
    assert_null(b2);
    assert_non_null(strstr(miles_last_error(), "bad.json"));
    printf("truncated file: %s\n", miles_last_error());
    cJSON *o = cJSON_Parse(txt);
    cJSON_DeleteItemFromObject(cJSON_GetObjectItem(o, "logreg"), "intercept");
    char *s2 = cJSON_PrintUnformatted(o);
    assert_int_equal(miles_write_file_atomic(bad, s2, strlen(s2)), MILES_OK);
    assert_int_equal(miles_baseline_load(&b2, bad), MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), "logreg.intercept"));
    printf("missing field: %s\n", miles_last_error());
    free(s2);
    cJSON_DeleteItemFromArray(cJSON_GetObjectItem(cJSON_GetObjectItem(o, "tfidf"), "idf"), 0);
    s2 = cJSON_PrintUnformatted(o);
    assert_int_equal(miles_write_file_atomic(bad, s2, strlen(s2)), MILES_OK);
    assert_int_equal(miles_baseline_load(&b2, bad), MILES_ESHAPE);
    printf("wrong shape: %s\n", miles_last_error());
    free(s2);
    cJSON_Delete(o);
    /* one field of the valid file made wrong at a time: refused, naming it */
    const struct { const char *sect, *key; int idx; const char *value, *want; } cases[] = {
        {NULL, "format", -1, "\"pickle\"", "\"format\" is not \"miles-baseline\""},
        {NULL, "version", -1, "7", "unsupported \"version\" (this library reads 1)"},
        {NULL, "kind", -1, "\"forest\"", "\"kind\" must be \"tfidf_logreg\" or \"numeric_logreg\""},
        {"tfidf", "norm", -1, "\"l3\"", "tfidf.norm = \"l3\" (want l2, l1 or none)"},
        {"logreg", "intercept", -1, "\"x\"", "logreg.intercept is not a finite number"},
        {"tfidf", "vocabulary", 0, "1", "tfidf.vocabulary[0] is not a string"},
        {"tfidf", "idf", 2, "\"x\"", "tfidf.idf[2] is not a finite number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        o = cJSON_Parse(txt);
        cJSON *parent = cases[i].sect ? cJSON_GetObjectItem(o, cases[i].sect) : o;
        cJSON *it = cJSON_GetObjectItem(parent, cases[i].key);
        assert_non_null(it);
        if (cases[i].idx < 0) cJSON_ReplaceItemInObject(parent, cases[i].key, cJSON_Parse(cases[i].value));
        else cJSON_ReplaceItemInArray(it, cases[i].idx, cJSON_Parse(cases[i].value));
        s2 = cJSON_PrintUnformatted(o);
        assert_int_equal(miles_write_file_atomic(bad, s2, strlen(s2)), MILES_OK);
        b2 = NULL;
        int rc = miles_baseline_load(&b2, bad);
        if (rc == MILES_OK || !strstr(miles_last_error(), cases[i].want))
            fail_msg("%s: got %s \"%s\", want \"%s\"", cases[i].key, miles_status_name(rc), miles_last_error(),
                     cases[i].want);
        assert_null(b2);
        free(s2);
        cJSON_Delete(o);
    }
    printf("%zu damaged fields refused, each named\n", sizeof cases / sizeof *cases);
    free(txt);
    unlink(bad);
    unlink(path);

    /* numeric round trip */
    int F = MILES_NUM_FEATURES, nx, ny;
    double *xd = dbl_array(cJSON_GetObjectItem(g_num, "X_train"), &nx);
    int32_t *y = int_array(cJSON_GetObjectItem(g_num, "y_train"), &ny);
    float *X = malloc((size_t)nx * sizeof *X);
    for (int i = 0; i < nx; i++) X[i] = (float)xd[i];
    MilesBaseline *nb, *nb2;
    assert_int_equal(miles_baseline_fit_numeric(&nb, X, ny, F, y, NULL), MILES_OK);
    tmp_path(path, sizeof path, "num.json");
    assert_int_equal(miles_baseline_save(nb, path), MILES_OK);
    assert_int_equal(miles_baseline_load(&nb2, path), MILES_OK);
    assert_false(miles_baseline_is_text(nb2));
    assert_null(miles_baseline_tfidf(nb2));
    double q1[50], q2[50];
    assert_int_equal(miles_baseline_predict_proba(nb, NULL, X, 50, F, q1), MILES_OK);
    assert_int_equal(miles_baseline_predict_proba(nb2, NULL, X, 50, F, q2), MILES_OK);
    for (int i = 0; i < 50; i++) assert_true(q1[i] == q2[i]);
    assert_int_equal(miles_baseline_predict_proba(nb2, NULL, X, 50, F - 1, q2), MILES_ESHAPE);
    unlink(path);
    miles_baseline_free(nb); miles_baseline_free(nb2); miles_baseline_free(b);
    free(xd); free(y); free(X); free(p1); free(p2); free(train); free(test); free(ytr);
}

static void test_bad_input(void **state) {
    (void)state;
    MilesTfidf *tf;
    const char *docs[3] = {"good title here", "bad \xff\xfe utf8", "another good title"};
    assert_int_equal(miles_tfidf_fit(&tf, docs, 3, NULL), MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "document 1"));
    printf("invalid UTF-8: %s\n", miles_last_error());
    const char *stop[2] = {"the and of", "it is a"};
    assert_int_equal(miles_tfidf_fit(&tf, stop, 2, NULL), MILES_EINVAL);
    printf("only stop words: %s\n", miles_last_error());
    MilesTfidfConfig c;
    miles_tfidf_config_default(&c);
    c.min_df = 5; c.max_df = 3; c.max_df_is_fraction = 0;
    const char *d2[2] = {"alpha beta", "alpha gamma"};
    assert_int_equal(miles_tfidf_fit(&tf, d2, 2, &c), MILES_EINVAL);
    c.ngram_min = 2; c.ngram_max = 1;
    assert_int_equal(miles_tfidf_fit(&tf, d2, 2, &c), MILES_EINVAL);
    /* single class, NaN features */
    float X[6] = {1, 2, 3, 4, 5, 6};
    int32_t y1[3] = {1, 1, 1}, y2[3] = {0, 1, 0};
    MilesLogReg *m;
    assert_int_equal(miles_logreg_fit_dense(&m, X, 3, 2, y1, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "single class"));
    X[3] = NAN;
    assert_int_equal(miles_logreg_fit_dense(&m, X, 3, 2, y2, NULL), MILES_ENAN);
    assert_non_null(strstr(miles_last_error(), "X[1][1]"));
    MilesLogRegConfig lc;
    miles_logreg_config_default(&lc);
    lc.C = -1;
    X[3] = 4;
    assert_int_equal(miles_logreg_fit_dense(&m, X, 3, 2, y2, &lc), MILES_EINVAL);
    /* labels other than 0/1, bad configurations, malformed sparse input: named */
    int32_t y3[3] = {0, 2, 1};
    assert_int_equal(miles_logreg_fit_dense(&m, X, 3, 2, y3, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "label[1] = 2 is not 0 or 1"));
    miles_logreg_config_default(&lc);
    lc.class_weight_balanced = 0;
    lc.class_weight[0] = 0;
    assert_int_equal(miles_logreg_fit_dense(&m, X, 3, 2, y2, &lc), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "class weights must be > 0"));
    miles_logreg_config_default(&lc);
    lc.max_iter = 0;
    assert_int_equal(miles_logreg_fit_dense(&m, X, 3, 2, y2, &lc), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "max_iter = 0"));
    int64_t indptr[4] = {0, 1, 2, 3};
    int32_t idx[3] = {0, 5, 1};
    double val[3] = {1, 2, 3};
    MilesCsr csr = {3, 2, indptr, idx, val};
    assert_int_equal(miles_logreg_fit_csr(&m, &csr, y2, NULL), MILES_ERANGE);
    assert_non_null(strstr(miles_last_error(), "row 1 has column 5 >= 2"));
    idx[1] = 1;
    val[2] = INFINITY;
    assert_int_equal(miles_logreg_fit_csr(&m, &csr, y2, NULL), MILES_ENAN);
    assert_non_null(strstr(miles_last_error(), "row 2 column 1 is not finite"));
    csr.rows = 0;
    assert_int_equal(miles_logreg_fit_csr(&m, &csr, y2, NULL), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "empty CSR matrix"));
    /* separable data stays finite thanks to the L2 term, and converges */
    assert_int_equal(miles_logreg_fit_dense(&m, X, 3, 2, y2, NULL), MILES_OK);
    MilesLogRegInfo info;
    miles_logreg_info(m, &info);
    assert_true(info.converged);
    miles_logreg_free(m);
    MilesBaseline *b;
    assert_int_equal(miles_baseline_load(&b, "/nonexistent/dir/baseline.json"), MILES_EMISSING);
}

/* Ridge regression vs scikit-learn Ridge (tests/gen_ridge_fixture.py): the
 * real 18 standardized features, a log1p_z target, alpha 1 and 10; 1e-6. */
static void test_ridge_golden(void **state) {
    (void)state;
    cJSON *r = test_read_json("tests/fixtures/ridge.json");
    assert_non_null(r);
    const int F = cJSON_GetObjectItem(g_num, "n_features")->valueint;
    int ntr, nte, ny;
    double *xtr = dbl_array(cJSON_GetObjectItem(g_num, "X_train"), &ntr);
    double *xte = dbl_array(cJSON_GetObjectItem(g_num, "X_test"), &nte);
    double *y = dbl_array(cJSON_GetObjectItem(r, "y_train"), &ny);
    ntr /= F;
    nte /= F;
    assert_int_equal(ntr, ny);
    float *Xtr = malloc(sizeof(float) * ntr * F), *Xte = malloc(sizeof(float) * nte * F);
    for (int i = 0; i < ntr * F; i++) Xtr[i] = (float)xtr[i];
    for (int i = 0; i < nte * F; i++) Xte[i] = (float)xte[i];
    double *pred = malloc(sizeof(double) * nte);
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(r, "cases")) {
        double alpha = cJSON_GetObjectItem(c, "alpha")->valuedouble, w[64], b, ew = 0, ep = 0;
        int nc, np;
        double *coef = dbl_array(cJSON_GetObjectItem(c, "coef"), &nc);
        double *want = dbl_array(cJSON_GetObjectItem(c, "pred_test"), &np);
        assert_int_equal(nc, F);
        OK(miles_ridge_fit(Xtr, ntr, F, y, alpha, w, &b));
        OK(miles_ridge_predict(Xte, nte, F, w, b, pred));
        for (int j = 0; j < F; j++) ew = test_max_err(ew, fabs(w[j] - coef[j]));
        ew = test_max_err(ew, fabs(b - cJSON_GetObjectItem(c, "intercept")->valuedouble));
        for (int i = 0; i < nte; i++) ep = test_max_err(ep, fabs(pred[i] - want[i]));
        printf("  ridge alpha %g vs sklearn Ridge: max |coef/intercept err| %.2e, max |pred err| %.2e\n", alpha, ew, ep);
        assert_true(ew < 1e-6 && ep < 1e-6);
        free(coef);
        free(want);
    }
    /* a constant feature with alpha 0 is singular: refused, saying so */
    float Xc[6] = {1, 2, 1, 3, 1, 5};
    double yc[3] = {1, 2, 3}, w[2], b;
    assert_int_equal(miles_ridge_fit(Xc, 3, 2, yc, 0.0, w, &b), MILES_EINVAL);
    OK(miles_ridge_fit(Xc, 3, 2, yc, 1e-3, w, &b));
    assert_int_equal(miles_ridge_fit(Xc, 3, 2, yc, -1.0, w, &b), MILES_EINVAL);
    free(xtr); free(xte); free(y); free(Xtr); free(Xte); free(pred);
    cJSON_Delete(r);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stop_words),
        cmocka_unit_test(test_text_golden),
        cmocka_unit_test(test_numeric_golden),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_ridge_golden),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
