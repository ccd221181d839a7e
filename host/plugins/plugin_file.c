/* plugin_file.c - a plugin's file: checks, identity, private copy; see
 * plugin_file.h. */
#include "plugins/plugin_file.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "logs/log.h"

#define COPY_CHUNK 65536u
#define FNV_OFFSET 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

struct plugin_copies {
	char *dir;
	bool temp; /* made by mkdtemp: removed on close */
};

static uint64_t
fnv1a(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

/* Same path rule as the registry: real is dir itself or below it. */
static bool
at_or_below(const char *real, const char *dir)
{
	size_t n = strlen(dir);
	if (n == 1 && dir[0] == '/')
		return real[0] == '/';
	return strncmp(real, dir, n) == 0 && (real[n] == '/' || !real[n]);
}

static const char *
who_writes(mode_t mode)
{
	return (mode & S_IWOTH) ? "world" : "group";
}

/* The directories from the file's up to the root (real_file is a
 * realpath, so none of them is a symlink). */
static char *
check_dirs(const char *real_file, const char *real_dir)
{
	char *d = xstrdup(real_file);
	char *reason = NULL;
	for (;;) {
		char *slash = strrchr(d, '/');
		if (!slash)
			break;
		if (slash == d)
			slash[1] = '\0';
		else
			*slash = '\0';
		struct stat st;
		if (stat(d, &st) != 0) {
			reason = xasprintf("directory %s: %s; fix: check "
					    "plugin_dir",
					    d, strerror(errno));
			break;
		}
		unsigned mode = (unsigned)(st.st_mode & 07777);
		bool writable = (st.st_mode & (S_IWGRP | S_IWOTH)) != 0;
		bool inside = at_or_below(d, real_dir);
		if (writable && inside) {
			reason = xasprintf(
				"%s %s is %s-writable (mode %04o): others "
				"could replace the code the daemon runs; fix: "
				"chmod go-w %s",
				strcmp(d, real_dir) == 0
					? "plugin_dir"
					: "directory",
				d, who_writes(st.st_mode), mode, d);
			break;
		}
		if (writable && !(st.st_mode & S_ISVTX)) {
			reason = xasprintf(
				"directory %s above plugin_dir is %s-writable "
				"without the sticky bit (mode %04o): others "
				"could move plugin_dir away and put their own "
				"in its place; fix: chmod go-w %s (or chmod +t "
				"for a shared directory such as /tmp)",
				d, who_writes(st.st_mode), mode, d);
			break;
		}
		if (strcmp(d, "/") == 0)
			break;
	}
	free(d);
	return reason;
}

/* Reads the whole file from offset 0; the hash of what was read. */
static int
hash_fd(int fd, uint64_t *hash, off_t *total)
{
	unsigned char *buf = xmalloc(COPY_CHUNK);
	uint64_t h = FNV_OFFSET;
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, COPY_CHUNK, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			free(buf);
			return -1;
		}
		if (n == 0)
			break;
		h = fnv1a(h, buf, (size_t)n);
		off += n;
		if (off > PLUGIN_FILE_MAX)
			break;
	}
	free(buf);
	*hash = h;
	*total = off;
	return 0;
}

void
plugin_source_fini(struct plugin_source *s)
{
	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	free(s->path);
	free(s->real);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

/* " (did you mean 'scheduler.so'?)" when dir has a file name close to
 * file (a typo in the manifest's `file`), else "". */
static void
file_hint(const char *dir, const char *file, char *buf, size_t size)
{
	buf[0] = '\0';
	if (strchr(file, '/'))
		return;
	DIR *d = opendir(dir);
	if (!d)
		return;
	int best = 3;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		int dist = util_edit_distance(file, e->d_name);
		if (dist > 0 && dist < best && (size_t)dist < strlen(file)) {
			best = dist;
			snprintf(buf, size, " (did you mean '%s'?)", e->d_name);
		}
	}
	closedir(d);
}

