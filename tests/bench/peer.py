#!/usr/bin/env python3
"""Berth as a peer of the Redis job-queue peers harness (not a test).

  PEERS="bullmq bee-queue sidekiq berth" \\
  PEER_CMD_berth="python3 <repo>/tests/bench/peer.py --build <repo>/build" \\
      <bench-peers>/run_all.sh

  tests/bench/peer.py [--build DIR] [--batch K] [--types T] [--all-plugins]
                      [--gate pause|jobs]

One run follows the protocol of the peers harness (its README, "What one
peer run does"): inputs N, C, STEADY_RATE, STEADY_SECS, STEADY_ADAPT,
STEADY_MAX_UTIL, IDLE_SECS, REDIS_PORT (REDIS_HOST), OUT_DIR and
PHASE_TIMEOUT_S from the environment; output $OUT_DIR/result.json (one JSON
object with the field names the harness's summarize.py reads, plus Berth's
own) and the same object on stdout.

What it does:
  * writes berth.yml and plugins.yml into a temporary directory: redis_url
    redis://REDIS_HOST:REDIS_PORT/0, namespace `berth_bench` (keys
    `{berth_bench}:...`), C workers, the API on a free loopback port
    (JOB_SERVICE_PORT=0, --port-file), job logs at ERROR only; the manifest
    loads the record plugin (tests/bench/record.c, build/tests/plugins/
    record.so) as job type BENCH, with --types T also BENCH_X00.. (T types
    in all, only BENCH gets jobs) and with --all-plugins every entry of
    etc/plugins.yml too. The plugin files are copied into the temporary
    directory (the plugin host refuses group/world-writable paths).
  * enqueue phase: N single submits `POST /api/v1/jobs` (kind Generic,
    parameters {"p": 1, "i": i, "t": <ms since the epoch, float>}) on ONE
    keep-alive connection, one request in flight -> enqueue_rate.
    With --batch K the N jobs go through `POST /api/v1/jobs/batch` in
    requests of K jobs (still one request in flight); a build without that
    route answers 404 and the run stops with a message saying so.
  * NO WORKER FETCHES DURING THE ENQUEUE PHASE. The default gate is one
    gate job per worker (record.c: a run that waits for a file to
    disappear, without touching Redis): before p1_enq_start the driver
    submits C gate jobs and waits until all C run, so the enqueue phase
    counts the submits alone. Releasing removes the file; the C gate jobs
    finish inside the drain phase (C/N extra finishes in its figures).
    --gate pause uses the pause key instead: `{berth_bench}:jobs:BENCH:
    paused` is set before berthd starts (Harbor's jobservice spec 5.1:
    workers skip a paused job type). The workers are running then, and an
    idle worker wakes for each submit and finds only a paused queue: those
    probes are counted in the enqueue phase's Redis figures.
  * drain phase: the driver deletes the pause key or the gate file
    (drain_wall_rate is measured from there to the last completion);
    process_rate is, as for every peer, N / (last completion - first run
    start).
  * IDLE_SECS (1) idle, then the steady phase: open-loop single submits at
    min(STEADY_RATE, STEADY_MAX_UTIL x process_rate) (STEADY_ADAPT=1) for
    STEADY_SECS, payload p=2 -> latency completion - enqueue, p50/p90/p99.
    The steady phase always submits singly, also with --batch.
  * SIGTERM to berthd (shutdown grace 2 s), result.json.
  * ECHO bench-mark:<label> + INFO all on the driver's own Redis connection
    at p1_enq_start p1_enq_end p1_drain_end p2_start p2_end end ->
    commandstats deltas per phase (info and echo left out; commands run
    inside Lua count), total_reads_processed deltas (~ round trips), Redis
    CPU; used_memory at every label (redis_used_memory_bytes).
  * every 250 ms the summed VmRSS and Pss (smaps_rollup) over berthd's
    process tree, peak kept; CPU = utime+stime+cutime+cstime of the tree.

Caveats for comparing with the peers:
  * "completion" (t_done) is taken by the plugin at the end of run(); the
    Success status, the in-progress bookkeeping and the worker observation
    are written after run() returns, so the finishing Redis work is not in
    the latency (it is in the throughput: a worker fetches its next job
    only after finishing the previous one).
  * berthd is one process: its CPU (worker_cpu_s) includes the API threads
    that served the submits, unlike the peers' workers.
  * the driver is Python; its HTTP client is a minimal keep-alive one
    (a few tens of microseconds per request), so the enqueue rate measures
    the server, not http.client.

The pieces (Bench, Daemon, Http, Stats, Records, Sampler, run_protocol)
are used by tests/bench/suite.py as well.
"""
import argparse
import ctypes
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from harness import Resp, wait_for  # noqa: E402

