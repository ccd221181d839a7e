/* storage.c - the registry's config, storage snapshots and the
 * index-aware untagged sweep (see storage.h). */
#define _GNU_SOURCE
#include "storage.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <yaml.h>

#define WALK_MAX_DEPTH 64
#define MANIFEST_MAX (4 * 1024 * 1024)
#define DIGEST_MAX 136

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static void
say(gc_say_fn fn, void *ud, int level, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void
say(gc_say_fn fn, void *ud, int level, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	if (!fn)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fn(ud, level, buf);
}

/* ===================================================================== */
/* config.yml                                                             */
/* ===================================================================== */

static yaml_node_t *
map_get(yaml_document_t *doc, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
	     p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(doc, p->key);
		if (k && k->type == YAML_SCALAR_NODE &&
		    strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(doc, p->value);
	}
	return NULL;
}

void
gc_regconfig_fini(struct gc_regconfig *c)
{
	free(c->driver);
	free(c->rootdirectory);
	c->driver = c->rootdirectory = NULL;
}

int
gc_regconfig_read(const char *path, struct gc_regconfig *c, char *err,
		  size_t errlen)
{
	/* the sections of "storage" that are not a driver */
	static const char *const not_driver[] = {"delete", "maintenance",
						 "cache", "redirect", "tag"};
	memset(c, 0, sizeof(*c));
	FILE *f = fopen(path, "re");
	if (!f) {
		seterr(err, errlen, "cannot read the registry config %s: %s",
		       path, strerror(errno));
		return -1;
	}
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc = -1;
	if (!yaml_parser_initialize(&parser)) {
		fclose(f);
		seterr(err, errlen, "out of memory");
		return -1;
	}
	yaml_parser_set_input_file(&parser, f);
	if (!yaml_parser_load(&parser, &doc)) {
		seterr(err, errlen,
		       "the registry config %s is not valid YAML: %s (line "
		       "%zu)",
		       path, parser.problem ? parser.problem : "error",
		       parser.problem_mark.line + 1);
		yaml_parser_delete(&parser);
		fclose(f);
		return -1;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	yaml_node_t *storage = map_get(&doc, root, "storage");
	if (!storage || storage->type != YAML_MAPPING_NODE) {
		seterr(err, errlen, "the registry config %s has no storage "
				    "section",
		       path);
		goto out;
	}
	for (yaml_node_pair_t *p = storage->data.mapping.pairs.start;
	     p < storage->data.mapping.pairs.top && !c->driver; p++) {
		yaml_node_t *k = yaml_document_get_node(&doc, p->key);
		if (!k || k->type != YAML_SCALAR_NODE)
			continue;
		const char *name = (const char *)k->data.scalar.value;
		bool skip = false;
		for (size_t i = 0; i < sizeof(not_driver) / sizeof(*not_driver);
		     i++)
			skip = skip || strcmp(name, not_driver[i]) == 0;
		if (!skip && !(c->driver = strdup(name))) {
			seterr(err, errlen, "out of memory");
			goto out;
		}
	}
	if (c->driver && strcmp(c->driver, "filesystem") == 0) {
		yaml_node_t *fs = map_get(&doc, storage, "filesystem");
		yaml_node_t *rd = map_get(&doc, fs, "rootdirectory");
		const char *v = rd && rd->type == YAML_SCALAR_NODE &&
						rd->data.scalar.length
					? (const char *)rd->data.scalar.value
					: "/var/lib/registry"; /* the default */
		if (!(c->rootdirectory = strdup(v))) {
			seterr(err, errlen, "out of memory");
			goto out;
		}
	}
	rc = 0;
out:
	yaml_document_delete(&doc);
	yaml_parser_delete(&parser);
	fclose(f);
	if (rc)
		gc_regconfig_fini(c);
	return rc;
}

/* ===================================================================== */
/* snapshots                                                              */
/* ===================================================================== */

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* "sha256" + 64 hex or "sha512" + 128 hex into b; false otherwise. */
static bool
blob_key(const char *algo, const char *hex, struct gc_blob *b)
{
	size_t want;
	memset(b, 0, sizeof(*b));
	if (strcmp(algo, "sha256") == 0) {
		b->algo = 0;
		want = 64;
	} else if (strcmp(algo, "sha512") == 0) {
		b->algo = 1;
		want = 128;
	} else {
		return false;
	}
	if (strlen(hex) != want)
		return false;
	for (size_t i = 0; i < want; i += 2) {
		int h = hexval(hex[i]), l = hexval(hex[i + 1]);
		if (h < 0 || l < 0)
			return false;
		b->hex[i / 2] = (uint8_t)(h << 4 | l);
	}
	return true;
}

static int
blob_cmp(const void *a, const void *b)
{
	const struct gc_blob *x = a, *y = b;
	if (x->algo != y->algo)
		return x->algo < y->algo ? -1 : 1;
	return memcmp(x->hex, y->hex, sizeof(x->hex));
}

struct walk {
	struct gc_snapshot *s;
	gc_stop_fn stop;
	void *ud;
	size_t seen;
	const char *stack[WALK_MAX_DEPTH];
	int depth;
	char *err;
	size_t errlen;
};

static bool
at(const struct walk *w, int i, const char *name)
{
	return i >= 0 && i < w->depth && strcmp(w->stack[i], name) == 0;
}

static int
add_blob(struct gc_snapshot *s, const struct gc_blob *b)
{
	if (s->n_blobs == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 1024;
		struct gc_blob *nb = realloc(s->blobs, nc * sizeof(*nb));
		if (!nb)
			return -1;
		s->blobs = nb;
		s->cap = nc;
	}
	s->blobs[s->n_blobs++] = *b;
	return 0;
}

/* The subdirectory name of dfd, opened without following a link: an fd,
 * or -1. */
static int
subdir_fd(int dfd, const char *name)
{
	return openat(dfd, name,
		      O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* The same as a DIR (closedir it), or NULL. */
static DIR *
subdir_open(int dfd, const char *name)
{
	int fd = subdir_fd(dfd, name);
	if (fd < 0)
		return NULL;
	DIR *d = fdopendir(fd);
	if (!d)
		close(fd);
	return d;
}

static int
walk_dir(struct walk *w, int dfd)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0; /* vanished or unreadable: skipped */
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (++w->seen % 4096 == 0 && w->stop && w->stop(w->ud)) {
			rc = -2;
			break;
		}
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			if (w->depth == WALK_MAX_DEPTH)
				continue;
			int sub = subdir_fd(dirfd(d), e->d_name);
			if (sub < 0)
				continue;
			if (strcmp(e->d_name, "_manifests") == 0 &&
			    at(w, 3, "repositories"))
				w->s->repositories++;
			w->stack[w->depth++] = e->d_name;
			rc = walk_dir(w, sub);
			w->depth--;
			continue;
		}
		if (!S_ISREG(st.st_mode))
			continue;
		w->s->total_bytes += st.st_size;
		/* docker/registry/v2/blobs/<algo>/<xx>/<hex>/data */
		if (w->depth == 7 && at(w, 3, "blobs") && at(w, 2, "v2") &&
		    strcmp(e->d_name, "data") == 0) {
			struct gc_blob b;
			if (blob_key(w->stack[4], w->stack[6], &b)) {
				b.size = st.st_size;
				if (add_blob(w->s, &b) != 0) {
					seterr(w->err, w->errlen,
					       "out of memory");
					rc = -1;
				}
				w->s->blob_bytes += st.st_size;
			}
		}
		/* .../_manifests/revisions/<algo>/<hex>/link */
		if (strcmp(e->d_name, "link") == 0 && w->depth >= 8 &&
		    at(w, w->depth - 4, "_manifests") &&
		    at(w, w->depth - 3, "revisions") &&
		    at(w, 3, "repositories"))
			w->s->revisions++;
	}
	closedir(d);
	return rc;
}

void
gc_snapshot_fini(struct gc_snapshot *s)
{
	free(s->blobs);
	memset(s, 0, sizeof(*s));
}

int
gc_snapshot_take(const char *root, struct gc_snapshot *s, gc_stop_fn stop,
		 void *ud, char *err, size_t errlen)
{
	memset(s, 0, sizeof(*s));
	int fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		seterr(err, errlen, "cannot read the registry storage %s: %s",
		       root, strerror(errno));
		return -1;
	}
	struct walk w = {.s = s, .stop = stop, .ud = ud, .err = err,
			 .errlen = errlen};
	int rc = walk_dir(&w, fd);
	if (rc) {
		gc_snapshot_fini(s);
		return rc;
	}
	if (s->n_blobs)
		qsort(s->blobs, s->n_blobs, sizeof(*s->blobs), blob_cmp);
	return 0;
}

