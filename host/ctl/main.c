/* main.c - berthctl: the command line parsed against the command table
 * (help.c), then one command run. Global options are accepted before and
 * after the command; "--" ends the options. */
#include "ctl/ctl.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const char *
args_get(const struct ctl_args *a, const char *lng)
{
	const char *v = NULL;
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->opt[i]->lng, lng) == 0)
			v = a->val[i] ? a->val[i] : "";
	return v;
}

bool
args_has(const struct ctl_args *a, const char *lng)
{
	return args_get(a, lng) != NULL;
}

int
usage_error(const struct ctl_args *a, const char *fmt, ...)
{
	va_list ap;
	fputs("berthctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nRun '%s --help' for usage.\n",
		a && a->path ? a->path : "berthctl");
	return CTL_EUSAGE;
}

long long
args_int(const struct ctl_args *a, const char *lng, long long def,
	 long long min, long long max)
{
	const char *v = args_get(a, lng);
	if (!v)
		return def;
	char *end = NULL;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	if (!*v || *end || errno || n < min || n > max) {
		usage_error(a, "--%s: expected a number in %lld..%lld, got "
			       "'%s'", lng, min, max, v);
		return -1;
	}
	return n;
}

/* ---- parsing ------------------------------------------------------------- */

struct parse {
	struct ctl_args *a;
	const struct ctl_cmd *cmd;
	bool sub_chosen; /* cmd's sub-command is decided */
	bool help, version;
	char path[160];
	char err[256];
};

static void
enter(struct parse *p, const struct ctl_cmd *sub)
{
	p->cmd = sub;
	size_t n = strlen(p->path);
	snprintf(p->path + n, sizeof(p->path) - n, " %s", sub->name);
}

