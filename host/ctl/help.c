/* help.c - berthctl's command table, and the three texts made from it:
 * --help at every level, the man page (--help-man) and the bash
 * completion script (completion bash). One source, so they cannot drift. */
#include "ctl/ctl.h"

#include <string.h>

#define END_OPTS {NULL, 0, NULL, NULL, NULL, false}

const struct ctl_opt ctl_global_opts[] = {
	{"url", 0, "URL", "base URL of berthd, e.g. http://127.0.0.1:8080",
	 NULL, false},
	{"secret", 0, "SECRET", "the API secret (visible in ps: prefer "
	 "--secret-file or CORE_SECRET)", NULL, false},
	{"secret-file", 0, "FILE", "read the API secret from FILE", NULL,
	 false},
	{"config", 'c', "FILE", "the berth.yml berthd runs with", NULL,
	 false},
	{"data-dir", 0, "DIR", "berthd's data directory (as berthd "
	 "--data-dir)", NULL, false},
	{"json", 0, NULL, "print the API's JSON instead of tables", NULL,
	 false},
	{"timeout", 0, "SECONDS", "time a request may take (default 30)",
	 NULL, false},
	{"insecure", 'k', NULL, "https: do not verify the daemon's "
	 "certificate", NULL, false},
	{"cacert", 0, "FILE", "https: trust the CA certificates in FILE",
	 NULL, false},
	{"help", 'h', NULL, "show the help of the command", NULL, false},
	END_OPTS,
};

static const struct ctl_opt no_opts[] = {END_OPTS};

#define STATUSES "Pending Scheduled Running Stopped Error Success"

/* ---- jobs ---------------------------------------------------------------- */

static const struct ctl_opt submit_opts[] = {
	{"param", 'p', "KEY=VALUE", "a parameter with a string value",
	 NULL, true},
	{"param-json", 'j', "KEY=JSON", "a parameter with a JSON value "
	 "(number, boolean, object, ...)", NULL, true},
	{"params-file", 0, "FILE", "parameters as one JSON object from FILE "
	 "(- reads standard input); -p and -j override its keys", NULL,
	 false},
	{"kind", 0, "KIND", "Generic (default), Scheduled or Periodic",
	 "Generic Scheduled Periodic", false},
	{"delay", 0, "SECONDS", "Scheduled: run this many seconds from now "
	 "(implies --kind Scheduled)", NULL, false},
	{"cron", 0, "SPEC", "Periodic: 6-field cron spec, optionally "
	 "prefixed TZ=<zone> (implies --kind Periodic)", NULL, false},
	{"unique", 0, NULL, "refuse a second job with the same name and "
	 "parameters while one is queued", NULL, false},
	{"hook", 0, "URL", "status hook URL (http or https) that gets "
	 "every status change", NULL, false},
	END_OPTS,
};

static const struct ctl_opt get_opts[] = {
	{"detail", 'd', NULL, "add the last error, fail count, next retry "
	 "and latest check-in", NULL, false},
	END_OPTS,
};

static const struct ctl_opt ls_opts[] = {
	{"status", 's', "STATUS", "only jobs with this status", STATUSES,
	 false},
	{"type", 't', "TYPE", "only jobs of this job type", NULL, false},
	{"kind", 0, "KIND", "Generic or Periodic: a filter; Scheduled: the "
	 "page of the scheduled set", "Generic Scheduled Periodic", false},
	{"page-size", 'n', "N", "jobs per page (default 25, at most 1000)",
	 NULL, false},
	{"cursor", 0, "CURSOR", "continue from the cursor a previous page "
	 "printed", NULL, false},
	{"page", 0, "N", "--kind Scheduled: the page, from 1", NULL, false},
	{"all", 'a', NULL, "follow the cursor to the end of the walk", NULL,
	 false},
	END_OPTS,
};

static const struct ctl_opt logs_opts[] = {
	{"follow", 'f', NULL, "stream the log of a running job until it "
	 "ends", NULL, false},
	END_OPTS,
};

static const struct ctl_opt exec_opts[] = {
	{"page", 0, "N", "the page, from 1 (default 1)", NULL, false},
	{"page-size", 'n', "N", "executions per page (default 25)", NULL,
	 false},
	{"non-dead-only", 0, NULL, "only executions that have not run yet",
	 NULL, false},
	END_OPTS,
};

