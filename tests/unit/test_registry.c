/* test_registry.c - the registry client (plugins/registry, berth/registry.h)
 * against real docker-registry processes (the CNCF distribution registry)
 * started by the test on free loopback ports, filesystem storage in a
 * temporary directory, deletes enabled, one with an htpasswd file (bcrypt,
 * made with crypt(3)). Content is pushed with the library itself.
 *
 * Covers: ping, blob push/upload, manifest put/get/head/delete with digest
 * checks, an index with two children, tags with Link pagination, blob copy
 * between two registries (monolithic and chunked), skip-existing, mount
 * within one registry, an empty blob, a corrupted and a truncated blob on
 * the source's disk (DIGEST_MISMATCH, nothing committed, no upload left),
 * a corrupted manifest, basic auth (right, wrong, none), transport
 * retries, cancel mid-copy, throttle, and a 32 MiB copy whose peak RSS
 * growth stays bounded.
 *
 *   test_registry              the test (exit 77: no docker-registry)
 *   test_registry --bench MB   copy MB MiB between two registries,
 *                              monolithic and chunked, and print MB/s */
#define _GNU_SOURCE
#include "testlib.h"
#include "token_server.h"

#include <berth/registry.h>

#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

#define MiB (1024LL * 1024)

static const char *registry_bin = "docker-registry";

/* ---- a docker-registry process ------------------------------------------- */

struct regproc {
	struct token_server *ts; /* token auth */
	pid_t pid;
	int port;
	char dir[256];
	char root[300]; /* storage root */
	char url[64];
};

