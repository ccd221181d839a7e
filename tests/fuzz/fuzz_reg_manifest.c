/* fuzz_reg_manifest.c - fuzz target for the registry client's manifest
 * parser (berth_reg_manifest_parse, plugins/registry/manifest.c): the code
 * berth_reg_manifest_get runs over every manifest body a registry sends,
 * with the Content-Type the registry sent.
 *
 * The first byte of the input picks the Content-Type (none, one of the
 * four manifest types, a generic type, Docker schema 1, a type with
 * parameters, an unknown one); the rest is the body.
 *
 * Properties: a refusal is one of the documented codes with a message and
 * leaves the manifest zeroed; an accepted manifest holds the exact bytes
 * (NUL-terminated) and their sha256, an index has manifests and no
 * config or layers, an image has a config, and every descriptor has a
 * valid digest and a size of -1 or more; fini is idempotent. The same body
 * gives the same answer twice (no hidden state). */
#include <stdbool.h>

#include <berth/registry.h>

#include "fuzz_common.h"

static const char *const content_types[] = {
	NULL,
	BERTH_REG_MT_OCI_INDEX,
	BERTH_REG_MT_OCI_MANIFEST,
	BERTH_REG_MT_DOCKER_LIST,
	BERTH_REG_MT_DOCKER_MANIFEST,
	"application/json",
	"application/octet-stream",
	"application/vnd.docker.distribution.manifest.v1+prettyjws",
	BERTH_REG_MT_OCI_MANIFEST "; charset=utf-8",
	"",
	"text/plain; charset=utf-8",
	"application/vnd.example.unknown+json",
};
#define N_TYPES (sizeof(content_types) / sizeof(content_types[0]))

static void
check_descriptor(const struct berth_reg_descriptor *d)
{
	if (!berth_reg_is_digest(d->digest))
		fuzz_fail("a descriptor without a valid digest");
	if (d->size < -1)
		fuzz_fail("a descriptor with a negative size");
	if (d->foreign && !d->media_type)
		fuzz_fail("a foreign descriptor without a media type");
}

static void
check_zeroed(const struct berth_reg_manifest *m)
{
	if (m->body || m->len || m->media_type || m->layers ||
	    m->n_layers || m->manifests || m->n_manifests || m->is_index ||
	    m->config.media_type || m->config.digest[0])
		fuzz_fail("a refused manifest left something behind");
}

static int
parse_once(const char *body, size_t len, const char *ct,
	   struct berth_reg_manifest *m)
{
	char err[512];
	memset(m, 0xa5, sizeof(*m)); /* the parser must not read this */
	int rc = berth_reg_manifest_parse(body, len, ct, m, err, sizeof(err));
	if (rc) {
		if (rc != BERTH_REG_PROTOCOL && rc != BERTH_REG_UNSUPPORTED &&
		    rc != BERTH_REG_TOO_LARGE)
			fuzz_fail("an undocumented refusal code");
		if (!err[0])
			fuzz_fail("a refusal without a message");
		if (strnlen(err, sizeof(err)) >= sizeof(err))
			fuzz_fail("an unterminated message");
		check_zeroed(m);
		return rc;
	}
	if (m->len != len || !m->body || memcmp(m->body, body, len) != 0 ||
	    m->body[len] != '\0')
		fuzz_fail("the manifest does not hold the exact bytes");
	char dg[BERTH_REG_DIGEST_MAX];
	berth_reg_digest_of(body, len, dg);
	if (strcmp(dg, m->digest) != 0)
		fuzz_fail("the manifest digest is not the sha256 of its bytes");
	if (m->is_index) {
		if (m->config.digest[0] || m->n_layers || m->layers)
			fuzz_fail("an index with a config or layers");
		for (size_t i = 0; i < m->n_manifests; i++)
			check_descriptor(&m->manifests[i]);
	} else {
		if (m->n_manifests || m->manifests)
			fuzz_fail("an image manifest with child manifests");
		check_descriptor(&m->config);
		for (size_t i = 0; i < m->n_layers; i++)
			check_descriptor(&m->layers[i]);
	}
	if ((m->n_layers && !m->layers) || (m->n_manifests && !m->manifests))
		fuzz_fail("a count without its array");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0 || size > BERTH_REG_MANIFEST_MAX + 2)
		return 0;
	const char *ct = content_types[data[0] % N_TYPES];
	const char *body = (const char *)data + 1;
	size_t len = size - 1;

	struct berth_reg_manifest a, b;
	int ra = parse_once(body, len, ct, &a);
	int rb = parse_once(body, len, ct, &b);
	if (ra != rb)
		fuzz_fail("the same body parsed twice gives two answers");
	if (!ra) {
		if (a.is_index != b.is_index || a.n_layers != b.n_layers ||
		    a.n_manifests != b.n_manifests ||
		    strcmp(a.digest, b.digest) != 0)
			fuzz_fail("the same body parsed twice differs");
		/* a manifest always parses with its own media type too */
		if (a.media_type) {
			struct berth_reg_manifest c;
			if (parse_once(body, len, a.media_type, &c) != 0 ||
			    c.is_index != a.is_index)
				fuzz_fail("the manifest does not parse with "
					  "its own media type");
			berth_reg_manifest_fini(&c);
		}
	}
	berth_reg_manifest_fini(&a);
	berth_reg_manifest_fini(&a);
	check_zeroed(&a);
	berth_reg_manifest_fini(&b);
	return 0;
}