static const struct ctl_cmd *
find_sub(const struct ctl_cmd *cmd, const char *name)
{
	for (const struct ctl_cmd *s = cmd->subs; s && s->name; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

/* The option of the current command or the global one; a command whose
 * sub-command is not given yet lends the options of its default one. */
static const struct ctl_opt *
find_opt(struct parse *p, const char *lng, char shrt)
{
	for (int pass = 0; pass < 2; pass++) {
		const struct ctl_opt *sets[2] = {
			p->cmd == &ctl_root ? NULL : p->cmd->opts,
			ctl_global_opts};
		for (int s = 0; s < 2; s++)
			for (const struct ctl_opt *o = sets[s]; o && o->lng;
			     o++)
				if (lng ? strcmp(o->lng, lng) == 0
					: o->shrt == shrt)
					return o;
		if (pass == 0 && p->cmd->default_sub && p->a->npos == 0)
			enter(p, find_sub(p->cmd, p->cmd->default_sub));
		else
			break;
	}
	return NULL;
}

static int
add_opt(struct parse *p, const struct ctl_opt *o, const char *val)
{
	struct ctl_args *a = p->a;
	if (strcmp(o->lng, "help") == 0) {
		p->help = true;
		return 0;
	}
	if (a->n >= CTL_MAX_ARGS) {
		snprintf(p->err, sizeof(p->err), "too many options");
		return -1;
	}
	a->opt[a->n] = o;
	a->val[a->n] = val;
	a->n++;
	return 0;
}

static int
positional(struct parse *p, const char *w)
{
	struct ctl_args *a = p->a;
	if (p->cmd->subs && !p->sub_chosen && a->npos == 0) {
		const struct ctl_cmd *s = find_sub(p->cmd, w);
		if (s) {
			enter(p, s);
			p->sub_chosen = !s->subs;
			return 0;
		}
		if (p->cmd == &ctl_root) {
			snprintf(p->err, sizeof(p->err),
				 "unknown command '%.100s'", w);
			return -1;
		}
		if (!p->cmd->default_sub) {
			snprintf(p->err, sizeof(p->err),
				 "unknown sub-command '%.100s'", w);
			return -1;
		}
		enter(p, find_sub(p->cmd, p->cmd->default_sub));
		p->sub_chosen = true;
	}
	if (a->npos >= CTL_MAX_ARGS) {
		snprintf(p->err, sizeof(p->err), "too many arguments");
		return -1;
	}
	a->pos[a->npos++] = w;
	return 0;
}

static int
parse_args(struct parse *p, int argc, char **argv)
{
	bool dashdash = false;
	for (int i = 1; i < argc; i++) {
		const char *w = argv[i];
		if (dashdash || w[0] != '-' || !w[1]) {
			if (positional(p, w) < 0)
				return -1;
			continue;
		}
		if (strcmp(w, "--") == 0) {
			dashdash = true;
			continue;
		}
		if (w[1] == '-') {
			char name[64];
			const char *eq = strchr(w + 2, '=');
			size_t n = eq ? (size_t)(eq - w - 2) : strlen(w + 2);
			snprintf(name, sizeof(name), "%.*s", (int)n, w + 2);
			if (strcmp(name, "version") == 0) {
				p->version = true;
				continue;
			}
			const struct ctl_opt *o = find_opt(p, name, 0);
			if (!o) {
				snprintf(p->err, sizeof(p->err),
					 "unknown option --%s", name);
				return -1;
			}
			const char *val = NULL;
			if (o->arg) {
				if (eq)
					val = eq + 1;
				else if (i + 1 < argc)
					val = argv[++i];
				else {
					snprintf(p->err, sizeof(p->err),
						 "--%s needs a value %s",
						 o->lng, o->arg);
					return -1;
				}
			} else if (eq) {
				snprintf(p->err, sizeof(p->err),
					 "--%s takes no value", o->lng);
				return -1;
			}
			if (add_opt(p, o, val) < 0)
				return -1;
			continue;
		}
		/* -x, -xVALUE, -x VALUE, and flags bundled: -fk */
		for (const char *s = w + 1; *s; s++) {
			if (*s == 'V') {
				p->version = true;
				continue;
			}
			const struct ctl_opt *o = find_opt(p, NULL, *s);
			if (!o) {
				snprintf(p->err, sizeof(p->err),
					 "unknown option -%c", *s);
				return -1;
			}
			const char *val = NULL;
			if (o->arg) {
				if (s[1])
					val = s + 1;
				else if (i + 1 < argc)
					val = argv[++i];
				else {
					snprintf(p->err, sizeof(p->err),
						 "-%c needs a value %s", *s,
						 o->arg);
					return -1;
				}
			}
			if (add_opt(p, o, val) < 0)
				return -1;
			if (o->arg)
				break;
		}
	}
	return 0;
}

/* Repeating a single-valued option is refused (a script that passes
 * --status twice has a bug). */
static int
check_repeats(struct parse *p)
{
	struct ctl_args *a = p->a;
	for (int i = 0; i < a->n; i++)
		for (int j = i + 1; j < a->n; j++)
			if (a->opt[i] == a->opt[j] && !a->opt[i]->repeat &&
			    a->opt[i]->arg) {
				snprintf(p->err, sizeof(p->err),
					 "--%s given twice", a->opt[i]->lng);
				return -1;
			}
	return 0;
}

int
main(int argc, char **argv)
{
	static struct ctl_args a;
	struct parse p = {.a = &a, .cmd = &ctl_root};
	snprintf(p.path, sizeof(p.path), "berthctl");
	signal(SIGPIPE, SIG_IGN);

	if (argc == 2 && strcmp(argv[1], "--help-man") == 0) {
		help_man(stdout);
		return fflush(stdout) == 0 ? CTL_OK : CTL_EUSAGE;
	}
	int rc = parse_args(&p, argc, argv);
	a.path = p.path;
	if (rc == 0 && !p.help)
		rc = check_repeats(&p);
	if (p.help) {
		help_print(stdout, p.cmd, p.path);
		return CTL_OK;
	}
	if (p.version && p.cmd == &ctl_root && a.npos == 0) {
		printf("berthctl %s\n", BERTH_VERSION);
		return CTL_OK;
	}
	if (rc < 0)
		return usage_error(&a, "%s", p.err);
	if (p.version)
		return usage_error(&a, "--version is an option of berthctl "
				       "alone");
	if (p.cmd == &ctl_root) {
		help_print(stderr, &ctl_root, "berthctl");
		return CTL_EUSAGE;
	}
	if (p.cmd->subs && !p.sub_chosen) {
		if (!p.cmd->default_sub)
			return usage_error(&a, "'%s' needs a sub-command",
					   p.path);
		enter(&p, find_sub(p.cmd, p.cmd->default_sub));
	}
	const struct ctl_cmd *cmd = p.cmd;
	a.cmd = cmd;
	if (a.npos < cmd->min_pos)
		return usage_error(&a, "'%s' needs %s", p.path,
				   cmd->operands);
	if (cmd->max_pos >= 0 && a.npos > cmd->max_pos)
		return usage_error(&a, "unexpected argument '%s'",
				   a.pos[cmd->max_pos]);

	struct ctl c;
	memset(&c, 0, sizeof(c));
	/* help and completion need no daemon */
	bool offline = strcmp(cmd->name, "help") == 0 ||
		       strcmp(cmd->name, "bash") == 0;
	if (!offline && (rc = ctl_open(&c, &a)) != 0) {
		ctl_close(&c);
		return rc;
	}
	rc = cmd->run(&c, &a);
	ctl_close(&c);
	fflush(stdout);
	return rc;
}