SECRET = "berth-bench-secret"
NAMESPACE = "berth_bench"
NS = "{%s}" % NAMESPACE
TYPE = "BENCH"
LABELS = ("p1_enq_start", "p1_enq_end", "p1_drain_end", "p2_start",
          "p2_end", "end")


def now_ms():
    return time.time() * 1000.0


def log(msg):
    sys.stderr.write("peer.py: %s\n" % msg)
    sys.stderr.flush()


def type_names(n):
    """BENCH, then BENCH_X00, BENCH_X01, ... : n names (1..101)."""
    if not 1 <= n <= 101:
        raise ValueError("types must be 1..101")
    return [TYPE] + ["BENCH_X%02d" % k for k in range(n - 1)]


# --- Redis ------------------------------------------------------------------

class TcpResp(Resp):
    """harness.Resp over TCP (the harness's own is unix-socket only)."""

    def __init__(self, host, port):  # noqa: super().__init__ dials a socket
        self.sock = socket.create_connection((host, port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""


class RedisAddr:
    """Where Redis is: TCP host:port (what berthd and the driver use)."""

    def __init__(self, host, port):
        self.host, self.port = host, int(port)

    def url(self):
        return "redis://%s:%d/0" % (self.host, self.port)

    def client(self):
        return TcpResp(self.host, self.port)


class Stats:
    """INFO snapshots around phases, on a connection of their own."""

    def __init__(self, addr):
        self.r = addr.client()
        self.snaps = {}

    def snap(self, label):
        self.r("ECHO", "bench-mark:" + label)
        info = self.r("INFO", "all")
        t = now_ms()
        cmds, kv = {}, {}
        for line in info.splitlines():
            if line.startswith("cmdstat_"):
                name, rest = line[8:].split(":", 1)
                for part in rest.split(","):
                    if part.startswith("calls="):
                        cmds[name] = int(part[6:])
                continue
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                try:
                    kv[k] = float(v)
                except ValueError:
                    pass
        s = dict(t=t, cmds=cmds, reads=kv.get("total_reads_processed", 0),
                 cpu=kv.get("used_cpu_user", 0) + kv.get("used_cpu_sys", 0),
                 mem=int(kv.get("used_memory", 0)))
        self.snaps[label] = s
        return s

    def delta(self, a, b, jobs):
        """Figures between snapshots a and b. The reads of b's own ECHO and
        INFO fall inside the window (a's do not), hence the - 2."""
        A, B = self.snaps[a], self.snaps[b]
        by = {}
        for k, v in B["cmds"].items():
            if k in ("info", "echo"):
                continue
            d = v - A["cmds"].get(k, 0)
            if d > 0:
                by[k] = d
        total = sum(by.values())
        reads = B["reads"] - A["reads"] - 2
        cpu = B["cpu"] - A["cpu"]
        secs = (B["t"] - A["t"]) / 1000.0

        def per(x, nd):
            return round(x / jobs, nd) if jobs else None
        return dict(jobs=jobs, secs=round(secs, 3), total_cmds=total,
                    cmds_per_job=per(total, 2), reads=int(reads),
                    reads_per_job=per(reads, 2),
                    redis_cpu_s=round(cpu, 3),
                    redis_cpu_us_per_job=per(cpu * 1e6, 1),
                    cmds_per_s=round(total / secs, 1) if secs > 0 else None,
                    by_cmd=dict(sorted(by.items(), key=lambda kv: -kv[1])))

    def close(self):
        self.r.close()


# --- berthd -------------------------------------------------------------------

def _die_with_parent():
    """preexec_fn: berthd gets SIGTERM when the driver dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def berthd_version(build):
    try:
        out = subprocess.run([os.path.join(build, "berthd"), "--version"],
                             capture_output=True, text=True,
                             timeout=10).stdout.strip()
        return out.split()[-1] if out else "?"
    except (OSError, subprocess.SubprocessError):
        return "?"


def bundled_entries():
    """The `plugins:` entries of etc/plugins.yml, as text, and the .so files
    they name."""
    with open(os.path.join(REPO, "etc", "plugins.yml")) as f:
        lines = f.read().splitlines()
    start = next(k for k, l in enumerate(lines) if l.startswith("plugins:"))
    body = lines[start + 1:]
    files = sorted(set(m.group(1) for m in
                       (re.match(r"^\s+file:\s*(\S+)", l) for l in body) if m))
    return "\n".join(body) + "\n", files


class Daemon:
    """berthd from a build tree, with a generated configuration."""

    def __init__(self, build, addr, workers, out_dir, types=1,
                 all_plugins=False, tmp=None, namespace=NAMESPACE):
        self.build = os.path.abspath(build)
        self.addr, self.workers, self.out_dir = addr, workers, out_dir
        self.types = type_names(types) if types else []
        self.all_plugins = all_plugins
        self.namespace = namespace
        self.own_tmp = tmp is None
        self.tmp = tmp or tempfile.mkdtemp(prefix="berth-peer-")
        self.proc = None
        self.port = None

    @staticmethod
    def _copy(src, pdir):
        dst = os.path.join(pdir, os.path.basename(src))
        shutil.copy(src, dst)
        os.chmod(dst, 0o755)  # the plugin host refuses g+w / o+w files

    def _manifest(self, pdir):
        text = "plugin_dir: \"%s\"\nplugins:\n" % pdir
        if self.all_plugins:
            body, files = bundled_entries()
            for so in files:
                self._copy(os.path.join(self.build, "plugins", so), pdir)
            text += body
        if self.types:
            self._copy(os.path.join(self.build, "tests", "plugins",
                                    "record.so"), pdir)
            for name in self.types:
                text += ("  - name: %s\n    file: record.so\n"
                         "    settings:\n      out_dir: \"%s\"\n"
                         % (name, os.path.abspath(self.out_dir)))
        return text

    def start(self):
        pdir = os.path.join(self.tmp, "plugins")
        os.makedirs(pdir, mode=0o755, exist_ok=True)
        with open(os.path.join(self.tmp, "plugins.yml"), "w") as f:
            f.write(self._manifest(pdir))
        cfg = os.path.join(self.tmp, "berth.yml")
        with open(cfg, "w") as f:
            f.write("""protocol: "http"
port: 8080
worker_pool:
  workers: %d
  backend: "redis"
  redis_pool:
    redis_url: "%s"
    namespace: "%s"
    idle_timeout_second: 3600
job_loggers:
  - name: "STD_OUTPUT"
    level: "ERROR"
loggers:
  - name: "STD_OUTPUT"
    level: "WARNING"
berth:
  data_dir: "%s/data"
  plugin_manifest: "%s/plugins.yml"
  listen_address: "127.0.0.1"
  shutdown_grace_seconds: 2
  stop_grace_seconds: 1
""" % (self.workers, self.addr.url(), self.namespace, self.tmp, self.tmp))
        port_file = os.path.join(self.tmp, "port")
        env = dict(os.environ, CORE_SECRET=SECRET, JOB_SERVICE_PORT="0")
        for k in ("BERTH_PLUGIN_DIR", "JOB_SERVICE_POOL_REDIS_URL",
                  "JOB_SERVICE_POOL_REDIS_NAMESPACE", "BERTH_DATA_DIR"):
            env.pop(k, None)
        self.log_path = os.path.join(self.tmp, "berthd.log")
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "berthd"), "-c", cfg, "--port-file",
             port_file], env=env, stdout=self.logf, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent)

        def ready():
            if self.proc.poll() is not None:
                raise RuntimeError("berthd exited with %s:\n%s" %
                                   (self.proc.returncode, self.log()[-3000:]))
            return os.path.exists(port_file) and os.path.getsize(port_file)
        wait_for(ready, timeout=30, what="berthd's port file")
        with open(port_file) as f:
            self.port = int(f.read().strip())
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def version(self):
        return berthd_version(self.build)

    def stop(self, timeout=30):
        rc = None
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log("berthd did not stop in %d s; SIGKILL" % timeout)
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            rc = self.proc.returncode
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None
        return rc

    def cleanup(self):
        if self.own_tmp:
            shutil.rmtree(self.tmp, ignore_errors=True)


# --- the REST client ----------------------------------------------------------

class BatchRouteMissing(Exception):
    def __init__(self, status, msg):
        super().__init__(msg)
        self.status = status


class Http:
    """A minimal HTTP/1.1 keep-alive client: one connection, one request in
    flight. Enough for berthd's JSON answers (Content-Length or chunked)."""

    def __init__(self, port, secret=SECRET):
        self.port, self.secret = port, secret
        self.sock = None
        self.buf = b""

    def _connect(self):
        self.sock = socket.create_connection(("127.0.0.1", self.port),
                                             timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("berthd closed the connection")
        self.buf += chunk

    def _until(self, sep):
        while True:
            k = self.buf.find(sep)
            if k >= 0:
                out, self.buf = self.buf[:k], self.buf[k + len(sep):]
                return out
            self._fill()

    def _exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def request(self, method, path, body=b""):
        if self.sock is None:
            self._connect()
        head = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                "Authorization: Harbor-Secret %s\r\n"
                "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                % (method, path, self.port, self.secret, len(body)))
        self.sock.sendall(head.encode() + body)
        lines = self._until(b"\r\n\r\n").decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        hdr = {}
        for l in lines[1:]:
            k, _, v = l.partition(":")
            hdr[k.strip().lower()] = v.strip()
        if "content-length" in hdr:
            data = self._exact(int(hdr["content-length"]))
        elif hdr.get("transfer-encoding", "").lower() == "chunked":
            parts = []
            while True:
                n = int(self._until(b"\r\n").split(b";")[0], 16)
                if n == 0:
                    self._until(b"\r\n")
                    break
                parts.append(self._exact(n))
                self._exact(2)
            data = b"".join(parts)
        else:  # read to close
            try:
                while True:
                    self._fill()
            except ConnectionError:
                pass
            data, self.buf = self.buf, b""
            self.close()
        if hdr.get("connection", "").lower() == "close":
            self.close()
        return status, data


def job_body(name, params):
    return {"job": {"name": name, "parameters": params,
                    "metadata": {"kind": "Generic"}}}


def submit_one(http, name, params):
    st, data = http.request("POST", "/api/v1/jobs",
                            json.dumps(job_body(name, params)).encode())
    if st != 202:
        raise RuntimeError("POST /api/v1/jobs: %d %s" % (st, data[:300]))


def submit_batch(http, name, params_list):
    """One POST /api/v1/jobs/batch; raises BatchRouteMissing on 404."""
    body = json.dumps({"jobs": [job_body(name, p) for p in params_list]})
    st, data = http.request("POST", "/api/v1/jobs/batch", body.encode())
    # 404: no such route. A build without it may also route the path to
    # POST /api/v1/jobs/{id} (the stop action) and answer 501 "unknown job
    # action name" or 405.
    if st in (404, 405) or (st == 501 and b"action" in data):
        raise BatchRouteMissing(st,
            "POST /api/v1/jobs/batch answered %d: this berthd has no batch "
            "route (%s)" % (st, data[:200].decode(errors="replace")))
    if not 200 <= st < 300:
        raise RuntimeError("POST /api/v1/jobs/batch: %d %s" % (st, data[:300]))
    try:
        out = json.loads(data)["jobs"]
    except (ValueError, KeyError, TypeError):
        raise RuntimeError("POST /api/v1/jobs/batch: unexpected answer %s"
                           % data[:300])
    if len(out) != len(params_list):
        raise RuntimeError("POST /api/v1/jobs/batch: %d results for %d jobs"
                           % (len(out), len(params_list)))
    bad = [x for x in out if not (isinstance(x, dict) and "job" in x)]
    if bad:
        raise RuntimeError("POST /api/v1/jobs/batch: %d of %d refused, first: "
                           "%s" % (len(bad), len(out), json.dumps(bad[0])))


def enqueue(http, n, phase, batch=0, name=TYPE, first=0):
    """n jobs of phase `phase`, one request in flight; -> seconds taken."""
    t0 = time.monotonic()
    if batch:
        i = first
        while i < first + n:
            k = min(batch, first + n - i)
            submit_batch(http, name, [{"p": phase, "i": j, "t": now_ms()}
                                      for j in range(i, i + k)])
            i += k
    else:
        for i in range(first, first + n):
            submit_one(http, name, {"p": phase, "i": i, "t": now_ms()})
    return time.monotonic() - t0


def open_loop(http, rate, count, phase, name=TYPE):
    """count single submits at `rate`/s on a fixed schedule (a late submit
    does not shift the later ones); -> offered rate."""
    t0 = time.monotonic()
    for i in range(count):
        d = t0 + i / rate - time.monotonic()
        if d > 0:
            time.sleep(d)
        submit_one(http, name, {"p": phase, "i": i, "t": now_ms()})
    secs = time.monotonic() - t0
    return count / secs if secs > 0 else None


# --- worker records and the process sampler -----------------------------------

class Records:
    """Tails $OUT_DIR/w-*.log. rows[phase] = [(i, t_enq, t_start, t_done)];
    phases in `light` keep only (t_start, t_done) counts and times."""

    def __init__(self, out_dir, light=()):
        self.dir = out_dir
        self.off, self.partial = {}, {}
        self.rows = {}
        self.light = set(str(p) for p in light)
        self.first_start, self.done = {}, {}

    def poll(self):
        for f in os.listdir(self.dir):
            if not (f.startswith("w-") and f.endswith(".log")):
                continue
            path = os.path.join(self.dir, f)
            off = self.off.get(f, 0)
            try:
                size = os.path.getsize(path)
            except OSError:
                continue
            if size <= off:
                continue
            with open(path, "rb") as fh:
                fh.seek(off)
                data = fh.read(size - off)
            self.off[f] = off + len(data)
            text = self.partial.pop(f, "") + data.decode()
            lines = text.split("\n")
            if lines[-1]:
                self.partial[f] = lines[-1]
            for line in lines[:-1]:
                p, i, te, ts, td = line.split(" ")
                if p in self.light:
                    ts = float(ts)
                    if ts < self.first_start.get(p, float("inf")):
                        self.first_start[p] = ts
                    self.done.setdefault(p, []).append(float(td))
                else:
                    self.rows.setdefault(p, []).append(
                        (int(i), float(te), float(ts), float(td)))

    def count(self, phase):
        phase = str(phase)
        if phase in self.light:
            return len(self.done.get(phase, ()))
        return len(self.rows.get(phase, ()))

    def wait_for(self, phase, n, timeout):
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            if self.count(phase) >= n:
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)

    def get(self, phase):
        return self.rows.get(str(phase), [])


def latency(rows):
    """p50/p90/p99/max of t_done - t_enq (nearest rank), ms."""
    lat = sorted(r[3] - r[1] for r in rows)
    if not lat:
        return {}

    def q(x):
        k = max(0, min(len(lat) - 1, math.ceil(x * len(lat)) - 1))
        return round(lat[k], 3)
    return dict(p50_ms=q(0.5), p90_ms=q(0.9), p99_ms=q(0.99),
                max_ms=round(lat[-1], 3))


def _children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def proc_tree(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def _status_kib(path, field):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_s(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return 0.0
    f = s[s.rindex(")") + 2:].split()
    # fields 14-17 of stat: utime stime cutime cstime (clock ticks)
    return sum(int(x) for x in f[11:15]) / os.sysconf("SC_CLK_TCK")


def tree_memory(pid):
    """(RSS KiB, PSS KiB, processes, CPU s) summed over pid's tree."""
    rss = pss = n = 0
    cpu = 0.0
    for p in proc_tree(pid):
        r = _status_kib("/proc/%d/status" % p, "VmRSS")
        if not r:
            continue
        n += 1
        rss += r
        pss += _status_kib("/proc/%d/smaps_rollup" % p, "Pss")
        cpu += _cpu_s(p)
    return rss, pss, n, cpu


class Sampler:
    """Every `every` s: RSS/PSS peaks and CPU of a process tree."""

    def __init__(self, pid, every=0.25):
        self.pid, self.every = pid, every
        self.peak_rss = self.peak_pss = self.procs = 0
        self.cpu = 0.0
        self.last_rss = 0
        self.ev = threading.Event()
        self.sample()
        self.th = threading.Thread(target=self._loop, daemon=True)
        self.th.start()

    def sample(self):
        rss, pss, n, cpu = tree_memory(self.pid)
        if n == 0:
            return
        self.last_rss = rss
        self.peak_rss = max(self.peak_rss, rss)
        self.peak_pss = max(self.peak_pss, pss)
        self.procs = max(self.procs, n)
        self.cpu = max(self.cpu, cpu)

    def _loop(self):
        while not self.ev.wait(self.every):
            self.sample()

    def stop(self):
        self.ev.set()
        self.th.join()
        self.sample()


# --- one protocol run -----------------------------------------------------------

def env_config(env=os.environ):
    return dict(
        host=env.get("REDIS_HOST", "127.0.0.1"),
        port=int(env.get("REDIS_PORT", "6390")),
        N=int(env.get("N", "20000")),
        C=int(env.get("C", "10")),
        rate=float(env.get("STEADY_RATE", "1000")),
        secs=float(env.get("STEADY_SECS", "5")),
        adapt=env.get("STEADY_ADAPT", "1") == "1",
        max_util=float(env.get("STEADY_MAX_UTIL", "0.5")),
        idle_secs=float(env.get("IDLE_SECS", "1")),
        out_dir=env.get("OUT_DIR") or "",
        timeout=float(env.get("PHASE_TIMEOUT_S", "300")),
    )


class Bench:
    """One berthd with everything a measurement needs around it: the
    driver's Redis connection (stats), the REST connection (http), the
    record tail (records), the process sampler and the enqueue gate.

        b = Bench(build, addr, out_dir, workers, gate="pause").start()
        b.hold()       # no worker fetches from here ...
        ...            # enqueue
        b.release()    # ... to here
        b.close()      # always (stops berthd)

    gate "pause": the pause key of BENCH is set before berthd starts and
    deleted by release(); "jobs": one gate job per worker, started by
    hold(), ended by release() (the gate file is removed)."""

    def __init__(self, build, addr, out_dir, workers, types=1,
                 all_plugins=False, gate="pause", light=()):
        self.addr, self.workers, self.gate = addr, workers, gate
        self.out = os.path.abspath(out_dir)
        os.makedirs(self.out, exist_ok=True)
        for f in os.listdir(self.out):
            if f.startswith("w-") and f.endswith(".log"):
                os.unlink(os.path.join(self.out, f))
        self.pause_key = "%s:jobs:%s:paused" % (NS, TYPE)
        self.gate_file = os.path.join(self.out, "gate")
        self.stats = Stats(addr)
        self.daemon = Daemon(build, addr, workers, self.out, types=types,
                             all_plugins=all_plugins)
        self.records = Records(self.out, light=light)
        self.http = self.sampler = None
        self.held = False
        if gate == "pause":
            self.how = "the pause key " + self.pause_key
        else:
            self.how = "%d gate jobs (one per worker)" % workers

    def start(self):
        if self.gate == "pause":
            self.stats.r("SET", self.pause_key, "1")
            self.held = True
        self.daemon.start()
        self.sampler = Sampler(self.daemon.proc.pid)
        self.http = Http(self.daemon.port)
        return self

    def hold(self):
        if self.held:
            return
        with open(self.gate_file, "w"):
            pass
        base = self.records.count(0)
        for k in range(self.workers):
            submit_one(self.http, TYPE, {"p": 0, "i": base + k,
                                         "t": now_ms(),
                                         "gate": self.gate_file})
        if not self.records.wait_for(0, base + self.workers, 60):
            raise RuntimeError("only %d of %d gate jobs started" %
                               (self.records.count(0) - base, self.workers))
        self.held = True

    def release(self):
        if self.gate == "pause":
            self.stats.r("DEL", self.pause_key)
        elif os.path.exists(self.gate_file):
            os.unlink(self.gate_file)
        self.held = False

    def stop(self):
        """Stops berthd (SIGTERM); -> its exit status."""
        if os.path.exists(self.gate_file):
            os.unlink(self.gate_file)
        if self.http:
            self.http.close()
            self.http = None
        if self.sampler:
            self.sampler.sample()
        rc = self.daemon.stop()
        if self.sampler:
            self.sampler.stop()
        return rc

    def close(self):
        self.stop()
        d = self.daemon
        if d.proc and d.proc.returncode not in (0, None):
            log("berthd exited with %s; its log: %s" % (d.proc.returncode,
                                                         d.log_path))
        else:
            d.cleanup()
        self.stats.close()


def run_protocol(build, addr, cfg, batch=0, types=1, all_plugins=False,
                 gate="pause", after=None):
    """One run of the harness protocol; -> the result dict (main() writes
    it to $OUT_DIR/result.json). `after(bench, res)`, when given, runs after
    the steady phase with berthd still up (suite.py's extra phases)."""
    N, C = cfg["N"], cfg["C"]
    b = Bench(build, addr, cfg["out_dir"], C, types=types,
              all_plugins=all_plugins, gate=gate)
    st, rec = b.stats, b.records
    res = dict(peer="berth", N=N, C=C, types=types, all_plugins=all_plugins,
               submit=("batch %d" % batch) if batch else "single",
               gate=gate, enq_inflight=1, phases={})
    res["version"] = b.daemon.version()
    res["notes"] = (
        "berthd %s, %d workers (threads), %d job type(s)%s, submit %s on one "
        "keep-alive connection; enqueue phase gated by %s" %
        (res["version"], C, types, " + bundled plugins" if all_plugins
         else "", res["submit"], b.how))
    try:
        b.start()
        res["berthd_rss_start_mib"] = round(b.sampler.last_rss / 1024.0, 1)
        b.hold()

        st.snap("p1_enq_start")
        secs = enqueue(b.http, N, 1, batch=batch)
        st.snap("p1_enq_end")
        res["enqueue_rate"] = round(N / secs, 1)

        t_release = now_ms()
        b.release()
        ok = rec.wait_for(1, N, cfg["timeout"])
        st.snap("p1_drain_end")
        r1 = rec.get(1)
        res["drain_complete"] = ok
        res["drain_unique_jobs"] = len(set(r[0] for r in r1))
        if r1:
            first = min(r[2] for r in r1)
            last = max(r[3] for r in r1)
            res["process_rate"] = round(len(r1) / max(last - first, 1e-3)
                                        * 1000.0, 1)
            res["drain_wall_rate"] = round(
                len(r1) / max(last - t_release, 1e-3) * 1000.0, 1)
            res["first_start_after_release_ms"] = round(first - t_release, 3)
        else:
            res["process_rate"] = res["drain_wall_rate"] = 0.0
        res["saturated_latency"] = latency(r1)
        if not ok:
            log("drain incomplete: %d of %d records" % (len(r1), N))

        time.sleep(cfg["idle_secs"])
        st.snap("p2_start")
        rate = cfg["rate"]
        if cfg["adapt"]:
            rate = min(rate, cfg["max_util"] * res["process_rate"])
        K = int(round(rate * cfg["secs"])) if rate > 0 else 0
        offered = open_loop(b.http, rate, K, 2) if K else None
        ok2 = rec.wait_for(2, K, cfg["timeout"]) if K else True
        st.snap("p2_end")
        res["steady"] = dict(target_rate=round(rate, 1),
                             offered_rate=round(offered, 1) if offered
                             else None, jobs=K, complete=ok2,
                             **latency(rec.get(2)))
        if after:
            after(b, res)
        res["berthd_exit"] = b.stop()
        st.snap("end")
        sm = b.sampler
        res["worker_peak_rss_mib"] = round(sm.peak_rss / 1024.0, 1)
        res["worker_peak_pss_mib"] = round(sm.peak_pss / 1024.0, 1)
        res["worker_procs_max"] = sm.procs
        res["worker_cpu_s"] = round(sm.cpu, 2)
        ph = res["phases"]
        ph["enqueue"] = st.delta("p1_enq_start", "p1_enq_end", N)
        ph["drain"] = st.delta("p1_enq_end", "p1_drain_end", N)
        idle = st.delta("p1_drain_end", "p2_start", 0)
        ph["idle"] = dict(secs=idle["secs"], cmds_per_s=idle["cmds_per_s"],
                          by_cmd=idle["by_cmd"])
        ph["steady"] = st.delta("p2_start", "p2_end", K)
        ph["shutdown"] = st.delta("p2_end", "end", 0)
        res["redis_used_memory_mib_after"] = round(
            st.snaps["p2_end"]["mem"] / 1048576.0, 1)
        res["redis_used_memory_bytes"] = {k: v["mem"]
                                          for k, v in st.snaps.items()}
        return res
    finally:
        b.close()


def main():
    ap = argparse.ArgumentParser(
        description="Berth peer of the Redis job-queue peers harness "
                    "(environment: N C STEADY_* IDLE_SECS REDIS_PORT "
                    "OUT_DIR; see the docstring)")
    ap.add_argument("--build", default=os.path.join(REPO, "build"),
                    help="build tree with berthd and tests/plugins/record.so")
    ap.add_argument("--batch", type=int, default=0, metavar="K",
                    help="enqueue through POST /api/v1/jobs/batch, K jobs "
                         "per request")
    ap.add_argument("--types", type=int, default=1,
                    help="job types loaded (1..101; jobs go to BENCH only)")
    ap.add_argument("--all-plugins", action="store_true",
                    help="also load every entry of etc/plugins.yml")
    ap.add_argument("--gate", choices=("pause", "jobs"), default="jobs",
                    help="how workers are kept from fetching while the "
                         "driver enqueues (default: a gate job per "
                         "worker)")
    a = ap.parse_args()
    cfg = env_config()
    if not cfg["out_dir"]:
        cfg["out_dir"] = tempfile.mkdtemp(prefix="berth-peer-out-")
    os.makedirs(cfg["out_dir"], exist_ok=True)

    def on_term(signum, frame):
        raise SystemExit("peer.py: signal %d" % signum)
    signal.signal(signal.SIGTERM, on_term)
    try:
        res = run_protocol(a.build, RedisAddr(cfg["host"], cfg["port"]), cfg,
                           batch=a.batch, types=a.types,
                           all_plugins=a.all_plugins, gate=a.gate)
    except BatchRouteMissing as e:
        log("%s; rerun without --batch (single submits) or with a build "
            "that has the route. No result written." % e)
        return 2
    line = json.dumps(res)
    with open(os.path.join(cfg["out_dir"], "result.json"), "w") as f:
        f.write(line + "\n")
    print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
