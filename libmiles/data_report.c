/*
 * data_report.c — the prepare report as JSON (miles_prepare_report_json):
 * the same numbers miles_prepare_report_format prints for people, for
 * scripts (miles-data prepare --report FILE).
 */

#include "data_internal.h"
#include "sources_internal.h" /* src_civil_from_days */

#include <cjson/cJSON.h>
#include <math.h>

cJSON *data_json_exact(double v) {
    if (!isfinite(v)) return cJSON_CreateNull();
    char b[40];
    for (int d = 15; d <= 17; d++) {
        snprintf(b, sizeof b, "%.*g", d, v);
        if (strtod(b, NULL) == v) break;
    }
    return cJSON_CreateRaw(b);
}

static cJSON *count(int64_t v) {
    char b[24];
    snprintf(b, sizeof b, "%lld", (long long)v);
    return cJSON_CreateRaw(b);
}

static cJSON *day(int64_t z) {
    int y, m, d;
    char b[16];
    src_civil_from_days(z, &y, &m, &d);
    snprintf(b, sizeof b, "%04d-%02d-%02d", y, m, d);
    return cJSON_CreateString(b);
}

int miles_prepare_report_json(const MilesPrepareReport *r, double leak_bound, char **json) {
    if (!json) return miles_error(MILES_EINVAL, "miles_prepare_report_json: NULL out");
    *json = NULL;
    if (!r) return miles_error(MILES_EINVAL, "miles_prepare_report_json: NULL report");
    cJSON *o = cJSON_CreateObject();
    if (!o) return miles_error(MILES_ENOMEM, "out of memory");
    cJSON_AddStringToObject(o, "format", "miles-prepare-report");
    cJSON_AddNumberToObject(o, "version", 1);
    cJSON_AddBoolToObject(o, "applied_checkpoint", r->applied);
    cJSON *rows = cJSON_AddObjectToObject(o, "rows");
    cJSON_AddItemToObject(rows, "read", count(r->rows_read));
    cJSON_AddItemToObject(rows, "kept", count(r->rows_kept));
    cJSON *dr = cJSON_AddObjectToObject(rows, "dropped");
    cJSON_AddItemToObject(dr, "language", count(r->rows_language));
    cJSON_AddItemToObject(dr, "missing_id_title_views_likes", count(r->rows_missing));
    cJSON_AddItemToObject(dr, "no_velocity", count(r->rows_no_target));
    cJSON_AddItemToObject(dr, "duplicate_id", count(r->rows_dup));
    cJSON *lab = cJSON_AddObjectToObject(o, "threshold");
    cJSON_AddItemToObject(lab, "velocity", data_json_exact(r->threshold));
    cJSON_AddItemToObject(lab, "percentile", data_json_exact(r->percentile));
    if (r->cohort_days > 0) {
        cJSON *c = cJSON_AddObjectToObject(o, "cohorts");
        cJSON_AddNumberToObject(c, "days", r->cohort_days);
        cJSON_AddItemToObject(c, "min_rows", count(r->cohort_min_rows));
        cJSON_AddItemToObject(c, "n", count(r->n_cohorts));
        cJSON_AddItemToObject(c, "smallest_rows", count(r->cohort_smallest));
        cJSON_AddItemToObject(c, "threshold_min", data_json_exact(r->cohort_thr_min));
        cJSON_AddItemToObject(c, "threshold_max", data_json_exact(r->cohort_thr_max));
    }
    static const char *names[3] = {"train", "val", "test"};
    cJSON *sp = cJSON_AddObjectToObject(o, "splits");
    for (int s = 0; s < 3; s++) {
        cJSON *e = cJSON_AddObjectToObject(sp, names[s]);
        cJSON_AddItemToObject(e, "n", count(r->n[s]));
        cJSON_AddItemToObject(e, "viral", count(r->viral[s]));
        cJSON_AddItemToObject(e, "viral_rate", r->n[s] ? data_json_exact((double)r->viral[s] / (double)r->n[s]) : cJSON_CreateNull());
        if (r->split_by_time && r->n[s] > 0) {
            cJSON_AddItemToObject(e, "first_day", day(r->day_first[s]));
            cJSON_AddItemToObject(e, "last_day", day(r->day_last[s]));
        }
    }
    cJSON_AddItemToObject(o, "truncated_titles", count(r->truncated));
    cJSON *ca = cJSON_AddObjectToObject(o, "creator_avg_views");
    cJSON_AddStringToObject(ca, "rule", r->creator_avg == MILES_CREATOR_AVG_PRIOR ? "prior" : "data");
    if (r->creator_avg == MILES_CREATOR_AVG_PRIOR) cJSON_AddItemToObject(ca, "rows_without_history", count(r->creator_avg_none));
    cJSON_AddBoolToObject(ca, "suggest_prior", data_report_creator_note(r));
    cJSON_AddItemToObject(o, "leak_bound", data_json_exact(leak_bound));
    cJSON *fa = cJSON_AddArrayToObject(o, "features");
    for (int f = 0; f < MILES_NUM_FEATURES; f++) {
        cJSON *e = cJSON_CreateObject();
        cJSON_AddStringToObject(e, "name", miles_feature_names[f]);
        cJSON_AddBoolToObject(e, "available", r->available >> f & 1u);
        cJSON_AddItemToObject(e, "rows", count(r->n_avail[f]));   /* training rows (all rows when applied) */
        cJSON_AddItemToObject(e, "spearman_velocity", data_json_exact(r->spearman[f]));
        cJSON_AddBoolToObject(e, "leak_warning", r->leak_warn >> f & 1u);
        cJSON_AddItemToArray(fa, e);
    }
    cJSON *d = cJSON_AddObjectToObject(o, "drift");
    cJSON_AddItemToObject(d, "n_dated", count(r->n_dated));
    cJSON_AddItemToObject(d, "day_spearman_velocity", r->n_dated >= 3 ? data_json_exact(r->day_spearman) : cJSON_CreateNull());
    cJSON_AddBoolToObject(d, "suggest_split_by_time", data_report_drift_note(r));
    if (r->vocab_hash[0]) cJSON_AddStringToObject(o, "vocab_hash", r->vocab_hash);
    /* the rules the prepared file records, so the report alone says what its numbers are of */
    if (miles_split_by_name(r->split.split_by)) cJSON_AddItemToObject(o, "split_rule", data_provenance_json(&r->split));
    if (r->label_scope[0])
        cJSON_AddItemToObject(o, "label", data_label_json(r->threshold, r->percentile, r->label_scope, r->cohort_days,
                                                          r->cohort_min_rows, data_json_exact));
    *json = cJSON_Print(o);
    cJSON_Delete(o);
    return *json ? MILES_OK : miles_error(MILES_ENOMEM, "out of memory");
}
