/* isolate_proto.h - the framed protocol between berthd and a plugin runner
 * process (isolate.h): one stream socket (a socketpair; the runner's end is
 * descriptor ISOLATE_FD), both ends built from the same binary, so numbers
 * travel in host byte order.
 *
 * A frame is a 5-byte header, then the payload:
 *
 *   uint32 length of the payload | uint8 type | payload (length bytes)
 *
 *   daemon -> runner                    runner -> daemon
 *   ISO_JOB       JSON object (below)    ISO_LOG       uint8 level, text
 *   ISO_STOP      (empty)                ISO_CHECKIN   text
 *   ISO_CHECKIN_RC  uint8 0 ok / 1 not   ISO_PROPERTY  key
 *   ISO_PROPERTY_VAL  uint8 1 + value,   ISO_RESULT    int32 enum
 *                     or uint8 0: none                 berth_run_result,
 *                                                      then the error text
 *
 * ISO_JOB is the first frame and the only one the runner waits for:
 *   {"file": realpath of the .so, "type": job type name,
 *    "settings": {...}, "properties": {...}, "id", "name", "kind",
 *    "revision": "<decimal>", "params": {...} or null,
 *    "log_level": lowest job-log level, "service_level": blog level,
 *    "property_hook": true when the daemon answers ISO_PROPERTY}
 * ISO_CHECKIN and ISO_PROPERTY are answered (in order) by ISO_CHECKIN_RC
 * and ISO_PROPERTY_VAL; ISO_STOP may come at any time, ahead of an answer.
 * ISO_RESULT is the runner's last frame. Texts carry no NUL; payloads are
 * not NUL-terminated on the wire. */
#ifndef BERTH_ISOLATE_PROTO_H
#define BERTH_ISOLATE_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Bumped on any change of the frames below: a runner (argv[3]) of another
 * version refuses the job with a clear reason. */
#define ISO_PROTO_VERSION 1
/* The runner's end of the socket. */
#define ISOLATE_FD 3
#define ISO_HDR_LEN 5u
/* Largest frames each side accepts: the job (its parameters are bounded
 * by the REST body limit long before this) and anything from a runner. */
#define ISO_JOB_MAX (64u << 20)
#define ISO_CHILD_FRAME_MAX (1u << 20)

enum iso_frame {
	ISO_JOB = 1,
	ISO_STOP = 2,
	ISO_CHECKIN_RC = 3,
	ISO_PROPERTY_VAL = 4,
	ISO_LOG = 16,
	ISO_CHECKIN = 17,
	ISO_PROPERTY = 18,
	ISO_RESULT = 19,
};

/* A byte buffer with a read position: what is queued to send, or what was
 * received and not parsed yet. */
struct iso_buf {
	char *p;
	size_t len; /* bytes held, from p */
	size_t off; /* bytes already consumed (sent or parsed) */
	size_t cap;
};

void iso_buf_fini(struct iso_buf *b);
/* Appends one frame whose payload is a (alen bytes) then c (clen bytes). */
void iso_buf_frame(struct iso_buf *b, int type, const void *a, size_t alen,
		   const void *c, size_t clen);
/* Room for n more bytes at p + len. */
void iso_buf_reserve(struct iso_buf *b, size_t n);
/* Drops the consumed bytes. */
void iso_buf_compact(struct iso_buf *b);

/* The next complete frame at b->off: 1 (and consumes it; payload points
 * into b until the next change of b), 0 when incomplete, -1 when its length
 * is above max. */
int iso_buf_next(struct iso_buf *b, uint32_t max, int *type,
		 const char **payload, uint32_t *len);

/* Blocking helpers of the runner (EINTR retried, no SIGPIPE). */
int iso_send_frame(int fd, int type, const void *a, size_t alen,
		   const void *c, size_t clen);
/* One frame; *payload is malloc'ed with a NUL after its len bytes. 0, or -1
 * on end of stream, a read error or a frame above max. */
int iso_recv_frame(int fd, uint32_t max, int *type, char **payload,
		   uint32_t *len);

#endif
