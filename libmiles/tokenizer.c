/*
 * tokenizer.c — BERT WordPiece tokenizer: loading (vocab.txt +
 * tokenizer_config.json + tokenizer.json), vocab table, public API, pair
 * encoding with HF truncation, batches.  The text pipeline itself is in
 * tokenizer_text.c; docs/tokenizer.md describes the exact semantics.
 */
#include "tokenizer_internal.h"
#include <cjson/cJSON.h>
#include <errno.h>
#include <sys/stat.h>
#include <utf8proc.h>

/* ------------------------------------------------------------ vocab table */

static int table_insert(MilesTokenizer *t, int id, int cont)
{
    const char *s = t->strbuf + t->tok_off[id];
    size_t n = t->tok_len[id];
    if (cont) { s += 2; n -= 2; }
    uint64_t h = miles_tok_hash(s, n, cont);
    uint32_t i = (uint32_t)h & t->hmask;
    while (t->hid[i] >= 0) {
        int o = t->hid[i];
        if (t->hcont[i] == cont && t->hhash[i] == (uint32_t)(h >> 32)) {
            const char *k = t->strbuf + t->tok_off[o];
            size_t kl = t->tok_len[o];
            if (cont) { k += 2; kl -= 2; }
            if (kl == n && memcmp(k, s, n) == 0) return o;   /* duplicate */
        }
        i = (i + 1) & t->hmask;
    }
    t->hid[i] = id;
    t->hhash[i] = (uint32_t)(h >> 32);
    t->hcont[i] = (uint8_t)cont;
    return -1;
}

static int is_valid_utf8(const char *s, size_t n)
{
    utf8proc_int32_t c;
    size_t i = 0;
    while (i < n) {
        utf8proc_ssize_t k = utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(n - i), &c);
        if (k <= 0) return 0;
        i += (size_t)k;
    }
    return 1;
}

/* vocab.txt: one token per line, id = 0-based line number; a trailing "\r"
 * and the "\n" are stripped; a final line without "\n" counts.  data[n] is a
 * malloc'd copy (NUL-terminated) that the tokenizer keeps; path names it. */
static int read_vocab(MilesTokenizer *t, const char *path, char *data, size_t n)
{
    int lines = 0;
    for (size_t i = 0; i < n; i++) lines += data[i] == '\n';
    if (n > 0 && data[n - 1] != '\n') lines++;
    if (lines == 0) {
        free(data);
        return miles_error(MILES_EFORMAT, "%s: empty vocabulary (no tokens)", path);
    }
    t->strbuf = data;   /* tokens are NUL-terminated in place */
    t->tok_off = miles_malloc(sizeof(uint32_t) * (size_t)lines);
    t->tok_len = miles_malloc(sizeof(uint32_t) * (size_t)lines);
    if (!t->tok_off || !t->tok_len) return MILES_ENOMEM;
    if (n > UINT32_MAX) return miles_error(MILES_EFORMAT, "%s: vocabulary file too large", path);
    size_t pos = 0;
    int id = 0;
    while (pos < n) {
        size_t e = pos;
        while (e < n && data[e] != '\n') e++;
        size_t end = e;
        if (end > pos && data[end - 1] == '\r') end--;
        data[end] = '\0';
        if (!is_valid_utf8(data + pos, end - pos))
            return miles_error(MILES_EFORMAT, "%s:%d: token is not valid UTF-8", path, id + 1);
        t->tok_off[id] = (uint32_t)pos;
        t->tok_len[id] = (uint32_t)(end - pos);
        if ((int)(end - pos) > t->max_tok_bytes) t->max_tok_bytes = (int)(end - pos);
        id++;
        pos = e + 1;
    }
    t->vocab_size = id;
    /* table: every token plus the "##" ones again as continuations; load <= 1/2 */
    size_t entries = (size_t)id;
    for (int i = 0; i < id; i++)
        if (t->tok_len[i] >= 2 && memcmp(data + t->tok_off[i], "##", 2) == 0) entries++;
    size_t cap = 16;
    while (cap < 2 * entries) cap <<= 1;
    t->hmask = (uint32_t)(cap - 1);
    t->hid = miles_malloc(sizeof(int32_t) * cap);
    t->hhash = miles_malloc(sizeof(uint32_t) * cap);
    t->hcont = miles_malloc(cap);
    if (!t->hid || !t->hhash || !t->hcont) return MILES_ENOMEM;
    memset(t->hid, 0xff, sizeof(int32_t) * cap);
    for (int i = 0; i < id; i++) {
        int dup = table_insert(t, i, 0);
        if (dup >= 0)
            return miles_error(MILES_EFORMAT,
                               "%s:%d: duplicate token \"%s\" (first at line %d); "
                               "HF would silently keep the last id, Miles refuses",
                               path, i + 1, data + t->tok_off[i], dup + 1);
        if (t->tok_len[i] >= 2 && memcmp(data + t->tok_off[i], "##", 2) == 0) table_insert(t, i, 1);
    }
    return MILES_OK;
}

