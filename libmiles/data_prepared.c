/*
 * data_prepared.c — the prepared-data file ("MILESDAT"): writer (atomic) and
 * reader (verifies magic, version, sizes, CRC-32s and values), plus CRC-32.
 *
 * Layout (little-endian; docs/data.md has the table).  A 192-byte header,
 * then sections, each starting at a 64-byte aligned file offset, examples
 * ordered train, val, test so each split is a contiguous slice:
 *   json[json_len] split u8[n] labels i32[n] velocity_raw f64[n]
 *   velocity f32[n] features_raw f64[n*18] features f32[n*18] avail u32[n]
 *   creator i32[n] lengths i32[n] input_ids i32[n*T] title_off u64[n]
 *   row_id_off u64[n] strings[strings_len]
 * Header bytes 128..191 (zero in files written before them, which still load)
 * record how the rows were split, with their own CRC: the header CRC at 124
 * covers only 0..123, and older readers ignore these bytes.
 */

#include "data_internal.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <pthread.h>

#define HDR_SIZE 192
#define PREP_VERSION 1
/* provenance block: flags u32 (bit 0 recorded, bit 1 dedup), split_by u32,
 * seed u64, train_frac f64, language char[32], reserved u32, CRC-32 of 128..187 */
#define PROV_OFF 128
#define PROV_CRC 188

/* ---------------------------------------------------------------- CRC-32 */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

uint32_t miles_crc32(uint32_t crc, const void *buf, size_t n) {
    pthread_once(&crc_once, crc_init);
    const unsigned char *p = buf;
    crc = ~crc;
    while (n--) crc = crc_table[(crc ^ *p++) & 0xFF] ^ (crc >> 8);
    return ~crc;
}

/* ---------------------------------------------------------------- layout */

typedef struct {
    size_t json, split, labels, vraw, vel, fraw, feat, avail, creator, lengths, ids, title_off, id_off, strings, end;
} Layout;

static size_t align64(size_t x) { return (x + 63) & ~(size_t)63; }

/* Section offsets; 0 on overflow. */
static int layout_compute(uint64_t n, uint64_t T, uint64_t json_len, uint64_t strings_len, Layout *L) {
    if (n > ((uint64_t)1 << 40) || T > 65536 || json_len > ((uint64_t)1 << 40) || strings_len > ((uint64_t)1 << 40))
        return -1;
    size_t o = HDR_SIZE;
#define SEC(field, bytes) do { L->field = o; o = align64(o + (size_t)(bytes)); } while (0)
    SEC(json, json_len);
    SEC(split, n);
    SEC(labels, n * 4);
    SEC(vraw, n * 8);
    SEC(vel, n * 4);
    SEC(fraw, n * MILES_NUM_FEATURES * 8);
    SEC(feat, n * MILES_NUM_FEATURES * 4);
    SEC(avail, n * 4);
    SEC(creator, n * 4);
    SEC(lengths, n * 4);
    SEC(ids, n * T * 4);
    SEC(title_off, n * 8);
    SEC(id_off, n * 8);
    L->strings = o;
    L->end = o + (size_t)strings_len;
#undef SEC
    return 0;
}

static void put32(unsigned char *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static void put64(unsigned char *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i)); }
static uint32_t get32(const unsigned char *p) { uint32_t v = 0; for (int i = 3; i >= 0; i--) v = v << 8 | p[i]; return v; }
static uint64_t get64(const unsigned char *p) { uint64_t v = 0; for (int i = 7; i >= 0; i--) v = v << 8 | p[i]; return v; }

static int is_little_endian(void) { uint16_t x = 1; return *(unsigned char *)&x == 1; }

/* ---------------------------------------------------------------- writer */

typedef struct { FILE *fp; uint32_t crc; size_t pos; int err; } Sink;
static void sink_write(Sink *s, const void *p, size_t n) {
    if (s->err || n == 0) return;
    if (fwrite(p, 1, n, s->fp) != n) { s->err = 1; return; }
    s->crc = miles_crc32(s->crc, p, n);
    s->pos += n;
}
static void sink_pad_to(Sink *s, size_t off) {
    static const unsigned char zeros[64];
    while (s->pos < off) {
        size_t k = off - s->pos < 64 ? off - s->pos : 64;
        sink_write(s, zeros, k);
    }
}

