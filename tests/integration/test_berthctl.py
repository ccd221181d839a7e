"""berthctl against a real berthd and a real Redis: every subcommand with
its table and its --json (which must parse), the exit codes 0/1/2/3, the
daemon found with no flags from HOME, XDG_* and BERTH_DATA_DIR as berthd
resolves them (its berth.yml, the port it wrote for port 0, the generated
secret), `logs -f` streaming then ending, `watch` in a pty quit with q and
with Ctrl-C and the terminal restored, --help at every level, the man page
and the bash completion generated from the same table."""
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import termios
import time
import unittest

from harness import (BERTHD, NS, SECRET, Berthd, Cluster, harbor_config,
                     job, submit_ok, wait_for, wait_status, write)

BERTHCTL = os.environ.get("BERTHCTL") or os.path.join(
    os.path.dirname(os.path.abspath(BERTHD)), "berthctl")

PLUGINS = """  - name: NOOP
    file: engine.so
  - name: SLEEPER
    file: engine.so
  - name: FLAKY
    file: engine.so
    max_fails: 3
  - name: NORETRY
    file: engine.so
"""


def config(sock, data, manifest, ns="berth_test"):
    """harbor_config with a FILE job logger (for `logs`)."""
    text = harbor_config(sock, data, manifest,
                         "  stop_grace_seconds: 1\n"
                         "  shutdown_grace_seconds: 2\n")
    text = text.replace('namespace: "berth_test"', 'namespace: "%s"' % ns)
    return text.replace('''job_loggers:
  - name: "STD_OUTPUT"
    level: "DEBUG"
''', '''job_loggers:
  - name: "STD_OUTPUT"
    level: "INFO"
  - name: "FILE"
    level: "INFO"
    settings:
      base_dir: "${data_dir}/logs/jobs"
''')


