/* token_server.c - see token_server.h. */
#define _GNU_SOURCE
#include "token_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct token_server {
	int fd;
	pthread_t th;
	atomic_bool stop;
	atomic_int issued;
	atomic_int refused;
	char realm[64];
	char issuer[64];
	char service[64];
	char basic[256]; /* expected base64(user:password) */
	char user[64];
	EVP_PKEY *key;
	char *x5c; /* base64 DER of the certificate */
};

static char *
b64(const unsigned char *in, size_t len, bool url)
{
	char *out = malloc(4 * ((len + 2) / 3) + 1);
	if (!out)
		return NULL;
	int n = EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	if (url) {
		while (n > 0 && out[n - 1] == '=')
			n--;
		out[n] = '\0';
		for (int i = 0; i < n; i++)
			out[i] = out[i] == '+' ? '-' : out[i] == '/' ? '_' : out[i];
	}
	return out;
}

static int
make_cert(struct token_server *t, const char *cert_path)
{
	t->key = EVP_RSA_gen(2048);
	X509 *x = X509_new();
	if (!t->key || !x)
		return -1;
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400);
	X509_set_pubkey(x, t->key);
	X509_NAME *name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"berth-test-token",
				   -1, -1, 0);
	X509_set_issuer_name(x, name);
	if (!X509_sign(x, t->key, EVP_sha256())) {
		X509_free(x);
		return -1;
	}
	FILE *f = fopen(cert_path, "w");
	if (!f || !PEM_write_X509(f, x)) {
		if (f)
			fclose(f);
		X509_free(x);
		return -1;
	}
	fclose(f);
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);
	X509_free(x);
	if (n <= 0)
		return -1;
	t->x5c = b64(der, (size_t)n, false);
	OPENSSL_free(der);
	return t->x5c ? 0 : -1;
}

