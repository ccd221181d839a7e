/* resource.h - REPLICATION's parameters: Harbor's replication resources
 * (src_resource, dst_resource), speed and copy_by_chunk, parsed and
 * checked once (validate() and run() share the parser). README.md is the
 * reference of the shapes accepted. */
#ifndef REPL_RESOURCE_H
#define REPL_RESOURCE_H

#include <berth/plugin.h>

#include <stdbool.h>
#include <stddef.h>

/* A registry of a resource: URL and credential. */
struct repl_registry {
	char *url;
	char *username; /* credential type basic */
	char *password;
	char *token;    /* credential types bearer / oauth */
	bool insecure;
};

/* One artifact: a digest, tags, or both (at least one). */
struct repl_artifact {
	char *digest; /* NULL: by tag */
	char **tags;
	size_t n_tags;
};

struct repl_resource {
	char *repo;                  /* metadata.repository.name */
	struct repl_artifact *arts;  /* metadata.artifacts */
	size_t n_arts;               /* 0: every tag of the repository */
	struct repl_registry reg;
	bool deleted;
	bool is_delete_tag;
	bool override;
};

struct repl_params {
	struct repl_resource src;
	struct repl_resource dst;   /* its repo is the destination name */
	long long speed_bytes_per_s; /* 0: unlimited */
	bool copy_by_chunk;
};

/* Reads and checks the job's parameters into *p (zeroed first). 0, or -1
 * with a sentence naming the parameter and the field in err. */
int repl_params_parse(struct berth_job_ctx *ctx, struct repl_params *p,
		      char *err, size_t errlen);
void repl_params_fini(struct repl_params *p);

#endif /* REPL_RESOURCE_H */
