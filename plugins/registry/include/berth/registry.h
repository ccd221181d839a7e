/* berth/registry.h - an OCI Distribution API client for Berth plugins: the
 * one registry client of the bundled REPLICATION, GARBAGE_COLLECTION and
 * RETENTION plugins, and a supported library for plugin authors who write
 * their own registry jobs.
 *
 * The library is libberth_registry.a, a static, position-independent
 * archive compiled with hidden visibility, installed with the SDK next to
 * libberth_http.a (it is built on berth/http.h):
 *
 *   find_package(Berth REQUIRED)
 *   berth_add_plugin(x SOURCES x.c LIBRARIES Berth::registry)
 *
 * Berth::registry brings Berth::http (libcurl), OpenSSL's libcrypto
 * (SHA-256/SHA-512 through EVP), cJSON and pthreads along.
 *
 * What it speaks (https://github.com/opencontainers/distribution-spec):
 *   - GET /v2/ (ping), manifests (GET, HEAD, PUT, DELETE), blobs (HEAD, GET,
 *     DELETE), blob uploads (POST, PATCH, PUT, DELETE, cross-repository
 *     mount), tags/list with Link pagination;
 *   - manifests of media types OCI image index, OCI image manifest, Docker
 *     manifest list and Docker image manifest v2 schema 2 (what Accept
 *     asks for); Docker schema 1 is refused (BERTH_REG_UNSUPPORTED);
 *   - authentication as the registry asks for it in WWW-Authenticate
 *     (see "Authentication" below): Basic, or the Bearer token flow;
 *   - digest verification of every manifest and blob read, while it
 *     streams; blobs are never held in memory (bounded memory whatever the
 *     blob size);
 *   - retries of 5xx, 429 and transport failures with exponential backoff
 *     honouring Retry-After; cancel polled during every request and wait.
 *
 * Threads: a struct berth_reg (a handle) belongs to one thread at a time;
 * berth_reg_dup() makes another for another thread. A struct
 * berth_reg_throttle may be shared by any number of threads.
 * berth_reg_blob_copy() runs the download on a second thread of its own.
 *
 * Errors: every function that can fail returns 0 (BERTH_REG_OK) or one of
 * enum berth_reg_result, and writes a sentence a user can act on into err
 * (errlen bytes, always NUL-terminated when errlen > 0; err may be NULL),
 * naming the registry (scheme://host:port), the repository and the
 * reference and quoting the registry's own error code and message, e.g.
 *   "registry http://127.0.0.1:5001: GET manifest library/app:v1: 401
 *    UNAUTHORIZED: authentication required (check the credentials)"
 *   "blob sha256:ab12... of library/app: digest mismatch: got sha256:cd34..."
 * Never a password, a token or a URL's query. */
#ifndef BERTH_REGISTRY_H
#define BERTH_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>

#include <berth/http.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Room for a digest string and its NUL: "sha512:" + 128 hex digits + 1
 * (a sha256 digest takes 72). */
#define BERTH_REG_DIGEST_MAX 136

/* Media types (the Accept header of a manifest GET lists the four
 * manifest types). */
#define BERTH_REG_MT_OCI_INDEX "application/vnd.oci.image.index.v1+json"
#define BERTH_REG_MT_OCI_MANIFEST "application/vnd.oci.image.manifest.v1+json"
#define BERTH_REG_MT_DOCKER_LIST \
	"application/vnd.docker.distribution.manifest.list.v2+json"
#define BERTH_REG_MT_DOCKER_MANIFEST \
	"application/vnd.docker.distribution.manifest.v2+json"

/* Largest manifest accepted (bigger ones: BERTH_REG_TOO_LARGE). */
#define BERTH_REG_MANIFEST_MAX (4 * 1024 * 1024)

enum berth_reg_result {
	BERTH_REG_OK = 0,
	BERTH_REG_NOT_FOUND,       /* 404: no such repository, tag, manifest
				    * or blob */
	BERTH_REG_UNAUTHORIZED,    /* 401 after authenticating (or no
				    * credentials to answer a challenge with;
				    * or the token service refused them) */
	BERTH_REG_DENIED,          /* 403 */
	BERTH_REG_DIGEST_MISMATCH, /* content does not match its digest (or
				    * its declared size) */
	BERTH_REG_PROTOCOL,        /* an answer the protocol does not allow
				    * (unexpected status, unparsable body,
				    * missing header) */
	BERTH_REG_TRANSPORT,       /* no answer (connect, TLS, timeout,
				    * stall), 5xx or 429, after the retries */
	BERTH_REG_CANCELLED,       /* the cancel callback said so */
	BERTH_REG_TOO_LARGE,       /* over a size cap */
	BERTH_REG_UNSUPPORTED,     /* refused by the registry as unsupported
				    * (405, e.g. deletes disabled) or a
				    * manifest type this client does not read */
	BERTH_REG_NOMEM,           /* out of memory */
	BERTH_REG_INVALID,         /* bad argument: malformed repository
				    * name, tag, digest or URL */
};

