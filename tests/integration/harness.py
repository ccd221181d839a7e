"""Test harness: a private redis-server on a unix socket, a berthd started on
port 0 with a generated configuration, a tiny RESP client and HTTP helpers,
a Cluster (one Redis, a plugin directory, any number of daemons) and the
job helpers every test uses (submit, job, wait_status, ...).

Everything lives in a fresh temporary directory; nothing uses a fixed port.
Waiting is always on an observable condition (wait_for); a test that must
show that something does NOT happen sleeps, and says why.
Paths come from the environment that ctest sets (see integration.cmake):
  BERTHD              path of the berthd binary
  BERTH_PLUGINS       directory of the bundled plugins (build/plugins)
  BERTH_TEST_PLUGINS  directory of the test plugins (build/tests/plugins)
  BERTH_SOURCE        source tree (for etc/ and fixtures)
"""
import http.client
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import threading
import time

BERTHD = os.environ.get("BERTHD", "build/berthd")
PLUGINS = os.environ.get("BERTH_PLUGINS", "build/plugins")
TEST_PLUGINS = os.environ.get("BERTH_TEST_PLUGINS", "build/tests/plugins")
SOURCE = os.environ.get("BERTH_SOURCE", ".")
SECRET = "test-core-secret"
NS = "{berth_test}"        # the Redis namespace of harbor_config()
HEX24 = re.compile(r"^[0-9a-f]{24}$")
# short stop and shutdown graces: stopped and ignoring jobs end quickly
FAST_GRACE = "  stop_grace_seconds: 1\n  shutdown_grace_seconds: 2\n"


def wait_for(pred, timeout=15.0, step=0.05, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting for %s" % what)


class Resp:
    """Minimal RESP2 client over a unix socket (enough for assertions)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self.sock.connect(path)
        except OSError:
            self.sock.close()
            raise
        self.buf = b""

    def close(self):
        self.sock.close()

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError(rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode()
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError("bad RESP type %r" % t)

    def __call__(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for a in args:
            a = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(a), a))
        self.sock.sendall(b"".join(out))
        return self._reply()


class RedisServer:
    def __init__(self, tmp, extra=()):
        self.dir = os.path.join(tmp, "redis")
        os.makedirs(self.dir, exist_ok=True)
        self.sock = os.path.join(self.dir, "redis.sock")
        self.extra = list(extra)
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(
            ["redis-server", "--port", "0", "--unixsocket", self.sock,
             "--unixsocketperm", "700", "--dir", self.dir, "--save", "",
             "--appendonly", "no", "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log")] + self.extra,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def up():
            try:
                c = Resp(self.sock)
                ok = c("PING") == "PONG"
                c.close()
                return ok
            except OSError:
                return False
        wait_for(up, what="redis-server")
        return self

    def client(self):
        return Resp(self.sock)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


def harbor_config(redis_url, data_dir, manifest, extra=""):
    return """protocol: "http"
port: 8080
worker_pool:
  workers: 4
  backend: "redis"
  redis_pool:
    redis_url: "%s"
    namespace: "berth_test"
    idle_timeout_second: 3600
job_loggers:
  - name: "STD_OUTPUT"
    level: "DEBUG"
loggers:
  - name: "STD_OUTPUT"
    level: "DEBUG"
berth:
  data_dir: "%s"
  plugin_manifest: "%s"
  listen_address: "127.0.0.1"
  max_body_bytes: 65536
%s""" % (redis_url, data_dir, manifest, extra)


def demo_entry(long_wait=2):
    """The manifest entry of DEMO; a run takes 1 s + long_wait seconds."""
    return """  - name: DEMO
    file: demo.so
    enabled: true
    max_fails: 3
    max_concurrency: 1
    priority: 1
    settings:
      long_wait_seconds: %d
""" % long_wait


def demo_manifest(plugin_dir, extra_entries="", long_wait=2):
    """A manifest of DEMO (and extra_entries) in plugin_dir."""
    return 'plugin_dir: "%s"\nplugins:\n%s%s' % (
        plugin_dir, demo_entry(long_wait), extra_entries)


class Berthd:
    """A berthd process on 127.0.0.1:<ephemeral port>."""

    def __init__(self, tmp, config_text, env=None, args=()):
        self.tmp = tmp
        self.cfg = os.path.join(tmp, "berth.yml")
        with open(self.cfg, "w") as f:
            f.write(config_text)
        self.port_file = os.path.join(tmp, "port")
        self.log_path = os.path.join(tmp, "berthd.log")
        self.env = dict(os.environ)
        self.env["JOB_SERVICE_PORT"] = "0"
        self.env["CORE_SECRET"] = SECRET
        self.env.pop("BERTH_PLUGIN_DIR", None)
        if env:
            for k, v in env.items():
                if v is None:
                    self.env.pop(k, None)
                else:
                    self.env[k] = v
        self.args = list(args)
        self.proc = None
        self.terminated = False
        self.port = None
        self.scheme = "http"

    def start(self, wait=True):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.logf = open(self.log_path, "ab")
        self.terminated = False
        self.proc = subprocess.Popen(
            [BERTHD, "-c", self.cfg, "--port-file", self.port_file]
            + self.args, env=self.env, stdout=self.logf,
            stderr=subprocess.STDOUT)
        if wait:
            def ready():
                if self.proc.poll() is not None:
                    raise AssertionError(
                        "berthd exited with %s:\n%s" %
                        (self.proc.returncode, self.log()))
                return os.path.exists(self.port_file)
            wait_for(ready, timeout=30, what="berthd port file")
            with open(self.port_file) as f:
                self.port = int(f.read().strip())
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def terminate(self):
        """SIGTERM without waiting (stop() then waits)."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.terminated = True

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
            if not (sig == signal.SIGTERM and self.terminated):
                self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("berthd did not stop in %ss" % timeout)
        rc = self.proc.returncode if self.proc else None
        if getattr(self, "logf", None):
            self.logf.close()
            self.logf = None
        return rc

    def conn(self):
        if self.scheme == "https":
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            return http.client.HTTPSConnection("127.0.0.1", self.port,
                                               timeout=30, context=ctx)
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)

    def request(self, method, path, body=None, headers=None, auth=True,
                secret=SECRET):
        h = dict(headers or {})
        if auth and "Authorization" not in h:
            h["Authorization"] = "Harbor-Secret " + secret
        if isinstance(body, (dict, list)):
            body = json.dumps(body)
        c = self.conn()
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            data = r.read()
            return r.status, dict(r.getheaders()), data
        finally:
            c.close()

    def json(self, method, path, body=None, **kw):
        st, hdrs, data = self.request(method, path, body, **kw)
        try:
            doc = json.loads(data) if data else None
        except ValueError:
            doc = data
        return st, hdrs, doc


