/*
 * pystr.c — Python's str semantics on code points, for the two places that
 * reproduce Python text code: the original's clean_text (data_features.c:
 * re.sub with \w and \s, str.lower()) and sklearn's TfidfVectorizer (tfidf.c:
 * str.lower(), the token pattern's \w).  One definition, so that the two
 * cannot drift apart.
 *
 * The case properties are those of CPython 3.11 (Unicode 14), which
 * tests/gen_pystr_fixture.py measured over every code point through
 * str.lower() itself: Case_Ignorable = Mn Me Cf Lm Sk plus the Word_Break
 * MidLetter / MidNumLet / Single_Quote characters; Cased = Lu Ll Lt plus
 * Other_Lowercase / Other_Uppercase outside those (ª º, the Roman numerals,
 * the circled and squared Latin letters).  utf8proc gives the categories.
 */
#include "internal.h"

#include <utf8proc.h>

int miles_py_isspace(int32_t c) {
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

int miles_py_isword(int32_t c) {
    if (c == '_') return 1;
    utf8proc_category_t k = utf8proc_category(c);
    return (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_LO) ||
           (k >= UTF8PROC_CATEGORY_ND && k <= UTF8PROC_CATEGORY_NO);
}

int miles_py_is_case_ignorable(int32_t c) {
    switch (c) { /* Word_Break MidLetter, MidNumLet, Single_Quote */
    case 0x27: case 0x2E: case 0x3A: case 0xB7: case 0x387: case 0x55F: case 0x5F4:
    case 0x2018: case 0x2019: case 0x2024: case 0x2027: case 0xFE13: case 0xFE52:
    case 0xFE55: case 0xFF07: case 0xFF0E: case 0xFF1A:
        return 1;
    default: break;
    }
    utf8proc_category_t k = utf8proc_category(c);
    return k == UTF8PROC_CATEGORY_MN || k == UTF8PROC_CATEGORY_ME || k == UTF8PROC_CATEGORY_CF ||
           k == UTF8PROC_CATEGORY_LM || k == UTF8PROC_CATEGORY_SK;
}

int miles_py_is_cased(int32_t c) {
    utf8proc_category_t k = utf8proc_category(c);
    if (k == UTF8PROC_CATEGORY_LU || k == UTF8PROC_CATEGORY_LL || k == UTF8PROC_CATEGORY_LT) return 1;
    return c == 0xAA || c == 0xBA || (c >= 0x2160 && c <= 0x217F) || (c >= 0x24B6 && c <= 0x24E9) ||
           (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
}

/* CPython's handle_capital_sigma: final (U+03C2) when a cased letter comes
 * before (case-ignorable ones skipped) and none after. */
int32_t miles_py_lower_sigma(const int32_t *cp, int64_t lo, int64_t i, int64_t hi) {
    int64_t j = i - 1;
    while (j >= lo && miles_py_is_case_ignorable(cp[j])) j--;
    if (j < lo || !miles_py_is_cased(cp[j])) return 0x3C3;
    int64_t q = i + 1;
    while (q < hi && miles_py_is_case_ignorable(cp[q])) q++;
    return q < hi && miles_py_is_cased(cp[q]) ? 0x3C3 : 0x3C2;
}
