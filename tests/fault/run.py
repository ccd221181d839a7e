#!/usr/bin/env python3
"""Berth fault-injection suite (issue 11): the product tried the way an
operator breaks it, with real parts only: redis-server, berthd, local
receivers and the fault test plugin (tests/plugins/fault.c).

  tests/fault/run.py [--short] [--only NAME...] [--list]

Each scenario starts its own redis-server and berthd(s) from the build tree
($BERTH_BUILD, else ./build; $BERTHD etc. as ctest sets them win), submits
a load of FSTAMP jobs (5-20 ms each, 8 workers; thousands, or a few hundred
with --short), injects its fault for real (kill -9, SIGSTOP of Redis, Redis
shut down and restarted, misbehaving plugins, raw sockets, ...) and checks
every submitted job: its final status in Redis and the stamps the plugin
wrote, one line per run, so a job that ran twice or never is visible.

The judge's criteria are the intended behaviour: 0 lost, 0 stuck, 0
unexpected duplicates (a job interrupted by a kill -9 or an outage may run
again: at most one rerun per worker of the faulted daemon is allowed and
shown as "rerun"), the daemon never dies from a request or a plugin,
bounded memory and backlogs, clear errors. Prints one row per scenario and
exits 1 when any row has lost/doubled/stuck > 0 or a failed check.
"""
import argparse
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
_BUILD = os.path.abspath(os.environ.get("BERTH_BUILD",
                                        os.path.join(ROOT, "build")))
os.environ.setdefault("BERTHD", os.path.join(_BUILD, "berthd"))
os.environ.setdefault("BERTH_PLUGINS", os.path.join(_BUILD, "plugins"))
os.environ.setdefault("BERTH_TEST_PLUGINS",
                      os.path.join(_BUILD, "tests", "plugins"))
os.environ.setdefault("BERTH_SOURCE", ROOT)
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import harness as H  # noqa: E402
from receivers import ForwardProxy, Receiver  # noqa: E402

NS = H.NS
WORKERS = 8
RECOVER_BUDGET = 15.0     # s from a kill -9 until interrupted jobs ran again
HOOK_BACKLOG_MAX = 1000   # pending hook events allowed for one dead receiver
FINAL = ("Success", "Error", "Stopped")


class Opts:
    short = False
    jobs = 3000           # FSTAMP load per scenario
    drain = 90.0          # s a scenario waits for its jobs to be final


# --- one scenario's run -----------------------------------------------------

class Check(Exception):
    pass


