/* test_retention_policy.c - RETENTION's rule engine
 * (plugins/retention/policy.c and glob.c), linked alone: doublestar
 * patterns as Harbor's tag selectors use them, the liteMeta parser and
 * its refusals, and the "or" evaluation (latestPushedK,
 * nDaysSinceLastPush, always, matches/excludes, untagged, scope, disabled
 * rules). The registry side is tested end to end by
 * tests/integration/test_retention.py. */
#include <stdlib.h>
#include <string.h>

#include "policy.h"
#include "testlib.h"

static bool
gm(const char *pattern, const char *s)
{
	struct ret_glob *g = NULL;
	char err[256];
	if (ret_glob_compile(pattern, &g, err, sizeof(err)) != 0) {
		fprintf(stderr, "compile %s: %s\n", pattern, err);
		return false;
	}
	bool m = ret_glob_match(g, s);
	ret_glob_free(g);
	return m;
}

static bool
bad(const char *pattern, const char *want)
{
	struct ret_glob *g = NULL;
	char err[256] = "";
	int rc = ret_glob_compile(pattern, &g, err, sizeof(err));
	ret_glob_free(g);
	if (rc == 0)
		return false;
	if (!strstr(err, want)) {
		fprintf(stderr, "pattern %s: error \"%s\" lacks \"%s\"\n",
			pattern, err, want);
		return false;
	}
	return true;
}

static void
test_glob(void)
{
	/* the empty pattern matches everything (Harbor's match()) */
	CHECK(gm("", "v1"));
	CHECK(gm("", "a/b"));
	/* stars */
	CHECK(gm("**", "v1.0"));
	CHECK(gm("**", "lib/a/b"));
	CHECK(gm("*", "v1.0"));
	CHECK(!gm("*", "lib/app"));
	CHECK(gm("*", ""));
	CHECK(gm("v*", "v1.0"));
	CHECK(gm("v*", "v"));
	CHECK(!gm("v*", "x1"));
	CHECK(gm("*-rc", "1.0-rc"));
	CHECK(!gm("*-rc", "1.0-rc1"));
	CHECK(gm("a*b*c", "aXXbYYc"));
	CHECK(gm("a*b*c", "abc"));
	CHECK(!gm("a*b*c", "aXXbYY"));
	CHECK(gm("a**b", "aXb")); /* ** inside a component is a * */
	CHECK(!gm("a**b", "aX/Yb"));
	/* a long subject against many stars stays quick */
	char longs[4001];
	memset(longs, 'a', 4000);
	longs[4000] = '\0';
	CHECK(!gm("*a*a*a*a*a*a*a*b", longs));
	/* ? and classes */
	CHECK(gm("v?.0", "v1.0"));
	CHECK(!gm("v?.0", "v10.0"));
	CHECK(!gm("?", ""));
	CHECK(!gm("a?b", "a/b"));
	CHECK(gm("[a-c]x", "bx"));
	CHECK(!gm("[a-c]x", "dx"));
	CHECK(gm("[^a-c]x", "dx"));
	CHECK(!gm("[^a-c]x", "ax"));
	CHECK(gm("[!a]x", "bx"));
	CHECK(gm("[abc]", "c"));
	CHECK(gm("v[0-9].[0-9]", "v1.2"));
	/* alternatives */
	CHECK(gm("{v1,v2}*", "v1-x"));
	CHECK(gm("{v1,v2}*", "v2"));
	CHECK(!gm("{v1,v2}*", "v3"));
	CHECK(gm("release-{1.*,2.[0-3]}", "release-1.9"));
	CHECK(gm("release-{1.*,2.[0-3]}", "release-2.3"));
	CHECK(!gm("release-{1.*,2.[0-3]}", "release-2.4"));
	CHECK(gm("{a,{b,c}d}", "a"));
	CHECK(gm("{a,{b,c}d}", "cd"));
	CHECK(!gm("{a,{b,c}d}", "c"));
	CHECK(gm("x{,-dev}", "x"));
	CHECK(gm("x{,-dev}", "x-dev"));
	CHECK(gm("{latest,stable}", "stable"));
	CHECK(!gm("{latest,stable}", "latest1"));
	/* escapes */
	CHECK(gm("\\*", "*"));
	CHECK(!gm("\\*", "a"));
	CHECK(gm("a\\{b", "a{b"));
	CHECK(gm("[\\]]", "]"));
	/* components */
	CHECK(gm("lib/**", "lib/a/b"));
	CHECK(gm("lib/**", "lib/a"));
	CHECK(gm("**/app", "app"));
	CHECK(gm("**/app", "x/y/app"));
	CHECK(!gm("**/app", "x/y/app2"));
	CHECK(gm("lib/*/app", "lib/x/app"));
	CHECK(!gm("lib/*/app", "lib/x/y/app"));
	CHECK(gm("lib/**/app", "lib/x/y/app"));
	CHECK(gm("lib/**/app", "lib/app"));
	/* UTF-8: one character, not one byte */
	CHECK(gm("caf?", "caf\xc3\xa9"));
	CHECK(gm("[\xc3\xa0-\xc3\xbc]", "\xc3\xa9"));
	CHECK(gm("*\xc3\xa9", "caf\xc3\xa9"));
	/* malformed */
	CHECK(bad("[", "character class"));
	CHECK(bad("v[]", "character class"));
	CHECK(bad("[a-", "character class"));
	CHECK(bad("{a,b", "unclosed '{'"));
	CHECK(bad("a\\", "ends with"));
	CHECK(bad("{a,[}", "character class"));
	CHECK(bad("{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}{a,b}",
		  "alternatives"));
}

