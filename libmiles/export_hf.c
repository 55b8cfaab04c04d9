/*
 * export_hf.c — Miles checkpoint -> Hugging Face model directory.
 *
 * The directory holds what `transformers.BertModel.from_pretrained(dir)` and
 * `BertTokenizerFast.from_pretrained(dir)` need (config.json, model.safetensors,
 * vocab.txt, tokenizer_config.json) plus the Miles head: its tensors under
 * "miles.*" names in the same safetensors file (BertModel ignores them with a
 * warning), its configuration under config.json's "miles" key, and
 * miles_head.py, a PyTorch module that runs the whole model (docs/export.md).
 *
 * Atomicity: everything is written into a fresh mkdtemp() directory beside the
 * target and renamed into place at the end, so a failure (or a crash) never
 * leaves a half-written export under the target name.
 */
#include "internal.h"
#include "train_internal.h" /* the checkpoint's embedded tokenizer files */

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <sys/stat.h>
#include <unistd.h>

#define HF_FORMAT "miles-hf-1"

void miles_export_options_default(MilesExportOptions *opt) {
    memset(opt, 0, sizeof *opt);
}

int miles_export_hf_name(const char *name, char *out, size_t cap) {
    if (!name || !out || cap == 0) return miles_error(MILES_EINVAL, "miles_export_hf_name: NULL argument");
    int n = strncmp(name, "bert.", 5) == 0 ? snprintf(out, cap, "%s", name + 5)
                                            : snprintf(out, cap, "miles.%s", name);
    if (n < 0 || (size_t)n >= cap) return miles_error(MILES_ERANGE, "tensor name \"%s\" too long", name);
    return MILES_OK;
}

/* ------------------------------------------------------------ helpers */

/* The shortest decimal that reads back as the same float (1e-12f prints as
 * 1e-12, not 9.99999996e-13), as a double for cJSON. */
static double short_float(float f) {
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) break;
    }
    return strtod(buf, NULL);
}

static int is_dir(const char *p) {
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}
static int exists(const char *p) {
    struct stat sb;
    return lstat(p, &sb) == 0;
}

/* Remove the regular files of a directory we created, then the directory.
 * Deliberately not recursive: it only ever cleans our own temp directory (and
 * an old export being replaced, whose files are all regular). */
static int remove_flat_dir(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -1;
    struct dirent *e;
    char p[4096];
    int bad = 0;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (unlink(p) != 0) bad = 1;
    }
    closedir(d);
    if (rmdir(dir) != 0) bad = 1;
    return bad ? -1 : 0;
}

static int write_bytes(const char *dir, const char *name, const void *data, size_t n) {
    char p[4096];
    MILES_TRY(miles_path_join(p, sizeof p, dir, name));
    return miles_write_file_atomic(p, data, n);
}
static int write_text(const char *dir, const char *name, const char *text) {
    return write_bytes(dir, name, text, strlen(text));
}

/* Parse a metadata JSON value into a cJSON node; NULL when absent or not JSON. */
static cJSON *parse_or_null(const char *text) {
    return text ? cJSON_Parse(text) : NULL;
}

/* ------------------------------------------------------------ checkpoint */

/* Everything an export needs from a checkpoint (its contract: MilesCheckpoint). */
typedef struct {
    MilesCheckpoint *ck;
    MilesModel *m;
    const char *data, *thr, *tok_hash, *text_clean;
} Ckpt;

static void ckpt_close(Ckpt *c) {
    miles_model_free(c->m);
    miles_checkpoint_close(c->ck);
    memset(c, 0, sizeof *c);
}

