/*
 * test_tbevents.c — the TensorBoard event writer produces files that parse:
 * TFRecord framing, masked CRC-32C on length and payload, Event protobufs with
 * the scalars we wrote.  The parser here is independent of the writer's code.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>
#include <time.h>
#include <unistd.h>

#include "miles.h"
#include "tbevents.h"

/* Bitwise reference CRC-32C, deliberately not table-driven. */
static uint32_t ref_crc32c(const unsigned char *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
    }
    return ~c;
}
static uint32_t ref_masked(const unsigned char *p, size_t n) {
    uint32_t c = ref_crc32c(p, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

static void test_crc32c_known_answer(void **state) {
    (void)state;
    /* standard check value for CRC-32C */
    assert_int_equal(tb_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(tb_crc32c(0, "", 0), 0u);
    /* incremental == one-shot */
    uint32_t c = tb_crc32c(0, "1234", 4);
    assert_int_equal(tb_crc32c(c, "56789", 5), 0xE3069283u);
}

static uint64_t rd_varint(const unsigned char **p, const unsigned char *end) {
    uint64_t v = 0;
    int sh = 0;
    while (*p < end) {
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << sh;
        if (!(b & 0x80)) return v;
        sh += 7;
    }
    fail_msg("truncated varint");
    return 0;
}

typedef struct { double wall; int64_t step; char version[64]; char tag[128]; float value; int has_value; } Ev;

static void parse_value(const unsigned char *p, const unsigned char *end, Ev *ev) {
    while (p < end) {
        uint64_t key = rd_varint(&p, end);
        int f = (int)(key >> 3), w = (int)(key & 7);
        if (f == 1 && w == 2) {
            uint64_t n = rd_varint(&p, end);
            assert_true(n < sizeof ev->tag);
            memcpy(ev->tag, p, n); ev->tag[n] = 0; p += n;
        } else if (f == 2 && w == 5) {
            memcpy(&ev->value, p, 4); p += 4; ev->has_value = 1;
        } else fail_msg("unexpected field %d/%d in Value", f, w);
    }
}

static void parse_event(const unsigned char *p, const unsigned char *end, Ev *ev) {
    memset(ev, 0, sizeof *ev);
    while (p < end) {
        uint64_t key = rd_varint(&p, end);
        int f = (int)(key >> 3), w = (int)(key & 7);
        if (f == 1 && w == 1) { memcpy(&ev->wall, p, 8); p += 8; }
        else if (f == 2 && w == 0) ev->step = (int64_t)rd_varint(&p, end);
        else if (f == 3 && w == 2) {
            uint64_t n = rd_varint(&p, end);
            assert_true(n < sizeof ev->version);
            memcpy(ev->version, p, n); ev->version[n] = 0; p += n;
        } else if (f == 5 && w == 2) {
            uint64_t n = rd_varint(&p, end);
            const unsigned char *se = p + n;
            while (p < se) {
                uint64_t k2 = rd_varint(&p, se);
                assert_int_equal(k2, (1 << 3) | 2);
                uint64_t m = rd_varint(&p, se);
                parse_value(p, p + m, ev);
                p += m;
            }
        } else fail_msg("unexpected field %d/%d in Event", f, w);
    }
}

static void test_event_file_parses(void **state) {
    (void)state;
    char dir[] = "/tmp/tb_XXXXXX";
    assert_non_null(mkdtemp(dir));
    TBWriter *w = NULL;
    assert_int_equal(tb_open(&w, dir), MILES_OK);
    const char *tags[3] = {"train/loss", "train/lr", "val/auroc"};
    /* steps: 0, 10, ... 490, then the varint edges 127, 128, 16383, 16384 and 2^35 */
    static const int64_t edge[5] = {127, 128, 16383, 16384, 34359738368LL};
    for (int step = 0; step < 55; step++)
        for (int t = 0; t < 3; t++)
            assert_int_equal(tb_scalar(w, tags[t], step < 50 ? step * 10 : edge[step - 50], 0.5f * step + t), MILES_OK);
    double t_written = (double)time(NULL);
    char path[4096];
    snprintf(path, sizeof path, "%s", tb_path(w));
    tb_close(w);

    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc(n);
    assert_int_equal(fread(buf, 1, n, f), (size_t)n);
    fclose(f);

    long off = 0;
    int rec = 0;
    while (off < n) {
        assert_true(off + 12 <= n);
        uint64_t len;
        uint32_t c1, c2;
        memcpy(&len, buf + off, 8);
        memcpy(&c1, buf + off + 8, 4);
        assert_int_equal(c1, ref_masked(buf + off, 8));
        assert_true(off + 12 + (long)len + 4 <= n);
        memcpy(&c2, buf + off + 12 + len, 4);
        assert_int_equal(c2, ref_masked(buf + off + 12, len));
        Ev ev;
        parse_event(buf + off + 12, buf + off + 12 + len, &ev);
        assert_true(fabs(ev.wall - t_written) < 60);   /* seconds since the epoch, now */
        if (rec == 0) {
            assert_string_equal(ev.version, "brain.Event:2");
        } else {
            int k = rec - 1;
            assert_true(ev.has_value);
            assert_string_equal(ev.tag, tags[k % 3]);
            assert_int_equal(ev.step, k / 3 < 50 ? (k / 3) * 10 : edge[k / 3 - 50]);
            assert_true(ev.value == 0.5f * (k / 3) + (k % 3));
        }
        off += 12 + len + 4;
        rec++;
    }
    assert_int_equal(rec, 1 + 165);
    printf("parsed %d records from %s (%ld bytes), all CRCs valid\n", rec, path, n);
    free(buf);
    unlink(path);
    rmdir(dir);
}

static void test_open_bad_dir(void **state) {
    (void)state;
    TBWriter *w = NULL;
    assert_int_equal(tb_open(&w, "/nonexistent/dir/for/miles"), MILES_EIO);
    assert_null(w);
    assert_non_null(strstr(miles_last_error(), "/nonexistent/dir/for/miles"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c_known_answer),
        cmocka_unit_test(test_event_file_parses),
        cmocka_unit_test(test_open_bad_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
