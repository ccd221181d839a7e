/* json.h - the daemon's one set of cJSON helpers: typed reads that never
 * fail (a missing or mistyped member reads as 0 / NULL / false), and
 * json_must, which turns cJSON's NULL-on-out-of-memory into the same abort
 * the xmalloc family does. Use these instead of writing a local twin. */
#ifndef BERTH_COMMON_JSON_H
#define BERTH_COMMON_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include <cjson/cJSON.h>

/* The deepest nesting json_parse accepts. cJSON's parser recurses once
 * per level; 256 levels stay within a few tens of KiB of stack on any
 * thread (the REST API refuses bodies nested deeper than 64 before this). */
#define JSON_MAX_DEPTH 256

/* cJSON_ParseWithLengthOpts(s, n, end, 0) after a linear depth check: NULL
 * for invalid text and for text nested deeper than JSON_MAX_DEPTH (then
 * *end is s). end may be NULL. Every JSON the daemon reads back (Redis,
 * plugins, files, requests) goes through this, never cJSON_Parse. */
cJSON *json_parse(const char *s, size_t n, const char **end);

/* v, or abort with "out of memory" when v is NULL (cJSON could not
 * allocate). Wrap every cJSON_Create and cJSON_Print of the daemon. */
cJSON *json_must(cJSON *v);

/* The integer member key of o: 0 when absent, not a number, or outside
 * int64 (NaN, +-9.2e18). Fractions are truncated toward zero. */
int64_t json_i64(const cJSON *o, const char *key);
/* The string member key of o, NULL when absent or not a string. The
 * pointer is o's; it lives as long as o. */
const char *json_str(const cJSON *o, const char *key);
/* The boolean member key of o; false when absent or not a boolean. */
bool json_bool(const cJSON *o, const char *key);

/* True for NULL and "". */
static inline bool
str_empty(const char *s)
{
	return !s || !*s;
}

#endif
