/*
 * helpers.c — helpers shared by the test programs.
 */
#include "helpers.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void test_rm_rf(const char *path) {
    DIR *d = opendir(path);
    if (!d) { unlink(path); return; }
    struct dirent *de;
    char p[1024];
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..")) {
            snprintf(p, sizeof p, "%s/%s", path, de->d_name);
            test_rm_rf(p);
        }
    closedir(d);
    rmdir(path);
}