class Run:
    """A Cluster of WORKERS-worker daemons over the fault plugin, the
    stamp file, the submitted jobs and the scenario's verdict."""

    def __init__(self, name, extra_entries="", fstamp_extra="",
                 config_extra="", redis_extra=None):
        self.name = name
        self.failures = []
        self.jobs = {}            # id -> expected final status
        self.rerun_allowed = 0
        self.fault_end = None     # epoch ms: runs that started before may rerun
        self.recover = None       # seconds, shown in the table
        self.notes = []
        stamps = {}

        def entries(t):
            stamps["p"] = os.path.join(t, "stamps.txt")
            return ("  - name: FSTAMP\n    file: fault.so\n%s"
                    "    settings:\n      out_file: \"%s\"\n%s" % (
                        fstamp_extra, stamps["p"],
                        extra_entries.replace("@STAMPS@", stamps["p"])))

        def config(sock, data, manifest):
            text = H.harbor_config(sock, data, manifest,
                                   H.FAST_GRACE + config_extra)
            return (text.replace("workers: 4", "workers: %d" % WORKERS)
                    .replace('level: "DEBUG"', 'level: "WARNING"'))

        self.c = H.Cluster(entries, config=config)
        self.stamps = stamps["p"]
        if redis_extra:   # a Redis that keeps its data over a restart
            self.c.redis.stop()
            self.c.redis = H.RedisServer(self.c.path, redis_extra).start()
        self.r = self.c.client()

    # checks
    def check(self, ok, text):
        if not ok:
            self.failures.append(text)
        return ok

    def redis(self):
        """A fresh client (after a Redis restart the old one is dead)."""
        try:
            self.r.close()
        except OSError:
            pass
        self.r = self.c.client()
        return self.r

    def alive(self, d, what="berthd"):
        rc = d.proc.poll()
        return self.check(rc is None, "%s died (exit %s): %s" % (
            what, rc, tail(d.log())))

    # load
    def submit_load(self, d, n, name="FSTAMP", params=None, expect="Success",
                    hook=None, threads=4):
        try:
            ids = submit_many(d, n, name, params or
                              (lambda i: {"ms": 5 + i % 16}), hook, threads)
        except Check as e:
            for j in e.ids:
                self.jobs[j] = expect
            raise
        for j in ids:
            self.jobs[j] = expect
        return ids

    def read_stamps(self):
        out = {}
        try:
            with open(self.stamps) as f:
                for ln in f:
                    p = ln.split()
                    if len(p) == 3:
                        out.setdefault(p[0], []).append((int(p[1]),
                                                          int(p[2])))
        except OSError:
            pass
        return out

    def statuses(self, ids=None):
        r = self.redis()
        return {j: r("HGET", NS + ":job_stats:" + j, "status")
                for j in (ids if ids is not None else self.jobs)}

    def retry_pending(self, st):
        """True when a job whose status is Error will still run again (a
        failed attempt): its message waits in the retry set, in a queue
        (requeued, not yet fetched) or in an in-progress list (fetched,
        not yet reset). Each move between them is one script, so the
        message is always in one of them."""
        if "Error" not in st.values():
            return False
        r = self.redis()
        raws = list(r("ZRANGE", NS + ":retry", 0, -1) or [])
        for key in r("KEYS", NS + ":jobs:*") or []:
            if r("TYPE", key) == "list":
                raws += r("LRANGE", key, 0, -1) or []
        waiting = set()
        for m in raws:
            try:
                waiting.add(json.loads(m).get("id"))
            except (ValueError, AttributeError):
                pass
        return any(s == "Error" and j in waiting for j, s in st.items())

    def wait_final(self, timeout=None):
        """Waits until every submitted job is final; returns seconds."""
        t0 = time.monotonic()
        end = t0 + (timeout or Opts.drain)
        while time.monotonic() < end:
            try:
                st = self.statuses()
                if all(s in FINAL for s in st.values()) and \
                        not self.retry_pending(st):
                    return time.monotonic() - t0
            except (OSError, ConnectionError):
                pass
            time.sleep(0.25)
        return None

    def count(self):
        """(exactly once, lost, doubled, rerun, stuck) over the jobs."""
        stamps = self.read_stamps()
        try:
            st = self.statuses()
        except (OSError, ConnectionError):
            st = {j: None for j in self.jobs}
        once = lost = doubled = stuck = 0
        reruns = []
        wrong = []
        for j, want in self.jobs.items():
            s = st.get(j)
            runs = stamps.get(j, [])
            if s is not None and s not in FINAL:
                stuck += 1
                continue
            good = s in want if isinstance(want, tuple) else s == want
            if not good or not runs:
                lost += 1
                if not good:
                    wrong.append("%s:%s" % (j, s))
                continue
            if len(runs) == 1:
                once += 1
            elif (len(runs) == 2 and self.fault_end is not None and
                  runs[0][1] <= self.fault_end):
                reruns.append(j)
            else:
                doubled += 1
        if len(reruns) > self.rerun_allowed:
            doubled += len(reruns) - self.rerun_allowed
            reruns = reruns[:self.rerun_allowed]
        if wrong:
            self.notes.append("wrong final status: %s%s" % (
                ", ".join(wrong[:3]), " ..." if len(wrong) > 3 else ""))
            for w in wrong[:3]:
                j = w.split(":")[0]
                try:
                    runs = stamps.get(j, [])
                    self.notes.append("  %s: %d run(s); stats %s" % (
                        j, len(runs), short(str(self.r(
                            "HGETALL", NS + ":job_stats:" + j)), 300)))
                    for d in self.c.daemons:
                        for line in d.log().splitlines():
                            if j in line:
                                self.notes.append("    " + short(line, 300))
                except (OSError, ConnectionError):
                    pass
        return once, lost, doubled, len(reruns), stuck

    def close(self):
        try:
            self.r.close()
        except OSError:
            pass
        try:
            self.c.close()
        except AssertionError as e:
            self.failures.append("at shutdown: " + short(str(e)))
        except Exception as e:  # noqa: BLE001
            self.failures.append("at shutdown: %r" % e)


def tail(text, n=600):
    return text[-n:].replace("\n", " | ")


def short(text, n=300):
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n] + " ..."


def now_ms():
    return int(time.time() * 1000)


def submit_many(d, n, name, params, hook, threads):
    """Submits n jobs over keep-alive connections; returns their ids."""
    ids = [None] * n
    errors = []

    def worker(k):
        conn = http.client.HTTPConnection("127.0.0.1", d.port, timeout=30)
        try:
            for i in range(k, n, threads):
                job = {"name": name, "parameters": params(i),
                       "metadata": {"kind": "Generic"}}
                if hook:
                    job["status_hook"] = hook
                conn.request("POST", "/api/v1/jobs",
                             body=json.dumps({"job": job}),
                             headers={"Authorization":
                                      "Harbor-Secret " + H.SECRET})
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 202:
                    raise Check("submit %s: %s %s" % (name, resp.status,
                                                      data[:200]))
                ids[i] = json.loads(data)["job"]["id"]
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            conn.close()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if errors:
        e = Check("submitting %s: %s" % (name, errors[0]))
        e.ids = [j for j in ids if j]
        raise e
    return ids


