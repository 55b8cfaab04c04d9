/*
 * helpers.c — helpers shared by the test programs (helpers.h).
 */
#include "helpers.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int test_mkdtemp(char *buf, size_t cap, const char *tag) {
    if (snprintf(buf, cap, "/tmp/miles_%s_XXXXXX", tag) >= (int)cap) return -1;
    return mkdtemp(buf) ? 0 : -1;
}

void test_rm_rf(const char *path) {
    struct stat sb;
    if (lstat(path, &sb) != 0) return;
    DIR *d = S_ISDIR(sb.st_mode) ? opendir(path) : NULL;
    if (!d) { unlink(path); return; }
    struct dirent *de;
    char p[4096];
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
            snprintf(p, sizeof p, "%s/%s", path, de->d_name) < (int)sizeof p)
            test_rm_rf(p);
    closedir(d);
    rmdir(path);
}

int test_count_entries(const char *dir, const char *part) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && (!part || strstr(de->d_name, part))) n++;
    closedir(d);
    return n;
}

char *test_slurp(const char *path, size_t *n) {
    if (n) *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *b = NULL;
    long len = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (b = malloc((size_t)len + 1)) && fread(b, 1, (size_t)len, f) == (size_t)len) {
        b[len] = 0;
        if (n) *n = (size_t)len;
    } else {
        free(b);
        b = NULL;
    }
    fclose(f);
    return b;
}

const char *test_shared_dir(void) {
    const char *s = getenv("MILES_SHARED");
    return s && *s ? s : "../shared";
}

const char *test_find_vocab(void) {
    static const char *c[] = {"tests/fixtures/vocab.txt", "tests/fixtures/tokenizer_vocab.txt",
                              "models/all-MiniLM-L6-v2/vocab.txt"};
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++)
        if (access(c[i], R_OK) == 0) return c[i];
    return NULL;
}
