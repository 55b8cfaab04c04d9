/*
 * miles-tokenize — run the libmiles BERT WordPiece tokenizer from the shell.
 *
 *   miles-tokenize --vocab DIR|vocab.txt [--max-len N] [--pair TEXT]
 *                  [--tokens|--ids|--json] [TEXT ...]
 *
 * Without TEXT arguments, each stdin line is one text.  Default output: ids.
 * Without --max-len the WordPiece ids are printed (no [CLS]/[SEP]); with it,
 * the encoded sequence ([CLS] a [SEP] (pair [SEP]), truncated to N).
 * A text that is not valid UTF-8 is refused, naming its line or argument:
 * the library would tokenize it as Python's errors="replace" decoding (U+FFFD,
 * which the normalizer then drops), silently losing those bytes.
 */
#include "miles.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OUT_IDS, OUT_TOKENS, OUT_JSON };

static void usage(FILE *f)
{
    fprintf(f,
            "usage: miles-tokenize --vocab DIR|vocab.txt [--max-len N] [--pair TEXT]\n"
            "                      [--tokens|--ids|--json] [TEXT ...]\n"
            "\n"
            "Tokenize TEXT (or each line of stdin) exactly like HF BertTokenizerFast.\n"
            "  --vocab P     model directory (vocab.txt [+ tokenizer_config.json, tokenizer.json])\n"
            "                or a vocab.txt file (then: lowercase, strip accents)\n"
            "  --max-len N   encode: [CLS] text [SEP] (+ pair [SEP]) truncated to N tokens\n"
            "  --pair TEXT   second sequence (needs --max-len; longest-first truncation)\n"
            "  --ids         print ids, space-separated (default)\n"
            "  --tokens      print the vocab tokens\n"
            "  --json        one JSON object per text: ids, tokens (+ type_ids, mask)\n"
            "  --help        this text\n");
}

static void json_str(const char *s)
{
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

static int emit(const MilesTokenizer *t, int mode, const int32_t *ids, const int32_t *tt, const int32_t *m, int n)
{
    if (mode == OUT_JSON) {
        printf("{\"ids\":[");
        for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", ids[i]);
        printf("],\"tokens\":[");
        for (int i = 0; i < n; i++) {
            if (i) putchar(',');
            json_str(miles_tokenizer_id_to_token(t, ids[i]));
        }
        printf("]");
        if (tt) {
            printf(",\"type_ids\":[");
            for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", tt[i]);
            printf("],\"attention_mask\":[");
            for (int i = 0; i < n; i++) printf("%s%d", i ? "," : "", m[i]);
            printf("]");
        }
        printf("}\n");
    } else {
        for (int i = 0; i < n; i++) {
            if (i) putchar(' ');
            if (mode == OUT_TOKENS) fputs(miles_tokenizer_id_to_token(t, ids[i]), stdout);
            else printf("%d", ids[i]);
        }
        putchar('\n');
    }
    return ferror(stdout) ? 1 : 0;
}

/* 1 if text[0..len) is valid UTF-8 (U+0000 bytes inside are text: checked
 * segment by segment) */
static int valid_utf8(const char *text, size_t len)
{
    for (size_t i = 0; i < len;) {
        if (miles_utf8_length(text + i) < 0) return 0;
        i += strlen(text + i) + 1;
    }
    return 1;
}

static int run_one(const MilesTokenizer *t, const char *text, size_t len, const char *pair, int max_len, int mode)
{
    if (max_len > 0) {
        int32_t *buf = malloc(sizeof(int32_t) * 3 * (size_t)max_len);
        if (!buf) { fprintf(stderr, "miles-tokenize: out of memory\n"); return 1; }
        int n;
        /* text with its length: an embedded U+0000 is dropped by the normalizer, as HF does */
        if (miles_tokenizer_encode(t, text, len, pair, pair ? strlen(pair) : 0, max_len, 1, buf, buf + max_len,
                                   buf + 2 * max_len, &n) != MILES_OK) {
            fprintf(stderr, "miles-tokenize: %s\n", miles_last_error());
            free(buf);
            return 1;
        }
        int rc = emit(t, mode, buf, buf + max_len, buf + 2 * max_len, n);
        free(buf);
        return rc;
    }
    int cap = 256, n;
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)cap);
    if (!ids) return 1;
    if (miles_tokenizer_tokenize(t, text, len, ids, cap, &n) != MILES_OK) goto fail;
    if (n > cap) {
        free(ids);
        cap = n;
        ids = malloc(sizeof(int32_t) * (size_t)cap);
        if (!ids || miles_tokenizer_tokenize(t, text, len, ids, cap, &n) != MILES_OK) goto fail;
    }
    int rc = emit(t, mode, ids, NULL, NULL, n);
    free(ids);
    return rc;
