/* hook_send.c - what the hook agent sends and how: the payload, the HTTP
 * POST and the ACK (spec 7.2 - 7.4); see hook.c for the queues and the
 * retries.
 *
 * Payload
 *   The StatusChange payload of spec 7.2 is built from the snapshot at
 *   submit time, as Go encodes it: struct key order, parameters sorted,
 *   `<>&` escaped.
 *
 * HTTP
 *   Over the berth_http client (<berth/http.h>, shared with the plugins):
 *   each delivery thread keeps its own client (keep-alive pool). POST with
 *   no Content-Type, Authorization, Expect or Accept header; success is
 *   HTTP 200 exactly (spec 7.3). Proxies with Go's rules
 *   (HTTP_PROXY/HTTPS_PROXY/NO_PROXY, upper then lower case, never for
 *   localhost or loopback addresses; struct berth_http_policy). TLS uses
 *   the system CA store ($SSL_CERT_FILE / $SSL_CERT_DIR when set) and,
 *   when INTERNAL_VERIFY_CLIENT_CERT=true, the client certificate
 *   INTERNAL_TLS_CERT_PATH / INTERNAL_TLS_KEY_PATH
 *   (berth_http_tls_from_env). Timeouts: connect 10 s, response headers
 *   10 s after the request is sent, whole attempt 30 s (struct
 *   hook_agent_config). A failure is
 *   either an answer other than 200 or no answer at all (connect, TLS or
 *   transfer error, a timeout): only the latter marks the receiver
 *   degraded (Receivers in hook.c).
 *
 * ACK
 *   The stats and their ack belong to the tracker: every HTTP 200 runs
 *   tracker_ack (SCRIPT_ACK, spec 7.4) with the event's status,
 *   metadata.revision and metadata.check_in_at - after a successful retry
 *   too (Go skips that, quirk Q9, and lets the reaper re-send once). The
 *   script refuses an ACK older than the stored one, so this is harmless
 *   and spares core the duplicate. The stored ack is also read before
 *   every retry (hook_event_outdated; see Retries in hook.c). */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/gojson.h"
#include "hooks/hook.h"
#include "hooks/hook_internal.h"
#include "logs/log.h"

/* ---- the payload (spec 7.2) -------------------------------------------- */

static void
append_member(struct gbuf *b, const char *key, const char *v)
{
	gbuf_puts(b, key);
	gojson_append_string(b, v, strlen(v));
}

/* {"job_id","status"[,"check_in"],"metadata"} in Go's struct order; the
 * metadata is the snapshot's own Go rendering (job_stats_append_go). */
char *
hook_payload_encode(const struct job_stats *snap, const char *check_in)
{
	struct gbuf b = {0};
	append_member(&b, "{\"job_id\":", snap->id ? snap->id : "");
	append_member(&b, ",\"status\":", snap->status ? snap->status : "");
	if (!str_empty(check_in))
		append_member(&b, ",\"check_in\":", check_in);
	gbuf_puts(&b, ",\"metadata\":");
	job_stats_append_go(&b, snap, true);
	gbuf_putc(&b, '}');
	return gbuf_take(&b);
}

/* ---- HTTP (spec 7.3) ----------------------------------------------------- */

static pthread_once_t http_once = PTHREAD_ONCE_INIT;

static void
http_init_once(void)
{
	if (berth_http_global_init() != 0)
		log_error("hook agent: libcurl could not be initialised");
}

void
hook_http_global_init(void)
{
	pthread_once(&http_once, http_init_once);
}

void
hook_http_init(struct hook_agent *a, struct hook_http *h)
{
	memset(h, 0, sizeof(*h));
	h->agent = a;
	h->client = berth_http_client_new();
	if (!h->client)
		log_error("hook agent: cannot create a libcurl handle; hooks "
			  "of this thread fail");
}

void
hook_http_fini(struct hook_http *h)
{
	berth_http_client_free(h->client);
	h->client = NULL;
}

/* Copies text into out for a log line: control bytes become spaces,
 * trailing space is cut. */