class TempDir:
    def __init__(self):
        self.path = tempfile.mkdtemp(prefix="berth-it-")

    def cleanup(self):
        shutil.rmtree(self.path, ignore_errors=True)


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def hgetall(r, key):
    """HGETALL as a dict ({} for a missing key)."""
    v = r("HGETALL", key) or []
    return dict(zip(v[::2], v[1::2]))


def sanitizer_lines(text):
    return [l for l in text.splitlines()
            if "Sanitizer" in l or "runtime error:" in l]


# --- a Redis, a plugin directory and daemons sharing them -------------------

def plugin_file(so):
    """A plugin from the build: bundled (build/plugins) or test-only."""
    p = os.path.join(PLUGINS, so)
    return p if os.path.exists(p) else os.path.join(TEST_PLUGINS, so)


class Cluster:
    """One redis-server, a private plugin directory holding the plugins the
    manifest entries name (`file: x.so`), and any number of berthd
    instances sharing them, each in its own directory.

    entries   the `plugins:` list of the manifest, as YAML text, or a
              function of the cluster's directory giving it
    config    text of berth.yml from (redis socket, data dir, manifest);
              by default harbor_config() with FAST_GRACE + config_extra
    close()   stops everything and fails on a daemon that did not exit 0
              or printed a sanitizer report (kill() a daemon to skip it)
    """

    def __init__(self, entries, config_extra="", config=None):
        self.tmp = TempDir()
        t = self.tmp.path
        self.redis = RedisServer(t).start()
        self.plugin_dir = os.path.join(t, "plugins")
        os.makedirs(self.plugin_dir)
        if callable(entries):
            entries = entries(t)
        for so in sorted(set(re.findall(r"file:\s*(\S+\.so)", entries))):
            shutil.copy(plugin_file(so), self.plugin_dir)
        self.manifest = os.path.join(t, "plugins.yml")
        write(self.manifest, 'plugin_dir: "%s"\nplugins:\n%s'
              % (self.plugin_dir, entries))
        self.config = config or (
            lambda sock, data, manifest: harbor_config(
                sock, data, manifest, FAST_GRACE + config_extra))
        self.daemons = []

    @property
    def path(self):
        return self.tmp.path

    def start(self, name="a", env=None):
        d_dir = os.path.join(self.tmp.path, name)
        os.makedirs(d_dir, exist_ok=True)
        cfg = self.config(self.redis.sock, os.path.join(d_dir, "data"),
                          self.manifest)
        d = Berthd(d_dir, cfg, env=env).start()
        self.daemons.append(d)
        return d

    def client(self):
        return self.redis.client()

    def kill(self, d):
        """kill -9; close() no longer checks this daemon."""
        d.proc.kill()
        d.proc.wait()
        d.stop()
        self.daemons.remove(d)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            self.close()
        except AssertionError:
            if exc_type is None:
                raise   # else the test's own failure is the one to see

    def close(self):
        problems = []
        for d in self.daemons:   # all shut down at once, then wait
            d.terminate()
        for d in self.daemons:
            try:
                rc = d.stop()
            except AssertionError as e:
                problems.append(str(e))
                continue
            bad = sanitizer_lines(d.log())
            if rc != 0 or bad:
                problems.append("berthd in %s: exit %s %s\n%s" % (
                    d.tmp, rc, bad[:5], d.log()[-4000:]))
        self.daemons = []
        self.redis.stop()
        self.tmp.cleanup()
        if problems:
            raise AssertionError("\n".join(problems))


