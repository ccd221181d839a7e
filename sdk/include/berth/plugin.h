/* berth/plugin.h - the Berth plugin SDK: everything a job plugin sees.
 *
 * A plugin is a shared object (built with berth_add_plugin() from
 * BerthPlugin.cmake) that the daemon dlopen()s when the plugin manifest
 * (plugins.yml) lists it. It exports exactly two symbols, both defined by
 * macros of this header:
 *
 *   BERTH_PLUGIN_MAGIC("name", "1.0.0");      -> berth_plugin_magic()
 *   BERTH_PLUGIN_JOB_TYPES(&type_a, &type_b); -> berth_plugin_job_types()
 *
 * and reaches the daemon only through the function table in ctx->host
 * (struct berth_host_api). It never links against the daemon: plugins are
 * built with -fvisibility=hidden and -Wl,-z,defs.
 *
 * A minimal plugin (sdk/examples/hello/hello.c is the complete version,
 * with validate(), check-in and stop handling):
 *
 *   #include <berth/plugin.h>
 *
 *   static enum berth_run_result
 *   hello_run(struct berth_job_ctx *ctx, const char *params, char *err,
 *             size_t errlen)
 *   {
 *           berth_log_info(ctx, "hello, %s", berth_param_string(ctx, "who"));
 *           return BERTH_RUN_SUCCESS;
 *   }
 *
 *   static const struct berth_job_type hello = {
 *           BERTH_JOB_TYPE_INIT,
 *           .name = "HELLO",
 *           .run = hello_run,
 *   };
 *
 *   BERTH_PLUGIN_MAGIC("hello", "1.0.0");
 *   BERTH_PLUGIN_JOB_TYPES(&hello);
 *
 * Rules of the boundary
 *
 * - Ownership. Nothing allocated on one side is freed on the other. Every
 *   string the host hands to a plugin (parameters, settings, properties, job
 *   id, ...) is owned by the host and stays valid until the callback that
 *   received the ctx returns; copy it to keep it. What a plugin hands back
 *   (error text written into `err`, check-in messages, log lines) is copied
 *   by the host before the call returns. Static data the plugin exports (the
 *   magic block, the job-type tables and the strings they point to) must
 *   stay valid while the plugin is loaded.
 *
 * - Threads. init() runs on the daemon's load/reload thread before any other
 *   callback of the type; fini() runs after every other callback of the
 *   type has returned (on the reload thread, or on the thread that released
 *   the last reference of a type removed from the manifest). validate()
 *   runs on HTTP API threads, run() and should_retry() on worker threads;
 *   any number of them may run at the same time, for the same type too, so
 *   a type_state must be read-only after init() or protected by the plugin.
 *   Plugin code stays mapped (no dlclose) while any callback may run.
 *
 * - Stack. validate() runs on an HTTP API thread with a small stack (about
 *   100 KiB): bound every recursion there. The host refuses request bodies
 *   nested deeper than 64 levels, but a string parameter that itself holds
 *   JSON (Harbor's src_resource, liteMeta, ...) is opaque to it; check such
 *   a text with berth_json_too_deep() before parsing it (cJSON recurses once
 *   per level, up to 1,000).
 *
 * - Compatibility. ABI major changes break plugins (the host refuses them);
 *   a minor bump only appends fields at the end of the structures below,
 *   which carry their own size, so plugins and hosts of different minors of
 *   one major work together:
 *   - a plugin built against an older minor than the host loads; the host
 *     treats the job-type fields the plugin does not have as zero;
 *   - a plugin built against a newer minor than the host loads too (the
 *     host logs that it runs a newer-minor plugin): the host copies only
 *     the job-type fields it knows, and its host table (struct
 *     berth_host_api, whose first member is its size) simply lacks the
 *     calls added after the host's minor. A plugin that means to run on
 *     older hosts checks BERTH_HOST_HAS() before every call added after
 *     1.0 and degrades when it is false; calls of 1.0 are always there.
 *   The "Since" notes below name the minor that added a call or field.
 *
 * The header is self-contained C99 and includes no third-party header.
 */