def wait_stamped(run, n, timeout=30):
    H.wait_for(lambda: sum(1 for _ in open_lines(run.stamps)) >= n,
               timeout=timeout, step=0.02, what="%d stamps" % n)


def open_lines(path):
    try:
        with open(path) as f:
            return f.readlines()
    except OSError:
        return []


def rss_kib(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_kib(pid):
    """RSS of a process and all its descendants."""
    total = rss_kib(pid)
    try:
        kids = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)],
                              capture_output=True, text=True).stdout.split()
    except OSError:
        kids = []
    for k in kids:
        total += tree_rss_kib(int(k))
    return total


def api_ok(d, timeout=3.0):
    """True when GET /api/v1/stats answers 200 within timeout."""
    try:
        c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=timeout)
        c.request("GET", "/api/v1/stats")
        ok = c.getresponse().status == 200
        c.close()
        return ok
    except OSError:
        return False


def raw_http(d, data, shut=False, timeout=5.0):
    """Sends raw bytes; returns the status code of the answer (None when
    the connection closed without one)."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=timeout)
    try:
        s.sendall(data)
        if shut:
            s.shutdown(socket.SHUT_WR)
        buf = b""
        while b"\r\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
    except socket.timeout:
        return "timeout"
    except OSError:
        return None
    finally:
        s.close()
    parts = buf.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None


def load_and_check(run, d, n=None):
    """The common tail of request-fault scenarios: a load submitted after
    the fault must run exactly once on the same daemon."""
    if not run.alive(d):
        return
    run.submit_load(d, n or max(100, Opts.jobs // 4))
    run.check(run.wait_final() is not None, "jobs not final in %ds" %
              Opts.drain)


# --- the scenarios ------------------------------------------------------------

def kill9_restart(run):
    """kill -9 berthd while it runs jobs; start it again."""
    a = run.c.start("a")
    run.submit_load(a, Opts.jobs)
    wait_stamped(run, Opts.jobs // 3)
    t_kill = now_ms()
    pid = a.proc.pid
    run.c.kill(a)
    run.fault_end = now_ms()
    run.rerun_allowed = WORKERS
    run.c.start("a2")
    recovery_check(run, pid, t_kill)


def kill9_two(run):
    """Two daemons; one is killed with kill -9, the other finishes."""
    a = run.c.start("a")
    b = run.c.start("b")
    run.submit_load(a, Opts.jobs)
    wait_stamped(run, Opts.jobs // 3)
    t_kill = now_ms()
    pid = a.proc.pid
    run.c.kill(a)
    run.fault_end = now_ms()
    run.rerun_allowed = WORKERS
    recovery_check(run, pid, t_kill)
    run.alive(b)


def recovery_check(run, pid, t_kill):
    """Waits for all jobs; time to recover = kill until the last job the
    killed daemon left unfinished ran again."""
    run.wait_final()
    stamps = run.read_stamps()
    interrupted = [j for j in run.jobs
                   if stamps.get(j) and stamps[j][0][0] == pid and
                   (len(stamps[j]) > 1)]
    if interrupted:
        last = max(stamps[j][1][1] for j in interrupted)
        run.recover = (last - t_kill) / 1000.0
    else:   # nothing was cut: the first job started after the kill
        later = [s[1] for v in stamps.values() for s in v if s[1] > t_kill]
        run.recover = (min(later) - t_kill) / 1000.0 if later else None
    run.check(run.recover is not None and run.recover <= RECOVER_BUDGET,
              "recovery took %s s (budget %s s)" % (run.recover,
                                                   RECOVER_BUDGET))


REDIS_AOF = ["--appendonly", "yes", "--appendfsync", "always"]
MAXC4 = "    max_concurrency: 4\n"


def redis_down(run, sig):
    """Redis goes away for 8 s under load (max_concurrency 4), then comes
    back with its data."""
    a = run.c.start("a")
    run.submit_load(a, Opts.jobs // 2)
    wait_stamped(run, Opts.jobs // 8)
    t0 = time.monotonic()
    if sig == "SHUTDOWN":
        run.c.redis.proc.send_signal(signal.SIGTERM)
    else:
        run.c.redis.proc.kill()
    run.c.redis.proc.wait(10)
    time.sleep(8)
    run.c.redis.start()
    run.fault_end = now_ms()
    run.rerun_allowed = WORKERS
    took = run.wait_final()
    run.recover = took and round(time.monotonic() - t0 - 8, 1)
    run.alive(a)
    r = run.redis()
    # the pool reconciles its lock share a second after Redis is back and
    # on every recovery pass; a stale share must heal within seconds
    end = time.monotonic() + 10
    while int(r("GET", NS + ":jobs:FSTAMP:lock") or 0) != 0 and \
            time.monotonic() < end:
        time.sleep(0.25)
    lock = int(r("GET", NS + ":jobs:FSTAMP:lock") or 0)
    run.check(lock == 0, "lock counter of FSTAMP is %d 10 s after the drain "
              "(stale: blocks the type)" % lock)
    # the type must still run new jobs
    ids = run.submit_load(a, 40)
    run.check(run.wait_final(20) is not None,
              "new jobs after the outage not final: %s" % short(str(
                  {j: s for j, s in run.statuses(ids).items()
                   if s not in FINAL})))


def redis_term(run):
    redis_down(run, "SHUTDOWN")


def redis_kill9(run):
    redis_down(run, "KILL")


def redis_sigstop(run):
    """Redis paused 15 s (SIGSTOP) while jobs are submitted and fetched."""
    a = run.c.start("a")
    n = 1500 if Opts.short else 6000   # 1 ms jobs: workers mostly fetch
    run.submit_load(a, n, params=lambda i: {"ms": 1})
    wait_stamped(run, n // 4)
    t0 = time.monotonic()
    run.c.redis.proc.send_signal(signal.SIGSTOP)
    time.sleep(15)
    run.c.redis.proc.send_signal(signal.SIGCONT)
    run.fault_end = now_ms()
    run.rerun_allowed = WORKERS
    took = run.wait_final()
    run.recover = took and round(time.monotonic() - t0 - 15, 1)
    run.alive(a)


def crash_entries(how_type, extra):
    return ("  - name: %s\n    file: fault.so\n    max_fails: 1\n"
            "    isolation: process\n%s"
            "    settings:\n      out_file: \"@STAMPS@\"\n" % (how_type,
                                                              extra))


def needs_isolation(run, d_or_exc):
    run.failures.append("needs isolation: process (manifest key refused "
                        "or unknown): %s" % short(str(d_or_exc), 200))


def start_or_needs(run, name="a"):
    try:
        return run.c.start(name)
    except AssertionError as e:
        needs_isolation(run, e)
        return None


def isolation_reason(d):
    if "unknown key 'isolation'" in d.log():
        return " (needs isolation: process: the manifest key is unknown)"
    return ""


def plugin_crash(run, how):
    """A plugin that segfaults / calls exit() in run(): the daemon (with
    isolation: process) survives, the job is an Error, other jobs run, and
    a restart is not killed again by the same job."""
    a = start_or_needs(run)
    if not a:
        return
    n_crash = 8
    try:
        crash = run.submit_load(a, n_crash, "CRASH", lambda i: {"how": how},
                                expect="Error", threads=1)
        run.submit_load(a, Opts.jobs // 2)
    except Check as e:
        run.failures.append(str(e))
    if a.proc.poll() is None:
        run.wait_final()
    if not run.alive(a, "berthd" + isolation_reason(a)):
        run.c.daemons.remove(a)
        a.stop()
        # its CRASH job is re-queued by the next daemon once the dead
        # pool's heartbeat is 10 s old: it must not kill that one too
        time.sleep(11)
        b = run.c.start("b")
        try:
            H.wait_for(lambda: b.proc.poll() is not None, timeout=10)
        except AssertionError:
            pass
        if not run.alive(b, "berthd after a restart"):
            run.c.daemons.remove(b)
            b.stop()
        return
    st = run.statuses(crash)
    run.check(all(s == "Error" for s in st.values()),
              "CRASH jobs: %s" % sorted(set(st.values()), key=str))


def plugin_segv(run):
    plugin_crash(run, "segv")


def plugin_exit(run):
    plugin_crash(run, "exit")


def plugin_hang(run):
    """HANG jobs ignore stop and never return. With isolation: process and
    max_run_seconds they are ended (Error): the other jobs still run on
    the same daemon, a stop request is honoured, and after a restart the
    same jobs do not hang again."""
    a = start_or_needs(run)
    if not a:
        return
    hang = run.submit_load(a, WORKERS, "HANG", lambda i: {}, expect="Error",
                           threads=1)
    wait_stamped(run, WORKERS, timeout=10)
    H.stop_job(a, hang[0])
    run.jobs[hang[0]] = "Stopped"
    ids = run.submit_load(a, Opts.jobs // 4)
    try:
        H.wait_for(lambda: all(s in FINAL for s in
                               run.statuses(ids).values()),
                   timeout=30, what="FSTAMP jobs")
    except AssertionError:
        run.failures.append("HANG jobs hold every worker: FSTAMP jobs not "
                            "final in 30 s%s" % isolation_reason(a))
    run.alive(a)
    run.c.daemons.remove(a)
    try:
        a.stop()
    except AssertionError as e:
        run.failures.append(str(e))
    b = run.c.start("b")
    run.wait_final(30)
    time.sleep(12)   # past the dead-pool requeue (10 s heartbeat)
    stamps = run.read_stamps()
    again = [j for j in hang if len(stamps.get(j, [])) > 1]
    run.check(not again, "%d HANG jobs ran (hung) again after the restart"
              % len(again))
    run.alive(b)


def plugin_leak(run):
    """A plugin leaking 1 MiB per run: the memory of berthd and its
    children stays bounded (isolation: process, max_rss_mb)."""
    a = start_or_needs(run)
    if not a:
        return
    n = 200 if Opts.short else 600
    run.submit_load(a, 20, "LEAK", lambda i: {"mib": 1})
    run.wait_final()
    base = tree_rss_kib(a.proc.pid)
    run.submit_load(a, n, "LEAK", lambda i: {"mib": 1})
    run.wait_final()
    grown = (tree_rss_kib(a.proc.pid) - base) // 1024
    run.notes.append("RSS +%d MiB over %d leaking runs" % (grown, n))
    run.check(grown <= 96, "RSS grew by %d MiB over %d runs of 1 MiB" %
              (grown, n))
    run.alive(a)


def silent_server():
    """A TCP server that accepts and never answers."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", 0))
    s.listen(1024)
    held = []

    def loop():
        while True:
            try:
                held.append(s.accept()[0])
            except OSError:
                return
    threading.Thread(target=loop, daemon=True).start()
    return s, held


