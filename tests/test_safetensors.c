/*
 * test_safetensors.c — safetensors reader/writer (libmiles/safetensors.c).
 *
 * References: tests/fixtures/st_python*.safetensors, written by the Python
 * safetensors library through tests/gen_safetensors_fixture.py (torch does the
 * f16/bf16 -> f32 conversions we compare against).  Malformed files are built
 * here in a temp dir; every one must give MILES_EFORMAT naming the file (and
 * the tensor, where there is one), never a crash (run under ASan: make SAN=1).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "miles.h"
#include "helpers.h"

#define FIX_ALL "tests/fixtures/st_python.safetensors"
#define FIX_SINGLE "tests/fixtures/st_python_single.safetensors"

static char tmpdir[256];

static int setup(void **state) {
    (void)state;
    return test_mkdtemp(tmpdir, sizeof tmpdir, "st_test");
}

static int teardown(void **state) {
    (void)state;
    test_rm_rf(tmpdir);
    return 0;
}

static int count_dir_entries(void) { return test_count_entries(tmpdir, NULL); }

static unsigned char *slurp(const char *path, size_t *n) { return (unsigned char *)test_slurp(path, n); }

static void spit(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static uint32_t fbits(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }

/* ---------------------------------------------------- Python-written files */

static void test_read_python_fixture(void **state) {
    (void)state;
    MilesSafetensors *st = NULL;
    int rc = miles_safetensors_open(&st, FIX_ALL);
    if (rc) fail_msg("%s", miles_last_error());
    assert_int_equal(miles_safetensors_count(st), 15);
    assert_string_equal(miles_safetensors_metadata(st, "format"), "pt");
    assert_string_equal(miles_safetensors_metadata(st, "miles"), "fixture-v1");
    assert_null(miles_safetensors_metadata(st, "nope"));
    assert_int_equal(miles_safetensors_find(st, "nope"), -1);

    /* every f16 bit pattern against torch's conversion */
    int i = miles_safetensors_find(st, "f16_all"), j = miles_safetensors_find(st, "f16_all_f32");
    assert_true(i >= 0 && j >= 0);
    int dt, nd;
    int64_t sh[8];
    size_t n;
    assert_int_equal(miles_safetensors_info(st, i, &dt, &nd, sh, &n), MILES_OK);
    assert_int_equal(dt, MILES_DT_F16);
    assert_int_equal(nd, 1);
    assert_int_equal(sh[0], 65536);
    float *a = malloc(65536 * 4), *ref = malloc(65536 * 4);
    assert_int_equal(miles_safetensors_read_f32(st, i, a, 65536), MILES_OK);
    assert_int_equal(miles_safetensors_read_f32(st, j, ref, 65536), MILES_OK);
    int bad = 0, nsub = 0, nnan = 0, ninf = 0;
    for (int k = 0; k < 65536; k++) {
        if (isnan(ref[k])) { nnan++; if (!isnan(a[k])) bad++; continue; }
        if (isinf(ref[k])) ninf++;
        if (ref[k] != 0 && fabsf(ref[k]) < 6.103515625e-05f) nsub++;
        if (fbits(a[k]) != fbits(ref[k])) {
            if (bad < 5) print_error("f16 0x%04x: got %a want %a\n", k, a[k], ref[k]);
            bad++;
        }
    }
    print_message("f16: 65536 patterns (%d subnormal, %d inf, %d nan), %d mismatches\n", nsub, ninf, nnan, bad);
    assert_int_equal(bad, 0);
    assert_int_equal(nsub, 2 * 1023);
    assert_int_equal(ninf, 2);
    assert_int_equal(nnan, 2 * 1023);

    i = miles_safetensors_find(st, "bf16_vals");
    j = miles_safetensors_find(st, "bf16_vals_f32");
    assert_int_equal(miles_safetensors_info(st, i, &dt, &nd, sh, &n), MILES_OK);
    assert_int_equal(dt, MILES_DT_BF16);
    assert_int_equal(nd, 2);
    assert_int_equal(sh[0], 4);
    assert_int_equal(sh[1], 8);
    assert_int_equal(miles_safetensors_read_f32(st, i, a, 32), MILES_OK);
    assert_int_equal(miles_safetensors_read_f32(st, j, ref, 32), MILES_OK);
    for (int k = 0; k < 32; k++) {
        if (isnan(ref[k])) assert_true(isnan(a[k]));
        else assert_int_equal(fbits(a[k]), fbits(ref[k]));
    }

    i = miles_safetensors_find(st, "f32_mat");
    assert_int_equal(miles_safetensors_read_f32(st, i, a, 15), MILES_OK);
    for (int k = 0; k < 15; k++) assert_int_equal(fbits(a[k]), fbits((float)k / 7.0f - 1.0f));

    i = miles_safetensors_find(st, "f64_vec");
    const double f64[6] = {0.0, 1.0 / 3.0, -2.5, 1e-300, 1e300, 123456789.123};
    assert_int_equal(miles_safetensors_read_f32(st, i, a, 6), MILES_OK);
    for (int k = 0; k < 6; k++) assert_int_equal(fbits(a[k]), fbits((float)f64[k]));

    int32_t iv[8];
    i = miles_safetensors_find(st, "i64_ids");
    assert_int_equal(miles_safetensors_read_i32(st, i, iv, 8), MILES_OK);
    const int32_t ids[8] = {101, 7592, 2088, 102, 0, -5, 2147483647, INT32_MIN};
    assert_memory_equal(iv, ids, sizeof ids);
    /* wrong element count, wrong reader */
    assert_int_equal(miles_safetensors_read_i32(st, i, iv, 7), MILES_ESHAPE);
    assert_non_null(strstr(miles_last_error(), "i64_ids"));
    assert_int_equal(miles_safetensors_read_f32(st, i, a, 8), MILES_EINVAL);
    assert_int_equal(miles_safetensors_read_i32(st, miles_safetensors_find(st, "f32_mat"), iv, 15), MILES_EINVAL);

    i = miles_safetensors_find(st, "i64_big");
    assert_int_equal(miles_safetensors_read_i32(st, i, iv, 2), MILES_ERANGE);
    assert_non_null(strstr(miles_last_error(), "i64_big"));
    assert_non_null(strstr(miles_last_error(), "2147483648"));

    struct { const char *name; int dt; int n; int32_t v[4]; } iv_cases[] = {
        {"i32_v", MILES_DT_I32, 3, {-7, 0, 2147483647}},
        {"i16_v", MILES_DT_I16, 3, {-32768, 5, 32767}},
        {"i8_v", MILES_DT_I8, 3, {-128, 0, 127}},
        {"u8_v", MILES_DT_U8, 3, {0, 200, 255}},
        {"bool_v", MILES_DT_BOOL, 4, {1, 0, 1, 1}},
    };
    for (size_t c = 0; c < sizeof iv_cases / sizeof iv_cases[0]; c++) {
        i = miles_safetensors_find(st, iv_cases[c].name);
        assert_true(i >= 0);
        assert_int_equal(miles_safetensors_info(st, i, &dt, NULL, NULL, &n), MILES_OK);
        assert_int_equal(dt, iv_cases[c].dt);
        assert_int_equal(n, (size_t)iv_cases[c].n);
        assert_int_equal(miles_safetensors_read_i32(st, i, iv, n), MILES_OK);
        assert_memory_equal(iv, iv_cases[c].v, n * 4);
    }

    i = miles_safetensors_find(st, "empty");
    assert_int_equal(miles_safetensors_info(st, i, &dt, &nd, sh, &n), MILES_OK);
    assert_int_equal(n, 0);
    assert_int_equal(nd, 2);
    assert_int_equal(sh[0], 0);
    assert_int_equal(miles_safetensors_read_f32(st, i, a, 0), MILES_OK);
    i = miles_safetensors_find(st, "scalar");
    assert_int_equal(miles_safetensors_info(st, i, &dt, &nd, sh, &n), MILES_OK);
    assert_int_equal(nd, 0);
    assert_int_equal(n, 1);
    assert_int_equal(miles_safetensors_read_f32(st, i, a, 1), MILES_OK);
    assert_true(a[0] == 2.5f);

    assert_int_equal(miles_safetensors_info(st, 99, &dt, &nd, sh, &n), MILES_EINVAL);
    assert_null(miles_safetensors_name(st, -1));
    free(a);
    free(ref);
    miles_safetensors_close(st);
}

