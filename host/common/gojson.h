/* gojson.h - JSON text exactly as Go's encoding/json writes it (spec 0):
 * object keys sorted by byte order (Go maps), `<` `>` `&` U+2028 U+2029
 * escaped as \u003c \u003e \u0026 \u2028 \u2029, `/` not escaped, numbers
 * (float64) in shortest round-trip form (5, 2.5, 1e+21, 1e-7: Go's
 * floatEncoder shortens "e-07" to "e-7"; spec 0 writes 1e-07), no
 * whitespace. Control characters: \n \r \t \b \f (Go >= 1.22), others
 * \u00xx. Needed byte-exact for unique keys (spec 5.7), periodic messages
 * (spec 8) and stored parameters. */
#ifndef BERTH_GOJSON_H
#define BERTH_GOJSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "common/util.h"

/* The growing text buffer of the host (the encoders here, the metrics
 * exposition, berthctl's output). Zero-initialised it is empty; once
 * anything was put, p is NUL-terminated text of len bytes. */
struct gbuf {
	char *p;
	size_t len, cap;
};
void gbuf_put(struct gbuf *b, const char *s, size_t n);
void gbuf_puts(struct gbuf *b, const char *s);
void gbuf_putc(struct gbuf *b, char c);
__attribute__((format(printf, 2, 3))) void
gbuf_printf(struct gbuf *b, const char *fmt, ...);
/* Returns the NUL-terminated text and leaves b empty. */
char *gbuf_take(struct gbuf *b);
void gbuf_free(struct gbuf *b);

/* Appends v as Go JSON (objects with sorted keys). NULL appends "null".
 * v stands for a value Go got from json.Unmarshal (interface{}): strings
 * and keys are written as by gojson_append_decoded_string, duplicate keys
 * keep the last value (a Go map), NaN/Inf (not valid JSON) give null.
 * Not recursive: any depth is safe on a small thread stack. */
void gojson_append(struct gbuf *b, const cJSON *v);
/* Appends a Go JSON string literal of s (n bytes), as json.Marshal writes
 * a Go string: a byte that is not valid UTF-8 becomes the escape \ufffd. */
void gojson_append_string(struct gbuf *b, const char *s, size_t n);
/* Same for a string that came out of Go's JSON decoder, which had already
 * replaced each invalid byte by a real U+FFFD: the encoder then writes the
 * raw bytes EF BF BD (not the escape). */
void gojson_append_decoded_string(struct gbuf *b, const char *s, size_t n);
/* Appends a float64 the way Go prints it (strconv 'g'-like shortest form
 * with Go's exponent rules: exponent form when exp < -6 || exp >= 21). */
void gojson_append_number(struct gbuf *b, double d);
/* Appends an int64 in decimal. */
void gojson_append_int(struct gbuf *b, long long v);

/* 1 when no array or object in the n bytes of JSON text s nests deeper
 * than max_depth (brackets inside strings, escapes included, do not
 * count), else 0. A linear scan that does not validate: run it before a
 * recursive parser so hostile input cannot exhaust a thread's stack. */
int gojson_depth_ok(const char *s, size_t n, int max_depth);

/* Whole-value helper: new string. */
char *gojson_encode(const cJSON *v);

#endif
