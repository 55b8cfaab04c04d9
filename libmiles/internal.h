/*
 * internal.h — helpers shared by libmiles sources; not installed.
 */
#ifndef MILES_INTERNAL_H
#define MILES_INTERNAL_H

#include "miles.h"
#include <stdarg.h>
#include <stdint.h>
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
/* Allocation-failure injection, for tests (tests/test_alloc_fail.c): after n
 * more successful miles_malloc/miles_calloc/miles_aligned_alloc calls the
 * next one fails (once); n < 0 turns it off.  The environment variable
 * MILES_ALLOC_FAIL_AFTER=n does the same for a whole process (the tools).
 * miles_alloc_calls() counts those calls since the last miles_alloc_fail_after. */
void miles_alloc_fail_after(long n);
long miles_alloc_calls(void);

/* Refuse a device/precision combination this build cannot run (backend.c);
 * training: 1 for the trainer, 0 for inference. */
int miles_backend_check(const char *device, MilesPrecision precision, int training);

/* Days in month m (1..12) of year y (proleptic Gregorian); 0 when m is out of
 * range.  Dates such as 2025-02-30 are refused with it. */
int miles_days_in_month(int64_t y, int m);

/* Propagate a status: MILES_TRY(x) returns x's status if it is not MILES_OK. */
#define MILES_TRY(expr) do { int _s = (expr); if (_s != MILES_OK) return _s; } while (0)

/* Make _finish store MILES_META_CRC32 (a CRC-32 per tensor; checkpoints). */
void miles_safetensors_writer_crc(MilesSafetensorsWriter *w);

/* Atomic files and miles_read_file are public (miles.h, "files"). */
/* out = "dir/name"; MILES_EINVAL naming the path when it does not fit in cap. */
int miles_path_join(char *out, size_t cap, const char *dir, const char *name);


/* ---- tokenizer files (tokenizer.c): what a tokenizer is loaded from, kept so
 * that checkpoints can carry the vocabulary they were trained with ---- */
typedef struct MilesTokFiles {
    char *vocab;  size_t vocab_n;   /* vocab.txt (required) */
    char *config; size_t config_n;  /* tokenizer_config.json, or NULL */
    char *json;   size_t json_n;    /* tokenizer.json, or NULL */
} MilesTokFiles;
/* Read the files of a tokenizer directory (or a lone vocab.txt). */
int miles_tokfiles_read(MilesTokFiles *f, const char *path);
void miles_tokfiles_free(MilesTokFiles *f);
/* miles_tokenizer_load on files held in memory (copied); `name` (e.g.
 * "run1/best.safetensors:tokenizer") prefixes the file names in messages. */
int miles_tokenizer_load_files(MilesTokenizer **out, const MilesTokFiles *f, const char *name);
/* The path a checkpoint was opened from (messages). */
const char *miles_checkpoint_path(const MilesCheckpoint *c);

/* ---- one of each: the small algorithms every module needs (util.c) ---- */

/* splitmix64 (Steele, Lea, Flood 2014): the mixing function and the seeded
 * stream.  The library's one generator for shuffles, splits, initialization
 * and the synthetic data (the bootstrap seeds xoshiro256** from it); small,
 * and bit-identical on every platform. */
static inline uint64_t miles_mix64(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}
static inline uint64_t miles_splitmix64(uint64_t *state) { return miles_mix64(*state += 0x9E3779B97F4A7C15ull); }
/* Uniform integer in [0, n) without modulo bias (n <= 1: 0, nothing drawn). */
uint64_t miles_rand_below(uint64_t *state, uint64_t n);
/* Fisher-Yates shuffle of n elements of `size` bytes (size <= 16) in place. */
void miles_shuffle(void *base, size_t n, size_t size, uint64_t *state);

/* "[d0,d1,...]" of a tensor shape into out (cap bytes, truncated to fit):
 * the loaders' wrong-shape messages name the file's and the model's shapes. */
void miles_shape_str(char *out, size_t cap, int ndim, const int64_t *shape);

/* Python str semantics on code points (pystr.c): re's \s and \w, the case
 * properties of str.lower(), and its final-sigma rule for cp[i] = U+03A3
 * within cp[lo, hi) (returns U+03C2 or U+03C3). */
int miles_py_isspace(int32_t c);
int miles_py_isword(int32_t c);
int miles_py_is_cased(int32_t c);
int miles_py_is_case_ignorable(int32_t c);
int32_t miles_py_lower_sigma(const int32_t *cp, int64_t lo, int64_t i, int64_t hi);

/* Stable merge sort with a context argument (C11 qsort has none, and glibc's
 * qsort_r is not portable); the order of equal elements never depends on the
 * C library.  Returns MILES_ENOMEM if the n-element scratch cannot be had. */
int miles_sort_r(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *, void *), void *ctx);

/* Bump allocator over one block: a layout function runs once with base NULL
 * to count the bytes, then again over the allocated block.  Pieces are 64-byte
 * aligned.  (The CPU model's arena and scratch, and the CUDA model's.) */
typedef struct MilesBump {
    char *base;
    size_t off;
} MilesBump;
static inline void *miles_bump(MilesBump *b, size_t bytes) {
    size_t off = (b->off + 63) & ~(size_t)63;
    b->off = off + bytes;
    return b->base ? b->base + off : NULL;
}
#define MILES_BUMP_F32(b, n) ((float *)miles_bump((b), (size_t)(n) * sizeof(float)))
#define MILES_BUMP_I32(b, n) ((int32_t *)miles_bump((b), (size_t)(n) * sizeof(int32_t)))

#endif