#ifndef BERTH_PLUGIN_H
#define BERTH_PLUGIN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version of this header. The host refuses a plugin whose major differs
 * from its own; any minor of that major loads (see "Compatibility" above).
 * 1.1 added the limits() and the every-callback property() host calls. */
#define BERTH_ABI_MAJOR 1
#define BERTH_ABI_MINOR 1
/* Product tag carried in the magic block; a .so built for another product
 * that happens to export the same symbol names is refused. */
#define BERTH_PRODUCT_TAG "berth"

/* Marks a symbol as exported from a plugin built with hidden visibility.
 * Only the two entry points need it; the macros below apply it. */
#if defined(__GNUC__) || defined(__clang__)
#define BERTH_EXPORT __attribute__((visibility("default")))
#define BERTH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define BERTH_EXPORT
#define BERTH_PRINTF(f, a)
#endif

/* ------------------------------------------------------------------------
 * The magic block: how the plugin was built.
 *
 * Returned by the exported function berth_plugin_magic(), which the host
 * calls once, right after dlopen() and before anything else, on the load
 * thread. The block is static data owned by the plugin. Authors never fill
 * it by hand: write BERTH_PLUGIN_MAGIC("name", "version"); once in one
 * source file. On a mismatch the host refuses the plugin and names the
 * first field that differs.
 * ------------------------------------------------------------------------ */
struct berth_magic {
	/* sizeof(struct berth_magic) as the plugin saw it. */
	uint32_t size;
	/* BERTH_ABI_MAJOR / BERTH_ABI_MINOR of the SDK the plugin was built
	 * against. */
	uint16_t abi_major;
	uint16_t abi_minor;
	/* BERTH_PRODUCT_TAG, NUL-padded. */
	char product[16];
	/* Build facts: sizeof(void *), sizeof(size_t) and sizeof(time_t) of
	 * the plugin's compiler and C library. They must equal the host's. */
	uint16_t sizeof_pointer;
	uint16_t sizeof_size_t;
	uint16_t sizeof_time_t;
	/* Zero. */
	uint16_t reserved;
	/* Free-form name and version of the plugin (not of a job type), shown
	 * by GET /api/v1/plugins. Static strings. */
	const char *plugin_name;
	const char *plugin_version;
};

/* Defines the exported berth_plugin_magic(). Write it exactly once per
 * plugin, at file scope, followed by a semicolon. name and version must be
 * string literals (or other static strings). */
#define BERTH_PLUGIN_MAGIC(name, version)                                    \
	static const struct berth_magic berth_magic_block_ = {               \
		.size = sizeof(struct berth_magic),                          \
		.abi_major = BERTH_ABI_MAJOR,                                \
		.abi_minor = BERTH_ABI_MINOR,                                \
		.product = BERTH_PRODUCT_TAG,                                \
		.sizeof_pointer = sizeof(void *),                            \
		.sizeof_size_t = sizeof(size_t),                             \
		.sizeof_time_t = sizeof(time_t),                             \
		.reserved = 0,                                               \
		.plugin_name = (name),                                       \
		.plugin_version = (version),                                 \
	};                                                                   \
	BERTH_EXPORT const struct berth_magic *berth_plugin_magic(void)      \
	{                                                                    \
		return &berth_magic_block_;                                  \
	}                                                                    \
	struct berth_magic_block_defined_

struct berth_job_ctx;

/* What run() reports. */
enum berth_run_result {
	/* The work is done. The job becomes Success. */
	BERTH_RUN_SUCCESS = 0,
	/* The work failed; the text written into err is the job's error. The
	 * job becomes Error and is retried while max_fails and should_retry()
	 * allow. */
	BERTH_RUN_ERROR = 1,
	/* run() observed berth_stop_requested() and returned early. The job
	 * stays Stopped; it is not retried. */
	BERTH_RUN_STOPPED = 2,
};

/* ------------------------------------------------------------------------
 * A job type: the plugin's description of one kind of job.
 *
 * Static const data owned by the plugin; the host copies it (as many bytes
 * as `size` says, at most its own size) into a zeroed host-owned struct
 * right after loading, so fields added in later minors read as zero/NULL
 * from older plugins. Begin every table with BERTH_JOB_TYPE_INIT.
 * ------------------------------------------------------------------------ */