static void
test_time(void)
{
	long long t = -1;
	CHECK(ret_parse_rfc3339("1970-01-01T00:00:00Z", &t) && t == 0);
	CHECK(ret_parse_rfc3339("2024-01-01T00:00:00Z", &t) &&
	      t == 1704067200);
	CHECK(ret_parse_rfc3339("2024-01-01T02:00:00.5+02:00", &t) &&
	      t == 1704067200);
	CHECK(ret_parse_rfc3339("2023-12-31T19:00:00.123456789-05:00", &t) &&
	      t == 1704067200);
	CHECK(ret_parse_rfc3339("2000-02-29T12:00:00Z", &t) &&
	      t == 951825600);
	CHECK(!ret_parse_rfc3339("2024-01-01", &t));
	CHECK(!ret_parse_rfc3339("2024-01-01T00:00:00", &t));
	CHECK(!ret_parse_rfc3339("2024-13-01T00:00:00Z", &t));
	CHECK(!ret_parse_rfc3339("2024-01-01T00:00:00Zjunk", &t));
	CHECK(!ret_parse_rfc3339(NULL, &t));
}

static bool
parse_fails(const char *meta, const char *want)
{
	struct ret_policy p;
	char err[512] = "";
	int rc = ret_policy_parse(meta, &p, err, sizeof(err));
	if (rc == 0) {
		ret_policy_fini(&p);
		fprintf(stderr, "accepted: %s\n", meta);
		return false;
	}
	if (!strstr(err, want)) {
		fprintf(stderr, "%s: error \"%s\" lacks \"%s\"\n", meta, err,
			want);
		return false;
	}
	return true;
}

#define SEL(dec, pat) \
	"{\"kind\":\"doublestar\",\"decoration\":\"" dec "\",\"pattern\":\"" \
	pat "\"}"
/* a selector with extras {"untagged":false} */
#define SELT(dec, pat)                                                        \
	"{\"kind\":\"doublestar\",\"decoration\":\"" dec "\",\"pattern\":\"" \
	pat "\",\"extras\":\"{\\\"untagged\\\":false}\"}"
#define RULE(tpl, params, sels)                                               \
	"{\"action\":\"retain\",\"template\":\"" tpl "\",\"params\":" params \
	",\"tag_selectors\":[" sels "]}"

