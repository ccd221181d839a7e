/* hostapi.c - the SDK host services; see hostapi.h and <berth/plugin.h>.
 *
 * Every entry point of the table is defensive about what a plugin passes
 * (NULL ctx, NULL key, a call made in the wrong phase): it answers with the
 * documented neutral value rather than crashing the daemon. */
#include "plugins/hostapi.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json.h"
#include "logs/log.h"
#include "common/util.h"

static struct hostapi_ctx *
ctx_of(struct berth_job_ctx *pub)
{
	if (!pub)
		return NULL;
	struct hostapi_ctx *c = pub->host_private;
	/* host_private points back at the enclosing context; anything else
	 * is not a context this host made. */
	if (!c || &c->pub != pub)
		return NULL;
	return c;
}

static char *
json_text(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	if (!s) {
		/* cJSON allocates with malloc: out of memory, as xmalloc. */
		fprintf(stderr, "berthd: out of memory serialising JSON\n");
		abort();
	}
	char *copy = xstrdup(s);
	cJSON_free(s);
	return copy;
}

static const char *
scratch_keep(struct hostapi_ctx *c, char *s)
{
	c->scratch = xrealloc(c->scratch,
			      (c->n_scratch + 1) * sizeof(*c->scratch));
	c->scratch[c->n_scratch++] = s;
	return s;
}

/* --- log ---------------------------------------------------------------- */

static int
clamp_level(int level)
{
	if (level < BERTH_LOG_DEBUG)
		return BERTH_LOG_DEBUG;
	if (level > BERTH_LOG_FATAL)
		return BERTH_LOG_FATAL;
	return level;
}

__attribute__((format(printf, 3, 0))) static void
host_vlog(struct berth_job_ctx *pub, int level, const char *fmt, va_list ap)
{
	struct hostapi_ctx *c = ctx_of(pub);
	if (!fmt)
		return;
	level = clamp_level(level);
	/* The berth and blog levels are the same numbers. */
	bool to_job = c && c->phase == HOSTAPI_RUN && c->hooks.log;
	int min = to_job ? c->hooks.log_level : blog_min_level;
	bool keep_error = c && level >= BERTH_LOG_ERROR;
	if (level < min && !keep_error)
		return;

	char line[HOSTAPI_LOG_LINE_MAX];
	vsnprintf(line, sizeof(line), fmt, ap);
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (keep_error) {
		size_t n = strnlen(line, sizeof(c->last_error) - 1);
		memcpy(c->last_error, line, n);
		c->last_error[n] = '\0';
	}
	if (level < min)
		return;
	if (to_job)
		c->hooks.log(c->hooks.opaque, level, line);
	else
		blog_write(level, c && c->type_name ? c->type_name : "plugin",
			   0, "%s", line);
}

__attribute__((format(printf, 3, 4))) static void
host_log(struct berth_job_ctx *pub, int level, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	host_vlog(pub, level, fmt, ap);
	va_end(ap);
}

/* --- job services ------------------------------------------------------- */

static int
host_checkin(struct berth_job_ctx *pub, const char *message)
{
	struct hostapi_ctx *c = ctx_of(pub);
	if (!c || c->phase != HOSTAPI_RUN || !message || !message[0])
		return -1;
	if (!c->hooks.checkin)
		return 0;
	return c->hooks.checkin(c->hooks.opaque, message) == 0 ? 0 : -1;
}

static bool
host_stop_requested(struct berth_job_ctx *pub)
{
	struct hostapi_ctx *c = ctx_of(pub);
	if (!c || c->phase != HOSTAPI_RUN || !c->hooks.stop_requested)
		return false;
	return c->hooks.stop_requested(c->hooks.opaque);
}

static const char *
host_property(struct berth_job_ctx *pub, const char *key)
{
	struct hostapi_ctx *c = ctx_of(pub);
	if (!c || !key)
		return NULL;
	if (c->phase == HOSTAPI_RUN && c->hooks.property) {
		const char *v = c->hooks.property(c->hooks.opaque, key);
		if (v)
			return v;
	}
	return json_str(c->properties, key);
}

static struct berth_type_limits *
host_limits(struct berth_job_ctx *pub)
{
	struct hostapi_ctx *c = ctx_of(pub);
	if (!c || c->phase != HOSTAPI_INIT)
		return NULL;
	return c->limits;
}

