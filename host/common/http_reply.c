/* http_reply.c - see http_reply.h. */
#include "common/http_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <civetweb.h>

#include "common/util.h"

static const char *
reason(int status)
{
	const char *t = mg_get_response_code_text(NULL, status);
	return t ? t : "";
}

static bool
write_all(struct mg_connection *conn, const char *buf, size_t len)
{
	return mg_write(conn, buf, len) == (int)len;
}

/* The head with its framing header, followed by len body bytes. */
static bool
send_framed(struct mg_connection *conn, int status, const char *headers,
	    const char *framing, const char *body, size_t len)
{
	char *head = xasprintf("HTTP/1.1 %d %s\r\n%s%s\r\n", status,
			       reason(status), headers ? headers : "",
			       framing);
	size_t hl = strlen(head);
	if (!len) {
		bool ok = write_all(conn, head, hl);
		free(head);
		return ok;
	}
	char *buf = xrealloc(head, hl + len);
	memcpy(buf + hl, body, len);
	bool ok = write_all(conn, buf, hl + len);
	free(buf);
	return ok;
}

bool
http_reply_send(struct mg_connection *conn, int status, const char *headers,
		const char *body, size_t len)
{
	char framing[48];
	snprintf(framing, sizeof(framing), "Content-Length: %zu\r\n", len);
	return send_framed(conn, status, headers, framing, body, len);
}

bool
http_reply_head(struct mg_connection *conn, int status, const char *headers,
		size_t len)
{
	char framing[48];
	snprintf(framing, sizeof(framing), "Content-Length: %zu\r\n", len);
	return send_framed(conn, status, headers, framing, NULL, 0);
}

bool
http_reply_chunked_head(struct mg_connection *conn, int status,
			const char *headers)
{
	return send_framed(conn, status, headers,
			   "Transfer-Encoding: chunked\r\n", NULL, 0);
}

bool
http_reply_chunk(struct mg_connection *conn, char *buf, size_t len)
{
	char head[HTTP_REPLY_CHUNK_HEAD];
	int hl = snprintf(head, sizeof(head), "%zx\r\n", len);
	char *start = buf + HTTP_REPLY_CHUNK_HEAD - hl;
	memcpy(start, head, (size_t)hl);
	memcpy(buf + HTTP_REPLY_CHUNK_HEAD + len, "\r\n", 2);
	return write_all(conn, start, (size_t)hl + len + 2);
}

bool
http_reply_chunks_end(struct mg_connection *conn)
{
	return write_all(conn, "0\r\n\r\n", 5);
}