def hook_backlog(run, url):
    a = run.c.start("a")
    n = 1500 if Opts.short else 5000
    run.submit_load(a, n, params=lambda i: {"ms": 1}, hook=url)
    run.wait_final()
    time.sleep(2)
    pending = H.pending_hook_events(run.redis())
    run.notes.append("%d pending hook events after %d jobs" % (pending, n))
    run.check(pending <= HOOK_BACKLOG_MAX,
              "%d hook events pending for one receiver (bound %d)" % (
                  pending, HOOK_BACKLOG_MAX))
    run.alive(a)


# the backlog bound under test, as the configuration row sets it
HOOK_CAP = "  hooks:\n    max_pending: %d\n" % HOOK_BACKLOG_MAX


def hook_silent(run):
    s, held = silent_server()
    try:
        hook_backlog(run, "http://127.0.0.1:%d/hook" % s.getsockname()[1])
    finally:
        s.close()
        for c in held:
            c.close()


def hook_slow(run):
    rx = Receiver().start()
    rx.on("/hook", delay=3.0)
    try:
        hook_backlog(run, rx.url("/hook"))
    finally:
        rx.stop()


def nested_json(run):
    """Deeply nested JSON bodies: 400, never a crash."""
    a = run.c.start("a")
    for depth in (800, 20000):
        deep = "[" * depth + "]" * depth
        bodies = ['{"job":%s}' % deep,
                  '{"job":{"name":"FSTAMP","metadata":{"kind":"Generic"},'
                  '"parameters":{"x":%s}}}' % deep]
        for b in bodies:
            try:
                st, _, _ = a.request("POST", "/api/v1/jobs", b)
            except OSError as e:
                st = "connection error %s" % e
            run.check(st == 400, "%d-level body: %s (want 400)" % (depth,
                                                                    st))
            if not run.alive(a):
                return
    load_and_check(run, a)


