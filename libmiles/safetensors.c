/*
 * safetensors.c — reader and writer for the HF safetensors format.
 *
 * Layout: u64 little-endian N | N bytes JSON header | data bytes.  The header
 * maps tensor names to {"dtype","shape","data_offsets":[begin,end]} (offsets
 * relative to the start of the data section) plus an optional "__metadata__"
 * string->string map.  The reader mmaps the file and validates every field
 * against the file size before any tensor is touched, so a hostile file gives
 * MILES_EFORMAT and never an out-of-bounds read (fuzzed: fuzz/fuzz_safetensors.c).
 */

#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <zlib.h>
#include <fcntl.h>
#include <math.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host (safetensors data is little-endian)"
#endif

/* The Python library refuses headers above 100 MB; so do we (a corrupt length
 * must not make us try to parse gigabytes). */
#define ST_MAX_HEADER ((uint64_t)100 * 1000 * 1000)

typedef struct StEntry {
    char *name;
    int dtype;
    int ndim;
    int64_t shape[MILES_ST_MAX_DIMS];
    size_t numel;
    size_t begin, end;   /* byte offsets in the data section */
} StEntry;

struct MilesSafetensors {
    char *path;                  /* for messages */
    const unsigned char *base;   /* whole file */
    size_t size;
    int mapped;                  /* base is our mmap */
    const unsigned char *data;   /* data section */
    size_t data_size;
    int n;
    StEntry *e;                  /* in data-offset order */
    int *by_name;                /* indices sorted by name, for find() */
    int n_meta;
    char **meta_key, **meta_val;
};

static const char *const dt_names[] = {"F32", "F16", "BF16", "F64", "I64",
                                       "I32", "I16", "I8",  "U8",  "BOOL"};
static const size_t dt_sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
#define N_DT ((int)(sizeof dt_sizes / sizeof dt_sizes[0]))

size_t miles_dtype_size(int dtype) { return dtype >= 0 && dtype < N_DT ? dt_sizes[dtype] : 0; }
const char *miles_dtype_name(int dtype) { return dtype >= 0 && dtype < N_DT ? dt_names[dtype] : "?"; }

static int dtype_from_name(const char *s) {
    for (int i = 0; i < N_DT; i++)
        if (strcmp(s, dt_names[i]) == 0) return i;
    return -1;
}

/* ---------------------------------------------------------------- reader */

void miles_safetensors_close(MilesSafetensors *st) {
    if (!st) return;
    for (int i = 0; i < st->n; i++) free(st->e[i].name);
    for (int i = 0; i < st->n_meta; i++) { free(st->meta_key[i]); free(st->meta_val[i]); }
    free(st->e);
    free(st->by_name);
    free(st->meta_key);
    free(st->meta_val);
    if (st->mapped && st->base) munmap((void *)st->base, st->size);
    free(st->path);
    free(st);
}

static char *xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *p = miles_malloc(n);
    if (p) memcpy(p, s, n);
    return p;
}

/* A JSON number that must be a non-negative integer representable exactly. */
static int json_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!(d >= 0) || d > 9007199254740992.0 || d != floor(d)) return 0;
    *out = (uint64_t)d;
    return 1;
}

