/* internal.h - what the files of the registry client (berth/registry.h)
 * share: the handle, the one request function (auth, retries), error
 * sentences, digests. Not installed. */
#ifndef BERTH_REG_INTERNAL_H
#define BERTH_REG_INTERNAL_H

#include <berth/http.h>
#include <berth/registry.h>

#include <openssl/evp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define REG_TIMEOUT_MS 30000
#define REG_STALL_MS 60000
#define REG_RETRIES 3
#define REG_BACKOFF_MS 500
#define REG_BACKOFF_CAP_MS 10000
#define REG_RETRY_AFTER_CAP_MS 60000
/* A blob transfer's overall timeout (the stall timeout ends it first). */
#define REG_BLOB_TIMEOUT_MS (7L * 24 * 3600 * 1000)
#define REG_ERROR_BODY_MAX 65536
#define REG_TOKENS_MAX 32
#define REG_POLL_MS 50

enum reg_auth_kind { REG_AUTH_NONE, REG_AUTH_BASIC, REG_AUTH_BEARER };

struct reg_token {
	char *scope; /* the scope set it was asked for ("" for none) */
	char *token;
	long long expires_ms; /* monotonic */
	long long used_ms;
};

struct berth_reg {
	char *base;     /* scheme://host[:port] as given, no trailing "/" */
	char *origin;   /* scheme://host:port, host lower-case */
	char *username; /* NULL: anonymous */
	char *password;
	char *bearer_token; /* static token */
	char *user_agent;
	bool insecure;
	const struct berth_http_policy *policy;
	const struct berth_http_tls *tls;
	long timeout_ms;
	long stall_timeout_ms;
	int max_retries;
	long backoff_ms;
	bool (*cancel)(void *ud);
	void *cancel_ud;

	struct berth_http_client *http;
	long last_status;
	int last_attempts; /* of the last reg_do */

	/* what the registry asked for */
	enum reg_auth_kind auth;
	char *realm;   /* Bearer */
	char *service; /* Bearer, may be NULL */
	struct reg_token tokens[REG_TOKENS_MAX];
	size_t n_tokens;
};

/* One exchange with the registry. */
struct reg_req {
	const char *method;
	/* "/v2/..." (appended to base) or an absolute URL (a Location) */
	const char *path;
	/* the scopes the request needs ("repository:x:pull", ...), NULL for
	 * none (/v2/) */
	const char *scope;
	const char *scope2;
	const struct berth_http_headers *headers; /* extra; NULL: none */
	const char *body;
	size_t body_len;
	size_t (*body_read)(void *ud, char *buf, size_t len);
	void *body_read_ud;
	long long body_read_len;
	bool (*body_sink)(void *ud, const char *data, size_t len);
	void *body_sink_ud;
	size_t max_response_bytes; /* 0: REG_ERROR_BODY_MAX */
	bool blob;             /* a blob transfer: stall timeout, no overall */
	bool follow_redirects; /* (blob GETs: storage redirects) */
	bool no_retry;         /* a streamed body cannot be sent twice */
	/* another reason to stop (a copy's other side failed), polled with
	 * the handle's cancel */
	bool (*cancel2)(void *ud);
	void *cancel2_ud;
	/* a short timeout instead of the handle's (best-effort cleanups) */
	long timeout_ms;
};

/* Sends q (with authentication, and retries unless no_retry). 0 when an
 * answer came: resp holds it, whatever its status (a 5xx or 429 after the
 * retries, a 401 the credentials did not cure); else an error code with
 * err set ("registry <base>: <what>: <reason>"). resp is always
 * initialised: free it with berth_http_response_fini. */
int reg_do(struct berth_reg *r, const struct reg_req *q,
	   struct berth_http_response *resp, const char *what, char *err,
	   size_t errlen);
/* reg_do for a request on repository repo, with what every such call
 * repeats: the path, when pathfmt is set, is pathfmt's printf
 * ("/v2/%s/blobs/%s", repo, ...; else q->path as given, a Location), the
 * scope "repository:<repo>:<actions>" (q->scope2 as given), and the answer's
 * status checked against ok (0-terminated; NULL: any status is the
 * caller's): reg_status_error for another. 0 with resp holding the answer,
 * or an error code with err set ("out of memory" when the path or scope
 * cannot be made). resp is always initialised: free it with
 * berth_http_response_fini. q->path (with pathfmt) and q->scope are set
 * for the call only. */
__attribute__((format(printf, 10, 11))) int
reg_repo_do(struct berth_reg *r, struct reg_req *q, const char *repo,
	    const char *actions, const long *ok,
	    struct berth_http_response *resp, const char *what, char *err,
	    size_t errlen, const char *pathfmt, ...);
/* The error code and sentence for an answer a caller did not expect:
 * "registry <base>: <what>: <status> <CODE>: <message> (<hint>)". */
int reg_status_error(const struct berth_reg *r,
		     const struct berth_http_response *resp, const char *what,
		     char *err, size_t errlen);
/* True when the handle's cancel (or q's cancel2) says so. */
bool reg_cancelled(const struct berth_reg *r);
/* Waits ms (polling cancel and cancel2); false when cancelled. */
bool reg_sleep(const struct berth_reg *r, long long ms,
	       bool (*cancel2)(void *ud), void *cancel2_ud);
/* The wait before retry number attempt (0-based) of an answer. */
long long reg_backoff(const struct berth_reg *r, int attempt,
		      long long retry_after_s);
