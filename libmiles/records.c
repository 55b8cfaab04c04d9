/*
 * records.c — records from a CSV file with a header row (miles_records_*):
 * what miles-predict and the server's file upload score.  The header gives
 * the field names; every row is a MilesRecord of all its cells (an empty
 * cell is the same as an absent field).  Reading goes through the library's
 * one RFC 4180 reader (csv.c), so the errors name file:line:column.
 */
#include "csv_internal.h"
#include "data_internal.h"

struct MilesRecordReader {
    MilesCsv *csv;
    char **header;
    int n;
};

static int read_header(MilesRecordReader *r) {
    int nf;
    const char *const *f;
    int s = miles_csv_next(r->csv, &nf, &f);
    if (s <= 0)
        return s < 0 ? s : miles_error(MILES_EFORMAT, "%s: empty file (no header)", miles_csv_name(r->csv));
    r->header = miles_calloc((size_t)nf, sizeof(char *));
    if (!r->header) return MILES_ENOMEM;
    r->n = nf;
    for (int i = 0; i < nf; i++)
        if (!(r->header[i] = strdup(f[i]))) return miles_error(MILES_ENOMEM, "out of memory");
    /* a known column twice (two "title"s) is refused as prepare refuses it:
     * which of the two would be scored is a guess */
    for (int i = 0; i < nf; i++) {
        if (data_column_id(f[i]) < 0) continue;
        for (int j = 0; j < i; j++)
            if (data_column_id(f[j]) == data_column_id(f[i]))
                return miles_error(MILES_EFORMAT, "%s:1: column '%s' appears twice in the header (columns %d and %d)",
                                   miles_csv_name(r->csv), f[i], j + 1, i + 1);
    }
    return MILES_OK;
}

static int finish_open(MilesRecordReader **out, MilesRecordReader *r, int s) {
    if (s == MILES_OK) s = read_header(r);
    if (s != MILES_OK) {
        miles_records_close(r);
        return s;
    }
    *out = r;
    return MILES_OK;
}

int miles_records_open_csv(MilesRecordReader **out, const char *path) {
    if (!out) return miles_error(MILES_EINVAL, "miles_records_open_csv: out is NULL");
    *out = NULL;
    MilesRecordReader *r = miles_calloc(1, sizeof *r);
    if (!r) return MILES_ENOMEM;
    return finish_open(out, r, miles_csv_open(&r->csv, path));
}

int miles_records_open_csv_memory(MilesRecordReader **out, const char *name, const char *data, size_t n) {
    if (!out) return miles_error(MILES_EINVAL, "miles_records_open_csv_memory: out is NULL");
    *out = NULL;
    MilesRecordReader *r = miles_calloc(1, sizeof *r);
    if (!r) return MILES_ENOMEM;
    return finish_open(out, r, miles_csv_open_mem(&r->csv, name, data, n));
}

void miles_records_close(MilesRecordReader *r) {
    if (!r) return;
    for (int i = 0; i < r->n; i++) free(r->header[i]);
    free(r->header);
    miles_csv_free(r->csv);
    free(r);
}

const char *const *miles_records_header(const MilesRecordReader *r, int *n) {
    if (n) *n = r ? r->n : 0;
    return r ? (const char *const *)r->header : NULL;
}

int miles_records_next(MilesRecordReader *r, MilesRecord *rec) {
    if (!r || !rec) return miles_error(MILES_EINVAL, "miles_records_next: NULL argument");
    int nf;
    const char *const *f;
    int s = miles_csv_next(r->csv, &nf, &f);
    if (s != 1) return s;
    rec->n = nf; /* == the header's count: the reader refuses ragged records */
    rec->names = (const char *const *)r->header;
    rec->values = f;
    rec->lengths = NULL;   /* NUL-terminated cells (an uninitialized caller struct must not be read) */
    return 1;
}

int64_t miles_records_line(const MilesRecordReader *r) { return r ? miles_csv_record_line(r->csv) : 0; }
