/* storage.h - GARBAGE_COLLECTION's view of a distribution registry's
 * filesystem storage: the registry config's storage section, a snapshot
 * of the blobs (to measure what the sweep freed), and the index-aware
 * removal of untagged manifests.
 *
 * Layout read (distribution's filesystem driver, under rootdirectory):
 *   docker/registry/v2/blobs/<algo>/<2 hex>/<hex>/data         a blob
 *   docker/registry/v2/repositories/<name>/_manifests/
 *       revisions/<algo>/<hex>/link        a manifest of the repository
 *       tags/<tag>/current/link            the tag's manifest
 *       tags/<tag>/index/<algo>/<hex>/link the tag's history
 * Only libc, libyaml and cJSON: no SDK calls (messages go through a
 * callback), so that the code reads alone. */
#ifndef GC_STORAGE_H
#define GC_STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the registry's config.yml ----------------------------------------- */

struct gc_regconfig {
	char *driver;        /* "filesystem", "s3", ...; NULL when none */
	char *rootdirectory; /* filesystem only (its default when absent) */
};

/* Reads the storage section of a distribution config file. 0, or -1
 * with err (unreadable file, not YAML, no storage section). */
int gc_regconfig_read(const char *path, struct gc_regconfig *c, char *err,
		      size_t errlen);
void gc_regconfig_fini(struct gc_regconfig *c);

/* ---- snapshots ----------------------------------------------------------- */

struct gc_blob {
	uint8_t algo;     /* 0 sha256, 1 sha512 */
	uint8_t hex[64];  /* the digest's bytes (sha256: the first 32) */
	long long size;
};

struct gc_snapshot {
	struct gc_blob *blobs; /* sorted */
	size_t n_blobs, cap;
	long long blob_bytes;  /* sum of the blobs' sizes */
	long long total_bytes; /* every regular file under the root */
	size_t revisions;      /* manifest revision links, all repositories */
	size_t repositories;
};

/* Called every few thousand entries; true stops the walk (the result is
 * then -2). */
typedef bool (*gc_stop_fn)(void *ud);

/* Walks root. 0, -1 with err (root unreadable, out of memory), or -2
 * when stop said so. Entries that vanish during the walk are skipped;
 * symbolic links are not followed. */
int gc_snapshot_take(const char *root, struct gc_snapshot *s, gc_stop_fn stop,
		     void *ud, char *err, size_t errlen);
void gc_snapshot_fini(struct gc_snapshot *s);
/* Blobs of before that after no longer has: their number and bytes. */
void gc_snapshot_gone(const struct gc_snapshot *before,
		      const struct gc_snapshot *after, size_t *n,
		      long long *bytes);
/* Size of a blob ("sha256:<hex>") in the snapshot, -1 when absent. */
long long gc_snapshot_size(const struct gc_snapshot *s, const char *digest);

/* ---- untagged manifests ------------------------------------------------ */

/* Message sink: level 0 debug, 1 info, 2 warning. */
typedef void (*gc_say_fn)(void *ud, int level, const char *msg);

struct gc_untagged_stats {
	size_t repositories;
	size_t revisions;  /* manifest revisions seen */
	size_t kept;       /* tagged, or reachable from a tagged one */
	size_t eligible;   /* untagged and unreachable */
	size_t removed;    /* of those, removed (0 in a dry run) */
};

/* In every repository: the manifests that no tag reaches (directly, as a
 * child of a reached index or manifest list, or as a manifest whose
 * "subject" is reached: signatures, SBOMs) are eligible; unless dry_run
 * their revision links (and their entries in every tag's history) are
 * removed, as distribution's garbage-collect --delete-untagged removes
 * them, but without its defect of removing the children of multi-arch
 * indexes (distribution/distribution#3004). A manifest whose blob cannot
 * be read is kept (with a warning). One info line per eligible manifest
 * ("manifest eligible for deletion: <repo>@<digest>"). 0, -1 with err,
 * -2 when stopped (then some may already be removed; stats say how
 * many). */
int gc_untagged_sweep(const char *root, bool dry_run, gc_say_fn say,
		      void *ud, gc_stop_fn stop, void *stop_ud,
		      struct gc_untagged_stats *st, char *err, size_t errlen);

#endif /* GC_STORAGE_H */
