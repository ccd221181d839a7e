/* json.c - see json.h. */
#include "common/json.h"

#include "common/gojson.h"

#include <stdio.h>
#include <stdlib.h>

cJSON *
json_must(cJSON *v)
{
	if (!v) {
		fprintf(stderr, "berthd: out of memory (cJSON)\n");
		abort();
	}
	return v;
}

int64_t
json_i64(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v))
		return 0;
	double d = v->valuedouble;
	if (!(d > -9.2e18 && d < 9.2e18))
		return 0;
	return (int64_t)d;
}

const char *
json_str(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

bool
json_bool(const cJSON *o, const char *key)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, key));
}

cJSON *
json_parse(const char *s, size_t n, const char **end)
{
	if (end)
		*end = s;
	if (!s || !gojson_depth_ok(s, n, JSON_MAX_DEPTH))
		return NULL;
	const char *e = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(s, n, &e, 0);
	if (end)
		*end = e;
	return v;
}
