/* hostapi.h - the host side of the SDK's services (struct berth_host_api):
 * the one function table every plugin callback reaches the daemon through,
 * and the per-callback context behind the plugin's struct berth_job_ctx.
 *
 * A context is built on the stack for one plugin callback and torn down
 * right after it returns (hostapi_ctx_fini frees every string handed to the
 * plugin during the call). Three phases:
 *
 *   HOSTAPI_INIT      init(): settings getters, properties, limits, log.
 *   HOSTAPI_VALIDATE  validate(): + parameter getters; job services inert.
 *   HOSTAPI_RUN       run(): everything; the job engine supplies the job's
 *                     identity and parameters (struct hostapi_job) and the
 *                     services that need it (struct hostapi_run_hooks).
 *
 * The plugin registry builds INIT and VALIDATE contexts itself; the job
 * engine normally goes through plugin_run() (plugin.h), which builds the RUN
 * context from the two structs below. A context is used by one thread only.
 * None of the functions here are exported under an SDK (berth_) name. */
#ifndef BERTH_HOSTAPI_H
#define BERTH_HOSTAPI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <berth/plugin.h>
#include <cjson/cJSON.h>

enum hostapi_phase {
	HOSTAPI_INIT = 0,
	HOSTAPI_VALIDATE = 1,
	HOSTAPI_RUN = 2,
};

/* The job a RUN context is about. Everything is borrowed: it must outlive
 * the run() call. NULL strings read as "". */
struct hostapi_job {
	const char *id;       /* or "<policy id>@<epoch>" for an execution */
	const char *name;     /* job type name */
	const char *kind;     /* "Generic" | "Scheduled" | "Periodic" */
	int64_t revision;
	const cJSON *params;  /* the parameters object, or NULL for none */
};

/* What the job engine plugs into a RUN context. Every hook is optional and
 * is called on the thread running the plugin, with `opaque` as given.
 * Strings passed to hooks are valid only during the hook call. */
struct hostapi_run_hooks {
	void *opaque;
	/* Lowest enum berth_log_level the job log wants; lines below it are
	 * not even formatted. */
	int log_level;
	/* One formatted log line of the plugin (no trailing newline, at most
	 * HOSTAPI_LOG_LINE_MAX - 1 bytes). NULL: the service log is used. */
	void (*log)(void *opaque, int level, const char *message);
	/* A check-in (message is non-empty). Return 0, or -1 when it could
	 * not be recorded (the plugin sees -1). NULL hook: accepted, not
	 * recorded. */
	int (*checkin)(void *opaque, const char *message);
	/* True once the job is stopped. NULL: never. */
	bool (*stop_requested)(void *opaque);
	/* A context property of this run, or NULL when the engine has none of
	 * that name: the type's own properties (hostapi_ctx_init_run) answer
	 * then. The returned string must stay valid until the run ends. NULL
	 * hook: only the type's properties. */
	const char *(*property)(void *opaque, const char *key);
};

#define HOSTAPI_LOG_LINE_MAX 4096
#define HOSTAPI_ERROR_MAX 512

/* The context behind one callback. pub comes first: the plugin gets
 * &ctx->pub. Treat the other members as private to hostapi.c. */
struct hostapi_ctx {
	struct berth_job_ctx pub;
	enum hostapi_phase phase;
	const char *type_name;  /* tags service log lines */
	const cJSON *settings;  /* the manifest entry's settings object */
	const cJSON *properties; /* the type's properties: {name: "text"} */
	struct berth_type_limits *limits; /* INIT only */
	struct hostapi_job job; /* RUN only */
	struct hostapi_run_hooks hooks;
	char *params_text;      /* serialised parameters ("{}" when none) */
	char **scratch;         /* strings returned by *_json getters */
	size_t n_scratch;
	/* Last message logged at ERROR or FATAL during the callback ("" when
	 * none): the reason of a failed init(). */
	char last_error[HOSTAPI_ERROR_MAX];
};

/* The one host API table (static, valid for the life of the process). */
const struct berth_host_api *hostapi_table(void);

/* Context for init(): type_name tags log lines; settings is the parsed
 * `settings` object of the manifest entry, properties the type's property
 * object ({name: string}, see properties.h) (both borrowed; NULL reads as
 * {}). limits (borrowed, may be NULL) is what berth_limits() hands out;
 * its size member must be set. */
void hostapi_ctx_init_load(struct hostapi_ctx *c, const char *type_name,
			   const cJSON *settings, const cJSON *properties,
			   struct berth_type_limits *limits);
/* Context for validate(): params is the submission's parameters object
 * (borrowed; NULL or a non-object reads as {}). */
void hostapi_ctx_init_validate(struct hostapi_ctx *c, const char *type_name,
			       void *type_state, const cJSON *settings,
			       const cJSON *properties, const cJSON *params);
/* Context for run(). job and hooks are copied (what they point to is
 * borrowed); hooks may be NULL. */
void hostapi_ctx_init_run(struct hostapi_ctx *c, const char *type_name,
			  void *type_state, const cJSON *settings,
			  const cJSON *properties,
			  const struct hostapi_job *job,
			  const struct hostapi_run_hooks *hooks);
/* Frees what the context handed out. The plugin's pointers into it die. */
void hostapi_ctx_fini(struct hostapi_ctx *c);

/* The serialised parameters, as passed to validate()/run(). */
const char *hostapi_ctx_params_json(const struct hostapi_ctx *c);

#endif
