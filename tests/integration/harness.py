"""Test harness: a private redis-server on a unix socket, a berthd started on
port 0 with a generated configuration, a tiny RESP client and HTTP helpers.

Everything lives in a fresh temporary directory; nothing uses a fixed port.
Paths come from the environment that ctest sets (see integration.cmake):
  BERTHD              path of the berthd binary
  BERTH_PLUGINS       directory of the bundled plugins (build/plugins)
  BERTH_TEST_PLUGINS  directory of the test plugins (build/tests/plugins)
  BERTH_SOURCE        source tree (for etc/ and fixtures)
"""
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

BERTHD = os.environ.get("BERTHD", "build/berthd")
PLUGINS = os.environ.get("BERTH_PLUGINS", "build/plugins")
TEST_PLUGINS = os.environ.get("BERTH_TEST_PLUGINS", "build/tests/plugins")
SOURCE = os.environ.get("BERTH_SOURCE", ".")
SECRET = "test-core-secret"


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
        self.sock.connect(path)
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


def demo_manifest(plugin_dir, extra_entries=""):
    return """plugin_dir: "%s"
plugins:
  - name: DEMO
    file: demo.so
    enabled: true
    max_fails: 3
    max_concurrency: 1
    priority: 1
    settings:
      long_wait_seconds: 2
%s""" % (plugin_dir, extra_entries)


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
        self.port = None
        self.scheme = "http"

    def start(self, wait=True):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.logf = open(self.log_path, "ab")
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

    def stop(self, sig=signal.SIGTERM, timeout=30):
        if self.proc and self.proc.poll() is None:
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