/* ---- queues -------------------------------------------------------------- */

static const struct ctl_cmd queues_subs[] = {
	{"list", "", "every job type with its figures (the default)", NULL,
	 no_opts, NULL, NULL, cmd_queues, 0, 0, NULL},
	{"pause", "TYPE|*", "stop fetching jobs of TYPE (* = every type)",
	 "Writes Harbor's paused key: no instance, Berth or Go, fetches the "
	 "type while\nit is set; running jobs go on.",
	 no_opts, NULL, NULL, cmd_queue_action, 1, 1, NULL},
	{"resume", "TYPE|*", "fetch jobs of TYPE again (* = every type)",
	 NULL, no_opts, NULL, NULL, cmd_queue_action, 1, 1, NULL},
	{"stop", "TYPE|*", "stop every pending and running job of TYPE",
	 "As Harbor's \"stop all\": pending jobs leave the queue as "
	 "Stopped, running\njobs are asked to stop. Scheduled, retry and "
	 "dead jobs are left alone.",
	 no_opts, NULL, NULL, cmd_queue_action, 1, 1, NULL},
	{0},
};

/* ---- retry and dead sets ------------------------------------------------- */

static const struct ctl_opt set_list_opts[] = {
	{"page", 0, "N", "the page, from 1 (default 1)", NULL, false},
	{"page-size", 'n', "N", "items per page (default 25, at most 1000)",
	 NULL, false},
	{"type", 't', "TYPE", "only jobs of this job type", NULL, false},
	END_OPTS,
};

static const struct ctl_opt set_all_opts[] = {
	{"all", 'a', NULL, "every job of the set", NULL, false},
	END_OPTS,
};

static const struct ctl_cmd retries_subs[] = {
	{"list", "", "failed jobs waiting for their next attempt (the "
	 "default)", NULL, set_list_opts, NULL, NULL, cmd_set_list, 0, 0,
	 NULL},
	{"retry", "ID|--all", "run a job (or all) now instead of at its "
	 "retry time", NULL, set_all_opts, NULL, NULL, cmd_set_action, 0, 1,
	 NULL},
	{"delete", "ID|--all", "drop a job (or all) from the retry set; "
	 "its status stays Error", NULL, set_all_opts, NULL, NULL,
	 cmd_set_action, 0, 1, NULL},
	{0},
};

static const struct ctl_cmd dead_subs[] = {
	{"list", "", "jobs that used up their attempts (the default)", NULL,
	 set_list_opts, NULL, NULL, cmd_set_list, 0, 0, NULL},
	{"retry", "ID|--all", "give a dead job (or all) a full set of "
	 "attempts again, now", NULL, set_all_opts, NULL, NULL,
	 cmd_set_action, 0, 1, NULL},
	{"delete", "ID|--all", "drop a dead job (or all); its status stays "
	 "Error", NULL, set_all_opts, NULL, NULL, cmd_set_action, 0, 1,
	 NULL},
	{0},
};

/* ---- plugins, workers, watch, completion --------------------------------- */

static const struct ctl_cmd plugins_subs[] = {
	{"list", "", "loaded, retiring and refused plugins (the default)",
	 NULL, no_opts, NULL, NULL, cmd_plugins, 0, 0, NULL},
	{"reload", "", "re-read the plugin manifest (as SIGHUP)", NULL,
	 no_opts, NULL, NULL, cmd_plugins_reload, 0, 0, NULL},
	{0},
};

static const struct ctl_opt workers_opts[] = {
	{"busy", 'b', NULL, "only workers that run a job", NULL, false},
	END_OPTS,
};

static const struct ctl_opt watch_opts[] = {
	{"interval", 'i', "SECONDS", "time between refreshes (default 1)",
	 NULL, false},
	END_OPTS,
};

static int cmd_completion(struct ctl *c, struct ctl_args *a);
static int cmd_help(struct ctl *c, struct ctl_args *a);

static const struct ctl_cmd completion_subs[] = {
	{"bash", "", "print the bash completion script", NULL, no_opts, NULL,
	 NULL, cmd_completion, 0, 0, NULL},
	{0},
};

/* ---- the tree ------------------------------------------------------------ */