static int ckpt_open(Ckpt *c, const char *path) {
    memset(c, 0, sizeof *c);
    MILES_TRY(miles_checkpoint_open(&c->ck, path));
    int s = miles_checkpoint_model(c->ck, &c->m);
    if (s == MILES_OK) s = miles_ckpt_check_scaler(c->ck);
    MilesPlatt cal;   /* copied as stored: refused here as the predictor refuses it */
    int has_cal;
    if (s == MILES_OK) s = miles_checkpoint_calibration(c->ck, &cal, &has_cal);
    if (s != MILES_OK) { ckpt_close(c); return s; }
    c->data = miles_checkpoint_meta(c->ck, MILES_META_SCALER);
    c->thr = miles_checkpoint_meta(c->ck, MILES_META_THRESHOLD);
    c->tok_hash = miles_checkpoint_meta(c->ck, MILES_META_TOKENIZER_HASH);
    c->text_clean = miles_checkpoint_meta(c->ck, MILES_META_TEXT_CLEAN);
    return MILES_OK;
}

/* The trainer's max_len, capped at the position table (the table if unknown). */
static int ckpt_max_len(const Ckpt *c) {
    int P = miles_model_config(c->m)->max_position_embeddings, T = miles_checkpoint_max_len(c->ck);
    return T > 0 && T < P ? T : P;
}

/* ------------------------------------------------------------ config.json */