/* ------------------------------------------------------------- JSON config */

static int read_json(const char *path, const char *data, size_t n, cJSON **out)
{
    *out = NULL;
    cJSON *j = cJSON_ParseWithLength(data, n);
    if (!j) {
        const char *e = cJSON_GetErrorPtr();
        long off = e && e >= data && e <= data + n ? (long)(e - data) : -1;
        return miles_error(MILES_EFORMAT, "%s: malformed JSON near byte %ld", path, off);
    }
    *out = j;
    return MILES_OK;
}

/* tokenizer_config.json: "do_lower_case": true, "unk_token": "[UNK]" or
 * {"content": "[UNK]", ...}. */
static int json_bool(const cJSON *o, const char *key, int dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsBool(v)) return cJSON_IsTrue(v);
    return dflt;   /* absent or null */
}

static const char *json_token_name(const cJSON *o, const char *key, const char *dflt)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (cJSON_IsString(v)) return v->valuestring;
    if (cJSON_IsObject(v)) {
        const cJSON *c = cJSON_GetObjectItemCaseSensitive(v, "content");
        if (cJSON_IsString(c)) return c->valuestring;
    }
    return dflt;
}

static int add_added(MilesTokenizer *t, const char *text, int id, int special)
{
    for (int k = 0; k < t->n_added; k++)
        if (strcmp(t->added[k].text, text) == 0) return MILES_OK;
    MilesAddedToken *a = realloc(t->added, sizeof(*a) * (size_t)(t->n_added + 1));
    if (!a) return miles_error(MILES_ENOMEM, "out of memory");
    t->added = a;
    a[t->n_added].text = strdup(text);
    if (!a[t->n_added].text) return miles_error(MILES_ENOMEM, "out of memory");
    a[t->n_added].len = (int)strlen(text);
    a[t->n_added].id = id;
    a[t->n_added].special = special;
    t->n_added++;
    return MILES_OK;
}

/* tokenizer.json: check that it describes the pipeline we implement, that its
 * vocab is vocab.txt, and take clean_text, max_input_chars_per_word and the
 * added tokens from it. */
