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

#endif
