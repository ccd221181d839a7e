/* isolate_proto.c - frames between berthd and a plugin runner; see
 * isolate_proto.h. */
#include "engine/isolate_proto.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/util.h"

void
iso_buf_fini(struct iso_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

void
iso_buf_reserve(struct iso_buf *b, size_t n)
{
	if (b->cap - b->len >= n)
		return;
	size_t cap = b->cap ? b->cap : 4096;
	while (cap - b->len < n)
		cap *= 2;
	b->p = xrealloc(b->p, cap);
	b->cap = cap;
}

void
iso_buf_compact(struct iso_buf *b)
{
	if (b->off == 0)
		return;
	memmove(b->p, b->p + b->off, b->len - b->off);
	b->len -= b->off;
	b->off = 0;
}

static void
put_header(char *h, int type, size_t len)
{
	uint32_t n = (uint32_t)len;
	memcpy(h, &n, sizeof(n));
	h[4] = (char)type;
}

void
iso_buf_frame(struct iso_buf *b, int type, const void *a, size_t alen,
	      const void *c, size_t clen)
{
	iso_buf_reserve(b, ISO_HDR_LEN + alen + clen);
	put_header(b->p + b->len, type, alen + clen);
	b->len += ISO_HDR_LEN;
	if (alen)
		memcpy(b->p + b->len, a, alen);
	b->len += alen;
	if (clen)
		memcpy(b->p + b->len, c, clen);
	b->len += clen;
}

int
iso_buf_next(struct iso_buf *b, uint32_t max, int *type,
	     const char **payload, uint32_t *len)
{
	size_t have = b->len - b->off;
	if (have < ISO_HDR_LEN)
		return 0;
	uint32_t n;
	memcpy(&n, b->p + b->off, sizeof(n));
	if (n > max)
		return -1;
	if (have < ISO_HDR_LEN + (size_t)n)
		return 0;
	*type = (unsigned char)b->p[b->off + 4];
	*payload = b->p + b->off + ISO_HDR_LEN;
	*len = n;
	b->off += ISO_HDR_LEN + n;
	return 1;
}

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int
read_all(int fd, char *p, size_t n)
{
	while (n > 0) {
		ssize_t r = read(fd, p, n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		p += r;
		n -= (size_t)r;
	}
	return 0;
}

int
iso_send_frame(int fd, int type, const void *a, size_t alen, const void *c,
	       size_t clen)
{
	char h[ISO_HDR_LEN];
	put_header(h, type, alen + clen);
	if (write_all(fd, h, sizeof(h)) < 0 ||
	    (alen && write_all(fd, a, alen) < 0) ||
	    (clen && write_all(fd, c, clen) < 0))
		return -1;
	return 0;
}

int
iso_recv_frame(int fd, uint32_t max, int *type, char **payload,
	       uint32_t *len)
{
	char h[ISO_HDR_LEN];
	if (read_all(fd, h, sizeof(h)) < 0)
		return -1;
	uint32_t n;
	memcpy(&n, h, sizeof(n));
	if (n > max)
		return -1;
	char *p = xmalloc((size_t)n + 1);
	if (read_all(fd, p, n) < 0) {
		free(p);
		return -1;
	}
	p[n] = '\0';
	*type = (unsigned char)h[4];
	*payload = p;
	*len = n;
	return 0;
}