struct berth_job_type {
	/* sizeof(struct berth_job_type) as the plugin saw it; filled in by
	 * BERTH_JOB_TYPE_INIT. */
	uint32_t size;

	/* The job type name clients submit (e.g. "DEMO"). Required. Must
	 * match the `name` of the manifest entry that loads it, and be unique
	 * among all loaded plugins. */
	const char *name;
	/* One line for humans (GET /api/v1/plugins). Optional. */
	const char *description;

	/* The limits. Each is read once at load time, as the starting value
	 * init() sees through berth_limits() and may change (so the table can
	 * stay static const even when a limit depends on settings or the
	 * environment); the manifest entry's max_fails, max_concurrency and
	 * priority, when given, override what the table and init() say.
	 *
	 * Maximum number of runs of one submission (first run + retries).
	 * 0 means the default, 4. */
	uint32_t max_fails;
	/* Global limit of concurrently running jobs of this type across all
	 * daemons sharing the Redis; 0 means unlimited. */
	uint32_t max_concurrency;
	/* Fetch priority of this type's queue (higher is tried first more
	 * often); 0 means the default, 1000. */
	uint32_t priority;

	/* Optional. Called once after the type is loaded (daemon start or
	 * reload), on the load thread, before any other callback of the type.
	 * Only the settings getters (berth_setting_*), property(), limits()
	 * and the log service work in ctx; the manifest entry's `settings` are
	 * what the getters read. Set the type's limits through
	 * berth_limits(ctx) (since 1.1). Store
	 * per-type state in *type_state (it is NULL on entry); the host hands
	 * it back to every later callback (ctx->type_state) and to fini().
	 * Return 0 on success; non-zero refuses the type (it is then not
	 * loaded and fini() is not called) - log the reason first with
	 * berth_log_error(). */
	int (*init)(struct berth_job_ctx *ctx, void **type_state);

	/* Optional. Called once when the type is unloaded (removed from the
	 * manifest and reloaded, or daemon shutdown), after the last run and
	 * validation of the type have returned. Frees what init() allocated.
	 * Runs on the load thread, or on the thread that finished the last
	 * run of a retired type; never concurrently with other callbacks of
	 * the type. */
	void (*fini)(void *type_state);

	/* Optional; NULL means "always true". Called on the worker thread
	 * after every run that did not succeed: false forbids further
	 * attempts even if max_fails would allow them. init() may replace it
	 * (struct berth_type_limits). */
	bool (*should_retry)(void *type_state);

	/* Optional; NULL accepts every submission. Called on an HTTP API
	 * thread when a job of this type is submitted, before it is queued.
	 * params_json is the submission's `parameters` as a JSON object text
	 * ("{}" when absent); the parameter getters (berth_param_*) read the
	 * same object. The job services are inert here: checkin() returns -1,
	 * stop_requested() false, job_id()/job_name()/job_kind() return "".
	 * Return 0 to accept. Return non-zero and write a NUL-terminated
	 * reason (at most errlen bytes, including the NUL) into err to reject:
	 * the client gets 400 with that text. */
	int (*validate)(struct berth_job_ctx *ctx, const char *params_json,
			char *err, size_t errlen);

	/* Required. The work, called on a worker thread for every attempt,
	 * with the job's parameters (params_json, and the berth_param_*
	 * getters). Periodic executions carry an extra string parameter
	 * "_job_kind_periodic_"; tolerate unknown keys. Poll
	 * berth_stop_requested() at convenient points and return
	 * BERTH_RUN_STOPPED promptly when it is true. On BERTH_RUN_ERROR write
	 * a NUL-terminated reason into err (at most errlen bytes). Several
	 * runs of the same type may execute at the same time. */
	enum berth_run_result (*run)(struct berth_job_ctx *ctx,
				     const char *params_json, char *err,
				     size_t errlen);

	/* Reserved for later minors; leave zero (BERTH_JOB_TYPE_INIT does). */
	void (*reserved[6])(void);
};

/* Starts every struct berth_job_type initializer:
 *   static const struct berth_job_type t = {
 *           BERTH_JOB_TYPE_INIT, .name = "T", .run = t_run,
 *   };
 */