int data_prepared_write(const char *path, const DataPreparedOut *d) {
    if (!is_little_endian()) return miles_error(MILES_EUNSUPPORTED, "prepared files are little-endian; big-endian hosts unsupported");
    uint64_t n = (uint64_t)d->n, T = (uint64_t)d->max_len;
    if (d->n_split[0] + d->n_split[1] + d->n_split[2] != d->n)
        return miles_error(MILES_EINTERNAL, "prepared writer: split counts do not add up");
    /* string blob: titles and row ids, NUL-terminated */
    uint64_t *toff = miles_malloc((n ? n : 1) * 8), *ioff = miles_malloc((n ? n : 1) * 8);
    if (!toff || !ioff) { free(toff); free(ioff); return MILES_ENOMEM; }
    uint64_t slen = 0;
    for (uint64_t i = 0; i < n; i++) {
        toff[i] = slen; slen += strlen(d->titles[i]) + 1;
        ioff[i] = slen; slen += strlen(d->row_ids[i]) + 1;
    }
    uint64_t jlen = strlen(d->json) + 1;
    Layout L;
    if (layout_compute(n, T, jlen, slen, &L)) { free(toff); free(ioff); return miles_error(MILES_ERANGE, "prepared file too large"); }

    MilesAtomicFile af;
    int st = miles_atomic_open(&af, path);
    if (st) { free(toff); free(ioff); return st; }
    unsigned char hdr[HDR_SIZE] = {0};
    Sink s = {af.fp, 0, 0, 0};
    if (fwrite(hdr, 1, HDR_SIZE, af.fp) != HDR_SIZE) s.err = 1; /* placeholder; rewritten at the end */
    s.pos = HDR_SIZE;
    sink_write(&s, d->json, jlen);
    sink_pad_to(&s, L.split); sink_write(&s, d->split, n);
    sink_pad_to(&s, L.labels); sink_write(&s, d->labels, n * 4);
    sink_pad_to(&s, L.vraw); sink_write(&s, d->velocity_raw, n * 8);
    sink_pad_to(&s, L.vel); sink_write(&s, d->velocity, n * 4);
    sink_pad_to(&s, L.fraw); sink_write(&s, d->features_raw, n * MILES_NUM_FEATURES * 8);
    sink_pad_to(&s, L.feat); sink_write(&s, d->features, n * MILES_NUM_FEATURES * 4);
    sink_pad_to(&s, L.avail); sink_write(&s, d->avail, n * 4);
    sink_pad_to(&s, L.creator); sink_write(&s, d->creator, n * 4);
    sink_pad_to(&s, L.lengths); sink_write(&s, d->lengths, n * 4);
    sink_pad_to(&s, L.ids); sink_write(&s, d->input_ids, n * T * 4);
    sink_pad_to(&s, L.title_off); sink_write(&s, toff, n * 8);
    sink_pad_to(&s, L.id_off); sink_write(&s, ioff, n * 8);
    sink_pad_to(&s, L.strings);
    for (uint64_t i = 0; i < n; i++) {
        sink_write(&s, d->titles[i], strlen(d->titles[i]) + 1);
        sink_write(&s, d->row_ids[i], strlen(d->row_ids[i]) + 1);
    }
    free(toff); free(ioff);
    if (!s.err && s.pos != L.end) { miles_atomic_abort(&af); return miles_error(MILES_EINTERNAL, "prepared writer: size mismatch"); }

    memcpy(hdr, "MILESDAT", 8);
    put32(hdr + 8, PREP_VERSION);
    put32(hdr + 12, HDR_SIZE);
    put32(hdr + 16, MILES_NUM_FEATURES);
    put32(hdr + 20, (uint32_t)T);
    put64(hdr + 24, n);
    for (int k = 0; k < 3; k++) put64(hdr + 32 + 8 * k, (uint64_t)d->n_split[k]);
    put32(hdr + 56, (uint32_t)d->text_clean);
    snprintf((char *)hdr + 64, 32, "%s", d->vocab_hash);
    put64(hdr + 96, jlen);
    put64(hdr + 104, slen);
    put64(hdr + 112, (uint64_t)(L.end - HDR_SIZE));
    put32(hdr + 120, s.crc);
    put32(hdr + 124, miles_crc32(0, hdr, 124));
    const MilesPreparedProvenance *pv = &d->prov;
    if (pv->split_by != MILES_SPLIT_BY_UNRECORDED) {
        double tf = pv->train_frac;
        uint64_t tfb;
        memcpy(&tfb, &tf, 8);
        put32(hdr + PROV_OFF, 1u | (pv->dedup ? 2u : 0u));
        put32(hdr + PROV_OFF + 4, (uint32_t)pv->split_by);
        put64(hdr + PROV_OFF + 8, pv->seed);
        put64(hdr + PROV_OFF + 16, tfb);
        memcpy(hdr + PROV_OFF + 24, pv->language, sizeof pv->language);
        put32(hdr + PROV_CRC, miles_crc32(0, hdr + PROV_OFF, PROV_CRC - PROV_OFF));
    }
    if (!s.err && (fseek(af.fp, 0, SEEK_SET) != 0 || fwrite(hdr, 1, HDR_SIZE, af.fp) != HDR_SIZE)) s.err = 1;
    if (s.err) { miles_atomic_abort(&af); return miles_error(MILES_EIO, "%s: write failed", path); }
    return miles_atomic_commit(&af);
}

