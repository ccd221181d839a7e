#!/usr/bin/env python3
"""Berth status hook benchmark (not part of the default test run).

  tests/bench/hooks.py [--build build] [--jobs 5000] [--workers 10]
                       [--clients 4] [--rounds 3] [--timeout 300]
                       [--slow-timeout 60]

Four phases, each with its own redis-server (unix socket) and berthd from
the build tree, stopped with SIGTERM at its end. A phase runs --rounds
times: submit --jobs STAMP jobs (tests/bench/stamp.c: a no-op stamping its
run start in microseconds) with keep-alive clients while the type is paused,
release them, time the drain (queue empty, nothing in flight); the median
round is shown (one round is ~1 s, so single rounds are noisy). Prints:
  1. baseline: throughput with no status_hook;
  2. fast: a status_hook to a threaded HTTP/1.1 keep-alive receiver that
     answers 200 at once: throughput, hook events/s at the receiver, and
     latency p50/p99 from a job's run start (its stamp; the job is a no-op,
     so ~ its final status write) to the arrival of its Success event;
  3. black hole (accepts, never answers): throughput, ratio to baseline;
  4. slow (200 after 1 s): throughput, ratio, and when every job's Success
     had arrived (bounded by --slow-timeout, else a projection from the
     observed delivery rate and the events still pending in Redis).
Per phase also: hook requests the receiver got (Success also counted per
distinct job: duplicates happen), CPU time per job of berthd / redis / this
script and Redis commands per job (INFO commandstats, Lua-internal ones
included) while draining, and how long berthd took to stop. Every wait is
bounded. The receivers run in this script and share the CPUs, so numbers
are indicative. Build with optimisation first (cmake -B build ...).
"""
import argparse
import http.client
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
sys.path.insert(0, HERE)
from harness import RedisServer, wait_for  # noqa: E402
from run import commandstats, pct  # noqa: E402

SECRET = "bench-secret"
NS = "{bench}"


