/* conn.c - where berthd is and how to talk to it: the URL and the secret
 * from the flags, the environment, or the berth.yml and data directory
 * berthd itself uses (config/ reads the file exactly as berthd does); one
 * request through the SDK's HTTP client; API errors and exit codes. */
#include "ctl/ctl.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/json.h"
#include "common/util.h"
#include "config/config.h"

#define SECRET_FILE "core_secret"
#define PORT_FILE "api_port" /* written by berthd when it binds port 0 */
#define CONNECT_TIMEOUT_MS 5000
#define MAX_BODY ((size_t)256 << 20)

/* ---- finding the configuration ------------------------------------------- */

static bool
readable(const char *p)
{
	return access(p, R_OK) == 0;
}

/* The berth.yml to read: explicit (--config, BERTH_CONFIG), or the first
 * readable default location; NULL when there is none. */
static char *
find_config(const struct ctl_args *a, bool *explicit_)
{
	const char *v = args_get(a, "config");
	if (!v || !*v)
		v = getenv("BERTH_CONFIG");
	*explicit_ = v && *v;
	if (*explicit_)
		return xstrdup(v);
	char *cand[3] = {NULL, NULL, NULL};
	const char *x = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	if (x && x[0] == '/')
		cand[0] = xasprintf("%s/berth/berth.yml", x);
	else if (home && *home)
		cand[0] = xasprintf("%s/.config/berth/berth.yml", home);
	cand[1] = xstrdup(BERTHCTL_SYSCONFDIR "/berth/berth.yml");
	cand[2] = xstrdup("/etc/berth/berth.yml");
	char *found = NULL;
	for (size_t i = 0; i < 3; i++) {
		if (!found && cand[i] && readable(cand[i]))
			found = cand[i];
		else
			free(cand[i]);
	}
	return found;
}

/* "http://host:port" from the listener of cfg; port 0 is looked up in
 * <data_dir>/api_port. */
static int
url_from_config(struct ctl *c, const struct berth_config *cfg,
		const char *data_dir)
{
	const char *la = cfg->listen_address;
	char host[300];
	if (!la || !*la || strcmp(la, "0.0.0.0") == 0 || strcmp(la, "*") == 0)
		snprintf(host, sizeof(host), "127.0.0.1");
	else if (strcmp(la, "::") == 0 || strcmp(la, "[::]") == 0)
		snprintf(host, sizeof(host), "[::1]");
	else if (strchr(la, ':') && la[0] != '[')
		snprintf(host, sizeof(host), "[%s]", la);
	else
		snprintf(host, sizeof(host), "%s", la);
	int port = cfg->port;
	if (port == 0) {
		char *pf = util_path_join(data_dir, PORT_FILE);
		char *text = NULL;
		struct berr err;
		berr_clear(&err);
		int64_t v = 0;
		if (util_read_file(pf, 64, &text, NULL, &err) < 0 ||
		    util_parse_i64(util_trim(text), 1, 65535, &v) < 0) {
			fprintf(stderr,
				"berthctl: %s sets port 0 (a free port) and "
				"%s holds no port: is berthd running? (%s)\n",
				cfg->path, pf,
				err.msg[0] ? err.msg : "not a port number");
			free(text);
			free(pf);
			return CTL_EUNREACH;
		}
		free(text);
		free(pf);
		port = (int)v;
	}
	c->base = xasprintf("%s://%s:%d", cfg->https ? "https" : "http",
			    host, port);
	/* the daemon's own certificate is the first thing to trust (a
	 * self-signed one is its own CA) */
	if (cfg->https && !c->cacert && cfg->https_cert &&
	    readable(cfg->https_cert))
		c->cacert = xstrdup(cfg->https_cert);
	return 0;
}

/* ---- the secret ---------------------------------------------------------- */

/* 0 with *out set, 1 when the file does not exist (*why says so), -1 when
 * it cannot be read (*why says why). */
