"""Redis Sentinel (issue 14, item 4): berthd on a
redis+sentinel://host:port,host:port,host:port/<master> URL, against real
processes on loopback TCP ports: one redis-server master, one replica and
three sentinels (`redis-server <conf> --sentinel`), with short sentinel
timeouts (down-after-milliseconds 1000, failover-timeout 3000).

  SentinelTests.test_a_discovery   berthd finds the master through the
      sentinels and runs a job there; a master name no sentinel knows is
      refused with the sentinels' answers in the message
  SentinelTests.test_b_failover    SIGKILL of the master in the middle of
      2,000 jobs (four clients submitting one job per request, every 20th
      with a status hook, retrying a refused submission): after the
      promotion every accepted job reaches a final status, ran at least
      once, every hooked job's final hook arrives, and the reaper still
      completes its passes. Prints the time to recover and the number of
      jobs the reaper had to act on.
  SentinelConfigTests              --check-config refuses malformed
      sentinel URLs with a clear message and accepts a good one

Ports are taken from the kernel (bind to port 0) just before the servers
start; every process lives in a private temporary directory.
"""
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import unittest

from harness import (BERTHD, FAST_GRACE, NS, SECRET, Berthd, Resp, TempDir,
                     harbor_config, plugin_file, sanitizer_lines, wait_for,
                     write)
from receivers import HookReceiver

MASTER = "berthmaster"
JOBS = 2000
KILL_AT = 1000
CLIENTS = 4
HOOK_EVERY = 20
FINAL = ("Success", "Error", "Stopped")


def free_ports(n):
    """n distinct free loopback ports (held together, then released)."""
    socks = []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class TcpResp(Resp):
    """harness.Resp over TCP."""

    def __init__(self, port, timeout=5):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.buf = b""


def resp_try(port, *cmd):
    try:
        c = TcpResp(port, timeout=2)
    except OSError:
        return None
    try:
        return c(*cmd)
    except (OSError, RuntimeError, ConnectionError):
        return None
    finally:
        c.close()


def info_field(port, section, field):
    text = resp_try(port, "INFO", section) or ""
    m = re.search(r"^%s:(.*)$" % re.escape(field), text, re.M)
    return m.group(1).strip() if m else None


