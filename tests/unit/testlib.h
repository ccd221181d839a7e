/* testlib.h - a tiny assertion kit for the C unit tests.
 * Each test program returns non-zero when any CHECK failed. */
#ifndef BERTH_TESTLIB_H
#define BERTH_TESTLIB_H

#include <stdio.h>
#include <string.h>

static int tl_failures;
static int tl_checks;

#define CHECK(cond)                                                          \
	do {                                                                 \
		tl_checks++;                                                 \
		if (!(cond)) {                                               \
			tl_failures++;                                       \
			fprintf(stderr, "%s:%d: CHECK failed: %s\n",         \
				__FILE__, __LINE__, #cond);                  \
		}                                                            \
	} while (0)

#define CHECK_MSG(cond, ...)                                                 \
	do {                                                                 \
		tl_checks++;                                                 \
		if (!(cond)) {                                               \
			tl_failures++;                                       \
			fprintf(stderr, "%s:%d: CHECK failed: %s: ",         \
				__FILE__, __LINE__, #cond);                  \
			fprintf(stderr, __VA_ARGS__);                        \
			fputc('\n', stderr);                                 \
		}                                                            \
	} while (0)

#define CHECK_STR(a, b)                                                      \
	do {                                                                 \
		const char *tl_a = (a), *tl_b = (b);                         \
		tl_checks++;                                                 \
		if (!tl_a || !tl_b || strcmp(tl_a, tl_b) != 0) {             \
			tl_failures++;                                       \
			fprintf(stderr, "%s:%d: %s == \"%s\", want \"%s\"\n", \
				__FILE__, __LINE__, #a,                      \
				tl_a ? tl_a : "(null)",                      \
				tl_b ? tl_b : "(null)");                     \
		}                                                            \
	} while (0)

/* substring check */
#define CHECK_CONTAINS(hay, needle)                                          \
	do {                                                                 \
		const char *tl_h = (hay), *tl_n = (needle);                  \
		tl_checks++;                                                 \
		if (!tl_h || !strstr(tl_h, tl_n)) {                          \
			tl_failures++;                                       \
			fprintf(stderr, "%s:%d: \"%s\" does not contain \"%s\"\n", \
				__FILE__, __LINE__, tl_h ? tl_h : "(null)",  \
				tl_n);                                       \
		}                                                            \
	} while (0)

#define TEST_DONE()                                                          \
	do {                                                                 \
		fprintf(stderr, "%d checks, %d failures\n", tl_checks,       \
			tl_failures);                                        \
		return tl_failures ? 1 : 0;                                  \
	} while (0)

#endif
