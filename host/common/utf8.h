/* utf8.h - the one UTF-8 check of the host: the length of a valid
 * sequence, and its code point. "Valid" as Go's utf8.DecodeRune: the
 * shortest form only (no overlongs), no surrogates (U+D800..U+DFFF),
 * nothing above U+10FFFF. */
#ifndef BERTH_UTF8_H
#define BERTH_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* Length (1..4) of the valid UTF-8 sequence at s, of which n bytes are
 * available, storing its code point in *cp when cp is not NULL; 0 when
 * n is 0 or s does not start a valid sequence (Go: RuneError, width 1).
 * An ASCII byte is a sequence of 1. Bytes are read in order and the
 * first one that does not fit ends the check, so a NUL terminator never
 * lets it read past a string's end. */
size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp);

/* Same for the NUL-terminated string s: 1..4, or 0 when s does not
 * start a valid sequence (a NUL at s gives 1, as any ASCII byte). */
size_t utf8_len(const unsigned char *s);

#endif