/* ---------------------------------------------------------------- reader */

struct MilesPrepared {
    char *buf; size_t size;
    MilesPreparedProvenance prov;
    uint32_t crc;              /* of the payload, as the header holds it */
    int64_t n, n_split[3], start[3];
    int max_len, text_clean;
    char vocab_hash[33];
    const char *json;
    const uint8_t *split; const int32_t *labels; const double *vraw; const float *vel;
    const double *fraw; const float *feat; const uint32_t *avail; const int32_t *creator;
    const int32_t *lengths; const int32_t *ids; const uint64_t *toff, *ioff; const char *strings;
    uint64_t strings_len;
    int32_t *mask, *type_ids;
};

void miles_prepared_free(MilesPrepared *p) {
    if (!p) return;
    free(p->buf); free(p->mask); free(p->type_ids); free(p);
}

static int refuse(MilesPrepared *p, int code, const char *path, const char *what) {
    miles_prepared_free(p);
    return miles_error(code, "%s: not a usable prepared data file: %s (re-run `miles-data prepare`)", path, what);
}

/* The split record of header bytes 128..191: all zero (an older file) or
 * flagged, checksummed and in range.  -1 when corrupt. */
static int read_provenance(const unsigned char *h, MilesPreparedProvenance *pv) {
    memset(pv, 0, sizeof *pv);
    uint32_t flags = get32(h + PROV_OFF);
    if (!(flags & 1u)) {
        for (int i = PROV_OFF; i < HDR_SIZE; i++)
            if (h[i]) return -1;
        return 0;
    }
    if (get32(h + PROV_CRC) != miles_crc32(0, h + PROV_OFF, PROV_CRC - PROV_OFF) || flags > 3) return -1;
    uint32_t by = get32(h + PROV_OFF + 4);
    uint64_t tfb = get64(h + PROV_OFF + 16);
    double tf;
    memcpy(&tf, &tfb, 8);
    if (by < MILES_SPLIT_BY_ROW || by > MILES_SPLIT_BY_CHECKPOINT || !(tf > 0 && tf < 1) ||
        !memchr(h + PROV_OFF + 24, 0, sizeof pv->language))
        return -1;
    pv->split_by = (int)by;
    pv->seed = get64(h + PROV_OFF + 8);
    pv->train_frac = tf;
    pv->dedup = (flags & 2u) != 0;
    memcpy(pv->language, h + PROV_OFF + 24, sizeof pv->language);
    return 0;
}

