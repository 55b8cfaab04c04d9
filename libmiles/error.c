/*
 * error.c — thread-local error messages, status names, allocation and atomic
 * file helpers.
 */

#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <sys/stat.h>
#include <unistd.h>

static _Thread_local char tl_error[2048];

const char *miles_last_error(void) { return tl_error; }
void miles_clear_error(void) { tl_error[0] = '\0'; }

int miles_error(int code, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tl_error, sizeof tl_error, fmt, ap);
    va_end(ap);
    return code;
}

/* The public name of miles_error, for callers outside the library. */
int miles_set_error(int code, const char *fmt, ...) {
    char msg[sizeof tl_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return miles_error(code, "%s", msg);
}

int miles_error_prefix(int code, const char *fmt, ...) {
    char prefix[1024], old[sizeof tl_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, tl_error, sizeof old);
    /* a message longer than the buffer keeps its start and ends in "..." */
    if (snprintf(tl_error, sizeof tl_error, "%s: %s", prefix, old) >= (int)sizeof tl_error)
        memcpy(tl_error + sizeof tl_error - 4, "...", 4);
    return code;
}

int miles_path_join(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap) {
        if (cap) out[0] = '\0';
        return miles_error(MILES_EINVAL, "path too long (%d bytes, at most %zu): %s/%s", n, cap ? cap - 1 : 0, dir,
                           name);
    }
    return MILES_OK;
}

const char *miles_status_name(int s) {
    switch (s) {
    case MILES_OK: return "MILES_OK";
    case MILES_ENOMEM: return "MILES_ENOMEM";
    case MILES_EIO: return "MILES_EIO";
    case MILES_EFORMAT: return "MILES_EFORMAT";
    case MILES_ESHAPE: return "MILES_ESHAPE";
    case MILES_EINVAL: return "MILES_EINVAL";
    case MILES_ENAN: return "MILES_ENAN";
    case MILES_EMISSING: return "MILES_EMISSING";
    case MILES_EUNSUPPORTED: return "MILES_EUNSUPPORTED";
    case MILES_ERANGE: return "MILES_ERANGE";
    case MILES_EINTERNAL: return "MILES_EINTERNAL";
    default: return "MILES_E?";
    }
}

const char *miles_version(void) {
    return MILES_VERSION_STRING
#ifdef _OPENMP
        " (openmp"
#else
        " (no-openmp"
#endif
#ifdef MILES_USE_BLAS
        ", cblas)"
#else
        ", own-gemm)"
#endif
        ;
}

/* Allocation-failure injection (internal.h): the countdown is shared by all
 * threads; -1 = off.  MILES_ALLOC_FAIL_AFTER=N in the environment arms it once
 * at the first allocation (for the tools). */
static _Atomic long g_fail_after = -1;
static _Atomic long g_alloc_calls;
static _Atomic int g_env_read;

void miles_alloc_fail_after(long n) {
    g_env_read = 1;
    g_alloc_calls = 0;
    g_fail_after = n;
}
long miles_alloc_calls(void) { return g_alloc_calls; }

static int inject_failure(void) {
    if (!g_env_read) {
        g_env_read = 1;
        const char *e = getenv("MILES_ALLOC_FAIL_AFTER");
        if (e && *e) g_fail_after = strtol(e, NULL, 10);
    }
    g_alloc_calls++;
    if (g_fail_after < 0) return 0;
    /* exactly one failure: the countdown reaching 0 fails this call, then it is off */
    long left = g_fail_after--;
    if (left == 0) { g_fail_after = -1; return 1; }
    return 0;
}

void *miles_malloc(size_t n) {
    if (inject_failure()) { miles_error(MILES_ENOMEM, "out of memory allocating %zu bytes (injected)", n); return NULL; }
    void *p = malloc(n ? n : 1);
    if (!p) miles_error(MILES_ENOMEM, "out of memory allocating %zu bytes", n);
    return p;
}

void *miles_calloc(size_t count, size_t size) {
    if (inject_failure()) {
        miles_error(MILES_ENOMEM, "out of memory allocating %zu x %zu bytes (injected)", count, size);
        return NULL;
    }
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p) miles_error(MILES_ENOMEM, "out of memory allocating %zu x %zu bytes", count, size);
    return p;
}

void *miles_aligned_alloc(size_t n) {
    void *p = NULL;
    size_t sz = (n + 63) & ~(size_t)63;
    if (inject_failure() || posix_memalign(&p, 64, sz ? sz : 64) != 0) {
        miles_error(MILES_ENOMEM, "out of memory allocating %zu bytes", n);
        return NULL;
    }
    memset(p, 0, sz ? sz : 64);
    return p;
}

static void fsync_dir_of(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) { fsync(fd); close(fd); }
}