static int
free_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	int port = -1;
	if (s >= 0 && bind(s, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(s, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (s >= 0)
		close(s);
	return port;
}

static bool
port_open(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET,
				.sin_port = htons((uint16_t)port)};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bool ok = s >= 0 && connect(s, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (s >= 0)
		close(s);
	return ok;
}

static void
msleep(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000,
			      .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int
write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	return fclose(f);
}

/* Starts a registry; user/password: an htpasswd file with that user, or
 * (token) a token service granting that user everything. */
static int
reg_start(struct regproc *p, const char *user, const char *password,
	  bool token)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->dir, sizeof(p->dir), "%s/berth-reg-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(p->dir))
		return -1;
	snprintf(p->root, sizeof(p->root), "%s/data", p->dir);
	char auth[800] = "";
	if (user && token) {
		char cert[300];
		snprintf(cert, sizeof(cert), "%s/token-cert.pem", p->dir);
		p->ts = token_server_start(cert, "berth-test-issuer",
					   "berth-test", user, password);
		if (!p->ts)
			return -1;
		snprintf(auth, sizeof(auth),
			 "auth:\n  token:\n    realm: %s\n"
			 "    service: berth-test\n"
			 "    issuer: berth-test-issuer\n"
			 "    rootcertbundle: %s\n",
			 token_server_realm(p->ts), cert);
	} else if (user) {
		char setting[64], hp[300], line[300];
		if (!crypt_gensalt_rn("$2b$", 4, NULL, 0, setting,
				      sizeof(setting)))
			return -1;
		struct crypt_data cd;
		memset(&cd, 0, sizeof(cd));
		const char *h = crypt_r(password, setting, &cd);
		if (!h || h[0] == '*')
			return -1;
		snprintf(hp, sizeof(hp), "%s/htpasswd", p->dir);
		snprintf(line, sizeof(line), "%s:%s\n", user, h);
		if (write_file(hp, line))
			return -1;
		snprintf(auth, sizeof(auth),
			 "auth:\n  htpasswd:\n    realm: berth-test\n"
			 "    path: %s\n",
			 hp);
	}
	for (int tries = 0; tries < 5; tries++) {
		p->port = free_port();
		char cfg[2048], path[300], logp[300];
		snprintf(cfg, sizeof(cfg),
			 "version: 0.1\n"
			 "log:\n  level: error\n  accesslog:\n    disabled: true\n"
			 "storage:\n  filesystem:\n    rootdirectory: %s\n"
			 "  delete:\n    enabled: true\n"
			 "  maintenance:\n    uploadpurging:\n"
			 "      enabled: false\n"
			 "http:\n  addr: 127.0.0.1:%d\n%s",
			 p->root, p->port, auth);
		snprintf(path, sizeof(path), "%s/config.yml", p->dir);
		snprintf(logp, sizeof(logp), "%s/log", p->dir);
		if (write_file(path, cfg))
			return -1;
		pid_t pid = fork();
		if (pid < 0)
			return -1;
		if (pid == 0) {
			setpgid(0, 0);
			int fd = open(logp, O_WRONLY | O_CREAT | O_APPEND, 0600);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execlp(registry_bin, registry_bin, "serve", path,
			       (char *)NULL);
			_exit(127);
		}
		p->pid = pid;
		for (int i = 0; i < 200; i++) {
			int st;
			if (waitpid(pid, &st, WNOHANG) == pid) {
				p->pid = 0;
				break;
			}
			if (port_open(p->port)) {
				snprintf(p->url, sizeof(p->url),
					 "http://127.0.0.1:%d", p->port);
				return 0;
			}
			msleep(25);
		}
		if (p->pid) {
			kill(-p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
			p->pid = 0;
		}
	}
	return -1;
}

static int
rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void
reg_stop(struct regproc *p)
{
	if (p->pid > 0) {
		/* its storage is thrown away: no graceful stop needed */
		kill(-p->pid, SIGKILL);
		waitpid(p->pid, NULL, 0);
		p->pid = 0;
	}
	token_server_stop(p->ts);
	p->ts = NULL;
	if (p->dir[0])
		nftw(p->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	p->dir[0] = '\0';
}

static struct regproc *procs[4];

static void
stop_all(void)
{
	for (int i = 0; i < 4; i++)
		if (procs[i]) {
			reg_stop(procs[i]);
			procs[i] = NULL;
		}
}

static void
on_signal(int sig)
{
	for (int i = 0; i < 4; i++)
		if (procs[i] && procs[i]->pid > 0)
			kill(-procs[i]->pid, SIGKILL);
	signal(sig, SIG_DFL);
	raise(sig);
}

/* ---- content --------------------------------------------------------------- */

static uint64_t
xs_next(uint64_t *s)
{
	uint64_t x = *s;
	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *s = x;
}

static void
fill_random(char *buf, size_t n, uint64_t seed)
{
	uint64_t s = seed | 1;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v = xs_next(&s);
		memcpy(buf + i, &v, 8);
	}
	for (; i < n; i++)
		buf[i] = (char)xs_next(&s);
}

static char *
random_blob(size_t n, uint64_t seed)
{
	char *b = malloc(n ? n : 1);
	fill_random(b, n, seed);
	return b;
}

/* a streamed pseudo-random blob (never in memory) */
struct gen {
	uint64_t s;
	long long left;
};

static size_t
gen_read(void *ud, char *buf, size_t len)
{
	struct gen *g = ud;
	if ((long long)len > g->left)
		len = (size_t)g->left;
	len &= ~(size_t)7;
	if (len == 0 && g->left > 0)
		len = (size_t)g->left; /* the tail (< 8 bytes) */
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t v = xs_next(&g->s);
		memcpy(buf + i, &v, 8);
	}
	if (i < len) {
		uint64_t v = xs_next(&g->s);
		memcpy(buf + i, &v, len - i);
	}
	g->left -= (long long)len;
	return len;
}

static void
gen_digest(uint64_t seed, long long size, char out[BERTH_REG_DIGEST_MAX])
{
	struct gen g = {.s = seed | 1, .left = size};
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	EVP_DigestInit_ex(c, EVP_sha256(), NULL);
	char *buf = malloc(256 * 1024);
	size_t n;
	while ((n = gen_read(&g, buf, 256 * 1024)) > 0)
		EVP_DigestUpdate(c, buf, n);
	free(buf);
	unsigned char md[32];
	unsigned int ml = 0;
	EVP_DigestFinal_ex(c, md, &ml);
	EVP_MD_CTX_free(c);
	strcpy(out, "sha256:");
	for (unsigned i = 0; i < ml; i++)
		sprintf(out + 7 + 2 * i, "%02x", md[i]);
}

/* An image: config + two random layers, pushed, manifest put by tag
 * (when tag) and returned (body and digest). */
struct image {
	char digest[BERTH_REG_DIGEST_MAX];
	char *body;
	size_t len;
	char layer[2][BERTH_REG_DIGEST_MAX];
	char config[BERTH_REG_DIGEST_MAX];
};

static int
push_image(struct berth_reg *r, const char *repo, const char *tag,
	   const char *arch, size_t l1, size_t l2, uint64_t seed,
	   struct image *im)
{
	char err[512];
	char cfg[512];
	int n = snprintf(cfg, sizeof(cfg),
			 "{\"architecture\":\"%s\",\"os\":\"linux\","
			 "\"created\":\"2024-01-0%dT00:00:00Z\","
			 "\"rootfs\":{\"type\":\"layers\",\"diff_ids\":[]}}",
			 arch, (int)(seed % 9) + 1);
	memset(im, 0, sizeof(*im));
	int rc = berth_reg_blob_push(r, repo, cfg, (size_t)n, NULL, im->config,
				     err, sizeof(err));
	if (rc) {
		fprintf(stderr, "push config: %s\n", err);
		return rc;
	}
	size_t sizes[2] = {l1, l2};
	for (int i = 0; i < 2; i++) {
		char *b = random_blob(sizes[i], seed * 7 + (uint64_t)i);
		rc = berth_reg_blob_push(r, repo, b, sizes[i], NULL,
					 im->layer[i], err, sizeof(err));
		free(b);
		if (rc) {
			fprintf(stderr, "push layer: %s\n", err);
			return rc;
		}
	}
	char *m = NULL;
	if (asprintf(&m,
		     "{\"schemaVersion\":2,\"mediaType\":\"%s\","
		     "\"config\":{\"mediaType\":"
		     "\"application/vnd.oci.image.config.v1+json\","
		     "\"digest\":\"%s\",\"size\":%d},"
		     "\"layers\":["
		     "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+"
		     "gzip\",\"digest\":\"%s\",\"size\":%zu},"
		     "{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+"
		     "gzip\",\"digest\":\"%s\",\"size\":%zu}]}",
		     BERTH_REG_MT_OCI_MANIFEST, im->config, n, im->layer[0], l1,
		     im->layer[1], l2) < 0)
		return BERTH_REG_NOMEM;
	im->body = m;
	im->len = strlen(m);
	berth_reg_digest_of(m, im->len, im->digest);
	rc = berth_reg_manifest_put(r, repo, tag ? tag : im->digest,
				    BERTH_REG_MT_OCI_MANIFEST, m, im->len,
				    NULL, err, sizeof(err));
	if (rc)
		fprintf(stderr, "put manifest: %s\n", err);
	return rc;
}

/* What a replication does: children first, blobs, then the manifest. */
static int
copy_ref(struct berth_reg *src, const char *srepo, struct berth_reg *dst,
	 const char *drepo, const char *ref,
	 const struct berth_reg_copy_options *o, int *copied, int *skipped,
	 int *mounted, char *err, size_t errlen)
{
	struct berth_reg_manifest m;
	int rc = berth_reg_manifest_get(src, srepo, ref, &m, err, errlen);
	if (rc)
		return rc;
	for (size_t i = 0; !rc && i < m.n_manifests; i++)
		rc = copy_ref(src, srepo, dst, drepo, m.manifests[i].digest, o,
			      copied, skipped, mounted, err, errlen);
	if (!rc && !m.is_index) {
		struct berth_reg_descriptor *all[64];
		size_t n = 0;
		all[n++] = &m.config;
		for (size_t i = 0; i < m.n_layers && n < 64; i++)
			all[n++] = &m.layers[i];
		for (size_t i = 0; !rc && i < n; i++) {
			struct berth_reg_copy_stats st;
			rc = berth_reg_blob_copy(src, srepo, dst, drepo, all[i],
						 o, &st, err, errlen);
			if (getenv("REGDEBUG"))
				fprintf(stderr, "  blob %s -> %s: %lld bytes %lld ms%s%s\n",
					all[i]->digest + 7, drepo, st.bytes,
					st.elapsed_ms, st.skipped ? " skipped" : "",
					st.mounted ? " mounted" : "");
			if (!rc) {
				*copied += !st.skipped && !st.mounted;
				*skipped += st.skipped;
				*mounted += st.mounted;
			}
		}
	}
	if (!rc)
		rc = berth_reg_manifest_put(dst, drepo, ref, m.media_type,
					    m.body, m.len, NULL, err, errlen);
	berth_reg_manifest_fini(&m);
	return rc;
}

static struct berth_reg *
handle(const char *url, const char *user, const char *pw)
{
	char err[256];
	struct berth_reg_options o = {
		.url = url,
		.username = user,
		.password = pw,
		.backoff_ms = 50,
	};
	struct berth_reg *r = berth_reg_new(&o, err, sizeof(err));
	if (!r)
		fprintf(stderr, "berth_reg_new(%s): %s\n", url, err);
	return r;
}

static char *
blob_path(const struct regproc *p, const char *digest)
{
	char *s = NULL;
	if (asprintf(&s, "%s/docker/registry/v2/blobs/sha256/%.2s/%s/data",
		     p->root, digest + 7, digest + 7) < 0)
		return NULL;
	return s;
}

/* the blob is in the registry's blob store (committed by anyone) */
static bool
blob_stored(const struct regproc *p, const char *digest)
{
	char *path = blob_path(p, digest);
	struct stat sb;
	bool ok = path && stat(path, &sb) == 0;
	free(path);
	return ok;
}

static long
vm_hwm_kb(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kb = -1;
	while (f && fgets(line, sizeof(line), f))
		if (strncmp(line, "VmHWM:", 6) == 0)
			kb = strtol(line + 6, NULL, 10);
	if (f)
		fclose(f);
	return kb;
}

static bool
reset_hwm(void)
{
	int fd = open("/proc/self/clear_refs", O_WRONLY);
	if (fd < 0)
		return false;
	bool ok = write(fd, "5", 1) == 1;
	close(fd);
	return ok;
}

static long long
now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- cancel ------------------------------------------------------------------ */

static atomic_bool stop_flag;
static long long stop_at_ms;

static bool
stop_cb(void *ud)
{
	(void)ud;
	return atomic_load(&stop_flag);
}

static void
stop_after_1mib(void *ud, long long bytes)
{
	(void)ud;
	if (bytes > MiB && !atomic_load(&stop_flag)) {
		stop_at_ms = now_ms();
		atomic_store(&stop_flag, true);
	}
}

static long long progress_last;
static void
progress_cb(void *ud, long long bytes)
{
	(void)ud;
	progress_last = bytes;
}

/* ---- the tests ---------------------------------------------------------------- */

static void
test_helpers(void)
{
	CHECK(berth_reg_valid_repo("library/app"));
	CHECK(berth_reg_valid_repo("a/b-c/d__e.f"));
	CHECK(!berth_reg_valid_repo("Library/app"));
	CHECK(!berth_reg_valid_repo("a//b"));
	CHECK(!berth_reg_valid_repo("a/"));
	CHECK(!berth_reg_valid_repo("-a"));
	CHECK(!berth_reg_valid_repo("a___b"));
	CHECK(berth_reg_valid_tag("v1.0_rc-1"));
	CHECK(!berth_reg_valid_tag(".v1"));
	CHECK(!berth_reg_valid_tag("a:b"));
	char d[BERTH_REG_DIGEST_MAX];
	berth_reg_digest_of("", 0, d);
	CHECK_STR(d, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca"
		     "495991b7852b855");
	CHECK(berth_reg_is_digest(d));
	CHECK(!berth_reg_is_digest("sha256:E3B0"));
	CHECK_STR(berth_reg_result_name(BERTH_REG_DIGEST_MISMATCH),
		  "DIGEST_MISMATCH");
	char err[256];
	struct berth_reg_options o = {.url = "ftp://x"};
	CHECK(!berth_reg_new(&o, err, sizeof(err)));
	CHECK_CONTAINS(err, "http://");
	o.url = "http://u:p@host";
	CHECK(!berth_reg_new(&o, err, sizeof(err)));
	CHECK_CONTAINS(err, "credentials");
	o.url = "https://Reg.Example:443/";
	struct berth_reg *a = berth_reg_new(&o, err, sizeof(err));
	o.url = "https://reg.example";
	struct berth_reg *b = berth_reg_new(&o, err, sizeof(err));
	CHECK(a && b && berth_reg_same_registry(a, b));
	CHECK_STR(berth_reg_url(a), "https://reg.example:443");
	berth_reg_free(a);
	berth_reg_free(b);

	/* parse: an index with platforms, a foreign layer */
	const char *idx =
		"{\"schemaVersion\":2,\"mediaType\":\"" BERTH_REG_MT_DOCKER_LIST
		"\",\"manifests\":[{\"mediaType\":\"" BERTH_REG_MT_DOCKER_MANIFEST
		"\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e"
		"4649b934ca495991b7852b855\",\"size\":7,\"platform\":{\"os\":"
		"\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}}]}";
	struct berth_reg_manifest m;
	CHECK(berth_reg_manifest_parse(idx, strlen(idx), NULL, &m, err,
				       sizeof(err)) == 0);
	CHECK(m.is_index && m.n_manifests == 1);
	if (m.n_manifests == 1) {
		CHECK_STR(m.manifests[0].arch, "arm");
		CHECK_STR(m.manifests[0].variant, "v7");
		CHECK(m.manifests[0].size == 7);
	}
	berth_reg_manifest_fini(&m);
	const char *s1 = "{\"schemaVersion\":1,\"name\":\"x\"}";
	CHECK(berth_reg_manifest_parse(s1, strlen(s1), NULL, &m, err,
				       sizeof(err)) == BERTH_REG_UNSUPPORTED);
	const char *bad = "{\"schemaVersion\":2,\"config\":{\"digest\":\"x\"}}";
	CHECK(berth_reg_manifest_parse(bad, strlen(bad), NULL, &m, err,
				       sizeof(err)) == BERTH_REG_PROTOCOL);
}

static void
test_manifests_and_tags(struct berth_reg *a)
{
	char err[512];
	CHECK_MSG(berth_reg_ping(a, err, sizeof(err)) == 0, "%s", err);
	struct image im;
	CHECK(push_image(a, "lib/app", "v1", "amd64", 100000, 1 * MiB, 11,
			 &im) == 0);
	struct berth_reg_manifest m;
	int rc = berth_reg_manifest_get(a, "lib/app", "v1", &m, err,
					sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	if (!rc) {
		CHECK_STR(m.digest, im.digest);
		CHECK(m.len == im.len && memcmp(m.body, im.body, m.len) == 0);
		CHECK_STR(m.media_type, BERTH_REG_MT_OCI_MANIFEST);
		CHECK(!m.is_index && m.n_layers == 2);
		CHECK_STR(m.config.digest, im.config);
		if (m.n_layers == 2) {
			CHECK_STR(m.layers[1].digest, im.layer[1]);
			CHECK(m.layers[1].size == 1 * MiB);
		}
		berth_reg_manifest_fini(&m);
	}
	rc = berth_reg_manifest_get(a, "lib/app", im.digest, &m, err,
				    sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	berth_reg_manifest_fini(&m);
	bool exists = false;
	char d[BERTH_REG_DIGEST_MAX];
	CHECK(berth_reg_manifest_head(a, "lib/app", "v1", &exists, d, err,
				      sizeof(err)) == 0);
	CHECK(exists);
	CHECK_STR(d, im.digest);
	CHECK(berth_reg_manifest_head(a, "lib/app", "nope", &exists, d, err,
				      sizeof(err)) == 0);
	CHECK(!exists);
	rc = berth_reg_manifest_get(a, "lib/app", "nope", &m, err,
				    sizeof(err));
	CHECK(rc == BERTH_REG_NOT_FOUND);
	CHECK_CONTAINS(err, "404 MANIFEST_UNKNOWN");
	CHECK_CONTAINS(err, "lib/app:nope");
	/* a manifest put by a digest that is not the body's */
	CHECK(berth_reg_manifest_put(a, "lib/app", im.config, NULL, im.body,
				     im.len, NULL, err, sizeof(err)) ==
	      BERTH_REG_DIGEST_MISMATCH);

	/* an index with two children (one more platform) */
	struct image arm;
	CHECK(push_image(a, "lib/app", NULL, "arm64", 5000, 7000, 12, &arm) ==
	      0);
	char *idx = NULL;
	CHECK(asprintf(&idx,
		       "{\"schemaVersion\":2,\"mediaType\":\"%s\",\"manifests\":["
		       "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
		       "\"platform\":{\"architecture\":\"amd64\",\"os\":"
		       "\"linux\"}},"
		       "{\"mediaType\":\"%s\",\"digest\":\"%s\",\"size\":%zu,"
		       "\"platform\":{\"architecture\":\"arm64\",\"os\":"
		       "\"linux\",\"variant\":\"v8\"}}]}",
		       BERTH_REG_MT_OCI_INDEX, BERTH_REG_MT_OCI_MANIFEST,
		       im.digest, im.len, BERTH_REG_MT_OCI_MANIFEST, arm.digest,
		       arm.len) > 0);
	char idigest[BERTH_REG_DIGEST_MAX];
	rc = berth_reg_manifest_put(a, "lib/app", "multi", NULL, idx,
				    strlen(idx), idigest, err, sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	rc = berth_reg_manifest_get(a, "lib/app", "multi", &m, err,
				    sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	if (!rc) {
		CHECK(m.is_index && m.n_manifests == 2);
		CHECK_STR(m.digest, idigest);
		CHECK_STR(m.media_type, BERTH_REG_MT_OCI_INDEX);
		if (m.n_manifests == 2) {
			CHECK_STR(m.manifests[0].arch, "amd64");
			CHECK_STR(m.manifests[1].arch, "arm64");
			CHECK_STR(m.manifests[1].variant, "v8");
			CHECK_STR(m.manifests[1].os, "linux");
			CHECK_STR(m.manifests[1].digest, arm.digest);
		}
		berth_reg_manifest_fini(&m);
	}
	free(idx);

	/* tags, 3 a page: v1, multi, t0..t5 */
	for (int i = 0; i < 6; i++) {
		char tag[8];
		snprintf(tag, sizeof(tag), "t%d", i);
		CHECK(berth_reg_manifest_put(a, "lib/app", tag, NULL, im.body,
					     im.len, NULL, err,
					     sizeof(err)) == 0);
	}
	char **tags = NULL;
	size_t nt = 0;
	rc = berth_reg_tags(a, "lib/app", 3, &tags, &nt, err, sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	CHECK_MSG(nt == 8, "%zu tags", nt);
	int seen = 0;
	for (size_t i = 0; i < nt; i++)
		seen += strcmp(tags[i], "v1") == 0 ||
			strcmp(tags[i], "multi") == 0 ||
			(tags[i][0] == 't' && tags[i][1] >= '0' &&
			 tags[i][1] <= '5' && tags[i][2] == '\0');
	CHECK(seen == 8);
	berth_reg_strv_free(tags, nt);
	CHECK(berth_reg_tags(a, "no/such", 0, &tags, &nt, err, sizeof(err)) ==
	      BERTH_REG_NOT_FOUND);
	CHECK_CONTAINS(err, "NAME_UNKNOWN");
	free(im.body);
	free(arm.body);
}

static void
test_copy(struct berth_reg *a, struct berth_reg *b)
{
	char err[512];
	/* lib/app:multi (index + 2 images) monolithic to B */
	int copied = 0, skipped = 0, mounted = 0;
	struct berth_reg_copy_options o = {.progress = progress_cb};
	int rc = copy_ref(a, "lib/app", b, "mirror/app", "multi", &o, &copied,
			  &skipped, &mounted, err, sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	CHECK_MSG(copied == 6 && skipped == 0 && mounted == 0,
		  "copied %d skipped %d mounted %d", copied, skipped, mounted);
	struct berth_reg_manifest m, m2;
	CHECK(berth_reg_manifest_get(a, "lib/app", "multi", &m, err,
				     sizeof(err)) == 0);
	rc = berth_reg_manifest_get(b, "mirror/app", "multi", &m2, err,
				    sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	CHECK_STR(m2.digest, m.digest);
	berth_reg_manifest_fini(&m2);
	/* every blob of the amd64 child readable at B, digest verified */
	struct berth_reg_manifest c;
	CHECK(berth_reg_manifest_get(b, "mirror/app", m.manifests[0].digest,
				     &c, err, sizeof(err)) == 0);
	for (size_t i = 0; i < c.n_layers; i++) {
		char *body = NULL;
		size_t len = 0;
		rc = berth_reg_blob_read(b, "mirror/app", c.layers[i].digest,
					 4 * MiB, &body, &len, err, sizeof(err));
		CHECK_MSG(rc == 0, "%s", err);
		CHECK((long long)len == c.layers[i].size);
		free(body);
	}
	CHECK(progress_last > 0);

	/* again: every blob skipped */
	copied = skipped = mounted = 0;
	rc = copy_ref(a, "lib/app", b, "mirror/app", "multi", &o, &copied,
		      &skipped, &mounted, err, sizeof(err));
	CHECK_MSG(rc == 0 && copied == 0 && skipped == 6,
		  "rc %d copied %d skipped %d: %s", rc, copied, skipped, err);

	/* chunked (uneven chunks of 300,000 bytes) to another repository */
	struct berth_reg_copy_options ch = {.chunk_bytes = 300000};
	copied = skipped = mounted = 0;
	rc = copy_ref(a, "lib/app", b, "chunked/app", "v1", &ch, &copied,
		      &skipped, &mounted, err, sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	CHECK(copied == 3);
	if (c.n_layers == 2) {
		bool ex = false;
		long long sz = -1;
		CHECK(berth_reg_blob_head(b, "chunked/app", c.layers[1].digest,
					  &ex, &sz, err, sizeof(err)) == 0);
		CHECK(ex && sz == 1 * MiB);
		char *body = NULL;
		size_t len = 0;
		rc = berth_reg_blob_read(b, "chunked/app", c.layers[1].digest,
					 4 * MiB, &body, &len, err, sizeof(err));
		CHECK_MSG(rc == 0 && len == 1 * MiB, "%s", err);
		free(body);
		/* too small a cap */
		CHECK(berth_reg_blob_read(b, "chunked/app", c.layers[1].digest,
					  1000, &body, &len, err,
					  sizeof(err)) == BERTH_REG_TOO_LARGE);
	}
	berth_reg_manifest_fini(&c);

	/* mount within A: same handle, and two handles on the registry */
	copied = skipped = mounted = 0;
	rc = copy_ref(a, "lib/app", a, "other/app", "v1", NULL, &copied,
		      &skipped, &mounted, err, sizeof(err));
	CHECK_MSG(rc == 0 && mounted == 3 && copied == 0,
		  "rc %d mounted %d copied %d: %s", rc, mounted, copied, err);
	struct berth_reg *a2 = berth_reg_dup(a);
	CHECK(a2 && berth_reg_same_registry(a, a2));
	copied = skipped = mounted = 0;
	rc = copy_ref(a, "lib/app", a2, "third/app", "v1", NULL, &copied,
		      &skipped, &mounted, err, sizeof(err));
	CHECK_MSG(rc == 0 && mounted == 3, "rc %d mounted %d: %s", rc, mounted,
		  err);
	/* no mount asked: a real copy within one registry, one handle */
	struct berth_reg_copy_options nm = {.no_mount = true};
	copied = skipped = mounted = 0;
	rc = copy_ref(a, "lib/app", a, "fourth/app", "v1", &nm, &copied,
		      &skipped, &mounted, err, sizeof(err));
	CHECK_MSG(rc == 0 && copied == 3, "rc %d copied %d: %s", rc, copied,
		  err);
	berth_reg_free(a2);

	/* an empty blob */
	char ed[BERTH_REG_DIGEST_MAX];
	CHECK(berth_reg_blob_push(a, "lib/app", "", 0, NULL, ed, err,
				  sizeof(err)) == 0);
	struct berth_reg_descriptor e = {.size = 0};
	snprintf(e.digest, sizeof(e.digest), "%s", ed);
	struct berth_reg_copy_stats st;
	rc = berth_reg_blob_copy(a, "lib/app", b, "mirror/app", &e, NULL, &st,
				 err, sizeof(err));
	CHECK_MSG(rc == 0 && !st.skipped, "%s", err);
	bool ex = false;
	CHECK(berth_reg_blob_head(b, "mirror/app", ed, &ex, NULL, err,
				  sizeof(err)) == 0 && ex);

	/* a missing read callback */
	CHECK(berth_reg_blob_upload(b, "mirror/app", ed, 1, NULL, NULL, NULL,
				    err, sizeof(err)) == BERTH_REG_INVALID);

	/* delete: by tag refused, by digest works, then NOT_FOUND */
	CHECK(berth_reg_manifest_delete(b, "mirror/app", "multi", err,
					sizeof(err)) == BERTH_REG_INVALID);
	CHECK(berth_reg_manifest_delete(b, "mirror/app", m.digest, err,
					sizeof(err)) == 0);
	CHECK(berth_reg_manifest_get(b, "mirror/app", "multi", &m2, err,
				     sizeof(err)) == BERTH_REG_NOT_FOUND);
	CHECK(berth_reg_manifest_delete(b, "mirror/app", m.digest, err,
					sizeof(err)) == BERTH_REG_NOT_FOUND);
	berth_reg_manifest_fini(&m);
}

/* a source of bytes whose digest is declared wrong */
struct memsrc {
	const char *p;
	size_t left;
};

static size_t
mem_read(void *ud, char *buf, size_t len)
{
	struct memsrc *m = ud;
	size_t n = len < m->left ? len : m->left;
	memcpy(buf, m->p, n);
	m->p += n;
	m->left -= n;
	return n;
}

static void
test_upload_mismatch(struct regproc *pb, struct berth_reg *b)
{
	char err[512];
	size_t n = 300000;
	char *data = random_blob(n, 77);
	char wrong[BERTH_REG_DIGEST_MAX];
	berth_reg_digest_of(data, n - 1, wrong);
	for (int chunked = 0; chunked < 2; chunked++) {
		struct memsrc m = {data, n};
		struct berth_reg_copy_options o = {
			.chunk_bytes = chunked ? 100000 : 0};
		int rc = berth_reg_blob_upload(b, "up/app", wrong, (long long)n,
					       mem_read, &m, &o, err,
					       sizeof(err));
		CHECK_MSG(rc == BERTH_REG_DIGEST_MISMATCH, "rc %d: %s", rc,
			  err);
		CHECK_CONTAINS(err, "nothing committed");
		bool ex = true;
		CHECK(berth_reg_blob_head(b, "up/app", wrong, &ex, NULL, err,
					  sizeof(err)) == 0 && !ex);
	}
	char right[BERTH_REG_DIGEST_MAX];
	berth_reg_digest_of(data, n, right);
	CHECK(!blob_stored(pb, wrong) && !blob_stored(pb, right));
	/* the right digest, size unknown (chunked transfer encoding) */
	struct memsrc m = {data, n};
	int rc = berth_reg_blob_upload(b, "up/app", right, -1, mem_read, &m,
				       NULL, err, sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	bool ex = false;
	long long sz = 0;
	CHECK(berth_reg_blob_head(b, "up/app", right, &ex, &sz, err,
				  sizeof(err)) == 0 && ex && sz == (long long)n);
	/* size unknown, chunked: PATCHes without Content-Range (the last
	 * one empty: 300,000 is 3 chunks of 100,000) */
	struct memsrc m2 = {data, n};
	struct berth_reg_copy_options o = {.chunk_bytes = 100000};
	rc = berth_reg_blob_upload(b, "up2/app", right, -1, mem_read, &m2, &o,
				   err, sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	CHECK(berth_reg_blob_head(b, "up2/app", right, &ex, &sz, err,
				  sizeof(err)) == 0 && ex && sz == (long long)n);
	free(data);
}

static void
test_corrupt(struct regproc *pa, struct berth_reg *a, struct regproc *pb,
	     struct berth_reg *b)
{
	char err[512];
	size_t n = 3 * MiB + 123; /* larger than the ring */
	char *data = random_blob(n, 1234);
	char d[BERTH_REG_DIGEST_MAX];
	CHECK(berth_reg_blob_push(a, "bad/app", data, n, NULL, d, err,
				  sizeof(err)) == 0);
	free(data);
	char *path = blob_path(pa, d);
	/* flip one byte near the end */
	int fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	char c;
	CHECK(pread(fd, &c, 1, (off_t)n - 10) == 1);
	c ^= 0x5a;
	CHECK(pwrite(fd, &c, 1, (off_t)n - 10) == 1);
	close(fd);
	struct berth_reg_descriptor desc = {.size = (long long)n};
	snprintf(desc.digest, sizeof(desc.digest), "%s", d);
	for (int chunked = 0; chunked < 2; chunked++) {
		struct berth_reg_copy_options o = {
			.chunk_bytes = chunked ? 1 * MiB : 0};
		struct berth_reg_copy_stats st;
		int rc = berth_reg_blob_copy(a, "bad/app", b, "bad/app", &desc,
					     &o, &st, err, sizeof(err));
		CHECK_MSG(rc == BERTH_REG_DIGEST_MISMATCH, "rc %d: %s", rc,
			  err);
		CHECK_CONTAINS(err, "digest mismatch");
		CHECK_CONTAINS(err, "bad/app");
		CHECK_CONTAINS(err, "nothing committed");
		CHECK(st.retries == 0);
		bool ex = true;
		CHECK(berth_reg_blob_head(b, "bad/app", d, &ex, NULL, err,
					  sizeof(err)) == 0);
		CHECK(!ex);
	}
	CHECK(!blob_stored(pb, d));
	/* the blob's data file replaced by a symbolic link to itself
	 * (ELOOP): the source answers 500; the whole blob is retried, then
	 * the error says so */
	char *moved = NULL;
	CHECK(asprintf(&moved, "%s.moved", path) > 0);
	CHECK(rename(path, moved) == 0 && symlink(path, path) == 0);
	struct berth_reg_options ro = {
		.url = pa->url, .max_retries = 2, .backoff_ms = 20};
	struct berth_reg *a2 = berth_reg_new(&ro, err, sizeof(err));
	struct berth_reg_options wo = {
		.url = pb->url, .max_retries = 2, .backoff_ms = 20};
	struct berth_reg *b2 = berth_reg_new(&wo, err, sizeof(err));
	struct berth_reg_copy_stats rs;
	int rc5 = berth_reg_blob_copy(a2, "bad/app", b2, "bad/app", &desc, NULL,
				      &rs, err, sizeof(err));
	CHECK_MSG(rc5 == BERTH_REG_TRANSPORT && rs.retries == 2,
		  "rc %d retries %d: %s", rc5, rs.retries, err);
	CHECK_CONTAINS(err, ": 500");
	fprintf(stderr, "  source 500: %s\n", err);
	berth_reg_free(a2);
	berth_reg_free(b2);
	CHECK(unlink(path) == 0 && rename(moved, path) == 0);
	free(moved);
	/* truncated by one byte: the size no longer matches */
	CHECK(truncate(path, (off_t)n - 1) == 0);
	struct berth_reg_copy_stats st;
	int rc = berth_reg_blob_copy(a, "bad/app", b, "bad/app", &desc, NULL,
				     &st, err, sizeof(err));
	CHECK_MSG(rc == BERTH_REG_DIGEST_MISMATCH, "rc %d: %s", rc, err);
	bool ex = true;
	CHECK(berth_reg_blob_head(b, "bad/app", d, &ex, NULL, err,
				  sizeof(err)) == 0 && !ex);
	free(path);

	/* a manifest whose stored bytes changed: GET by tag and by digest */
	struct image im;
	CHECK(push_image(a, "bad/img", "v1", "amd64", 1000, 2000, 31, &im) ==
	      0);
	path = blob_path(pa, im.digest);
	fd = open(path, O_RDWR);
	CHECK(fd >= 0);
	/* "amd64"... no: change the layer media type's "tar" to "taR" */
	char *p = strstr(im.body, "tar+gzip");
	CHECK(p != NULL);
	if (p && fd >= 0)
		CHECK(pwrite(fd, "taR", 3, p - im.body) == 3);
	if (fd >= 0)
		close(fd);
	struct berth_reg_manifest m;
	rc = berth_reg_manifest_get(a, "bad/img", "v1", &m, err, sizeof(err));
	CHECK_MSG(rc == BERTH_REG_DIGEST_MISMATCH, "rc %d: %s", rc, err);
	rc = berth_reg_manifest_get(a, "bad/img", im.digest, &m, err,
				    sizeof(err));
	CHECK_MSG(rc == BERTH_REG_DIGEST_MISMATCH, "rc %d: %s", rc, err);
	CHECK_CONTAINS(err, "digest mismatch");
	free(path);
	free(im.body);
}

static void
test_auth(struct regproc *pc, struct berth_reg *a)
{
	char err[512];
	struct berth_reg *wrong = handle(pc->url, "alice", "wrong-pw-XYZ");
	int rc = berth_reg_ping(wrong, err, sizeof(err));
	CHECK(rc == BERTH_REG_UNAUTHORIZED);
	CHECK_CONTAINS(err, "401");
	CHECK_CONTAINS(err, "check the credentials");
	CHECK_CONTAINS(err, pc->url);
	CHECK(!strstr(err, "wrong-pw-XYZ"));
	struct berth_reg_manifest m;
	rc = berth_reg_manifest_get(wrong, "lib/app", "v1", &m, err,
				    sizeof(err));
	CHECK(rc == BERTH_REG_UNAUTHORIZED);
	CHECK(!strstr(err, "wrong-pw-XYZ"));
	fprintf(stderr, "  wrong password: %s\n", err);
	berth_reg_free(wrong);

	struct berth_reg *anon = handle(pc->url, NULL, NULL);
	rc = berth_reg_ping(anon, err, sizeof(err));
	CHECK(rc == BERTH_REG_UNAUTHORIZED);
	CHECK_CONTAINS(err, "none are configured");
	berth_reg_free(anon);

	struct berth_reg *c = handle(pc->url, "alice", "s3cret pw:x");
	rc = berth_reg_ping(c, err, sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	/* a copy into the registry with basic auth (the streamed PUT needs
	 * the credentials the POST learned) */
	int copied = 0, skipped = 0, mounted = 0;
	struct berth_reg *c2 = handle(pc->url, "alice", "s3cret pw:x");
	struct berth_reg_copy_options ch = {.chunk_bytes = 400000};
	rc = copy_ref(a, "lib/app", c2, "auth/app", "multi", &ch, &copied,
		      &skipped, &mounted, err, sizeof(err));
	CHECK_MSG(rc == 0 && copied == 6, "rc %d copied %d: %s", rc, copied,
		  err);
	rc = berth_reg_manifest_get(c, "auth/app", "multi", &m, err,
				    sizeof(err));
	CHECK_MSG(rc == 0 && m.is_index, "%s", err);
	berth_reg_manifest_fini(&m);
	char **tags = NULL;
	size_t nt = 0;
	rc = berth_reg_tags(c, "auth/app", 1, &tags, &nt, err, sizeof(err));
	CHECK_MSG(rc == 0 && nt == 1, "%s", err);
	berth_reg_strv_free(tags, nt);
	berth_reg_free(c2);
	berth_reg_free(c);
}

static void
test_bearer(struct regproc *pd, struct berth_reg *a)
{
	char err[512];
	struct token_server *ts = pd->ts;
	struct berth_reg *d = handle(pd->url, "bob", "t0ken pw");
	int rc = berth_reg_ping(d, err, sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	int t0 = token_server_issued(ts);
	CHECK(t0 == 1);
	struct image im, im2;
	CHECK(push_image(d, "lib/app", "v1", "amd64", 3000, 200000, 51, &im) ==
	      0);
	int t1 = token_server_issued(ts);
	/* pull (HEAD) and pull,push (POST, PUT, manifest PUT) */
	CHECK_MSG(t1 - t0 == 2, "%d tokens", t1 - t0);
	CHECK(push_image(d, "lib/app", "v2", "arm64", 3000, 2000, 52, &im2) ==
	      0);
	struct berth_reg_manifest m;
	rc = berth_reg_manifest_get(d, "lib/app", "v1", &m, err, sizeof(err));
	CHECK_MSG(rc == 0, "%s", err);
	CHECK_STR(m.digest, im.digest);
	berth_reg_manifest_fini(&m);
	char **tags = NULL;
	size_t nt = 0;
	rc = berth_reg_tags(d, "lib/app", 1, &tags, &nt, err, sizeof(err));
	CHECK_MSG(rc == 0 && nt == 2, "%s", err);
	berth_reg_strv_free(tags, nt);
	CHECK_MSG(token_server_issued(ts) == t1, "%d more tokens",
		  token_server_issued(ts) - t1);
	/* a duplicate handle has the cached tokens */
	struct berth_reg *d2 = berth_reg_dup(d);
	bool ex = false;
	CHECK(berth_reg_manifest_head(d2, "lib/app", "v2", &ex, NULL, err,
				      sizeof(err)) == 0 && ex);
	CHECK(token_server_issued(ts) == t1);
	/* a copy into it (monolithic, then chunked), a mount within it
	 * (the source repository's pull scope joins), a delete */
	int copied = 0, skipped = 0, mounted = 0;
	rc = copy_ref(a, "lib/app", d2, "mirror/app", "multi", NULL, &copied,
		      &skipped, &mounted, err, sizeof(err));
	CHECK_MSG(rc == 0 && copied == 6, "rc %d copied %d: %s", rc, copied,
		  err);
	struct berth_reg_copy_options ch = {.chunk_bytes = 65536};
	copied = 0;
	rc = copy_ref(a, "lib/app", d2, "chunked/app", "v1", &ch, &copied,
		      &skipped, &mounted, err, sizeof(err));
	CHECK_MSG(rc == 0 && copied == 3, "rc %d copied %d: %s", rc, copied,
		  err);
	copied = mounted = 0;
	rc = copy_ref(d, "lib/app", d, "other/app", "v1", NULL, &copied,
		      &skipped, &mounted, err, sizeof(err));
	CHECK_MSG(rc == 0 && mounted == 3, "rc %d mounted %d: %s", rc, mounted,
		  err);
	CHECK(berth_reg_manifest_delete(d, "other/app", im.digest, err,
					sizeof(err)) == 0);
	CHECK(berth_reg_manifest_head(d, "other/app", "v1", &ex, NULL, err,
				      sizeof(err)) == 0 && !ex);
	berth_reg_free(d2);
	berth_reg_free(d);

	/* the wrong password: the token service refuses */
	struct berth_reg *w = handle(pd->url, "bob", "wrong-XYZ");
	int r0 = token_server_refused(ts);
	rc = berth_reg_manifest_get(w, "lib/app", "v1", &m, err, sizeof(err));
	CHECK(rc == BERTH_REG_UNAUTHORIZED);
	CHECK_CONTAINS(err, "token service");
	CHECK_CONTAINS(err, "check the credentials");
	CHECK(!strstr(err, "wrong-XYZ"));
	CHECK(token_server_refused(ts) > r0);
	fprintf(stderr, "  bearer, wrong password: %s\n", err);
	berth_reg_free(w);
	/* a static bearer token that is not one */
	struct berth_reg_options so = {.url = pd->url,
				       .bearer_token = "not-a-jwt"};
	w = berth_reg_new(&so, err, sizeof(err));
	rc = berth_reg_ping(w, err, sizeof(err));
	CHECK(rc == BERTH_REG_UNAUTHORIZED);
	CHECK(!strstr(err, "not-a-jwt"));
	berth_reg_free(w);
	free(im.body);
	free(im2.body);
}

static void
test_transport(void)
{
	char err[512], url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port());
	struct berth_reg_options o = {
		.url = url, .max_retries = 2, .backoff_ms = 30};
	struct berth_reg *r = berth_reg_new(&o, err, sizeof(err));
	long long t0 = now_ms();
	int rc = berth_reg_ping(r, err, sizeof(err));
	long long ms = now_ms() - t0;
	CHECK(rc == BERTH_REG_TRANSPORT);
	CHECK_CONTAINS(err, "3 attempts");
	CHECK_CONTAINS(err, url);
	CHECK_MSG(ms >= 30 + 60, "%lld ms", ms);
	berth_reg_free(r);
	/* cancel during the backoff */
	o.max_retries = 5;
	o.backoff_ms = 2000;
	o.cancel = stop_cb;
	r = berth_reg_new(&o, err, sizeof(err));
	atomic_store(&stop_flag, false);
	/* a stop already requested: nothing is sent, no backoff */
	t0 = now_ms();
	atomic_store(&stop_flag, true);
	rc = berth_reg_ping(r, err, sizeof(err));
	CHECK(rc == BERTH_REG_CANCELLED);
	CHECK(now_ms() - t0 < 1000);
	atomic_store(&stop_flag, false);
	berth_reg_free(r);
}

/* pushes a streamed pseudo-random blob of size bytes to r/repo */
static int
push_big(struct berth_reg *r, const char *repo, long long size, uint64_t seed,
	 struct berth_reg_descriptor *d)
{
	char err[512];
	memset(d, 0, sizeof(*d));
	d->size = size;
	gen_digest(seed, size, d->digest);
	struct gen g = {.s = seed | 1, .left = size};
	int rc = berth_reg_blob_upload(r, repo, d->digest, size, gen_read, &g,
				       NULL, err, sizeof(err));
	if (rc)
		fprintf(stderr, "push_big: %s\n", err);
	return rc;
}

static void
test_cancel_and_throttle(struct regproc *pb, struct berth_reg *a)
{
	char err[512];
	struct berth_reg_descriptor d;
	CHECK(push_big(a, "big/app", 8 * MiB, 4242, &d) == 0);
	struct berth_reg_options o = {
		.url = pb->url, .cancel = stop_cb, .backoff_ms = 50};
	struct berth_reg *b = berth_reg_new(&o, err, sizeof(err));
	atomic_store(&stop_flag, false);
	struct berth_reg_copy_options co = {
		.max_bytes_per_s = 8 * MiB,
		.progress = stop_after_1mib,
	};
	struct berth_reg_copy_stats st;
	long long t0 = now_ms();
	int rc = berth_reg_blob_copy(a, "big/app", b, "cancel/app", &d, &co,
				     &st, err, sizeof(err));
	long long end = now_ms();
	CHECK_MSG(rc == BERTH_REG_CANCELLED, "rc %d: %s", rc, err);
	CHECK_CONTAINS(err, "cancelled");
	CHECK_MSG(stop_at_ms > 0 && end - stop_at_ms < 1000,
		  "returned %lld ms after the stop", end - stop_at_ms);
	CHECK_MSG(end - t0 < 1500, "%lld ms", end - t0);
	atomic_store(&stop_flag, false);
	bool ex = true;
	CHECK(berth_reg_blob_head(b, "cancel/app", d.digest, &ex, NULL, err,
				  sizeof(err)) == 0 && !ex);
	CHECK(!blob_stored(pb, d.digest));

	/* throttle: 2 MiB of it at 4 MiB/s, shared bucket */
	struct berth_reg_descriptor d2;
	CHECK(push_big(a, "big/app", 2 * MiB, 4343, &d2) == 0);
	struct berth_reg_throttle *t = berth_reg_throttle_new(4 * MiB);
	struct berth_reg_copy_options to = {.throttle = t};
	t0 = now_ms();
	rc = berth_reg_blob_copy(a, "big/app", b, "slow/app", &d2, &to, &st,
				 err, sizeof(err));
	long long ms = now_ms() - t0;
	CHECK_MSG(rc == 0, "%s", err);
	/* 2 MiB at 4 MiB/s: 500 ms (minus the bucket's 100 ms credit) */
	CHECK_MSG(ms >= 350 && ms < 5000, "%lld ms", ms);
	fprintf(stderr, "  throttled copy: 2 MiB at 4 MiB/s in %lld ms\n", ms);
	berth_reg_throttle_free(t);
	berth_reg_free(b);
}

static void
test_big(struct berth_reg *a, struct berth_reg *b)
{
	char err[512];
	struct berth_reg_descriptor d;
	long long size = 32 * MiB + 17;
	long long t0 = now_ms();
	CHECK(push_big(a, "huge/app", size, 777, &d) == 0);
	long long t1 = now_ms();
	bool reset = reset_hwm();
	long before = vm_hwm_kb();
	struct berth_reg_copy_stats st;
	int rc = berth_reg_blob_copy(a, "huge/app", b, "huge/app", &d, NULL,
				     &st, err, sizeof(err));
	long long t2 = now_ms();
	long after = vm_hwm_kb();
	CHECK_MSG(rc == 0, "%s", err);
	CHECK(st.bytes == size);
	long growth = after - before;
	fprintf(stderr,
		"  32 MiB: push %lld ms, copy %lld ms (%.0f MB/s), peak RSS "
		"growth %ld KiB (hwm reset: %s)\n",
		t1 - t0, t2 - t1,
		(double)size / 1e6 / ((double)(t2 - t1 + 1) / 1000.0), growth,
		reset ? "yes" : "no");
	if (!UNDER_ASAN)
		CHECK_MSG(growth < 16 * 1024, "peak RSS grew by %ld KiB",
			  growth);
	bool ex = false;
	long long sz = 0;
	CHECK(berth_reg_blob_head(b, "huge/app", d.digest, &ex, &sz, err,
				  sizeof(err)) == 0 && ex && sz == size);
}

static int
bench(long long mb)
{
	struct regproc pa, pb;
	if (reg_start(&pa, NULL, NULL, false) || reg_start(&pb, NULL, NULL, false)) {
		fprintf(stderr, "cannot start docker-registry\n");
		return 1;
	}
	procs[0] = &pa;
	procs[1] = &pb;
	struct berth_reg *a = handle(pa.url, NULL, NULL);
	struct berth_reg *b = handle(pb.url, NULL, NULL);
	struct berth_reg_descriptor d;
	long long size = mb * MiB;
	long long t0 = now_ms();
	if (push_big(a, "bench/app", size, 99, &d))
		return 1;
	printf("push %lld MiB (streamed upload): %.1f MB/s\n", mb,
	       (double)size / 1e6 / ((double)(now_ms() - t0) / 1000.0));
	long long chunks[] = {0, 5 * MiB, 16 * MiB};
	const char *names[] = {"monolithic", "chunked 5 MiB",
			       "chunked 16 MiB"};
	for (int i = 0; i < 3; i++) {
		char repo[32], err[512];
		snprintf(repo, sizeof(repo), "bench/c%d", i);
		struct berth_reg_copy_options o = {.chunk_bytes = chunks[i]};
		struct berth_reg_copy_stats st;
		reset_hwm();
		long h0 = vm_hwm_kb();
		t0 = now_ms();
		int rc = berth_reg_blob_copy(a, "bench/app", b, repo, &d, &o,
					     &st, err, sizeof(err));
		long long ms = now_ms() - t0;
		if (rc) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
		printf("copy %lld MiB %-15s %6lld ms  %7.1f MB/s  peak RSS "
		       "+%ld KiB\n",
		       mb, names[i], ms,
		       (double)size / 1e6 / ((double)ms / 1000.0),
		       vm_hwm_kb() - h0);
	}
	berth_reg_free(a);
	berth_reg_free(b);
	stop_all();
	return 0;
}

int
main(int argc, char **argv)
{
	const char *bin = getenv("BERTH_DOCKER_REGISTRY");
	if (bin && *bin)
		registry_bin = bin;
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGPIPE, SIG_IGN);
	atexit(stop_all);
	if (argc == 3 && strcmp(argv[1], "--bench") == 0)
		return bench(atoll(argv[2]));

	test_helpers();
	struct regproc pa, pb, pc, pd;
	long long t0 = now_ms();
	if (reg_start(&pa, NULL, NULL, false)) {
		fprintf(stderr, "SKIP: cannot start %s\n", registry_bin);
		return 77;
	}
	procs[0] = &pa;
	CHECK(reg_start(&pb, NULL, NULL, false) == 0);
	procs[1] = &pb;
	CHECK(reg_start(&pc, "alice", "s3cret pw:x", false) == 0);
	procs[2] = &pc;
	CHECK(reg_start(&pd, "bob", "t0ken pw", true) == 0);
	procs[3] = &pd;
	fprintf(stderr, "registries up in %lld ms\n", now_ms() - t0);
	struct berth_reg *a = handle(pa.url, NULL, NULL);
	struct berth_reg *b = handle(pb.url, NULL, NULL);
	if (!a || !b)
		return 1;
#define STEP(label, call)                                                    \
	do {                                                                 \
		long long s0 = now_ms();                                     \
		call;                                                        \
		fprintf(stderr, "%s: %lld ms\n", label, now_ms() - s0);      \
	} while (0)
	STEP("manifests and tags", test_manifests_and_tags(a));
	STEP("copy", test_copy(a, b));
	STEP("upload mismatch", test_upload_mismatch(&pb, b));
	STEP("corrupt", test_corrupt(&pa, a, &pb, b));
	STEP("auth", test_auth(&pc, a));
	STEP("bearer", test_bearer(&pd, a));
	STEP("transport", test_transport());
	STEP("cancel and throttle", test_cancel_and_throttle(&pb, a));
	STEP("big", test_big(a, b));
	berth_reg_free(a);
	berth_reg_free(b);
	stop_all();
	TEST_DONE();
}
