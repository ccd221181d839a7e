/* properties.h - the context properties a plugin reads with
 * berth_property(): the names and their sources are documented at the
 * `property` call of <berth/plugin.h>; this is the one place that builds
 * them. A property set is a cJSON object whose members are all strings. */
#ifndef BERTH_PROPERTIES_H
#define BERTH_PROPERTIES_H

#include <cjson/cJSON.h>

struct berth_config;

/* The service-configuration part ("berth.data_dir", "berth.namespace",
 * "berth.workers"); cfg NULL gives {}. New object. */
cJSON *props_from_config(const struct berth_config *cfg);

/* The properties of one job type: the `properties` mapping of its manifest
 * settings, then Harbor's names taken from the environment, then service
 * (a props_from_config() object, or NULL); the first source that has a
 * name wins. New object; NULL with *reason (a refusal "...; fix: ...")
 * when settings.properties is not a mapping of strings, numbers and
 * booleans. */
cJSON *props_for_type(const cJSON *settings, const cJSON *service,
		      char **reason);

#endif