#define BERTH_JOB_TYPE_INIT .size = sizeof(struct berth_job_type)

/* Defines the exported berth_plugin_job_types() returning the given
 * tables (pointers to static const struct berth_job_type, at least one).
 * Write it exactly once per plugin, at file scope, followed by a
 * semicolon. The host calls the function once after checking the magic, on
 * the load thread; the array and tables must stay valid while loaded. */
#define BERTH_PLUGIN_JOB_TYPES(...)                                          \
	BERTH_EXPORT const struct berth_job_type *const *                    \
	berth_plugin_job_types(size_t *count)                                \
	{                                                                    \
		static const struct berth_job_type *const berth_types_[] = { \
			__VA_ARGS__};                                        \
		*count = sizeof(berth_types_) / sizeof(berth_types_[0]);     \
		return berth_types_;                                         \
	}                                                                    \
	struct berth_job_types_defined_

/* The two entry points, as the host looks them up with dlsym(). */
BERTH_EXPORT const struct berth_magic *berth_plugin_magic(void);
BERTH_EXPORT const struct berth_job_type *const *
berth_plugin_job_types(size_t *count);

/* ------------------------------------------------------------------------
 * Host services.
 * ------------------------------------------------------------------------ */

/* Levels of the log service. FATAL is logged like ERROR at its own level;
 * it never terminates the daemon (return an error from run() instead). */
enum berth_log_level {
	BERTH_LOG_DEBUG = 0,
	BERTH_LOG_INFO = 1,
	BERTH_LOG_WARNING = 2,
	BERTH_LOG_ERROR = 3,
	BERTH_LOG_FATAL = 4,
};

/* JSON type of a parameter or setting, as read by *_type(). Numbers are
 * doubles, as in the REST API. */
enum berth_json_type {
	BERTH_JSON_ABSENT = 0, /* no such key (or no object at all) */
	BERTH_JSON_NULL = 1,
	BERTH_JSON_BOOL = 2,
	BERTH_JSON_NUMBER = 3,
	BERTH_JSON_STRING = 4,
	BERTH_JSON_ARRAY = 5,
	BERTH_JSON_OBJECT = 6,
};

/* The limits of a job type as init() may change them (since 1.1), reached
 * through berth_limits(ctx). Owned by the host; valid until init() returns.
 * On entry every member holds the value of the plugin's job-type table (0
 * meaning the default, as there); what init() leaves in them applies once
 * it returns 0 (nothing applies when it fails). The manifest entry's
 * max_fails, max_concurrency and priority override them. Like the host
 * table, the struct starts with its size and only grows at the end: check
 * BERTH_LIMITS_HAS(limits, member) before writing a member added after
 * 1.1. */
struct berth_type_limits {
	/* sizeof(struct berth_type_limits) as the host saw it. */
	uint32_t size;
	/* As the job-type fields of the same names. */
	uint32_t max_fails;
	uint32_t max_concurrency;
	uint32_t priority;
	/* As the job type's should_retry (NULL: always retry while max_fails
	 * allows). */
	bool (*should_retry)(void *type_state);
};

/* True when the limits struct `l` has the member `member`. */
#define BERTH_LIMITS_HAS(l, member)                                          \
	((l) != NULL &&                                                      \
	 offsetof(struct berth_type_limits, member) +                        \
			 sizeof(((const struct berth_type_limits *)0)->member) <= \
		 (l)->size)

/* The host's services, reached as ctx->host->call(ctx, ...) or through the
 * berth_* convenience macros further down. Owned by the host, valid while
 * the plugin is loaded. Every call takes the ctx the host passed to the
 * current callback and may only be made from inside that callback, on its
 * thread. The table starts with its own size and only grows at the end:
 * check BERTH_HOST_HAS(ctx->host, call) before using a call added after
 * ABI 1.0. All 1.0 calls are always present. Returned strings are owned by
 * the host and valid until the current callback returns. */
struct berth_host_api {
	/* sizeof(struct berth_host_api) as the host saw it. */
	uint32_t size;
	/* Zero. */
	uint32_t reserved0;

