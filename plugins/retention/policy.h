/* policy.h - RETENTION's rule engine: Harbor's tag-retention policy
 * ("liteMeta") parsed, checked and evaluated over a list of candidates.
 *
 * Pure code: no registry, no SDK host calls, only cJSON and libc, so that
 * tests/unit/test_retention_policy.c links it alone. retention.c collects
 * the candidates from the registry and acts on the verdicts.
 *
 * Semantics (Harbor's, see plugins/retention/README.md):
 * - algorithm "or": a candidate is retained when any enabled rule retains
 *   it; everything else is deleted;
 * - a rule narrows the candidates with its tag selectors one after the
 *   other (all must select), then its template keeps some of them:
 *   latestPushedK (the K most recently pushed), nDaysSinceLastPush (pushed
 *   within N days), always (all of them);
 * - a doublestar tag selector "matches" selects a tagged candidate when
 *   any of its tags matches the pattern, "excludes" when any of its tags
 *   does not match; an untagged candidate is selected by "matches" when
 *   the selector's untagged flag is set and by "excludes" when it is not
 *   (extras {"untagged":bool}; default true for matches, false for
 *   excludes);
 * - repository scope selectors (repoMatches/repoExcludes, nsMatches/
 *   nsExcludes) decide whether a rule applies to the repository at all. */
#ifndef RETENTION_POLICY_H
#define RETENTION_POLICY_H

#include <stdbool.h>
#include <stddef.h>

/* --- doublestar patterns ---------------------------------------------- */

/* A compiled doublestar pattern (bmatcuk/doublestar v1 syntax, as Harbor
 * uses it): '/' separates components; "**" as a whole component matches
 * any number of components (none included); '*' any run of characters
 * but '/'; '?' one character but '/'; "[abc]", "[a-z]", "[^a-z]" (or
 * "[!a-z]") one character of (not of) the class; "{a,b,c}" any of the
 * alternatives, which may nest and hold wildcards; '\' makes the next
 * character literal. The empty pattern matches everything (Harbor). */
struct ret_glob;

/* 0, or -1 with the reason in err for a malformed pattern: an unclosed
 * '[' or '{', an empty class "[]", a trailing '\', or more than 256
 * alternatives after expanding the braces. */
int ret_glob_compile(const char *pattern, struct ret_glob **out, char *err,
		     size_t errlen);
bool ret_glob_match(const struct ret_glob *g, const char *s);
void ret_glob_free(struct ret_glob *g);

/* --- the policy --------------------------------------------------------- */

enum ret_template {
	RET_TPL_LATEST_PUSHED_K = 0, /* "latestPushedK" */
	RET_TPL_DAYS_SINCE_PUSH,     /* "nDaysSinceLastPush" */
	RET_TPL_ALWAYS,              /* "always" */
};

enum ret_decoration {
	RET_MATCHES = 0, /* tag: "matches"; scope: "repoMatches"/"nsMatches" */
	RET_EXCLUDES,    /* "excludes", "repoExcludes", "nsExcludes" */
};

struct ret_selector {
	enum ret_decoration decoration;
	bool untagged;    /* tag selectors: select untagged (see above) */
	bool on_namespace; /* scope selectors: nsMatches/nsExcludes */
	char *pattern;
	struct ret_glob *glob;
};

struct ret_rule {
	long long id;          /* the rule's "id" (0 when absent) */
	size_t index;          /* position in liteMeta.rules, from 1 */
	bool disabled;         /* skipped entirely */
	enum ret_template tpl;
	long long param;       /* K or N */
	bool param_default;    /* param absent: Harbor's default was used */
	struct ret_selector *tags;
	size_t n_tags;
	struct ret_selector *scope; /* "repository" scope selectors */
	size_t n_scope;
};

struct ret_policy {
	struct ret_rule *rules;
	size_t n_rules;
};

/* Parses liteMeta: {"algorithm":"or","rules":[...]}. Returns 0, or -1
 * with a sentence in err naming the rule and the field (a template other
 * than the three, an action other than "retain", a selector kind other
 * than "doublestar", a malformed pattern, a parameter that is not a
 * non-negative integer number, ...). Disabled rules are kept (flagged)
 * and only checked for being objects. */
int ret_policy_parse(const char *lite_meta, struct ret_policy *p, char *err,
		     size_t errlen);
void ret_policy_fini(struct ret_policy *p);

/* The defaults Harbor uses when a rule has no parameter. */
#define RET_DEFAULT_K 10
#define RET_DEFAULT_N 30

/* One line describing a rule for the job log, e.g.
 * "rule 1 (id 7): latestPushedK 2, tags matches \"v*\" (untagged: yes)". */
void ret_rule_describe(const struct ret_rule *r, char *buf, size_t len);

/* --- the repository parameter ------------------------------------------ */

struct ret_repository {
	char *namespace_; /* "lib"; may be "" */
	char *name;       /* "app" (may hold '/') */
	char *kind;       /* "image" when absent */
	char *path;       /* "lib/app", or "app" when the namespace is empty */
};

/* {"namespace":"lib","name":"app","kind":"image"}: 0, or -1 with err. */
int ret_repository_parse(const char *json, struct ret_repository *r,
			 char *err, size_t errlen);
void ret_repository_fini(struct ret_repository *r);

/* --- evaluation ---------------------------------------------------------- */

struct ret_candidate {
	/* in */
	const char *digest;
	const char *const *tags; /* may be NULL when n_tags is 0 */
	size_t n_tags;
	long long pushed;        /* Unix seconds; 0 when unknown (oldest) */
	/* out */
	bool retained;
	size_t rule;             /* index of the first rule retaining it, or 0 */
};

struct ret_rule_outcome {
	bool skipped;         /* disabled, or the repository is out of scope */
	const char *why;      /* "disabled" / "repository out of scope" */
	size_t selected;      /* candidates its tag selectors selected */
	size_t retained;      /* of which its template retained */
};

/* Marks every candidate retained or not. now is the current Unix time
 * (nDaysSinceLastPush). outcomes (NULL, or p->n_rules entries) receives
 * what each rule did. latestPushedK orders by push time, newest first,
 * ties by digest, so the result does not depend on the input order.
 * Returns the number of retained candidates, or (size_t)-1 when out of
 * memory. */
size_t ret_policy_evaluate(const struct ret_policy *p,
			   const struct ret_repository *repo,
			   struct ret_candidate *c, size_t n, long long now,
			   struct ret_rule_outcome *outcomes);

/* Whether one selector selects one candidate (exposed for the tests). */
bool ret_selector_selects(const struct ret_selector *s,
			  const struct ret_candidate *c);

/* --- errors ------------------------------------------------------------- */

/* printf into err (errlen bytes; nothing when err is NULL or errlen 0):
 * the reason a parser of policy.c or glob.c gives. */
void ret_seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* --- time --------------------------------------------------------------- */

/* An RFC 3339 time ("2024-05-01T10:00:00Z", "...T10:00:00.123456789+02:00")
 * as Unix seconds; false when it is not one. */
bool ret_parse_rfc3339(const char *s, long long *out);

#endif /* RETENTION_POLICY_H */