# --- the job API ------------------------------------------------------------

def submit(d, name, params=None, kind="Generic", delay=None, cron=None,
           unique=None, hook=None):
    """POST /api/v1/jobs; returns (status, headers, document)."""
    meta = {"kind": kind}
    if unique is not None:
        meta["unique"] = unique
    if delay is not None:
        meta["schedule_delay"] = delay
    if cron is not None:
        meta["cron_spec"] = cron
    body = {"name": name, "metadata": meta}
    if params is not None:
        body["parameters"] = params
    if hook:
        body["status_hook"] = hook
    return d.json("POST", "/api/v1/jobs", {"job": body})


def submit_ok(d, name, params=None, **kw):
    """submit() that must be accepted (202); returns the job id."""
    st, _, doc = submit(d, name, params, **kw)
    assert st == 202, (st, doc)
    return doc["job"]["id"]


def job(d, jid):
    """The job's stats as GET /api/v1/jobs/{id} shows them."""
    st, _, doc = d.json("GET", "/api/v1/jobs/" + jid)
    assert st == 200, (st, doc)
    return doc["job"]


def wait_status(d, jid, statuses, timeout=30):
    """Waits until the job is in the status (or one of a list of them);
    returns its stats."""
    if isinstance(statuses, str):
        statuses = [statuses]

    def reached():
        j = job(d, jid)
        return j if j["status"] in statuses else None
    return wait_for(reached, timeout=timeout,
                    what="job %s in %s" % (jid, statuses))


def run_ok(d, name, params=None, timeout=20, **kw):
    """Submits and waits for Success; returns the job id."""
    jid = submit_ok(d, name, params, **kw)
    wait_status(d, jid, "Success", timeout=timeout)
    return jid


def run_error(d, r, name, params, text, ns=NS, timeout=30):
    """Submits; waits for Error, for text in the job's log lines and for
    the retry entry, then cancels the retries. Returns (job id, the
    matching log lines)."""
    jid = submit_ok(d, name, params)
    wait_status(d, jid, "Error", timeout=timeout)
    lines = wait_job_line(d, jid, text)
    wait_for(lambda: retry_entries(r, jid, ns), what="retry entry")
    drop_retries(r, jid, ns)
    return jid, lines


def plugin_limits(d):
    """{type: (max_fails, max_concurrency, priority)} of GET
    /api/v1/plugins."""
    st, _, doc = d.json("GET", "/api/v1/plugins")
    assert st == 200, doc
    return {p["name"]: (p["max_fails"], p["max_concurrency"], p["priority"])
            for p in doc["plugins"]}


def stop_job(d, jid):
    """POST {"action": "stop"}; returns the HTTP status."""
    st, _, _ = d.request("POST", "/api/v1/jobs/" + jid, {"action": "stop"})
    return st


def job_log_lines(d, jid):
    """The daemon's stdout lines of this job (STD_OUTPUT job logger)."""
    tag = "[job %s]" % jid
    return [l for l in d.log().splitlines() if tag in l]


def wait_job_line(d, jid, text, timeout=10):
    """Waits for a stdout line of the job containing text; returns the
    matching lines."""
    return wait_for(lambda: [l for l in job_log_lines(d, jid) if text in l],
                    timeout=timeout, what="%r in the log of %s" % (text, jid))


def wait_log(d, text, timeout=10):
    """Waits for text (a regular expression) in the daemon's output."""
    return wait_for(lambda: re.search(text, d.log()), timeout=timeout,
                    what="%r in the daemon log" % text)


def worker_busy_with(r, jid, ns=NS):
    """True while a worker's observation hash names this job."""
    return any(hgetall(r, k).get("job_id") == jid
               for k in r("KEYS", ns + ":worker:*") or [])


def wait_run_ended(r, jid, ns=NS, timeout=15):
    """Waits until no worker runs the job any more (its run returned)."""
    wait_for(lambda: not worker_busy_with(r, jid, ns), timeout=timeout,
             what="the run of %s to end" % jid)