static int cmp_by_name(const void *a, const void *b, void *ctx) {
    const MilesSafetensors *st = ctx;
    return strcmp(st->e[*(const int *)a].name, st->e[*(const int *)b].name);
}
static int cmp_by_offset(const void *a, const void *b) {
    const StEntry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Parse one tensor entry `item` (key = name) into *e. */
static int parse_entry(MilesSafetensors *st, const cJSON *item, StEntry *e) {
    const char *p = st->path, *nm = item->string;
    if (!cJSON_IsObject(item))
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': header entry is not a JSON object", p, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!dt) return miles_error(MILES_EFORMAT, "%s: tensor '%s': missing \"dtype\"", p, nm);
    if (!sh) return miles_error(MILES_EFORMAT, "%s: tensor '%s': missing \"shape\"", p, nm);
    if (!off) return miles_error(MILES_EFORMAT, "%s: tensor '%s': missing \"data_offsets\"", p, nm);
    if (!cJSON_IsString(dt))
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': \"dtype\" is not a string", p, nm);
    e->dtype = dtype_from_name(dt->valuestring);
    if (e->dtype < 0)
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': unknown or unsupported dtype \"%s\" "
                           "(supported: F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL)", p, nm, dt->valuestring);
    if (!cJSON_IsArray(sh))
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': \"shape\" is not an array", p, nm);
    int nd = cJSON_GetArraySize(sh);
    if (nd > MILES_ST_MAX_DIMS)
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': %d dimensions (at most %d supported)",
                           p, nm, nd, MILES_ST_MAX_DIMS);
    e->ndim = nd;
    size_t numel = 1;
    int overflow = 0, k = 0;
    const cJSON *d;
    cJSON_ArrayForEach(d, sh) {
        if (!cJSON_IsNumber(d))
            return miles_error(MILES_EFORMAT, "%s: tensor '%s': shape[%d] is not a number", p, nm, k);
        if (d->valuedouble < 0)
            return miles_error(MILES_EFORMAT, "%s: tensor '%s': negative dimension shape[%d] = %.0f",
                               p, nm, k, d->valuedouble);
        uint64_t u;
        if (!json_uint(d, &u) || u > (uint64_t)INT64_MAX)
            return miles_error(MILES_EFORMAT, "%s: tensor '%s': shape[%d] = %g is not a valid dimension",
                               p, nm, k, d->valuedouble);
        e->shape[k] = (int64_t)u;
        if (u != 0 && numel > SIZE_MAX / u) overflow = 1;
        else numel *= (size_t)u;
        k++;
    }
    /* a zero dimension makes numel 0 whatever the others say */
    for (int j = 0; j < nd; j++) if (e->shape[j] == 0) { overflow = 0; numel = 0; }
    size_t esz = dt_sizes[e->dtype];
    if (overflow || numel > SIZE_MAX / esz)
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': number of elements overflows", p, nm);
    e->numel = numel;
    if (!cJSON_IsArray(off) || cJSON_GetArraySize(off) != 2)
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': \"data_offsets\" is not a [begin, end] array",
                           p, nm);
    uint64_t b, en;
    if (!json_uint(cJSON_GetArrayItem(off, 0), &b) || !json_uint(cJSON_GetArrayItem(off, 1), &en))
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': data_offsets are not non-negative integers",
                           p, nm);
    if (b > en)
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': data_offsets begin %llu > end %llu", p, nm,
                           (unsigned long long)b, (unsigned long long)en);
    if (en > st->data_size)
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] out of range: the "
                           "data section has %zu bytes (file truncated?)", p, nm,
                           (unsigned long long)b, (unsigned long long)en, st->data_size);
    if (en - b != numel * esz)
        return miles_error(MILES_EFORMAT, "%s: tensor '%s': byte length %llu != %zu elements x %zu bytes (%s)",
                           p, nm, (unsigned long long)(en - b), numel, esz, dt_names[e->dtype]);
    e->begin = (size_t)b;
    e->end = (size_t)en;
    return MILES_OK;
}

static int parse_metadata(MilesSafetensors *st, const cJSON *md) {
    if (cJSON_IsNull(md)) return MILES_OK;
    if (!cJSON_IsObject(md))
        return miles_error(MILES_EFORMAT, "%s: \"__metadata__\" is not a JSON object", st->path);
    int n = cJSON_GetArraySize(md);
    st->meta_key = miles_calloc((size_t)n + 1, sizeof(char *));
    st->meta_val = miles_calloc((size_t)n + 1, sizeof(char *));
    if (!st->meta_key || !st->meta_val) return MILES_ENOMEM;
    const cJSON *it;
    cJSON_ArrayForEach(it, md) {
        if (!cJSON_IsString(it))
            return miles_error(MILES_EFORMAT, "%s: \"__metadata__\" value of '%s' is not a string",
                               st->path, it->string);
        for (int j = 0; j < st->n_meta; j++)
            if (strcmp(st->meta_key[j], it->string) == 0)
                return miles_error(MILES_EFORMAT, "%s: duplicate \"__metadata__\" key '%s'", st->path,
                                   it->string);
        st->meta_key[st->n_meta] = xstrdup(it->string);
        st->meta_val[st->n_meta] = xstrdup(it->valuestring);
        if (!st->meta_key[st->n_meta] || !st->meta_val[st->n_meta]) {
            free(st->meta_key[st->n_meta]); free(st->meta_val[st->n_meta]);
            return MILES_ENOMEM;
        }
        st->n_meta++;
    }
    return MILES_OK;
}

static uint32_t crc_bytes(const unsigned char *p, size_t n) {
    uLong c = crc32(0L, Z_NULL, 0);
    while (n) {   /* zlib takes uInt lengths */
        uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
        c = crc32(c, p, k);
        p += k;
        n -= k;
    }
    return (uint32_t)c;
}

/* The header's CRC-32 (MILES_META_HEADER_CRC32) is over a canonical text of
 * everything else the header says, so that the writer and the reader compute
 * it from their own structures without the JSON's spelling: every metadata
 * key but this one, in strcmp order, as key NUL value NUL; then every tensor
 * in data order as name NUL dtype NUL "d0,d1,..." NUL "begin-end" NUL.
 * A changed digit in a metadata value (a config's layer_norm_eps, a scaler's
 * mean) or a tensor's dtype keeps the file well-formed and the tensor CRCs
 * right; this is what sees it. */
typedef struct HdrTensor {
    const char *name;
    int dtype, ndim;
    const int64_t *shape;
    size_t begin, end;
} HdrTensor;

static uLong crc_str(uLong c, const char *s) { return crc32(c, (const Bytef *)s, (uInt)strlen(s) + 1); }

/* The metadata keys in strcmp order, one at a time: the index of the
 * smallest key after `last` (NULL: the first), -1 after the last.  The JSON
 * writer and the header CRC walk them so (a dozen keys: n^2 is nothing). */
static int next_key(char *const *mk, int nm, const char *last) {
    int best = -1;
    for (int i = 0; i < nm; i++)
        if ((!last || strcmp(mk[i], last) > 0) && (best < 0 || strcmp(mk[i], mk[best]) < 0)) best = i;
    return best;
}