static void
clean_text(char *out, size_t n, const char *text, size_t len)
{
	size_t k = 0;
	for (size_t i = 0; i < len && k + 1 < n; i++) {
		unsigned char ch = (unsigned char)text[i];
		out[k++] = ch < 0x20 || ch == 0x7f ? ' ' : (char)ch;
	}
	while (k > 0 && out[k - 1] == ' ')
		k--;
	out[k] = '\0';
}

/* The stop deadline passed: end the transfer. */
static bool
http_aborted(void *ud)
{
	struct hook_agent *a = ud;
	return atomic_load(&a->abort);
}

/* One POST: an enum hook_post (errtxt on failure). */
int
hook_http_post(struct hook_agent *a, struct hook_http *h,
	       const struct hook_event *e, char *errtxt, size_t n)
{
	if (!h->client) {
		snprintf(errtxt, n, "no HTTP client (libcurl handle missing)");
		return HOOK_POST_NO_ANSWER;
	}
	struct berth_http_request req = {
		.method = "POST",
		.url = e->url,
		.body = e->payload,
		.body_len = strlen(e->payload),
		.user_agent = "berth/" BERTH_VERSION,
		.timeout_ms = a->timeout_ms,
		.connect_timeout_ms = a->connect_ms,
		.header_timeout_ms = a->header_ms,
		.max_response_bytes = HOOK_BODY_MAX,
		.drain_excess = true, /* keep the connection */
		.tls = &a->tls,
		.policy = a->policy,
		.cancel = http_aborted,
		.cancel_ud = a,
	};
	struct berth_http_response resp;
	char why[256];
	int rc;
	switch (berth_http_send(h->client, &req, &resp, why, sizeof(why))) {
	case BERTH_HTTP_OK:
		if (resp.status == 200) {
			rc = HOOK_POST_OK;
			break;
		}
		clean_text(errtxt, n, resp.body, resp.body_len);
		if (!errtxt[0])
			snprintf(errtxt, n,
				 "failed to report status change via hook, "
				 "expect '200' but got '%ld'",
				 resp.status);
		rc = HOOK_POST_REFUSED;
		break;
	case BERTH_HTTP_CANCELLED:
		rc = HOOK_POST_ABORTED;
		break;
	case BERTH_HTTP_HEADER_TIMEOUT:
		snprintf(errtxt, n, "Post \"%s\": net/http: timeout awaiting "
				    "response headers", e->url);
		rc = HOOK_POST_NO_ANSWER;
		break;
	default:
		snprintf(errtxt, n, "Post \"%s\": %s", e->url, why);
		rc = HOOK_POST_NO_ANSWER;
		break;
	}
	berth_http_response_fini(&resp);
	return rc;
}

/* ---- the ACK (spec 7.4, 7.5) -------------------------------------------- */

/* spec 7.4 after an HTTP 200. */
void
hook_event_ack(struct hook_agent *a, const struct hook_event *e,
	       const char *desc)
{
	struct berr err;
	berr_clear(&err);
	int rc = tracker_ack(a->tracker, e->job_id, e->status, e->revision,
			     e->check_in_at, &err);
	if (rc < 0)
		log_warn("%s: ack: %s", desc, err.msg);
	else if (rc == 0)
		log_debug("%s: no ack done for event", desc);
}

/* spec 7.5: true when the stored ack is at or past e. A Redis error or a
 * missing ack: false (the attempt goes ahead). */
bool
hook_event_outdated(struct hook_agent *a, const struct hook_event *e)
{
	cJSON *ack = NULL;
	struct berr err;
	berr_clear(&err);
	if (tracker_read_ack(a->tracker, e->job_id, &ack, &err) < 0) {
		log_debug("hook event %s: ack not read (%s); sending", e->id,
			  err.msg);
		return false;
	}
	bool out = ack && job_ack_diff(ack, e->status, e->revision,
				       e->check_in_at) <= 0;
	cJSON_Delete(ack);
	return out;
}
