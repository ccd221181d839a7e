/* metrics_server.c - the Prometheus endpoint; see metrics.h.
 *
 * The civetweb handler reads the queue families from Redis on its own
 * thread's connection (queue_figures: one pipeline), then has metrics.c
 * render everything under its mutex. A Redis failure during
 * a scrape leaves the queue families out; redis_up tells why. */
#include "metrics/metrics.h"

#include <arpa/inet.h>
#include <civetweb.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "common/http_reply.h"
#include "config/config.h"
#include "logs/log.h"
#include "plugins/plugin_host.h"
#include "store/queue.h"
#include "store/queue_ops.h"
#include "store/redis_conn.h"

#define MX_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* --- queue statistics from Redis ----------------------------------------- */

/* Reads the queue families as the dashboard does (spec 12.4, the store's
 * queue_figures over NS:known_jobs and the loaded types). On success *out
 * (n entries) owns its type strings: free with queue_stats_free. */
static int
queue_stats_read(struct redis_pool *redis, const char *ns,
		 struct plugin_registry *plugins,
		 struct metrics_queue_stat **out, size_t *n, struct berr *err)
{
	*out = NULL;
	*n = 0;
	size_t np = 0;
	char **names = plugins ? plugin_registry_names(plugins, &np) : NULL;
	struct queue *q = queue_new(redis, ns);
	struct queue_figure *f = NULL;
	size_t nf = 0;
	int rc = queue_figures(q, (const char *const *)names, np, &f, &nf,
			       err);
	queue_free(q);
	if (names)
		plugin_names_free(names);
	if (rc < 0 || nf == 0)
		return rc;
	struct metrics_queue_stat *st = xcalloc(nf, sizeof(*st));
	for (size_t i = 0; i < nf; i++) {
		st[i].type = f[i].type; /* moved */
		f[i].type = NULL;
		st[i].length = f[i].length;
		st[i].latency_seconds = f[i].latency_seconds;
	}
	queue_figures_free(f, nf);
	*out = st;
	*n = nf;
	return 0;
}

static void
queue_stats_free(struct metrics_queue_stat *q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free((char *)q[i].type);
	free(q);
}

/* --- the listener -------------------------------------------------------- */

struct metrics_server {
	struct mg_context *ctx;
	struct redis_pool *redis;
	struct plugin_registry *plugins;
	char *ns;
	char *path;
	char *prefix;
	char *node;
	char *pool;
	int workers;
	int port;
	atomic_bool scrape_failing; /* logged once per outage */
};

/* One response through the common writer; HEAD gets the head only. */
static void
send_text(struct mg_connection *conn, int status, const char *extra,
	  const char *body, size_t len, bool head_only)
{
	if (head_only)
		http_reply_head(conn, status, extra, len);
	else
		http_reply_send(conn, status, extra, body, len);
}

static int
metrics_handler(struct mg_connection *conn, void *cbdata)
{
	struct metrics_server *s = cbdata;
	const struct mg_request_info *ri = mg_get_request_info(conn);
	const char *path = ri->local_uri ? ri->local_uri : "";
	const char *method = ri->request_method ? ri->request_method : "";
	if (strcmp(path, s->path) != 0) {
		static const char nf[] = "404 page not found\n";
		send_text(conn, 404, "Content-Type: text/plain; "
				     "charset=utf-8\r\n",
			  nf, sizeof(nf) - 1, strcmp(method, "HEAD") == 0);
		return 404;
	}
	bool head = strcmp(method, "HEAD") == 0;
	if (!head && strcmp(method, "GET") != 0) {
		static const char na[] = "method not allowed\n";
		send_text(conn, 405, "Allow: GET, HEAD\r\nContent-Type: "
				     "text/plain; charset=utf-8\r\n",
			  na, sizeof(na) - 1, false);
		return 405;
	}
	struct metrics_queue_stat *q = NULL;
	size_t nq = 0;
	struct berr err;
	berr_clear(&err);
	/* a context idle since before a Redis restart fails once: the
	 * second try dials afresh */
	int rc = queue_stats_read(s->redis, s->ns, s->plugins, &q, &nq, &err);
	if (rc < 0) {
		berr_clear(&err);
		rc = queue_stats_read(s->redis, s->ns, s->plugins, &q, &nq,
				      &err);
	}
	if (rc < 0) {
		if (!atomic_exchange(&s->scrape_failing, true))
			log_warn("metrics: queue lengths not available: %s",
				 err.msg);
	} else if (atomic_exchange(&s->scrape_failing, false)) {
		log_info("metrics: queue lengths available again");
	}
	int64_t dead = 0;
	bool has_dead = false;
	if (rc >= 0) {
		struct queue *dq = queue_new(s->redis, s->ns);
		has_dead = queue_set_size(dq, QUEUE_SET_DEAD, &dead, &err) == 0;
		queue_free(dq);
	}
	struct metrics_scrape sc = {
		.has_dead = has_dead,
		.dead_jobs = dead,
		.prefix = s->prefix,
		.node = s->node,
		.pool = s->pool,
		.workers = s->workers,
		.queues = q,
		.n_queues = nq,
	};
	char *body = metrics_render(&sc);
	queue_stats_free(q, nq);
	send_text(conn, 200, "Content-Type: " MX_CONTENT_TYPE "\r\n", body,
		  strlen(body), head);
	free(body);
	return 200;
}