static char *build_config_json(const Ckpt *c, const MilesTokenizer *tok, const char *checkpoint) {
    const MilesConfig *k = miles_model_config(c->m);
    cJSON *o = cJSON_CreateObject();
    cJSON *arch = cJSON_AddArrayToObject(o, "architectures");
    cJSON_AddItemToArray(arch, cJSON_CreateString("BertModel"));
    cJSON_AddStringToObject(o, "model_type", "bert");
    cJSON_AddNumberToObject(o, "vocab_size", k->vocab_size);
    cJSON_AddNumberToObject(o, "hidden_size", k->hidden_size);
    cJSON_AddNumberToObject(o, "num_hidden_layers", k->num_hidden_layers);
    cJSON_AddNumberToObject(o, "num_attention_heads", k->num_attention_heads);
    cJSON_AddNumberToObject(o, "intermediate_size", k->intermediate_size);
    cJSON_AddStringToObject(o, "hidden_act", "gelu");
    cJSON_AddNumberToObject(o, "hidden_dropout_prob", short_float(k->hidden_dropout_prob));
    cJSON_AddNumberToObject(o, "attention_probs_dropout_prob", short_float(k->attention_probs_dropout_prob));
    cJSON_AddNumberToObject(o, "max_position_embeddings", k->max_position_embeddings);
    cJSON_AddNumberToObject(o, "type_vocab_size", k->type_vocab_size);
    cJSON_AddNumberToObject(o, "initializer_range", 0.02);
    cJSON_AddNumberToObject(o, "layer_norm_eps", short_float(k->layer_norm_eps));
    int pad = miles_tokenizer_special_id(tok, "pad");
    cJSON_AddNumberToObject(o, "pad_token_id", pad >= 0 ? pad : 0);
    cJSON_AddStringToObject(o, "position_embedding_type", "absolute");
    cJSON_AddBoolToObject(o, "use_cache", 1);
    cJSON_AddNullToObject(o, "classifier_dropout");
    cJSON_AddStringToObject(o, "torch_dtype", "float32");

    cJSON *mi = cJSON_AddObjectToObject(o, "miles");
    cJSON_AddStringToObject(mi, "format", HF_FORMAT);
    cJSON_AddStringToObject(mi, "miles_version", MILES_VERSION_STRING);
    const char *base = strrchr(checkpoint, '/');
    cJSON_AddStringToObject(mi, "source_checkpoint", base ? base + 1 : checkpoint);
    char *cj = NULL;
    if (miles_config_to_json(k, &cj) == MILES_OK) {
        cJSON *cfg = cJSON_Parse(cj);
        if (cfg) cJSON_AddItemToObject(mi, "config", cfg);
        free(cj);
    }
    cJSON_AddStringToObject(mi, "pooling", k->pooling == MILES_POOL_POOLER ? "pooler"
                                           : k->pooling == MILES_POOL_CLS ? "cls" : "mean");
    cJSON *fn = cJSON_AddArrayToObject(mi, "feature_names");
    for (int i = 0; i < k->num_features; i++)
        cJSON_AddItemToArray(fn, cJSON_CreateString(k->num_features == MILES_NUM_FEATURES ? miles_feature_names[i] : "?"));
    cJSON *data = parse_or_null(c->data);
    if (data) cJSON_AddItemToObject(mi, "data", data);
    else cJSON_AddNullToObject(mi, "data");
    double thr = c->thr ? strtod(c->thr, NULL) : NAN;
    if (isfinite(thr)) cJSON_AddNumberToObject(mi, "decision_threshold", thr);
    else cJSON_AddNullToObject(mi, "decision_threshold");
    /* a calibrated checkpoint's Platt map of viral_prob (MILES_META_CALIBRATION),
     * only when it has one (the head computes the model's own P(viral)); raw, as
     * stored (validated at open): cJSON would print a and b with 15 digits */
    const char *cal = miles_checkpoint_meta(c->ck, MILES_META_CALIBRATION);
    if (cal) cJSON_AddRawToObject(mi, "calibration", cal);
    /* how the training rows were split (MILES_META_DATA_SPLIT): raw, so a 64-bit
     * seed keeps its digits, and only when it is a JSON object (it is not
     * validated at open); null otherwise */
    const char *ds = miles_ckpt_data_split(c->ck);
    if (ds) cJSON_AddRawToObject(mi, "data_split", ds);
    else cJSON_AddNullToObject(mi, "data_split");
    char hash[17] = "";
    if (miles_tokenizer_hash(tok, hash) == MILES_OK) cJSON_AddStringToObject(mi, "tokenizer_hash", hash);
    cJSON_AddStringToObject(mi, "text_clean", c->text_clean ? c->text_clean : "none");
    cJSON_AddNumberToObject(mi, "max_len", ckpt_max_len(c));
    cJSON_AddStringToObject(mi, "head_prefix", "miles.");
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

static char *build_tokenizer_config(const MilesTokenizer *tok, int max_len) {
    int lc = 1, sa = 1, ch = 1;
    miles_tokenizer_flags(tok, &lc, &sa, &ch);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "tokenizer_class", "BertTokenizer");
    cJSON_AddBoolToObject(o, "do_lower_case", lc);
    cJSON_AddBoolToObject(o, "do_basic_tokenize", 1);
    cJSON_AddBoolToObject(o, "tokenize_chinese_chars", ch);
    /* HF: strip_accents null = follow do_lower_case */
    if (sa == lc) cJSON_AddNullToObject(o, "strip_accents");
    else cJSON_AddBoolToObject(o, "strip_accents", sa);
    cJSON_AddNumberToObject(o, "model_max_length", max_len);
    cJSON_AddBoolToObject(o, "clean_up_tokenization_spaces", 1);
    static const char *const which[5] = {"unk", "sep", "pad", "cls", "mask"};
    static const char *const key[5] = {"unk_token", "sep_token", "pad_token", "cls_token", "mask_token"};
    static const char *const dflt[5] = {"[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]"};
    for (int i = 0; i < 5; i++) {
        int id = miles_tokenizer_special_id(tok, which[i]);
        const char *t = id >= 0 ? miles_tokenizer_id_to_token(tok, id) : NULL;
        cJSON_AddStringToObject(o, key[i], t ? t : dflt[i]);
    }
    char *s = cJSON_Print(o);
    cJSON_Delete(o);
    return s;
}

/* ------------------------------------------------------------ miles_head.py */