void
gc_snapshot_gone(const struct gc_snapshot *before,
		 const struct gc_snapshot *after, size_t *n, long long *bytes)
{
	size_t i = 0, j = 0;
	*n = 0;
	*bytes = 0;
	while (i < before->n_blobs) {
		int c = j < after->n_blobs
				? blob_cmp(&before->blobs[i], &after->blobs[j])
				: -1;
		if (c < 0) {
			(*n)++;
			*bytes += before->blobs[i].size;
			i++;
		} else if (c == 0) {
			i++;
			j++;
		} else {
			j++;
		}
	}
}

long long
gc_snapshot_size(const struct gc_snapshot *s, const char *digest)
{
	struct gc_blob k;
	const char *colon = strchr(digest, ':');
	char algo[16];
	if (!colon || (size_t)(colon - digest) >= sizeof(algo))
		return -1;
	memcpy(algo, digest, (size_t)(colon - digest));
	algo[colon - digest] = '\0';
	if (!blob_key(algo, colon + 1, &k))
		return -1;
	const struct gc_blob *b =
		s->n_blobs ? bsearch(&k, s->blobs, s->n_blobs,
				     sizeof(*s->blobs), blob_cmp)
			   : NULL;
	return b ? b->size : -1;
}

/* ===================================================================== */
/* untagged manifests                                                     */
/* ===================================================================== */