static void
test_parse(void)
{
	struct ret_policy p;
	char err[512];
	CHECK(ret_policy_parse(
		      "{\"algorithm\":\"or\",\"rules\":[" RULE(
			      "latestPushedK", "{\"latestPushedK\":2}",
			      SEL("matches", "**")) "]}",
		      &p, err, sizeof(err)) == 0);
	CHECK(p.n_rules == 1 && p.rules[0].tpl == RET_TPL_LATEST_PUSHED_K &&
	      p.rules[0].param == 2 && !p.rules[0].param_default &&
	      p.rules[0].tags[0].untagged);
	ret_policy_fini(&p);

	/* defaults: K 10, N 30; numbers truncate as Go's int() */
	CHECK(ret_policy_parse("{\"rules\":[" RULE("latestPushedK", "{}",
						   SEL("matches", "**")) "," RULE("nDaysSinceLastPush", "{\"nDaysSinceLastPush\":7.9}", SEL("excludes", "x")) "]}",
			       &p, err, sizeof(err)) == 0);
	CHECK(p.rules[0].param == RET_DEFAULT_K && p.rules[0].param_default);
	CHECK(p.rules[1].param == 7 && !p.rules[1].tags[0].untagged);
	char line[512];
	ret_rule_describe(&p.rules[1], line, sizeof(line));
	CHECK_CONTAINS(line, "pushed within 7 days");
	CHECK_CONTAINS(line, "excluding \"x\"");
	ret_policy_fini(&p);

	/* extras: Go's json.Unmarshal into struct{Untagged bool} */
	CHECK(ret_policy_parse(
		      "{\"rules\":[{\"template\":\"always\",\"tag_selectors\":["
		      "{\"kind\":\"doublestar\",\"decoration\":\"matches\","
		      "\"pattern\":\"**\",\"extras\":\"{\\\"untagged\\\":false}\"},"
		      "{\"kind\":\"doublestar\",\"decoration\":\"matches\","
		      "\"pattern\":\"**\",\"extras\":\"{}\"},"
		      "{\"kind\":\"doublestar\",\"decoration\":\"matches\","
		      "\"pattern\":\"**\",\"extras\":\"not json\"},"
		      "{\"kind\":\"doublestar\",\"decoration\":\"excludes\","
		      "\"pattern\":\"**\",\"extras\":\"{\\\"untagged\\\":true}\"},"
		      "{\"kind\":\"doublestar\",\"decoration\":\"excludes\","
		      "\"pattern\":\"**\",\"extras\":\"{\\\"untagged\\\":1}\"}"
		      "]}]}",
		      &p, err, sizeof(err)) == 0);
	CHECK(!p.rules[0].tags[0].untagged);
	CHECK(!p.rules[0].tags[1].untagged);
	CHECK(p.rules[0].tags[2].untagged);  /* unparsable: default */
	CHECK(p.rules[0].tags[3].untagged);
	CHECK(!p.rules[0].tags[4].untagged); /* wrong type: default */
	ret_policy_fini(&p);

	/* a disabled rule is not checked further */
	CHECK(ret_policy_parse("{\"rules\":[{\"disabled\":true,\"template\":"
			       "\"latestPulledN\"}]}",
			       &p, err, sizeof(err)) == 0);
	CHECK(p.n_rules == 1 && p.rules[0].disabled);
	ret_policy_fini(&p);

	CHECK(parse_fails("{", "not valid JSON"));
	CHECK(parse_fails("[]", "not a JSON object"));
	CHECK(parse_fails("{\"algorithm\":\"and\",\"rules\":[]}",
			  "algorithm \"and\" is not supported"));
	CHECK(parse_fails("{\"algorithm\":\"or\"}", "rules is missing"));
	CHECK(parse_fails("{\"rules\":[" RULE("latestPulledN", "{}",
					      SEL("matches", "**")) "]}",
			  "rule 1: template \"latestPulledN\" is not "
			  "supported"));
	CHECK(parse_fails("{\"rules\":[{\"id\":9,\"template\":\"nothing\","
			  "\"tag_selectors\":[" SEL("matches", "**") "]}]}",
			  "rule 1 (id 9): template \"nothing\""));
	CHECK(parse_fails("{\"rules\":[{\"action\":\"delete\",\"template\":"
			  "\"always\",\"tag_selectors\":[" SEL("matches",
							     "**") "]}]}",
			  "action \"delete\" is not supported"));
	CHECK(parse_fails("{\"rules\":[" RULE("latestPushedK",
					      "{\"latestPushedK\":\"3\"}",
					      SEL("matches", "**")) "]}",
			  "latestPushedK is a string, not a number"));
	CHECK(parse_fails("{\"rules\":[" RULE("latestPushedK",
					      "{\"latestPushedK\":-1}",
					      SEL("matches", "**")) "]}",
			  "less than zero"));
	CHECK(parse_fails("{\"rules\":[" RULE("latestPushedK",
					      "{\"latestPushedK\":40000}",
					      SEL("matches", "**")) "]}",
			  "too large"));
	CHECK(parse_fails("{\"rules\":[{\"template\":\"always\"}]}",
			  "tag_selectors must be a non-empty array"));
	CHECK(parse_fails("{\"rules\":[" RULE("always", "{}",
					      "{\"kind\":\"label\","
					      "\"decoration\":\"withLabels\","
					      "\"pattern\":\"x\"}") "]}",
			  "kind \"label\" is not supported"));
	CHECK(parse_fails("{\"rules\":[" RULE("always", "{}",
					      SEL("repoMatches", "**")) "]}",
			  "decoration \"repoMatches\" is not supported"));
	CHECK(parse_fails("{\"rules\":[" RULE("always", "{}",
					      SEL("matches", "v[")) "]}",
			  "rule 1 tag selector 1: malformed pattern \"v[\""));
	CHECK(parse_fails("{\"rules\":[{\"template\":\"always\","
			  "\"tag_selectors\":[" SEL("matches", "**") "],"
			  "\"scope_selectors\":{\"repository\":["
			  SEL("matches", "**") "]}}]}",
			  "scope selector 1: decoration \"matches\""));
}