int miles_atomic_open(MilesAtomicFile *af, const char *path) {
    memset(af, 0, sizeof *af);
    if (strlen(path) + 32 >= sizeof af->path)
        return miles_error(MILES_EINVAL, "%s: path too long", path);
    snprintf(af->path, sizeof af->path, "%s", path);
    snprintf(af->tmp, sizeof af->tmp, "%s.tmp.XXXXXX", path);
    int fd = mkstemp(af->tmp);
    if (fd < 0) return miles_error(MILES_EIO, "%s: cannot create temp file: %s", path, strerror(errno));
    af->fp = fdopen(fd, "wb");
    if (!af->fp) {
        close(fd);
        unlink(af->tmp);
        return miles_error(MILES_EIO, "%s: fdopen: %s", path, strerror(errno));
    }
    return MILES_OK;
}

int miles_atomic_commit(MilesAtomicFile *af) {
    if (!af->fp) return miles_error(MILES_EINVAL, "%s: atomic file not open", af->path);
    int bad = ferror(af->fp) || fflush(af->fp) != 0 || fsync(fileno(af->fp)) != 0;
    int err = errno;
    if (fclose(af->fp) != 0) bad = 1;
    af->fp = NULL;
    if (bad) {
        unlink(af->tmp);
        return miles_error(MILES_EIO, "%s: write failed: %s", af->path, strerror(err));
    }
    /* mkstemp creates 0600; give the usual 0644 (minus umask) */
    mode_t um = umask(0); umask(um);
    chmod(af->tmp, 0666 & ~um);
    if (rename(af->tmp, af->path) != 0) {
        err = errno;
        unlink(af->tmp);
        return miles_error(MILES_EIO, "%s: rename failed: %s", af->path, strerror(err));
    }
    fsync_dir_of(af->path);
    return MILES_OK;
}

void miles_atomic_abort(MilesAtomicFile *af) {
    if (af->fp) { fclose(af->fp); af->fp = NULL; }
    if (af->tmp[0]) unlink(af->tmp);
}

int miles_write_file_atomic(const char *path, const void *data, size_t n) {
    MilesAtomicFile af;
    MILES_TRY(miles_atomic_open(&af, path));
    if (n && fwrite(data, 1, n, af.fp) != n) {
        miles_atomic_abort(&af);
        return miles_error(MILES_EIO, "%s: short write", path);
    }
    return miles_atomic_commit(&af);
}

int miles_read_file(const char *path, char **data, size_t *n) {
    *data = NULL;
    if (n) *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return miles_error(errno == ENOENT ? MILES_EMISSING : MILES_EIO, "%s: cannot open: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    char *buf = miles_malloc(cap + 1);
    if (!buf) { fclose(f); return MILES_ENOMEM; }
    size_t r;
    while ((r = fread(buf + len, 1, cap - len, f)) > 0) {
        len += r;
        if (len == cap) {
            char *nb = realloc(buf, cap * 2 + 1);
            if (!nb) { free(buf); fclose(f); return miles_error(MILES_ENOMEM, "%s: out of memory", path); }
            buf = nb; cap *= 2;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) { free(buf); return miles_error(MILES_EIO, "%s: read error", path); }
    buf[len] = '\0';
    *data = buf;
    if (n) *n = len;
    return MILES_OK;
}

/* ---- devices and precisions (miles.h) ---- */
static const char *const k_precision_names[] = {"fp32", "tf32", "fp16", "bf16", "int8"};

int miles_precision_parse(const char *name, MilesPrecision *out) {
    for (int i = 0; name && i < (int)(sizeof k_precision_names / sizeof k_precision_names[0]); i++)
        if (strcmp(name, k_precision_names[i]) == 0) {
            if (out) *out = (MilesPrecision)i;
            return MILES_OK;
        }
    return miles_error(MILES_EINVAL, "precision '%s' is not one of fp32, tf32, fp16, bf16, int8",
                       name ? name : "(null)");
}

const char *miles_precision_name(MilesPrecision p) {
    return (int)p >= 0 && (int)p < (int)(sizeof k_precision_names / sizeof k_precision_names[0])
               ? k_precision_names[p] : "?";
}

int miles_device_parse(const char *name, int *is_cuda, int *index) {
    int cuda = 0, idx = 0;
    if (!name || strcmp(name, "cpu") == 0) {
        cuda = 0;
    } else if (strcmp(name, "cuda") == 0) {
        cuda = 1;
    } else if (strncmp(name, "cuda:", 5) == 0 && name[5] >= '0' && name[5] <= '9') {
        char *end = NULL;
        long v = strtol(name + 5, &end, 10);
        if (*end || v < 0 || v > 1023)
            return miles_error(MILES_EINVAL, "device '%s': the index after 'cuda:' must be 0..1023", name);
        cuda = 1;
        idx = (int)v;
    } else {
        return miles_error(MILES_EINVAL, "device '%s' is not cpu, cuda or cuda:N", name);
    }
    if (is_cuda) *is_cuda = cuda;
    if (index) *index = idx;
    return MILES_OK;
}
