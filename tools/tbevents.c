/*
 * tbevents.c — TensorBoard event files without TensorFlow.
 *
 * An event file is a sequence of TFRecords:
 *   uint64 length (LE) | uint32 masked_crc32c(length bytes) | data | uint32 masked_crc32c(data)
 * where data is a serialized tensorflow.Event protobuf.  We only need three
 * message shapes, so they are encoded by hand (the wire format is tiny):
 *   Event   { double wall_time = 1; int64 step = 2; string file_version = 3; Summary summary = 5; }
 *   Summary { repeated Value value = 1; }
 *   Value   { string tag = 1; float simple_value = 2; }
 * The first record carries file_version "brain.Event:2", as TensorBoard expects.
 * Used by miles-train to render its training events (the library never writes logs).
 */
#include "tbevents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <sys/time.h>
#include <unistd.h>

struct TBWriter {
    FILE *fp;
    char path[4096];
};

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), byte-wise table. */
static uint32_t crc32c_table[256];
static int crc32c_ready;

static void crc32c_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc32c_table[i] = c;
    }
    crc32c_ready = 1;
}

uint32_t tb_crc32c(uint32_t crc, const void *data, size_t n) {
    if (!crc32c_ready) crc32c_init(); /* idempotent: a benign race writes identical values */
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) crc = crc32c_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t masked_crc(const void *data, size_t n) {
    uint32_t c = tb_crc32c(0, data, n);
    return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

/* ---- protobuf wire encoding into a small buffer ---- */
typedef struct { unsigned char b[1024]; size_t n; int overflow; } PB;

static void pb_byte(PB *pb, unsigned char c) {
    if (pb->n < sizeof pb->b) pb->b[pb->n++] = c; else pb->overflow = 1;
}
static void pb_varint(PB *pb, uint64_t v) {
    while (v >= 0x80) { pb_byte(pb, (unsigned char)(v | 0x80)); v >>= 7; }
    pb_byte(pb, (unsigned char)v);
}
static void pb_key(PB *pb, int field, int wire) { pb_varint(pb, ((uint64_t)field << 3) | (unsigned)wire); }
static void pb_bytes(PB *pb, int field, const void *data, size_t n) {
    pb_key(pb, field, 2);
    pb_varint(pb, n);
    for (size_t i = 0; i < n; i++) pb_byte(pb, ((const unsigned char *)data)[i]);
}
static void pb_fixed(PB *pb, const void *le, int nbytes) {
    /* x86-64 and aarch64 are little-endian, which is protobuf's fixed encoding */
    for (int i = 0; i < nbytes; i++) pb_byte(pb, ((const unsigned char *)le)[i]);
}

static double now_seconds(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + tv.tv_usec * 1e-6;
}

static int write_record(TBWriter *w, const unsigned char *data, size_t n) {
    unsigned char hdr[8];
    uint64_t len = n;
    memcpy(hdr, &len, 8);
    uint32_t c1 = masked_crc(hdr, 8), c2 = masked_crc(data, n);
    if (fwrite(hdr, 1, 8, w->fp) != 8 || fwrite(&c1, 1, 4, w->fp) != 4 ||
        fwrite(data, 1, n, w->fp) != n || fwrite(&c2, 1, 4, w->fp) != 4)
        return miles_set_error(MILES_EIO, "%s: write failed: %s", w->path, strerror(errno));
    return MILES_OK;
}

int tb_open(TBWriter **out, const char *dir) {
    *out = NULL;
    TBWriter *w = calloc(1, sizeof *w);
    if (!w) return MILES_ENOMEM;
    char host[256] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%ld.%s", dir, (long)now_seconds(), host);
    w->fp = fopen(w->path, "wb");
    if (!w->fp) {
        int e = errno;
        free(w);
        return miles_set_error(MILES_EIO, "%s/events.out.tfevents.*: cannot create: %s", dir, strerror(e));
    }
    PB pb = {0};
    double t = now_seconds();
    pb_key(&pb, 1, 1);
    pb_fixed(&pb, &t, 8);
    pb_bytes(&pb, 3, "brain.Event:2", 13);
    int s = write_record(w, pb.b, pb.n);
    if (s == MILES_OK) s = tb_flush(w);
    if (s != MILES_OK) { tb_close(w); return s; }
    *out = w;
    return MILES_OK;
}

int tb_scalar(TBWriter *w, const char *tag, int64_t step, float value) {
    size_t tl = strlen(tag);
    if (tl > 512) return miles_set_error(MILES_EINVAL, "tensorboard tag too long: %.40s...", tag);
    PB val = {0}, sum = {0}, ev = {0};
    pb_bytes(&val, 1, tag, tl);
    pb_key(&val, 2, 5);
    pb_fixed(&val, &value, 4);
    pb_bytes(&sum, 1, val.b, val.n);
    double t = now_seconds();
    pb_key(&ev, 1, 1);
    pb_fixed(&ev, &t, 8);
    pb_key(&ev, 2, 0);
    pb_varint(&ev, (uint64_t)step);
    pb_bytes(&ev, 5, sum.b, sum.n);
    if (val.overflow || sum.overflow || ev.overflow)
        return miles_set_error(MILES_EINTERNAL, "tensorboard record overflow for tag %s", tag);
    return write_record(w, ev.b, ev.n);
}

int tb_flush(TBWriter *w) {
    if (fflush(w->fp) != 0) return miles_set_error(MILES_EIO, "%s: flush failed: %s", w->path, strerror(errno));
    return MILES_OK;
}

const char *tb_path(const TBWriter *w) { return w ? w->path : ""; }

void tb_close(TBWriter *w) {
    if (!w) return;
    if (w->fp) fclose(w->fp);
    free(w);
}