struct rev {
	char digest[DIGEST_MAX];
	char **children;
	size_t n_children;
	char subject[DIGEST_MAX];
	bool keep;
};

struct repo_scan {
	struct rev *revs;
	size_t n, cap;
	char **tags;  /* tag names */
	size_t n_tags, cap_tags;
};

static void
repo_scan_fini(struct repo_scan *r)
{
	for (size_t i = 0; i < r->n; i++) {
		for (size_t k = 0; k < r->revs[i].n_children; k++)
			free(r->revs[i].children[k]);
		free(r->revs[i].children);
	}
	free(r->revs);
	for (size_t i = 0; i < r->n_tags; i++)
		free(r->tags[i]);
	free(r->tags);
	memset(r, 0, sizeof(*r));
}

static int
rev_cmp(const void *a, const void *b)
{
	return strcmp(((const struct rev *)a)->digest,
		      ((const struct rev *)b)->digest);
}

static struct rev *
rev_find(struct repo_scan *r, const char *digest)
{
	struct rev k;
	if (!r->n || strlen(digest) >= sizeof(k.digest))
		return NULL;
	snprintf(k.digest, sizeof(k.digest), "%s", digest);
	return bsearch(&k, r->revs, r->n, sizeof(*r->revs), rev_cmp);
}

/* Reads a small file relative to dfd (at most cap bytes) into a
 * NUL-terminated malloc'ed buffer; NULL when absent or unreadable. */