static int apply_tokenizer_json(MilesTokenizer *t, const char *path, const cJSON *j)
{
    const cJSON *norm = cJSON_GetObjectItemCaseSensitive(j, "normalizer");
    if (norm && !cJSON_IsNull(norm)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(norm, "type");
        if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "BertNormalizer") != 0)
            return miles_error(MILES_EUNSUPPORTED, "%s: normalizer %s is not supported (BertNormalizer only)",
                               path, cJSON_IsString(ty) ? ty->valuestring : "(without a type)");
        t->clean_text = json_bool(norm, "clean_text", 1);
    }
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(j, "pre_tokenizer");
    if (pre && !cJSON_IsNull(pre)) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(pre, "type");
        if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "BertPreTokenizer") != 0)
            return miles_error(MILES_EUNSUPPORTED, "%s: pre_tokenizer %s is not supported (BertPreTokenizer only)",
                               path, cJSON_IsString(ty) ? ty->valuestring : "(without a type)");
    }
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(j, "model");
    if (model) {
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(model, "type");
        if (cJSON_IsString(ty) && strcmp(ty->valuestring, "WordPiece") != 0)
            return miles_error(MILES_EUNSUPPORTED, "%s: model type %s is not supported (WordPiece only)",
                               path, ty->valuestring);
        const cJSON *pfx = cJSON_GetObjectItemCaseSensitive(model, "continuing_subword_prefix");
        if (cJSON_IsString(pfx) && strcmp(pfx->valuestring, "##") != 0)
            return miles_error(MILES_EUNSUPPORTED, "%s: continuing_subword_prefix \"%s\" is not supported (\"##\" only)",
                               path, pfx->valuestring);
        const cJSON *mc = cJSON_GetObjectItemCaseSensitive(model, "max_input_chars_per_word");
        if (cJSON_IsNumber(mc)) {
            if (mc->valuedouble < 1 || mc->valuedouble > 1e6)
                return miles_error(MILES_EFORMAT, "%s: max_input_chars_per_word %g out of range", path, mc->valuedouble);
            t->max_chars = (int)mc->valuedouble;
        }
        const cJSON *unk = cJSON_GetObjectItemCaseSensitive(model, "unk_token");
        if (cJSON_IsString(unk)) {
            t->unk_id = miles_tok_lookup(t, unk->valuestring, strlen(unk->valuestring), 0);
            if (t->unk_id < 0)
                return miles_error(MILES_EFORMAT, "%s: unk_token \"%s\" is not in the vocabulary", path, unk->valuestring);
        }
        const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
        if (cJSON_IsObject(vocab)) {
            int count = 0;
            const cJSON *e;
            cJSON_ArrayForEach(e, vocab) {
                int id = miles_tok_lookup(t, e->string, strlen(e->string), 0);
                if (!cJSON_IsNumber(e) || id < 0 || id != (int)e->valuedouble)
                    return miles_error(MILES_EFORMAT, "%s: model.vocab entry \"%s\" (id %g) disagrees with vocab.txt (id %d)",
                                       path, e->string, cJSON_IsNumber(e) ? e->valuedouble : -1.0, id);
                count++;
            }
            if (count != t->vocab_size)
                return miles_error(MILES_EFORMAT, "%s: model.vocab has %d tokens, vocab.txt %d", path, count, t->vocab_size);
        }
    }
    const cJSON *added = cJSON_GetObjectItemCaseSensitive(j, "added_tokens");
    const cJSON *a;
    cJSON_ArrayForEach(a, added) {
        const cJSON *content = cJSON_GetObjectItemCaseSensitive(a, "content");
        const cJSON *idj = cJSON_GetObjectItemCaseSensitive(a, "id");
        if (!cJSON_IsString(content) || !cJSON_IsNumber(idj))
            return miles_error(MILES_EFORMAT, "%s: added_tokens entry without content/id", path);
        if (json_bool(a, "normalized", 0) || json_bool(a, "lstrip", 0) || json_bool(a, "rstrip", 0) ||
            json_bool(a, "single_word", 0))
            return miles_error(MILES_EUNSUPPORTED,
                               "%s: added token \"%s\" uses normalized/lstrip/rstrip/single_word, not supported",
                               path, content->valuestring);
        int id = (int)idj->valuedouble;
        if (id < 0 || id >= t->vocab_size ||
            strcmp(t->strbuf + t->tok_off[id], content->valuestring) != 0)
            return miles_error(MILES_EFORMAT, "%s: added token \"%s\" id %d is not that vocab.txt entry",
                               path, content->valuestring, id);
        if (content->valuestring[0])
            MILES_TRY(add_added(t, content->valuestring, id, json_bool(a, "special", 0)));
    }
    return MILES_OK;
}

static int cmp_added(const void *x, const void *y)
{
    const MilesAddedToken *a = x, *b = y;
    if (a->len != b->len) return b->len - a->len;   /* longest first */
    return strcmp(a->text, b->text);
}

