/*
 * tokenizer_internal.h — private state shared by tokenizer.c (loading, API,
 * encode) and tokenizer_text.c (normalizer + pre-tokenizer + WordPiece).
 * Not installed; only the tokenizer module includes it.
 */
#ifndef MILES_TOKENIZER_INTERNAL_H
#define MILES_TOKENIZER_INTERNAL_H

#include "internal.h"
#include <stdint.h>

/* An added token matched in the raw text before normalization (HF
 * AddedVocabulary with normalized=false, single_word/lstrip/rstrip false). */
typedef struct MilesAddedToken {
    char *text;
    int len;
    int id;
    int special;   /* specials are split first, then the other added tokens */
} MilesAddedToken;

struct MilesTokenizer {
    /* vocab: token i is strbuf + tok_off[i], tok_len[i] bytes, NUL-terminated */
    char *strbuf;
    uint32_t *tok_off;
    uint32_t *tok_len;
    int vocab_size;
    int max_tok_bytes;          /* longest vocab entry (bytes): bounds WordPiece search */
    /* open-addressing table over (continuation flag, bytes): a vocab entry "##x"
     * is stored twice: as word-initial "##x" and as continuation "x" */
    uint32_t hmask;             /* capacity - 1 (power of two) */
    int32_t *hid;               /* [capacity] id, -1 = empty */
    uint32_t *hhash;            /* [capacity] high bits of the hash, for fast rejects */
    uint8_t *hcont;             /* [capacity] 1 = continuation entry */
    /* flags (HF BertNormalizer) */
    int clean_text, handle_chinese, strip_accents, lowercase;
    int max_chars;              /* WordPiece max_input_chars_per_word (100) */
    /* special ids (-1 when absent) */
    int unk_id, cls_id, sep_id, pad_id, mask_id;
    /* added tokens, longest first within each class */
    MilesAddedToken *added;
    int n_added;
    uint8_t added_first[256];   /* bit0: a special starts with this byte; bit1: a non-special */
    char path[1200];            /* what was loaded (for messages) */
};

/* Id of an exact vocab entry, -1 if absent. */
int miles_tokenizer_token_to_id(const MilesTokenizer *tok, const char *token);

/* Hash of (cont, bytes) used by the vocab table. */
uint64_t miles_tok_hash(const char *s, size_t n, int cont);
/* Vocab id of bytes s[0..n) (cont: as a "##" continuation), or -1. */
int miles_tok_lookup(const MilesTokenizer *t, const char *s, size_t n, int cont);

/* Growable id sink: writes ids[0..cap), counts all. */
typedef struct MilesTokOut {
    int32_t *ids;
    int cap;
    int n;
} MilesTokOut;

/* Full pipeline (added tokens, normalizer, pre-tokenizer, WordPiece) on raw
 * UTF-8 bytes (invalid sequences become U+FFFD, removed by cleaning). */
int miles_tok_run(const MilesTokenizer *t, const char *text, size_t len, MilesTokOut *out);

#endif