fail:
    fprintf(stderr, "miles-tokenize: %s\n", miles_last_error());
    free(ids);
    return 1;
}

int main(int argc, char **argv)
{
    const char *vocab = NULL, *pair = NULL;
    int max_len = 0, mode = OUT_IDS;
    static const struct option opts[] = {
        { "vocab", required_argument, 0, 'v' }, { "max-len", required_argument, 0, 'm' },
        { "pair", required_argument, 0, 'p' },  { "tokens", no_argument, 0, 't' },
        { "ids", no_argument, 0, 'i' },         { "json", no_argument, 0, 'j' },
        { "help", no_argument, 0, 'h' },        { 0, 0, 0, 0 }
    };
    int c;
    while ((c = getopt_long(argc, argv, "v:m:p:tijh", opts, NULL)) != -1) {
        switch (c) {
        case 'v': vocab = optarg; break;
        case 'm': {
            char *e;
            long v = strtol(optarg, &e, 10);
            if (*e || v < 2 || v > 1 << 20) {
                fprintf(stderr, "miles-tokenize: --max-len must be an integer >= 2, got '%s'\n", optarg);
                return 2;
            }
            max_len = (int)v;
            break;
        }
        case 'p': pair = optarg; break;
        case 't': mode = OUT_TOKENS; break;
        case 'i': mode = OUT_IDS; break;
        case 'j': mode = OUT_JSON; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!vocab) {
        fprintf(stderr, "miles-tokenize: --vocab is required\n");
        usage(stderr);
        return 2;
    }
    if (pair && max_len == 0) {
        fprintf(stderr, "miles-tokenize: --pair needs --max-len\n");
        return 2;
    }
    MilesTokenizer *t;
    if (miles_tokenizer_load(&t, vocab) != MILES_OK) {
        fprintf(stderr, "miles-tokenize: %s\n", miles_last_error());
        return 1;
    }
    int rc = 0;
    if (pair && !valid_utf8(pair, strlen(pair))) {
        fprintf(stderr, "miles-tokenize: --pair: not valid UTF-8\n");
        rc = 1;
    } else if (optind < argc) {
        for (int i = optind; i < argc && !rc; i++) {
            if (!valid_utf8(argv[i], strlen(argv[i]))) {
                fprintf(stderr, "miles-tokenize: argument %d: not valid UTF-8\n", i - optind + 1);
                rc = 1;
            } else {
                rc = run_one(t, argv[i], strlen(argv[i]), pair, max_len, mode);
            }
        }
    } else {
        long lineno = 0;
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while (!rc && (n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n') line[--n] = '\0';
            if (n > 0 && line[n - 1] == '\r') line[--n] = '\0';
            lineno++;
            if (!valid_utf8(line, (size_t)n)) {
                fprintf(stderr, "miles-tokenize: stdin line %ld: not valid UTF-8\n", lineno);
                rc = 1;
                break;
            }
            rc = run_one(t, line, (size_t)n, pair, max_len, mode);
        }
        free(line);
    }
    miles_tokenizer_free(t);
    if (fflush(stdout) != 0) rc = 1;
    return rc;
}