struct cand_spec {
	const char *digest;
	const char *tags[3];
	long long pushed;
};

/* Evaluates meta over the candidates; returns a string of R/D per
 * candidate, in input order. */
static const char *
eval(const char *meta, const struct cand_spec *spec, size_t n,
     const char *repo_json, long long now)
{
	static char out[64];
	struct ret_policy p;
	struct ret_candidate c[16];
	char err[512];
	out[0] = '\0';
	if (ret_policy_parse(meta, &p, err, sizeof(err)) != 0) {
		fprintf(stderr, "parse: %s\n", err);
		return "parse error";
	}
	struct ret_repository repo;
	CHECK(ret_repository_parse(repo_json ? repo_json
					     : "{\"namespace\":\"lib\","
					       "\"name\":\"app\"}",
				   &repo, err, sizeof(err)) == 0);
	for (size_t i = 0; i < n; i++) {
		size_t k = 0;
		while (k < 3 && spec[i].tags[k])
			k++;
		c[i] = (struct ret_candidate){
			.digest = spec[i].digest,
			.tags = spec[i].tags,
			.n_tags = k,
			.pushed = spec[i].pushed,
		};
	}
	struct ret_rule_outcome oc[8];
	size_t kept = ret_policy_evaluate(&p, &repo, c, n, now, oc);
	for (size_t i = 0; i < n; i++)
		out[i] = c[i].retained ? 'R' : 'D';
	out[n] = '\0';
	size_t count = 0;
	for (size_t i = 0; i < n; i++)
		count += c[i].retained;
	CHECK(kept == count);
	ret_repository_fini(&repo);
	ret_policy_fini(&p);
	return out;
}

