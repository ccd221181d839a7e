/* conn_gate.c - the cap on open API connections per client address; see
 * conn_gate.h.
 *
 * civetweb (1.15) serves each connection on a worker thread from accept to
 * close, and offers no hook between accept(2) and the worker: its
 * init_connection callback runs on the worker, before the request is read
 * and without the peer's address (mg_get_request_info is NULL there).
 * Idle or slow clients therefore hold workers until request_timeout_ms and
 * a few of them can starve the API. So berthd defines accept(2) itself:
 * civetweb's master thread calls this function, which calls the next
 * accept (libc's, or a sanitizer's), and for the API's listening port
 * refuses a connection whose address already has the capped number open.
 *
 * Open connections are tracked by file descriptor, without hooking
 * close(2): an entry is live while its descriptor still is a socket on the
 * API port with the recorded peer address and port (checked with
 * getsockname/getpeername when the count matters), and an accept that
 * returns the same descriptor number replaces it. Memory is bounded by the
 * highest descriptor number. */
#include "api/conn_gate.h"

#include <dlfcn.h>
#include <errno.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/util.h"
#include "logs/log.h"

struct tracked {
	int fd;
	struct sockaddr_storage peer;
};

static struct {
	pthread_mutex_t lock;
	int port; /* local port policed; 0: off */
	int cap;
	struct tracked *v;
	size_t n, alloc;
	time_t last_warn;
	unsigned long refused_since_warn;
} gate = {.lock = PTHREAD_MUTEX_INITIALIZER};

typedef int (*accept_fn)(int, struct sockaddr *, socklen_t *);

static int
sock_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return -1;
}

static bool
same_ip(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
	if (a->ss_family != b->ss_family)
		return false;
	if (a->ss_family == AF_INET)
		return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
		       ((const struct sockaddr_in *)b)->sin_addr.s_addr;
	if (a->ss_family == AF_INET6)
		return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
			      &((const struct sockaddr_in6 *)b)->sin6_addr,
			      sizeof(struct in6_addr)) == 0;
	return false;
}

/* The socket's local port, or -1. */
static int
local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	return sock_port(&ss);
}

static bool
peer_of(int fd, struct sockaddr_storage *ss)
{
	socklen_t len = sizeof(*ss);
	memset(ss, 0, sizeof(*ss));
	return getpeername(fd, (struct sockaddr *)ss, &len) == 0;
}

/* Whether the entry's descriptor still is the connection it recorded. */
static bool
still_open(const struct tracked *t, int port)
{
	struct sockaddr_storage now;
	if (!peer_of(t->fd, &now))
		return false;
	return same_ip(&now, &t->peer) &&
	       sock_port(&now) == sock_port(&t->peer) &&
	       local_port(t->fd) == port;
}

static void
addr_text(const struct sockaddr_storage *ss, char *buf, size_t len)
{
	const void *a = ss->ss_family == AF_INET
				? (const void *)&((const struct sockaddr_in *)ss)
					  ->sin_addr
				: (const void *)&((const struct sockaddr_in6 *)ss)
					  ->sin6_addr;
	if (!inet_ntop(ss->ss_family, a, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

/* Called with the lock held: 1 to admit fd (now tracked), 0 to refuse. */
static int
admit_locked(int fd, const struct sockaddr_storage *peer)
{
	size_t open = 0;
	for (size_t i = 0; i < gate.n;) {
		struct tracked *t = &gate.v[i];
		bool drop = t->fd == fd; /* the number was closed and reused */
		if (!drop && same_ip(&t->peer, peer)) {
			if (still_open(t, gate.port))
				open++;
			else
				drop = true;
		}
		if (drop) {
			gate.v[i] = gate.v[--gate.n];
			continue;
		}
		i++;
	}
	if (gate.cap > 0 && open >= (size_t)gate.cap)
		return 0;
	if (gate.n == gate.alloc) {
		gate.alloc = gate.alloc ? gate.alloc * 2 : 64;
		gate.v = xrealloc(gate.v, gate.alloc * sizeof(*gate.v));
	}
	gate.v[gate.n].fd = fd;
	gate.v[gate.n].peer = *peer;
	gate.n++;
	return 1;
}

static const char refusal[] =
	"HTTP/1.1 503 Service Unavailable\r\n"
	"Content-Type: application/json\r\n"
	"Connection: close\r\n"
	"Content-Length: 104\r\n\r\n"
	"{\"code\":10018,\"message\":\"internal error\",\"details\":"
	"\"too many open connections from this client address\"}";

static void
refuse(int fd, const struct sockaddr_storage *peer)
{
	/* best effort, never blocking the accepting thread */
	(void)!send(fd, refusal, sizeof(refusal) - 1,
		    MSG_DONTWAIT | MSG_NOSIGNAL);
	close(fd);
	time_t now = time(NULL);
	pthread_mutex_lock(&gate.lock);
	gate.refused_since_warn++;
	bool warn = now - gate.last_warn >= 10;
	unsigned long n = gate.refused_since_warn;
	int cap = gate.cap;
	if (warn) {
		gate.last_warn = now;
		gate.refused_since_warn = 0;
	}
	pthread_mutex_unlock(&gate.lock);
	if (warn) {
		char a[INET6_ADDRSTRLEN];
		addr_text(peer, a, sizeof(a));
		log_warn("API: refused %lu connection(s) in the last 10 s, "
			 "latest from %s, which has %d open "
			 "(berth.api_max_client_connections)",
			 n, a, cap);
	}
}

/* The accept(2) civetweb calls. */
int
accept(int fd, struct sockaddr *addr, socklen_t *addrlen)
{
	static accept_fn next;
	accept_fn f = __atomic_load_n(&next, __ATOMIC_ACQUIRE);
	if (!f) {
		f = (accept_fn)dlsym(RTLD_NEXT, "accept");
		if (!f) {
			errno = ENOSYS;
			return -1;
		}
		__atomic_store_n(&next, f, __ATOMIC_RELEASE);
	}
	int c = f(fd, addr, addrlen);
	if (c < 0)
		return c;
	pthread_mutex_lock(&gate.lock);
	int port = gate.port;
	pthread_mutex_unlock(&gate.lock);
	if (port <= 0 || local_port(fd) != port)
		return c;
	struct sockaddr_storage peer;
	if (!peer_of(c, &peer))
		return c; /* already gone: civetweb sees that itself */
	pthread_mutex_lock(&gate.lock);
	int ok = gate.port == port ? admit_locked(c, &peer) : 1;
	pthread_mutex_unlock(&gate.lock);
	if (ok)
		return c;
	refuse(c, &peer);
	errno = ECONNABORTED;
	return -1;
}

void
conn_gate_start(int port, int cap)
{
	pthread_mutex_lock(&gate.lock);
	gate.port = port;
	gate.cap = cap;
	gate.n = 0;
	pthread_mutex_unlock(&gate.lock);
}

void
conn_gate_stop(void)
{
	pthread_mutex_lock(&gate.lock);
	gate.port = 0;
	free(gate.v);
	gate.v = NULL;
	gate.n = gate.alloc = 0;
	pthread_mutex_unlock(&gate.lock);
}
