/*
 * hf.c — HF BERT model directories -> MilesModel, and Miles parameter files
 * (miles_model_save / miles_model_load_params).
 *
 * HF checkpoints name the encoder tensors in several ways; all map onto the
 * Miles checkpoint names ("bert.<HF BertModel name>"):
 *   BertModel files             embeddings.word_embeddings.weight
 *   BertFor* files              bert.embeddings.word_embeddings.weight
 *   legacy TF-converted files   ...LayerNorm.gamma / ...LayerNorm.beta
 * Tensors that carry no parameters of ours are ignored, not reported as
 * unexpected: the position_ids buffer, pretraining heads (cls.*), and the
 * pooler when the model does not use pooler pooling.
 *
 * The tensors come from model.safetensors, or from the shards that
 * model.safetensors.index.json lists (save_pretrained with a max_shard_size).
 */

#include "model_internal.h"
#include "model_infer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>

/* ------------------------------------------------------------ reporting */

/* Append to a bounded message, marking truncation with "...". */
static void rep_append(char *buf, size_t cap, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void rep_append(char *buf, size_t cap, const char *fmt, ...) {
    size_t n = strlen(buf);
    if (n + 4 >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int w = vsnprintf(buf + n, cap - n, fmt, ap);
    va_end(ap);
    if (w < 0 || (size_t)w >= cap - n) memcpy(buf + cap - 4, "...", 4);
}

/* A name list: "kind (count): a, b, c" built incrementally. */
typedef struct NameList { char text[3072]; int n; } NameList;
static void list_add(NameList *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void list_add(NameList *l, const char *fmt, ...) {
    char item[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(item, sizeof item, fmt, ap);
    va_end(ap);
    rep_append(l->text, sizeof l->text, "%s%s", l->n ? ", " : "", item);
    l->n++;
}

static int file_exists(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static int ends_with(const char *s, const char *suf) {
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

/* Are all elements of safetensors tensor i finite?  Checked on the raw bytes so
 * that a refused file leaves the destination untouched. */
static int tensor_finite(const MilesSafetensors *st, int i, size_t *bad_index) {
    int dt;
    size_t numel, nb;
    miles_safetensors_info(st, i, &dt, NULL, NULL, &numel);
    const unsigned char *p = miles_safetensors_data(st, i, &nb);
    for (size_t k = 0; k < numel; k++) {
        int fin = 1;
        if (dt == MILES_DT_F32) {
            uint32_t u;
            memcpy(&u, p + 4 * k, 4);
            fin = (u & 0x7f800000u) != 0x7f800000u;
        } else if (dt == MILES_DT_F16) {
            uint16_t u;
            memcpy(&u, p + 2 * k, 2);
            fin = (u & 0x7c00u) != 0x7c00u;
        } else if (dt == MILES_DT_BF16) {
            uint16_t u;
            memcpy(&u, p + 2 * k, 2);
            fin = (u & 0x7f80u) != 0x7f80u;
        } else if (dt == MILES_DT_F64) {
            double d;
            memcpy(&d, p + 8 * k, 8);
            fin = isfinite(d) && fabs(d) <= 3.4028234663852886e38;   /* must fit f32 */
        }
        if (!fin) { *bad_index = k; return 0; }
    }
    return 1;
}

static int is_float_dtype(int dt) {
    return dt == MILES_DT_F32 || dt == MILES_DT_F16 || dt == MILES_DT_BF16 || dt == MILES_DT_F64;
}

/* --------------------------------------------------------- name mapping */

enum { MAP_TARGET = 0, MAP_IGNORED = 1, MAP_UNEXPECTED = 2 };

/* Map an HF tensor name to a Miles checkpoint name in out[cap].  Returns
 * MAP_TARGET (out holds "bert...."), MAP_IGNORED or MAP_UNEXPECTED. */
static int map_hf_name(const char *name, int pooling, char *out, size_t cap) {
    const char *s = name;
    if (!strncmp(s, "cls.", 4)) return MAP_IGNORED;              /* MLM / NSP heads */
    if (!strncmp(s, "bert.", 5)) s += 5;
    if (ends_with(s, "position_ids")) return MAP_IGNORED;        /* buffer, not a parameter */
    if (!strncmp(s, "pooler.", 7) && pooling != MILES_POOL_POOLER) return MAP_IGNORED;
    if (strncmp(s, "embeddings.", 11) && strncmp(s, "encoder.", 8) && strncmp(s, "pooler.", 7))
        return MAP_UNEXPECTED;
    char tmp[256];
    if (snprintf(tmp, sizeof tmp, "%s", s) >= (int)sizeof tmp) return MAP_UNEXPECTED;
    /* legacy TF names: LayerNorm.gamma / LayerNorm.beta */
    size_t n = strlen(tmp);
    if (ends_with(tmp, "LayerNorm.gamma")) snprintf(tmp + n - 5, 7, "weight");
    else if (ends_with(tmp, "LayerNorm.beta")) snprintf(tmp + n - 4, 5, "bias");
    if (snprintf(out, cap, "bert.%s", tmp) >= (int)cap) return MAP_UNEXPECTED;
    return MAP_TARGET;
}

/* ------------------------------------------------------ sharded files */

/* The safetensors files of an HF directory: model.safetensors alone, or the
 * shards named by model.safetensors.index.json ({"metadata": {...},
 * "weight_map": {tensor: file}}, as transformers writes it).  Tensors are
 * numbered over all files: g in [first[k], first[k+1]) is tensor
 * g - first[k] of file k. */
typedef struct HfFiles {
    char where[4096];            /* model.safetensors or the index, for messages */
    int n;                       /* files */
    MilesSafetensors **st;       /* [n] */
    int *first;                  /* [n+1] */
} HfFiles;

static void hf_files_free(HfFiles *f) {
    for (int k = 0; k < f->n; k++) miles_safetensors_close(f->st[k]);
    free(f->st);
    free(f->first);
    memset(f, 0, sizeof *f);
}

static int hf_files_count(const HfFiles *f) { return f->first[f->n]; }

/* File holding global tensor g; *i gets its index there. */
static const MilesSafetensors *hf_at(const HfFiles *f, int g, int *i) {
    int k = 0;
    while (g >= f->first[k + 1]) k++;
    *i = g - f->first[k];
    return f->st[k];
}

static const char *hf_name(const HfFiles *f, int g) {
    int i;
    const MilesSafetensors *st = hf_at(f, g, &i);
    return miles_safetensors_name(st, i);
}

static int cmp_str(const void *a, const void *b, void *ctx) {
    (void)ctx;
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Open the shards an index lists, in file-name order (as transformers reads
 * them), and check that the index and the files agree: every listed tensor is in
 * the file the index names, and every tensor of a shard is listed for that
 * shard (so a tensor stored twice, or a stale shard, is refused). */
static int hf_files_open_index(HfFiles *f, const char *dir, const char *idx_path) {
    char *text = NULL;
    size_t len = 0;
    MILES_TRY(miles_read_file(idx_path, &text, &len));
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    int rc = MILES_OK, nm = cJSON_GetArraySize(map);
    if (!root) rc = miles_error(MILES_EFORMAT, "%s: invalid JSON", idx_path);
    else if (!cJSON_IsObject(map) || nm == 0)
        rc = miles_error(MILES_EFORMAT, "%s: no \"weight_map\" object of tensor names and shard files", idx_path);
    const char **names = rc == MILES_OK ? miles_calloc((size_t)nm, sizeof(char *)) : NULL;
    if (rc == MILES_OK && !names) rc = MILES_ENOMEM;
    int nf = 0;
    const cJSON *e;
    if (rc == MILES_OK) cJSON_ArrayForEach(e, map) {
        const char *v = cJSON_GetStringValue(e);
        /* shards lie beside the index: a path elsewhere is refused, not followed */
        if (!v || !*v || strchr(v, '/') || strchr(v, '\\') || !strcmp(v, ".") || !strcmp(v, "..")) {
            rc = miles_error(MILES_EFORMAT, "%s: weight_map[\"%s\"] must be a file name beside the index",
                             idx_path, e->string);
            break;
        }
        names[nf++] = v;
    }
    if (rc == MILES_OK) rc = miles_sort_r(names, (size_t)nf, sizeof *names, cmp_str, NULL);
    if (rc == MILES_OK) {
        int u = 0;
        for (int k = 0; k < nf; k++)
            if (!u || strcmp(names[u - 1], names[k])) names[u++] = names[k];
        nf = u;
        f->st = miles_calloc((size_t)nf, sizeof *f->st);
        f->first = miles_calloc((size_t)nf + 1, sizeof *f->first);
        if (!f->st || !f->first) rc = MILES_ENOMEM;
    }
    for (int k = 0; rc == MILES_OK && k < nf; k++) {
        char p[4096];
        rc = miles_path_join(p, sizeof p, dir, names[k]);
        if (rc == MILES_OK) rc = miles_safetensors_open(&f->st[k], p);
        if (rc != MILES_OK) {
            rc = miles_error_prefix(rc, "%s lists %s", idx_path, names[k]);
            break;
        }
        f->n = k + 1;
        f->first[k + 1] = f->first[k] + miles_safetensors_count(f->st[k]);
        for (int i = 0; rc == MILES_OK && i < miles_safetensors_count(f->st[k]); i++) {
            const char *t = miles_safetensors_name(f->st[k], i);
            const char *want = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(map, t));
            if (!want)
                rc = miles_error(MILES_EFORMAT, "%s/%s: tensor '%s' is not in the index %s", dir, names[k], t,
                                 idx_path);
            else if (strcmp(want, names[k]))
                rc = miles_error(MILES_EFORMAT, "%s/%s: tensor '%s' is there, but the index %s puts it in %s",
                                 dir, names[k], t, idx_path, want);
        }
    }
    if (rc == MILES_OK) cJSON_ArrayForEach(e, map) {
        int found = 0;
        for (int k = 0; k < f->n && !found; k++)
            found = !strcmp(names[k], e->valuestring) && miles_safetensors_find(f->st[k], e->string) >= 0;
        if (!found) {
            rc = miles_error(MILES_EMISSING, "%s: tensor '%s' should be in %s, which lacks it", idx_path,
                             e->string, e->valuestring);
            break;
        }
    }
    free(names);
    cJSON_Delete(root);
    return rc;
}

/* model.safetensors, else the index, else an error saying what is there. */
static int hf_files_open(HfFiles *f, const char *dir) {
    memset(f, 0, sizeof *f);
    char st_path[4096], idx[4096], bin_path[4096], bin_idx[4096];
    snprintf(st_path, sizeof st_path, "%s/model.safetensors", dir);
    snprintf(idx, sizeof idx, "%s/model.safetensors.index.json", dir);
    snprintf(bin_path, sizeof bin_path, "%s/pytorch_model.bin", dir);
    snprintf(bin_idx, sizeof bin_idx, "%s/pytorch_model.bin.index.json", dir);
    int rc;
    if (file_exists(st_path)) {
        snprintf(f->where, sizeof f->where, "%s", st_path);
        f->st = miles_calloc(1, sizeof *f->st);
        f->first = miles_calloc(2, sizeof *f->first);
        rc = f->st && f->first ? miles_safetensors_open(&f->st[0], st_path) : MILES_ENOMEM;
        if (rc == MILES_OK) {
            f->n = 1;
            f->first[1] = miles_safetensors_count(f->st[0]);
        }
    } else if (file_exists(idx)) {
        snprintf(f->where, sizeof f->where, "%s", idx);
        rc = hf_files_open_index(f, dir, idx);
    } else if (file_exists(bin_path) || file_exists(bin_idx)) {
        rc = miles_error(MILES_EMISSING, "%s: only pytorch_model.bin (or its shards) found; libmiles reads safetensors. "
                         "Convert once with: python tools/convert_pytorch_bin.py %s", dir, dir);
    } else {
        rc = miles_error(MILES_EMISSING, "%s: no model.safetensors (or model.safetensors.index.json)", dir);
    }
    if (rc != MILES_OK) hf_files_free(f);
    return rc;
}

/* -------------------------------------------------------- HF directories */

int miles_model_load_hf(MilesModel **out, const char *dir, const MilesConfig *head_cfg, uint64_t seed,
                        MilesLoadReport *rep_out) {
    MilesLoadReport local;
    MilesLoadReport *rep = rep_out ? rep_out : &local;
    memset(rep, 0, sizeof *rep);
    if (!out || !dir || !head_cfg) return miles_error(MILES_EINVAL, "miles_model_load_hf: NULL argument");
    *out = NULL;

    char cfg_path[4096];
    snprintf(cfg_path, sizeof cfg_path, "%s/config.json", dir);
    if (!file_exists(cfg_path))
        return miles_error(MILES_EMISSING, "%s: no config.json: not an HF model directory (expected "
                           "config.json + model.safetensors + vocab.txt)", dir);
    MilesConfig cfg = *head_cfg;
    MILES_TRY(miles_config_read_hf(&cfg, cfg_path));
    HfFiles files;
    MILES_TRY(hf_files_open(&files, dir));
    const HfFiles *F = &files;
    MilesModel *m = NULL;
    int rc = miles_model_build(&m, &cfg);
    if (rc != MILES_OK) {
        hf_files_free(&files);
        return miles_error_prefix(rc, "%s", dir);
    }
    /* heads (and anything not in the file) get HF init; encoder tensors are overwritten below */
    rc = miles_model_init_random(m, seed, 0.02f);
    const int nt = miles_model_num_tensors(m), ns = hf_files_count(F);
    int *src = miles_calloc((size_t)nt + 1, sizeof(int));     /* model tensor -> file tensor (global) */
    NameList *missing = miles_calloc(1, sizeof(NameList)), *unexpected = miles_calloc(1, sizeof(NameList));
    NameList *ignored = miles_calloc(1, sizeof(NameList)), *badshape = miles_calloc(1, sizeof(NameList));
    NameList *other = miles_calloc(1, sizeof(NameList));       /* dtype, duplicates, non-finite */
    if (!src || !missing || !unexpected || !ignored || !badshape || !other) rc = MILES_ENOMEM;
    if (rc != MILES_OK) goto done;
    for (int t = 0; t < nt; t++) src[t] = -1;

    char target[300], s1[128], s2[128];
    for (int g = 0; g < ns; g++) {
        int i;
        const MilesSafetensors *st = hf_at(F, g, &i);
        const char *name = miles_safetensors_name(st, i);
        int kind = map_hf_name(name, cfg.pooling, target, sizeof target);
        if (kind == MAP_IGNORED) { list_add(ignored, "%s", name); continue; }
        int t = kind == MAP_TARGET ? miles_model_find_tensor(m, target) : -1;
        if (t < 0) { list_add(unexpected, "%s", name); continue; }
        if (src[t] >= 0) {
            list_add(other, "%s and %s both map to %s", hf_name(F, src[t]), name, target);
            continue;
        }
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        int dt, nd;
        int64_t sh[8];
        size_t numel;
        miles_safetensors_info(st, i, &dt, &nd, sh, &numel);
        int same = nd == ti.ndim;
        for (int k = 0; same && k < nd; k++) same = sh[k] == ti.shape[k];
        if (!same) {
            miles_shape_str(s1, sizeof s1, nd, sh);
            miles_shape_str(s2, sizeof s2, ti.ndim, ti.shape);
            list_add(badshape, "%s: file %s vs model %s", name, s1, s2);
            continue;
        }
        if (!is_float_dtype(dt)) {
            list_add(other, "%s has integer dtype %s", name, miles_dtype_name(dt));
            continue;
        }
        size_t bad;
        if (!tensor_finite(st, i, &bad)) {
            list_add(other, "%s element %zu is not finite (as f32)", name, bad);
            continue;
        }
        src[t] = g;
    }
    for (int t = 0; t < nt; t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        if (src[t] >= 0) {
            int i;
            const MilesSafetensors *st = hf_at(F, src[t], &i);
            rc = miles_safetensors_read_f32(st, i, ti.data, ti.numel);
            if (rc != MILES_OK) goto done;
            rep->n_loaded++;
        } else if (!strncmp(ti.name, "bert.", 5)) {
            /* an encoder tensor with no (usable) source; shape/dtype problems are listed already */
            int listed = 0;
            for (int g = 0; g < ns && !listed; g++) {
                int kind = map_hf_name(hf_name(F, g), cfg.pooling, target, sizeof target);
                listed = kind == MAP_TARGET && !strcmp(target, ti.name);
            }
            if (!listed) list_add(missing, "%s", ti.name);
        }
    }
    rep->n_missing = missing->n;
    rep->n_unexpected = unexpected->n;
    rep->n_ignored = ignored->n;
    rep_append(rep->message, sizeof rep->message, "%s: loaded %d of %d tensors", F->where, rep->n_loaded, nt);
    if (badshape->n) rep_append(rep->message, sizeof rep->message, "; shape mismatch (%d): %s", badshape->n, badshape->text);
    if (missing->n) rep_append(rep->message, sizeof rep->message, "; missing (%d): %s", missing->n, missing->text);
    if (other->n) rep_append(rep->message, sizeof rep->message, "; refused (%d): %s", other->n, other->text);
    if (unexpected->n) rep_append(rep->message, sizeof rep->message, "; unexpected, not used (%d): %s", unexpected->n, unexpected->text);
    if (ignored->n) rep_append(rep->message, sizeof rep->message, "; ignored (%d): %s", ignored->n, ignored->text);
    if (badshape->n) rc = miles_error(MILES_ESHAPE, "%s", rep->message);
    else if (other->n) rc = miles_error(MILES_EFORMAT, "%s", rep->message);
    else if (missing->n) {
        if (cfg.pooling == MILES_POOL_POOLER && strstr(missing->text, "bert.pooler."))
            rep_append(rep->message, sizeof rep->message,
                       " (the file has no pooler: use pooling cls or mean)");
        rc = miles_error(MILES_EMISSING, "%s", rep->message);
    }
done:
    free(src);
    free(missing);
    free(unexpected);
    free(ignored);
    free(badshape);
    free(other);
    hf_files_free(&files);
    if (rc != MILES_OK) {
        miles_model_free(m);
        return rc;
    }
    m->fwd_valid = 0;
    *out = m;
    return MILES_OK;
}

/* ------------------------------------------------ Miles parameter files */

int miles_model_save(const MilesModel *m, const char *path, int n_meta, const char *const *keys,
                     const char *const *values) {
    if (!m || !path || n_meta < 0 || (n_meta && (!keys || !values)))
        return miles_error(MILES_EINVAL, "miles_model_save: invalid argument");
    MilesSafetensorsWriter *w = NULL;
    MILES_TRY(miles_safetensors_writer_open(&w, path));
    int rc = MILES_OK;
    for (int t = 0; rc == MILES_OK && t < miles_model_num_tensors(m); t++) {
        MilesTensorInfo ti;
        rc = miles_model_tensor(m, t, &ti);
        if (rc == MILES_OK) rc = miles_safetensors_writer_add(w, ti.name, MILES_DT_F32, ti.ndim, ti.shape, ti.data);
    }
    for (int i = 0; rc == MILES_OK && i < n_meta; i++) {
        if (!keys[i] || !values[i]) rc = miles_error(MILES_EINVAL, "%s: metadata entry %d is NULL", path, i);
        else rc = miles_safetensors_writer_metadata(w, keys[i], values[i]);
    }
    if (rc != MILES_OK) {
        miles_safetensors_writer_abort(w);
        return rc;
    }
    return miles_safetensors_writer_finish(w);
}

int miles_model_load_params(MilesModel *m, const char *path) {
    if (!m || !path) return miles_error(MILES_EINVAL, "miles_model_load_params: NULL argument");
    MilesSafetensors *st = NULL;
    MILES_TRY(miles_safetensors_open(&st, path));
    const int nt = miles_model_num_tensors(m), ns = miles_safetensors_count(st);
    int *src = miles_calloc((size_t)nt + 1, sizeof(int));
    if (!src) { miles_safetensors_close(st); return MILES_ENOMEM; }
    int rc = MILES_OK;
    char s1[128], s2[128];
    /* validate everything first, so a refused file leaves the model untouched */
    for (int t = 0; rc == MILES_OK && t < nt; t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        int i = miles_safetensors_find(st, ti.name);
        if (i < 0) {
            rc = miles_error(MILES_EMISSING, "%s: tensor '%s' is missing (saved from a different model "
                             "configuration?)", path, ti.name);
            break;
        }
        int dt, nd;
        int64_t sh[8];
        miles_safetensors_info(st, i, &dt, &nd, sh, NULL);
        int same = nd == ti.ndim;
        for (int k = 0; same && k < nd; k++) same = sh[k] == ti.shape[k];
        if (!same) {
            miles_shape_str(s1, sizeof s1, nd, sh);
            miles_shape_str(s2, sizeof s2, ti.ndim, ti.shape);
            rc = miles_error(MILES_ESHAPE, "%s: tensor '%s' has shape %s, the model expects %s", path,
                             ti.name, s1, s2);
            break;
        }
        if (!is_float_dtype(dt)) {
            rc = miles_error(MILES_EFORMAT, "%s: tensor '%s' has integer dtype %s", path, ti.name,
                             miles_dtype_name(dt));
            break;
        }
        size_t bad;
        if (!tensor_finite(st, i, &bad)) {
            rc = miles_error(MILES_ENAN, "%s: tensor '%s' element %zu is NaN or Inf (as f32)", path, ti.name, bad);
            break;
        }
        src[t] = i;
    }
    /* tensors the model does not have: a different configuration.  "optim.*"
     * (optimizer state) and "tokenizer/..." (the embedded vocabulary) of
     * training checkpoints are not model parameters. */
    for (int i = 0; rc == MILES_OK && i < ns; i++) {
        const char *name = miles_safetensors_name(st, i);
        if (!strncmp(name, "optim.", 6) || !strncmp(name, "tokenizer/", 10)) continue;
        if (miles_model_find_tensor(m, name) < 0)
            rc = miles_error(MILES_EFORMAT, "%s: unexpected tensor '%s' (saved from a different model "
                             "configuration?)", path, name);
    }
    if (rc == MILES_OK) miles_model_drop_infer(m); /* the weights change */
    for (int t = 0; rc == MILES_OK && t < nt; t++) {
        MilesTensorInfo ti;
        miles_model_tensor(m, t, &ti);
        rc = miles_safetensors_read_f32(st, src[t], ti.data, ti.numel);
    }
    if (rc == MILES_OK) m->fwd_valid = 0;
    free(src);
    miles_safetensors_close(st);
    return rc;
}