static uint32_t header_crc(char *const *mk, char *const *mv, int nm, const HdrTensor *t, int nt) {
    uLong c = crc32(0L, Z_NULL, 0);
    for (int i = next_key(mk, nm, NULL); i >= 0; i = next_key(mk, nm, mk[i])) {
        if (!strcmp(mk[i], MILES_META_HEADER_CRC32)) continue;
        c = crc_str(crc_str(c, mk[i]), mv[i]);
    }
    char num[64];
    for (int i = 0; i < nt; i++) {
        c = crc_str(crc_str(c, t[i].name), dt_names[t[i].dtype]);
        size_t n = 0;
        num[0] = '\0';
        for (int k = 0; k < t[i].ndim && n < sizeof num; k++)
            n += (size_t)snprintf(num + n, sizeof num - n, "%s%lld", k ? "," : "", (long long)t[i].shape[k]);
        c = crc_str(c, num);
        snprintf(num, sizeof num, "%zu-%zu", t[i].begin, t[i].end);
        c = crc_str(c, num);
    }
    return (uint32_t)c;
}

static int verify_header_crc(MilesSafetensors *st) {
    const char *v = miles_safetensors_metadata(st, MILES_META_HEADER_CRC32);
    if (!v) return MILES_OK;
    char *end = NULL;
    unsigned long want = strtoul(v, &end, 16);
    if (strlen(v) != 8 || *end)
        return miles_error(MILES_EFORMAT, "%s: metadata \"" MILES_META_HEADER_CRC32 "\" is not 8 hex digits", st->path);
    HdrTensor *t = miles_calloc((size_t)(st->n ? st->n : 1), sizeof *t);
    if (!t) return MILES_ENOMEM;
    for (int i = 0; i < st->n; i++)
        t[i] = (HdrTensor){st->e[i].name, st->e[i].dtype, st->e[i].ndim, st->e[i].shape, st->e[i].begin, st->e[i].end};
    uint32_t got = header_crc(st->meta_key, st->meta_val, st->n_meta, t, st->n);
    free(t);
    if (got != (uint32_t)want)
        return miles_error(MILES_EFORMAT, "%s: header CRC-32 mismatch (stored %08lx, computed %08x): the metadata or a "
                           "tensor's name, dtype, shape or offsets changed since it was written: the file is corrupt",
                           st->path, want, (unsigned)got);
    return MILES_OK;
}

/* The MILES_META_CRC32 map ({"tensor": "8 hex digits", ...}), when present,
 * must name every tensor exactly once and match its bytes: a flipped bit
 * anywhere in the data is refused here, naming the file and the tensor. */
static int verify_crc(MilesSafetensors *st) {
    const char *v = miles_safetensors_metadata(st, MILES_META_CRC32);
    if (!v) return MILES_OK;
    cJSON *o = cJSON_Parse(v);
    int rc = MILES_OK;
    if (!cJSON_IsObject(o)) {
        rc = miles_error(MILES_EFORMAT, "%s: metadata \"" MILES_META_CRC32 "\" is not a JSON object", st->path);
        goto out;
    }
    if (cJSON_GetArraySize(o) != st->n) {
        rc = miles_error(MILES_EFORMAT, "%s: metadata \"" MILES_META_CRC32 "\" lists %d tensors, the file has %d",
                         st->path, cJSON_GetArraySize(o), st->n);
        goto out;
    }
    for (int i = 0; i < st->n; i++) {
        const StEntry *e = &st->e[i];
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, e->name);
        char *end = NULL;
        unsigned long want = cJSON_IsString(it) ? strtoul(it->valuestring, &end, 16) : 0;
        if (!cJSON_IsString(it) || strlen(it->valuestring) != 8 || *end) {
            rc = miles_error(MILES_EFORMAT, "%s: tensor '%s': no valid CRC-32 in metadata \"" MILES_META_CRC32 "\"",
                             st->path, e->name);
            goto out;
        }
        uint32_t got = crc_bytes(st->data + e->begin, e->end - e->begin);
        if (got != (uint32_t)want) {
            rc = miles_error(MILES_EFORMAT, "%s: tensor '%s': CRC-32 mismatch (stored %08lx, computed %08x): the "
                             "file is corrupt", st->path, e->name, want, (unsigned)got);
            goto out;
        }
    }
out:
    cJSON_Delete(o);
    return rc;
}