static int file_exists(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Paths of the three files under `path` (a directory, or a vocab.txt whose
 * directory is not searched); "" for the JSON files when path is a file. */
static int file_paths(const char *path, char vocab[1200], char cfgp[1200], char tjp[1200])
{
    struct stat sb;
    if (strlen(path) > 1100) return miles_error(MILES_EINVAL, "tokenizer: path too long (%zu bytes)", strlen(path));
    if (stat(path, &sb) != 0) /* absent: MILES_EMISSING, as the safetensors reader says it */
        return miles_error(errno == ENOENT ? MILES_EMISSING : MILES_EIO, "tokenizer: %s: %s", path, strerror(errno));
    if (S_ISDIR(sb.st_mode)) {
        snprintf(vocab, 1200, "%.1100s/vocab.txt", path);
        snprintf(cfgp, 1200, "%.1100s/tokenizer_config.json", path);
        snprintf(tjp, 1200, "%.1100s/tokenizer.json", path);
        if (!file_exists(vocab))
            return miles_error(MILES_EMISSING, "tokenizer: %s: no vocab.txt in this directory", path);
    } else {
        snprintf(vocab, 1200, "%s", path);
        cfgp[0] = tjp[0] = '\0';
    }
    return MILES_OK;
}

void miles_tokfiles_free(MilesTokFiles *f)
{
    if (!f) return;
    free(f->vocab);
    free(f->config);
    free(f->json);
    memset(f, 0, sizeof *f);
}

int miles_tokfiles_read(MilesTokFiles *f, const char *path)
{
    memset(f, 0, sizeof *f);
    if (!path) return miles_error(MILES_EINVAL, "tokenizer: NULL path");
    char vocab[1200], cfgp[1200], tjp[1200];
    MILES_TRY(file_paths(path, vocab, cfgp, tjp));
    int st = miles_read_file(vocab, &f->vocab, &f->vocab_n);
    if (st != MILES_OK) return miles_error_prefix(st, "tokenizer vocab");
    if (st == MILES_OK && cfgp[0] && file_exists(cfgp)) st = miles_read_file(cfgp, &f->config, &f->config_n);
    if (st == MILES_OK && tjp[0] && file_exists(tjp)) st = miles_read_file(tjp, &f->json, &f->json_n);
    if (st != MILES_OK) miles_tokfiles_free(f);
    return st;
}

/* Load from the files' contents; `where` is the directory or vocab.txt path
 * they came from (messages name "<where>/vocab.txt" etc.). */
static int load_impl(MilesTokenizer *t, const char *where, const MilesTokFiles *f, int from_dir, int lowercase,
                     int strip_accents, int chinese)
{
    char vocab[1200], cfgp[1200], tjp[1200];
    if (from_dir) {
        snprintf(vocab, sizeof vocab, "%.1100s/vocab.txt", where);
        snprintf(cfgp, sizeof cfgp, "%.1100s/tokenizer_config.json", where);
        snprintf(tjp, sizeof tjp, "%.1100s/tokenizer.json", where);
    } else {
        snprintf(vocab, sizeof vocab, "%.1100s", where);
        snprintf(cfgp, sizeof cfgp, "tokenizer_config.json");
        snprintf(tjp, sizeof tjp, "tokenizer.json");
    }
    snprintf(t->path, sizeof t->path, "%s", vocab);
    t->clean_text = 1;
    t->max_chars = 100;
    char *vcopy = miles_malloc(f->vocab_n + 1);
    if (!vcopy) return MILES_ENOMEM;
    memcpy(vcopy, f->vocab, f->vocab_n);
    vcopy[f->vocab_n] = '\0';
    MILES_TRY(read_vocab(t, vocab, vcopy, f->vocab_n));

    /* Flags as BertTokenizerFast.__init__ settles them: tokenizer_config.json
     * (defaults do_lower_case=true, strip_accents=null, tokenize_chinese_chars=
     * true) overrides the normalizer stored in tokenizer.json. */
    int cfg_lower = 1, cfg_strip = -1, cfg_cjk = 1;
    const char *names[5] = { "[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]" };
    cJSON *cfg = NULL, *tj = NULL;
    int st = MILES_OK;
    if (f->config) {
        st = read_json(cfgp, f->config, f->config_n, &cfg);
        if (st == MILES_OK && !cJSON_IsObject(cfg))
            st = miles_error(MILES_EFORMAT, "%s: not a JSON object", cfgp);
        if (st == MILES_OK) {
            cfg_lower = json_bool(cfg, "do_lower_case", 1);
            cfg_strip = json_bool(cfg, "strip_accents", -1);
            cfg_cjk = json_bool(cfg, "tokenize_chinese_chars", 1);
            names[0] = json_token_name(cfg, "unk_token", names[0]);
            names[1] = json_token_name(cfg, "cls_token", names[1]);
            names[2] = json_token_name(cfg, "sep_token", names[2]);
            names[3] = json_token_name(cfg, "pad_token", names[3]);
            names[4] = json_token_name(cfg, "mask_token", names[4]);
        }
    }
    if (st == MILES_OK) {
        int *ids[5] = { &t->unk_id, &t->cls_id, &t->sep_id, &t->pad_id, &t->mask_id };
        for (int k = 0; k < 5; k++) *ids[k] = miles_tok_lookup(t, names[k], strlen(names[k]), 0);
        if (t->unk_id < 0)
            st = miles_error(MILES_EFORMAT, "%s: unknown token \"%s\" is not in the vocabulary", vocab, names[0]);
    }
    if (st == MILES_OK && f->json) {
        st = read_json(tjp, f->json, f->json_n, &tj);
        if (st == MILES_OK) st = apply_tokenizer_json(t, tjp, tj);
    } else if (st == MILES_OK) {
        /* no tokenizer.json: the fast tokenizer converted from the slow one
         * registers the special tokens as (non-normalized) added tokens */
        int ids[5] = { t->unk_id, t->cls_id, t->sep_id, t->pad_id, t->mask_id };
        for (int k = 0; k < 5 && st == MILES_OK; k++)
            if (ids[k] >= 0) st = add_added(t, names[k], ids[k], 1);
    }
    cJSON_Delete(cfg);
    cJSON_Delete(tj);
    MILES_TRY(st);

    t->lowercase = lowercase >= 0 ? lowercase : cfg_lower;
    int s = strip_accents >= 0 ? strip_accents : cfg_strip;
    t->strip_accents = s >= 0 ? s : t->lowercase;
    t->handle_chinese = chinese >= 0 ? chinese : cfg_cjk;
    qsort(t->added, (size_t)t->n_added, sizeof(*t->added), cmp_added);
    for (int k = 0; k < t->n_added; k++) t->added_first[(uint8_t)t->added[k].text[0]] = 1;
    return MILES_OK;
}

/* -------------------------------------------------------------- public API */

int miles_tokenizer_load_opts(MilesTokenizer **out, const char *path, int lowercase, int strip_accents,
                              int chinese)
{
    if (!out || !path) return miles_error(MILES_EINVAL, "miles_tokenizer_load: NULL argument");
    *out = NULL;
    MilesTokenizer *t = miles_calloc(1, sizeof(*t));
    if (!t) return MILES_ENOMEM;
    t->unk_id = t->cls_id = t->sep_id = t->pad_id = t->mask_id = -1;
    MilesTokFiles f;
    struct stat sb;
    int st = miles_tokfiles_read(&f, path);
    if (st == MILES_OK)
        st = load_impl(t, path, &f, stat(path, &sb) == 0 && S_ISDIR(sb.st_mode), lowercase, strip_accents, chinese);
    miles_tokfiles_free(&f);
    if (st != MILES_OK) {
        miles_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MILES_OK;
}

int miles_tokenizer_load_files(MilesTokenizer **out, const MilesTokFiles *f, const char *name)
{
    if (!out || !f || !f->vocab) return miles_error(MILES_EINVAL, "miles_tokenizer_load_files: no vocab.txt");
    *out = NULL;
    MilesTokenizer *t = miles_calloc(1, sizeof(*t));
    if (!t) return MILES_ENOMEM;
    t->unk_id = t->cls_id = t->sep_id = t->pad_id = t->mask_id = -1;
    int st = load_impl(t, name ? name : "<memory>", f, 1, -1, -1, -1);
    if (st != MILES_OK) {
        miles_tokenizer_free(t);
        return st;
    }
    *out = t;
    return MILES_OK;
}

int miles_tokenizer_load(MilesTokenizer **out, const char *path)
{
    return miles_tokenizer_load_opts(out, path, -1, -1, -1);
}

void miles_tokenizer_free(MilesTokenizer *t)
{
    if (!t) return;
    for (int k = 0; k < t->n_added; k++) free(t->added[k].text);
    free(t->added);
    free(t->strbuf);
    free(t->tok_off);
    free(t->tok_len);
    free(t->hid);
    free(t->hhash);
    free(t->hcont);
    free(t);
}

int miles_tokenizer_vocab_size(const MilesTokenizer *t)
{
    return t ? t->vocab_size : 0;
}

int miles_tokenizer_token_to_id(const MilesTokenizer *t, const char *token)
{
    if (!t || !token) return -1;
    return miles_tok_lookup(t, token, strlen(token), 0);
}

const char *miles_tokenizer_id_to_token(const MilesTokenizer *t, int id)
{
    if (!t || id < 0 || id >= t->vocab_size) return NULL;
    return t->strbuf + t->tok_off[id];
}

int miles_tokenizer_special_id(const MilesTokenizer *t, const char *which)
{
    if (!t || !which) return -1;
    if (!strcmp(which, "cls")) return t->cls_id;
    if (!strcmp(which, "sep")) return t->sep_id;
    if (!strcmp(which, "pad")) return t->pad_id;
    if (!strcmp(which, "unk")) return t->unk_id;
    if (!strcmp(which, "mask")) return t->mask_id;
    return -1;
}

void miles_tokenizer_flags(const MilesTokenizer *t, int *lowercase, int *strip_accents, int *chinese)
{
    if (lowercase) *lowercase = t ? t->lowercase : 0;
    if (strip_accents) *strip_accents = t ? t->strip_accents : 0;
    if (chinese) *chinese = t ? t->handle_chinese : 0;
}

int miles_tokenizer_tokenize(const MilesTokenizer *t, const char *text, size_t len, int32_t *ids, int cap, int *n)
{
    if (n) *n = 0;
    if (!t || (!text && len) || (!ids && cap > 0) || cap < 0 || !n)
        return miles_error(MILES_EINVAL, "miles_tokenizer_tokenize: invalid argument");
    MilesTokOut o = { .ids = ids, .cap = cap, .n = 0 };
    MILES_TRY(miles_tok_run(t, text ? text : "", len, &o));
    *n = o.n;
    return MILES_OK;
}

/* HF truncate_encodings, LongestFirst, for a pair: budget m tokens. */
static void truncate_pair(int na, int nb, int m, int *ka, int *kb)
{
    *ka = na;
    *kb = nb;
    if (na + nb <= m) return;
    int n1 = na, n2 = nb, swap = 0;
    if (n1 > n2) { swap = 1; n1 = nb; n2 = na; }
    if (n1 > m) n2 = n1;
    else n2 = n1 > m - n1 ? n1 : m - n1;
    if (n1 + n2 > m) {
        n1 = m / 2;
        n2 = n1 + m % 2;
    }
    if (swap) { int x = n1; n1 = n2; n2 = x; }
    if (*ka > n1) *ka = n1;
    if (*kb > n2) *kb = n2;
}

/* Encode into rows of max_len; scratch (>= max_len ints) holds b's ids. */
static int encode_row(const MilesTokenizer *t, const char *a, size_t a_len, const char *b, size_t b_len, int max_len,
                      int32_t *ids, int32_t *type_ids, int32_t *mask, int *len, int32_t *scratch)
{
    int na, nb = 0;
    MilesTokOut oa = { .ids = ids + 1, .cap = max_len - 1, .n = 0 };
    MILES_TRY(miles_tok_run(t, a, a_len, &oa));
    na = oa.n;
    int ka, kb = 0;
    if (b) {
        MilesTokOut ob = { .ids = scratch, .cap = max_len, .n = 0 };
        MILES_TRY(miles_tok_run(t, b, b_len, &ob));
        nb = ob.n;
        truncate_pair(na, nb, max_len - 3, &ka, &kb);
    } else {
        ka = na < max_len - 2 ? na : max_len - 2;
    }
    int p = 0;
    ids[p++] = t->cls_id;   /* ids[1..ka] already hold a's first ka ids */
    p += ka;
    ids[p++] = t->sep_id;
    int end_a = p;
    if (b) {
        memcpy(ids + p, scratch, sizeof(int32_t) * (size_t)kb);
        p += kb;
        ids[p++] = t->sep_id;
    }
    int pad = t->pad_id >= 0 ? t->pad_id : 0;
    for (int i = p; i < max_len; i++) ids[i] = pad;
    for (int i = 0; i < max_len; i++) {
        if (type_ids) type_ids[i] = (i >= end_a && i < p) ? 1 : 0;
        if (mask) mask[i] = i < p;
    }
    *len = p;
    return MILES_OK;
}

static int check_encode_args(const MilesTokenizer *t, int max_len, int pair, const void *ids)
{
    if (!t || !ids) return miles_error(MILES_EINVAL, "miles_tokenizer_encode: NULL argument");
    if (t->cls_id < 0 || t->sep_id < 0)
        return miles_error(MILES_EMISSING, "%s: [CLS]/[SEP] not in the vocabulary; cannot encode", t->path);
    if (max_len < (pair ? 3 : 2))
        return miles_error(MILES_EINVAL, "miles_tokenizer_encode: max_len %d leaves no room for [CLS]/[SEP]", max_len);
    return MILES_OK;
}

int miles_tokenizer_encode(const MilesTokenizer *t, const char *a, size_t a_len, const char *b, size_t b_len,
                           int max_len, int pad_to_max, int32_t *ids, int32_t *type_ids, int32_t *mask, int *len)
{
    (void)pad_to_max;   /* one sequence: the arrays are max_len either way */
    if (len) *len = 0;
    if (!a || !len) return miles_error(MILES_EINVAL, "miles_tokenizer_encode: NULL argument");
    MILES_TRY(check_encode_args(t, max_len, b != NULL, ids));
    int32_t *scratch = NULL;
    if (b) {
        scratch = miles_malloc(sizeof(int32_t) * (size_t)max_len);
        if (!scratch) return MILES_ENOMEM;
    }
    int st = encode_row(t, a, a_len, b, b_len, max_len, ids, type_ids, mask, len, scratch);
    free(scratch);
    return st;
}

int miles_tokenizer_encode_batch(const MilesTokenizer *t, const char *const *texts, const size_t *lens, int n,
                                 int max_len, int pad_to_max, int32_t *ids, int32_t *type_ids, int32_t *mask,
                                 int *T_out)
{
    if (T_out) *T_out = 0;
    if (!T_out || (n > 0 && !texts) || n < 0)
        return miles_error(MILES_EINVAL, "miles_tokenizer_encode_batch: invalid argument");
    MILES_TRY(check_encode_args(t, max_len, 0, ids));
    for (int i = 0; i < n; i++)
        if (!texts[i]) return miles_error(MILES_EINVAL, "miles_tokenizer_encode_batch: text %d is NULL", i);
    int T = 0, status = MILES_OK;
    /* rows of stride max_len first; compacted to stride T below */
#pragma omp parallel for schedule(dynamic, 32) reduction(max : T) if (n >= 256)
    for (int i = 0; i < n; i++) {
        int len = 0;
        size_t off = (size_t)i * (size_t)max_len;
        int st = encode_row(t, texts[i], lens ? lens[i] : strlen(texts[i]), NULL, 0, max_len, ids + off,
                            type_ids ? type_ids + off : NULL, mask ? mask + off : NULL, &len, NULL);
        if (st != MILES_OK) {
#pragma omp atomic write
            status = st;
        }
        if (len > T) T = len;
    }
    if (status != MILES_OK) return miles_error(status, "miles_tokenizer_encode_batch: %s", status == MILES_ENOMEM ? "out of memory" : "failed");
    if (pad_to_max) T = max_len;
    if (T < max_len) {
        for (int i = 1; i < n; i++) {
            memmove(ids + (size_t)i * T, ids + (size_t)i * max_len, sizeof(int32_t) * (size_t)T);
            if (type_ids) memmove(type_ids + (size_t)i * T, type_ids + (size_t)i * max_len, sizeof(int32_t) * (size_t)T);
            if (mask) memmove(mask + (size_t)i * T, mask + (size_t)i * max_len, sizeof(int32_t) * (size_t)T);
        }
    }
    *T_out = T;
    return MILES_OK;
}

int miles_tokenizer_hash(const MilesTokenizer *t, char out[17])
{
    if (!t || !out) return miles_error(MILES_EINVAL, "miles_tokenizer_hash: NULL argument");
    uint64_t h = 0xcbf29ce484222325ull;
#define FNV(byte) do { h ^= (uint8_t)(byte); h *= 0x100000001b3ull; } while (0)
    for (int i = 0; i < t->vocab_size; i++) {
        const char *s = t->strbuf + t->tok_off[i];
        for (uint32_t k = 0; k < t->tok_len[i]; k++) FNV(s[k]);
        FNV('\n');
    }
    char flags[96];
    int fl = snprintf(flags, sizeof flags, "lowercase=%d strip_accents=%d chinese=%d clean=%d max_chars=%d",
                      t->lowercase, t->strip_accents, t->handle_chinese, t->clean_text, t->max_chars);
    for (int k = 0; k < fl; k++) FNV(flags[k]);
#undef FNV
    snprintf(out, 17, "%016llx", (unsigned long long)h);
    return MILES_OK;
}
