/*
 * csv_internal.h — the one RFC 4180 reader of libmiles (csv.c): the data
 * module's CSV input, the adapters' inputs and the public record reader
 * (miles_records_*) all go through it.  Not installed.
 */
#ifndef MILES_CSV_INTERNAL_H
#define MILES_CSV_INTERNAL_H

#include "internal.h"

/* ---- CSV reader (RFC 4180, streaming, UTF-8 validated) ----
 * Quoted fields may hold commas, doubled quotes and newlines; CRLF/LF/CR line
 * ends; a leading UTF-8 BOM is skipped; blank lines are skipped; every record
 * must have as many fields as the first.  Errors read "file:line:column: ...". */
typedef struct MilesCsv MilesCsv;
int miles_csv_open(MilesCsv **out, const char *path);
/* Parse a memory buffer; `name` is used in messages. data must outlive the reader. */
int miles_csv_open_mem(MilesCsv **out, const char *name, const char *data, size_t n);
void miles_csv_free(MilesCsv *r);
/* Read the next record: returns 1 (fields valid until the next call), 0 at end
 * of input, or a negative MILES_E* status (sticky). */
int miles_csv_next(MilesCsv *r, int *nfields, const char *const **fields);
/* Line where the last record began; records read so far; the file name. */
int64_t miles_csv_record_line(const MilesCsv *r);
int64_t miles_csv_records(const MilesCsv *r);
const char *miles_csv_name(const MilesCsv *r);
/* Line and byte column (1-based) where field i of the last record began. */
int miles_csv_field_pos(const MilesCsv *r, int i, int64_t *line, int64_t *col);

/* Index of the field equal to `name` in a (header) record, or -1. */
int miles_csv_column(const char *const *fields, int n, const char *name);

#endif
