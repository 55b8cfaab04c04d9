/*
 * helpers.h — helpers shared by the cmocka test programs (tests/helpers.c
 * is linked into every test by the Makefile).  Include after <cmocka.h>.
 */
#ifndef MILES_TEST_HELPERS_H
#define MILES_TEST_HELPERS_H

#include <stddef.h>

/* A library call that must succeed: on failure the test fails with the
 * status name and miles_last_error(). */
#define OK(x)                                                                                             \
    do {                                                                                                  \
        int _s = (x);                                                                                     \
        if (_s != MILES_OK) fail_msg("%s -> %s: %s", #x, miles_status_name(_s), miles_last_error());      \
    } while (0)

/* mkdtemp of "/tmp/miles_<tag>_XXXXXX" into buf; 0 on success, -1 on failure. */
int test_mkdtemp(char *buf, size_t cap, const char *tag);
/* Remove a file or a directory tree (best effort, like rm -rf). */
void test_rm_rf(const char *path);
/* Entries of dir (not "." and ".."), only those whose name contains `part`
 * when part is not NULL; -1 if dir cannot be read. */
int test_count_entries(const char *dir, const char *part);
/* A whole file, NUL-terminated, malloc'd; *n (may be NULL) = its size.  NULL
 * if it cannot be read. */
char *test_slurp(const char *path, size_t *n);
/* The shared data directory: $MILES_SHARED, else ../shared. */
const char *test_shared_dir(void);
/* A WordPiece vocabulary for the tests: the committed fixtures, else the
 * MiniLM weights' vocab.txt; NULL if none is readable. */
const char *test_find_vocab(void);

#endif
