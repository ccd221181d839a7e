/* fixtures.h - where a C unit test finds its fixture files:
 * $BERTH_FIXTURES/<set> (tests/fixtures/<set>; CMake sets the variable).
 *
 *	if (fixtures_init("config") < 0)
 *		return 2;
 *	config_load(&c, fx("good.yml"), ...);
 *
 * Header-only like testlib.h: one test program includes it once. */
#ifndef BERTH_TEST_FIXTURES_H
#define BERTH_TEST_FIXTURES_H

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

/* The fixture directory of this test, set by fixtures_init. */
static char fixdir[PATH_MAX];

/* Sets fixdir to $BERTH_FIXTURES/<set>; 0, or -1 after printing that
 * BERTH_FIXTURES is not set. */
static inline int
fixtures_init(const char *set)
{
	const char *f = getenv("BERTH_FIXTURES");
	if (!f) {
		fprintf(stderr, "BERTH_FIXTURES is not set\n");
		return -1;
	}
	snprintf(fixdir, sizeof(fixdir), "%s/%s", f, set);
	return 0;
}

/* Path of the fixture name in fixdir; one of 4 rotating buffers, so up to
 * 4 can be used at once. */
static inline const char *
fx(const char *name)
{
	static char bufs[4][PATH_MAX + 64];
	static int next;
	char *b = bufs[next++ % 4];
	snprintf(b, sizeof(bufs[0]), "%s/%s", fixdir, name);
	return b;
}

#endif