	/* Writes one line to the job's log (in run()) or to the service log
	 * (init(), validate()), tagged with the job type. level is an enum
	 * berth_log_level; lines below the configured level are not even
	 * formatted. Newlines in the message are flattened. */
	void (*log)(struct berth_job_ctx *ctx, int level, const char *fmt, ...)
		BERTH_PRINTF(3, 4);
	/* va_list form of log(). */
	void (*vlog)(struct berth_job_ctx *ctx, int level, const char *fmt,
		     va_list ap) BERTH_PRINTF(3, 0);

	/* run() only. Reports progress: the text is sent to the job's status
	 * hook and the job's check-in time is updated. Synchronous. Returns 0,
	 * or -1 when message is NULL or empty, when called outside run(), or
	 * when the host could not record it. */
	int (*checkin)(struct berth_job_ctx *ctx, const char *message);

	/* run() only. True once the job has been stopped (by a client or by
	 * daemon shutdown); run() should then return BERTH_RUN_STOPPED soon.
	 * Cheap enough to poll every 100 ms. False outside run(). */
	bool (*stop_requested)(struct berth_job_ctx *ctx);

	/* A context property: what Harbor's job context Get() gives a job
	 * (Harbor's configuration flattened to key -> text). Every callback
	 * since 1.1 (a 1.0 host answered NULL to everything). Returns NULL
	 * for a name that has no value; empty values count as none. The
	 * string stays valid while the type is loaded. The names, the first
	 * source that has the name winning:
	 *
	 * 1. The manifest entry's `settings.properties` mapping, any name:
	 *    string values as written, numbers as JSON writes them, booleans
	 *    as "true"/"false" (other values make the host refuse the entry).
	 *    This is how an operator sets a property for one type.
	 * 2. berthd's environment, under Harbor's configuration names:
	 *      core_url                 $CORE_URL
	 *      registry_url             $REGISTRY_URL
	 *      registry_controller_url  $REGISTRY_CONTROLLER_URL
	 *    (Berth does not fetch core's configuration from core.)
	 * 3. berthd's service configuration (berth.yml), read-only facts a job
	 *    may want, under Berth's own names:
	 *      berth.data_dir    the data directory (berth.data_dir)
	 *      berth.namespace   the Redis namespace (redis_pool.namespace)
	 *      berth.workers     the worker count (worker_pool.workers)
	 *    These are set when berthd runs the job; tools that load plugins
	 *    without a service configuration (berthd --check-config) have only
	 *    sources 1 and 2.
	 * No other name has a value. */
	const char *(*property)(struct berth_job_ctx *ctx, const char *key);

	/* run() only ("" elsewhere). The job's id (for a periodic execution
	 * "<policy id>@<epoch>"), its type name, and its kind ("Generic",
	 * "Scheduled" or "Periodic"). */
	const char *(*job_id)(struct berth_job_ctx *ctx);
	const char *(*job_name)(struct berth_job_ctx *ctx);
	const char *(*job_kind)(struct berth_job_ctx *ctx);
	/* run() only (0 elsewhere). The job's revision (bumped on retry). */
	int64_t (*job_revision)(struct berth_job_ctx *ctx);

	/* validate() and run(). The parameters as JSON object text, "{}" when
	 * the submission had none ("{}" in init()). Same text as the
	 * params_json argument. */
	const char *(*params_json)(struct berth_job_ctx *ctx);

	/* validate() and run(). Typed access to the top-level keys of the
	 * parameters object:
	 * param_type   - the JSON type of key, BERTH_JSON_ABSENT if missing;
	 * param_string - the string value, or NULL if absent or not a string;
	 * param_number - true and *out set if key is a number, else false;
	 * param_bool   - true and *out set if key is a boolean, else false;
	 * param_json   - any value serialised as JSON text, or NULL if absent.
	 */
	enum berth_json_type (*param_type)(struct berth_job_ctx *ctx,
					   const char *key);
	const char *(*param_string)(struct berth_job_ctx *ctx,
				    const char *key);
	bool (*param_number)(struct berth_job_ctx *ctx, const char *key,
			     double *out);
	bool (*param_bool)(struct berth_job_ctx *ctx, const char *key,
			   bool *out);
	const char *(*param_json)(struct berth_job_ctx *ctx, const char *key);