class Follower:
    """GET /api/v1/jobs/{id}/log?follow=true read line by line on a
    thread, with the monotonic time each line arrived."""

    def __init__(self, d, jid, query="follow=true"):
        self.conn = d.conn()
        self.conn.request("GET", "/api/v1/jobs/%s/log?%s" % (jid, query),
                          headers={"Authorization": "Harbor-Secret " +
                                   SECRET})
        self.resp = self.conn.getresponse()
        self.lines = []
        self.ended_at = None
        self.error = None
        self.thread = None
        if self.resp.status == 200:
            self.thread = threading.Thread(target=self._read, daemon=True)
            self.thread.start()

    def _read(self):
        try:
            while True:
                line = self.resp.readline()
                if not line:
                    break
                self.lines.append((time.monotonic(),
                                   line.decode(errors="replace")))
            self.ended_at = time.monotonic()
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e

    def text(self):
        return "".join(l for _, l in self.lines)

    def wait_end(self, timeout):
        self.thread.join(timeout)
        return not self.thread.is_alive()

    def close(self):
        self.conn.close()


# --- periodic jobs ----------------------------------------------------------

def submit_periodic(d, name, cron, params=None, hook=None):
    """A periodic policy (sent with unique true, as core does)."""
    return submit(d, name, params, kind="Periodic", cron=cron, unique=True,
                  hook=hook)


def executions(d, pid, query=""):
    """GET /api/v1/jobs/{pid}/executions; (status, headers, document), the
    elements of a list unwrapped from Harbor's {"job":{...}} (checked)."""
    st, h, doc = d.json("GET", "/api/v1/jobs/%s/executions%s" % (pid, query))
    if st == 200 and isinstance(doc, list):
        assert all(isinstance(e, dict) and list(e) == ["job"]
                   for e in doc), doc
        doc = [e["job"] for e in doc]
    return st, h, doc


def scheduled_of(r, pid, ns=NS):
    """(score, raw member) of the NS:scheduled messages of policy pid."""
    v = r("ZRANGE", ns + ":scheduled", 0, -1, "WITHSCORES") or []
    out = []
    for m, s in zip(v[::2], v[1::2]):
        try:
            if json.loads(m).get("id") == pid:
                out.append((int(float(s)), m))
        except ValueError:
            pass
    return out


def read_stamps(path):
    """Execution ids the STAMP test plugin wrote, one per run, in order."""
    try:
        with open(path) as f:
            return [ln.split()[0] for ln in f if ln.strip()]
    except OSError:
        return []


# --- retries ----------------------------------------------------------------

def retry_entries(r, jid, ns=NS):
    """The job's messages in NS:retry."""
    return [m for m in r("ZRANGE", ns + ":retry", 0, -1) or []
            if json.loads(m)["id"] == jid]


def make_retries_due(r, jid, ns=NS):
    """Skips the back-off: the job's retries become due now; returns
    their messages."""
    found = retry_entries(r, jid, ns)
    for m in found:
        r("ZADD", ns + ":retry", "XX", 0, m)
    return found


def drop_retries(r, jid, ns=NS):
    """Cancels further attempts of a job the test is done with."""
    for m in retry_entries(r, jid, ns):
        r("ZREM", ns + ":retry", m)


def exhaust_retries(d, r, jid, attempts, expected, ns=NS):
    """Makes every retry of the job due at once until it is final, then
    checks that exactly `expected` attempts were made (attempts() counts
    them, e.g. at a receiver) and that no further one follows."""
    def final():
        make_retries_due(r, jid, ns)
        return (attempts() >= expected and
                job(d, jid)["status"] == "Error" and
                not retry_entries(r, jid, ns))
    wait_for(final, timeout=40, step=0.1, what="%d attempts" % expected)
    # Nothing to wait for: a further attempt would be a retry entry made
    # due here and run within one requeue period (1 s) of the worker.
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        make_retries_due(r, jid, ns)
        time.sleep(0.1)
    assert attempts() == expected, (attempts(), expected)
    assert job(d, jid)["status"] == "Error", job(d, jid)
    assert retry_entries(r, jid, ns) == [], retry_entries(r, jid, ns)


# --- status hooks (Redis side) ---------------------------------------------

def ack(r, jid, ns=NS):
    """The hook ACK of the job's stats, decoded (None without one)."""
    a = r("HGET", ns + ":job_stats:" + jid, "ack")
    return json.loads(a) if a else None


def ack_status(r, jid, ns=NS):
    return (ack(r, jid, ns) or {}).get("status")


def pending_hook_events(r, ns=NS):
    """Hook events persisted for delivery, over all agents."""
    return sum(r("HLEN", k) for k in
               r("KEYS", ns + ":berth:hook_events:*") or [])