/* "OK", "NOT_FOUND", ... (the enumerator without its prefix). */
const char *berth_reg_result_name(int rc);

/* ---- a handle on one registry ------------------------------------------ */

struct berth_reg_options {
	/* http(s)://host[:port] with no path (a trailing "/" is fine).
	 * http:// is accepted whatever insecure says (as Harbor does);
	 * insecure only concerns TLS verification. Required. */
	const char *url;
	/* Basic credentials: sent when the registry asks for Basic auth,
	 * and to the token service in the Bearer flow. NULL: anonymous. */
	const char *username;
	const char *password;
	/* A static bearer token sent on every request instead of the
	 * challenge flow (Harbor credential types "bearer" and "oauth").
	 * NULL: none. */
	const char *bearer_token;
	bool insecure;          /* skip TLS certificate verification */
	/* Proxy and address check (berth/http.h); NULL: direct, unchecked.
	 * Not copied: must outlive the handle (and its duplicates). */
	const struct berth_http_policy *policy;
	/* Trust store / client certificate; NULL: libcurl's defaults. Not
	 * copied: must outlive the handle (and its duplicates). */
	const struct berth_http_tls *tls;
	long timeout_ms;        /* per metadata request; 0: 30 s */
	/* Blob transfers have no overall timeout; they end when fewer than
	 * one byte moved for this long. 0: 60 s */
	long stall_timeout_ms;
	/* Retries of 5xx, 429 and transport failures: 0: 3; -1: none. */
	int max_retries;
	/* First wait before a retry, doubling each time, capped at 10 s; a
	 * Retry-After of the answer wins (capped at 60 s). 0: 500 ms. */
	long backoff_ms;
	/* Polled at least every 100 ms during a request, during waits and
	 * between the steps of a copy; true ends the operation with
	 * BERTH_REG_CANCELLED. Called on the thread using the handle, and
	 * on berth_reg_blob_copy's download thread (for the source handle),
	 * so it must be thread-safe (reading a flag is). NULL: never. */
	bool (*cancel)(void *ud);
	void *cancel_ud;
	const char *user_agent; /* NULL: "berth-registry/1" */
};

struct berth_reg;

/* A handle on the registry at o->url; the strings of o are copied (not
 * policy and tls). Sends nothing (see berth_reg_ping). NULL with err set
 * when the URL is unusable or memory is short. Calls
 * berth_http_global_init() (and berth_reg_free the matching cleanup). */
struct berth_reg *berth_reg_new(const struct berth_reg_options *o, char *err,
				size_t errlen);
/* A second handle with the same options and what the first learned
 * (authentication scheme, cached tokens), with its own connections, for
 * another thread. NULL when out of memory. */
struct berth_reg *berth_reg_dup(const struct berth_reg *r);
/* NULL-safe. Closes the handle's connections. */
void berth_reg_free(struct berth_reg *r);

/* True when a and b address the same registry (scheme, host and port,
 * host compared case-insensitively, default ports made explicit): a
 * cross-repository mount between them can be tried. */
bool berth_reg_same_registry(const struct berth_reg *a,
			     const struct berth_reg *b);
/* scheme://host:port of the registry (for log lines; no credentials). */
const char *berth_reg_url(const struct berth_reg *r);
/* The HTTP status of the last answer the handle received (0: none yet,
 * or the last attempt got no answer). */
long berth_reg_last_status(const struct berth_reg *r);

/* GET /v2/, authenticating as asked (for a Bearer challenge: a token with
 * no scope). 0 when the registry speaks the API and accepts the
 * credentials. */
int berth_reg_ping(struct berth_reg *r, char *err, size_t errlen);