/* The C writer reproduces the Python library's bytes exactly. */
static void test_writer_matches_python(void **state) {
    (void)state;
    const float bw[4] = {1.0f, -2.0f, 0.25f, 4.0f}, ab[3] = {0.5f, -0.5f, 1.5f};
    const int64_t ids[5] = {3, 1, 4, 1, 5};
    const int64_t s22[2] = {2, 2}, s3[1] = {3}, s5[1] = {5};
    char path[512];
    snprintf(path, sizeof path, "%s/single.safetensors", tmpdir);
    MilesSafetensorsWriter *w;
    assert_int_equal(miles_safetensors_writer_open(&w, path), MILES_OK);
    /* added in a different order than the file order on purpose */
    assert_int_equal(miles_safetensors_writer_add(w, "b.weight", MILES_DT_F32, 2, s22, bw), MILES_OK);
    assert_int_equal(miles_safetensors_writer_metadata(w, "config", "{\"h\": 2}"), MILES_OK);
    assert_int_equal(miles_safetensors_writer_add(w, "a.bias", MILES_DT_F32, 1, s3, ab), MILES_OK);
    assert_int_equal(miles_safetensors_writer_add(w, "ids", MILES_DT_I64, 1, s5, ids), MILES_OK);
    assert_int_equal(miles_safetensors_writer_finish(w), MILES_OK);
    size_t n1, n2;
    unsigned char *mine = slurp(path, &n1), *py = slurp(FIX_SINGLE, &n2);
    assert_non_null(mine);
    assert_non_null(py);
    assert_int_equal(n1, n2);
    assert_memory_equal(mine, py, n1);
    free(mine);
    free(py);
}