static void
url_decode(char *s)
{
	char *o = s;
	for (; *s; s++) {
		if (*s == '%' && s[1] && s[2]) {
			char h[3] = {s[1], s[2], 0};
			*o++ = (char)strtol(h, NULL, 16);
			s += 2;
		} else if (*s == '+') {
			*o++ = ' ';
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* The "access" claim for the scope parameters of query. */
static void
access_claim(char *query, char *out, size_t outlen)
{
	size_t o = (size_t)snprintf(out, outlen, "[");
	bool first = true;
	char *save = NULL;
	for (char *p = strtok_r(query, "&", &save); p;
	     p = strtok_r(NULL, "&", &save)) {
		if (strncmp(p, "scope=", 6) != 0)
			continue;
		char *v = p + 6;
		url_decode(v);
		/* repository:<name>:<actions> */
		char *c1 = strchr(v, ':');
		char *c2 = strrchr(v, ':');
		if (!c1 || c1 == c2)
			continue;
		*c1 = *c2 = '\0';
		char acts[128] = "";
		size_t a = 0;
		/* actions, comma-separated */
		const char *s = c2 + 1;
		while (*s) {
			size_t n = strcspn(s, ",");
			a += (size_t)snprintf(acts + a, sizeof(acts) - a,
					      "%s\"%.*s\"", a ? "," : "",
					      (int)n, s);
			s += n;
			if (*s == ',')
				s++;
		}
		o += (size_t)snprintf(out + o, outlen - o,
				      "%s{\"type\":\"%s\",\"name\":\"%s\","
				      "\"actions\":[%s]}",
				      first ? "" : ",", v, c1 + 1, acts);
		first = false;
	}
	snprintf(out + o, outlen - o, "]");
}

static char *
sign_token(struct token_server *t, const char *access)
{
	static atomic_int jti;
	char hdr[4096], claims[8192];
	long now = (long)time(NULL);
	snprintf(hdr, sizeof(hdr),
		 "{\"typ\":\"JWT\",\"alg\":\"RS256\",\"x5c\":[\"%s\"]}", t->x5c);
	snprintf(claims, sizeof(claims),
		 "{\"iss\":\"%s\",\"sub\":\"%s\",\"aud\":\"%s\",\"exp\":%ld,"
		 "\"nbf\":%ld,\"iat\":%ld,\"jti\":\"t%d\",\"access\":%s}",
		 t->issuer, t->user, t->service, now + 300, now - 60, now,
		 atomic_fetch_add(&jti, 1), access);
	char *h = b64((unsigned char *)hdr, strlen(hdr), true);
	char *c = b64((unsigned char *)claims, strlen(claims), true);
	char *input = NULL;
	if (!h || !c || asprintf(&input, "%s.%s", h, c) < 0) {
		free(h);
		free(c);
		return NULL;
	}
	free(h);
	free(c);
	unsigned char sig[512];
	size_t siglen = sizeof(sig);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok = md && EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL,
					  t->key) == 1 &&
		 EVP_DigestSign(md, sig, &siglen, (unsigned char *)input,
				strlen(input)) == 1;
	EVP_MD_CTX_free(md);
	char *s = ok ? b64(sig, siglen, true) : NULL;
	char *tok = NULL;
	if (s && asprintf(&tok, "%s.%s", input, s) < 0)
		tok = NULL;
	free(s);
	free(input);
	return tok;
}

static void
respond(int fd, int status, const char *body)
{
	char head[256];
	int n = snprintf(head, sizeof(head),
			 "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n",
			 status, status == 200 ? "OK" : "Unauthorized",
			 strlen(body));
	if (write(fd, head, (size_t)n) < 0 ||
	    write(fd, body, strlen(body)) < 0)
		return;
}

static void
serve_one(struct token_server *t, int fd)
{
	char req[16384];
	size_t n = 0;
	while (n < sizeof(req) - 1) {
		ssize_t k = read(fd, req + n, sizeof(req) - 1 - n);
		if (k <= 0)
			break;
		n += (size_t)k;
		req[n] = '\0';
		if (strstr(req, "\r\n\r\n"))
			break;
	}
	req[n] = '\0';
	char *auth = strcasestr(req, "\r\nAuthorization: Basic ");
	bool ok = false;
	if (auth) {
		auth += 23;
		size_t l = strcspn(auth, "\r\n");
		ok = l == strlen(t->basic) && strncmp(auth, t->basic, l) == 0;
	}
	if (strncmp(req, "GET /token", 10) != 0 || !ok) {
		atomic_fetch_add(&t->refused, 1);
		respond(fd, 401,
			"{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":"
			"\"bad credentials\"}]}");
		return;
	}
	char *q = strchr(req, '?');
	char *sp = q ? strchr(q, ' ') : NULL;
	char query[8192] = "";
	if (q && sp && (size_t)(sp - q - 1) < sizeof(query))
		snprintf(query, sizeof(query), "%.*s", (int)(sp - q - 1), q + 1);
	char access[4096];
	access_claim(query, access, sizeof(access));
	char *tok = sign_token(t, access);
	if (!tok) {
		respond(fd, 401, "{}");
		return;
	}
	char *body = NULL;
	if (asprintf(&body, "{\"token\":\"%s\",\"expires_in\":300}", tok) > 0) {
		atomic_fetch_add(&t->issued, 1);
		respond(fd, 200, body);
	}
	free(body);
	free(tok);
}

static void *
serve(void *ud)
{
	struct token_server *t = ud;
	while (!atomic_load(&t->stop)) {
		struct pollfd p = {.fd = t->fd, .events = POLLIN};
		if (poll(&p, 1, 50) <= 0)
			continue;
		int c = accept(t->fd, NULL, NULL);
		if (c < 0)
			continue;
		serve_one(t, c);
		close(c);
	}
	return NULL;
}

struct token_server *
token_server_start(const char *cert_path, const char *issuer,
		   const char *service, const char *user, const char *password)
{
	struct token_server *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->fd = -1;
	snprintf(t->issuer, sizeof(t->issuer), "%s", issuer);
	snprintf(t->service, sizeof(t->service), "%s", service);
	snprintf(t->user, sizeof(t->user), "%s", user);
	char up[200];
	snprintf(up, sizeof(up), "%s:%s", user, password);
	char *bb = b64((unsigned char *)up, strlen(up), false);
	if (!bb)
		goto fail;
	snprintf(t->basic, sizeof(t->basic), "%s", bb);
	free(bb);
	if (make_cert(t, cert_path))
		goto fail;
	t->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET};
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	socklen_t len = sizeof(a);
	if (t->fd < 0 || bind(t->fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(t->fd, 64) || getsockname(t->fd, (struct sockaddr *)&a, &len))
		goto fail;
	snprintf(t->realm, sizeof(t->realm), "http://127.0.0.1:%d/token",
		 ntohs(a.sin_port));
	if (pthread_create(&t->th, NULL, serve, t))
		goto fail;
	return t;
fail:
	if (t->fd >= 0)
		close(t->fd);
	EVP_PKEY_free(t->key);
	free(t->x5c);
	free(t);
	return NULL;
}

const char *
token_server_realm(const struct token_server *t)
{
	return t->realm;
}

int
token_server_issued(const struct token_server *t)
{
	return atomic_load(&t->issued);
}

int
token_server_refused(const struct token_server *t)
{
	return atomic_load(&t->refused);
}

void
token_server_stop(struct token_server *t)
{
	if (!t)
		return;
	atomic_store(&t->stop, true);
	pthread_join(t->th, NULL);
	close(t->fd);
	EVP_PKEY_free(t->key);
	free(t->x5c);
	free(t);
}