def idle_conns(run):
    """16 idle TCP connections from the client's own address, then 200
    from another one (some with half a request): the API keeps answering
    and jobs keep flowing. (A single address is capped at
    berth.api_max_client_connections, so the 200 come from 127.0.0.2, as a
    slowloris from another host would.)"""
    a = run.c.start("a")
    held = []
    try:
        for n, src in ((16, "127.0.0.1"), (216, "127.0.0.2")):
            while len(held) < n:
                s = socket.create_connection(("127.0.0.1", a.port),
                                             source_address=(src, 0))
                if len(held) % 2:
                    s.sendall(b"GET /api/v1/stats HTTP/1.1\r\nHost: x\r\n")
                held.append(s)
            t0 = time.monotonic()
            ok = api_ok(a, 5)
            run.check(ok, "%d idle connections: API silent for 5 s" % n)
            if ok:
                run.notes.append("%d idle: answered in %.2f s" % (
                    n, time.monotonic() - t0))
        load_and_check(run, a, 100)
    finally:
        for s in held:
            s.close()


def bad_http(run):
    """Malformed requests get 400, never 500."""
    a = run.c.start("a")
    auth = "Authorization: Harbor-Secret %s\r\n" % H.SECRET
    good = b'{"job":{"name":"FSTAMP","metadata":{"kind":"Generic"}}}'
    head = "POST /api/v1/jobs HTTP/1.1\r\nHost: x\r\n" + auth
    cases = [
        ("truncated body", (head + "Content-Length: %d\r\n\r\n" %
                            (len(good) + 40)).encode() + good[:20], True),
        ("bad chunk size", (head + "Transfer-Encoding: chunked\r\n\r\n"
                            "zz\r\nabc\r\n0\r\n\r\n").encode(), False),
        ("truncated chunked", (head + "Transfer-Encoding: chunked\r\n\r\n"
                               "40\r\n").encode() + good[:10], True),
        ("duplicate Content-Length", (head + "Content-Length: %d\r\n"
                                      "Content-Length: %d\r\n\r\n" % (
                                          len(good), len(good) + 5)
                                      ).encode() + good, True),
        ("Content-Length and chunked", (
            head + "Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n"
            % len(good)).encode() + good, True),
    ]
    for what, data, shut in cases:
        st = raw_http(a, data, shut)
        run.check(st == 400, "%s: %s (want 400)" % (what, st))
        if not run.alive(a):
            return
    load_and_check(run, a, 100)