static int
read_secret_file(const char *path, char **out, char **why)
{
	char *buf = NULL;
	struct berr err;
	berr_clear(&err);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		*why = xasprintf("%s does not exist", path);
		return 1;
	}
	if (util_read_file(path, 4096, &buf, NULL, &err) < 0) {
		*why = xasprintf("%s", err.msg);
		return -1;
	}
	char *s = util_trim(buf);
	if (!*s) {
		*why = xasprintf("%s is empty", path);
		free(buf);
		return -1;
	}
	*out = xstrdup(s);
	free(buf);
	return 0;
}

static void
normalise_base(struct ctl *c)
{
	size_t n = strlen(c->base);
	while (n > 0 && c->base[n - 1] == '/')
		c->base[--n] = '\0';
	if (n >= 7 && strcmp(c->base + n - 7, "/api/v1") == 0)
		c->base[n - 7] = '\0';
}

int
ctl_open(struct ctl *c, const struct ctl_args *a)
{
	c->json = args_has(a, "json");
	long long t = args_int(a, "timeout", 30, 1, 86400);
	if (t < 0)
		return CTL_EUSAGE;
	c->timeout_ms = (long)t * 1000;
	c->insecure = args_has(a, "insecure");
	if (args_get(a, "cacert"))
		c->cacert = xstrdup(args_get(a, "cacert"));

	const char *url = args_get(a, "url");
	if (url && *url) {
		c->url_from = xstrdup("--url");
	} else if ((url = getenv("BERTH_URL")) && *url) {
		c->url_from = xstrdup("BERTH_URL");
	} else {
		url = NULL;
	}
	if (url) {
		if (strncmp(url, "http://", 7) != 0 &&
		    strncmp(url, "https://", 8) != 0)
			return usage_error(a, "%s: expected an http:// or "
					      "https:// URL, got '%s'",
					   c->url_from, url);
		c->base = xstrdup(url);
	}

	const char *sec = args_get(a, "secret");
	const char *secfile = args_get(a, "secret-file");
	if (sec && secfile)
		return usage_error(a, "--secret and --secret-file exclude "
				      "each other");
	if (sec) {
		c->secret = xstrdup(sec);
		c->secret_from = xstrdup("--secret");
	} else if (secfile) {
		char *why = NULL;
		if (read_secret_file(secfile, &c->secret, &why) != 0) {
			fprintf(stderr, "berthctl: --secret-file: %s\n", why);
			free(why);
			return CTL_EUSAGE;
		}
		c->secret_from = xasprintf("--secret-file %s", secfile);
	} else if ((sec = getenv("CORE_SECRET")) && *sec) {
		c->secret = xstrdup(sec);
		c->secret_from = xstrdup("CORE_SECRET");
	}

	if (!c->base || !c->secret) {
		/* the rest comes from berthd's configuration */
		bool explicit_ = false;
		char *path = find_config(a, &explicit_);
		struct berth_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		bool have_cfg = false;
		if (path) {
			struct berr err;
			berr_clear(&err);
			struct config_options o = {.strict = false,
						   .apply_env = true};
			if (config_load(path, &o, &cfg, &err) < 0) {
				char buf[BERR_MSG_MAX + 600];
				fprintf(stderr, "berthctl: %s\n",
					berr_str(&err, buf, sizeof(buf)));
				config_fini(&cfg);
				free(path);
				return CTL_EUSAGE;
			}
			have_cfg = true;
		}
		const char *dd = args_get(a, "data-dir");
		char *data_dir = dd && *dd ? xstrdup(dd)
			       : have_cfg ? xstrdup(cfg.data_dir)
					  : config_default_data_dir();
		int rc = 0;
		if (!c->base) {
			if (have_cfg) {
				rc = url_from_config(c, &cfg, data_dir);
				c->url_from = xasprintf("%s", path);
			} else {
				c->base = xstrdup("http://127.0.0.1:8080");
				c->url_from = xstrdup(
					"the default (no --url, BERTH_URL or "
					"configuration)");
			}
		}
		if (rc == 0 && !c->secret) {
			char *sf = util_path_join(data_dir, SECRET_FILE);
			char *why = NULL;
			if (read_secret_file(sf, &c->secret, &why) == 0)
				c->secret_from = xstrdup(sf);
			else
				c->secret_from = xasprintf(
					"nowhere: no --secret, --secret-file "
					"or CORE_SECRET, and %s", why);
			free(why);
			free(sf);
		}
		free(data_dir);
		config_fini(&cfg);
		free(path);
		if (rc != 0)
			return rc;
	}
	normalise_base(c);

	berth_http_global_init();
	c->http = berth_http_client_new();
	c->policy = berth_http_policy_from_env();
	if (!c->http || !c->policy) {
		fprintf(stderr, "berthctl: cannot start the HTTP client\n");
		return CTL_EUNREACH;
	}
	berth_http_tls_from_env(&c->tls);
	if (c->cacert) {
		free(c->tls.ca_file);
		c->tls.ca_file = xstrdup(c->cacert);
	}
	return 0;
}