static const char *
run_string(struct berth_job_ctx *pub, size_t off)
{
	struct hostapi_ctx *c = ctx_of(pub);
	if (!c || c->phase != HOSTAPI_RUN)
		return "";
	const char *s = *(const char *const *)((const char *)&c->job + off);
	return s ? s : "";
}

static const char *
host_job_id(struct berth_job_ctx *pub)
{
	return run_string(pub, offsetof(struct hostapi_job, id));
}

static const char *
host_job_name(struct berth_job_ctx *pub)
{
	return run_string(pub, offsetof(struct hostapi_job, name));
}

static const char *
host_job_kind(struct berth_job_ctx *pub)
{
	return run_string(pub, offsetof(struct hostapi_job, kind));
}

static int64_t
host_job_revision(struct berth_job_ctx *pub)
{
	struct hostapi_ctx *c = ctx_of(pub);
	if (!c || c->phase != HOSTAPI_RUN)
		return 0;
	return c->job.revision;
}

/* --- parameters and settings ------------------------------------------- */

static const char *
host_params_json(struct berth_job_ctx *pub)
{
	struct hostapi_ctx *c = ctx_of(pub);
	if (!c || c->phase == HOSTAPI_INIT || !c->params_text)
		return "{}";
	return c->params_text;
}

static const cJSON *
params_item(struct berth_job_ctx *pub, const char *key,
	    struct hostapi_ctx **out)
{
	struct hostapi_ctx *c = ctx_of(pub);
	*out = c;
	if (!c || !key || c->phase == HOSTAPI_INIT)
		return NULL;
	if (!cJSON_IsObject(c->job.params))
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(c->job.params, key);
}

static const cJSON *
settings_item(struct berth_job_ctx *pub, const char *key,
	      struct hostapi_ctx **out)
{
	struct hostapi_ctx *c = ctx_of(pub);
	*out = c;
	if (!c || !key || !cJSON_IsObject(c->settings))
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(c->settings, key);
}

static enum berth_json_type
item_type(const cJSON *v)
{
	if (!v)
		return BERTH_JSON_ABSENT;
	if (cJSON_IsNull(v))
		return BERTH_JSON_NULL;
	if (cJSON_IsBool(v))
		return BERTH_JSON_BOOL;
	if (cJSON_IsNumber(v))
		return BERTH_JSON_NUMBER;
	if (cJSON_IsString(v))
		return BERTH_JSON_STRING;
	if (cJSON_IsArray(v))
		return BERTH_JSON_ARRAY;
	if (cJSON_IsObject(v))
		return BERTH_JSON_OBJECT;
	return BERTH_JSON_ABSENT; /* cJSON_Raw/Invalid: not from a parser */
}