/* ---- Authentication -----------------------------------------------------
 *
 * A request first goes out with what the handle already knows; an answer
 * 401 with WWW-Authenticate teaches it the scheme, and the request is
 * sent again once:
 *   - Basic: the username and password (no credentials: UNAUTHORIZED);
 *     later requests send them at once.
 *   - Bearer realm="...",service="...",scope="...": GET <realm>?service=
 *     <service>&scope=<scope>... with the basic credentials when given
 *     (anonymous otherwise); the token is "token" (or "access_token") of
 *     the JSON answer, valid for "expires_in" seconds (default 60, and
 *     renewed 5 s early). Tokens are cached per scope set, so later
 *     requests on the same repository with the same actions send the
 *     cached token at once.
 * Scopes: "repository:<repo>:pull" for reads, "repository:<repo>:pull,push"
 * for uploads and manifest PUTs, "repository:<repo>:delete" (and pull)
 * for DELETEs, plus "repository:<source>:pull" for a cross-repository
 * mount. A 401 after authenticating is BERTH_REG_UNAUTHORIZED; a 401 or
 * 403 of the token service too. With bearer_token set, the token is sent
 * on every request and a 401 is final. */

/* ---- manifests ---------------------------------------------------------- */

/* A content descriptor: a manifest's config and layers, an index's
 * manifests. Strings are malloc'ed, NULL when absent. */
struct berth_reg_descriptor {
	char *media_type;
	char digest[BERTH_REG_DIGEST_MAX];
	long long size;   /* -1 when absent */
	/* index entries: the platform (NULL otherwise or when absent) */
	char *os;
	char *arch;
	char *variant;
	/* a foreign / non-distributable layer (Docker
	 * ...rootfs.foreign.diff..., OCI ...nondistributable...): the
	 * registry usually does not hold it; copiers skip it */
	bool foreign;
};

struct berth_reg_manifest {
	/* Content-Type of the answer (parameters stripped) or, when that is
	 * absent or generic, the body's "mediaType" */
	char *media_type;
	char digest[BERTH_REG_DIGEST_MAX]; /* sha256 of body, verified */
	char *body;       /* the exact bytes (NUL-terminated), len bytes */
	size_t len;
	bool is_index;    /* OCI image index or Docker manifest list */
	/* image manifests: config and layers (config.digest "" otherwise) */
	struct berth_reg_descriptor config;
	struct berth_reg_descriptor *layers;
	size_t n_layers;
	/* indexes: the child manifests, in the body's order */
	struct berth_reg_descriptor *manifests;
	size_t n_manifests;
};

/* GET /v2/<repo>/manifests/<ref>; ref is a tag or a digest. Accept lists
 * the four manifest media types. The body is capped at
 * BERTH_REG_MANIFEST_MAX (BERTH_REG_TOO_LARGE). For a digest ref the body
 * must hash to it; for a tag, the answer's Docker-Content-Digest, when
 * present, must equal the body's sha256 (else BERTH_REG_DIGEST_MISMATCH).
 * Parses config/layers or manifests. m is filled on success only (free it
 * with berth_reg_manifest_fini; it is zeroed on failure). */
int berth_reg_manifest_get(struct berth_reg *r, const char *repo,
			   const char *ref, struct berth_reg_manifest *m,
			   char *err, size_t errlen);
/* HEAD /v2/<repo>/manifests/<ref>: *exists (404: false, returns 0), and
 * the Docker-Content-Digest into digest when it exists (digest may be
 * NULL; "" when the registry sent none). */
int berth_reg_manifest_head(struct berth_reg *r, const char *repo,
			    const char *ref, bool *exists,
			    char digest[BERTH_REG_DIGEST_MAX], char *err,
			    size_t errlen);
/* PUT /v2/<repo>/manifests/<ref> with Content-Type media_type (NULL: the
 * body's mediaType). ref is a tag or the body's digest (checked before
 * sending). The blobs and child manifests it references must be in the
 * repository already. The registry's Docker-Content-Digest, when sent,
 * must equal sha256(body). digest (may be NULL) receives sha256(body). */
int berth_reg_manifest_put(struct berth_reg *r, const char *repo,
			   const char *ref, const char *media_type,
			   const char *body, size_t len,
			   char digest[BERTH_REG_DIGEST_MAX], char *err,
			   size_t errlen);
/* DELETE /v2/<repo>/manifests/<digest> (the manifest and every tag on
 * it). NOT_FOUND when absent; UNSUPPORTED when the registry has deletes
 * disabled (405). */
