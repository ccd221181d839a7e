/* api_ui.c - the web dashboard's static files at /ui/ (see api_ui.h).
 *
 * The shell is open: it holds no data. The page asks for the secret and
 * sends it in the Authorization header of every API call it makes, so
 * the dashboard is exactly as protected as the API. */
#include "api/api_ui.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <civetweb.h>

#include "common/http_reply.h"
#include "logs/log.h"

/* Everything the page loads comes from this origin; no inline script or
 * style (the HTML has neither), no plugins, no framing, no <base>. */
#define UI_CSP                                                               \
	"default-src 'self'; script-src 'self'; style-src 'self'; "          \
	"img-src 'self'; connect-src 'self'; font-src 'none'; "              \
	"object-src 'none'; base-uri 'none'; form-action 'none'; "           \
	"frame-ancestors 'none'"

#define UI_COMMON_HEADERS                                                    \
	"Cache-Control: no-cache\r\n"                                        \
	"Content-Security-Policy: " UI_CSP "\r\n"                            \
	"X-Content-Type-Options: nosniff\r\n"                                \
	"X-Frame-Options: DENY\r\n"                                          \
	"Referrer-Policy: no-referrer\r\n"

const struct ui_asset *
ui_asset_find(const char *name)
{
	for (size_t i = 0; i < ui_assets_count; i++)
		if (strcmp(ui_assets[i].name, name) == 0)
			return &ui_assets[i];
	return NULL;
}

static int
send_plain(struct mg_connection *conn, int status, const char *extra,
	   const char *text, bool head)
{
	char hdr[1024];
	snprintf(hdr, sizeof(hdr),
		 "Content-Type: text/plain; charset=utf-8\r\n" UI_COMMON_HEADERS
		 "%s",
		 extra ? extra : "");
	if (head)
		http_reply_head(conn, status, hdr, strlen(text));
	else
		http_reply_send(conn, status, hdr, text, strlen(text));
	return status;
}

/* If-None-Match holds the ETag (one of a list, or "*"). */
static bool
etag_matches(const char *inm, const char *etag)
{
	if (!inm)
		return false;
	size_t el = strlen(etag);
	const char *p = inm;
	while (*p) {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		if (strncmp(p, etag, el) == 0 &&
		    (p[el] == '\0' || p[el] == ',' || p[el] == ' ' ||
		     p[el] == '\t'))
			return true;
		while (*p && *p != ',')
			p++;
	}
	return false;
}

/* The file a path under /ui names: "" and "/" are the page itself. NULL
 * for anything else than one plain segment. */
static const struct ui_asset *
asset_of_path(const char *path)
{
	if (strncmp(path, "/ui", 3) != 0)
		return NULL;
	const char *rest = path + 3;
	if (!*rest || strcmp(rest, "/") == 0)
		return ui_asset_find("index.html");
	if (*rest != '/')
		return NULL;
	rest++;
	if (strchr(rest, '/') || strstr(rest, ".."))
		return NULL;
	return ui_asset_find(rest);
}

static int
ui_handler(struct mg_connection *conn, void *cbdata)
{
	(void)cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *method = ri->request_method ? ri->request_method : "";
	const char *path = ri->local_uri ? ri->local_uri : "";
	bool head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0)
		return send_plain(conn, 405, "Allow: GET, HEAD\r\n",
				  "method not allowed\n", false);
	/* GET and HEAD carry no body here; one announced is refused and the
	 * connection closed rather than guess where the next request
	 * starts (the API's framing rule) */
	if (mg_get_header(conn, "Content-Length") ||
	    mg_get_header(conn, "Transfer-Encoding")) {
		mg_disable_connection_keep_alive(conn);
		return send_plain(conn, 400, "Connection: close\r\n",
				  "a GET or HEAD request has no body\n",
				  head);
	}
	const struct ui_asset *a = asset_of_path(path);
	if (!a) {
		log_debug("404 %s %s (dashboard)", method, path);
		return send_plain(conn, 404, NULL, "404 page not found\n",
				  head);
	}
	char hdr[1024];
	if (etag_matches(mg_get_header(conn, "If-None-Match"), a->etag)) {
		snprintf(hdr, sizeof(hdr), "ETag: %s\r\n" UI_COMMON_HEADERS,
			 a->etag);
		/* no body; a Content-Length must be the 200's (RFC 9110
		 * 8.6) */
		http_reply_head(conn, 304, hdr, a->len);
		return 304;
	}
	snprintf(hdr, sizeof(hdr),
		 "Content-Type: %s\r\nETag: %s\r\n" UI_COMMON_HEADERS,
		 a->content_type, a->etag);
	if (head)
		http_reply_head(conn, 200, hdr, a->len);
	else
		http_reply_send(conn, 200, hdr, (const char *)a->data,
				a->len);
	return 200;
}

void
api_ui_register(struct mg_context *ctx)
{
	/* "/ui" takes /ui and /ui/...; /uix and the rest stay with the API's
	 * handler on "/" */
	mg_set_request_handler(ctx, "/ui", ui_handler, NULL);
}
