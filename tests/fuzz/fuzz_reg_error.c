/* fuzz_reg_error.c - fuzz target for the registry client's reading of an
 * error answer (reg_status_error, plugins/registry/reg.c): every answer a
 * registry gives with a status the caller did not expect goes through it,
 * its JSON body ({"errors":[{"code","message"}]}, or anything else)
 * quoted into the sentence that becomes a job's error.
 *
 * The first two bytes of the input give the status (100..599), the rest is
 * the body.
 *
 * Properties: the sentence starts with "registry <url>: <what>: <status>",
 * is NUL-terminated inside its buffer and holds no control character (it
 * goes to logs and a one-line job error); the code follows the status as
 * documented (401 UNAUTHORIZED, 403 DENIED, 404 NOT_FOUND, 405
 * UNSUPPORTED, 413 TOO_LARGE, 429 and 5xx TRANSPORT, else PROTOCOL or,
 * for a 400 with DIGEST_INVALID / SIZE_INVALID, DIGEST_MISMATCH); a small
 * buffer truncates without overflowing. */
#include "fuzz_common.h"

#include "internal.h"

static struct berth_reg *reg;

static int
expected(long st, int rc)
{
	switch (st) {
	case 401:
		return BERTH_REG_UNAUTHORIZED;
	case 403:
		return BERTH_REG_DENIED;
	case 404:
		return BERTH_REG_NOT_FOUND;
	case 405:
		return BERTH_REG_UNSUPPORTED;
	case 413:
		return BERTH_REG_TOO_LARGE;
	default:
		if (st == 429 || st >= 500)
			return BERTH_REG_TRANSPORT;
		if (st == 400 && rc == BERTH_REG_DIGEST_MISMATCH)
			return rc;
		return BERTH_REG_PROTOCOL;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2 || size > 1 << 20)
		return 0;
	if (!reg) {
		struct berth_reg_options o = {.url = "http://127.0.0.1:5000"};
		char err[256];
		if (!(reg = berth_reg_new(&o, err, sizeof(err))))
			fuzz_fail(err);
	}
	struct berth_http_response resp;
	memset(&resp, 0, sizeof(resp));
	resp.status = 100 + ((data[0] << 8) | data[1]) % 500;
	resp.retry_after_s = -1;
	resp.body_len = size - 2;
	resp.body = malloc(resp.body_len + 1);
	memcpy(resp.body, data + 2, resp.body_len);
	resp.body[resp.body_len] = '\0';
	reg->last_attempts = 1 + data[1] % 3;

	char err[600];
	int rc = reg_status_error(reg, &resp, "GET manifest lib/app:v1", err,
				  sizeof(err));
	if (rc != expected(resp.status, rc))
		fuzz_fail("the code does not follow the status");
	char head[128];
	snprintf(head, sizeof(head),
		 "registry http://127.0.0.1:5000: GET manifest lib/app:v1: %ld",
		 resp.status);
	if (strncmp(err, head, strlen(head)) != 0)
		fuzz_fail("the sentence does not name the registry and status");
	for (const char *p = err; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7f)
			fuzz_fail("a control character in the sentence");
	/* the same into a buffer too small for it */
	char small[24];
	memset(small, 'x', sizeof(small));
	reg_status_error(reg, &resp, "GET manifest lib/app:v1", small,
			 sizeof(small));
	if (!memchr(small, '\0', sizeof(small)))
		fuzz_fail("a truncated sentence is not NUL-terminated");
	free(resp.body);
	return 0;
}