def clean_env(**extra):
    """The environment without anything that points berthctl somewhere."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("BERTH_URL", "CORE_SECRET", "BERTH_CONFIG",
                        "BERTH_DATA_DIR", "XDG_CONFIG_HOME",
                        "XDG_STATE_HOME", "JOB_SERVICE_PORT")}
    env.update(extra)
    return env


def closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class BerthctlTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.c = Cluster(PLUGINS, config=config)
        cls.r = cls.c.client()
        cls.d = cls.c.start()
        cls.url = "http://127.0.0.1:%d" % cls.d.port
        cls.home = os.path.join(cls.c.path, "home")   # a private HOME
        os.makedirs(cls.home)

    @classmethod
    def tearDownClass(cls):
        cls.r.close()
        cls.c.close()

    # --- helpers ---------------------------------------------------------

    def run_ctl(self, *args, env=None, stdin=None, timeout=30):
        """berthctl args; a private HOME so nothing of the real one is
        read. Returns the CompletedProcess."""
        env = env if env is not None else clean_env(
            HOME=self.home, BERTH_URL=self.url, CORE_SECRET=SECRET)
        return subprocess.run([BERTHCTL] + list(args), env=env,
                              input=stdin, capture_output=True, text=True,
                              timeout=timeout)

    def ok(self, *args, **kw):
        p = self.run_ctl(*args, **kw)
        self.assertEqual(p.returncode, 0, (args, p.stdout, p.stderr))
        return p.stdout

    def js(self, *args, **kw):
        """berthctl --json args: exit 0 and JSON on stdout."""
        return json.loads(self.ok("--json", *args, **kw))

    def fails(self, rc, *args, **kw):
        p = self.run_ctl(*args, **kw)
        self.assertEqual(p.returncode, rc, (args, p.stdout, p.stderr))
        return p.stderr

    def ids(self, listing):
        return {el["job"]["id"] for el in listing}

    # --- exit codes and help ----------------------------------------------

    def test_exit_codes(self):
        self.ok("queues")                                            # 0
        self.assertIn("10010", self.fails(1, "get", "0" * 24))       # 404
        err = self.fails(1, "queues", "--secret", "wrong")           # 401
        self.assertIn("the secret came from --secret", err)
        self.fails(2, "no-such-command")
        self.fails(2, "get")                                         # operand
        self.fails(2, "get", "a", "b")
        self.fails(2, "ls", "--page-size", "0")
        self.fails(2, "ls", "--page", "2")            # not Scheduled
        self.fails(2, "ls", "--status")               # no value
        self.fails(2, "ls", "--bogus")
        self.fails(2, "dead", "retry")                # neither ID nor --all
        self.fails(2, "dead", "retry", "x", "--all")
        self.fails(2, "submit", "NOOP", "-p", "novalue")
        self.fails(2, "submit", "NOOP", "-j", "x={bad")
        self.fails(2, "submit", "NOOP", "--cron", "* * * * * *",
                   "--kind", "Generic")
        self.fails(2, "completion")                   # needs a shell name
        self.fails(2, "--url", "ftp://x", "queues")
        self.fails(2, "watch")                        # not a terminal
        self.fails(2)                                 # no command
        err = self.fails(3, "queues", "--url",
                         "http://127.0.0.1:%d" % closed_port())
        self.assertIn("cannot reach berthd", err)

    def test_help_at_every_level(self):
        top = self.ok("--help")
        self.assertIn("Exit status:", top)
        for m in re.finditer(r"^  ([a-z]+)  ", top.split("Commands:")[1]
                             .split("\n\n")[0], re.M):
            cmd = m.group(1)
            out = self.ok(cmd, "--help")
            self.assertTrue(out.startswith("usage: berthctl " + cmd), out)
            if "Sub-commands:" in out:
                block = out.split("Sub-commands:")[1].split("\n\n")[0]
                for s in re.findall(r"^  ([a-z]+) ", block, re.M):
                    sub = self.ok(cmd, s, "--help")
                    self.assertTrue(sub.startswith(
                        "usage: berthctl %s %s" % (cmd, s)), sub)
        self.assertIn("--all", self.ok("dead", "retry", "--help"))
        self.assertEqual(self.ok("help", "dead", "delete"),
                         self.ok("dead", "delete", "--help"))
        self.assertRegex(self.ok("--version"), r"^berthctl \d")

    def test_man_page_and_bash_completion(self):
        man = self.ok("--help-man")
        self.assertTrue(man.startswith('.\\" berthctl(1)'))
        self.assertIn(".TH BERTHCTL 1", man)
        for section in ("COMMANDS", "EXIT STATUS", "FINDING THE DAEMON"):
            self.assertIn(".SH " + section, man)
        built = os.path.join(os.path.dirname(BERTHCTL), "host", "ctl",
                             "berthctl.1")
        if os.path.exists(built):          # the build's copy is the same
            with open(built) as f:
                self.assertEqual(f.read(), man)
        if shutil.which("groff"):
            p = subprocess.run(["groff", "-man", "-Tutf8", "-ww", "-z"],
                               input=man, capture_output=True, text=True)
            self.assertEqual((p.returncode, p.stderr), (0, ""))
        comp = self.ok("completion", "bash")
        script = os.path.join(self.c.path, "berthctl.bash")
        write(script, comp)
        # the script parses, and completes commands, sub-commands, options
        # and option values
        probe = r"""
source %s
t() { COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=();
      _berthctl; echo "${COMPREPLY[*]}"; }
