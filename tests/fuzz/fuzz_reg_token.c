/* fuzz_reg_token.c - fuzz target for the registry client's reading of a
 * token service's answer (reg_parse_token, plugins/registry/auth.c): the
 * JSON body of GET <realm>?service=..&scope=.. in the Bearer flow, which
 * comes from whatever server the registry's challenge named.
 *
 * Properties: accepted means a non-empty token equal to the body's
 * "token" (or, when that is absent or empty, "access_token") string, and a
 * lifetime of 60 to 86400 s; refused means no token and
 * BERTH_REG_PROTOCOL. */
#include <cjson/cJSON.h>

#include "fuzz_common.h"

#include "internal.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 1 << 20)
		return 0;
	char *token = (char *)1;
	long long secs = -5;
	int rc = reg_parse_token((const char *)data, size, &token, &secs);
	if (rc) {
		if (rc != BERTH_REG_PROTOCOL || token)
			fuzz_fail("a refusal with a token or another code");
		return 0;
	}
	if (!token || !*token)
		fuzz_fail("accepted without a token");
	if (secs < 60 || secs > 86400)
		fuzz_fail("a lifetime outside 60..86400 s");
	/* the same answer read independently */
	cJSON *j = cJSON_ParseWithLength((const char *)data, size);
	const char *t = cJSON_GetStringValue(cJSON_GetObjectItem(j, "token"));
	if (!t || !*t)
		t = cJSON_GetStringValue(
			cJSON_GetObjectItem(j, "access_token"));
	if (!t || strcmp(t, token) != 0)
		fuzz_fail("not the answer's token");
	cJSON_Delete(j);
	free(token);
	return 0;
}
