/* utf8.c - the UTF-8 check; see utf8.h. */
#include "common/utf8.h"

size_t
utf8_decode(const unsigned char *s, size_t n, uint32_t *cp)
{
	if (n == 0)
		return 0;
	unsigned char c = s[0];
	if (c < 0x80) {
		if (cp)
			*cp = c;
		return 1;
	}
	size_t len;
	/* the range of the second byte excludes overlongs (E0, F0),
	 * surrogates (ED) and code points above U+10FFFF (F4) */
	unsigned char lo = 0x80, hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		if (c == 0xE0)
			lo = 0xA0;
		else if (c == 0xED)
			hi = 0x9F;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		if (c == 0xF0)
			lo = 0x90;
		else if (c == 0xF4)
			hi = 0x8F;
	} else {
		return 0;
	}
	if (n < len || s[1] < lo || s[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (s[i] < 0x80 || s[i] > 0xBF)
			return 0;
	if (cp) {
		uint32_t v = c & (len == 2 ? 0x1F : len == 3 ? 0x0F : 0x07);
		for (size_t i = 1; i < len; i++)
			v = (v << 6) | (s[i] & 0x3F);
		*cp = v;
	}
	return len;
}

size_t
utf8_len(const unsigned char *s)
{
	/* 4 is enough for any sequence; a NUL fails the range check of
	 * the byte it is in, so nothing past it is read */
	return utf8_decode(s, 4, NULL);
}