static const struct ctl_cmd commands[] = {
	{"submit", "NAME", "submit a job of type NAME",
	 "Prints the new job's id (--json: the API's answer).",
	 submit_opts, NULL, NULL, cmd_submit, 1, 1,
	 "berthctl submit DEMO -p image=demo-1\n"
	 "berthctl submit SCHEDULER --cron '0 */5 * * * *' -j vendor_id=7\n"
	 "echo '{\"image\":\"x\"}' | berthctl submit DEMO --params-file -\n"},
	{"get", "ID", "one job's stats", NULL, get_opts, NULL, NULL, cmd_get,
	 1, 1, "berthctl get 5f3c2a1b9d8e7f6a5b4c3d2e --detail\n"},
	{"ls", "", "list jobs, with filters",
	 "The daemon walks its job stats with SCAN: a filtered page can hold "
	 "fewer\njobs than --page-size. berthctl follows the cursor until a "
	 "page is full\n(--all: to the end) and prints the cursor to go on "
	 "with on standard error.",
	 ls_opts, NULL, NULL, cmd_ls, 0, 0,
	 "berthctl ls --status Error --type DEMO\n"
	 "berthctl ls --kind Scheduled --page 2\n"},
	{"stop", "ID", "stop a job (a periodic policy is unscheduled)", NULL,
	 no_opts, NULL, NULL, cmd_stop, 1, 1, NULL},
	{"logs", "ID", "print a job's log",
	 "With --follow the log of a running job is streamed until the job "
	 "reaches a\nfinal status.",
	 logs_opts, NULL, NULL, cmd_logs, 1, 1,
	 "berthctl logs -f 5f3c2a1b9d8e7f6a5b4c3d2e\n"},
	{"executions", "ID", "the executions of a periodic job", NULL,
	 exec_opts, NULL, NULL, cmd_executions, 1, 1, NULL},
	{"queues", "[list|pause|resume|stop]",
	 "job types: pending, latency, running, limits, paused",
	 NULL, no_opts, queues_subs, "list", NULL, 0, 0,
	 "berthctl queues\nberthctl queues stop IMAGE_SCAN\n"},
	{"pause", "TYPE|*", "pause a job type (* = every type)",
	 "Writes Harbor's paused key: no instance, Berth or Go, fetches the "
	 "type while\nit is set; running jobs go on.",
	 no_opts, NULL, NULL, cmd_queue_action, 1, 1,
	 "berthctl pause DEMO\nberthctl pause '*'\n"},
	{"resume", "TYPE|*", "resume a paused job type (* = every type)",
	 NULL, no_opts, NULL, NULL, cmd_queue_action, 1, 1, NULL},
	{"retries", "[list|retry|delete]",
	 "the retry set: failed jobs waiting for their next attempt", NULL,
	 no_opts, retries_subs, "list", NULL, 0, 0,
	 "berthctl retries\nberthctl retries retry --all\n"},
	{"dead", "[list|retry|delete]",
	 "the dead set: jobs that used up their attempts", NULL, no_opts,
	 dead_subs, "list", NULL, 0, 0,
	 "berthctl dead\nberthctl dead retry 5f3c2a1b9d8e7f6a5b4c3d2e\n"
	 "berthctl dead delete --all\n"},
	{"pools", "", "worker pools of every instance (Berth and Go)", NULL,
	 no_opts, NULL, NULL, cmd_pools, 0, 0, NULL},
	{"workers", "[POOL]", "the workers of POOL and what each runs",
	 "Without POOL: the busy workers of every pool. POOL may be a "
	 "unique prefix of\na pool id.",
	 workers_opts, NULL, NULL, cmd_workers, 0, 1, NULL},
	{"plugins", "[list|reload]", "job plugins; reload the manifest",
	 NULL, no_opts, plugins_subs, "list", NULL, 0, 0, NULL},
	{"stats", "", "worker pools as Harbor's GET /api/v1/stats (needs no "
	 "secret)", NULL, no_opts, NULL, NULL, cmd_stats, 0, 0, NULL},
	{"periodic", "", "periodic policies with their next three runs",
	 NULL, no_opts, NULL, NULL, cmd_periodic, 0, 0, NULL},
	{"watch", "", "a live view of queues, pools and busy workers",
	 "Redraws every --interval seconds. Keys: q or Ctrl-C quits, r "
	 "refreshes now.\nNeeds a terminal.",
	 watch_opts, NULL, NULL, cmd_watch, 0, 0, NULL},
	{"completion", "bash", "print a shell completion script", NULL,
	 no_opts, completion_subs, NULL, NULL, 0, 0,
	 "source <(berthctl completion bash)\n"},
	{"help", "[COMMAND...]", "the help of a command", NULL, no_opts,
	 NULL, NULL, cmd_help, 0, -1, NULL},
	{0},
};