int miles_prepared_open(MilesPrepared **out, const char *path) {
    *out = NULL;
    if (!is_little_endian()) return miles_error(MILES_EUNSUPPORTED, "prepared files are little-endian; big-endian hosts unsupported");
    MilesPrepared *p = miles_calloc(1, sizeof *p);
    if (!p) return MILES_ENOMEM;
    int st = miles_read_file(path, &p->buf, &p->size);
    if (st) { miles_prepared_free(p); return st; }
    const unsigned char *h = (const unsigned char *)p->buf;
    if (p->size < 8 || memcmp(h, "MILESDAT", 8)) return refuse(p, MILES_EFORMAT, path, "bad magic (expected \"MILESDAT\")");
    if (p->size < HDR_SIZE) return refuse(p, MILES_EFORMAT, path, "truncated header");
    if (get32(h + 124) != miles_crc32(0, h, 124)) return refuse(p, MILES_EFORMAT, path, "header checksum mismatch (corrupt file)");
    uint32_t ver = get32(h + 8);
    if (ver != PREP_VERSION) {
        miles_prepared_free(p);
        return miles_error(MILES_EUNSUPPORTED, "%s: prepared file version %u, this build reads version %d (re-run `miles-data prepare`)",
                           path, ver, PREP_VERSION);
    }
    if (get32(h + 12) != HDR_SIZE || get32(h + 16) != MILES_NUM_FEATURES) return refuse(p, MILES_EFORMAT, path, "unexpected header size or feature count");
    uint64_t T = get32(h + 20), n = get64(h + 24);
    uint64_t ns[3] = {get64(h + 32), get64(h + 40), get64(h + 48)};
    uint64_t jlen = get64(h + 96), slen = get64(h + 104), payload = get64(h + 112);
    Layout L;
    if (T == 0 || layout_compute(n, T, jlen, slen, &L) || ns[0] > n || ns[1] > n || ns[2] > n || ns[0] + ns[1] + ns[2] != n)
        return refuse(p, MILES_EFORMAT, path, "inconsistent header counts");
    if (payload != L.end - HDR_SIZE) return refuse(p, MILES_EFORMAT, path, "inconsistent section sizes");
    if (p->size < L.end) return refuse(p, MILES_EFORMAT, path, "truncated (file shorter than its header says)");
    if (p->size > L.end) return refuse(p, MILES_EFORMAT, path, "trailing bytes after the data");
    if (get32(h + 120) != miles_crc32(0, h + HDR_SIZE, payload)) return refuse(p, MILES_EFORMAT, path, "data checksum mismatch (corrupt file)");
    if (read_provenance(h, &p->prov)) return refuse(p, MILES_EFORMAT, path, "header bytes 128..191 (split record) corrupt");
    p->crc = get32(h + 120);
    p->n = (int64_t)n;
    p->max_len = (int)T;
    p->text_clean = (int)get32(h + 56);
    memcpy(p->vocab_hash, h + 64, 32);
    p->vocab_hash[32] = '\0';
    const char *b = p->buf;
    p->json = b + L.json;
    p->split = (const uint8_t *)(b + L.split);
    p->labels = (const int32_t *)(b + L.labels);
    p->vraw = (const double *)(b + L.vraw);
    p->vel = (const float *)(b + L.vel);
    p->fraw = (const double *)(b + L.fraw);
    p->feat = (const float *)(b + L.feat);
    p->avail = (const uint32_t *)(b + L.avail);
    p->creator = (const int32_t *)(b + L.creator);
    p->lengths = (const int32_t *)(b + L.lengths);
    p->ids = (const int32_t *)(b + L.ids);
    p->toff = (const uint64_t *)(b + L.title_off);
    p->ioff = (const uint64_t *)(b + L.id_off);
    p->strings = b + L.strings;
    p->strings_len = slen;
    /* value checks: a file that passed the CRC but was written by a buggy
     * producer must still not hand out out-of-range data */
    if (jlen == 0 || p->json[jlen - 1] != '\0') return refuse(p, MILES_EFORMAT, path, "scaler JSON not terminated");
    if (slen == 0 && n > 0) return refuse(p, MILES_EFORMAT, path, "empty string table");
    if (slen > 0 && p->strings[slen - 1] != '\0') return refuse(p, MILES_EFORMAT, path, "string table not terminated");
    int64_t pos = 0;
    for (int k = 0; k < 3; k++) { p->n_split[k] = (int64_t)ns[k]; p->start[k] = pos; pos += (int64_t)ns[k]; }
    for (int64_t i = 0; i < p->n; i++) {
        int want = i < p->start[1] ? 0 : i < p->start[2] ? 1 : 2;
        if (p->split[i] != want) return refuse(p, MILES_EFORMAT, path, "examples not ordered by split");
        if (p->labels[i] != 0 && p->labels[i] != 1) return refuse(p, MILES_EFORMAT, path, "label not 0/1");
        if (p->lengths[i] < 0 || p->lengths[i] > (int32_t)T) return refuse(p, MILES_EFORMAT, path, "token length out of range");
        if (p->toff[i] >= slen || p->ioff[i] >= slen) return refuse(p, MILES_EFORMAT, path, "string offset out of range");
        if (!isfinite(p->vel[i]) || !isfinite(p->vraw[i])) return refuse(p, MILES_ENAN, path, "non-finite velocity");
        for (int f = 0; f < MILES_NUM_FEATURES; f++)
            if (!isfinite(p->feat[i * MILES_NUM_FEATURES + f])) return refuse(p, MILES_ENAN, path, "non-finite standardized feature");
        for (uint64_t t = 0; t < T; t++)
            if (p->ids[i * T + t] < 0) return refuse(p, MILES_EFORMAT, path, "negative token id");
    }
    size_t nt = (size_t)(n ? n : 1) * T;
    p->mask = miles_malloc(nt * sizeof *p->mask);
    p->type_ids = miles_calloc(nt, sizeof *p->type_ids);
    if (!p->mask || !p->type_ids) { miles_prepared_free(p); return MILES_ENOMEM; }
    for (int64_t i = 0; i < p->n; i++)
        for (uint64_t t = 0; t < T; t++) p->mask[i * T + t] = (int64_t)t < p->lengths[i];
    *out = p;
    return MILES_OK;
}