static const char *
item_string(const cJSON *v)
{
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static bool
item_number(const cJSON *v, double *out)
{
	if (!cJSON_IsNumber(v))
		return false;
	if (out)
		*out = v->valuedouble;
	return true;
}

static bool
item_bool(const cJSON *v, bool *out)
{
	if (!cJSON_IsBool(v))
		return false;
	if (out)
		*out = cJSON_IsTrue(v);
	return true;
}

static const char *
item_json(struct hostapi_ctx *c, const cJSON *v)
{
	if (!c || !v)
		return NULL;
	return scratch_keep(c, json_text(v));
}

static enum berth_json_type
host_param_type(struct berth_job_ctx *pub, const char *key)
{
	struct hostapi_ctx *c;
	return item_type(params_item(pub, key, &c));
}

static const char *
host_param_string(struct berth_job_ctx *pub, const char *key)
{
	struct hostapi_ctx *c;
	return item_string(params_item(pub, key, &c));
}

static bool
host_param_number(struct berth_job_ctx *pub, const char *key, double *out)
{
	struct hostapi_ctx *c;
	return item_number(params_item(pub, key, &c), out);
}

static bool
host_param_bool(struct berth_job_ctx *pub, const char *key, bool *out)
{
	struct hostapi_ctx *c;
	return item_bool(params_item(pub, key, &c), out);
}

static const char *
host_param_json(struct berth_job_ctx *pub, const char *key)
{
	struct hostapi_ctx *c;
	const cJSON *v = params_item(pub, key, &c);
	return item_json(c, v);
}

static enum berth_json_type
host_setting_type(struct berth_job_ctx *pub, const char *key)
{
	struct hostapi_ctx *c;
	return item_type(settings_item(pub, key, &c));
}

static const char *
host_setting_string(struct berth_job_ctx *pub, const char *key)
{
	struct hostapi_ctx *c;
	return item_string(settings_item(pub, key, &c));
}

static bool
host_setting_number(struct berth_job_ctx *pub, const char *key, double *out)
{
	struct hostapi_ctx *c;
	return item_number(settings_item(pub, key, &c), out);
}

static bool
host_setting_bool(struct berth_job_ctx *pub, const char *key, bool *out)
{
	struct hostapi_ctx *c;
	return item_bool(settings_item(pub, key, &c), out);
}

static const char *
host_setting_json(struct berth_job_ctx *pub, const char *key)
{
	struct hostapi_ctx *c;
	const cJSON *v = settings_item(pub, key, &c);
	return item_json(c, v);
}

static void *
host_type_state(struct berth_job_ctx *pub)
{
	struct hostapi_ctx *c = ctx_of(pub);
	return c ? c->pub.type_state : NULL;
}

/* --- the table ---------------------------------------------------------- */

static const struct berth_host_api host_api = {
	.size = sizeof(struct berth_host_api),
	.log = host_log,
	.vlog = host_vlog,
	.checkin = host_checkin,
	.stop_requested = host_stop_requested,
	.property = host_property,
	.job_id = host_job_id,
	.job_name = host_job_name,
	.job_kind = host_job_kind,
	.job_revision = host_job_revision,
	.params_json = host_params_json,
	.param_type = host_param_type,
	.param_string = host_param_string,
	.param_number = host_param_number,
	.param_bool = host_param_bool,
	.param_json = host_param_json,
	.setting_type = host_setting_type,
	.setting_string = host_setting_string,
	.setting_number = host_setting_number,
	.setting_bool = host_setting_bool,
	.setting_json = host_setting_json,
	.type_state = host_type_state,
	.limits = host_limits,
};

const struct berth_host_api *
hostapi_table(void)
{
	return &host_api;
}

/* --- contexts ----------------------------------------------------------- */

static void
ctx_base(struct hostapi_ctx *c, enum hostapi_phase phase,
	 const char *type_name, void *type_state, const cJSON *settings,
	 const cJSON *properties)
{
	memset(c, 0, sizeof(*c));
	c->pub.size = sizeof(c->pub);
	c->pub.host = &host_api;
	c->pub.type_state = type_state;
	c->pub.host_private = c;
	c->phase = phase;
	c->type_name = type_name;
	c->settings = settings;
	c->properties = properties;
	c->hooks.log_level = BERTH_LOG_INFO;
}

static void
ctx_params(struct hostapi_ctx *c, const cJSON *params)
{
	if (cJSON_IsObject(params)) {
		c->job.params = params;
		c->params_text = json_text(params);
	} else {
		c->job.params = NULL;
		c->params_text = xstrdup("{}");
	}
}

void
hostapi_ctx_init_load(struct hostapi_ctx *c, const char *type_name,
		      const cJSON *settings, const cJSON *properties,
		      struct berth_type_limits *limits)
{
	ctx_base(c, HOSTAPI_INIT, type_name, NULL, settings, properties);
	c->limits = limits;
	c->params_text = xstrdup("{}");
}

void
hostapi_ctx_init_validate(struct hostapi_ctx *c, const char *type_name,
			  void *type_state, const cJSON *settings,
			  const cJSON *properties, const cJSON *params)
{
	ctx_base(c, HOSTAPI_VALIDATE, type_name, type_state, settings,
		 properties);
	ctx_params(c, params);
}

void
hostapi_ctx_init_run(struct hostapi_ctx *c, const char *type_name,
		     void *type_state, const cJSON *settings,
		     const cJSON *properties, const struct hostapi_job *job,
		     const struct hostapi_run_hooks *hooks)
{
	ctx_base(c, HOSTAPI_RUN, type_name, type_state, settings, properties);
	if (job)
		c->job = *job;
	if (hooks)
		c->hooks = *hooks;
	ctx_params(c, job ? job->params : NULL);
}

void
hostapi_ctx_fini(struct hostapi_ctx *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->n_scratch; i++)
		free(c->scratch[i]);
	free(c->scratch);
	free(c->params_text);
	c->scratch = NULL;
	c->n_scratch = 0;
	c->params_text = NULL;
	c->pub.host_private = NULL;
}

const char *
hostapi_ctx_params_json(const struct hostapi_ctx *c)
{
	return c && c->params_text ? c->params_text : "{}";
}