static const char MILES_HEAD_PY[] =
"\"\"\"miles_head.py: run an exported Miles model in PyTorch (written by miles-export).\n"
"\n"
"    from miles_head import MilesModel\n"
"    model = MilesModel.from_pretrained(export_dir)          # eval mode\n"
"    tok = transformers.BertTokenizerFast.from_pretrained(export_dir)\n"
"    enc = tok(titles, padding=True, truncation=True, max_length=model.max_len,\n"
"              return_tensors=\"pt\")\n"
"    out = model(enc[\"input_ids\"], enc[\"attention_mask\"], enc[\"token_type_ids\"], features)\n"
"    out[\"logits\"] [B,2], out[\"viral_prob\"] [B], out[\"velocity\"] [B]\n"
"\n"
"features are the 18 standardized inputs (config.json: miles.feature_names; the\n"
"standardization is miles.data, see docs/export.md).  velocity is min-max scaled\n"
"like training targets.  Titles must be cleaned like training when\n"
"miles.text_clean is \"seed\".\n"
"\"\"\"\n"
"import json\n"
"import os\n"
"\n"
"import torch\n"
"from safetensors.torch import load_file\n"
"from torch import nn\n"
"from transformers import BertModel\n"
"from transformers.utils import logging as hf_logging\n"
"\n"
"\n"
"class MilesHead(nn.Module):\n"
"    \"\"\"Pooling -> numeric MLP -> concat -> fusion MLP -> classifier / regressor.\"\"\"\n"
"\n"
"    def __init__(self, miles_cfg, hidden_size):\n"
"        super().__init__()\n"
"        c = miles_cfg[\"config\"]\n"
"        self.pooling = c[\"pooling\"]\n"
"        self.sigmoid = c[\"velocity_activation\"] == \"sigmoid\"\n"
"        w = c[\"num_features\"]\n"
"        self.numeric_mlp = nn.ModuleList()\n"
"        for width in c[\"numeric_widths\"]:\n"
"            self.numeric_mlp.append(nn.Linear(w, width))\n"
"            w = width\n"
"        w = hidden_size + w\n"
"        self.fusion = nn.ModuleList()\n"
"        for width in c[\"fusion_widths\"]:\n"
"            self.fusion.append(nn.Linear(w, width))\n"
"            w = width\n"
"        self.classifier = nn.Linear(w, 2)\n"
"        self.regressor = nn.Linear(w, 1)\n"
"\n"
"    def forward(self, last_hidden, pooler_output, attention_mask, features):\n"
"        if self.pooling == \"pooler\":\n"
"            text = pooler_output\n"
"        elif self.pooling == \"cls\":\n"
"            text = last_hidden[:, 0]\n"
"        else:  # masked mean\n"
"            m = attention_mask.to(last_hidden.dtype).unsqueeze(-1)\n"
"            text = (last_hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)\n"
"        x = features.to(text.dtype)\n"
"        for lin in self.numeric_mlp:\n"
"            x = torch.relu(lin(x))\n"
"        h = torch.cat([text, x], dim=1)\n"
"        for lin in self.fusion:\n"
"            h = torch.relu(lin(h))\n"
"        logits = self.classifier(h)\n"
"        vel = self.regressor(h).squeeze(-1)\n"
"        if self.sigmoid:\n"
"            vel = torch.sigmoid(vel)\n"
"        return {\"logits\": logits, \"viral_prob\": torch.softmax(logits, dim=-1)[:, 1], \"velocity\": vel}\n"
"\n"
"\n"
"class MilesModel(nn.Module):\n"
"    \"\"\"transformers.BertModel + MilesHead, loaded from a miles-export directory.\"\"\"\n"
"\n"
"    def __init__(self, bert, head, miles_cfg):\n"
"        super().__init__()\n"
"        self.bert = bert\n"
"        self.head = head\n"
"        self.miles = miles_cfg\n"
"        self.max_len = miles_cfg.get(\"max_len\", 128)\n"
"        self.decision_threshold = miles_cfg.get(\"decision_threshold\")\n"
"\n"
"    @classmethod\n"
"    def from_pretrained(cls, path):\n"
"        with open(os.path.join(path, \"config.json\"), encoding=\"utf-8\") as f:\n"
"            cfg = json.load(f)\n"
"        mc = cfg[\"miles\"]\n"
"        # no pooler tensors are exported unless the model pools with them\n"
"        # the miles.* head tensors are expected to be unused by BertModel: silence that warning\n"
"        verbosity = hf_logging.get_verbosity()\n"
"        hf_logging.set_verbosity_error()\n"
"        try:\n"
"            bert = BertModel.from_pretrained(path, add_pooling_layer=mc[\"pooling\"] == \"pooler\")\n"
"        finally:\n"
"            hf_logging.set_verbosity(verbosity)\n"
"        head = MilesHead(mc, cfg[\"hidden_size\"])\n"
"        prefix = mc.get(\"head_prefix\", \"miles.\")\n"
"        sd = load_file(os.path.join(path, \"model.safetensors\"))\n"
"        head.load_state_dict({k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)},\n"
"                             strict=True)\n"
"        return cls(bert, head, mc).eval()\n"
"\n"
"    def forward(self, input_ids, attention_mask, token_type_ids=None, features=None):\n"
"        if token_type_ids is None:\n"
"            token_type_ids = torch.zeros_like(input_ids)\n"
"        out = self.bert(input_ids=input_ids, attention_mask=attention_mask,\n"
"                        token_type_ids=token_type_ids)\n"
"        return self.head(out.last_hidden_state, out.pooler_output, attention_mask, features)\n";