static char *
read_small(int dfd, const char *path, size_t cap, size_t *len)
{
	int fd = openat(dfd, path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    (size_t)st.st_size > cap) {
		close(fd);
		return NULL;
	}
	char *buf = malloc((size_t)st.st_size + 1);
	size_t got = 0;
	while (buf && got < (size_t)st.st_size) {
		ssize_t k = read(fd, buf + got, (size_t)st.st_size - got);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	if (!buf)
		return NULL;
	buf[got] = '\0';
	if (len)
		*len = got;
	return buf;
}

/* A link file's digest ("sha256:<hex>"), trimmed; false when unusable. */
static bool
read_link(int dfd, const char *path, char out[DIGEST_MAX])
{
	char *s = read_small(dfd, path, DIGEST_MAX + 16, NULL);
	if (!s)
		return false;
	size_t n = strlen(s);
	while (n && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\r'))
		s[--n] = '\0';
	bool ok = n > 7 && n < DIGEST_MAX && strchr(s, ':') != NULL;
	if (ok)
		memcpy(out, s, n + 1);
	free(s);
	return ok;
}

static bool
valid_component(const char *name)
{
	return strcmp(name, ".") != 0 && strcmp(name, "..") != 0 &&
	       !strchr(name, '/');
}

static int
scan_revisions(int mfd, struct repo_scan *r)
{
	DIR *d = subdir_open(mfd, "revisions");
	if (!d)
		return 0;
	int rc = 0;
	struct dirent *a;
	while (rc == 0 && (a = readdir(d)) != NULL) {
		if (!valid_component(a->d_name))
			continue;
		DIR *ad = subdir_open(dirfd(d), a->d_name);
		if (!ad)
			continue;
		struct dirent *h;
		while ((h = readdir(ad)) != NULL) {
			char path[300];
			struct stat st;
			if (!valid_component(h->d_name) ||
			    strlen(h->d_name) >= DIGEST_MAX)
				continue;
			snprintf(path, sizeof(path), "%s/link", h->d_name);
			if (fstatat(dirfd(ad), path, &st,
				    AT_SYMLINK_NOFOLLOW) != 0 ||
			    !S_ISREG(st.st_mode))
				continue; /* deleted before: no link left */
			if (strlen(a->d_name) != 6 || strlen(h->d_name) > 128)
				continue; /* sha256/sha512 only */
			if (r->n == r->cap) {
				size_t nc = r->cap ? r->cap * 2 : 16;
				struct rev *nr =
					realloc(r->revs, nc * sizeof(*nr));
				if (!nr) {
					rc = -1;
					break;
				}
				r->revs = nr;
				r->cap = nc;
			}
			struct rev *v = &r->revs[r->n++];
			memset(v, 0, sizeof(*v));
			snprintf(v->digest, sizeof(v->digest), "%.6s:%.128s",
				 a->d_name, h->d_name);
		}
		closedir(ad);
	}
	closedir(d);
	if (r->n)
		qsort(r->revs, r->n, sizeof(*r->revs), rev_cmp);
	return rc;
}

static int
scan_tags(int mfd, struct repo_scan *r, char ***current, size_t *n_current)
{
	DIR *d = subdir_open(mfd, "tags");
	if (!d)
		return 0;
	int rc = 0;
	struct dirent *t;
	while (rc == 0 && (t = readdir(d)) != NULL) {
		if (!valid_component(t->d_name))
			continue;
		char path[512], dg[DIGEST_MAX];
		if (strlen(t->d_name) > 256)
			continue;
		if (r->n_tags == r->cap_tags) {
			size_t nc = r->cap_tags ? r->cap_tags * 2 : 16;
			char **nt = realloc(r->tags, nc * sizeof(*nt));
			char **nc2 = realloc(*current, nc * sizeof(*nc2));
			if (nt)
				r->tags = nt;
			if (nc2)
				*current = nc2;
			if (!nt || !nc2) {
				rc = -1;
				break;
			}
			r->cap_tags = nc;
		}
		snprintf(path, sizeof(path), "%s/current/link", t->d_name);
		bool has = read_link(dirfd(d), path, dg);
		r->tags[r->n_tags] = strdup(t->d_name);
		(*current)[r->n_tags] = has ? strdup(dg) : NULL;
		if (!r->tags[r->n_tags] || (has && !(*current)[r->n_tags])) {
			free(r->tags[r->n_tags]);
			free((*current)[r->n_tags]);
			rc = -1;
			break;
		}
		r->n_tags++;
		*n_current = r->n_tags;
	}
	closedir(d);
	return rc;
}

/* The children ("manifests[].digest") and "subject.digest" of a manifest
 * blob; false when the blob is missing or not JSON. */
static bool
read_refs(int blobs_fd, struct rev *v)
{
	const char *colon = strchr(v->digest, ':');
	char path[DIGEST_MAX + 32];
	if (!colon || strlen(colon + 1) < 2)
		return false;
	snprintf(path, sizeof(path), "%.*s/%.2s/%s/data",
		 (int)(colon - v->digest), v->digest, colon + 1, colon + 1);
	size_t len = 0;
	char *body = read_small(blobs_fd, path, MANIFEST_MAX, &len);
	if (!body)
		return false;
	cJSON *doc = cJSON_ParseWithLength(body, len);
	free(body);
	if (!doc || !cJSON_IsObject(doc)) {
		cJSON_Delete(doc);
		return false;
	}
	const cJSON *ms = cJSON_GetObjectItemCaseSensitive(doc, "manifests");
	if (cJSON_IsArray(ms)) {
		size_t n = (size_t)cJSON_GetArraySize(ms);
		v->children = n ? calloc(n, sizeof(*v->children)) : NULL;
		const cJSON *e;
		cJSON_ArrayForEach(e, ms)
		{
			const cJSON *dg =
				cJSON_GetObjectItemCaseSensitive(e, "digest");
			if (v->children && cJSON_IsString(dg)) {
				char *c = strdup(dg->valuestring);
				if (c)
					v->children[v->n_children++] = c;
			}
		}
	}
	const cJSON *sub = cJSON_GetObjectItemCaseSensitive(doc, "subject");
	const cJSON *sd = cJSON_IsObject(sub)
				  ? cJSON_GetObjectItemCaseSensitive(sub,
								     "digest")
				  : NULL;
	if (cJSON_IsString(sd))
		snprintf(v->subject, sizeof(v->subject), "%s", sd->valuestring);
	cJSON_Delete(doc);
	return true;
}

struct sweep {
	int blobs_fd;
	bool dry_run;
	gc_say_fn say;
	void *ud;
	gc_stop_fn stop;
	void *stop_ud;
	struct gc_untagged_stats *st;
	char path[4096]; /* the repository name being walked */
	char *err;
	size_t errlen;
};

/* Removes <dir>/<algo>/<hex>/link and the <hex> directory under dfd. */
static bool
remove_link_dir(int dfd, const char *dir, const char *digest)
{
	const char *colon = strchr(digest, ':');
	char p[DIGEST_MAX + 1024];
	if (!colon)
		return false;
	snprintf(p, sizeof(p), "%s/%.*s/%s/link", dir,
		 (int)(colon - digest), digest, colon + 1);
	bool ok = unlinkat(dfd, p, 0) == 0 || errno == ENOENT;
	int saved = errno;
	p[strlen(p) - 5] = '\0'; /* drop "/link"; a leftover file keeps it */
	(void)unlinkat(dfd, p, AT_REMOVEDIR);
	errno = saved;
	return ok;
}

static int
sweep_repo(struct sweep *s, int mfd)
{
	struct repo_scan r = {0};
	char **current = NULL;
	size_t n_current = 0;
	int rc = -1;
	if (scan_revisions(mfd, &r) != 0 ||
	    scan_tags(mfd, &r, &current, &n_current) != 0) {
		seterr(s->err, s->errlen, "out of memory");
		goto out;
	}
	s->st->repositories++;
	s->st->revisions += r.n;
	for (size_t i = 0; i < r.n; i++) {
		if (!read_refs(s->blobs_fd, &r.revs[i])) {
			r.revs[i].keep = true;
			say(s->say, s->ud, 2,
			    "%s@%s: its manifest blob is missing or not JSON; "
			    "kept",
			    s->path, r.revs[i].digest);
		}
	}
	for (size_t i = 0; i < n_current; i++) {
		struct rev *v = current[i] ? rev_find(&r, current[i]) : NULL;
		if (v)
			v->keep = true;
	}
	/* reachability: children of kept indexes, referrers of kept ones */
	for (bool changed = true; changed;) {
		changed = false;
		for (size_t i = 0; i < r.n; i++) {
			struct rev *v = &r.revs[i];
			if (v->keep) {
				for (size_t k = 0; k < v->n_children; k++) {
					struct rev *c =
						rev_find(&r, v->children[k]);
					if (c && !c->keep) {
						c->keep = true;
						changed = true;
					}
				}
			} else if (v->subject[0]) {
				struct rev *sub = rev_find(&r, v->subject);
				if (sub && sub->keep) {
					v->keep = true;
					changed = true;
				}
			}
		}
	}
	for (size_t i = 0; i < r.n; i++) {
		struct rev *v = &r.revs[i];
		if (v->keep) {
			s->st->kept++;
			continue;
		}
		s->st->eligible++;
		say(s->say, s->ud, 1, "manifest eligible for deletion: %s@%s",
		    s->path, v->digest);
		if (s->dry_run)
			continue;
		/* the tags' history first, then the revision itself (as
		 * distribution's vacuum.RemoveManifest) */
		for (size_t k = 0; k < r.n_tags; k++) {
			char dir[512];
			snprintf(dir, sizeof(dir), "tags/%s/index", r.tags[k]);
			remove_link_dir(mfd, dir, v->digest);
		}
		if (!remove_link_dir(mfd, "revisions", v->digest)) {
			seterr(s->err, s->errlen,
			       "cannot remove the revision %s of %s: %s",
			       v->digest, s->path, strerror(errno));
			goto out;
		}
		s->st->removed++;
	}
	rc = 0;
out:
	for (size_t i = 0; i < n_current; i++)
		free(current[i]);
	free(current);
	repo_scan_fini(&r);
	return rc;
}

/* dfd: a directory under repositories/ whose name is s->path. */
static int
sweep_dir(struct sweep *s, int dfd, int depth)
{
	int rc = 0;
	if (s->stop && s->stop(s->stop_ud)) {
		close(dfd);
		return -2;
	}
	int mfd = subdir_fd(dfd, "_manifests");
	if (mfd >= 0) {
		rc = sweep_repo(s, mfd);
		close(mfd);
	}
	DIR *d = rc == 0 ? fdopendir(dfd) : NULL;
	if (!d) {
		close(dfd);
		return rc;
	}
	size_t base = strlen(s->path);
	struct dirent *e;
	while (rc == 0 && depth < WALK_MAX_DEPTH && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '_' || !valid_component(e->d_name))
			continue;
		if (base + strlen(e->d_name) + 2 >= sizeof(s->path))
			continue;
		int sub = subdir_fd(dirfd(d), e->d_name);
		if (sub < 0)
			continue;
		snprintf(s->path + base, sizeof(s->path) - base, "%s%s",
			 base ? "/" : "", e->d_name);
		rc = sweep_dir(s, sub, depth + 1);
		s->path[base] = '\0';
	}
	closedir(d);
	return rc;
}

int
gc_untagged_sweep(const char *root, bool dry_run, gc_say_fn sayfn, void *ud,
		  gc_stop_fn stop, void *stop_ud, struct gc_untagged_stats *st,
		  char *err, size_t errlen)
{
	memset(st, 0, sizeof(*st));
	int rfd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rfd < 0) {
		seterr(err, errlen, "cannot read the registry storage %s: %s",
		       root, strerror(errno));
		return -1;
	}
	int repos = openat(rfd, "docker/registry/v2/repositories",
			   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int blobs = openat(rfd, "docker/registry/v2/blobs",
			   O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	close(rfd);
	if (repos < 0 || blobs < 0) {
		/* an empty registry: nothing pushed yet */
		if (repos >= 0)
			close(repos);
		if (blobs >= 0)
			close(blobs);
		return 0;
	}
	struct sweep s = {.blobs_fd = blobs, .dry_run = dry_run, .say = sayfn,
			  .ud = ud, .stop = stop, .stop_ud = stop_ud, .st = st,
			  .err = err, .errlen = errlen};
	int rc = sweep_dir(&s, repos, 0);
	close(blobs);
	return rc;
}