	/* Every callback. The same five getters over the `settings` object of
	 * the manifest entry that loaded this type ({} when it has none). */
	enum berth_json_type (*setting_type)(struct berth_job_ctx *ctx,
					     const char *key);
	const char *(*setting_string)(struct berth_job_ctx *ctx,
				      const char *key);
	bool (*setting_number)(struct berth_job_ctx *ctx, const char *key,
			       double *out);
	bool (*setting_bool)(struct berth_job_ctx *ctx, const char *key,
			     bool *out);
	const char *(*setting_json)(struct berth_job_ctx *ctx,
				    const char *key);

	/* Every callback except init() (NULL there). What init() stored in
	 * *type_state; same as ctx->type_state. */
	void *(*type_state)(struct berth_job_ctx *ctx);

	/* --- since 1.1: check BERTH_HOST_HAS(ctx->host, call) first ----- */

	/* init() only (NULL elsewhere). The type's limits, for init() to
	 * read and change; see struct berth_type_limits. */
	struct berth_type_limits *(*limits)(struct berth_job_ctx *ctx);

	/* Later minors append their calls here. */
};

/* True when the host table `api` has the call `member` (and it is set):
 * false on a host older than the minor that added the call. Needed only
 * for calls added after ABI 1.0; always use it when the plugin may run on
 * a host of an older minor than its header's. */
#define BERTH_HOST_HAS(api, member)                                          \
	((api) != NULL &&                                                    \
	 offsetof(struct berth_host_api, member) +                           \
			 sizeof(((const struct berth_host_api *)0)->member) <= \
		 (api)->size &&                                              \
	 (api)->member != NULL)

/* The context of one callback. Created by the host for every init(),
 * validate() and run() call and destroyed when it returns: do not keep
 * the pointer. Owned by the host; plugins only read it. */
struct berth_job_ctx {
	/* sizeof(struct berth_job_ctx) as the host saw it. */
	uint32_t size;
	/* The host services. Never NULL. */
	const struct berth_host_api *host;
	/* What init() stored (NULL in init() and for types without init). */
	void *type_state;
	/* The host's; do not touch. */
	void *host_private;
};

/* Convenience wrappers over ctx->host. */
#define berth_log(ctx, level, ...) (ctx)->host->log((ctx), (level), __VA_ARGS__)
#define berth_log_debug(ctx, ...) berth_log((ctx), BERTH_LOG_DEBUG, __VA_ARGS__)
#define berth_log_info(ctx, ...) berth_log((ctx), BERTH_LOG_INFO, __VA_ARGS__)
#define berth_log_warning(ctx, ...)                                          \
	berth_log((ctx), BERTH_LOG_WARNING, __VA_ARGS__)
#define berth_log_error(ctx, ...) berth_log((ctx), BERTH_LOG_ERROR, __VA_ARGS__)
#define berth_log_fatal(ctx, ...) berth_log((ctx), BERTH_LOG_FATAL, __VA_ARGS__)
#define berth_checkin(ctx, msg) (ctx)->host->checkin((ctx), (msg))
#define berth_stop_requested(ctx) (ctx)->host->stop_requested((ctx))
#define berth_property(ctx, key) (ctx)->host->property((ctx), (key))
#define berth_job_id(ctx) (ctx)->host->job_id((ctx))
#define berth_job_name(ctx) (ctx)->host->job_name((ctx))
#define berth_job_kind(ctx) (ctx)->host->job_kind((ctx))
#define berth_job_revision(ctx) (ctx)->host->job_revision((ctx))
#define berth_params_json(ctx) (ctx)->host->params_json((ctx))
#define berth_param_type(ctx, key) (ctx)->host->param_type((ctx), (key))
#define berth_param_string(ctx, key) (ctx)->host->param_string((ctx), (key))
#define berth_param_number(ctx, key, out)                                    \
	(ctx)->host->param_number((ctx), (key), (out))
#define berth_param_bool(ctx, key, out)                                      \
	(ctx)->host->param_bool((ctx), (key), (out))
#define berth_param_json(ctx, key) (ctx)->host->param_json((ctx), (key))
#define berth_setting_type(ctx, key) (ctx)->host->setting_type((ctx), (key))
#define berth_setting_string(ctx, key)                                       \
	(ctx)->host->setting_string((ctx), (key))