/* ------------------------------------------------------------ tokenizer */

/* The tokenizer files to copy: opt->vocab_dir's, else the ones embedded in the
 * checkpoint, else those under its "vocab_dir" hint (the tokenizer itself was
 * checked against the checkpoint by miles_checkpoint_tokenizer).  *owned: the
 * buffers are malloc'd (free with miles_tokfiles_free). */
static int tokenizer_files(const Ckpt *c, const MilesExportOptions *opt, MilesTokFiles *f, int *owned) {
    *owned = 0;
    if (!(opt && opt->vocab_dir) && miles_checkpoint_has_tokenizer(c->ck))
        return miles_checkpoint_tokenizer_files(c->ck, f);
    const char *v = opt && opt->vocab_dir ? opt->vocab_dir : miles_checkpoint_meta(c->ck, MILES_META_VOCAB_DIR);
    *owned = 1;
    return miles_tokfiles_read(f, v);
}

/* ------------------------------------------------------------ export */

static int write_export(const Ckpt *c, const MilesTokenizer *tok, const char *tmp, const char *checkpoint,
                        const MilesTokFiles *files) {
    int s = write_bytes(tmp, "vocab.txt", files->vocab, files->vocab_n);
    if (s == MILES_OK && files->json) s = write_bytes(tmp, "tokenizer.json", files->json, files->json_n);
    if (s == MILES_OK) {
        char *tc = build_tokenizer_config(tok, ckpt_max_len(c));
        s = tc ? write_text(tmp, "tokenizer_config.json", tc) : miles_error(MILES_ENOMEM, "out of memory");
        free(tc);
    }
    if (s == MILES_OK) {
        char *cj = build_config_json(c, tok, checkpoint);
        s = cj ? write_text(tmp, "config.json", cj) : miles_error(MILES_ENOMEM, "out of memory");
        free(cj);
    }
    if (s == MILES_OK) s = write_text(tmp, "miles_head.py", MILES_HEAD_PY);
    if (s != MILES_OK) return s;

    /* model.safetensors: the writer references the model's parameter memory */
    char p[4096];
    MILES_TRY(miles_path_join(p, sizeof p, tmp, "model.safetensors"));
    MilesSafetensorsWriter *w = NULL;
    MILES_TRY(miles_safetensors_writer_open(&w, p));
    /* transformers refuses safetensors files without format metadata */
    s = miles_safetensors_writer_metadata(w, "format", "pt");
    int nt = miles_model_num_tensors(c->m);
    for (int i = 0; s == MILES_OK && i < nt; i++) {
        MilesTensorInfo ti;
        char hf[160];
        s = miles_model_tensor(c->m, i, &ti);
        if (s == MILES_OK) s = miles_export_hf_name(ti.name, hf, sizeof hf);
        if (s == MILES_OK) s = miles_safetensors_writer_add(w, hf, MILES_DT_F32, ti.ndim, ti.shape, ti.data);
    }
    if (s != MILES_OK) {
        miles_safetensors_writer_abort(w);
        return s;
    }
    return miles_safetensors_writer_finish(w);
}

