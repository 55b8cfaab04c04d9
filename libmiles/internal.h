/*
 * internal.h — helpers shared by libmiles sources; not installed.
 */
#ifndef MILES_INTERNAL_H
#define MILES_INTERNAL_H

#include "miles.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Set this thread's error message (printf-style) and return `code`, so callers
 * can write: return miles_error(MILES_EFORMAT, "%s:%d: bad field", path, line); */
int miles_error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prepend context to the current message: "ctx: <old message>"; returns code. */
int miles_error_prefix(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Allocation helpers that set MILES_ENOMEM on failure (return NULL). */
void *miles_malloc(size_t n);
void *miles_calloc(size_t count, size_t size);
void *miles_aligned_alloc(size_t n); /* 64-byte aligned, zeroed; free with free() */

/* Propagate a status: MILES_TRY(x) returns x's status if it is not MILES_OK. */
#define MILES_TRY(expr) do { int _s = (expr); if (_s != MILES_OK) return _s; } while (0)

/* Write a whole file atomically: temp file in the same directory, fsync, rename,
 * fsync the directory.  Never leaves a half-written `path`. */
int miles_write_file_atomic(const char *path, const void *data, size_t n);
/* Streaming variant: open a temp file beside `path`; write to *fp; then
 * miles_atomic_commit() (fflush+fsync+rename) or miles_atomic_abort() (unlink). */
typedef struct MilesAtomicFile {
    FILE *fp;
    char path[4096];
    char tmp[4096];
} MilesAtomicFile;
int miles_atomic_open(MilesAtomicFile *af, const char *path);
int miles_atomic_commit(MilesAtomicFile *af);
void miles_atomic_abort(MilesAtomicFile *af);
/* out = "dir/name"; MILES_EINVAL naming the path when it does not fit in cap. */
int miles_path_join(char *out, size_t cap, const char *dir, const char *name);
/* Read a whole file into a NUL-terminated malloc'd buffer. */
int miles_read_file(const char *path, char **data, size_t *n);

#endif