#define FINDING \
	"Finding the daemon (the first that is set wins):\n" \
	"  URL       --url, $BERTH_URL, else from the configuration: its " \
	"protocol,\n" \
	"            port and berth.listen_address (0.0.0.0 and :: mean " \
	"this host);\n" \
	"            with port 0 the port berthd wrote to " \
	"<data_dir>/api_port;\n" \
	"            without a configuration http://127.0.0.1:8080\n" \
	"  secret    --secret, --secret-file, $CORE_SECRET, else " \
	"<data_dir>/core_secret\n" \
	"  config    --config, $BERTH_CONFIG, " \
	"$XDG_CONFIG_HOME/berth/berth.yml\n" \
	"            (~/.config/berth/berth.yml), " BERTHCTL_SYSCONFDIR \
	"/berth/berth.yml,\n" \
	"            /etc/berth/berth.yml; read as berthd reads it, with " \
	"the same\n" \
	"            environment overrides (JOB_SERVICE_PORT, " \
	"BERTH_DATA_DIR, ...)\n" \
	"  data dir  as berthd: --data-dir, $BERTH_DATA_DIR, the " \
	"configuration's\n" \
	"            berth.data_dir, $XDG_STATE_HOME/berth, " \
	"~/.local/state/berth\n"

#define EXIT_LIST \
	"  0  done\n" \
	"  1  the daemon answered with an error (the message is printed)\n" \
	"  2  usage or configuration error\n" \
	"  3  the daemon could not be reached\n"
#define EXITS "Exit status:\n" EXIT_LIST

const struct ctl_cmd ctl_root = {
	"berthctl", "COMMAND [ARGS]",
	"command-line client of the Berth job service",
	"berthctl talks to berthd's REST API: jobs, queues, pools and "
	"workers, the\nretry and dead sets, periodic policies and plugins. "
	"Tables by default,\n--json for scripts. Global options may be "
	"given before or after the command.",
	ctl_global_opts, commands, NULL, NULL, 0, 0,
	"berthctl queues\n"
	"berthctl submit DEMO -p image=demo-1\n"
	"berthctl ls --status Running\n"
	"berthctl --json dead | jq '.items[].job_id'\n"
	"berthctl watch\n"};

/* ---- --help -------------------------------------------------------------- */

static void
opt_usage(const struct ctl_opt *o, char *buf, size_t n)
{
	if (o->shrt)
		snprintf(buf, n, "-%c, --%s%s%s", o->shrt, o->lng,
			 o->arg ? " " : "", o->arg ? o->arg : "");
	else
		snprintf(buf, n, "    --%s%s%s", o->lng, o->arg ? " " : "",
			 o->arg ? o->arg : "");
}

static void
print_opts(FILE *f, const struct ctl_opt *opts)
{
	char buf[128];
	for (const struct ctl_opt *o = opts; o->lng; o++) {
		opt_usage(o, buf, sizeof(buf));
		if (strlen(buf) > 24)
			fprintf(f, "  %s\n  %-24s  %s\n", buf, "", o->help);
		else
			fprintf(f, "  %-24s  %s\n", buf, o->help);
	}
}

static void
print_indented(FILE *f, const char *text)
{
	const char *p = text;
	while (*p) {
		const char *e = strchr(p, '\n');
		size_t n = e ? (size_t)(e - p) : strlen(p);
		fprintf(f, "  %.*s\n", (int)n, p);
		p += n + (e ? 1 : 0);
	}
}

