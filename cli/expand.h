/* expand.h — prompt variation syntax ("{red|blue} car" → two prompts) and seed lists ("100:115", "1,5,9").
 *
 * Prompt variations: a group {a|b|c} stands for each of its choices in turn. Several groups give every
 * combination (the first group varies slowest, as in nested loops read left to right); groups nest
 * ("{a {big|small}|no} car" → "a big car", "a small car", "no car"); "{}" or an empty choice stands for nothing.
 * \{ \} \| are a literal brace or bar; every other backslash is kept as written (so the prompt-weighting
 * escapes \( \) reach the text encoder untouched). A bar outside braces is literal text. When a prompt has
 * a group, runs of spaces in its expansions are collapsed and the ends trimmed, so "{|red } car" gives
 * "car" and "red car"; a prompt without groups keeps its spacing. */
#ifndef CLI_EXPAND_H
#define CLI_EXPAND_H

#include <stddef.h>
#include <stdint.h>

/* Expands `text` into *out (an array of *n malloc'd strings, free with expand_free). At most `max_out`
 * expansions. Returns 0, or -1 with a message in err naming the 1-based column at fault. */
int expand_prompt(const char *text, int max_out, char ***out, int *n, char *err, size_t errlen);
void expand_free(char **v, int n);

/* Parses a seed list: comma-separated items, each a seed "7" or an inclusive range "100:115"
 * (so "100:115" is 16 seeds). Seeds are 0 .. 2^64-1. At most max_out seeds in all. Returns 0 or -1 + err. */
int expand_seeds(const char *spec, int max_out, uint64_t **out, int *n, char *err, size_t errlen);

/* Parses one unsigned 64-bit decimal integer (the whole string). Returns 0 or -1. */
int expand_parse_u64(const char *s, uint64_t *out);

#endif