int miles_prepared_split(const MilesPrepared *p, int split, MilesDataset *v) {
    if (!p || !v || split < 0 || split > 2) return miles_error(MILES_EINVAL, "miles_prepared_split: bad arguments (split %d)", split);
    int64_t s = p->start[split], T = p->max_len;
    memset(v, 0, sizeof *v);
    v->n = p->n_split[split];
    v->max_len = p->max_len;
    v->input_ids = p->ids + s * T;
    v->token_type_ids = p->type_ids + s * T;
    v->attention_mask = p->mask + s * T;
    v->lengths = p->lengths + s;
    v->features = p->feat + s * MILES_NUM_FEATURES;
    v->features_raw = p->fraw + s * MILES_NUM_FEATURES;
    v->avail = p->avail + s;
    v->labels = p->labels + s;
    v->velocity = p->vel + s;
    v->velocity_raw = p->vraw + s;
    v->creator = p->creator + s;
    return MILES_OK;
}

const char *miles_prepared_title(const MilesPrepared *p, int split, int64_t i) {
    if (!p || split < 0 || split > 2 || i < 0 || i >= p->n_split[split]) return NULL;
    return p->strings + p->toff[p->start[split] + i];
}

const char *miles_prepared_row_id(const MilesPrepared *p, int split, int64_t i) {
    if (!p || split < 0 || split > 2 || i < 0 || i >= p->n_split[split]) return NULL;
    return p->strings + p->ioff[p->start[split] + i];
}

const char *miles_prepared_scaler_json(const MilesPrepared *p) { return p ? p->json : NULL; }
const char *miles_prepared_vocab_hash(const MilesPrepared *p) { return p ? p->vocab_hash : NULL; }
int miles_prepared_text_clean(const MilesPrepared *p) { return p ? p->text_clean : -1; }
uint32_t miles_prepared_crc32(const MilesPrepared *p) { return p ? p->crc : 0; }

int miles_prepared_provenance(const MilesPrepared *p, MilesPreparedProvenance *out) {
    if (!p || !out) return -1;
    *out = p->prov;
    return p->prov.split_by != MILES_SPLIT_BY_UNRECORDED;
}

cJSON *data_provenance_json(const MilesPreparedProvenance *pv) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "by", miles_split_by_name(pv->split_by));
    if (pv->split_by != MILES_SPLIT_BY_UNRECORDED) {
        /* the seed decides nothing in a time split or in a checkpoint's file */
        if (pv->split_by == MILES_SPLIT_BY_ROW || pv->split_by == MILES_SPLIT_BY_CREATOR) {
            char b[24];
            snprintf(b, sizeof b, "%llu", (unsigned long long)pv->seed); /* all 64 bits, not a double's 53 */
            cJSON_AddItemToObject(o, "seed", cJSON_CreateRaw(b));
        }
        if (pv->split_by != MILES_SPLIT_BY_CHECKPOINT) cJSON_AddItemToObject(o, "train_frac", data_json_exact(pv->train_frac));
        cJSON_AddStringToObject(o, "language", pv->language);
        cJSON_AddBoolToObject(o, "dedup", pv->dedup);
    }
    return o;
}

int miles_prepared_provenance_json(const MilesPrepared *p, char **json) {
    if (!json) return miles_error(MILES_EINVAL, "miles_prepared_provenance_json: NULL out");
    *json = NULL;
    MilesPreparedProvenance pv;
    if (miles_prepared_provenance(p, &pv) < 0) return miles_error(MILES_EINVAL, "miles_prepared_provenance_json: NULL file");
    cJSON *o = data_provenance_json(&pv);
    *json = o ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return *json ? MILES_OK : miles_error(MILES_ENOMEM, "out of memory");
}

const char *miles_split_by_name(int split_by) {
    static const char *const names[] = {"unrecorded", "row", "creator", "time", "checkpoint"};
    return split_by >= 0 && split_by <= MILES_SPLIT_BY_CHECKPOINT ? names[split_by] : NULL;
}