/* ---------------------------------------------------------- round trip */

static void test_round_trip(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/rt.safetensors", tmpdir);
    enum { N = 300 };
    float f32[N];
    uint16_t f16[N], bf16[N];
    double f64[N];
    int64_t i64[N];
    int32_t i32[N];
    int16_t i16[N];
    int8_t i8[N];
    uint8_t u8[N], bl[N];
    uint64_t s = 12345;
    for (int k = 0; k < N; k++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        uint32_t r = (uint32_t)(s >> 32);
        f32[k] = (float)((int32_t)r) / 1e6f;
        f16[k] = (uint16_t)(r & 0x7bff);   /* finite halves */
        bf16[k] = (uint16_t)(r >> 16);
        f64[k] = (double)(int32_t)r / 3.0;
        i64[k] = (int32_t)r;
        i32[k] = (int32_t)r;
        i16[k] = (int16_t)r;
        i8[k] = (int8_t)r;
        u8[k] = (uint8_t)r;
        bl[k] = r & 1;
    }
    const void *ptr[10] = {f32, f16, bf16, f64, i64, i32, i16, i8, u8, bl};
    const int64_t shp[3] = {3, 4, 25};
    MilesSafetensorsWriter *w;
    assert_int_equal(miles_safetensors_writer_open(&w, path), MILES_OK);
    char name[64];
    for (int dt = 0; dt < 10; dt++) {
        snprintf(name, sizeof name, "t.%s", miles_dtype_name(dt));
        assert_int_equal(miles_safetensors_writer_add(w, name, dt, 3, shp, ptr[dt]), MILES_OK);
    }
    /* many more small tensors, for find() */
    for (int k = 0; k < 200; k++) {
        snprintf(name, sizeof name, "many.%03d.weight", k);
        const int64_t one = 1;
        assert_int_equal(miles_safetensors_writer_add(w, name, MILES_DT_F32, 1, &one, &f32[k]), MILES_OK);
    }
    assert_int_equal(miles_safetensors_writer_add(w, "t.F32", MILES_DT_F32, 1, shp, f32), MILES_EINVAL);
    const int64_t neg = -1;
    assert_int_equal(miles_safetensors_writer_add(w, "neg", MILES_DT_F32, 1, &neg, f32), MILES_EINVAL);
    assert_int_equal(miles_safetensors_writer_add(w, "baddt", 42, 1, shp, f32), MILES_EINVAL);
    const int64_t nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1}, huge[2] = {INT64_C(1) << 40, INT64_C(1) << 40};
    assert_int_equal(miles_safetensors_writer_add(w, "nd9", MILES_DT_F32, 9, nine, f32), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "invalid ndim 9"));
    assert_int_equal(miles_safetensors_writer_add(w, "huge", MILES_DT_F32, 2, huge, f32), MILES_EINVAL);
    assert_non_null(strstr(miles_last_error(), "'huge': too many elements"));
    assert_int_equal(miles_safetensors_writer_add(w, "__metadata__", MILES_DT_F32, 1, shp, f32), MILES_EINVAL);
    assert_int_equal(miles_safetensors_writer_add(w, "scalar", MILES_DT_F32, 0, NULL, &f32[7]), MILES_OK);
    /* empty tensors (a zero dimension: the Python library writes them, begin ==
     * end) and the most dimensions there may be */
    const int64_t e04[2] = {0, 4}, e30[2] = {3, 0}, nd8[8] = {1, 2, 1, 1, 3, 1, 1, 2};
    assert_int_equal(miles_safetensors_writer_add(w, "empty.a", MILES_DT_F32, 2, e04, f32), MILES_OK);
    assert_int_equal(miles_safetensors_writer_add(w, "empty.b", MILES_DT_I32, 2, e30, i32), MILES_OK);
    assert_int_equal(miles_safetensors_writer_add(w, "nd8", MILES_DT_F32, 8, nd8, f32), MILES_OK);
    const char *tricky = "quote\" backslash\\ newline\n cr\r tab\t bs\b ff\f ctl\x01\x1f utf8 caf\xc3\xa9 \xf0\x9f\x94\xa5";
    assert_int_equal(miles_safetensors_writer_metadata(w, "tricky", tricky), MILES_OK);
    assert_int_equal(miles_safetensors_writer_metadata(w, "k", "old"), MILES_OK);
    assert_int_equal(miles_safetensors_writer_metadata(w, "k", "new"), MILES_OK);
    assert_int_equal(miles_safetensors_writer_finish(w), MILES_OK);

    size_t fsz;
    unsigned char *raw = slurp(path, &fsz);
    uint64_t hl = 0;
    for (int k = 7; k >= 0; k--) hl = hl << 8 | raw[k];
    assert_int_equal(hl % 8, 0);   /* padded header */
    free(raw);

    MilesSafetensors *st;
    int rc = miles_safetensors_open(&st, path);
    if (rc) fail_msg("%s", miles_last_error());
    assert_int_equal(miles_safetensors_count(st), 214);
    assert_string_equal(miles_safetensors_metadata(st, "tricky"), tricky);
    {
        int gdt, nd;
        int64_t sh[8];
        size_t n, nb;
        int i = miles_safetensors_find(st, "empty.a");
        assert_int_equal(miles_safetensors_info(st, i, &gdt, &nd, sh, &n), MILES_OK);
        assert_true(gdt == MILES_DT_F32 && nd == 2 && sh[0] == 0 && sh[1] == 4 && n == 0);
        (void)miles_safetensors_data(st, i, &nb);
        assert_int_equal(nb, 0);
        i = miles_safetensors_find(st, "empty.b");
        assert_int_equal(miles_safetensors_info(st, i, &gdt, &nd, sh, &n), MILES_OK);
        assert_true(gdt == MILES_DT_I32 && nd == 2 && sh[0] == 3 && sh[1] == 0 && n == 0);
        i = miles_safetensors_find(st, "nd8");
        assert_int_equal(miles_safetensors_info(st, i, &gdt, &nd, sh, &n), MILES_OK);
        assert_true(nd == 8 && n == 12 && sh[4] == 3 && sh[7] == 2);
        float r12[12];
        assert_int_equal(miles_safetensors_read_f32(st, i, r12, 12), MILES_OK);
        assert_memory_equal(r12, f32, sizeof r12);
    }
    assert_string_equal(miles_safetensors_metadata(st, "k"), "new");
    size_t esz[10] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
    for (int dt = 0; dt < 10; dt++) {
        snprintf(name, sizeof name, "t.%s", miles_dtype_name(dt));
        int i = miles_safetensors_find(st, name), gdt, nd;
        int64_t sh[8];
        size_t n, nb;
        assert_true(i >= 0);
        assert_int_equal(miles_safetensors_info(st, i, &gdt, &nd, sh, &n), MILES_OK);
        assert_int_equal(gdt, dt);
        assert_int_equal(nd, 3);
        assert_int_equal(sh[0], 3);
        assert_int_equal(sh[1], 4);
        assert_int_equal(sh[2], 25);
        assert_int_equal(n, N);
        const void *d = miles_safetensors_data(st, i, &nb);
        assert_int_equal(nb, N * esz[dt]);
        assert_memory_equal(d, ptr[dt], nb);
        /* data must be naturally aligned (dtype-sorted, 8-byte padded header) */
        assert_int_equal((uintptr_t)d % esz[dt], 0);
    }
    float fr[N];
    int32_t ir[N];
    assert_int_equal(miles_safetensors_read_f32(st, miles_safetensors_find(st, "t.F64"), fr, N), MILES_OK);
    for (int k = 0; k < N; k++) assert_true(fr[k] == (float)f64[k]);
    assert_int_equal(miles_safetensors_read_i32(st, miles_safetensors_find(st, "t.I16"), ir, N), MILES_OK);
    for (int k = 0; k < N; k++) assert_int_equal(ir[k], i16[k]);
    assert_int_equal(miles_safetensors_read_i32(st, miles_safetensors_find(st, "t.U8"), ir, N), MILES_OK);
    for (int k = 0; k < N; k++) assert_int_equal(ir[k], u8[k]);
    for (int k = 0; k < 200; k++) {
        snprintf(name, sizeof name, "many.%03d.weight", k);
        int i = miles_safetensors_find(st, name);
        assert_true(i >= 0);
        assert_string_equal(miles_safetensors_name(st, i), name);
        assert_int_equal(miles_safetensors_read_f32(st, i, fr, 1), MILES_OK);
        assert_int_equal(fbits(fr[0]), fbits(f32[k]));
    }
    /* in-memory open of the same bytes agrees */
    size_t n;
    unsigned char *buf = slurp(path, &n);
    MilesSafetensors *sm;
    assert_int_equal(miles_safetensors_open_memory(&sm, buf, n, "mem"), MILES_OK);
    assert_int_equal(miles_safetensors_count(sm), 214);
    miles_safetensors_close(sm);
    free(buf);
    miles_safetensors_close(st);
    assert_int_equal(count_dir_entries(), 2);   /* rt + single (from the test before), no temp files */
}