class Receiver:
    """Threaded HTTP/1.1 keep-alive server on 127.0.0.1 answering 200 after
    `delay` s, or never when delay is None (a black hole: it accepts and
    reads, then holds the request until close). Records (arrival, answered
    or None, job_id, status) per POST, epoch seconds."""

    def __init__(self, delay=0.0):
        self.lock, self.got = threading.Lock(), []
        self.closing = threading.Event()
        rx = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                at = time.time()
                body = self.rfile.read(
                    int(self.headers.get("Content-Length") or 0))
                done = None
                if delay is None:
                    rx.record(at, done, body)
                    rx.closing.wait()
                    self.close_connection = True
                    return
                time.sleep(delay)
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                rx.record(at, time.time(), body)

        class S(http.server.ThreadingHTTPServer):
            daemon_threads = True
            request_queue_size = 128

            def handle_error(self, request, client_address):
                pass  # berthd ending a transfer at its stop

        self.server = S(("127.0.0.1", 0), H)
        self.url = "http://127.0.0.1:%d/hook" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def record(self, at, done, body):
        try:
            doc = json.loads(body)
        except ValueError:
            doc = {}
        with self.lock:
            self.got.append((at, done, doc.get("job_id"), doc.get("status")))

    def events(self, status=None):
        with self.lock:
            return [g for g in self.got if status is None or g[3] == status]

    def success_jobs(self):
        return {g[2] for g in self.events("Success")}

    def summary(self):
        return "%d (Running %d, Success %d for %d distinct jobs)%s" % (
            len(self.events()), len(self.events("Running")),
            len(self.events("Success")), len(self.success_jobs()),
            ", never answered" if self.got and self.got[0][1] is None
            else "")

    def close(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


def submit_all(port, n_clients, total, hook):
    """Submits total STAMP jobs from n_clients keep-alive connections."""
    errors = []

    def client(idx):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            for k in range(idx, total, n_clients):
                job = {"name": "STAMP", "parameters": {"k": k},
                       "metadata": {"kind": "Generic"}}
                if hook:
                    job["status_hook"] = hook
                conn.request("POST", "/api/v1/jobs", json.dumps({"job": job}),
                             {"Authorization": "Harbor-Secret " + SECRET})
                r = conn.getresponse()
                data = r.read()
                if r.status != 202:
                    raise RuntimeError("submit: %s %s" % (r.status, data))
        except Exception as e:  # noqa: BLE001
            errors.append(e)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(i,))
               for i in range(n_clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    if errors:
        raise errors[0]


def cpu_s(pid):
    """utime + stime of a process, seconds."""
    with open("/proc/%d/stat" % pid) as f:
        v = f.read().rsplit(")", 1)[1].split()
    return (int(v[11]) + int(v[12])) / os.sysconf("SC_CLK_TCK")


class Phase:
    """A redis-server and a berthd of their own; run() = submit paused,
    release, time the drain."""

    def __init__(self, a, build):
        self.a, self.proc, self.log = a, None, None
        self.tmp = tempfile.mkdtemp(prefix="berth-hookbench-")
        self.redis = RedisServer(self.tmp)
        try:
            self.start(build)
        except BaseException:
            self.close()
            raise

    def start(self, build):
        a = self.a
        self.r = self.redis.start().client()
        pdir = os.path.join(self.tmp, "plugins")
        os.makedirs(pdir)
        shutil.copy(os.path.join(build, "tests/plugins/stamp.so"), pdir)
        self.stamp_file = os.path.join(self.tmp, "stamps.txt")
        with open(os.path.join(self.tmp, "plugins.yml"), "w") as f:
            f.write("plugin_dir: %s\nplugins:\n  - name: STAMP\n"
                    "    file: stamp.so\n    settings:\n      out_file: %s\n"
                    % (pdir, self.stamp_file))
        with open(os.path.join(self.tmp, "berth.yml"), "w") as f:
            f.write("""protocol: http
port: 8080
worker_pool:
  workers: %d
  backend: redis
  redis_pool:
    redis_url: "%s"
    namespace: bench
job_loggers:
  - name: STD_OUTPUT
    level: ERROR
loggers:
  - name: STD_OUTPUT
    level: ERROR
berth:
  data_dir: %s/data
  plugin_manifest: %s/plugins.yml
  listen_address: 127.0.0.1
""" % (a.workers, self.redis.sock, self.tmp, self.tmp))
        port_file = os.path.join(self.tmp, "port")
        self.log = open(os.path.join(self.tmp, "berthd.log"), "wb")
        self.proc = subprocess.Popen(
            [os.path.join(build, "berthd"), "-c",
             os.path.join(self.tmp, "berth.yml"), "--port-file", port_file],
            env=dict(os.environ, CORE_SECRET=SECRET, JOB_SERVICE_PORT="0"),
            stdout=self.log, stderr=subprocess.STDOUT)
        wait_for(lambda: self.alive() and os.path.exists(port_file),
                 timeout=30, what="berthd")
        self.port = int(open(port_file).read())

    def alive(self):
        if self.proc.poll() is not None:
            raise RuntimeError("berthd exited with %s (log in %s)"
                               % (self.proc.returncode, self.tmp))
        return True

    def run(self, hook):
        """--rounds x (submit --jobs paused, release, time the drain);
        returns the sorted per-round throughputs."""
        a, rates, used = self.a, [], [0.0] * 4
        pids = (self.proc.pid, self.redis.proc.pid)
        self.secs = 0.0
        for _ in range(a.rounds):
            self.r("SET", NS + ":jobs:STAMP:paused", "1")
            submit_all(self.port, a.clients, a.jobs, hook)
            c0 = [cpu_s(x) for x in pids] + [time.process_time(),
                                              commandstats(self.r)[0]]
            t0, self.released_at = time.monotonic(), time.time()
            self.r("DEL", NS + ":jobs:STAMP:paused")
            wait_for(lambda: self.alive() and
                     self.r("LLEN", NS + ":jobs:STAMP") == 0 and
                     int(self.r("GET", NS + ":jobs:STAMP:lock") or 0) == 0,
                     timeout=a.timeout, step=0.005, what="the drain")
            secs = time.monotonic() - t0
            c1 = [cpu_s(x) for x in pids] + [time.process_time(),
                                              commandstats(self.r)[0]]
            used = [u + y - x for u, x, y in zip(used, c0, c1)]
            rates.append(a.jobs / secs)
            self.secs += secs
        self.drained_at = time.time()
        n = a.jobs * a.rounds
        self.cpu = tuple(1000 * u / n for u in used[:3]) + (used[3] / n,)
        with open(self.stamp_file) as f:
            self.stamps = {j: int(us) / 1e6 for j, us in
                           (line.split() for line in f)}
        if len(self.stamps) != a.jobs * a.rounds:
            raise RuntimeError("%d of %d jobs ran" % (
                len(self.stamps), a.jobs * a.rounds))
        return sorted(rates)

    def pending_hook_events(self):
        keys = self.r("KEYS", NS + ":berth:hook_events:*") or []
        return sum(self.r("HLEN", k) for k in keys)

    def close(self):
        """SIGTERM; SIGKILL after 60 s. Records how long the stop took."""
        self.stop_secs = float("nan")
        if self.proc and self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
            self.stop_secs = time.monotonic() - t0
        for x in (self.log, getattr(self, "r", None)):
            if x:
                x.close()
        self.redis.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=os.path.join(HERE, "..", "..",
                                                     "build"))
    ap.add_argument("--jobs", type=int, default=5000)
    ap.add_argument("--workers", type=int, default=10)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3,
                    help="submit + drain rounds per phase (median shown)")
    ap.add_argument("--timeout", type=float, default=300,
                    help="bound of every drain / delivery wait (s)")
    ap.add_argument("--slow-timeout", type=float, default=60,
                    help="how long phase 4 waits for every Success event")
    a = ap.parse_args()
    build, n = os.path.abspath(a.build), a.jobs * a.rounds
    print("berth hook benchmark (%d round(s) of %d STAMP jobs per phase, %d "
          "workers, %d clients, redis unix socket)"
          % (a.rounds, a.jobs, a.workers, a.clients))
    phases = [("baseline", "no hook", None, 0),
              ("fast", "fast receiver", Receiver, a.timeout),
              ("blackhole", "black hole receiver", lambda: Receiver(None),
               0),
              ("slow", "slow receiver (1 s)", lambda: Receiver(1.0),
               a.slow_timeout)]
    base, out = None, {}
    for i, (key, what, make, wait) in enumerate(phases, 1):
        rx = make() if make else None
        p = Phase(a, build)
        try:
            rates = p.run(rx.url if rx else None)
            thr = rates[len(rates) // 2]
            done = False
            if wait:
                try:
                    wait_for(lambda: len(rx.success_jobs()) >= n,
                             timeout=wait, step=0.05, what="every Success")
                    done = True
                except AssertionError:
                    pass
            waited = time.time() - p.drained_at
            pending = p.pending_hook_events()
            ev = rx.events() if wait else []
        finally:
            p.close()
            if rx:
                rx.close()
        base = base or thr
        out.update({key + "_per_s": round(thr),
                    key + "_ratio": round(thr / base, 3)})
        print("  %d. %-20s %6.0f jobs/s median (%.0f-%.0f), %.2fx baseline;"
              " berthd stop %.1f s" % (i, what, thr, rates[0], rates[-1],
                                       thr / base, p.stop_secs))
        print("     per job, draining    CPU berthd %.3f ms, redis %.3f ms, "
              "this script (receiver) %.3f ms; %.1f redis commands" % p.cpu)
        if rx:
            print("     hook events got      " + rx.summary())
        if pending:
            print("     hook events pending  %d in Redis, %.1f s after the "
                  "drain" % (pending, waited))
        if not ev:
            continue
        t_last = max(g[1] for g in ev)
        span = max(t_last - p.released_at, 1e-3)
        rate = len([g for g in ev if g[0] >= p.released_at]) / span
        out[key + "_hooks_per_s"] = round(rate, 1)
        print("     delivery rate        %7.1f events/s  (arrivals from the "
              "last round's release to the last answer, %.2f s)"
              % (rate, span))
        if not done:
            eta = waited + (pending / rate if rate else float("inf"))
            out[key + "_projected_all_s"] = round(eta)
            print("     NOT every Success within %.0f s; at this rate all "
                  "pending events are delivered ~%.0f s after the drain "
                  "(projected)" % (wait, eta))
            continue
        first = {}
        for g in rx.events("Success"):
            first.setdefault(g[2], g[0])
        lat = sorted(at - p.stamps[j] for j, at in first.items())
        p50, p99 = pct(lat, 50) * 1000, pct(lat, 99) * 1000
        out.update({key + "_all_delivered_s": round(t_last - p.drained_at, 2),
                    key + "_p50_ms": round(p50, 1),
                    key + "_p99_ms": round(p99, 1)})
        print("     every Success        last answer %+.2f s from the final "
              "drain" % (t_last - p.drained_at))
        print("     hook latency         p50 %.1f ms, p99 %.1f ms: job run "
              "start (STAMP stamp) to arrival of its first Success event,\n"
              "                          same host clock; each round's jobs "
              "are released at once, so\n                          this "
              "includes queueing in the hook agent" % (p50, p99))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
