/*
 * csv.c — streaming RFC 4180 CSV reader.
 *
 * Accepts: quoted fields with embedded commas, quotes ("" -> ") and newlines;
 * CRLF, LF or bare CR record ends; a UTF-8 byte order mark at the start.
 * Validates UTF-8 as it goes (overlongs, surrogates, > U+10FFFF, truncated
 * sequences) and rejects NUL bytes, so every field handed out is a valid,
 * NUL-terminated UTF-8 string.  Blank lines between records are skipped (as
 * Python's csv module does).  Every record must have as many fields as the
 * first one (the header).  Errors name file:line:column (1-based; the column
 * counts bytes within the physical line).
 */

#include "csv_internal.h"

#include <errno.h>

#define CSV_CHUNK (1 << 16)
#define CSV_MAX_RECORD ((size_t)64 << 20) /* 64 MiB: a record larger than this is an error */

enum { ST_FIELD_START, ST_UNQUOTED, ST_QUOTED, ST_QUOTE_IN_QUOTED };

struct MilesCsv {
    char name[1024];
    FILE *fp;               /* NULL for memory input */
    const unsigned char *mem; size_t mem_n, mem_pos;
    unsigned char *chunk; size_t chunk_n, chunk_pos;
    int eof;
    /* position of the next byte */
    int64_t line; int64_t col;
    int started;            /* BOM check done */
    int pend[2], npend;     /* bytes read ahead by the BOM check, given back (LIFO) */
    int skip_lf;            /* last byte was CR: a following LF belongs to it */
    /* UTF-8 validator */
    int u_need; uint32_t u_cp, u_min; int64_t u_line, u_col;
    /* current record */
    char *buf; size_t buf_n, buf_cap;       /* field bytes, NUL-separated */
    size_t *offs; int64_t *flines; int64_t *fcols; int nf, nf_cap;
    const char **fields; int fields_cap;
    int64_t rec_line;
    int expect;             /* fields per record (from the first record), 0 = unknown */
    int64_t nrec;
    int failed;             /* sticky: after an error, next() keeps failing */
};