void
help_print(FILE *f, const struct ctl_cmd *cmd, const char *path)
{
	bool root = cmd == &ctl_root;
	fprintf(f, "usage: %s%s%s%s\n", path, root ? "" : " [OPTIONS]",
		cmd->operands[0] ? " " : "", cmd->operands);
	fprintf(f, "\n%s%s%s.\n", root ? "" : path + strlen("berthctl "),
		root ? "" : ": ", cmd->summary);
	if (cmd->text)
		fprintf(f, "\n%s\n", cmd->text);
	if (cmd->subs) {
		fprintf(f, "\n%s:\n", root ? "Commands" : "Sub-commands");
		for (const struct ctl_cmd *s = cmd->subs; s->name; s++)
			fprintf(f, "  %-12s %s\n", s->name, s->summary);
		fprintf(f, "\nRun '%s COMMAND --help' for a command's "
			   "options.\n", path);
	}
	if (!root && cmd->opts[0].lng) {
		fprintf(f, "\nOptions:\n");
		print_opts(f, cmd->opts);
	}
	fprintf(f, "\n%s:\n", root ? "Global options" :
				     "Global options (also accepted here)");
	print_opts(f, ctl_global_opts);
	if (root)
		fprintf(f, "  %-24s  %s\n", "-V, --version",
			"print the version");
	if (cmd->examples) {
		fprintf(f, "\nExamples:\n");
		print_indented(f, cmd->examples);
	}
	if (root)
		fprintf(f, "\n%s\n%s", FINDING, EXITS);
	else
		fprintf(f, "\nExit status: 0 done, 1 API error, 2 usage, 3 "
			   "daemon unreachable.\n");
}

/* ---- the man page -------------------------------------------------------- */

/* Text for roff: backslashes doubled as \e, '-' as \-, and a line that
 * would start with '.' or '\'' protected by \&. */
static void
roff(FILE *f, const char *s)
{
	bool bol = true;
	for (; *s; s++) {
		if (bol && (*s == '.' || *s == '\''))
			fputs("\\&", f);
		bol = *s == '\n';
		if (*s == '\\')
			fputs("\\e", f);
		else if (*s == '-')
			fputs("\\-", f);
		else
			fputc(*s, f);
	}
}

/* " \fIwhat\fR" after a bold name, nothing for an empty what */
static void
man_operand(FILE *f, const char *what)
{
	if (!what || !what[0])
		return;
	fputs(" \\fI", f);
	roff(f, what);
	fputs("\\fR", f);
}

/* "\fB\-s\fR, \fB\-\-long\fR \fIARG\fR" */
static void
man_opt_name(FILE *f, const struct ctl_opt *o)
{
	if (o->shrt)
		fprintf(f, "\\fB\\-%c\\fR, ", o->shrt);
	fputs("\\fB\\-\\-", f);
	roff(f, o->lng);
	fputs("\\fR", f);
	man_operand(f, o->arg);
}

static void
man_opts(FILE *f, const struct ctl_opt *opts)
{
	for (const struct ctl_opt *o = opts; o->lng; o++) {
		fputs(".TP\n", f);
		man_opt_name(f, o);
		fputc('\n', f);
		roff(f, o->help);
		fputs(o->repeat ? " (may be repeated)\n" : "\n", f);
	}
}

static void
man_lines(FILE *f, const char *text)
{
	fputs(".PP\n.nf\n.RS 4\n", f);
	roff(f, text);
	if (text[0] && text[strlen(text) - 1] != '\n')
		fputc('\n', f);
	fputs(".RE\n.fi\n", f);
}

static void
man_cmd(FILE *f, const struct ctl_cmd *c, const char *parent)
{
	fputs(".SS \"", f);
	roff(f, parent);
	roff(f, c->name);
	if (c->operands[0]) {
		fputc(' ', f);
		roff(f, c->operands);
	}
	fputs("\"\n", f);
	roff(f, c->summary);
	fputs(".\n", f);
	if (c->text) {
		fputs(".PP\n", f);
		roff(f, c->text);
		fputc('\n', f);
	}
	if (c->opts[0].lng)
		man_opts(f, c->opts);
	if (c->subs)
		for (const struct ctl_cmd *s = c->subs; s->name; s++) {
			fputs(".TP\n\\fB", f);
			roff(f, s->name);
			fputs("\\fR", f);
			man_operand(f, s->operands);
			fputc('\n', f);
			roff(f, s->summary);
			fputs(".\n", f);
			if (s->text) {
				roff(f, s->text);
				fputc('\n', f);
			}
			for (const struct ctl_opt *o = s->opts; o->lng; o++) {
				fputs(".br\n", f);
				man_opt_name(f, o);
				fputs(": ", f);
				roff(f, o->help);
				fputc('\n', f);
			}
		}
	if (c->examples)
		man_lines(f, c->examples);
}