class Node:
    """One redis-server on 127.0.0.1:port (sentinel=True: a sentinel
    monitoring MASTER at master_port)."""

    def __init__(self, tmp, name, port, replica_of=None, sentinel_of=None):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.name = name
        self.port = port
        log = os.path.join(self.dir, "redis.log")
        if sentinel_of:
            conf = os.path.join(self.dir, "sentinel.conf")
            write(conf, "port %d\nbind 127.0.0.1\ndir %s\nlogfile %s\n"
                  "sentinel monitor %s 127.0.0.1 %d 2\n"
                  "sentinel down-after-milliseconds %s 1000\n"
                  "sentinel failover-timeout %s 3000\n"
                  "sentinel parallel-syncs %s 1\n"
                  % (port, self.dir, log, MASTER, sentinel_of, MASTER,
                     MASTER, MASTER))
            argv = ["redis-server", conf, "--sentinel"]
        else:
            argv = ["redis-server", "--port", str(port), "--bind",
                    "127.0.0.1", "--dir", self.dir, "--save", "",
                    "--appendonly", "no", "--daemonize", "no",
                    "--repl-diskless-sync-delay", "0", "--logfile", log]
            if replica_of:
                argv += ["--replicaof", "127.0.0.1", str(replica_of)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_for(lambda: self.proc.poll() is not None or
                 resp_try(port, "PING") == "PONG", timeout=15,
                 what="%s on port %d" % (name, port))
        if self.proc.poll() is not None:
            raise AssertionError("%s exited: %s" % (name, self.log()))

    def log(self):
        try:
            with open(os.path.join(self.dir, "redis.log")) as f:
                return f.read()[-3000:]
        except OSError:
            return ""

    def kill(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


class Topology:
    """A master, a replica in sync with it and three sentinels that know
    the replica and each other."""

    def __init__(self, tmp):
        self.nodes = []
        try:
            self._start(tmp)
        except BaseException:
            self.stop()
            raise

    def _start(self, tmp):
        ports = free_ports(5)
        self.master = self._node(tmp, "master", ports[0])
        self.replica = self._node(tmp, "replica", ports[1],
                                  replica_of=ports[0])
        wait_for(lambda: info_field(ports[1], "replication",
                                    "master_link_status") == "up",
                 timeout=15, what="the replica in sync")
        # after a diskless sync the master streams to the replica only
        # from its first ACK (up to 1 s later): wait for one
        acked = resp_try(ports[0], "WAIT", "1", "5000")
        if acked != 1:
            raise AssertionError("the replica does not acknowledge: %r"
                                 % acked)
        self.sentinels = [self._node(tmp, "sentinel%d" % i, p,
                                     sentinel_of=ports[0])
                          for i, p in enumerate(ports[2:])]

        def ready():
            for s in self.sentinels:
                reps = resp_try(s.port, "SENTINEL", "REPLICAS", MASTER)
                others = resp_try(s.port, "SENTINEL", "SENTINELS", MASTER)
                if not reps or not others or len(others) < 2:
                    return False
            return True
        wait_for(ready, timeout=20, step=0.2,
                 what="the sentinels knowing the replica and each other")

    def _node(self, tmp, *a, **kw):
        n = Node(tmp, *a, **kw)
        self.nodes.append(n)
        return n

    def url(self, name=MASTER, auth=""):
        return "redis+sentinel://%s%s/%s" % (
            auth, ",".join("127.0.0.1:%d" % s.port for s in self.sentinels),
            name)

    def master_addr(self):
        """The master as the first sentinel that answers names it."""
        for s in self.sentinels:
            a = resp_try(s.port, "SENTINEL", "GET-MASTER-ADDR-BY-NAME",
                         MASTER)
            if a:
                return a[0], int(a[1])
        return None

    def stop(self):
        for n in self.nodes:
            n.stop()


def record_entry(out_dir):
    return ("  - name: BENCH\n    file: record.so\n    settings:\n"
            "      out_dir: \"%s\"\n" % out_dir)


def records(out_dir):
    """index -> number of runs the record plugin wrote (phase 1 only)."""
    runs = {}
    for name in os.listdir(out_dir):
        with open(os.path.join(out_dir, name)) as f:
            for line in f:
                p, i = line.split()[:2]
                if p == "1":
                    runs[int(i)] = runs.get(int(i), 0) + 1
    return runs


class Daemon:
    """berthd on the sentinel URL with the record plugin as BENCH, metrics
    on a free port and the reaper every 2 s."""

    def __init__(self, tmp, url, name="d"):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.out = os.path.join(self.dir, "records")
        os.makedirs(self.out)
        pdir = os.path.join(self.dir, "plugins")
        os.makedirs(pdir)
        shutil.copy(plugin_file("record.so"), pdir)
        os.chmod(os.path.join(pdir, "record.so"), 0o755)
        manifest = os.path.join(self.dir, "plugins.yml")
        write(manifest, 'plugin_dir: "%s"\nplugins:\n%s'
              % (pdir, record_entry(self.out)))
        extra = (FAST_GRACE + "  reaper_interval_seconds: 2\n"
                 "metric:\n  enabled: true\n  path: /metrics\n"
                 "  port: 8080\n")
        cfg = harbor_config(url, os.path.join(self.dir, "data"), manifest,
                            extra)
        # job loggers (the first "level") at INFO; the service log stays
        # at DEBUG, where the reaper names each job it acts on
        cfg = cfg.replace('level: "DEBUG"', 'level: "INFO"', 1)
        self.mport_file = os.path.join(self.dir, "metrics_port")
        self.d = Berthd(self.dir, cfg, env={
            "BERTH_METRICS_PORT": "0",
            "BERTH_METRICS_PORT_FILE": self.mport_file,
            "BERTH_HOOK_RETRY_SCALE": "0.01"})

    def metrics(self):
        with open(self.mport_file) as f:
            port = int(f.read().strip())
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            c.request("GET", "/metrics")
            return c.getresponse().read().decode()
        finally:
            c.close()


def metric_values(text, name):
    """{labels: value} of one metric family ("" for no labels)."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            key, v = line.rsplit(" ", 1)
            out[key[len(name):]] = float(v)
    return out


def submit_one(d, i, hook):
    body = {"job": {"name": "BENCH", "metadata": {"kind": "Generic"},
                    "parameters": {"p": 1, "i": i}}}
    if hook:
        body["job"]["status_hook"] = hook
    try:
        st, _, doc = d.json("POST", "/api/v1/jobs", body)
    except (OSError, http.client.HTTPException):
        return None
    return doc["job"]["id"] if st == 202 else None


class SentinelTests(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = TempDir()
        try:
            cls.topo = Topology(cls.tmp.path)
        except BaseException:
            cls.tmp.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.topo.stop()
        cls.tmp.cleanup()

    def start_daemon(self, name, url):
        dm = Daemon(self.tmp.path, url, name)
        dm.d.start()
        self.addCleanup(self.stop_daemon, dm)
        return dm

    def stop_daemon(self, dm):
        rc = dm.d.stop()
        bad = sanitizer_lines(dm.d.log())
        self.assertEqual((rc, bad), (0, []), dm.d.log()[-4000:])

    def test_a_discovery(self):
        dm = self.start_daemon("disc", self.topo.url())
        d = dm.d
        host, port = self.topo.master_addr()
        self.assertEqual(port, self.topo.master.port)
        self.assertIn("the master is 127.0.0.1:%d" % port, d.log())
        st, _, doc = d.json("POST", "/api/v1/jobs", {"job": {
            "name": "BENCH", "metadata": {"kind": "Generic"},
            "parameters": {"p": 0, "i": 0}}})
        self.assertEqual(st, 202, doc)
        jid = doc["job"]["id"]

        def done():
            v = resp_try(port, "HGET", "%s:job_stats:%s" % (NS, jid),
                         "status")
            return v == "Success"
        wait_for(done, timeout=20, what="the job Success on the master")
        # the replica has it too, and no berthd connection goes there
        # (its other clients are the sentinels, named sentinel-*)
        wait_for(lambda: resp_try(self.topo.replica.port, "HGET",
                                  "%s:job_stats:%s" % (NS, jid),
                                  "status") == "Success",
                 what="the job on the replica")
        clients = resp_try(self.topo.replica.port, "CLIENT", "LIST",
                           "TYPE", "normal") or ""
        berthd = [l for l in clients.splitlines()
                  if "name=sentinel-" not in l and "cmd=client|list" not in l]
        self.assertEqual(berthd, [])
        # /api/v1/config gives Harbor's dashboard the same URL
        st, _, doc = d.json("GET", "/api/v1/config")
        self.assertEqual(doc["redis_pool_config"]["RedisURL"],
                         self.topo.url())

        # a master no sentinel knows: every sentinel's answer is shown
        bad = Daemon(self.tmp.path, self.topo.url("nosuch"), "bad").d
        bad.start(wait=False)
        try:
            wait_for(lambda: 'does not know a master named "nosuch"'
                     in bad.log(), timeout=20, what="the refusal")
            log = bad.log()
            for s in self.topo.sentinels:
                self.assertIn("sentinel 127.0.0.1:%d does not know" % s.port,
                              log)
        finally:
            bad.stop(signal.SIGKILL)

    def test_b_failover(self):
        topo = self.topo
        rx = HookReceiver()
        self.addCleanup(rx.down)
        dm = self.start_daemon("fo", topo.url())
        d = dm.d
        lock = threading.Lock()
        accepted = {}      # i -> job id
        hooked = set()     # ids with a hook
        attempts = []      # (start, end, ok)
        next_i = [0]
        t_kill = [None]

        def client():
            while True:
                with lock:
                    i = next_i[0]
                    if i >= JOBS:
                        return
                    next_i[0] += 1
                hook = rx.url("/hook/%d" % i) if i % HOOK_EVERY == 0 \
                    else None
                while True:
                    t0 = time.monotonic()
                    jid = submit_one(d, i, hook)
                    t1 = time.monotonic()
                    with lock:
                        attempts.append((t0, t1, jid is not None))
                        if jid:
                            accepted[i] = jid
                            if hook:
                                hooked.add(jid)
                    if jid:
                        break
                    time.sleep(0.05)

        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        t_start = time.monotonic()
        for t in threads:
            t.start()
        wait_for(lambda: len(accepted) >= KILL_AT, timeout=60, step=0.005,
                 what="%d accepted jobs" % KILL_AT)
        old = topo.master.port
        topo.master.kill()
        t_kill[0] = time.monotonic()
        for t in threads:
            t.join(120)
        t_all_in = time.monotonic()
        self.assertEqual(len(accepted), JOBS)

        new = wait_for(lambda: (topo.master_addr() or (0, old))[1] != old
                       and topo.master_addr(), timeout=30,
                       what="the promotion")
        self.assertEqual(new[1], topo.replica.port)
        r = TcpResp(new[1])
        self.addCleanup(r.close)
        ids = list(accepted.values())

        def statuses():
            out = {}
            for jid in ids:
                out[jid] = r("HGET", "%s:job_stats:%s" % (NS, jid),
                             "status")
            return out

        def all_final():
            st = statuses()
            return st if all(v in FINAL for v in st.values()) else None
        try:
            final = wait_for(all_final, timeout=60, step=0.25,
                             what="every job in a final status")
        except AssertionError:
            st = statuses()
            left = {j: v for j, v in st.items() if v not in FINAL}
            if os.environ.get("BERTH_SENTINEL_LOG"):
                shutil.copy(d.log_path, os.environ["BERTH_SENTINEL_LOG"])
            lines = [l for l in d.log().splitlines()
                     if any(j in l for j in left)]
            byid = {v: k for k, v in accepted.items()}
            raise AssertionError("%d job(s) not final: %s (indices %s, "
                                 "kill after %d)\n%s" % (
                len(left), sorted(left.items())[:10],
                sorted(byid[j] for j in left), KILL_AT,
                "\n".join(lines[:40])))
        t_final = time.monotonic()

        # as a user sees them
        for jid in ids[::50]:
            st, _, doc = d.json("GET", "/api/v1/jobs/" + jid)
            self.assertEqual(st, 200)
            self.assertIn(doc["job"]["status"], FINAL)
        runs = records(dm.out)
        never = [i for i in range(JOBS) if i not in runs]
        self.assertEqual(never, [], "accepted jobs that never ran")
        # jobs of submissions answered 500 that exist all the same (the
        # master died between their transaction and the replica's ACK):
        # their index runs twice
        known = set(ids)
        orphans = {}
        cursor = "0"
        while True:
            cursor, keys = r("SCAN", cursor, "MATCH",
                             "%s:job_stats:*" % NS, "COUNT", "1000")
            for k in keys:
                jid = k.rsplit(":", 1)[1]
                if jid in known:
                    continue
                params = r("HGET", k, "parameters") or "{}"
                m = re.search(r'"i":(\d+)', params)
                if m and '"p":1' in params:
                    orphans[jid] = int(m.group(1))
            if cursor == "0":
                break
        # a job may also run again (at least once: an end lost with the
        # master is redone by the reconciliation); reported, not refused
        twice = {i for i, n in runs.items() if n > 1}
        rerun = twice - set(orphans.values())

        # every hooked job's final status reached its hook
        def hooks_done():
            got = set()
            for q in rx.requests:
                doc = q.get("doc") or {}
                if doc.get("status") in FINAL and q["code"] == 200:
                    got.add(doc.get("job_id"))
            return hooked <= got
        wait_for(hooks_done, timeout=30, what="the final hooks")

        # the reaper finishes a pass on the new master
        kill_mark = d.log().find("the master moved")
        self.assertGreaterEqual(kill_mark, 0, d.log()[-4000:])
        wait_for(lambda: re.search(r"reaper: \d+ tracked job",
                                   d.log()[kill_mark:]),
                 timeout=20, what="a reaper pass after the failover")

        # figures
        after = [a for a in attempts if a[0] >= t_kill[0]]
        fails = [a for a in after if not a[2]]
        first_fail = min((a[0] for a in fails), default=t_kill[0])
        recovered = min((a[1] for a in after
                         if a[2] and a[0] >= first_fail),
                        default=t_kill[0])
        log = d.log()
        # jobs the reaper acted on (re-fired a hook, applied an ACK, set
        # Error); "stats gone; untracked" are leftovers of refused
        # submissions, counted apart
        acted = re.findall(r"reaper: job ([0-9a-f]{24}): (\S+ \S+)", log)
        reaped = {j for j, what in acted if what != "stats gone;"} & \
            set(ids)
        gone = {j for j, what in acted if what == "stats gone;"}
        text = dm.metrics()
        actions = metric_values(text, "berth_reaper_actions_total")
        retried = sum(int(n) for n in re.findall(
            r"status update retry: (\d+) applied", log))
        put_back = sum(int(n) for n in re.findall(
            r"(\d+) in-progress message\(s\)", log))
        reruns = sum(1 for n in runs.values() if n > 1)
        counts = {}
        for v in final.values():
            counts[v] = counts.get(v, 0) + 1
        print("\nsentinel failover: master :%d SIGKILLed after %d of %d "
              "jobs accepted (%.2f s into the run); promoted :%d\n"
              "  time to recover: %.2f s (kill -> first accepted submit "
              "after %d refused); every job final %.2f s after the kill\n"
              "  final statuses: %s; jobs run again: %d; indices run "
              "twice: %d (%d submission(s) answered 500 while the master "
              "died whose job exists all the same)\n"
              "  jobs that needed the reaper: %d (reaper_actions_total "
              "%s; tracking entries without stats removed %d; status "
              "updates retried %d; in-progress messages put back by "
              "reconciliation %d)"
              % (old, KILL_AT, JOBS, t_kill[0] - t_start, new[1],
                 recovered - t_kill[0], len(fails), t_final - t_kill[0],
                 counts, len(rerun), reruns, len(orphans), len(reaped),
                 {k: int(v) for k, v in actions.items() if v} or 0,
                 len(gone), retried, put_back),
              file=sys.stderr)
        self.assertLess(t_all_in - t_start, 60)
        if os.environ.get("BERTH_SENTINEL_LOG"):
            shutil.copy(d.log_path, os.environ["BERTH_SENTINEL_LOG"])


class SentinelConfigTests(unittest.TestCase):
    def check(self, url):
        tmp = TempDir()
        self.addCleanup(tmp.cleanup)
        manifest = os.path.join(tmp.path, "plugins.yml")
        write(manifest, 'plugins: []\n')
        cfg = os.path.join(tmp.path, "berth.yml")
        write(cfg, harbor_config(url, os.path.join(tmp.path, "data"),
                                 manifest))
        env = dict(os.environ, CORE_SECRET=SECRET)
        p = subprocess.run([BERTHD, "-c", cfg, "--check-config"], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=30)
        return p.returncode, p.stdout.decode(errors="replace")

    def test_malformed_urls(self):
        cases = [
            ("redis+sentinel://h1:26379,h2:26379", "names no master"),
            ("redis+sentinel://h1:26379,h2:26379/", "names no master"),
            ("redis+sentinel:///m", "names no sentinel"),
            ("redis+sentinel://h1:26379,,h2/m",
             "empty sentinel address (number 2)"),
            ("redis+sentinel://h1:99999/m", "bad port \"99999\""),
            ("redis+sentinel://h1/m/x", "bad database \"x\""),
            ("redis+sentinel://h1/m/1/2", "bad database"),
            ("redis+sentinel://h1/m%20x", "bad character in the master"),
            ("redis+sentinel://:s3cr3t@h1/m?sentinel_password=%zz",
             "bad percent-encoding in the sentinel_password"),
            ("rediss+sentinel://h1/m", "rediss+sentinel:// (TLS)"),
            ("redis+sentinel://" + ",".join(["h:1"] * 17) + "/m",
             "too many sentinels"),
        ]
        for url, want in cases:
            rc, out = self.check(url)
            self.assertNotEqual(rc, 0, (url, out))
            self.assertIn(want, out, url)
            self.assertNotIn("s3cr3t", out)
            self.assertNotIn("is valid", out, url)

    def test_good_url(self):
        rc, out = self.check("redis+sentinel://:pw@127.0.0.1:26379,"
                             "[::1]:26380,localhost/mymaster/2"
                             "?sentinel_password=x&idle_timeout_seconds=5")
        self.assertEqual(rc, 0, out)
        self.assertIn("is valid", out)


if __name__ == "__main__":
    unittest.main()