static void
test_evaluate(void)
{
	/* five tags pushed at distinct times, given out of order */
	static const struct cand_spec five[] = {
		{"sha256:c", {"v3"}, 300}, {"sha256:a", {"v1"}, 100},
		{"sha256:e", {"v5"}, 500}, {"sha256:b", {"v2"}, 200},
		{"sha256:d", {"v4"}, 400},
	};
	CHECK_STR(eval("{\"rules\":[" RULE("latestPushedK",
					   "{\"latestPushedK\":2}",
					   SEL("matches", "**")) "]}",
		       five, 5, NULL, 0),
		  "DDRDR");
	/* K larger than the list, and 0 */
	CHECK_STR(eval("{\"rules\":[" RULE("latestPushedK",
					   "{\"latestPushedK\":9}",
					   SEL("matches", "**")) "]}",
		       five, 5, NULL, 0),
		  "RRRRR");
	CHECK_STR(eval("{\"rules\":[" RULE("latestPushedK",
					   "{\"latestPushedK\":0}",
					   SEL("matches", "**")) "]}",
		       five, 5, NULL, 0),
		  "DDDDD");
	/* no rules: nothing retained (Harbor deletes everything) */
	CHECK_STR(eval("{\"rules\":[]}", five, 5, NULL, 0), "DDDDD");
	/* nDaysSinceLastPush: now = 10 days after 0; 7 days -> pushed >=
	 * 3 days; boundary inclusive */
	static const struct cand_spec days[] = {
		{"sha256:a", {"old"}, 2 * 86400},
		{"sha256:b", {"edge"}, 3 * 86400},
		{"sha256:c", {"new"}, 9 * 86400},
		{"sha256:d", {"unknown"}, 0},
	};
	CHECK_STR(eval("{\"rules\":[" RULE("nDaysSinceLastPush",
					   "{\"nDaysSinceLastPush\":7}",
					   SEL("matches", "**")) "]}",
		       days, 4, NULL, 10 * 86400),
		  "DRRD");
	/* ties: by digest, whatever the input order */
	static const struct cand_spec ties[] = {
		{"sha256:b", {"x"}, 5}, {"sha256:a", {"y"}, 5},
		{"sha256:c", {"z"}, 5},
	};
	CHECK_STR(eval("{\"rules\":[" RULE("latestPushedK",
					   "{\"latestPushedK\":1}",
					   SEL("matches", "**")) "]}",
		       ties, 3, NULL, 0),
		  "DRD");

	/* matches narrows the field before the template counts */
	static const struct cand_spec mixed[] = {
		{"sha256:1", {"v1.0"}, 100},   {"sha256:2", {"dev-1"}, 200},
		{"sha256:3", {"v1.1"}, 300},   {"sha256:4", {"dev-2"}, 400},
		{"sha256:5", {NULL}, 500}, /* untagged, newest */
		{"sha256:6", {"dev-3", "v2.0"}, 50},
	};
	CHECK_STR(eval("{\"rules\":[" RULE("latestPushedK",
					   "{\"latestPushedK\":1}",
					   SEL("matches", "v*")) "]}",
		       mixed, 6, NULL, 0),
		  "DDDDRD"); /* untagged selected by default, and newest */
	CHECK_STR(eval("{\"rules\":[{\"template\":\"latestPushedK\","
		       "\"params\":{\"latestPushedK\":1},\"tag_selectors\":[{"
		       "\"kind\":\"doublestar\",\"decoration\":\"matches\","
		       "\"pattern\":\"v*\",\"extras\":"
		       "\"{\\\"untagged\\\":false}\"}]}]}",
		       mixed, 6, NULL, 0),
		  "DDRDDD");
	/* excludes "dev-*": selected when any tag is not dev-*; untagged
	 * selected by default (untagged false -> !false) */
	CHECK_STR(eval("{\"rules\":[" RULE("always", "{}",
					   SEL("excludes", "dev-*")) "]}",
		       mixed, 6, NULL, 0),
		  "RDRDRR");
	CHECK_STR(eval("{\"rules\":[{\"template\":\"always\",\"tag_selectors\""
		       ":[{\"kind\":\"doublestar\",\"decoration\":\"excludes\","
		       "\"pattern\":\"dev-*\",\"extras\":"
		       "\"{\\\"untagged\\\":true}\"}]}]}",
		       mixed, 6, NULL, 0),
		  "RDRDDR");
	/* two selectors: both must select */
	CHECK_STR(eval("{\"rules\":[" RULE("always", "{}",
					   SEL("matches", "{v*,dev-*}") ","
					   SEL("excludes", "v1.*")) "]}",
		       mixed, 6, NULL, 0),
		  "DRDRRR");
	/* or: the union of two rules; a disabled rule does nothing */
	CHECK_STR(eval("{\"rules\":[" RULE("latestPushedK",
					   "{\"latestPushedK\":1}",
					   SELT("matches", "dev-*")) ","
		       RULE("latestPushedK", "{\"latestPushedK\":1}",
			    SELT("matches", "v1.*")) ","
		       "{\"disabled\":true,\"template\":\"always\","
		       "\"tag_selectors\":[" SEL("matches", "**") "]}]}",
		       mixed, 6, NULL, 0),
		  "DDRRDD");

	/* scope: a rule for other repositories does not apply */
	const char *scoped =
		"{\"rules\":[{\"template\":\"always\",\"tag_selectors\":["
		SEL("matches", "**") "],\"scope_selectors\":{\"repository\":[{"
		"\"kind\":\"doublestar\",\"decoration\":\"repoMatches\","
		"\"pattern\":\"{app,web}*\"}]}}]}";
	CHECK_STR(eval(scoped, five, 5, NULL, 0), "RRRRR");
	CHECK_STR(eval(scoped, five, 5,
		       "{\"namespace\":\"lib\",\"name\":\"db\"}", 0),
		  "DDDDD");
	const char *ns_ex =
		"{\"rules\":[{\"template\":\"always\",\"tag_selectors\":["
		SEL("matches", "**") "],\"scope_selectors\":{\"repository\":[{"
		"\"kind\":\"doublestar\",\"decoration\":\"nsExcludes\","
		"\"pattern\":\"lib\"}]}}]}";
	CHECK_STR(eval(ns_ex, five, 5, NULL, 0), "DDDDD");

	/* which rule retained what, and the outcomes */
	struct ret_policy p;
	char err[256];
	CHECK(ret_policy_parse(
		      "{\"rules\":[{\"disabled\":true,\"template\":\"x\"},"
		      RULE("latestPushedK", "{\"latestPushedK\":2}",
			   SEL("matches", "v[12]")) ","
		      RULE("always", "{}", SEL("matches", "v2")) "]}",
		      &p, err, sizeof(err)) == 0);
	struct ret_candidate c[5];
	for (size_t i = 0; i < 5; i++)
		c[i] = (struct ret_candidate){.digest = five[i].digest,
					      .tags = five[i].tags,
					      .n_tags = 1,
					      .pushed = five[i].pushed};
	struct ret_rule_outcome oc[3];
	CHECK(ret_policy_evaluate(&p, NULL, c, 5, 0, oc) == 2);
	CHECK(oc[0].skipped && strcmp(oc[0].why, "disabled") == 0);
	CHECK(oc[1].selected == 2 && oc[1].retained == 2);
	CHECK(oc[2].selected == 1 && oc[2].retained == 1);
	CHECK(c[1].retained && c[1].rule == 2); /* v1 */
	CHECK(c[3].retained && c[3].rule == 2); /* v2: rule 2 came first */
	ret_policy_fini(&p);
}