static int
metrics_log_message(const struct mg_connection *conn, const char *message)
{
	(void)conn;
	log_warn("metrics http: %s", message);
	return 1;
}

/* <hostname>:<first non-loopback IPv4>, as Go's node ID (spec 1.1). */
static char *
node_id(void)
{
	char host[256];
	if (gethostname(host, sizeof(host)) != 0)
		host[0] = '\0';
	host[sizeof(host) - 1] = '\0';
	char ip[INET_ADDRSTRLEN] = "";
	struct ifaddrs *ifs = NULL;
	if (getifaddrs(&ifs) == 0) {
		for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
			if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET ||
			    (i->ifa_flags & IFF_LOOPBACK))
				continue;
			const struct sockaddr_in *sin =
				(const struct sockaddr_in *)(void *)i->ifa_addr;
			if (inet_ntop(AF_INET, &sin->sin_addr, ip,
				      sizeof(ip)))
				break;
			ip[0] = '\0';
		}
		freeifaddrs(ifs);
	}
	if (!host[0] || !ip[0]) {
		char id[25];
		util_hex24(id);
		return xstrdup(id);
	}
	return xasprintf("%s:%s", host, ip);
}

static void
server_free(struct metrics_server *s)
{
	free(s->ns);
	free(s->path);
	free(s->prefix);
	free(s->node);
	free(s->pool);
	free(s);
}

struct metrics_server *
metrics_server_start(const struct berth_config *cfg, struct redis_pool *redis,
		     const char *ns, struct plugin_registry *plugins,
		     const char *pool_id, struct berr *err)
{
	berr_clear(err);
	if (!cfg->metric_enabled)
		return NULL;
	/* metric.port; BERTH_METRICS_PORT (0: a free port) was applied by
	 * the configuration loader */
	int64_t port = cfg->metric_port;
	struct metrics_server *s = xcalloc(1, sizeof(*s));
	if (metrics_prefix_make(cfg->metric_namespace, cfg->metric_subsystem,
				&s->prefix, err) < 0) {
		server_free(s);
		return NULL;
	}
	s->redis = redis;
	s->plugins = plugins;
	s->ns = xstrdup(ns);
	const char *p = cfg->metric_path && cfg->metric_path[0]
				? cfg->metric_path
				: "/metrics";
	s->path = p[0] == '/' ? xstrdup(p) : xasprintf("/%s", p);
	s->node = node_id();
	s->pool = xstrdup(pool_id ? pool_id : "");
	s->workers = cfg->workers;
	atomic_init(&s->scrape_failing, false);

	const char *addr = cfg->listen_address && cfg->listen_address[0]
				   ? cfg->listen_address
				   : "0.0.0.0";
	bool v6 = strchr(addr, ':') != NULL && addr[0] != '[';
	char ports[300];
	snprintf(ports, sizeof(ports), "%s%s%s:%d", v6 ? "[" : "", addr,
		 v6 ? "]" : "", (int)port);
	const char *opts[] = {
		"listening_ports", ports,
		"num_threads", "2",
		"request_timeout_ms", "15000",
		"enable_keep_alive", "yes",
		"keep_alive_timeout_ms", "60000",
		"tcp_nodelay", "1",
		"max_request_size", "16384",
		NULL,
	};
	struct mg_callbacks cb;
	memset(&cb, 0, sizeof(cb));
	cb.log_message = metrics_log_message;
	struct mg_init_data init;
	memset(&init, 0, sizeof(init));
	init.callbacks = &cb;
	init.user_data = s;
	init.configuration_options = opts;
	char ebuf[256] = "";
	struct mg_error_data ed;
	memset(&ed, 0, sizeof(ed));
	ed.text = ebuf;
	ed.text_buffer_size = sizeof(ebuf);
	s->ctx = mg_start2(&init, &ed);
	if (!s->ctx) {
		berr_set(err, "metrics: cannot listen on %s: %s", ports,
			 ebuf[0] ? ebuf : "civetweb failed to start");
		server_free(s);
		return NULL;
	}
	mg_set_request_handler(s->ctx, "/", metrics_handler, s);
	struct mg_server_port sp[4];
	int np = mg_get_server_ports(s->ctx, 4, sp);
	s->port = np > 0 ? sp[0].port : (int)port;
	log_info("metrics listening on %s:%d", addr, s->port);
	const char *pf = cfg->metrics_port_file; /* BERTH_METRICS_PORT_FILE */
	if (pf && pf[0] && util_write_port_file(pf, s->port, err) < 0) {
		metrics_server_stop(s);
		return NULL;
	}
	return s;
}

int
metrics_server_port(const struct metrics_server *s)
{
	return s ? s->port : 0;
}

void
metrics_server_stop(struct metrics_server *s)
{
	if (!s)
		return;
	if (s->ctx)
		mg_stop(s->ctx);
	server_free(s);
}