def tz_zone(k):
    """The k-th odd zone name: unknown zones, and spellings of one real
    zone that name the same file ("./America//New_York") but are new
    strings each time."""
    if k % 2:
        return "Fault/Zone%d" % k
    k //= 2
    return "./" * (k % 97) + "America" + "/" * (1 + k // 97) + "New_York"


def tz_flood(run):
    """Periodic jobs with ever new odd zone names and a 7-field spec: each
    a 400 (no policy is made), and the memory stays flat although every
    name is looked up."""
    a = run.c.start("a")
    n = 3000 if Opts.short else 20000
    limit = 2 if Opts.short else 4

    def flood(k0, k1):
        conn = http.client.HTTPConnection("127.0.0.1", a.port, timeout=30)
        bad = []
        for k in range(k0, k1):
            body = {"job": {"name": "FSTAMP", "metadata": {
                "kind": "Periodic", "unique": True,
                "cron_spec": "TZ=%s 0 0 0 30 2 * *" % tz_zone(k)}}}
            conn.request("POST", "/api/v1/jobs", body=json.dumps(body),
                         headers={"Authorization":
                                  "Harbor-Secret " + H.SECRET})
            r = conn.getresponse()
            data = r.read()
            if r.status != 400:
                bad.append(r.status)
                if len(bad) == 1:
                    run.notes.append("%s: %s %s" % (tz_zone(k), r.status,
                                                    short(str(data), 160)))
        conn.close()
        return bad
    flood(0, 200)
    base = rss_kib(a.proc.pid)
    bad = []
    ts = [threading.Thread(target=lambda k=k: bad.extend(
        flood(200 + k * n // 4, 200 + (k + 1) * n // 4))) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    grown = (rss_kib(a.proc.pid) - base) / 1024.0
    run.notes.append("RSS +%.1f MiB over %d odd zone names" % (grown, n))
    run.check(not bad, "odd zones answered %s" % sorted(set(bad)))
    run.check(run.alive(a) and grown <= limit,
              "RSS grew %.1f MiB (limit %d) over %d requests with odd zone "
              "names (zone cache unbounded)" % (grown, limit, n))
    load_and_check(run, a, 100)


def plugin_perms(run):
    """A world-writable plugin dir or a group-writable .so is refused."""
    so = os.path.join(run.c.plugin_dir, "fault.so")
    for what, path, mode in (("world-writable plugin dir",
                              run.c.plugin_dir, 0o777),
                             ("group-writable .so", so, 0o664)):
        old = os.stat(path).st_mode & 0o777
        os.chmod(path, mode)
        try:
            try:
                d = run.c.start("a")
            except AssertionError as e:   # refusing to start is clear too
                run.check("writ" in str(e), "%s: berthd exited without "
                          "saying why: %s" % (what, short(str(e))))
                continue
            st, _, doc = d.json("GET", "/api/v1/plugins")
            loaded = [p["name"] for p in (doc or {}).get("plugins", [])]
            run.check("FSTAMP" not in loaded, "%s: accepted" % what)
            sts, _, _ = H.submit(d, "FSTAMP", {"ms": 1})
            run.check(sts != 202, "%s: FSTAMP job accepted" % what)
            run.c.daemons.remove(d)
            d.stop()
        finally:
            os.chmod(path, old)
    a = run.c.start("b")   # a sane directory loads again
    load_and_check(run, a, 100)


SSRF_HOSTS = ["localhost.", "LOCALHOST", "localhost.localdomain",
              "127.0.0.1.", "127.1", "0x7f000001", "2130706433",
              "0177.0.0.1", "[::1]", "[::ffff:127.0.0.1]", "[::]", "0.0.0.0"]


def webhook_ssrf(run):
    """WEBHOOK behind a proxy with block_private_addresses: no spelling of
    a private destination gets through."""
    rx = Receiver().start()
    proxy = ForwardProxy().start()
    try:
        a = run.c.start("a", env={"HTTP_PROXY": proxy.url,
                                  "http_proxy": proxy.url,
                                  "NO_PROXY": None, "no_proxy": None})
        ids = {}
        for h in SSRF_HOSTS:
            jid = H.submit_ok(a, "WEBHOOK", {
                "payload": "x",
                "address": "http://%s:%d/ssrf" % (h, rx.port)})
            ids[jid] = h
            run.jobs[jid] = "Error"
        H.wait_for(lambda: all(s in FINAL for s in
                               run.statuses(list(ids)).values()),
                   timeout=60, what="WEBHOOK jobs final")
        got = rx.count("/ssrf")
        relayed = [t for m, t, _ in proxy.seen() if "/ssrf" in t]
        run.check(got == 0 and not relayed,
                  "reached the private receiver: %d, via the proxy: %s" % (
                      got, relayed[:6]))
        st = run.statuses(list(ids))
        passed = [ids[j] for j, s in st.items() if s != "Error"]
        run.check(not passed, "not refused: %s" % passed)
        for j in ids:   # no stamp file for WEBHOOK: judged above
            run.jobs.pop(j)
        load_and_check(run, a, 100)
    finally:
        rx.stop()
        proxy.stop()


WEBHOOK_ENTRY = """  - name: WEBHOOK
    file: webhook.so
    max_fails: 1
    settings:
      block_private_addresses: true
"""


def stats_redis_down(run):
    """GET /api/v1/stats (no auth) while Redis is down must not show the
    Redis address."""
    a = run.c.start("a")
    run.c.redis.stop()
    try:
        st, _, body = a.request("GET", "/api/v1/stats", auth=False)
        text = body.decode(errors="replace")
        leak = [w for w in (run.c.redis.sock, "redis.sock", "unix://",
                            run.c.path) if w in text]
        run.check(not leak, "unauthenticated /api/v1/stats shows %s: %s" % (
            leak, short(text, 200)))
        run.check(st in (200, 500, 503), "stats answered %s" % st)
    finally:
        run.c.redis.start()
    H.wait_for(lambda: api_ok(a), timeout=15, what="API after Redis")
    load_and_check(run, a, 100)


def so_overwrite(run):
    """A loaded fault.so overwritten in place (cp over it) by a different
    build: the daemon keeps running and jobs keep running exactly once."""
    a = run.c.start("a")
    run.submit_load(a, 100)
    run.check(run.wait_final() is not None, "first batch not final")
    alt = H.plugin_file("fault_alt.so")
    with open(alt, "rb") as f:
        data = f.read()
    with open(os.path.join(run.c.plugin_dir, "fault.so"), "r+b") as f:
        f.truncate(0)
        f.write(data)
    time.sleep(1)
    if not run.alive(a):
        return
    try:
        run.submit_load(a, Opts.jobs // 4)
    except Check as e:
        run.failures.append(str(e))
    run.wait_final()
    run.alive(a)


GO_MSG = '{"name":"GOONLY","id":"%s","t":%d,"args":{},"fails":1,' \
         '"err":"go said no","failed_at":%d}'


def go_c_shared(run):
    """A due retry of a type only Go instances run is left for them (moved
    to its queue), never dead-lettered by Berth."""
    a = run.c.start("a")
    r = run.redis()
    t = int(time.time())
    jid = "%024x" % 0xfa017
    r("HSET", NS + ":job_stats:" + jid, "id", jid, "name", "GOONLY",
      "kind", "Generic", "status", "Error", "revision", t,
      "update_time", t, "enqueue_time", t)
    r("SADD", NS + ":known_jobs", "GOONLY")
    msg = GO_MSG % (jid, t, t)
    r("ZADD", NS + ":retry", t - 1, msg)
    run.submit_load(a, 100)
    run.wait_final()
    time.sleep(3)    # several requeue periods (1 s) with the message due
    r = run.redis()
    dead = r("ZRANGE", NS + ":dead", 0, -1) or []
    run.check(not [m for m in dead if jid in m],
              "the due GOONLY retry was dead-lettered")
    kept = ([m for m in r("ZRANGE", NS + ":retry", 0, -1) or [] if jid in m]
            + [m for m in r("LRANGE", NS + ":jobs:GOONLY", 0, -1) or []
               if jid in m])
    run.check(kept, "the GOONLY message is gone (neither queued nor "
              "retried)")


def no_hook_inprogress(run):
    """Final jobs without a status hook leave job_track:inprogress."""
    a = run.c.start("a")
    ids = run.submit_load(a, max(100, Opts.jobs // 4))
    run.wait_final()
    r = run.redis()

    def left():
        return sum(1 for j in ids if r("HEXISTS",
                                       NS + ":job_track:inprogress", j))
    try:
        H.wait_for(lambda: left() == 0, timeout=5,
                   what="job_track:inprogress to empty")
    except AssertionError:
        pass
    n = left()
    run.check(n == 0, "%d final jobs without a hook stay in "
              "job_track:inprogress" % n)


# name -> (function, Run keyword arguments)
SCENARIOS = [
    ("kill9_restart", kill9_restart, {}),
    ("kill9_two", kill9_two, {}),
    ("redis_term", redis_term, dict(fstamp_extra=MAXC4,
                                    redis_extra=REDIS_AOF)),
    ("redis_kill9", redis_kill9, dict(fstamp_extra=MAXC4,
                                      redis_extra=REDIS_AOF)),
    ("redis_sigstop", redis_sigstop, {}),
    ("plugin_segv", plugin_segv, dict(extra_entries=crash_entries(
        "CRASH", ""))),
    ("plugin_exit", plugin_exit, dict(extra_entries=crash_entries(
        "CRASH", ""))),
    ("plugin_hang", plugin_hang, dict(extra_entries=crash_entries(
        "HANG", "    max_run_seconds: 2\n"))),
    ("plugin_leak", plugin_leak, dict(extra_entries=crash_entries(
        "LEAK", "    max_rss_mb: 64\n"))),
    ("hook_silent", hook_silent, dict(config_extra=HOOK_CAP)),
    ("hook_slow", hook_slow, dict(config_extra=HOOK_CAP)),
    ("nested_json", nested_json, {}),
    ("idle_conns", idle_conns, {}),
    ("bad_http", bad_http, {}),
    ("tz_flood", tz_flood, {}),
    ("plugin_perms", plugin_perms, {}),
    ("webhook_ssrf", webhook_ssrf, dict(extra_entries=WEBHOOK_ENTRY)),
    ("stats_redis_down", stats_redis_down, {}),
    ("so_overwrite", so_overwrite, {}),
    ("go_c_shared", go_c_shared, {}),
    ("no_hook_inprogress", no_hook_inprogress, {}),
]


def run_one(name, fn, kw):
    t0 = time.monotonic()
    run = None
    try:
        run = Run(name, **kw)
        fn(run)
    except Check as e:
        run.failures.append(str(e))
    except Exception as e:  # noqa: BLE001 - a scenario error is a failure
        if run is None:
            return dict(name=name, submitted=0, once=0, lost=0, doubled=0,
                        rerun=0, stuck=0, recover=None,
                        secs=time.monotonic() - t0,
                        failures=["setup: %s" % short(str(e))], notes=[])
        run.failures.append("%s: %s" % (type(e).__name__, short(str(e))))
        if os.environ.get("BERTH_FAULT_TRACE"):
            traceback.print_exc()
    once, lost, doubled, rerun, stuck = run.count()
    run.close()
    return dict(name=name, submitted=len(run.jobs), once=once, lost=lost,
                doubled=doubled, rerun=rerun, stuck=stuck,
                recover=run.recover, secs=time.monotonic() - t0,
                failures=run.failures, notes=run.notes)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--short", action="store_true",
                    help="a few hundred jobs per scenario (CI)")
    ap.add_argument("--only", nargs="+", metavar="NAME")
    ap.add_argument("--list", action="store_true")
    a = ap.parse_args()
    names = [n for n, _, _ in SCENARIOS]
    if a.list:
        print("\n".join(names))
        return 0
    for n in a.only or []:
        if n not in names:
            ap.error("unknown scenario %s (--list)" % n)
    if a.short:
        Opts.short = True
        Opts.jobs = 240
        Opts.drain = 45.0
    for p in (H.BERTHD, H.plugin_file("fault.so"),
              H.plugin_file("fault_alt.so")):
        if not os.path.exists(p):
            print("missing %s: build first (cmake --build build)" % p)
            return 2
    rows = []
    for name, fn, kw in SCENARIOS:
        if a.only and name not in a.only:
            continue
        row = run_one(name, fn, kw)
        rows.append(row)
        bad = row["lost"] or row["doubled"] or row["stuck"] or \
            row["failures"]
        print("%-20s %s (%.0f s)" % (name, "FAIL" if bad else "ok",
                                     row["secs"]), flush=True)
    print()
    hdr = ("scenario", "submitted", "exactly once", "lost", "doubled",
           "rerun", "stuck", "recover s", "result")
    fmt = "%-20s %9s %12s %5s %7s %5s %5s %9s  %s"
    print(fmt % hdr)
    failed = 0
    for r in rows:
        bad = r["lost"] or r["doubled"] or r["stuck"] or r["failures"]
        failed += bool(bad)
        rec = "-" if r["recover"] is None else "%.1f" % r["recover"]
        print(fmt % (r["name"], r["submitted"], r["once"], r["lost"],
                     r["doubled"], r["rerun"], r["stuck"], rec,
                     "FAIL" if bad else "ok"))
    print()
    for r in rows:
        for f in r["failures"]:
            print("%s: FAIL %s" % (r["name"], f))
        for n in r["notes"]:
            print("%s: %s" % (r["name"], n))
    print("\n%d of %d scenarios failed" % (failed, len(rows)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