#define berth_setting_number(ctx, key, out)                                  \
	(ctx)->host->setting_number((ctx), (key), (out))
#define berth_setting_bool(ctx, key, out)                                    \
	(ctx)->host->setting_bool((ctx), (key), (out))
#define berth_setting_json(ctx, key) (ctx)->host->setting_json((ctx), (key))
#define berth_type_state(ctx) (ctx)->host->type_state((ctx))
/* Since 1.1 (check BERTH_HOST_HAS(ctx->host, limits) first). */
#define berth_limits(ctx) (ctx)->host->limits((ctx))

/* Settings readers for init(), over the getters above, that log what is
 * wrong (berth_log_error) and return -1 for init() to refuse the type, or
 * return 0. An absent or null setting takes the default. Header-only. */

/* An integer setting in lo..hi into *out (def when absent); else "setting
 * <key> must be an integer from <lo> to <hi>". */
static inline int
berth_setting_int_in(struct berth_job_ctx *ctx, const char *key,
		     long long def, long long lo, long long hi,
		     long long *out)
{
	enum berth_json_type t = berth_setting_type(ctx, key);
	double v = 0;
	*out = def;
	if (t == BERTH_JSON_ABSENT || t == BERTH_JSON_NULL)
		return 0;
	if (!berth_setting_number(ctx, key, &v) ||
	    !(v >= (double)lo && v <= (double)hi) ||
	    v != (double)(long long)v) {
		berth_log_error(ctx,
				"setting %s must be an integer from %lld to "
				"%lld",
				key, lo, hi);
		return -1;
	}
	*out = (long long)v;
	return 0;
}

/* A non-empty string setting, copied into *out (malloc'ed; free it), or a
 * copy of def when absent (NULL when def is NULL); else "setting <key> must
 * be a non-empty string" (or "out of memory"). */
static inline int
berth_setting_strdup(struct berth_job_ctx *ctx, const char *key,
		     const char *def, char **out)
{
	enum berth_json_type t = berth_setting_type(ctx, key);
	const char *v = def;
	*out = NULL;
	if (t != BERTH_JSON_ABSENT && t != BERTH_JSON_NULL) {
		v = berth_setting_string(ctx, key);
		if (!v || !*v) {
			berth_log_error(ctx,
					"setting %s must be a non-empty string",
					key);
			return -1;
		}
	}
	if (!v)
		return 0;
	size_t n = strlen(v) + 1;
	if (!(*out = (char *)malloc(n))) {
		berth_log_error(ctx, "out of memory");
		return -1;
	}
	memcpy(*out, v, n);
	return 0;
}

/* A boolean setting into *out (left as it is when absent); else "setting
 * <key> must be true or false". */
static inline int
berth_setting_bool_in(struct berth_job_ctx *ctx, const char *key, bool *out)
{
	enum berth_json_type t = berth_setting_type(ctx, key);
	if (t == BERTH_JSON_ABSENT || t == BERTH_JSON_NULL)
		return 0;
	if (!berth_setting_bool(ctx, key, out)) {
		berth_log_error(ctx, "setting %s must be true or false", key);
		return -1;
	}
	return 0;
}

/* Whether the JSON text s nests arrays and objects deeper than max_depth
 * levels. Brackets inside strings do not count; the text need not be valid
 * JSON (unbalanced text may count deeper than it would parse, and is
 * refused either way). Use it before parsing a JSON text received as a
 * string parameter in validate() (see "Stack" above). Header-only. */
static inline bool
berth_json_too_deep(const char *s, int max_depth)
{
	int depth = 0;
	bool in_str = false;
	for (; s && *s; s++) {
		if (in_str) {
			if (*s == '\\' && s[1])
				s++;
			else if (*s == '"')
				in_str = false;
		} else if (*s == '"') {
			in_str = true;
		} else if (*s == '[' || *s == '{') {
			if (++depth > max_depth)
				return true;
		} else if (*s == ']' || *s == '}') {
			depth--;
		}
	}
	return false;
}

#ifdef __cplusplus
}
#endif

#endif /* BERTH_PLUGIN_H */
