/*
 * fuzz_adapter_common.h — shared by the adapter fuzz targets: the input bytes
 * go to a file in a private temp directory (the adapters read paths), the
 * conversion writes a seed-schema CSV beside it, and the invariants are
 * checked: success gives a CSV that the library's own reader reads back with
 * the 58-column header and valid UTF-8 everywhere; failure gives a message
 * and leaves neither the output nor a temp file.
 */
#ifndef MILES_FUZZ_ADAPTER_COMMON_H
#define MILES_FUZZ_ADAPTER_COMMON_H

#include "miles.h"
#include "csv_internal.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fz_dir[64];

static void fz_init(void) {
    if (fz_dir[0]) return;
    snprintf(fz_dir, sizeof fz_dir, "%s/miles_fuzz_XXXXXX", access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(fz_dir)) abort();
}

static int fz_leftovers(void) {
    DIR *d = opendir(fz_dir);
    int n = 0;
    struct dirent *de;
    while (d && (de = readdir(d))) n += strstr(de->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

/* Convert `data` as source `kind` (input file name `name` in the private
 * directory) and check the invariants; abort() on a violation. */
static void fz_convert(const char *kind, const char *name, const uint8_t *data, size_t size) {
    fz_init();
    char in[128], out[128];
    snprintf(in, sizeof in, "%s/%s", fz_dir, name);
    snprintf(out, sizeof out, "%s/out.csv", fz_dir);
    unlink(out);
    FILE *f = fopen(in, "wb");
    if (!f) abort();
    if (size && fwrite(data, 1, size, f) != size) abort();
    fclose(f);
    char report[4096];
    int s = miles_adapter_convert(kind, in, out, report, sizeof report);
    if (fz_leftovers()) abort();   /* the atomic writer never leaves its temp file */
    if (s != MILES_OK) {
        if (!miles_last_error()[0]) abort();              /* every failure says why */
        if (access(out, F_OK) == 0) abort();              /* and writes nothing */
        return;
    }
    MilesCsv *c = NULL;
    if (miles_csv_open(&c, out) != MILES_OK) abort();
    int nf, st, rows = 0;
    const char *const *fl;
    while ((st = miles_csv_next(c, &nf, &fl)) == 1) {
        if (nf != 58) abort();                            /* the seed schema, every row */
        for (int i = 0; i < nf; i++)
            if (miles_utf8_length(fl[i]) < 0) abort();
        rows++;
    }
    if (st < 0) abort();                                  /* our own output reads back */
    if (rows < 1) abort();                                /* at least the header */
    miles_csv_free(c);
    unlink(out);
}

#endif