void
help_man(FILE *f)
{
	fprintf(f, ".\\\" berthctl(1), generated by 'berthctl --help-man' "
		   "from its --help text\n");
	fprintf(f, ".TH BERTHCTL 1 \"\" \"Berth %s\" \"User Commands\"\n",
		BERTH_VERSION);
	fputs(".SH NAME\nberthctl \\- ", f);
	roff(f, ctl_root.summary);
	fputs("\n.SH SYNOPSIS\n\\fBberthctl\\fR [\\fIGLOBAL OPTIONS\\fR] "
	      "\\fICOMMAND\\fR [\\fIOPTIONS\\fR] [\\fIARGS\\fR]\n", f);
	fputs(".SH DESCRIPTION\n", f);
	roff(f, ctl_root.text);
	fputs("\n.PP\nEvery command and sub-command takes "
	      "\\fB\\-\\-help\\fR.\n", f);
	fputs(".SH GLOBAL OPTIONS\n", f);
	man_opts(f, ctl_global_opts);
	fputs(".TP\n\\fB\\-V\\fR, \\fB\\-\\-version\\fR\nprint the "
	      "version\n", f);
	fputs(".SH COMMANDS\n", f);
	for (const struct ctl_cmd *c = commands; c->name; c++)
		man_cmd(f, c, "");
	fputs(".SH FINDING THE DAEMON\n", f);
	man_lines(f, FINDING);
	fputs(".SH EXIT STATUS\n", f);
	man_lines(f, EXIT_LIST);
	fputs(".SH ENVIRONMENT\n", f);
	static const char *const env[][2] = {
		{"BERTH_URL", "base URL of berthd"},
		{"CORE_SECRET", "the API secret (as berthd reads it)"},
		{"BERTH_CONFIG", "the berth.yml to read"},
		{"BERTH_DATA_DIR, XDG_STATE_HOME, HOME",
		 "the data directory, as berthd resolves it"},
		{"XDG_CONFIG_HOME", "where the per-user berth/berth.yml is"},
		{"JOB_SERVICE_PORT, JOB_SERVICE_PROTOCOL, BERTH_LISTEN_ADDRESS",
		 "override the configuration, as for berthd"},
		{"HTTP_PROXY, HTTPS_PROXY, NO_PROXY",
		 "proxies (never used for loopback addresses)"},
		{"SSL_CERT_FILE, SSL_CERT_DIR", "https: the trusted CAs"},
	};
	for (size_t i = 0; i < sizeof(env) / sizeof(env[0]); i++) {
		fputs(".TP\n\\fB", f);
		roff(f, env[i][0]);
		fputs("\\fR\n", f);
		roff(f, env[i][1]);
		fputc('\n', f);
	}
	fputs(".SH EXAMPLES\n", f);
	man_lines(f, ctl_root.examples);
	fputs(".SH SEE ALSO\n\\fBberthd\\fR(8)\n", f);
}

/* ---- bash completion ----------------------------------------------------- */

static void
bash_opts(FILE *f, const struct ctl_opt *opts)
{
	for (const struct ctl_opt *o = opts; o->lng; o++) {
		fprintf(f, " --%s", o->lng);
		if (o->shrt)
			fprintf(f, " -%c", o->shrt);
	}
}

/* Options that take a value, with its completion: a word list, files
 * (_filedir) or nothing. */
static void
bash_values(FILE *f, const struct ctl_opt *opts)
{
	for (const struct ctl_opt *o = opts; o->lng; o++) {
		if (!o->arg)
			continue;
		fprintf(f, "    --%s", o->lng);
		if (o->shrt)
			fprintf(f, "|-%c", o->shrt);
		if (o->words)
			fprintf(f, ") COMPREPLY=($(compgen -W '%s' -- "
				   "\"$cur\")); return ;;\n", o->words);
		else if (strstr(o->arg, "FILE") || strstr(o->arg, "DIR"))
			fprintf(f, ") _filedir; return ;;\n");
		else
			fprintf(f, ") return ;;\n");
	}
}

