"""Test peers for the HTTP job plugins (test_plugins_http.py), standard
library only, all on 127.0.0.1 port 0:

  Receiver      an HTTP or HTTPS server answering each path from a script
                (status, headers, body, delay), recording every request and
                the largest number of requests in flight at once;
  ForwardProxy  an HTTP forward proxy (absolute-form requests and CONNECT)
                that records what it relays and maps *.berth-test.invalid
                to 127.0.0.1;
  HookReceiver  a status-hook endpoint recording every POST, which can
                fail the first N calls, always fail, or answer late;
  Core          Harbor core's side of the status hooks: tasks, their
                status by (revision, status order), check-in processors;
  make_cert     a self-signed certificate for 127.0.0.1 made with openssl.
"""
import http.server
import json
import os
import random
import re
import select
import socket
import socketserver
import ssl
import subprocess
import threading
import time
import urllib.parse

from harness import submit, wait_for

TEST_DOMAIN = ".berth-test.invalid"


def make_cert(directory):
    """Self-signed P-256 certificate for 127.0.0.1/localhost; returns
    (cert path, key path)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
         "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key,
         "-out", cert, "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return cert, key


class Request:
    def __init__(self, method, path, query, headers, body, start):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers      # [(name, value)] in arrival order
        self.body = body
        self.start = start          # time.monotonic() at arrival
        self.end = None             # right before the answer is sent

    def header(self, name):
        for k, v in self.headers:
            if k.lower() == name.lower():
                return v
        return None

    def names(self):
        return sorted(k.lower() for k, _ in self.headers)


class _Route:
    def __init__(self, responses, delay):
        self.responses = list(responses)
        self.delay = delay
        self.n = 0

    def next(self):
        r = self.responses[min(self.n, len(self.responses) - 1)]
        self.n += 1
        return r


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # TLS handshakes refused by the client, resets: expected


class Receiver:
    """Answers POST/GET per path; unknown paths get 200 "ok"."""

    def __init__(self, cert=None, key=None):
        self.cert, self.key = cert, key
        self.lock = threading.Lock()
        self.routes = {}
        self.log = []
        self.inflight = 0
        self.max_inflight = 0
        self.server = None

    @property
    def scheme(self):
        return "https" if self.cert else "http"

    def start(self):
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def setup(self):
                if outer.cert:
                    self.request.settimeout(10)
                    self.request.do_handshake()
                super().setup()

            def log_message(self, *args):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                u = urllib.parse.urlsplit(self.path)
                req = Request(self.command, u.path, u.query,
                              list(self.headers.items()), body,
                              time.monotonic())
                with outer.lock:
                    outer.log.append(req)
                    outer.inflight += 1
                    outer.max_inflight = max(outer.max_inflight,
                                             outer.inflight)
                    route = outer.routes.get(u.path)
                    status, headers, data = (route.next() if route
                                             else (200, {}, b"ok"))
                    delay = route.delay if route else 0
                try:
                    if delay:
                        time.sleep(delay)
                    # recorded before the answer leaves, so a request
                    # that starts after this one was answered can never
                    # look overlapping
                    with outer.lock:
                        outer.inflight -= 1
                        req.end = time.monotonic()
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    self.wfile.flush()
                except OSError:
                    pass  # the client gave up (timeout tests)

            do_POST = do_GET = do_PUT = _any

        self.server = _Server(("127.0.0.1", 0), Handler)
        if self.cert:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, self.key)
            self.server.socket = ctx.wrap_socket(
                self.server.socket, server_side=True,
                do_handshake_on_connect=False)
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def port(self):
        return self.server.server_address[1]

    def url(self, path, host="127.0.0.1"):
        return "%s://%s:%d%s" % (self.scheme, host, self.port, path)

    def on(self, path, responses=((200, {}, b"ok"),), delay=0.0):
        """Scripts path: the answers in order, the last one repeating."""
        with self.lock:
            self.routes[path] = _Route(responses, delay)

    def requests(self, path):
        with self.lock:
            return [r for r in self.log if r.path == path]

    def count(self, path):
        return len(self.requests(path))

    def reset_inflight(self):
        with self.lock:
            self.max_inflight = self.inflight


class ForwardProxy:
    """Relays absolute-form HTTP requests and CONNECT tunnels; records
    (method, target, headers) of each. Hosts under TEST_DOMAIN resolve to
    127.0.0.1 here (the client never resolves them itself)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.log = []
        self.server = None

    @staticmethod
    def _resolve(host):
        return "127.0.0.1" if host.endswith(TEST_DOMAIN) else host

    def start(self):
        outer = self

        class Handler(socketserver.StreamRequestHandler):
            rbufsize = 0  # nothing may stay buffered before a tunnel

            def handle(self):
                self.connection.settimeout(15)
                line = self.rfile.readline(65536).decode("latin-1")
                parts = line.rstrip("\r\n").split(" ")
                if len(parts) != 3:
                    return
                method, target, _ = parts
                headers = []
                while True:
                    h = self.rfile.readline(65536)
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").rstrip("\r\n").partition(":")
                    headers.append((k.strip(), v.strip()))
                with outer.lock:
                    outer.log.append((method, target, headers))
                if method == "CONNECT":
                    self._tunnel(target)
                else:
                    self._forward(method, target, headers)

            def _tunnel(self, target):
                host, _, port = target.rpartition(":")
                try:
                    up = socket.create_connection(
                        (outer._resolve(host), int(port)), timeout=15)
                except OSError:
                    self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\n"
                                     b"Content-Length: 0\r\n\r\n")
                    return
                self.wfile.write(b"HTTP/1.1 200 Connection established"
                                 b"\r\n\r\n")
                a, b = self.connection, up
                try:
                    while True:
                        r, _, _ = select.select([a, b], [], [], 15)
                        if not r:
                            return
                        for s in r:
                            data = s.recv(65536)
                            if not data:
                                return
                            (b if s is a else a).sendall(data)
                except OSError:
                    pass
                finally:
                    up.close()

            def _forward(self, method, target, headers):
                u = urllib.parse.urlsplit(target)
                n = 0
                for k, v in headers:
                    if k.lower() == "content-length":
                        n = int(v)
                body = self.rfile.read(n) if n else b""
                path = (u.path or "/") + ("?" + u.query if u.query else "")
                out = ["%s %s HTTP/1.1" % (method, path)]
                for k, v in headers:
                    if k.lower().startswith("proxy-") or \
                            k.lower() == "connection":
                        continue
                    out.append("%s: %s" % (k, v))
                out.append("Connection: close")
                raw = ("\r\n".join(out) + "\r\n\r\n").encode("latin-1")
                try:
                    up = socket.create_connection(
                        (outer._resolve(u.hostname), u.port or 80),
                        timeout=15)
                except OSError:
                    self.wfile.write(b"HTTP/1.1 502 Bad Gateway\r\n"
                                     b"Content-Length: 0\r\n\r\n")
                    return
                try:
                    up.sendall(raw + body)
                    while True:
                        data = up.recv(65536)
                        if not data:
                            break
                        self.wfile.write(data)
                finally:
                    up.close()

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address):
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()
        return self

    def stop(self):
        if self.server:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.server.server_address[1]

    def seen(self, pred=lambda m, t, h: True):
        with self.lock:
            return [(m, t, h) for m, t, h in self.log if pred(m, t, h)]