int berth_reg_manifest_delete(struct berth_reg *r, const char *repo,
			      const char *digest, char *err, size_t errlen);
/* Parses a manifest body that did not come from berth_reg_manifest_get
 * (body is copied; media_type NULL: the body's mediaType; the digest is
 * computed). BERTH_REG_PROTOCOL when it is not a manifest or index this
 * client reads, BERTH_REG_UNSUPPORTED for Docker schema 1. */
int berth_reg_manifest_parse(const char *body, size_t len,
			     const char *media_type,
			     struct berth_reg_manifest *m, char *err,
			     size_t errlen);
/* Frees what m holds and zeroes it (NULL-safe, idempotent). */
void berth_reg_manifest_fini(struct berth_reg_manifest *m);

/* ---- tags --------------------------------------------------------------- */

/* Every tag of repo (GET /v2/<repo>/tags/list?n=<page_size>, following the
 * Link rel="next" header; page_size 0: 1000), in the registry's order.
 * *tags is a malloc'ed array of *n malloc'ed strings (free with
 * berth_reg_strv_free); a repository without tags gives *n == 0 (an
 * unknown one NOT_FOUND). At most 1,000,000 tags (TOO_LARGE). */
int berth_reg_tags(struct berth_reg *r, const char *repo, int page_size,
		   char ***tags, size_t *n, char *err, size_t errlen);
void berth_reg_strv_free(char **v, size_t n);

/* ---- blobs -------------------------------------------------------------- */

/* HEAD /v2/<repo>/blobs/<digest>: *exists (404: false, returns 0) and
 * *size (Content-Length; -1 when absent or unknown; size may be NULL). */
int berth_reg_blob_head(struct berth_reg *r, const char *repo,
			const char *digest, bool *exists, long long *size,
			char *err, size_t errlen);
/* A small blob (an image config) read whole: at most max bytes
 * (BERTH_REG_TOO_LARGE beyond), digest verified. *body is malloc'ed and
 * NUL-terminated (free()). */
int berth_reg_blob_read(struct berth_reg *r, const char *repo,
			const char *digest, size_t max, char **body,
			size_t *len, char *err, size_t errlen);
/* DELETE /v2/<repo>/blobs/<digest> (unlinks it from the repository; the
 * registry's garbage collection frees the storage). NOT_FOUND when
 * absent, UNSUPPORTED when deletes are disabled. */
int berth_reg_blob_delete(struct berth_reg *r, const char *repo,
			  const char *digest, char *err, size_t errlen);

/* A token bucket in bytes per second, shared by any number of threads
 * (one mutex): transfers that use it together stay under the rate.
 * NULL when bytes_per_s <= 0 or out of memory. */
struct berth_reg_throttle;
struct berth_reg_throttle *berth_reg_throttle_new(long long bytes_per_s);
void berth_reg_throttle_free(struct berth_reg_throttle *t);
/* Waits until n more bytes may move (returns at once without a bucket).
 * false when cancel (may be NULL) said so during the wait. */
bool berth_reg_throttle_take(struct berth_reg_throttle *t, long long n,
			     bool (*cancel)(void *ud), void *cancel_ud);

struct berth_reg_copy_options {
	/* 0: one monolithic upload (POST, then PUT ?digest= with the whole
	 * body); > 0: chunked (POST, PATCH with Content-Range per chunk of
	 * this many bytes, then an empty PUT ?digest=). */
	long long chunk_bytes;
	/* Rate cap of this copy in bytes per second when throttle is NULL
	 * (0: unlimited). */
	long long max_bytes_per_s;
	/* A bucket shared by several copies (e.g. a job's parallel blob
	 * copies); wins over max_bytes_per_s. */
	struct berth_reg_throttle *throttle;
	/* Called on the calling thread with the bytes uploaded so far of
	 * this blob, after every piece handed to the upload (every few tens
	 * of KiB): keep it cheap (rate-limit log lines yourself). The count
	 * restarts at 0 when the blob is retried. NULL: none. */
	void (*progress)(void *ud, long long bytes);
	void *progress_ud;
	/* Do not try a cross-repository mount even on the same registry. */
	bool no_mount;
	/* Do not HEAD the destination first (upload even when present). */
	bool no_skip;
};

struct berth_reg_copy_stats {
	bool skipped;       /* the destination had it (HEAD) */
	bool mounted;       /* cross-repository mount */
	long long bytes;    /* bytes uploaded (0 when skipped or mounted) */
	int retries;        /* whole-blob retries after transient failures */
	long long elapsed_ms;
};

