/* redis_sentinel.h - the master of a redis+sentinel:// pool: discovery
 * through the sentinels, its generation, and the watcher thread of
 * +switch-master. Store-internal: used by redis_conn.c (and the tests).
 *
 * The master's address comes with a generation, bumped each time the
 * address changes (0: none known yet). A connection remembers the
 * generation it was dialled in; redis_conn.c re-dials one whose generation
 * is no longer the current one, so every thread follows a failover on its
 * next command.
 *
 * When the sentinels are asked (always in the URL's order, each with
 * SENTINEL get-master-addr-by-name, the first answer whose ROLE says
 * "master" wins):
 *   - before a dial when no master is known yet or one is suspected: a
 *     connection of the current generation failed, or a reply said the
 *     server is a replica (READONLY, MASTERDOWN); at most every 100 ms,
 *     and by one thread at a time (the others dial the address they
 *     have);
 *   - at once when the watcher sees +switch-master for our master (the
 *     announced address is tried first) or re-subscribes after losing its
 *     sentinel (events may have been missed).
 * Every dial to a sentinel or a master candidate uses the pool's timeouts
 * capped at 2 s. */
#ifndef BERTH_REDIS_SENTINEL_H
#define BERTH_REDIS_SENTINEL_H

#include <stdbool.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

#include "store/redis_conn.h"
#include "common/util.h"

struct redis_sentinel;

/* t must be a sentinel target (t->sentinel). Starts the watcher thread,
 * subscribed to +switch-master on the first sentinel that answers (the
 * next one in the list when it goes away). Nothing is dialled here. */
struct redis_sentinel *redis_sentinel_new(const struct redis_target *t,
					  int connect_timeout_ms,
					  int command_timeout_ms);
/* Stops the watcher and frees. NULL-safe. */
void redis_sentinel_free(struct redis_sentinel *s);

/* The master to dial: asks the sentinels first when none is known or one
 * is suspected (see above). 0 with *a and *gen set, or -1 with e (the
 * last discovery's error) when no master is known. */
int redis_sentinel_master(struct redis_sentinel *s, struct redis_addr *a,
			  uint64_t *gen, struct berr *e);
/* The master known now, without asking anyone: its generation (0, and
 * *a untouched, when none is known yet). */
uint64_t redis_sentinel_peek(struct redis_sentinel *s, struct redis_addr *a);
/* The current generation (one atomic load). */
uint64_t redis_sentinel_generation(struct redis_sentinel *s);
/* A connection of generation gen failed or talked to a replica: when gen
 * is still the current generation, the next dial asks the sentinels. */
void redis_sentinel_suspect(struct redis_sentinel *s, uint64_t gen);

/* ROLE on c: 0 when it answers "master", else -1 with e naming what
 * (prefix: what, e.g. "master 10.0.0.1:6379"). */
int redis_role_check(redisContext *c, const char *what, struct berr *e);
/* True for an error reply that means the server is not (or no longer) the
 * master: READONLY, MASTERDOWN, and a script error carrying either. */
bool redis_reply_not_master(const redisReply *r);
/* "host:port" or "[v6]:port" into buf. */
const char *redis_addr_str(const struct redis_addr *a, char *buf, size_t n);

#endif