void
ctl_close(struct ctl *c)
{
	if (c->http) {
		berth_http_client_free(c->http);
		berth_http_global_cleanup();
	}
	berth_http_policy_free(c->policy);
	berth_http_tls_fini(&c->tls);
	free(c->base);
	free(c->secret);
	free(c->secret_from);
	free(c->url_from);
	free(c->cacert);
	memset(c, 0, sizeof(*c));
}

/* ---- one request --------------------------------------------------------- */

static bool
cancelled(void *ud)
{
	const struct ctl *c = ud;
	return c->cancel && c->cancel(c->cancel_ud);
}

char *
ctl_escape(const char *s)
{
	size_t n = strlen(s) * 3 + 1;
	char *out = xmalloc(n);
	if (berth_http_url_escape(s, out, n) < 0)
		out[0] = '\0';
	return out;
}

char *
ctl_path(const char *prefix, const char *seg, const char *suffix)
{
	char *e = ctl_escape(seg);
	char *path = xasprintf("%s%s%s", prefix, e, suffix);
	free(e);
	return path;
}

int
ctl_send(struct ctl *c, const struct ctl_request *q, struct ctl_reply *r,
	 bool quiet)
{
	memset(r, 0, sizeof(*r));
	char *url = xasprintf("%s%s", c->base, q->path);
	struct berth_http_headers h;
	berth_http_headers_init(&h);
	if (!q->no_auth && c->secret) {
		char *v = xasprintf("Harbor-Secret %s", c->secret);
		berth_http_headers_add(&h, "Authorization", v);
		free(v);
	}
	berth_http_headers_add(&h, "Accept", "application/json");
	if (q->body)
		berth_http_headers_add(&h, "Content-Type",
				       "application/json");
	long timeout = q->timeout_ms ? q->timeout_ms : c->timeout_ms;
	struct berth_http_request req = {
		.method = q->method,
		.url = url,
		.headers = &h,
		.body = q->body,
		.body_len = q->body ? strlen(q->body) : 0,
		.user_agent = "berthctl/" BERTH_VERSION,
		.timeout_ms = timeout,
		.connect_timeout_ms = timeout < CONNECT_TIMEOUT_MS
					      ? timeout
					      : CONNECT_TIMEOUT_MS,
		.max_response_bytes = MAX_BODY,
		.skip_cert_verify = c->insecure,
		.tls = &c->tls,
		.policy = c->policy,
		.cancel = cancelled,
		.cancel_ud = c,
		.body_sink = q->sink,
		.body_sink_ud = q->sink_ud,
		.keep_headers = true,
	};
	char err[512];
	enum berth_http_result st =
		berth_http_send(c->http, &req, &r->resp, err, sizeof(err));
	berth_http_headers_fini(&h);
	free(url);
	if (st == BERTH_HTTP_CANCELLED) { /* by c->cancel or the sink */
		berth_http_response_fini(&r->resp);
		r->cancelled = true;
		return CTL_EUNREACH;
	}
	if (st != BERTH_HTTP_OK) {
		snprintf(r->err, sizeof(r->err), "%s",
			 err[0] ? err : "timed out");
		if (!quiet)
			fprintf(stderr, "berthctl: cannot reach berthd at %s "
					"(from %s): %s\n",
				c->base, c->url_from ? c->url_from : "?",
				r->err);
		berth_http_response_fini(&r->resp);
		return CTL_EUNREACH;
	}
	r->status = r->resp.status;
	r->body = r->resp.body;
	r->len = r->resp.body_len;
	if (r->len && (r->body[0] == '{' || r->body[0] == '[' ||
		       strncmp(r->body, "null", 4) == 0))
		r->json = json_parse(r->body, r->len, NULL);
	return 0;
}