/* Copies the blob d (digest and size; media type unused) from
 * src_repo on src to dst_repo on dst:
 *   1. HEAD on dst: present -> skipped (unless no_skip);
 *   2. berth_reg_same_registry(src, dst) (unless no_mount): POST
 *      ?mount=<digest>&from=<src_repo>; 201 -> mounted; a 202 opens an
 *      upload session that step 3 uses;
 *   3. stream: GET on src by a second thread into a bounded ring buffer
 *      (BERTH_REG_COPY_BUFFER bytes, whatever the blob size), uploaded to
 *      dst from it (POST + PUT, or POST + PATCH... + PUT). Every byte goes
 *      through the digest; the upload's last byte (chunked: the final
 *      PUT) is released only after the download matched d's digest and
 *      size, so a corrupt source blob is never committed: the upload is
 *      aborted, its session cancelled with DELETE, and the result is
 *      BERTH_REG_DIGEST_MISMATCH. (Distribution 2.8 refuses the DELETE of
 *      a session whose transfer was cut mid-body and leaves its partial
 *      bytes to its upload purging, a week later by default; they are
 *      never part of the repository.)
 * Transient failures (5xx, 429, transport) retry the whole blob with
 * backoff (dst's max_retries and backoff_ms). The cancel callback of
 * either handle ends it with BERTH_REG_CANCELLED (the upload session is
 * cancelled). src and dst may be the same handle (the download then uses
 * a duplicate). o and st may be NULL. The error sentence names the blob,
 * the repository and the side (source or destination). */
#define BERTH_REG_COPY_BUFFER (2 * 1024 * 1024)
int berth_reg_blob_copy(struct berth_reg *src, const char *src_repo,
			struct berth_reg *dst, const char *dst_repo,
			const struct berth_reg_descriptor *d,
			const struct berth_reg_copy_options *o,
			struct berth_reg_copy_stats *st, char *err,
			size_t errlen);

/* Uploads a blob of size bytes (-1: unknown, sent with chunked transfer
 * encoding; with o->chunk_bytes it need not be known) whose content comes
 * from read(ud, buf, len) (the bytes written, 0 at the end,
 * BERTH_HTTP_READ_ABORT to abort: BERTH_REG_CANCELLED). digest is the
 * content's digest: the library hashes what it sends and the final PUT
 * ?digest= lets the registry check it too; a mismatch is
 * BERTH_REG_DIGEST_MISMATCH and nothing is committed. No HEAD, no mount,
 * no whole-blob retry (read cannot be rewound); the upload session is
 * cancelled (DELETE) on failure. o->throttle / max_bytes_per_s /
 * progress / chunk_bytes apply; o may be NULL. */
int berth_reg_blob_upload(struct berth_reg *r, const char *repo,
			  const char *digest, long long size,
			  size_t (*read)(void *ud, char *buf, size_t len),
			  void *ud, const struct berth_reg_copy_options *o,
			  char *err, size_t errlen);
/* Uploads len bytes from memory (monolithic unless o->chunk_bytes);
 * retried as a whole on transient failures. digest (may be NULL)
 * receives their sha256 digest. Skips the upload when the repository
 * already has the blob (HEAD), unless o->no_skip. */
int berth_reg_blob_push(struct berth_reg *r, const char *repo,
			const void *data, size_t len,
			const struct berth_reg_copy_options *o,
			char digest[BERTH_REG_DIGEST_MAX], char *err,
			size_t errlen);

/* ---- helpers ------------------------------------------------------------ */

/* "sha256:<64 lower-case hex>" or "sha512:<128 lower-case hex>". */
bool berth_reg_is_digest(const char *ref);
/* The distribution name grammar: path components of [a-z0-9] separated
 * by ".", "_", "__" or runs of "-", joined by "/"; at most 255 chars. */
bool berth_reg_valid_repo(const char *repo);
/* [A-Za-z0-9_][A-Za-z0-9._-]{0,127} */
bool berth_reg_valid_tag(const char *tag);
/* sha256 of len bytes as "sha256:<hex>" into out. */
void berth_reg_digest_of(const void *data, size_t len,
			 char out[BERTH_REG_DIGEST_MAX]);

#ifdef __cplusplus
}
#endif

#endif /* BERTH_REGISTRY_H */
