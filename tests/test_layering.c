/*
 * test_layering.c — the library's layering rules hold (tests/check_layering.sh:
 * tools and examples include only miles.h, kernels no test header, every
 * function of miles.h has a user outside tests, libmiles.so exports only
 * miles_*), and the check itself catches planted violations of each rule.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "miles.h"
#include "helpers.h"

static char g_dir[256];

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(g_dir, sizeof g_dir, "layering");
}
static int teardown(void **state) {
    (void)state;
    test_rm_rf(g_dir);
    return 0;
}

/* Run the check; its output goes to out_path. */
static int run_check(const char *root, const char *lib, const char *out_path) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "bash tests/check_layering.sh '%s' '%s' > '%s' 2>&1", root, lib ? lib : "", out_path);
    int rc = system(cmd);
    return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void write_text(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_tree_follows_the_rules(void **state) {
    (void)state;
    char lib[1024], out[300];
    snprintf(lib, sizeof lib, "%s/../libmiles.so", test_bin_dir());
    snprintf(out, sizeof out, "%s/tree.txt", g_dir);
    struct stat sb;
    int have_lib = stat(lib, &sb) == 0;
    if (!have_lib) printf("  (no %s: the export check is skipped)\n", lib);
    int rc = run_check(".", have_lib ? lib : NULL, out);
    char *text = test_slurp(out, NULL);
    printf("%s", text ? text : "");
    free(text);
    assert_int_equal(rc, 0);
}

/* A copy of the tree with one violation of each rule planted. */
static void test_check_catches_violations(void **state) {
    (void)state;
    char root[300], p[600], out[300], cmd[1200];
    snprintf(root, sizeof root, "%s/tree", g_dir);
    snprintf(cmd, sizeof cmd, "mkdir -p %s && cp -r libmiles tools kernels tests docs bench fuzz %s/ 2>/dev/null", root, root);
    assert_int_equal(system(cmd), 0);
    snprintf(p, sizeof p, "%s/tools/bad_tool.c", root);
    write_text(p, "#include \"miles.h\"\n#include \"train_internal.h\"\nint bad(void) { return 0; }\n");
    snprintf(p, sizeof p, "%s/docs/examples/bad_example.c", root);
    write_text(p, "#include <miles.h>\n#include \"internal.h\"\nint main(void) { return 0; }\n");
    snprintf(p, sizeof p, "%s/kernels/bad_kernel.cu", root);
    write_text(p, "#include \"helpers.h\"\n");
    snprintf(p, sizeof p, "%s/libmiles/miles.h", root);
    FILE *f = fopen(p, "a");
    assert_non_null(f);
    fputs("MILES_API int miles_only_tests_call_me(int x);\n", f);
    fclose(f);
    snprintf(out, sizeof out, "%s/planted.txt", g_dir);
    int rc = run_check(root, NULL, out);
    char *text = test_slurp(out, NULL);
    assert_non_null(text);
    printf("%s", text);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(text, "bad_tool.c includes \"train_internal.h\""));
    assert_non_null(strstr(text, "bad_example.c includes \"internal.h\""));
    assert_non_null(strstr(text, "bad_kernel.cu includes \"helpers.h\", a header of tests/"));
    assert_non_null(strstr(text, "declares miles_only_tests_call_me, which only tests call"));
    free(text);
    /* a shared library exporting an unprefixed symbol */
    char so[300];
    snprintf(so, sizeof so, "%s/bad.so", g_dir);
    snprintf(cmd, sizeof cmd, "printf 'int miles_ok(void) { return 1; }\\nint layernorm_forward(void) { return 0; }\\n' | "
                              "cc -shared -fPIC -x c - -o %s", so);
    if (system(cmd) != 0) { printf("  (no C compiler: the planted export check is skipped)\n"); return; }
    rc = run_check(".", so, out);
    text = test_slurp(out, NULL);
    assert_non_null(text);
    printf("%s", text);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(text, "exports 1 symbols without the miles_ prefix, e.g. layernorm_forward"));
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_follows_the_rules),
        cmocka_unit_test(test_check_catches_violations),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