/* Is `dir` a previous export (so --overwrite may replace it)? */
static int is_miles_export(const char *dir) {
    char p[4096], *text = NULL;
    if (miles_path_join(p, sizeof p, dir, "config.json") != MILES_OK) { miles_clear_error(); return 0; }
    if (miles_read_file(p, &text, NULL) != MILES_OK) { miles_clear_error(); return 0; }
    cJSON *o = cJSON_Parse(text);
    free(text);
    const cJSON *mi = cJSON_GetObjectItemCaseSensitive(o, "miles");
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(mi, "format");
    int yes = cJSON_IsString(f) && !strcmp(f->valuestring, HF_FORMAT);
    cJSON_Delete(o);
    return yes;
}

int miles_export_hf(const char *checkpoint, const char *out_dir, const MilesExportOptions *opt) {
    if (!checkpoint || !out_dir || !*out_dir)
        return miles_error(MILES_EINVAL, "miles_export_hf: checkpoint and out_dir are required");
    size_t olen = strlen(out_dir);
    while (olen > 1 && out_dir[olen - 1] == '/') olen--;
    if (olen + 32 >= 4096) return miles_error(MILES_EINVAL, "%s: path too long", out_dir);
    char target[4096];
    snprintf(target, sizeof target, "%.*s", (int)olen, out_dir);
    int overwrite = opt && opt->overwrite;
    if (exists(target)) {
        if (!overwrite)
            return miles_error(MILES_EINVAL, "%s already exists (pass overwrite / --force to replace it)", target);
        if (!is_dir(target) || !is_miles_export(target))
            return miles_error(MILES_EINVAL, "%s exists and is not a Miles HF export; refusing to replace it", target);
    }

    Ckpt c;
    MILES_TRY(ckpt_open(&c, checkpoint));
    MilesTokenizer *tok = NULL;
    MilesTokFiles files;
    memset(&files, 0, sizeof files);
    int owned = 0;
    int s = miles_checkpoint_tokenizer(c.ck, opt ? opt->vocab_dir : NULL, &tok);
    if (s == MILES_OK) s = tokenizer_files(&c, opt, &files, &owned);

    char tmp[4096] = "";
    if (s == MILES_OK) {
        snprintf(tmp, sizeof tmp, "%.4060s.tmp-XXXXXX", target); /* olen + 32 < 4096 (checked) */
        if (!mkdtemp(tmp)) {
            s = miles_error(MILES_EIO, "%s: cannot create a temporary directory: %s", tmp, strerror(errno));
            tmp[0] = '\0';
        } else {
            chmod(tmp, 0755);
        }
    }
    if (s == MILES_OK) s = write_export(&c, tok, tmp, checkpoint, &files);

    char old[4096] = "";
    if (s == MILES_OK && exists(target)) {
        /* move the previous export aside, put the new one in place, then delete the old */
        snprintf(old, sizeof old, "%.4060s.old-XXXXXX", target);
        if (!mkdtemp(old) || rename(target, old) != 0) {
            s = miles_error(MILES_EIO, "%s: cannot move the previous export aside: %s", target, strerror(errno));
            if (old[0] && is_dir(old)) rmdir(old);
            old[0] = '\0';
        }
    }
    if (s == MILES_OK && rename(tmp, target) != 0) {
        s = miles_error(MILES_EIO, "%s: rename from %s failed: %s", target, tmp, strerror(errno));
        if (old[0]) rename(old, target); /* put the previous export back */
        old[0] = '\0';
    }
    if (s == MILES_OK) {
        tmp[0] = '\0';
        if (old[0]) remove_flat_dir(old);
    }
    if (tmp[0]) remove_flat_dir(tmp);
    if (owned) miles_tokfiles_free(&files);
    miles_tokenizer_free(tok);
    ckpt_close(&c);
    if (s != MILES_OK) return miles_error_prefix(s, "export %s", target);
    return MILES_OK;
}
