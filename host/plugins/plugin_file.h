/* plugin_file.h - a plugin's file before it is dlopen'ed: where it is, who
 * may write it, what it contains, and the private copy the host maps.
 *
 * Why a copy. dlopen maps the file itself: writing over it in place (`cp
 * new.so plugins/x.so`) changes the code of every job that runs it, and the
 * dynamic loader hands back the already-mapped object for the same inode, so
 * a rebuilt file is never seen. The host therefore copies each file, after
 * its checks, into a private 0700 directory and dlopens the copy; nothing
 * outside the daemon can change a mapped byte, and each content is a new
 * object with its own identity.
 *
 * Threading: everything here runs under the registry's load_lock. */
#ifndef BERTH_PLUGIN_FILE_H
#define BERTH_PLUGIN_FILE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "common/util.h"

/* Upper bound on a plugin file (a .so larger than this is refused). */
#define PLUGIN_FILE_MAX ((off_t)512 << 20)

/* What identifies one content of a plugin file. */
struct plugin_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
	uint64_t hash; /* FNV-1a 64 of the content: detects changes only */
};

/* A plugin file that passed the checks, open for reading. */
struct plugin_source {
	char *path; /* as joined from plugin_dir and `file` */
	char *real; /* realpath, inside plugin_dir */
	int fd;
	struct plugin_file_id id;
};

/* Resolves `file` against dir (real_dir: its realpath) and checks it: it
 * exists, resolves inside real_dir, is a regular file of at most
 * PLUGIN_FILE_MAX bytes, is writable neither by group nor by others, nor is
 * its directory, any directory between it and plugin_dir, or plugin_dir
 * itself; the directories above plugin_dir may be group/world-writable only
 * with the sticky bit (as /tmp). Then hashes the content. Returns 0, or -1
 * with *reason ("<what is wrong>; fix: <how>", malloc'ed). */
int plugin_source_open(const char *dir, const char *real_dir,
		       const char *file, struct plugin_source *s,
		       char **reason);
void plugin_source_fini(struct plugin_source *s);

/* True when a and b are the same content (size and hash). */
bool plugin_file_same_content(const struct plugin_file_id *a,
			      const struct plugin_file_id *b);

/* "inode 123, size 4567, mtime 2026-12-03T01:02:03.123456789Z, hash
 * fnv1a64:0123456789abcdef" into buf. */
const char *plugin_file_id_str(const struct plugin_file_id *id, char *buf,
			       size_t len);
/* "fnv1a64:0123456789abcdef" */
const char *plugin_file_hash_str(uint64_t hash, char *buf, size_t len);

/* The directory of the private copies.
 *
 * plugin_copies_open(dir): dir is created (0700) when missing; it must be a
 * directory (not a symlink) owned by the daemon's user; its mode is forced
 * to 0700. Copies left by earlier runs (named "<pid>-...", of this pid or of
 * a process that no longer exists) are removed; the number removed goes to
 * *swept. dir NULL: a fresh private directory under $TMPDIR (or /tmp),
 * removed by plugin_copies_close(). Returns 0, or -1 with err. */
struct plugin_copies;
struct plugin_copies *plugin_copies_open(const char *dir, int *swept,
					 struct berr *err);
void plugin_copies_close(struct plugin_copies *c);
const char *plugin_copies_dir(const struct plugin_copies *c);

/* Copies s's content into a new file of the copies directory (mode 0500,
 * named "<pid>-<seq>-<basename>"), checking that the source did not change
 * while being read (same size, mtime and hash as when it was opened).
 * Returns the copy's path (malloc'ed), or NULL with *reason. */
char *plugin_copy_make(struct plugin_copies *c, const struct plugin_source *s,
		       unsigned seq, char **reason);
/* Removes a copy made by plugin_copy_make (after its dlclose). */
void plugin_copy_remove(const char *copy);

#endif