class HookReceiver:
    """A status-hook endpoint: a threaded HTTP/1.1 server recording POSTs. Per path: fail the first
    N calls with 500, always fail, or delay answers randomly."""

    def __init__(self, port=0):
        self.lock = threading.Lock()
        self.requests = []     # dicts: path, headers, body, doc, at, code
        self.fail_first = {}   # path -> calls still to fail
        self.always_fail = set()
        self.jitter = {}       # path -> max random delay (s)
        self.seen = {}
        self.server = None
        self.port = port
        self.up()

    def _handler(self):
        rx = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                path = self.path
                with rx.lock:
                    rx.seen[path] = rx.seen.get(path, 0) + 1
                    left = rx.fail_first.get(path, 0)
                    if left > 0:
                        rx.fail_first[path] = left - 1
                    code = 500 if left > 0 or path in rx.always_fail \
                        else 200
                    jitter = rx.jitter.get(path, 0)
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = None
                with rx.lock:
                    rx.requests.append({
                        "path": path, "headers": dict(self.headers.items()),
                        "raw_headers": [k.lower() for k in self.headers],
                        "body": body, "doc": doc, "at": time.monotonic(),
                        "code": code})
                if jitter:
                    time.sleep(random.uniform(0, jitter))
                text = b"" if code == 200 else b"nope"
                self.send_response(code)
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)

        return H

    def up(self):
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", self.port), self._handler())
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever,
                                       daemon=True)
        self.thread.start()

    def down(self):
        self.server.shutdown()
        self.server.server_close()

    def url(self, path):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def got(self, path, code=None):
        with self.lock:
            return [q for q in self.requests if q["path"] == path and
                    (code is None or q["code"] == code)]

    def delivered(self, path):
        """(status, check_in) of the events answered 200, in order."""
        return [(q["doc"]["status"], q["doc"].get("check_in"))
                for q in self.got(path, 200)]