/* Validate and index st->base[0..size).  st->path set by the caller. */
static int parse_file(MilesSafetensors *st) {
    const char *p = st->path;
    if (st->size < 8)
        return miles_error(MILES_EFORMAT, "%s: %zu bytes: too short for a safetensors file "
                           "(8-byte header length expected)", p, st->size);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->base[i];
    if (hlen > st->size - 8)
        return miles_error(MILES_EFORMAT, "%s: header length %llu runs past the end of the file "
                           "(%zu bytes): truncated or not a safetensors file", p,
                           (unsigned long long)hlen, st->size);
    if (hlen > ST_MAX_HEADER)
        return miles_error(MILES_EFORMAT, "%s: header length %llu exceeds the 100 MB limit", p,
                           (unsigned long long)hlen);
    if (hlen < 2 || st->base[8] != '{')
        return miles_error(MILES_EFORMAT, "%s: header is not a JSON object (must start with '{')", p);
    const char *h = (const char *)st->base + 8;
    st->data = st->base + 8 + hlen;
    st->data_size = st->size - 8 - (size_t)hlen;

    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(h, (size_t)hlen, &end, 0);
    if (!root) {
        size_t at = end ? (size_t)(end - h) : 0;
        const char *ep = cJSON_GetErrorPtr();
        if (ep && ep >= h && ep <= h + hlen) at = (size_t)(ep - h);
        return miles_error(MILES_EFORMAT, "%s: header JSON parse error near byte %zu of %llu", p, at,
                           (unsigned long long)hlen);
    }
    int rc = MILES_OK;
    if (!cJSON_IsObject(root)) { rc = miles_error(MILES_EFORMAT, "%s: header is not a JSON object", p); goto out; }
    /* only padding (whitespace; the spec pads with spaces) may follow the object */
    for (const char *q = end; q < h + hlen; q++)
        if (*q != ' ' && *q != '\t' && *q != '\n' && *q != '\r' && *q != '\0') {
            rc = miles_error(MILES_EFORMAT, "%s: trailing garbage after the header JSON at byte %zu", p,
                             (size_t)(q - h));
            goto out;
        }
    int n = 0;
    const cJSON *it;
    cJSON_ArrayForEach(it, root) if (strcmp(it->string, "__metadata__") != 0) n++;
    st->e = miles_calloc((size_t)n + 1, sizeof(StEntry));
    st->by_name = miles_calloc((size_t)n + 1, sizeof(int));
    if (!st->e || !st->by_name) { rc = MILES_ENOMEM; goto out; }
    int nmeta = 0;
    cJSON_ArrayForEach(it, root) {
        if (strcmp(it->string, "__metadata__") == 0) {
            if (nmeta++) { rc = miles_error(MILES_EFORMAT, "%s: duplicate \"__metadata__\"", p); goto out; }
            if ((rc = parse_metadata(st, it)) != MILES_OK) goto out;
            continue;
        }
        StEntry *e = &st->e[st->n];
        if ((rc = parse_entry(st, it, e)) != MILES_OK) goto out;
        if (!(e->name = xstrdup(it->string))) { rc = MILES_ENOMEM; goto out; }
        st->n++;
    }
    /* file order = data-offset order; then no two non-empty tensors may overlap */
    qsort(st->e, (size_t)st->n, sizeof(StEntry), cmp_by_offset);
    size_t prev_end = 0;
    int prev = -1;
    for (int i = 0; i < st->n; i++) {
        const StEntry *e = &st->e[i];
        if (e->begin == e->end) continue;
        if (prev >= 0 && e->begin < prev_end) {
            rc = miles_error(MILES_EFORMAT, "%s: tensors '%s' [%zu, %zu) and '%s' [%zu, %zu) overlap", p,
                             st->e[prev].name, st->e[prev].begin, st->e[prev].end, e->name, e->begin, e->end);
            goto out;
        }
        prev = i;
        prev_end = e->end;
    }
    /* The Python library refuses bytes after the last tensor; so do we: they are
     * what a header length too small by k bytes produces (the data section then
     * starts k bytes early and every tensor would load shifted). */
    if (prev_end != st->data_size) {
        rc = miles_error(MILES_EFORMAT, "%s: %zu bytes after the last tensor (data section %zu bytes, tensors "
                         "end at %zu): wrong header length or not a safetensors file", p,
                         st->data_size - prev_end, st->data_size, prev_end);
        goto out;
    }
    for (int i = 0; i < st->n; i++) st->by_name[i] = i;
    if (miles_sort_r(st->by_name, (size_t)st->n, sizeof(int), cmp_by_name, st) != MILES_OK) {
        rc = MILES_ENOMEM;
        goto out;
    }
    for (int i = 1; i < st->n; i++)
        if (strcmp(st->e[st->by_name[i]].name, st->e[st->by_name[i - 1]].name) == 0) {
            rc = miles_error(MILES_EFORMAT, "%s: duplicate tensor name '%s'", p, st->e[st->by_name[i]].name);
            goto out;
        }
    if (rc == MILES_OK) rc = verify_header_crc(st);
    if (rc == MILES_OK) rc = verify_crc(st);
out:
    cJSON_Delete(root);
    return rc;
}

int miles_safetensors_open_memory(MilesSafetensors **out, const void *data, size_t size, const char *name) {
    if (!out) return miles_error(MILES_EINVAL, "miles_safetensors_open_memory: out is NULL");
    *out = NULL;
    if (!data && size) return miles_error(MILES_EINVAL, "miles_safetensors_open_memory: data is NULL");
    MilesSafetensors *st = miles_calloc(1, sizeof *st);
    if (!st) return MILES_ENOMEM;
    st->path = xstrdup(name ? name : "<memory>");
    if (!st->path) { free(st); return MILES_ENOMEM; }
    st->base = data;
    st->size = size;
    int rc = parse_file(st);
    if (rc != MILES_OK) { miles_safetensors_close(st); return rc; }
    *out = st;
    return MILES_OK;
}