int
plugin_source_open(const char *dir, const char *real_dir, const char *file,
		   struct plugin_source *s, char **reason)
{
	memset(s, 0, sizeof(*s));
	s->fd = -1;
	s->path = util_path_join(dir, file);
	s->real = realpath(s->path, NULL);
	if (!s->real) {
		int e = errno;
		char hint[300];
		file_hint(dir, file, hint, sizeof(hint));
		*reason = xasprintf("%s: %s%s; fix: build the plugin, or check "
				     "`file` (relative to plugin_dir %s)",
				     s->path, strerror(e), hint, dir);
		goto fail;
	}
	if (!at_or_below(s->real, real_dir) || strcmp(s->real, real_dir) == 0) {
		*reason = xasprintf("%s resolves to %s, outside plugin_dir "
				     "%s; fix: move the plugin into %s "
				     "(symlinks must not lead out of it)",
				     s->path, s->real, real_dir, real_dir);
		goto fail;
	}
	/* O_NONBLOCK: a FIFO planted in place of the file must not hang the
	 * reload; it is refused as not regular below. */
	s->fd = open(s->real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	struct stat st;
	if (s->fd < 0 || fstat(s->fd, &st) != 0) {
		*reason = xasprintf("%s: %s; fix: build the plugin, or check "
				     "`file`",
				     s->real, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		*reason = xasprintf("%s is not a regular file; fix: point "
				     "`file` at the built .so",
				     s->real);
		goto fail;
	}
	if (st.st_mode & (S_IWGRP | S_IWOTH)) {
		*reason = xasprintf("%s is %s-writable (mode %04o): others "
				     "could replace the code the daemon runs; "
				     "fix: chmod go-w %s",
				     s->real, who_writes(st.st_mode),
				     (unsigned)(st.st_mode & 07777), s->real);
		goto fail;
	}
	if ((*reason = check_dirs(s->real, real_dir)))
		goto fail;
	if (st.st_size > PLUGIN_FILE_MAX) {
		*reason = xasprintf("%s is %jd bytes, more than the %jd a "
				     "plugin may have; fix: point `file` at "
				     "the built .so",
				     s->real, (intmax_t)st.st_size,
				     (intmax_t)PLUGIN_FILE_MAX);
		goto fail;
	}
	off_t total = 0;
	if (hash_fd(s->fd, &s->id.hash, &total) != 0) {
		*reason = xasprintf("%s: read: %s; fix: check the file",
				     s->real, strerror(errno));
		goto fail;
	}
	if (total != st.st_size) {
		*reason = xasprintf("%s changed while it was being read (%jd "
				     "bytes read, %jd expected); fix: replace "
				     "plugin files by renaming a finished file "
				     "over the old one, then reload",
				     s->real, (intmax_t)total,
				     (intmax_t)st.st_size);
		goto fail;
	}
	s->id.dev = st.st_dev;
	s->id.ino = st.st_ino;
	s->id.size = st.st_size;
	s->id.mtime = st.st_mtim;
	return 0;
fail:
	plugin_source_fini(s);
	return -1;
}

bool
plugin_file_same_content(const struct plugin_file_id *a,
			 const struct plugin_file_id *b)
{
	return a->size == b->size && a->hash == b->hash;
}

const char *
plugin_file_hash_str(uint64_t hash, char *buf, size_t len)
{
	snprintf(buf, len, "fnv1a64:%016" PRIx64, hash);
	return buf;
}

const char *
plugin_file_id_str(const struct plugin_file_id *id, char *buf, size_t len)
{
	struct tm tm;
	char when[32] = "?";
	time_t sec = id->mtime.tv_sec;
	if (gmtime_r(&sec, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	char h[32];
	snprintf(buf, len, "inode %ju, size %jd, mtime %s.%09ldZ, hash %s",
		 (uintmax_t)id->ino, (intmax_t)id->size, when,
		 (long)id->mtime.tv_nsec,
		 plugin_file_hash_str(id->hash, h, sizeof(h)));
	return buf;
}

/* --- the copies directory ----------------------------------------------- */

static int
sweep(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	pid_t self = getpid();
	struct dirent *de;
	while ((de = readdir(d))) {
		char *end = NULL;
		errno = 0;
		long pid = strtol(de->d_name, &end, 10);
		if (errno || end == de->d_name || *end != '-' || pid <= 0)
			continue; /* not a copy */
		bool stale = pid == (long)self ||
			     (kill((pid_t)pid, 0) != 0 && errno == ESRCH);
		if (stale && unlinkat(dirfd(d), de->d_name, 0) == 0)
			n++;
	}
	closedir(d);
	return n;
}

struct plugin_copies *
plugin_copies_open(const char *dir, int *swept, struct berr *err)
{
	*swept = 0;
	if (!dir) {
		const char *base = getenv("TMPDIR");
		char *tmpl = xasprintf("%s/berth-plugins-XXXXXX",
				       base && *base ? base : "/tmp");
		if (!mkdtemp(tmpl)) {
			berr_set(err, "cannot create a private directory for "
				 "plugin copies (%s): %s",
				 tmpl, strerror(errno));
			free(tmpl);
			return NULL;
		}
		struct plugin_copies *c = xcalloc(1, sizeof(*c));
		c->dir = tmpl;
		c->temp = true;
		return c;
	}
	if (util_mkdir_p(dir, 0700) != 0) {
		berr_set(err, "cannot create the plugin copies directory %s: %s",
			 dir, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (lstat(dir, &st) != 0) {
		berr_set(err, "plugin copies directory %s: %s", dir,
			 strerror(errno));
		return NULL;
	}
	if (!S_ISDIR(st.st_mode)) {
		berr_set(err, "plugin copies directory %s is not a directory%s; "
			 "fix: remove it",
			 dir, S_ISLNK(st.st_mode) ? " (a symlink)" : "");
		return NULL;
	}
	if (st.st_uid != geteuid()) {
		berr_set(err, "plugin copies directory %s is owned by uid %u, "
			 "not by the daemon's uid %u; fix: remove it, or chown "
			 "it to the daemon's user",
			 dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return NULL;
	}
	if ((st.st_mode & 0777) != 0700 && chmod(dir, 0700) != 0) {
		berr_set(err, "chmod 0700 %s: %s", dir, strerror(errno));
		return NULL;
	}
	struct plugin_copies *c = xcalloc(1, sizeof(*c));
	c->dir = xstrdup(dir);
	*swept = sweep(dir);
	return c;
}

void
plugin_copies_close(struct plugin_copies *c)
{
	if (!c)
		return;
	if (c->temp) {
		sweep(c->dir); /* only copies this process leaked */
		if (rmdir(c->dir) != 0)
			log_warn("cannot remove %s: %s", c->dir,
				 strerror(errno));
	}
	free(c->dir);
	free(c);
}

const char *
plugin_copies_dir(const struct plugin_copies *c)
{
	return c->dir;
}

static int
write_all(int fd, const unsigned char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

char *
plugin_copy_make(struct plugin_copies *c, const struct plugin_source *s,
		 unsigned seq, char **reason)
{
	const char *base = strrchr(s->real, '/');
	base = base ? base + 1 : s->real;
	char *copy = xasprintf("%s/%ld-%u-%s", c->dir, (long)getpid(), seq,
			       base);
	int out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC |
				     O_NOFOLLOW,
		       0600);
	if (out < 0) {
		*reason = xasprintf("cannot create the private copy %s: %s; "
				     "fix: check the data directory",
				     copy, strerror(errno));
		free(copy);
		return NULL;
	}
	unsigned char *buf = xmalloc(COPY_CHUNK);
	uint64_t h = FNV_OFFSET;
	off_t off = 0;
	int io_errno = 0;
	for (;;) {
		ssize_t n = pread(s->fd, buf, COPY_CHUNK, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			io_errno = n < 0 ? errno : 0;
			break;
		}
		h = fnv1a(h, buf, (size_t)n);
		if (write_all(out, buf, (size_t)n) != 0) {
			io_errno = errno;
			break;
		}
		off += n;
		if (off > PLUGIN_FILE_MAX)
			break;
	}
	free(buf);
	struct stat st;
	bool changed = fstat(s->fd, &st) != 0 || st.st_size != s->id.size ||
		       st.st_mtim.tv_sec != s->id.mtime.tv_sec ||
		       st.st_mtim.tv_nsec != s->id.mtime.tv_nsec ||
		       off != s->id.size || h != s->id.hash;
	if (!io_errno && fchmod(out, 0500) != 0)
		io_errno = errno;
	if (close(out) != 0 && !io_errno)
		io_errno = errno;
	if (io_errno) {
		*reason = xasprintf("cannot copy %s to %s: %s; fix: check "
				     "the space and permissions of the data "
				     "directory",
				     s->real, copy, strerror(io_errno));
	} else if (changed) {
		*reason = xasprintf("%s changed while it was being copied; "
				     "fix: replace plugin files by renaming a "
				     "finished file over the old one, then "
				     "reload",
				     s->real);
	}
	if (*reason) {
		unlink(copy);
		free(copy);
		return NULL;
	}
	return copy;
}

void
plugin_copy_remove(const char *copy)
{
	if (copy && unlink(copy) != 0 && errno != ENOENT)
		log_warn("cannot remove plugin copy %s: %s", copy,
			 strerror(errno));
}