static void
test_repository(void)
{
	struct ret_repository r;
	char err[256];
	CHECK(ret_repository_parse("{\"namespace\":\"lib\",\"name\":\"a/b\","
				   "\"kind\":\"image\",\"NamespaceID\":3}",
				   &r, err, sizeof(err)) == 0);
	CHECK_STR(r.path, "lib/a/b");
	ret_repository_fini(&r);
	CHECK(ret_repository_parse("{\"name\":\"alpine\"}", &r, err,
				   sizeof(err)) == 0);
	CHECK_STR(r.path, "alpine");
	CHECK_STR(r.kind, "image");
	ret_repository_fini(&r);
	CHECK(ret_repository_parse("{\"namespace\":\"lib\"}", &r, err,
				   sizeof(err)) != 0);
	CHECK_CONTAINS(err, "name is missing");
	CHECK(ret_repository_parse("{\"name\":\"x\",\"kind\":\"chart\"}", &r,
				   err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "kind \"chart\" is not supported");
	CHECK(ret_repository_parse("lib/app", &r, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "not valid JSON");
}

/* validate() runs on a REST API thread with a small stack: a liteMeta or
 * repository text nested past 64 levels is refused before cJSON recurses
 * (700 levels overflowed REPLICATION's validate before the same check). */
static void
test_deep_nesting(void)
{
	char deep[2 * 700 + 1];
	memset(deep, '[', 700);
	memset(deep + 700, ']', 700);
	deep[1400] = '\0';
	CHECK(parse_fails(deep, "deeper than 64 levels"));
	struct ret_repository r;
	char err[256] = "";
	CHECK(ret_repository_parse(deep, &r, err, sizeof(err)) != 0);
	CHECK_CONTAINS(err, "deeper than 64 levels");
	/* 64 levels inside a string do not count */
	char meta[256];
	snprintf(meta, sizeof(meta), "{\"rules\":[],\"x\":\"%s\"}",
		 "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
	struct ret_policy p;
	CHECK(ret_policy_parse(meta, &p, err, sizeof(err)) == 0);
	ret_policy_fini(&p);
}

int
main(void)
{
	test_glob();
	test_deep_nesting();
	test_time();
	test_parse();
	test_evaluate();
	test_repository();
	TEST_DONE();
}