/* The names of a command list, space-separated. */
static void
bash_names(FILE *f, const struct ctl_cmd *list)
{
	for (const struct ctl_cmd *c = list; c->name; c++)
		fprintf(f, "%s%s", c == list ? "" : " ", c->name);
}

void
help_bash(FILE *f)
{
	fputs("# bash completion for berthctl (generated by 'berthctl "
	      "completion bash')\n"
	      "_berthctl()\n{\n"
	      "  local cur prev words cword\n"
	      "  _init_completion 2>/dev/null || {\n"
	      "    cur=${COMP_WORDS[COMP_CWORD]}; "
	      "prev=${COMP_WORDS[COMP_CWORD-1]}\n"
	      "    words=(\"${COMP_WORDS[@]}\"); cword=$COMP_CWORD; }\n"
	      "  type _filedir >/dev/null 2>&1 || "
	      "_filedir() { COMPREPLY=($(compgen -f -- \"$cur\")); }\n"
	      "  case $prev in\n", f);
	bash_values(f, ctl_global_opts);
	for (const struct ctl_cmd *c = commands; c->name; c++) {
		bash_values(f, c->opts);
		if (c->subs)
			for (const struct ctl_cmd *s = c->subs; s->name; s++)
				bash_values(f, s->opts);
	}
	fputs("  esac\n"
	      "  local cmd='' sub='' i w\n"
	      "  for ((i = 1; i < cword; i++)); do\n"
	      "    w=${words[i]}\n"
	      "    case $w in\n"
	      "      -*) ;;\n"
	      "      *) if [[ -z $cmd ]]; then cmd=$w;"
	      " elif [[ -z $sub ]]; then sub=$w; fi ;;\n"
	      "    esac\n"
	      "  done\n"
	      "  local global='", f);
	bash_opts(f, ctl_global_opts);
	fputs(" --version'\n  local opts='' subs=''\n  case $cmd in\n", f);
	fputs("    '') COMPREPLY=($(compgen -W \"", f);
	bash_names(f, commands);
	fputs(" $global\" -- \"$cur\")); return ;;\n", f);
	for (const struct ctl_cmd *c = commands; c->name; c++) {
		fprintf(f, "    %s)\n", c->name);
		if (c->subs) {
			fputs("      subs='", f);
			bash_names(f, c->subs);
			fputs("'\n      case $sub in\n", f);
			for (const struct ctl_cmd *s = c->subs; s->name; s++) {
				fprintf(f, "        %s) opts='", s->name);
				bash_opts(f, s->opts);
				fputs("'; subs='' ;;\n", f);
			}
			fputs("      esac ;;\n", f);
		} else if (strcmp(c->name, "help") == 0) {
			fputs("      subs='", f);
			bash_names(f, commands);
			fputs("' ;;\n", f);
		} else {
			fputs("      opts='", f);
			bash_opts(f, c->opts);
			fputs("' ;;\n", f);
		}
	}
	fputs("  esac\n"
	      "  if [[ $cur == -* ]]; then\n"
	      "    COMPREPLY=($(compgen -W \"$opts $global\" -- \"$cur\"))\n"
	      "  else\n"
	      "    COMPREPLY=($(compgen -W \"$subs\" -- \"$cur\"))\n"
	      "  fi\n"
	      "}\n"
	      "complete -F _berthctl berthctl\n", f);
}

static int
cmd_completion(struct ctl *c, struct ctl_args *a)
{
	(void)c, (void)a;
	help_bash(stdout);
	return CTL_OK;
}

/* berthctl help [COMMAND [SUB]] */
static int
cmd_help(struct ctl *c, struct ctl_args *a)
{
	(void)c;
	const struct ctl_cmd *cmd = &ctl_root;
	char path[128] = "berthctl";
	for (int i = 0; i < a->npos; i++) {
		const struct ctl_cmd *next = NULL;
		for (const struct ctl_cmd *s = cmd->subs; s && s->name; s++)
			if (strcmp(s->name, a->pos[i]) == 0)
				next = s;
		if (!next)
			return usage_error(a, "no command '%s'", a->pos[i]);
		cmd = next;
		size_t n = strlen(path);
		snprintf(path + n, sizeof(path) - n, " %s", cmd->name);
	}
	help_print(stdout, cmd, path);
	return CTL_OK;
}