int miles_safetensors_open(MilesSafetensors **out, const char *path) {
    if (!out || !path) return miles_error(MILES_EINVAL, "miles_safetensors_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        return miles_error(err == ENOENT ? MILES_EMISSING : MILES_EIO, "%s: cannot open: %s", path,
                           strerror(err));
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int err = errno;
        close(fd);
        return miles_error(MILES_EIO, "%s: stat failed: %s", path, strerror(err));
    }
    if (!S_ISREG(sb.st_mode)) { close(fd); return miles_error(MILES_EIO, "%s: not a regular file", path); }
    MilesSafetensors *st = miles_calloc(1, sizeof *st);
    if (!st) { close(fd); return MILES_ENOMEM; }
    st->path = xstrdup(path);
    if (!st->path) { free(st); close(fd); return MILES_ENOMEM; }
    st->size = (size_t)sb.st_size;
    if (st->size > 0) {
        void *m = mmap(NULL, st->size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED) {
            int err = errno;
            close(fd);
            miles_safetensors_close(st);
            return miles_error(MILES_EIO, "%s: mmap failed: %s", path, strerror(err));
        }
        st->base = m;
        st->mapped = 1;
    }
    close(fd);
    int rc = parse_file(st);
    if (rc != MILES_OK) { miles_safetensors_close(st); return rc; }
    *out = st;
    return MILES_OK;
}

int miles_safetensors_count(const MilesSafetensors *st) { return st ? st->n : 0; }

const char *miles_safetensors_name(const MilesSafetensors *st, int i) {
    return st && i >= 0 && i < st->n ? st->e[i].name : NULL;
}

int miles_safetensors_find(const MilesSafetensors *st, const char *name) {
    if (!st || !name) return -1;
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        int c = strcmp(name, st->e[st->by_name[mid]].name);
        if (c == 0) return st->by_name[mid];
        if (c < 0) hi = mid - 1; else lo = mid + 1;
    }
    return -1;
}

static int check_index(const MilesSafetensors *st, int i, const char *fn) {
    if (!st) return miles_error(MILES_EINVAL, "%s: NULL handle", fn);
    if (i < 0 || i >= st->n)
        return miles_error(MILES_EINVAL, "%s: %s: tensor index %d out of range [0, %d)", fn, st->path, i, st->n);
    return MILES_OK;
}

int miles_safetensors_info(const MilesSafetensors *st, int i, int *dtype, int *ndim, int64_t shape[8],
                           size_t *numel) {
    MILES_TRY(check_index(st, i, "miles_safetensors_info"));
    const StEntry *e = &st->e[i];
    if (dtype) *dtype = e->dtype;
    if (ndim) *ndim = e->ndim;
    if (shape) for (int k = 0; k < e->ndim; k++) shape[k] = e->shape[k];
    if (numel) *numel = e->numel;
    return MILES_OK;
}

const void *miles_safetensors_data(const MilesSafetensors *st, int i, size_t *nbytes) {
    if (check_index(st, i, "miles_safetensors_data") != MILES_OK) return NULL;
    if (nbytes) *nbytes = st->e[i].end - st->e[i].begin;
    return st->data + st->e[i].begin;
}

const char *miles_safetensors_metadata(const MilesSafetensors *st, const char *key) {
    if (!st || !key) return NULL;
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_key[i], key) == 0) return st->meta_val[i];
    return NULL;
}

int miles_safetensors_metadata_count(const MilesSafetensors *st) { return st ? st->n_meta : 0; }

const char *miles_safetensors_metadata_key(const MilesSafetensors *st, int i) {
    return st && i >= 0 && i < st->n_meta ? st->meta_key[i] : NULL;
}

/* Exact IEEE half -> single: every f16 value (subnormals included) is exactly
 * representable as f32; NaN payloads are kept (shifted into the top mantissa). */