ORDER = {"Pending": 0, "Scheduled": 1, "Running": 2, "Stopped": 3,
         "Error": 3, "Success": 3}


class Core:
    """Harbor core's task table and status-hook endpoint
    /service/notifications/tasks/<task> (test_core_flows.py). Events are
    handled the way core does: the task is found by
    metadata.upstream_job_id (executions of a policy), else by job_id; a
    non-empty check_in goes to the vendor's check-in processor and never
    changes the status (SCHEDULER: on_schedule(check_in_at) fires once per
    check_in_at; other vendors: the result JSON is stored); other events
    move the task's status forward by (revision, status order)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.tasks = {}        # task id -> dict
        self.by_job = {}       # job id -> task id
        self.events = []       # (task id, event doc), in arrival order
        self.callbacks = []    # check_in_at values that fired a callback
        self.on_schedule = None
        self.next_id = 100
        # held from a submission until its job id is on the task: core
        # records the id before it looks up the job's events
        self.binding = threading.Lock()
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def hook_url(self, task_id):
        return "http://127.0.0.1:%d/service/notifications/tasks/%d" % (
            self.server.server_address[1], task_id)

    def new_task(self, vendor):
        with self.lock:
            self.next_id += 1
            tid = self.next_id
            self.tasks[tid] = {"vendor": vendor, "status": "Pending",
                               "revision": 0, "job_id": None,
                               "check_in": None, "statuses": []}
            return tid

    def bind(self, tid, job_id):
        with self.lock:
            self.tasks[tid]["job_id"] = job_id
            self.by_job[job_id] = tid

    def submit(self, d, tid, name, kind="Generic", params=None, cron=None):
        """Submits as core does, with the task's status hook, and binds an
        accepted job to the task before any of its events is handled (an
        event refused for an unknown job would be superseded by the next
        status, losing Running). Returns submit()'s (status, headers,
        document)."""
        with self.binding:
            st, hdrs, doc = submit(d, name, params, kind=kind, cron=cron,
                                   hook=self.hook_url(tid))
            if st == 202:
                self.bind(tid, doc["job"]["id"])
        return st, hdrs, doc

    def task(self, tid):
        with self.lock:
            return json.loads(json.dumps(self.tasks[tid]))

    def events_of(self, tid):
        with self.lock:
            return [e for t, e in self.events if t == tid]

    def wait_task(self, tid, status, timeout=30):
        """Waits until the task reached status; returns the task."""
        def reached():
            t = self.task(tid)
            return t if t["status"] == status else None
        return wait_for(reached, timeout=timeout,
                        what="task %d %s" % (tid, status))

    def _handle(self, path, doc):
        m = re.match(r"^/service/notifications/tasks/(\d+)$", path)
        if not m:
            return 404
        md = doc.get("metadata") or {}
        with self.binding:
            pass    # a submission in flight has bound its job
        with self.lock:
            # core finds the task by upstream_job_id, else by job_id
            key = md.get("upstream_job_id") or doc["job_id"]
            tid = self.by_job.get(key)
            if tid is None or tid != int(m.group(1)):
                return 404
            t = self.tasks[tid]
            self.events.append((tid, doc))
            fire = None
            if doc.get("check_in"):
                if t["vendor"] == "SCHEDULER":
                    cia = md["check_in_at"]
                    if cia not in self.callbacks:    # dedupe by check_in_at
                        self.callbacks.append(cia)
                        fire = cia
                else:
                    t["check_in"] = json.loads(doc["check_in"])
                return_code = 200
            else:
                rev, st = md.get("revision", 0), doc["status"]
                if (rev, ORDER[st]) > (t["revision"], ORDER[t["status"]]):
                    t["revision"], t["status"] = rev, st
                t["statuses"].append(st)
                return_code = 200
        if fire is not None and self.on_schedule:
            # core runs the schedule's callback (here: start a GC)
            threading.Thread(target=self.on_schedule, args=(fire,),
                             daemon=True).start()
        return return_code

    def _handler(self):
        core = self

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                try:
                    code = core._handle(self.path, json.loads(body))
                except (ValueError, KeyError):
                    code = 400
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return H


def closed_port():
    """A port on 127.0.0.1 that nothing listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port
