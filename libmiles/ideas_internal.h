/*
 * ideas_internal.h — helpers shared by ideas.c (topic view) and
 * ideas_suggest.c (title suggestions); not installed.
 */
#ifndef MILES_IDEAS_INTERNAL_H
#define MILES_IDEAS_INTERNAL_H

#include "miles.h"
#include <stddef.h>

/* Next ASCII word (letters, digits) of s from *pos, lowercased into buf; 0 at the end. */
int ideas_next_word(const char *s, size_t *pos, char *buf, size_t cap);
/* English stopwords + "shorts"/"video" (the original's pattern filter). */
int ideas_is_stopword(const char *w);
/* Value of the first field called name, or NULL. */
const char *ideas_record_get(const MilesRecord *r, const char *name);

/* The single edits of title t (ideas_suggest.c's rules, in their order):
 * titles[i] with reasons[i], n of them, both arrays and strings malloc'd (free
 * each, then the arrays).  `draft` is the original title (an edit equal to it
 * is dropped), `pre` the edits already made ("" in the first round; an edit of
 * the same kind as one in `pre` is skipped).  For tests: the suggestion search
 * scores these, so its result depends on the model; the rules do not. */
int ideas_edits(const char *draft, const char *t, const char *pre, const MilesSuggestOptions *o, char ***titles,
                char ***reasons, int *n);

#endif