/* Resolves a Location (absolute, or a path) into a malloc'ed URL. */
char *reg_resolve(const struct berth_reg *r, const char *loc);
/* The target of a Link header's rel="next" (malloc'ed), or NULL. */
char *reg_link_next(const char *link);

/* auth.c */
/* Adds the Authorization header the handle knows for scope (may fetch a
 * token: 0, or an error with err set). */
int reg_auth_header(struct berth_reg *r, const char *scope,
		    struct berth_http_headers *h, char *err, size_t errlen);
/* Learns from a 401's WWW-Authenticate: *resend when the request should
 * be sent again (with new credentials or a token), false when not (no
 * usable challenge, no credentials, nothing new to try). 0, or an error
 * code (token service failure) with err set. */
int reg_auth_challenge(struct berth_reg *r,
		       const struct berth_http_response *resp,
		       const char *scope, bool *resend, char *err,
		       size_t errlen);
void reg_tokens_clear(struct berth_reg *r);
/* The parsers of what a registry or its token service sends, here rather
 * than static so that the fuzz targets of tests/fuzz reach them: */
/* One challenge "Scheme k=v, k=\"v\", ..." (RFC 7235) from s: the scheme
 * into scheme, and realm, service and scope (malloc'ed, or NULL). */
void reg_parse_challenge(const char *s, char *scheme, size_t slen,
			 char **realm, char **service, char **scope);
/* A token service's JSON answer: "token" (or "access_token") into *token
 * (malloc'ed) and "expires_in" into *expires_s (clamped to 60..86400 s).
 * 0, BERTH_REG_PROTOCOL (no token) or BERTH_REG_NOMEM. */
int reg_parse_token(const char *body, size_t len, char **token,
		    long long *expires_s);
int reg_tokens_copy(struct berth_reg *dst, const struct berth_reg *src);

/* util.c */
__attribute__((format(printf, 3, 4))) void
reg_errf(char *err, size_t errlen, const char *fmt, ...);
char *reg_strdup(const char *s);
/* malloc'ed printf; NULL when out of memory */
__attribute__((format(printf, 1, 2))) char *reg_asprintf(const char *fmt,
							 ...);
/* The EVP digest of a digest string's algorithm ("sha256:..."), NULL
 * when it is not one this client knows. */
const EVP_MD *reg_digest_md(const char *digest);
struct reg_hash {
	EVP_MD_CTX *ctx;
	const EVP_MD *md;
	const char *alg; /* "sha256" / "sha512" */
};
int reg_hash_init(struct reg_hash *h, const EVP_MD *md);
void reg_hash_update(struct reg_hash *h, const void *p, size_t n);
/* "<alg>:<hex>" into out; frees the context. */
void reg_hash_final(struct reg_hash *h, char out[BERTH_REG_DIGEST_MAX]);
void reg_hash_fini(struct reg_hash *h);
/* Digest of len bytes with the algorithm of like (a digest string). */
int reg_digest_like(const char *like, const void *data, size_t len,
		    char out[BERTH_REG_DIGEST_MAX]);
/* "sha256:0123456789ab..." shortened for messages (19 chars + "..."). */
const char *reg_short(const char *digest, char buf[32]);
/* A header value of resp (keep_headers), NULL when absent. */
const char *reg_header(const struct berth_http_response *resp,
		       const char *name);
/* Writes a copy of s cleaned for a message: control characters dropped,
 * at most max bytes (then "..."). */
void reg_clean(const char *s, size_t len, char *out, size_t outlen);
/* s past its spaces and tabs (HTTP's optional white space). */
const char *reg_skip_ows(const char *s);
/* Escapes a query value into a malloc'ed string. */
char *reg_escape(const char *s);

/* blob.c: upload sessions, shared with copy.c */
/* One upload's sending side. */
struct reg_upload {
	struct berth_reg *r;
	const char *repo;
	const char *digest;
	long long size; /* -1: unknown */
	char *location; /* the session (absolute), replaced after a PATCH */
	const struct berth_reg_copy_options *o;
	/* the bytes: read returns 0 at the end, BERTH_HTTP_READ_ABORT */
	size_t (*read)(void *ud, char *buf, size_t len);
	void *read_ud;
	bool (*cancel2)(void *ud);
	void *cancel2_ud;
	long long sent;
	long long chunk_left; /* -1: no limit */
	bool src_end;
	char what[400];
};
/* 0 when repo and digest are valid, else BERTH_REG_INVALID with err. */
int reg_blob_check_args(const char *repo, const char *digest, char *err,
			size_t errlen);
/* POST /v2/<repo>/blobs/uploads/ (with ?mount=&from= when from is set):
 * 0 with *mounted (201 of a mount) or *location (a session, malloc'ed). */
int reg_upload_open(struct berth_reg *r, const char *repo, const char *digest,
		    const char *from, bool *mounted, char **location, char *err,
		    size_t errlen);
/* DELETE of a session, best effort (even when the handle is cancelled). */
void reg_upload_cancel(struct berth_reg *r, const char *repo,
		       const char *location);
/* Sends the whole blob into u->location: one PUT, or PATCHes of
 * u->o->chunk_bytes and an empty PUT. */
int reg_upload_send(struct reg_upload *u, char *err, size_t errlen);

/* manifest.c */
void reg_descriptor_fini(struct berth_reg_descriptor *d);

#endif