static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f, mant = h & 0x3ff, bits;
    if (exp == 0) {
        float v = ldexpf((float)mant, -24);   /* 0 or subnormal: mant * 2^-24, exact */
        return sign ? -v : v;
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (mant << 13);
    } else {
        bits = sign | ((exp + 112) << 23) | (mant << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static inline float bf16_to_f32(uint16_t h) {
    uint32_t bits = (uint32_t)h << 16;
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int check_numel(const MilesSafetensors *st, int i, size_t numel, const char *fn) {
    if (numel != st->e[i].numel)
        return miles_error(MILES_ESHAPE, "%s: %s: tensor '%s' has %zu elements, caller expects %zu", fn,
                           st->path, st->e[i].name, st->e[i].numel, numel);
    return MILES_OK;
}

int miles_safetensors_read_f32(const MilesSafetensors *st, int i, float *dst, size_t numel) {
    MILES_TRY(check_index(st, i, "miles_safetensors_read_f32"));
    MILES_TRY(check_numel(st, i, numel, "miles_safetensors_read_f32"));
    const StEntry *e = &st->e[i];
    const unsigned char *src = st->data + e->begin;
    switch (e->dtype) {
    case MILES_DT_F32:
        if (numel) memcpy(dst, src, numel * 4);
        return MILES_OK;
    case MILES_DT_F16:
        for (size_t k = 0; k < numel; k++) {
            uint16_t h;
            memcpy(&h, src + 2 * k, 2);
            dst[k] = f16_to_f32(h);
        }
        return MILES_OK;
    case MILES_DT_BF16:
        for (size_t k = 0; k < numel; k++) {
            uint16_t h;
            memcpy(&h, src + 2 * k, 2);
            dst[k] = bf16_to_f32(h);
        }
        return MILES_OK;
    case MILES_DT_F64:
        for (size_t k = 0; k < numel; k++) {
            double d;
            memcpy(&d, src + 8 * k, 8);
            dst[k] = (float)d;
        }
        return MILES_OK;
    default:
        return miles_error(MILES_EINVAL, "%s: tensor '%s' has integer dtype %s: use miles_safetensors_read_i32",
                           st->path, e->name, dt_names[e->dtype]);
    }
}

int miles_safetensors_read_i32(const MilesSafetensors *st, int i, int32_t *dst, size_t numel) {
    MILES_TRY(check_index(st, i, "miles_safetensors_read_i32"));
    MILES_TRY(check_numel(st, i, numel, "miles_safetensors_read_i32"));
    const StEntry *e = &st->e[i];
    const unsigned char *src = st->data + e->begin;
    switch (e->dtype) {
    case MILES_DT_I64:
        for (size_t k = 0; k < numel; k++) {
            int64_t v;
            memcpy(&v, src + 8 * k, 8);
            if (v < INT32_MIN || v > INT32_MAX)
                return miles_error(MILES_ERANGE, "%s: tensor '%s' element %zu = %lld does not fit in int32",
                                   st->path, e->name, k, (long long)v);
            dst[k] = (int32_t)v;
        }
        return MILES_OK;
    case MILES_DT_I32:
        if (numel) memcpy(dst, src, numel * 4);
        return MILES_OK;
    case MILES_DT_I16:
        for (size_t k = 0; k < numel; k++) {
            int16_t v;
            memcpy(&v, src + 2 * k, 2);
            dst[k] = v;
        }
        return MILES_OK;
    case MILES_DT_I8:
        for (size_t k = 0; k < numel; k++) dst[k] = (int8_t)src[k];
        return MILES_OK;
    case MILES_DT_U8:
        for (size_t k = 0; k < numel; k++) dst[k] = src[k];
        return MILES_OK;
    case MILES_DT_BOOL:
        for (size_t k = 0; k < numel; k++) {
            if (src[k] > 1)
                return miles_error(MILES_ERANGE, "%s: tensor '%s' element %zu: BOOL byte %u is not 0 or 1",
                                   st->path, e->name, k, src[k]);
            dst[k] = src[k];
        }
        return MILES_OK;
    default:
        return miles_error(MILES_EINVAL, "%s: tensor '%s' has float dtype %s: use miles_safetensors_read_f32",
                           st->path, e->name, dt_names[e->dtype]);
    }
}

/* ---------------------------------------------------------------- writer */

typedef struct WEntry {
    char *name;
    int dtype, ndim;
    int64_t shape[MILES_ST_MAX_DIMS];
    size_t nbytes;
    const void *data;   /* referenced until finish/abort */
} WEntry;

struct MilesSafetensorsWriter {
    MilesAtomicFile af;
    WEntry *e;
    int n, cap;
    char **mk, **mv;
    int nm, mcap;
    int crc;   /* store MILES_META_CRC32 (miles_safetensors_writer_crc) */
};

void miles_safetensors_writer_crc(MilesSafetensorsWriter *w) { if (w) w->crc = 1; }

int miles_safetensors_writer_open(MilesSafetensorsWriter **out, const char *path) {
    if (!out || !path) return miles_error(MILES_EINVAL, "miles_safetensors_writer_open: NULL argument");
    *out = NULL;
    MilesSafetensorsWriter *w = miles_calloc(1, sizeof *w);
    if (!w) return MILES_ENOMEM;
    int rc = miles_atomic_open(&w->af, path);
    if (rc != MILES_OK) { free(w); return rc; }
    *out = w;
    return MILES_OK;
}

static void writer_free(MilesSafetensorsWriter *w) {
    for (int i = 0; i < w->n; i++) free(w->e[i].name);
    for (int i = 0; i < w->nm; i++) { free(w->mk[i]); free(w->mv[i]); }
    free(w->e);
    free(w->mk);
    free(w->mv);
    free(w);
}

void miles_safetensors_writer_abort(MilesSafetensorsWriter *w) {
    if (!w) return;
    miles_atomic_abort(&w->af);
    writer_free(w);
}

int miles_safetensors_writer_add(MilesSafetensorsWriter *w, const char *name, int dtype, int ndim,
                                 const int64_t *shape, const void *data) {
    if (!w || !name) return miles_error(MILES_EINVAL, "miles_safetensors_writer_add: NULL argument");
    const char *p = w->af.path;
    if (!name[0] || strcmp(name, "__metadata__") == 0)
        return miles_error(MILES_EINVAL, "%s: invalid tensor name '%s'", p, name);
    if (dtype < 0 || dtype >= N_DT)
        return miles_error(MILES_EINVAL, "%s: tensor '%s': invalid dtype %d", p, name, dtype);
    if (ndim < 0 || ndim > MILES_ST_MAX_DIMS || (ndim > 0 && !shape))
        return miles_error(MILES_EINVAL, "%s: tensor '%s': invalid ndim %d", p, name, ndim);
    size_t numel = 1;
    for (int k = 0; k < ndim; k++) {
        if (shape[k] < 0)
            return miles_error(MILES_EINVAL, "%s: tensor '%s': negative dimension %lld", p, name,
                               (long long)shape[k]);
        if (shape[k] && numel > SIZE_MAX / 16 / (uint64_t)shape[k])
            return miles_error(MILES_EINVAL, "%s: tensor '%s': too many elements", p, name);
        numel *= (size_t)shape[k];
    }
    if (numel && !data) return miles_error(MILES_EINVAL, "%s: tensor '%s': data is NULL", p, name);
    for (int i = 0; i < w->n; i++)
        if (strcmp(w->e[i].name, name) == 0)
            return miles_error(MILES_EINVAL, "%s: duplicate tensor name '%s'", p, name);
    if (w->n == w->cap) {
        int nc = w->cap ? 2 * w->cap : 64;
        WEntry *ne = realloc(w->e, (size_t)nc * sizeof *ne);
        if (!ne) return miles_error(MILES_ENOMEM, "out of memory");
        w->e = ne;
        w->cap = nc;
    }
    WEntry *e = &w->e[w->n];
    memset(e, 0, sizeof *e);
    if (!(e->name = xstrdup(name))) return MILES_ENOMEM;
    e->dtype = dtype;
    e->ndim = ndim;
    for (int k = 0; k < ndim; k++) e->shape[k] = shape[k];
    e->nbytes = numel * dt_sizes[dtype];
    e->data = data;
    w->n++;
    return MILES_OK;
}

int miles_safetensors_writer_metadata(MilesSafetensorsWriter *w, const char *key, const char *value) {
    if (!w || !key || !value) return miles_error(MILES_EINVAL, "miles_safetensors_writer_metadata: NULL argument");
    char *v = xstrdup(value);
    if (!v) return MILES_ENOMEM;
    for (int i = 0; i < w->nm; i++)
        if (strcmp(w->mk[i], key) == 0) { free(w->mv[i]); w->mv[i] = v; return MILES_OK; }
    if (w->nm == w->mcap) {
        int nc = w->mcap ? 2 * w->mcap : 8;
        char **a = realloc(w->mk, (size_t)nc * sizeof *a);
        if (a) w->mk = a;
        char **b = a ? realloc(w->mv, (size_t)nc * sizeof *b) : NULL;
        if (b) w->mv = b;
        if (!a || !b) { free(v); return miles_error(MILES_ENOMEM, "out of memory"); }
        w->mcap = nc;
    }
    if (!(w->mk[w->nm] = xstrdup(key))) { free(v); return MILES_ENOMEM; }
    w->mv[w->nm++] = v;
    return MILES_OK;
}

/* Growable byte buffer for the header. */
typedef struct Buf { char *p; size_t n, cap; int oom; } Buf;
static void buf_put(Buf *b, const char *s, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 4096;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) { b->oom = 1; return; }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = '\0';
}
static void buf_str(Buf *b, const char *s) { buf_put(b, s, strlen(s)); }
/* JSON string with the escapes serde_json uses (UTF-8 passes through). */
static void buf_json(Buf *b, const char *s) {
    buf_put(b, "\"", 1);
    for (const unsigned char *q = (const unsigned char *)s; *q; q++) {
        char esc[8];
        switch (*q) {
        case '"': buf_put(b, "\\\"", 2); break;
        case '\\': buf_put(b, "\\\\", 2); break;
        case '\n': buf_put(b, "\\n", 2); break;
        case '\r': buf_put(b, "\\r", 2); break;
        case '\t': buf_put(b, "\\t", 2); break;
        case '\b': buf_put(b, "\\b", 2); break;
        case '\f': buf_put(b, "\\f", 2); break;
        default:
            if (*q < 0x20) { snprintf(esc, sizeof esc, "\\u%04x", *q); buf_str(b, esc); }
            else buf_put(b, (const char *)q, 1);
        }
    }
    buf_put(b, "\"", 1);
}

/* Python safetensors orders data by dtype (Rust enum order, descending: widest
 * first, which keeps every tensor naturally aligned) then by name. */
static int dtype_rank(int dt) {
    switch (dt) {
    case MILES_DT_BOOL: return 0;
    case MILES_DT_U8: return 1;
    case MILES_DT_I8: return 2;
    case MILES_DT_I16: return 5;
    case MILES_DT_F16: return 7;
    case MILES_DT_BF16: return 8;
    case MILES_DT_I32: return 9;
    case MILES_DT_F32: return 11;
    case MILES_DT_F64: return 12;
    case MILES_DT_I64: return 13;
    default: return -1;
    }
}
static int cmp_wentry(const void *a, const void *b) {
    const WEntry *x = a, *y = b;
    int rx = dtype_rank(x->dtype), ry = dtype_rank(y->dtype);
    if (rx != ry) return ry - rx;
    return strcmp(x->name, y->name);
}

int miles_safetensors_writer_finish(MilesSafetensorsWriter *w) {
    if (!w) return miles_error(MILES_EINVAL, "miles_safetensors_writer_finish: NULL writer");
    qsort(w->e, (size_t)w->n, sizeof(WEntry), cmp_wentry);
    if (w->crc) {
        /* compact {"name":"crc",...}, in data order, computed over the referenced bytes */
        Buf c = {0};
        buf_str(&c, "{");
        for (int i = 0; i < w->n; i++) {
            char hex[16];
            snprintf(hex, sizeof hex, "%08x", (unsigned)crc_bytes(w->e[i].data, w->e[i].nbytes));
            if (i) buf_str(&c, ",");
            buf_json(&c, w->e[i].name);
            buf_str(&c, ":\"");
            buf_str(&c, hex);
            buf_str(&c, "\"");
        }
        buf_str(&c, "}");
        int rc = c.oom ? miles_error(MILES_ENOMEM, "out of memory")
                       : miles_safetensors_writer_metadata(w, MILES_META_CRC32, c.p);
        free(c.p);
        /* then the header's own, over the metadata (the map above included) and
         * the tensor entries with the offsets written below */
        HdrTensor *t = rc == MILES_OK ? miles_calloc((size_t)(w->n ? w->n : 1), sizeof *t) : NULL;
        if (rc == MILES_OK && !t) rc = MILES_ENOMEM;
        if (rc == MILES_OK) {
            size_t off = 0;
            for (int i = 0; i < w->n; i++) {
                t[i] = (HdrTensor){w->e[i].name, w->e[i].dtype, w->e[i].ndim, w->e[i].shape, off, off + w->e[i].nbytes};
                off += w->e[i].nbytes;
            }
            char hex[16];
            snprintf(hex, sizeof hex, "%08x", (unsigned)header_crc(w->mk, w->mv, w->nm, t, w->n));
            rc = miles_safetensors_writer_metadata(w, MILES_META_HEADER_CRC32, hex);
        }
        free(t);
        if (rc != MILES_OK) { miles_safetensors_writer_abort(w); return rc; }
    }
    Buf b = {0};
    char num[64];
    buf_str(&b, "{");
    int first = 1;
    if (w->nm > 0) {
        /* metadata keys in strcmp order, so that the output is deterministic */
        buf_str(&b, "\"__metadata__\":{");
        for (int j = next_key(w->mk, w->nm, NULL), k = 0; j >= 0; j = next_key(w->mk, w->nm, w->mk[j]), k++) {
            if (k) buf_str(&b, ",");
            buf_json(&b, w->mk[j]);
            buf_str(&b, ":");
            buf_json(&b, w->mv[j]);
        }
        buf_str(&b, "}");
        first = 0;
    }
    size_t off = 0;
    for (int i = 0; i < w->n; i++) {
        const WEntry *e = &w->e[i];
        if (!first) buf_str(&b, ",");
        first = 0;
        buf_json(&b, e->name);
        buf_str(&b, ":{\"dtype\":\"");
        buf_str(&b, dt_names[e->dtype]);
        buf_str(&b, "\",\"shape\":[");
        for (int k = 0; k < e->ndim; k++) {
            snprintf(num, sizeof num, "%s%lld", k ? "," : "", (long long)e->shape[k]);
            buf_str(&b, num);
        }
        snprintf(num, sizeof num, "],\"data_offsets\":[%zu,%zu]}", off, off + e->nbytes);
        buf_str(&b, num);
        off += e->nbytes;
    }
    buf_str(&b, "}");
    while (!b.oom && b.n % 8) buf_str(&b, " ");
    if (b.oom) { free(b.p); miles_safetensors_writer_abort(w); return miles_error(MILES_ENOMEM, "out of memory"); }
    unsigned char len8[8];
    uint64_t hl = b.n;
    for (int k = 0; k < 8; k++) len8[k] = (unsigned char)(hl >> (8 * k));
    FILE *fp = w->af.fp;
    int ok = fwrite(len8, 1, 8, fp) == 8 && fwrite(b.p, 1, b.n, fp) == b.n;
    free(b.p);
    for (int i = 0; ok && i < w->n; i++)
        if (w->e[i].nbytes) ok = fwrite(w->e[i].data, 1, w->e[i].nbytes, fp) == w->e[i].nbytes;
    if (!ok) {
        int err = errno;
        char path[sizeof w->af.path];
        snprintf(path, sizeof path, "%s", w->af.path);
        miles_safetensors_writer_abort(w);
        return miles_error(MILES_EIO, "%s: write failed: %s", path, strerror(err));
    }
    int rc = miles_atomic_commit(&w->af);   /* on failure it removes the temp file */
    writer_free(w);
    return rc;
}