static int csv_fail(MilesCsv *r, int code, int64_t line, int64_t col, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static int csv_fail(MilesCsv *r, int code, int64_t line, int64_t col, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    r->failed = code;
    if (col > 0) return miles_error(code, "%s:%lld:%lld: %s", r->name, (long long)line, (long long)col, msg);
    return miles_error(code, "%s:%lld: %s", r->name, (long long)line, msg);
}

static int csv_init(MilesCsv **out, const char *name) {
    MilesCsv *r = miles_calloc(1, sizeof *r);
    if (!r) return MILES_ENOMEM;
    snprintf(r->name, sizeof r->name, "%s", name ? name : "<memory>");
    r->line = 1; r->col = 1;
    *out = r;
    return MILES_OK;
}

int miles_csv_open(MilesCsv **out, const char *path) {
    *out = NULL;
    if (!path) return miles_error(MILES_EINVAL, "miles_csv_open: NULL path");
    FILE *fp = fopen(path, "rb");
    if (!fp) return miles_error(errno == ENOENT ? MILES_EMISSING : MILES_EIO, "%s: cannot open: %s", path, strerror(errno));
    MilesCsv *r;
    int s = csv_init(&r, path);
    if (s) { fclose(fp); return s; }
    r->fp = fp;
    r->chunk = miles_malloc(CSV_CHUNK);
    if (!r->chunk) { miles_csv_free(r); return MILES_ENOMEM; }
    *out = r;
    return MILES_OK;
}

int miles_csv_open_mem(MilesCsv **out, const char *name, const char *data, size_t n) {
    *out = NULL;
    MilesCsv *r;
    MILES_TRY(csv_init(&r, name));
    r->mem = (const unsigned char *)(data ? data : "");
    r->mem_n = data ? n : 0;
    *out = r;
    return MILES_OK;
}

void miles_csv_free(MilesCsv *r) {
    if (!r) return;
    if (r->fp) fclose(r->fp);
    free(r->chunk); free(r->buf); free(r->offs); free(r->flines); free(r->fcols); free(r->fields);
    free(r);
}

/* Next raw byte, or -1 at end of input, or -2 on a read error. */
static int csv_getc(MilesCsv *r) {
    if (r->npend) return r->pend[--r->npend];
    if (!r->fp) {
        if (r->mem_pos >= r->mem_n) return -1;
        return r->mem[r->mem_pos++];
    }
    if (r->chunk_pos >= r->chunk_n) {
        if (r->eof) return -1;
        r->chunk_n = fread(r->chunk, 1, CSV_CHUNK, r->fp);
        r->chunk_pos = 0;
        if (r->chunk_n < CSV_CHUNK) {
            if (ferror(r->fp)) return -2;
            r->eof = 1;
        }
        if (r->chunk_n == 0) return -1;
    }
    return r->chunk[r->chunk_pos++];
}

static int buf_put(MilesCsv *r, char c) {
    if (r->buf_n + 1 >= r->buf_cap) {
        if (r->buf_cap >= CSV_MAX_RECORD)
            return csv_fail(r, MILES_EFORMAT, r->rec_line, 0, "record larger than %zu bytes", CSV_MAX_RECORD);
        size_t cap = r->buf_cap ? r->buf_cap * 2 : 4096;
        char *b = realloc(r->buf, cap);
        if (!b) return miles_error(MILES_ENOMEM, "%s: out of memory", r->name);
        r->buf = b; r->buf_cap = cap;
    }
    r->buf[r->buf_n++] = c;
    return MILES_OK;
}

static int field_begin(MilesCsv *r, int64_t line, int64_t col) {
    if (r->nf >= r->nf_cap) {
        int cap = r->nf_cap ? r->nf_cap * 2 : 64;
        size_t *o = realloc(r->offs, cap * sizeof *o);
        if (o) r->offs = o;
        int64_t *l = realloc(r->flines, cap * sizeof *l);
        if (l) r->flines = l;
        int64_t *c = realloc(r->fcols, cap * sizeof *c);
        if (c) r->fcols = c;
        if (!o || !l || !c) return miles_error(MILES_ENOMEM, "%s: out of memory", r->name);
        r->nf_cap = cap;
    }
    r->offs[r->nf] = r->buf_n;
    r->flines[r->nf] = line;
    r->fcols[r->nf] = col;
    r->nf++;
    return MILES_OK;
}

static int field_end(MilesCsv *r) { return buf_put(r, '\0'); }

/* Feed one byte to the UTF-8 validator (position = the byte's position). */
static int utf8_feed(MilesCsv *r, unsigned b) {
    if (r->u_need > 0) {
        if ((b & 0xC0) != 0x80)
            return csv_fail(r, MILES_EFORMAT, r->u_line, r->u_col,
                            "invalid UTF-8: truncated multi-byte sequence (byte 0x%02X where a continuation byte was expected)", b);
        r->u_cp = (r->u_cp << 6) | (b & 0x3F);
        if (--r->u_need == 0) {
            if (r->u_cp < r->u_min)
                return csv_fail(r, MILES_EFORMAT, r->u_line, r->u_col, "invalid UTF-8: overlong encoding of U+%04X", r->u_cp);
            if (r->u_cp >= 0xD800 && r->u_cp <= 0xDFFF)
                return csv_fail(r, MILES_EFORMAT, r->u_line, r->u_col, "invalid UTF-8: encoded surrogate U+%04X", r->u_cp);
            if (r->u_cp > 0x10FFFF)
                return csv_fail(r, MILES_EFORMAT, r->u_line, r->u_col, "invalid UTF-8: code point beyond U+10FFFF");
        }
        return MILES_OK;
    }
    if (b < 0x80) {
        if (b == 0) return csv_fail(r, MILES_EFORMAT, r->line, r->col, "NUL byte in CSV text");
        return MILES_OK;
    }
    r->u_line = r->line; r->u_col = r->col;
    if (b >= 0xC2 && b <= 0xDF) { r->u_need = 1; r->u_cp = b & 0x1F; r->u_min = 0x80; }
    else if (b >= 0xE0 && b <= 0xEF) { r->u_need = 2; r->u_cp = b & 0x0F; r->u_min = 0x800; }
    else if (b >= 0xF0 && b <= 0xF4) { r->u_need = 3; r->u_cp = b & 0x07; r->u_min = 0x10000; }
    else return csv_fail(r, MILES_EFORMAT, r->line, r->col, "invalid UTF-8: byte 0x%02X cannot start a character", b);
    return MILES_OK;
}

static void record_reset(MilesCsv *r) { r->buf_n = 0; r->nf = 0; }

static int record_finish(MilesCsv *r) {
    if (r->nf > r->fields_cap) {
        const char **f = realloc(r->fields, r->nf * sizeof *f);
        if (!f) return miles_error(MILES_ENOMEM, "%s: out of memory", r->name);
        r->fields = f; r->fields_cap = r->nf;
    }
    for (int i = 0; i < r->nf; i++) r->fields[i] = r->buf + r->offs[i];
    if (r->expect == 0) r->expect = r->nf;
    else if (r->nf != r->expect)
        return csv_fail(r, MILES_EFORMAT, r->rec_line, 0, "record %lld has %d field%s, expected %d (as in the first record)",
                        (long long)r->nrec + 1, r->nf, r->nf == 1 ? "" : "s", r->expect);
    r->nrec++;
    return 1;
}

/* Close the record: hand out the fields (returns 1) or fail on a ragged record. */
static int record_emit(MilesCsv *r, int *nfields, const char *const **fields) {
    int s = record_finish(r);
    if (s != 1) return s;
    if (nfields) *nfields = r->nf;
    if (fields) *fields = r->fields;
    return 1;
}

int miles_csv_next(MilesCsv *r, int *nfields, const char *const **fields) {
    if (nfields) *nfields = 0;
    if (fields) *fields = NULL;
    if (r->failed) return r->failed;
    record_reset(r);
    int st = ST_FIELD_START;
    int in_record = 0, need_begin = 1;
    int64_t q_line = 0, q_col = 0; /* where the open quote was */
    for (;;) {
        int c = csv_getc(r);
        if (c == -2) return csv_fail(r, MILES_EIO, r->line, 0, "read error: %s", strerror(errno));
        if (!r->started) {
            r->started = 1;
            if (c == 0xEF) { /* possible byte order mark */
                int c2 = csv_getc(r), c3 = c2 >= 0 ? csv_getc(r) : -1;
                if (c2 == 0xBB && c3 == 0xBF) continue;
                if (c2 == -2 || c3 == -2) return csv_fail(r, MILES_EIO, r->line, 0, "read error: %s", strerror(errno));
                /* not a BOM: U+F000..U+FFFF also start with EF; the bytes are data
                 * (the UTF-8 validator judges them) */
                if (c3 >= 0) r->pend[r->npend++] = c3;
                if (c2 >= 0) r->pend[r->npend++] = c2;
            }
        }
        if (c == -1) {
            if (r->u_need > 0)
                return csv_fail(r, MILES_EFORMAT, r->u_line, r->u_col, "invalid UTF-8: truncated multi-byte sequence at end of file");
            if (st == ST_QUOTED)
                return csv_fail(r, MILES_EFORMAT, q_line, q_col, "unterminated quoted field (end of file inside quotes)");
            if (!in_record) return 0;
            if (need_begin) MILES_TRY(field_begin(r, r->line, r->col));
            MILES_TRY(field_end(r));
            return record_emit(r, nfields, fields);
        }
        /* the LF of a CRLF: the CR already counted the line.  Outside quotes the
         * LF then reads as a blank line (skipped); inside quotes it is content. */
        int crlf = r->skip_lf && c == '\n';
        r->skip_lf = 0;
        MILES_TRY(utf8_feed(r, (unsigned)c));
        int64_t line = crlf ? r->line - 1 : r->line, col = r->col;
        if (crlf) { /* position stays at the start of the new line */ }
        else if (c == '\n') { r->line++; r->col = 1; }
        else if (c == '\r') { r->line++; r->col = 1; r->skip_lf = 1; }
        else r->col++;
        int is_eol = (c == '\n' || c == '\r');

        switch (st) {
        case ST_FIELD_START:
            if (!in_record) {
                if (is_eol) continue; /* blank line between records */
                in_record = 1;
                r->rec_line = line;
            }
            if (need_begin) { MILES_TRY(field_begin(r, line, col)); need_begin = 0; }
            if (c == '"') { st = ST_QUOTED; q_line = line; q_col = col; }
            else if (c == ',') { MILES_TRY(field_end(r)); need_begin = 1; }
            else if (is_eol) { MILES_TRY(field_end(r)); return record_emit(r, nfields, fields); }
            else { MILES_TRY(buf_put(r, (char)c)); st = ST_UNQUOTED; }
            break;
        case ST_UNQUOTED:
            if (c == ',') { MILES_TRY(field_end(r)); st = ST_FIELD_START; need_begin = 1; }
            else if (is_eol) { MILES_TRY(field_end(r)); return record_emit(r, nfields, fields); }
            else if (c == '"')
                return csv_fail(r, MILES_EFORMAT, line, col,
                                "quote character inside an unquoted field (quote the whole field and double the quote)");
            else MILES_TRY(buf_put(r, (char)c));
            break;
        case ST_QUOTED:
            if (c == '"') st = ST_QUOTE_IN_QUOTED;
            else MILES_TRY(buf_put(r, (char)c));
            break;
        case ST_QUOTE_IN_QUOTED:
            if (c == '"') { MILES_TRY(buf_put(r, '"')); st = ST_QUOTED; }
            else if (c == ',') { MILES_TRY(field_end(r)); st = ST_FIELD_START; need_begin = 1; }
            else if (is_eol) { MILES_TRY(field_end(r)); return record_emit(r, nfields, fields); }
            else return csv_fail(r, MILES_EFORMAT, line, col, "unexpected character after the closing quote of a field");
            break;
        }
    }
}

int64_t miles_csv_record_line(const MilesCsv *r) { return r ? r->rec_line : 0; }
int64_t miles_csv_records(const MilesCsv *r) { return r ? r->nrec : 0; }
const char *miles_csv_name(const MilesCsv *r) { return r ? r->name : ""; }

int miles_csv_field_pos(const MilesCsv *r, int i, int64_t *line, int64_t *col) {
    if (!r || i < 0 || i >= r->nf) return miles_error(MILES_ERANGE, "csv field index %d out of range", i);
    if (line) *line = r->flines[i];
    if (col) *col = r->fcols[i];
    return MILES_OK;
}

int miles_csv_column(const char *const *fields, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(fields[i], name) == 0) return i;
    return -1;
}