t berthctl qu
t berthctl dead ''
t berthctl ls --st
t berthctl ls --status Ru
""" % script
        p = subprocess.run(["bash", "--norc", "-c", probe],
                           capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)
        lines = p.stdout.splitlines()
        self.assertEqual(lines[0], "queues")
        self.assertEqual(lines[1].split(), ["list", "retry", "delete"])
        self.assertEqual(lines[2], "--status")
        self.assertEqual(lines[3], "Running")

    # --- jobs ----------------------------------------------------------------

    def test_submit_get_ls(self):
        jid = self.ok("submit", "NOOP", "-p", "image=x=1", "-j", "n=7",
                      "-j", 'o={"a":[1,true]}').strip()
        self.assertRegex(jid, r"^[0-9a-f]{24}$")
        wait_status(self.d, jid, "Success")
        self.assertEqual(job(self.d, jid)["parameters"],
                         {"image": "x=1", "n": 7, "o": {"a": [1, True]}})
        # parameters from a file and from stdin; -p overrides a key
        pf = os.path.join(self.c.path, "params.json")
        write(pf, '{"k":"file","keep":1}')
        doc = self.js("submit", "NOOP", "--params-file", pf, "-p", "k=flag")
        self.assertEqual(doc["job"]["parameters"], {"k": "flag", "keep": 1})
        doc = self.js("submit", "NOOP", "--params-file", "-",
                      stdin='{"from":"stdin"}')
        self.assertEqual(doc["job"]["parameters"], {"from": "stdin"})
        self.fails(2, "submit", "NOOP", "--params-file", "-", stdin="[1]")
        # kinds, unique, hook
        doc = self.js("submit", "NOOP", "--delay", "3600")
        self.assertEqual(doc["job"]["kind"], "Scheduled")
        sched = doc["job"]["id"]
        self.ok("submit", "SLEEPER", "--unique", "-j", "ms=1", "-p", "u=1",
                "--delay", "3600")
        err = self.fails(1, "submit", "SLEEPER", "--unique", "-j", "ms=1",
                         "-p", "u=1", "--delay", "3600")
        self.assertIn("berthd answered", err)
        self.assertIn("status_hook", self.fails(
            1, "submit", "NOOP", "--hook", "not a url"))
        # get: the table, --json, --detail
        out = self.ok("get", jid)
        self.assertRegex(out, r"(?m)^status +Success$")
        self.assertRegex(out, r"(?m)^parameters +\{")
        self.assertEqual(self.js("get", jid)["job"]["id"], jid)
        doc = self.js("get", jid, "--detail")
        self.assertEqual(doc["detail"]["fails"], 0)
        self.assertIn("detail:", self.ok("get", "--detail", jid))
        # ls: filters, the scheduled page
        listing = self.js("ls", "--type", "NOOP", "--status", "Success",
                          "--all")
        self.assertIn(jid, self.ids(listing))
        for el in listing:
            self.assertEqual((el["job"]["name"], el["job"]["status"]),
                             ("NOOP", "Success"))
        self.assertIn(sched, self.ids(self.js("ls", "--kind", "Scheduled")))
        self.assertIn(jid, self.ok("ls", "--type", "NOOP", "--all"))
        self.fails(1, "ls", "--status", "Sleeping")   # the daemon says 400
        self.ok("stop", sched)

    def test_ls_follows_the_cursor(self):
        ids = {submit_ok(self.d, "NOOP", {"page": i}) for i in range(30)}
        for jid in ids:
            wait_status(self.d, jid, "Success")
        # a small page: the cursor goes to stderr and pages join up
        seen, cursor, pages = set(), "0", 0
        while True:
            p = self.run_ctl("--json", "ls", "--type", "NOOP",
                             "--page-size", "5", "--cursor", cursor)
            self.assertEqual(p.returncode, 0, p.stderr)
            seen |= self.ids(json.loads(p.stdout))
            pages += 1
            self.assertLess(pages, 200)
            m = re.search(r"more: --cursor (\d+)", p.stderr)
            if not m:
                break
            cursor = m.group(1)
        self.assertGreater(pages, 1)
        self.assertTrue(ids <= seen)
        self.assertTrue(ids <= self.ids(self.js("ls", "--type", "NOOP",
                                                "--all")))

    def test_stop_and_logs_follow(self):
        jid = self.ok("submit", "SLEEPER", "-j", "ms=20000").strip()
        wait_status(self.d, jid, "Running")
        self.assertIn("stop requested", self.ok("stop", jid))
        wait_status(self.d, jid, "Stopped")
        wait_for(lambda: "job finished" in self.ok("logs", jid),
                 what="the end of the stopped job's log")
        # -f streams a running job's log, then ends with it
        jid = self.ok("submit", "SLEEPER", "-j", "ms=2500").strip()
        env = clean_env(HOME=self.home, BERTH_URL=self.url,
                        CORE_SECRET=SECRET)
        p = subprocess.Popen([BERTHCTL, "logs", "-f", jid], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            started = time.monotonic()
            first = p.stdout.readline().decode()   # before the job ends
            self.assertIn("run revision", first)
            self.assertIsNone(p.poll())
            rest = p.stdout.read().decode()
            self.assertEqual(p.wait(20), 0, p.stderr.read())
            self.assertGreater(time.monotonic() - started, 1.0)
            self.assertIn("job finished with status Success", rest)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            p.stdout.close()
            p.stderr.close()
        self.assertEqual(job(self.d, jid)["status"], "Success")
        self.assertIn("10010", self.fails(1, "logs", "f" * 24))

    def test_periodic_and_executions(self):
        doc = self.js("submit", "NOOP", "--cron", "* * * * * *",
                      "-p", "every=second")
        pid = doc["job"]["id"]
        try:
            self.assertEqual(doc["job"]["kind"], "Periodic")
            pol = [p for p in self.js("periodic")["policies"]
                   if p["id"] == pid]
            self.assertEqual(len(pol), 1)
            self.assertEqual(len(pol[0]["next_runs"]), 3)
            self.assertRegex(self.ok("periodic"),
                             r"%s +NOOP +\* \* \* \* \* \* +\d{4}-" % pid)
            execs = wait_for(
                lambda: self.js("executions", pid) or None, timeout=10,
                what="an execution")
            self.assertEqual(execs[0]["job"]["upstream_job_id"], pid)
            self.assertIn(pid, self.ok("executions", pid, "--page-size",
                                       "5"))
        finally:
            self.ok("stop", pid)
        self.assertNotIn(pid, json.dumps(self.js("periodic")))

    # --- queues ----------------------------------------------------------

    def test_queues_pause_resume_stop(self):
        paused = NS + ":jobs:SLEEPER:paused"
        out = self.ok("queues")
        self.assertRegex(out, r"(?m)^TYPE +PENDING +LATENCY")
        self.assertRegex(out, r"(?m)^SLEEPER +\d+")
        self.assertEqual(self.ok("pause", "SLEEPER").strip(),
                         "paused SLEEPER")
        self.assertEqual(self.r("EXISTS", paused), 1)
        q = {x["type"]: x for x in self.js("queues")["queues"]}
        self.assertTrue(q["SLEEPER"]["paused"])
        try:
            jid = submit_ok(self.d, "SLEEPER", {"ms": 1})
            self.assertRegex(self.ok("queues"),
                             r"(?m)^SLEEPER +1 +\d+s +\d+ +\d+ +- +yes")
            # stop all: the pending job is Stopped
            out = self.ok("queues", "stop", "SLEEPER")
            self.assertIn("stopped SLEEPER: 1 pending", out)
            self.assertEqual(job(self.d, jid)["status"], "Stopped")
        finally:
            self.ok("resume", "SLEEPER")
        self.assertEqual(self.r("EXISTS", paused), 0)
        doc = self.js("pause", "*")
        self.assertEqual(set(doc["types"]),
                         {"NOOP", "SLEEPER", "FLAKY", "NORETRY"})
        self.assertEqual(self.js("queues", "resume", "*")["action"],
                         "resume")
        self.assertEqual(self.r("KEYS", NS + ":jobs:*:paused"), [])
        self.assertIn("10010", self.fails(1, "pause", "NO_SUCH_TYPE"))

    # --- retry and dead sets ------------------------------------------------

    def test_retries_and_dead(self):
        counter = os.path.join(self.c.path, "flaky.count")
        flaky = self.ok("submit", "FLAKY", "-j", "fail_times=100",
                        "-p", "counter_file=" + counter).strip()
        wait_for(lambda: any(i["job_id"] == flaky for i in
                             self.js("retries")["items"]),
                 what="the FLAKY job in the retry set")
        out = self.ok("retries")
        self.assertRegex(out, r"%s +FLAKY +1 +attempt 1 fails" % flaky)
        self.assertEqual(self.js("retries", "list", "--type", "FLAKY",
                                 "--page-size", "1")["page_size"], 1)
        # retry now: the second attempt runs at once
        self.assertEqual(self.ok("retries", "retry", flaky).strip(),
                         "retried 1 job(s)")
        wait_for(lambda: os.path.getsize(counter) >= 2, what="attempt 2")
        wait_for(lambda: any(i["job_id"] == flaky for i in
                             self.js("retries")["items"]),
                 what="the FLAKY job back in the retry set")
        self.assertEqual(self.js("retries", "delete", "--all")["action"],
                         "delete")
        self.assertEqual(self.js("retries")["total"], 0)

        dead = self.ok("submit", "NORETRY").strip()
        wait_for(lambda: any(i["job_id"] == dead for i in
                             self.js("dead")["items"]),
                 what="the NORETRY job in the dead set")
        self.assertRegex(self.ok("dead", "list"),
                         r"%s +NORETRY +1 +always fails" % dead)
        self.assertIn("10010", self.fails(1, "dead", "retry", "f" * 24))
        self.assertEqual(self.js("dead", "retry", dead)["affected"], 1)
        # it runs again, fails again, and is dead again
        wait_for(lambda: any(i["job_id"] == dead for i in
                             self.js("dead")["items"]),
                 what="the NORETRY job dead again")
        self.assertRegex(self.ok("dead", "delete", "--all"),
                         r"deleted [1-9]\d* job\(s\)")
        self.assertEqual(self.js("dead")["items"], [])

    # --- pools, workers, plugins, stats ---------------------------------------

    def test_pools_workers_plugins_stats(self):
        jid = submit_ok(self.d, "SLEEPER", {"ms": 4000, "who": "w"})
        wait_status(self.d, jid, "Running")
        pools = self.js("pools")["pools"]
        mine = [p for p in pools if p["self"]]
        self.assertEqual(len(mine), 1)
        pool = mine[0]["pool_id"]
        self.assertRegex(self.ok("pools"), r"(?m)^%s +\S+ +\d+ +Healthy"
                         % pool)
        # workers POOL (a prefix will do), workers (busy ones everywhere)
        doc = self.js("workers", pool)
        busy = [w for w in doc["workers"] if w["busy"]]
        self.assertEqual([w["job_id"] for w in busy], [jid])
        out = self.ok("workers", pool[:10])
        self.assertRegex(out, r"(?m)^\S+ +yes +SLEEPER +%s" % jid)
        self.assertRegex(out, r"(?m)^\S+ +no +- +- +- +-$")
        self.assertIn(jid, self.ok("workers", "--busy"))
        everywhere = self.js("workers")
        self.assertIn(jid, json.dumps(everywhere))
        self.assertIn("10010", self.fails(1, "workers", "0" * 24))
        # plugins, reload, stats (no secret needed)
        names = {p["name"] for p in self.js("plugins")["plugins"]}
        self.assertEqual(names, {"NOOP", "SLEEPER", "FLAKY", "NORETRY"})
        self.assertRegex(self.ok("plugins", "list"), r"(?m)^NORETRY +\S+")
        self.assertIn("plugins", self.js("plugins", "reload"))
        env = clean_env(HOME=self.home, BERTH_URL=self.url)
        stats = self.js("stats", env=env)
        self.assertIn(pool, [p["worker_pool_id"]
                             for p in stats["worker_pools"]])
        self.assertIn(pool, self.ok("stats", env=env))
        self.fails(1, "pools", env=env)                  # no secret: 401
        wait_status(self.d, jid, "Success")

    def test_terminal_safe_tables(self):
        # ESC and BEL are escaped by JSON; the C1 control U+009B (a CSI
        # for some terminals) is valid UTF-8 that JSON keeps as it is
        evil = "\x1b]0;pwned\x07\u009b2J"
        jid = submit_ok(self.d, "NOOP", {"evil": evil})
        wait_status(self.d, jid, "Success")
        out = self.ok("ls", "--type", "NOOP", "--status", "Success",
                      "--all") + self.ok("get", jid)
        for bad in ("\x1b", "\x07", "\u009b"):
            self.assertNotIn(bad, out)
        self.assertIn('{"evil":"\\u001b]0;pwned\\u0007?2J"}', out)
        # --json keeps the API's text
        self.assertEqual(self.js("get", jid)["job"]["parameters"]["evil"],
                         evil)

    # --- finding the daemon with no flags --------------------------------------

    def start_private(self, cfg_dir, data_dir, env):
        """A berthd of its own namespace whose berth.yml is
        cfg_dir/berth.yml; CORE_SECRET unset (it generates one)."""
        os.makedirs(cfg_dir, exist_ok=True)
        text = config(self.c.redis.sock, data_dir, self.c.manifest,
                      ns="berth_ctl_%d" % len(self.c.daemons))
        env = dict(env, CORE_SECRET=None, BERTH_URL=None,
                   BERTH_DATA_DIR=env.get("BERTH_DATA_DIR"),
                   XDG_STATE_HOME=env.get("XDG_STATE_HOME"),
                   XDG_CONFIG_HOME=env.get("XDG_CONFIG_HOME"))
        d = Berthd(cfg_dir, text, env=env).start()
        self.c.daemons.append(d)
        return d

    def test_discovery_from_home(self):
        home = os.path.join(self.c.path, "home1")
        cfg = os.path.join(home, ".config", "berth")
        # data_dir "" in berth.yml: berthd uses ~/.local/state/berth
        d = self.start_private(cfg, "", {"HOME": home})
        data = os.path.join(home, ".local", "state", "berth")
        with open(os.path.join(data, "api_port")) as f:
            self.assertEqual(int(f.read()), d.port)
        self.assertTrue(os.path.exists(os.path.join(data, "core_secret")))
        env = clean_env(HOME=home, JOB_SERVICE_PORT="0")
        doc = self.js("pools", env=env)
        self.assertEqual(len([p for p in doc["pools"] if p["self"]]), 1)
        self.ok("queues", env=env)
        jid = self.ok("submit", "NOOP", env=env).strip()
        wait_for(lambda: self.js("get", jid, env=env)["job"]["status"] ==
                 "Success", what="the job run by the private daemon")
        # the same through --config and --data-dir from elsewhere
        other = clean_env(HOME=self.home, JOB_SERVICE_PORT="0")
        self.ok("queues", "--config", os.path.join(cfg, "berth.yml"),
                "--data-dir", data, env=other)
        self.ok("queues", env=dict(other, BERTH_CONFIG=os.path.join(
            cfg, "berth.yml"), BERTH_DATA_DIR=data))
        # a wrong secret file is an API error; no port file: unreachable
        self.fails(1, "queues", "--secret-file", os.path.join(cfg,
                                                              "berth.yml"),
                   env=env)
        self.fails(2, "queues", "--secret-file", "/nonexistent", env=env)
        self.fails(3, "queues", "--data-dir",
                   os.path.join(self.c.path, "empty"), env=env)
        self.fails(2, "queues", "--config", "/nonexistent/berth.yml",
                   env=env)

    def test_discovery_from_xdg_and_berth_data_dir(self):
        base = os.path.join(self.c.path, "xdg")
        xcfg = os.path.join(base, "config")
        data = os.path.join(base, "data")
        env = {"HOME": self.home, "XDG_CONFIG_HOME": xcfg,
               "BERTH_DATA_DIR": data}
        d = self.start_private(os.path.join(xcfg, "berth"), "", env)
        ctl_env = clean_env(JOB_SERVICE_PORT="0", **env)
        self.assertIn("NOOP", self.ok("queues", env=ctl_env))
        self.assertEqual(
            [p["pid"] for p in self.js("pools", env=ctl_env)["pools"]
             if p["self"]], [d.proc.pid])
        # XDG_STATE_HOME instead of BERTH_DATA_DIR: another data dir,
        # without the port file
        del ctl_env["BERTH_DATA_DIR"]
        ctl_env["XDG_STATE_HOME"] = os.path.join(base, "state")
        self.fails(3, "queues", env=ctl_env)

    # --- watch ---------------------------------------------------------------

    def watch(self, quit_with):
        """berthctl watch on a pty of 40x160, made its controlling
        terminal; quits with quit_with; returns (exit code, output)."""
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ,
                    struct.pack("HHHH", 40, 160, 0, 0))
        before = termios.tcgetattr(slave)

        def ctty():
            os.setsid()
            fcntl.ioctl(0, termios.TIOCSCTTY, 0)
        env = clean_env(HOME=self.home, BERTH_URL=self.url,
                        CORE_SECRET=SECRET, TERM="xterm")
        p = subprocess.Popen([BERTHCTL, "watch", "--interval", "1"],
                             stdin=slave, stdout=slave, stderr=slave,
                             env=env, preexec_fn=ctty)
        out = b""

        def read_until(pred, timeout):
            nonlocal out
            end = time.monotonic() + timeout
            while time.monotonic() < end and not pred(out):
                r, _, _ = select.select([master], [], [], 0.2)
                if r:
                    try:
                        out += os.read(master, 65536)
                    except OSError:
                        break
            return pred(out)
        try:
            self.assertTrue(read_until(
                lambda o: o.count(b"BUSY WORKERS") >= 2, 15), out[-2000:])
            self.assertEqual(p.poll(), None)
            os.write(master, quit_with)
            rc = p.wait(10)
            read_until(lambda o: o.endswith(b"\x1b[?1049l"), 2)
            after = termios.tcgetattr(slave)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
            os.close(master)
            os.close(slave)
        self.assertEqual(after, before)            # the terminal restored
        return rc, out

    def test_watch_quits_with_q_and_ctrl_c(self):
        jid = submit_ok(self.d, "SLEEPER", {"ms": 6000})
        wait_status(self.d, jid, "Running")
        rc, out = self.watch(b"q")
        self.assertEqual(rc, 0)
        text = out.decode(errors="replace")
        self.assertIn("\x1b[?1049h", text)         # alternate screen
        self.assertTrue(text.endswith("\x1b[?25h\x1b[?1049l"), text[-40:])
        for word in ("QUEUES", "POOLS", "SLEEPER", jid, "berth (this)"):
            self.assertIn(word, text)
        rc, out = self.watch(b"\x03")              # Ctrl-C: SIGINT
        self.assertEqual(rc, 0)
        self.assertTrue(out.endswith(b"\x1b[?25h\x1b[?1049l"))
        stop = self.run_ctl("stop", jid)
        self.assertEqual(stop.returncode, 0, stop.stderr)


if __name__ == "__main__":
    unittest.main()
