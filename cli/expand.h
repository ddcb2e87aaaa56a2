/* expand.h — prompt variation syntax ("{red|blue} car" → two prompts) and seed lists ("100:115", "1,5,9").
 *
 * Prompt variations: a group {a|b|c} stands for each of its choices in turn. Several groups give every
 * combination (the first group varies slowest, as in nested loops read left to right); groups nest
 * ("{a {big|small}|no} car" → "a big car", "a small car", "no car"); "{}" or an empty choice stands for nothing.
 * \{ \} \| are a literal brace or bar; every other backslash is kept as written (so the prompt-weighting
 * escapes \( \) reach the text encoder untouched). A bar outside braces is literal text. When a prompt has
 * a group, runs of spaces in its expansions are collapsed and the ends trimmed, so "{|red } car" gives
 * "car" and "red car"; a prompt without groups keeps its spacing.
 *
 * A prompt is parsed once into a template that knows how many expansions it has (counted, never listed) and
 * makes any one of them on demand, so a line with a million combinations costs memory for its text only.
 * Groups may nest EXPAND_MAX_DEPTH deep. */
#ifndef CLI_EXPAND_H
#define CLI_EXPAND_H

#include <stddef.h>
#include <stdint.h>

#define EXPAND_MAX_DEPTH 32

typedef struct expand_tmpl expand_tmpl;

/* Parses `text`. More than `max_out` expansions or groups nested deeper than EXPAND_MAX_DEPTH are refused.
 * Returns 0, or -1 with a message in err naming the 1-based column at fault. */
int expand_parse(const char *text, int max_out, expand_tmpl **out, char *err, size_t errlen);
int expand_count(const expand_tmpl *t);
/* Expansion k (0 <= k < expand_count) as a new string (free it); NULL when out of memory or k is out of range. */
char *expand_nth(const expand_tmpl *t, int k);
void expand_tmpl_free(expand_tmpl *t);

/* Streams the expansions of `text` in order: fn(user, k, s) for each (s lives until fn returns); a non-zero
 * return from fn stops early and is returned. Returns 0, or -1 with err (as expand_parse, or out of memory). */
int expand_each(const char *text, int max_out, int (*fn)(void *user, int k, const char *s), void *user, char *err,
                size_t errlen);

/* Parses a seed list: comma-separated items, each a seed "7" or an inclusive range "100:115"
 * (so "100:115" is 16 seeds). Seeds are 0 .. 2^64-1. At most max_out seeds in all. Returns 0 or -1 + err. */
int expand_seeds(const char *spec, int max_out, uint64_t **out, int *n, char *err, size_t errlen);

/* Parses one unsigned 64-bit decimal integer (the whole string). Returns 0 or -1. */
int expand_parse_u64(const char *s, uint64_t *out);

#endif
