/*
 * helpers.h — helpers shared by the cmocka test programs (tests/helpers.c
 * is linked into every test by the Makefile).
 */
#ifndef MILES_TEST_HELPERS_H
#define MILES_TEST_HELPERS_H

/* Remove a file or a directory tree (best effort, like rm -rf). */
void test_rm_rf(const char *path);

#endif
