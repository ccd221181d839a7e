/* api_log.c - GET /api/v1/jobs/{id}/log (spec 2.10), in order:
 *   1. ".." or '/' in the id: 400, plain text "invalid Job ID: <id>" (Q5);
 *   2. no retrievable job logger (no FILE): 500 10009 "no log data getter
 *      is configured";
 *   3. the FILE getter's id rule (24 hex digits before the last '@'):
 *      500 10009 "invalid length of log identify" / "invalid log identify";
 *   4. <base_dir>/<id>.log (must resolve inside base_dir): missing 404
 *      10010 <id>; otherwise 200 with the raw bytes, only the last
 *      max_retrieve_size_mb MiB when that is set, as text/plain;
 *      charset=utf-8.
 * Civetweb hands over the path URL-decoded, so "..%2F" arrives as "../":
 * the id segment then cannot hold a '/', and a decoded ".." is refused by
 * step 1.
 *
 * Berth extension: ?follow=true streams the log while the job runs
 * (chunked transfer encoding), starting from the same tail, polling the
 * file and the job's status every 200 ms. It ends once the status is final
 * (or the stats are gone) and no run of the job is open in this process,
 * after sending the rest of the file; also when the client goes away
 * (noticed at the next write: a follower of a silent job holds its thread
 * until the job ends), when the daemon stops, after one hour, or when
 * Redis stays unreachable for 10 s. A log that does not exist yet is
 * waited for while the job exists and is not final (404 otherwise). At
 * most half of the API threads follow at once (503 beyond), so followers
 * never starve other requests. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/http.h"
#include "common/http_reply.h"
#include "logs/joblog.h"
#include "logs/log.h"
#include "store/tracker.h"

#define LOG_CONTENT_TYPE "text/plain; charset=utf-8"
#define LOG_CHUNK 65536
/* Logs up to this size go out with the headers in one write. */
#define LOG_ONE_WRITE_MAX (4 << 20)
#define FOLLOW_POLL_MS 200
#define FOLLOW_MAX_MS (3600LL * 1000)
#define FOLLOW_REDIS_GRACE_MS 10000
#define LOG_HEADERS "Content-Type: " LOG_CONTENT_TYPE "\r\n"
#define CHUNK_HEAD HTTP_REPLY_CHUNK_HEAD

/* Status line, headers and body in one write. */
static int
send_text(struct api_request *req, int status, const char *body, size_t len)
{
	http_reply_send(req->conn, status, LOG_HEADERS, body, len);
	return status;
}

static int64_t
tail_limit(const struct api_request *req)
{
	int64_t mb = req->d->cfg->max_retrieve_size_mb;
	return mb > 0 ? mb * 1048576 : 0;
}

static bool
want_follow(const struct api_request *req)
{
	if (!req->query)
		return false;
	char v[16];
	if (mg_get_var(req->query, strlen(req->query), "follow", v,
		       sizeof(v)) < 0)
		return false;
	return strcasecmp(v, "true") == 0 || strcmp(v, "1") == 0 ||
	       strcasecmp(v, "t") == 0;
}

/* The whole (tail of the) log as one response. */
static int
send_log(struct api_request *req, int fd)
{
	struct berr err;
	berr_clear(&err);
	struct stat st;
	if (fstat(fd, &st) < 0)
		return api_send_error(req, 500, API_E_JOB_LOG,
				      "cannot stat the log: %s",
				      strerror(errno));
	off_t off = joblog_tail_start(st.st_size, tail_limit(req));
	size_t total = (size_t)(st.st_size - off);
	if (total <= LOG_ONE_WRITE_MAX) {
		char *body = NULL;
		size_t len = 0;
		if (joblog_read_tail(fd, tail_limit(req), &body, &len, &err) <
		    0)
			return api_send_error(req, 500, API_E_JOB_LOG, "%s",
					      err.msg);
		send_text(req, 200, body, len);
		free(body);
		return 200;
	}
	/* large: headers, then the bytes in chunks of the announced length */
	if (!http_reply_head(req->conn, 200, LOG_HEADERS, total))
		return 200;
	char *buf = xmalloc(LOG_CHUNK);
	size_t sent = 0;
	while (sent < total) {
		size_t want = total - sent < LOG_CHUNK ? total - sent
						       : LOG_CHUNK;
		ssize_t r = pread(fd, buf, want, off + (off_t)sent);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0 || mg_write(req->conn, buf, (size_t)r) != r) {
			/* the body cannot be completed: never reuse this
			 * connection for another response */
			mg_disable_connection_keep_alive(req->conn);
			break;
		}
		sent += (size_t)r;
	}
	free(buf);
	return 200;
}

/* --- follow -------------------------------------------------------------- */

