/* hook_host.c - the receivers of the hook agent and their circuit breaker;
 * see "Receivers" at the top of hook.c.
 *
 * A receiver is keyed by scheme://host:port of the event URL. Its entry
 * lives in a small hash table on the agent (under a->mu) while events for
 * it are queued: each queued event holds a reference (e->host), so the
 * table never outgrows the receivers of pending events. Jobs parked on a
 * degraded receiver wait in its FIFO list, linked through the same
 * rprev/rnext as the ready list (a job is in at most one of them). */
#include <ctype.h>
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "hooks/hook.h"
#include "hooks/hook_internal.h"

/* ---- the key ------------------------------------------------------------ */

char *
hook_host_key(const char *url)
{
	char *scheme = NULL, *host = NULL, *port = NULL, *key = NULL;
	CURLU *u = curl_url();
	if (u &&
	    curl_url_set(u, CURLUPART_URL, url,
			 CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) ==
		    CURLUE_OK &&
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) ==
		    CURLUE_OK) {
		key = xasprintf("%s://%s:%s", scheme, host, port);
		for (char *p = key; *p; p++)
			*p = (char)tolower((unsigned char)*p);
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(port);
	curl_url_cleanup(u);
	return key ? key : xstrdup(url);
}

/* ---- the table ---------------------------------------------------------- */

static void
hosts_grow(struct hook_agent *a)
{
	size_t n = a->nhbuckets ? a->nhbuckets * 2 : 8;
	struct hook_host **b = xcalloc(n, sizeof(*b));
	for (size_t i = 0; i < a->nhbuckets; i++) {
		struct hook_host *h = a->hosts[i];
		while (h) {
			struct hook_host *next = h->hnext;
			size_t k = hook_str_hash(h->key) & (n - 1);
			h->hnext = b[k];
			b[k] = h;
			h = next;
		}
	}
	free(a->hosts);
	a->hosts = b;
	a->nhbuckets = n;
}

void
hook_host_ref_locked(struct hook_agent *a, struct hook_event *e)
{
	struct hook_host *h = NULL;
	if (a->nhbuckets) {
		size_t k = hook_str_hash(e->host_key) & (a->nhbuckets - 1);
		for (h = a->hosts[k]; h; h = h->hnext)
			if (strcmp(h->key, e->host_key) == 0)
				break;
	}
	if (!h) {
		if (a->nhosts >= a->nhbuckets)
			hosts_grow(a);
		h = xcalloc(1, sizeof(*h));
		h->key = xstrdup(e->host_key);
		size_t k = hook_str_hash(h->key) & (a->nhbuckets - 1);
		h->hnext = a->hosts[k];
		a->hosts[k] = h;
		a->nhosts++;
	}
	h->nevents++;
	e->host = h;
}

void
hook_host_unref_locked(struct hook_agent *a, struct hook_event *e)
{
	struct hook_host *h = e->host;
	e->host = NULL;
	if (!h || --h->nevents > 0)
		return;
	/* no event left: nothing can be in flight or parked here */
	size_t k = hook_str_hash(h->key) & (a->nhbuckets - 1);
	struct hook_host **pp = &a->hosts[k];
	while (*pp != h)
		pp = &(*pp)->hnext;
	*pp = h->hnext;
	a->nhosts--;
	free(h->key);
	free(h);
}

void
hook_hosts_free(struct hook_agent *a)
{
	for (size_t i = 0; i < a->nhbuckets; i++) {
		struct hook_host *h = a->hosts[i];
		while (h) {
			struct hook_host *next = h->hnext;
			free(h->key);
			free(h);
			h = next;
		}
	}
	free(a->hosts);
	a->hosts = NULL;
	a->nhbuckets = a->nhosts = 0;
}

/* ---- the breaker -------------------------------------------------------- */

bool
hook_host_admit_locked(struct hook_job *j)
{
	struct hook_host *h = j->head->host;
	if (!h->degraded || h->inflight == 0) {
		h->inflight++;
		return true;
	}
	/* a probe is running: wait for its verdict */
	j->parked = h;
	j->rnext = NULL;
	j->rprev = h->parked_tail;
	if (h->parked_tail)
		h->parked_tail->rnext = j;
	else
		h->parked_head = j;
	h->parked_tail = j;
	h->nparked++;
	return false;
}

void
hook_host_unpark_locked(struct hook_job *j)
{
	struct hook_host *h = j->parked;
	if (!h)
		return;
	if (j->rprev)
		j->rprev->rnext = j->rnext;
	else
		h->parked_head = j->rnext;
	if (j->rnext)
		j->rnext->rprev = j->rprev;
	else
		h->parked_tail = j->rprev;
	j->rprev = j->rnext = NULL;
	j->parked = NULL;
	h->nparked--;
}

/* Moves up to n parked jobs, oldest first, to the ready list. */
static void
release_parked(struct hook_agent *a, struct hook_host *h, size_t n)
{
	size_t moved = 0;
	for (; moved < n && h->parked_head; moved++) {
		struct hook_job *j = h->parked_head;
		hook_host_unpark_locked(j);
		hook_ready_push_locked(a, j);
	}
	if (moved == 1)
		pthread_cond_signal(&a->cv);
	else if (moved > 1)
		pthread_cond_broadcast(&a->cv);
}

void
hook_host_kick_locked(struct hook_agent *a, struct hook_host *h)
{
	if (h && h->degraded && h->inflight == 0)
		release_parked(a, h, 1);
}

enum hook_host_change
hook_host_done_locked(struct hook_agent *a, struct hook_host *h,
		      enum hook_reach r)
{
	enum hook_host_change change = HOOK_HOST_SAME;
	h->inflight--;
	if (r == HOOK_REACH_SILENT && !h->degraded) {
		h->degraded = true;
		change = HOOK_HOST_DEGRADED;
	} else if (r == HOOK_REACH_ANSWERED && h->degraded) {
		h->degraded = false;
		change = HOOK_HOST_RECOVERED;
	}
	/* healthy: every parked job goes; degraded: the next probe, once
	 * nothing else runs there */
	if (!h->degraded)
		release_parked(a, h, h->nparked);
	else
		hook_host_kick_locked(a, h);
	return change;
}