/* ------------------------------------------------------------ malformed */

/* Write [u64 hlen][header][data] (hlen = strlen(header) unless given). */
static void write_raw(const char *path, int64_t hlen, const char *header, size_t ndata) {
    size_t hn = strlen(header);
    uint64_t L = hlen >= 0 ? (uint64_t)hlen : hn;
    unsigned char *b = calloc(1, 8 + hn + ndata + 1);
    for (int k = 0; k < 8; k++) b[k] = (unsigned char)(L >> (8 * k));
    memcpy(b + 8, header, hn);
    for (size_t k = 0; k < ndata; k++) b[8 + hn + k] = (unsigned char)(k * 37);
    spit(path, b, 8 + hn + ndata);
    free(b);
}

typedef struct Bad {
    const char *what;
    int64_t hlen;          /* -1: the header's length */
    const char *header;
    size_t ndata;
    const char *expect;    /* substring of the message (besides the file name) */
} Bad;

static void test_malformed(void **state) {
    (void)state;
    static const Bad cases[] = {
        {"header length past EOF", 1000, "{}", 0, "past the end"},
        {"huge header length", INT64_MAX, "{}", 0, "past the end"},
        {"not JSON", -1, "{nope", 0, "parse error"},
        {"JSON array", -1, "[1,2]  ", 0, "not a JSON object"},
        {"JSON string", -1, "\"abc\"   ", 0, "not a JSON object"},
        {"trailing garbage", -1, "{} xyz  ", 0, "trailing garbage"},
        {"entry not object", -1, "{\"w\":[1,2]}", 0, "'w'"},
        {"missing dtype", -1, "{\"w.missing_dtype\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing \"dtype\""},
        {"missing shape", -1, "{\"w.missing_shape\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "missing \"shape\""},
        {"missing offsets", -1, "{\"w.missing_off\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, "missing \"data_offsets\""},
        {"unknown dtype", -1, "{\"w.q\":{\"dtype\":\"Q4_K\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "Q4_K"},
        {"dtype not string", -1, "{\"w.q\":{\"dtype\":4,\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "not a string"},
        {"offsets out of range", -1, "{\"w.oor\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, "out of range"},
        {"begin > end", -1, "{\"w.rev\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,0]}}", 8, "begin 8 > end 0"},
        {"length != numel*size", -1, "{\"w.len\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 16, "byte length 8"},
        {"overlap", -1, "{\"w.a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                        "\"w.b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 16, "overlap"},
        {"negative dim", -1, "{\"w.neg\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8, "negative dimension"},
        {"fractional dim", -1, "{\"w.frac\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "shape[0]"},
        {"numel overflow", -1, "{\"w.ovf\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,8]}}",
         8, "overflows"},
        {"numel*size overflow", -1, "{\"w.ovf2\":{\"dtype\":\"F64\",\"shape\":[1125899906842624,4096],\"data_offsets\":[0,8]}}",
         8, "overflows"},
        {"too many dims", -1, "{\"w.nd\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8, "dimensions"},
        {"offsets not pair", -1, "{\"w.op\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, "[begin, end]"},
        {"negative offset", -1, "{\"w.no\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-8,0]}}", 8, "non-negative"},
        {"duplicate name", -1, "{\"w.d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                               "\"w.d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "duplicate tensor name 'w.d'"},
        {"metadata not object", -1, "{\"__metadata__\":[1]}", 0, "__metadata__"},
        {"duplicate metadata key", -1, "{\"__metadata__\":{\"epoch\":\"1\",\"epoch\":\"2\"}}", 0,
         "duplicate \"__metadata__\" key 'epoch'"},
        {"shape not array", -1, "{\"w.sa\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
         "\"shape\" is not an array"},
        /* the per-tensor CRC-32 map of checkpoints (MILES_META_CRC32); tensor
         * entries first where the message must name the tensor ("w." above) */
        {"crc map not object", -1, "{\"__metadata__\":{\"" MILES_META_CRC32 "\":\"[1]\"},"
                                   "\"t.c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "\"" MILES_META_CRC32 "\" is not a JSON object"},
        {"crc map too short", -1, "{\"__metadata__\":{\"" MILES_META_CRC32 "\":\"{}\"},"
                                  "\"t.c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "lists 0 tensors, the file has 1"},
        {"crc not 8 hex digits", -1, "{\"w.c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                     "\"__metadata__\":{\"" MILES_META_CRC32 "\":\"{\\\"w.c\\\":\\\"12345678x\\\"}\"}}", 8, "no valid CRC-32"},
        {"crc not hex", -1, "{\"w.c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                            "\"__metadata__\":{\"" MILES_META_CRC32 "\":\"{\\\"w.c\\\":\\\"1234567g\\\"}\"}}", 8, "no valid CRC-32"},
        {"crc of another tensor", -1, "{\"w.c\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                                      "\"__metadata__\":{\"" MILES_META_CRC32 "\":\"{\\\"x.y\\\":\\\"12345678\\\"}\"}}", 8, "no valid CRC-32"},
        {"metadata value not string", -1, "{\"__metadata__\":{\"epoch\":3}}", 0, "epoch"},
        {"too short", 0, "", 0, "too short"},
    };
    char path[512];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const Bad *b = &cases[c];
        snprintf(path, sizeof path, "%s/bad%02zu.safetensors", tmpdir, c);
        if (strcmp(b->what, "too short") == 0) spit(path, "\x02\0\0", 3);
        else write_raw(path, b->hlen, b->header, b->ndata);
        MilesSafetensors *st = (MilesSafetensors *)0x1;
        int rc = miles_safetensors_open(&st, path);
        const char *msg = miles_last_error();
        print_message("%-26s -> %s: %s\n", b->what, miles_status_name(rc), msg);
        if (rc != MILES_EFORMAT) fail_msg("%s: expected MILES_EFORMAT, got %s", b->what, miles_status_name(rc));
        assert_null(st);
        if (!strstr(msg, path)) fail_msg("%s: message does not name the file: %s", b->what, msg);
        if (!strstr(msg, b->expect)) fail_msg("%s: message lacks '%s': %s", b->what, b->expect, msg);
        /* names the tensor where there is one */
        const char *q = strstr(b->header, "\"w.");
        if (q) {
            char tn[64];
            sscanf(q + 1, "%63[^\"]", tn);
            if (!strstr(msg, tn)) fail_msg("%s: message does not name tensor %s: %s", b->what, tn, msg);
        }
        unlink(path);
    }
    MilesSafetensors *st;
    snprintf(path, sizeof path, "%s/does_not_exist.safetensors", tmpdir);
    assert_int_equal(miles_safetensors_open(&st, path), MILES_EMISSING);
    assert_non_null(strstr(miles_last_error(), path));

    /* a header over the 100 MB limit, in a file long enough to hold it (sparse) */
    snprintf(path, sizeof path, "%s/bighdr.safetensors", tmpdir);
    {
        const uint64_t L = 100000001;
        unsigned char len8[8];
        for (int k = 0; k < 8; k++) len8[k] = (unsigned char)(L >> (8 * k));
        spit(path, len8, 8);
        assert_int_equal(truncate(path, (off_t)(8 + L + 8)), 0);
        assert_int_equal(miles_safetensors_open(&st, path), MILES_EFORMAT);
        print_message("%-26s -> %s\n", "header of 100 MB + 1", miles_last_error());
        assert_non_null(strstr(miles_last_error(), "header length 100000001 exceeds the 100 MB limit"));
        unlink(path);
    }
    /* BOOL bytes other than 0 / 1: refused when read, naming tensor and element */
    snprintf(path, sizeof path, "%s/bool.safetensors", tmpdir);
    write_raw(path, -1, "{\"flags\":{\"dtype\":\"BOOL\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4);
    assert_int_equal(miles_safetensors_open(&st, path), MILES_OK);
    int32_t flags[4];
    assert_int_equal(miles_safetensors_read_i32(st, 0, flags, 4), MILES_ERANGE);   /* bytes 0, 37, 74, 111 */
    assert_non_null(strstr(miles_last_error(), "tensor 'flags' element 1: BOOL byte 37 is not 0 or 1"));
    miles_safetensors_close(st);
    unlink(path);

    /* gaps and zero-size tensors at shared offsets are legal */
    snprintf(path, sizeof path, "%s/gap.safetensors", tmpdir);
    write_raw(path, -1, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]},"
                        "\"e1\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,8]},"
                        "\"e2\":{\"dtype\":\"I8\",\"shape\":[5,0],\"data_offsets\":[8,8]}}", 12);
    assert_int_equal(miles_safetensors_open(&st, path), MILES_OK);
    assert_int_equal(miles_safetensors_count(st), 3);
    miles_safetensors_close(st);
    /* but bytes after the last tensor are refused (as the Python library does):
     * they are what a header length too small gives */
    write_raw(path, -1, "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 16);
    assert_int_equal(miles_safetensors_open(&st, path), MILES_EFORMAT);
    assert_non_null(strstr(miles_last_error(), "4 bytes after the last tensor"));
    unlink(path);
}

/* Every truncation of a valid file is refused; random corruptions never crash. */
static void test_truncation_and_corruption(void **state) {
    (void)state;
    size_t n;
    unsigned char *buf = slurp(FIX_SINGLE, &n);
    assert_non_null(buf);
    MilesSafetensors *st;
    for (size_t len = 0; len < n; len++) {
        unsigned char *cp = malloc(len + 1);   /* exact-size copy: ASan catches over-reads */
        memcpy(cp, buf, len);
        int rc = miles_safetensors_open_memory(&st, cp, len, "trunc");
        if (rc != MILES_EFORMAT) fail_msg("truncated to %zu of %zu bytes: %s", len, n, miles_status_name(rc));
        free(cp);
    }
    uint64_t s = 99;
    int ok = 0, refused = 0;
    for (int it = 0; it < 20000; it++) {
        unsigned char *cp = malloc(n);
        memcpy(cp, buf, n);
        int flips = 1 + it % 4;
        for (int f = 0; f < flips; f++) {
            s = s * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t pos = (size_t)(s >> 33) % n;
            cp[pos] = (unsigned char)(s >> 8);
        }
        int rc = miles_safetensors_open_memory(&st, cp, n, "corrupt");
        if (rc == MILES_OK) {
            /* whatever it says must be readable within bounds */
            for (int i = 0; i < miles_safetensors_count(st); i++) {
                int dt;
                size_t ne;
                miles_safetensors_info(st, i, &dt, NULL, NULL, &ne);
                void *dst = malloc(ne * 4 + 4);
                if (dt <= MILES_DT_F64) miles_safetensors_read_f32(st, i, dst, ne);
                else miles_safetensors_read_i32(st, i, dst, ne);
                free(dst);
            }
            miles_safetensors_close(st);
            ok++;
        } else {
            assert_true(rc == MILES_EFORMAT);
            refused++;
        }
        free(cp);
    }
    print_message("corruption: %d opened, %d refused, 0 crashes\n", ok, refused);
    free(buf);
}

/* --------------------------------------------------------------- atomic */

static void test_atomic_abort(void **state) {
    (void)state;
    char path[512];
    snprintf(path, sizeof path, "%s/atomic.safetensors", tmpdir);
    int before = count_dir_entries();
    const float x[4] = {1, 2, 3, 4};
    const int64_t s4 = 4;
    MilesSafetensorsWriter *w;
    /* abort with nothing there before: nothing left */
    assert_int_equal(miles_safetensors_writer_open(&w, path), MILES_OK);
    assert_int_equal(count_dir_entries(), before + 1);   /* the temp file */
    assert_int_equal(miles_safetensors_writer_add(w, "x", MILES_DT_F32, 1, &s4, x), MILES_OK);
    miles_safetensors_writer_abort(w);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(count_dir_entries(), before);
    miles_safetensors_writer_abort(NULL);

    /* abort over an existing file: it is untouched */
    spit(path, "previous", 8);
    assert_int_equal(miles_safetensors_writer_open(&w, path), MILES_OK);
    assert_int_equal(miles_safetensors_writer_add(w, "x", MILES_DT_F32, 1, &s4, x), MILES_OK);
    miles_safetensors_writer_abort(w);
    size_t n;
    unsigned char *b = slurp(path, &n);
    assert_int_equal(n, 8);
    assert_memory_equal(b, "previous", 8);
    free(b);
    assert_int_equal(count_dir_entries(), before + 1);

    /* finish replaces it in one step */
    assert_int_equal(miles_safetensors_writer_open(&w, path), MILES_OK);
    assert_int_equal(miles_safetensors_writer_add(w, "x", MILES_DT_F32, 1, &s4, x), MILES_OK);
    assert_int_equal(miles_safetensors_writer_finish(w), MILES_OK);
    MilesSafetensors *st;
    assert_int_equal(miles_safetensors_open(&st, path), MILES_OK);
    float y[4];
    assert_int_equal(miles_safetensors_read_f32(st, 0, y, 4), MILES_OK);
    assert_memory_equal(x, y, sizeof x);
    miles_safetensors_close(st);
    assert_int_equal(count_dir_entries(), before + 1);
    unlink(path);

    /* unwritable destination: clear error at open */
    assert_int_equal(miles_safetensors_writer_open(&w, "/nonexistent-dir/x.safetensors"), MILES_EIO);
    assert_non_null(strstr(miles_last_error(), "/nonexistent-dir/x.safetensors"));
}

/* tests/fixtures/st_miles_crc.safetensors was written by this writer with both
 * CRCs (tensor_crc32, header_crc32: a miles-checkpoint-4 header's) from the
 * inputs below.  It must still open (every reader of an older -4 checkpoint
 * computes the header CRC's canonical text the same way), and the writer must
 * still produce it byte for byte: a change of either form fails here first. */
#define FIX_CRC "tests/fixtures/st_miles_crc.safetensors"
void miles_safetensors_writer_crc(MilesSafetensorsWriter *w); /* internal.h */
static void test_crc_format_pinned(void **state) {
    (void)state;
    MilesSafetensors *st = NULL;
    assert_int_equal(miles_safetensors_open(&st, FIX_CRC), MILES_OK);
    assert_string_equal(miles_safetensors_metadata(st, "header_crc32"), "87ecfb3c");
    assert_non_null(miles_safetensors_metadata(st, "tensor_crc32"));
    miles_safetensors_close(st);
    char path[512];
    snprintf(path, sizeof path, "%s/crc.safetensors", tmpdir);
    MilesSafetensorsWriter *w = NULL;
    assert_int_equal(miles_safetensors_writer_open(&w, path), MILES_OK);
    miles_safetensors_writer_crc(w);
    float a[4] = {1, 2, 3, 4};
    int32_t b[2] = {7, 8};
    int64_t s1[2] = {2, 2}, s2[1] = {2};
    assert_int_equal(miles_safetensors_writer_add(w, "a", MILES_DT_F32, 2, s1, a), MILES_OK);
    assert_int_equal(miles_safetensors_writer_add(w, "b", MILES_DT_I32, 1, s2, b), MILES_OK);
    assert_int_equal(miles_safetensors_writer_metadata(w, "format", "miles-checkpoint-4"), MILES_OK);
    assert_int_equal(miles_safetensors_writer_metadata(w, "config", "{\"layer_norm_eps\":1e-12}"), MILES_OK);
    assert_int_equal(miles_safetensors_writer_finish(w), MILES_OK);
    test_assert_same_file(path, FIX_CRC);
    unlink(path); /* test_round_trip counts the directory's files */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_format_pinned),
        cmocka_unit_test(test_read_python_fixture),
        cmocka_unit_test(test_writer_matches_python),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_truncation_and_corruption),
        cmocka_unit_test(test_atomic_abort),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