/* Sends what the file holds past *off. False when the client is gone. */
static bool
drain(struct mg_connection *conn, int fd, off_t *off, char *buf)
{
	for (;;) {
		ssize_t r = pread(fd, buf + CHUNK_HEAD, LOG_CHUNK, *off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return true; /* end for now (errors: retried later) */
		if (!http_reply_chunk(conn, buf, (size_t)r))
			return false;
		*off += r;
	}
}

enum job_state {
	JOB_GOING,  /* not final, or a run still open here */
	JOB_ENDED,  /* final status (or no stats) and no run open here */
	JOB_UNKNOWN /* Redis error */
};

static enum job_state
job_state(struct api_request *req, const char *id, struct berr *err)
{
	char *status = NULL;
	if (tracker_get_status(req->d->tracker, id, &status, err) < 0)
		return JOB_UNKNOWN;
	bool ended = !status || job_status_final(status);
	free(status);
	if (ended && joblog_run_active(req->d->joblog, id))
		ended = false;
	return ended ? JOB_ENDED : JOB_GOING;
}

static int
follow_log(struct api_request *req, const char *id, int fd)
{
	struct berthd *d = req->d;
	struct joblog *jl = d->joblog;
	struct berr err;
	berr_clear(&err);
	if (fd < 0) {
		/* no log yet: worth waiting for only while the job may run */
		enum job_state s = job_state(req, id, &err);
		if (s == JOB_UNKNOWN)
			return api_send_error(req, 500, API_E_JOB_LOG, "%s",
					      err.msg);
		if (s == JOB_ENDED)
			return api_send_error(req, 404, API_E_NOT_FOUND, "%s",
					      id);
	}
	if (!http_reply_chunked_head(req->conn, 200,
				     LOG_HEADERS "Cache-Control: no-cache\r\n"
						 "X-Content-Type-Options: "
						 "nosniff\r\n")) {
		if (fd >= 0)
			close(fd);
		return 200;
	}
	off_t off = 0;
	if (fd >= 0) {
		struct stat st;
		if (fstat(fd, &st) == 0)
			off = joblog_tail_start(st.st_size, tail_limit(req));
	}
	char *buf = xmalloc(CHUNK_HEAD + LOG_CHUNK + HTTP_REPLY_CHUNK_TAIL);
	int64_t begin = util_monotonic_ms();
	int64_t redis_down_since = 0;
	bool ended = false, client_gone = false;
	const char *why = "the job ended";
	for (;;) {
		if (fd < 0) {
			berr_clear(&err);
			if (joblog_open_log(jl, id, &fd, &err) < 0) {
				why = "the log cannot be opened";
				log_warn("log follow of %s: %s", id, err.msg);
				break;
			}
		}
		if (fd >= 0 && !drain(req->conn, fd, &off, buf)) {
			client_gone = true;
			why = "the client went away";
			break;
		}
		if (ended)
			break;
		if (atomic_load(&d->stopping)) {
			why = "the daemon stops";
			break;
		}
		int64_t now = util_monotonic_ms();
		if (now - begin >= FOLLOW_MAX_MS) {
			why = "the follow time limit was reached";
			break;
		}
		util_sleep_ms(FOLLOW_POLL_MS);
		berr_clear(&err);
		enum job_state s = job_state(req, id, &err);
		if (s == JOB_UNKNOWN) {
			now = util_monotonic_ms();
			if (!redis_down_since)
				redis_down_since = now;
			if (now - redis_down_since >= FOLLOW_REDIS_GRACE_MS) {
				why = "redis is unreachable";
				log_warn("log follow of %s: %s", id, err.msg);
				break;
			}
		} else {
			redis_down_since = 0;
			/* one more pass sends what the run wrote last */
			ended = s == JOB_ENDED;
		}
	}
	if (!client_gone && !http_reply_chunks_end(req->conn))
		mg_disable_connection_keep_alive(req->conn);
	log_debug("log follow of %s ended after %lld ms: %s", id,
		  (long long)(util_monotonic_ms() - begin), why);
	free(buf);
	if (fd >= 0)
		close(fd);
	return 200;
}

/* --- the route ----------------------------------------------------------- */

int
api_job_log(struct api_request *req)
{
	const char *id = req->params[0];
	enum joblog_id_check ck = joblog_check_id(id);
	/* spec 2.10 step 1: plain text, not the JSON error body */
	if (ck == JOBLOG_ID_TRAVERSAL) {
		char *body = xasprintf("invalid Job ID: %s", id);
		send_text(req, 400, body, strlen(body));
		free(body);
		return 400;
	}
	struct joblog *jl = req->d->joblog;
	if (!joblog_retrievable(jl))
		return api_send_error(req, 500, API_E_JOB_LOG,
				      "no log data getter is configured");
	if (ck != JOBLOG_ID_OK)
		return api_send_error(req, 500, API_E_JOB_LOG, "%s",
				      joblog_id_error(ck));
	bool follow = want_follow(req);
	int max_followers = req->d->cfg->api_threads / 2;
	if (max_followers < 1)
		max_followers = 1;
	if (follow && !joblog_follow_enter(jl, max_followers))
		return api_send_error(req, 503, API_E_JOB_LOG,
				      "too many clients follow job logs (at "
				      "most %d); try again later",
				      max_followers);

	struct berr err;
	berr_clear(&err);
	int fd = -1;
	int rc = joblog_open_log(jl, id, &fd, &err);
	int status;
	if (rc < 0)
		status = api_send_error(req, 500, API_E_JOB_LOG, "%s",
					err.msg);
	else if (follow)
		status = follow_log(req, id, fd); /* closes fd */
	else if (rc == 1)
		status = api_send_error(req, 404, API_E_NOT_FOUND, "%s", id);
	else
		status = send_log(req, fd);
	if (!follow && fd >= 0)
		close(fd);
	if (follow)
		joblog_follow_leave(jl);
	return status;
}