void
ctl_reply_fini(struct ctl_reply *r)
{
	cJSON_Delete(r->json);
	berth_http_response_fini(&r->resp);
	memset(r, 0, sizeof(*r));
}

int
ctl_api_error(const struct ctl *c, const struct ctl_reply *r)
{
	const char *msg = json_str(r->json, "message");
	const char *det = json_str(r->json, "details");
	char *safe_msg = out_safe(msg ? msg : "");
	char *safe_det = out_safe(det ? det : "");
	if (msg) {
		fprintf(stderr, "berthctl: berthd answered %ld: %s", r->status,
			safe_msg);
		if (cJSON_IsNumber(cJSON_GetObjectItem(r->json, "code")))
			fprintf(stderr, " (code %lld)",
				(long long)json_i64(r->json, "code"));
		if (*safe_det && strcmp(safe_det, safe_msg) != 0)
			fprintf(stderr, ": %s", safe_det);
		fputc('\n', stderr);
	} else {
		char *body = out_safe(r->body ? r->body : "");
		char *t = util_trim(body);
		fprintf(stderr, "berthctl: berthd answered %ld%s%.300s\n",
			r->status, *t ? ": " : "", t);
		free(body);
	}
	if (r->status == 401)
		fprintf(stderr, "berthctl: the secret came from %s\n",
			c->secret_from ? c->secret_from : "nowhere");
	free(safe_msg);
	free(safe_det);
	return CTL_EAPI;
}

int
ctl_call(struct ctl *c, const char *method, const char *path,
	 const char *body, struct ctl_reply *r)
{
	struct ctl_request q = {.method = method, .path = path, .body = body};
	int rc = ctl_send(c, &q, r, false);
	if (rc != 0)
		return rc;
	if (!berth_http_is_2xx(r->status)) {
		rc = ctl_api_error(c, r);
		ctl_reply_fini(r);
		return rc;
	}
	if (r->len && !r->json) {
		fprintf(stderr, "berthctl: %s %s: the answer is not JSON\n",
			method, path);
		ctl_reply_fini(r);
		return CTL_EAPI;
	}
	return 0;
}

void
ctl_print_raw(const struct ctl_reply *r)
{
	if (!r->len) {
		fputs("null\n", stdout);
		return;
	}
	fwrite(r->body, 1, r->len, stdout);
	if (r->body[r->len - 1] != '\n')
		fputc('\n', stdout);
}

int
ctl_show(struct ctl *c, const char *method, const char *path,
	 const char *body,
	 void (*human)(const struct ctl_reply *r, const void *ud),
	 const void *ud)
{
	struct ctl_reply r;
	int rc = ctl_call(c, method, path, body, &r);
	if (rc)
		return rc;
	if (c->json)
		ctl_print_raw(&r);
	else
		human(&r, ud);
	ctl_reply_fini(&r);
	return CTL_OK;
}
