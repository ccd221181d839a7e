/* http_reply.h - the one writer of HTTP responses on a civetweb
 * connection, used by the REST API (api/http.c, api/api_log.c) and the
 * metrics endpoint (metrics/metrics_server.c). A response is
 *
 *   HTTP/1.1 <status> <reason>\r\n
 *   <headers>                      "Name: value\r\n"..., as given
 *   Content-Length: <n>\r\n        (or Transfer-Encoding: chunked\r\n)
 *   \r\n
 *   <body>
 *
 * and goes out with one write where it can: two writes on a keep-alive
 * connection can stall on Nagle + delayed ACK (40 ms), even with
 * TCP_NODELAY set on the listener. */
#ifndef BERTH_COMMON_HTTP_REPLY_H
#define BERTH_COMMON_HTTP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

struct mg_connection;

/* Status line, headers (NULL: none), Content-Length: len and the body,
 * with one write. False when the connection failed. */
bool http_reply_send(struct mg_connection *conn, int status,
		     const char *headers, const char *body, size_t len);

/* Only the head, announcing a body of len bytes: for HEAD requests, or
 * before the caller writes the len bytes itself (mg_write). */
bool http_reply_head(struct mg_connection *conn, int status,
		     const char *headers, size_t len);

/* Streaming: the head with Transfer-Encoding: chunked, then chunks, then
 * the last (empty) chunk. */
bool http_reply_chunked_head(struct mg_connection *conn, int status,
			     const char *headers);
/* Room a chunk buffer keeps before its data (the size line) and after it
 * (the CRLF), so a chunk is framed in place and sent with one write. */
#define HTTP_REPLY_CHUNK_HEAD 16
#define HTTP_REPLY_CHUNK_TAIL 2
/* buf holds len (> 0) data bytes at buf + HTTP_REPLY_CHUNK_HEAD and has
 * HTTP_REPLY_CHUNK_TAIL spare bytes after them. */
bool http_reply_chunk(struct mg_connection *conn, char *buf, size_t len);
bool http_reply_chunks_end(struct mg_connection *conn);

#endif
